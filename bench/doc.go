// Package bench measures what hyperd's abstraction costs against the
// hypervisors underneath it: the same kernel and initrd booted, paused,
// killed and removed through hyperd with its qemu and libvirt drivers,
// through a bare QEMU driven by a minimal QMP client, and through
// libvirt directly. It also measures the driver RPC boundary, hyperd's
// start-up with broken plugins beside good ones, memory per idle VM, the
// delay from a VM's exit to its stored state, and boot to the guest's
// console line. cmd/hyperd-bench runs it and prints a markdown table.
//
// Every process and libvirt domain it makes is its own: hyperd runs
// with a private state directory and socket, bare QEMUs are its
// children, and direct libvirt domains are transient ones named
// hyperd-bench-PID-N. Cleanup goes by those PIDs and names only.
//
// Limitations: times are wall-clock on a shared host and vary with its
// load; the run records the load average it saw. hyperd's cycle runs
// with the drivers' start_paused option, so that, as in the baselines,
// no guest code runs.
package bench
