package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hyperd/hyperd/fsm"
	"github.com/hyperd/hyperd/sdk"
)

func openTestDaemon(t *testing.T, dir string, f *fakeDriver) *Daemon {
	t.Helper()
	d, err := Open(Config{
		StateDir:      dir,
		DefaultDriver: "fake",
		StaticDrivers: map[string]sdk.Driver{"fake": f},
	})
	if err != nil {
		t.Fatalf("open daemon: %v", err)
	}
	return d
}

func testSpec(name string) sdk.Spec {
	return sdk.Spec{Name: name, VCPUs: 1, MemoryMiB: 64, Kernel: "/boot/vmlinuz"}
}

func storedState(t *testing.T, d *Daemon, id string) fsm.State {
	t.Helper()
	recs, _, err := d.store.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.ID == id {
			return r.State
		}
	}
	return fsm.StateRemoved
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	f := newFakeDriver()
	d := openTestDaemon(t, t.TempDir(), f)
	defer d.Close()

	rec, err := d.Run(ctx, "", testSpec("one"))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rec.State != fsm.StateRunning || rec.PID != 4242 || string(rec.Handle) != "h-"+rec.ID+"-started" {
		t.Fatalf("after run: state %s pid %d handle %q", rec.State, rec.PID, rec.Handle)
	}
	if got := storedState(t, d, rec.ID); got != fsm.StateRunning {
		t.Fatalf("store says %s after run returned, want running", got)
	}

	steps := []struct {
		name string
		do   func() (Record, error)
		want fsm.State
	}{
		{"pause", func() (Record, error) { return d.Pause(ctx, rec.ID) }, fsm.StatePaused},
		{"resume", func() (Record, error) { return d.Resume(ctx, rec.ID) }, fsm.StateRunning},
		{"stop", func() (Record, error) { return d.Stop(ctx, rec.ID, time.Second) }, fsm.StateStopped},
		{"stop again", func() (Record, error) { return d.Stop(ctx, rec.ID, time.Second) }, fsm.StateStopped},
		{"kill stopped", func() (Record, error) { return d.Kill(ctx, rec.ID) }, fsm.StateStopped},
		{"start again", func() (Record, error) { return d.Start(ctx, rec.ID) }, fsm.StateRunning},
		{"kill", func() (Record, error) { return d.Kill(ctx, rec.ID) }, fsm.StateStopped},
	}
	for _, s := range steps {
		got, err := s.do()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got.State != s.want {
			t.Fatalf("%s: state %s, want %s", s.name, got.State, s.want)
		}
		if stored := storedState(t, d, rec.ID); stored != s.want {
			t.Fatalf("%s: store says %s, want %s", s.name, stored, s.want)
		}
	}

	if err := d.Remove(ctx, rec.ID); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := d.VM(rec.ID); !errors.Is(err, ErrVMNotFound) {
		t.Fatalf("vm after remove: %v, want ErrVMNotFound", err)
	}
	if got := storedState(t, d, rec.ID); got != fsm.StateRemoved {
		t.Fatalf("store still holds the vm as %s", got)
	}
	if _, err := os.Stat(rec.WorkDir); !os.IsNotExist(err) {
		t.Fatalf("work dir left behind: %v", err)
	}
}

