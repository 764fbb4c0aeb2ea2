package sdk_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hyperd/hyperd/sdk"
	driverv1 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v1"
	driverv2 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v2"
)

// TestContractVersions launches drivers that serve version 1, version 2
// or both, and checks that the host settles on the highest version both
// speak and that calls and events work over it.
func TestContractVersions(t *testing.T) {
	if got, want := sdk.ContractVersions(), []int{1, 2}; !slices.Equal(got, want) {
		t.Fatalf("ContractVersions() = %v, want %v", got, want)
	}
	tests := []struct {
		mode string
		want int
	}{
		{modeKillEmits + "@v1", 1},
		{modeKillEmits + "@v2", 2},
		{modeKillEmits + "@both", 2},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			p := launch(t, tt.mode)
			ctx := callCtx(t)
			if v := p.ContractVersion(); v != tt.want {
				t.Fatalf("ContractVersion() = %d, want %d", v, tt.want)
			}
			info, err := p.Info(ctx)
			if err != nil || info.Name != "fake" {
				t.Fatalf("Info = %+v, %v; want the fake driver", info, err)
			}
			h, err := p.Create(ctx, "vm-a", sdk.Spec{Name: "a"}, t.TempDir())
			if err != nil || string(h) != "h-vm-a" {
				t.Fatalf("Create = %q, %v; want handle h-vm-a", h, err)
			}

			events, err := p.Events(ctx)
			if err != nil {
				t.Fatalf("Events: %v", err)
			}
			if err := p.Kill(ctx, "vm-a", h); err != nil {
				t.Fatalf("Kill: %v", err)
			}
			e, ok := recvEvent(t, events)
			if !ok || e.VMID != "vm-a" || e.Type != sdk.EventExited {
				t.Fatalf("event = %+v (open %t), want vm-a exited", e, ok)
			}
			numbered := e.Cursor.Sequence == 1 && e.Cursor.Epoch != ""
			if want := tt.want >= 2; numbered != want {
				t.Errorf("event cursor = %+v; numbered %t, want %t", e.Cursor, numbered, want)
			}
			_, err = p.EventsSince(ctx, sdk.EventCursor{Epoch: "x", Sequence: 1})
			if want := tt.want < 2; errors.Is(err, sdk.ErrUnsupported) != want {
				t.Errorf("EventsSince: err = %v, want ErrUnsupported %t", err, want)
			}
		})
	}
}

// killAndRecv kills each VM and returns the exit events that follow on
// events, in order.
func killAndRecv(t *testing.T, p *sdk.Plugin, events <-chan sdk.Event, vmIDs ...string) []sdk.Event {
	t.Helper()
	ctx := callCtx(t)
	var out []sdk.Event
	for _, id := range vmIDs {
		if err := p.Kill(ctx, id, nil); err != nil {
			t.Fatalf("Kill %s: %v", id, err)
		}
		if events == nil {
			continue
		}
		e, ok := recvEvent(t, events)
		if !ok {
			t.Fatalf("events closed before the exit of %s", id)
		}
		out = append(out, e)
	}
	return out
}

// recvVMs reads n events and returns their VM ids, gaps as "GAP".
func recvVMs(t *testing.T, events <-chan sdk.Event, n int) []string {
	t.Helper()
	var out []string
	for range n {
		e, ok := recvEvent(t, events)
		if !ok {
			t.Fatalf("events closed after %v", out)
		}
		if e.Type == sdk.EventGap {
			out = append(out, "GAP")
			continue
		}
		out = append(out, e.VMID)
	}
	return out
}

