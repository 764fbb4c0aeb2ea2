package sdk

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	driverv1 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v1"
	driverv2 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v2"
)

// v1Server answers contract version 1 by re-encoding each request for
// the version 2 service and each answer back. Only Events differs: it
// streams live events, unnumbered.
type v1Server struct {
	driverv1.UnimplementedDriverServer
	s *server
}

var _ driverv1.DriverServer = (*v1Server)(nil)

func (s *v1Server) v2() *v2Server { return &v2Server{s: s.s, version: ContractVersion1} }

// serveV1 runs one unary call of the version 2 service for a version 1
// request.
func serveV1[Q2, R1 any, PQ2 pointerTo[Q2], PR1 pointerTo[R1], R2 proto.Message](
	ctx context.Context,
	in proto.Message,
	call func(context.Context, PQ2) (R2, error),
) (PR1, error) {
	q, err := recodeAs[Q2, PQ2](in)
	if err != nil {
		return nil, toStatus(err)
	}
	r, err := call(ctx, q)
	if err != nil {
		return nil, err // already a status
	}
	out, err := recodeAs[R1, PR1](r)
	if err != nil {
		return nil, toStatus(err)
	}
	return out, nil
}

func (s *v1Server) Info(ctx context.Context, r *driverv1.InfoRequest) (*driverv1.InfoResponse, error) {
	return serveV1[driverv2.InfoRequest, driverv1.InfoResponse](ctx, r, s.v2().Info)
}

func (s *v1Server) Create(ctx context.Context, r *driverv1.CreateRequest) (*driverv1.CreateResponse, error) {
	return serveV1[driverv2.CreateRequest, driverv1.CreateResponse](ctx, r, s.v2().Create)
}

func (s *v1Server) Start(ctx context.Context, r *driverv1.StartRequest) (*driverv1.StartResponse, error) {
	return serveV1[driverv2.StartRequest, driverv1.StartResponse](ctx, r, s.v2().Start)
}

func (s *v1Server) Stop(ctx context.Context, r *driverv1.StopRequest) (*driverv1.StopResponse, error) {
	return serveV1[driverv2.StopRequest, driverv1.StopResponse](ctx, r, s.v2().Stop)
}

func (s *v1Server) Kill(ctx context.Context, r *driverv1.KillRequest) (*driverv1.KillResponse, error) {
	return serveV1[driverv2.KillRequest, driverv1.KillResponse](ctx, r, s.v2().Kill)
}

func (s *v1Server) Pause(ctx context.Context, r *driverv1.PauseRequest) (*driverv1.PauseResponse, error) {
	return serveV1[driverv2.PauseRequest, driverv1.PauseResponse](ctx, r, s.v2().Pause)
}

func (s *v1Server) Resume(ctx context.Context, r *driverv1.ResumeRequest) (*driverv1.ResumeResponse, error) {
	return serveV1[driverv2.ResumeRequest, driverv1.ResumeResponse](ctx, r, s.v2().Resume)
}

func (s *v1Server) Status(ctx context.Context, r *driverv1.StatusRequest) (*driverv1.StatusResponse, error) {
	return serveV1[driverv2.StatusRequest, driverv1.StatusResponse](ctx, r, s.v2().Status)
}

func (s *v1Server) Destroy(ctx context.Context, r *driverv1.DestroyRequest) (*driverv1.DestroyResponse, error) {
	return serveV1[driverv2.DestroyRequest, driverv1.DestroyResponse](ctx, r, s.v2().Destroy)
}

func (s *v1Server) Recover(ctx context.Context, r *driverv1.RecoverRequest) (*driverv1.RecoverResponse, error) {
	return serveV1[driverv2.RecoverRequest, driverv1.RecoverResponse](ctx, r, s.v2().Recover)
}

func (s *v1Server) Fingerprint(r *driverv1.FingerprintRequest, stream driverv1.Driver_FingerprintServer) error {
	q, err := recodeAs[driverv2.FingerprintRequest](r)
	if err != nil {
		return toStatus(err)
	}
	return s.v2().Fingerprint(q, v1FingerprintStream{stream})
}

// v1FingerprintStream sends version 2 fingerprints on a version 1 stream.
type v1FingerprintStream struct {
	driverv1.Driver_FingerprintServer
}

func (f v1FingerprintStream) Send(m *driverv2.FingerprintResponse) error {
	w, err := recodeAs[driverv1.FingerprintResponse](m)
	if err != nil {
		return toStatus(err)
	}
	return f.Driver_FingerprintServer.Send(w)
}

var _ grpc.ServerStreamingServer[driverv2.FingerprintResponse] = v1FingerprintStream{}

// Events streams new events only: version 1 has no cursor to resume from.
func (s *v1Server) Events(_ *driverv1.EventsRequest, stream driverv1.Driver_EventsServer) error {
	ctx := stream.Context()
	sub, _, err := s.s.events.subscribe(ctx, EventCursor{})
	if err != nil {
		return toStatus(err)
	}
	for {
		e, ok := sub.next(ctx)
		if !ok {
			return nil
		}
		e.Cursor = EventCursor{} // version 1 has no place for it
		w, err := recodeAs[driverv1.Event](eventToWire(e))
		if err != nil {
			return toStatus(err)
		}
		if err := stream.Send(w); err != nil {
			return err
		}
	}
}
