package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hyperd/hyperd/internal/testguest"
	"github.com/hyperd/hyperd/sdk"
)

// bootWait bounds a TCG boot to the ready line; generous for -race on a
// loaded two-core machine.
const bootWait = 90 * time.Second

// TestRealQEMU drives the real guest through the Driver in-process.
func TestRealQEMU(t *testing.T) {
	if _, err := exec.LookPath(DefaultBinary); err != nil {
		t.Skipf("%s not found: install Debian's qemu-system-x86", DefaultBinary)
	}
	guest := testguest.Build(t)
	root := t.TempDir()
	// Registered first, so it runs after every VM's own cleanup.
	t.Cleanup(func() { checkNoQEMUUnder(t, root) })

	log := hclog.New(&hclog.LoggerOptions{Name: "qemu", Level: hclog.Debug, Output: testWriter{t}})
	d := New(log)
	t.Cleanup(d.Close)

	t.Run("fingerprint", func(t *testing.T) {
		fp, err := d.Fingerprint(t.Context())
		if err != nil || fp.Health != sdk.HealthHealthy {
			t.Fatalf("Fingerprint = %+v, %v", fp, err)
		}
		for _, k := range []string{"accelerator", "binary", "version"} {
			if fp.Attributes[k] == "" {
				t.Errorf("fingerprint lacks attribute %s: %+v", k, fp)
			}
		}
		t.Logf("fingerprint: %s", fp.Description)
	})

	t.Run("lifecycle", func(t *testing.T) {
		rec := record(t, d)
		vm := create(t, d, root, "life", guest.Kernel, guest.Initrd)
		vm.start(t)
		vm.waitReady(t)

		if err := d.Pause(t.Context(), vm.id, vm.h); err != nil {
			t.Fatalf("Pause: %v", err)
		}
		rec.wait(t, vm.id, sdk.EventPaused)
		vm.wantState(t, sdk.RunStatePaused)
		if err := d.Resume(t.Context(), vm.id, vm.h); err != nil {
			t.Fatalf("Resume: %v", err)
		}
		rec.wait(t, vm.id, sdk.EventResumed)
		vm.wantState(t, sdk.RunStateRunning)

		forced, err := d.Stop(t.Context(), vm.id, vm.h, 30*time.Second)
		if err != nil || forced {
			t.Fatalf("Stop = %v, %v; want not forced", forced, err)
		}
		vm.wantGone(t)
		if e := rec.wait(t, vm.id, sdk.EventExited); e.Reason != "guest-shutdown" {
			t.Errorf("exit reason %q, want guest-shutdown", e.Reason)
		}
		st := vm.wantState(t, sdk.RunStateStopped)
		if st.ExitReason != "guest-shutdown" {
			t.Errorf("status exit reason %q", st.ExitReason)
		}

		// Stopping, killing and pausing a stopped VM.
		if forced, err := d.Stop(t.Context(), vm.id, vm.h, time.Second); err != nil || forced {
			t.Errorf("second Stop = %v, %v", forced, err)
		}
		if err := d.Kill(t.Context(), vm.id, vm.h); err != nil {
			t.Errorf("Kill of a stopped vm: %v", err)
		}
		if err := d.Pause(t.Context(), vm.id, vm.h); !errors.Is(err, sdk.ErrWrongState) {
			t.Errorf("Pause of a stopped vm = %v, want ErrWrongState", err)
		}
		if err := d.Destroy(t.Context(), vm.id, vm.h); err != nil {
			t.Errorf("Destroy: %v", err)
		}
		if _, err := os.Stat(filepath.Join(vm.dir, qmpSocketName)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("qmp socket left after Destroy: %v", err)
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
		forced, err := d.Stop(t.Context(), vm.id, vm.h, 3*time.Second)
		took := time.Since(begin)
		if err != nil || !forced {
			t.Fatalf("Stop = %v, %v; want forced", forced, err)
		}
		if took > 3*time.Second+quitWait+2*time.Second {
			t.Errorf("Stop took %s", took)
		}
		vm.wantGone(t)
	})

	t.Run("kill", func(t *testing.T) {
		rec := record(t, d)
		vm := create(t, d, root, "kill", guest.Kernel, guest.Initrd)
		vm.start(t)
		if err := d.Kill(t.Context(), vm.id, vm.h); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		vm.wantGone(t)
		if e := rec.wait(t, vm.id, sdk.EventExited); e.Reason != "killed by signal 9" {
			t.Errorf("exit reason %q, want killed by signal 9", e.Reason)
		}
	})

	t.Run("kill during start", func(t *testing.T) {
		vm := create(t, d, root, "killstart", guest.Kernel, guest.Initrd)
		created := vm.h
		started := make(chan error, 1)
		go func() {
			h, err := d.Start(t.Context(), vm.id, created)
			if err == nil {
				vm.setHandle(h)
			}
			started <- err
		}()
		// Kill as soon as the process exists, whatever Start is doing.
		for deadline := time.Now().Add(10 * time.Second); ; {
			d.mu.Lock()
			v := d.vms[vm.id]
			d.mu.Unlock()
			if v != nil {
				vm.setHandle(v.h.encode()) // for the cleanup
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("qemu never spawned")
			}
			time.Sleep(time.Millisecond)
		}
		if err := d.Kill(t.Context(), vm.id, created); err != nil {
			t.Fatalf("Kill during Start: %v", err)
		}
		err := <-started
		t.Logf("Start after Kill: %v", err)
		vm.wantGone(t)
	})

	t.Run("recover a start cut short", func(t *testing.T) {
		// A driver spawns QEMU (paused, -S) and dies before Start returns
		// the new handle: the daemon still holds Create's, with no pid.
		first := New(log)
		vm := create(t, first, root, "cut", guest.Kernel, guest.Initrd)
		h, err := decodeHandle(vm.id, vm.handle())
		if err != nil {
			t.Fatal(err)
		}
		v, err := first.spawn(vm.id, h, DefaultBinary, AccelTCG)
		if err != nil {
			t.Fatalf("spawn: %v", err)
		}
		pid := v.h.PID
		deadline := time.Now().Add(10 * time.Second)
		for !pidFileExists(h) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		first.Close()

		second := New(log)
		defer second.Close()
		_, st, err := second.Recover(t.Context(), vm.id, vm.handle())
		if err != nil {
			t.Fatalf("Recover: %v", err)
		}
		if st.State != sdk.RunStateStopped || st.ExitReason != reasonInterrupted {
			t.Fatalf("Recover = %+v, want stopped: %s", st, reasonInterrupted)
		}
		if err := syscall.Kill(pid, 0); err == nil && !zombie(pid) {
			t.Fatalf("the half-started qemu %d still runs", pid)
		}
	})

	t.Run("recover from a new driver", func(t *testing.T) {
		d1 := New(log.Named("first"))
		vm := create(t, d1, root, "recover", guest.Kernel, guest.Initrd)
		vm.start(t)
		vm.waitReady(t)
		// The first driver process "dies": its QMP connection closes.
		d1.Close()

		d2 := New(log.Named("second"))
		t.Cleanup(d2.Close)
		rec := record(t, d2)
		vm.d = d2
		h, st, err := d2.Recover(t.Context(), vm.id, vm.h)
		if err != nil {
			t.Fatalf("Recover: %v", err)
		}
		if st.State != sdk.RunStateRunning || st.PID == 0 {
			t.Fatalf("Recover status = %+v", st)
		}
		vm.setHandle(h)
		if err := d2.Pause(t.Context(), vm.id, vm.h); err != nil {
			t.Fatalf("Pause after Recover: %v", err)
		}
		rec.wait(t, vm.id, sdk.EventPaused)
		if err := d2.Resume(t.Context(), vm.id, vm.h); err != nil {
			t.Fatalf("Resume after Recover: %v", err)
		}
		forced, err := d2.Stop(t.Context(), vm.id, vm.h, 30*time.Second)
		if err != nil || forced {
			t.Fatalf("Stop = %v, %v; want not forced", forced, err)
		}
		vm.wantGone(t)
		if e := rec.wait(t, vm.id, sdk.EventExited); e.Reason != "guest-shutdown" {
			t.Errorf("exit reason %q, want guest-shutdown", e.Reason)
		}

		// A third driver finds it gone.
		_, st, err = New(nil).Recover(t.Context(), vm.id, vm.h)
		if err != nil || st.State != sdk.RunStateStopped || st.ExitReason != reasonAway {
			t.Errorf("Recover of a gone vm = %+v, %v", st, err)
		}
	})

	t.Run("qemu error shows in start", func(t *testing.T) {
		vm := create(t, d, root, "bad", guest.Kernel, guest.Initrd)
		h, err := decodeHandle(vm.id, vm.h)
		if err != nil {
			t.Fatal(err)
		}
		h.Spec.MemoryMiB = 1 << 40 // QEMU refuses; Create's check is bypassed
		_, err = d.Start(t.Context(), vm.id, h.encode())
		if err == nil || !strings.Contains(err.Error(), "qemu exited (exit status 1)") {
			t.Fatalf("Start = %v, want qemu's own error", err)
		}
		t.Logf("Start error: %v", err)
	})
}

// testVM is one VM under test; its cleanup kills its QEMU by the pid it
// owns, after checking the start time.
type testVM struct {
	d   *Driver
	id  string
	dir string

	mu sync.Mutex
	h  sdk.Handle
}

func create(t *testing.T, d *Driver, root, name, kernel, initrd string) *testVM {
	t.Helper()
	// A comma in the work directory proves the escaping against real
	// QEMU: were it split, QEMU would reject the option or misplace a file.
	dir := filepath.Join(root, name+",x=y")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	id := "vm-" + name
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
	vm := &testVM{d: d, id: id, dir: dir, h: h}
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
	vm.wantState(t, sdk.RunStateRunning)
}

func (vm *testVM) waitReady(t *testing.T) {
	t.Helper()
	path := filepath.Join(vm.dir, consoleLogName)
	deadline := time.Now().Add(bootWait)
	for {
		b, _ := os.ReadFile(path) // absent until QEMU opens it
		if strings.Contains(string(b), testguest.ReadyLine) {
			// The guest prints its ready line only once acpid holds the
			// power button's input device, so a stop may follow at once.
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in console.log after %s:\n%s", testguest.ReadyLine, bootWait, lastLines(string(b), 20))
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

// wantGone checks the process named by the handle no longer exists.
func (vm *testVM) wantGone(t *testing.T) {
	t.Helper()
	h, err := decodeHandle(vm.id, vm.handle())
	if err != nil {
		t.Fatal(err)
	}
	// An exited QEMU may stay a zombie for a moment until its parent (in
	// these tests, this very process) reaps it: that is gone too.
	if st, err := procStartTime(h.PID); err == nil && st == h.StartTime && !zombie(h.PID) {
		t.Fatalf("qemu pid %d still runs", h.PID)
	}
}

func (vm *testVM) cleanup(t *testing.T) {
	h, err := decodeHandle(vm.id, vm.handle())
	if err != nil || h.PID == 0 {
		return
	}
	for range 100 {
		st, err := procStartTime(h.PID)
		if err != nil || st != h.StartTime {
			return // gone (a zombie's start time still matches, so reaped)
		}
		if err := syscall.Kill(h.PID, syscall.SIGKILL); err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the driver's waiter reaps it
	}
	t.Errorf("qemu pid %d of %s survived cleanup", h.PID, vm.id)
}

// checkNoQEMUUnder fails when a process still runs with root in its
// command line: a QEMU of this test that escaped its cleanup.
func checkNoQEMUUnder(t *testing.T, root string) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), root) {
			t.Errorf("process %s left running: %s", e.Name(), strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
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

// zombie reports whether pid has exited and waits only for its parent.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}
