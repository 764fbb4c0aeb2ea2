package xen

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

// Limits of a spec. maxVCPUs matches the QEMU driver's sanity bound;
// minMemoryMiB is about the least a Linux PV guest with a small initrd
// boots in.
const (
	maxVCPUs     = 64
	minMemoryMiB = 32
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Driver-specific options a spec may set; see Driver.Info.
const optType = "type"

var (
	typeValues  = []string{typePV, typePVH}
	diskFormats = []string{"raw"}
)

// validateSpec returns the spec's first fault, wrapping sdk.ErrInvalidSpec
// and naming the field and the fix. Field names and the rule against
// commas in paths are the QEMU driver's, so a spec fails the same way on
// either.
func validateSpec(s sdk.Spec) error {
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
	if i := strings.IndexFunc(s.Cmdline, badConfigRune); i >= 0 {
		return sdk.InvalidSpec("cmdline", "holds %q: an xl config string cannot carry quotes, backslashes or control characters", s.Cmdline[i])
	}
	for i, d := range s.Disks {
		field := fmt.Sprintf("disks[%d]", i)
		if d.Format != "" && !slices.Contains(diskFormats, d.Format) {
			return sdk.InvalidSpec(field+".format", "%q is not one of %s (qcow2 needs qemu-system-xen's qdisk backend, which this driver does not use)",
				d.Format, strings.Join(diskFormats, ", "))
		}
		if err := checkFile(field+".path", d.Path, !d.ReadOnly); err != nil {
			return err
		}
	}
	return validateOptions(s.Options)
}

func validateOptions(opts map[string]string) error {
	for k, v := range opts {
		if k != optType {
			return sdk.InvalidSpec("options."+k, "unknown option; this driver knows %s", optType)
		}
		if !slices.Contains(typeValues, v) {
			return sdk.InvalidSpec("options."+k, "%q is not one of %s", v, strings.Join(typeValues, ", "))
		}
	}
	return nil
}

// checkFile checks that path names a regular file (or, for a disk, a
// block device) that this process can read, and write when writable.
func checkFile(field, path string, writable bool) error {
	if path == "" {
		return sdk.InvalidSpec(field, "empty path")
	}
	if !filepath.IsAbs(path) {
		return sdk.InvalidSpec(field, "%q is relative: give an absolute path", path)
	}
	if strings.Contains(path, ",") {
		return sdk.InvalidSpec(field, "path %q contains a comma, which xl's disk and config syntax would split; rename the file", path)
	}
	if i := strings.IndexFunc(path, badConfigRune); i >= 0 {
		return sdk.InvalidSpec(field, "path %q holds %q, which an xl config string cannot carry; rename the file", path, path[i])
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
	if strings.ContainsFunc(dir, badConfigRune) || strings.Contains(dir, ",") {
		return sdk.InvalidSpec("work_dir", "%q holds a comma, quote, backslash or control character", dir)
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
