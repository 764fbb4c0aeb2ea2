package sdk

import (
	"context"
	"fmt"
	"reflect"
	"time"

	driverv1 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v1"
)

// fingerprintInterval is how often the server re-asks the driver for its
// fingerprint while a host watches it. Health changes reach the daemon
// within this bound.
const fingerprintInterval = 5 * time.Second

// server adapts a Driver to the generated gRPC service.
type server struct {
	driverv1.UnimplementedDriverServer
	d Driver
}

var _ driverv1.DriverServer = (*server)(nil)

func (s *server) Info(ctx context.Context, _ *driverv1.InfoRequest) (*driverv1.InfoResponse, error) {
	info, err := s.d.Info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return infoToWire(info), nil
}

func (s *server) Fingerprint(_ *driverv1.FingerprintRequest, stream driverv1.Driver_FingerprintServer) error {
	ctx := stream.Context()
	var last *Fingerprint
	tick := time.NewTicker(fingerprintInterval)
	defer tick.Stop()
	for {
		fp, err := s.d.Fingerprint(ctx)
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

func (s *server) Create(ctx context.Context, r *driverv1.CreateRequest) (*driverv1.CreateResponse, error) {
	if r.GetVmId() == "" {
		return nil, toStatus(InvalidSpec("vm_id", "must not be empty"))
	}
	if r.GetSpec() == nil {
		return nil, toStatus(InvalidSpec("spec", "must be given"))
	}
	h, err := s.d.Create(ctx, r.GetVmId(), SpecFromWire(r.GetSpec()), r.GetWorkDir())
	if err != nil {
		return nil, toStatus(err)
	}
	return &driverv1.CreateResponse{Handle: h}, nil
}

func (s *server) Start(ctx context.Context, r *driverv1.StartRequest) (*driverv1.StartResponse, error) {
	h, err := s.d.Start(ctx, r.GetVmId(), r.GetHandle())
	if err != nil {
		return nil, toStatus(err)
	}
	return &driverv1.StartResponse{Handle: h}, nil
}

func (s *server) Stop(ctx context.Context, r *driverv1.StopRequest) (*driverv1.StopResponse, error) {
	timeout := r.GetTimeout().AsDuration()
	if timeout < 0 {
		return nil, toStatus(InvalidSpec("timeout", "must not be negative, got %s", timeout))
	}
	forced, err := s.d.Stop(ctx, r.GetVmId(), r.GetHandle(), timeout)
	if err != nil {
		return nil, toStatus(err)
	}
	return &driverv1.StopResponse{Forced: forced}, nil
}

func (s *server) Kill(ctx context.Context, r *driverv1.KillRequest) (*driverv1.KillResponse, error) {
	if err := s.d.Kill(ctx, r.GetVmId(), r.GetHandle()); err != nil {
		return nil, toStatus(err)
	}
	return &driverv1.KillResponse{}, nil
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

func (s *server) Pause(ctx context.Context, r *driverv1.PauseRequest) (*driverv1.PauseResponse, error) {
	p, err := s.pauser(ctx)
	if err == nil {
		err = p.Pause(ctx, r.GetVmId(), r.GetHandle())
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &driverv1.PauseResponse{}, nil
}

func (s *server) Resume(ctx context.Context, r *driverv1.ResumeRequest) (*driverv1.ResumeResponse, error) {
	p, err := s.pauser(ctx)
	if err == nil {
		err = p.Resume(ctx, r.GetVmId(), r.GetHandle())
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &driverv1.ResumeResponse{}, nil
}

func (s *server) Status(ctx context.Context, r *driverv1.StatusRequest) (*driverv1.StatusResponse, error) {
	st, err := s.d.Status(ctx, r.GetVmId(), r.GetHandle())
	if err != nil {
		return nil, toStatus(err)
	}
	return statusToWire(st), nil
}

func (s *server) Destroy(ctx context.Context, r *driverv1.DestroyRequest) (*driverv1.DestroyResponse, error) {
	if err := s.d.Destroy(ctx, r.GetVmId(), r.GetHandle()); err != nil {
		return nil, toStatus(err)
	}
	return &driverv1.DestroyResponse{}, nil
}

func (s *server) Recover(ctx context.Context, r *driverv1.RecoverRequest) (*driverv1.RecoverResponse, error) {
	h, st, err := s.d.Recover(ctx, r.GetVmId(), r.GetHandle())
	if err != nil {
		return nil, toStatus(err)
	}
	return &driverv1.RecoverResponse{Handle: h, Status: statusToWire(st)}, nil
}

func (s *server) Events(_ *driverv1.EventsRequest, stream driverv1.Driver_EventsServer) error {
	ctx := stream.Context()
	events, err := s.d.Events(ctx)
	if err != nil {
		return toStatus(err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-events:
			if !ok {
				return nil
			}
			if err := stream.Send(eventToWire(e)); err != nil {
				return err
			}
		}
	}
}
