package core

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hyperd/hyperd/sdk"
)

// DriverPrefix starts the file name of every driver binary.
const DriverPrefix = "hyperd-driver-"

// driverInfoTimeout bounds Info and the first fingerprint of a new driver.
const driverInfoTimeout = 10 * time.Second

// ErrNoDriver: no usable driver has the name.
var ErrNoDriver = errors.New("no such driver")

// DriverEntry is what the registry knows of one driver. Exactly one of
// Driver and Err is set.
type DriverEntry struct {
	Name string
	// Path is the driver's binary; empty for an in-process driver.
	Path   string
	Driver sdk.Driver
	// Err says why the driver cannot be used.
	Err         error
	Info        sdk.Info
	Fingerprint sdk.Fingerprint
	// ContractVersion is the contract version negotiated with the
	// driver's process; an in-process driver gets the SDK's newest.
	ContractVersion int

	// plugin is the driver's process, for a driver from a binary.
	plugin *sdk.Plugin
}

// Healthy reports whether the driver answered and its backend is usable.
func (e DriverEntry) Healthy() bool {
	return e.Err == nil && e.Fingerprint.Health == sdk.HealthHealthy
}

// Registry holds every driver found at startup. A driver process that
// dies is restarted with backoff; Reload swaps in a new binary. Either
// way the registry calls its onSwap hook once the new process answers, so
// the daemon can follow its events and recover its VMs through it.
type Registry struct {
	log      hclog.Logger
	logLevel string
	configs  map[string]DriverConfig
	onSwap   func(DriverEntry)
	// ctx ends restarts when the registry closes.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	entries map[string]*DriverEntry
	// gen counts the processes installed per driver name; a restart loop
	// ends once another process (a reload's) took its place.
	gen map[string]uint64
	// since is when the current process of each driver was installed,
	// and backoff the last wait before a restart: a driver that dies
	// soon after it starts waits longer each time.
	since   map[string]time.Time
	backoff map[string]time.Duration
}

// findDrivers lists the driver binaries in dirs. The first directory that
// holds a name wins; later ones are reported as shadowed.
func findDrivers(dirs []string, log hclog.Logger) []DriverEntry {
	var out []DriverEntry
	seen := make(map[string]string)
	for _, dir := range dirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			log.Warn("cannot read plugin directory", "dir", dir, "error", err)
			continue
		}
		for _, de := range ents {
			if !strings.HasPrefix(de.Name(), DriverPrefix) {
				continue
			}
			name := strings.TrimPrefix(de.Name(), DriverPrefix)
			path := filepath.Join(dir, de.Name())
			e := DriverEntry{Name: name, Path: path}
			if first, ok := seen[name]; ok {
				log.Warn("driver shadowed by an earlier plugin directory", "driver", name, "path", path, "used", first)
				continue
			}
			seen[name] = path
			if err := checkExecutable(path); err != nil {
				e.Err = err
			}
			out = append(out, e)
		}
	}
	return out
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file")
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("not executable (chmod +x %s)", path)
	}
	return checkArch(path)
}

// hostMachines maps GOARCH to the ELF machine this host executes.
var hostMachines = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"386":     elf.EM_386,
	"riscv64": elf.EM_RISCV,
	"ppc64le": elf.EM_PPC64,
	"s390x":   elf.EM_S390,
}

// checkArch refuses an ELF binary built for another architecture before
// it is started: the kernel would refuse it too, but go-plugin then waits
// for a process that never ran, and says less.
func checkArch(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil // the exec reports it
	}
	defer f.Close()
	// e_ident and e_machine: enough to tell the architecture, even of a
	// binary debug/elf would not parse in full.
	var h [20]byte
	if _, err := io.ReadFull(f, h[:]); err != nil || string(h[:4]) != elf.ELFMAG {
		return nil // not ELF (a script, say): the exec decides
	}
	var order binary.ByteOrder = binary.LittleEndian
	if elf.Data(h[elf.EI_DATA]) == elf.ELFDATA2MSB {
		order = binary.BigEndian
	}
	got := elf.Machine(order.Uint16(h[18:20]))
	if want, known := hostMachines[runtime.GOARCH]; known && got != want {
		return fmt.Errorf("exec format error: built for %s, but this host runs %s (%s); install the driver built for this host",
			got, want, runtime.GOARCH)
	}
	return nil
}

