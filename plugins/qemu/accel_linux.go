package qemu

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// AccelEnv overrides the accelerator for every VM whose spec leaves the
// accel option at auto: "kvm", "tcg" or "auto" (the default).
const AccelEnv = "HYPERD_QEMU_ACCEL"

const (
	// kvmAPIVersion is the only KVM API version Linux has ever had
	// (KVM_GET_API_VERSION returns 12 since 2.6.22).
	kvmAPIVersion = 12
	// kvmGetAPIVersion is _IO(KVMIO, 0x00), KVMIO being 0xAE.
	kvmGetAPIVersion = 0xAE00

	// probeWindow bounds how long the KVM probe waits for the kernel's
	// first line. Under working KVM the kernel prints "Linux version"
	// within half a second; a KVM that only runs firmware (seen on
	// hosts whose /dev/kvm is a paravirtual implementation without
	// hardware virtualization) never prints it.
	probeWindow = 3 * time.Second

	// probeBanner is what start_kernel prints first on an early console.
	probeBanner = "Linux version"
)

// resolveAccel picks the accelerator for one VM: the spec's accel option
// when it names one, else the environment override, else the probe.
// Whatever comes back is also the reason, for the log.
func resolveAccel(specOpt, env string, probe func() (Accelerator, string)) (Accelerator, string) {
	switch Accelerator(specOpt) {
	case AccelKVM, AccelTCG:
		return Accelerator(specOpt), "set by the spec's accel option"
	}
	switch Accelerator(env) {
	case AccelKVM, AccelTCG:
		return Accelerator(env), "set by " + AccelEnv
	}
	return probe()
}

// probeKVM tells whether KVM really runs guests here: /dev/kvm opens and
// answers, and a probe boot of a Linux kernel under KVM prints its first
// line within probeWindow. Firmware output alone is not trusted: some
// hosts run SeaBIOS under KVM and then hang in the kernel. ctx bounds
// the probe.
func probeKVM(ctx context.Context, binary, kernel string) (Accelerator, string) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return AccelTCG, fmt.Sprintf("kvm unusable: %v", err)
	}
	v, err := unix.IoctlRetInt(int(f.Fd()), kvmGetAPIVersion)
	f.Close()
	if err != nil || v != kvmAPIVersion {
		return AccelTCG, fmt.Sprintf("kvm unusable: KVM_GET_API_VERSION gave %d, %v", v, err)
	}
	if kernel == "" {
		return AccelTCG, "kvm not verified: no kernel in /boot to probe with; set " + AccelEnv + "=kvm to use it anyway"
	}

	dir, err := os.MkdirTemp("", "hyperd-kvm-probe-")
	if err != nil {
		return AccelTCG, fmt.Sprintf("kvm not verified: %v", err)
	}
	defer os.RemoveAll(dir)
	console := filepath.Join(dir, "console")

	ctx, cancel := context.WithTimeout(ctx, probeWindow)
	defer cancel()
	cmd := exec.Command(binary,
		"-machine", "q35,accel=kvm",
		"-cpu", "host",
		"-m", "128",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-kernel", kernel,
		"-append", "console=ttyS0 earlyprintk=ttyS0 panic=-1",
		"-chardev", "file,id=console,path="+optValue(console),
		"-serial", "chardev:console",
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return AccelTCG, fmt.Sprintf("kvm not verified: start probe: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the probe's end is our kill or its failure, both seen below
		close(exited)
	}()
	defer func() {
		_ = cmd.Process.Kill() // fails only when it already exited
		<-exited
	}()

	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, _ := os.ReadFile(console); bytes.Contains(b, []byte(probeBanner)) {
			return AccelKVM, "kvm probe boot reached the kernel"
		}
		select {
		case <-exited:
			return AccelTCG, fmt.Sprintf("kvm unusable: probe qemu exited: %s", lastLines(stderr.String(), 3))
		case <-ctx.Done():
			return AccelTCG, fmt.Sprintf("kvm unusable: a kernel booted under kvm printed nothing within %s", probeWindow)
		case <-tick.C:
		}
	}
}

// probeKernel returns the kernel the KVM probe boots: the running
// kernel's image in /boot if present, else the last /boot/vmlinuz-* by
// name, else "".
func probeKernel() string {
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		p := "/boot/vmlinuz-" + unix.ByteSliceToString(u.Release[:])
		if f, err := os.Open(p); err == nil {
			f.Close()
			return p
		}
	}
	m, _ := filepath.Glob("/boot/vmlinuz-*") // the pattern is well-formed
	sort.Strings(m)
	for i := len(m) - 1; i >= 0; i-- {
		if f, err := os.Open(m[i]); err == nil {
			f.Close()
			return m[i]
		}
	}
	return ""
}
