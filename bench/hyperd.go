package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
)

// termWait bounds hyperd's exit after SIGTERM before it is killed.
const termWait = 10 * time.Second

// accelEnv forces TCG in both drivers: KVM hangs guests on this host, and
// the drivers' KVM probes would otherwise boot a probe guest at start.
var accelEnv = []string{"HYPERD_QEMU_ACCEL=tcg", "HYPERD_LIBVIRT_ACCEL=tcg"}

// daemon is one hyperd process of the bench's own, with a private state
// directory and socket under dir.
type daemon struct {
	dir    string
	socket string
	cmd    *exec.Cmd
	exited chan struct{}
	conn   *grpc.ClientConn
	api    apiv1.HyperdClient
	// started is when the process was exec'd, ready when its API first
	// answered, with drivers.
	started time.Time
	ready   time.Time
	drivers *apiv1.ListDriversResponse
}

// startDaemon execs bin/hyperd with pluginDir and returns once its API
// has answered ListDrivers. The process lives until stop; ctx bounds
// only the wait for the API.
func startDaemon(ctx context.Context, binDir, dir, pluginDir string) (d *daemon, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("start hyperd: %w", err)
	}
	logf, err := os.Create(filepath.Join(dir, "hyperd.log"))
	if err != nil {
		return nil, fmt.Errorf("start hyperd: %w", err)
	}
	defer logf.Close() // the child holds its own descriptor

	d = &daemon{
		dir:    dir,
		socket: filepath.Join(dir, "api.sock"),
		exited: make(chan struct{}),
	}
	d.cmd = exec.Command(filepath.Join(binDir, "hyperd"),
		"--state-dir", filepath.Join(dir, "state"),
		"--socket", d.socket,
		"--plugin-dir", pluginDir,
		"--log-level", "warn",
	)
	d.cmd.Env = append(os.Environ(), accelEnv...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.started = time.Now()
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start hyperd: %w", err)
	}
	go func() {
		_ = d.cmd.Wait() // the exit is what matters, not its status
		close(d.exited)
	}()
	defer func() {
		if err != nil {
			d.stop(context.WithoutCancel(ctx))
		}
	}()

	// gRPC's default reconnect backoff starts at a second, which would
	// swamp a start-up measured in milliseconds.
	d.conn, err = grpc.NewClient("unix:"+d.socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: time.Millisecond, Multiplier: 1.6, MaxDelay: 20 * time.Millisecond},
			MinConnectTimeout: 20 * time.Second,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("start hyperd: %w", err)
	}
	d.api = apiv1.NewHyperdClient(d.conn)
	if d.drivers, err = d.waitAPI(ctx); err != nil {
		return nil, err
	}
	d.ready = time.Now()
	return d, nil
}

// waitAPI polls ListDrivers until it answers, and returns when it did.
// hyperd listens before it discovers its drivers but serves only after,
// so the first answer is the moment the daemon is usable.
func (d *daemon) waitAPI(ctx context.Context) (*apiv1.ListDriversResponse, error) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		r, err := d.api.ListDrivers(cctx, &apiv1.ListDriversRequest{}, grpc.WaitForReady(true))
		cancel()
		if err == nil {
			return r, nil
		}
		select {
		case <-d.exited:
			return nil, fmt.Errorf("hyperd exited before its api answered; see %s",
				filepath.Join(d.dir, "hyperd.log"))
		case <-ctx.Done():
			return nil, fmt.Errorf("hyperd api did not answer: %w", err)
		case <-time.After(time.Millisecond):
		}
	}
}

// pid is hyperd's process id.
func (d *daemon) pid() int { return d.cmd.Process.Pid }

// removeAll kills and removes every VM the daemon knows. hyperd leaves VMs
// running when it stops, so this runs before stop; a VM whose kill fails
// has its recorded QEMU killed by pid, which is a child of the bench's own
// daemon's driver.
func (d *daemon) removeAll(ctx context.Context) error {
	r, err := d.api.ListVMs(ctx, &apiv1.ListVMsRequest{})
	if err != nil {
		return fmt.Errorf("list vms: %w", err)
	}
	var errs []error
	for _, vm := range r.GetVms() {
		if _, err := d.api.KillVM(ctx, &apiv1.KillVMRequest{Id: vm.GetId()}); err != nil {
			if vm.GetPid() > 0 {
				_ = syscall.Kill(int(vm.GetPid()), syscall.SIGKILL) // best effort after a failed kill
			}
			errs = append(errs, fmt.Errorf("kill vm %s: %w", vm.GetId(), err))
			continue
		}
		if _, err := d.api.RemoveVM(ctx, &apiv1.RemoveVMRequest{Id: vm.GetId()}); err != nil {
			errs = append(errs, fmt.Errorf("remove vm %s: %w", vm.GetId(), err))
		}
	}
	return errors.Join(errs...)
}

// stop removes every VM, then ends hyperd: SIGTERM, a bounded wait,
// SIGKILL.
func (d *daemon) stop(ctx context.Context) error {
	var err error
	if d.api != nil {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = d.removeAll(cctx)
		cancel()
	}
	if d.conn != nil {
		_ = d.conn.Close() // nothing is in flight any more
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM) // fails only when it has exited
	select {
	case <-d.exited:
	case <-time.After(termWait):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	return err
}
