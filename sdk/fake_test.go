package sdk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/hyperd/hyperd/sdk"
)

// fakeDriver is a Driver made of function fields; a nil field answers with
// a zero result and no error.
type fakeDriver struct {
	info    func() sdk.Info
	fp      func() (sdk.Fingerprint, error)
	create  func(ctx context.Context, vmID string, spec sdk.Spec, workDir string) (sdk.Handle, error)
	start   func(ctx context.Context, vmID string, h sdk.Handle) (sdk.Handle, error)
	stop    func(ctx context.Context, vmID string, h sdk.Handle, timeout time.Duration) (bool, error)
	kill    func(ctx context.Context, vmID string, h sdk.Handle) error
	status  func(ctx context.Context, vmID string, h sdk.Handle) (sdk.Status, error)
	destroy func(ctx context.Context, vmID string, h sdk.Handle) error
	recover func(ctx context.Context, vmID string, h sdk.Handle) (sdk.Handle, sdk.Status, error)
	events  func(ctx context.Context) (<-chan sdk.Event, error)
}

var _ sdk.Driver = (*fakeDriver)(nil)

func (f *fakeDriver) Info(context.Context) (sdk.Info, error) {
	if f.info == nil {
		return sdk.Info{Name: "fake"}, nil
	}
	return f.info(), nil
}

func (f *fakeDriver) Fingerprint(context.Context) (sdk.Fingerprint, error) {
	if f.fp == nil {
		return sdk.Fingerprint{Health: sdk.HealthHealthy}, nil
	}
	return f.fp()
}

func (f *fakeDriver) Create(ctx context.Context, vmID string, spec sdk.Spec, workDir string) (sdk.Handle, error) {
	if f.create == nil {
		return nil, nil
	}
	return f.create(ctx, vmID, spec, workDir)
}

func (f *fakeDriver) Start(ctx context.Context, vmID string, h sdk.Handle) (sdk.Handle, error) {
	if f.start == nil {
		return h, nil
	}
	return f.start(ctx, vmID, h)
}

func (f *fakeDriver) Stop(ctx context.Context, vmID string, h sdk.Handle, timeout time.Duration) (bool, error) {
	if f.stop == nil {
		return false, nil
	}
	return f.stop(ctx, vmID, h, timeout)
}

func (f *fakeDriver) Kill(ctx context.Context, vmID string, h sdk.Handle) error {
	if f.kill == nil {
		return nil
	}
	return f.kill(ctx, vmID, h)
}

func (f *fakeDriver) Status(ctx context.Context, vmID string, h sdk.Handle) (sdk.Status, error) {
	if f.status == nil {
		return sdk.Status{}, nil
	}
	return f.status(ctx, vmID, h)
}

func (f *fakeDriver) Destroy(ctx context.Context, vmID string, h sdk.Handle) error {
	if f.destroy == nil {
		return nil
	}
	return f.destroy(ctx, vmID, h)
}

func (f *fakeDriver) Recover(ctx context.Context, vmID string, h sdk.Handle) (sdk.Handle, sdk.Status, error) {
	if f.recover == nil {
		return h, sdk.Status{}, nil
	}
	return f.recover(ctx, vmID, h)
}

func (f *fakeDriver) Events(ctx context.Context) (<-chan sdk.Event, error) {
	if f.events != nil {
		return f.events(ctx)
	}
	ch := make(chan sdk.Event)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch, nil
}

// pausingDriver is a fakeDriver that also implements sdk.Pauser; whether
// it declares CapabilityPause is up to its info field.
type pausingDriver struct {
	fakeDriver
	pause  func(ctx context.Context, vmID string, h sdk.Handle) error
	resume func(ctx context.Context, vmID string, h sdk.Handle) error
}

var _ sdk.Pauser = (*pausingDriver)(nil)

func (p *pausingDriver) Pause(ctx context.Context, vmID string, h sdk.Handle) error {
	if p.pause == nil {
		return nil
	}
	return p.pause(ctx, vmID, h)
}

func (p *pausingDriver) Resume(ctx context.Context, vmID string, h sdk.Handle) error {
	if p.resume == nil {
		return nil
	}
	return p.resume(ctx, vmID, h)
}

