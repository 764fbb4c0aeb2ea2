package xen

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/hyperd/hyperd/sdk"
)

// handleVersion is the version of the handle's JSON layout. A driver
// refuses a handle of a version it does not know rather than guess.
const handleVersion = 1

// handle is what the daemon keeps for a VM on this driver's behalf: all a
// fresh driver process needs to find the domain again.
type handle struct {
	Version int      `json:"version"`
	VMID    string   `json:"vm_id"`
	WorkDir string   `json:"work_dir"`
	Spec    sdk.Spec `json:"spec"`

	// Domain is the Xen domain name, hyperd-VMID.
	Domain string `json:"domain"`
	// UUID is the domain's UUID, chosen at Create and written into the
	// xl config, so every start of the VM carries it.
	UUID string `json:"uuid"`
	// DomID is the domain id of the last start; zero (dom0's id, never a
	// guest's) until the first start.
	DomID int `json:"domid,omitempty"`
	// ConsoleLog is the file xenconsoled logs the last start's console
	// to; empty when it logs no guest consoles.
	ConsoleLog string `json:"console_log,omitempty"`
}

// spec is sdk.Spec with stable JSON names, so that the handle's layout
// does not follow the SDK's Go field names.
// domainName is the Xen domain name of a VM. xl requires names unique on
// the host; VM ids are.
func domainName(vmID string) string { return "hyperd-" + vmID }

func (h handle) encode() sdk.Handle {
	b, err := json.Marshal(h)
	if err != nil {
		// Strings, numbers and a map of strings always marshal.
		panic(fmt.Sprintf("xen: marshal handle: %v", err))
	}
	return b
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// decodeHandle parses a handle given by the daemon for vmID. Any fault
// is the caller's: it wraps sdk.ErrInvalidSpec naming "handle".
func decodeHandle(vmID string, b sdk.Handle) (handle, error) {
	var h handle
	if len(b) == 0 {
		return h, sdk.InvalidSpec("handle", "empty: pass the handle Create returned")
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, sdk.InvalidSpec("handle", "not a xen driver handle: %v", err)
	}
	switch {
	case h.Version != handleVersion:
		return h, sdk.InvalidSpec("handle", "version %d, this driver reads version %d", h.Version, handleVersion)
	case h.VMID != vmID:
		return h, sdk.InvalidSpec("handle", "belongs to vm %q, not %q", h.VMID, vmID)
	case h.WorkDir == "" || h.Domain != domainName(vmID):
		return h, sdk.InvalidSpec("handle", "lacks work_dir or names domain %q, not %q", h.Domain, domainName(vmID))
	case !uuidRE.MatchString(h.UUID):
		return h, sdk.InvalidSpec("handle", "uuid %q is not a lowercase UUID", h.UUID)
	case h.DomID < 0:
		return h, sdk.InvalidSpec("handle", "negative domid %d", h.DomID)
	}
	return h, nil
}
