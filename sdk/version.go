package sdk

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Contract versions this package speaks. A version is a whole gRPC
// service, hyperd.driver.vN.Driver; go-plugin negotiates the highest one
// both the daemon and the driver speak when the driver starts.
const (
	// ContractVersion1 is the first contract: events are a live stream
	// only, lost when the stream breaks.
	ContractVersion1 = 1
	// ContractVersion2 adds resumable events: each event carries a
	// sequence number, and the driver keeps a ring of recent events for a
	// host that reconnects (see Client.EventsSince).
	ContractVersion2 = 2

	// ContractVersion is the newest contract version this package
	// speaks. What a given driver speaks is negotiated: ask
	// Client.ContractVersion.
	ContractVersion = ContractVersion2
)

// ContractVersions returns every contract version this package speaks,
// oldest first. Serve offers them all unless WithContractVersions narrows
// the list, and Launch accepts any of them.
func ContractVersions() []int {
	return []int{ContractVersion1, ContractVersion2}
}

// protocolVersionsEnv is where go-plugin's host side lists the versions it
// speaks for the driver, as comma-separated integers.
const protocolVersionsEnv = "PLUGIN_PROTOCOL_VERSIONS"

// VersionMismatchError says that a driver and the daemon have no contract
// version in common. Serve reports it on the driver's stderr and exits;
// Launch then quotes it.
type VersionMismatchError struct {
	// Driver lists the driver's versions, oldest first.
	Driver []int
	// Host lists the daemon's versions, oldest first.
	Host []int
}

// Error names both sides' versions.
func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("driver speaks contract versions %v, hyperd speaks %v", e.Driver, e.Host)
}

// Unwrap makes a mismatch match ErrUnsupported.
func (e *VersionMismatchError) Unwrap() error { return ErrUnsupported }

// hostVersions reads the versions the launching host speaks from the
// environment go-plugin sets. ok is false when the variable is absent (a
// binary run by hand, or a host older than go-plugin's version
// negotiation).
func hostVersions() (vs []int, ok bool, err error) {
	raw, ok := os.LookupEnv(protocolVersionsEnv)
	if !ok || raw == "" {
		return nil, false, nil
	}
	for _, f := range strings.Split(raw, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, true, fmt.Errorf("%s=%q: %w", protocolVersionsEnv, raw, err)
		}
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return slices.Compact(vs), true, nil
}

// overlap reports whether a and b share a version.
func overlap(a, b []int) bool {
	for _, v := range a {
		if slices.Contains(b, v) {
			return true
		}
	}
	return false
}
