#!/usr/bin/env bash
# Build hyperd's test and demo guest from Debian's own packages.
#
# Usage: guest/build.sh OUTDIR
#
# Writes OUTDIR/vmlinuz (Debian's kernel), OUTDIR/initrd.img (powers off on
# the ACPI power button or a Xen shutdown request) and
# OUTDIR/initrd-stubborn.img (ignores both). See guest/README.md.
#
# Environment:
#   KERNEL_VERSION  kernel to use, as in /boot/vmlinuz-$KERNEL_VERSION;
#                   default: the newest /boot/vmlinuz-*.
#   BUSYBOX         static busybox binary; default /bin/busybox.
#   SOURCE_DATE_EPOCH  timestamp for every file in the initrds; default 0.
#
# Exit status: 0 on success, 69 when a Debian package the guest is made of
# is missing (tests skip on it), 1 on any other failure.
set -euo pipefail

readonly EX_UNAVAILABLE=69

# Modules the guest loads, besides their dependencies. button and evdev
# make QEMU's system_powerdown reach acpid (without them the press is
# dropped); virtio_pci is the transport virtio_blk and virtio_console sit
# on in a PCI machine.
readonly GUEST_MODULES=(button evdev virtio_pci virtio_blk virtio_console)

die() {
	echo "guest/build.sh: $*" >&2
	exit 1
}

missing() {
	echo "guest/build.sh: $*" >&2
	exit "$EX_UNAVAILABLE"
}

