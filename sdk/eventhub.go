package sdk

import (
	"context"
	"sync"
)

// EventHub fans a driver's events out to every caller of Events. A driver
// publishes each event once; the hub gives each subscriber its own
// unbounded queue drained by its own goroutine, so Publish never blocks
// the backend's reader, and a slow subscriber loses nothing, an exit
// above all. The zero value is not usable; call NewEventHub.
type EventHub struct {
	mu   sync.Mutex
	subs map[*hubSubscriber]struct{}
}

type hubSubscriber struct {
	mu    sync.Mutex
	queue []Event
	wake  chan struct{} // capacity 1: "the queue has grown"
}

// NewEventHub returns an empty hub.
func NewEventHub() *EventHub {
	return &EventHub{subs: make(map[*hubSubscriber]struct{})}
}

// Subscribe returns a channel of every event published from now on, in
// order. The channel closes when ctx ends; events still queued then are
// dropped. A driver's Events method can return it as it is.
func (h *EventHub) Subscribe(ctx context.Context) <-chan Event {
	s := &hubSubscriber{wake: make(chan struct{}, 1)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()

	out := make(chan Event)
	go func() {
		defer close(out)
		defer func() {
			h.mu.Lock()
			delete(h.subs, s)
			h.mu.Unlock()
		}()
		for {
			s.mu.Lock()
			q := s.queue
			s.queue = nil
			s.mu.Unlock()
			for _, e := range q {
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-s.wake:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Publish queues e for every current subscriber. It never blocks.
func (h *EventHub) Publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.mu.Lock()
		s.queue = append(s.queue, e)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}
