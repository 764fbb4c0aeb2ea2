// Command hyperd-bench measures hyperd against bare QEMU and libvirt and
// prints a markdown table; see package bench. It needs root (libvirt's
// system socket), qemu-system-x86_64, a running libvirtd, the binaries of
// `make build` and the guest of `make guest`.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hyperd/hyperd/bench"
)

func main() {
	binDir := flag.String("bin", "bin", "directory holding hyperd and plugins/hyperd-driver-*")
	guestDir := flag.String("guest", "build/guest", "directory holding the guest's vmlinuz and initrd.img")
	quick := flag.Bool("quick", false, "scale every count down, to check that each measurement works (about a minute); its times are not to be judged")
	out := flag.String("json", "bench.json", "file to write the results to, as JSON")
	flag.Parse()

	counts := bench.FullCounts
	if *quick {
		counts = bench.QuickCounts
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, runErr := bench.Run(ctx, bench.Config{
		BinDir:   *binDir,
		GuestDir: *guestDir,
		Counts:   counts,
		Progress: os.Stderr,
	})
	if res == nil {
		fmt.Fprintln(os.Stderr, "hyperd-bench:", runErr)
		os.Exit(1)
	}
	if err := bench.WriteMarkdown(os.Stdout, res); err != nil {
		fmt.Fprintln(os.Stderr, "hyperd-bench:", err)
		os.Exit(1)
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err == nil {
		err = os.WriteFile(*out, append(b, '\n'), 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hyperd-bench: write results:", err)
		os.Exit(1)
	}
	if runErr != nil {
		fmt.Fprintln(os.Stderr, "hyperd-bench:", runErr)
		os.Exit(1)
	}
}
