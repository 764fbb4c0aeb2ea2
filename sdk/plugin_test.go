package sdk_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hyperd/hyperd/sdk"
)

// TestPlugin runs the host side against the test binary re-executed as a
// driver plugin, over real go-plugin: handshake, mutual TLS and gRPC.
func TestPlugin(t *testing.T) {
	t.Run("handshake_and_info", testHandshakeAndInfo)
	t.Run("calls_round_trip", testCallsRoundTrip(modeRoundTrip))
	t.Run("calls_round_trip_v1", testCallsRoundTrip(modeRoundTrip+"@v1"))
	t.Run("errors_keep_sentinel_and_message", testErrors)
	t.Run("pause_needs_declared_capability", testPauseCapability)
	t.Run("deadline_bounds_hung_call", testDeadline)
	t.Run("events_in_order_then_closed", testEvents)
	t.Run("version_mismatch", testVersionMismatch)
	t.Run("not_a_plugin", testNotAPlugin)
	t.Run("plugin_killed", testPluginKilled)
}

// launch starts the test binary as a driver in mode and closes it when
// the test ends.
func launch(t *testing.T, mode string) *sdk.Plugin {
	t.Helper()
	p, err := launchErr(t, mode, 0)
	if err != nil {
		t.Fatalf("launch driver in mode %s: %v", mode, err)
	}
	t.Cleanup(p.Close)
	return p
}

// launchErr starts the test binary as a driver in mode. The child's
// stderr reaches the host only through go-plugin's logger, so a data race
// or panic in the child's half of the SDK would go unseen; the log is kept
// and checked when the test ends, after the child is gone.
func launchErr(t *testing.T, mode string, startTimeout time.Duration) (*sdk.Plugin, error) {
	t.Helper()
	t.Setenv(driverModeEnv, mode)
	// A race-enabled binary sleeps a second at exit by default, which
	// would cost a second per launch.
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))

	childLog := &lockedBuffer{}
	t.Cleanup(func() {
		log := childLog.String()
		for _, bad := range []string{"WARNING: DATA RACE", "panic:"} {
			if strings.Contains(log, bad) {
				t.Errorf("driver in mode %s logged %q:\n%s", mode, bad, log)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return sdk.Launch(ctx, os.Args[0], sdk.LaunchOptions{
		Logger:       hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: childLog}),
		LogLevel:     "debug",
		StartTimeout: startTimeout,
	})
}

// lockedBuffer is a bytes.Buffer safe for go-plugin's log goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func callCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testHandshakeAndInfo(t *testing.T) {
	p := launch(t, modeRoundTrip)
	ctx := callCtx(t)

	if pid := p.PID(); pid <= 0 || pid == os.Getpid() {
		t.Errorf("PID() = %d, want the child's pid", pid)
	}
	if p.Exited() {
		t.Error("Exited() = true right after launch")
	}

	info, err := p.Info(ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if !reflect.DeepEqual(info, fixtureInfo) {
		t.Errorf("Info = %+v, want %+v", info, fixtureInfo)
	}

	fp, err := p.Fingerprint(ctx)
	if err != nil {
		t.Fatalf("Fingerprint: %v", err)
	}
	if !reflect.DeepEqual(fp, fixtureFingerprint) {
		t.Errorf("Fingerprint = %+v, want %+v", fp, fixtureFingerprint)
	}
}

func testCallsRoundTrip(mode string) func(t *testing.T) {
	return func(t *testing.T) { callsRoundTrip(t, mode) }
}

func callsRoundTrip(t *testing.T, mode string) {
	p := launch(t, mode)
	ctx := callCtx(t)
	if info, err := p.Info(ctx); err != nil || !reflect.DeepEqual(info, fixtureInfo) {
		t.Errorf("Info over contract version %d = %+v, %v; want %+v", p.ContractVersion(), info, err, fixtureInfo)
	}

	t.Run("create", func(t *testing.T) {
		h, err := p.Create(ctx, fixtureVMID, fixtureSpec, fixtureWorkDir)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if !bytes.Equal(h, fixtureHandle) {
			t.Errorf("Create handle = %x, want %x", []byte(h), []byte(fixtureHandle))
		}
	})
	t.Run("start", func(t *testing.T) {
		h, err := p.Start(ctx, fixtureVMID, fixtureHandle)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		if !bytes.Equal(h, fixtureStartedHandle) {
			t.Errorf("Start handle = %q, want %q", h, fixtureStartedHandle)
		}
	})
	t.Run("stop", func(t *testing.T) {
		forced, err := p.Stop(ctx, fixtureVMID, fixtureHandle, fixtureStopTimeout)
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if !forced {
			t.Error("Stop forced = false, want true")
		}
	})
	t.Run("status", func(t *testing.T) {
		st, err := p.Status(ctx, fixtureVMID, fixtureHandle)
		if err != nil {
			t.Fatalf("Status: %v", err)
		}
		if !reflect.DeepEqual(st, fixtureStatus) {
			t.Errorf("Status = %+v, want %+v", st, fixtureStatus)
		}
	})
	t.Run("recover", func(t *testing.T) {
		h, st, err := p.Recover(ctx, fixtureVMID, fixtureHandle)
		if err != nil {
			t.Fatalf("Recover: %v", err)
		}
		if !bytes.Equal(h, fixtureRecoveredHandle) {
			t.Errorf("Recover handle = %q, want %q", h, fixtureRecoveredHandle)
		}
		if !reflect.DeepEqual(st, fixtureRecoveredStatus) {
			t.Errorf("Recover status = %+v, want %+v", st, fixtureRecoveredStatus)
		}
	})
	for _, c := range []struct {
		name string
		call func(context.Context, string, sdk.Handle) error
	}{
		{"pause", p.Pause},
		{"resume", p.Resume},
		{"kill", p.Kill},
		{"destroy", p.Destroy},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(ctx, fixtureVMID, fixtureHandle); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
		})
	}

	// The driver checks what it receives; a mangled argument must fail,
	// or the cases above prove nothing.
	t.Run("driver_rejects_other_arguments", func(t *testing.T) {
		other := sdk.Handle{0x00, 0xff, 'h', 0x80}
		if _, err := p.Status(ctx, fixtureVMID, other); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Status with another handle: err = %v, want ErrNotFound", err)
		}
		_, err := p.Stop(ctx, fixtureVMID, fixtureHandle, fixtureStopTimeout+time.Nanosecond)
		if !errors.Is(err, sdk.ErrInvalidSpec) {
			t.Errorf("Stop with another timeout: err = %v, want ErrInvalidSpec", err)
		}
		spec := fixtureSpec
		spec.Disks = fixtureSpec.Disks[:1]
		_, err = p.Create(ctx, fixtureVMID, spec, fixtureWorkDir)
		if !errors.Is(err, sdk.ErrInvalidSpec) {
			t.Errorf("Create with one disk fewer: err = %v, want ErrInvalidSpec", err)
		}
	})
}

