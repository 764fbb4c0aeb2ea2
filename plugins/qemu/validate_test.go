package qemu

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hyperd/hyperd/sdk"
)

func TestValidateSpec(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kernel := file("vmlinuz", 0o644)
	initrd := file("initrd", 0o644)
	disk := file("disk.img", 0o644)
	comma := file("vm,linuz", 0o644)
	qemuImg := func(name string, args ...string) string {
		p := filepath.Join(dir, name)
		cmd := exec.Command("qemu-img", append([]string{"create", "-f", "qcow2"}, append(args, p, "1M")...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("qemu-img create %s: %v\n%s", name, err, out)
		}
		return p
	}
	qcow := qemuImg("disk.qcow2")
	backed := qemuImg("backed.qcow2", "-F", "raw", "-b", kernel, "-u")
	dataFile := qemuImg("data.qcow2", "-o", "data_file="+filepath.Join(dir, "data.raw"))

	good := sdk.Spec{Name: "vm-1", VCPUs: 1, MemoryMiB: 128, Kernel: kernel}
	const hostMiB = 4096
	tests := []struct {
		name  string
		edit  func(s *sdk.Spec)
		field string // "" means valid
		says  string
	}{
		{name: "minimal", edit: func(*sdk.Spec) {}},
		{name: "full", edit: func(s *sdk.Spec) {
			s.Initrd = initrd
			s.Disks = []sdk.Disk{{Path: qcow, Format: "qcow2"}, {Path: disk, ReadOnly: true}}
			s.Options = map[string]string{"accel": "tcg", "machine": "pc"}
		}},
		{name: "qcow2 with a backing file", edit: func(s *sdk.Spec) {
			s.Disks = []sdk.Disk{{Path: backed, Format: "qcow2"}}
		}, field: "disks[0].path", says: "backing file"},
		{name: "qcow2 with a data file", edit: func(s *sdk.Spec) {
			s.Disks = []sdk.Disk{{Path: dataFile, Format: "qcow2"}}
		}, field: "disks[0].path", says: "external data file"},
		{name: "raw file as qcow2", edit: func(s *sdk.Spec) {
			s.Disks = []sdk.Disk{{Path: disk, Format: "qcow2"}}
		}, field: "disks[0].path", says: "not a usable qcow2 image"},
		{name: "character device as disk", edit: func(s *sdk.Spec) {
			s.Disks = []sdk.Disk{{Path: "/dev/zero", ReadOnly: true}}
		}, field: "disks[0].path", says: "regular file or a block device"},
		{name: "empty name", edit: func(s *sdk.Spec) { s.Name = "" }, field: "name"},
		{name: "name with comma", edit: func(s *sdk.Spec) { s.Name = "a,b" }, field: "name"},
		{name: "name too long", edit: func(s *sdk.Spec) { s.Name = strings.Repeat("a", 64) }, field: "name"},
		{name: "name starts with dot", edit: func(s *sdk.Spec) { s.Name = ".a" }, field: "name"},
		{name: "zero vcpus", edit: func(s *sdk.Spec) { s.VCPUs = 0 }, field: "vcpus", says: "must be at least 1"},
		{name: "too many vcpus", edit: func(s *sdk.Spec) { s.VCPUs = 65 }, field: "vcpus"},
		{name: "too little memory", edit: func(s *sdk.Spec) { s.MemoryMiB = 15 }, field: "memory_mib"},
		{name: "memory over host", edit: func(s *sdk.Spec) { s.MemoryMiB = hostMiB }, field: "memory_mib"},
		{name: "no kernel", edit: func(s *sdk.Spec) { s.Kernel = "" }, field: "kernel", says: "required"},
		{name: "missing kernel", edit: func(s *sdk.Spec) { s.Kernel = dir + "/nope" }, field: "kernel"},
		{name: "kernel is a dir", edit: func(s *sdk.Spec) { s.Kernel = dir }, field: "kernel", says: "regular file"},
		{name: "relative kernel", edit: func(s *sdk.Spec) { s.Kernel = "vmlinuz" }, field: "kernel", says: "absolute"},
		{
			name:  "kernel with comma",
			edit:  func(s *sdk.Spec) { s.Kernel = comma },
			field: "kernel",
			says:  "path \"" + comma + "\" contains a comma, which a hypervisor's option syntax would split; rename the file",
		},
		{name: "initrd with comma", edit: func(s *sdk.Spec) { s.Initrd = comma }, field: "initrd", says: "comma"},
		{name: "missing initrd", edit: func(s *sdk.Spec) { s.Initrd = dir + "/nope" }, field: "initrd"},
		{name: "disk with comma", edit: func(s *sdk.Spec) { s.Disks = []sdk.Disk{{Path: comma}} }, field: "disks[0].path", says: "comma"},
		{name: "missing disk", edit: func(s *sdk.Spec) { s.Disks = []sdk.Disk{{Path: disk}, {Path: dir + "/no"}} }, field: "disks[1].path"},
		{name: "bad format", edit: func(s *sdk.Spec) { s.Disks = []sdk.Disk{{Path: disk, Format: "vmdk"}} }, field: "disks[0].format"},
		{name: "unknown option", edit: func(s *sdk.Spec) { s.Options = map[string]string{"cpu": "max"} }, field: "options.cpu"},
		{name: "bad accel", edit: func(s *sdk.Spec) { s.Options = map[string]string{"accel": "hvf"} }, field: "options.accel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			tt.edit(&s)
			err := validateSpec(s, hostMiB)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("validateSpec: %v", err)
				}
				return
			}
			if !errors.Is(err, sdk.ErrInvalidSpec) {
				t.Fatalf("validateSpec = %v, want an error wrapping ErrInvalidSpec", err)
			}
			if !strings.Contains(err.Error(), ": "+tt.field+": ") {
				t.Errorf("error %q does not name field %s", err, tt.field)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
		})
	}
}

func TestValidateWorkDir(t *testing.T) {
	dir := t.TempDir()
	comma := filepath.Join(dir, "a,b")
	if err := os.Mkdir(comma, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  string
		ok   bool
	}{
		{"exists", dir, true},
		{"comma is fine, it is escaped", comma, true},
		{"relative", "vms/a", false},
		{"missing", filepath.Join(dir, "nope"), false},
		{"socket path too long", "/" + strings.Repeat("d", 100), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateWorkDir(tt.dir)
			if tt.ok != (err == nil) {
				t.Fatalf("validateWorkDir(%q) = %v, want ok=%v", tt.dir, err, tt.ok)
			}
			if err != nil && !errors.Is(err, sdk.ErrInvalidSpec) {
				t.Errorf("error %v does not wrap ErrInvalidSpec", err)
			}
		})
	}
}
