package qmp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
	"github.com/digitalocean/go-qemu/qmp/raw"
	"go.uber.org/goleak"
)

// wait bounds every blocking step of a test, so a regression fails
// instead of hanging.
const wait = 5 * time.Second

const statusPrelaunch = `{"status": "prelaunch", "singlestep": false, "running": false}`

// TestMonitorScripted runs the Monitor against a fake QEMU that does, on
// purpose, each thing go-qemu's SocketMonitor gets wrong.
func TestMonitorScripted(t *testing.T) {
	tests := []struct {
		name   string
		opts   []Option
		script func(c *fakeConn) error
		check  func(t *testing.T, m *Monitor)
	}{
		{
			name: "event right after capabilities",
			script: func(c *fakeConn) error {
				if err := c.send(fakeGreeting); err != nil {
					return err
				}
				caps, err := c.expect("qmp_capabilities")
				if err != nil {
					return err
				}
				// One event before the capabilities reply, one right after.
				if err := c.send(event("RESUME"), reply(caps, `{}`), event("STOP")); err != nil {
					return err
				}
				return serveStatus(c)
			},
			check: func(t *testing.T, m *Monitor) {
				ch := subscribe(t, m)
				checkStatus(t, m)
				recvEvents(t, ch, "RESUME", "STOP")
			},
		},
		{
			name: "events before greeting",
			script: func(c *fakeConn) error {
				if err := c.send(event("FIRST"), event("SECOND"), fakeGreeting); err != nil {
					return err
				}
				caps, err := c.expect("qmp_capabilities")
				if err != nil {
					return err
				}
				if err := c.send(reply(caps, `{}`)); err != nil {
					return err
				}
				return serveStatus(c)
			},
			check: func(t *testing.T, m *Monitor) {
				if got := m.Version().String(); got != "7.2.0" {
					t.Errorf("Version = %s, want 7.2.0", got)
				}
				ch := subscribe(t, m)
				checkStatus(t, m)
				recvEvents(t, ch, "FIRST", "SECOND")
			},
		},
		{
			name: "event between greeting and capabilities reply",
			script: func(c *fakeConn) error {
				// Sent in one write with the greeting, so it sits in the
				// client's read buffer behind it.
				if err := c.send(fakeGreeting, event("BETWEEN")); err != nil {
					return err
				}
				caps, err := c.expect("qmp_capabilities")
				if err != nil {
					return err
				}
				if err := c.send(reply(caps, `{}`)); err != nil {
					return err
				}
				return serveStatus(c)
			},
			check: func(t *testing.T, m *Monitor) {
				ch := subscribe(t, m)
				checkStatus(t, m)
				recvEvents(t, ch, "BETWEEN")
			},
		},
		{
			name: "event before command reply",
			script: func(c *fakeConn) error {
				if err := c.handshake(); err != nil {
					return err
				}
				cmd, err := c.expect("system_powerdown")
				if err != nil {
					return err
				}
				// What QEMU really does for system_powerdown.
				if err := c.send(event("POWERDOWN"), reply(cmd, `{}`)); err != nil {
					return err
				}
				return c.waitClose()
			},
			check: func(t *testing.T, m *Monitor) {
				ch := subscribe(t, m)
				if err := raw.NewMonitor(m).SystemPowerdown(); err != nil {
					t.Fatalf("SystemPowerdown: %v", err)
				}
				recvEvents(t, ch, "POWERDOWN")
			},
		},
		{
			name: "replies out of order",
			script: func(c *fakeConn) error {
				if err := c.handshake(); err != nil {
					return err
				}
				var cmds []command
				for range 2 {
					cmd, err := c.next()
					if err != nil {
						return err
					}
					cmds = append(cmds, cmd)
				}
				// Answer the later command first.
				var out []string
				for i := len(cmds) - 1; i >= 0; i-- {
					switch cmds[i].Execute {
					case "query-status":
						out = append(out, reply(cmds[i], statusPrelaunch))
					default:
						out = append(out, reply(cmds[i], `{"name": "vm-1"}`))
					}
				}
				if err := c.send(out...); err != nil {
					return err
				}
				return c.waitClose()
			},
			check: func(t *testing.T, m *Monitor) {
				var wg sync.WaitGroup
				wg.Go(func() { checkStatus(t, m) })
				wg.Go(func() {
					name, err := raw.NewMonitor(m).QueryName()
					if err != nil {
						t.Errorf("QueryName: %v", err)
						return
					}
					if name.Name == nil || *name.Name != "vm-1" {
						t.Errorf("QueryName = %+v, want vm-1", name)
					}
				})
				wg.Wait()
			},
		},
		{
			name: "reply of 4 MiB",
			script: func(c *fakeConn) error {
				if err := c.handshake(); err != nil {
					return err
				}
				cmd, err := c.expect("query-big")
				if err != nil {
					return err
				}
				big := `"` + strings.Repeat("x", 4<<20) + `"`
				if err := c.send(reply(cmd, big)); err != nil {
					return err
				}
				return c.waitClose()
			},
			check: func(t *testing.T, m *Monitor) {
				out, err := m.Run([]byte(`{"execute":"query-big"}`))
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				if len(out) < 4<<20 {
					t.Errorf("reply is %d bytes, want over %d", len(out), 4<<20)
				}
			},
		},
		{
			name: "command error",
			script: func(c *fakeConn) error {
				if err := c.handshake(); err != nil {
					return err
				}
				cmd, err := c.expect("nope")
				if err != nil {
					return err
				}
				err = c.send(fmt.Sprintf(`{"id": %s, "error": {"class": "CommandNotFound",`+
					` "desc": "The command nope has not been found"}}`, cmd.ID))
				if err != nil {
					return err
				}
				return serveStatus(c)
			},
			check: func(t *testing.T, m *Monitor) {
				_, err := m.Run([]byte(`{"execute":"nope"}`))
				var cerr *CommandError
				if !errors.As(err, &cerr) {
					t.Fatalf("Run error = %v, want a *CommandError", err)
				}
				if cerr.Class != "CommandNotFound" || !strings.Contains(cerr.Desc, "nope") {
					t.Errorf("CommandError = %+v", cerr)
				}
				checkStatus(t, m) // the connection survives an error reply
			},
		},
		{
			name: "command deadline",
			script: func(c *fakeConn) error {
				if err := c.handshake(); err != nil {
					return err
				}
				slow, err := c.expect("query-status")
				if err != nil {
					return err
				}
				next, err := c.expect("query-name")
				if err != nil {
					return err
				}
				// The late reply to the abandoned command comes first.
				err = c.send(reply(slow, statusPrelaunch), reply(next, `{"name": "vm-1"}`))
				if err != nil {
					return err
				}
				return c.waitClose()
			},
			check: func(t *testing.T, m *Monitor) {
				ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
				defer cancel()
				_, err := m.RunContext(ctx, []byte(`{"execute":"query-status"}`))
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("RunContext error = %v, want DeadlineExceeded", err)
				}

				out, err := m.Run([]byte(`{"execute":"query-name"}`))
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				if !strings.Contains(string(out), "vm-1") {
					t.Errorf("query-name got %s, the late reply to another command", out)
				}
			},
		},
		{
			name: "run default timeout",
			opts: []Option{WithCommandTimeout(100 * time.Millisecond)},
			script: func(c *fakeConn) error {
				if err := c.handshake(); err != nil {
					return err
				}
				return c.waitClose() // never answers
			},
			check: func(t *testing.T, m *Monitor) {
				start := time.Now()
				_, err := m.Run([]byte(`{"execute":"query-status"}`))
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Run error = %v, want DeadlineExceeded", err)
				}
				if d := time.Since(start); d > wait {
					t.Errorf("Run took %v", d)
				}
			},
		},
		{
			name: "server dies mid-command",
			script: func(c *fakeConn) error {
				if err := c.handshake(); err != nil {
					return err
				}
				for range 3 {
					if _, err := c.next(); err != nil {
						return err
					}
				}
				return nil // and the connection closes unanswered
			},
			check: func(t *testing.T, m *Monitor) {
				ch := subscribe(t, m)
				if err := m.Connect(); err != nil {
					t.Errorf("Connect while up = %v, want nil", err)
				}

				errs := make(chan error, 3)
				for range 3 {
					go func() {
						// No deadline: only the end of the connection
						// can release these.
						_, err := m.RunContext(context.Background(),
							[]byte(`{"execute":"query-status"}`))
						errs <- err
					}()
				}
				for range 3 {
					select {
					case err := <-errs:
						if !errors.Is(err, ErrClosed) {
							t.Errorf("pending command error = %v, want ErrClosed", err)
						}
					case <-time.After(wait):
						t.Fatal("pending command still waiting after the server died")
					}
				}

				select {
				case <-m.Done():
				case <-time.After(wait):
					t.Fatal("Done not closed")
				}
				if err := m.Err(); !errors.Is(err, ErrClosed) || !errors.Is(err, io.EOF) {
					t.Errorf("Err = %v, want ErrClosed and io.EOF", err)
				}
				if _, ok := <-ch; ok {
					t.Error("event channel still open")
				}
				if err := m.Connect(); !errors.Is(err, ErrClosed) {
					t.Errorf("Connect after close = %v, want ErrClosed", err)
				}
				if _, err := m.Events(t.Context()); !errors.Is(err, ErrClosed) {
					t.Errorf("Events after close = %v, want ErrClosed", err)
				}
				if _, err := m.Run([]byte(`{"execute":"query-status"}`)); !errors.Is(err, ErrClosed) {
					t.Errorf("Run after close = %v, want ErrClosed", err)
				}
			},
		},
		{
			name: "slow subscriber does not block replies",
			opts: []Option{WithEventBuffer(4)},
			script: func(c *fakeConn) error {
				if err := c.handshake(); err != nil {
					return err
				}
				cmd, err := c.expect("query-status")
				if err != nil {
					return err
				}
				msgs := make([]string, 0, 1001)
				for i := range 1000 {
					msgs = append(msgs, event(fmt.Sprintf("E%d", i)))
				}
				if err := c.send(append(msgs, reply(cmd, statusPrelaunch))...); err != nil {
					return err
				}
				return c.waitClose()
			},
			check: func(t *testing.T, m *Monitor) {
				stuck := subscribe(t, m) // never read until the end
				checkStatus(t, m)
				// The reader handles messages in order, so all 1000 events
				// were offered before the reply was delivered.
				if got := m.Dropped(); got != 996 {
					t.Errorf("Dropped = %d, want 996", got)
				}
				recvEvents(t, stuck, "E0", "E1", "E2", "E3")
			},
		},
		{
			name: "subscriptions end with their context or the connection",
			script: func(c *fakeConn) error {
				if err := c.handshake(); err != nil {
					return err
				}
				return c.waitClose()
			},
			check: func(t *testing.T, m *Monitor) {
				ctx, cancel := context.WithCancel(t.Context())
				short, err := m.Events(ctx)
				if err != nil {
					t.Fatalf("Events: %v", err)
				}
				long := subscribe(t, m)

				cancel()
				waitClosed(t, short, "channel of a cancelled subscription")
				select {
				case <-long:
					t.Fatal("live subscription closed with another's context")
				default:
				}

				if err := m.Disconnect(); err != nil {
					t.Errorf("Disconnect: %v", err)
				}
				waitClosed(t, long, "channel after Disconnect")
				if err := m.Disconnect(); err != nil {
					t.Errorf("second Disconnect = %v, want nil", err)
				}
			},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeQEMU(t, tt.script)
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			defer cancel()
			// Run's default would let a lost reply stall a case for 30 s.
			opts := append([]Option{WithCommandTimeout(wait)}, tt.opts...)
			m, err := Dial(ctx, "unix", f.path, opts...)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			t.Cleanup(func() { _ = m.Disconnect() }) // some cases disconnect already

			tt.check(t, m)
		})
	}
}

