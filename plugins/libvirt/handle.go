package libvirt

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/hyperd/hyperd/sdk"
)

// handleVersion is the version of the handle's JSON layout. A driver
// refuses a handle of a version it does not know rather than guess.
const handleVersion = 1

// uuidRE matches the lowercase textual UUID libvirt prints.
var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// handle is what the daemon keeps for a VM on this driver's behalf: all
// a fresh driver process needs to find the VM's domain again, or to
// create it anew at the next start.
type handle struct {
	Version int      `json:"version"`
	VMID    string   `json:"vm_id"`
	WorkDir string   `json:"work_dir"`
	Spec    sdk.Spec `json:"spec"`

	// URI is the libvirt connection the domain lives on.
	URI string `json:"uri"`
	// UUID and Domain name the domain. The UUID is chosen at Create and
	// kept across starts, so it identifies the VM, not one boot of it.
	UUID   string `json:"uuid"`
	Domain string `json:"domain"`
	// ConsoleLog is the serial console's file in the work directory.
	ConsoleLog string `json:"console_log"`

	// Started is set by the first Start: before it, no domain exists
	// and the VM is only created.
	Started bool `json:"started,omitempty"`
	// DomainType is libvirt's domain type of the last start, kvm or qemu.
	DomainType string `json:"domain_type,omitempty"`
}

// spec is sdk.Spec with stable JSON names, so that the handle's layout
// does not follow the SDK's Go field names.
func (h handle) encode() sdk.Handle {
	b, err := json.Marshal(h)
	if err != nil {
		// Strings, numbers, bools and a map of strings always marshal.
		panic(fmt.Sprintf("libvirt: marshal handle: %v", err))
	}
	return b
}

// decodeHandle parses a handle given by the daemon for vmID. Any fault
// is the caller's: it wraps sdk.ErrInvalidSpec naming "handle".
func decodeHandle(vmID string, b sdk.Handle) (handle, error) {
	var h handle
	if len(b) == 0 {
		return h, sdk.InvalidSpec("handle", "empty: pass the handle Create returned")
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, sdk.InvalidSpec("handle", "not a libvirt driver handle: %v", err)
	}
	if err := h.check(vmID); err != nil {
		return h, err
	}
	return h, nil
}

func (h handle) check(vmID string) error {
	switch {
	case h.Version != handleVersion:
		return sdk.InvalidSpec("handle", "version %d, this driver reads version %d", h.Version, handleVersion)
	case h.VMID != vmID:
		return sdk.InvalidSpec("handle", "belongs to vm %q, not %q", h.VMID, vmID)
	case !uuidRE.MatchString(h.UUID):
		return sdk.InvalidSpec("handle", "uuid %q is not a lowercase UUID", h.UUID)
	case h.Domain != domainName(vmID):
		return sdk.InvalidSpec("handle", "domain %q, want %q", h.Domain, domainName(vmID))
	case h.URI == "" || h.WorkDir == "" || h.ConsoleLog == "":
		return sdk.InvalidSpec("handle", "lacks uri, work_dir or console_log")
	}
	return nil
}

// domainName is the libvirt name of a VM's domain.
func domainName(vmID string) string { return domainPrefix + vmID }
