package core

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// elfFor returns the start of an ELF executable header for machine, enough
// for the kernel to refuse it as built for another architecture.
func elfFor(machine uint16) []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = 2, 1, 1 // 64-bit, little endian, version 1
	h[16] = 2                  // ET_EXEC
	h[18], h[19] = byte(machine), byte(machine>>8)
	return h
}

// TestDiscoverBadDrivers puts one good and many broken drivers in a plugin
// directory: each broken one is listed with its reason, the good one
// works, and discovery ends within a bound although some binaries hang.
func TestDiscoverBadDrivers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts driver processes that hang until the handshake timeout")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wrap := func(mode string) string {
		return fmt.Sprintf("#!/bin/sh\n%s=%s exec %q \"$@\"\n", driverModeEnv, mode, self)
	}
	files := map[string]struct {
		body string
		mode os.FileMode
		// reason is a piece of the listed error.
		reason string
	}{
		"fake":    {wrap("healthy"), 0o755, ""},
		"garbage": {"#!/bin/sh\necho 'hello, i am not a plugin'\n", 0o755, "handshake"},
		"exits":   {"#!/bin/sh\necho 'missing config' >&2\nexit 1\n", 0o755, "missing config"},
		"hangs":   {"#!/bin/sh\nexec sleep 600\n", 0o755, "handshake"},
		// A wrapper whose child holds the driver's stdout and stderr:
		// go-plugin waits for those pipes, so the group must be killed.
		"wrapper-hangs":   {"#!/bin/sh\nsleep 600\n", 0o755, "handshake"},
		"wrapper-garbage": {"#!/bin/sh\necho garbage\nsleep 600\n", 0o755, "garbage"},
		"hang-info":       {wrap("hang-info"), 0o755, "info"},
		"other-version":   {wrap("other-version"), 0o755, "99"},
		"arm64":           {string(elfFor(183)), 0o755, "exec format error"},
		"not-exec":        {"#!/bin/sh\n", 0o644, "not executable"},
	}
	for name, f := range files {
		if err := os.WriteFile(filepath.Join(dir, DriverPrefix+name), []byte(f.body), f.mode); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	r := Discover(ctx, []string{dir}, nil, "info", hclog.NewNullLogger())
	defer r.Close()
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("discovery took %s, want it bounded by the handshake and info timeouts", took)
	}

	got := map[string]DriverEntry{}
	for _, e := range r.List() {
		got[e.Name] = e
	}
	for name, f := range files {
		t.Run(name, func(t *testing.T) {
			e, ok := got[name]
			if !ok {
				t.Fatalf("%s not listed", name)
			}
			if f.reason == "" {
				if e.Err != nil || !e.Healthy() {
					t.Fatalf("healthy driver listed as %+v", e)
				}
				return
			}
			if e.Err == nil {
				t.Fatalf("broken driver listed without a reason")
			}
			if !strings.Contains(strings.ToLower(e.Err.Error()), strings.ToLower(f.reason)) {
				t.Fatalf("reason %q lacks %q", e.Err, f.reason)
			}
		})
	}
}

// TestReloadEndsRestartLoop: a driver that keeps failing to restart is
// brought back by a reload, and the stale restart loop neither marks it
// unusable again nor replaces it.
func TestReloadEndsRestartLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts driver processes")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fail := filepath.Join(dir, "fail")
	script := fmt.Sprintf("#!/bin/sh\n[ -e %q ] && exit 3\n%s=healthy exec %q \"$@\"\n", fail, driverModeEnv, self)
	if err := os.WriteFile(filepath.Join(dir, DriverPrefix+"fake"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := Discover(ctx, []string{dir}, nil, "info", hclog.NewNullLogger())
	defer r.Close()
	first, err := r.Get("fake")
	if err != nil {
		t.Fatal(err)
	}

	// The process dies and every restart fails for a while.
	if err := os.WriteFile(fail, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	first.plugin.Close()
	waitFor(t, 10*time.Second, "restart failures", func() bool {
		_, err := r.Get("fake")
		return err != nil && strings.Contains(err.Error(), "restart")
	})

	if err := os.Remove(fail); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(ctx, "fake"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	reloaded, err := r.Get("fake")
	if err != nil {
		t.Fatal(err)
	}
	// Let the stale loop's next attempt come and go.
	if err := os.WriteFile(fail, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	now, err := r.Get("fake")
	if err != nil {
		t.Fatalf("after the stale loop's turn: %v", err)
	}
	if now.plugin != reloaded.plugin || reloaded.plugin.Exited() {
		t.Fatal("the stale restart loop replaced or ended the reloaded driver")
	}
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
