package xen

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hyperd/hyperd/sdk"
)

// Limits of a spec. maxVCPUs matches the QEMU driver's sanity bound;
// minMemoryMiB is about the least a Linux PV guest with a small initrd
// boots in.
const (
	maxVCPUs     = 64
	minMemoryMiB = 32
)

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
	for i, d := range s.Disks {
		if d.Format != "" && !slices.Contains(diskFormats, d.Format) {
			return sdk.InvalidSpec(fmt.Sprintf("disks[%d].format", i),
				"%q is not one of %s (qcow2 needs qemu-system-xen's qdisk backend, which this driver does not use)",
				d.Format, strings.Join(diskFormats, ", "))
		}
	}
	err := sdk.CheckSpec(s, sdk.SpecRules{MaxVCPUs: maxVCPUs, MinMemoryMiB: minMemoryMiB, DiskFormats: diskFormats})
	if err != nil {
		return err
	}
	// What the SDK allows, an xl config string may still not carry.
	paths := map[string]string{"kernel": s.Kernel, "initrd": s.Initrd}
	for i, d := range s.Disks {
		paths[fmt.Sprintf("disks[%d].path", i)] = d.Path
	}
	for field, path := range paths {
		if i := strings.IndexFunc(path, badConfigRune); i >= 0 {
			return sdk.InvalidSpec(field, "path %q holds %q, which an xl config string cannot carry; rename the file", path, path[i])
		}
	}
	if i := strings.IndexFunc(s.Cmdline, badConfigRune); i >= 0 {
		return sdk.InvalidSpec("cmdline", "holds %q: an xl config string cannot carry quotes, backslashes or control characters", s.Cmdline[i])
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
