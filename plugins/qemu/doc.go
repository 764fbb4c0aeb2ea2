// Package qemu is hyperd's QEMU driver: it runs each VM as a
// qemu-system-x86_64 process and controls it over QMP.
//
// A VM's handle is JSON holding everything a fresh driver process needs to
// find the VM again: the spec, the work directory, the QMP socket path,
// and QEMU's PID with its start time from /proc/PID/stat. A PID alone is
// never trusted: before a process is signalled or reattached, its start
// time and its QMP socket argument must match the handle, and signals go
// through a pidfd, which cannot outlive its process into a reused PID.
//
// QEMU starts paused (-S) in its own process group, with its output in
// the work directory's qemu.log and the guest's serial console in
// console.log; the driver connects QMP, subscribes to events and only
// then lets the guest run, so no event of the boot is lost. QEMU
// outlives the driver process: a later driver reattaches through Recover
// and watches the process through its pidfd, since only the process that
// started QEMU can wait for it.
//
// The accelerator is KVM only when a probe boot of a Linux kernel under
// KVM reaches the kernel's first line; otherwise TCG. The spec option
// accel and the environment variable HYPERD_QEMU_ACCEL override the
// probe.
//
// Limitations: x86_64 guests only, booted from a kernel and initrd (no
// firmware or disk boot); no network interfaces; disks are fixed at start
// (no hotplug), and the guest channel, snapshots and resizing are not
// offered. The console is a log file, truncated at each start, so the
// previous boot's output is lost. A VM whose process ended while no
// driver watched it reports "qemu process gone while the driver was
// away" instead of its real exit reason, and a recovered QEMU's exit
// status is not known (its parent reaps it). A paused guest cannot see
// the power button, so stopping it always ends forced. Only one client may hold a
// QMP socket, so two drivers attached to the same VM block each other
// until the dial times out.
package qemu
