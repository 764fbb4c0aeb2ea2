package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hyperd/hyperd/sdk"
)

// beDriverEnv makes the re-executed test binary act as the driver.
const beDriverEnv = "HYPERD_TEST_BE_LIBVIRT_DRIVER"

func TestMain(m *testing.M) {
	if os.Getenv(beDriverEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestServe launches this binary as a plugin, the way the daemon does,
// and asks it over the contract who it is.
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
	if info.Name != "libvirt" || !info.Has(sdk.CapabilityRecover) || !info.Has(sdk.CapabilityPause) {
		t.Errorf("Info = %+v", info)
	}
	var uri bool
	for _, o := range info.Options {
		uri = uri || o.Name == "uri" && o.Default == "qemu:///system"
	}
	if !uri {
		t.Errorf("Info options lack uri: %+v", info.Options)
	}
	fp, err := p.Fingerprint(ctx)
	if err != nil {
		t.Fatalf("Fingerprint: %v", err)
	}
	t.Logf("fingerprint over the wire: %v, %s", fp.Health, fp.Description)
}
