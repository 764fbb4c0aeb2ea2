package sdk

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// SpecRules are one driver's limits for CheckSpec. A zero field takes
// the default given beside it.
type SpecRules struct {
	// MaxVCPUs bounds vcpus; default 64, a sanity bound that catches a
	// typo such as 1000 before the hypervisor does.
	MaxVCPUs uint32
	// MinMemoryMiB is the least memory a guest may ask for; default 16.
	MinMemoryMiB uint64
	// HostMemoryMiB is the host's RAM; a spec must ask for less. Zero
	// skips the check.
	HostMemoryMiB uint64
	// DiskFormats are the formats a disk may name; default raw only.
	// An empty format means raw.
	DiskFormats []string
}

var specName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// CheckSpec checks the fields every driver reads alike, so that a bad
// spec gets the same error whatever the backend: the name, vcpus and
// memory against r, and the kernel, initrd and disk files through
// CheckHostFile. It returns the first fault, wrapping ErrInvalidSpec
// and naming the field and the fix. Options are the driver's to check.
func CheckSpec(s Spec, r SpecRules) error {
	if r.MaxVCPUs == 0 {
		r.MaxVCPUs = 64
	}
	if r.MinMemoryMiB == 0 {
		r.MinMemoryMiB = 16
	}
	if len(r.DiskFormats) == 0 {
		r.DiskFormats = []string{"raw"}
	}

	switch {
	case !specName.MatchString(s.Name):
		return InvalidSpec("name", "%q must be 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", s.Name)
	case s.VCPUs < 1:
		return InvalidSpec("vcpus", "must be at least 1")
	case s.VCPUs > r.MaxVCPUs:
		return InvalidSpec("vcpus", "%d is more than %d", s.VCPUs, r.MaxVCPUs)
	case s.MemoryMiB < r.MinMemoryMiB:
		return InvalidSpec("memory_mib", "%d is below the minimum of %d", s.MemoryMiB, r.MinMemoryMiB)
	case r.HostMemoryMiB > 0 && s.MemoryMiB >= r.HostMemoryMiB:
		return InvalidSpec("memory_mib", "%d is not below the host's %d MiB of RAM", s.MemoryMiB, r.HostMemoryMiB)
	case s.Kernel == "":
		return InvalidSpec("kernel", "required: give the path of a bootable kernel image")
	}
	if err := CheckHostFile("kernel", s.Kernel, false, false); err != nil {
		return err
	}
	if s.Initrd != "" {
		if err := CheckHostFile("initrd", s.Initrd, false, false); err != nil {
			return err
		}
	}
	for i, d := range s.Disks {
		field := fmt.Sprintf("disks[%d]", i)
		if d.Format != "" && !slices.Contains(r.DiskFormats, d.Format) {
			return InvalidSpec(field+".format", "%q is not one of %s", d.Format, strings.Join(r.DiskFormats, ", "))
		}
		if err := CheckHostFile(field+".path", d.Path, true, !d.ReadOnly); err != nil {
			return err
		}
	}
	return nil
}

// CheckHostFile checks that path is absolute, holds no comma (which the
// option syntax of QEMU and of xl would split into another option),
// names a regular file, or for a disk a regular file or a block device,
// and that this process can read it, and write it when writable. The
// error wraps ErrInvalidSpec and names field.
func CheckHostFile(field, path string, disk, writable bool) error {
	if path == "" {
		return InvalidSpec(field, "empty path")
	}
	if !filepath.IsAbs(path) {
		return InvalidSpec(field, "%q is relative: give an absolute path", path)
	}
	if strings.Contains(path, ",") {
		return InvalidSpec(field, "path %q contains a comma, which a hypervisor's option syntax would split; rename the file", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return InvalidSpec(field, "%v", err)
	}
	blockDevice := fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0
	if !fi.Mode().IsRegular() && !(disk && blockDevice) {
		what := "a regular file"
		if disk {
			what = "a regular file or a block device"
		}
		return InvalidSpec(field, "%q is not %s", path, what)
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
		return InvalidSpec(field, "%q is not %s: %v", path, what, err)
	}
	return nil
}
