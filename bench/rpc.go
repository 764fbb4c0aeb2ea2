package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hyperd/hyperd/plugins/qemu"
	"github.com/hyperd/hyperd/sdk"
)

// statusWarmup calls are made and not counted: the first calls pay for
// connection set-up and cold caches on both sides.
const statusWarmup = 50

// RPCResult compares the qemu driver's Status through the plugin
// boundary (sdk.Launch of its binary: go-plugin, gRPC over mutual TLS on
// a unix socket) with the same driver called in process.
type RPCResult struct {
	// Paused is Status of a paused VM: the driver asks QEMU over QMP
	// (query-status), the same in both cases.
	PluginPaused    Summary `json:"plugin_paused"`
	InProcessPaused Summary `json:"in_process_paused"`
	// Created is Status of a created VM without a process: no QMP, so
	// the difference is the boundary alone.
	PluginCreated    Summary `json:"plugin_created"`
	InProcessCreated Summary `json:"in_process_created"`
}

// statusTarget is one driver holding one paused and one created VM.
type statusTarget struct {
	d       sdk.Driver
	paused  sdk.Handle
	created sdk.Handle
}

// prepareStatus makes the two VMs through d, each in its own directory
// under root. The paused VM's QEMU lives until release.
func prepareStatus(ctx context.Context, d sdk.Driver, root, tag string, g guestSpec) (_ *statusTarget, err error) {
	t := &statusTarget{d: d}
	defer func() {
		if err != nil {
			t.release(context.WithoutCancel(ctx), tag)
		}
	}()
	spec := sdk.Spec{
		Name: "bench-status-" + tag, VCPUs: 1, MemoryMiB: g.memoryMiB,
		Kernel: g.kernel, Initrd: g.initrd, Cmdline: g.cmdline,
	}
	for _, v := range []string{"paused", "created"} {
		dir := filepath.Join(root, tag+"-"+v)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		h, err := d.Create(ctx, tag+"-"+v, spec, dir)
		if err != nil {
			return nil, err
		}
		if v == "created" {
			t.created = h
			continue
		}
		t.paused = h // Destroy of a VM that never started succeeds
		if t.paused, err = d.Start(ctx, tag+"-"+v, h); err != nil {
			t.paused = h
			return nil, err
		}
		// A running guest would take a core from the measurement.
		pauser, ok := d.(sdk.Pauser)
		if !ok {
			return nil, fmt.Errorf("%T cannot pause", d)
		}
		if err := pauser.Pause(ctx, tag+"-"+v, t.paused); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// release kills and destroys the paused VM's QEMU.
func (t *statusTarget) release(ctx context.Context, tag string) {
	if t.paused != nil {
		_ = t.d.Kill(ctx, tag+"-paused", t.paused)    // Destroy kills too
		_ = t.d.Destroy(ctx, tag+"-paused", t.paused) // best effort at the end of the bench
	}
}

// timeStatus launches the qemu driver binary, makes an in-process qemu
// driver, and times calls Status calls of each on both VMs, alternating
// the two drivers call by call so that both see the same host load.
func timeStatus(ctx context.Context, binDir, root string, g guestSpec, calls int) (_ RPCResult, err error) {
	p, err := sdk.Launch(ctx, filepath.Join(binDir, "plugins", "hyperd-driver-qemu"), sdk.LaunchOptions{})
	if err != nil {
		return RPCResult{}, fmt.Errorf("launch qemu driver: %w", err)
	}
	defer p.Close()
	in := qemu.New(nil)
	defer in.Close()

	targets := map[string]sdk.Driver{"plugin": p.Client, "inproc": in}
	prepared := map[string]*statusTarget{}
	defer func() {
		for tag, t := range prepared {
			t.release(context.WithoutCancel(ctx), tag)
		}
	}()
	for tag, d := range targets {
		t, err := prepareStatus(ctx, d, root, tag, g)
		if err != nil {
			return RPCResult{}, fmt.Errorf("prepare status vms through %s driver: %w", tag, err)
		}
		prepared[tag] = t
	}

	times := map[string][]time.Duration{}
	for i := 0; i < statusWarmup+calls; i++ {
		for _, tag := range []string{"plugin", "inproc"} {
			t := prepared[tag]
			for _, v := range []struct {
				kind string
				h    sdk.Handle
			}{{"paused", t.paused}, {"created", t.created}} {
				start := time.Now()
				st, err := t.d.Status(ctx, tag+"-"+v.kind, v.h)
				took := time.Since(start)
				if err != nil {
					return RPCResult{}, fmt.Errorf("status through %s driver: %w", tag, err)
				}
				if want := map[string]sdk.RunState{"paused": sdk.RunStatePaused, "created": sdk.RunStateCreated}[v.kind]; st.State != want {
					return RPCResult{}, fmt.Errorf("status through %s driver: %s, want %s", tag, st.State, want)
				}
				if i >= statusWarmup {
					times[tag+"-"+v.kind] = append(times[tag+"-"+v.kind], took)
				}
			}
		}
	}
	return RPCResult{
		PluginPaused:     Summarize(times["plugin-paused"]),
		InProcessPaused:  Summarize(times["inproc-paused"]),
		PluginCreated:    Summarize(times["plugin-created"]),
		InProcessCreated: Summarize(times["inproc-created"]),
	}, nil
}
