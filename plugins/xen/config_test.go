package xen

import (
	"strings"
	"testing"

	"github.com/hyperd/hyperd/sdk"
)

func TestRender(t *testing.T) {
	base := domainConfig{
		name:   "hyperd-0a1b2c3d4e5f",
		uuid:   "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b",
		typ:    typePV,
		kernel: "/boot/vmlinuz",
		memMiB: 256,
		vcpus:  2,
	}
	tests := []struct {
		name    string
		mod     func(c *domainConfig)
		want    []string // lines the config must hold
		notWant []string
	}{
		{
			name: "minimal pv",
			want: []string{
				`name = "hyperd-0a1b2c3d4e5f"`,
				`uuid = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"`,
				`type = "pv"`,
				`kernel = "/boot/vmlinuz"`,
				`memory = 256`, `maxmem = 256`, `vcpus = 2`,
				`on_poweroff = "preserve"`, `on_reboot = "preserve"`, `on_crash = "preserve"`,
			},
			notWant: []string{"ramdisk", "extra", "disk"},
		},
		{
			name: "pvh with initrd and cmdline",
			mod: func(c *domainConfig) {
				c.typ, c.ramdisk, c.extra = typePVH, "/boot/initrd.img", "console=hvc0 panic=-1 quiet"
			},
			want: []string{`type = "pvh"`, `ramdisk = "/boot/initrd.img"`, `extra = "console=hvc0 panic=-1 quiet"`},
		},
		{
			name: "disks in order, read-only marked",
			mod: func(c *domainConfig) {
				c.disks = []sdk.Disk{{Path: "/img/root.raw"}, {Path: "/img/seed.iso", ReadOnly: true}}
			},
			want: []string{`disk = [ "format=raw, vdev=xvda, access=rw, target=/img/root.raw", ` +
				`"format=raw, vdev=xvdb, access=ro, target=/img/seed.iso" ]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			if tt.mod != nil {
				tt.mod(&c)
			}
			got, err := c.render("0a1b2c3d4e5f")
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			lines := strings.Split(got, "\n")
			for _, w := range tt.want {
				if !contains(lines, w) {
					t.Errorf("config lacks line %q:\n%s", w, got)
				}
			}
			for _, nw := range tt.notWant {
				if strings.Contains(got, nw) {
					t.Errorf("config holds %q:\n%s", nw, got)
				}
			}
		})
	}
}

func TestRenderRefusesUnquotable(t *testing.T) {
	for _, extra := range []string{`a "quoted" word`, `back\slash`, "new\nline"} {
		c := domainConfig{name: "n", uuid: "u", typ: typePV, kernel: "/k", extra: extra, memMiB: 64, vcpus: 1}
		if _, err := c.render("x"); err == nil {
			t.Errorf("render accepted extra %q", extra)
		}
	}
}

func TestVdev(t *testing.T) {
	for i, want := range map[int]string{0: "xvda", 1: "xvdb", 25: "xvdz", 26: "xvdaa", 27: "xvdab", 51: "xvdaz", 52: "xvdba"} {
		if got := vdev(i); got != want {
			t.Errorf("vdev(%d) = %s, want %s", i, got, want)
		}
	}
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}
