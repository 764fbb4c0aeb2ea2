package sdk

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	driverv1 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v1"
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
// driver process. It implements Driver and Pauser, so a conformance suite
// can run against a driver binary or an in-process driver alike. Errors
// wrap the contract's sentinels.
type Client struct {
	rpc driverv1.DriverClient
}

var (
	_ Driver = (*Client)(nil)
	_ Pauser = (*Client)(nil)
)

// NewClient returns a Client over an established gRPC driver client.
func NewClient(rpc driverv1.DriverClient) *Client {
	return &Client{rpc: rpc}
}

func withDefault(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// Info asks the driver to describe itself. It fails with ErrUnsupported
// when the driver says it speaks another contract version.
func (c *Client) Info(ctx context.Context) (Info, error) {
	ctx, cancel := withDefault(ctx, DefaultCallTimeout)
	defer cancel()
	r, err := c.rpc.Info(ctx, &driverv1.InfoRequest{})
	if err != nil {
		return Info{}, fmt.Errorf("info: %w", fromStatus(err))
	}
	if r.GetContractVersion() != ContractVersion {
		return Info{}, fmt.Errorf("info: driver speaks contract version %d, host speaks %d: %w",
			r.GetContractVersion(), ContractVersion, ErrUnsupported)
	}
	return infoFromWire(r), nil
}

// Fingerprint returns the driver's first fingerprint.
func (c *Client) Fingerprint(ctx context.Context) (Fingerprint, error) {
	ctx, cancel := withDefault(ctx, DefaultCallTimeout)
	defer cancel()
	stream, err := c.rpc.Fingerprint(ctx, &driverv1.FingerprintRequest{})
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
	stream, err := c.rpc.Fingerprint(ctx, &driverv1.FingerprintRequest{})
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
	r, err := c.rpc.Create(ctx, &driverv1.CreateRequest{
		VmId:    vmID,
		Spec:    SpecToWire(spec),
		WorkDir: workDir,
	})
	if err != nil {
		return nil, fmt.Errorf("create vm %s: %w", vmID, fromStatus(err))
	}
	return r.GetHandle(), nil
}

// Start boots the VM.
func (c *Client) Start(ctx context.Context, vmID string, h Handle) (Handle, error) {
	ctx, cancel := withDefault(ctx, DefaultLifecycleTimeout)
	defer cancel()
	r, err := c.rpc.Start(ctx, &driverv1.StartRequest{VmId: vmID, Handle: h})
	if err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, fromStatus(err))
	}
	return r.GetHandle(), nil
}

// Stop powers the VM off gracefully, the driver forcing it past timeout.
// Without a deadline on ctx the call is bounded by timeout plus
// StopMargin.
func (c *Client) Stop(ctx context.Context, vmID string, h Handle, timeout time.Duration) (bool, error) {
	ctx, cancel := withDefault(ctx, timeout+StopMargin)
	defer cancel()
	r, err := c.rpc.Stop(ctx, &driverv1.StopRequest{
		VmId:    vmID,
		Handle:  h,
		Timeout: durationpb.New(timeout),
	})
	if err != nil {
		return false, fmt.Errorf("stop vm %s: %w", vmID, fromStatus(err))
	}
	return r.GetForced(), nil
}

// Kill forces the VM off.
func (c *Client) Kill(ctx context.Context, vmID string, h Handle) error {
	ctx, cancel := withDefault(ctx, DefaultLifecycleTimeout)
	defer cancel()
	if _, err := c.rpc.Kill(ctx, &driverv1.KillRequest{VmId: vmID, Handle: h}); err != nil {
		return fmt.Errorf("kill vm %s: %w", vmID, fromStatus(err))
	}
	return nil
}

// Pause freezes the VM's vCPUs.
func (c *Client) Pause(ctx context.Context, vmID string, h Handle) error {
	ctx, cancel := withDefault(ctx, DefaultCallTimeout)
	defer cancel()
	if _, err := c.rpc.Pause(ctx, &driverv1.PauseRequest{VmId: vmID, Handle: h}); err != nil {
		return fmt.Errorf("pause vm %s: %w", vmID, fromStatus(err))
	}
	return nil
}

// Resume thaws a paused VM.
func (c *Client) Resume(ctx context.Context, vmID string, h Handle) error {
	ctx, cancel := withDefault(ctx, DefaultCallTimeout)
	defer cancel()
	if _, err := c.rpc.Resume(ctx, &driverv1.ResumeRequest{VmId: vmID, Handle: h}); err != nil {
		return fmt.Errorf("resume vm %s: %w", vmID, fromStatus(err))
	}
	return nil
}

// Status asks the backend about the VM.
func (c *Client) Status(ctx context.Context, vmID string, h Handle) (Status, error) {
	ctx, cancel := withDefault(ctx, DefaultCallTimeout)
	defer cancel()
	r, err := c.rpc.Status(ctx, &driverv1.StatusRequest{VmId: vmID, Handle: h})
	if err != nil {
		return Status{}, fmt.Errorf("status of vm %s: %w", vmID, fromStatus(err))
	}
	return statusFromWire(r), nil
}

// Destroy frees what the driver holds for a stopped VM.
func (c *Client) Destroy(ctx context.Context, vmID string, h Handle) error {
	ctx, cancel := withDefault(ctx, DefaultLifecycleTimeout)
	defer cancel()
	if _, err := c.rpc.Destroy(ctx, &driverv1.DestroyRequest{VmId: vmID, Handle: h}); err != nil {
		return fmt.Errorf("destroy vm %s: %w", vmID, fromStatus(err))
	}
	return nil
}

// Recover reattaches the driver to a VM from its handle.
func (c *Client) Recover(ctx context.Context, vmID string, h Handle) (Handle, Status, error) {
	ctx, cancel := withDefault(ctx, DefaultLifecycleTimeout)
	defer cancel()
	r, err := c.rpc.Recover(ctx, &driverv1.RecoverRequest{VmId: vmID, Handle: h})
	if err != nil {
		return nil, Status{}, fmt.Errorf("recover vm %s: %w", vmID, fromStatus(err))
	}
	return r.GetHandle(), statusFromWire(r.GetStatus()), nil
}

// Events streams the driver's events until ctx ends or the driver goes
// away; then the channel closes.
func (c *Client) Events(ctx context.Context) (<-chan Event, error) {
	stream, err := c.rpc.Events(ctx, &driverv1.EventsRequest{})
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
			select {
			case out <- eventFromWire(r):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
