//go:build !linux

package drivertest

import (
	"errors"
	"fmt"
)

// proc stands for a process; outside Linux the suite cannot find or
// identify processes, so every leftover check finds nothing.
type proc struct {
	pid   int
	start uint64
	what  string
}

func procOf(int, string) (proc, bool) { return proc{}, false }

func (p proc) alive() bool { return false }

func (p proc) String() string { return fmt.Sprintf("%s pid %d", p.what, p.pid) }

func (p proc) kill() error { return errors.New("killing a process by identity needs Linux pidfds") }

func procsUnder(string, string) []proc { return nil }
