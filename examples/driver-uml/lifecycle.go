package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/hyperd/hyperd/sdk"
)

const (
	// haltWait bounds the wait for UML to exit after the mconsole's halt,
	// the step between a guest that ignored cad and SIGKILL.
	haltWait = 3 * time.Second
	// cleanupWait bounds the kill after a failed start, which runs even
	// when the caller's context has ended.
	cleanupWait = 10 * time.Second
	// mconsoleRetry is the pause between attempts to reach a starting
	// UML's mconsole, which answers a few hundred milliseconds in.
	mconsoleRetry = 50 * time.Millisecond
)

// argv is the UML command line for h. Every console and serial line
// writes to file descriptor 3, the console log, and reads nothing; UML's
// own messages go to its stdout, uml.log.
func argv(h handle) []string {
	args := []string{
		h.Spec.Kernel,
		fmt.Sprintf("mem=%dM", h.Spec.MemoryMiB),
		"umid=" + h.UMID,
		h.identityArg(),
		"con=null", "ssl=null", "con0=null,fd:3", "ssl0=null,fd:3",
	}
	if h.Spec.Initrd != "" {
		args = append(args, "initrd="+h.Spec.Initrd)
	}
	for i, dk := range h.Spec.Disks {
		flag := ""
		if dk.ReadOnly {
			flag = "r"
		}
		args = append(args, fmt.Sprintf("ubd%d%s=%s", i, flag, dk.Path))
	}
	return append(args, strings.Fields(h.Spec.Cmdline)...)
}

// Start runs UML for the VM and returns once its mconsole answers, with
// the handle naming the new process. ctx governs the call, not UML's
// life: UML runs in its own process group and outlives this driver.
func (d *driver) Start(ctx context.Context, vmID string, hb sdk.Handle) (_ sdk.Handle, err error) {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	if v, err := d.lookup(vmID, h); err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	} else if v != nil && v.alive() {
		return nil, fmt.Errorf("start vm %s: already running as pid %d: %w", vmID, v.h.PID, sdk.ErrWrongState)
	}
	v, err := d.spawn(h)
	if err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	defer func() {
		if err != nil {
			kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupWait)
			defer cancel()
			if kerr := v.kill(kctx); kerr != nil {
				v.log.Error("kill uml after a failed start", "error", kerr)
			}
		}
	}()
	for {
		if _, err = mconsole(ctx, v.h, "version"); err == nil {
			break
		}
		select {
		case <-v.gone:
			return nil, fmt.Errorf("start vm %s: uml exited (%s): %s", vmID, v.reason(), logTail(v.h.umlLog()))
		case <-ctx.Done():
			return nil, fmt.Errorf("start vm %s: mconsole did not answer: %w", vmID, err)
		case <-time.After(mconsoleRetry):
		}
	}
	v.log.Info("vm started")
	return v.h.encode(), nil
}

// spawn execs UML and registers the VM, so that a Kill reaches it while
// Start still waits for the mconsole.
func (d *driver) spawn(h handle) (*vm, error) {
	// A umid directory left by a killed UML would make the new one
	// refuse to start or the socket look ready too early.
	for _, p := range []string{h.umlDir(), h.pausedFile(), h.exitFile()} {
		if err := os.RemoveAll(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("remove stale %s: %w", p, err)
		}
	}
	umlLog, err := os.OpenFile(h.umlLog(), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open uml log: %w", err)
	}
	defer umlLog.Close() // UML holds its own descriptors
	console, err := os.OpenFile(h.consoleLog(), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open console log: %w", err)
	}
	defer console.Close()

	args := argv(h)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = h.WorkDir
	// UML backs the guest's memory with a file in TMPDIR: keep it in the
	// work directory, not in a /tmp that may be small.
	cmd.Env = append(os.Environ(), "TMPDIR="+h.WorkDir)
	// Files, not pipes: UML must keep writing after this process dies.
	cmd.Stdout, cmd.Stderr = umlLog, umlLog
	cmd.ExtraFiles = []*os.File{console}
	// Its own process group: a signal to the driver's group does not
	// reach the VMs, and Kill reaches all of UML's helpers at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("exec %s: %w", args[0], err)
	}
	proc, err := openChild(cmd.Process.Pid)
	if err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // nothing else holds it
		_ = cmd.Wait()                                      // its status is moot next to err
		return nil, err
	}
	h.PID, h.StartTime = proc.pid, proc.startTime
	v := newVM(h, proc, d.log)
	v.watchChild(cmd, d.hub)
	d.store(v)
	v.log.Debug("uml spawned", "argv", args)
	return v, nil
}

// Stop asks the guest to power off with Ctrl-Alt-Del, waits up to
// timeout, then halts the UML kernel and, past haltWait, kills its
// process group. forced says whether the guest had not powered off by
// itself in time. Stopping a stopped VM succeeds. ctx bounds the call.
func (d *driver) Stop(ctx context.Context, vmID string, hb sdk.Handle, timeout time.Duration) (bool, error) {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return false, fmt.Errorf("stop vm %s: %w", vmID, err)
	}
	v, err := d.lookup(vmID, h)
	if err != nil {
		return false, fmt.Errorf("stop vm %s: %w", vmID, err)
	}
	if v == nil || !v.alive() {
		return false, nil
	}
	if _, err := mconsole(ctx, v.h, "cad"); err != nil {
		v.log.Debug("cad failed; forcing after the timeout", "error", err)
	}
	v.log.Info("vm stopping", "timeout", timeout.String())
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-v.gone:
		return false, v.wait(ctx)
	case <-ctx.Done():
		return false, fmt.Errorf("stop vm %s: %w", vmID, ctx.Err())
	case <-t.C:
	}

	v.log.Info("guest did not power off in time; halting", "timeout", timeout.String())
	hctx, cancel := context.WithTimeout(ctx, haltWait)
	defer cancel()
	// halt's reply races UML's exit, so its error says nothing.
	_, _ = mconsole(hctx, v.h, "halt")
	if v.wait(hctx) == nil {
		return true, nil
	}
	if err := v.kill(ctx); err != nil {
		return true, fmt.Errorf("stop vm %s: %w", vmID, err)
	}
	return true, nil
}

