package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
	"github.com/hyperd/hyperd/internal/testguest"
	"google.golang.org/protobuf/proto"
)

// guestMemoryMiB is every VM's memory. A paused VM never touches it, and
// the guest boots to its ready line in it.
const guestMemoryMiB = 128

// Config says what to run and where.
type Config struct {
	// BinDir holds hyperd and plugins/hyperd-driver-*, as `make build`
	// leaves them.
	BinDir string
	// GuestDir holds vmlinuz and initrd.img, as `make guest` leaves them.
	GuestDir string
	// Counts scales the run; see FullCounts and QuickCounts.
	Counts Counts
	// Progress receives one line per step; nil discards.
	Progress io.Writer
}

// Counts are the sample sizes of one run.
type Counts struct {
	// QEMUCycles and LibvirtCycles are the sequential cycles per path:
	// the qemu paths and the libvirt paths, which take 20 times longer.
	QEMUCycles    int `json:"qemu_cycles"`
	LibvirtCycles int `json:"libvirt_cycles"`
	// InFlight are the concurrency levels; each path runs Waves times
	// the level in VMs at each (libvirt paths one wave).
	InFlight []int `json:"in_flight"`
	Waves    int   `json:"waves"`
	// LibvirtMaxVMs caps the libvirt paths' in-flight level and VMs, zero
	// for no cap: 32 libvirt domains take half a minute.
	LibvirtMaxVMs int `json:"libvirt_max_vms"`
	// StatusCalls per driver and VM kind.
	StatusCalls int `json:"status_calls"`
	// Startups of hyperd.
	Startups int `json:"startups"`
	// DensityVMs paused under one hyperd.
	DensityVMs int `json:"density_vms"`
	// Boots each way.
	Boots int `json:"boots"`
}

// FullCounts is `make bench`: about six minutes on a quiet 2-core host.
var FullCounts = Counts{
	QEMUCycles: 30, LibvirtCycles: 10, InFlight: []int{8, 32}, Waves: 2,
	StatusCalls: 2000, Startups: 10, DensityVMs: 100, Boots: 5,
}

// QuickCounts keeps every measurement working in well under two minutes,
// for CI; its times are not to be judged.
var QuickCounts = Counts{
	QEMUCycles: 3, LibvirtCycles: 2, InFlight: []int{8, 32}, Waves: 1, LibvirtMaxVMs: 8,
	StatusCalls: 100, Startups: 2, DensityVMs: 8, Boots: 1,
}

// Results is one run's outcome, as written to the JSON file.
type Results struct {
	Machine Machine `json:"machine"`
	Counts  Counts  `json:"counts"`
	// Cycle is the sequential control-plane cycle by path.
	Cycle map[Path]Summary `json:"cycle"`
	// HyperdOverBare is hyperd+qemu's median cycle over bare QEMU's;
	// LibvirtOverHyperd is libvirt direct's over hyperd+qemu's.
	HyperdOverBare float64 `json:"hyperd_over_bare"`
	// Steps splits hyperd+qemu's sequential cycle by API call.
	Steps map[string]Summary `json:"hyperd_qemu_steps"`
	// Fsync is one small file's write and fsync in hyperd's state
	// directory, what each of bbolt's commits pays at least.
	Fsync             Summary               `json:"fsync"`
	LibvirtOverHyperd float64               `json:"libvirt_over_hyperd"`
	InFlight          map[Path][]Throughput `json:"in_flight"`
	Status            RPCResult             `json:"status"`
	Startup           StartupResult         `json:"startup"`
	Density           DensityResult         `json:"density"`
	Boot              BootResult            `json:"boot"`
	Targets           []Target              `json:"targets"`
	Took              time.Duration         `json:"took_ns"`
	Errors            map[string]string     `json:"errors,omitempty"`
}

