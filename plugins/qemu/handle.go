package qemu

import (
	"encoding/json"
	"fmt"

	"github.com/hyperd/hyperd/sdk"
)

// handleVersion is the version of the handle's JSON layout. A driver
// refuses a handle of a version it does not know rather than guess.
const handleVersion = 1

// handle is what the daemon keeps for a VM on this driver's behalf: all
// a fresh driver process needs to find the VM and its QEMU again.
type handle struct {
	Version int      `json:"version"`
	VMID    string   `json:"vm_id"`
	WorkDir string   `json:"work_dir"`
	Spec    sdk.Spec `json:"spec"`

	// Binary is the QEMU binary used for the last start.
	Binary string `json:"binary,omitempty"`
	// Accel is the accelerator of the last start.
	Accel Accelerator `json:"accel,omitempty"`
	// PID and StartTime identify the QEMU process of the last start;
	// StartTime is field 22 of /proc/PID/stat, in clock ticks since boot.
	// Zero until the first start.
	PID       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"`
	QMPSocket string `json:"qmp_socket"`
}

// spec is sdk.Spec with stable JSON names, so that the handle's layout
// does not follow the SDK's Go field names.
func (h handle) encode() sdk.Handle {
	b, err := json.Marshal(h)
	if err != nil {
		// Strings, numbers and a map of strings always marshal.
		panic(fmt.Sprintf("qemu: marshal handle: %v", err))
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
		return h, sdk.InvalidSpec("handle", "not a qemu driver handle: %v", err)
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
	case h.WorkDir == "" || h.QMPSocket == "":
		return sdk.InvalidSpec("handle", "lacks work_dir or qmp_socket")
	case h.PID < 0 || (h.PID > 0 && h.StartTime == 0):
		return sdk.InvalidSpec("handle", "pid %d without a process start time", h.PID)
	}
	return nil
}
