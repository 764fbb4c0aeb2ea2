package libvirt

import (
	"testing"

	"libvirt.org/go/libvirt"

	"github.com/hyperd/hyperd/sdk"
)

func TestMapLifecycle(t *testing.T) {
	tests := []struct {
		name     string
		ev       libvirt.DomainEventType
		detail   int
		rebooted bool
		want     sdk.EventType
		reason   string
		ok       bool
	}{
		{"guest powered off", libvirt.DOMAIN_EVENT_STOPPED, int(libvirt.DOMAIN_EVENT_STOPPED_SHUTDOWN), false, sdk.EventExited, "shutdown", true},
		{"destroyed", libvirt.DOMAIN_EVENT_STOPPED, int(libvirt.DOMAIN_EVENT_STOPPED_DESTROYED), false, sdk.EventExited, "destroyed", true},
		{"crashed", libvirt.DOMAIN_EVENT_STOPPED, int(libvirt.DOMAIN_EVENT_STOPPED_CRASHED), false, sdk.EventExited, "crashed", true},
		{"reboot becomes exit", libvirt.DOMAIN_EVENT_STOPPED, int(libvirt.DOMAIN_EVENT_STOPPED_DESTROYED), true, sdk.EventExited, "reboot", true},
		{"unknown stop detail", libvirt.DOMAIN_EVENT_STOPPED, 99, false, sdk.EventExited, "detail 99", true},
		{"paused", libvirt.DOMAIN_EVENT_SUSPENDED, int(libvirt.DOMAIN_EVENT_SUSPENDED_PAUSED), false, sdk.EventPaused, "paused", true},
		{"io error pause", libvirt.DOMAIN_EVENT_SUSPENDED, int(libvirt.DOMAIN_EVENT_SUSPENDED_IOERROR), false, sdk.EventPaused, "io-error", true},
		{"resumed", libvirt.DOMAIN_EVENT_RESUMED, int(libvirt.DOMAIN_EVENT_RESUMED_UNPAUSED), false, sdk.EventResumed, "unpaused", true},
		{"guest shutting down", libvirt.DOMAIN_EVENT_SHUTDOWN, int(libvirt.DOMAIN_EVENT_SHUTDOWN_GUEST), false, sdk.EventShutdown, "guest", true},
		{"panicked", libvirt.DOMAIN_EVENT_CRASHED, int(libvirt.DOMAIN_EVENT_CRASHED_PANICKED), false, sdk.EventGuestPanicked, "panicked", true},
		{"pm suspended", libvirt.DOMAIN_EVENT_PMSUSPENDED, 0, false, sdk.EventPaused, "pm-suspended", true},
		{"started has no counterpart", libvirt.DOMAIN_EVENT_STARTED, 0, false, 0, "", false},
		{"defined has no counterpart", libvirt.DOMAIN_EVENT_DEFINED, 0, false, 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := mapLifecycle("vm1", tt.ev, tt.detail, tt.rebooted)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if e.VMID != "vm1" || e.Type != tt.want || e.Reason != tt.reason || e.Time.IsZero() {
				t.Errorf("mapLifecycle = %+v, want %v %q", e, tt.want, tt.reason)
			}
		})
	}
}

func TestRunState(t *testing.T) {
	tests := map[libvirt.DomainState]sdk.RunState{
		libvirt.DOMAIN_RUNNING:     sdk.RunStateRunning,
		libvirt.DOMAIN_BLOCKED:     sdk.RunStateRunning,
		libvirt.DOMAIN_SHUTDOWN:    sdk.RunStateRunning,
		libvirt.DOMAIN_PAUSED:      sdk.RunStatePaused,
		libvirt.DOMAIN_PMSUSPENDED: sdk.RunStatePaused,
		libvirt.DOMAIN_SHUTOFF:     sdk.RunStateStopped,
		libvirt.DOMAIN_CRASHED:     sdk.RunStateStopped,
	}
	for in, want := range tests {
		if got := runState(in); got != want {
			t.Errorf("runState(%d) = %v, want %v", in, got, want)
		}
	}
}

func TestResolveAccel(t *testing.T) {
	probe := func() (string, string) { return accelKVM, "probed" }
	tests := []struct{ spec, env, want, why string }{
		{"", "", accelKVM, "probed"},
		{"auto", "tcg", accelTCG, "set by the driver's accel option or " + AccelEnv},
		{"tcg", "kvm", accelTCG, "set by the spec's accel option"},
		{"", "auto", accelKVM, "probed"},
	}
	for _, tt := range tests {
		if got, why := resolveAccel(tt.spec, tt.env, probe); got != tt.want || why != tt.why {
			t.Errorf("resolveAccel(%q, %q) = %s, %s", tt.spec, tt.env, got, why)
		}
	}
	if domainType(accelKVM) != "kvm" || domainType(accelTCG) != "qemu" {
		t.Error("domainType mapping")
	}
}

func TestFirstLine(t *testing.T) {
	in := "internal error: qemu closed the monitor: 2026-12-04T16:29:53.647642Z qemu-system-x86_64: error: failed\nmore"
	if got, want := firstLine(in), "internal error: qemu closed the monitor: qemu-system-x86_64: error: failed"; got != want {
		t.Errorf("firstLine = %q, want %q", got, want)
	}
}
