package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/digitalocean/go-qemu/qmp/raw"

	"github.com/hyperd/hyperd/sdk"
)

// attachDialTimeout bounds reconnecting to a running QEMU's QMP socket.
// A QEMU with another client still connected accepts but does not greet
// until that client leaves, so without a bound a stale second driver
// would hang the call.
const attachDialTimeout = 10 * time.Second

// lookup returns the live view of the VM named by h: the one this
// process holds when it is current, else one attached from the handle.
// It returns nil for a VM never started. A VM found alive whose QMP
// cannot be reached is returned all the same (its process can still be
// killed); monitor tells the QMP error.
func (d *Driver) lookup(ctx context.Context, vmID string, h handle) (*vm, error) {
	if v := d.current(vmID, h); v != nil {
		return v, nil
	}
	if h.PID == 0 && !pidFileExists(h) {
		return nil, nil
	}

	d.attachMu.Lock()
	if v := d.current(vmID, h); v != nil {
		d.attachMu.Unlock()
		return v, nil
	}
	var proc *process
	err := fmt.Errorf("no pid in the handle: %w", errGone)
	if h.PID != 0 {
		proc, err = openProcess(h.PID, h.StartTime, qmpChardev(h.QMPSocket))
	}
	if errors.Is(err, errGone) {
		// The handle may predate a start that was cut short, with the
		// daemon, before it could hand back the new process: QEMU's pid
		// file names it, and its QMP socket argument proves it ours.
		if p, ph, perr := fromPidFile(h); perr == nil {
			proc, h, err = p, ph, nil
		}
	}
	if errors.Is(err, errGone) {
		d.attachMu.Unlock()
		d.log.Info("qemu process gone", "vm_id", vmID, "pid", h.PID, "error", err)
		v := newGoneVM(vmID, h, reasonAway, d.log, d.hub)
		d.store(v)
		return v, nil
	}
	if err != nil {
		d.attachMu.Unlock()
		return nil, fmt.Errorf("find qemu of vm %s: %w", vmID, err)
	}
	v := newVM(vmID, h, proc, d.log, d.hub)
	if err := v.watchPidfd(); err != nil {
		d.attachMu.Unlock()
		proc.close()
		return nil, fmt.Errorf("watch qemu of vm %s: %w", vmID, err)
	}
	// Stored before dialing so that a Kill need not wait for QMP.
	d.store(v)
	defer d.attachMu.Unlock()

	dctx, cancel := context.WithTimeout(ctx, attachDialTimeout)
	defer cancel()
	// A QEMU found by its pid file may have just started and not be
	// listening yet: retry, as a start does, within the bound.
	m, err := d.dialStarting(dctx, v)
	if err == nil {
		err = v.setMonitor(m)
	}
	if err != nil {
		v.log.Warn("qemu found but its qmp is unreachable", "error", err)
		v.setMonitorErr(err)
		return v, nil
	}
	v.log.Info("reattached to qemu")
	return v, nil
}

// current returns the VM this process holds for vmID when it is still
// the one to use for h: alive (a Start may have replaced the handle's
// process), or the very process h names.
func (d *Driver) current(vmID string, h handle) *vm {
	d.mu.Lock()
	defer d.mu.Unlock()
	v := d.vms[vmID]
	if v == nil {
		return nil
	}
	if v.alive() || (v.h.PID == h.PID && v.h.StartTime == h.StartTime) {
		return v
	}
	return nil
}

func (d *Driver) store(v *vm) {
	d.mu.Lock()
	old := d.vms[v.id]
	d.vms[v.id] = v
	d.mu.Unlock()
	if old != nil && old != v {
		old.detach()
	}
}

// Recover reattaches to the VM's QEMU from its handle. A process that is
// gone, or whose PID now belongs to another process, gives a stopped
// status, not an error. A live process whose QMP socket does not answer
// is an error wrapping sdk.ErrUnavailable.
func (d *Driver) Recover(ctx context.Context, vmID string, hb sdk.Handle) (sdk.Handle, sdk.Status, error) {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return nil, sdk.Status{}, fmt.Errorf("recover vm %s: %w", vmID, err)
	}
	v, err := d.lookup(ctx, vmID, h)
	if err != nil {
		return nil, sdk.Status{}, fmt.Errorf("recover vm %s: %w", vmID, err)
	}
	if v != nil && v.alive() {
		if _, err := v.monitor(); err != nil {
			return nil, sdk.Status{}, fmt.Errorf("recover vm %s: %w", vmID, err)
		}
	}
	st, err := d.status(ctx, h, v)
	if err != nil {
		return nil, sdk.Status{}, fmt.Errorf("recover vm %s: %w", vmID, err)
	}
	if st.State == sdk.RunStateCreated && v != nil && v.alive() {
		// A start cut short: QEMU waits in prelaunch for a cont that
		// will never come. End it rather than leave it behind.
		v.log.Info("killing a qemu whose start was interrupted")
		if err := v.kill(ctx); err != nil {
			return nil, sdk.Status{}, fmt.Errorf("recover vm %s: %w", vmID, err)
		}
		st = sdk.Status{State: sdk.RunStateStopped, ExitReason: reasonInterrupted, ConsoleLog: st.ConsoleLog}
	}
	if v != nil {
		return v.h.encode(), st, nil
	}
	return hb, st, nil
}

