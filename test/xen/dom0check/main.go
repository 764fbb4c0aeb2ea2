// Command xen-dom0-check runs inside the nested Xen test's dom0: it starts
// hyperd with the xen driver, drives guests through kills of the driver
// with hyperctl (a stubborn guest the next driver recovers, a domain
// destroyed while no driver ran), runs the e2e lifecycle body
// (bin/e2e.test, TestLifecycle/xen) and the SDK's conformance suite
// (hyperctl drivers check) against the xen driver, and prints one line
// per step, e2e test and conformance check on the console,
//
//	=== XEN-TEST STEP PASS|FAIL|SKIP detail
//
// which the host's test reads. It exits non-zero when a step failed.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// guestCmdline is the test guest's command line for a Xen PV or PVH
	// domain, whose console is hvc0 (the QEMU guest's is ttyS0).
	guestCmdline = "console=hvc0 panic=-1 quiet"
	readyLine    = "HYPERD-GUEST-READY"
	// bootWithin bounds a guest's boot to its ready line: xl create
	// takes 10 to 15 s under nested emulation and the boot as long again.
	bootWithin = 3 * time.Minute
	// stopMargin is what a forced stop may take past its timeout here:
	// a poll, xl destroy and the daemon's bookkeeping, all emulated.
	stopMargin = 20 * time.Second
	// ctlTimeout bounds one hyperctl call.
	ctlTimeout = 4 * time.Minute
)

type runner struct {
	share   string
	runDir  string
	socket  string
	daemon  *exec.Cmd
	exited  chan struct{}
	failed  int
	logPath string
}

func main() {
	share := flag.String("share", "/mnt/host", "the host's share, holding bin/ and guest/")
	pvh := flag.Bool("pvh", false, "also boot and stop a PVH guest")
	flag.Parse()

	r := &runner{share: *share, runDir: "/run/hyperd"}
	r.socket = filepath.Join(r.runDir, "api.sock")
	r.logPath = filepath.Join(r.runDir, "hyperd.log")
	if err := os.MkdirAll(r.runDir, 0o700); err != nil {
		r.report("SETUP", err)
		os.Exit(1)
	}
	r.run(*pvh)
	if r.failed > 0 {
		os.Exit(1)
	}
}

func (r *runner) run(pvh bool) {
	defer r.stopDaemon()
	if !r.step("HYPERD-START", r.startDaemon) {
		return
	}
	if !r.step("DRIVERS", r.checkDrivers) {
		return
	}
	g := r.guest()
	// The PV lifecycle through hyperctl is the e2e body's, run below.
	r.stubbornAndRecovery(g)
	r.goneWhileAway(g)
	if pvh {
		r.lifecycle("PVH", g, []string{"--opt", "type=pvh"})
	} else {
		fmt.Println("=== XEN-TEST PVH SKIP not asked for (xentest.pvh=1 on dom0's command line)")
	}
	r.step("NOTHING-LEFT", r.nothingLeft)
	if !r.step("HYPERD-TERM", r.termDaemon) {
		return
	}
	r.e2eLifecycle()
	r.conformance(g)
}

type guestFiles struct{ kernel, initrd, stubborn string }

func (r *runner) guest() guestFiles {
	d := filepath.Join(r.share, "guest")
	return guestFiles{
		kernel:   filepath.Join(d, "vmlinuz"),
		initrd:   filepath.Join(d, "initrd.img"),
		stubborn: filepath.Join(d, "initrd-stubborn.img"),
	}
}

// step runs f and reports it; it returns whether f passed.
func (r *runner) step(name string, f func() error) bool {
	start := time.Now()
	err := f()
	if err != nil {
		r.report(name, err)
		return false
	}
	fmt.Printf("=== XEN-TEST %s PASS %.1fs\n", name, time.Since(start).Seconds())
	return true
}

// skipError marks a step that could not apply, with why.
type skipError struct{ why string }

func (e skipError) Error() string { return e.why }

