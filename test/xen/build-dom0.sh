#!/usr/bin/env bash
# Build what the nested Xen test boots: Xen itself, a dom0 kernel and
# initrd, and a copy of the test guest.
#
# Usage: test/xen/build-dom0.sh OUTDIR SHAREDIR GUESTDIR
#
# OUTDIR gets xen (the uncompressed hypervisor ELF, which QEMU's multiboot
# loader needs), vmlinuz and dom0-initrd.gz. SHAREDIR, which the test
# shares into dom0 over virtio-9p, gets guest/ with guest/build.sh's
# vmlinuz, initrd.img and initrd-stubborn.img from GUESTDIR. The dom0
# initrd holds busybox, the xl toolstack with its libraries, xenstored,
# xenconsoled, the Xen and 9p modules and test/xen/dom0-init.sh as /init;
# hyperd's own binaries come over the share.
#
# Environment: KERNEL_VERSION as for guest/build.sh (default: the newest
# /boot/vmlinuz-*); BUSYBOX (default /bin/busybox).
#
# Exit status: 0 on success, 69 when a Debian package is missing (the test
# skips, naming it), 1 on any other failure.
set -euo pipefail

readonly EX_UNAVAILABLE=69
readonly XEN_VERSION=4.17
readonly XEN_GZ=/boot/xen-$XEN_VERSION-amd64.gz
readonly XEN_BIN=/usr/lib/xen-$XEN_VERSION/bin

die() { echo "build-dom0.sh: $*" >&2; exit 1; }
missing() { echo "build-dom0.sh: $*" >&2; exit "$EX_UNAVAILABLE"; }

[[ $# -eq 3 ]] || { echo "usage: build-dom0.sh OUTDIR SHAREDIR GUESTDIR" >&2; exit 2; }
out=$1 share=$2 guest=$3
here=$(cd "$(dirname "$0")" && pwd)

[[ -f $XEN_GZ ]] || missing "no $XEN_GZ: install Debian package xen-hypervisor-$XEN_VERSION-amd64"
[[ -x $XEN_BIN/xl ]] || missing "no $XEN_BIN/xl: install Debian package xen-utils-$XEN_VERSION"
command -v cpio >/dev/null || missing "no cpio: install Debian package cpio"
busybox=${BUSYBOX:-/bin/busybox}
[[ -x $busybox ]] || missing "no $busybox: install Debian package busybox-static"
if [[ -n ${KERNEL_VERSION:-} ]]; then
	kver=$KERNEL_VERSION
else
	kver=$(cd /boot && ls vmlinuz-* 2>/dev/null | sed 's/^vmlinuz-//' | sort -V | tail -n 1)
fi
[[ -n $kver && -f /boot/vmlinuz-$kver ]] || missing "no /boot/vmlinuz-*: install Debian package linux-image-amd64"
moddir=/lib/modules/$kver
[[ -f $moddir/modules.dep ]] || missing "no $moddir/modules.dep: install Debian package linux-image-$kver"
for f in vmlinuz initrd.img initrd-stubborn.img; do
	[[ -s $guest/$f ]] || die "no $guest/$f: run guest/build.sh $guest first"
done

mkdir -p "$out" "$share/guest"
work=$(mktemp -d "${TMPDIR:-/tmp}/hyperd-dom0.XXXXXX")
trap 'rm -rf "$work"' EXIT

# pack DIR OUT: a gzip'd newc cpio of DIR, owned by root.
pack() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -n -6 >"$2.tmp"
	mv "$2.tmp" "$2"
}

# --- the guest ---------------------------------------------------------------

# guest/build.sh's initrds work as Xen PV and PVH guests as they are:
# their /sbin/poweroff answers xl shutdown.
for f in vmlinuz initrd.img initrd-stubborn.img; do
	cp "$guest/$f" "$share/guest/$f"
done

# --- Xen and the dom0 kernel -----------------------------------------------

gzip -dc "$XEN_GZ" >"$out/xen"
cp "/boot/vmlinuz-$kver" "$out/vmlinuz"

# --- the dom0 initrd -------------------------------------------------------

root=$work/dom0
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,mnt/host,etc/xen,lib/modules} \
	"$root"/var/{lib/xen,lib/xenstored,log/xen/console}
ln -s ../run "$root/var/run"
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

# copy_bin FILE DEST: the binary and every library ldd names.
copy_bin() {
	install -D -m 755 "$1" "$root$2"
	local lib
	for lib in $(ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
		[[ -e $root$lib ]] || install -D -m 755 "$(readlink -f "$lib")" "$root$lib"
	done
}
for b in xl xenstored xenconsoled xen-init-dom0; do
	copy_bin "$XEN_BIN/$b" "/usr/sbin/$b"
done
copy_bin /usr/bin/xenstore /usr/bin/xenstore
# glibc loads libgcc_s at run time for thread cancellation, which xl
# needs; ldd cannot see it.
libgcc=$(ldconfig -p | awk '/libgcc_s.so.1 .*x86-64/ && !found {print $NF; found = 1}')
[[ -n $libgcc ]] || die "libgcc_s.so.1 not found"
install -D -m 644 "$(readlink -f "$libgcc")" "$root$libgcc"
for t in read write ls list rm; do ln -s xenstore "$root/usr/bin/xenstore-$t"; done
: >"$root/etc/xen/xl.conf"

# Modules and their dependencies, depth first, decompressed.
declare -A dep_of path_of seen
while IFS= read -r line; do
	m=${line%%:*} n=${m##*/} n=${n%%.ko*} n=${n//-/_}
	path_of[$n]=$m dep_of[$n]=${line#*:}
done <"$moddir/modules.dep"
order=()
visit() {
	local n=$1 d dn
	[[ -z ${seen[$n]:-} ]] || return 0
	seen[$n]=1
	[[ -n ${path_of[$n]:-} ]] || return 0 # built in
	for d in ${dep_of[$n]}; do dn=${d##*/} dn=${dn%%.ko*}; visit "${dn//-/_}"; done
	order+=("$n")
}
for n in xen_evtchn xen_gntdev xen_gntalloc xen_privcmd xenfs virtio_pci 9pnet_virtio 9p; do visit "$n"; done
for n in "${order[@]}"; do
	src=$moddir/${path_of[$n]}
	case $src in
	*.ko) cp "$src" "$root/lib/modules/$n.ko" ;;
	*.ko.xz) xz -dc "$src" >"$root/lib/modules/$n.ko" ;;
	*.ko.zst) zstd -qdc "$src" >"$root/lib/modules/$n.ko" ;;
	*) die "module $src: unknown compression" ;;
	esac
	echo "$n" >>"$root/lib/modules/load-order"
done

install -m 755 "$here/dom0-init.sh" "$root/init"
pack "$root" "$out/dom0-initrd.gz"
echo "build-dom0.sh: kernel $kver, modules: ${order[*]}" >&2
