package qmp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
	"github.com/digitalocean/go-qemu/qmp/raw"
)

// qemuWait bounds QEMU's start and each step against it: TCG start-up on
// a loaded two-core machine takes a second or two, not ten.
const qemuWait = 20 * time.Second

// TestRealQEMU drives a real, paused QEMU through the Monitor and go-qemu's
// raw commands: status, cont and stop with their events, then quit.
func TestRealQEMU(t *testing.T) {
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not on PATH; install the qemu-system-x86 package")
	}

	m, exited := startQEMU(t, bin)
	r := raw.NewMonitor(m)

	st, err := r.QueryStatus()
	if err != nil {
		t.Fatalf("QueryStatus: %v", err)
	}
	if st.Running {
		t.Errorf("QueryStatus = %+v, want not running under -S", st)
	}

	events, err := m.Events(t.Context())
	if err != nil {
		t.Fatalf("Events: %v", err)
	}

	steps := []struct {
		name    string
		run     func() error
		event   string
		running bool
	}{
		{name: "cont", run: r.Cont, event: "RESUME", running: true},
		{name: "stop", run: r.Stop, event: "STOP", running: false},
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		waitEvent(t, events, s.event)
		st, err := r.QueryStatus()
		if err != nil {
			t.Fatalf("QueryStatus after %s: %v", s.name, err)
		}
		if st.Running != s.running {
			t.Errorf("after %s running = %v, want %v", s.name, st.Running, s.running)
		}
	}

	// QEMU answers quit and then closes the socket as it exits; the close
	// can win the race with the reply, which is then ErrClosed.
	if err := r.Quit(); err != nil && !errors.Is(err, ErrClosed) {
		t.Fatalf("quit: %v", err)
	}
	waitEvent(t, events, "SHUTDOWN")
	select {
	case <-m.Done():
	case <-time.After(qemuWait):
		t.Fatal("Done not closed after quit")
	}
	if err := m.Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("Err = %v, want ErrClosed", err)
	}
	select {
	case <-exited:
	case <-time.After(qemuWait):
		t.Error("qemu still running after quit")
	}
}

// startQEMU starts a paused, guestless QEMU with a QMP socket and dials
// it. QEMU is always killed and reaped when the test ends; exited closes
// when it has been reaped.
func startQEMU(t *testing.T, bin string) (*Monitor, <-chan struct{}) {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "qmp.sock")
	// A file, not a buffer, so reading it while QEMU runs is no data race.
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatalf("create stderr file: %v", err)
	}
	defer stderr.Close() // QEMU holds its own copy
	cmd := exec.Command(bin,
		"-accel", "tcg", // KVM guests hang on the build machines
		"-machine", "q35",
		"-m", "64",
		"-nodefaults",
		"-display", "none",
		"-S",
		"-qmp", "unix:"+sock+",server=on,wait=off",
	)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}

	// Only this goroutine waits on cmd, so QEMU is reaped exactly once.
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // exit status is irrelevant: quit or our kill
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // fails only when QEMU has already exited
		<-exited
	})

	// The socket appears a moment after start; retry until it answers.
	ctx, cancel := context.WithTimeout(t.Context(), qemuWait)
	defer cancel()
	for {
		m, err := Dial(ctx, "unix", sock)
		if err == nil {
			t.Logf("qemu %s, qmp capabilities %v", m.Version(), m.Capabilities())
			t.Cleanup(func() { _ = m.Disconnect() })
			return m, exited
		}
		select {
		case <-exited:
			t.Fatalf("qemu exited before its QMP socket answered: %v\n%s", err, readStderr(stderr.Name()))
		case <-ctx.Done():
			t.Fatalf("dial qemu: %v\n%s", err, readStderr(stderr.Name()))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func readStderr(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(stderr unreadable: %v)", err)
	}
	return string(b)
}

// waitEvent waits for the named event, skipping others.
func waitEvent(t *testing.T, events <-chan qmp.Event, name string) {
	t.Helper()
	timeout := time.After(qemuWait)
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("event channel closed before %s", name)
			}
			if e.Event == name {
				t.Logf("event %s %v", e.Event, e.Data)
				return
			}
		case <-timeout:
			t.Fatalf("no %s event within %v", name, qemuWait)
		}
	}
}
