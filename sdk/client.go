package sdk

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"google.golang.org/protobuf/types/known/durationpb"

	driverv1 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v1"
	driverv2 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v2"
)

// Default deadlines for calls whose context has none. A call never waits
// on a driver without a bound: a hung driver costs the caller at most this.
const (
	// DefaultCallTimeout bounds quick calls: Info, Status, Pause, Resume.
	DefaultCallTimeout = 10 * time.Second
	// DefaultLifecycleTimeout bounds Create, Start, Kill, Destroy and
	// Recover, which may wait for a process to start or to be reaped.
	DefaultLifecycleTimeout = 60 * time.Second
	// StopMargin is added to a Stop's own timeout to bound the call, for
	// the driver's escalation past the guest's deadline.
	StopMargin = 30 * time.Second
)

// Client is the host side of the contract: the daemon's handle on one
// driver process, over whichever contract version the two negotiated. It
// implements Driver and Pauser, so a conformance suite can run against a
// driver binary or an in-process driver alike. Errors wrap the contract's
// sentinels.
type Client struct {
	rpc     driverv2.DriverClient // a version 1 driver behind v1Client
	version int
}

var (
	_ Driver = (*Client)(nil)
	_ Pauser = (*Client)(nil)
)

// NewClient returns a Client over an established gRPC client of contract
// version 1. Launch is the usual way to get a Client, over the version
// negotiated with the driver.
func NewClient(rpc driverv1.DriverClient) *Client {
	return &Client{rpc: v1Client{rpc: rpc}, version: ContractVersion1}
}

// ContractVersion returns the contract version the client speaks with
// its driver.
func (c *Client) ContractVersion() int { return c.version }

