package qemu

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hyperd/hyperd/sdk"
)

// Accelerator is how QEMU executes guest code.
type Accelerator string

// Accelerators.
const (
	AccelKVM Accelerator = "kvm"
	AccelTCG Accelerator = "tcg"
)

// Files QEMU reads or writes in a VM's work directory.
const (
	consoleLogName = "console.log"
	qemuLogName    = "qemu.log"
	qmpSocketName  = "qmp.sock"
	pidFileName    = "qemu.pid"
)

// launch is everything the QEMU command line depends on. It is built
// from the handle so that argv stays a pure function.
type launch struct {
	binary  string
	name    string
	machine string
	accel   Accelerator
	vcpus   uint32
	memMiB  uint64
	kernel  string
	initrd  string
	cmdline string
	disks   []sdk.Disk
	workDir string
}

// argv returns QEMU's full command line, binary first.
//
// Everything placed inside QEMU's option syntax (key=value,key=value) has
// its commas doubled by optValue, and disks go in -blockdev and -device
// JSON syntax, so that no path, not even the work directory, can add an
// option. Arguments QEMU takes whole (-kernel, -initrd, -append,
// -pidfile) are passed verbatim.
func argv(l launch) []string {
	cpu := "max"
	if l.accel == AccelKVM {
		cpu = "host"
	}
	a := []string{
		l.binary,
		"-name", "guest=" + optValue(l.name),
		"-machine", l.machine + ",accel=" + string(l.accel),
		"-cpu", cpu,
		"-smp", strconv.FormatUint(uint64(l.vcpus), 10),
		"-m", strconv.FormatUint(l.memMiB, 10),
		"-nodefaults",
		"-no-user-config",
		"-display", "none",
		// A guest reboot ends the VM: the daemon decides what happens
		// next, not QEMU.
		"-no-reboot",
		// Start paused; the driver sends cont once QMP is connected, so
		// that no event of the boot is missed.
		"-S",
		"-pidfile", filepath.Join(l.workDir, pidFileName),
		"-chardev", qmpChardev(qmpSocketPath(l.workDir)),
		"-mon", "chardev=qmp,mode=control",
		"-chardev", "file,id=console,path=" + optValue(filepath.Join(l.workDir, consoleLogName)),
		"-serial", "chardev:console",
		"-kernel", l.kernel,
	}
	if l.initrd != "" {
		a = append(a, "-initrd", l.initrd)
	}
	if l.cmdline != "" {
		a = append(a, "-append", l.cmdline)
	}
	for i, d := range l.disks {
		a = append(a, "-blockdev", blockdevJSON(i, d), "-device", diskDeviceJSON(i))
	}
	return a
}

// qmpChardev is the -chardev argument of the QMP socket. Recover looks
// for exactly this argument in /proc/PID/cmdline to tell our QEMU from a
// stranger that reuses its PID.
func qmpChardev(sock string) string {
	return "socket,id=qmp,path=" + optValue(sock) + ",server=on,wait=off"
}

func qmpSocketPath(workDir string) string { return filepath.Join(workDir, qmpSocketName) }

// optValue escapes a value for QEMU's key=value,key=value option syntax,
// where a doubled comma stands for one comma.
func optValue(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// blockdevJSON describes disk i as a format node over a file node.
func blockdevJSON(i int, d sdk.Disk) string {
	format := d.Format
	if format == "" {
		format = "raw"
	}
	node := map[string]any{
		"driver":    format,
		"node-name": diskNode(i),
		"read-only": d.ReadOnly,
		"file": map[string]any{
			"driver":    "file",
			"filename":  d.Path,
			"read-only": d.ReadOnly,
		},
	}
	if format == "qcow2" {
		// Never follow a backing file named inside the image: the spec,
		// not the image, says which host files the guest reaches.
		node["backing"] = nil
	}
	return mustJSON(node)
}

func diskDeviceJSON(i int) string {
	return mustJSON(map[string]any{
		"driver": "virtio-blk-pci",
		"drive":  diskNode(i),
		"id":     fmt.Sprintf("virtio-disk%d", i),
	})
}

func diskNode(i int) string { return fmt.Sprintf("disk%d", i) }

// mustJSON marshals values built from strings, bools and maps of them,
// which cannot fail.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("qemu: marshal %T: %v", v, err))
	}
	return string(b)
}
