package xen

import (
	"fmt"
	"strings"

	"github.com/hyperd/hyperd/sdk"
)

// Guest types the option "type" selects. HVM is not offered: it needs
// qemu-system-xen as a device model and firmware, and hyperd boots a
// kernel directly.
const (
	typePV  = "pv"
	typePVH = "pvh"
)

// domainConfig is everything an xl config for one start says.
type domainConfig struct {
	name    string
	uuid    string
	typ     string
	kernel  string
	ramdisk string
	extra   string
	memMiB  uint64
	vcpus   uint32
	disks   []sdk.Disk
}

// configFor builds the domain's config from the handle.
func configFor(h handle) domainConfig {
	typ := h.Spec.Options[optType]
	if typ == "" {
		typ = typePV
	}
	return domainConfig{
		name:    h.Domain,
		uuid:    h.UUID,
		typ:     typ,
		kernel:  h.Spec.Kernel,
		ramdisk: h.Spec.Initrd,
		extra:   h.Spec.Cmdline,
		memMiB:  h.Spec.MemoryMiB,
		vcpus:   h.Spec.VCPUs,
		disks:   h.Spec.Disks,
	}
}

// render writes the xl config (xl.cfg(5)). Every guest exit leaves the
// domain in place ("preserve") so that the driver can read Xen's shutdown
// reason before it destroys the domain; with "destroy" the domain and
// its reason would be gone before anyone looked. It fails only on a value
// xl's parser would read differently, which validation already refuses.
func (c domainConfig) render(vmID string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# xl config of hyperd vm %s, written by hyperd's xen driver at each start.\n", vmID)
	str := func(key, val string) error {
		q, err := xlQuote(val)
		if err != nil {
			return fmt.Errorf("xl config %s: %w", key, err)
		}
		fmt.Fprintf(&b, "%s = %s\n", key, q)
		return nil
	}
	for _, kv := range [][2]string{{"name", c.name}, {"uuid", c.uuid}, {"type", c.typ}, {"kernel", c.kernel}} {
		if err := str(kv[0], kv[1]); err != nil {
			return "", err
		}
	}
	if c.ramdisk != "" {
		if err := str("ramdisk", c.ramdisk); err != nil {
			return "", err
		}
	}
	if c.extra != "" {
		if err := str("extra", c.extra); err != nil {
			return "", err
		}
	}
	// maxmem equal to memory: no ballooning above the spec's size.
	fmt.Fprintf(&b, "memory = %d\nmaxmem = %d\nvcpus = %d\n", c.memMiB, c.memMiB, c.vcpus)
	for _, k := range []string{"on_poweroff", "on_reboot", "on_crash", "on_watchdog"} {
		fmt.Fprintf(&b, "%s = \"preserve\"\n", k)
	}
	if len(c.disks) > 0 {
		var specs []string
		for i, d := range c.disks {
			s, err := xlQuote(diskTarget(i, d))
			if err != nil {
				return "", fmt.Errorf("xl config disk %d: %w", i, err)
			}
			specs = append(specs, s)
		}
		fmt.Fprintf(&b, "disk = [ %s ]\n", strings.Join(specs, ", "))
	}
	return b.String(), nil
}

// diskTarget is one disk in xl-disk-configuration(5) syntax. target must
// come last: xl takes the rest of the string as the path.
func diskTarget(i int, d sdk.Disk) string {
	access := "rw"
	if d.ReadOnly {
		access = "ro"
	}
	return fmt.Sprintf("format=raw, vdev=%s, access=%s, target=%s", vdev(i), access, d.Path)
}

// vdev names the i-th disk xvda, xvdb, ... xvdz, xvdaa, ...
func vdev(i int) string {
	name := ""
	for n := i; ; n = n/26 - 1 {
		name = string(rune('a'+n%26)) + name
		if n < 26 {
			break
		}
	}
	return "xvd" + name
}

// xlQuote double-quotes s for an xl config. xl's parser reads backslash
// escapes inside quotes and ends a string at a newline, so a value with
// a quote, a backslash or a control character is refused rather than
// escaped: validation names the field first.
func xlQuote(s string) (string, error) {
	if i := strings.IndexFunc(s, badConfigRune); i >= 0 {
		return "", fmt.Errorf("%q holds %q, which an xl config string cannot carry as is", s, s[i])
	}
	return `"` + s + `"`, nil
}

func badConfigRune(r rune) bool { return r == '"' || r == '\\' || r < 0x20 || r == 0x7f }
