package drivertest_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hyperd/hyperd/sdk/drivertest"
)

// TestMain fails the package when a goroutine outlives the tests: the
// suite must end every event reader and driver client it starts.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const faultyPkg = "github.com/hyperd/hyperd/sdk/drivertest/internal/faultydriver"

// buildFaulty builds the faulty driver as dir/hyperd-driver-faulty.
func buildFaulty(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hyperd-driver-faulty")
	out, err := exec.Command("go", "build", "-o", bin, faultyPkg).CombinedOutput()
	if err != nil {
		t.Fatalf("build the faulty driver: %v\n%s", err, out)
	}
	return bin
}

// fakeGuest writes the files the faulty driver's fake VMs stand on: it
// checks that they exist and reads "stubborn" in the initrd's name.
func fakeGuest(t *testing.T) drivertest.Guest {
	t.Helper()
	dir := t.TempDir()
	g := drivertest.Guest{
		Kernel:         filepath.Join(dir, "vmlinuz"),
		Initrd:         filepath.Join(dir, "initrd.img"),
		StubbornInitrd: filepath.Join(dir, "initrd-stubborn.img"),
	}
	for _, f := range []string{g.Kernel, g.Initrd, g.StubbornInitrd} {
		if err := os.WriteFile(f, []byte("fake"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// TestCorrectDriverPasses runs the suite through its testing adapter
// against the faulty driver in its correct mode: the suite must not fail
// a driver that keeps the contract.
func TestCorrectDriverPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("launches driver processes")
	}
	bin := buildFaulty(t)
	t.Setenv("HYPERD_FAULTY_MODE", "correct")
	drivertest.Run(t, drivertest.Config{Binary: bin, Guest: fakeGuest(t)})
}

// TestFaultsNamed runs the suite's report against each fault and checks
// that exactly the broken check fails.
func TestFaultsNamed(t *testing.T) {
	if testing.Short() {
		t.Skip("launches driver processes")
	}
	bin := buildFaulty(t)
	guest := fakeGuest(t)
	tests := []struct {
		mode     string
		wantFail []string
	}{
		{"undeclared-success", []string{"undeclared_capabilities"}},
		{"forgetful", []string{"recover_running"}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Setenv("HYPERD_FAULTY_MODE", tt.mode)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			rep, err := drivertest.Check(ctx, drivertest.Config{Binary: bin, Guest: guest})
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			if err := rep.WriteText(&text, true); err != nil {
				t.Fatal(err)
			}
			t.Logf("report:\n%s", text.String())

			var failed []string
			for _, r := range rep.Results {
				if r.Outcome == drivertest.Fail {
					failed = append(failed, r.Name)
				}
			}
			if !slices.Equal(failed, tt.wantFail) {
				t.Errorf("failed checks %v, want %v", failed, tt.wantFail)
			}
			if !rep.Failed() {
				t.Errorf("report.Failed() = false")
			}
			if len(rep.Results) != len(drivertest.Checks()) {
				t.Errorf("%d results, want one per check (%d)", len(rep.Results), len(drivertest.Checks()))
			}
		})
	}
}

// TestConfigErrors checks that a Config that cannot work is refused
// before any driver starts.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notDriver := filepath.Join(dir, "qemu")
	if err := os.WriteFile(notDriver, nil, 0o750); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  drivertest.Config
	}{
		{"nothing_to_launch", drivertest.Config{}},
		{"binary_missing", drivertest.Config{Binary: filepath.Join(dir, "hyperd-driver-none")}},
		{"binary_misnamed", drivertest.Config{Binary: notDriver}},
		{"unknown_skip", drivertest.Config{Binary: notDriver, Name: "x", Skip: map[string]string{"nope": "why"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := drivertest.Check(t.Context(), tt.cfg); err == nil {
				t.Errorf("Check accepted %+v", tt.cfg)
			}
		})
	}
}
