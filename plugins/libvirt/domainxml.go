package libvirt

import (
	"bytes"
	"encoding/xml"
	"fmt"

	"github.com/hyperd/hyperd/sdk"
	"libvirt.org/go/libvirtxml"
)

// Domain type names in libvirt's XML.
const (
	domainTypeKVM  = "kvm"
	domainTypeQEMU = "qemu"
)

// domainPrefix starts the name of every domain hyperd creates. The name
// alone proves nothing (anyone may name a domain so); the metadata tag
// does.
const domainPrefix = "hyperd-"

// Namespace of the metadata element that tags a domain as hyperd's.
const (
	metadataNS     = "https://github.com/hyperd/hyperd/xmlns/libvirt/v1"
	metadataPrefix = "hyperd"
)

// metadata is hyperd's tag on a domain: which VM it runs and under which
// daemon work directory, so that leftovers can be traced to a daemon.
type metadata struct {
	XMLName xml.Name `xml:"vm"`
	VMID    string   `xml:"vm_id"`
	WorkDir string   `xml:"work_dir"`
}

// metadataXML renders the tag with the prefix libvirt wants on custom
// metadata; encoding/xml cannot write prefixed names.
func metadataXML(m metadata) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%s:vm xmlns:%s=%q>", metadataPrefix, metadataPrefix, metadataNS)
	for _, f := range []struct{ name, value string }{{"vm_id", m.VMID}, {"work_dir", m.WorkDir}} {
		fmt.Fprintf(&b, "<%s:%s>", metadataPrefix, f.name)
		_ = xml.EscapeText(&b, []byte(f.value)) // a bytes.Buffer never fails
		fmt.Fprintf(&b, "</%s:%s>", metadataPrefix, f.name)
	}
	fmt.Fprintf(&b, "</%s:vm>", metadataPrefix)
	return b.String()
}

// parseMetadata reads the element virDomainGetMetadata returns for
// metadataNS. libvirt hands it back without its namespace (the query
// named it); one in another namespace is refused.
func parseMetadata(s string) (metadata, error) {
	var m metadata
	if err := xml.Unmarshal([]byte(s), &m); err != nil {
		return m, fmt.Errorf("parse hyperd metadata: %w", err)
	}
	if m.XMLName.Space != "" && m.XMLName.Space != metadataNS {
		return m, fmt.Errorf("metadata element in namespace %q, want %q", m.XMLName.Space, metadataNS)
	}
	return m, nil
}

// domainParams is everything one domain's XML is made of.
type domainParams struct {
	Name       string
	UUID       string
	Type       string // domainTypeKVM or domainTypeQEMU
	VCPUs      uint32
	MemoryMiB  uint64
	Kernel     string
	Initrd     string
	Cmdline    string
	Disks      []diskParams
	ConsoleLog string
	Meta       metadata
	// NoRelabel keeps libvirt from chowning the kernel to the QEMU user;
	// the KVM probe boots the host's own kernel from /boot.
	NoRelabel bool
}

// diskParams is one disk of a domain; Block says the path is a block
// device rather than a file.
type diskParams struct {
	sdk.Disk
	Block bool
}

// domainXML renders a transient domain for direct kernel boot. Every
// exit of the guest ends the domain (on_poweroff, on_reboot and
// on_crash destroy), so a guest never restarts behind the daemon's back.
func domainXML(p domainParams) (string, error) {
	dom := libvirtxml.Domain{
		Type:     p.Type,
		Name:     p.Name,
		UUID:     p.UUID,
		Metadata: &libvirtxml.DomainMetadata{XML: metadataXML(p.Meta)},
		Memory:   &libvirtxml.DomainMemory{Value: uint(p.MemoryMiB), Unit: "MiB"},
		VCPU:     &libvirtxml.DomainVCPU{Value: uint(p.VCPUs)},
		OS: &libvirtxml.DomainOS{
			Type:    &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "q35", Type: "hvm"},
			Kernel:  p.Kernel,
			Initrd:  p.Initrd,
			Cmdline: p.Cmdline,
		},
		// ACPI carries the power button a graceful stop presses.
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}},
		OnPoweroff: "destroy",
		OnReboot:   "destroy",
		OnCrash:    "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			// libvirtd opens a file chardev itself and hands QEMU the
			// descriptor, so the file may sit in the daemon's 0700
			// work directory although QEMU runs as libvirt-qemu.
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{
					File: &libvirtxml.DomainChardevSourceFile{Path: p.ConsoleLog, Append: "on"},
				},
				Target: &libvirtxml.DomainSerialTarget{Port: new(uint)},
			}},
			Controllers: []libvirtxml.DomainController{{Type: "usb", Model: "none"}},
			MemBalloon:  &libvirtxml.DomainMemBalloon{Model: "none"},
		},
	}
	if p.Type == domainTypeKVM {
		dom.CPU = &libvirtxml.DomainCPU{Mode: "host-passthrough"}
	}
	if p.NoRelabel {
		dom.SecLabel = []libvirtxml.DomainSecLabel{{Type: "none", Model: "dac"}}
	}
	for i, d := range p.Disks {
		format := d.Format
		if format == "" {
			format = "raw"
		}
		disk := libvirtxml.DomainDisk{
			Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: format},
			Target: &libvirtxml.DomainDiskTarget{Dev: diskTarget(i), Bus: "virtio"},
		}
		if d.Block {
			disk.Source = &libvirtxml.DomainDiskSource{Block: &libvirtxml.DomainDiskSourceBlock{Dev: d.Path}}
		} else {
			disk.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: d.Path}}
		}
		if d.ReadOnly {
			disk.ReadOnly = &libvirtxml.DomainDiskReadOnly{}
		}
		dom.Devices.Disks = append(dom.Devices.Disks, disk)
	}
	s, err := dom.Marshal()
	if err != nil {
		return "", fmt.Errorf("render domain %s: %w", p.Name, err)
	}
	return s, nil
}

// diskTarget names the i-th virtio disk as Linux does: vda..vdz, vdaa..
func diskTarget(i int) string {
	name := ""
	for i++; i > 0; i = (i - 1) / 26 {
		name = string(rune('a'+(i-1)%26)) + name
	}
	return "vd" + name
}
