package sdk

import (
	"time"

	driverv1 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var runStateToWire = map[RunState]driverv1.RunState{
	RunStateCreated: driverv1.RunState_RUN_STATE_CREATED,
	RunStateRunning: driverv1.RunState_RUN_STATE_RUNNING,
	RunStatePaused:  driverv1.RunState_RUN_STATE_PAUSED,
	RunStateStopped: driverv1.RunState_RUN_STATE_STOPPED,
}

var runStateFromWire = invert(runStateToWire)

var eventTypeToWire = map[EventType]driverv1.EventType{
	EventExited:        driverv1.EventType_EVENT_TYPE_EXITED,
	EventPaused:        driverv1.EventType_EVENT_TYPE_PAUSED,
	EventResumed:       driverv1.EventType_EVENT_TYPE_RESUMED,
	EventGuestPanicked: driverv1.EventType_EVENT_TYPE_GUEST_PANICKED,
	EventDeviceAdded:   driverv1.EventType_EVENT_TYPE_DEVICE_ADDED,
	EventDeviceRemoved: driverv1.EventType_EVENT_TYPE_DEVICE_REMOVED,
	EventShutdown:      driverv1.EventType_EVENT_TYPE_SHUTDOWN,
}

var eventTypeFromWire = invert(eventTypeToWire)

var healthToWire = map[Health]driverv1.Health{
	HealthHealthy:   driverv1.Health_HEALTH_HEALTHY,
	HealthUnhealthy: driverv1.Health_HEALTH_UNHEALTHY,
}

var healthFromWire = invert(healthToWire)

func infoToWire(i Info) *driverv1.InfoResponse {
	out := &driverv1.InfoResponse{
		Name:            i.Name,
		Version:         i.Version,
		ContractVersion: ContractVersion,
	}
	for _, c := range i.Capabilities {
		if w, ok := capabilityToWire[c]; ok {
			out.Capabilities = append(out.Capabilities, w)
		}
	}
	for _, o := range i.Options {
		out.Options = append(out.Options, &driverv1.OptionSchema{
			Name:         o.Name,
			Description:  o.Description,
			Type:         o.Type,
			DefaultValue: o.Default,
			Required:     o.Required,
		})
	}
	return out
}

func infoFromWire(w *driverv1.InfoResponse) Info {
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

func fingerprintToWire(f Fingerprint) *driverv1.FingerprintResponse {
	return &driverv1.FingerprintResponse{
		Health:      healthToWire[f.Health],
		Description: f.Description,
		Attributes:  f.Attributes,
	}
}

func fingerprintFromWire(w *driverv1.FingerprintResponse) Fingerprint {
	return Fingerprint{
		Health:      healthFromWire[w.GetHealth()],
		Description: w.GetDescription(),
		Attributes:  w.GetAttributes(),
	}
}

// SpecToWire converts a spec to its wire form.
func SpecToWire(s Spec) *driverv1.VMSpec {
	out := &driverv1.VMSpec{
		Name:      s.Name,
		Vcpus:     s.VCPUs,
		MemoryMib: s.MemoryMiB,
		Kernel:    s.Kernel,
		Initrd:    s.Initrd,
		Cmdline:   s.Cmdline,
		Options:   s.Options,
	}
	for _, d := range s.Disks {
		out.Disks = append(out.Disks, &driverv1.Disk{
			Path:     d.Path,
			Format:   d.Format,
			ReadOnly: d.ReadOnly,
		})
	}
	return out
}

// SpecFromWire converts a spec from its wire form.
func SpecFromWire(w *driverv1.VMSpec) Spec {
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

func statusToWire(s Status) *driverv1.StatusResponse {
	return &driverv1.StatusResponse{
		State:      runStateToWire[s.State],
		Pid:        s.PID,
		ExitReason: s.ExitReason,
		ConsoleLog: s.ConsoleLog,
		Attributes: s.Attributes,
	}
}

func statusFromWire(w *driverv1.StatusResponse) Status {
	return Status{
		State:      runStateFromWire[w.GetState()],
		PID:        w.GetPid(),
		ExitReason: w.GetExitReason(),
		ConsoleLog: w.GetConsoleLog(),
		Attributes: w.GetAttributes(),
	}
}

func eventToWire(e Event) *driverv1.Event {
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	return &driverv1.Event{
		VmId:       e.VMID,
		Type:       eventTypeToWire[e.Type],
		Reason:     e.Reason,
		Time:       timestamppb.New(t),
		Attributes: e.Attributes,
	}
}

func eventFromWire(w *driverv1.Event) Event {
	return Event{
		VMID:       w.GetVmId(),
		Type:       eventTypeFromWire[w.GetType()],
		Reason:     w.GetReason(),
		Time:       w.GetTime().AsTime(),
		Attributes: w.GetAttributes(),
	}
}