// Discover starts every driver binary in dirs in parallel, handshakes and
// asks for Info and a fingerprint. A driver that fails is kept with its
// reason and never stops the others. ctx bounds discovery only; the driver
// processes live until Close.
// In-process drivers in static are added as they are, after a call to
// Info and Fingerprint.
func Discover(ctx context.Context, dirs []string, static map[string]sdk.Driver, logLevel string, log hclog.Logger) *Registry {
	return DiscoverWith(ctx, DiscoverOptions{Dirs: dirs, Static: static, LogLevel: logLevel, Logger: log})
}

// DiscoverOptions says where drivers are and how to start them.
type DiscoverOptions struct {
	// Dirs are scanned in order for hyperd-driver-* binaries.
	Dirs []string
	// Static are in-process drivers, by name.
	Static   map[string]sdk.Driver
	LogLevel string
	// Configs are the drivers' blocks from the config file, by name: a
	// pinned checksum, checked before every start, and options handed to
	// the driver.
	Configs map[string]DriverConfig
	Logger  hclog.Logger
}

// DiscoverWith is Discover with every setting.
func DiscoverWith(ctx context.Context, o DiscoverOptions) *Registry {
	dirs, static, logLevel, log := o.Dirs, o.Static, o.LogLevel, o.Logger
	found := findDrivers(dirs, log)
	for name, d := range static {
		found = append(found, DriverEntry{Name: name, Driver: d})
	}
	var wg sync.WaitGroup
	for i := range found {
		if found[i].Err != nil {
			continue
		}
		if found[i].Driver != nil {
			describe(ctx, &found[i])
			continue
		}
		wg.Add(1)
		go func(e *DriverEntry) {
			defer wg.Done()
			startDriver(ctx, e, o.Configs[e.Name], logLevel, log)
		}(&found[i])
	}
	wg.Wait()

	rctx, cancel := context.WithCancel(context.Background())
	r := &Registry{
		log:      log,
		logLevel: logLevel,
		configs:  o.Configs,
		ctx:      rctx,
		cancel:   cancel,
		entries:  make(map[string]*DriverEntry),
		gen:      make(map[string]uint64),
		since:    make(map[string]time.Time),
		backoff:  make(map[string]time.Duration),
	}
	for i := range found {
		e := found[i]
		if e.Err != nil {
			log.Error("driver unusable", "driver", e.Name, "path", e.Path, "error", e.Err)
		} else {
			log.Info("driver ready", "driver", e.Name, "version", e.Info.Version,
				"health", e.Fingerprint.Health, "description", e.Fingerprint.Description)
			if e.plugin != nil {
				r.since[e.Name] = time.Now()
				go r.watch(e.Name, e.plugin)
			}
		}
		r.entries[e.Name] = &e
	}
	return r
}

// startDriver checks a driver binary against its pinned checksum, if
// any, and launches it with its configured options.
func startDriver(ctx context.Context, e *DriverEntry, dc DriverConfig, logLevel string, log hclog.Logger) {
	if err := checkPin(e.Path, dc); err != nil {
		e.Err = err
		return
	}
	opts := make(map[string]string, len(dc.Options))
	for k, v := range dc.Options {
		opts[k] = v.Value
	}
	launch(ctx, e, logLevel, opts, log)
	if e.Err == nil {
		if err := CheckDriverOptions(dc, e.Info.Options); err != nil {
			e.plugin.Close()
			e.Driver, e.plugin, e.Err = nil, nil, err
		}
	}
}

