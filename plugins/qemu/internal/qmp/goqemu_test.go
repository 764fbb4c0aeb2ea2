package qmp

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// stillBlocked is how long a go-qemu call must stay stuck for the test
// to call it hung; the fake server answers in microseconds.
const stillBlocked = 300 * time.Millisecond

// TestGoQEMUSocketMonitorFaults shows, against the same kind of fake
// QEMU, the go-qemu SocketMonitor faults this package exists to avoid.
// Each case asserts the failure and then releases go-qemu, so nothing
// hangs or leaks. If one starts passing, go-qemu fixed the fault.
func TestGoQEMUSocketMonitorFaults(t *testing.T) {
	tests := []struct {
		name   string
		script func(c *fakeConn, release <-chan struct{}) error
		check  func(t *testing.T, mon *qmp.SocketMonitor, release func())
	}{
		{
			name: "reply over 64 KiB fails",
			script: func(c *fakeConn, _ <-chan struct{}) error {
				if err := goHandshake(c); err != nil {
					return err
				}
				if _, err := c.next(); err != nil {
					return err
				}
				big := fmt.Sprintf(`{"return": "%s"}`, strings.Repeat("x", 4<<20))
				// go-qemu stops reading after 64 KiB and closes, so this
				// write is expected to fail; the client's result is what
				// the test checks.
				_ = c.send(big)
				return c.waitClose()
			},
			check: func(t *testing.T, mon *qmp.SocketMonitor, _ func()) {
				if err := mon.Connect(); err != nil {
					t.Fatalf("Connect: %v", err)
				}
				err := within(t, func() error {
					_, err := mon.Run([]byte(`{"execute":"query-big"}`))
					return err
				})
				if !errors.Is(err, bufio.ErrTooLong) {
					t.Errorf("Run error = %v, want bufio.ErrTooLong", err)
				}
			},
		},
		{
			name: "connect without greeting hangs",
			script: func(c *fakeConn, release <-chan struct{}) error {
				<-release
				return nil // closing the connection unblocks go-qemu
			},
			check: func(t *testing.T, mon *qmp.SocketMonitor, release func()) {
				done := make(chan error, 1)
				go func() { done <- mon.Connect() }()
				select {
				case err := <-done:
					t.Fatalf("Connect returned %v without a greeting", err)
				case <-time.After(stillBlocked):
				}
				release()
				if err := waitErr(t, done); err == nil {
					t.Error("Connect succeeded without a greeting")
				}
			},
		},
		{
			name: "undrained events channel blocks replies",
			script: func(c *fakeConn, _ <-chan struct{}) error {
				if err := goHandshake(c); err != nil {
					return err
				}
				if _, err := c.next(); err != nil {
					return err
				}
				if err := c.send(event("POWERDOWN"), `{"return": {}}`); err != nil {
					return err
				}
				return c.waitClose()
			},
			check: func(t *testing.T, mon *qmp.SocketMonitor, _ func()) {
				if err := mon.Connect(); err != nil {
					t.Fatalf("Connect: %v", err)
				}
				events, err := mon.Events(t.Context())
				if err != nil {
					t.Fatalf("Events: %v", err)
				}

				done := make(chan error, 1)
				go func() {
					_, err := mon.Run([]byte(`{"execute":"system_powerdown"}`))
					done <- err
				}()
				select {
				case err := <-done:
					t.Fatalf("Run returned %v while its reader was stuck on an event", err)
				case <-time.After(stillBlocked):
				}

				// Draining the events channel is the only way out; it
				// ends when Disconnect's close ends go-qemu's reader.
				drained := make(chan struct{})
				go func() {
					defer close(drained)
					for range events {
					}
				}()
				if err := waitErr(t, done); err != nil {
					t.Errorf("Run after draining: %v", err)
				}
				if err := mon.Disconnect(); err != nil {
					t.Errorf("Disconnect: %v", err)
				}
				<-drained
			},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			f := newFakeQEMU(t, func(c *fakeConn) error { return tt.script(c, release) })
			mon, err := qmp.NewSocketMonitor("unix", f.path, wait)
			if err != nil {
				t.Fatalf("NewSocketMonitor: %v", err)
			}
			var once bool
			releaseOnce := func() {
				if !once {
					once = true
					close(release)
				}
			}
			t.Cleanup(func() {
				releaseOnce()
				_ = mon.Disconnect() // some cases disconnect already
			})

			tt.check(t, mon, releaseOnce)
		})
	}
}

// goHandshake is the handshake go-qemu expects: it sends no id, so the
// reply carries none.
func goHandshake(c *fakeConn) error {
	if err := c.send(fakeGreeting); err != nil {
		return err
	}
	cmd, err := c.next()
	if err != nil {
		return err
	}
	if cmd.Execute != "qmp_capabilities" {
		return fmt.Errorf("got %q, want qmp_capabilities", cmd.Execute)
	}
	return c.send(`{"return": {}}`)
}

// within runs f and fails the test if it does not return within wait.
func within(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	return waitErr(t, done)
}

func waitErr(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(wait):
		t.Fatalf("still blocked after %v", wait)
		return nil
	}
}