// TestDialFails checks that a QEMU that misbehaves during the handshake
// makes Dial fail, within its context, with an error that says where.
func TestDialFails(t *testing.T) {
	const deadline = 300 * time.Millisecond
	tests := []struct {
		name   string
		script func(c *fakeConn) error
		want   error  // errors.Is target
		msg    string // in the error text
	}{
		{
			name:   "never greets",
			script: func(c *fakeConn) error { return c.waitClose() },
			want:   context.DeadlineExceeded,
			msg:    "no greeting",
		},
		{
			name:   "closes before greeting",
			script: func(c *fakeConn) error { return nil },
			want:   ErrClosed,
			msg:    "no greeting",
		},
		{
			name: "never answers capabilities",
			script: func(c *fakeConn) error {
				if err := c.send(fakeGreeting); err != nil {
					return err
				}
				if _, err := c.expect("qmp_capabilities"); err != nil {
					return err
				}
				return c.waitClose()
			},
			want: context.DeadlineExceeded,
			msg:  "negotiate capabilities",
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeQEMU(t, tt.script)
			ctx, cancel := context.WithTimeout(t.Context(), deadline)
			defer cancel()

			start := time.Now()
			m, err := Dial(ctx, "unix", f.path)
			if err == nil {
				_ = m.Disconnect()
				t.Fatal("Dial succeeded")
			}
			if d := time.Since(start); d > deadline+time.Second {
				t.Errorf("Dial took %v with a %v context", d, deadline)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Dial error = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), f.path) {
				t.Errorf("Dial error %q does not say %q and the socket path", err, tt.msg)
			}
		})
	}
}

