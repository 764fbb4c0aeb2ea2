package qmp

import (
	"context"

	"github.com/digitalocean/go-qemu/qmp"
)

// eventState is the Monitor's event fan-out, guarded by Monitor.mu.
type eventState struct {
	subs map[*subscriber]struct{}
	// backlog holds events that arrived before the first subscriber,
	// including those before the greeting, which no caller could have
	// subscribed for yet. Bounded by the event buffer size.
	backlog    []qmp.Event
	subscribed bool // a first subscriber has taken the backlog
	dropped    uint64
}

type subscriber struct {
	ch   chan qmp.Event
	stop func() bool // stops the context.AfterFunc that unsubscribes
}

// Events subscribes to QEMU's events. Each call returns a new channel
// with its own buffer (see WithEventBuffer) that gets every event from
// then on; the first call's channel also starts with the events that
// arrived before it, up to the buffer size, so that events sent during
// the handshake are not lost.
//
// The reader never waits for a subscriber: when a channel's buffer is
// full the event is dropped for that subscriber only and counted in
// Dropped. Command replies are therefore never held up by a slow reader.
//
// The channel closes when ctx ends or the connection ends. After the
// connection has ended Events returns an error wrapping ErrClosed.
func (m *Monitor) Events(ctx context.Context) (<-chan qmp.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, m.err
	}

	s := &subscriber{ch: make(chan qmp.Event, m.cfg.eventBuffer)}
	if !m.events.subscribed {
		// The backlog is never longer than the buffer, so this never
		// blocks.
		for _, e := range m.events.backlog {
			s.ch <- e
		}
		m.events.backlog = nil
		m.events.subscribed = true
	}
	m.events.subs[s] = struct{}{}

	// AfterFunc rather than a goroutine per subscriber: nothing is left
	// running for a subscription whose context never ends; the reader
	// stops it when the connection ends.
	s.stop = context.AfterFunc(ctx, func() { m.unsubscribe(s) })
	return s.ch, nil
}

// Dropped is how many events were not delivered because a subscriber's
// buffer (or the backlog kept for the first subscriber) was full, summed
// over all subscribers. An event dropped for two subscribers counts twice.
func (m *Monitor) Dropped() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.events.dropped
}

func (m *Monitor) unsubscribe(s *subscriber) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Absent when the reader closed it already at the end of the
	// connection; closing twice would panic.
	if _, ok := m.events.subs[s]; ok {
		delete(m.events.subs, s)
		close(s.ch)
	}
}

// publish hands e to every subscriber without blocking. Called by the
// reader only.
func (m *Monitor) publish(e qmp.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.events.subscribed {
		if len(m.events.backlog) < m.cfg.eventBuffer {
			m.events.backlog = append(m.events.backlog, e)
		} else {
			m.events.dropped++
		}
		return
	}
	for s := range m.events.subs {
		select {
		case s.ch <- e:
		default:
			m.events.dropped++
		}
	}
}

// closeSubscribers ends every subscription. Called with m.mu held, by the
// reader only, at the end of the connection.
func (m *Monitor) closeSubscribers() {
	for s := range m.events.subs {
		s.stop()
		close(s.ch)
	}
	m.events.subs = nil
	m.events.backlog = nil
}