// reasonInterrupted is the exit reason of a VM whose start was cut short.
const reasonInterrupted = "start interrupted: the half-started qemu was killed"

func pidFileExists(h handle) bool {
	_, err := os.Stat(filepath.Join(h.WorkDir, pidFileName))
	return err == nil
}

// fromPidFile finds the QEMU a pid file in the work directory names, and
// returns it with h updated to name it.
func fromPidFile(h handle) (*process, handle, error) {
	b, err := os.ReadFile(filepath.Join(h.WorkDir, pidFileName))
	if err != nil {
		return nil, h, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return nil, h, fmt.Errorf("pid file: %q is not a pid", b)
	}
	start, err := procStartTime(pid)
	if err != nil {
		return nil, h, fmt.Errorf("pid %d: %w", pid, errGone)
	}
	proc, err := openProcess(pid, start, qmpChardev(h.QMPSocket))
	if err != nil {
		return nil, h, err
	}
	h.PID, h.StartTime = pid, start
	return proc, h, nil
}

// Status reports whether QEMU runs and what QMP says of the guest.
func (d *Driver) Status(ctx context.Context, vmID string, hb sdk.Handle) (sdk.Status, error) {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return sdk.Status{}, fmt.Errorf("status of vm %s: %w", vmID, err)
	}
	v, err := d.lookup(ctx, vmID, h)
	if err != nil {
		return sdk.Status{}, fmt.Errorf("status of vm %s: %w", vmID, err)
	}
	st, err := d.status(ctx, h, v)
	if err != nil {
		return sdk.Status{}, fmt.Errorf("status of vm %s: %w", vmID, err)
	}
	return st, nil
}

func (d *Driver) status(ctx context.Context, h handle, v *vm) (sdk.Status, error) {
	st := sdk.Status{ConsoleLog: consoleLogPath(h.WorkDir), Attributes: map[string]string{}}
	if v == nil {
		st.State = sdk.RunStateCreated
		return st, nil
	}
	if v.h.Accel != "" {
		st.Attributes["accelerator"] = string(v.h.Accel)
	}
	if !v.alive() {
		st.State = sdk.RunStateStopped
		st.ExitReason = v.reason()
		return st, nil
	}
	st.PID = int64(v.h.PID)
	st.State = sdk.RunStateRunning
	m, err := v.monitor()
	if err != nil {
		// The process runs; only the guest's finer state is unknown.
		st.Attributes["qmp"] = err.Error()
		return st, nil
	}
	qs, err := rawMonitor(ctx, m).QueryStatus()
	if err != nil {
		if !v.alive() { // it ended while we asked
			st.State, st.PID, st.ExitReason = sdk.RunStateStopped, 0, v.reason()
			return st, nil
		}
		return sdk.Status{}, fmt.Errorf("query-status: %w", err)
	}
	st.Attributes["qemu_status"] = qs.Status.String()
	st.State = runState(qs)
	if st.State == sdk.RunStateCreated && v.h.Spec.Options[optStartPaused] == "true" {
		// Started paused on purpose: prelaunch is its paused state.
		st.State = sdk.RunStatePaused
	}
	return st, nil
}

// runState maps QEMU's run state: a guest whose vCPUs are stopped for
// any reason short of the process's end is paused to the daemon.
func runState(qs raw.StatusInfo) sdk.RunState {
	if qs.Running {
		return sdk.RunStateRunning
	}
	switch qs.Status {
	case raw.RunStatePrelaunch:
		return sdk.RunStateCreated
	case raw.RunStateShutdown:
		// QEMU is on its way out after a guest power-off.
		return sdk.RunStateRunning
	default:
		return sdk.RunStatePaused
	}
}

// Pause stops the guest's vCPUs.
func (d *Driver) Pause(ctx context.Context, vmID string, hb sdk.Handle) error {
	return d.qmpCommand(ctx, vmID, hb, "pause", func(r *raw.Monitor) error { return r.Stop() })
}

// Resume restarts the guest's vCPUs.
func (d *Driver) Resume(ctx context.Context, vmID string, hb sdk.Handle) error {
	return d.qmpCommand(ctx, vmID, hb, "resume", func(r *raw.Monitor) error { return r.Cont() })
}

func (d *Driver) qmpCommand(ctx context.Context, vmID string, hb sdk.Handle, what string, run func(*raw.Monitor) error) error {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return fmt.Errorf("%s vm %s: %w", what, vmID, err)
	}
	v, err := d.lookup(ctx, vmID, h)
	if err != nil {
		return fmt.Errorf("%s vm %s: %w", what, vmID, err)
	}
	if v == nil || !v.alive() {
		return fmt.Errorf("%s vm %s: not running: %w", what, vmID, sdk.ErrWrongState)
	}
	m, err := v.monitor()
	if err != nil {
		return fmt.Errorf("%s vm %s: %w", what, vmID, err)
	}
	if err := run(rawMonitor(ctx, m)); err != nil {
		if !v.alive() {
			return fmt.Errorf("%s vm %s: exited meanwhile: %w", what, vmID, sdk.ErrWrongState)
		}
		return fmt.Errorf("%s vm %s: %w", what, vmID, err)
	}
	v.log.Info("vm "+what+"d", "event", what)
	return nil
}
