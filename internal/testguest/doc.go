// Package testguest gives tests a bootable Linux guest: Debian's kernel and
// the initrds that guest/build.sh makes from busybox-static.
//
// Build returns the paths, building them at most once per test process and
// reusing a build from an earlier process when its inputs (the script, the
// kernels in /boot, busybox) have not changed. A test that needs the guest
// skips only when busybox-static or the kernel is missing on the host; any
// other build failure fails the test.
//
// The guest prints ReadyLine on its serial console once it is ready, powers
// off on an ACPI power button press, and expects Cmdline as its kernel
// command line. guest/README.md describes it.
//
// Limitations: the package builds but never boots the guest; booting is the
// caller's job. The guest is x86_64 only and has no agent inside yet, so a
// test can watch it boot and stop but cannot run anything in it. Builds
// cached in the temporary directory are never pruned; each costs about
// 10 MB and a new one appears only when a kernel, busybox or build.sh
// changes.
package testguest
