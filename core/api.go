package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
	"github.com/hyperd/hyperd/fsm"
	"github.com/hyperd/hyperd/sdk"
)

// consolePollInterval is how often a followed console log is checked for
// new output.
const consolePollInterval = 200 * time.Millisecond

// consoleChunkSize is the most console output sent in one message.
const consoleChunkSize = 32 << 10

// apiServer serves the operator API over a Daemon.
type apiServer struct {
	apiv1.UnimplementedHyperdServer
	d *Daemon
}

// RegisterAPI registers the operator API for d on s.
func RegisterAPI(s *grpc.Server, d *Daemon) {
	apiv1.RegisterHyperdServer(s, &apiServer{d: d})
}

// apiError turns a daemon error into a gRPC status with the right code.
func apiError(err error) error {
	if err == nil {
		return nil
	}
	code := sdk.Code(err)
	switch {
	case errors.Is(err, ErrVMNotFound), errors.Is(err, ErrNoDriver):
		code = codes.NotFound
	case errors.Is(err, fsm.ErrWrongState), errors.Is(err, fsm.ErrRemoved):
		code = codes.FailedPrecondition
	}
	return status.Error(code, err.Error())
}

func (a *apiServer) ListDrivers(context.Context, *apiv1.ListDriversRequest) (*apiv1.ListDriversResponse, error) {
	out := &apiv1.ListDriversResponse{}
	for _, e := range a.d.Drivers() {
		out.Drivers = append(out.Drivers, driverToAPI(e))
	}
	return out, nil
}

func (a *apiServer) ReloadDriver(ctx context.Context, r *apiv1.ReloadDriverRequest) (*apiv1.Driver, error) {
	if err := a.d.ReloadDriver(ctx, r.GetName()); err != nil {
		return nil, apiError(err)
	}
	for _, e := range a.d.Drivers() {
		if e.Name == r.GetName() {
			return driverToAPI(e), nil
		}
	}
	return nil, apiError(fmt.Errorf("driver %q: %w", r.GetName(), ErrNoDriver))
}

func driverToAPI(e DriverEntry) *apiv1.Driver {
	w := &apiv1.Driver{
		Name:              e.Name,
		Path:              e.Path,
		Healthy:           e.Healthy(),
		Version:           e.Info.Version,
		HealthDescription: e.Fingerprint.Description,
		Attributes:        e.Fingerprint.Attributes,
	}
	if e.Err != nil {
		w.Error = e.Err.Error()
	} else {
		w.ContractVersion = uint32(e.ContractVersion)
	}
	for _, c := range e.Info.Capabilities {
		w.Capabilities = append(w.Capabilities, c.String())
	}
	return w
}

func (a *apiServer) RunVM(ctx context.Context, r *apiv1.RunVMRequest) (*apiv1.RunVMResponse, error) {
	if r.GetSpec() == nil {
		return nil, apiError(sdk.InvalidSpec("spec", "must be given"))
	}
	rec, err := a.d.Run(ctx, r.GetDriver(), specFromAPI(r.GetSpec()))
	if err != nil {
		return nil, apiError(err)
	}
	return &apiv1.RunVMResponse{Vm: vmToAPI(rec)}, nil
}

func (a *apiServer) ListVMs(context.Context, *apiv1.ListVMsRequest) (*apiv1.ListVMsResponse, error) {
	out := &apiv1.ListVMsResponse{}
	for _, rec := range a.d.VMs() {
		out.Vms = append(out.Vms, vmToAPI(rec))
	}
	for id, err := range a.d.Unreadable() {
		out.Vms = append(out.Vms, &apiv1.VM{
			Id:        id,
			State:     "unreadable",
			LastError: fmt.Sprintf("the store's record cannot be decoded (%v); it is kept as it is", err),
		})
	}
	return out, nil
}

func (a *apiServer) GetVM(_ context.Context, r *apiv1.GetVMRequest) (*apiv1.VM, error) {
	rec, err := a.d.VM(r.GetId())
	if err != nil {
		return nil, apiError(err)
	}
	return vmToAPI(rec), nil
}

func (a *apiServer) StartVM(ctx context.Context, r *apiv1.StartVMRequest) (*apiv1.VM, error) {
	return vmReply(a.d.Start(ctx, r.GetId()))
}

func (a *apiServer) StopVM(ctx context.Context, r *apiv1.StopVMRequest) (*apiv1.VM, error) {
	var timeout time.Duration
	if r.GetTimeout() != nil {
		timeout = r.GetTimeout().AsDuration()
	}
	return vmReply(a.d.Stop(ctx, r.GetId(), timeout))
}

