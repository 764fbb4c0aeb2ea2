#!/usr/bin/env bash
# Installs the Debian packages hyperd needs to build, test and run its demo,
# skipping those already present. Needs root (or sudo) and apt.
set -euo pipefail

packages=(
	qemu-system-x86   # the QEMU driver's hypervisor
	qemu-utils        # qemu-img, for disk images in tests
	busybox-static    # the test guest's userland
	linux-image-amd64 # the test guest's kernel and modules
	cpio              # packs the guest's initrd
	protobuf-compiler # make proto
	procps            # pgrep/pkill in tests and scripts
	user-mode-linux   # the UML example driver's kernel (linux.uml)
	uml-utilities     # uml_mconsole, which controls a running UML
	# Xen, booted nested under QEMU by test/xen. The hypervisor package
	# only adds files under /boot: its postinst runs update-grub only where
	# /boot/grub exists, and --no-install-recommends below keeps
	# grub-xen-host out. xen-utils' init scripts start nothing outside a
	# Xen dom0.
	xen-hypervisor-4.17-amd64
	xen-utils-4.17
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null; then
		echo "install-deps: need root to install: ${missing[*]}" >&2
		exit 1
	fi
	sudo=sudo
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
