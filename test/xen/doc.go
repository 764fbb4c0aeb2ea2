// Package xentest boots real Xen nested under QEMU and runs hyperd with
// its xen driver inside dom0, so that the driver is tested against the
// hypervisor rather than a fake.
//
// TestNestedXen builds hyperd, hyperctl, the xen driver, the in-dom0
// test program (dom0check) and the e2e package's test binary as static
// binaries, builds the test guest and a dom0 initrd (build-dom0.sh), and
// boots Debian's Xen 4.17 with a Debian dom0 under qemu-system-x86_64
// with software emulation. The binaries and the guest reach dom0 over
// virtio-9p. In dom0, dom0check drives guests through hyperctl across
// kills of the driver process (a stubborn guest recovered by the next
// driver, a domain destroyed while no driver ran), then runs the e2e
// lifecycle body
// every driver passes (e2e.test, TestLifecycle/xen) and the SDK's
// conformance suite (hyperctl drivers check) against the xen driver. It
// prints one "=== XEN-TEST STEP PASS|FAIL|SKIP" line per step, e2e test
// and conformance check on the serial console, which the test reads: a
// FAIL, a skipped TestLifecycle/xen or a missing e2e or conformance line
// fails it.
//
// It skips, naming the Debian package, only when one is missing, and in
// -short mode. It boots a PV and a PVH guest; HYPERD_XEN_PVH=0 leaves
// the PVH one out (about a minute less). HYPERD_XEN_KEEP=DIR keeps the serial log and the built images
// in DIR.
//
// Limitations: one vCPU and software emulation make a run take four to
// six minutes of one host core, and runTimeout kills it at nine.
package xentest
