package sdk

import (
	"context"
	"fmt"
	"reflect"
	"time"

	driverv2 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v2"
)

// fingerprintInterval is how often the server re-asks the driver for its
// fingerprint while a host watches it. Health changes reach the daemon
// within this bound.
const fingerprintInterval = 5 * time.Second

// server is the driver side of the contract, whatever its version: the
// Driver and the numbered log of its events.
type server struct {
	d      Driver
	events *eventLog
}

func newServer(d Driver, ring int) *server {
	return &server{d: d, events: newEventLog(d, ring)}
}

// close ends the log's subscription to the driver's events.
func (s *server) close() { s.events.close() }

// v2Server adapts a Driver to contract version 2's gRPC service. The same
// service answers under another version number only in tests.
type v2Server struct {
	driverv2.UnimplementedDriverServer
	s       *server
	version int
}

var _ driverv2.DriverServer = (*v2Server)(nil)

func (s *v2Server) Info(ctx context.Context, _ *driverv2.InfoRequest) (*driverv2.InfoResponse, error) {
	info, err := s.s.d.Info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return infoToWire(info, s.version), nil
}

func (s *v2Server) Fingerprint(_ *driverv2.FingerprintRequest, stream driverv2.Driver_FingerprintServer) error {
	ctx := stream.Context()
	var last *Fingerprint
	tick := time.NewTicker(fingerprintInterval)
	defer tick.Stop()
	for {
		fp, err := s.s.d.Fingerprint(ctx)
		if err != nil {
			fp = Fingerprint{Health: HealthUnhealthy, Description: err.Error()}
		}
		if last == nil || !reflect.DeepEqual(*last, fp) {
			if err := stream.Send(fingerprintToWire(fp)); err != nil {
				return err
			}
			last = &fp
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (s *v2Server) Create(ctx context.Context, r *driverv2.CreateRequest) (*driverv2.CreateResponse, error) {
	if r.GetVmId() == "" {
		return nil, toStatus(InvalidSpec("vm_id", "must not be empty"))
	}
	if r.GetSpec() == nil {
		return nil, toStatus(InvalidSpec("spec", "must be given"))
	}
	h, err := s.s.d.Create(ctx, r.GetVmId(), specFromWire(r.GetSpec()), r.GetWorkDir())
	if err != nil {
		return nil, toStatus(err)
	}
	return &driverv2.CreateResponse{Handle: h}, nil
}

func (s *v2Server) Start(ctx context.Context, r *driverv2.StartRequest) (*driverv2.StartResponse, error) {
	h, err := s.s.d.Start(ctx, r.GetVmId(), r.GetHandle())
	if err != nil {
		return nil, toStatus(err)
	}
	return &driverv2.StartResponse{Handle: h}, nil
}

func (s *v2Server) Stop(ctx context.Context, r *driverv2.StopRequest) (*driverv2.StopResponse, error) {
	timeout := r.GetTimeout().AsDuration()
	if timeout < 0 {
		return nil, toStatus(InvalidSpec("timeout", "must not be negative, got %s", timeout))
	}
	forced, err := s.s.d.Stop(ctx, r.GetVmId(), r.GetHandle(), timeout)
	if err != nil {
		return nil, toStatus(err)
	}
	return &driverv2.StopResponse{Forced: forced}, nil
}

func (s *v2Server) Kill(ctx context.Context, r *driverv2.KillRequest) (*driverv2.KillResponse, error) {
	if err := s.s.d.Kill(ctx, r.GetVmId(), r.GetHandle()); err != nil {
		return nil, toStatus(err)
	}
	return &driverv2.KillResponse{}, nil
}

// pauser returns the driver's Pauser when it declared CapabilityPause, and
// ErrUnsupported otherwise, so that an undeclared capability never
// succeeds silently.
func (s *server) pauser(ctx context.Context) (Pauser, error) {
	info, err := s.d.Info(ctx)
	if err != nil {
		return nil, err
	}
	p, ok := s.d.(Pauser)
	if !ok || !info.Has(CapabilityPause) {
		return nil, fmt.Errorf("pause: %w", ErrUnsupported)
	}
	return p, nil
}

func (s *v2Server) Pause(ctx context.Context, r *driverv2.PauseRequest) (*driverv2.PauseResponse, error) {
	p, err := s.s.pauser(ctx)
	if err == nil {
		err = p.Pause(ctx, r.GetVmId(), r.GetHandle())
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &driverv2.PauseResponse{}, nil
}

func (s *v2Server) Resume(ctx context.Context, r *driverv2.ResumeRequest) (*driverv2.ResumeResponse, error) {
	p, err := s.s.pauser(ctx)
	if err == nil {
		err = p.Resume(ctx, r.GetVmId(), r.GetHandle())
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &driverv2.ResumeResponse{}, nil
}

func (s *v2Server) Status(ctx context.Context, r *driverv2.StatusRequest) (*driverv2.StatusResponse, error) {
	st, err := s.s.d.Status(ctx, r.GetVmId(), r.GetHandle())
	if err != nil {
		return nil, toStatus(err)
	}
	return statusToWire(st), nil
}

func (s *v2Server) Destroy(ctx context.Context, r *driverv2.DestroyRequest) (*driverv2.DestroyResponse, error) {
	if err := s.s.d.Destroy(ctx, r.GetVmId(), r.GetHandle()); err != nil {
		return nil, toStatus(err)
	}
	return &driverv2.DestroyResponse{}, nil
}

func (s *v2Server) Recover(ctx context.Context, r *driverv2.RecoverRequest) (*driverv2.RecoverResponse, error) {
	h, st, err := s.s.d.Recover(ctx, r.GetVmId(), r.GetHandle())
	if err != nil {
		return nil, toStatus(err)
	}
	return &driverv2.RecoverResponse{Handle: h, Status: statusToWire(st)}, nil
}

// Events sends what the log still holds after the request's cursor, with
// a gap first when some of it is lost, then each new event.
func (s *v2Server) Events(r *driverv2.EventsRequest, stream driverv2.Driver_EventsServer) error {
	ctx := stream.Context()
	after := EventCursor{Epoch: r.GetEpoch(), Sequence: r.GetAfterSequence()}
	sub, gap, err := s.s.events.subscribe(ctx, after)
	if err != nil {
		return toStatus(err)
	}
	if gap != nil {
		if err := stream.Send(&driverv2.EventsResponse{Message: &driverv2.EventsResponse_Gap{Gap: gap}}); err != nil {
			return err
		}
	}
	for {
		e, ok := sub.next(ctx)
		if !ok {
			return nil
		}
		w := &driverv2.EventsResponse_Event{Event: eventToWire(e)}
		if err := stream.Send(&driverv2.EventsResponse{Message: w}); err != nil {
			return err
		}
	}
}
