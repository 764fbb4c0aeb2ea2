package qemu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hyperd/hyperd/plugins/qemu/internal/qmp"
	"github.com/hyperd/hyperd/sdk"
)

const (
	// quitWait bounds the wait for QEMU to exit after a QMP quit, the
	// step between a guest that ignored the power button and SIGKILL.
	quitWait = 3 * time.Second
	// cleanupWait bounds the kill and reap after a failed start, which
	// runs even when the caller's context has ended.
	cleanupWait = 10 * time.Second
	// qmpRetry is the pause between attempts to reach a starting QEMU's
	// QMP socket, which appears a few milliseconds after exec.
	qmpRetry = 20 * time.Millisecond
	// logTailLines is how much of qemu.log a failed start quotes.
	logTailLines = 5
)

// Start runs QEMU for the VM and returns once the guest runs, with the
// handle naming the new process. ctx governs the call, not QEMU's life:
// QEMU runs in its own process group and outlives this driver process.
func (d *Driver) Start(ctx context.Context, vmID string, hb sdk.Handle) (_ sdk.Handle, err error) {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	if err := d.beginStart(vmID); err != nil {
		return nil, err
	}
	defer d.endStart(vmID)

	if v, err := d.lookup(ctx, vmID, h); err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	} else if v != nil && v.alive() {
		return nil, fmt.Errorf("start vm %s: already running as pid %d: %w", vmID, v.h.PID, sdk.ErrWrongState)
	}
	if err := validateWorkDir(h.WorkDir); err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	bin, err := d.binaryPath()
	if err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	accel, why := resolveAccel(h.Spec.Options[optAccel], os.Getenv(AccelEnv),
		func() (Accelerator, string) { return d.probe(ctx, bin) })
	d.log.Debug("accelerator for vm", "vm_id", vmID, "accelerator", string(accel), "reason", why)

	v, err := d.spawn(vmID, h, bin, accel)
	if err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	defer func() {
		if err != nil {
			kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupWait)
			defer cancel()
			if kerr := v.kill(kctx); kerr != nil {
				v.log.Error("kill qemu after failed start", "error", kerr)
			}
		}
	}()

	m, err := d.dialStarting(ctx, v)
	if err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	if err := v.setMonitor(m); err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	if h.Spec.Options[optStartPaused] == "true" {
		v.log.Info("vm started paused", "accelerator", string(accel))
		return v.h.encode(), nil
	}
	if err := rawMonitor(ctx, m).Cont(); err != nil {
		return nil, fmt.Errorf("start vm %s: cont: %w", vmID, d.diedOr(v, err))
	}
	v.log.Info("vm started", "accelerator", string(accel))
	return v.h.encode(), nil
}

func (d *Driver) beginStart(vmID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.starting[vmID] {
		return fmt.Errorf("start vm %s: a start is already in progress: %w", vmID, sdk.ErrWrongState)
	}
	d.starting[vmID] = true
	return nil
}

func (d *Driver) endStart(vmID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.starting, vmID)
}

// spawn execs QEMU, paused (-S), and registers the VM so that a Kill can
// reach it while Start still waits for QMP.
func (d *Driver) spawn(vmID string, h handle, bin string, accel Accelerator) (*vm, error) {
	machine := h.Spec.Options[optMachine]
	if machine == "" {
		machine = "q35"
	}
	args := argv(launch{
		binary:  bin,
		name:    h.Spec.Name,
		machine: machine,
		accel:   accel,
		vcpus:   h.Spec.VCPUs,
		memMiB:  h.Spec.MemoryMiB,
		kernel:  h.Spec.Kernel,
		initrd:  h.Spec.Initrd,
		cmdline: h.Spec.Cmdline,
		disks:   h.Spec.Disks,
		workDir: h.WorkDir,
	})
	// Leftovers of a previous run would make the socket look ready
	// before QEMU listens on it.
	for _, p := range []string{h.QMPSocket, filepath.Join(h.WorkDir, pidFileName)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("remove stale %s: %w", p, err)
		}
	}
	logf, err := os.OpenFile(filepath.Join(h.WorkDir, qemuLogName), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open qemu log: %w", err)
	}
	defer logf.Close() // QEMU holds its own descriptor

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = h.WorkDir
	// A file, not a pipe: QEMU must keep writing after this process dies.
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a signal to the driver's group (a ^C, a
	// supervisor stopping the driver) does not reach the VMs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("exec %s: %w", bin, err)
	}
	proc, err := openChild(cmd.Process.Pid)
	if err != nil {
		_ = cmd.Process.Kill() // nothing else holds it; Wait below reaps it
		_ = cmd.Wait()         // its status is moot next to err
		return nil, err
	}

	h.Binary, h.Accel, h.PID, h.StartTime = bin, accel, proc.pid, proc.startTime
	v := newVM(vmID, h, proc, d.log, d.hub)
	v.watchChild(cmd)
	d.store(v)
	v.log.Debug("qemu spawned", "argv", args)
	return v, nil
}

