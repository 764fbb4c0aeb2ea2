package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hyperd/hyperd/internal/testguest"
)

// libvirtdPIDFile is where `libvirtd -d` run as root records its pid.
const libvirtdPIDFile = "/run/libvirtd.pid"

// TestLibvirtTouchesOnlyItsDomains: while a VM runs, virsh shows its
// domain and `hyperctl rm` removes it; domains made by hand with virsh,
// even named like hyperd's, are never listed, stopped or removed.
func TestLibvirtTouchesOnlyItsDomains(t *testing.T) {
	needLibvirt(t)
	g := testguest.Build(t)

	// Two hand-made domains with hyperd's name prefix but no tag: one
	// defined and never started, one transient and paused before its
	// firmware runs.
	tag := strconv.Itoa(os.Getpid())
	defined, paused := "hyperd-handmade-"+tag+"-defined", "hyperd-handmade-"+tag+"-paused"
	dir := t.TempDir()
	for _, name := range []string{defined, paused} {
		x := fmt.Sprintf(`<domain type='qemu'><name>%s</name><memory unit='MiB'>32</memory>`+
			`<os><type arch='x86_64'>hvm</type></os><devices><memballoon model='none'/></devices></domain>`, name)
		if err := os.WriteFile(filepath.Join(dir, name+".xml"), []byte(x), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := virsh("define", filepath.Join(dir, defined+".xml")); err != nil {
		t.Fatalf("virsh define: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = virsh("undefine", defined) }) // ours, made above
	if out, err := virsh("create", "--paused", filepath.Join(dir, paused+".xml")); err != nil {
		t.Fatalf("virsh create --paused: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = virsh("destroy", paused) }) // ours, made above

	d := newDaemon(t, nil)
	d.start()
	if ids := strings.TrimSpace(d.mustCtl("ls", "-q")); ids != "" {
		t.Fatalf("hyperctl ls lists vms of a fresh daemon: %s", ids)
	}

	id := runGuest(d, "libvirt", "visible", g.Kernel, g.Initrd)
	d.waitConsole(id, testguest.ReadyLine, 90*time.Second)
	if names := domainNames(t); !slices.Contains(names, "hyperd-"+id) {
		t.Fatalf("virsh list --all lacks hyperd-%s while it runs: %v", id, names)
	}
	if ids := strings.Fields(d.mustCtl("ls", "-q")); !slices.Equal(ids, []string{id}) {
		t.Fatalf("hyperctl ls -q = %v, want only %s", ids, id)
	}
	d.mustCtl("rm", "--force", id)
	if names := domainNames(t); slices.Contains(names, "hyperd-"+id) {
		t.Fatalf("domain hyperd-%s still listed after hyperctl rm: %v", id, names)
	}
	d.term()

	for name, want := range map[string]string{defined: "shut off", paused: "paused"} {
		out, err := virsh("domstate", name)
		if err != nil || out != want {
			t.Errorf("hand-made domain %s: state %q, %v; want %q", name, out, err, want)
		}
	}
	if left := libvirtLeftovers(d); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

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

// domainNames lists every domain libvirt knows, running or defined.
func domainNames(t *testing.T) []string {
	t.Helper()
	out, err := virsh("list", "--all", "--name")
	if err != nil {
		t.Fatalf("virsh list --all: %v: %s", err, out)
	}
	return strings.Fields(out)
}