// Fixtures both sides of a round trip know: the host sends them, the
// child's driver checks it received exactly them and answers with its own.
// Values are picked to catch lossy conversions: handle bytes that are not
// UTF-8, a memory size and a PID past 32 bits, a sub-second timeout part.
var (
	fixtureInfo = sdk.Info{
		Name:    "fake",
		Version: "1.2.3-test",
		Capabilities: []sdk.Capability{
			sdk.CapabilityRecover,
			sdk.CapabilityPause,
			sdk.CapabilityConsoleLog,
		},
		Options: []sdk.OptionSchema{
			{Name: "machine", Description: "QEMU machine type", Type: "string", Default: "q35"},
			{Name: "boot_timeout", Description: "how long to wait", Type: "duration", Required: true},
		},
	}
	fixtureFingerprint = sdk.Fingerprint{
		Health:      sdk.HealthHealthy,
		Description: "kvm usable",
		Attributes:  map[string]string{"accelerator": "kvm", "version": "9.2.0"},
	}
	fixtureVMID    = "vm-3f9a"
	fixtureWorkDir = "/var/lib/hyperd/vms/vm-3f9a"
	fixtureSpec    = sdk.Spec{
		Name:      "web-1",
		VCPUs:     4,
		MemoryMiB: 1<<33 + 5,
		Kernel:    "/boot/vmlinuz",
		Initrd:    "/boot/initrd.img",
		Cmdline:   "console=ttyS0 root=/dev/vda ro",
		Disks: []sdk.Disk{
			{Path: "/img/root.qcow2", Format: "qcow2"},
			{Path: "/img/seed.iso", Format: "raw", ReadOnly: true},
		},
		Options: map[string]string{"machine": "q35", "cpu_model": "host"},
	}
	fixtureHandle        = sdk.Handle{0x00, 0xff, 'h', 0x80, '\n'}
	fixtureStartedHandle = sdk.Handle("started:pid=4242")
	fixtureStopTimeout   = 7*time.Second + 250*time.Millisecond
	fixtureStatus        = sdk.Status{
		State:      sdk.RunStatePaused,
		PID:        1<<40 + 7,
		ConsoleLog: "/var/lib/hyperd/vms/vm-3f9a/console.log",
		Attributes: map[string]string{"qmp_socket": "/run/hyperd/vm-3f9a.qmp"},
	}
	fixtureRecoveredHandle = sdk.Handle("recovered:pid=4243")
	fixtureRecoveredStatus = sdk.Status{
		State:      sdk.RunStateStopped,
		ExitReason: "process gone: exit status 137",
	}
	fixtureEvents = []sdk.Event{
		{
			VMID:       fixtureVMID,
			Type:       sdk.EventShutdown,
			Reason:     "guest-shutdown",
			Time:       time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC),
			Attributes: map[string]string{"guest": "true"},
		},
		{
			VMID:   fixtureVMID,
			Type:   sdk.EventExited,
			Reason: "exit status 0",
			Time:   time.Date(2025, 3, 1, 12, 0, 1, 0, time.UTC),
		},
	}
)

// checkTarget fails unless a call names the fixture VM and handle, so
// that a lost or mangled argument shows up as an error on the host.
func checkTarget(method, vmID string, h sdk.Handle) error {
	if vmID != fixtureVMID || !bytes.Equal(h, fixtureHandle) {
		return fmt.Errorf("%s: got vm %q handle %x: %w", method, vmID, []byte(h), sdk.ErrNotFound)
	}
	return nil
}

