package sdk

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	driverv1 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v1"
	driverv2 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v2"
)

// v1Client lets a Client, which speaks version 2, call a driver that
// speaks version 1: each request is re-encoded as version 1 and each
// answer back. Events carry no cursor, and a request to resume them is
// refused before it gets here.
type v1Client struct {
	rpc driverv1.DriverClient
}

var _ driverv2.DriverClient = v1Client{}

// callV1 runs one unary version 1 call for a version 2 request.
func callV1[Q1, R2 any, PQ1 pointerTo[Q1], PR2 pointerTo[R2], R1 proto.Message](
	ctx context.Context,
	in proto.Message,
	call func(context.Context, PQ1, ...grpc.CallOption) (R1, error),
	opts []grpc.CallOption,
) (PR2, error) {
	q, err := recodeAs[Q1, PQ1](in)
	if err != nil {
		return nil, err
	}
	r, err := call(ctx, q, opts...)
	if err != nil {
		return nil, err
	}
	return recodeAs[R2, PR2](r)
}

func (c v1Client) Info(ctx context.Context, in *driverv2.InfoRequest, opts ...grpc.CallOption) (*driverv2.InfoResponse, error) {
	return callV1[driverv1.InfoRequest, driverv2.InfoResponse](ctx, in, c.rpc.Info, opts)
}

func (c v1Client) Create(ctx context.Context, in *driverv2.CreateRequest, opts ...grpc.CallOption) (*driverv2.CreateResponse, error) {
	return callV1[driverv1.CreateRequest, driverv2.CreateResponse](ctx, in, c.rpc.Create, opts)
}

func (c v1Client) Start(ctx context.Context, in *driverv2.StartRequest, opts ...grpc.CallOption) (*driverv2.StartResponse, error) {
	return callV1[driverv1.StartRequest, driverv2.StartResponse](ctx, in, c.rpc.Start, opts)
}

func (c v1Client) Stop(ctx context.Context, in *driverv2.StopRequest, opts ...grpc.CallOption) (*driverv2.StopResponse, error) {
	return callV1[driverv1.StopRequest, driverv2.StopResponse](ctx, in, c.rpc.Stop, opts)
}

func (c v1Client) Kill(ctx context.Context, in *driverv2.KillRequest, opts ...grpc.CallOption) (*driverv2.KillResponse, error) {
	return callV1[driverv1.KillRequest, driverv2.KillResponse](ctx, in, c.rpc.Kill, opts)
}

func (c v1Client) Pause(ctx context.Context, in *driverv2.PauseRequest, opts ...grpc.CallOption) (*driverv2.PauseResponse, error) {
	return callV1[driverv1.PauseRequest, driverv2.PauseResponse](ctx, in, c.rpc.Pause, opts)
}

func (c v1Client) Resume(ctx context.Context, in *driverv2.ResumeRequest, opts ...grpc.CallOption) (*driverv2.ResumeResponse, error) {
	return callV1[driverv1.ResumeRequest, driverv2.ResumeResponse](ctx, in, c.rpc.Resume, opts)
}

func (c v1Client) Status(ctx context.Context, in *driverv2.StatusRequest, opts ...grpc.CallOption) (*driverv2.StatusResponse, error) {
	return callV1[driverv1.StatusRequest, driverv2.StatusResponse](ctx, in, c.rpc.Status, opts)
}

func (c v1Client) Destroy(ctx context.Context, in *driverv2.DestroyRequest, opts ...grpc.CallOption) (*driverv2.DestroyResponse, error) {
	return callV1[driverv1.DestroyRequest, driverv2.DestroyResponse](ctx, in, c.rpc.Destroy, opts)
}

func (c v1Client) Recover(ctx context.Context, in *driverv2.RecoverRequest, opts ...grpc.CallOption) (*driverv2.RecoverResponse, error) {
	return callV1[driverv1.RecoverRequest, driverv2.RecoverResponse](ctx, in, c.rpc.Recover, opts)
}

func (c v1Client) Fingerprint(ctx context.Context, in *driverv2.FingerprintRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[driverv2.FingerprintResponse], error) {
	q, err := recodeAs[driverv1.FingerprintRequest](in)
	if err != nil {
		return nil, err
	}
	s, err := c.rpc.Fingerprint(ctx, q, opts...)
	if err != nil {
		return nil, err
	}
	return v1Stream[driverv1.FingerprintResponse, driverv2.FingerprintResponse, *driverv1.FingerprintResponse]{
		ServerStreamingClient: s,
		convert:               recodeAs[driverv2.FingerprintResponse],
	}, nil
}

func (c v1Client) Events(ctx context.Context, in *driverv2.EventsRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[driverv2.EventsResponse], error) {
	q, err := recodeAs[driverv1.EventsRequest](in)
	if err != nil {
		return nil, err
	}
	s, err := c.rpc.Events(ctx, q, opts...)
	if err != nil {
		return nil, err
	}
	return v1Stream[driverv1.Event, driverv2.EventsResponse, *driverv1.Event]{
		ServerStreamingClient: s,
		convert: func(m proto.Message) (*driverv2.EventsResponse, error) {
			e, err := recodeAs[driverv2.Event](m)
			if err != nil {
				return nil, err
			}
			return &driverv2.EventsResponse{Message: &driverv2.EventsResponse_Event{Event: e}}, nil
		},
	}, nil
}

// v1Stream receives version 1 messages as their version 2 counterparts.
type v1Stream[M1, M2 any, PM1 pointerTo[M1]] struct {
	grpc.ServerStreamingClient[M1]
	convert func(proto.Message) (*M2, error)
}

func (s v1Stream[M1, M2, PM1]) Recv() (*M2, error) {
	m, err := s.ServerStreamingClient.Recv()
	if err != nil {
		return nil, err
	}
	return s.convert(PM1(m))
}