func TestRejections(t *testing.T) {
	ctx := context.Background()
	f := newFakeDriver()
	d := openTestDaemon(t, t.TempDir(), f)
	defer d.Close()

	rec, err := d.Run(ctx, "", testSpec("one"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx, rec.ID); !errors.Is(err, fsm.ErrWrongState) {
		t.Fatalf("remove running: %v, want ErrWrongState", err)
	}
	if _, err := d.Resume(ctx, rec.ID); !errors.Is(err, fsm.ErrWrongState) {
		t.Fatalf("resume running: %v, want ErrWrongState", err)
	}
	if _, err := d.Pause(ctx, "nope"); !errors.Is(err, ErrVMNotFound) {
		t.Fatalf("pause unknown: %v, want ErrVMNotFound", err)
	}
	if _, err := d.Run(ctx, "", testSpec("one")); !errors.Is(err, sdk.ErrInvalidSpec) {
		t.Fatalf("duplicate name: %v, want ErrInvalidSpec", err)
	}
	if _, err := d.Run(ctx, "nosuch", testSpec("two")); !errors.Is(err, ErrNoDriver) {
		t.Fatalf("unknown driver: %v, want ErrNoDriver", err)
	}
}

func TestBadSpecStoresNothing(t *testing.T) {
	ctx := context.Background()
	f := newFakeDriver()
	f.create = func(spec sdk.Spec) error {
		if spec.Kernel == "/missing" {
			return sdk.InvalidSpec("kernel", "no such file")
		}
		return nil
	}
	dir := t.TempDir()
	d := openTestDaemon(t, dir, f)
	defer d.Close()

	tests := []struct {
		name  string
		spec  sdk.Spec
		field string
	}{
		{"no name", sdk.Spec{VCPUs: 1, MemoryMiB: 64, Kernel: "/k"}, "name"},
		{"bad name", sdk.Spec{Name: "a,b", VCPUs: 1, MemoryMiB: 64, Kernel: "/k"}, "name"},
		{"zero memory", sdk.Spec{Name: "x", VCPUs: 1, Kernel: "/k"}, "memory_mib"},
		{"zero vcpus", sdk.Spec{Name: "x", MemoryMiB: 64, Kernel: "/k"}, "vcpus"},
		{"no kernel", sdk.Spec{Name: "x", VCPUs: 1, MemoryMiB: 64}, "kernel"},
		{"driver rejects", sdk.Spec{Name: "x", VCPUs: 1, MemoryMiB: 64, Kernel: "/missing"}, "kernel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Run(ctx, "", tt.spec)
			if !errors.Is(err, sdk.ErrInvalidSpec) {
				t.Fatalf("got %v, want ErrInvalidSpec", err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("error %q does not name %s", err, tt.field)
			}
		})
	}
	recs, bad, err := d.store.List()
	if err != nil || len(recs) != 0 || len(bad) != 0 {
		t.Fatalf("store holds %d records, %d bad, err %v; want none", len(recs), len(bad), err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, "vms"))
	if err != nil || len(ents) != 0 {
		t.Fatalf("work dirs left: %v %v", ents, err)
	}
}

// TestStopEscalatesWhenDriverHangs: a driver whose Stop never returns is
// killed by the supervisor's own deadline.
func TestStopEscalatesWhenDriverHangs(t *testing.T) {
	ctx := context.Background()
	f := newFakeDriver()
	f.stop = func(ctx context.Context, _ string) (bool, error) {
		<-ctx.Done()
		return false, ctx.Err()
	}
	d := openTestDaemon(t, t.TempDir(), f)
	defer d.Close()

	rec, err := d.Run(ctx, "", testSpec("hang"))
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	got, err := d.Stop(sctx, rec.ID, 100*time.Millisecond)
	if err != nil {
		t.Fatalf("stop: %v", err)
	}
	if got.State != fsm.StateStopped || got.Reason != "killed" {
		t.Fatalf("after stop: state %s reason %q, want stopped by kill", got.State, got.Reason)
	}
	if elapsed := time.Since(start); elapsed < stopTimerMargin {
		t.Fatalf("killed after %s, before the deadline plus margin", elapsed)
	}
	if f.state(rec.ID) != sdk.RunStateStopped {
		t.Fatalf("driver state %s, want stopped", f.state(rec.ID))
	}
}

// TestKillWhileStarting: a kill during a slow start wins.
func TestKillWhileStarting(t *testing.T) {
	ctx := context.Background()
	f := newFakeDriver()
	release := make(chan struct{})
	f.start = func(ctx context.Context, _ string) error {
		select {
		case <-release:
			return errors.New("start interrupted")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	d := openTestDaemon(t, t.TempDir(), f)
	defer d.Close()

	runErr := make(chan error, 1)
	go func() {
		_, err := d.Run(ctx, "", testSpec("slow"))
		runErr <- err
	}()
	var id string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if vms := d.VMs(); len(vms) == 1 && vms[0].State == fsm.StateStarting {
			id = vms[0].ID
			break
		}
	}
	if id == "" {
		t.Fatal("vm never reached starting")
	}
	rec, err := d.Kill(ctx, id)
	if err != nil || rec.State != fsm.StateStopped {
		t.Fatalf("kill while starting: state %s, err %v", rec.State, err)
	}
	close(release)
	if err := <-runErr; err == nil {
		t.Fatal("run reported success for a vm killed while starting")
	}
	time.Sleep(50 * time.Millisecond)
	if got, _ := d.VM(id); got.State != fsm.StateStopped {
		t.Fatalf("late start failure moved the vm to %s", got.State)
	}
}

func TestDriverExitEvent(t *testing.T) {
	ctx := context.Background()
	f := newFakeDriver()
	d := openTestDaemon(t, t.TempDir(), f)
	defer d.Close()

	rec, err := d.Run(ctx, "", testSpec("guest"))
	if err != nil {
		t.Fatal(err)
	}
	f.events <- sdk.Event{VMID: rec.ID, Type: sdk.EventExited, Reason: "guest-shutdown"}
	s := d.supervisor(rec.ID)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	got, err := s.Wait(wctx, s.ErrSeq(), func(r Record) bool { return r.State == fsm.StateStopped })
	if err != nil {
		t.Fatal(err)
	}
	if got.Reason != "guest-shutdown" {
		t.Fatalf("reason %q, want the driver's", got.Reason)
	}
}

// TestRestartRecovers: a new daemon on the same state dir finds its VMs
// and reconciles them with the driver.
func TestRestartRecovers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f := newFakeDriver()
	d := openTestDaemon(t, dir, f)
	alive, err := d.Run(ctx, "", testSpec("alive"))
	if err != nil {
		t.Fatal(err)
	}
	gone, err := d.Run(ctx, "", testSpec("gone"))
	if err != nil {
		t.Fatal(err)
	}
	paused, err := d.Run(ctx, "", testSpec("paused"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Pause(ctx, paused.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// While the daemon was away, one VM's process died.
	f.mu.Lock()
	delete(f.states, gone.ID)
	f.mu.Unlock()

	d = openTestDaemon(t, dir, f)
	defer d.Close()
	want := map[string]fsm.State{alive.ID: fsm.StateRunning, gone.ID: fsm.StateStopped, paused.ID: fsm.StatePaused}
	for id, st := range want {
		s := d.supervisor(id)
		if s == nil {
			t.Fatalf("vm %s forgotten after restart", id)
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		got, err := s.Wait(wctx, s.ErrSeq(), func(r Record) bool { return r.State == st })
		cancel()
		if err != nil {
			t.Fatalf("vm %s: %v (state %s, want %s)", id, err, got.State, st)
		}
	}
	if r, _ := d.VM(gone.ID); r.Reason != "process gone" {
		t.Fatalf("dead vm's reason %q, want the driver's", r.Reason)
	}
	if _, err := d.Stop(ctx, alive.ID, time.Second); err != nil {
		t.Fatalf("stop a recovered vm: %v", err)
	}
}

func TestSecondDaemonOnSameStateDir(t *testing.T) {
	dir := t.TempDir()
	d := openTestDaemon(t, dir, newFakeDriver())
	defer d.Close()
	_, err := Open(Config{StateDir: dir})
	if err == nil || !strings.Contains(err.Error(), "another hyperd") {
		t.Fatalf("second daemon: %v, want a clear refusal", err)
	}
}

func TestNotAStore(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, storeFile), []byte("this is not a bbolt file, just text"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Config{StateDir: dir})
	if err == nil || !strings.Contains(err.Error(), "move the file aside") {
		t.Fatalf("open garbage store: %v, want a way forward", err)
	}
}

// TestUnreadableRecordKept: a record the daemon cannot decode is neither
// dropped nor fatal: it is reported and left in the store.
func TestUnreadableRecordKept(t *testing.T) {
	dir := t.TempDir()
	f := newFakeDriver()
	d := openTestDaemon(t, dir, f)
	good, err := d.Run(context.Background(), "", testSpec("good"))
	if err != nil {
		t.Fatal(err)
	}
	err = d.store.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(vmsBucket).Put([]byte("garbled"), []byte(`{"id":"garbled","state":"runing"`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d = openTestDaemon(t, dir, f)
	defer d.Close()
	if _, err := d.VM(good.ID); err != nil {
		t.Fatalf("good vm lost beside a bad record: %v", err)
	}
	if err := d.Unreadable()["garbled"]; err == nil {
		t.Fatal("bad record not reported")
	}
	_, bad, err := d.store.List()
	if err != nil || bad["garbled"] == nil {
		t.Fatalf("bad record no longer in the store: %v %v", bad, err)
	}
}

func TestDamagedStores(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"empty file", func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}, "the file is empty"},
		{"damaged page", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// The pages after the two meta pages and the freelist hold
			// the buckets: scribble over them.
			junk := []byte(strings.Repeat("\xff", 4096))
			for off := int64(2 * 4096); off < 8*4096; off += 4096 {
				if _, err := f.WriteAt(junk, off); err != nil {
					t.Fatal(err)
				}
			}
		}, "move"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			d := openTestDaemon(t, dir, newFakeDriver())
			for i := range 3 {
				if _, err := d.Run(context.Background(), "", testSpec(fmt.Sprintf("vm%d", i))); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, filepath.Join(dir, storeFile))

			_, err := Open(Config{StateDir: dir, StaticDrivers: map[string]sdk.Driver{"fake": newFakeDriver()}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("open damaged store: %v, want a refusal mentioning %q", err, tt.want)
			}
			t.Log(err)
		})
	}
}

func TestConcurrentRunsOneName(t *testing.T) {
	f := newFakeDriver()
	d := openTestDaemon(t, t.TempDir(), f)
	defer d.Close()
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := d.Run(context.Background(), "", testSpec("dup"))
			errs <- err
		}()
	}
	ok := 0
	for range n {
		err := <-errs
		if err == nil {
			ok++
		} else if !errors.Is(err, sdk.ErrInvalidSpec) {
			t.Errorf("losing run: %v, want ErrInvalidSpec", err)
		}
	}
	if ok != 1 || len(d.VMs()) != 1 {
		t.Fatalf("%d runs succeeded, %d vms stored; want exactly one", ok, len(d.VMs()))
	}
}

