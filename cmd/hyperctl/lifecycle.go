package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
)

// vmAction is one call that changes a VM's state and returns the VM.
type vmAction func(ctx context.Context, c *client, id string) (*apiv1.VM, error)

func newLifecycleCmds(a *app) []*cobra.Command {
	var stopTimeout durationValue
	stop := a.actionCmd(&cobra.Command{
		Use:   "stop ID...",
		Short: "Power VMs off gracefully, killing them past a timeout",
		Long: `Ask each VM's guest to power off, wait up to --timeout, then kill it.
Return once the VM is stopped and print its final state.

--timeout is a duration such as 30s or 2m; 0, the default, leaves the
wait to hyperd's configured default.`,
		Example: `  hyperctl stop web
  hyperctl stop --timeout 2m web db`,
	}, func(ctx context.Context, c *client, id string) (*apiv1.VM, error) {
		req := &apiv1.StopVMRequest{Id: id}
		if d := time.Duration(stopTimeout); d > 0 {
			req.Timeout = durationpb.New(d)
		}
		return call(ctx, c, c.api.StopVM, req)
	})
	stop.Flags().Var(&stopTimeout, "timeout",
		"how long the guest gets to power off before a kill (default: hyperd's)")

	return []*cobra.Command{
		a.actionCmd(&cobra.Command{
			Use:   "start ID...",
			Short: "Start stopped VMs again",
			Long: `Start each VM that is created or stopped, with the spec it was run with,
and print its state.`,
			Example: `  hyperctl start web`,
		}, func(ctx context.Context, c *client, id string) (*apiv1.VM, error) {
			return call(ctx, c, c.api.StartVM, &apiv1.StartVMRequest{Id: id})
		}),
		stop,
		a.actionCmd(&cobra.Command{
			Use:   "kill ID...",
			Short: "Stop VMs at once, without asking the guest",
			Long: `Kill each VM's hypervisor process, as pulling the power cord would, and
print its state. Data the guest had not written is lost; prefer stop.`,
			Example: `  hyperctl kill web`,
		}, func(ctx context.Context, c *client, id string) (*apiv1.VM, error) {
			return call(ctx, c, c.api.KillVM, &apiv1.KillVMRequest{Id: id})
		}),
		a.actionCmd(&cobra.Command{
			Use:   "pause ID...",
			Short: "Freeze running VMs",
			Long: `Pause each VM's vCPUs; it keeps its memory and devices until resumed.
Needs a driver with the pause capability (see hyperctl drivers).`,
			Example: `  hyperctl pause web`,
		}, func(ctx context.Context, c *client, id string) (*apiv1.VM, error) {
			return call(ctx, c, c.api.PauseVM, &apiv1.PauseVMRequest{Id: id})
		}),
		a.actionCmd(&cobra.Command{
			Use:     "resume ID...",
			Short:   "Resume paused VMs",
			Long:    `Let each paused VM run again where it stopped, and print its state.`,
			Example: `  hyperctl resume web`,
		}, func(ctx context.Context, c *client, id string) (*apiv1.VM, error) {
			return call(ctx, c, c.api.ResumeVM, &apiv1.ResumeVMRequest{Id: id})
		}),
		newRmCmd(a),
	}
}

// actionCmd completes cmd into a command that applies act to each VM
// named on the command line and prints each VM's new state.
func (a *app) actionCmd(cmd *cobra.Command, act vmAction) *cobra.Command {
	cmd.GroupID = "vm"
	cmd.Args = someIDs
	cmd.ValidArgsFunction = a.completeVMs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return a.eachVM(cmd, args, func(ctx context.Context, c *client, id string) error {
			vm, err := act(ctx, c, id)
			if err != nil {
				return err
			}
			return printState(a.stdout, id, vm)
		})
	}
	return cmd
}

// printState writes "ID STATE", then the reason in parentheses if any.
func printState(w io.Writer, id string, vm *apiv1.VM) error {
	if vm.GetId() != "" {
		id = vm.GetId()
	}
	line := id + " " + vm.GetState()
	if r := vmReason(vm); r != "" {
		line += " (" + r + ")"
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

// eachVM resolves each argument to a VM id and applies act to it. With
// several VMs it reports a failure and goes on, so that one bad id does
// not leave the others untouched; it stops at once when hyperd is gone or
// the operator interrupts.
func (a *app) eachVM(
	cmd *cobra.Command,
	args []string,
	act func(context.Context, *client, string) error,
) error {
	c, err := a.dial()
	if err != nil {
		return err
	}
	defer c.close()

	ctx := cmd.Context()
	failed := false
	for _, arg := range args {
		err := func() error {
			id, err := c.resolve(ctx, arg)
			if err != nil {
				return err
			}
			return act(ctx, c, id)
		}()

		var unreachable *unreachableError
		switch {
		case err == nil:
			continue
		case len(args) == 1, errors.Is(err, errInterrupted), errors.As(err, &unreachable):
			return err
		}
		fmt.Fprintf(a.stderr, "hyperctl: %s: %v\n", arg, err)
		failed = true
	}
	if failed {
		return errReported
	}
	return nil
}

func newRmCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm ID...",
		Aliases: []string{"remove"},
		GroupID: "vm",
		Short:   "Remove stopped VMs",
		Long: `Forget each stopped VM and free what its driver holds for it; print the
ids removed. hyperd refuses to remove a VM that still runs: stop it first,
or give --force to kill it and remove it.`,
		Example: `  hyperctl rm web
  hyperctl rm --force $(hyperctl ls -q)`,
		Args:              someIDs,
		ValidArgsFunction: a.completeVMs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.eachVM(cmd, args, func(ctx context.Context, c *client, id string) error {
				if force {
					// A VM that is not running cannot be killed; hyperd says
					// so with FailedPrecondition and removing goes ahead.
					_, err := call(ctx, c, c.api.KillVM, &apiv1.KillVMRequest{Id: id})
					if err != nil && !isCode(err, codes.FailedPrecondition) {
						return fmt.Errorf("kill before removing: %w", err)
					}
				}
				if _, err := call(ctx, c, c.api.RemoveVM, &apiv1.RemoveVMRequest{Id: id}); err != nil {
					return err
				}
				_, err := fmt.Fprintln(a.stdout, id)
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill a running VM first")
	return cmd
}
