package qemu

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"

	goqmp "github.com/digitalocean/go-qemu/qmp"
	"github.com/digitalocean/go-qemu/qmp/raw"
	"github.com/hashicorp/go-hclog"

	"github.com/hyperd/hyperd/plugins/qemu/internal/qmp"
	"github.com/hyperd/hyperd/sdk"
)

const (
	// pumpDrainWait bounds how long an exit waits for the QMP events
	// still in flight (SHUTDOWN comes just before QEMU exits), so that
	// the exit event follows them and carries their reason. QEMU's
	// socket closes with the process, so this is only a backstop.
	pumpDrainWait = 2 * time.Second

	// reasonAway is the exit reason of a VM whose process ended while no
	// driver watched it: nobody saw how it ended.
	reasonAway = "qemu process gone while the driver was away"
)

// vm is the driver's live view of one QEMU process: one incarnation of a
// VM, from a start or a recovery to the process's end. It is a cache of
// what the handle and the process say, never the only copy of a fact.
type vm struct {
	id   string
	h    handle // names this incarnation's process; read-only
	log  hclog.Logger
	proc *process // nil when the process was already gone at attach
	hub  *sdk.EventHub

	// gone is closed by finish, its only closer, once the process has
	// ended and exitReason is set.
	gone chan struct{}

	mu             sync.Mutex
	mon            *qmp.Monitor
	monErr         error         // why mon is nil, when QMP could not be reached
	pumpDone       chan struct{} // closed when the event pump ends; nil without mon
	shutdownReason string        // the last QMP SHUTDOWN reason
	exitReason     string
	stopWatch      func() // ends a pidfd watcher without an exit; nil for children
}

func newVM(id string, h handle, proc *process, log hclog.Logger, hb *sdk.EventHub) *vm {
	return &vm{
		id:   id,
		h:    h,
		log:  log.With("vm_id", id, "pid", h.PID),
		proc: proc,
		hub:  hb,
		gone: make(chan struct{}),
	}
}

// newGoneVM is a VM whose process had ended before the driver looked.
func newGoneVM(id string, h handle, reason string, log hclog.Logger, hb *sdk.EventHub) *vm {
	v := newVM(id, h, nil, log, hb)
	v.exitReason = reason
	close(v.gone)
	return v
}

func (v *vm) alive() bool {
	select {
	case <-v.gone:
		return false
	default:
		return true
	}
}

func (v *vm) monitor() (*qmp.Monitor, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.mon == nil {
		err := v.monErr
		if err == nil {
			err = errors.New("qmp not connected yet")
		}
		return nil, fmt.Errorf("qmp of vm %s: %w: %w", v.id, sdk.ErrUnavailable, err)
	}
	return v.mon, nil
}

func (v *vm) reason() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.exitReason
}

// watchChild reaps QEMU when this driver process started it. It ends
// with the process.
func (v *vm) watchChild(cmd *exec.Cmd) {
	go func() {
		err := cmd.Wait()
		how := "wait failed: " + fmt.Sprint(err)
		if cmd.ProcessState != nil {
			how = describeExit(cmd.ProcessState)
		}
		v.finish(how)
	}()
}

// watchPidfd notices the end of a QEMU this process did not start, and
// so cannot wait for. It ends with the process or with stopWatch.
func (v *vm) watchPidfd() error {
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
			v.log.Error("watching qemu failed; its exit will go unnoticed", "error", err)
			return
		}
		if exited {
			// Not our child: its exit status went to its parent.
			v.finish("qemu exited")
		}
	}()
	return nil
}

// setMonitor adopts a connected QMP monitor and starts pumping its
// events into the hub.
func (v *vm) setMonitor(m *qmp.Monitor) error {
	// The subscription ends with the connection, which ends with QEMU or
	// with close.
	events, err := m.Events(context.Background())
	if err != nil {
		_ = m.Disconnect() // the subscription error is the one to report
		return fmt.Errorf("subscribe to qmp events of vm %s: %w", v.id, err)
	}
	done := make(chan struct{})
	v.mu.Lock()
	v.mon, v.monErr, v.pumpDone = m, nil, done
	v.mu.Unlock()

	go func() {
		defer close(done)
		for e := range events {
			v.log.Debug("qmp event", "event", e.Event)
			if e.Event == qmpShutdown {
				if r, ok := e.Data["reason"].(string); ok {
					v.mu.Lock()
					v.shutdownReason = r
					v.mu.Unlock()
				}
			}
			if out, ok := mapQMPEvent(v.id, e); ok {
				v.hub.Publish(out)
			}
		}
	}()
	return nil
}

func (v *vm) setMonitorErr(err error) {
	v.mu.Lock()
	v.monErr = err
	v.mu.Unlock()
}

// finish records the end of the process and announces it. how says how
// it ended when QMP gave no SHUTDOWN reason.
func (v *vm) finish(how string) {
	v.mu.Lock()
	pumpDone, mon := v.pumpDone, v.mon
	v.mu.Unlock()
	if pumpDone != nil {
		select {
		case <-pumpDone:
		case <-time.After(pumpDrainWait):
		}
	}

	v.mu.Lock()
	v.exitReason = how
	if v.shutdownReason != "" {
		v.exitReason = v.shutdownReason
	}
	reason := v.exitReason
	v.mu.Unlock()

	if mon != nil {
		_ = mon.Disconnect() // QEMU is gone; the close error says nothing more
	}
	if v.proc != nil {
		v.proc.close()
	}
	v.log.Info("qemu exited", "event", sdk.EventExited.String(), "reason", reason, "how", how)
	v.hub.Publish(sdk.Event{VMID: v.id, Type: sdk.EventExited, Reason: reason, Time: time.Now()})
	close(v.gone)
}

// kill sends SIGKILL and waits for the process's end. ctx bounds the
// wait.
func (v *vm) kill(ctx context.Context) error {
	if !v.alive() {
		return nil
	}
	if err := v.proc.signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill vm %s: %w", v.id, err)
	}
	return v.wait(ctx)
}

func (v *vm) wait(ctx context.Context) error {
	select {
	case <-v.gone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for qemu of vm %s to exit: %w", v.id, ctx.Err())
	}
}

// detach lets go of the process without touching it: the QMP connection
// closes and a pidfd watcher ends. A child's reaper goroutine stays, as
// it must: it ends with the process.
func (v *vm) detach() {
	v.mu.Lock()
	mon, stop := v.mon, v.stopWatch
	v.mu.Unlock()
	if mon != nil {
		_ = mon.Disconnect() // detaching; nothing to do about a close error
	}
	if stop != nil {
		stop()
	}
	if v.proc != nil {
		v.proc.close()
	}
}

// rawMonitor gives go-qemu's generated commands a monitor whose every
// command is bounded by ctx.
func rawMonitor(ctx context.Context, m *qmp.Monitor) *raw.Monitor {
	return raw.NewMonitor(ctxMonitor{Monitor: m, ctx: ctx})
}

type ctxMonitor struct {
	*qmp.Monitor
	ctx context.Context
}

var _ goqmp.Monitor = ctxMonitor{}

func (c ctxMonitor) Run(cmd []byte) ([]byte, error) { return c.RunContext(c.ctx, cmd) }
