package drivertest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// proc names one process by its PID and its start time, so that a PID
// reused by an unrelated process is never mistaken for it.
type proc struct {
	pid   int
	start uint64 // field 22 of /proc/PID/stat
	// what says whose it is, such as "driver" or "vm lifecycle-1".
	what string
}

// procOf returns the process now holding pid, or false when there is
// none or it is a zombie (dead, only waiting to be reaped).
func procOf(pid int, what string) (proc, bool) {
	state, start, err := procStat(pid)
	if err != nil || state == 'Z' || state == 'X' {
		return proc{}, false
	}
	return proc{pid: pid, start: start, what: what}, true
}

// alive reports whether p still runs: the same PID with the same start
// time, not a zombie.
func (p proc) alive() bool {
	q, ok := procOf(p.pid, p.what)
	return ok && q.start == p.start
}

// String names the process with its command line.
func (p proc) String() string {
	return fmt.Sprintf("%s pid %d (%s)", p.what, p.pid, cmdline(p.pid))
}

// kill sends SIGKILL through a pidfd, checking the start time after the
// pidfd is open so that the signal cannot reach a PID's next owner.
func (p proc) kill() error {
	fd, err := unix.PidfdOpen(p.pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return fmt.Errorf("pidfd_open %d: %w", p.pid, err)
	}
	defer unix.Close(fd)
	if !p.alive() {
		return nil
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kill %d: %w", p.pid, err)
	}
	return nil
}

// procStat returns a process's state letter and start time.
func procStat(pid int) (byte, uint64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, err
	}
	// The command name, in parentheses, may hold spaces and parentheses;
	// the fields after the last ')' are plain.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat start time: %w", pid, err)
	}
	return f[0][0], start, nil
}

func cmdline(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return "gone"
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// procsUnder returns the live processes, other than this one, whose
// command line names a path under dir or whose working directory is
// under it, each described as what.
func procsUnder(dir, what string) []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")) // unreadable: not ours
		if !strings.Contains(cmdline(pid), dir) && !within(cwd, dir) {
			continue
		}
		if p, ok := procOf(pid, what); ok {
			out = append(out, p)
		}
	}
	return out
}

func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+string(filepath.Separator))
}
