package main

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
	"time"

	"golang.org/x/sys/unix"
)

// errGone: the process a handle names has ended, or its PID now belongs
// to another process.
var errGone = errors.New("process gone")

// process is a UML kernel process held by a pidfd, which names the
// process itself: a signal through it never reaches a later process that
// took the PID over. UML runs in its own process group, which holds the
// host processes of the guest's address spaces too.
type process struct {
	pid       int
	startTime uint64

	mu    sync.Mutex
	pidfd int // -1 once closed
}

// openProcess holds pid if it is the process that started at startTime
// with wantArg on its command line, and fails with errGone otherwise. The
// pidfd is opened before the checks, so a PID reused in between shows as
// another start time.
func openProcess(pid int, startTime uint64, wantArg string) (*process, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil, fmt.Errorf("pid %d: %w", pid, errGone)
	}
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	p := &process{pid: pid, startTime: startTime, pidfd: fd}
	st, err := procStartTime(pid)
	if err != nil || st != startTime {
		p.close()
		return nil, fmt.Errorf("pid %d started at tick %d, not %d: %w", pid, st, startTime, errGone)
	}
	args, err := procCmdline(pid)
	if err != nil || !slices.Contains(args, wantArg) {
		p.close()
		return nil, fmt.Errorf("pid %d does not run with %q: %w", pid, wantArg, errGone)
	}
	return p, nil
}

// openChild holds a process this driver just started and has not reaped,
// whose PID therefore cannot have been reused.
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

// killGroup sends SIGKILL to the process and then to its process group,
// where UML's helper processes live. The process is checked through its
// pidfd first, so the group's number still names UML's group.
func (p *process) killGroup() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd < 0 {
		return nil
	}
	err := unix.PidfdSendSignal(p.pidfd, syscall.SIGKILL, nil, 0)
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kill pid %d: %w", p.pid, err)
	}
	if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill process group %d: %w", p.pid, err)
	}
	return nil
}

// groupGone reports whether no process of the group is left.
func groupGone(pgid int) bool {
	return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

// waitExit blocks until the process ends or cancel, an eventfd, becomes
// readable; exited says which. It serves processes that are not this
// driver's children, which it cannot wait for.
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
		return fds[0].Revents != 0, nil
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

// procStartTime reads field 22 of /proc/PID/stat, counting from the last
// ')' since the command name may hold spaces and parentheses.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	i := bytes.LastIndexByte(b, ')')
	fields := strings.Fields(string(b[i+1:]))
	if i < 0 || len(fields) < 20 {
		return 0, fmt.Errorf("parse stat of pid %d: too few fields", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

func procCmdline(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, fmt.Errorf("read cmdline of pid %d: %w", pid, err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), nil
}

// newCanceler returns an eventfd for waitExit and a function that fires
// it once.
func newCanceler() (fd int, fire func(), err error) {
	fd, err = unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return -1, nil, fmt.Errorf("eventfd: %w", err)
	}
	var once sync.Once
	fire = func() {
		once.Do(func() {
			_, _ = unix.Write(fd, []byte{1, 0, 0, 0, 0, 0, 0, 0}) // cannot fail short of overflow
		})
	}
	return fd, fire, nil
}

// killStragglers kills what is left of a UML whose kernel process died
// while no driver watched it: its helper processes, which outlive it in
// its process group. The group's number may since name another group,
// so only members running with identityArg are killed, each through a
// pidfd; it returns once they have all exited, or after wait.
func killStragglers(pgid int, identityArg string, wait time.Duration) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return // nothing to find stragglers with; they hold no guest state
	}
	var fds []unix.PollFd
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || procGroup(pid) != pgid {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // it ended meanwhile
		}
		// Checked after the pidfd is open, so the signal reaches the
		// process that was checked.
		if args, err := procCmdline(pid); err != nil || !slices.Contains(args, identityArg) {
			unix.Close(fd)
			continue
		}
		_ = unix.PidfdSendSignal(fd, syscall.SIGKILL, nil, 0) // ESRCH: already gone
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	defer func() {
		for _, f := range fds {
			unix.Close(int(f.Fd))
		}
	}()
	deadline := time.Now().Add(wait)
	for _, f := range fds {
		for time.Now().Before(deadline) {
			n, err := unix.Poll([]unix.PollFd{f}, int(time.Until(deadline).Milliseconds())+1)
			if n > 0 || (err != nil && !errors.Is(err, unix.EINTR)) {
				break
			}
		}
	}
}

// procGroup returns field 5 of /proc/PID/stat, the process group, or -1.
func procGroup(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	i := bytes.LastIndexByte(b, ')')
	fields := strings.Fields(string(b[i+1:]))
	if i < 0 || len(fields) < 3 {
		return -1
	}
	g, err := strconv.Atoi(fields[2])
	if err != nil {
		return -1
	}
	return g
}
