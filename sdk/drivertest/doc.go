// Package drivertest is the conformance suite for hyperd drivers: a set of
// named checks that any driver passes or fails, whatever its hypervisor.
//
// A driver author runs it from the driver's own tests with one call:
//
//	func TestConformance(t *testing.T) {
//		drivertest.Run(t, drivertest.Config{
//			Binary: bin, // a built hyperd-driver-NAME
//			Guest:  drivertest.Guest{Kernel: k, Initrd: i, StubbornInitrd: s},
//		})
//	}
//
// Each check becomes a subtest. An operator runs the same checks against
// a built binary with `hyperctl drivers check PATH`, which calls Check and
// prints its Report. The checks are written against the small T interface,
// which *testing.T satisfies and Check implements, so both ways run the
// same code.
//
// The suite launches the driver itself, as the daemon would, so that it
// can kill the driver process mid-life and have a fresh one Recover the
// VM from its handle. Every VM gets its own work directory under one
// suite directory; a process whose command line or working directory
// lies there, or whose PID a driver reported, and that outlives its check
// is a leftover and fails the check that made it.
//
// What is checked, one check per name in Checks:
//
//   - info: the handshake and Info are well formed: a name matching the
//     binary's hyperd-driver-NAME, a version, the contract version, known
//     capabilities, option schemas with valid types and defaults.
//   - fingerprint: Fingerprint answers within its deadline and says
//     healthy, or why not.
//   - undeclared_capabilities: Pause, Resume and Recover, when not
//     declared, fail with sdk.ErrUnsupported rather than succeed.
//   - invalid_spec: an empty name, zero memory, zero vCPUs, no kernel, a
//     kernel that does not exist and a comma in a path each fail Create
//     with sdk.ErrInvalidSpec naming the field, and leave nothing behind.
//   - garbled_handle: every call given a garbled or empty handle fails
//     with sdk.ErrInvalidSpec or sdk.ErrNotFound, and the driver survives.
//   - lifecycle: create, start, status running, the ready line on the
//     console, pause and resume, a graceful stop, a restart, destroy.
//   - stop_past_deadline: a guest that ignores the power button is forced
//     off, and Stop returns within its timeout and a margin.
//   - kill_running, kill_starting and kill_paused: Kill from each live
//     state, a Start still in flight included.
//   - repeated_calls: stop twice, kill a stopped VM, destroy twice, and
//     destroy a VM the driver process never saw.
//   - events_exit: Events reports an exit with a reason after a stop and
//     after a kill.
//   - recover_running: the driver process is killed with SIGKILL while the
//     VM runs; a fresh one recovers it as running and stops it.
//   - recover_dead: the VM's process dies while no driver runs; a fresh
//     driver recovers it as stopped with a reason, not an error.
//   - no_leftovers: after all the others, no process of the suite's
//     drivers or VMs is left.
//
// Limitations: the suite does not yet kill a VM while Start is still in
// progress, nor test concurrent calls on one VM, the console stream,
// device hotplug, snapshots or resizing (v1 has no calls for them), nor
// contract versions other than the one this package's sdk speaks. A
// capability other than pause and recover is not called, so declaring
// guest_channel, say, is taken on trust. Leftover processes are found by
// their command line, working directory or reported PID: a driver whose
// VM process names none of its work directory and reports no PID escapes
// the leftover checks. It runs on Linux only, reading /proc.
package drivertest
