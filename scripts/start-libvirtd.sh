#!/usr/bin/env bash
# Starts virtlogd and libvirtd when libvirtd does not answer, for the
# libvirt driver's tests, and waits (bounded) until it does. Machines
# without systemd (CI, containers) have no unit that would start them.
set -euo pipefail

uri=qemu:///system
if virsh -c "$uri" version >/dev/null 2>&1; then
	exit 0
fi
pgrep -x virtlogd >/dev/null || virtlogd -d
pgrep -x libvirtd >/dev/null || libvirtd -d
for _ in $(seq 1 60); do
	virsh -c "$uri" version >/dev/null 2>&1 && exit 0
	sleep 0.5
done
echo "start-libvirtd: libvirtd does not answer at $uri" >&2
exit 1