// Run measures everything, in order, and returns what it measured. A
// section that fails is recorded in Errors and the others still run, so
// that one broken backend does not hide the rest; the error returned
// joins them.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	start := time.Now()
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	say := func(format string, a ...any) {
		fmt.Fprintf(progress, "%s  "+format+"\n", append([]any{time.Since(start).Round(time.Second)}, a...)...)
	}
	// Drivers and QEMU run in other directories; hyperd refuses relative
	// kernel paths.
	var err error
	for _, p := range []*string{&cfg.BinDir, &cfg.GuestDir} {
		if *p, err = filepath.Abs(*p); err != nil {
			return nil, err
		}
	}
	// The in-process qemu driver and sdk.Launch's child read these.
	for _, kv := range accelEnv {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return nil, fmt.Errorf("set %s: %w", k, err)
		}
	}

	root, err := os.MkdirTemp("", "hb-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	// libvirt's QEMU runs as libvirt-qemu and must reach the console
	// file's directory for the direct path (the kernel stays in GuestDir).
	if err := os.Chmod(root, 0o755); err != nil {
		return nil, err
	}

	g := guestSpec{
		kernel:    filepath.Join(cfg.GuestDir, "vmlinuz"),
		initrd:    filepath.Join(cfg.GuestDir, "initrd.img"),
		cmdline:   testguest.Cmdline,
		memoryMiB: guestMemoryMiB,
	}
	for _, f := range []string{g.kernel, g.initrd} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("guest: %w; run make guest", err)
		}
	}
	spec := &apiv1.VMSpec{
		Vcpus: 1, MemoryMib: guestMemoryMiB,
		Kernel: g.kernel, Initrd: g.initrd, Cmdline: g.cmdline,
	}

	res := &Results{Machine: describeMachine(), Counts: cfg.Counts, Errors: map[string]string{}}
	section := func(name string, f func() error) {
		say("%s", name)
		if err := f(); err != nil {
			res.Errors[name] = err.Error()
			say("%s failed: %v", name, err)
		}
	}

	d, err := startDaemon(ctx, cfg.BinDir, filepath.Join(root, "d"), filepath.Join(cfg.BinDir, "plugins"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = d.stop(context.WithoutCancel(ctx)) }() // each section cleans its own VMs
	lv, err := newLibvirtDirect(root, g)
	if err != nil {
		return nil, err
	}
	defer lv.close()

	// The cycle's VM never runs its guest, as in the baselines: QEMU
	// stays in prelaunch, libvirt's domain starts paused.
	paused := proto.Clone(spec).(*apiv1.VMSpec)
	paused.Options = map[string]string{"start_paused": "true"}
	hq := &hyperdCycler{d: d, driver: "qemu", spec: paused}
	cyclers := map[Path]cycler{
		PathHyperdQEMU:    hq,
		PathHyperdLibvirt: &hyperdCycler{d: d, driver: "libvirt", spec: paused},
		PathBareQEMU:      &bareQEMU{root: root, guest: g},
		PathLibvirt:       lv,
		PathBarePoll20:    &bareQEMU{root: root, guest: g, retry: 20 * time.Millisecond},
	}
	paths := []Path{PathHyperdQEMU, PathBareQEMU, PathHyperdLibvirt, PathLibvirt}
	cyclePaths := append(slices.Clone(paths), PathBarePoll20)
	c := cfg.Counts
	section("control-plane cycle", func() error {
		// One untimed cycle each: the first libvirt domain and the first
		// QEMU pay for cold caches.
		warm := map[Path]int{}
		for _, p := range cyclePaths {
			warm[p] = 1
		}
		if _, err := timeCycles(ctx, cyclePaths, cyclers, warm); err != nil {
			return err
		}
		hq.takeSteps()
		counts := map[Path]int{
			PathHyperdQEMU: c.QEMUCycles, PathBareQEMU: c.QEMUCycles, PathBarePoll20: c.QEMUCycles,
			PathHyperdLibvirt: c.LibvirtCycles, PathLibvirt: c.LibvirtCycles,
		}
		times, err := timeCycles(ctx, cyclePaths, cyclers, counts)
		if err != nil {
			return err
		}
		res.Steps = hq.takeSteps()
		res.Fsync = timeFsync(filepath.Join(root, "d"), 20)
		res.Cycle = map[Path]Summary{}
		for p, ts := range times {
			res.Cycle[p] = Summarize(ts)
		}
		res.HyperdOverBare = ratio(res.Cycle[PathHyperdQEMU].P50, res.Cycle[PathBareQEMU].P50)
		res.LibvirtOverHyperd = ratio(res.Cycle[PathLibvirt].P50, res.Cycle[PathHyperdQEMU].P50)
		return nil
	})

	section("cycles in flight", func() error {
		res.InFlight = map[Path][]Throughput{}
		var errs []error
		for _, k := range c.InFlight {
			for _, p := range paths {
				inFlight, total := k, k*c.Waves
				if p == PathHyperdLibvirt || p == PathLibvirt {
					total = k
					if c.LibvirtMaxVMs > 0 {
						inFlight, total = min(k, c.LibvirtMaxVMs), min(k, c.LibvirtMaxVMs)
					}
				}
				say("  %s, %d in flight, %d vms", p, inFlight, total)
				t, err := timeInFlight(ctx, cyclers[p], inFlight, total)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", p, err))
					continue
				}
				res.InFlight[p] = append(res.InFlight[p], t)
			}
		}
		return errors.Join(errs...)
	})

	section("driver status rpc", func() error {
		r, err := timeStatus(ctx, cfg.BinDir, filepath.Join(root, "rpc"), g, c.StatusCalls)
		res.Status = r
		return err
	})

	section("boot to guest", func() error {
		r, err := timeBoot(ctx, d, filepath.Join(root, "boot"), spec, g, c.Boots)
		res.Boot = r
		return err
	})

	section("start-up", func() error {
		r, err := timeStartup(ctx, cfg.BinDir, filepath.Join(root, "start"), c.Startups)
		res.Startup = r
		return err
	})

	section("density", func() error {
		r, err := measureDensity(ctx, cfg.BinDir, filepath.Join(root, "dense"), spec, c.DensityVMs)
		res.Density = r
		return err
	})

	res.Machine.LoadAfter = loadAvg()
	res.Targets = targets(res)
	res.Took = time.Since(start)
	var errs []error
	for name, e := range res.Errors {
		errs = append(errs, fmt.Errorf("%s: %s", name, e))
	}
	return res, errors.Join(errs...)
}

// timeFsync times n writes of a small file in dir, each with fsync.
func timeFsync(dir string, n int) Summary {
	var ts []time.Duration
	p := filepath.Join(dir, "fsync-probe")
	defer os.Remove(p)
	for i := 0; i < n; i++ {
		start := time.Now()
		f, err := os.Create(p)
		if err != nil {
			return Summary{}
		}
		_, werr := f.Write(make([]byte, 4096))
		serr := f.Sync()
		cerr := f.Close()
		if werr != nil || serr != nil || cerr != nil {
			return Summary{}
		}
		ts = append(ts, time.Since(start))
	}
	return Summarize(ts)
}
