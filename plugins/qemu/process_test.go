package qemu

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hyperd/hyperd/sdk"
)

func TestParseStartTime(t *testing.T) {
	rest := " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 4242 20 21\n"
	tests := []struct {
		name string
		stat string
		want uint64
		ok   bool
	}{
		{"plain", "123 (qemu-system-x86)" + rest, 4242, true},
		{"name with spaces and parens", "123 (a) b (c)" + rest, 4242, true},
		{"truncated", "123 (x) S 1 2 3", 0, false},
		{"no name", "123 S 1 2", 0, false},
		{"not a number", "123 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 x 20", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStartTime([]byte(tt.stat))
			if tt.ok != (err == nil) || got != tt.want {
				t.Fatalf("parseStartTime = %d, %v; want %d, ok=%v", got, err, tt.want, tt.ok)
			}
		})
	}
}

// startSleep starts an unrelated process that must survive the test.
func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sleep: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // killed below
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // fails only if it already died, which the test reports
		<-exited
	})
	return cmd
}

// TestPIDReuse fakes a reused PID: the handle names a live process that
// is not its QEMU. The driver must call the VM stopped and never signal
// the stranger.
func TestPIDReuse(t *testing.T) {
	sleep := startSleep(t)
	pid := sleep.Process.Pid
	st, err := procStartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	tests := []struct {
		name      string
		startTime uint64
	}{
		{"start time differs", st + 1},
		{"start time matches but not our qemu", st},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := handle{
				Version:   handleVersion,
				VMID:      "vm-reuse",
				WorkDir:   dir,
				Spec:      sdk.Spec{Name: "reuse", VCPUs: 1, MemoryMiB: 64, Kernel: "/nonexistent"},
				PID:       pid,
				StartTime: tt.startTime,
				QMPSocket: filepath.Join(dir, qmpSocketName),
			}
			hb := h.encode()
			d := New(nil)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()

			_, status, err := d.Recover(ctx, h.VMID, hb)
			if err != nil {
				t.Fatalf("Recover: %v", err)
			}
			if status.State != sdk.RunStateStopped || status.ExitReason != reasonAway {
				t.Errorf("Recover status = %v %q, want stopped %q", status.State, status.ExitReason, reasonAway)
			}
			if err := d.Kill(ctx, h.VMID, hb); err != nil {
				t.Errorf("Kill: %v", err)
			}
			forced, err := d.Stop(ctx, h.VMID, hb, time.Second)
			if err != nil || forced {
				t.Errorf("Stop = %v, %v; want false, nil", forced, err)
			}
			if err := d.Pause(ctx, h.VMID, hb); !errors.Is(err, sdk.ErrWrongState) {
				t.Errorf("Pause = %v, want ErrWrongState", err)
			}
			if err := d.Destroy(ctx, h.VMID, hb); err != nil {
				t.Errorf("Destroy: %v", err)
			}
			// A fresh driver, without Recover, must judge the same.
			if err := New(nil).Kill(ctx, h.VMID, hb); err != nil {
				t.Errorf("Kill from a fresh driver: %v", err)
			}
			if err := sleep.Process.Signal(syscall.Signal(0)); err != nil {
				t.Fatalf("the unrelated process was signalled: %v", err)
			}
		})
	}
}

func TestDescribeExit(t *testing.T) {
	tests := []struct {
		name string
		cmd  *exec.Cmd
		want string
	}{
		{"exit status", exec.Command("sh", "-c", "exit 3"), "exit status 3"},
		{"signal", exec.Command("sh", "-c", "kill -9 $$"), "killed by signal 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = tt.cmd.Run() // the exit is what we examine
			if got := describeExit(tt.cmd.ProcessState); got != tt.want {
				t.Errorf("describeExit = %q, want %q", got, tt.want)
			}
		})
	}
}
