package drivertest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hyperd/hyperd/sdk"
)

// eventLog keeps every event one driver sends, from its launch on.
type eventLog struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the reader ends

	mu     sync.Mutex
	events []sdk.Event
	more   chan struct{} // signalled, without blocking, on each event
}

// watchEvents subscribes to d's events. The subscription lives until
// stop, not as long as a call: it spans the check.
func watchEvents(d sdk.Driver) (*eventLog, error) {
	ctx, cancel := context.WithCancel(context.Background())
	l := &eventLog{cancel: cancel, done: make(chan struct{}), more: make(chan struct{}, 1)}
	ch, err := d.Events(ctx)
	if err != nil {
		cancel()
		close(l.done)
		return l, err
	}
	go func() {
		defer close(l.done)
		for ev := range ch {
			l.mu.Lock()
			l.events = append(l.events, ev)
			l.mu.Unlock()
			select {
			case l.more <- struct{}{}:
			default:
			}
		}
	}()
	return l, nil
}

// stop ends the subscription and waits for its reader, which ends when
// the driver closes the channel. A driver that never closes it costs a
// bounded wait and a goroutine, not a hung check.
func (l *eventLog) stop() {
	l.cancel()
	select {
	case <-l.done:
	case <-time.After(5 * time.Second):
	}
}

// mark returns the index the next event will have.
func (l *eventLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// wait returns the first event from index from on that match accepts,
// waiting up to limit.
func (l *eventLog) wait(ctx context.Context, from int, limit time.Duration, match func(sdk.Event) bool) (sdk.Event, bool) {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		l.mu.Lock()
		for i := from; i < len(l.events); i++ {
			if match(l.events[i]) {
				ev := l.events[i]
				l.mu.Unlock()
				return ev, true
			}
		}
		from = len(l.events)
		l.mu.Unlock()
		select {
		case <-l.more:
		case <-l.done:
			// Drained: one last look, then give up.
			l.mu.Lock()
			n := len(l.events)
			l.mu.Unlock()
			if n == from {
				return sdk.Event{}, false
			}
		case <-timer.C:
			return sdk.Event{}, false
		case <-ctx.Done():
			return sdk.Event{}, false
		}
	}
}

// summary lists the events so far, for a failure message.
func (l *eventLog) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.events) == 0 {
		return "nothing"
	}
	var parts []string
	for _, ev := range l.events {
		parts = append(parts, fmt.Sprintf("%s %s (%s)", ev.VMID, ev.Type, ev.Reason))
	}
	return strings.Join(parts, ", ")
}
