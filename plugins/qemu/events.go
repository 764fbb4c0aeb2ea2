package qemu

import (
	"context"
	"sync"
	"time"

	goqmp "github.com/digitalocean/go-qemu/qmp"

	"github.com/hyperd/hyperd/sdk"
)

// QMP event names the driver maps; the others are logged and dropped.
const (
	qmpShutdown      = "SHUTDOWN"
	qmpStop          = "STOP"
	qmpResume        = "RESUME"
	qmpGuestPanicked = "GUEST_PANICKED"
)

var qmpEventTypes = map[string]sdk.EventType{
	qmpShutdown:      sdk.EventShutdown,
	qmpStop:          sdk.EventPaused,
	qmpResume:        sdk.EventResumed,
	qmpGuestPanicked: sdk.EventGuestPanicked,
}

// mapQMPEvent turns a QMP event into the contract's, when it has a
// counterpart. The reason is QEMU's own: SHUTDOWN's "reason" (such as
// "guest-shutdown" or "host-qmp-quit"), GUEST_PANICKED's "action".
func mapQMPEvent(vmID string, e goqmp.Event) (sdk.Event, bool) {
	t, ok := qmpEventTypes[e.Event]
	if !ok {
		return sdk.Event{}, false
	}
	out := sdk.Event{VMID: vmID, Type: t, Time: qmpTime(e)}
	switch e.Event {
	case qmpShutdown:
		out.Reason, _ = e.Data["reason"].(string) // absent before QEMU 4.0
	case qmpGuestPanicked:
		out.Reason, _ = e.Data["action"].(string) // absent on old QEMU
	}
	return out, true
}

func qmpTime(e goqmp.Event) time.Time {
	if e.Timestamp.Seconds <= 0 {
		return time.Now()
	}
	return time.Unix(e.Timestamp.Seconds, e.Timestamp.Microseconds*1000)
}

// hub fans events out to every Events caller. Publishing never blocks:
// each subscriber has its own unbounded queue drained by its own
// goroutine, so a slow caller neither holds up the QMP readers nor loses
// an event (an exit above all).
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
