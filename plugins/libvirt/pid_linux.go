package libvirt

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hyperd/hyperd/sdk"
	"golang.org/x/sys/unix"
)

// pidDir is where libvirtd's system QEMU driver writes NAME.pid.
const pidDir = "/run/libvirt/qemu"

// qemuPID returns the pid of the QEMU process running the domain, or
// zero when none is found on this host. The pid file is only a hint: a
// pid counts only when its command line carries the domain's UUID
// ("-uuid UUID"), which no reused pid would.
func qemuPID(name, uuid string) int {
	if b, err := os.ReadFile(filepath.Join(pidDir, name+".pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && runsUUID(pid, uuid) {
			return pid
		}
	}
	// Session URIs and other layouts keep their pid files elsewhere.
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && runsUUID(pid, uuid) {
			return pid
		}
	}
	return 0
}

// runsUUID reports whether pid is a QEMU with -uuid uuid in its argv.
func runsUUID(pid int, uuid string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := bytes.Split(b, []byte{0})
	if len(args) == 0 || !strings.Contains(filepath.Base(string(args[0])), "qemu") {
		return false
	}
	for i := 0; i+1 < len(args); i++ {
		if string(args[i]) == "-uuid" && string(args[i+1]) == uuid {
			return true
		}
	}
	return false
}

// Timings of watchQEMU.
const (
	// pidLookupEvery and pidLookupFor bound the search for the QEMU
	// process of a domain that is still being started.
	pidLookupEvery = 100 * time.Millisecond
	pidLookupFor   = 60 * time.Second
	// eventGrace is how long an exit seen through the pidfd waits for
	// libvirt's own event, whose reason is better ("shutdown",
	// "destroyed"), before it is reported as a death.
	eventGrace = 300 * time.Millisecond
)

// reasonDied is the exit reason of a QEMU that ended without libvirt
// saying why in time: something killed it, or it crashed.
const reasonDied = "qemu process killed or crashed"

// watchQEMU follows the domain's QEMU process through a pidfd, until the
// process ends or gone closes. libvirtd notices a QEMU killed under it
// only after a second or more; this reports it at once.
func (d *Driver) watchQEMU(h handle, gone <-chan struct{}) {
	var pid int
	for deadline := time.Now().Add(pidLookupFor); pid == 0; {
		if pid = qemuPID(h.Domain, h.UUID); pid != 0 {
			break
		}
		if time.Now().After(deadline) {
			return
		}
		select {
		case <-gone:
			return
		case <-time.After(pidLookupEvery):
		}
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // already gone: libvirt's event tells
	}
	defer unix.Close(fd)
	// The pid could have been reused between the lookup and the open.
	if !runsUUID(pid, h.UUID) {
		return
	}
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(pidLookupEvery/time.Millisecond))
		if err != nil && err != unix.EINTR {
			return
		}
		if n > 0 {
			break
		}
		select {
		case <-gone:
			return
		default:
		}
	}
	select {
	case <-gone:
		return // libvirt told first
	case <-time.After(eventGrace):
	}
	if d.endExpected(h.UUID) {
		return // a stop or kill of ours: libvirt's event says which
	}
	if vmID, ok := d.stopped(h.UUID, reasonDied); ok {
		d.log.Info("vm event", "vm_id", vmID, "event", sdk.EventExited.String(), "reason", reasonDied, "pid", pid)
		d.hub.Publish(sdk.Event{VMID: vmID, Type: sdk.EventExited, Reason: reasonDied, Time: time.Now()})
	}
}

// localURI reports whether uri names a libvirtd on this host, whose QEMU
// processes this driver can see.
func localURI(uri string) bool {
	return strings.HasPrefix(uri, "qemu:///")
}
