package qmp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// fakeQEMU is a scripted QMP server on a unix socket. Each accepted
// connection runs script in its own goroutine; the script's error, if
// any, fails the test.
type fakeQEMU struct {
	t      *testing.T
	path   string
	ln     net.Listener
	script func(c *fakeConn) error

	mu    sync.Mutex
	conns []net.Conn

	wg        sync.WaitGroup
	closeOnce sync.Once
}

func newFakeQEMU(t *testing.T, script func(c *fakeConn) error) *fakeQEMU {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qmp.sock")
	if len(path) > 100 { // sun_path is 108 bytes on Linux
		t.Fatalf("socket path too long for a unix socket: %s", path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("listen %s: %v", path, err)
	}

	f := &fakeQEMU{t: t, path: path, ln: ln, script: script}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(f.close)
	return f
}

func (f *fakeQEMU) serve() {
	defer f.wg.Done()
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			return // listener closed
		}
		f.mu.Lock()
		f.conns = append(f.conns, conn)
		f.mu.Unlock()

		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer conn.Close()
			c := &fakeConn{conn: conn, dec: json.NewDecoder(conn)}
			if err := f.script(c); err != nil {
				f.t.Errorf("fake qemu: %v", err)
			}
		}()
	}
}

// close stops accepting, ends every connection and waits for the
// scripts, so that none outlives the test.
func (f *fakeQEMU) close() {
	f.closeOnce.Do(func() {
		f.ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
}

// fakeConn is one client connection as a script sees it.
type fakeConn struct {
	conn net.Conn
	dec  *json.Decoder
}

// command is what a script reads from the client.
type command struct {
	Execute string          `json:"execute"`
	ID      json.RawMessage `json:"id"`
}

const fakeGreeting = `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7},` +
	` "package": "fake"}, "capabilities": ["oob"]}}`

// send writes msgs in a single write, so that the client receives them
// together, as QEMU's output buffer often delivers them.
func (c *fakeConn) send(msgs ...string) error {
	if _, err := io.WriteString(c.conn, strings.Join(msgs, "\r\n")+"\r\n"); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// expect reads one command and checks its name and that it has an id.
func (c *fakeConn) expect(name string) (command, error) {
	var cmd command
	if err := c.dec.Decode(&cmd); err != nil {
		return cmd, fmt.Errorf("read %s: %w", name, err)
	}
	if cmd.Execute != name {
		return cmd, fmt.Errorf("got command %q, want %q", cmd.Execute, name)
	}
	if cmd.ID == nil {
		return cmd, fmt.Errorf("command %s has no id", name)
	}
	return cmd, nil
}

// handshake greets and answers qmp_capabilities.
func (c *fakeConn) handshake() error {
	if err := c.send(fakeGreeting); err != nil {
		return err
	}
	cmd, err := c.expect("qmp_capabilities")
	if err != nil {
		return err
	}
	return c.send(reply(cmd, `{}`))
}

// next reads one command, whatever its name.
func (c *fakeConn) next() (command, error) {
	var cmd command
	if err := c.dec.Decode(&cmd); err != nil {
		return cmd, fmt.Errorf("read command: %w", err)
	}
	return cmd, nil
}

// waitClose reads until the client goes away.
func (c *fakeConn) waitClose() error {
	var v json.RawMessage
	for {
		if err := c.dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
				errors.Is(err, syscall.ECONNRESET) {
				return nil
			}
			return fmt.Errorf("wait for close: %w", err)
		}
	}
}

func reply(cmd command, ret string) string {
	return fmt.Sprintf(`{"return": %s, "id": %s}`, ret, cmd.ID)
}

func event(name string) string {
	return fmt.Sprintf(`{"timestamp": {"seconds": 1700000000, "microseconds": 42},`+
		` "event": %q, "data": {"guest": false}}`, name)
}
