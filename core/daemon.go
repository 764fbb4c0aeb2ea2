package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hyperd/hyperd/fsm"
	"github.com/hyperd/hyperd/sdk"
)

// Config is how the daemon is set up.
type Config struct {
	// StateDir holds the store and one work directory per VM. Required.
	StateDir string
	// PluginDirs are scanned, in order, for hyperd-driver-* binaries.
	PluginDirs []string
	// DefaultDriver runs VMs whose request names none. Default "qemu".
	DefaultDriver string
	// DefaultStopTimeout bounds a graceful stop that names no timeout.
	// Default 30s.
	DefaultStopTimeout time.Duration
	// LogLevel is passed to drivers. Default "info".
	LogLevel string
	// DiscoveryTimeout bounds driver discovery at startup. Default 30s.
	DiscoveryTimeout time.Duration
	// StaticDrivers are in-process drivers, by name, used beside the
	// discovered ones; for tests and embedding.
	StaticDrivers map[string]sdk.Driver
	// DriverConfigs are the driver blocks of the config file, by name.
	// An option a driver's schema does not know stops Open.
	DriverConfigs map[string]DriverConfig
	Logger        hclog.Logger
}

func (c *Config) setDefaults() {
	if c.DefaultDriver == "" {
		c.DefaultDriver = "qemu"
	}
	if c.DefaultStopTimeout == 0 {
		c.DefaultStopTimeout = 30 * time.Second
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.DiscoveryTimeout == 0 {
		c.DiscoveryTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
}

// Daemon is a running hyperd.
type Daemon struct {
	cfg      Config
	log      hclog.Logger
	store    *Store
	registry *Registry
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu   sync.Mutex
	vms  map[string]*supervisor
	lost map[string]error
	// pending holds the names of VMs whose Run has not stored them yet.
	pending map[string]struct{}

	// draining closes when the daemon begins to shut down, ending the
	// API's endless streams so that a graceful stop need not wait.
	draining  chan struct{}
	drainOnce sync.Once
}

// Drain ends the API's following streams (logs -f), before the server
// stops gracefully. VMs are not touched.
func (d *Daemon) Drain() {
	d.drainOnce.Do(func() { close(d.draining) })
}

// Open starts a daemon: it opens the store, discovers drivers and recovers
// every VM the store knows. The caller serves the API and calls Close.
func Open(cfg Config) (d *Daemon, err error) {
	cfg.setDefaults()
	if cfg.StateDir == "" {
		return nil, errors.New("state dir: must be set")
	}
	if err := ensureDir(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	if err := ensureDir(filepath.Join(cfg.StateDir, "vms"), 0o700); err != nil {
		return nil, err
	}
	store, err := OpenStore(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	// Read every record before any driver starts: a damaged store stops
	// the daemon here, with nothing to clean up.
	recs, bad, err := store.List()
	if err != nil {
		_ = store.Close() // the list error is the one to report
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	d = &Daemon{
		cfg:      cfg,
		log:      cfg.Logger,
		store:    store,
		ctx:      ctx,
		cancel:   cancel,
		vms:      make(map[string]*supervisor),
		lost:     make(map[string]error),
		pending:  make(map[string]struct{}),
		draining: make(chan struct{}),
	}
	dctx, dcancel := context.WithTimeout(ctx, cfg.DiscoveryTimeout)
	defer dcancel()
	d.registry = DiscoverWith(dctx, DiscoverOptions{
		Dirs:     cfg.PluginDirs,
		Static:   cfg.StaticDrivers,
		LogLevel: cfg.LogLevel,
		Configs:  cfg.DriverConfigs,
		Logger:   d.log.Named("registry"),
	})
	if err := d.checkConfigured(); err != nil {
		d.registry.Close()
		cancel()
		_ = store.Close() // the config error is the one to report
		return nil, err
	}
	for _, e := range d.registry.List() {
		if e.Driver != nil {
			d.wg.Add(1)
			go d.routeEvents(e)
		}
	}
	d.recoverAll(recs, bad)
	d.registry.SetSwapHook(d.driverSwapped)
	return d, nil
}

// checkConfigured refuses a config whose driver block the driver rejects,
// and warns of blocks for drivers that were not found.
func (d *Daemon) checkConfigured() error {
	found := make(map[string]DriverEntry)
	for _, e := range d.registry.List() {
		found[e.Name] = e
		if e.Err != nil && errors.Is(e.Err, ErrConfig) {
			return e.Err
		}
	}
	for name, dc := range d.cfg.DriverConfigs {
		if _, ok := found[name]; !ok {
			d.log.Warn("config names a driver that was not found", "driver", name, "pos", dc.Pos)
		}
	}
	if e, ok := found[d.cfg.DefaultDriver]; !ok {
		d.log.Warn("the default driver was not found; runs that name no driver will fail", "driver", d.cfg.DefaultDriver)
	} else if e.Err != nil {
		d.log.Warn("the default driver is unusable; runs that name no driver will fail", "driver", e.Name, "error", e.Err)
	}
	return nil
}

// driverSwapped follows a driver's new process, after a restart or a
// reload: its events, and every live VM of that driver recovered through
// it. Whatever happened while no process watched (a guest that powered
// off) comes out of the reconciliation.
func (d *Daemon) driverSwapped(e DriverEntry) {
	if d.ctx.Err() != nil {
		return
	}
	d.wg.Add(1)
	go d.routeEvents(e)
	for _, rec := range d.VMs() {
		if rec.Driver != e.Name || !rec.State.Live() {
			continue
		}
		if s := d.supervisor(rec.ID); s != nil {
			d.reconcileAfter(s, rec, true)
		}
	}
}

// ReloadDriver swaps in the binary now at the driver's path; its VMs keep
// running and are recovered through the new process.
func (d *Daemon) ReloadDriver(ctx context.Context, name string) error {
	return d.registry.Reload(ctx, name)
}

// Close stops the supervisors and the drivers and closes the store. VMs
// keep running; the next daemon recovers them.
func (d *Daemon) Close() error {
	d.cancel()
	d.mu.Lock()
	sups := make([]*supervisor, 0, len(d.vms))
	for _, s := range d.vms {
		sups = append(sups, s)
	}
	d.mu.Unlock()
	for _, s := range sups {
		s.Close()
	}
	d.registry.Close()
	d.wg.Wait()
	return d.store.Close()
}

// Drivers lists every driver found, usable or not.
func (d *Daemon) Drivers() []DriverEntry { return d.registry.List() }

// driverFunc returns how a supervisor reaches its VM's driver now.
func (d *Daemon) driverFunc(name string) func() (sdk.Driver, error) {
	return func() (sdk.Driver, error) {
		e, err := d.registry.Get(name)
		if err != nil {
			return nil, err
		}
		return e.Driver, nil
	}
}

// routeEvents feeds one driver's events to the supervisors of its VMs.
func (d *Daemon) routeEvents(e DriverEntry) {
	defer d.wg.Done()
	log := d.log.With("driver", e.Name)
	ch, err := e.Driver.Events(d.ctx)
	if err != nil {
		log.Error("cannot follow driver events", "error", err)
		return
	}
	for ev := range ch {
		s := d.supervisor(ev.VMID)
		if s == nil {
			log.Debug("event for an unknown vm", "vm_id", ev.VMID, "event", ev.Type)
			continue
		}
		switch ev.Type {
		case sdk.EventExited:
			s.post(input{event: fsm.EventExited, reason: ev.Reason, fromDriver: true})
		case sdk.EventPaused:
			s.post(input{event: fsm.EventPaused})
		case sdk.EventResumed:
			s.post(input{event: fsm.EventResumed})
		default:
			s.log.Info("vm event", "event", ev.Type, "reason", ev.Reason)
		}
	}
}

func (d *Daemon) supervisor(id string) *supervisor {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.vms[id]
}

// recoverAll starts a supervisor for every stored VM and reconciles each
// live one with its driver. A VM whose driver is missing keeps its record
// and says why in its last error.
func (d *Daemon) recoverAll(recs []Record, bad map[string]error) {
	for id, err := range bad {
		d.log.Error("unreadable vm record kept aside", "vm_id", id, "error", err)
		d.lost[id] = err
	}
	for _, rec := range recs {
		s := newSupervisor(rec, d.store, d.driverFunc(rec.Driver), d.log)
		d.mu.Lock()
		d.vms[rec.ID] = s
		d.mu.Unlock()
		if rec.State.Live() {
			// Recovery runs beside the API: a VM whose driver is slow to
			// answer must not keep the operator from the others.
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				d.reconcile(s, rec)
			}()
		}
	}
}

// reconcile asks the driver about a VM the store says is live and feeds
// the answer to its supervisor as the events that would have arrived.
func (d *Daemon) reconcile(s *supervisor, rec Record) {
	d.reconcileAfter(s, rec, false)
}

// reconcileAfter is reconcile; swapped says the daemon lived on and only
// the driver's process changed, so a stop in flight keeps its timer and
// its deadline instead of being finished by force.
func (d *Daemon) reconcileAfter(s *supervisor, rec Record, swapped bool) {
	drv, err := d.driverFunc(rec.Driver)()
	if err != nil {
		s.post(input{noteOnly: true, callErr: fmt.Errorf("recover: %w", err)})
		return
	}
	ctx, cancel := context.WithTimeout(d.ctx, sdk.DefaultLifecycleTimeout)
	defer cancel()
	h, st, err := drv.Recover(ctx, rec.ID, rec.Handle)
	if err != nil {
		s.post(input{noteOnly: true, callErr: fmt.Errorf("recover: %w", err)})
		return
	}
	s.log.Info("vm recovered", "state", st.State, "pid", st.PID)
	switch st.State {
	case sdk.RunStateStopped, sdk.RunStateCreated:
		reason := st.ExitReason
		if reason == "" {
			reason = "stopped while hyperd was away"
		}
		s.post(input{event: fsm.EventExited, reason: reason, handle: h, status: &st})
	case sdk.RunStateRunning:
		ev := fsm.EventStarted
		switch rec.State {
		case fsm.StatePaused:
			ev = fsm.EventResumed
		case fsm.StateStopping:
			// The stop's caller and timer died with an old daemon:
			// finish the stop by force rather than leave it hanging.
			// After a driver swap they live on, and the timer kills at
			// the deadline unless the guest powers off first.
			if !swapped {
				ev = fsm.EventStopTimeout
			}
		}
		s.post(input{event: ev, handle: h, status: &st, clearErr: true})
	case sdk.RunStatePaused:
		s.post(input{event: fsm.EventPaused, handle: h, status: &st, clearErr: true})
	}
}

// VMs returns a copy of every VM's record, oldest first.
func (d *Daemon) VMs() []Record {
	d.mu.Lock()
	out := make([]Record, 0, len(d.vms))
	for _, s := range d.vms {
		out = append(out, s.Snapshot())
	}
	d.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// Unreadable returns the records the store holds but could not decode,
// by id, with why. They stay in the store, untouched, for an operator.
func (d *Daemon) Unreadable() map[string]error {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]error, len(d.lost))
	for id, err := range d.lost {
		out[id] = err
	}
	return out
}

// VM returns a copy of the record of id.
func (d *Daemon) VM(id string) (Record, error) {
	s := d.supervisor(id)
	if s == nil {
		return Record{}, fmt.Errorf("vm %s: %w", id, ErrVMNotFound)
	}
	return s.Snapshot(), nil
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// idPattern is the shape of a VM id; a name of that shape would be
// mistaken for one by hyperctl.
var idPattern = regexp.MustCompile(`^[0-9a-f]{12}$`)

// validateSpec checks what every driver needs; the driver checks the rest.
func validateSpec(spec sdk.Spec) error {
	switch {
	case spec.Name == "":
		return sdk.InvalidSpec("name", "must be set")
	case idPattern.MatchString(spec.Name):
		return sdk.InvalidSpec("name", "%q looks like a vm id (12 hex digits), which hyperctl would take for one; pick another", spec.Name)
	case !namePattern.MatchString(spec.Name):
		return sdk.InvalidSpec("name", "%q must be 1 to 63 letters, digits, dots, dashes or underscores, starting with a letter or digit", spec.Name)
	case spec.MemoryMiB == 0:
		return sdk.InvalidSpec("memory_mib", "must be more than zero, such as 256")
	case spec.VCPUs == 0:
		return sdk.InvalidSpec("vcpus", "must be at least 1")
	case spec.Kernel == "":
		return sdk.InvalidSpec("kernel", "must be set to a kernel image on the host")
	case len(spec.Cmdline) > maxCmdline:
		return sdk.InvalidSpec("cmdline", "is %d bytes, longer than the %d a Linux x86 kernel takes", len(spec.Cmdline), maxCmdline)
	}
	return nil
}

// maxCmdline is COMMAND_LINE_SIZE of Linux on x86: the kernel silently
// cuts a longer command line.
const maxCmdline = 2048

// maxStopTimeout bounds a graceful stop's timeout; longer ones are a typo,
// and would overflow the deadlines derived from them.
const maxStopTimeout = 24 * time.Hour

// checkPaths refuses host paths inside the state directory: a guest given
// the store or another VM's files as a disk could corrupt them.
func (d *Daemon) checkPaths(spec sdk.Spec) error {
	state, err := filepath.EvalSymlinks(d.cfg.StateDir)
	if err != nil {
		return fmt.Errorf("resolve state dir: %w", err)
	}
	check := func(field, p string) error {
		if p == "" {
			return nil
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil // the driver reports a missing file, naming the field
		}
		if rel, err := filepath.Rel(state, real); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return sdk.InvalidSpec(field, "%s is inside hyperd's state directory %s; a guest must not reach the store or other VMs' files", p, d.cfg.StateDir)
		}
		return nil
	}
	if err := check("kernel", spec.Kernel); err != nil {
		return err
	}
	if err := check("initrd", spec.Initrd); err != nil {
		return err
	}
	for i, disk := range spec.Disks {
		if err := check(fmt.Sprintf("disks[%d].path", i), disk.Path); err != nil {
			return err
		}
	}
	return nil
}

func newID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make vm id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Run validates spec, has the driver create the VM, stores it, and starts
// it. Nothing is stored for a spec the daemon or the driver rejects. It
// returns once the VM runs or failed to start, or ctx ends.
func (d *Daemon) Run(ctx context.Context, driver string, spec sdk.Spec) (Record, error) {
	byDefault := driver == ""
	if byDefault {
		driver = d.cfg.DefaultDriver
	}
	if err := validateSpec(spec); err != nil {
		return Record{}, err
	}
	if err := d.checkPaths(spec); err != nil {
		return Record{}, err
	}
	if err := d.reserveName(spec.Name); err != nil {
		return Record{}, err
	}
	defer d.releaseName(spec.Name)
	e, err := d.registry.Get(driver)
	if err != nil && byDefault {
		return Record{}, fmt.Errorf("the host's default driver (--default-driver or default_driver in the config): %w", err)
	}
	if err != nil {
		return Record{}, err
	}
	id, err := newID()
	if err != nil {
		return Record{}, err
	}
	workDir := filepath.Join(d.cfg.StateDir, "vms", id)
	if err := ensureDir(workDir, 0o700); err != nil {
		return Record{}, err
	}
	h, err := e.Driver.Create(ctx, id, spec, workDir)
	if err != nil {
		_ = os.RemoveAll(workDir) // nothing of this VM may remain; the create error matters
		return Record{}, err
	}

	now := time.Now().UTC()
	rec := Record{
		ID:              id,
		Driver:          driver,
		ContractVersion: uint32(e.ContractVersion),
		Spec:            spec,
		State:           fsm.StateCreated,
		Handle:          h,
		WorkDir:         workDir,
		CreatedAt:       now,
		UpdatedAt:       now,
	}
	if err := d.store.Put(rec); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), destroyTimeout)
		defer cancel()
		_ = e.Driver.Destroy(cctx, id, h) // best effort; the store error is what the caller needs
		_ = os.RemoveAll(workDir)
		return Record{}, err
	}
	s := newSupervisor(rec, d.store, d.driverFunc(driver), d.log)
	d.mu.Lock()
	d.vms[id] = s
	d.mu.Unlock()
	s.log.Info("vm created", "name", spec.Name)

	return d.Start(ctx, id)
}

