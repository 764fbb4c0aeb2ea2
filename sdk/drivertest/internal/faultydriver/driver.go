//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/hyperd/hyperd/sdk"
)

// readyLine is what a fake guest prints on its console at once.
const readyLine = "HYPERD-GUEST-READY"

// reasonAway is the exit reason of a VM that ended while no driver
// watched it.
const reasonAway = "process gone while the driver was away"

// handle is the VM's state as the daemon keeps it.
type handle struct {
	VMID      string `json:"vm_id"`
	WorkDir   string `json:"work_dir"`
	Stubborn  bool   `json:"stubborn,omitempty"`
	PID       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"`
}

// vm is a fake VM's process that this driver process watches.
type vm struct {
	pid    int
	start  uint64
	done   chan struct{} // closed once the process has ended
	reason string        // set before done closes
}

type driver struct {
	mode string
	log  hclog.Logger

	mu   sync.Mutex
	vms  map[string]*vm
	subs map[chan sdk.Event]struct{}
}

var (
	_ sdk.Driver = (*driver)(nil)
	_ sdk.Pauser = (*driver)(nil)
)

func newDriver(mode string, log hclog.Logger) *driver {
	return &driver{mode: mode, log: log, vms: map[string]*vm{}, subs: map[chan sdk.Event]struct{}{}}
}

func (d *driver) Info(ctx context.Context) (sdk.Info, error) {
	caps := []sdk.Capability{
		sdk.CapabilityGracefulShutdown, sdk.CapabilityConsoleLog, sdk.CapabilityRecover,
	}
	// The fault: pause is left out of what the daemon is told, yet the
	// SDK's server, which asks Info before it lets a Pause through, is
	// told it is there. That stands in for a driver served without the
	// SDK's guard, such as one written in another language.
	m, _ := grpc.Method(ctx)
	guard := strings.HasSuffix(m, "/Pause") || strings.HasSuffix(m, "/Resume")
	if d.mode != modeUndeclaredSuccess || guard {
		caps = append(caps, sdk.CapabilityPause)
	}
	return sdk.Info{
		Name:         "faulty",
		Version:      "0.0.1-" + d.mode,
		Capabilities: caps,
		Options: []sdk.OptionSchema{
			{Name: "sleep", Description: "How long the fake guest runs.", Type: "duration", Default: "1h"},
		},
	}, nil
}

func (d *driver) Fingerprint(context.Context) (sdk.Fingerprint, error) {
	if _, err := exec.LookPath("sleep"); err != nil {
		return sdk.Fingerprint{Health: sdk.HealthUnhealthy, Description: err.Error()}, nil
	}
	return sdk.Fingerprint{Health: sdk.HealthHealthy, Description: "fake VMs are sleep processes"}, nil
}

func (d *driver) Create(_ context.Context, vmID string, s sdk.Spec, workDir string) (sdk.Handle, error) {
	switch {
	case s.Name == "":
		return nil, sdk.InvalidSpec("name", "must not be empty")
	case s.VCPUs == 0:
		return nil, sdk.InvalidSpec("vcpus", "must be at least 1")
	case s.MemoryMiB == 0:
		return nil, sdk.InvalidSpec("memory_mib", "must be at least 1")
	case s.Kernel == "":
		return nil, sdk.InvalidSpec("kernel", "required")
	}
	for field, p := range map[string]string{"kernel": s.Kernel, "initrd": s.Initrd} {
		if p == "" {
			continue
		}
		if strings.Contains(p, ",") {
			return nil, sdk.InvalidSpec(field, "path %q contains a comma", p)
		}
		if _, err := os.Stat(p); err != nil {
			return nil, sdk.InvalidSpec(field, "%v", err)
		}
	}
	if v, ok := s.Options["sleep"]; ok {
		if _, err := time.ParseDuration(v); err != nil {
			return nil, sdk.InvalidSpec("options.sleep", "%v", err)
		}
	}
	h := handle{VMID: vmID, WorkDir: workDir, Stubborn: strings.Contains(filepath.Base(s.Initrd), "stubborn")}
	return encode(h), nil
}

func (d *driver) Start(_ context.Context, vmID string, hb sdk.Handle) (sdk.Handle, error) {
	h, err := decode(vmID, hb)
	if err != nil {
		return nil, err
	}
	if v := d.find(h); v != nil && alive(v) {
		return nil, fmt.Errorf("start vm %s: already running: %w", vmID, sdk.ErrWrongState)
	}
	console, err := os.Create(filepath.Join(h.WorkDir, "console.log"))
	if err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	defer console.Close()

	// exec keeps one process per VM; an ignored SIGTERM survives it.
	script := "echo " + readyLine + "; exec sleep 3600"
	if h.Stubborn {
		script = `trap "" TERM; echo ` + readyLine + ` stubborn; exec sleep 3600`
	}
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = h.WorkDir
	cmd.Stdout, cmd.Stderr = console, console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	_, start, err := procStat(cmd.Process.Pid)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	v := &vm{pid: cmd.Process.Pid, start: start, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		reason := "exited"
		if err != nil {
			reason = err.Error()
		}
		d.finish(vmID, v, reason)
	}()
	d.mu.Lock()
	d.vms[vmID] = v
	d.mu.Unlock()
	h.PID, h.StartTime = v.pid, v.start
	d.log.Info("vm started", "vm_id", vmID, "pid", v.pid)
	return encode(h), nil
}

func (d *driver) finish(vmID string, v *vm, reason string) {
	v.reason = reason
	close(v.done)
	d.emit(sdk.Event{VMID: vmID, Type: sdk.EventExited, Reason: reason, Time: time.Now()})
}

