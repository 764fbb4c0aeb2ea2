package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hyperd/hyperd/internal/testguest"
	"github.com/hyperd/hyperd/sdk"
)

// brokenDriver is a plugin binary that is not a plugin at all: it prints
// garbage where the handshake belongs and exits.
const brokenDriver = "#!/bin/sh\necho 'this is not a handshake'\nexit 3\n"

// stopMargin is what a stop may take past its own timeout: the driver's
// quit-then-kill ladder and a reap.
const stopMargin = 8 * time.Second

func itoa(n int) string { return strconv.Itoa(n) }

func runGuest(d *daemon, driver, name, kernel, initrd string) string {
	d.t.Helper()
	return runGuestCmdline(d, driver, name, kernel, initrd, testguest.Cmdline)
}

// runGuestCmdline is runGuest with the guest's kernel command line, which
// differs per driver (driverCase.guestCmdline).
func runGuestCmdline(d *daemon, driver, name, kernel, initrd, cmdline string) string {
	d.t.Helper()
	out := d.mustCtl("run", "--name", name, "--driver", driver, "--memory", "256M", "--cpus", "1",
		"--kernel", kernel, "--initrd", initrd, "--cmdline", cmdline)
	id := strings.TrimSpace(out)
	if id == "" || strings.ContainsAny(id, " \n") {
		d.t.Fatalf("run printed %q, want the vm id alone", out)
	}
	return id
}

type driverView struct {
	Name            string            `json:"name"`
	Healthy         bool              `json:"healthy"`
	Error           string            `json:"error"`
	Version         string            `json:"version"`
	ContractVersion int               `json:"contract_version"`
	Capabilities    []string          `json:"capabilities"`
	Attributes      map[string]string `json:"attributes"`
}

func (d *daemon) drivers() map[string]driverView {
	d.t.Helper()
	var list struct {
		Drivers []driverView `json:"drivers"`
	}
	out := d.mustCtl("drivers", "-o", "json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		d.t.Fatalf("drivers -o json: %v\n%s", err, out)
	}
	m := make(map[string]driverView)
	for _, dv := range list.Drivers {
		m[dv.Name] = dv
	}
	return m
}

// TestDiscovery: hyperd finds the QEMU driver healthy and lists a broken
// binary with its reason, without letting it stop the others.
func TestDiscovery(t *testing.T) {
	needQEMU(t)
	d := newDaemon(t, map[string]string{"broken": brokenDriver})
	d.start()
	drivers := d.drivers()

	qemu, ok := drivers["qemu"]
	if !ok {
		t.Fatalf("qemu driver not listed: %v", drivers)
	}
	if !qemu.Healthy || qemu.Version == "" || qemu.ContractVersion != sdk.ContractVersion {
		t.Fatalf("qemu driver: %+v, want healthy with a version and contract %d", qemu, sdk.ContractVersion)
	}
	if acc := qemu.Attributes["accelerator"]; acc != "tcg" && acc != "kvm" {
		t.Fatalf("qemu accelerator %q, want tcg or kvm", acc)
	}
	for _, c := range []string{"pause", "graceful_shutdown", "recover"} {
		if !slices.Contains(qemu.Capabilities, c) {
			t.Errorf("qemu capabilities %v lack %s", qemu.Capabilities, c)
		}
	}
	broken, ok := drivers["broken"]
	if !ok {
		t.Fatalf("broken driver not listed: %v", drivers)
	}
	if broken.Healthy || broken.Error == "" {
		t.Fatalf("broken driver: %+v, want unhealthy with a reason", broken)
	}
	human := d.mustCtl("drivers")
	for _, want := range []string{"qemu", "broken", qemu.Attributes["accelerator"]} {
		if !strings.Contains(human, want) {
			t.Errorf("hyperctl drivers lacks %q:\n%s", want, human)
		}
	}
	d.term()
}

// TestLifecycle is the foundation's proof, for every driver: a real guest
// boots and prints its line, pauses and resumes, stops gracefully; a
// stubborn guest's stop escalates to a kill in time; bad specs store
// nothing; everything is removed and nothing is left running.
func TestLifecycle(t *testing.T) {
	for _, dc := range driverCases {
		t.Run(dc.name, func(t *testing.T) {
			dc.need(t)
			testLifecycle(t, dc)
		})
	}
}

