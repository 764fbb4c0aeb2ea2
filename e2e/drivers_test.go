package e2e

import (
	"testing"
)

// driverCase is one driver the end-to-end lifecycle runs against.
type driverCase struct {
	name string
	// need skips the test when the driver's backend is truly absent,
	// saying what to install. CI installs every backend.
	need func(t *testing.T)
	// leftovers lists what the driver left running or defined for the
	// daemon d: processes, domains. It must be empty after every test.
	leftovers func(d *daemon) []string
}

var driverCases = []driverCase{
	{name: "qemu", need: needQEMU, leftovers: qemuLeftovers},
}

func qemuLeftovers(d *daemon) []string {
	var out []string
	for _, pid := range qemuPIDs(d.stateDir) {
		out = append(out, "qemu pid "+itoa(pid))
	}
	return out
}