func TestSpecLimits(t *testing.T) {
	dir := t.TempDir()
	d := openTestDaemon(t, dir, newFakeDriver())
	defer d.Close()
	inside := testSpec("inside")
	inside.Disks = []sdk.Disk{{Path: filepath.Join(dir, storeFile)}}
	long := testSpec("long")
	long.Cmdline = strings.Repeat("x", maxCmdline+1)
	for name, tc := range map[string]struct {
		spec  sdk.Spec
		field string
	}{
		"store as a disk":  {inside, "disks[0].path"},
		"long cmdline":     {long, "cmdline"},
		"initrd in vms":    {sdk.Spec{Name: "i", VCPUs: 1, MemoryMiB: 64, Kernel: "/k", Initrd: filepath.Join(dir, "vms")}, "initrd"},
		"kernel state dir": {sdk.Spec{Name: "k", VCPUs: 1, MemoryMiB: 64, Kernel: dir}, "kernel"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := d.Run(context.Background(), "", tc.spec)
			if !errors.Is(err, sdk.ErrInvalidSpec) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("got %v, want ErrInvalidSpec naming %s", err, tc.field)
			}
		})
	}
	rec, err := d.Run(context.Background(), "", testSpec("ok"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Stop(context.Background(), rec.ID, 1<<62); !errors.Is(err, sdk.ErrInvalidSpec) {
		t.Fatalf("huge stop timeout: %v, want ErrInvalidSpec", err)
	}
}

// TestStopReason: the driver's exit event usually beats its Stop reply;
// the VM's reason still says whether the stop was forced.
func TestStopReason(t *testing.T) {
	for _, tc := range []struct {
		name   string
		forced bool
		event  string
		want   string
	}{
		{"graceful", false, "guest-shutdown", "guest-shutdown"},
		{"forced", true, "host-qmp-quit", "forced off: the guest did not power off within 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDriver()
			f.stop = func(_ context.Context, id string) (bool, error) {
				f.events <- sdk.Event{VMID: id, Type: sdk.EventExited, Reason: tc.event}
				time.Sleep(100 * time.Millisecond) // let the event arrive first
				return tc.forced, nil
			}
			d := openTestDaemon(t, t.TempDir(), f)
			defer d.Close()
			rec, err := d.Run(context.Background(), "", testSpec("r"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Stop(context.Background(), rec.ID, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != fsm.StateStopped || got.Reason != tc.want {
				t.Fatalf("after stop: %s %q, want stopped %q", got.State, got.Reason, tc.want)
			}
		})
	}
}
