package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hyperd/hyperd/internal/testguest"
)

// liveQEMUs checks that every QEMU under the daemon's state dir belongs to
// exactly one VM hyperd lists as live with that pid, and returns them.
func liveQEMUs(t *testing.T, d *daemon, dc driverCase) map[int]string {
	t.Helper()
	owners := map[int]string{}
	for _, id := range strings.Fields(d.mustCtl("ls", "-q")) {
		v := d.inspect(id)
		if v.pid() == 0 {
			continue
		}
		if other, dup := owners[v.pid()]; dup {
			t.Fatalf("pid %d adopted twice: vms %s and %s", v.pid(), other, id)
		}
		owners[v.pid()] = id
	}
	for _, pid := range qemuPIDs(d.stateDir) {
		if _, ok := owners[pid]; !ok && alive(pid) {
			t.Fatalf("qemu pid %d runs but no vm owns it (leaked); owners %v", pid, owners)
		}
	}
	return owners
}

func removeAll(t *testing.T, d *daemon, dc driverCase) {
	t.Helper()
	for _, id := range strings.Fields(d.mustCtl("ls", "-q")) {
		d.mustCtl("kill", id)
		d.mustCtl("rm", id)
	}
	d.term()
	if left := dc.leftovers(d); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// forEachDriver runs body as a subtest for every driver case whose
// backend this host has.
func forEachDriver(t *testing.T, body func(t *testing.T, dc driverCase)) {
	for _, dc := range driverCases {
		t.Run(dc.name, func(t *testing.T) {
			dc.need(t)
			body(t, dc)
		})
	}
}

// TestDaemonKilledMidOperation kills hyperd with SIGKILL while one VM
// runs, one is starting and one is stopping, then checks the next hyperd
// finds each in a correct state, with no QEMU leaked or adopted twice.
func TestDaemonKilledMidOperation(t *testing.T) {
	forEachDriver(t, testDaemonKilledMidOperation)
}

func testDaemonKilledMidOperation(t *testing.T, dc driverCase) {
	g := testguest.Build(t)
	d := newDaemon(t, nil)
	d.start()

	running := runGuest(d, dc.name, "running", g.Kernel, g.Initrd)
	stopping := runGuest(d, dc.name, "stopping", g.Kernel, g.StubbornInitrd)
	d.waitConsole(running, testguest.ReadyLine, 90*time.Second)
	d.waitConsole(stopping, testguest.ReadyLine, 90*time.Second)
	runningPID := d.inspect(running).pid()

	// A stop that cannot finish by itself (the stubborn guest), and a
	// start, both in flight when the daemon dies.
	stopCmd := exec.Command(filepath.Join(d.bin, "hyperctl"), "--socket", d.socket, "stop", "--timeout", "60s", stopping)
	if err := stopCmd.Start(); err != nil {
		t.Fatal(err)
	}
	startCmd := exec.Command(filepath.Join(d.bin, "hyperctl"), "--socket", d.socket, "run", "--name", "starting",
		"--driver", dc.name, "--kernel", g.Kernel, "--initrd", g.Initrd, "--cmdline", testguest.Cmdline)
	if err := startCmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "stop and start in flight", func() bool {
		out, _, _ := d.ctl("ls")
		return strings.Contains(out, "stopping") && strings.Contains(out, "starting")
	})
	d.kill9()
	_ = stopCmd.Wait()  // fails: its daemon died
	_ = startCmd.Wait() // likewise

	if !alive(runningPID) {
		t.Fatalf("the running vm's qemu %d died with the daemon", runningPID)
	}
	d.start()

	// The running VM is adopted as it was.
	if v := d.inspect(running); v.State != "running" || v.pid() != runningPID {
		t.Fatalf("running vm after restart: %+v, want running with pid %d", v, runningPID)
	}
	// The interrupted stop is finished by force: its caller is gone.
	eventually(t, 30*time.Second, "interrupted stop finished", func() bool {
		return d.inspect(stopping).State == "stopped"
	})
	// The interrupted start is either running (QEMU came up) or not; never
	// stuck in starting, and its process, if any, is owned.
	ids := strings.Fields(d.mustCtl("ls", "-q"))
	if len(ids) != 3 {
		t.Fatalf("want 3 vms after restart, got %v", ids)
	}
	for _, id := range ids {
		if id == running || id == stopping {
			continue
		}
		eventually(t, 30*time.Second, "interrupted start settled", func() bool {
			st := d.inspect(id).State
			return st == "running" || st == "stopped" || st == "failed"
		})
	}
	liveQEMUs(t, d, dc)
	if _, _, err := d.ctl("stop", "--timeout", "30s", running); err != nil {
		t.Fatalf("stop a vm adopted after a crash: %v", err)
	}
	removeAll(t, d, dc)
}

// TestDriverKilled kills the driver process: hyperd notices, restarts it,
// and the new process recovers the VMs, which stay controllable. A QEMU
// that died while no driver watched is recorded as exited.
func TestDriverKilled(t *testing.T) {
	forEachDriver(t, testDriverKilled)
}

