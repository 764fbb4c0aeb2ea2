package sdk

import (
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
)

// parentPollInterval is how often a driver checks that the daemon which
// started it still lives. It bounds how long an orphaned driver keeps a
// VM's control connection (QEMU's QMP serves one client) from the driver
// a new daemon starts.
const parentPollInterval = 200 * time.Millisecond

// exitWithParent ends the driver process once the daemon that started it
// is gone. go-plugin leaves a plugin running when its host is killed with
// SIGKILL; the VMs must outlive the daemon, its drivers must not.
func exitWithParent(log hclog.Logger) {
	ppid := os.Getppid()
	if ppid <= 1 {
		return // started by init or a container runtime: no daemon to follow
	}
	go func() {
		t := time.NewTicker(parentPollInterval)
		defer t.Stop()
		for range t.C {
			if os.Getppid() != ppid {
				log.Warn("daemon gone; driver exiting", "daemon_pid", ppid)
				os.Exit(0)
			}
		}
	}()
}
