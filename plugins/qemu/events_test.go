package qemu

import (
	"testing"

	goqmp "github.com/digitalocean/go-qemu/qmp"

	"github.com/hyperd/hyperd/sdk"
)

func TestMapQMPEvent(t *testing.T) {
	tests := []struct {
		name   string
		event  goqmp.Event
		want   sdk.EventType
		reason string
		ok     bool
	}{
		{"shutdown", goqmp.Event{Event: "SHUTDOWN", Data: map[string]any{"guest": true, "reason": "guest-shutdown"}}, sdk.EventShutdown, "guest-shutdown", true},
		{"shutdown without reason", goqmp.Event{Event: "SHUTDOWN"}, sdk.EventShutdown, "", true},
		{"stop", goqmp.Event{Event: "STOP"}, sdk.EventPaused, "", true},
		{"resume", goqmp.Event{Event: "RESUME"}, sdk.EventResumed, "", true},
		{"panic", goqmp.Event{Event: "GUEST_PANICKED", Data: map[string]any{"action": "pause"}}, sdk.EventGuestPanicked, "pause", true},
		{"powerdown is not mapped", goqmp.Event{Event: "POWERDOWN"}, 0, "", false},
		{"reason of the wrong type", goqmp.Event{Event: "SHUTDOWN", Data: map[string]any{"reason": 3}}, sdk.EventShutdown, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := mapQMPEvent("vm-1", tt.event)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if got.Type != tt.want || got.Reason != tt.reason || got.VMID != "vm-1" || got.Time.IsZero() {
				t.Errorf("mapQMPEvent = %+v, want type %v reason %q", got, tt.want, tt.reason)
			}
		})
	}
}
