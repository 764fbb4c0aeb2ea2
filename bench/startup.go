package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// goodDrivers are linked into the start-up bench's plugin directory.
var goodDrivers = []string{"qemu", "libvirt", "xen"}

// brokenDrivers are the start-up bench's five broken binaries, each
// failing in a way discovery must survive quickly. A binary that hangs
// is left out on purpose: by design it costs the whole handshake
// timeout (sdk.DefaultStartTimeout, 10 s), which no start-up target
// could absorb.
var brokenDrivers = map[string]struct {
	body string
	mode os.FileMode
}{
	"garbage":  {"#!/bin/sh\necho 'hello, i am not a plugin'\n", 0o755},
	"exits":    {"#!/bin/sh\necho 'missing config' >&2\nexit 1\n", 0o755},
	"crashes":  {"#!/bin/sh\nkill -SEGV $$\n", 0o755},
	"arm64":    {string(arm64ELF()), 0o755},
	"not-exec": {"#!/bin/sh\n", 0o644},
}

// arm64ELF is the start of an ELF header for aarch64, enough for the
// kernel to refuse it as built for another architecture.
func arm64ELF() []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = 2, 1, 1 // 64-bit, little endian, version 1
	h[16] = 2                  // ET_EXEC
	h[18] = 183                // EM_AARCH64
	return h
}

// StartupResult is hyperd's time from exec to its API answering.
type StartupResult struct {
	Time Summary `json:"time"`
	// GoodOnly is the same with the three good drivers alone, which
	// tells the broken binaries' cost.
	GoodOnly Summary `json:"good_only"`
	// Drivers is what the last start listed: name to "healthy",
	// "unhealthy: why" or "error: why".
	Drivers map[string]string `json:"drivers"`
}

// makePluginDir fills dir with links to the good drivers and the broken
// binaries.
func makePluginDir(binDir, dir string, broken bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range goodDrivers {
		bin := "hyperd-driver-" + name
		if err := os.Symlink(filepath.Join(binDir, "plugins", bin), filepath.Join(dir, bin)); err != nil {
			return fmt.Errorf("link driver %s: %w", name, err)
		}
	}
	for name, f := range brokenDrivers {
		if !broken {
			break
		}
		if err := os.WriteFile(filepath.Join(dir, "hyperd-driver-"+name), []byte(f.body), f.mode); err != nil {
			return fmt.Errorf("write broken driver %s: %w", name, err)
		}
	}
	return nil
}

// timeStartup starts hyperd runs times over the same plugin directory,
// each with a fresh state directory, and times exec to the first
// ListDrivers answer.
func timeStartup(ctx context.Context, binDir, root string, runs int) (StartupResult, error) {
	plugins, good := filepath.Join(root, "plugins"), filepath.Join(root, "good")
	if err := makePluginDir(binDir, plugins, true); err != nil {
		return StartupResult{}, fmt.Errorf("start-up plugin dir: %w", err)
	}
	if err := makePluginDir(binDir, good, false); err != nil {
		return StartupResult{}, fmt.Errorf("start-up plugin dir: %w", err)
	}
	var (
		times, goodTimes []time.Duration
		res              StartupResult
	)
	for i := 0; i < runs; i++ {
		d, err := startDaemon(ctx, binDir, filepath.Join(root, "g"+strconv.Itoa(i)), good)
		if err != nil {
			return StartupResult{}, fmt.Errorf("start-up run %d, good drivers only: %w", i, err)
		}
		goodTimes = append(goodTimes, d.ready.Sub(d.started))
		if err := d.stop(ctx); err != nil {
			return StartupResult{}, fmt.Errorf("start-up run %d, good drivers only: %w", i, err)
		}

		d, err = startDaemon(ctx, binDir, filepath.Join(root, "s"+strconv.Itoa(i)), plugins)
		if err != nil {
			return StartupResult{}, fmt.Errorf("start-up run %d: %w", i, err)
		}
		took, r := d.ready.Sub(d.started), d.drivers
		if err := d.stop(ctx); err != nil {
			return StartupResult{}, fmt.Errorf("start-up run %d: %w", i, err)
		}
		times = append(times, took)
		res.Drivers = map[string]string{}
		for _, dr := range r.GetDrivers() {
			switch {
			case dr.GetError() != "":
				res.Drivers[dr.GetName()] = "error: " + dr.GetError()
			case dr.GetHealthy():
				res.Drivers[dr.GetName()] = "healthy"
			default:
				res.Drivers[dr.GetName()] = "unhealthy: " + dr.GetHealthDescription()
			}
		}
		if n := len(r.GetDrivers()); n != len(goodDrivers)+len(brokenDrivers) {
			return StartupResult{}, fmt.Errorf("start-up run %d: hyperd lists %d drivers, want %d",
				i, n, len(goodDrivers)+len(brokenDrivers))
		}
	}
	res.Time, res.GoodOnly = Summarize(times), Summarize(goodTimes)
	return res, nil
}
