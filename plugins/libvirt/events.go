package libvirt

import (
	"fmt"
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
		libvirt.DOMAIN_EVENT_STOPPED_FAILED:        reasonDied,
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
