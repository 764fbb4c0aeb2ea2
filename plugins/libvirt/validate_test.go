package libvirt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hyperd/hyperd/sdk"
)

func TestValidateSpec(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinuz")
	comma := filepath.Join(dir, "vmlinuz,if=none")
	for _, p := range []string{kernel, comma} {
		if err := os.WriteFile(p, []byte("k"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good := sdk.Spec{Name: "web-1", VCPUs: 1, MemoryMiB: 256, Kernel: kernel}
	tests := []struct {
		name  string
		edit  func(s *sdk.Spec)
		field string // empty: valid
	}{
		{"valid", func(*sdk.Spec) {}, ""},
		{"valid options", func(s *sdk.Spec) { s.Options = map[string]string{"accel": "tcg", "uri": "qemu:///system"} }, ""},
		{"bad name", func(s *sdk.Spec) { s.Name = "a b" }, "name"},
		{"zero vcpus", func(s *sdk.Spec) { s.VCPUs = 0 }, "vcpus"},
		{"too many vcpus", func(s *sdk.Spec) { s.VCPUs = 1000 }, "vcpus"},
		{"zero memory", func(s *sdk.Spec) { s.MemoryMiB = 0 }, "memory_mib"},
		{"memory above host", func(s *sdk.Spec) { s.MemoryMiB = 1 << 40 }, "memory_mib"},
		{"no kernel", func(s *sdk.Spec) { s.Kernel = "" }, "kernel"},
		{"missing kernel", func(s *sdk.Spec) { s.Kernel = "/nonexistent/vmlinuz" }, "kernel"},
		{"relative kernel", func(s *sdk.Spec) { s.Kernel = "vmlinuz" }, "kernel"},
		{"comma in kernel", func(s *sdk.Spec) { s.Kernel = comma }, "kernel"},
		{"comma in initrd", func(s *sdk.Spec) { s.Initrd = comma }, "initrd"},
		{"initrd is a dir", func(s *sdk.Spec) { s.Initrd = dir }, "initrd"},
		{"disk format", func(s *sdk.Spec) { s.Disks = []sdk.Disk{{Path: kernel, Format: "vmdk"}} }, "disks[0].format"},
		{"comma in disk", func(s *sdk.Spec) { s.Disks = []sdk.Disk{{Path: comma}} }, "disks[0].path"},
		{"unknown option", func(s *sdk.Spec) { s.Options = map[string]string{"machine": "pc"} }, "options.machine"},
		{"bad accel", func(s *sdk.Spec) { s.Options = map[string]string{"accel": "hvf"} }, "options.accel"},
		{"empty uri", func(s *sdk.Spec) { s.Options = map[string]string{"uri": ""} }, "options.uri"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			tt.edit(&s)
			err := validateSpec(s, 4096)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("validateSpec = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, sdk.ErrInvalidSpec) || !strings.Contains(err.Error(), ": "+tt.field+": ") {
				t.Fatalf("validateSpec = %v, want ErrInvalidSpec naming %s", err, tt.field)
			}
		})
	}
}

func TestValidateVMIDAndWorkDir(t *testing.T) {
	for _, id := range []string{"", "a/b", "-x", strings.Repeat("a", 129)} {
		if err := validateVMID(id); !errors.Is(err, sdk.ErrInvalidSpec) {
			t.Errorf("validateVMID(%q) = %v", id, err)
		}
	}
	if err := validateVMID("01J7-abc_d.e"); err != nil {
		t.Errorf("validateVMID: %v", err)
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"rel", "/nonexistent/dir", file} {
		if err := validateWorkDir(dir); !errors.Is(err, sdk.ErrInvalidSpec) {
			t.Errorf("validateWorkDir(%q) = %v", dir, err)
		}
	}
}
