package xen

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperd/hyperd/sdk"
)

// newTestDriver returns a driver on a fake xl in a fake dom0, and a
// created VM's id and handle.
func newTestDriver(t *testing.T, xl *fakeXL) (*Driver, string, sdk.Handle) {
	t.Helper()
	t.Setenv(ConsoleDirEnv, t.TempDir())
	proc := fakeProc(t, "control_d\n")
	d := New(nil, WithProcRoot(proc), withRunner(xl.run))
	kernel := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(kernel, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	const id = "0a1b2c3d4e5f"
	h, err := d.Create(context.Background(), id, sdk.Spec{Name: "web", VCPUs: 1, MemoryMiB: 128, Kernel: kernel}, t.TempDir())
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return d, id, h
}

func wantState(t *testing.T, d *Driver, id string, h sdk.Handle, want sdk.RunState) sdk.Status {
	t.Helper()
	st, err := d.Status(context.Background(), id, h)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.State != want {
		t.Fatalf("state %v (%s), want %v", st.State, st.ExitReason, want)
	}
	return st
}

func TestLifecycleOnFakeXL(t *testing.T) {
	xl := newFakeXL()
	d, id, h := newTestDriver(t, xl)
	ctx := context.Background()
	events, err := d.Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, d, id, h, sdk.RunStateCreated)

	h, err = d.Start(ctx, id, h)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	st := wantState(t, d, id, h, sdk.RunStateRunning)
	if st.Attributes["domid"] != "1" || !strings.HasSuffix(st.ConsoleLog, "guest-hyperd-"+id+".log") {
		t.Fatalf("status = %+v", st)
	}
	if _, err := d.Start(ctx, id, h); !errors.Is(err, sdk.ErrWrongState) {
		t.Fatalf("second Start = %v, want ErrWrongState", err)
	}

	if err := d.Pause(ctx, id, h); err != nil {
		t.Fatal(err)
	}
	wantState(t, d, id, h, sdk.RunStatePaused)
	if err := d.Resume(ctx, id, h); err != nil {
		t.Fatal(err)
	}
	wantState(t, d, id, h, sdk.RunStateRunning)

	forced, err := d.Stop(ctx, id, h, 10*time.Second)
	if err != nil || forced {
		t.Fatalf("Stop = %v, %v; want a graceful stop", forced, err)
	}
	st = wantState(t, d, id, h, sdk.RunStateStopped)
	if st.ExitReason != "xen shutdown: poweroff" {
		t.Fatalf("exit reason %q", st.ExitReason)
	}
	if xl.count() != 0 {
		t.Fatal("the preserved domain was not destroyed")
	}
	var types []sdk.EventType
	for len(types) < 3 {
		select {
		case e := <-events:
			types = append(types, e.Type)
		case <-time.After(5 * time.Second):
			t.Fatalf("events so far %v, want paused, resumed, exited", types)
		}
	}
	if types[0] != sdk.EventPaused || types[1] != sdk.EventResumed || types[2] != sdk.EventExited {
		t.Fatalf("events %v, want paused, resumed, exited", types)
	}
	if err := d.Destroy(ctx, id, h); err != nil {
		t.Fatal(err)
	}
}

func TestStopForcesStubbornGuest(t *testing.T) {
	xl := newFakeXL()
	xl.obey = false
	d, id, h := newTestDriver(t, xl)
	h, err := d.Start(context.Background(), id, h)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	forced, err := d.Stop(context.Background(), id, h, 300*time.Millisecond)
	if err != nil || !forced {
		t.Fatalf("Stop = %v, %v; want forced", forced, err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("forced after %s, before the timeout", took)
	}
	if xl.count() != 0 {
		t.Fatal("domain left after a forced stop")
	}
	st := wantState(t, d, id, h, sdk.RunStateStopped)
	if !strings.Contains(st.ExitReason, "did not power off") {
		t.Fatalf("exit reason %q", st.ExitReason)
	}
}

// TestRecoverByNewProcess: a second Driver, as after a driver restart,
// finds the running domain from the handle alone, and learns why a
// domain that ended meanwhile ended.
func TestRecoverByNewProcess(t *testing.T) {
	xl := newFakeXL()
	d, id, h := newTestDriver(t, xl)
	h, err := d.Start(context.Background(), id, h)
	if err != nil {
		t.Fatal(err)
	}

	d2 := New(nil, WithProcRoot(d.procRoot), withRunner(xl.run))
	_, st, err := d2.Recover(context.Background(), id, h)
	if err != nil || st.State != sdk.RunStateRunning {
		t.Fatalf("Recover = %+v, %v; want running", st, err)
	}

	xl.crash("hyperd-" + id)
	st = wantState(t, d2, id, h, sdk.RunStateStopped)
	if st.ExitReason != "xen shutdown: crash" {
		t.Fatalf("exit reason %q", st.ExitReason)
	}
	// A third process, after the domain is gone, reads the recorded
	// reason from the work directory.
	d3 := New(nil, WithProcRoot(d.procRoot), withRunner(xl.run))
	if _, st, err = d3.Recover(context.Background(), id, h); err != nil || st.ExitReason != "xen shutdown: crash" {
		t.Fatalf("Recover after the end = %+v, %v", st, err)
	}
}

func TestHandleFromAnotherVM(t *testing.T) {
	d, _, h := newTestDriver(t, newFakeXL())
	if _, err := d.Start(context.Background(), "ffffffffffff", h); !errors.Is(err, sdk.ErrInvalidSpec) {
		t.Fatalf("Start with another vm's handle = %v, want ErrInvalidSpec", err)
	}
}
