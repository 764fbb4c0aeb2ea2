package drivertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hyperd/hyperd/sdk"
)

// Bounds on waits inside a check, beyond the Config's own.
const (
	launchWait  = 30 * time.Second
	eventWait   = 15 * time.Second
	stateWait   = 10 * time.Second
	cleanupWait = 2 * time.Minute
	pollEvery   = 50 * time.Millisecond
)

// env is one check's world: its driver instances, its VMs, and the
// cleanup that leaves nothing behind.
type env struct {
	t    T
	s    *suite
	cfg  Config
	name string
	ctx  context.Context

	cancel context.CancelFunc

	mu     sync.Mutex
	insts  []*inst
	vms    []*vm
	quiet  bool // set once the check has ended; T may no longer log
	nextVM int
}

// inst is a launched driver and the events it has sent.
type inst struct {
	*Instance
	n      int // 1 for the check's first driver, 2 for the next
	events *eventLog
	info   *sdk.Info
	killed bool
}

// vm is a VM the check created.
type vm struct {
	id        string
	dir       string
	h         sdk.Handle
	procs     []proc // the VM's processes, as its driver reported them
	destroyed bool
}

func newEnv(s *suite, t T, name string) *env {
	ctx, cancel := context.WithTimeout(t.Context(), s.cfg.CheckTimeout)
	e := &env{t: t, s: s, cfg: s.cfg, name: name, ctx: ctx, cancel: cancel}
	t.Cleanup(e.cleanup)
	return e
}

