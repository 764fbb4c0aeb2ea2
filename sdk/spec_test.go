package sdk

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckSpec(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kernel := file("vmlinuz", 0o644)
	comma := file("a,b", 0o644)
	rules := SpecRules{HostMemoryMiB: 1024, DiskFormats: []string{"raw", "qcow2"}}
	good := Spec{Name: "vm", VCPUs: 1, MemoryMiB: 64, Kernel: kernel}

	tests := []struct {
		name  string
		edit  func(*Spec)
		field string // "" means valid
	}{
		{"valid", func(*Spec) {}, ""},
		{"disk ok", func(s *Spec) { s.Disks = []Disk{{Path: kernel, Format: "qcow2", ReadOnly: true}} }, ""},
		{"bad name", func(s *Spec) { s.Name = "a/b" }, "name"},
		{"no vcpus", func(s *Spec) { s.VCPUs = 0 }, "vcpus"},
		{"many vcpus", func(s *Spec) { s.VCPUs = 65 }, "vcpus"},
		{"little memory", func(s *Spec) { s.MemoryMiB = 8 }, "memory_mib"},
		{"host memory", func(s *Spec) { s.MemoryMiB = 1024 }, "memory_mib"},
		{"no kernel", func(s *Spec) { s.Kernel = "" }, "kernel"},
		{"relative kernel", func(s *Spec) { s.Kernel = "vmlinuz" }, "kernel"},
		{"comma kernel", func(s *Spec) { s.Kernel = comma }, "kernel"},
		{"missing initrd", func(s *Spec) { s.Initrd = dir + "/nope" }, "initrd"},
		{"dir initrd", func(s *Spec) { s.Initrd = dir }, "initrd"},
		{"disk format", func(s *Spec) { s.Disks = []Disk{{Path: kernel, Format: "vmdk"}} }, "disks[0].format"},
		{"char device disk", func(s *Spec) { s.Disks = []Disk{{Path: "/dev/null", ReadOnly: true}} }, "disks[0].path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			tt.edit(&s)
			err := CheckSpec(s, rules)
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), tt.field+":") {
				t.Fatalf("got %v, want ErrInvalidSpec naming %s", err, tt.field)
			}
		})
	}
}
