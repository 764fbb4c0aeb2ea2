package sdk

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	driverv1 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v1"
	driverv2 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v2"
)

var runStateToWire = map[RunState]driverv2.RunState{
	RunStateCreated: driverv2.RunState_RUN_STATE_CREATED,
	RunStateRunning: driverv2.RunState_RUN_STATE_RUNNING,
	RunStatePaused:  driverv2.RunState_RUN_STATE_PAUSED,
	RunStateStopped: driverv2.RunState_RUN_STATE_STOPPED,
}

var runStateFromWire = invert(runStateToWire)

var eventTypeToWire = map[EventType]driverv2.EventType{
	EventExited:        driverv2.EventType_EVENT_TYPE_EXITED,
	EventPaused:        driverv2.EventType_EVENT_TYPE_PAUSED,
	EventResumed:       driverv2.EventType_EVENT_TYPE_RESUMED,
	EventGuestPanicked: driverv2.EventType_EVENT_TYPE_GUEST_PANICKED,
	EventDeviceAdded:   driverv2.EventType_EVENT_TYPE_DEVICE_ADDED,
	EventDeviceRemoved: driverv2.EventType_EVENT_TYPE_DEVICE_REMOVED,
	EventShutdown:      driverv2.EventType_EVENT_TYPE_SHUTDOWN,
}

var eventTypeFromWire = invert(eventTypeToWire)

var healthToWire = map[Health]driverv2.Health{
	HealthHealthy:   driverv2.Health_HEALTH_HEALTHY,
	HealthUnhealthy: driverv2.Health_HEALTH_UNHEALTHY,
}

var healthFromWire = invert(healthToWire)

func infoToWire(i Info, contractVersion int) *driverv2.InfoResponse {
	out := &driverv2.InfoResponse{
		Name:            i.Name,
		Version:         i.Version,
		ContractVersion: uint32(contractVersion),
	}
	for _, c := range i.Capabilities {
		if w, ok := capabilityToWire[c]; ok {
			out.Capabilities = append(out.Capabilities, w)
		}
	}
	for _, o := range i.Options {
		out.Options = append(out.Options, &driverv2.OptionSchema{
			Name:         o.Name,
			Description:  o.Description,
			Type:         o.Type,
			DefaultValue: o.Default,
			Required:     o.Required,
		})
	}
	return out
}

func infoFromWire(w *driverv2.InfoResponse) Info {
	out := Info{Name: w.GetName(), Version: w.GetVersion()}
	for _, c := range w.GetCapabilities() {
		if x, ok := capabilityFromWire[c]; ok {
			out.Capabilities = append(out.Capabilities, x)
		}
	}
	for _, o := range w.GetOptions() {
		out.Options = append(out.Options, OptionSchema{
			Name:        o.GetName(),
			Description: o.GetDescription(),
			Type:        o.GetType(),
			Default:     o.GetDefaultValue(),
			Required:    o.GetRequired(),
		})
	}
	return out
}

func fingerprintToWire(f Fingerprint) *driverv2.FingerprintResponse {
	return &driverv2.FingerprintResponse{
		Health:      healthToWire[f.Health],
		Description: f.Description,
		Attributes:  f.Attributes,
	}
}

func fingerprintFromWire(w *driverv2.FingerprintResponse) Fingerprint {
	return Fingerprint{
		Health:      healthFromWire[w.GetHealth()],
		Description: w.GetDescription(),
		Attributes:  w.GetAttributes(),
	}
}

// SpecToWire converts a spec to its wire form in contract version 1.
func SpecToWire(s Spec) *driverv1.VMSpec {
	out, err := recodeAs[driverv1.VMSpec](specToWire(s))
	if err != nil {
		// A VMSpec is the same message in both versions; only a broken
		// protobuf runtime fails here.
		return &driverv1.VMSpec{}
	}
	return out
}

// SpecFromWire converts a spec from its wire form in contract version 1.
func SpecFromWire(w *driverv1.VMSpec) Spec {
	v2, err := recodeAs[driverv2.VMSpec](w)
	if err != nil {
		return Spec{} // as in SpecToWire
	}
	return specFromWire(v2)
}

func specToWire(s Spec) *driverv2.VMSpec {
	out := &driverv2.VMSpec{
		Name:      s.Name,
		Vcpus:     s.VCPUs,
		MemoryMib: s.MemoryMiB,
		Kernel:    s.Kernel,
		Initrd:    s.Initrd,
		Cmdline:   s.Cmdline,
		Options:   s.Options,
	}
	for _, d := range s.Disks {
		out.Disks = append(out.Disks, &driverv2.Disk{
			Path:     d.Path,
			Format:   d.Format,
			ReadOnly: d.ReadOnly,
		})
	}
	return out
}

func specFromWire(w *driverv2.VMSpec) Spec {
	out := Spec{
		Name:      w.GetName(),
		VCPUs:     w.GetVcpus(),
		MemoryMiB: w.GetMemoryMib(),
		Kernel:    w.GetKernel(),
		Initrd:    w.GetInitrd(),
		Cmdline:   w.GetCmdline(),
		Options:   w.GetOptions(),
	}
	for _, d := range w.GetDisks() {
		out.Disks = append(out.Disks, Disk{
			Path:     d.GetPath(),
			Format:   d.GetFormat(),
			ReadOnly: d.GetReadOnly(),
		})
	}
	return out
}

func statusToWire(s Status) *driverv2.StatusResponse {
	return &driverv2.StatusResponse{
		State:      runStateToWire[s.State],
		Pid:        s.PID,
		ExitReason: s.ExitReason,
		ConsoleLog: s.ConsoleLog,
		Attributes: s.Attributes,
	}
}

func statusFromWire(w *driverv2.StatusResponse) Status {
	return Status{
		State:      runStateFromWire[w.GetState()],
		PID:        w.GetPid(),
		ExitReason: w.GetExitReason(),
		ConsoleLog: w.GetConsoleLog(),
		Attributes: w.GetAttributes(),
	}
}

func eventToWire(e Event) *driverv2.Event {
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	return &driverv2.Event{
		VmId:       e.VMID,
		Type:       eventTypeToWire[e.Type],
		Reason:     e.Reason,
		Time:       timestamppb.New(t),
		Attributes: e.Attributes,
		Sequence:   e.Cursor.Sequence,
		Epoch:      e.Cursor.Epoch,
	}
}

func eventFromWire(w *driverv2.Event) Event {
	return Event{
		VMID:       w.GetVmId(),
		Type:       eventTypeFromWire[w.GetType()],
		Reason:     w.GetReason(),
		Time:       w.GetTime().AsTime(),
		Attributes: w.GetAttributes(),
		Cursor:     EventCursor{Epoch: w.GetEpoch(), Sequence: w.GetSequence()},
	}
}

// eventsResponseFromWire turns one message of the Events stream into an
// Event; a gap becomes an EventGap whose cursor is just before the next
// event. ok is false for a message kind this package does not know.
func eventsResponseFromWire(r *driverv2.EventsResponse) (e Event, ok bool) {
	switch m := r.GetMessage().(type) {
	case *driverv2.EventsResponse_Event:
		return eventFromWire(m.Event), true
	case *driverv2.EventsResponse_Gap:
		next := m.Gap.GetNextSequence()
		if next > 0 {
			next--
		}
		return Event{
			Type:   EventGap,
			Reason: m.Gap.GetReason(),
			Time:   time.Now(),
			Cursor: EventCursor{Epoch: m.Gap.GetEpoch(), Sequence: next},
		}, true
	default:
		return Event{}, false
	}
}
