// Package xentest boots real Xen nested under QEMU and runs hyperd with
// its xen driver inside dom0, so that the driver is tested against the
// hypervisor rather than a fake.
//
// TestNestedXen builds hyperd, hyperctl, the xen driver and the in-dom0
// test program (dom0check) as static binaries, builds the test guest and
// a dom0 initrd (build-dom0.sh), and boots Debian's Xen 4.17 with a
// Debian dom0 under qemu-system-x86_64 with software emulation. The
// binaries and the guest reach dom0 over virtio-9p; dom0check drives the
// guest through hyperctl and prints one "=== XEN-TEST STEP PASS|FAIL|SKIP"
// line per step on the serial console, which the test reads.
//
// It skips, naming the Debian package, only when one is missing, and in
// -short mode. HYPERD_XEN_PVH=1 also boots a PVH guest (about a minute
// more). HYPERD_XEN_KEEP=DIR keeps the serial log and the built images
// in DIR.
//
// Limitations: one vCPU and software emulation make a run take two to
// four minutes of one host core; the shared conformance suite and the
// e2e lifecycle body are not run inside dom0 yet (dom0check repeats that
// lifecycle through hyperctl instead).
package xentest