// Write takes the drivers' log lines into the check's log.
func (e *env) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.quiet {
		e.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// launch starts a fresh driver and subscribes to its events.
func (e *env) launch() *inst {
	e.t.Helper()
	in, err := e.launchCtx(e.ctx)
	if err != nil {
		e.t.Fatalf("launch driver: %v", err)
	}
	return in
}

func (e *env) launchCtx(ctx context.Context) (*inst, error) {
	e.mu.Lock()
	n := len(e.insts) + 1
	e.mu.Unlock()

	log := hclog.New(&hclog.LoggerOptions{
		Name:            fmt.Sprintf("driver%d", n),
		Level:           hclog.LevelFromString(e.cfg.LogLevel),
		Output:          e,
		DisableTime:     true,
		IncludeLocation: false,
	})
	lctx, cancel := context.WithTimeout(ctx, launchWait)
	defer cancel()
	i, err := e.cfg.Launch(lctx, log)
	if err != nil {
		return nil, err
	}
	in := &inst{Instance: i, n: n}
	if in.PID != 0 {
		if p, ok := procOf(in.PID, "driver"); ok {
			e.s.remember(p)
		}
	}
	in.events, err = watchEvents(in.Driver)
	e.mu.Lock()
	e.insts = append(e.insts, in)
	e.mu.Unlock()
	if err != nil {
		e.t.Errorf("driver %d: Events: %v", n, err)
	}
	return in, nil
}

// driver returns the check's live driver, launching one if needed.
func (e *env) driver() *inst {
	e.t.Helper()
	e.mu.Lock()
	for i := len(e.insts) - 1; i >= 0; i-- {
		if in := e.insts[i]; !in.gone() {
			e.mu.Unlock()
			return in
		}
	}
	e.mu.Unlock()
	return e.launch()
}

func (in *inst) gone() bool {
	return in.killed || (in.Exited != nil && in.Exited())
}

// info returns the driver's Info, asked once per instance.
func (e *env) info(in *inst) sdk.Info {
	e.t.Helper()
	if in.info == nil {
		info, err := in.Driver.Info(e.ctx)
		if err != nil {
			e.t.Fatalf("Info: %v", err)
		}
		in.info = &info
	}
	return *in.info
}

// kill ends the driver process abruptly.
func (e *env) kill(in *inst) {
	e.t.Helper()
	if in.Kill == nil {
		e.t.Skipf("the launcher gives no way to kill the driver (Instance.Kill is nil)")
	}
	in.killed = true
	if err := in.Kill(); err != nil {
		e.t.Fatalf("kill driver %d: %v", in.n, err)
	}
	in.events.stop()
}

// needGuest skips the check when no guest kernel was given, or when
// the driver says its backend cannot run VMs on this host (the
// fingerprint check fails for that, once, with the reason).
func (e *env) needGuest() {
	e.t.Helper()
	if e.cfg.Guest.Kernel == "" {
		e.t.Skipf("no guest kernel given: this check boots a VM")
	}
	in := e.driver()
	ctx, cancel := context.WithTimeout(e.ctx, DefaultFingerprintWait)
	defer cancel()
	if fp, err := in.Driver.Fingerprint(ctx); err == nil && fp.Health == sdk.HealthUnhealthy {
		e.t.Skipf("the backend cannot run VMs on this host: %s", fp.Description)
	}
}

// dir makes a fresh directory in the suite's work dir.
func (e *env) dir(name string) string {
	e.t.Helper()
	d := filepath.Join(e.s.root, name)
	if err := os.MkdirAll(d, 0o750); err != nil {
		e.t.Fatalf("make work dir: %v", err)
	}
	return d
}

// spec returns a valid spec booting initrd.
func (e *env) spec(initrd string) sdk.Spec {
	return sdk.Spec{
		Name:      "conformance",
		VCPUs:     e.cfg.VCPUs,
		MemoryMiB: e.cfg.MemoryMiB,
		Kernel:    e.cfg.Guest.Kernel,
		Initrd:    initrd,
		Cmdline:   e.cfg.Guest.Cmdline,
		Options:   e.cfg.Options,
	}
}

// newVM creates a VM booting initrd, in a work dir of its own.
func (e *env) newVM(in *inst, initrd string) *vm {
	e.t.Helper()
	v := e.addVM()
	h, err := in.Driver.Create(e.ctx, v.id, e.spec(initrd), v.dir)
	if err != nil {
		e.t.Fatalf("Create vm %s: %v", v.id, err)
	}
	if len(h) == 0 {
		e.t.Fatalf("Create vm %s returned an empty handle", v.id)
	}
	v.h = h
	return v
}

// addVM names a VM and makes its work dir; the cleanup will look for it.
func (e *env) addVM() *vm {
	e.t.Helper()
	e.mu.Lock()
	e.nextVM++
	// The run's tag keeps two suites on one host (two drivers checked at
	// once, say) apart where a backend's names are global, as libvirt's
	// domain names are.
	id := fmt.Sprintf("%s-%d-%s", e.name, e.nextVM, e.s.tag)
	e.mu.Unlock()
	v := &vm{id: id, dir: e.dir(id)}
	e.mu.Lock()
	e.vms = append(e.vms, v)
	e.mu.Unlock()
	return v
}

// start starts v and checks that it runs.
func (e *env) start(in *inst, v *vm) sdk.Status {
	e.t.Helper()
	h, err := in.Driver.Start(e.ctx, v.id, v.h)
	if err != nil {
		e.t.Fatalf("Start vm %s: %v", v.id, err)
	}
	if len(h) == 0 {
		e.t.Errorf("Start vm %s returned an empty handle; keeping Create's", v.id)
	} else {
		v.h = h
	}
	st := e.wantState(in, v, sdk.RunStateRunning)
	e.notePID(v, st)
	return st
}

// notePID remembers the VM's process for the leftover checks and checks
// that a reported PID is a live process.
func (e *env) notePID(v *vm, st sdk.Status) {
	e.t.Helper()
	if st.PID == 0 {
		return
	}
	p, ok := procOf(int(st.PID), "vm "+v.id)
	if !ok {
		e.t.Errorf("Status of running vm %s reports pid %d, which is no live process", v.id, st.PID)
		return
	}
	for _, q := range v.procs {
		if q == p {
			return
		}
	}
	v.procs = append(v.procs, p)
	e.s.remember(p)
}

func (e *env) status(in *inst, v *vm) sdk.Status {
	e.t.Helper()
	st, err := in.Driver.Status(e.ctx, v.id, v.h)
	if err != nil {
		e.t.Fatalf("Status of vm %s: %v", v.id, err)
	}
	return st
}

// wantState waits a little for v to reach want: a call that changes the
// state returns once it has, but a driver may learn of it a moment
// later.
func (e *env) wantState(in *inst, v *vm, want sdk.RunState) sdk.Status {
	e.t.Helper()
	deadline := time.Now().Add(stateWait)
	for {
		st := e.status(in, v)
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("vm %s is %s (%s), want %s", v.id, st.State, st.ExitReason, want)
		}
		e.sleep(pollEvery)
	}
}

// wantProcsGone checks that the VM's reported processes have ended.
func (e *env) wantProcsGone(v *vm, after string) {
	e.t.Helper()
	for _, p := range v.procs {
		if waitFor(stateWait, func() bool { return !p.alive() }) != nil {
			e.t.Errorf("%s still runs after %s", p, after)
		}
	}
}