func (r *runner) report(name string, err error) {
	var skip skipError
	if errors.As(err, &skip) {
		fmt.Printf("=== XEN-TEST %s SKIP %s\n", name, oneLine(skip.why))
		return
	}
	r.failed++
	fmt.Printf("=== XEN-TEST %s FAIL %s\n", name, oneLine(err.Error()))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// --- the daemon ------------------------------------------------------------

func (r *runner) startDaemon() error {
	bin := filepath.Join(r.share, "bin")
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close() // hyperd holds its own descriptor
	r.daemon = exec.Command(filepath.Join(bin, "hyperd"),
		"--state-dir", filepath.Join(r.runDir, "state"), "--socket", r.socket,
		"--plugin-dir", filepath.Join(bin, "plugins"), "--default-driver", "xen", "--log-level", "debug")
	r.daemon.Stdout, r.daemon.Stderr = logf, logf
	if err := r.daemon.Start(); err != nil {
		return err
	}
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait() // the exit is seen through done and ProcessState
		close(done)
	}(r.daemon, r.exited)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := r.ctl("drivers"); err == nil {
			return nil
		}
		select {
		case <-r.exited:
			return fmt.Errorf("hyperd exited at start; log ends: %s", r.logTail(5))
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("hyperd did not answer within 60s; log ends: %s", r.logTail(5))
}

func (r *runner) termDaemon() error {
	if r.daemon == nil || r.daemon.ProcessState != nil {
		return errors.New("hyperd is not running")
	}
	if err := r.daemon.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		return errors.New("hyperd did not exit within 30s of SIGTERM")
	}
	if !r.daemon.ProcessState.Success() {
		return fmt.Errorf("hyperd exited with %v; log ends: %s", r.daemon.ProcessState, r.logTail(5))
	}
	return nil
}

// stopDaemon kills a hyperd still running at the end.
func (r *runner) stopDaemon() {
	if r.daemon != nil && r.daemon.ProcessState == nil {
		_ = r.daemon.Process.Kill() // the run is over; only the reap matters
		<-r.exited
	}
	if r.failed > 0 {
		fmt.Println("----- hyperd log (tail) -----")
		fmt.Println(r.logTail(40))
		fmt.Println("----- end of hyperd log -----")
	}
}

