package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hyperd/hyperd/internal/testguest"
	"github.com/hyperd/hyperd/plugins/qemu"
	"github.com/hyperd/hyperd/sdk"
)

// BenchmarkStatus is the driver RPC section as Go benchmarks, for
// `go test -bench Status ./bench`: the qemu driver's Status of a paused
// VM, through its plugin binary and in process. hyperd-bench reports the
// same with percentiles.
func BenchmarkStatus(b *testing.B) {
	binDir := os.Getenv("HYPERD_BIN_DIR")
	if binDir == "" {
		b.Skip("HYPERD_BIN_DIR unset: it names the directory of make build's binaries")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		b.Skip("qemu-system-x86_64 not found: install Debian's qemu-system-x86 (make deps)")
	}
	b.Setenv("HYPERD_QEMU_ACCEL", "tcg")
	guest := testguest.Build(b)
	g := guestSpec{kernel: guest.Kernel, initrd: guest.Initrd, cmdline: testguest.Cmdline, memoryMiB: guestMemoryMiB}
	ctx := context.Background()

	p, err := sdk.Launch(ctx, filepath.Join(binDir, "plugins", "hyperd-driver-qemu"), sdk.LaunchOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	in := qemu.New(nil)
	defer in.Close()

	for _, c := range []struct {
		tag string
		d   sdk.Driver
	}{{"plugin", p.Client}, {"inproc", in}} {
		b.Run(c.tag, func(b *testing.B) {
			t, err := prepareStatus(ctx, c.d, b.TempDir(), c.tag, g)
			if err != nil {
				b.Fatal(err)
			}
			defer t.release(ctx, c.tag)
			for b.Loop() {
				if _, err := c.d.Status(ctx, c.tag+"-paused", t.paused); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
