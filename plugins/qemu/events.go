package qemu

import (
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
