package sdk

import (
	"context"
	"time"
)

// Handle is the opaque state a driver needs to find a VM again. The daemon
// persists it and hands it back on every call; its content is the
// driver's business.
type Handle []byte

// Driver is the interface a driver author implements. Every method is
// called with a context that carries the call's deadline; a method must
// return when it ends. Methods may be called concurrently, for the same VM
// too (a Kill may arrive while a Stop waits).
type Driver interface {
	// Info describes the driver. It must answer quickly.
	Info(ctx context.Context) (Info, error)

	// Fingerprint reports whether the backend is usable on this host now.
	// Serve calls it at start and then periodically.
	Fingerprint(ctx context.Context) (Fingerprint, error)

	// Create validates spec and prepares the VM without starting it. A bad
	// spec returns an error wrapping ErrInvalidSpec that names the field.
	// workDir is a directory the daemon made for this VM.
	Create(ctx context.Context, vmID string, spec Spec, workDir string) (Handle, error)

	// Start boots a created or stopped VM and returns once it runs, with
	// the handle that now identifies it.
	Start(ctx context.Context, vmID string, h Handle) (Handle, error)

	// Stop asks the guest to power off, waits up to timeout, then forces
	// the VM off. It returns once the VM no longer runs; forced reports
	// whether force was needed.
	Stop(ctx context.Context, vmID string, h Handle, timeout time.Duration) (forced bool, err error)

	// Kill forces the VM off at once and returns once it no longer runs.
	// Killing a stopped VM succeeds.
	Kill(ctx context.Context, vmID string, h Handle) error

	// Status reports what the backend says about the VM now.
	Status(ctx context.Context, vmID string, h Handle) (Status, error)

	// Destroy releases everything held for a stopped VM. Destroying an
	// unknown VM succeeds.
	Destroy(ctx context.Context, vmID string, h Handle) error

	// Recover reattaches to a VM after the driver or the daemon restarted,
	// returning the handle to keep and the VM's status. A VM whose process
	// is gone is not an error: its status says stopped, with the reason.
	Recover(ctx context.Context, vmID string, h Handle) (Handle, Status, error)

	// Events returns a channel of what happens to the driver's VMs. The
	// channel must close when ctx ends.
	Events(ctx context.Context) (<-chan Event, error)
}

// Pauser is implemented by drivers that declare CapabilityPause.
// The SDK answers both with ErrUnsupported unless the driver also
// declares the capability, so implementing the interface is not enough.
type Pauser interface {
	// Pause freezes a running VM's vCPUs; it stays in memory. Pausing a
	// VM that does not run fails with ErrWrongState.
	Pause(ctx context.Context, vmID string, h Handle) error
	// Resume lets a paused VM run again.
	Resume(ctx context.Context, vmID string, h Handle) error
}

// Info describes a driver.
type Info struct {
	// Name matches the binary's name, hyperd-driver-NAME.
	Name string
	// Version is the driver's own version.
	Version string
	// Capabilities lists the optional features the driver supports.
	Capabilities []Capability
	// Options describes the driver-specific options a spec may set.
	Options []OptionSchema
}

// Has reports whether the driver declared c.
func (i Info) Has(c Capability) bool {
	for _, x := range i.Capabilities {
		if x == c {
			return true
		}
	}
	return false
}

// OptionSchema describes one driver-specific option.
type OptionSchema struct {
	// Name is the key in Spec.Options, in snake_case.
	Name string
	// Description tells an operator what the option does and what a
	// wrong value costs.
	Description string
	// Type is "string", "int", "bool" or "duration".
	Type string
	// Default is the value used when the spec leaves the option out.
	Default string
	// Required options have no default; a spec without one is invalid.
	Required bool
}

// Health says whether a backend is usable.
type Health int

// Health values.
const (
	HealthUnknown Health = iota
	HealthHealthy
	HealthUnhealthy
)

// String returns the health in lowercase words.
func (h Health) String() string {
	switch h {
	case HealthHealthy:
		return "healthy"
	case HealthUnhealthy:
		return "unhealthy"
	default:
		return "unknown"
	}
}

// Fingerprint is a driver's report on its backend.
type Fingerprint struct {
	// Health says whether VMs can run on this backend now.
	Health Health
	// Description says why, in words an operator can act on.
	Description string
	// Attributes are facts such as "accelerator" (kvm or tcg), "binary"
	// and "version".
	Attributes map[string]string
}

