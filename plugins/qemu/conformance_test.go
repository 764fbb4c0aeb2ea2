package qemu_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hyperd/hyperd/internal/testguest"
	"github.com/hyperd/hyperd/plugins/qemu"
	"github.com/hyperd/hyperd/sdk/drivertest"
)

// TestConformance runs the SDK's conformance suite against the built
// driver binary with real QEMU, as an operator's `hyperctl drivers check`
// would.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	if _, err := exec.LookPath(qemu.DefaultBinary); err != nil {
		t.Skipf("%s not found: install Debian's qemu-system-x86", qemu.DefaultBinary)
	}
	guest := testguest.Build(t)
	bin := driverBinary(t)
	pinAccelerator(t)

	drivertest.Run(t, drivertest.Config{
		Binary: bin,
		Guest: drivertest.Guest{
			Kernel:         guest.Kernel,
			Initrd:         guest.Initrd,
			StubbornInitrd: guest.StubbornInitrd,
			Cmdline:        testguest.Cmdline,
			ReadyLine:      testguest.ReadyLine,
		},
	})
}

// driverBinary returns HYPERD_BIN_DIR's driver when set (as `make test`
// sets it), else one built for this test.
func driverBinary(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("HYPERD_BIN_DIR"); dir != "" {
		return filepath.Join(dir, "plugins", "hyperd-driver-"+qemu.Name)
	}
	bin := filepath.Join(t.TempDir(), "hyperd-driver-"+qemu.Name)
	out, err := exec.Command("go", "build", "-o", bin, "./cmd/hyperd-driver-"+qemu.Name).CombinedOutput()
	if err != nil {
		t.Fatalf("build the driver: %v\n%s", err, out)
	}
	return bin
}

// pinAccelerator probes KVM once here and passes the answer to every
// driver process the suite launches through qemu.AccelEnv. Each fresh
// driver process would otherwise probe again, up to three seconds each,
// and the suite launches about fifteen.
func pinAccelerator(t *testing.T) {
	t.Helper()
	if os.Getenv(qemu.AccelEnv) != "" {
		return
	}
	d := qemu.New(nil)
	defer d.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	fp, err := d.Fingerprint(ctx)
	if err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	accel := fp.Attributes["accelerator"]
	t.Logf("accelerator for the suite: %s (%s)", accel, fp.Attributes["accelerator_reason"])
	t.Setenv(qemu.AccelEnv, accel)
}