// reserveName claims a VM name for a Run in flight, so that two Runs
// with one name cannot both pass the check before either stores its VM.
func (d *Daemon) reserveName(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, busy := d.pending[name]; busy {
		return sdk.InvalidSpec("name", "%q is being used by a run in flight; pick another", name)
	}
	for _, s := range d.vms {
		if r := s.Snapshot(); r.Spec.Name == name {
			return sdk.InvalidSpec("name", "%q is taken by vm %s; pick another or remove it", name, r.ID)
		}
	}
	d.pending[name] = struct{}{}
	return nil
}

func (d *Daemon) releaseName(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.pending, name)
}

// Start boots a created or stopped VM and returns once it runs or failed.
func (d *Daemon) Start(ctx context.Context, id string) (Record, error) {
	return d.doAndWait(ctx, id, input{event: fsm.EventStart}, fsm.StateRunning, fsm.StatePaused, fsm.StateFailed, fsm.StateStopped)
}

// Stop powers a VM off gracefully, killing it past timeout, and returns
// once it is stopped. A zero timeout means the configured default.
func (d *Daemon) Stop(ctx context.Context, id string, timeout time.Duration) (Record, error) {
	if timeout < 0 {
		return Record{}, sdk.InvalidSpec("timeout", "must not be negative, got %s", timeout)
	}
	if timeout > maxStopTimeout {
		return Record{}, sdk.InvalidSpec("timeout", "%s is longer than the %s allowed", timeout, maxStopTimeout)
	}
	if timeout == 0 {
		timeout = d.cfg.DefaultStopTimeout
	}
	return d.doAndWait(ctx, id, input{event: fsm.EventStop, stopTimeout: timeout}, fsm.StateStopped, fsm.StateFailed, fsm.StateCreated)
}

