package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
	"github.com/hyperd/hyperd/internal/testguest"
)

const (
	// consolePoll is how often both boot paths read the console file for
	// the ready line; it bounds each measurement's error, the same for
	// both.
	consolePoll = 5 * time.Millisecond
	// bootTimeout bounds one boot; under TCG the guest takes about 5 s.
	bootTimeout = 2 * time.Minute
)

// BootResult compares a run request through hyperd with the same QEMU
// started by hand, each timed to the guest's ready line on its console.
type BootResult struct {
	Hyperd Summary `json:"hyperd"`
	ByHand Summary `json:"by_hand"`
	Ratio  float64 `json:"ratio"`
}

// timeBoot boots the guest runs times each way, alternating.
func timeBoot(ctx context.Context, d *daemon, root string, spec *apiv1.VMSpec, g guestSpec, runs int) (BootResult, error) {
	var viaHyperd, byHand []time.Duration
	for i := 0; i < runs; i++ {
		t, err := bootHyperd(ctx, d, spec)
		if err != nil {
			return BootResult{}, err
		}
		viaHyperd = append(viaHyperd, t)
		if t, err = bootByHand(ctx, root, g); err != nil {
			return BootResult{}, err
		}
		byHand = append(byHand, t)
	}
	res := BootResult{Hyperd: Summarize(viaHyperd), ByHand: Summarize(byHand)}
	res.Ratio = ratio(res.Hyperd.P50, res.ByHand.P50)
	return res, nil
}

// bootHyperd times RunVM to the ready line, then kills and removes the VM.
func bootHyperd(ctx context.Context, d *daemon, spec *apiv1.VMSpec) (_ time.Duration, err error) {
	s := withName(spec, fmt.Sprintf("boot-%d", seq.Add(1)))
	start := time.Now()
	r, err := d.api.RunVM(ctx, &apiv1.RunVMRequest{Driver: "qemu", Spec: s})
	if err != nil {
		return 0, fmt.Errorf("boot through hyperd: %w", err)
	}
	id := r.GetVm().GetId()
	defer func() {
		if _, kerr := d.api.KillVM(ctx, &apiv1.KillVMRequest{Id: id}); kerr != nil && err == nil {
			err = fmt.Errorf("kill vm %s: %w", id, kerr)
		}
		if _, rerr := d.api.RemoveVM(ctx, &apiv1.RemoveVMRequest{Id: id}); rerr != nil && err == nil {
			err = fmt.Errorf("remove vm %s: %w", id, rerr)
		}
	}()
	if err := waitLine(ctx, r.GetVm().GetConsoleLog(), nil); err != nil {
		return 0, fmt.Errorf("boot vm %s through hyperd: %w", id, err)
	}
	return time.Since(start), nil
}

// bootByHand execs the driver's QEMU command line without -S and times
// it to the ready line.
func bootByHand(ctx context.Context, root string, g guestSpec) (_ time.Duration, err error) {
	start := time.Now()
	p, err := spawnQEMU(root, g, seq.Add(1), false)
	if err != nil {
		return 0, err
	}
	defer func() {
		if kerr := p.kill(); err == nil {
			err = kerr
		}
	}()
	if err := waitLine(ctx, p.dir+"/console.log", p.done); err != nil {
		return 0, fmt.Errorf("boot by hand: %w", err)
	}
	return time.Since(start), nil
}

// waitLine polls path until it holds the guest's ready line, gone closes
// or bootTimeout passes.
func waitLine(ctx context.Context, path string, gone <-chan struct{}) error {
	ready := []byte(testguest.ReadyLine)
	deadline := time.After(bootTimeout)
	for {
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, ready) {
			return nil
		}
		select {
		case <-gone:
			return fmt.Errorf("qemu exited before the guest printed %s", testguest.ReadyLine)
		case <-deadline:
			return fmt.Errorf("no %s in %s within %s", testguest.ReadyLine, path, bootTimeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(consolePoll):
		}
	}
}
