package libvirt

import (
	"context"
	"fmt"
	"sync"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/hyperd/hyperd/sdk"
)

// Exit reasons the driver reports besides libvirt's stop details.
const (
	// reasonReboot: the guest asked to reboot, which on_reboot=destroy
	// turns into an exit.
	reasonReboot = "reboot"
	// reasonGone: the domain no longer exists and this driver process
	// did not see it end.
	reasonGone = "domain gone while the driver was away"
)

// Words for libvirt's event details, the reasons events carry. A detail
// missing here is reported by number rather than dropped.
var (
	stoppedReasons = map[libvirt.DomainEventStoppedDetailType]string{
		libvirt.DOMAIN_EVENT_STOPPED_SHUTDOWN:      "shutdown",
		libvirt.DOMAIN_EVENT_STOPPED_DESTROYED:     "destroyed",
		libvirt.DOMAIN_EVENT_STOPPED_CRASHED:       "crashed",
		libvirt.DOMAIN_EVENT_STOPPED_MIGRATED:      "migrated",
		libvirt.DOMAIN_EVENT_STOPPED_SAVED:         "saved",
		libvirt.DOMAIN_EVENT_STOPPED_FAILED:        "failed",
		libvirt.DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT: "from-snapshot",
		libvirt.DOMAIN_EVENT_STOPPED_RECREATED:     "recreated",
	}
	suspendedReasons = map[libvirt.DomainEventSuspendedDetailType]string{
		libvirt.DOMAIN_EVENT_SUSPENDED_PAUSED:          "paused",
		libvirt.DOMAIN_EVENT_SUSPENDED_MIGRATED:        "migrated",
		libvirt.DOMAIN_EVENT_SUSPENDED_IOERROR:         "io-error",
		libvirt.DOMAIN_EVENT_SUSPENDED_WATCHDOG:        "watchdog",
		libvirt.DOMAIN_EVENT_SUSPENDED_RESTORED:        "restored",
		libvirt.DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT:   "from-snapshot",
		libvirt.DOMAIN_EVENT_SUSPENDED_API_ERROR:       "api-error",
		libvirt.DOMAIN_EVENT_SUSPENDED_POSTCOPY:        "postcopy",
		libvirt.DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED: "postcopy-failed",
	}
	resumedReasons = map[libvirt.DomainEventResumedDetailType]string{
		libvirt.DOMAIN_EVENT_RESUMED_UNPAUSED:        "unpaused",
		libvirt.DOMAIN_EVENT_RESUMED_MIGRATED:        "migrated",
		libvirt.DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT:   "from-snapshot",
		libvirt.DOMAIN_EVENT_RESUMED_POSTCOPY:        "postcopy",
		libvirt.DOMAIN_EVENT_RESUMED_POSTCOPY_FAILED: "postcopy-failed",
	}
	shutdownReasons = map[libvirt.DomainEventShutdownDetailType]string{
		libvirt.DOMAIN_EVENT_SHUTDOWN_FINISHED: "finished",
		libvirt.DOMAIN_EVENT_SHUTDOWN_GUEST:    "guest",
		libvirt.DOMAIN_EVENT_SHUTDOWN_HOST:     "host",
	}
	crashedReasons = map[libvirt.DomainEventCrashedDetailType]string{
		libvirt.DOMAIN_EVENT_CRASHED_PANICKED:    "panicked",
		libvirt.DOMAIN_EVENT_CRASHED_CRASHLOADED: "crashloaded",
	}
)

func detailWord[K ~int](m map[K]string, detail int) string {
	if w, ok := m[K(detail)]; ok {
		return w
	}
	return fmt.Sprintf("detail %d", detail)
}

// mapLifecycle turns a libvirt lifecycle event into the contract's, when
// it has a counterpart; started, defined and undefined have none.
// rebooted says the guest asked to reboot just before, which makes the
// exit's reason "reboot" instead of libvirt's "destroyed".
func mapLifecycle(vmID string, ev libvirt.DomainEventType, detail int, rebooted bool) (sdk.Event, bool) {
	e := sdk.Event{VMID: vmID, Time: time.Now()}
	switch ev {
	case libvirt.DOMAIN_EVENT_STOPPED:
		e.Type, e.Reason = sdk.EventExited, detailWord(stoppedReasons, detail)
		if rebooted {
			e.Reason = reasonReboot
		}
	case libvirt.DOMAIN_EVENT_SUSPENDED:
		e.Type, e.Reason = sdk.EventPaused, detailWord(suspendedReasons, detail)
	case libvirt.DOMAIN_EVENT_PMSUSPENDED:
		e.Type, e.Reason = sdk.EventPaused, "pm-suspended"
	case libvirt.DOMAIN_EVENT_RESUMED:
		e.Type, e.Reason = sdk.EventResumed, detailWord(resumedReasons, detail)
	case libvirt.DOMAIN_EVENT_SHUTDOWN:
		e.Type, e.Reason = sdk.EventShutdown, detailWord(shutdownReasons, detail)
	case libvirt.DOMAIN_EVENT_CRASHED:
		e.Type, e.Reason = sdk.EventGuestPanicked, detailWord(crashedReasons, detail)
	default:
		return sdk.Event{}, false
	}
	return e, true
}

// hub fans events out to every Events caller. Publishing never blocks,
// since it runs on libvirt's event loop thread: each subscriber has its
// own unbounded queue drained by its own goroutine, so a slow caller
// neither stalls libvirt nor loses an event (an exit above all).
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
