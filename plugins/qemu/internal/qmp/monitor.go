package qmp

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/digitalocean/go-qemu/qmp"
)

// Monitor is one QMP connection to one QEMU process. It implements
// go-qemu's qmp.Monitor, so qmp/raw's generated commands run on it:
//
//	m, err := qmp.Dial(ctx, "unix", sock)
//	...
//	status, err := raw.NewMonitor(m).QueryStatus()
//
// All methods are safe for concurrent use. One goroutine, started by Dial
// or Open and ended by the end of the connection, reads the socket; it
// never blocks on a caller.
type Monitor struct {
	conn net.Conn
	cfg  config

	version qmp.Version // set by Open before it returns, read-only after
	caps    []string    // same

	// greeting carries the first greeting from the reader to Open; it is
	// buffered so the reader never waits for Open, which may have given
	// up already.
	greeting chan greeting

	// writeSem serializes writes so two commands' bytes never interleave
	// on the socket. It is a channel, not a mutex, so that a writer
	// waiting behind a stuck one can give up when its context ends.
	writeSem chan struct{}

	nextID atomic.Uint64

	// done is closed by the reader goroutine, its only closer, after it
	// has failed every pending command and closed every subscription.
	done chan struct{}

	mu sync.Mutex
	// cause is why the monitor is closing, set by the first of
	// Disconnect or a failed write before they close conn, so that the
	// reader reports it rather than the "use of closed connection" that
	// its read then returns.
	cause   error
	err     error // set with closed; what Err returns
	closed  bool
	pending map[uint64]chan<- result
	events  eventState
}

// compile-time check that raw.NewMonitor accepts a *Monitor.
var _ qmp.Monitor = (*Monitor)(nil)

// Dial connects to QEMU's QMP socket at addr ("unix" and a socket path, or
// "tcp" and host:port), reads the greeting and negotiates capabilities.
// ctx bounds the whole handshake, not the Monitor's life: a QEMU that
// accepts but never greets makes Dial fail when ctx ends, with an error
// wrapping ctx.Err(). The Monitor stays connected until Disconnect or
// until QEMU goes away.
func Dial(ctx context.Context, network, addr string, opts ...Option) (*Monitor, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("dial qmp %s %s: %w", network, addr, err)
	}

	m, err := Open(ctx, conn, opts...)
	if err != nil {
		return nil, fmt.Errorf("qmp %s %s: %w", network, addr, err)
	}
	return m, nil
}

// Open is Dial for a connection the caller already has, for example one
// end of a socketpair whose other end QEMU got with -qmp fd. It takes
// ownership of conn: conn is closed when Open fails or when the Monitor
// ends. ctx bounds only the handshake.
func Open(ctx context.Context, conn net.Conn, opts ...Option) (_ *Monitor, err error) {
	m := &Monitor{
		conn:     conn,
		cfg:      newConfig(opts),
		greeting: make(chan greeting, 1),
		writeSem: make(chan struct{}, 1),
		done:     make(chan struct{}),
		pending:  make(map[uint64]chan<- result),
	}
	m.events.subs = make(map[*subscriber]struct{})
	go m.read()

	defer func() {
		if err != nil {
			_ = m.Disconnect() // the handshake error is the one worth returning
		}
	}()

	// QEMU sends the greeting unprompted as soon as it accepts; events
	// may come before it and are kept for the first subscriber.
	select {
	case g := <-m.greeting:
		m.version = g.QMP.Version
		m.caps = g.QMP.Capabilities
	case <-ctx.Done():
		return nil, fmt.Errorf("no greeting from qemu: %w", ctx.Err())
	case <-m.done:
		return nil, fmt.Errorf("no greeting from qemu: %w", m.Err())
	}

	// The capabilities command goes through RunContext like any other,
	// so its reply is matched by id and an event QEMU sends before it is
	// not mistaken for it.
	if _, err := m.RunContext(ctx, []byte(`{"execute":"qmp_capabilities"}`)); err != nil {
		return nil, fmt.Errorf("negotiate capabilities: %w", err)
	}
	return m, nil
}

// Connect exists to satisfy qmp.Monitor. A Monitor from Dial or Open is
// already connected and negotiated, so Connect only reports the
// connection: nil while it is up, and Err (wrapping ErrClosed) once it has
// ended. It never reconnects; Dial a new Monitor for that.
func (m *Monitor) Connect() error {
	select {
	case <-m.done:
		return m.Err()
	default:
		return nil
	}
}

// Disconnect closes the connection and waits for the reader goroutine to
// end. Pending commands fail with ErrClosed and event channels close. It
// returns the socket's close error the first time and nil after.
func (m *Monitor) Disconnect() error {
	err := m.closeWith(fmt.Errorf("%w: disconnected", ErrClosed))
	<-m.done
	return err
}

// Done is closed when the connection has ended for any reason, after
// pending commands have failed and event channels have closed. A driver
// selects on it to notice QEMU going away.
func (m *Monitor) Done() <-chan struct{} {
	return m.done
}

// Err is nil while the connection is up. After Done is closed it tells
// why the connection ended, wrapping ErrClosed (and the read error, such
// as io.EOF when QEMU exited).
func (m *Monitor) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Version is the QEMU version from the greeting.
func (m *Monitor) Version() qmp.Version {
	return m.version
}

// Capabilities are the QMP capabilities QEMU offered in its greeting
// (such as "oob"). None is enabled: see the package's limitations.
func (m *Monitor) Capabilities() []string {
	return slices.Clone(m.caps)
}

// closeWith records cause, unless a cause is already recorded, and
// closes the socket, which ends the reader. It returns the close error
// of the first call only.
func (m *Monitor) closeWith(cause error) error {
	m.mu.Lock()
	first := m.cause == nil
	if first {
		m.cause = cause
	}
	m.mu.Unlock()

	if !first {
		return nil
	}
	if err := m.conn.Close(); err != nil {
		return fmt.Errorf("close qmp socket: %w", err)
	}
	return nil
}
