package libvirt

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"
)

// AccelEnv overrides the accelerator for every VM whose spec leaves the
// accel option at auto: "kvm", "tcg" or "auto" (the default).
const AccelEnv = "HYPERD_LIBVIRT_ACCEL"

const (
	// probeWindow bounds how long the KVM probe waits for the kernel's
	// first line. Under working KVM the kernel prints "Linux version"
	// within half a second; a KVM that only runs firmware (seen on hosts
	// whose /dev/kvm is a paravirtual implementation without hardware
	// virtualization) never prints it.
	probeWindow = 3 * time.Second
	// probeBanner is what start_kernel prints first on an early console.
	probeBanner = "Linux version"
	// probeVMID tags the probe's domain, so that one left behind by a
	// driver that died mid-probe is recognisably hyperd's.
	probeVMID = "kvm-probe"
)

// accelChoice is a probe's conclusion for one URI.
type accelChoice struct{ accel, why string }

// domainType is libvirt's domain type for an accelerator.
func domainType(accel string) string {
	if accel == accelKVM {
		return domainTypeKVM
	}
	return domainTypeQEMU
}

// resolveAccel picks the accelerator for one VM: the spec's accel option
// when it names one, else the driver-wide override (AccelEnv or the
// config's accel option), else the probe. The
// second result is the reason, for the log and the fingerprint.
func resolveAccel(specOpt, env string, probe func() (string, string)) (string, string) {
	switch specOpt {
	case accelKVM, accelTCG:
		return specOpt, "set by the spec's accel option"
	}
	switch env {
	case accelKVM, accelTCG:
		return env, "set by the driver's accel option or " + AccelEnv
	}
	return probe()
}

// probe returns the accelerator auto picks on uri. A conclusive answer
// is kept for the life of the process; one cut short by a connection
// failure is not, and says tcg for now.
func (d *Driver) probe(ctx context.Context, uri string) (string, string) {
	d.accelMu.Lock()
	defer d.accelMu.Unlock()
	if c, ok := d.accel[uri]; ok {
		return c.accel, c.why
	}
	// The result outlives this call, so one caller's deadline must not
	// cut it short; probeWindow bounds it.
	accel, why, conclusive := d.probeKVM(context.WithoutCancel(ctx), uri)
	if conclusive {
		d.accel[uri] = accelChoice{accel, why}
		d.log.Info("accelerator chosen", "uri", uri, "accelerator", accel, "reason", why)
	}
	return accel, why
}

// probeKVM tells whether KVM really runs guests through libvirt at uri:
// libvirt offers kvm domains, and a transient kvm domain booting the
// host's kernel prints the kernel's first line within probeWindow.
// Firmware output alone is not trusted: some hosts run SeaBIOS under KVM
// and then hang in the kernel.
func (d *Driver) probeKVM(ctx context.Context, uri string) (accel, why string, conclusive bool) {
	c, err := d.conn(uri).get()
	if err != nil {
		return accelTCG, fmt.Sprintf("kvm not verified: %v", err), false
	}
	capsXML, err := c.GetCapabilities()
	if err != nil {
		return accelTCG, fmt.Sprintf("kvm not verified: capabilities: %s", libvirtMessage(err)), false
	}
	var caps libvirtxml.Caps
	if err := caps.Unmarshal(capsXML); err != nil {
		return accelTCG, fmt.Sprintf("kvm not verified: capabilities: %v", err), true
	}
	if !offersKVM(caps) {
		return accelTCG, "libvirt offers no kvm domains for x86_64 here", true
	}
	if d.probeKernel == "" {
		return accelTCG, "kvm not verified: no kernel in /boot to probe with; set " + AccelEnv + "=kvm to use it anyway", true
	}

	dir, err := os.MkdirTemp("", "hyperd-libvirt-probe-")
	if err != nil {
		return accelTCG, fmt.Sprintf("kvm not verified: %v", err), true
	}
	defer os.RemoveAll(dir)
	console := filepath.Join(dir, consoleLogName)
	var suffix [4]byte
	_, _ = rand.Read(suffix[:]) // never fails on Linux
	xml, err := domainXML(domainParams{
		Name:       domainPrefix + probeVMID + "-" + hex.EncodeToString(suffix[:]),
		UUID:       newUUID(),
		Type:       domainTypeKVM,
		VCPUs:      1,
		MemoryMiB:  128,
		Kernel:     d.probeKernel,
		Cmdline:    "console=ttyS0 earlyprintk=ttyS0 panic=-1",
		ConsoleLog: console,
		Meta:       metadata{VMID: probeVMID, WorkDir: dir},
		NoRelabel:  true,
	})
	if err != nil {
		return accelTCG, fmt.Sprintf("kvm not verified: %v", err), true
	}
	dom, err := c.DomainCreateXML(xml, libvirt.DOMAIN_NONE)
	if err != nil {
		if connectionError(err) {
			return accelTCG, fmt.Sprintf("kvm not verified: %s", libvirtMessage(err)), false
		}
		return accelTCG, fmt.Sprintf("kvm unusable: a kvm domain failed to start: %s", firstLine(libvirtMessage(err))), true
	}
	defer func() {
		_ = dom.Destroy() // fails only when it already ended
		_ = dom.Free()    // only fails on a bad pointer
	}()

	ctx, cancel := context.WithTimeout(ctx, probeWindow)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, _ := os.ReadFile(console); bytes.Contains(b, []byte(probeBanner)) {
			return accelKVM, "kvm probe domain reached the kernel", true
		}
		select {
		case <-ctx.Done():
			if active, err := dom.IsActive(); err == nil && !active {
				return accelTCG, "kvm unusable: the kvm probe domain ended before its kernel printed", true
			}
			return accelTCG, fmt.Sprintf("kvm unusable: a kernel booted in a kvm domain printed nothing within %s", probeWindow), true
		case <-tick.C:
		}
	}
}

// offersKVM reports whether the capabilities list a kvm domain type for
// x86_64 guests.
func offersKVM(caps libvirtxml.Caps) bool {
	for _, g := range caps.Guests {
		if g.Arch.Name != "x86_64" {
			continue
		}
		for _, dom := range g.Arch.Domains {
			if dom.Type == domainTypeKVM {
				return true
			}
		}
	}
	return false
}

// probeKernel returns the kernel the KVM probe boots: the running
// kernel's image in /boot if present, else the last /boot/vmlinuz-* by
// name, else "".
func probeKernel() string {
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		p := "/boot/vmlinuz-" + unix.ByteSliceToString(u.Release[:])
		if unix.Access(p, unix.R_OK) == nil {
			return p
		}
	}
	m, _ := filepath.Glob("/boot/vmlinuz-*") // the pattern is well-formed
	sort.Strings(m)
	for i := len(m) - 1; i >= 0; i-- {
		if unix.Access(m[i], unix.R_OK) == nil {
			return m[i]
		}
	}
	return ""
}

// qemuTimestampRE matches the time QEMU puts before its messages, which
// would make every probe's reason, and so the fingerprint, differ.
var qemuTimestampRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT[\d:.]+Z `)

// firstLine is the first line of a libvirt error, without timestamps.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return qemuTimestampRE.ReplaceAllString(line, "")
}
