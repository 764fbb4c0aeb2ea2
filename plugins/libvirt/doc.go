// Package libvirt is hyperd's libvirt driver: it runs each VM as a
// transient libvirt domain named hyperd-VMID, through libvirt.org/go/libvirt,
// with the domain XML built by libvirt.org/go/libvirtxml.
//
// Every domain carries a metadata element in hyperd's own XML namespace
// holding the VM id and the daemon's work directory. The driver acts only
// on a domain found by the UUID in the VM's handle and carrying that tag
// for that VM; a domain made by hand, whatever its name, is never listed,
// stopped or removed. The handle is JSON holding the spec, the work
// directory, the connection URI, the domain's name and its UUID, chosen at
// Create and kept across starts, so a fresh driver process finds a running
// domain again through Recover.
//
// Domains are transient: Start creates one from XML and it exists exactly
// while the guest runs (on_poweroff, on_reboot and on_crash destroy), so
// nothing stays defined after a stop, a kill, a crash or a lost daemon.
// The guest boots its kernel and initrd directly; its first serial port
// writes console.log in the work directory, a file libvirtd opens as root
// and hands to QEMU, so the 0700 work directory stays the daemon's.
//
// Events come from libvirt's default event loop, run on one goroutine for
// the life of the process: lifecycle events (paused, resumed, shutting
// down, crashed, stopped with libvirt's reason such as "shutdown" or
// "destroyed"), reboot requests and device removals. Stop presses the
// ACPI power button, waits for the stop event up to the deadline, then
// destroys the domain. A lost connection (libvirtd stopped or restarted)
// is noticed by libvirt's close callback; the fingerprint turns unhealthy
// and every call redials, registering the event callbacks again, and
// tracked domains that ended meanwhile are reported exited.
//
// The accelerator is kvm (domain type kvm, host-passthrough CPU) only
// when a probe domain of type kvm boots the host's kernel to its first
// line; otherwise tcg (domain type qemu). The spec option accel, then
// HYPERD_LIBVIRT_ACCEL, then the config's accel option override the
// probe. The URI comes from the spec option uri, else the config's uri
// option, else HYPERD_LIBVIRT_URI, else qemu:///system.
//
// Limitations: only a local libvirtd driving QEMU works, since the console
// log and the QEMU pid are read from this host; x86_64 guests booted from
// a kernel only, no network interfaces, disks fixed at start, no guest
// channel, snapshots or resizing. libvirt's DAC driver chowns the kernel,
// initrd and disks to its QEMU user while the guest runs, so their
// directories must be searchable by that user. The console is truncated at
// each start. A domain that ended while no driver process watched reports
// "domain gone while the driver was away" instead of its real reason. A
// paused guest cannot see the power button, so stopping it always ends
// forced. A spec's uri other than the driver's opens a second connection,
// whose health the fingerprint does not report.
package libvirt
