package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
)

// resolve turns what the operator typed into a VM id. It lists the VMs
// once per invocation; when hyperd cannot list them, or nothing matches,
// the argument goes to hyperd as typed and hyperd has the last word.
func (c *client) resolve(ctx context.Context, arg string) (string, error) {
	if arg == "" {
		return "", errors.New("empty VM id")
	}
	if c.vms == nil {
		resp, err := call(ctx, c, c.api.ListVMs, &apiv1.ListVMsRequest{})
		var ae *apiError
		switch {
		case errors.As(err, &ae):
			return arg, nil
		case err != nil:
			return "", err
		}
		c.vms = resp.GetVms()
		if c.vms == nil {
			c.vms = []*apiv1.VM{}
		}
	}
	return matchVM(c.vms, arg)
}

// matchVM picks the VM arg names: an exact id first, then an exact name,
// then a unique id prefix. With no match it returns arg unchanged.
func matchVM(vms []*apiv1.VM, arg string) (string, error) {
	var byName, byPrefix []*apiv1.VM
	for _, vm := range vms {
		switch {
		case vm.GetId() == arg:
			return arg, nil
		case vm.GetSpec().GetName() == arg:
			byName = append(byName, vm)
		case strings.HasPrefix(vm.GetId(), arg):
			byPrefix = append(byPrefix, vm)
		}
	}

	for _, found := range [][]*apiv1.VM{byName, byPrefix} {
		switch len(found) {
		case 0:
			continue
		case 1:
			return found[0].GetId(), nil
		}
		return "", ambiguous(arg, found)
	}
	return arg, nil
}

func ambiguous(arg string, vms []*apiv1.VM) error {
	names := make([]string, 0, len(vms))
	for _, vm := range vms {
		s := vm.GetId()
		if n := vm.GetSpec().GetName(); n != "" {
			s += " (" + n + ")"
		}
		names = append(names, s)
	}
	sort.Strings(names)
	return fmt.Errorf("%q matches %d VMs: %s; give more of the id",
		arg, len(vms), strings.Join(names, ", "))
}

// completeVMs offers VM ids, with names as descriptions, to shell
// completion. It stays quiet when hyperd is not there.
func (a *app) completeVMs(
	cmd *cobra.Command,
	_ []string,
	_ string,
) ([]string, cobra.ShellCompDirective) {
	const limit = 2 * time.Second

	c, err := a.dial()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer c.close()

	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()

	resp, err := c.api.ListVMs(ctx, &apiv1.ListVMsRequest{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	out := make([]string, 0, len(resp.GetVms()))
	for _, vm := range resp.GetVms() {
		out = append(out, vm.GetId()+"\t"+vm.GetSpec().GetName())
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