// TestConnectDisconnectCycles dials and ends many monitors, in the ways a
// connection ends, and checks that no goroutine is left behind.
func TestConnectDisconnectCycles(t *testing.T) {
	before := goleak.IgnoreCurrent()

	var conns atomic.Int32
	f := newFakeQEMU(t, func(c *fakeConn) error {
		if err := c.handshake(); err != nil {
			return err
		}
		cmd, err := c.expect("query-status")
		if err != nil {
			return err
		}
		if err := c.send(event("RESUME"), reply(cmd, statusPrelaunch)); err != nil {
			return err
		}
		// Every other connection, QEMU is the one to go away.
		if conns.Add(1)%2 == 0 {
			return nil
		}
		return c.waitClose()
	})

	for i := range 50 {
		ctx, cancel := context.WithTimeout(t.Context(), wait)
		m, err := Dial(ctx, "unix", f.path)
		if err != nil {
			cancel()
			t.Fatalf("cycle %d: Dial: %v", i, err)
		}
		subCtx, subCancel := context.WithCancel(ctx)
		if _, err := m.Events(subCtx); err != nil {
			t.Fatalf("cycle %d: Events: %v", i, err)
		}
		if _, err := m.Events(context.Background()); err != nil { // never cancelled
			t.Fatalf("cycle %d: Events: %v", i, err)
		}
		if i%3 == 0 {
			subCancel()
		}
		if _, err := m.RunContext(ctx, []byte(`{"execute":"query-status"}`)); err != nil {
			t.Fatalf("cycle %d: query-status: %v", i, err)
		}
		if err := m.Disconnect(); err != nil {
			t.Errorf("cycle %d: Disconnect: %v", i, err)
		}
		subCancel()
		cancel()
	}

	f.close()
	goleak.VerifyNone(t, before)
}