// TestEventsResume breaks a version 2 event stream and resumes it from
// the last event seen.
func TestEventsResume(t *testing.T) {
	t.Run("missed_events_replayed", func(t *testing.T) {
		p := launch(t, modeKillEmits)
		ctx, cancel := context.WithCancel(callCtx(t))
		first, err := p.Events(ctx)
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		last := killAndRecv(t, p, first, "vm-a")[0]
		cancel()
		for range first {
		}

		// Nobody listens while these happen.
		killAndRecv(t, p, nil, "vm-b", "vm-c")

		again, err := p.EventsSince(callCtx(t), last.Cursor)
		if err != nil {
			t.Fatalf("EventsSince(%+v): %v", last.Cursor, err)
		}
		if got, want := recvVMs(t, again, 2), []string{"vm-b", "vm-c"}; !slices.Equal(got, want) {
			t.Errorf("resumed events = %v, want %v", got, want)
		}
		// And the stream goes on live.
		killAndRecv(t, p, nil, "vm-d")
		if got := recvVMs(t, again, 1); got[0] != "vm-d" {
			t.Errorf("live event after the replay = %v, want vm-d", got)
		}
	})
	t.Run("gap_when_ring_overflowed", func(t *testing.T) {
		p := launch(t, modeKillEmits+"@ring2")
		ctx := callCtx(t)
		live, err := p.Events(ctx)
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		got := killAndRecv(t, p, live, "vm-a", "vm-b", "vm-c", "vm-d")
		for i, e := range got {
			if e.Cursor.Sequence != uint64(i+1) {
				t.Errorf("event %d of %s: sequence %d, want %d", i, e.VMID, e.Cursor.Sequence, i+1)
			}
		}

		// The ring holds vm-c and vm-d; vm-b is lost.
		again, err := p.EventsSince(ctx, got[0].Cursor)
		if err != nil {
			t.Fatalf("EventsSince: %v", err)
		}
		if vms, want := recvVMs(t, again, 3), []string{"GAP", "vm-c", "vm-d"}; !slices.Equal(vms, want) {
			t.Errorf("resumed events = %v, want %v", vms, want)
		}
	})
	t.Run("gap_when_epoch_differs", func(t *testing.T) {
		p := launch(t, modeKillEmits)
		ctx := callCtx(t)
		live, err := p.Events(ctx)
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		killAndRecv(t, p, live, "vm-a")

		// As from a host that saw 7 events of a driver process before
		// this one.
		again, err := p.EventsSince(ctx, sdk.EventCursor{Epoch: "an-earlier-process", Sequence: 7})
		if err != nil {
			t.Fatalf("EventsSince: %v", err)
		}
		if vms, want := recvVMs(t, again, 2), []string{"GAP", "vm-a"}; !slices.Equal(vms, want) {
			t.Errorf("resumed events = %v, want %v", vms, want)
		}
	})
}

// TestWireCompatible holds versions 1 and 2 to what the SDK relies on
// when it re-encodes one as the other: every version 1 field and enum
// value is in version 2 under the same number, name and type.
func TestWireCompatible(t *testing.T) {
	v1 := driverv1.File_hyperd_driver_v1_driver_proto
	v2 := driverv2.File_hyperd_driver_v2_driver_proto

	msgs := v1.Messages()
	for i := range msgs.Len() {
		m1 := msgs.Get(i)
		m2 := v2.Messages().ByName(m1.Name())
		if m2 == nil {
			t.Errorf("message %s: not in version 2", m1.Name())
			continue
		}
		for j := range m1.Fields().Len() {
			f1 := m1.Fields().Get(j)
			f2 := m2.Fields().ByNumber(f1.Number())
			if f2 == nil || !sameField(f1, f2) {
				t.Errorf("%s.%s (%d): version 2 has %v", m1.Name(), f1.Name(), f1.Number(), f2)
			}
		}
	}
	enums := v1.Enums()
	for i := range enums.Len() {
		e1 := enums.Get(i)
		e2 := v2.Enums().ByName(e1.Name())
		if e2 == nil {
			t.Errorf("enum %s: not in version 2", e1.Name())
			continue
		}
		for j := range e1.Values().Len() {
			v := e1.Values().Get(j)
			if w := e2.Values().ByNumber(v.Number()); w == nil || w.Name() != v.Name() {
				t.Errorf("enum %s value %s (%d): version 2 has %v", e1.Name(), v.Name(), v.Number(), w)
			}
		}
	}
}

func sameField(a, b protoreflect.FieldDescriptor) bool {
	if a.Name() != b.Name() || a.Kind() != b.Kind() || a.Cardinality() != b.Cardinality() || a.IsMap() != b.IsMap() {
		return false
	}
	switch a.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return a.Message().Name() == b.Message().Name()
	case protoreflect.EnumKind:
		return a.Enum().Name() == b.Enum().Name()
	}
	return true
}
