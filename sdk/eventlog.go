package sdk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	driverv2 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v2"
)

// eventLog numbers a driver's events and keeps the most recent ones, so
// that a host whose stream broke can ask for what it missed. One log
// serves every stream of every contract version: it follows the driver's
// Events channel itself, from the first stream on, and hands each stream
// its own queue.
type eventLog struct {
	d     Driver
	size  int
	epoch string

	// startMu serializes starting the pump, which calls the driver.
	startMu sync.Mutex

	mu      sync.Mutex
	ring    []Event // oldest first, at most size, each with its Cursor
	next    uint64  // the sequence the next event gets
	subs    map[*logSub]struct{}
	running bool               // a pump follows the driver's channel
	cancel  context.CancelFunc // ends the pump; nil when not running
	closed  bool
}

func newEventLog(d Driver, size int) *eventLog {
	return &eventLog{d: d, size: size, epoch: newEpoch(), next: 1, subs: make(map[*logSub]struct{})}
}

// newEpoch returns a name for this process's sequence space that another
// driver process will not pick.
func newEpoch() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// logSub is one stream's view of the log: the events it has yet to send.
type logSub struct {
	wake chan struct{} // capacity 1: "the queue grew or the sub ended"

	mu    sync.Mutex
	queue []Event
	ended bool // the pump stopped: no more events will come
}

// subscribe registers a stream that wants the events after after (none
// when after is zero) and every new one, and starts following the
// driver's events if no pump does. gap is non-nil when some of the events
// asked for are lost. The subscription ends with ctx.
func (l *eventLog) subscribe(ctx context.Context, after EventCursor) (*logSub, *driverv2.EventsGap, error) {
	sub := &logSub{wake: make(chan struct{}, 1)}
	l.mu.Lock()
	backlog, gap := l.since(after)
	sub.queue = backlog
	l.subs[sub] = struct{}{}
	l.mu.Unlock()

	context.AfterFunc(ctx, func() {
		l.mu.Lock()
		delete(l.subs, sub)
		l.mu.Unlock()
	})
	if err := l.start(); err != nil {
		return nil, nil, err
	}
	return sub, gap, nil
}

// since returns the held events after c and, when some are lost, the gap
// that says so. l.mu must be held.
func (l *eventLog) since(c EventCursor) ([]Event, *driverv2.EventsGap) {
	if c.IsZero() {
		return nil, nil
	}
	oldest := l.next - uint64(len(l.ring))
	gap := &driverv2.EventsGap{
		AfterSequence:  c.Sequence,
		RequestedEpoch: c.Epoch,
		NextSequence:   oldest,
		Epoch:          l.epoch,
	}
	switch {
	case c.Epoch != l.epoch:
		gap.Reason = fmt.Sprintf("epoch %s is not this driver process's (%s): it was restarted", c.Epoch, l.epoch)
	case c.Sequence >= l.next:
		// Only a confused host asks for this; it may have missed
		// anything.
		gap.Reason = fmt.Sprintf("event %d is past the last one, %d", c.Sequence, l.next-1)
	case c.Sequence+1 < oldest:
		gap.Reason = fmt.Sprintf("events %d to %d fell out of the ring of the last %d", c.Sequence+1, oldest-1, l.size)
	default:
		return append([]Event(nil), l.ring[c.Sequence+1-oldest:]...), nil
	}
	return append([]Event(nil), l.ring...), gap
}

// start follows the driver's events unless a pump already does.
func (l *eventLog) start() error {
	l.startMu.Lock()
	defer l.startMu.Unlock()
	l.mu.Lock()
	if l.running || l.closed {
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()

	// The pump outlives the stream that started it: it ends with close,
	// or when the driver closes its channel.
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := l.d.Events(ctx)
	if err != nil {
		cancel()
		return fmt.Errorf("events: %w", err)
	}
	l.mu.Lock()
	l.running, l.cancel = true, cancel
	l.mu.Unlock()
	go l.pump(ch)
	return nil
}

// pump numbers each event of the driver's channel, keeps it and queues it
// for every stream. When the channel closes, every stream ends, as the
// driver's own stream would have, and the next stream starts a new pump.
func (l *eventLog) pump(ch <-chan Event) {
	for e := range ch {
		if e.Type == EventGap {
			continue // the host's to make, never a driver's
		}
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		l.mu.Lock()
		e.Cursor = EventCursor{Epoch: l.epoch, Sequence: l.next}
		l.next++
		l.ring = append(l.ring, e)
		if len(l.ring) > l.size {
			l.ring = l.ring[len(l.ring)-l.size:]
		}
		for s := range l.subs {
			s.push(e)
		}
		l.mu.Unlock()
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	l.cancel()
	l.running, l.cancel = false, nil
	for s := range l.subs {
		s.end()
		delete(l.subs, s)
	}
}

// close ends the pump; the driver's channel then closes and every stream
// ends.
func (l *eventLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.cancel != nil {
		l.cancel()
	}
}

func (s *logSub) push(e Event) {
	s.mu.Lock()
	s.queue = append(s.queue, e)
	s.mu.Unlock()
	s.signal()
}

func (s *logSub) end() {
	s.mu.Lock()
	s.ended = true
	s.mu.Unlock()
	s.signal()
}

func (s *logSub) signal() {
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// next returns the stream's next event, waiting for one. ok is false once
// ctx ends or the pump stopped with nothing left to send.
func (s *logSub) next(ctx context.Context) (e Event, ok bool) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			e = s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return e, true
		}
		ended := s.ended
		s.mu.Unlock()
		if ended {
			return Event{}, false
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return Event{}, false
		}
	}
}