// roundTripDriver accepts only the fixture arguments and answers with
// the fixture results.
func roundTripDriver() sdk.Driver {
	return &pausingDriver{
		fakeDriver: fakeDriver{
			info: func() sdk.Info { return fixtureInfo },
			fp:   func() (sdk.Fingerprint, error) { return fixtureFingerprint, nil },
			create: func(_ context.Context, vmID string, spec sdk.Spec, workDir string) (sdk.Handle, error) {
				if vmID != fixtureVMID || workDir != fixtureWorkDir {
					return nil, fmt.Errorf("create: got vm %q work dir %q", vmID, workDir)
				}
				if !reflect.DeepEqual(spec, fixtureSpec) {
					return nil, sdk.InvalidSpec("spec", "got %+v", spec)
				}
				return fixtureHandle, nil
			},
			start: func(_ context.Context, vmID string, h sdk.Handle) (sdk.Handle, error) {
				return fixtureStartedHandle, checkTarget("start", vmID, h)
			},
			stop: func(_ context.Context, vmID string, h sdk.Handle, timeout time.Duration) (bool, error) {
				if err := checkTarget("stop", vmID, h); err != nil {
					return false, err
				}
				if timeout != fixtureStopTimeout {
					return false, sdk.InvalidSpec("timeout", "got %s", timeout)
				}
				return true, nil
			},
			kill: func(_ context.Context, vmID string, h sdk.Handle) error {
				return checkTarget("kill", vmID, h)
			},
			status: func(_ context.Context, vmID string, h sdk.Handle) (sdk.Status, error) {
				return fixtureStatus, checkTarget("status", vmID, h)
			},
			destroy: func(_ context.Context, vmID string, h sdk.Handle) error {
				return checkTarget("destroy", vmID, h)
			},
			recover: func(_ context.Context, vmID string, h sdk.Handle) (sdk.Handle, sdk.Status, error) {
				return fixtureRecoveredHandle, fixtureRecoveredStatus, checkTarget("recover", vmID, h)
			},
		},
		pause: func(_ context.Context, vmID string, h sdk.Handle) error {
			return checkTarget("pause", vmID, h)
		},
		resume: func(_ context.Context, vmID string, h sdk.Handle) error {
			return checkTarget("resume", vmID, h)
		},
	}
}

// errorsDriver fails Create with an invalid spec and Status with the
// error its VM id names.
func errorsDriver() sdk.Driver {
	byVM := map[string]error{
		"wrong_state": fmt.Errorf("pause vm wrong_state: vm is stopped: %w", sdk.ErrWrongState),
		"not_found":   fmt.Errorf("status of vm not_found: no pid file: %w", sdk.ErrNotFound),
		"unavailable": fmt.Errorf("qmp socket refused: %w", sdk.ErrUnavailable),
		"unsupported": fmt.Errorf("snapshot: %w", sdk.ErrUnsupported),
		"plain":       errors.New("qemu-system-x86_64 exploded: exit status 1"),
	}
	return &fakeDriver{
		create: func(_ context.Context, _ string, spec sdk.Spec, _ string) (sdk.Handle, error) {
			return nil, sdk.InvalidSpec("memory_mib", "must be at least 64, got %d", spec.MemoryMiB)
		},
		status: func(_ context.Context, vmID string, _ sdk.Handle) (sdk.Status, error) {
			return sdk.Status{}, byVM[vmID]
		},
	}
}

// emitFixtureEvents sends the fixture events in order, then holds the
// channel open until ctx ends, as the contract asks.
func emitFixtureEvents(ctx context.Context) (<-chan sdk.Event, error) {
	ch := make(chan sdk.Event)
	go func() {
		defer close(ch)
		for _, e := range fixtureEvents {
			select {
			case ch <- e:
			case <-ctx.Done():
				return
			}
		}
		<-ctx.Done()
	}()
	return ch, nil
}

// killEmitsDriver reports an exit for each VM it is asked to kill, so
// that a test decides when events happen.
func killEmitsDriver() sdk.Driver {
	exits := make(chan sdk.Event, 64)
	return &fakeDriver{
		info: func() sdk.Info { return sdk.Info{Name: "fake", Version: "1.0.0"} },
		create: func(_ context.Context, vmID string, _ sdk.Spec, _ string) (sdk.Handle, error) {
			return sdk.Handle("h-" + vmID), nil
		},
		kill: func(ctx context.Context, vmID string, _ sdk.Handle) error {
			select {
			case exits <- sdk.Event{VMID: vmID, Type: sdk.EventExited, Reason: "killed"}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		events: func(ctx context.Context) (<-chan sdk.Event, error) {
			out := make(chan sdk.Event)
			go func() {
				defer close(out)
				for {
					select {
					case e := <-exits:
						select {
						case out <- e:
						case <-ctx.Done():
							return
						}
					case <-ctx.Done():
						return
					}
				}
			}()
			return out, nil
		},
	}
}
