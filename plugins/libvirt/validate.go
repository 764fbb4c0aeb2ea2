package libvirt

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hyperd/hyperd/plugins/internal/diskimage"
	"github.com/hyperd/hyperd/sdk"
)

// Limits of a spec, the same as the QEMU driver's so that a spec is
// judged alike on every backend. maxVCPUs is a sanity bound catching
// typos such as 1000 before libvirt does.
const (
	maxVCPUs     = 64
	minMemoryMiB = 16
)

var (
	// vmIDRE bounds what goes into a domain name; libvirt refuses '/'
	// and the daemon's ids are short tokens.
	vmIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
)

// Driver-specific options a spec may set; see Driver.Info for their
// descriptions.
const (
	optURI   = "uri"
	optAccel = "accel"
	// optStartPaused starts the domain with VIR_DOMAIN_START_PAUSED.
	optStartPaused = "start_paused"
)

// Accelerator values of the accel option.
const (
	accelAuto = "auto"
	accelKVM  = "kvm"
	accelTCG  = "tcg"
)

var (
	accelValues = []string{accelAuto, accelKVM, accelTCG}
	diskFormats = []string{"raw", "qcow2"}
)

// validateSpec checks a spec against the host, hostMiB being its RAM.
// It returns the first fault, wrapping sdk.ErrInvalidSpec and naming the
// field and the fix.
func validateSpec(s sdk.Spec, hostMiB uint64) error {
	// libvirt takes XML, where a comma is harmless, but the SDK's checks
	// refuse it on every driver, so that one spec is judged alike
	// everywhere.
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
		switch k {
		case optAccel:
			if !slices.Contains(accelValues, v) {
				return sdk.InvalidSpec("options."+k, "%q is not one of %s", v, strings.Join(accelValues, ", "))
			}
		case optURI:
			if v == "" {
				return sdk.InvalidSpec("options."+k, "empty: give a libvirt URI such as %s, or leave the option out", DefaultURI)
			}
		case optStartPaused:
			if v != "true" && v != "false" {
				return sdk.InvalidSpec("options."+k, "%q is not true or false", v)
			}
		default:
			return sdk.InvalidSpec("options."+k, "unknown option; this driver knows %s, %s, %s", optAccel, optURI, optStartPaused)
		}
	}
	return nil
}

// validateWorkDir checks the directory the daemon made for a VM.
func validateWorkDir(dir string) error {
	if !filepath.IsAbs(dir) {
		return sdk.InvalidSpec("work_dir", "%q is not an absolute path", dir)
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

// validateVMID checks the daemon's id, which names the domain.
func validateVMID(vmID string) error {
	if !vmIDRE.MatchString(vmID) {
		return sdk.InvalidSpec("vm_id", "%q must be 1 to 128 letters, digits, '.', '_' or '-'", vmID)
	}
	return nil
}

// hostMemoryMiB is the host's RAM, or zero when it cannot be read (then
// the check against it is skipped and libvirt itself fails on too much).
func hostMemoryMiB() uint64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit) >> 20
}
