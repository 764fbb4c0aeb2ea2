package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/hyperd/hyperd/sdk/drivertest"
)

// defaultGuestDir is where `make guest` puts the test guest; check uses
// its files unless told otherwise.
const defaultGuestDir = "build/guest"

func newDriversCheckCmd(a *app) *cobra.Command {
	output := outputText
	var (
		guest   drivertest.Guest
		skip    []string
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "check PATH",
		Short: "Run the conformance suite against a driver binary",
		Long: `Check that the driver binary at PATH keeps hyperd's driver contract, by
running the SDK's conformance suite against it. No daemon is needed:
hyperctl starts the driver itself, as hyperd would, once per check and
twice for the recover checks, killing one mid-life.

The checks boot VMs from the test guest (a kernel, an initrd that powers
off on the power button, and one that ignores it). By default they come
from ./build/guest, where 'make guest' builds them; without a kernel, the
checks that boot are skipped. VMs live in a temporary directory, and
every process they leave behind is reported and killed.

Each check prints PASS, FAIL with its reasons, or SKIP with why, and its
duration. hyperctl exits 1 when any check failed. The checks are:
` + checkList(),
		Example: `  hyperctl drivers check bin/plugins/hyperd-driver-qemu
  hyperctl drivers check ./hyperd-driver-uml --kernel ./linux --initrd ./initrd.img -o json
  hyperctl drivers check ./hyperd-driver-xen --skip stop_past_deadline -v`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch len(args) {
			case 0:
				return usageErrorf(cmd, "missing PATH of the driver binary")
			case 1:
				return nil
			}
			return usageErrorf(cmd, "check takes one driver binary, got %d arguments", len(args))
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			defaultGuest(&guest)
			if guest.Kernel == "" {
				fmt.Fprintf(a.stderr, "hyperctl: no guest kernel (--kernel, or 'make guest' for %s): "+
					"the checks that boot a VM are skipped\n", defaultGuestDir)
			}
			cfg := drivertest.Config{Binary: args[0], Guest: guest, Skip: map[string]string{}}
			for _, name := range skip {
				cfg.Skip[name] = "--skip"
			}
			rep, err := drivertest.Check(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if output == outputJSON {
				err = rep.WriteJSON(a.stdout)
			} else {
				err = rep.WriteText(a.stdout, verbose)
			}
			switch {
			case err != nil:
				return err
			case cmd.Context().Err() != nil:
				return errInterrupted
			case rep.Failed():
				return errReported
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&guest.Kernel, "kernel", "", "guest kernel image (default "+defaultGuestDir+"/vmlinuz if present)")
	f.StringVar(&guest.Initrd, "initrd", "",
		"initrd that powers off on the power button (default "+defaultGuestDir+"/initrd.img if present)")
	f.StringVar(&guest.StubbornInitrd, "stubborn-initrd", "",
		"initrd that ignores the power button (default "+defaultGuestDir+"/initrd-stubborn.img if present)")
	f.StringVar(&guest.Cmdline, "cmdline", "", `guest kernel command line (default "console=ttyS0 panic=-1 quiet")`)
	f.StringVar(&guest.ReadyLine, "ready-line", "",
		"console line that says the guest is up (default "+drivertest.DefaultReadyLine+")")
	f.StringSliceVar(&skip, "skip", nil, "names of checks not to run, comma-separated")
	f.BoolVarP(&verbose, "verbose", "v", false, "print the log of each failed check")
	f.VarP(&output, "output", "o", "print as text or json")
	return cmd
}

// defaultGuest fills in each guest file not given from defaultGuestDir,
// when it is there.
func defaultGuest(g *drivertest.Guest) {
	for _, f := range []struct {
		p    *string
		name string
	}{
		{&g.Kernel, "vmlinuz"},
		{&g.Initrd, "initrd.img"},
		{&g.StubbornInitrd, "initrd-stubborn.img"},
	} {
		if *f.p != "" {
			// The driver runs elsewhere and takes absolute paths only.
			if abs, err := filepath.Abs(*f.p); err == nil {
				*f.p = abs
			}
			continue
		}
		path, err := filepath.Abs(filepath.Join(defaultGuestDir, f.name))
		if err != nil {
			continue // no working directory: nothing to default to
		}
		if _, err := os.Stat(path); err == nil {
			*f.p = path
		}
	}
}

// checkList lists the suite's checks for the help text.
func checkList() string {
	s := ""
	for _, name := range drivertest.Checks() {
		s += "  " + name + "\n"
	}
	return s
}