// Disk is a block device given to the guest.
type Disk struct {
	// Path is the image file on the host.
	Path string `json:"path"`
	// Format is "raw" or "qcow2"; empty means raw.
	Format string `json:"format,omitempty"`
	// ReadOnly disks are given to the guest read-only.
	ReadOnly bool
}

// Spec is what the operator asked for. Its JSON form is stable, so a
// driver can keep it in its handle as it is.
type Spec struct {
	// Name is the operator's name for the VM.
	Name string `json:"name"`
	// VCPUs is the number of virtual CPUs.
	VCPUs uint32 `json:"vcpus"`
	// MemoryMiB is the guest's memory in MiB.
	MemoryMiB uint64 `json:"memory_mib"`
	// Kernel is the host path of the kernel to boot directly; what a
	// kernel is depends on the backend (a bzImage for QEMU, the UML
	// binary for User Mode Linux).
	Kernel string `json:"kernel"`
	// Initrd is the host path of an initial ramdisk; empty for none.
	Initrd string `json:"initrd,omitempty"`
	// Cmdline is the kernel command line.
	Cmdline string `json:"cmdline,omitempty"`
	// Disks are block devices, in the order the guest sees them.
	Disks []Disk `json:"disks,omitempty"`
	// Options are driver-specific, as the driver's Info.Options declare.
	Options map[string]string
}

// RunState is what a backend says about a VM.
type RunState int

// RunState values.
const (
	RunStateUnknown RunState = iota
	RunStateCreated
	RunStateRunning
	RunStatePaused
	RunStateStopped
)

// String returns the run state in lowercase words.
func (s RunState) String() string {
	switch s {
	case RunStateCreated:
		return "created"
	case RunStateRunning:
		return "running"
	case RunStatePaused:
		return "paused"
	case RunStateStopped:
		return "stopped"
	default:
		return "unknown"
	}
}

// Status is a backend's view of one VM.
type Status struct {
	// State is the VM's run state.
	State RunState
	// PID of the process running the VM, or zero.
	PID int64
	// ExitReason says why the VM stopped, when it has.
	ExitReason string
	// ConsoleLog is a host file holding the serial console output.
	ConsoleLog string
	// Attributes are backend facts worth showing an operator, such as
	// QEMU's own status word.
	Attributes map[string]string
}

// EventType says what happened to a VM.
type EventType int

// EventType values.
const (
	EventUnknown EventType = iota
	// EventExited: the VM no longer runs; Reason says why.
	EventExited
	EventPaused
	EventResumed
	EventGuestPanicked
	EventDeviceAdded
	EventDeviceRemoved
	// EventShutdown: the guest began to power off; it may still run.
	EventShutdown
	// EventGap: events were lost before this one, so the receiver should
	// ask each VM's Status. Only the host-side Client makes it, from
	// contract version 2's EventsGap; a driver never sends one, and the
	// SDK drops one a driver does send.
	EventGap
)

// String returns the event type in lowercase words.
func (t EventType) String() string {
	switch t {
	case EventExited:
		return "exited"
	case EventPaused:
		return "paused"
	case EventResumed:
		return "resumed"
	case EventGuestPanicked:
		return "guest_panicked"
	case EventDeviceAdded:
		return "device_added"
	case EventDeviceRemoved:
		return "device_removed"
	case EventShutdown:
		return "shutdown"
	case EventGap:
		return "gap"
	default:
		return "unknown"
	}
}

// Event is something that happened to a VM.
type Event struct {
	// VMID names the VM; empty for EventGap.
	VMID string
	// Type says what happened.
	Type EventType
	// Reason is the backend's own words, such as QEMU's SHUTDOWN reason.
	Reason string
	// Time is when it happened; zero means when the SDK saw it.
	Time time.Time
	// Attributes are details in the backend's words.
	Attributes map[string]string
	// Cursor is where the event sits in the driver's event stream. The
	// SDK's server numbers the events (a driver leaves it zero) and the
	// host-side Client fills it in over contract version 2; over version
	// 1 it stays zero. Pass the last one seen to Client.EventsSince to
	// resume after a broken stream.
	Cursor EventCursor
}

// EventCursor is a place in one driver process's event stream.
type EventCursor struct {
	// Epoch names the driver process that numbered the event.
	Epoch string
	// Sequence numbers the process's events from 1, one more per event.
	Sequence uint64
}

// IsZero reports whether c is the zero cursor, which names no event.
func (c EventCursor) IsZero() bool { return c == EventCursor{} }
