package qemu

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hyperd/hyperd/sdk"
)

func argAfter(a []string, flag, prefix string) string {
	for i := 0; i+1 < len(a); i++ {
		if a[i] == flag && strings.HasPrefix(a[i+1], prefix) {
			return a[i+1]
		}
	}
	return ""
}

// FuzzOptionEscaping: whatever the VM name and work directory, they reach
// QEMU's option syntax as one value each and add no option.
func FuzzOptionEscaping(f *testing.F) {
	f.Add("/srv/x,server=off,path=/etc/evil", "web")
	f.Add("/tmp/a,,b", "a,b=c")
	f.Add("/", ",")
	f.Fuzz(func(t *testing.T, workDir, name string) {
		a := argv(launch{
			binary: "qemu-system-x86_64", name: name, machine: "q35", accel: AccelTCG,
			vcpus: 1, memMiB: 64, kernel: "/k", workDir: workDir,
		})

		console := splitOpts(argAfter(a, "-chardev", "file,"))
		want := []string{"file", "id=console", "path=" + filepath.Join(workDir, consoleLogName)}
		if !slices.Equal(console, want) {
			t.Fatalf("console chardev for work dir %q parses as %q, want %q", workDir, console, want)
		}
		qmp := splitOpts(argAfter(a, "-chardev", "socket,"))
		if len(qmp) != 5 || qmp[2] != "path="+qmpSocketPath(workDir) {
			t.Fatalf("qmp chardev for work dir %q parses as %q", workDir, qmp)
		}
		guest := splitOpts(argAfter(a, "-name", "guest="))
		if len(guest) != 1 || guest[0] != "guest="+name {
			t.Fatalf("-name for %q parses as %q", name, guest)
		}
	})
}

// FuzzValidateSpec: no spec makes validation panic, and a spec it accepts
// carries no comma in a path and sane sizes.
func FuzzValidateSpec(f *testing.F) {
	f.Add("web", uint32(1), uint64(256), "/boot/vmlinuz", "", "console=ttyS0", "/tmp/d.img", "raw")
	f.Add("", uint32(0), uint64(0), "/no,such", "/x,y", "", "", "qcow2")
	f.Fuzz(func(t *testing.T, name string, vcpus uint32, mem uint64, kernel, initrd, cmdline, disk, format string) {
		s := sdk.Spec{Name: name, VCPUs: vcpus, MemoryMiB: mem, Kernel: kernel, Initrd: initrd, Cmdline: cmdline}
		if disk != "" {
			s.Disks = []sdk.Disk{{Path: disk, Format: format}}
		}
		err := validateSpec(s, 4096)
		if err == nil {
			if strings.Contains(kernel+initrd+disk, ",") {
				t.Fatalf("accepted a comma in a path: %+v", s)
			}
			if vcpus == 0 || mem == 0 || mem > 4096 {
				t.Fatalf("accepted sizes vcpus %d memory %d", vcpus, mem)
			}
		}
	})
}