// Kill forces a VM off and returns once it is stopped.
func (d *Daemon) Kill(ctx context.Context, id string) (Record, error) {
	return d.doAndWait(ctx, id, input{event: fsm.EventKill}, fsm.StateStopped, fsm.StateFailed, fsm.StateCreated)
}

// Pause freezes a running VM.
func (d *Daemon) Pause(ctx context.Context, id string) (Record, error) {
	return d.doAndWait(ctx, id, input{event: fsm.EventPause}, fsm.StatePaused)
}

// Resume thaws a paused VM.
func (d *Daemon) Resume(ctx context.Context, id string) (Record, error) {
	return d.doAndWait(ctx, id, input{event: fsm.EventResume}, fsm.StateRunning)
}

// Remove forgets a VM that does not run, and removes its work directory.
func (d *Daemon) Remove(ctx context.Context, id string) error {
	s := d.supervisor(id)
	if s == nil {
		return fmt.Errorf("vm %s: %w", id, ErrVMNotFound)
	}
	rec := s.Snapshot()
	if err := s.Do(ctx, input{event: fsm.EventRemove}); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.vms, id)
	d.mu.Unlock()
	if err := os.RemoveAll(rec.WorkDir); err != nil {
		d.log.Warn("cannot remove vm work directory", "vm_id", id, "error", err)
	}
	return nil
}

func (d *Daemon) doAndWait(ctx context.Context, id string, in input, want ...fsm.State) (Record, error) {
	s := d.supervisor(id)
	if s == nil {
		return Record{}, fmt.Errorf("vm %s: %w", id, ErrVMNotFound)
	}
	seq := s.ErrSeq()
	if err := s.Do(ctx, in); err != nil {
		return s.Snapshot(), err
	}
	rec, err := s.Wait(ctx, seq, func(r Record) bool {
		for _, w := range want {
			if r.State == w {
				return true
			}
		}
		return false
	})
	if err == nil && in.event == fsm.EventStart && !rec.State.Live() {
		err = fmt.Errorf("vm %s did not start: %s", id, rec.Reason)
	}
	return rec, err
}
