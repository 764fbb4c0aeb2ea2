//go:build disruptive

// Tests that stop a shared system service. go test ./... runs packages in
// parallel, and other packages' tests need libvirtd meanwhile, so these
// build only with -tags disruptive: make test runs them on their own,
// after everything else.

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// libvirtdPIDFile is where `libvirtd -d` run as root records its pid.
const libvirtdPIDFile = "/run/libvirtd.pid"

// TestLibvirtdOutageMarksDriverUnhealthy: stopping libvirtd while hyperd
// runs turns the libvirt driver unhealthy in `hyperctl drivers`, and
// starting it again brings the driver back without restarting hyperd.
// libvirtd is running again when the test ends, whatever happens.
func TestLibvirtdOutageMarksDriverUnhealthy(t *testing.T) {
	needLibvirt(t)
	t.Cleanup(func() {
		if err := ensureLibvirtd(); err != nil {
			t.Errorf("restore libvirtd: %v", err)
		}
	})
	d := newDaemon(t, nil)
	d.start()
	if dv := d.drivers()["libvirt"]; !dv.Healthy {
		t.Fatalf("libvirt driver not healthy at start: %+v", dv)
	}

	stopLibvirtd(t)
	dv := waitDriverHealth(d, "libvirt", false, 15*time.Second)
	t.Logf("with libvirtd stopped: %+v", dv)

	if err := ensureLibvirtd(); err != nil {
		t.Fatal(err)
	}
	dv = waitDriverHealth(d, "libvirt", true, 15*time.Second)
	t.Logf("with libvirtd back: %+v", dv)
	d.term()
}

// waitDriverHealth polls `hyperctl drivers` until the driver's health is
// healthy, failing the test past within.
func waitDriverHealth(d *daemon, name string, healthy bool, within time.Duration) driverView {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for {
		dv, ok := d.drivers()[name]
		if ok && dv.Healthy == healthy {
			return dv
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("driver %s not healthy=%v within %s: %+v", name, healthy, within, dv)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// stopLibvirtd ends the libvirtd named by its pid file and waits until
// it is gone. Running domains survive it; this test runs none.
func stopLibvirtd(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(libvirtdPIDFile)
	if err != nil {
		t.Fatalf("libvirtd pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("libvirtd pid file %s: %v", libvirtdPIDFile, err)
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "libvirtd" {
		t.Fatalf("pid %d from %s is not libvirtd (%q, %v)", pid, libvirtdPIDFile, comm, err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stop libvirtd: %v", err)
	}
	for deadline := time.Now().Add(15 * time.Second); alive(pid); {
		if time.Now().After(deadline) {
			t.Fatalf("libvirtd pid %d did not exit within 15s of SIGTERM", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ensureLibvirtd starts libvirtd when it does not answer and waits until
// it does.
func ensureLibvirtd() error {
	if _, err := virsh("version"); err == nil {
		return nil
	}
	if out, err := exec.Command("libvirtd", "-d").CombinedOutput(); err != nil {
		return fmt.Errorf("libvirtd -d: %v: %s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := virsh("version")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("libvirtd started but does not answer within 20s: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
