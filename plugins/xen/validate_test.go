package xen

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
	file := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kernel, initrd, disk := file("vmlinuz"), file("initrd.img"), file("root.raw")
	comma := file("vmlinuz,if=none")
	quote := file(`vm"linuz`)
	good := sdk.Spec{Name: "web-1", VCPUs: 1, MemoryMiB: 128, Kernel: kernel, Initrd: initrd}

	tests := []struct {
		name  string
		mod   func(s *sdk.Spec)
		field string // "" means valid
	}{
		{"valid", nil, ""},
		{"valid pvh with disk", func(s *sdk.Spec) {
			s.Options = map[string]string{"type": "pvh"}
			s.Disks = []sdk.Disk{{Path: disk, Format: "raw"}}
		}, ""},
		{"bad name", func(s *sdk.Spec) { s.Name = "-x" }, "name"},
		{"zero vcpus", func(s *sdk.Spec) { s.VCPUs = 0 }, "vcpus"},
		{"too many vcpus", func(s *sdk.Spec) { s.VCPUs = 65 }, "vcpus"},
		{"too little memory", func(s *sdk.Spec) { s.MemoryMiB = 16 }, "memory_mib"},
		{"no kernel", func(s *sdk.Spec) { s.Kernel = "" }, "kernel"},
		{"missing kernel", func(s *sdk.Spec) { s.Kernel = "/nonexistent/vmlinuz" }, "kernel"},
		{"relative kernel", func(s *sdk.Spec) { s.Kernel = "vmlinuz" }, "kernel"},
		{"comma in kernel", func(s *sdk.Spec) { s.Kernel = comma }, "kernel"},
		{"quote in kernel", func(s *sdk.Spec) { s.Kernel = quote }, "kernel"},
		{"comma in initrd", func(s *sdk.Spec) { s.Initrd = comma }, "initrd"},
		{"directory as initrd", func(s *sdk.Spec) { s.Initrd = dir }, "initrd"},
		{"quote in cmdline", func(s *sdk.Spec) { s.Cmdline = `init="/bin/sh"` }, "cmdline"},
		{"qcow2 disk", func(s *sdk.Spec) { s.Disks = []sdk.Disk{{Path: disk, Format: "qcow2"}} }, "disks[0].format"},
		{"comma in disk", func(s *sdk.Spec) { s.Disks = []sdk.Disk{{Path: comma}} }, "disks[0].path"},
		{"unknown option", func(s *sdk.Spec) { s.Options = map[string]string{"machine": "q35"} }, "options.machine"},
		{"hvm type", func(s *sdk.Spec) { s.Options = map[string]string{"type": "hvm"} }, "options.type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			if tt.mod != nil {
				tt.mod(&s)
			}
			err := validateSpec(s)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("validateSpec: %v", err)
				}
				return
			}
			if !errors.Is(err, sdk.ErrInvalidSpec) {
				t.Fatalf("validateSpec = %v, want ErrInvalidSpec", err)
			}
			if !strings.Contains(err.Error(), ": "+tt.field+": ") {
				t.Fatalf("error %q does not name field %s", err, tt.field)
			}
		})
	}
}

func TestValidateWorkDir(t *testing.T) {
	dir := t.TempDir()
	for _, bad := range []string{"relative", filepath.Join(dir, "missing"), dir + `/a"b`} {
		if err := validateWorkDir(bad); !errors.Is(err, sdk.ErrInvalidSpec) {
			t.Errorf("validateWorkDir(%q) = %v, want ErrInvalidSpec", bad, err)
		}
	}
	if err := validateWorkDir(dir); err != nil {
		t.Errorf("validateWorkDir(%q): %v", dir, err)
	}
}
