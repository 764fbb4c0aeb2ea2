package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperd/hyperd/sdk"
)

// beDriverEnv makes the re-executed test binary act as the driver.
const beDriverEnv = "HYPERD_TEST_BE_XEN_DRIVER"

func TestMain(m *testing.M) {
	if os.Getenv(beDriverEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestServe launches this binary as a plugin, the way the daemon does. On
// a host that is no Xen dom0 the driver must load, say why it is
// unhealthy, and refuse to create with that reason over the wire.
func TestServe(t *testing.T) {
	t.Setenv(beDriverEnv, "1")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	p, err := sdk.Launch(ctx, os.Args[0], sdk.LaunchOptions{})
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	defer p.Close()

	info, err := p.Info(ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if info.Name != "xen" || !info.Has(sdk.CapabilityRecover) || !info.Has(sdk.CapabilityPause) {
		t.Errorf("Info = %+v", info)
	}
	fp, err := p.Fingerprint(ctx)
	if err != nil {
		t.Fatalf("Fingerprint: %v", err)
	}
	if _, err := os.Stat("/proc/xen/capabilities"); err == nil {
		t.Skipf("this host may be a Xen dom0; fingerprint: %v, %s", fp.Health, fp.Description)
	}
	if fp.Health != sdk.HealthUnhealthy || !strings.HasPrefix(fp.Description, "not a Xen dom0") {
		t.Fatalf("fingerprint = %+v, want unhealthy: not a Xen dom0", fp)
	}
	kernel := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(kernel, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = p.Create(ctx, "0a1b2c3d4e5f", sdk.Spec{Name: "web", VCPUs: 1, MemoryMiB: 128, Kernel: kernel}, t.TempDir())
	if !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), "not a Xen dom0") {
		t.Fatalf("Create = %v, want ErrUnavailable: not a Xen dom0", err)
	}
}