func testDriverKilled(t *testing.T, dc driverCase) {
	g := testguest.Build(t)
	d := newDaemon(t, nil)
	d.start()

	keep := runGuest(d, dc.name, "keep", g.Kernel, g.Initrd)
	lose := runGuest(d, dc.name, "lose", g.Kernel, g.Initrd)
	d.waitConsole(keep, testguest.ReadyLine, 90*time.Second)
	d.waitConsole(lose, testguest.ReadyLine, 90*time.Second)
	keepPID, losePID := d.inspect(keep).pid(), d.inspect(lose).pid()

	old := d.driverPID(dc.name)
	if old == 0 {
		t.Fatalf("no %s driver process found", dc.name)
	}
	// The driver and one guest die together: no driver sees that exit.
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(losePID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	eventually(t, 30*time.Second, "driver restarted", func() bool {
		p := d.driverPID(dc.name)
		return p != 0 && p != old && d.drivers()[dc.name].Healthy
	})
	eventually(t, 30*time.Second, "lost guest recorded as stopped", func() bool {
		return d.inspect(lose).State == "stopped"
	})
	if v := d.inspect(keep); v.State != "running" || v.pid() != keepPID {
		t.Fatalf("kept vm after driver restart: %+v, want running with pid %d", v, keepPID)
	}
	if _, _, err := d.ctl("pause", keep); err != nil {
		t.Fatalf("pause through the restarted driver: %v", err)
	}
	if _, _, err := d.ctl("stop", "--timeout", "30s", keep); err != nil {
		t.Fatalf("stop through the restarted driver: %v", err)
	}
	if v := d.inspect(keep); v.State != "stopped" || alive(keepPID) {
		t.Fatalf("after stop: %+v", v)
	}
	removeAll(t, d, dc)
}

// TestDriverSwap replaces the driver binary while two VMs run and reloads
// it: a new process takes over both VMs, which never stop.
func TestDriverSwap(t *testing.T) {
	forEachDriver(t, testDriverSwap)
}

func testDriverSwap(t *testing.T, dc driverCase) {
	g := testguest.Build(t)
	d := newDaemon(t, nil)
	// A real file, not the shared symlink, so the swap replaces only ours.
	bin := filepath.Join(d.pluginDir, "hyperd-driver-"+dc.name)
	src, err := os.ReadFile(filepath.Join(d.bin, "plugins", "hyperd-driver-"+dc.name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	d.start()

	a := runGuest(d, dc.name, "a", g.Kernel, g.Initrd)
	b := runGuest(d, dc.name, "b", g.Kernel, g.Initrd)
	d.waitConsole(a, testguest.ReadyLine, 90*time.Second)
	d.waitConsole(b, testguest.ReadyLine, 90*time.Second)
	pids := []int{d.inspect(a).pid(), d.inspect(b).pid()}
	old := d.driverPID(dc.name)

	// Swap the binary the way an operator would: a new file renamed over
	// the old one.
	tmp := bin + ".new"
	if err := os.WriteFile(tmp, src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	d.mustCtl("drivers", "reload", dc.name)

	now := d.driverPID(dc.name)
	if now == 0 || now == old || alive(old) {
		t.Fatalf("driver pid before %d, after %d (old alive %v): want a new process and the old one gone", old, now, alive(old))
	}
	for i, id := range []string{a, b} {
		if v := d.inspect(id); v.State != "running" || v.pid() != pids[i] || !alive(pids[i]) {
			t.Fatalf("vm %s after swap: %+v, want running with pid %d", id, v, pids[i])
		}
	}
	for _, id := range []string{a, b} {
		if _, _, err := d.ctl("stop", "--timeout", "30s", id); err != nil {
			t.Fatalf("stop through the swapped driver: %v", err)
		}
	}
	if slices.ContainsFunc(pids, alive) {
		t.Fatalf("qemu still runs after stop: %v", pids)
	}

	// A broken binary is refused and the running driver stays.
	if err := os.WriteFile(tmp, []byte(brokenDriver), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := d.ctl("drivers", "reload", dc.name); err == nil || !strings.Contains(errOut, "old process stays") {
		t.Fatalf("reload of a broken binary: err %v, stderr %q", err, errOut)
	}
	if !d.drivers()[dc.name].Healthy || d.driverPID(dc.name) != now {
		t.Fatal("a failed reload disturbed the running driver")
	}
	removeAll(t, d, dc)
}

// TestQEMUKilled: a QEMU killed with SIGKILL moves its VM to stopped, with
// the reason, within a second.
func TestQEMUKilled(t *testing.T) {
	forEachDriver(t, testQEMUKilled)
}

func testQEMUKilled(t *testing.T, dc driverCase) {
	g := testguest.Build(t)
	d := newDaemon(t, nil)
	d.start()

	id := runGuest(d, dc.name, "victim", g.Kernel, g.Initrd)
	d.waitConsole(id, testguest.ReadyLine, 90*time.Second)
	pid := d.inspect(id).pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	eventually(t, 5*time.Second, "vm stopped after its qemu was killed", func() bool {
		return d.inspect(id).State == "stopped"
	})
	// The record's own time says when the exit was stored, whatever the
	// polling above added.
	if took := d.inspect(id).updatedAt().Sub(killed); took > time.Second {
		t.Errorf("exit recorded %s after the kill, want within a second", took)
	}
	if v := d.inspect(id); !strings.Contains(v.Reason, "signal 9") && !strings.Contains(v.Reason, "killed") {
		t.Fatalf("reason %q does not say the process was killed", v.Reason)
	}
	removeAll(t, d, dc)
}