func (r *runner) logTail(n int) string {
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ctl runs hyperctl and returns its stdout, or an error with its stderr.
func (r *runner) ctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(r.share, "bin", "hyperctl"), append([]string{"--socket", r.socket}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		return o.String(), fmt.Errorf("hyperctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(e.String()))
	}
	return o.String(), nil
}

// --- views -------------------------------------------------------------------

type driverView struct {
	Name       string            `json:"name"`
	Healthy    bool              `json:"healthy"`
	Error      string            `json:"error"`
	Attributes map[string]string `json:"attributes"`
}

func (r *runner) checkDrivers() error {
	out, err := r.ctl("drivers", "-o", "json")
	if err != nil {
		return err
	}
	var list struct {
		Drivers []driverView `json:"drivers"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return fmt.Errorf("drivers -o json: %v: %s", err, out)
	}
	for _, d := range list.Drivers {
		if d.Name == "xen" {
			if !d.Healthy {
				return fmt.Errorf("xen driver unhealthy: %+v", d)
			}
			human, _ := r.ctl("drivers") // only printed
			fmt.Print(human)
			return nil
		}
	}
	return fmt.Errorf("xen driver not listed: %s", out)
}

type vmView struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Reason string `json:"reason"`
}

func (r *runner) inspect(id string) (vmView, error) {
	var v vmView
	out, err := r.ctl("inspect", "-o", "json", id)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return v, fmt.Errorf("inspect -o json: %v: %s", err, out)
	}
	return v, nil
}

func (r *runner) wantState(id, state string) error {
	v, err := r.inspect(id)
	if err != nil {
		return err
	}
	if v.State != state {
		return fmt.Errorf("vm %s is %s (%s), want %s", id, v.State, v.Reason, state)
	}
	return nil
}

func (r *runner) runVM(name, initrd string, extra []string) (string, error) {
	g := r.guest()
	args := append([]string{"run", "--name", name, "--driver", "xen", "--memory", "128M", "--cpus", "1",
		"--kernel", g.kernel, "--initrd", initrd, "--cmdline", guestCmdline}, extra...)
	out, err := r.ctl(args...)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(out)
	if id == "" || strings.ContainsAny(id, " \n") {
		return "", fmt.Errorf("run printed %q, want the vm id alone", out)
	}
	return id, nil
}

func (r *runner) waitConsole(id, want string) error {
	deadline := time.Now().Add(bootWithin)
	var out string
	for time.Now().Before(deadline) {
		out, _ = r.ctl("logs", id)
		for _, l := range strings.Split(out, "\n") {
			if strings.TrimSpace(l) == want {
				return nil
			}
		}
		time.Sleep(time.Second)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return fmt.Errorf("no line %q within %s; console ends: %s", want, bootWithin, strings.Join(lines, " | "))
}

// --- xl's view ---------------------------------------------------------------

// domains returns `xl list`'s domain names with their state letters.
func domains() (map[string]string, error) {
	out, err := exec.Command("xl", "list").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("xl list: %v: %s", err, out)
	}
	m := make(map[string]string)
	for _, l := range strings.Split(string(out), "\n")[1:] {
		if f := strings.Fields(l); len(f) >= 5 {
			m[f[0]] = f[4]
		}
	}
	return m, nil
}

// --- scenarios -------------------------------------------------------------------

// lifecycle: boot, console line, pause, resume, graceful stop, remove.
func (r *runner) lifecycle(label string, g guestFiles, extra []string) {
	var id string
	if !r.step(label+"-BOOT", func() (err error) {
		id, err = r.runVM(strings.ToLower(label)+"-gentle", g.initrd, extra)
		return err
	}) {
		return
	}
	if !r.step(label+"-CONSOLE", func() error {
		if err := r.waitConsole(id, readyLine); err != nil {
			return err
		}
		return r.wantState(id, "running")
	}) {
		r.cleanup(id)
		return
	}
	r.step(label+"-PAUSE", func() error {
		if _, err := r.ctl("pause", id); err != nil {
			return err
		}
		if err := r.wantState(id, "paused"); err != nil {
			return err
		}
		doms, err := domains()
		if err != nil {
			return err
		}
		if s := doms["hyperd-"+id]; !strings.Contains(s, "p") {
			return fmt.Errorf("xl list shows state %q for the paused domain", s)
		}
		return nil
	})
	r.step(label+"-RESUME", func() error {
		if _, err := r.ctl("resume", id); err != nil {
			return err
		}
		return r.wantState(id, "running")
	})
	r.step(label+"-GRACEFUL-STOP", func() error {
		if _, err := r.ctl("stop", "--timeout", "90s", id); err != nil {
			return err
		}
		v, err := r.inspect(id)
		if err != nil {
			return err
		}
		if v.State != "stopped" || strings.Contains(v.Reason, "forced") || strings.Contains(v.Reason, "destroyed") {
			return fmt.Errorf("after stop: %+v, want stopped without force", v)
		}
		if err := r.domainGone(id); err != nil {
			return err
		}
		fmt.Printf("=== XEN-TEST %s-GRACEFUL-STOP reason: %s\n", label, v.Reason)
		return nil
	})
	r.step(label+"-REMOVE", func() error { return r.remove(id) })
}

// stubbornAndRecovery: a guest that ignores the shutdown request
// survives a kill -9 of the driver, is recovered by a new driver process
// and is destroyed at the stop's deadline.
func (r *runner) stubbornAndRecovery(g guestFiles) {
	var id string
	if !r.step("STUBBORN-BOOT", func() (err error) {
		if id, err = r.runVM("stubborn", g.stubborn, nil); err != nil {
			return err
		}
		return r.waitConsole(id, readyLine+" stubborn")
	}) {
		r.cleanup(id)
		return
	}
	var oldPID int
	if !r.step("DRIVER-KILL", func() error {
		pids := driverPIDs()
		if len(pids) != 1 {
			return fmt.Errorf("want one hyperd-driver-xen process, found %v", pids)
		}
		oldPID = pids[0]
		if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
			return err
		}
		time.Sleep(2 * time.Second)
		doms, err := domains()
		if err != nil {
			return err
		}
		if _, ok := doms["hyperd-"+id]; !ok {
			return fmt.Errorf("domain hyperd-%s died with the driver: %v", id, doms)
		}
		return nil
	}) {
		r.cleanup(id)
		return
	}
	r.step("DRIVER-RESTARTED", func() error {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if pids := driverPIDs(); len(pids) == 1 && pids[0] != oldPID {
				if err := r.checkDrivers(); err == nil {
					return r.wantState(id, "running")
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
		// The daemon may not restart drivers; a new daemon must then
		// recover the domain through a new driver process.
		if err := r.termDaemon(); err != nil {
			return fmt.Errorf("hyperd did not restart the driver, and its SIGTERM failed: %w", err)
		}
		if err := r.startDaemon(); err != nil {
			return err
		}
		return skipError{"hyperd did not restart the killed driver within 20s; restarted hyperd instead"}
	})
	r.step("RECOVERED", func() error {
		if err := r.wantState(id, "running"); err != nil {
			return err
		}
		if pids := driverPIDs(); len(pids) != 1 || pids[0] == oldPID {
			return fmt.Errorf("driver processes %v, want one new one (old %d)", pids, oldPID)
		}
		return nil
	})
	r.step("STUBBORN-STOP-FORCED", func() error {
		const timeout = 5 * time.Second
		start := time.Now()
		if _, err := r.ctl("stop", "--timeout", timeout.String(), id); err != nil {
			return err
		}
		took := time.Since(start)
		if took < timeout {
			return fmt.Errorf("stop returned after %s, before its %s timeout", took, timeout)
		}
		if took > timeout+stopMargin {
			return fmt.Errorf("stop took %s, past its %s timeout plus %s", took, timeout, stopMargin)
		}
		v, err := r.inspect(id)
		if err != nil {
			return err
		}
		if v.State != "stopped" {
			return fmt.Errorf("after forced stop: %+v", v)
		}
		if err := r.domainGone(id); err != nil {
			return err
		}
		fmt.Printf("=== XEN-TEST STUBBORN-STOP-FORCED took %.1fs, reason: %s\n", took.Seconds(), v.Reason)
		return nil
	})
	r.step("STUBBORN-REMOVE", func() error { return r.remove(id) })
}

// goneWhileAway: a domain destroyed while no driver process runs is
// recovered by the next one as stopped, with a reason. The conformance
// suite's recover_dead check cannot do this: it ends a VM's process, and
// a Xen domain has none.
func (r *runner) goneWhileAway(g guestFiles) {
	var id string
	if !r.step("AWAY-BOOT", func() (err error) {
		if id, err = r.runVM("away", g.initrd, nil); err != nil {
			return err
		}
		return r.waitConsole(id, readyLine)
	}) {
		r.cleanup(id)
		return
	}
	r.step("AWAY-DESTROYED", func() error {
		pids := driverPIDs()
		if len(pids) != 1 {
			return fmt.Errorf("want one hyperd-driver-xen process, found %v", pids)
		}
		if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
			return err
		}
		// hyperd takes seconds to start a new driver here; xl destroy
		// returns first.
		if out, err := exec.Command("xl", "destroy", "hyperd-"+id).CombinedOutput(); err != nil {
			return fmt.Errorf("xl destroy hyperd-%s: %v: %s", id, err, out)
		}
		var v vmView
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			var err error
			if v, err = r.inspect(id); err == nil && v.State == "stopped" {
				if v.Reason == "" {
					return fmt.Errorf("recovered as stopped with no reason: %+v", v)
				}
				fmt.Printf("=== XEN-TEST AWAY-DESTROYED reason: %s\n", v.Reason)
				return nil
			}
			time.Sleep(500 * time.Millisecond)
		}
		return fmt.Errorf("30s after its domain was destroyed behind the driver's back: %+v, want stopped", v)
	})
	r.step("AWAY-REMOVE", func() error { return r.remove(id) })
}

func (r *runner) remove(id string) error {
	if _, err := r.ctl("rm", id); err != nil {
		return err
	}
	return r.domainGone(id)
}

func (r *runner) domainGone(id string) error {
	doms, err := domains()
	if err != nil {
		return err
	}
	if s, ok := doms["hyperd-"+id]; ok {
		return fmt.Errorf("domain hyperd-%s still exists, state %s", id, s)
	}
	return nil
}

// cleanup kills and removes a VM after a failed step, best effort.
func (r *runner) cleanup(id string) {
	if id == "" {
		return
	}
	_, _ = r.ctl("kill", id) // best effort: the failure is already reported
	_, _ = r.ctl("rm", id)
}

func (r *runner) nothingLeft() error {
	out, err := r.ctl("ls", "-q")
	if err != nil {
		return err
	}
	if ids := strings.TrimSpace(out); ids != "" {
		return fmt.Errorf("vms left: %s", ids)
	}
	doms, err := domains()
	if err != nil {
		return err
	}
	if len(doms) != 1 {
		return fmt.Errorf("domains left besides Domain-0: %v", doms)
	}
	return nil
}

// driverPIDs lists the running hyperd-driver-xen processes.
func driverPIDs() []int {
	ents, _ := os.ReadDir("/proc") // an empty list says enough
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		arg0, _, _ := strings.Cut(string(b), "\x00")
		if filepath.Base(arg0) == "hyperd-driver-xen" && !zombie(pid) {
			out = append(out, pid)
		}
	}
	return out
}

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) == 0 || f[0] == "Z"
}
