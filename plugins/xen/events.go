package xen

import (
	"context"
	"sync"

	"github.com/hyperd/hyperd/sdk"
)

// hub fans events out to every Events caller. Publishing never blocks:
// each subscriber has its own unbounded queue drained by its own
// goroutine, so a slow caller neither holds up the poller nor loses an
// event (an exit above all).
type hub struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	mu    sync.Mutex
	queue []sdk.Event
	wake  chan struct{} // capacity 1: "the queue has grown"
}

func newHub() *hub { return &hub{subs: make(map[*subscriber]struct{})} }

// subscribe returns a channel of every event published from now on. The
// channel closes when ctx ends; events still queued then are dropped.
func (h *hub) subscribe(ctx context.Context) <-chan sdk.Event {
	s := &subscriber{wake: make(chan struct{}, 1)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()

	out := make(chan sdk.Event)
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

func (h *hub) publish(e sdk.Event) {
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