// find returns the watched process of h's VM, attaching to it from the
// handle unless the driver is forgetful.
func (d *driver) find(h handle) *vm {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.vms[h.VMID]; ok && (alive(v) || (v.pid == h.PID && v.start == h.StartTime)) {
		return v
	}
	if h.PID == 0 || d.mode == modeForgetful {
		return nil
	}
	v := &vm{pid: h.PID, start: h.StartTime, done: make(chan struct{})}
	if state, start, err := procStat(h.PID); err != nil || start != h.StartTime || state == 'Z' {
		v.reason = reasonAway
		close(v.done)
	} else {
		go d.poll(h.VMID, v)
	}
	d.vms[h.VMID] = v
	return v
}

// poll watches a process that is not this driver's child.
func (d *driver) poll(vmID string, v *vm) {
	for {
		if state, start, err := procStat(v.pid); err != nil || start != v.start || state == 'Z' {
			d.finish(vmID, v, "killed")
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func alive(v *vm) bool {
	select {
	case <-v.done:
		return false
	default:
		return true
	}
}

func (d *driver) Stop(ctx context.Context, vmID string, hb sdk.Handle, timeout time.Duration) (bool, error) {
	h, err := decode(vmID, hb)
	if err != nil {
		return false, err
	}
	v := d.find(h)
	if v == nil || !alive(v) {
		return false, nil
	}
	_ = syscall.Kill(v.pid, syscall.SIGTERM) // an exit meanwhile is what we want
	select {
	case <-v.done:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	case <-time.After(timeout):
	}
	return true, d.kill(ctx, v)
}

func (d *driver) kill(ctx context.Context, v *vm) error {
	if !alive(v) {
		return nil
	}
	_ = syscall.Kill(v.pid, syscall.SIGKILL) // checked by the wait below
	select {
	case <-v.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *driver) Kill(ctx context.Context, vmID string, hb sdk.Handle) error {
	h, err := decode(vmID, hb)
	if err != nil {
		return err
	}
	if v := d.find(h); v != nil {
		return d.kill(ctx, v)
	}
	return nil
}

func (d *driver) Pause(_ context.Context, vmID string, hb sdk.Handle) error {
	return d.signal(vmID, hb, syscall.SIGSTOP)
}

func (d *driver) Resume(_ context.Context, vmID string, hb sdk.Handle) error {
	return d.signal(vmID, hb, syscall.SIGCONT)
}

func (d *driver) signal(vmID string, hb sdk.Handle, sig syscall.Signal) error {
	if d.mode == modeUndeclaredSuccess {
		return nil // the fault: success for a capability not declared
	}
	h, err := decode(vmID, hb)
	if err != nil {
		return err
	}
	v := d.find(h)
	if v == nil || !alive(v) {
		return fmt.Errorf("vm %s: not running: %w", vmID, sdk.ErrWrongState)
	}
	if err := syscall.Kill(v.pid, sig); err != nil {
		return fmt.Errorf("vm %s: %w", vmID, err)
	}
	return nil
}

func (d *driver) Status(_ context.Context, vmID string, hb sdk.Handle) (sdk.Status, error) {
	h, err := decode(vmID, hb)
	if err != nil {
		return sdk.Status{}, err
	}
	return d.status(h), nil
}

func (d *driver) status(h handle) sdk.Status {
	st := sdk.Status{ConsoleLog: filepath.Join(h.WorkDir, "console.log")}
	v := d.find(h)
	switch {
	case h.PID == 0:
		st.State = sdk.RunStateCreated
	case v == nil:
		st.State, st.ExitReason = sdk.RunStateStopped, "unknown to this driver process"
	case !alive(v):
		st.State, st.ExitReason = sdk.RunStateStopped, v.reason
	default:
		st.State, st.PID = sdk.RunStateRunning, int64(v.pid)
		if state, _, err := procStat(v.pid); err == nil && state == 'T' {
			st.State = sdk.RunStatePaused
		}
	}
	return st
}

func (d *driver) Destroy(ctx context.Context, vmID string, hb sdk.Handle) error {
	if err := d.Kill(ctx, vmID, hb); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.vms, vmID)
	d.mu.Unlock()
	return nil
}

func (d *driver) Recover(_ context.Context, vmID string, hb sdk.Handle) (sdk.Handle, sdk.Status, error) {
	h, err := decode(vmID, hb)
	if err != nil {
		return nil, sdk.Status{}, err
	}
	return hb, d.status(h), nil
}

func (d *driver) Events(ctx context.Context) (<-chan sdk.Event, error) {
	ch := make(chan sdk.Event, 64)
	d.mu.Lock()
	d.subs[ch] = struct{}{}
	d.mu.Unlock()
	go func() {
		<-ctx.Done()
		d.mu.Lock()
		delete(d.subs, ch)
		close(ch)
		d.mu.Unlock()
	}()
	return ch, nil
}

// emit sends e to every subscriber; a full subscriber misses it.
func (d *driver) emit(e sdk.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for ch := range d.subs {
		select {
		case ch <- e:
		default:
			d.log.Warn("event dropped", "vm_id", e.VMID, "event", e.Type.String())
		}
	}
}

func encode(h handle) sdk.Handle {
	b, err := json.Marshal(h)
	if err != nil {
		panic(fmt.Sprintf("faulty: marshal handle: %v", err)) // strings and numbers always marshal
	}
	return b
}

func decode(vmID string, b sdk.Handle) (handle, error) {
	var h handle
	if len(b) == 0 {
		return h, sdk.InvalidSpec("handle", "empty")
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, sdk.InvalidSpec("handle", "%v", err)
	}
	if h.VMID != vmID || h.WorkDir == "" {
		return h, sdk.InvalidSpec("handle", "not vm %s's", vmID)
	}
	return h, nil
}
