// Package sdk is everything a hyperd driver author needs: the Driver
// interface to implement, Serve to call from main, the error categories the
// daemon understands, and the host-side Client the daemon uses.
//
// A driver is a separate executable named hyperd-driver-NAME. The daemon
// starts it, checks a magic cookie, negotiates the contract version and
// talks gRPC to it over hashicorp/go-plugin with mutual TLS. The driver
// makes one hypervisor do one thing at a time; the daemon owns each VM's
// lifecycle and persists the opaque Handle the driver hands out, so a
// driver must keep nothing that matters only in memory: a fresh driver
// process given a Handle through Recover must find the VM again.
//
// Errors cross the wire as gRPC codes. Wrap one of ErrInvalidSpec,
// ErrWrongState, ErrUnsupported, ErrNotFound or ErrUnavailable with %w and
// the daemon sees the matching category, with the message intact.
//
// One driver binary serves several contract versions: Serve offers every
// version in ContractVersions (1 and 2) and the daemon's Launch picks the
// highest both speak; the Driver interface is the same for all of them.
// Version 2 makes events resumable: the SDK's server numbers each event
// and keeps a ring of recent ones (DefaultEventRing), so a host whose
// stream broke asks Client.EventsSince for what it missed. sdk/README.md
// is the guide to the contract for driver authors.
//
// Limitations: the console is a log file the daemon reads, not an
// interactive stream, and device hotplug, snapshots and resizing have no
// calls yet. The event ring lives in the driver process: a driver restart
// loses it, and the host learns so from an EventGap. A host stream that
// stops reading queues events in the driver without bound until the
// stream ends.
package sdk
