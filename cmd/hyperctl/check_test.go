package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// buildFaultyDriver builds the SDK's deliberately faulty test driver as
// hyperd-driver-faulty; its fault is chosen by HYPERD_FAULTY_MODE.
func buildFaultyDriver(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hyperd-driver-faulty")
	out, err := exec.Command("go", "build", "-o", bin,
		"github.com/hyperd/hyperd/sdk/drivertest/internal/faultydriver").CombinedOutput()
	if err != nil {
		t.Fatalf("build the faulty driver: %v\n%s", err, out)
	}
	return bin
}

// fakeGuestFlags writes stand-ins for the guest files, which the faulty
// driver only checks exist, and returns the flags naming them.
func fakeGuestFlags(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	var flags []string
	for flag, name := range map[string]string{
		"--kernel": "vmlinuz", "--initrd": "initrd.img", "--stubborn-initrd": "initrd-stubborn.img",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("fake"), 0o640); err != nil {
			t.Fatal(err)
		}
		flags = append(flags, flag, p)
	}
	return flags
}

func TestDriversCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and launches a driver")
	}
	bin := buildFaultyDriver(t)
	guest := fakeGuestFlags(t)
	// The stubborn guest's check waits out a stop timeout; it is covered
	// by the drivertest package's own tests.
	quick := append([]string{"drivers", "check", bin, "--skip", "stop_past_deadline"}, guest...)

	t.Run("correct_driver_passes", func(t *testing.T) {
		t.Setenv("HYPERD_FAULTY_MODE", "correct")
		r := runCLI(t.Context(), quick...)
		r.wantOK(t)
		if !regexp.MustCompile(`(?m)^PASS  recover_running `).MatchString(r.stdout) {
			t.Errorf("no PASS line for recover_running:\n%s", r.stdout)
		}
	})

	t.Run("undeclared_success_fails_its_check", func(t *testing.T) {
		t.Setenv("HYPERD_FAULTY_MODE", "undeclared-success")
		r := runCLI(t.Context(), quick...)
		if r.code != 1 {
			t.Fatalf("exit %d, want 1; stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		fails := regexp.MustCompile(`(?m)^FAIL  (\S+)`).FindAllStringSubmatch(r.stdout, -1)
		if len(fails) != 1 || fails[0][1] != "undeclared_capabilities" {
			t.Errorf("FAIL lines %v, want only undeclared_capabilities:\n%s", fails, r.stdout)
		}
		if !regexp.MustCompile(`Pause succeeded`).MatchString(r.stdout) {
			t.Errorf("the report does not say why:\n%s", r.stdout)
		}
	})

	t.Run("forgetful_fails_recover_as_json", func(t *testing.T) {
		t.Setenv("HYPERD_FAULTY_MODE", "forgetful")
		r := runCLI(t.Context(), append(quick, "-o", "json")...)
		if r.code != 1 {
			t.Fatalf("exit %d, want 1; stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		var rep struct {
			Results []struct {
				Name    string   `json:"name"`
				Outcome string   `json:"outcome"`
				Reasons []string `json:"reasons"`
			} `json:"results"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("parse the report: %v\n%s", err, r.stdout)
		}
		outcomes := map[string]string{}
		for _, res := range rep.Results {
			outcomes[res.Name] = res.Outcome
			if res.Outcome == "FAIL" && res.Name != "recover_running" {
				t.Errorf("%s failed too: %v", res.Name, res.Reasons)
			}
		}
		if outcomes["recover_running"] != "FAIL" {
			t.Errorf("recover_running is %q, want FAIL", outcomes["recover_running"])
		}
		if outcomes["stop_past_deadline"] != "SKIP" {
			t.Errorf("stop_past_deadline is %q, want SKIP (--skip)", outcomes["stop_past_deadline"])
		}
	})

	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"drivers", "check"},
			{"drivers", "check", bin, bin},
		} {
			if r := runCLI(t.Context(), args...); r.code != 2 {
				t.Errorf("%v: exit %d, want 2; stderr %q", args, r.code, r.stderr)
			}
		}
		r := runCLI(t.Context(), "drivers", "check", filepath.Join(t.TempDir(), "hyperd-driver-none"))
		if r.code != 1 || r.stderr == "" {
			t.Errorf("missing binary: exit %d, stderr %q; want 1 and a reason", r.code, r.stderr)
		}
	})
}
