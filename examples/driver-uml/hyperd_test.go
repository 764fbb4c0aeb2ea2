package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDirEnv names a directory holding built hyperd and hyperctl binaries,
// as `make test` passes it.
const binDirEnv = "HYPERD_BIN_DIR"

// hyperdBinaries returns a directory with hyperd and hyperctl:
// $HYPERD_BIN_DIR, the repository's bin/ when `make build` filled it, or
// a temporary one this test builds them into.
func hyperdBinaries(t *testing.T) string {
	t.Helper()
	has := func(dir string) bool {
		for _, b := range []string{"hyperd", "hyperctl"} {
			if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv(binDirEnv); dir != "" && has(dir) {
		return dir
	}
	if dir, err := filepath.Abs(filepath.Join(repoRoot, "bin")); err == nil && has(dir) {
		return dir
	}
	dir := t.TempDir()
	for _, b := range []string{"hyperd", "hyperctl"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b), "./cmd/"+b)
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b, err, out)
		}
	}
	return dir
}

// lockedBuffer collects hyperd's output from its copying goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWithHyperd shows the driver working with hyperd as an operator
// would use it: dropped into a plugin directory, discovered, and a VM
// booted, stopped and removed with hyperctl.
func TestWithHyperd(t *testing.T) {
	needUML(t)
	g := guest(t)
	bin := hyperdBinaries(t)

	// Unix socket paths are short: keep the tree under a short root.
	root, err := os.MkdirTemp("", "hyd-uml-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	plugins := filepath.Join(root, "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(driverBinary(t), filepath.Join(plugins, "hyperd-driver-uml")); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(root, "api.sock")
	stateDir := filepath.Join(root, "state")

	log := &lockedBuffer{}
	daemon := exec.Command(filepath.Join(bin, "hyperd"),
		"--state-dir", stateDir, "--socket", socket, "--plugin-dir", plugins, "--log-level", "debug")
	daemon.Stdout, daemon.Stderr = log, log
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = daemon.Wait() // the exit is checked through exited and ProcessState
		close(exited)
	}()
	t.Cleanup(func() {
		if daemon.ProcessState == nil {
			_ = daemon.Process.Kill() // the test failed before its SIGTERM
			<-exited
		}
		killUMLsUnder(stateDir)
		if t.Failed() {
			t.Logf("hyperd log:\n%s", log)
		}
	})

	ctl := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "hyperctl"), append([]string{"--socket", socket}, args...)...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			return out.String(), &ctlError{args: args, err: err, stderr: errOut.String()}
		}
		return out.String(), nil
	}
	mustCtl := func(args ...string) string {
		t.Helper()
		out, err := ctl(args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	// Discovery.
	var drivers struct {
		Drivers []struct {
			Name            string `json:"name"`
			Healthy         bool   `json:"healthy"`
			Error           string `json:"error"`
			ContractVersion int    `json:"contract_version"`
		} `json:"drivers"`
	}
	waitFor(t, 30*time.Second, "hyperd to answer", func() bool {
		out, err := ctl("drivers", "-o", "json")
		return err == nil && json.Unmarshal([]byte(out), &drivers) == nil
	})
	found := false
	for _, d := range drivers.Drivers {
		if d.Name != driverName {
			continue
		}
		found = true
		if !d.Healthy || d.ContractVersion != 2 {
			t.Fatalf("uml driver: %+v, want healthy over contract version 2", d)
		}
	}
	if !found {
		t.Fatalf("hyperd did not discover the uml driver: %+v", drivers)
	}
	t.Logf("hyperctl drivers:\n%s", mustCtl("drivers"))

	// Boot.
	id := strings.TrimSpace(mustCtl("run", "--name", "uml-demo", "--driver", driverName,
		"--memory", "128M", "--cpus", "1", "--kernel", defaultKernel,
		"--initrd", filepath.Join(g, "initrd.img"), "--cmdline", "console=ttyS0 panic=-1 quiet"))
	waitFor(t, 90*time.Second, "the guest's ready line", func() bool {
		out, err := ctl("logs", id)
		return err == nil && strings.Contains(out, "HYPERD-GUEST-READY")
	})
	if st := vmState(t, mustCtl("inspect", "-o", "json", id)); st != "running" {
		t.Fatalf("after boot the vm is %s, want running", st)
	}

	// Stop: the test guest ignores UML's Ctrl-Alt-Del, so the driver
	// halts it once the timeout passes.
	mustCtl("stop", "--timeout", "2s", id)
	if st := vmState(t, mustCtl("inspect", "-o", "json", id)); st != "stopped" {
		t.Fatalf("after stop the vm is %s, want stopped", st)
	}

	// Remove.
	mustCtl("rm", id)
	if out := strings.TrimSpace(mustCtl("ls", "-q")); out != "" {
		t.Fatalf("after rm, hyperctl ls -q prints %q, want nothing", out)
	}
	if left := umlsUnder(stateDir); len(left) > 0 {
		t.Fatalf("uml processes left under %s: %v", stateDir, left)
	}

	if err := daemon.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatal("hyperd did not exit on SIGTERM")
	}
}

type ctlError struct {
	args   []string
	err    error
	stderr string
}

func (e *ctlError) Error() string {
	return "hyperctl " + strings.Join(e.args, " ") + ": " + e.err.Error() + ": " + e.stderr
}

func vmState(t *testing.T, inspectJSON string) string {
	t.Helper()
	var v struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(inspectJSON), &v); err != nil {
		t.Fatalf("inspect -o json: %v\n%s", err, inspectJSON)
	}
	return v.State
}

func waitFor(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// umlsUnder lists the processes whose command line names dir: the UML
// processes of VMs whose work directories lie there.
func umlsUnder(dir string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc") // without /proc there is nothing to find
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(dir+"/")) {
			continue
		}
		var pid int
		if err := json.Unmarshal([]byte(e.Name()), &pid); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// killUMLsUnder kills what a failed test left running under dir.
func killUMLsUnder(dir string) {
	for _, pid := range umlsUnder(dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL) // our own UML, found by its work dir
	}
}
