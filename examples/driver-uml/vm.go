package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hyperd/hyperd/sdk"
)

// reasonAway is the exit reason of a VM whose process ended while no
// driver watched it.
const reasonAway = "uml process gone while the driver was away"

// vm is this driver process's live view of one UML process, from its
// start or recovery to its end. It caches what the handle and the process
// say; the facts live there and in the work directory.
type vm struct {
	id   string
	h    handle // names this incarnation's process; read-only
	log  hclog.Logger
	proc *process // nil when the process was gone before we looked

	// gone is closed by finish, its only closer, once the process ended.
	gone chan struct{}

	mu         sync.Mutex
	exitReason string
	stopWatch  func() // ends a pidfd watcher; nil for a child
}

func newVM(h handle, proc *process, log hclog.Logger) *vm {
	return &vm{
		id:   h.VMID,
		h:    h,
		log:  log.With("vm_id", h.VMID, "pid", h.PID),
		proc: proc,
		gone: make(chan struct{}),
	}
}

func (v *vm) alive() bool {
	select {
	case <-v.gone:
		return false
	default:
		return true
	}
}

func (v *vm) reason() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.exitReason
}

// finish records the end of the process, in memory and in the work
// directory for a later driver process, and announces it.
func (v *vm) finish(reason string, hb *sdk.EventHub) {
	v.mu.Lock()
	v.exitReason = reason
	v.mu.Unlock()
	if v.proc != nil {
		v.proc.close()
	}
	rec := v.h.incarnation() + " " + reason
	if err := os.WriteFile(v.h.exitFile(), []byte(rec), 0o640); err != nil {
		v.log.Warn("cannot record the exit reason; a later driver will not know it", "error", err)
	}
	_ = os.Remove(v.h.pausedFile()) // a dead VM is not paused; absent is fine
	v.log.Info("uml exited", "event", sdk.EventExited.String(), "reason", reason)
	hb.Publish(sdk.Event{VMID: v.id, Type: sdk.EventExited, Reason: reason, Time: time.Now()})
	close(v.gone)
}

// watchChild reaps a UML this driver process started.
func (v *vm) watchChild(cmd *exec.Cmd, hb *sdk.EventHub) {
	go func() {
		err := cmd.Wait()
		reason := "wait failed: " + fmt.Sprint(err)
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			reason = fmt.Sprintf("killed by signal %d", int(ws.Signal()))
		} else if ok {
			reason = fmt.Sprintf("exit status %d", ws.ExitStatus())
		}
		v.finish(reason, hb)
	}()
}

// watchPidfd notices the end of a UML this process did not start.
func (v *vm) watchPidfd(hb *sdk.EventHub) error {
	fd, fire, err := newCanceler()
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.stopWatch = fire
	v.mu.Unlock()
	go func() {
		defer syscall.Close(fd)
		exited, err := v.proc.waitExit(fd)
		if err != nil {
			v.log.Error("watching uml failed; its exit will go unnoticed", "error", err)
			return
		}
		if exited {
			// Not our child: its exit status went to its parent.
			v.finish("uml exited", hb)
		}
	}()
	return nil
}

// detach lets go of the process without touching it.
func (v *vm) detach() {
	v.mu.Lock()
	stop := v.stopWatch
	v.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// kill sends SIGKILL to UML's process group and waits until the process
// and its helpers are gone. ctx bounds the wait.
func (v *vm) kill(ctx context.Context) error {
	if v.alive() {
		if err := v.proc.killGroup(); err != nil {
			return fmt.Errorf("kill vm %s: %w", v.id, err)
		}
	}
	return v.wait(ctx)
}

// wait waits for the process's end and then for its process group to
// empty, so that no helper of UML outlives a Stop or a Kill.
func (v *vm) wait(ctx context.Context) error {
	select {
	case <-v.gone:
	case <-ctx.Done():
		return fmt.Errorf("wait for uml of vm %s to exit: %w", v.id, ctx.Err())
	}
	for !groupGone(v.h.PID) {
		// The helpers die with UML's group kill or its halt; a moment
		// later their parent's death has them reaped.
		_ = syscall.Kill(-v.h.PID, syscall.SIGKILL) // the group may empty meanwhile
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for uml helpers of vm %s to exit: %w", v.id, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// lookup returns this process's view of the VM the handle names,
// attaching to its process when this driver process has not seen it. It
// returns nil for a VM never started.
func (d *driver) lookup(vmID string, h handle) (*vm, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v := d.vms[vmID]; v != nil && (v.alive() || v.h.incarnation() == h.incarnation()) {
		return v, nil
	}
	if h.PID == 0 {
		return nil, nil
	}
	proc, err := openProcess(h.PID, h.StartTime, h.identityArg())
	if errors.Is(err, errGone) {
		killStragglers(h.PID, h.identityArg(), cleanupWait)
		v := newVM(h, nil, d.log)
		v.exitReason = recordedExit(h)
		close(v.gone)
		d.vms[vmID] = v
		return v, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find uml of vm %s: %w", vmID, err)
	}
	v := newVM(h, proc, d.log)
	if err := v.watchPidfd(d.hub); err != nil {
		proc.close()
		return nil, fmt.Errorf("watch uml of vm %s: %w", vmID, err)
	}
	d.vms[vmID] = v
	v.log.Info("reattached to uml")
	return v, nil
}

// recordedExit is the exit reason a driver wrote for the handle's process,
// or reasonAway.
func recordedExit(h handle) string {
	b, err := os.ReadFile(h.exitFile())
	if err != nil {
		return reasonAway
	}
	inc, reason, ok := strings.Cut(string(b), " ")
	if !ok || inc != h.incarnation() {
		return reasonAway
	}
	return reason
}

func (d *driver) store(v *vm) {
	d.mu.Lock()
	old := d.vms[v.id]
	d.vms[v.id] = v
	d.mu.Unlock()
	if old != nil && old != v {
		old.detach()
	}
}

func (d *driver) forget(vmID string) {
	d.mu.Lock()
	v := d.vms[vmID]
	delete(d.vms, vmID)
	d.mu.Unlock()
	if v != nil {
		v.detach()
	}
}