// Kill forces the VM off at once; killing a stopped VM succeeds.
func (d *driver) Kill(ctx context.Context, vmID string, hb sdk.Handle) error {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return fmt.Errorf("kill vm %s: %w", vmID, err)
	}
	v, err := d.lookup(vmID, h)
	if err != nil {
		return fmt.Errorf("kill vm %s: %w", vmID, err)
	}
	if v == nil {
		return nil
	}
	if err := v.kill(ctx); err != nil {
		return err
	}
	v.log.Info("vm killed")
	return nil
}

// Pause freezes the guest with the mconsole's stop. The mark written
// first lets a later driver process report the VM as paused.
func (d *driver) Pause(ctx context.Context, vmID string, hb sdk.Handle) error {
	v, err := d.running(vmID, hb, "pause")
	if err != nil {
		return err
	}
	if err := os.WriteFile(v.h.pausedFile(), []byte(v.h.incarnation()), 0o640); err != nil {
		return fmt.Errorf("pause vm %s: %w", vmID, err)
	}
	if reply, err := mconsole(ctx, v.h, "stop"); err != nil && !strings.Contains(reply, "Already stopped") {
		_ = os.Remove(v.h.pausedFile()) // the stop failed; the mark would lie
		return fmt.Errorf("pause vm %s: %w", vmID, err)
	}
	d.hub.Publish(sdk.Event{VMID: vmID, Type: sdk.EventPaused, Reason: "mconsole stop", Time: time.Now()})
	v.log.Info("vm paused", "event", sdk.EventPaused.String())
	return nil
}

// Resume lets a paused guest run again with the mconsole's go.
func (d *driver) Resume(ctx context.Context, vmID string, hb sdk.Handle) error {
	v, err := d.running(vmID, hb, "resume")
	if err != nil {
		return err
	}
	if _, err := mconsole(ctx, v.h, "go"); err != nil {
		return fmt.Errorf("resume vm %s: %w", vmID, err)
	}
	if err := os.Remove(v.h.pausedFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("resume vm %s: %w", vmID, err)
	}
	d.hub.Publish(sdk.Event{VMID: vmID, Type: sdk.EventResumed, Reason: "mconsole go", Time: time.Now()})
	v.log.Info("vm resumed", "event", sdk.EventResumed.String())
	return nil
}

// running returns the live VM for a call that needs one.
func (d *driver) running(vmID string, hb sdk.Handle, what string) (*vm, error) {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return nil, fmt.Errorf("%s vm %s: %w", what, vmID, err)
	}
	v, err := d.lookup(vmID, h)
	if err != nil {
		return nil, fmt.Errorf("%s vm %s: %w", what, vmID, err)
	}
	if v == nil || !v.alive() {
		return nil, fmt.Errorf("%s vm %s: not running: %w", what, vmID, sdk.ErrWrongState)
	}
	return v, nil
}

// Status reports whether UML runs, and whether it is paused.
func (d *driver) Status(_ context.Context, vmID string, hb sdk.Handle) (sdk.Status, error) {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return sdk.Status{}, fmt.Errorf("status of vm %s: %w", vmID, err)
	}
	v, err := d.lookup(vmID, h)
	if err != nil {
		return sdk.Status{}, fmt.Errorf("status of vm %s: %w", vmID, err)
	}
	return status(h, v), nil
}

func status(h handle, v *vm) sdk.Status {
	st := sdk.Status{ConsoleLog: h.consoleLog(), Attributes: map[string]string{"umid": h.UMID}}
	switch {
	case v == nil:
		st.State = sdk.RunStateCreated
	case !v.alive():
		st.State, st.ExitReason = sdk.RunStateStopped, v.reason()
	default:
		st.State, st.PID = sdk.RunStateRunning, int64(v.h.PID)
		st.Attributes["mconsole"] = v.h.mconsole()
		if b, err := os.ReadFile(v.h.pausedFile()); err == nil && string(b) == v.h.incarnation() {
			st.State = sdk.RunStatePaused
		}
	}
	return st
}

// Recover reattaches to the VM's UML from its handle. A process that is
// gone, or whose PID now names another process, gives a stopped status,
// not an error.
func (d *driver) Recover(_ context.Context, vmID string, hb sdk.Handle) (sdk.Handle, sdk.Status, error) {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return nil, sdk.Status{}, fmt.Errorf("recover vm %s: %w", vmID, err)
	}
	v, err := d.lookup(vmID, h)
	if err != nil {
		return nil, sdk.Status{}, fmt.Errorf("recover vm %s: %w", vmID, err)
	}
	return hb, status(h, v), nil
}

// logTail returns the last lines of a log file, for an error message.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, " | ")
}
