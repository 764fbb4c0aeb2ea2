package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/hyperd/hyperd/sdk"
)

// handleVersion is the version of the handle's JSON layout; a driver
// refuses a layout it does not know rather than guess.
const handleVersion = 1

// handle is everything a fresh driver process needs to find a VM again.
// The daemon keeps it; this driver keeps nothing that matters only in
// memory.
type handle struct {
	Version int    `json:"version"`
	VMID    string `json:"vm_id"`
	WorkDir string `json:"work_dir"`
	// UMID names the UML instance: its mconsole socket is
	// WorkDir/UMID/mconsole.
	UMID string `json:"umid"`
	Spec spec   `json:"spec"`
	// PID and StartTime identify the UML process of the last start;
	// StartTime is field 22 of /proc/PID/stat. Zero before the first
	// start.
	PID       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"`
}

// spec is the part of sdk.Spec UML uses, under stable JSON names.
type spec struct {
	Name      string   `json:"name"`
	MemoryMiB uint64   `json:"memory_mib"`
	Kernel    string   `json:"kernel"`
	Initrd    string   `json:"initrd,omitempty"`
	Cmdline   string   `json:"cmdline,omitempty"`
	Disks     []disk   `json:"disks,omitempty"`
	Extra     []string `json:"extra,omitempty"`
}

type disk struct {
	Path     string `json:"path"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

func (h handle) encode() sdk.Handle {
	b, err := json.Marshal(h)
	if err != nil {
		// Strings, numbers and slices of them always marshal.
		panic(fmt.Sprintf("uml: marshal handle: %v", err))
	}
	return b
}

// decodeHandle parses a handle the daemon gives back for vmID.
func decodeHandle(vmID string, b sdk.Handle) (handle, error) {
	var h handle
	if len(b) == 0 {
		return h, sdk.InvalidSpec("handle", "empty: pass the handle Create returned")
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, sdk.InvalidSpec("handle", "not a uml driver handle: %v", err)
	}
	switch {
	case h.Version != handleVersion:
		return h, sdk.InvalidSpec("handle", "version %d, this driver reads version %d", h.Version, handleVersion)
	case h.VMID != vmID:
		return h, sdk.InvalidSpec("handle", "belongs to vm %q, not %q", h.VMID, vmID)
	case h.WorkDir == "" || h.UMID == "" || h.Spec.Kernel == "":
		return h, sdk.InvalidSpec("handle", "lacks work_dir, umid or kernel")
	case h.PID < 0 || (h.PID > 0 && h.StartTime == 0):
		return h, sdk.InvalidSpec("handle", "pid %d without a process start time", h.PID)
	}
	return h, nil
}

// Files in a VM's work directory.
func (h handle) umlDir() string      { return filepath.Join(h.WorkDir, h.UMID) }
func (h handle) mconsole() string    { return filepath.Join(h.umlDir(), "mconsole") }
func (h handle) consoleLog() string  { return filepath.Join(h.WorkDir, "console.log") }
func (h handle) umlLog() string      { return filepath.Join(h.WorkDir, "uml.log") }
func (h handle) pausedFile() string  { return filepath.Join(h.WorkDir, "paused") }
func (h handle) exitFile() string    { return filepath.Join(h.WorkDir, "exit-reason") }
func (h handle) identityArg() string { return "uml_dir=" + h.WorkDir }

// incarnation names the process of the last start, for the files that
// must not outlive it: the paused mark and the exit reason.
func (h handle) incarnation() string { return fmt.Sprintf("%d:%d", h.PID, h.StartTime) }