// checkPin refuses a binary whose sha256 differs from the pinned one.
func checkPin(path string, dc DriverConfig) error {
	if dc.SHA256 == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("checksum: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("checksum %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != dc.SHA256 {
		return fmt.Errorf("refused: sha256 of %s is %s, but the config pins %s (%s); install the pinned build or update the pin",
			path, got, dc.SHA256, dc.Pos)
	}
	return nil
}

func launch(ctx context.Context, e *DriverEntry, logLevel string, options map[string]string, log hclog.Logger) {
	p, err := sdk.Launch(ctx, e.Path, sdk.LaunchOptions{
		Logger:   log.Named("driver").With("driver", e.Name),
		LogLevel: logLevel,
		Options:  options,
	})
	if err != nil {
		e.Err = err
		return
	}
	e.Driver, e.plugin = p, p
	e.ContractVersion = p.ContractVersion()
	describe(ctx, e)
	if e.Err != nil {
		p.Close()
		e.Driver, e.plugin = nil, nil
	}
}

// describe asks a new driver for its Info and first fingerprint.
func describe(ctx context.Context, e *DriverEntry) {
	ctx, cancel := context.WithTimeout(ctx, driverInfoTimeout)
	defer cancel()
	info, err := e.Driver.Info(ctx)
	if err == nil && info.Name != e.Name {
		err = fmt.Errorf("driver says its name is %q but its binary is named %s%s", info.Name, DriverPrefix, e.Name)
	}
	if err != nil {
		e.Driver, e.Err = nil, err
		return
	}
	fp, err := e.Driver.Fingerprint(ctx)
	if err != nil {
		fp = sdk.Fingerprint{Health: sdk.HealthUnhealthy, Description: err.Error()}
	}
	e.Info, e.Fingerprint = info, fp
	if e.ContractVersion == 0 {
		e.ContractVersion = sdk.ContractVersion
	}
}

// Restart backoff bounds: the first retry comes after restartMin, each
// failure doubles the wait up to restartMax.
const (
	restartMin = 500 * time.Millisecond
	restartMax = 30 * time.Second
)

// SetSwapHook sets the function called, outside the registry's lock, each
// time a driver's process is replaced by a restart or a reload.
func (r *Registry) SetSwapHook(f func(DriverEntry)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onSwap = f
}

// watch follows a driver's fingerprint until the driver goes away. A
// process that exited on its own is restarted; one retired by a reload or
// by Close is not.
func (r *Registry) watch(name string, p *sdk.Plugin) {
	ch, err := p.WatchFingerprint(r.ctx)
	if err == nil {
		for fp := range ch {
			r.mu.Lock()
			if e := r.entries[name]; e != nil && e.plugin == p {
				e.Fingerprint = fp
			}
			r.mu.Unlock()
		}
	}
	// The stream also ends when the driver merely closed it; give the
	// process a moment to be seen as exited before deciding.
	for i := 0; i < 20 && !p.Exited() && r.ctx.Err() == nil; i++ {
		time.Sleep(50 * time.Millisecond)
	}

	r.mu.Lock()
	e := r.entries[name]
	if e == nil || e.plugin != p || r.ctx.Err() != nil {
		r.mu.Unlock()
		return
	}
	e.Err = fmt.Errorf("driver process exited; restarting")
	e.Driver, e.plugin = nil, nil
	path, gen := e.Path, r.gen[name]
	wait := restartMin
	if time.Since(r.since[name]) < restartStable {
		wait = min(2*r.backoff[name], restartMax)
		wait = max(wait, restartMin)
	}
	r.backoff[name] = wait
	r.mu.Unlock()

	if !p.Exited() {
		// The driver ended its fingerprint stream but lives on: treat it
		// as broken, since health can no longer be followed.
		p.Close()
	}
	r.log.Error("driver process exited; restarting", "driver", name, "retry_in", wait.String())
	r.restart(name, path, gen, wait)
}

// restartStable is how long a driver process must have run for its next
// restart to start again from restartMin.
const restartStable = 10 * time.Second

// current reports whether gen is still the driver's latest process: a
// reload installs a newer one, which ends the restart loop.
func (r *Registry) current(name string, gen uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen[name] == gen
}

// restart relaunches a driver, first after wait, until it answers, a
// reload replaces it, or the registry closes.
func (r *Registry) restart(name, path string, gen uint64, wait time.Duration) {
	for attempt := 1; ; attempt++ {
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(wait):
		}
		if !r.current(name, gen) {
			return
		}
		e := DriverEntry{Name: name, Path: path}
		if err := checkExecutable(path); err != nil {
			e.Err = err
		} else {
			startDriver(r.ctx, &e, r.configs[name], r.logLevel, r.log)
		}
		if e.Err == nil {
			if !r.current(name, gen) {
				e.plugin.Close() // a reload won the race
				return
			}
			r.log.Info("driver restarted", "driver", name, "attempt", attempt)
			r.install(e)
			return
		}
		wait = min(2*wait, restartMax)
		r.mu.Lock()
		r.backoff[name] = wait
		if cur := r.entries[name]; cur != nil && r.gen[name] == gen {
			cur.Err = fmt.Errorf("driver process exited; restart %d failed: %w; retrying in %s", attempt, e.Err, wait)
		}
		r.mu.Unlock()
		r.log.Warn("driver restart failed", "driver", name, "attempt", attempt, "error", e.Err, "retry_in", wait.String())
	}
}

