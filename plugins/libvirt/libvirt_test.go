package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hyperd/hyperd/internal/testguest"
	"github.com/hyperd/hyperd/sdk"
)

// bootWait bounds a TCG boot to the ready line; generous for -race on a
// loaded two-core machine.
const bootWait = 90 * time.Second

// needLibvirtd skips when libvirt is not installed and fails, saying how
// to start it, when it is installed but not running: CI starts it.
func needLibvirtd(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("libvirtd"); err != nil {
		t.Skip("libvirtd not found: install Debian's libvirt-daemon-system (make deps)")
	}
	if out, err := virsh("version"); err != nil {
		t.Fatalf("libvirtd does not answer at %s (%v: %s): start it with `virtlogd -d && libvirtd -d` (.ci/run does)",
			DefaultURI, err, out)
	}
}

func virsh(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "virsh", append([]string{"-c", DefaultURI}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// domainExists reports whether libvirt knows a domain by this name or
// UUID, running or defined.
func domainExists(t *testing.T, nameOrUUID string) bool {
	t.Helper()
	out, err := virsh("list", "--all", "--uuid", "--name")
	if err != nil {
		t.Fatalf("virsh list: %v: %s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		for _, f := range strings.Fields(line) {
			if f == nameOrUUID {
				return true
			}
		}
	}
	return false
}

// TestRealLibvirt drives the real guest through the Driver in-process,
// against the host's libvirtd.
func TestRealLibvirt(t *testing.T) {
	if testing.Short() {
		t.Skip("boots guests under libvirt; -short runs unit tests only")
	}
	needLibvirtd(t)
	guest := reachableGuest(t, testguest.Build(t))
	root := t.TempDir()

	log := hclog.New(&hclog.LoggerOptions{Name: "libvirt", Level: hclog.Debug, Output: testWriter{t}})
	d := New(log, WithURI(DefaultURI))
	t.Cleanup(d.Close)

	t.Run("fingerprint", func(t *testing.T) {
		fp, err := d.Fingerprint(t.Context())
		if err != nil || fp.Health != sdk.HealthHealthy {
			t.Fatalf("Fingerprint = %+v, %v", fp, err)
		}
		for _, k := range []string{"uri", "libvirt_version", "accelerator", "domain_type"} {
			if fp.Attributes[k] == "" {
				t.Errorf("fingerprint lacks attribute %s: %+v", k, fp)
			}
		}
		t.Logf("fingerprint: %s", fp.Description)
	})

	t.Run("lifecycle", func(t *testing.T) {
		rec := record(t, d)
		vm := create(t, d, root, "life", guest.Kernel, guest.Initrd)
		vm.wantState(t, sdk.RunStateCreated)
		if domainExists(t, vm.domain) {
			t.Fatalf("domain %s exists before Start", vm.domain)
		}
		vm.start(t)
		vm.waitReady(t)
		if !domainExists(t, vm.domain) {
			t.Fatalf("virsh list --all lacks %s while it runs", vm.domain)
		}
		st := vm.wantState(t, sdk.RunStateRunning)
		if st.PID == 0 || st.ConsoleLog != filepath.Join(vm.dir, consoleLogName) {
			t.Fatalf("Status = %+v, want a pid and the console log", st)
		}

		if err := d.Pause(t.Context(), vm.id, vm.handle()); err != nil {
			t.Fatalf("Pause: %v", err)
		}
		rec.wait(t, vm.id, sdk.EventPaused)
		vm.wantState(t, sdk.RunStatePaused)
		if err := d.Resume(t.Context(), vm.id, vm.handle()); err != nil {
			t.Fatalf("Resume: %v", err)
		}
		rec.wait(t, vm.id, sdk.EventResumed)
		vm.wantState(t, sdk.RunStateRunning)
		if err := d.Resume(t.Context(), vm.id, vm.handle()); !errors.Is(err, sdk.ErrWrongState) {
			t.Errorf("Resume of a running vm = %v, want ErrWrongState", err)
		}

		forced, err := d.Stop(t.Context(), vm.id, vm.handle(), 30*time.Second)
		if err != nil || forced {
			t.Fatalf("Stop = %v, %v; want not forced", forced, err)
		}
		if e := rec.wait(t, vm.id, sdk.EventExited); e.Reason != "shutdown" {
			t.Errorf("exit reason %q, want shutdown", e.Reason)
		}
		st = vm.wantState(t, sdk.RunStateStopped)
		if st.ExitReason != "shutdown" {
			t.Errorf("status exit reason %q", st.ExitReason)
		}
		if alive(int(vm.pid)) {
			t.Errorf("qemu pid %d still runs", vm.pid)
		}
		if domainExists(t, vm.domain) {
			t.Errorf("domain %s still defined after the guest powered off", vm.domain)
		}

		// Stopping, killing and pausing a stopped VM.
		if forced, err := d.Stop(t.Context(), vm.id, vm.handle(), time.Second); err != nil || forced {
			t.Errorf("second Stop = %v, %v", forced, err)
		}
		if err := d.Kill(t.Context(), vm.id, vm.handle()); err != nil {
			t.Errorf("Kill of a stopped vm: %v", err)
		}
		if err := d.Pause(t.Context(), vm.id, vm.handle()); !errors.Is(err, sdk.ErrWrongState) {
			t.Errorf("Pause of a stopped vm = %v, want ErrWrongState", err)
		}

		// It starts again, with the same domain identity.
		vm.start(t)
		vm.waitReady(t)
		if err := d.Destroy(t.Context(), vm.id, vm.handle()); err != nil {
			t.Errorf("Destroy: %v", err)
		}
		if domainExists(t, vm.domain) {
			t.Errorf("domain %s left after Destroy", vm.domain)
		}
		if _, err := os.Stat(filepath.Join(vm.dir, consoleLogName)); err != nil {
			t.Errorf("console.log removed by Destroy: %v", err)
		}
	})

	t.Run("stubborn guest is forced", func(t *testing.T) {
		vm := create(t, d, root, "stubborn", guest.Kernel, guest.StubbornInitrd)
		vm.start(t)
		vm.waitReady(t)
		begin := time.Now()
		forced, err := d.Stop(t.Context(), vm.id, vm.handle(), 3*time.Second)
		took := time.Since(begin)
		if err != nil || !forced {
			t.Fatalf("Stop = %v, %v; want forced", forced, err)
		}
		if took < 3*time.Second || took > 3*time.Second+10*time.Second {
			t.Errorf("Stop took %s for a 3s timeout", took)
		}
		vm.wantState(t, sdk.RunStateStopped)
		if alive(int(vm.pid)) || domainExists(t, vm.domain) {
			t.Errorf("stubborn domain survives its forced stop")
		}
	})

	t.Run("kill", func(t *testing.T) {
		rec := record(t, d)
		vm := create(t, d, root, "kill", guest.Kernel, guest.Initrd)
		vm.start(t)
		if err := d.Kill(t.Context(), vm.id, vm.handle()); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		if e := rec.wait(t, vm.id, sdk.EventExited); e.Reason != "destroyed" {
			t.Errorf("exit reason %q, want destroyed", e.Reason)
		}
		if alive(int(vm.pid)) || domainExists(t, vm.domain) {
			t.Errorf("killed domain survives")
		}
	})

	t.Run("recover from a new driver", func(t *testing.T) {
		d1 := New(log.Named("first"))
		vm := create(t, d1, root, "recover", guest.Kernel, guest.Initrd)
		vm.start(t)
		vm.waitReady(t)
		// The first driver process "dies": its connection closes.
		d1.Close()

		d2 := New(log.Named("second"))
		t.Cleanup(d2.Close)
		rec := record(t, d2)
		vm.d = d2
		h, st, err := d2.Recover(t.Context(), vm.id, vm.handle())
		if err != nil {
			t.Fatalf("Recover: %v", err)
		}
		if st.State != sdk.RunStateRunning || st.PID != vm.pid {
			t.Fatalf("Recover status = %+v, want running with pid %d", st, vm.pid)
		}
		vm.setHandle(h)
		if err := d2.Pause(t.Context(), vm.id, vm.handle()); err != nil {
			t.Fatalf("Pause after Recover: %v", err)
		}
		rec.wait(t, vm.id, sdk.EventPaused)
		if err := d2.Resume(t.Context(), vm.id, vm.handle()); err != nil {
			t.Fatalf("Resume after Recover: %v", err)
		}
		forced, err := d2.Stop(t.Context(), vm.id, vm.handle(), 30*time.Second)
		if err != nil || forced {
			t.Fatalf("Stop = %v, %v; want not forced", forced, err)
		}
		if e := rec.wait(t, vm.id, sdk.EventExited); e.Reason != "shutdown" {
			t.Errorf("exit reason %q, want shutdown", e.Reason)
		}

		// A third driver finds it gone: stopped, with a reason.
		d3 := New(nil)
		t.Cleanup(d3.Close)
		_, st, err = d3.Recover(t.Context(), vm.id, vm.handle())
		if err != nil || st.State != sdk.RunStateStopped || st.ExitReason != reasonGone {
			t.Errorf("Recover of a gone vm = %+v, %v", st, err)
		}
		if err := d3.Destroy(t.Context(), vm.id, vm.handle()); err != nil {
			t.Errorf("Destroy of a gone vm: %v", err)
		}
	})

	t.Run("a domain without the tag is left alone", func(t *testing.T) {
		vm := create(t, d, root, "foreign", guest.Kernel, guest.Initrd)
		// By hand, a domain holding this VM's name and UUID but no tag.
		xml := fmt.Sprintf(`<domain type='qemu'><name>%s</name><uuid>%s</uuid><memory unit='MiB'>32</memory>`+
			`<os><type arch='x86_64'>hvm</type></os></domain>`, vm.domain, vm.uuid)
		path := filepath.Join(t.TempDir(), "foreign.xml")
		if err := os.WriteFile(path, []byte(xml), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := virsh("define", path); err != nil {
			t.Fatalf("virsh define: %v: %s", err, out)
		}
		t.Cleanup(func() {
			if out, err := virsh("undefine", vm.uuid); err != nil {
				t.Errorf("undefine the hand-made domain: %v: %s", err, out)
			}
		})
		for name, call := range map[string]func() error{
			"Status":  func() error { _, err := d.Status(t.Context(), vm.id, vm.handle()); return err },
			"Start":   func() error { _, err := d.Start(t.Context(), vm.id, vm.handle()); return err },
			"Kill":    func() error { return d.Kill(t.Context(), vm.id, vm.handle()) },
			"Destroy": func() error { return d.Destroy(t.Context(), vm.id, vm.handle()) },
		} {
			if err := call(); !errors.Is(err, sdk.ErrWrongState) {
				t.Errorf("%s on an untagged domain = %v, want ErrWrongState", name, err)
			}
		}
		if !domainExists(t, vm.uuid) {
			t.Fatal("the hand-made domain is gone")
		}
	})
}

// reachableGuest copies the guest where libvirt's QEMU user can read
// it: the test guest cache is private to root, and libvirt's DAC driver
// chowns the files themselves but not their directories.
func reachableGuest(t *testing.T, g testguest.Paths) testguest.Paths {
	t.Helper()
	dir, err := os.MkdirTemp("", "hyperd-libvirt-guest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := testguest.Paths{
		Kernel:         filepath.Join(dir, "vmlinuz"),
		Initrd:         filepath.Join(dir, "initrd.img"),
		StubbornInitrd: filepath.Join(dir, "initrd-stubborn.img"),
	}
	for src, dst := range map[string]string{g.Kernel: out.Kernel, g.Initrd: out.Initrd, g.StubbornInitrd: out.StubbornInitrd} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// testVM is one VM under test; its cleanup destroys its domain, found by
// the UUID this test created it with.
type testVM struct {
	d      *Driver
	id     string
	dir    string
	domain string
	uuid   string
	pid    int64

	mu sync.Mutex
	h  sdk.Handle
}

func create(t *testing.T, d *Driver, root, name, kernel, initrd string) *testVM {
	t.Helper()
	// Like the daemon's: a directory only root may enter.
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("test-%s-%d", name, time.Now().UnixNano())
	h, err := d.Create(t.Context(), id, sdk.Spec{
		Name:      name,
		VCPUs:     1,
		MemoryMiB: 256,
		Kernel:    kernel,
		Initrd:    initrd,
		Cmdline:   testguest.Cmdline,
	}, dir)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	dh, err := decodeHandle(id, h)
	if err != nil {
		t.Fatal(err)
	}
	vm := &testVM{d: d, id: id, dir: dir, domain: dh.Domain, uuid: dh.UUID, h: h}
	t.Cleanup(func() { vm.cleanup(t) })
	return vm
}

func (vm *testVM) handle() sdk.Handle {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.h
}

func (vm *testVM) setHandle(h sdk.Handle) {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	vm.h = h
}

func (vm *testVM) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	h, err := vm.d.Start(ctx, vm.id, vm.handle())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	vm.setHandle(h)
	st := vm.wantState(t, sdk.RunStateRunning)
	vm.pid = st.PID
}

func (vm *testVM) waitReady(t *testing.T) {
	t.Helper()
	path := filepath.Join(vm.dir, consoleLogName)
	deadline := time.Now().Add(bootWait)
	for {
		b, _ := os.ReadFile(path) // empty until the guest writes
		if strings.Contains(string(b), testguest.ReadyLine) {
			// The guest prints its ready line only once acpid holds the
			// power button's input device, so a stop may follow at once.
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in console.log after %s:\n%s", testguest.ReadyLine, bootWait, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (vm *testVM) wantState(t *testing.T, want sdk.RunState) sdk.Status {
	t.Helper()
	st, err := vm.d.Status(t.Context(), vm.id, vm.handle())
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.State != want {
		t.Fatalf("Status = %+v, want %v", st, want)
	}
	return st
}

// cleanup destroys the test's domain if it still runs. Only a domain
// carrying this test's UUID and tag is touched.
func (vm *testVM) cleanup(t *testing.T) {
	out, err := virsh("metadata", vm.uuid, "--uri", metadataNS)
	if err != nil || !strings.Contains(out, vm.id) {
		return // gone, or not ours
	}
	if out, err := virsh("destroy", vm.uuid); err != nil {
		t.Errorf("cleanup: virsh destroy %s: %v: %s", vm.domain, err, out)
	}
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// recorder keeps every event a Driver emits during a test.
type recorder struct {
	mu     sync.Mutex
	events []sdk.Event
	more   chan struct{}
}

func record(t *testing.T, d *Driver) *recorder {
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := d.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{more: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range ch {
			r.mu.Lock()
			r.events = append(r.events, e)
			r.mu.Unlock()
			select {
			case r.more <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// wait returns the first event of type typ for vmID.
func (r *recorder) wait(t *testing.T, vmID string, typ sdk.EventType) sdk.Event {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		for _, e := range r.events {
			if e.VMID == vmID && e.Type == typ {
				r.mu.Unlock()
				return e
			}
		}
		seen := fmt.Sprint(r.events)
		r.mu.Unlock()
		select {
		case <-r.more:
		case <-timeout:
			t.Fatalf("no %s event for %s; saw %s", typ, vmID, seen)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