func testLifecycle(t *testing.T, dc driverCase) {
	g := testguest.Build(t)
	d := newDaemon(t, nil)
	d.start()
	if dv := d.drivers()[dc.name]; !dv.Healthy {
		t.Fatalf("driver %s not healthy: %+v", dc.name, dv)
	}

	t.Run("boot pause resume graceful stop", func(t *testing.T) {
		id := runGuestCmdline(d, dc.name, "gentle", g.Kernel, g.Initrd, dc.guestCmdline())
		d.waitConsole(id, testguest.ReadyLine, dc.bootTimeout())
		v := d.inspect(id)
		if v.State != "running" || !dc.running(v) {
			t.Fatalf("after boot: %+v, want running with a live pid or domain", v)
		}

		d.mustCtl("pause", id)
		if v := d.inspect(id); v.State != "paused" {
			t.Fatalf("after pause: %+v", v)
		}
		d.mustCtl("resume", id)
		if v := d.inspect(id); v.State != "running" {
			t.Fatalf("after resume: %+v", v)
		}

		d.mustCtl("stop", "--timeout", "60s", id)
		after := d.inspect(id)
		if after.State != "stopped" {
			t.Fatalf("after stop: %+v, want stopped", after)
		}
		if strings.Contains(after.Reason, "forced") || strings.Contains(after.Reason, "killed") {
			t.Fatalf("graceful stop was forced: %q", after.Reason)
		}
		if dc.running(v) {
			t.Fatalf("vm %s (pid %d) still runs after stop", id, v.pid())
		}
		d.mustCtl("rm", id)
	})

	t.Run("stop escalates to kill", func(t *testing.T) {
		id := runGuestCmdline(d, dc.name, "stubborn", g.Kernel, g.StubbornInitrd, dc.guestCmdline())
		d.waitConsole(id, testguest.ReadyLine+" stubborn", dc.bootTimeout())
		v := d.inspect(id)

		const timeout = 3 * time.Second
		start := time.Now()
		d.mustCtl("stop", "--timeout", timeout.String(), id)
		took := time.Since(start)
		if took < timeout {
			t.Fatalf("stop returned after %s, before its %s timeout: the stubborn guest cannot have powered off", took, timeout)
		}
		if margin := dc.forcedStopMargin(); took > timeout+margin {
			t.Fatalf("stop took %s, past its %s timeout plus %s", took, timeout, margin)
		}
		after := d.inspect(id)
		if after.State != "stopped" || dc.running(v) {
			t.Fatalf("after forced stop: %+v, pid %d, still runs %v", after, v.pid(), dc.running(v))
		}
		if !strings.Contains(after.Reason, "forced off") {
			t.Fatalf("reason %q does not say the stop was forced", after.Reason)
		}
		d.mustCtl("rm", id)
	})

	t.Run("bad specs store nothing", func(t *testing.T) {
		comma := filepath.Join(t.TempDir(), "vmlinuz,if=none")
		if err := os.WriteFile(comma, []byte("not a kernel"), 0o644); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name  string
			args  []string
			field string
		}{
			{"missing kernel", []string{"--kernel", "/nonexistent/vmlinuz"}, "kernel"},
			{"zero memory", []string{"--kernel", g.Kernel, "--memory", "0"}, "memory"},
			{"comma in kernel path", []string{"--kernel", comma}, "kernel"},
			{"comma in initrd path", []string{"--kernel", g.Kernel, "--initrd", comma}, "initrd"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				args := append([]string{"run", "--name", "bad", "--driver", dc.name}, tt.args...)
				out, errOut, err := d.ctl(args...)
				if err == nil {
					t.Fatalf("run succeeded with a bad spec: %s", out)
				}
				if !strings.HasPrefix(errOut, "hyperctl: ") || !strings.Contains(errOut, tt.field) {
					t.Fatalf("stderr %q does not name the field %s", errOut, tt.field)
				}
				if ids := strings.TrimSpace(d.mustCtl("ls", "-q")); ids != "" {
					t.Fatalf("a bad spec left vms stored: %s", ids)
				}
			})
		}
	})

	if ids := strings.TrimSpace(d.mustCtl("ls", "-q")); ids != "" {
		t.Fatalf("vms left after remove: %s", ids)
	}
	d.term()
	if left := dc.leftovers(d); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// TestDaemonRestartLeavesVMsRunning: SIGTERM stops hyperd cleanly, the
// guest keeps running, and the next hyperd recovers and controls it.
func TestDaemonRestartLeavesVMsRunning(t *testing.T) {
	for _, dc := range driverCases {
		t.Run(dc.name, func(t *testing.T) {
			dc.need(t)
			g := testguest.Build(t)
			d := newDaemon(t, nil)
			d.start()

			id := runGuestCmdline(d, dc.name, "survivor", g.Kernel, g.Initrd, dc.guestCmdline())
			d.waitConsole(id, testguest.ReadyLine, dc.bootTimeout())
			before := d.inspect(id)
			pid := before.pid()

			d.term()
			if !dc.running(before) {
				t.Fatalf("vm %s (pid %d) died with the daemon", id, pid)
			}

			d.start()
			v := d.inspect(id)
			if v.State != "running" || v.pid() != pid {
				t.Fatalf("after restart: %+v, want running with pid %d", v, pid)
			}
			d.mustCtl("stop", "--timeout", "60s", id)
			if v := d.inspect(id); v.State != "stopped" || dc.running(before) {
				t.Fatalf("after stop: %+v, still runs %v", v, dc.running(before))
			}
			d.mustCtl("rm", id)
			d.term()
			if left := dc.leftovers(d); len(left) != 0 {
				t.Fatalf("left behind: %v", left)
			}
		})
	}
}

// TestStartPaused: a VM run with start_paused is reported paused with
// its process up, and boots once resumed.
func TestStartPaused(t *testing.T) {
	g := testguest.Build(t)
	for _, dc := range driverCases {
		if dc.name != "qemu" && dc.name != "libvirt" {
			continue // the only drivers that declare the option
		}
		t.Run(dc.name, func(t *testing.T) {
			dc.need(t)
			d := newDaemon(t, nil)
			d.start()
			out := d.mustCtl("run", "--name", "held", "--driver", dc.name, "--memory", "256M",
				"--kernel", g.Kernel, "--initrd", g.Initrd, "--cmdline", dc.guestCmdline(),
				"--opt", "start_paused=true")
			id := strings.TrimSpace(out)
			v := d.inspect(id)
			if v.State != "paused" || !alive(v.pid()) {
				t.Fatalf("after a paused start: %+v, want paused with a live pid", v)
			}
			d.mustCtl("resume", id)
			d.waitConsole(id, testguest.ReadyLine, dc.bootTimeout())
			d.mustCtl("kill", id)
			d.mustCtl("rm", id)
			d.term()
			if left := dc.leftovers(d); len(left) != 0 {
				t.Fatalf("left behind: %v", left)
			}
		})
	}
}
