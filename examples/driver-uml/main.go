// Command hyperd-driver-uml is a hyperd driver for User Mode Linux, written
// from outside the hyperd module: it imports only hyperd's sdk package. It
// runs each VM as a linux.uml process (Debian's user-mode-linux) and
// controls it through uml_mconsole (Debian's uml-utilities).
//
// Install it as hyperd-driver-uml in one of hyperd's plugin directories;
// the daemon starts it. Run by hand, it says so and exits.
//
// What UML can and cannot do, as declared in Info:
//
//   - pause: yes, through the mconsole's stop and go. A paused UML answers
//     only its mconsole.
//   - console_log: yes, the guest's consoles and serial lines all write to
//     console.log in the VM's work directory.
//   - recover: yes. The handle holds the UML process's PID, its start time
//     and the umid; a fresh driver process finds it again, checks that the
//     PID still names that process, and watches it through a pidfd.
//   - graceful_shutdown: no. UML has no ACPI. Stop asks the guest with the
//     mconsole's cad (Ctrl-Alt-Del), which a guest whose init handles it
//     (sysvinit, systemd, busybox init) turns into a power-off; hyperd's
//     test guest, whose /init is a shell script, ignores it. Past the
//     timeout Stop halts the UML kernel through the mconsole and, if it is
//     still there, kills its process group. So Stop waits its whole
//     timeout for a guest that ignores cad: give it a short one.
//   - guest channel, hotplug, snapshots, resizing: no.
//
// The spec's kernel is the UML kernel to run, an executable such as
// /usr/bin/linux.uml, not a bzImage: UML is a Linux kernel built as a
// program. The initrd is passed as initrd=, disks as ubdN (raw images
// only), and UML gets one vCPU.
//
// Limitations: a VM whose process ended while no driver watched it
// reports "uml process gone while the driver was away" rather than its
// exit status; a recovered process's exit status is unknown (its parent
// reaps it). The paused state is kept in a file in the work directory, so
// a driver that dies between the mconsole's stop and writing that file
// reports a paused VM as running. No network interfaces.
package main

import "github.com/hyperd/hyperd/sdk"

func main() {
	sdk.Serve(newDriver(sdk.Logger().Named(driverName)))
}