[[ $# -eq 1 ]] || { echo "usage: guest/build.sh OUTDIR" >&2; exit 2; }
outdir=$1

# --- inputs --------------------------------------------------------------

busybox=${BUSYBOX:-/bin/busybox}
[[ -x $busybox ]] ||
	missing "no busybox at $busybox: install Debian package busybox-static"
# Debian's dynamic busybox package also installs /bin/busybox; it would
# not run in an initrd without a libc.
ldd_out=$(ldd "$busybox" 2>&1 || true)
if [[ $ldd_out == *"=>"* ]]; then
	missing "$busybox is dynamically linked: install Debian package busybox-static"
fi

if [[ -n ${KERNEL_VERSION:-} ]]; then
	kver=$KERNEL_VERSION
	[[ -f /boot/vmlinuz-$kver ]] ||
		missing "no /boot/vmlinuz-$kver (KERNEL_VERSION): install Debian package linux-image-$kver"
else
	shopt -s nullglob
	kernels=(/boot/vmlinuz-*)
	shopt -u nullglob
	[[ ${#kernels[@]} -gt 0 ]] ||
		missing "no /boot/vmlinuz-*: install Debian package linux-image-amd64"
	kver=$(printf '%s\n' "${kernels[@]#/boot/vmlinuz-}" | sort -V | tail -n 1)
fi
kernel=/boot/vmlinuz-$kver
[[ -r $kernel ]] || die "cannot read $kernel (run as root, or pass a readable kernel)"

moddir=/lib/modules/$kver
[[ -f $moddir/modules.dep ]] ||
	missing "no $moddir/modules.dep: install Debian package linux-image-$kver"

# --- modules, in dependency order ----------------------------------------

# path_of[name] is the module's file and deps_of[name] its dependencies'
# files, relative to $moddir, as modules.dep gives them. Names use
# underscores, as the kernel does: file names may use dashes. Parameter
# expansion, not basename: modules.dep has thousands of lines.
declare -A path_of deps_of
while IFS= read -r line; do
	mod=${line%%:*}
	name=${mod##*/}
	name=${name%%.ko*}
	name=${name//-/_}
	path_of[$name]=$mod
	deps_of[$name]=${line#*:}
done <"$moddir/modules.dep"

declare -A builtin
if [[ -f $moddir/modules.builtin ]]; then
	while IFS= read -r mod; do
		name=${mod##*/}
		name=${name%%.ko*}
		builtin[${name//-/_}]=1
	done <"$moddir/modules.builtin"
fi

order=()
declare -A visited
# visit appends a module after all of its dependencies (depth first), so
# that insmod in list order never meets an unknown symbol.
visit() {
	local name=$1 dep dname
	[[ -z ${visited[$name]:-} ]] || return 0
	visited[$name]=1
	for dep in ${deps_of[$name]}; do
		dname=${dep##*/}
		dname=${dname%%.ko*}
		visit "${dname//-/_}"
	done
	order+=("$name")
}

for name in "${GUEST_MODULES[@]}"; do
	if [[ -n ${path_of[$name]:-} ]]; then
		visit "$name"
	elif [[ -n ${builtin[$name]:-} ]]; then
		: # built into this kernel, nothing to load
	else
		die "module $name not found in $moddir (modules.dep or modules.builtin)"
	fi
done

# --- initrd tree -----------------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/hyperd-guest.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,var/log} \
	"$root"/etc/acpi/PWRF "$root"/lib/modules
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

# Copy each module uncompressed: busybox insmod may be built without xz or
# zstd support, and decompressing here keeps the guest independent of it.
for name in "${order[@]}"; do
	src=$moddir/${path_of[$name]}
	dst=$root/lib/modules/$name.ko
	case $src in
	*.ko) cp "$src" "$dst" ;;
	*.ko.xz) xz -dc "$src" >"$dst" || die "decompress $src (needs xz-utils)" ;;
	*.ko.zst) zstd -qdc "$src" >"$dst" || die "decompress $src (needs zstd)" ;;
	*.ko.gz) gzip -dc "$src" >"$dst" || die "decompress $src" ;;
	*) die "module $src: unknown compression" ;;
	esac
	echo "$name" >>"$root/lib/modules/load-order"
done
touch "$root/lib/modules/load-order"

# The init script; GUEST_VARIANT is substituted per initrd below.
cat >"$root/init.in" <<'EOF'
#!/bin/sh
# hyperd test guest init (PID 1). It must never exit: PID 1 exiting
# panics the kernel.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
/bin/busybox --install -s

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
exec </dev/console >/dev/console 2>&1

variant=@GUEST_VARIANT@

while read -r mod; do
	insmod "/lib/modules/$mod.ko" ||
		echo "hyperd guest: insmod $mod failed"
done </lib/modules/load-order
echo "hyperd guest: kernel $(uname -r), devices:" \
	$(cd /dev && ls -d vd* hvc* vport* 2>/dev/null)

if [ "$variant" = stubborn ]; then
	echo "hyperd guest: stubborn variant, the ACPI power button is ignored"
else
	echo "hyperd guest: powering off on ACPI power button"
fi

# acpid opens /dev/input/event* once at start: wait for devtmpfs to make
# the power button's node first.
# Without ACPI (User Mode Linux, Xen PV) there is no power button to wait
# for; the loops below then end at once.
i=0
[ -d /sys/firmware/acpi ] || i=50
while ! ls /dev/input/event* >/dev/null 2>&1 && [ $i -lt 50 ]; do
	usleep 100000
	i=$((i + 1))
done
acpid -f -c /etc/acpi -l /var/log/acpid.log &
acpid_pid=$!

# The ready line promises that a power button press is heard: print it
# only once acpid holds an input device open, or a stop sent right after
# it would be lost.
i=0
[ -d /sys/firmware/acpi ] || i=50
while [ $i -lt 50 ]; do
	if ls -l /proc/$acpid_pid/fd 2>/dev/null | grep -q /dev/input/event; then
		break
	fi
	usleep 100000
	i=$((i + 1))
done

echo "HYPERD-GUEST-READY${variant:+ $variant}"

while :; do
	sleep 3600
done
EOF

# busybox's poweroff is called by its path: /sbin/poweroff is the
# variant's script below.
cat >"$root/etc/acpi/poweroff.sh" <<'EOF'
#!/bin/sh
echo "hyperd guest: ACPI power button pressed, powering off" >/dev/console
sync
/bin/busybox poweroff -f
EOF

cat >"$root/etc/acpi/ignore.sh" <<'EOF'
#!/bin/sh
echo "hyperd guest: ACPI power button pressed, ignored (stubborn)" >/dev/console
EOF

# A Xen PV or PVH guest has no ACPI: its kernel answers the toolstack's
# shutdown request (`xl shutdown` writes the xenstore key
# control/shutdown) by running /sbin/poweroff itself. busybox's poweroff
# applet would only signal PID 1, a shell that ignores the signal, so
# /sbin/poweroff is a script of each variant instead: the normal guest
# powers off, the stubborn one ignores the request. busybox --install -s
# keeps an existing file, so the script stays.
cat >"$root/etc/poweroff-normal.sh" <<'EOF'
#!/bin/sh
echo "hyperd guest: shutdown request from the hypervisor, powering off" >/dev/console
sync
exec /bin/busybox poweroff -f
EOF

cat >"$root/etc/poweroff-stubborn.sh" <<'EOF'
#!/bin/sh
echo "hyperd guest: shutdown request from the hypervisor, ignored (stubborn)" >/dev/console
EOF
chmod 755 "$root/etc/acpi/poweroff.sh" "$root/etc/acpi/ignore.sh" \
	"$root/etc/poweroff-normal.sh" "$root/etc/poweroff-stubborn.sh"

epoch=${SOURCE_DATE_EPOCH:-0}

# pack writes the tree as a gzip'd newc cpio with fixed owners, times and
# file order, so that the same inputs give the same bytes.
pack() {
	local out=$1
	find "$root" -exec touch -h -d "@$epoch" {} +
	(cd "$root" && find . -mindepth 1 ! -name init.in | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) |
		gzip -n -6 >"$out.tmp"
	mv "$out.tmp" "$out"
}

# variant NAME HANDLER POWEROFF OUT: busybox acpid runs
# /etc/acpi/PWRF/00000080 on a power button press; a Xen guest's kernel
# runs /sbin/poweroff on a shutdown request.
variant() {
	local name=$1 handler=$2 poweroff=$3 out=$4
	sed "s/@GUEST_VARIANT@/$name/" "$root/init.in" >"$root/init"
	chmod 755 "$root/init"
	ln -sf "../$handler" "$root/etc/acpi/PWRF/00000080"
	cp "$root/etc/$poweroff" "$root/sbin/poweroff"
	pack "$out"
}

mkdir -p "$outdir"
cp "$kernel" "$outdir/vmlinuz.tmp"
mv "$outdir/vmlinuz.tmp" "$outdir/vmlinuz"
variant "" poweroff.sh poweroff-normal.sh "$outdir/initrd.img"
variant stubborn ignore.sh poweroff-stubborn.sh "$outdir/initrd-stubborn.img"

echo "guest/build.sh: kernel $kver, modules: ${order[*]}" >&2
echo "guest/build.sh: wrote $outdir/vmlinuz, initrd.img, initrd-stubborn.img" >&2
