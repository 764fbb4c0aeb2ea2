package libvirt

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hyperd/hyperd/internal/testguest"
	"github.com/hyperd/hyperd/sdk/drivertest"
)

// TestConformance runs the SDK's conformance suite against the built
// driver binary and the host's libvirtd, as `hyperctl drivers check`
// would.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("boots guests under libvirt; -short runs unit tests only")
	}
	needLibvirtd(t)
	guest := reachableGuest(t, testguest.Build(t))
	bin := conformanceBinary(t)
	// Each driver process the suite starts would probe KVM again; this
	// host's answer is tcg, and the probe is not what the suite checks.
	if os.Getenv(AccelEnv) == "" {
		t.Setenv(AccelEnv, accelTCG)
	}

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

// conformanceBinary returns HYPERD_BIN_DIR's driver when set (as `make
// test` sets it), else one built for this test.
func conformanceBinary(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("HYPERD_BIN_DIR"); dir != "" {
		return filepath.Join(dir, "plugins", "hyperd-driver-"+Name)
	}
	bin := filepath.Join(t.TempDir(), "hyperd-driver-"+Name)
	out, err := exec.Command("go", "build", "-o", bin, "./cmd/hyperd-driver-"+Name).CombinedOutput()
	if err != nil {
		t.Fatalf("build the driver: %v\n%s", err, out)
	}
	return bin
}