func withDefault(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// Info asks the driver to describe itself. It fails with ErrUnsupported
// when the driver says it speaks another contract version than the one
// negotiated.
func (c *Client) Info(ctx context.Context) (Info, error) {
	ctx, cancel := withDefault(ctx, DefaultCallTimeout)
	defer cancel()
	r, err := c.rpc.Info(ctx, &driverv2.InfoRequest{})
	if err != nil {
		return Info{}, fmt.Errorf("info: %w", fromStatus(err))
	}
	if int(r.GetContractVersion()) != c.version {
		return Info{}, fmt.Errorf("info: driver says it speaks contract version %d, negotiated %d: %w",
			r.GetContractVersion(), c.version, ErrUnsupported)
	}
	return infoFromWire(r), nil
}

// Fingerprint returns the driver's first fingerprint.
func (c *Client) Fingerprint(ctx context.Context) (Fingerprint, error) {
	ctx, cancel := withDefault(ctx, DefaultCallTimeout)
	defer cancel()
	stream, err := c.rpc.Fingerprint(ctx, &driverv2.FingerprintRequest{})
	if err != nil {
		return Fingerprint{}, fmt.Errorf("fingerprint: %w", fromStatus(err))
	}
	r, err := stream.Recv()
	if err != nil {
		return Fingerprint{}, fmt.Errorf("fingerprint: %w", fromStatus(err))
	}
	return fingerprintFromWire(r), nil
}

// WatchFingerprint streams the driver's fingerprint: the first at once,
// then each change. The channel closes when ctx ends or the driver goes
// away.
func (c *Client) WatchFingerprint(ctx context.Context) (<-chan Fingerprint, error) {
	stream, err := c.rpc.Fingerprint(ctx, &driverv2.FingerprintRequest{})
	if err != nil {
		return nil, fmt.Errorf("fingerprint: %w", fromStatus(err))
	}
	out := make(chan Fingerprint)
	go func() {
		defer close(out)
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			select {
			case out <- fingerprintFromWire(r):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// Create asks the driver to validate spec and prepare the VM.
func (c *Client) Create(ctx context.Context, vmID string, spec Spec, workDir string) (Handle, error) {
	ctx, cancel := withDefault(ctx, DefaultLifecycleTimeout)
	defer cancel()
	r, err := c.rpc.Create(ctx, &driverv2.CreateRequest{
		VmId:    vmID,
		Spec:    specToWire(spec),
		WorkDir: workDir,
	})
	if err != nil {
		return nil, vmCallError("create vm %s", vmID, err)
	}
	return r.GetHandle(), nil
}

// Start boots the VM.
func (c *Client) Start(ctx context.Context, vmID string, h Handle) (Handle, error) {
	ctx, cancel := withDefault(ctx, DefaultLifecycleTimeout)
	defer cancel()
	r, err := c.rpc.Start(ctx, &driverv2.StartRequest{VmId: vmID, Handle: h})
	if err != nil {
		return nil, vmCallError("start vm %s", vmID, err)
	}
	return r.GetHandle(), nil
}

// Stop powers the VM off gracefully, the driver forcing it past timeout.
// Without a deadline on ctx the call is bounded by timeout plus
// StopMargin.
func (c *Client) Stop(ctx context.Context, vmID string, h Handle, timeout time.Duration) (bool, error) {
	ctx, cancel := withDefault(ctx, timeout+StopMargin)
	defer cancel()
	r, err := c.rpc.Stop(ctx, &driverv2.StopRequest{
		VmId:    vmID,
		Handle:  h,
		Timeout: durationpb.New(timeout),
	})
	if err != nil {
		return false, vmCallError("stop vm %s", vmID, err)
	}
	return r.GetForced(), nil
}

// Kill forces the VM off.
func (c *Client) Kill(ctx context.Context, vmID string, h Handle) error {
	ctx, cancel := withDefault(ctx, DefaultLifecycleTimeout)
	defer cancel()
	if _, err := c.rpc.Kill(ctx, &driverv2.KillRequest{VmId: vmID, Handle: h}); err != nil {
		return vmCallError("kill vm %s", vmID, err)
	}
	return nil
}

// Pause freezes the VM's vCPUs.
func (c *Client) Pause(ctx context.Context, vmID string, h Handle) error {
	ctx, cancel := withDefault(ctx, DefaultCallTimeout)
	defer cancel()
	if _, err := c.rpc.Pause(ctx, &driverv2.PauseRequest{VmId: vmID, Handle: h}); err != nil {
		return vmCallError("pause vm %s", vmID, err)
	}
	return nil
}

// Resume thaws a paused VM.
func (c *Client) Resume(ctx context.Context, vmID string, h Handle) error {
	ctx, cancel := withDefault(ctx, DefaultCallTimeout)
	defer cancel()
	if _, err := c.rpc.Resume(ctx, &driverv2.ResumeRequest{VmId: vmID, Handle: h}); err != nil {
		return vmCallError("resume vm %s", vmID, err)
	}
	return nil
}

// Status asks the backend about the VM.
func (c *Client) Status(ctx context.Context, vmID string, h Handle) (Status, error) {
	ctx, cancel := withDefault(ctx, DefaultCallTimeout)
	defer cancel()
	r, err := c.rpc.Status(ctx, &driverv2.StatusRequest{VmId: vmID, Handle: h})
	if err != nil {
		return Status{}, vmCallError("status of vm %s", vmID, err)
	}
	return statusFromWire(r), nil
}

// Destroy frees what the driver holds for a stopped VM.
func (c *Client) Destroy(ctx context.Context, vmID string, h Handle) error {
	ctx, cancel := withDefault(ctx, DefaultLifecycleTimeout)
	defer cancel()
	if _, err := c.rpc.Destroy(ctx, &driverv2.DestroyRequest{VmId: vmID, Handle: h}); err != nil {
		return vmCallError("destroy vm %s", vmID, err)
	}
	return nil
}

// Recover reattaches the driver to a VM from its handle.
func (c *Client) Recover(ctx context.Context, vmID string, h Handle) (Handle, Status, error) {
	ctx, cancel := withDefault(ctx, DefaultLifecycleTimeout)
	defer cancel()
	r, err := c.rpc.Recover(ctx, &driverv2.RecoverRequest{VmId: vmID, Handle: h})
	if err != nil {
		return nil, Status{}, vmCallError("recover vm %s", vmID, err)
	}
	return r.GetHandle(), statusFromWire(r.GetStatus()), nil
}

// Events streams the driver's events from now on, until ctx ends or the
// driver goes away; then the channel closes. Over contract version 2 each
// event carries its Cursor, from which EventsSince resumes.
func (c *Client) Events(ctx context.Context) (<-chan Event, error) {
	return c.EventsSince(ctx, EventCursor{})
}

// EventsSince streams the events that followed after, as far as the
// driver still holds them, then each new one, until ctx ends or the
// driver goes away; then the channel closes. When some of the events
// after it are lost (the driver's ring overflowed, or after names
// another driver process) the first event is an EventGap: ask each VM's
// Status then. A zero after is Events. Resuming needs contract version 2:
// over version 1 a non-zero after fails with ErrUnsupported.
func (c *Client) EventsSince(ctx context.Context, after EventCursor) (<-chan Event, error) {
	if c.version < ContractVersion2 && !after.IsZero() {
		return nil, fmt.Errorf("events since %d: contract version %d cannot resume events: %w",
			after.Sequence, c.version, ErrUnsupported)
	}
	stream, err := c.rpc.Events(ctx, &driverv2.EventsRequest{AfterSequence: after.Sequence, Epoch: after.Epoch})
	if err != nil {
		return nil, fmt.Errorf("events: %w", fromStatus(err))
	}
	out := make(chan Event, 64)
	go func() {
		defer close(out)
		for {
			// The stream ends when the driver or ctx does; closing the
			// channel is how the caller learns it.
			r, err := stream.Recv()
			if err != nil {
				return
			}
			e, ok := eventsResponseFromWire(r)
			if !ok {
				continue // a message kind from a newer contract
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// vmCallError wraps a failed call about one VM. A driver's own error
// already names the VM and the call ("create vm X: ..."), so it is
// returned as the driver said it; a failure of the transport (the
// driver gone, a deadline) gets the call and the VM added.
func vmCallError(call, vmID string, err error) error {
	if st, ok := status.FromError(err); ok && fromDriver(st.Code()) {
		return fromStatus(err)
	}
	return fmt.Errorf(call+": %w", vmID, fromStatus(err))
}

// fromDriver reports whether code is one a driver returns on purpose,
// as opposed to one the transport makes up.
func fromDriver(code codes.Code) bool {
	switch code {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.Unimplemented, codes.NotFound:
		return true
	}
	return false
}
