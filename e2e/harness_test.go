package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries returns the directory holding hyperd, hyperctl and
// plugins/hyperd-driver-qemu.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if d := os.Getenv("HYPERD_BIN_DIR"); d != "" {
			binDir = d
			return
		}
		dir, err := os.MkdirTemp("", "hyperd-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		pkgs := map[string]string{
			"hyperd":   "../cmd/hyperd",
			"hyperctl": "../cmd/hyperctl",
		}
		for _, dc := range driverCases {
			pkgs["plugins/hyperd-driver-"+dc.name] = "../plugins/" + dc.name + "/cmd/hyperd-driver-" + dc.name
		}
		for out, pkg := range pkgs {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, out), pkg)
			if b, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func needQEMU(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not found: install Debian's qemu-system-x86 (make deps)")
	}
}

// daemon is one hyperd under test.
type daemon struct {
	t         *testing.T
	bin       string
	stateDir  string
	pluginDir string
	socket    string
	cmd       *exec.Cmd
	log       *bytes.Buffer
	exited    chan struct{}
	// args are extra hyperd arguments, such as --config.
	args []string
}

// newDaemon prepares a state dir and a plugin dir holding the qemu driver
// and whatever extra drivers are given (name to script body).
func newDaemon(t *testing.T, extra map[string]string) *daemon {
	t.Helper()
	bin := binaries(t)
	// Unix socket paths are short; keep the whole tree under a short root.
	root, err := os.MkdirTemp("", "hyd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	d := &daemon{
		t:         t,
		bin:       bin,
		stateDir:  filepath.Join(root, "state"),
		pluginDir: filepath.Join(root, "plugins"),
		socket:    filepath.Join(root, "api.sock"),
	}
	if err := os.MkdirAll(d.pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dc := range driverCases {
		name := "hyperd-driver-" + dc.name
		if err := os.Symlink(filepath.Join(bin, "plugins", name), filepath.Join(d.pluginDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range extra {
		p := filepath.Join(d.pluginDir, "hyperd-driver-"+name)
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(d.cleanup)
	return d
}

func (d *daemon) start() {
	d.t.Helper()
	d.log = &bytes.Buffer{}
	args := append([]string{"--state-dir", d.stateDir, "--socket", d.socket, "--plugin-dir", d.pluginDir,
		"--log-level", "debug"}, d.args...)
	d.cmd = exec.Command(filepath.Join(d.bin, "hyperd"), args...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.exited = make(chan struct{})
	go func() {
		_ = d.cmd.Wait() // the exit is checked through d.exited and ProcessState
		close(d.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, _, err := d.ctl("drivers"); err == nil {
			return
		}
		select {
		case <-d.exited:
			d.t.Fatalf("hyperd exited at start:\n%s", d.log)
		case <-time.After(100 * time.Millisecond):
		}
	}
	d.t.Fatalf("hyperd did not answer within 30s:\n%s", d.log)
}

// term sends SIGTERM and waits for a clean exit.
func (d *daemon) term() {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		d.t.Fatalf("hyperd did not exit on SIGTERM:\n%s", d.log)
	}
	if !d.cmd.ProcessState.Success() {
		d.t.Fatalf("hyperd exited with %v on SIGTERM:\n%s", d.cmd.ProcessState, d.log)
	}
}

// cleanup kills every QEMU started under this daemon's state dir and the
// daemon itself, so a failed test leaves nothing running.
func (d *daemon) cleanup() {
	if d.cmd != nil && d.cmd.ProcessState == nil {
		_ = d.cmd.Process.Kill() // already failing or done; nothing to report
		<-d.exited
	}
	for _, pid := range qemuPIDs(d.stateDir) {
		_ = syscall.Kill(pid, syscall.SIGKILL) // our own QEMU, found by its state dir
	}
	if d.t.Failed() && d.log != nil {
		d.t.Logf("hyperd log:\n%s", d.log)
	}
}

// ctl runs hyperctl against the daemon.
func (d *daemon) ctl(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(d.bin, "hyperctl"), append([]string{"--socket", d.socket}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// mustCtl runs hyperctl and fails the test on error.
func (d *daemon) mustCtl(args ...string) string {
	d.t.Helper()
	out, errOut, err := d.ctl(args...)
	if err != nil {
		d.t.Fatalf("hyperctl %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

type vmView struct {
	ID        string          `json:"id"`
	State     string          `json:"state"`
	Reason    string          `json:"reason"`
	LastError string          `json:"last_error"`
	PID       json.RawMessage `json:"pid"`
	UpdatedAt string          `json:"updated_at"`
}

// updatedAt returns when the VM's record last changed, or the zero time.
func (v vmView) updatedAt() time.Time {
	t, err := time.Parse(time.RFC3339Nano, v.UpdatedAt)
	if err != nil {
		return time.Time{}
	}
	return t
}

// pid returns the VM's process id, or zero. protojson writes an int64 as
// a string and leaves out a zero.
func (v vmView) pid() int {
	n, err := strconv.Atoi(strings.Trim(string(v.PID), `"`))
	if err != nil {
		return 0
	}
	return n
}

func (d *daemon) inspect(id string) vmView {
	d.t.Helper()
	var v vmView
	out := d.mustCtl("inspect", "-o", "json", id)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		d.t.Fatalf("inspect output is not JSON: %v\n%s", err, out)
	}
	return v
}

// waitConsole waits until the VM's console, read through hyperctl logs,
// holds line.
func (d *daemon) waitConsole(id, line string, within time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(within)
	var out string
	for time.Now().Before(deadline) {
		out, _, _ = d.ctl("logs", id)
		if strings.Contains(out, line) {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	d.t.Fatalf("vm %s never printed %q within %s; console:\n%s", id, line, within, out)
}

// qemuPIDs lists the QEMU processes whose command line mentions dir.
func qemuPIDs(dir string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
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
		args := strings.Split(string(b), "\x00")
		if strings.Contains(filepath.Base(args[0]), "qemu-system") && strings.Contains(string(b), dir) {
			out = append(out, pid)
		}
	}
	return out
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie has exited; only its parent's wait is missing.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// kill9 kills the daemon with SIGKILL, as a crash would, and waits for it.
func (d *daemon) kill9() {
	d.t.Helper()
	if err := d.cmd.Process.Kill(); err != nil {
		d.t.Fatal(err)
	}
	<-d.exited
}

// driverPID returns the pid of the daemon's driver process named name,
// or zero when there is none.
func (d *daemon) driverPID(name string) int {
	want := "hyperd-driver-" + name
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(d.cmd.Process.Pid) || f[0] == "Z" {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && filepath.Base(strings.Split(string(cmdline), "\x00")[0]) == want {
			return pid
		}
	}
	return 0
}

// eventually polls cond until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
