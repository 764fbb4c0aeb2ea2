package qemu

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// errGone: the process a handle names no longer exists, or its PID now
// belongs to another process.
var errGone = errors.New("process gone")

// process is one QEMU process, held by a pidfd. A pidfd names the process
// itself, not its PID, so a signal sent through it can never reach a
// process that took the PID over after QEMU ended.
type process struct {
	pid       int
	startTime uint64

	mu    sync.Mutex
	pidfd int // -1 once closed
}

// openChild holds a process this driver just started and has not waited
// for: its PID cannot be reused before the wait, so no identity check is
// needed.
func openChild(pid int) (*process, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	st, err := procStartTime(pid)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &process{pid: pid, startTime: st, pidfd: fd}, nil
}

// openProcess holds the process with pid when it is the one that started
// at startTime and has wantArg among its arguments; otherwise it returns
// errGone. The pidfd is opened before the checks: had the PID been
// reused between the two, the start time read afterwards would differ.
func openProcess(pid int, startTime uint64, wantArg string) (*process, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil, fmt.Errorf("pid %d: %w", pid, errGone)
	}
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	p := &process{pid: pid, startTime: startTime, pidfd: fd}
	if err := p.verify(wantArg); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *process) verify(wantArg string) error {
	st, err := procStartTime(p.pid)
	if err != nil {
		return fmt.Errorf("pid %d: %w", p.pid, errGone)
	}
	if st != p.startTime {
		return fmt.Errorf("pid %d started at tick %d, not %d (pid reused): %w", p.pid, st, p.startTime, errGone)
	}
	args, err := procCmdline(p.pid)
	if err != nil {
		return fmt.Errorf("pid %d: %w", p.pid, errGone)
	}
	if !slices.Contains(args, wantArg) {
		return fmt.Errorf("pid %d does not run with %q: %w", p.pid, wantArg, errGone)
	}
	return nil
}

// signal sends sig through the pidfd. A process that has already ended
// is not an error.
func (p *process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd < 0 {
		return nil
	}
	err := unix.PidfdSendSignal(p.pidfd, sig, nil, 0)
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal %s to pid %d: %w", sig, p.pid, err)
	}
	return nil
}

// waitExit blocks until the process ends, or until cancel becomes
// readable (then it returns false). It is for processes that are not our
// children: a pidfd turns readable when its process exits, reaped or not.
func (p *process) waitExit(cancel int) (exited bool, err error) {
	p.mu.Lock()
	fd := p.pidfd
	p.mu.Unlock()
	if fd < 0 {
		return true, nil
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(cancel), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("poll pidfd of pid %d: %w", p.pid, err)
		}
		if fds[0].Revents != 0 {
			return true, nil
		}
		if fds[1].Revents != 0 {
			return false, nil
		}
	}
}

func (p *process) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
}

// procStartTime reads field 22 of /proc/PID/stat: when the process
// started, in clock ticks since boot.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	return parseStartTime(b)
}

// parseStartTime takes field 22 from a /proc/PID/stat line. The command
// name, field 2, is in parentheses and may itself hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStartTime(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc stat: no ')'")
	}
	fields := strings.Fields(string(stat[i+1:]))
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 {
		return 0, fmt.Errorf("parse /proc stat: %d fields after the name, want at least 20", len(fields))
	}
	v, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc stat start time: %w", err)
	}
	return v, nil
}

func procCmdline(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, fmt.Errorf("read cmdline of pid %d: %w", pid, err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), nil
}

// describeExit says how a child ended, in the words of an exit reason.
func describeExit(ps *os.ProcessState) string {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	switch {
	case !ok:
		return ps.String()
	case ws.Signaled():
		return fmt.Sprintf("killed by signal %d", int(ws.Signal()))
	default:
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	}
}

// newCanceler returns an eventfd that waitExit watches to give up, and a
// function that fires it.
func newCanceler() (fd int, fire func(), err error) {
	fd, err = unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return -1, nil, fmt.Errorf("eventfd: %w", err)
	}
	var once sync.Once
	fire = func() {
		once.Do(func() {
			var one = []byte{1, 0, 0, 0, 0, 0, 0, 0}
			_, _ = unix.Write(fd, one) // an eventfd write of 1 cannot fail short of overflow
		})
	}
	return fd, fire, nil
}