// waitReady waits until the guest has booted: its ready line on the
// console when the driver declares a console log, else a fixed delay.
func (e *env) waitReady(in *inst, v *vm) {
	e.t.Helper()
	if !e.info(in).Has(sdk.CapabilityConsoleLog) {
		e.t.Logf("no console_log capability: waiting %s for the boot", e.cfg.Guest.BootDelay)
		e.sleep(e.cfg.Guest.BootDelay)
		return
	}
	st := e.status(in, v)
	if st.ConsoleLog == "" {
		e.t.Fatalf("driver declares console_log but Status of vm %s names no console log", v.id)
	}
	deadline := time.Now().Add(e.cfg.BootTimeout)
	for {
		b, err := os.ReadFile(st.ConsoleLog)
		if err == nil && strings.Contains(string(b), e.cfg.Guest.ReadyLine) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("vm %s: no %q on the console %s within %s; it ends with: %s", v.id,
				e.cfg.Guest.ReadyLine, st.ConsoleLog, e.cfg.BootTimeout, tail(b, 300))
		}
		e.sleep(200 * time.Millisecond)
	}
}

// waitEvent waits for an event of type typ for v among the events in
// sent from index from on.
func (e *env) waitEvent(in *inst, v *vm, typ sdk.EventType, from int) (sdk.Event, bool) {
	e.t.Helper()
	ev, ok := in.events.wait(e.ctx, from, eventWait, func(ev sdk.Event) bool {
		return ev.VMID == v.id && ev.Type == typ
	})
	if !ok {
		e.t.Errorf("driver %d sent no %s event for vm %s within %s; it sent: %s",
			in.n, typ, v.id, eventWait, in.events.summary())
	}
	return ev, ok
}

// pause and resume call the driver's Pauser, or answer ErrUnsupported
// for an in-process driver that has none, as the SDK's server does.
func pause(ctx context.Context, d sdk.Driver, v *vm) error {
	if p, ok := d.(sdk.Pauser); ok {
		return p.Pause(ctx, v.id, v.h)
	}
	return fmt.Errorf("pause: %w", sdk.ErrUnsupported)
}

func resume(ctx context.Context, d sdk.Driver, v *vm) error {
	if p, ok := d.(sdk.Pauser); ok {
		return p.Resume(ctx, v.id, v.h)
	}
	return fmt.Errorf("resume: %w", sdk.ErrUnsupported)
}

// sleep waits d or until the check ends.
func (e *env) sleep(d time.Duration) {
	select {
	case <-e.ctx.Done():
	case <-time.After(d):
	}
}

// cleanup kills and destroys the check's VMs through its last live
// driver, closes its drivers, and fails the check for any VM process
// that outlives that, killing it so that one check's leftovers do not
// spoil the next.
func (e *env) cleanup() {
	e.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupWait)
	defer cancel()

	e.mu.Lock()
	vms := append([]*vm(nil), e.vms...)
	var live *inst
	for i := len(e.insts) - 1; i >= 0 && live == nil; i-- {
		if !e.insts[i].gone() {
			live = e.insts[i]
		}
	}
	e.mu.Unlock()

	for i := len(vms) - 1; i >= 0; i-- {
		v := vms[i]
		if v.h == nil || v.destroyed {
			continue
		}
		if live == nil {
			var err error
			if live, err = e.launchCtx(ctx); err != nil {
				e.t.Errorf("launch a driver to clean up: %v", err)
				break
			}
		}
		if err := live.Driver.Kill(ctx, v.id, v.h); err != nil {
			e.t.Logf("cleanup: Kill vm %s: %v", v.id, err)
		}
		if err := live.Driver.Destroy(ctx, v.id, v.h); err != nil {
			e.t.Logf("cleanup: Destroy vm %s: %v", v.id, err)
		}
	}

	e.mu.Lock()
	insts := append([]*inst(nil), e.insts...)
	e.mu.Unlock()
	for _, in := range insts {
		in.events.stop()
		if in.Close != nil {
			in.Close()
		}
	}

	for _, v := range vms {
		var left []proc
		for _, p := range v.procs {
			if p.alive() {
				left = append(left, p)
			}
		}
		for _, p := range procsUnder(v.dir, "vm "+v.id) {
			if !containsPID(left, p.pid) {
				left = append(left, p)
			}
		}
		for _, p := range left {
			e.t.Errorf("%s still runs after Kill and Destroy of vm %s; the suite killed it", p, v.id)
			if err := p.kill(); err != nil {
				e.t.Logf("cleanup: %v", err)
			}
		}
		_ = os.RemoveAll(v.dir) // best effort: the suite's directory goes at the end
	}

	e.mu.Lock()
	e.quiet = true
	e.mu.Unlock()
}

func containsPID(ps []proc, pid int) bool {
	for _, p := range ps {
		if p.pid == pid {
			return true
		}
	}
	return false
}

// tail returns the last n bytes of b on one line.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// isAny reports whether err wraps one of targets.
func isAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
