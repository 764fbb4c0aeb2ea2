package core

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hyperd/hyperd/sdk"
)

// fakeDriver is an in-memory driver for unit tests of the daemon. Its
// function fields, when set, replace the default behaviour of a call.
type fakeDriver struct {
	stop   func(ctx context.Context, id string) (bool, error)
	start  func(ctx context.Context, id string) error
	create func(spec sdk.Spec) error

	mu     sync.Mutex
	states map[string]sdk.RunState
	calls  []string
	events chan sdk.Event
}

var (
	_ sdk.Driver = (*fakeDriver)(nil)
	_ sdk.Pauser = (*fakeDriver)(nil)
)

func newFakeDriver() *fakeDriver {
	return &fakeDriver{states: make(map[string]sdk.RunState), events: make(chan sdk.Event, 16)}
}

func (f *fakeDriver) record(call, id string, s sdk.RunState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call+" "+id)
	if s != sdk.RunStateUnknown {
		f.states[id] = s
	}
}

func (f *fakeDriver) state(id string) sdk.RunState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.states[id]
}

func (f *fakeDriver) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "fake", Version: "0.0.1", Capabilities: []sdk.Capability{sdk.CapabilityPause}}, nil
}

func (f *fakeDriver) Fingerprint(context.Context) (sdk.Fingerprint, error) {
	return sdk.Fingerprint{Health: sdk.HealthHealthy, Description: "in memory"}, nil
}

func (f *fakeDriver) Create(_ context.Context, id string, spec sdk.Spec, _ string) (sdk.Handle, error) {
	if f.create != nil {
		if err := f.create(spec); err != nil {
			return nil, err
		}
	}
	f.record("create", id, sdk.RunStateCreated)
	return sdk.Handle("h-" + id), nil
}

func (f *fakeDriver) Start(ctx context.Context, id string, _ sdk.Handle) (sdk.Handle, error) {
	if f.start != nil {
		if err := f.start(ctx, id); err != nil {
			return nil, err
		}
	}
	f.record("start", id, sdk.RunStateRunning)
	return sdk.Handle("h-" + id + "-started"), nil
}

func (f *fakeDriver) Stop(ctx context.Context, id string, _ sdk.Handle, _ time.Duration) (bool, error) {
	if f.stop != nil {
		forced, err := f.stop(ctx, id)
		if err != nil {
			return false, err
		}
		f.record("stop", id, sdk.RunStateStopped)
		return forced, nil
	}
	f.record("stop", id, sdk.RunStateStopped)
	return false, nil
}

func (f *fakeDriver) Kill(_ context.Context, id string, _ sdk.Handle) error {
	f.record("kill", id, sdk.RunStateStopped)
	return nil
}

func (f *fakeDriver) Pause(_ context.Context, id string, _ sdk.Handle) error {
	if f.state(id) != sdk.RunStateRunning {
		return fmt.Errorf("pause: %w", sdk.ErrWrongState)
	}
	f.record("pause", id, sdk.RunStatePaused)
	return nil
}

func (f *fakeDriver) Resume(_ context.Context, id string, _ sdk.Handle) error {
	f.record("resume", id, sdk.RunStateRunning)
	return nil
}

func (f *fakeDriver) Status(_ context.Context, id string, _ sdk.Handle) (sdk.Status, error) {
	return sdk.Status{State: f.state(id), PID: 4242, ConsoleLog: "/dev/null"}, nil
}

func (f *fakeDriver) Destroy(_ context.Context, id string, _ sdk.Handle) error {
	f.record("destroy", id, sdk.RunStateUnknown)
	return nil
}

func (f *fakeDriver) Recover(_ context.Context, id string, h sdk.Handle) (sdk.Handle, sdk.Status, error) {
	f.record("recover", id, sdk.RunStateUnknown)
	st := f.state(id)
	if st == sdk.RunStateUnknown {
		return h, sdk.Status{State: sdk.RunStateStopped, ExitReason: "process gone"}, nil
	}
	return h, sdk.Status{State: st, PID: 4242}, nil
}

func (f *fakeDriver) Events(ctx context.Context) (<-chan sdk.Event, error) {
	out := make(chan sdk.Event)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-f.events:
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
