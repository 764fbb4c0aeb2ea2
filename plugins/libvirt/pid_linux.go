package libvirt

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
