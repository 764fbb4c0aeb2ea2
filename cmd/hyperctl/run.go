package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
)

// runOptions are the flags of run; each value checks itself when parsed.
type runOptions struct {
	name    string
	driver  string
	kernel  pathValue
	initrd  pathValue
	cmdline string
	memory  sizeValue
	cpus    countValue
	disks   disksValue
	options optionsValue
}

// defaultMemoryMiB is enough for a small Linux guest with an initrd.
const defaultMemoryMiB = 256

func newRunCmd(a *app) *cobra.Command {
	o := &runOptions{memory: defaultMemoryMiB, cpus: 1}
	cmd := &cobra.Command{
		Use:     "run [flags]",
		GroupID: "vm",
		Short:   "Create and start a VM",
		Long: `Create a VM and start it; print its id, alone, on stdout.

hyperd stores the VM, creates it through the driver and boots it. The
daemon reads the files, so relative paths are made absolute here, against
hyperctl's working directory.

--memory is a number of MiB or a size with a binary unit: 512, 512M, 2G,
1.5G. --disk is PATH[:ro][:format=FORMAT] and may repeat; --opt KEY=VALUE
passes a driver-specific option and may repeat. Without --driver hyperd
uses the host's default driver.`,
		Example: `  hyperctl run --name web --kernel ./vmlinuz --initrd ./initrd.img \
      --cmdline "console=ttyS0" --memory 1G --cpus 2
  id=$(hyperctl run --name db --kernel /boot/vmlinuz --disk ./root.img --disk ./seed.iso:ro)`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.dial()
			if err != nil {
				return err
			}
			defer c.close()

			resp, err := call(cmd.Context(), c, c.api.RunVM, o.request())
			if err != nil {
				return err
			}
			id := resp.GetVm().GetId()
			if id == "" {
				return errors.New("hyperd answered without a VM id")
			}
			_, err = fmt.Fprintln(a.stdout, id)
			return err
		},
	}

	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "name of the VM (required): 1 to 63 letters, digits, dots, dashes or underscores")
	f.StringVar(&o.driver, "driver", "", "driver to run the VM with (default: the host's default)")
	f.Var(&o.kernel, "kernel", "kernel image to boot")
	f.Var(&o.initrd, "initrd", "initial ramdisk")
	f.StringVar(&o.cmdline, "cmdline", "", "kernel command line")
	f.Var(&o.memory, "memory", "guest memory: MiB, or a size like 512M or 2G")
	f.Var(&o.cpus, "cpus", "number of vCPUs")
	f.Var(&o.disks, "disk", "disk image as PATH[:ro][:format=FORMAT]; repeat for more")
	f.Var(&o.options, "opt", "driver-specific option as KEY=VALUE; repeat for more")
	return cmd
}

// request builds the RunVM request from the parsed flags.
func (o *runOptions) request() *apiv1.RunVMRequest {
	return &apiv1.RunVMRequest{
		Driver: o.driver,
		Spec: &apiv1.VMSpec{
			Name:      o.name,
			Vcpus:     uint32(o.cpus),
			MemoryMib: uint64(o.memory),
			Kernel:    string(o.kernel),
			Initrd:    string(o.initrd),
			Cmdline:   o.cmdline,
			Disks:     o.disks,
			Options:   o.options,
		},
	}
}
