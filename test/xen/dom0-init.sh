#!/bin/sh
# /init of the nested Xen test's dom0 (PID 1): bring up the Xen
# toolstack, mount the host's share, run the test program from it and
# power the machine off. Every line starting "=== XEN-TEST " is read by
# the host; see xen_test.go.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts /run/xen /run/xenstored /var/log/xen/console
mount -t devpts devpts /dev/pts

report() { echo "=== XEN-TEST $*"; }
fail_out() {
	report "$1 FAIL $2"
	report "DONE"
	sync
	poweroff -f
}

while read -r m; do
	insmod "/lib/modules/$m.ko" || echo "dom0: insmod $m failed"
done </lib/modules/load-order
mount -t xenfs xenfs /proc/xen || fail_out DOM0 "mount xenfs failed"
grep -q control_d /proc/xen/capabilities || fail_out DOM0 "not the control domain: $(cat /proc/xen/capabilities)"

xenstored --pid-file /run/xenstored.pid || fail_out DOM0 "xenstored failed"
xen-init-dom0 >/dev/null || fail_out DOM0 "xen-init-dom0 failed"
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console ||
	fail_out DOM0 "xenconsoled failed"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 hostshare /mnt/host ||
	fail_out DOM0 "mount of the host share failed"
report "DOM0 PASS up $(cut -d' ' -f1 /proc/uptime)s, $(uname -r)"

pvh=
grep -q xentest.pvh=1 /proc/cmdline && pvh=-pvh
/mnt/host/bin/xen-dom0-check -share /mnt/host $pvh
rc=$?
[ $rc -eq 0 ] || report "DOM0-CHECK FAIL exit status $rc"
report "DONE"
sync
poweroff -f
