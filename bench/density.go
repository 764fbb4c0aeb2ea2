package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
)

const (
	// densityInFlight is how many runs the density bench has in flight
	// while it fills the daemon; it measures memory, not speed.
	densityInFlight = 8
	// settle is the pause before reading memory, for the Go runtimes to
	// return what the last burst of requests left behind.
	settle = 2 * time.Second
	// stoppedPoll is how often the exit latency bench asks the API whether
	// a VM is stopped; it bounds the measurement's own error.
	stoppedPoll = time.Millisecond
)

// DensityResult is memory per idle VM and the exit-to-stored latency.
type DensityResult struct {
	VMs int `json:"vms"`
	// Idle and Loaded are resident KiB by process, "hyperd" and each
	// driver by binary name, before any VM and with VMs paused VMs.
	IdleKiB   map[string]int64 `json:"idle_kib"`
	LoadedKiB map[string]int64 `json:"loaded_kib"`
	// PerVMKiB is (Loaded - Idle) / VMs by process.
	PerVMKiB map[string]float64 `json:"per_vm_kib"`
	// QEMUKiB is the median resident memory of one paused QEMU, for scale.
	QEMUKiB int64 `json:"qemu_kib"`
	// ExitToAPI runs from the SIGTERM sent to a paused VM's QEMU (which
	// makes QEMU emit SHUTDOWN, reason host-signal, and exit) to the first
	// GetVM answer saying stopped, polled every millisecond: the stored
	// state, committed and visible.
	ExitToAPI Summary `json:"exit_to_api"`
	// ExitToStamp runs from the same SIGTERM to the record's updated_at,
	// which the daemon stamps just before its bbolt commit: the part
	// without the commit and the poll.
	ExitToStamp Summary `json:"exit_to_stamp"`
}

// measureDensity starts a fresh hyperd, reads its and its drivers'
// memory, fills it with vms paused VMs through the qemu driver, reads
// the memory again, then ends each VM's QEMU with SIGTERM and times
// until the API reports it stopped.
func measureDensity(ctx context.Context, binDir, root string, spec *apiv1.VMSpec, vms int) (_ DensityResult, err error) {
	d, err := startDaemon(ctx, binDir, root, filepath.Join(binDir, "plugins"))
	if err != nil {
		return DensityResult{}, err
	}
	defer func() {
		if serr := d.stop(context.WithoutCancel(ctx)); err == nil && serr != nil {
			err = fmt.Errorf("stop density hyperd: %w", serr)
		}
	}()
	res := DensityResult{VMs: vms}
	time.Sleep(settle)
	if res.IdleKiB, err = daemonRSS(d.pid()); err != nil {
		return DensityResult{}, err
	}

	ids, err := fillPaused(ctx, d, spec, vms)
	if err != nil {
		return DensityResult{}, err
	}
	time.Sleep(settle)
	if res.LoadedKiB, err = daemonRSS(d.pid()); err != nil {
		return DensityResult{}, err
	}
	res.PerVMKiB = map[string]float64{}
	for name, kib := range res.LoadedKiB {
		res.PerVMKiB[name] = float64(kib-res.IdleKiB[name]) / float64(vms)
	}

	var (
		toAPI, toStamp []time.Duration
		qemuKiB        []int64
	)
	for _, id := range ids {
		vm, err := d.api.GetVM(ctx, &apiv1.GetVMRequest{Id: id})
		if err != nil {
			return DensityResult{}, fmt.Errorf("get vm %s: %w", id, err)
		}
		if kib, err := rssKiB(int(vm.GetPid())); err == nil {
			qemuKiB = append(qemuKiB, kib)
		}
		a, s, err := timeExit(ctx, d, vm)
		if err != nil {
			return DensityResult{}, err
		}
		toAPI, toStamp = append(toAPI, a), append(toStamp, s)
	}
	res.ExitToAPI, res.ExitToStamp = Summarize(toAPI), Summarize(toStamp)
	if len(qemuKiB) > 0 {
		slices.Sort(qemuKiB)
		res.QEMUKiB = qemuKiB[rank(len(qemuKiB), 50)]
	}
	return res, nil
}

// fillPaused runs vms VMs and pauses each once it runs.
func fillPaused(ctx context.Context, d *daemon, spec *apiv1.VMSpec, vms int) ([]string, error) {
	var (
		mu    sync.Mutex
		ids   []string
		first error
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, densityInFlight)
	for i := 0; i < vms; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s := withName(spec, fmt.Sprintf("dense-%d", seq.Add(1)))
			r, err := d.api.RunVM(ctx, &apiv1.RunVMRequest{Driver: "qemu", Spec: s})
			if err == nil {
				_, err = d.api.PauseVM(ctx, &apiv1.PauseVMRequest{Id: r.GetVm().GetId()})
			}
			mu.Lock()
			defer mu.Unlock()
			if r != nil {
				ids = append(ids, r.GetVm().GetId())
			}
			if err != nil && first == nil {
				first = fmt.Errorf("fill density hyperd: %w", err)
			}
		}()
	}
	wg.Wait()
	return ids, first
}

// timeExit sends the VM's QEMU SIGTERM and polls until the API says the
// VM is stopped. The pid is that of a QEMU our own hyperd's driver
// started, read from our own hyperd a moment before.
func timeExit(ctx context.Context, d *daemon, vm *apiv1.VM) (toAPI, toStamp time.Duration, err error) {
	if vm.GetState() != "paused" || vm.GetPid() <= 0 {
		return 0, 0, fmt.Errorf("vm %s is %s with pid %d, want paused with a pid", vm.GetId(), vm.GetState(), vm.GetPid())
	}
	t0 := time.Now()
	if err := syscall.Kill(int(vm.GetPid()), syscall.SIGTERM); err != nil {
		return 0, 0, fmt.Errorf("signal qemu of vm %s: %w", vm.GetId(), err)
	}
	deadline := t0.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r, err := d.api.GetVM(ctx, &apiv1.GetVMRequest{Id: vm.GetId()})
		if err != nil {
			return 0, 0, fmt.Errorf("get vm %s: %w", vm.GetId(), err)
		}
		if r.GetState() == "stopped" {
			return time.Since(t0), r.GetUpdatedAt().AsTime().Sub(t0), nil
		}
		time.Sleep(stoppedPoll)
	}
	return 0, 0, fmt.Errorf("vm %s not stopped 30s after its qemu got SIGTERM", vm.GetId())
}

// daemonRSS returns the resident KiB of hyperd and of each of its child
// processes (the drivers), by name.
func daemonRSS(pid int) (map[string]int64, error) {
	out := map[string]int64{}
	kib, err := rssKiB(pid)
	if err != nil {
		return nil, err
	}
	out["hyperd"] = kib
	for _, c := range children(pid) {
		// comm is cut at 15 bytes, too short for hyperd-driver-NAME.
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", c))
		if err != nil {
			continue // it exited meanwhile
		}
		if kib, err := rssKiB(c); err == nil {
			out[filepath.Base(exe)] += kib
		}
	}
	return out, nil
}

// children lists pid's child processes, from every thread's list.
func children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// rssKiB reads VmRSS from /proc/PID/status.
func rssKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("rss of pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("rss of pid %d: %w", pid, err)
			}
			return kib, nil
		}
	}
	return 0, fmt.Errorf("rss of pid %d: no VmRSS line", pid)
}