func (a *apiServer) KillVM(ctx context.Context, r *apiv1.KillVMRequest) (*apiv1.VM, error) {
	return vmReply(a.d.Kill(ctx, r.GetId()))
}

func (a *apiServer) PauseVM(ctx context.Context, r *apiv1.PauseVMRequest) (*apiv1.VM, error) {
	return vmReply(a.d.Pause(ctx, r.GetId()))
}

func (a *apiServer) ResumeVM(ctx context.Context, r *apiv1.ResumeVMRequest) (*apiv1.VM, error) {
	return vmReply(a.d.Resume(ctx, r.GetId()))
}

func (a *apiServer) RemoveVM(ctx context.Context, r *apiv1.RemoveVMRequest) (*apiv1.RemoveVMResponse, error) {
	if err := a.d.Remove(ctx, r.GetId()); err != nil {
		return nil, apiError(err)
	}
	return &apiv1.RemoveVMResponse{}, nil
}

func (a *apiServer) ConsoleLog(r *apiv1.ConsoleLogRequest, stream apiv1.Hyperd_ConsoleLogServer) error {
	rec, err := a.d.VM(r.GetId())
	if err != nil {
		return apiError(err)
	}
	if rec.ConsoleLog == "" {
		return status.Errorf(codes.FailedPrecondition, "vm %s has no console log yet; start it first", rec.ID)
	}
	f, err := os.Open(rec.ConsoleLog)
	if err != nil {
		return status.Errorf(codes.Unavailable, "open console log of vm %s: %v", rec.ID, err)
	}
	defer f.Close()

	buf := make([]byte, consoleChunkSize)
	ctx := stream.Context()
	var off int64
	for {
		n, err := f.Read(buf)
		if n > 0 {
			off += int64(n)
			if serr := stream.Send(&apiv1.ConsoleChunk{Data: buf[:n]}); serr != nil {
				return serr
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return status.Errorf(codes.Unavailable, "read console log of vm %s: %v", rec.ID, err)
		}
		if !r.GetFollow() {
			return nil
		}
		// Following ends once the VM no longer runs and its output is
		// drained, or once it is removed.
		now, err := a.d.VM(rec.ID)
		if err != nil || !now.State.Live() {
			return nil
		}
		// A restart truncates the log: start again from its beginning.
		if fi, err := f.Stat(); err == nil && fi.Size() < off {
			if _, err := f.Seek(0, io.SeekStart); err == nil {
				off = 0
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.d.draining:
			return status.Error(codes.Unavailable, "hyperd is shutting down; the vm keeps running")
		case <-time.After(consolePollInterval):
		}
	}
}

func vmReply(rec Record, err error) (*apiv1.VM, error) {
	if err != nil {
		return nil, apiError(err)
	}
	return vmToAPI(rec), nil
}

func specFromAPI(w *apiv1.VMSpec) sdk.Spec {
	s := sdk.Spec{
		Name:      w.GetName(),
		VCPUs:     w.GetVcpus(),
		MemoryMiB: w.GetMemoryMib(),
		Kernel:    w.GetKernel(),
		Initrd:    w.GetInitrd(),
		Cmdline:   w.GetCmdline(),
		Options:   w.GetOptions(),
	}
	for _, d := range w.GetDisks() {
		s.Disks = append(s.Disks, sdk.Disk{Path: d.GetPath(), Format: d.GetFormat(), ReadOnly: d.GetReadOnly()})
	}
	return s
}

func specToAPI(s sdk.Spec) *apiv1.VMSpec {
	w := &apiv1.VMSpec{
		Name:      s.Name,
		Vcpus:     s.VCPUs,
		MemoryMib: s.MemoryMiB,
		Kernel:    s.Kernel,
		Initrd:    s.Initrd,
		Cmdline:   s.Cmdline,
		Options:   s.Options,
	}
	for _, d := range s.Disks {
		w.Disks = append(w.Disks, &apiv1.Disk{Path: d.Path, Format: d.Format, ReadOnly: d.ReadOnly})
	}
	return w
}

func vmToAPI(r Record) *apiv1.VM {
	return &apiv1.VM{
		Id:              r.ID,
		Driver:          r.Driver,
		Spec:            specToAPI(r.Spec),
		State:           r.State.String(),
		Reason:          r.Reason,
		LastError:       r.LastError,
		Pid:             r.PID,
		CreatedAt:       timestamppb.New(r.CreatedAt),
		UpdatedAt:       timestamppb.New(r.UpdatedAt),
		ContractVersion: r.ContractVersion,
		ConsoleLog:      r.ConsoleLog,
	}
}