// install makes e, a freshly launched driver, the one in use for its
// name, retires the process it replaces, and calls the swap hook.
func (r *Registry) install(e DriverEntry) {
	r.mu.Lock()
	if r.ctx.Err() != nil {
		r.mu.Unlock()
		e.plugin.Close()
		return
	}
	var old *sdk.Plugin
	if cur := r.entries[e.Name]; cur != nil {
		old = cur.plugin
	}
	r.entries[e.Name] = &e
	r.gen[e.Name]++
	r.since[e.Name] = time.Now()
	hook := r.onSwap
	r.mu.Unlock()

	// The old process goes first: a backend may serve one control
	// connection per VM (QEMU's QMP does), which the new one needs.
	if old != nil {
		old.Close()
	}
	go r.watch(e.Name, e.plugin)
	if hook != nil {
		hook(e)
	}
}

// Reload starts the binary now at the driver's path and, once it answers,
// swaps it in for the running process, which is retired. VMs keep
// running; the swap hook recovers them through the new process. When the
// new binary fails, the old process stays in use.
func (r *Registry) Reload(ctx context.Context, name string) error {
	r.mu.Lock()
	cur, ok := r.entries[name]
	var path string
	if ok {
		path = cur.Path
	}
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("reload driver %q: %w", name, ErrNoDriver)
	}
	if path == "" {
		return fmt.Errorf("reload driver %q: it runs in process and has no binary", name)
	}
	e := DriverEntry{Name: name, Path: path}
	if err := checkExecutable(path); err != nil {
		return fmt.Errorf("reload driver %q: %w", name, err)
	}
	startDriver(ctx, &e, r.configs[name], r.logLevel, r.log)
	if e.Err != nil {
		return fmt.Errorf("reload driver %q: the new binary failed, the old process stays: %w", name, e.Err)
	}
	r.log.Info("driver reloaded", "driver", name, "version", e.Info.Version)
	r.install(e)
	return nil
}

// List returns a copy of every entry, by name.
func (r *Registry) List() []DriverEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]DriverEntry, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get returns the usable driver named name.
func (r *Registry) Get(name string) (DriverEntry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[name]
	if !ok {
		return DriverEntry{}, fmt.Errorf("driver %q: %w", name, ErrNoDriver)
	}
	if e.Err != nil {
		return DriverEntry{}, fmt.Errorf("driver %q is unusable (%v): %w", name, e.Err, sdk.ErrUnavailable)
	}
	return *e, nil
}

// Close ends every driver process. VMs keep running.
func (r *Registry) Close() {
	r.cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.entries {
		if e.plugin != nil {
			e.plugin.Close()
		}
	}
}
