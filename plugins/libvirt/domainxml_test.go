package libvirt

import (
	"strings"
	"testing"

	"github.com/hyperd/hyperd/sdk"
	"libvirt.org/go/libvirtxml"
)

func TestDomainXML(t *testing.T) {
	base := domainParams{
		Name:       "hyperd-vm1",
		UUID:       "0b6f5a2e-1c2d-4e3f-8a9b-0c1d2e3f4a5b",
		Type:       domainTypeQEMU,
		VCPUs:      2,
		MemoryMiB:  256,
		Kernel:     "/guest/vmlinuz",
		Initrd:     "/guest/initrd.img",
		Cmdline:    "console=ttyS0 panic=-1",
		ConsoleLog: "/state/vms/vm1/console.log",
		Meta:       metadata{VMID: "vm1", WorkDir: "/state/vms/vm1 & <co>"},
	}
	tests := []struct {
		name  string
		edit  func(p *domainParams)
		check func(t *testing.T, d libvirtxml.Domain)
		has   []string
		lacks []string
	}{
		{
			name: "tcg guest with console and metadata",
			check: func(t *testing.T, d libvirtxml.Domain) {
				if d.Type != "qemu" || d.Name != "hyperd-vm1" || d.UUID != base.UUID {
					t.Errorf("type/name/uuid = %s %s %s", d.Type, d.Name, d.UUID)
				}
				if d.Memory.Value != 256 || d.Memory.Unit != "MiB" || d.VCPU.Value != 2 {
					t.Errorf("memory %+v vcpu %+v", d.Memory, d.VCPU)
				}
				if d.OS.Kernel != base.Kernel || d.OS.Initrd != base.Initrd || d.OS.Cmdline != base.Cmdline {
					t.Errorf("os %+v", d.OS)
				}
				if d.OnPoweroff != "destroy" || d.OnReboot != "destroy" || d.OnCrash != "destroy" {
					t.Errorf("on_* = %s %s %s", d.OnPoweroff, d.OnReboot, d.OnCrash)
				}
				if d.Features == nil || d.Features.ACPI == nil {
					t.Error("no acpi: the power button would not reach the guest")
				}
				if len(d.Devices.Serials) != 1 || d.Devices.Serials[0].Source.File.Path != base.ConsoleLog {
					t.Errorf("serials %+v", d.Devices.Serials)
				}
				if d.CPU != nil || len(d.Devices.Disks) != 0 || len(d.SecLabel) != 0 {
					t.Errorf("cpu %+v disks %+v seclabel %+v", d.CPU, d.Devices.Disks, d.SecLabel)
				}
			},
			has: []string{
				`<hyperd:vm xmlns:hyperd="` + metadataNS + `"><hyperd:vm_id>vm1</hyperd:vm_id>` +
					`<hyperd:work_dir>/state/vms/vm1 &amp; &lt;co&gt;</hyperd:work_dir></hyperd:vm>`,
				`<serial type="file">`,
				`<memballoon model="none">`,
			},
		},
		{
			name: "kvm with disks",
			edit: func(p *domainParams) {
				p.Type = domainTypeKVM
				p.Disks = []diskParams{
					{Disk: sdk.Disk{Path: "/d/root.qcow2", Format: "qcow2"}},
					{Disk: sdk.Disk{Path: "/dev/sdz", ReadOnly: true}, Block: true},
				}
			},
			check: func(t *testing.T, d libvirtxml.Domain) {
				if d.Type != "kvm" || d.CPU == nil || d.CPU.Mode != "host-passthrough" {
					t.Errorf("type %s cpu %+v", d.Type, d.CPU)
				}
				disks := d.Devices.Disks
				if len(disks) != 2 {
					t.Fatalf("disks %+v", disks)
				}
				if disks[0].Target.Dev != "vda" || disks[0].Target.Bus != "virtio" || disks[0].Driver.Type != "qcow2" ||
					disks[0].Source.File == nil || disks[0].ReadOnly != nil {
					t.Errorf("disk 0 %+v", disks[0])
				}
				if disks[1].Target.Dev != "vdb" || disks[1].Driver.Type != "raw" || disks[1].Source.Block == nil ||
					disks[1].Source.Block.Dev != "/dev/sdz" || disks[1].ReadOnly == nil {
					t.Errorf("disk 1 %+v", disks[1])
				}
			},
		},
		{
			name: "probe without relabelling",
			edit: func(p *domainParams) { p.NoRelabel = true },
			has:  []string{`<seclabel type="none" model="dac">`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			if tt.edit != nil {
				tt.edit(&p)
			}
			s, err := domainXML(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.has {
				if !strings.Contains(s, want) {
					t.Errorf("XML lacks %s:\n%s", want, s)
				}
			}
			var d libvirtxml.Domain
			if err := d.Unmarshal(s); err != nil {
				t.Fatalf("XML does not parse back: %v\n%s", err, s)
			}
			if tt.check != nil {
				tt.check(t, d)
			}
			m, err := parseMetadata(d.Metadata.XML)
			if err != nil || m.VMID != p.Meta.VMID || m.WorkDir != p.Meta.WorkDir {
				t.Errorf("metadata round trip = %+v, %v", m, err)
			}
		})
	}
}

func TestParseMetadata(t *testing.T) {
	tests := []struct {
		name, in string
		vmID     string
		wantErr  bool
	}{
		// libvirt hands the element back without its namespace.
		{"as libvirt returns it", "<vm>\n  <vm_id>a</vm_id>\n  <work_dir>/w</work_dir>\n</vm>", "a", false},
		{"other prefix", `<x:vm xmlns:x="` + metadataNS + `"><x:vm_id>a</x:vm_id><x:work_dir>/w</x:work_dir></x:vm>`, "a", false},
		{"foreign namespace", `<x:vm xmlns:x="urn:other"><x:vm_id>a</x:vm_id></x:vm>`, "", true},
		{"not xml", `vm_id=a`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseMetadata(tt.in)
			if (err != nil) != tt.wantErr || m.VMID != tt.vmID && !tt.wantErr {
				t.Errorf("parseMetadata = %+v, %v", m, err)
			}
		})
	}
}

func TestDiskTarget(t *testing.T) {
	for i, want := range map[int]string{0: "vda", 1: "vdb", 25: "vdz", 26: "vdaa", 27: "vdab", 51: "vdaz", 52: "vdba"} {
		if got := diskTarget(i); got != want {
			t.Errorf("diskTarget(%d) = %s, want %s", i, got, want)
		}
	}
}
