package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// bareRetry is how often the bare client tries QEMU's QMP socket, which
// appears once QEMU has initialised its machine. It is finer than the
// qemu driver's 20 ms so that the baseline is what QEMU allows, not what
// a poll interval adds.
const bareRetry = 2 * time.Millisecond

// guestSpec is what every path boots: the same kernel, initrd, command
// line, memory and vCPUs.
type guestSpec struct {
	kernel    string
	initrd    string
	cmdline   string
	memoryMiB uint64
}

// bareArgv is the command line the qemu driver builds for the same spec
// (plugins/qemu argv), rebuilt here because the driver's is unexported:
// same machine, CPU, devices, QMP socket and console file. Without
// paused it leaves out -S, as an operator starting the guest by hand
// would.
func bareArgv(g guestSpec, name, dir string, paused bool) []string {
	a := []string{
		"qemu-system-x86_64",
		"-name", "guest=" + name,
		"-machine", "q35,accel=tcg",
		"-cpu", "max",
		"-smp", "1",
		"-m", strconv.FormatUint(g.memoryMiB, 10),
		"-nodefaults",
		"-no-user-config",
		"-display", "none",
		"-no-reboot",
	}
	if paused {
		a = append(a, "-S")
	}
	return append(a,
		"-pidfile", filepath.Join(dir, "qemu.pid"),
		"-chardev", "socket,id=qmp,path="+filepath.Join(dir, "qmp.sock")+",server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		"-chardev", "file,id=console,path="+filepath.Join(dir, "console.log"),
		"-serial", "chardev:console",
		"-kernel", g.kernel,
		"-initrd", g.initrd,
		"-append", g.cmdline,
	)
}

// bareQEMU is the floor: QEMU spawned paused by the bench itself, its QMP
// handshake done by a minimal client, its status read, then SIGKILL and
// reap.
type bareQEMU struct {
	root  string
	guest guestSpec
	// retry is the wait between attempts to reach QMP; zero means
	// bareRetry.
	retry time.Duration
}

// proc is one QEMU the bench spawned.
type proc struct {
	cmd  *exec.Cmd
	dir  string
	done chan struct{}
}

// spawnQEMU execs QEMU in a fresh directory under root.
func spawnQEMU(root string, g guestSpec, n int64, paused bool) (*proc, error) {
	dir := filepath.Join(root, "q"+strconv.FormatInt(n, 10))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spawn qemu %d: %w", n, err)
	}
	logf, err := os.Create(filepath.Join(dir, "qemu.log"))
	if err != nil {
		return nil, fmt.Errorf("spawn qemu %d: %w", n, err)
	}
	defer logf.Close() // QEMU holds its own descriptor

	args := bareArgv(g, "bench-"+strconv.FormatInt(n, 10), dir, paused)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("spawn qemu %d: %w", n, err)
	}
	p := &proc{cmd: cmd, dir: dir, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // a killed QEMU's status says nothing new
		close(p.done)
	}()
	return p, nil
}

// kill ends the QEMU, reaps it and removes its directory.
func (p *proc) kill() error {
	_ = p.cmd.Process.Kill() // fails only when it already exited
	<-p.done
	if err := os.RemoveAll(p.dir); err != nil {
		return fmt.Errorf("remove %s: %w", p.dir, err)
	}
	return nil
}

// dial connects to the QEMU's QMP socket, retrying until it answers.
func (p *proc) dial(ctx context.Context, retry time.Duration) (*qmpConn, error) {
	sock := filepath.Join(p.dir, "qmp.sock")
	ctx, cancel := context.WithTimeout(ctx, qmpTimeout)
	defer cancel()
	for {
		m, err := dialQMP(ctx, sock)
		if err == nil {
			return m, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("qemu exited before qmp answered; see %s", filepath.Join(p.dir, "qemu.log"))
		case <-ctx.Done():
			return nil, fmt.Errorf("qmp did not answer: %w", err)
		case <-time.After(retry):
		}
	}
}

func (b *bareQEMU) cycle(ctx context.Context, n int64) (err error) {
	p, err := spawnQEMU(b.root, b.guest, n, true)
	if err != nil {
		return err
	}
	defer func() {
		if kerr := p.kill(); err == nil {
			err = kerr
		}
	}()
	retry := b.retry
	if retry == 0 {
		retry = bareRetry
	}
	m, err := p.dial(ctx, retry)
	if err != nil {
		return fmt.Errorf("bare qemu %d: %w", n, err)
	}
	defer m.close()
	raw, err := m.run("query-status")
	if err != nil {
		return fmt.Errorf("bare qemu %d: %w", n, err)
	}
	var st struct {
		Running bool   `json:"running"`
		Status  string `json:"status"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("bare qemu %d: query-status reply %q: %w", n, raw, err)
	}
	if st.Running {
		return fmt.Errorf("bare qemu %d runs its guest (%s), want it paused", n, st.Status)
	}
	return nil
}
