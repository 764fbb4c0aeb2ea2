// Package diskimage holds the disk image checks the drivers share.
// Limitations: only qcow2 headers are inspected; other formats that can
// name further files (vmdk descriptors, for one) are not accepted by any
// driver yet.
package diskimage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/hyperd/hyperd/sdk"
)

// CheckStandalone refuses a qcow2 image that names other files in its
// header:
// a backing file or an external data file. QEMU would open them on its
// own, so an image could make it read any host file, or connect to an
// NBD server, that the spec never named. The QEMU driver also passes
// "backing": null; the data file has no such switch, hence this check.
func CheckStandalone(field, path string) error {
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
