#!/usr/bin/env bash
# Boots the test guest through hyperd and its QEMU driver, shows the guest's
# console and stops it gracefully. Run by `make demo` after the build.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/bin
guest=$root/build/guest
work=$(mktemp -d /tmp/hyperd-demo.XXXXXX)
sock=$work/hyperd.sock
export HYPERD_SOCKET=$sock

hyperd_pid=""
cleanup() {
	if [ -n "$hyperd_pid" ] && kill -0 "$hyperd_pid" 2>/dev/null; then
		# Remove anything still running so the demo leaves no VM behind.
		for id in $("$bin/hyperctl" ls -q 2>/dev/null); do
			"$bin/hyperctl" kill "$id" >/dev/null 2>&1 || true
			"$bin/hyperctl" rm "$id" >/dev/null 2>&1 || true
		done
		kill -TERM "$hyperd_pid"
		wait "$hyperd_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting hyperd (state in $work, log in $work/hyperd.log)"
"$bin/hyperd" --state-dir "$work/state" --socket "$sock" --plugin-dir "$bin/plugins" \
	>"$work/hyperd.log" 2>&1 &
hyperd_pid=$!
for _ in $(seq 1 100); do
	[ -S "$sock" ] && "$bin/hyperctl" drivers >/dev/null 2>&1 && break
	if ! kill -0 "$hyperd_pid" 2>/dev/null; then
		cat "$work/hyperd.log" >&2
		echo "demo: hyperd exited" >&2
		exit 1
	fi
	sleep 0.1
done

step "hyperctl drivers"
"$bin/hyperctl" drivers

step "hyperctl run --name demo (boots Debian's kernel with a busybox initrd under QEMU)"
id=$("$bin/hyperctl" run --name demo --driver qemu --memory 256M --cpus 1 \
	--kernel "$guest/vmlinuz" --initrd "$guest/initrd.img" \
	--cmdline "console=ttyS0 panic=-1 quiet")
echo "vm id: $id"

step "waiting for the guest's ready line on its serial console"
for _ in $(seq 1 120); do
	if "$bin/hyperctl" logs "$id" 2>/dev/null | grep -q HYPERD-GUEST-READY; then
		break
	fi
	sleep 0.5
done

step "hyperctl logs $id"
"$bin/hyperctl" logs "$id" | tr -d '\r' | grep -v '^\s*$' | tail -n 20

step "hyperctl ls"
"$bin/hyperctl" ls

step "hyperctl stop $id (ACPI power button; the guest powers itself off)"
"$bin/hyperctl" stop --timeout 30s "$id"

step "hyperctl inspect $id"
"$bin/hyperctl" inspect "$id"

step "hyperctl rm $id"
"$bin/hyperctl" rm "$id"
"$bin/hyperctl" ls

step "done: the guest booted, printed its ready line and powered off"
