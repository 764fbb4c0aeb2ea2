package qemu

import (
	"context"
	"testing"
	"time"

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

func TestHubFansOutWithoutBlocking(t *testing.T) {
	h := newHub()
	ctx, cancel := context.WithCancel(t.Context())
	slow := h.subscribe(ctx)
	fast := h.subscribe(ctx)

	// Nobody reads slow while many events are published: publish must
	// not block, and slow must still get all of them in order.
	const n = 1000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			h.publish(sdk.Event{VMID: "vm", Type: sdk.EventPaused, Reason: string(rune('a' + i%26))})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("publish blocked")
	}
	for _, ch := range []<-chan sdk.Event{fast, slow} {
		for i := range n {
			e := <-ch
			if want := string(rune('a' + i%26)); e.Reason != want {
				t.Fatalf("event %d reason %q, want %q", i, e.Reason, want)
			}
		}
	}
	cancel()
	for _, ch := range []<-chan sdk.Event{fast, slow} {
		select {
		case _, ok := <-ch:
			if ok {
				t.Error("event after cancel")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("channel not closed after ctx end")
		}
	}
}