func testErrors(t *testing.T) {
	p := launch(t, modeErrors)
	ctx := callCtx(t)

	status := func(vmID string) func() error {
		return func() error {
			_, err := p.Status(ctx, vmID, nil)
			return err
		}
	}
	tests := []struct {
		name     string
		call     func() error
		sentinel error
		wantMsg  string
	}{
		{
			name: "invalid_spec",
			call: func() error {
				_, err := p.Create(ctx, "vm-1", sdk.Spec{MemoryMiB: 1}, "/tmp/vm-1")
				return err
			},
			sentinel: sdk.ErrInvalidSpec,
			wantMsg:  "memory_mib: must be at least 64, got 1",
		},
		{"wrong_state", status("wrong_state"), sdk.ErrWrongState, "vm is stopped"},
		{"not_found", status("not_found"), sdk.ErrNotFound, "no pid file"},
		{"unavailable", status("unavailable"), sdk.ErrUnavailable, "qmp socket refused"},
		{"unsupported", status("unsupported"), sdk.ErrUnsupported, "snapshot"},
		{"plain", status("plain"), nil, "qemu-system-x86_64 exploded: exit status 1"},
	}
	sentinels := []error{
		sdk.ErrInvalidSpec, sdk.ErrWrongState, sdk.ErrNotFound, sdk.ErrUnavailable, sdk.ErrUnsupported,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil {
				t.Fatal("err = nil")
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %q, want it to contain %q", err, tt.wantMsg)
			}
			for _, s := range sentinels {
				if got, want := errors.Is(err, s), s == tt.sentinel; got != want {
					t.Errorf("errors.Is(%q, %q) = %t, want %t", err, s, got, want)
				}
			}
		})
	}
}

