package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"
)

// libvirtURI is the libvirtd the libvirt driver uses by default.
const libvirtURI = "qemu:///system"

// libvirtDirect is what an operator without hyperd would do: create a
// transient domain paused through libvirt's Go bindings, read its state,
// destroy it. The domain is the one the libvirt driver renders for the
// same spec (type qemu, direct kernel boot, a file console), minus
// hyperd's metadata tag.
type libvirtDirect struct {
	conn  *libvirt.Connect
	root  string
	guest guestSpec
}

// benchDomainPrefix names every domain the bench creates directly, so
// that cleanup never touches another.
func benchDomainPrefix() string { return fmt.Sprintf("hyperd-bench-%d-", os.Getpid()) }

func newLibvirtDirect(root string, g guestSpec) (*libvirtDirect, error) {
	c, err := libvirt.NewConnect(libvirtURI)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", libvirtURI, err)
	}
	return &libvirtDirect{conn: c, root: root, guest: g}, nil
}

// domainXML renders the bench's domain n.
func (l *libvirtDirect) domainXML(n int64) (string, error) {
	dom := libvirtxml.Domain{
		Type:   "qemu",
		Name:   fmt.Sprintf("%s%d", benchDomainPrefix(), n),
		Memory: &libvirtxml.DomainMemory{Value: uint(l.guest.memoryMiB), Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: 1},
		OS: &libvirtxml.DomainOS{
			Type:    &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "q35", Type: "hvm"},
			Kernel:  l.guest.kernel,
			Initrd:  l.guest.initrd,
			Cmdline: l.guest.cmdline,
		},
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}},
		OnPoweroff: "destroy",
		OnReboot:   "destroy",
		OnCrash:    "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{
					File: &libvirtxml.DomainChardevSourceFile{
						Path:   filepath.Join(l.root, fmt.Sprintf("console-%d.log", n)),
						Append: "on",
					},
				},
				Target: &libvirtxml.DomainSerialTarget{Port: new(uint)},
			}},
			Controllers: []libvirtxml.DomainController{{Type: "usb", Model: "none"}},
			MemBalloon:  &libvirtxml.DomainMemBalloon{Model: "none"},
		},
	}
	s, err := dom.Marshal()
	if err != nil {
		return "", fmt.Errorf("render domain %s: %w", dom.Name, err)
	}
	return s, nil
}

func (l *libvirtDirect) cycle(_ context.Context, n int64) error {
	xml, err := l.domainXML(n)
	if err != nil {
		return err
	}
	dom, err := l.conn.DomainCreateXML(xml, libvirt.DOMAIN_START_PAUSED)
	if err != nil {
		return fmt.Errorf("create paused domain %d: %w", n, err)
	}
	defer func() { _ = dom.Free() }() // only fails on a bad pointer
	st, _, err := dom.GetState()
	if err != nil {
		_ = dom.Destroy() // the state error is the one to report
		return fmt.Errorf("state of domain %d: %w", n, err)
	}
	if st != libvirt.DOMAIN_PAUSED {
		_ = dom.Destroy() // the state is the one to report
		return fmt.Errorf("domain %d is in libvirt state %d, want paused", n, st)
	}
	if err := dom.Destroy(); err != nil {
		return fmt.Errorf("destroy domain %d: %w", n, err)
	}
	_ = os.Remove(filepath.Join(l.root, fmt.Sprintf("console-%d.log", n))) // the root goes at the end anyway
	return nil
}

// close destroys any domain of this bench process still active, after a
// failed run, and closes the connection. Only names with this process's
// prefix are touched.
func (l *libvirtDirect) close() {
	doms, err := l.conn.ListAllDomains(libvirt.CONNECT_LIST_DOMAINS_ACTIVE)
	if err == nil {
		for _, d := range doms {
			if name, err := d.GetName(); err == nil && strings.HasPrefix(name, benchDomainPrefix()) {
				_ = d.Destroy() // best effort: transient, so destroy removes it
			}
			_ = d.Free()
		}
	}
	_, _ = l.conn.Close()
}