// TestEncodeCommand checks which commands are accepted and that the id is
// added without disturbing the arguments.
func TestEncodeCommand(t *testing.T) {
	tests := []struct {
		name    string
		cmd     string
		want    string // encoded line, without the newline
		wantErr bool
	}{
		{name: "plain", cmd: `{"execute":"stop"}`, want: `{"execute":"stop","id":7}`},
		{
			name: "arguments kept",
			cmd:  `{"execute":"device_del","arguments":{"id":"net0"}}`,
			want: `{"arguments":{"id":"net0"},"execute":"device_del","id":7}`,
		},
		{name: "not json", cmd: `stop`, wantErr: true},
		{name: "array", cmd: `[{"execute":"stop"}]`, wantErr: true},
		{name: "null", cmd: `null`, wantErr: true},
		{name: "no execute", cmd: `{"arguments":{}}`, wantErr: true},
		{name: "execute not a string", cmd: `{"execute":1}`, wantErr: true},
		{name: "caller id", cmd: `{"execute":"stop","id":"mine"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, line, err := encodeCommand([]byte(tt.cmd), 7)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidCommand) {
					t.Errorf("error = %v, want ErrInvalidCommand", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("encodeCommand: %v", err)
			}
			if got := strings.TrimSuffix(string(line), "\n"); got != tt.want {
				t.Errorf("line = %s, want %s", got, tt.want)
			}
		})
	}
}

// serveStatus answers one query-status and waits for the client to go.
func serveStatus(c *fakeConn) error {
	cmd, err := c.expect("query-status")
	if err != nil {
		return err
	}
	if err := c.send(reply(cmd, statusPrelaunch)); err != nil {
		return err
	}
	return c.waitClose()
}

func checkStatus(t *testing.T, m *Monitor) {
	t.Helper()
	st, err := raw.NewMonitor(m).QueryStatus()
	if err != nil {
		t.Errorf("QueryStatus: %v", err)
		return
	}
	if st.Status != raw.RunStatePrelaunch || st.Running {
		t.Errorf("QueryStatus = %+v, want prelaunch, not running", st)
	}
}

func subscribe(t *testing.T, m *Monitor) <-chan qmp.Event {
	t.Helper()
	ch, err := m.Events(t.Context())
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	return ch
}

// recvEvents receives len(names) events and checks their names in order.
func recvEvents(t *testing.T, ch <-chan qmp.Event, names ...string) {
	t.Helper()
	for _, name := range names {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("event channel closed, want %s", name)
			}
			if e.Event != name {
				t.Fatalf("event %s, want %s", e.Event, name)
			}
		case <-time.After(wait):
			t.Fatalf("no %s event within %v", name, wait)
		}
	}
}

func waitClosed(t *testing.T, ch <-chan qmp.Event, what string) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("%s not closed within %v", what, wait)
		}
	}
}
