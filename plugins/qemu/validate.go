package qemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

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

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Driver-specific options a spec may set; see Driver.Info for their
// descriptions.
const (
	optAccel   = "accel"
	optMachine = "machine"
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
		if d.Format == "qcow2" {
			if err := checkQcow2(field+".path", d.Path); err != nil {
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
		default:
			return sdk.InvalidSpec("options."+k, "unknown option; this driver knows %s, %s", optAccel, optMachine)
		}
		if !slices.Contains(allowed, v) {
			return sdk.InvalidSpec("options."+k, "%q is not one of %s", v, strings.Join(allowed, ", "))
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
		return sdk.InvalidSpec(field, "path %q contains a comma, which QEMU's option syntax would split; rename the file", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return sdk.InvalidSpec(field, "%v", err)
	}
	isDisk := strings.HasPrefix(field, "disks[")
	blockDevice := fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0
	if !fi.Mode().IsRegular() && !(isDisk && blockDevice) {
		what := "a regular file"
		if isDisk {
			what = "a regular file or a block device"
		}
		return sdk.InvalidSpec(field, "%q is not %s", path, what)
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

// checkQcow2 refuses a qcow2 image that names other files in its header:
// a backing file or an external data file. QEMU would open them on its
// own, so an image could make it read any host file, or connect to an
// NBD server, that the spec never named. argv also passes "backing":
// null; the data file has no such switch, hence this check.
func checkQcow2(field, path string) error {
	out, err := exec.Command("qemu-img", "info", "--output=json", "-f", "qcow2", path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return sdk.InvalidSpec(field, "%q is not a usable qcow2 image: %s", path, strings.TrimSpace(string(ee.Stderr)))
		}
		return fmt.Errorf("inspect %s with qemu-img (install Debian's qemu-utils): %w", path, err)
	}
	var info struct {
		BackingFilename string `json:"backing-filename"`
		FormatSpecific  struct {
			Data struct {
				DataFile string `json:"data-file"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return fmt.Errorf("inspect %s: decode qemu-img info: %w", path, err)
	}
	if info.BackingFilename != "" {
		return sdk.InvalidSpec(field, "%q has a backing file (%s); give a standalone image (qemu-img convert -O qcow2)", path, info.BackingFilename)
	}
	if info.FormatSpecific.Data.DataFile != "" {
		return sdk.InvalidSpec(field, "%q uses an external data file (%s); give a standalone image", path, info.FormatSpecific.Data.DataFile)
	}
	return nil
}
