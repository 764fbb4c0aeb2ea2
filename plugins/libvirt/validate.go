package libvirt

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

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
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	// vmIDRE bounds what goes into a domain name; libvirt refuses '/'
	// and the daemon's ids are short tokens.
	vmIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
)

// Driver-specific options a spec may set; see Driver.Info for their
// descriptions.
const (
	optURI   = "uri"
	optAccel = "accel"
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
	if !nameRE.MatchString(s.Name) {
		return sdk.InvalidSpec("name", "%q must be 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", s.Name)
	}
	if s.VCPUs < 1 {
		return sdk.InvalidSpec("vcpus", "must be at least 1")
	}
	if s.VCPUs > maxVCPUs {
		return sdk.InvalidSpec("vcpus", "%d is more than %d", s.VCPUs, maxVCPUs)
	}
	if s.MemoryMiB < minMemoryMiB {
		return sdk.InvalidSpec("memory_mib", "%d is below the minimum of %d", s.MemoryMiB, minMemoryMiB)
	}
	if hostMiB > 0 && s.MemoryMiB >= hostMiB {
		return sdk.InvalidSpec("memory_mib", "%d is not below the host's %d MiB of RAM", s.MemoryMiB, hostMiB)
	}
	if s.Kernel == "" {
		return sdk.InvalidSpec("kernel", "required: give the path of a bootable kernel image")
	}
	if err := checkFile("kernel", s.Kernel, false); err != nil {
		return err
	}
	if s.Initrd != "" {
		if err := checkFile("initrd", s.Initrd, false); err != nil {
			return err
		}
	}
	for i, d := range s.Disks {
		field := fmt.Sprintf("disks[%d]", i)
		if d.Format != "" && !slices.Contains(diskFormats, d.Format) {
			return sdk.InvalidSpec(field+".format", "%q is not one of %s", d.Format, strings.Join(diskFormats, ", "))
		}
		if err := checkFile(field+".path", d.Path, !d.ReadOnly); err != nil {
			return err
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
		default:
			return sdk.InvalidSpec("options."+k, "unknown option; this driver knows %s, %s", optAccel, optURI)
		}
	}
	return nil
}

// checkFile checks that path names a regular file (or, for a disk, a
// block device) that this process can read, and write when writable.
// libvirt takes XML, where a comma is harmless, but commas are refused
// as on the QEMU driver so that a spec fails alike on every backend.
func checkFile(field, path string, writable bool) error {
	if path == "" {
		return sdk.InvalidSpec(field, "empty path")
	}
	if !filepath.IsAbs(path) {
		return sdk.InvalidSpec(field, "%q is relative: give an absolute path", path)
	}
	if strings.Contains(path, ",") {
		return sdk.InvalidSpec(field, "path %q contains a comma, which hyperd refuses on every driver (QEMU's option syntax would split it); rename the file", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return sdk.InvalidSpec(field, "%v", err)
	}
	isDisk := strings.HasPrefix(field, "disks[")
	if !fi.Mode().IsRegular() && !(isDisk && fi.Mode()&os.ModeDevice != 0) {
		return sdk.InvalidSpec(field, "%q is not a regular file", path)
	}
	mode := uint32(unix.R_OK)
	if writable {
		mode |= unix.W_OK
	}
	if err := unix.Access(path, mode); err != nil {
		what := "readable"
		if writable {
			what = "readable and writable (or mark the disk read_only)"
		}
		return sdk.InvalidSpec(field, "%q is not %s: %v", path, what, err)
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
