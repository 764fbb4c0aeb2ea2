package libvirt

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"libvirt.org/go/libvirt"

	"github.com/hyperd/hyperd/sdk"
)

var (
	loopOnce sync.Once
	loopErr  error
)

// startEventLoop registers libvirt's default event loop, which must
// happen before the first connection opens, and runs it on a goroutine
// for the rest of the process: libvirt offers no way to stop it, and
// every connection of every Driver in the process shares it.
func startEventLoop() error {
	loopOnce.Do(func() {
		if err := libvirt.EventRegisterDefaultImpl(); err != nil {
			loopErr = fmt.Errorf("register libvirt event loop: %w", err)
			return
		}
		go runEventLoop()
	})
	return loopErr
}

// runEventLoop dispatches libvirt's events, keepalives and close
// callbacks. It fails only when no loop is registered, which
// startEventLoop rules out; the pause keeps a surprise from spinning.
func runEventLoop() {
	for {
		if err := libvirt.EventRunDefaultImpl(); err != nil {
			time.Sleep(time.Second)
		}
	}
}

// callbacks is what a connection reports to its driver. They run on
// libvirt's event loop goroutine and must not block or call libvirt.
type callbacks struct {
	lifecycle     func(uri, uuid string, ev libvirt.DomainEventType, detail int)
	reboot        func(uri, uuid string)
	deviceRemoved func(uri, uuid, alias string)
	// reconnected runs on its own goroutine after a connection that had
	// been lost is opened again.
	reconnected func(uri string)
}

// conn is one libvirt connection that redials itself: a lost
// connection (libvirtd stopped or restarted) is noticed by the close
// callback or by IsAlive, and the next get opens a new one with fresh
// event callbacks.
type conn struct {
	uri string
	log hclog.Logger
	cb  callbacks

	mu      sync.Mutex
	s       *session // nil until the first dial and after Close
	everUp  bool
	lastErr error
}

// session is one open libvirt connection and its callback ids.
type session struct {
	c     *libvirt.Connect
	ids   []int
	hasCB bool
	// dead is set by the close callback, on libvirt's loop goroutine.
	dead atomic.Bool
}

func newConn(uri string, log hclog.Logger, cb callbacks) *conn {
	return &conn{uri: uri, log: log.With("uri", uri), cb: cb}
}

// get returns a live connection, dialing when there is none. Its error
// wraps sdk.ErrUnavailable and says what to do.
func (c *conn) get() (*libvirt.Connect, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.s; s != nil {
		if alive, err := s.c.IsAlive(); err == nil && alive && !s.dead.Load() {
			return s.c, nil
		}
		c.log.Warn("libvirt connection lost")
		s.close()
		c.s = nil
	}
	s, err := c.dial()
	if err != nil {
		if c.lastErr == nil || c.lastErr.Error() != err.Error() {
			c.log.Warn("cannot connect to libvirtd", "error", err)
		}
		c.lastErr = err
		return nil, err
	}
	c.s, c.lastErr = s, nil
	if c.everUp {
		c.log.Info("libvirt connection restored")
		go c.cb.reconnected(c.uri)
	}
	c.everUp = true
	return s.c, nil
}

// markDead drops the connection when err says it no longer works, so
// that the next get redials instead of failing again.
func (c *conn) markDead(err error) {
	if !connectionError(err) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s != nil {
		c.s.dead.Store(true)
	}
}

func (c *conn) dial() (_ *session, err error) {
	if err := startEventLoop(); err != nil {
		return nil, fmt.Errorf("%w: %w", err, sdk.ErrUnavailable)
	}
	lc, err := libvirt.NewConnect(c.uri)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to libvirtd at %s: %s; start libvirtd (and virtlogd): %w",
			c.uri, libvirtMessage(err), sdk.ErrUnavailable)
	}
	s := &session{c: lc}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if err := lc.RegisterCloseCallback(func(_ *libvirt.Connect, reason libvirt.ConnectCloseReason) {
		s.dead.Store(true)
		c.log.Debug("libvirt connection closed", "reason", int(reason))
	}); err != nil {
		return nil, fmt.Errorf("register close callback on %s: %s: %w", c.uri, libvirtMessage(err), sdk.ErrUnavailable)
	}
	s.hasCB = true

	id, err := lc.DomainEventLifecycleRegister(nil, func(_ *libvirt.Connect, d *libvirt.Domain, e *libvirt.DomainEventLifecycle) {
		if uuid, err := d.GetUUIDString(); err == nil {
			c.cb.lifecycle(c.uri, uuid, e.Event, e.Detail)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("register lifecycle events on %s: %s: %w", c.uri, libvirtMessage(err), sdk.ErrUnavailable)
	}
	s.ids = append(s.ids, id)
	id, err = lc.DomainEventRebootRegister(nil, func(_ *libvirt.Connect, d *libvirt.Domain) {
		if uuid, err := d.GetUUIDString(); err == nil {
			c.cb.reboot(c.uri, uuid)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("register reboot events on %s: %s: %w", c.uri, libvirtMessage(err), sdk.ErrUnavailable)
	}
	s.ids = append(s.ids, id)
	id, err = lc.DomainEventDeviceRemovedRegister(nil, func(_ *libvirt.Connect, d *libvirt.Domain, e *libvirt.DomainEventDeviceRemoved) {
		if uuid, err := d.GetUUIDString(); err == nil {
			c.cb.deviceRemoved(c.uri, uuid, e.DevAlias)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("register device events on %s: %s: %w", c.uri, libvirtMessage(err), sdk.ErrUnavailable)
	}
	s.ids = append(s.ids, id)
	c.log.Debug("libvirt connection opened")
	return s, nil
}

// close releases the session. On a dead connection the deregistrations
// fail, which changes nothing: the server side is gone with it.
func (s *session) close() {
	for _, id := range s.ids {
		_ = s.c.DomainEventDeregister(id) // see above
	}
	if s.hasCB {
		_ = s.c.UnregisterCloseCallback() // see above
	}
	_, _ = s.c.Close() // the remaining reference count is of no use
}

// close ends the connection for good, as a dying driver process would.
func (c *conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s != nil {
		c.s.close()
		c.s = nil
	}
}

// libvirtCode returns the libvirt error number in err, or zero.
func libvirtCode(err error) libvirt.ErrorNumber {
	var le libvirt.Error
	if errors.As(err, &le) {
		return le.Code
	}
	return 0
}

// libvirtMessage is libvirt's own sentence for err, without the Go
// binding's "virError(Code=...)" wrapping.
func libvirtMessage(err error) string {
	var le libvirt.Error
	if errors.As(err, &le) {
		return le.Message
	}
	return err.Error()
}

// connectionError reports whether err means the connection itself
// failed, rather than the call.
func connectionError(err error) bool {
	switch libvirtCode(err) {
	case libvirt.ERR_RPC, libvirt.ERR_NO_CONNECT, libvirt.ERR_INVALID_CONN:
		return true
	}
	return false
}
