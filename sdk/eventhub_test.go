package sdk

import (
	"context"
	"testing"
	"time"
)

func TestEventHubFansOutWithoutBlocking(t *testing.T) {
	h := NewEventHub()
	ctx, cancel := context.WithCancel(t.Context())
	slow := h.Subscribe(ctx)
	fast := h.Subscribe(ctx)

	// Nobody reads slow while many events are published: publish must
	// not block, and slow must still get all of them in order.
	const n = 1000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			h.Publish(Event{VMID: "vm", Type: EventPaused, Reason: string(rune('a' + i%26))})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("publish blocked")
	}
	for _, ch := range []<-chan Event{fast, slow} {
		for i := range n {
			e := <-ch
			if want := string(rune('a' + i%26)); e.Reason != want {
				t.Fatalf("event %d reason %q, want %q", i, e.Reason, want)
			}
		}
	}
	cancel()
	for _, ch := range []<-chan Event{fast, slow} {
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
