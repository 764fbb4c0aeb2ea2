package qemu

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hyperd/hyperd/plugins/internal/diskimage"
	"github.com/hyperd/hyperd/sdk"
)

// Limits of a spec. maxVCPUs is a sanity bound well under QEMU's q35
// limit (288), catching typos such as 1000 before QEMU does.
const (
	maxVCPUs     = 64
	minMemoryMiB = 16
	// maxSocketPath is sun_path's size (108 on Linux) less its NUL: a
	// longer QMP socket path cannot be bound.
	maxSocketPath = 107
)

// Driver-specific options a spec may set; see Driver.Info for their
// descriptions.
const (
	optAccel   = "accel"
	optMachine = "machine"
	// optStartPaused leaves the guest's vCPUs stopped after the start:
	// QEMU stays in prelaunch, and a resume boots the guest.
	optStartPaused = "start_paused"
)

var (
	accelValues   = []string{"auto", string(AccelKVM), string(AccelTCG)}
	machineValues = []string{"q35", "pc"}
	diskFormats   = []string{"raw", "qcow2"}
)

// validateSpec checks a spec against the host, hostMiB being its RAM. It
// returns the first fault, wrapping sdk.ErrInvalidSpec and naming the
// field and the fix.
func validateSpec(s sdk.Spec, hostMiB uint64) error {
	err := sdk.CheckSpec(s, sdk.SpecRules{
		MaxVCPUs:      maxVCPUs,
		MinMemoryMiB:  minMemoryMiB,
		HostMemoryMiB: hostMiB,
		DiskFormats:   diskFormats,
	})
	if err != nil {
		return err
	}
	for i, d := range s.Disks {
		if d.Format == "qcow2" {
			if err := diskimage.CheckStandalone(fmt.Sprintf("disks[%d].path", i), d.Path); err != nil {
				return err
			}
		}
	}
	return validateOptions(s.Options)
}

func validateOptions(opts map[string]string) error {
	for k, v := range opts {
		var allowed []string
		switch k {
		case optAccel:
			allowed = accelValues
		case optMachine:
			allowed = machineValues
		case optStartPaused:
			allowed = []string{"true", "false"}
		default:
			return sdk.InvalidSpec("options."+k, "unknown option; this driver knows %s, %s, %s", optAccel, optMachine, optStartPaused)
		}
		if !slices.Contains(allowed, v) {
			return sdk.InvalidSpec("options."+k, "%q is not one of %s", v, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// validateWorkDir checks the directory the daemon made for a VM.
func validateWorkDir(dir string) error {
	if !filepath.IsAbs(dir) {
		return sdk.InvalidSpec("work_dir", "%q is not an absolute path", dir)
	}
	if n := len(qmpSocketPath(dir)); n > maxSocketPath {
		return sdk.InvalidSpec("work_dir", "%q is too long: the QMP socket path inside it would be %d bytes, unix sockets allow %d; use a shorter state directory", dir, n, maxSocketPath)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return sdk.InvalidSpec("work_dir", "%v", err)
	}
	if !fi.IsDir() {
		return sdk.InvalidSpec("work_dir", "%q is not a directory", dir)
	}
	return nil
}

// hostMemoryMiB is the host's RAM, or zero when it cannot be read (then
// the check against it is skipped and QEMU itself fails on too much).
func hostMemoryMiB() uint64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit) >> 20
}
