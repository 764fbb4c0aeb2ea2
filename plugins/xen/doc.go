// Package xen is hyperd's Xen driver: it runs each VM as a Xen domain
// through the xl toolstack, from inside a Xen dom0.
//
// Create validates the spec and writes the domain's xl config (xl.cfg)
// into the VM's work directory; Start runs `xl create` on it. A domain is
// named hyperd-VMID and gets a UUID chosen at Create, so that a domain is
// identified by its name, its domid and its UUID together: a domid alone
// could name a later domain, a name alone a domain someone else made.
// The handle is JSON holding the spec, those three and the work
// directory, so a fresh driver process finds a running domain again
// through Recover.
//
// Guests are PV by default and PVH with the option type=pvh. Their
// power-off, reboot and crash all leave the domain in place (on_poweroff
// and friends are "preserve"): the driver reads the shutdown reason Xen
// gives, records it in the work directory's exit-reason file, reports the
// exit and only then destroys the domain, so the reason survives a driver
// that died at that moment. Exits are noticed by polling `xl list -v`
// every pollInterval while the driver holds a live domain; identity comes
// from `xl list -l`, whose JSON carries the domid and UUID.
//
// Stop asks the guest to power off through the PV shutdown protocol (`xl
// shutdown`, the xenstore key control/shutdown the guest kernel watches),
// waits up to its timeout, then destroys the domain. Pause and Resume are
// `xl pause` and `xl unpause`.
//
// The console is the log xenconsoled keeps of each guest, guest-NAME.log
// in its --log-dir, found from the running xenconsoled's command line (or
// HYPERD_XEN_CONSOLE_DIR). xenconsoled logs only when started with
// --log=guest or --log=all (XENCONSOLED_TRACE=guest in Debian's
// /etc/default/xen); without it a VM has no console log and the
// fingerprint says so.
//
// The driver works only in a Xen dom0: /proc/xen/capabilities must say
// control_d and `xl info` must answer. Elsewhere it still loads, reports
// itself unhealthy with the reason, and refuses Create and Start with that
// reason, wrapping sdk.ErrUnavailable.
//
// Limitations: x86_64 PV and PVH guests only, booted from a kernel and
// initrd (no HVM, no firmware or bootloader); no network interfaces; raw
// disks only (qcow2 needs qemu-system-xen's qdisk backend) and no
// hotplug; no guest channel, snapshots or resizing. An exit is noticed
// up to pollInterval late. A domain destroyed while no driver watched
// reports "domain gone while the driver was away" unless the driver had
// recorded its reason first. A guest that reboots is not restarted: its
// reboot ends the VM like a power-off. The console log is truncated at
// each start, so the previous boot's output is lost.
package xen