func testPauseCapability(t *testing.T) {
	tests := []struct {
		mode    string
		wantErr error
	}{
		{modePauseUndeclared, sdk.ErrUnsupported},
		{modePauseUnimplemented, sdk.ErrUnsupported},
		{modePauseDeclared, nil},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			p := launch(t, tt.mode)
			ctx := callCtx(t)
			if err := p.Pause(ctx, "vm-1", nil); !errors.Is(err, tt.wantErr) {
				t.Errorf("Pause: err = %v, want %v", err, tt.wantErr)
			}
			if err := p.Resume(ctx, "vm-1", nil); !errors.Is(err, tt.wantErr) {
				t.Errorf("Resume: err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func testDeadline(t *testing.T) {
	p := launch(t, modeHang)

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		begin := time.Now()
		_, err := p.Status(ctx, "vm-1", nil)
		if elapsed := time.Since(begin); elapsed > 2*time.Second {
			t.Errorf("Status returned after %s, want about 200ms", elapsed)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Status: err = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		begin := time.Now()
		_, err := p.Status(ctx, "vm-1", nil)
		if elapsed := time.Since(begin); elapsed > 2*time.Second {
			t.Errorf("Status returned after %s, want about 100ms", elapsed)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Status: err = %v, want context.Canceled", err)
		}
	})
}

// recvEvent waits a bounded time for the next event.
func recvEvent(t *testing.T, ch <-chan sdk.Event) (sdk.Event, bool) {
	t.Helper()
	select {
	case e, ok := <-ch:
		return e, ok
	case <-time.After(5 * time.Second):
		t.Fatal("no event and no close within 5s")
		return sdk.Event{}, false
	}
}

func testEvents(t *testing.T) {
	t.Run("close_plugin", func(t *testing.T) {
		p := launch(t, modeEvents)
		ch, err := p.Events(context.Background())
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		for i, want := range fixtureEvents {
			got, ok := recvEvent(t, ch)
			if !ok {
				t.Fatalf("event %d: channel closed", i)
			}
			if !got.Time.Equal(want.Time) {
				t.Errorf("event %d: time %s, want %s", i, got.Time, want.Time)
			}
			if got.Cursor.Sequence != uint64(i+1) || got.Cursor.Epoch == "" {
				t.Errorf("event %d: cursor %+v, want sequence %d in an epoch", i, got.Cursor, i+1)
			}
			got.Time, got.Cursor = want.Time, want.Cursor
			if !reflect.DeepEqual(got, want) {
				t.Errorf("event %d = %+v, want %+v", i, got, want)
			}
		}

		p.Close()
		if e, ok := recvEvent(t, ch); ok {
			t.Errorf("after Close: got event %+v, want a closed channel", e)
		}
	})
	t.Run("cancel_ctx", func(t *testing.T) {
		p := launch(t, modeEvents)
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := p.Events(ctx)
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		if _, ok := recvEvent(t, ch); !ok {
			t.Fatal("channel closed before the first event")
		}

		cancel()
		// The second event may already sit in the buffer; drain it.
		for {
			if _, ok := recvEvent(t, ch); !ok {
				break
			}
		}
	})
}

func testVersionMismatch(t *testing.T) {
	tests := []struct {
		name string
		mode string
		want []string // regular expressions the error must match
	}{
		{
			// The driver knows both lists and says so itself.
			name: "sdk_driver",
			mode: modeSDKVersion3,
			want: []string{`driver speaks contract versions \[3\], hyperd speaks \[1 2\]`},
		},
		{
			// A driver that leaves it to go-plugin: the host names its
			// own versions, go-plugin the driver's.
			name: "raw_go_plugin_driver",
			mode: modeRawVersion3,
			want: []string{`hyperd speaks contract versions \[1 2\]`, `[Pp]lugin version:? 3\b`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := launchErr(t, tt.mode, 0)
			if err == nil {
				t.Fatal("Launch of a version 3 driver: err = nil")
			}
			t.Logf("Launch: %v", err)
			// The binary's path may hold any digits; look at the rest.
			msg := strings.ReplaceAll(err.Error(), os.Args[0], "PATH")
			for _, re := range tt.want {
				if !regexp.MustCompile(re).MatchString(msg) {
					t.Errorf("Launch: err = %q, want it to match %s", msg, re)
				}
			}
		})
	}
}

func testNotAPlugin(t *testing.T) {
	tests := []struct {
		mode    string
		timeout time.Duration
		within  time.Duration
	}{
		{modeGarbage, 5 * time.Second, 3 * time.Second},
		{modeWrongCookie, 5 * time.Second, 3 * time.Second},
		{modeSilent, time.Second, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			begin := time.Now()
			p, err := launchErr(t, tt.mode, tt.timeout)
			elapsed := time.Since(begin)
			if err == nil {
				p.Close()
				t.Fatal("Launch: err = nil")
			}
			if elapsed > tt.within {
				t.Errorf("Launch failed after %s, want within %s: %v", elapsed, tt.within, err)
			}
			t.Logf("Launch: %v (after %s)", err, elapsed.Round(time.Millisecond))
		})
	}
}

func testPluginKilled(t *testing.T) {
	p := launch(t, modeRoundTrip)
	ctx := callCtx(t)
	if _, err := p.Status(ctx, fixtureVMID, fixtureHandle); err != nil {
		t.Fatalf("Status before kill: %v", err)
	}

	proc, err := os.FindProcess(p.PID())
	if err != nil {
		t.Fatalf("find driver process %d: %v", p.PID(), err)
	}
	if err := proc.Kill(); err != nil {
		t.Fatalf("kill driver process %d: %v", p.PID(), err)
	}

	begin := time.Now()
	_, err = p.Status(ctx, fixtureVMID, fixtureHandle)
	if elapsed := time.Since(begin); elapsed > 2*time.Second {
		t.Errorf("Status after kill returned after %s, want promptly", elapsed)
	}
	if !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("Status after kill: err = %v, want ErrUnavailable", err)
	}

	deadline := time.Now().Add(5 * time.Second)
	for !p.Exited() {
		if time.Now().After(deadline) {
			t.Fatal("Exited() still false 5s after kill")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
