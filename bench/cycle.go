package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
)

// Path names one way of running a VM that the bench compares.
type Path string

// The four paths of the control-plane comparison.
const (
	PathHyperdQEMU    Path = "hyperd+qemu"
	PathHyperdLibvirt Path = "hyperd+libvirt"
	PathBareQEMU      Path = "bare QEMU"
	PathLibvirt       Path = "libvirt direct"
	// PathBarePoll20 is bare QEMU with the qemu driver's 20 ms wait
	// between attempts to reach QMP, to tell that wait's share of
	// hyperd's overhead from the rest.
	PathBarePoll20 Path = "bare QEMU, 20 ms QMP poll"
)

// cycler runs one control-plane cycle: create a VM that does not run its
// guest (or as nearly as the path allows), wait until it is reported so,
// kill it, remove it. n numbers the cycle uniquely within the run.
type cycler interface {
	cycle(ctx context.Context, n int64) error
}

// hyperdCycler cycles a VM through hyperd's API with one driver. Neither
// driver can start a VM paused, so it runs the VM, which returns once
// QEMU was spawned paused, QMP connected and cont sent, then kills and
// removes it.
type hyperdCycler struct {
	d      *daemon
	driver string
	spec   *apiv1.VMSpec

	// mu guards steps: each call's time by API method, to tell where a
	// cycle's time goes.
	mu    sync.Mutex
	steps map[string][]time.Duration
}

// timed calls f and records its time under step.
func (h *hyperdCycler) timed(step string, f func() error) error {
	start := time.Now()
	err := f()
	took := time.Since(start)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.steps == nil {
		h.steps = map[string][]time.Duration{}
	}
	h.steps[step] = append(h.steps[step], took)
	return err
}

// takeSteps returns the recorded step times and forgets them.
func (h *hyperdCycler) takeSteps() map[string]Summary {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]Summary{}
	for s, ts := range h.steps {
		out[s] = Summarize(ts)
	}
	h.steps = nil
	return out
}

func (h *hyperdCycler) cycle(ctx context.Context, n int64) error {
	spec := withName(h.spec, fmt.Sprintf("bench-%d", n))
	var r *apiv1.RunVMResponse
	err := h.timed("run", func() (err error) {
		r, err = h.d.api.RunVM(ctx, &apiv1.RunVMRequest{Driver: h.driver, Spec: spec})
		return err
	})
	if err != nil {
		return fmt.Errorf("run vm through %s: %w", h.driver, err)
	}
	id := r.GetVm().GetId()
	if st := r.GetVm().GetState(); st != "paused" {
		return fmt.Errorf("vm %s through %s is %s after run, want paused", id, h.driver, st)
	}
	if err := h.timed("kill", func() error {
		_, err := h.d.api.KillVM(ctx, &apiv1.KillVMRequest{Id: id})
		return err
	}); err != nil {
		return fmt.Errorf("kill vm %s: %w", id, err)
	}
	if err := h.timed("remove", func() error {
		_, err := h.d.api.RemoveVM(ctx, &apiv1.RemoveVMRequest{Id: id})
		return err
	}); err != nil {
		return fmt.Errorf("remove vm %s: %w", id, err)
	}
	return nil
}

// withName returns a copy of spec named name.
func withName(spec *apiv1.VMSpec, name string) *apiv1.VMSpec {
	c := proto.Clone(spec).(*apiv1.VMSpec)
	c.Name = name
	return c
}

// seq numbers cycles across the whole run, so that names never repeat.
var seq atomic.Int64

// timeCycles runs n cycles of each path one after another, interleaved
// round by round so that a change in the host's load falls on every path
// alike, and returns each path's cycle times. counts says how many
// cycles each path gets; a path stops taking part once it has its count.
func timeCycles(ctx context.Context, paths []Path, cyclers map[Path]cycler, counts map[Path]int) (map[Path][]time.Duration, error) {
	out := make(map[Path][]time.Duration)
	rounds := 0
	for _, c := range counts {
		rounds = max(rounds, c)
	}
	for i := 0; i < rounds; i++ {
		for _, p := range paths {
			if i >= counts[p] {
				continue
			}
			start := time.Now()
			if err := cyclers[p].cycle(ctx, seq.Add(1)); err != nil {
				return nil, fmt.Errorf("%s cycle %d: %w", p, i, err)
			}
			out[p] = append(out[p], time.Since(start))
		}
	}
	return out, nil
}

// Throughput is the outcome of cycles run with several in flight.
type Throughput struct {
	InFlight  int           `json:"in_flight"`
	VMs       int           `json:"vms"`
	Wall      time.Duration `json:"wall_ns"`
	VMsPerSec float64       `json:"vms_per_sec"`
	// Cycle summarizes each cycle's own time, queueing included.
	Cycle Summary `json:"cycle"`
}

// timeInFlight runs total cycles of c with inFlight of them at once and
// returns VMs completed per second of wall time.
func timeInFlight(ctx context.Context, c cycler, inFlight, total int) (Throughput, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan struct{})
	var (
		mu    sync.Mutex
		times []time.Duration
		first error
	)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < inFlight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				t0 := time.Now()
				err := c.cycle(ctx, seq.Add(1))
				d := time.Since(t0)
				mu.Lock()
				if err != nil && first == nil {
					first = err
					cancel()
				}
				times = append(times, d)
				mu.Unlock()
			}
		}()
	}
feed:
	for i := 0; i < total; i++ {
		select {
		case jobs <- struct{}{}:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	wall := time.Since(start)
	if first != nil {
		return Throughput{}, fmt.Errorf("%d in flight: %w", inFlight, first)
	}
	if err := ctx.Err(); err != nil {
		return Throughput{}, fmt.Errorf("%d in flight: %w", inFlight, err)
	}
	return Throughput{
		InFlight:  inFlight,
		VMs:       total,
		Wall:      wall,
		VMsPerSec: float64(total) / wall.Seconds(),
		Cycle:     Summarize(times),
	}, nil
}
