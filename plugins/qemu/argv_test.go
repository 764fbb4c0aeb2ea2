package qemu

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/hyperd/hyperd/sdk"
)

// splitOpts parses QEMU's key=value,key=value option syntax the way
// QemuOpts does: a doubled comma is a literal comma, a single one ends a
// field. The first field may be a bare implied value.
func splitOpts(s string) []string {
	var fields []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			if i+1 < len(s) && s[i+1] == ',' {
				cur.WriteByte(',')
				i++
				continue
			}
			fields = append(fields, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(s[i])
	}
	return append(fields, cur.String())
}

// argAfter returns the arguments following each occurrence of flag.
func argsAfter(a []string, flag string) []string {
	var out []string
	for i := 0; i+1 < len(a); i++ {
		if a[i] == flag {
			out = append(out, a[i+1])
		}
	}
	return out
}

func TestArgv(t *testing.T) {
	base := launch{
		binary:  "/usr/bin/qemu-system-x86_64",
		name:    "web-1",
		machine: "q35",
		accel:   AccelTCG,
		vcpus:   2,
		memMiB:  256,
		kernel:  "/guest/vmlinuz",
		workDir: "/var/lib/hyperd/vms/a",
	}
	tests := []struct {
		name  string
		edit  func(l *launch)
		check func(t *testing.T, a []string)
	}{
		{
			name: "tcg",
			check: func(t *testing.T, a []string) {
				want := map[string]string{
					"-machine": "q35,accel=tcg",
					"-cpu":     "max",
					"-smp":     "2",
					"-m":       "256",
					"-name":    "guest=web-1",
					"-kernel":  "/guest/vmlinuz",
					"-serial":  "chardev:console",
					"-mon":     "chardev=qmp,mode=control",
					"-pidfile": "/var/lib/hyperd/vms/a/qemu.pid",
				}
				for flag, v := range want {
					if got := argsAfter(a, flag); !slices.Equal(got, []string{v}) {
						t.Errorf("%s = %q, want [%q]", flag, got, v)
					}
				}
				for _, f := range []string{"-S", "-nodefaults", "-no-user-config", "-no-reboot"} {
					if !slices.Contains(a, f) {
						t.Errorf("argv lacks %s", f)
					}
				}
				if slices.Contains(a, "-initrd") || slices.Contains(a, "-append") || slices.Contains(a, "-blockdev") {
					t.Errorf("argv has -initrd, -append or -blockdev without cause: %q", a)
				}
				if a[0] != base.binary {
					t.Errorf("argv[0] = %q", a[0])
				}
			},
		},
		{
			name: "kvm uses the host cpu",
			edit: func(l *launch) { l.accel = AccelKVM; l.machine = "pc" },
			check: func(t *testing.T, a []string) {
				if got := argsAfter(a, "-cpu"); !slices.Equal(got, []string{"host"}) {
					t.Errorf("-cpu = %q, want host", got)
				}
				if got := argsAfter(a, "-machine"); !slices.Equal(got, []string{"pc,accel=kvm"}) {
					t.Errorf("-machine = %q", got)
				}
			},
		},
		{
			name: "initrd and cmdline are passed whole",
			edit: func(l *launch) { l.initrd = "/guest/initrd"; l.cmdline = "console=ttyS0 a=b,c" },
			check: func(t *testing.T, a []string) {
				if got := argsAfter(a, "-initrd"); !slices.Equal(got, []string{"/guest/initrd"}) {
					t.Errorf("-initrd = %q", got)
				}
				if got := argsAfter(a, "-append"); !slices.Equal(got, []string{"console=ttyS0 a=b,c"}) {
					t.Errorf("-append = %q", got)
				}
			},
		},
		{
			name: "disks as json blockdev and device",
			edit: func(l *launch) {
				l.disks = []sdk.Disk{
					{Path: "/d/root.qcow2", Format: "qcow2"},
					{Path: "/d/data,x=y.img", ReadOnly: true},
				}
			},
			check: func(t *testing.T, a []string) {
				bd := argsAfter(a, "-blockdev")
				if len(bd) != 2 {
					t.Fatalf("-blockdev = %q, want 2", bd)
				}
				var b struct {
					Driver   string `json:"driver"`
					NodeName string `json:"node-name"`
					ReadOnly bool   `json:"read-only"`
					File     struct {
						Filename string `json:"filename"`
					} `json:"file"`
				}
				if err := json.Unmarshal([]byte(bd[1]), &b); err != nil {
					t.Fatalf("blockdev %q: %v", bd[1], err)
				}
				if b.Driver != "raw" || b.NodeName != "disk1" || !b.ReadOnly || b.File.Filename != "/d/data,x=y.img" {
					t.Errorf("blockdev 1 = %+v", b)
				}
				if !strings.Contains(bd[0], `"driver":"qcow2"`) {
					t.Errorf("blockdev 0 = %s", bd[0])
				}
				dev := argsAfter(a, "-device")
				if len(dev) != 2 || !strings.Contains(dev[0], `"drive":"disk0"`) || !strings.Contains(dev[0], "virtio-blk-pci") {
					t.Errorf("-device = %q", dev)
				}
			},
		},
		{
			name: "a comma in work_dir adds no option",
			edit: func(l *launch) { l.workDir = "/srv/x,server=off,path=/etc/evil" },
			check: func(t *testing.T, a []string) {
				want := map[string][]string{
					"-chardev": {
						"socket|id=qmp|path=/srv/x,server=off,path=/etc/evil/qmp.sock|server=on|wait=off",
						"file|id=console|path=/srv/x,server=off,path=/etc/evil/console.log",
					},
				}
				got := argsAfter(a, "-chardev")
				if len(got) != len(want["-chardev"]) {
					t.Fatalf("-chardev = %q", got)
				}
				for i, arg := range got {
					if fields := strings.Join(splitOpts(arg), "|"); fields != want["-chardev"][i] {
						t.Errorf("-chardev %q parses as %q, want %q", arg, fields, want["-chardev"][i])
					}
				}
				// -pidfile takes its argument whole, unescaped.
				if got := argsAfter(a, "-pidfile"); !slices.Equal(got, []string{"/srv/x,server=off,path=/etc/evil/qemu.pid"}) {
					t.Errorf("-pidfile = %q", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := base
			if tt.edit != nil {
				tt.edit(&l)
			}
			tt.check(t, argv(l))
		})
	}
}

func TestOptValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"a,b", "a,,b"},
		{",,", ",,,,"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := optValue(tt.in)
			if got != tt.want {
				t.Errorf("optValue(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if f := splitOpts("k=" + got); len(f) != 1 || f[0] != "k="+tt.in {
				t.Errorf("escaped %q splits as %q", tt.in, f)
			}
		})
	}
}