// dialStarting connects to a starting QEMU's QMP socket, retrying until
// it answers, QEMU exits or ctx ends.
func (d *Driver) dialStarting(ctx context.Context, v *vm) (*qmp.Monitor, error) {
	for {
		m, err := qmp.Dial(ctx, "unix", v.h.QMPSocket)
		if err == nil {
			return m, nil
		}
		select {
		case <-v.gone:
			return nil, d.diedOr(v, err)
		case <-ctx.Done():
			return nil, fmt.Errorf("qmp did not answer: %w", err)
		case <-time.After(qmpRetry):
		}
	}
}

// diedOr explains a failure by QEMU's death when it died, quoting its
// log, and returns err otherwise.
func (d *Driver) diedOr(v *vm, err error) error {
	select {
	case <-v.gone:
	case <-time.After(100 * time.Millisecond):
		// A QMP error may come a moment before the exit is reaped.
		if v.alive() {
			return err
		}
	}
	b, rerr := os.ReadFile(filepath.Join(v.h.WorkDir, qemuLogName))
	tail := lastLines(string(b), logTailLines)
	if rerr != nil {
		tail = rerr.Error()
	}
	return fmt.Errorf("qemu exited (%s): %s", v.reason(), tail)
}

// Stop presses the guest's power button, waits up to timeout for QEMU to
// exit, then asks QEMU to quit, and past quitWait kills it. forced says
// whether the guest failed to power off in time. Stopping a stopped VM
// succeeds. ctx bounds the whole call.
func (d *Driver) Stop(ctx context.Context, vmID string, hb sdk.Handle, timeout time.Duration) (forced bool, err error) {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return false, fmt.Errorf("stop vm %s: %w", vmID, err)
	}
	v, err := d.lookup(ctx, vmID, h)
	if err != nil {
		return false, fmt.Errorf("stop vm %s: %w", vmID, err)
	}
	if v == nil || !v.alive() {
		return false, nil
	}

	m, merr := v.monitor()
	if merr == nil {
		if err := rawMonitor(ctx, m).SystemPowerdown(); err != nil {
			v.log.Debug("system_powerdown failed; escalating after the timeout", "error", err)
		}
	}
	v.log.Info("vm stopping", "timeout", timeout.String())
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-v.gone:
		return false, nil
	case <-ctx.Done():
		return false, fmt.Errorf("stop vm %s: %w", vmID, ctx.Err())
	case <-t.C:
	}

	v.log.Info("guest did not power off in time; forcing", "timeout", timeout.String())
	if merr == nil {
		qctx, cancel := context.WithTimeout(ctx, quitWait)
		// quit's reply races QEMU's exit, so an error here says nothing.
		_ = rawMonitor(qctx, m).Quit()
		err := v.wait(qctx)
		cancel()
		if err == nil {
			return true, nil
		}
	}
	if err := v.kill(ctx); err != nil {
		return true, fmt.Errorf("stop vm %s: %w", vmID, err)
	}
	return true, nil
}

// Kill sends QEMU SIGKILL through its pidfd and returns once it is gone.
// Killing a stopped VM succeeds.
func (d *Driver) Kill(ctx context.Context, vmID string, hb sdk.Handle) error {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return fmt.Errorf("kill vm %s: %w", vmID, err)
	}
	v, err := d.lookup(ctx, vmID, h)
	if err != nil {
		return fmt.Errorf("kill vm %s: %w", vmID, err)
	}
	if v == nil {
		return nil
	}
	v.log.Info("killing vm")
	return v.kill(ctx)
}

// Destroy kills QEMU if it still runs and removes its socket and pid
// file. console.log and qemu.log stay; the daemon removes the work
// directory. An unknown VM succeeds.
func (d *Driver) Destroy(ctx context.Context, vmID string, hb sdk.Handle) error {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return fmt.Errorf("destroy vm %s: %w", vmID, err)
	}
	v, err := d.lookup(ctx, vmID, h)
	if err != nil {
		return fmt.Errorf("destroy vm %s: %w", vmID, err)
	}
	if v != nil {
		if err := v.kill(ctx); err != nil {
			return fmt.Errorf("destroy vm %s: %w", vmID, err)
		}
		v.detach()
		d.mu.Lock()
		if d.vms[vmID] == v {
			delete(d.vms, vmID)
		}
		d.mu.Unlock()
	}
	for _, p := range []string{h.QMPSocket, filepath.Join(h.WorkDir, pidFileName)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("destroy vm %s: %w", vmID, err)
		}
	}
	d.log.Info("vm destroyed", "vm_id", vmID)
	return nil
}

func consoleLogPath(workDir string) string { return filepath.Join(workDir, consoleLogName) }
