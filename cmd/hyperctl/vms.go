package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
)

// newVMCmds builds the commands that look at or act on existing VMs.
func newVMCmds(a *app) []*cobra.Command {
	return append([]*cobra.Command{newLsCmd(a), newInspectCmd(a)}, newLifecycleCmds(a)...)
}

func newLsCmd(a *app) *cobra.Command {
	output := outputText
	var quiet bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list", "ps"},
		GroupID: "vm",
		Short:   "List VMs",
		Long: `List every VM hyperd knows, oldest first, whatever its state.

REASON says why a VM is in its state, such as how it exited, or else the
last error its driver returned. -q prints only the ids, for scripts.`,
		Example: `  hyperctl ls
  hyperctl ls -o json
  hyperctl stop $(hyperctl ls -q)`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.dial()
			if err != nil {
				return err
			}
			defer c.close()

			resp, err := call(cmd.Context(), c, c.api.ListVMs, &apiv1.ListVMsRequest{})
			if err != nil {
				return err
			}
			vms := resp.GetVms()
			sort.SliceStable(vms, func(i, j int) bool {
				ti, tj := vms[i].GetCreatedAt().AsTime(), vms[j].GetCreatedAt().AsTime()
				if !ti.Equal(tj) {
					return ti.Before(tj)
				}
				return vms[i].GetId() < vms[j].GetId()
			})

			switch {
			case quiet:
				for _, vm := range vms {
					if _, err := fmt.Fprintln(a.stdout, vm.GetId()); err != nil {
						return err
					}
				}
				return nil
			case output == outputJSON:
				return printJSON(a.stdout, resp)
			}
			return printVMs(a.stdout, vms, time.Now())
		},
	}
	cmd.Flags().VarP(&output, "output", "o", "print as text or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only VM ids")
	return cmd
}

func printVMs(w io.Writer, vms []*apiv1.VM, now time.Time) error {
	t := newTable(w, "ID", "NAME", "DRIVER", "STATE", "PID", "CREATED", "REASON")
	for _, vm := range vms {
		created := ""
		if vm.GetCreatedAt() != nil {
			created = humanAge(now.Sub(vm.GetCreatedAt().AsTime())) + " ago"
		}
		t.row(vm.GetId(), vm.GetSpec().GetName(), vm.GetDriver(), vm.GetState(),
			pidString(vm.GetPid()), created, vmReason(vm))
	}
	return t.flush()
}

func pidString(pid int64) string {
	if pid <= 0 {
		return ""
	}
	return strconv.FormatInt(pid, 10)
}

// vmReason is the reason for the state, or failing that the last error.
func vmReason(vm *apiv1.VM) string {
	if r := vm.GetReason(); r != "" {
		return r
	}
	if e := vm.GetLastError(); e != "" {
		return "error: " + e
	}
	return ""
}

func newInspectCmd(a *app) *cobra.Command {
	output := outputText
	cmd := &cobra.Command{
		Use:     "inspect ID",
		GroupID: "vm",
		Short:   "Show one VM in detail",
		Long: `Show a VM's state, spec and history as hyperd records it.

-o json prints the API's VM message as JSON, with every field.`,
		Example: `  hyperctl inspect web
  hyperctl inspect 3f2a -o json | jq -r .state`,
		Args:              oneID,
		ValidArgsFunction: a.completeVMs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.dial()
			if err != nil {
				return err
			}
			defer c.close()

			id, err := c.resolve(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			vm, err := call(cmd.Context(), c, c.api.GetVM, &apiv1.GetVMRequest{Id: id})
			if err != nil {
				return err
			}
			if output == outputJSON {
				return printJSON(a.stdout, vm)
			}
			return printVM(a.stdout, vm, time.Now())
		},
	}
	cmd.Flags().VarP(&output, "output", "o", "print as text or json")
	return cmd
}

func printVM(w io.Writer, vm *apiv1.VM, now time.Time) error {
	spec := vm.GetSpec()
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	field := func(key, value string) {
		if value != "" {
			// Writes go to tabwriter's buffer; Flush reports any failure.
			_, _ = fmt.Fprintf(tw, "%s:\t%s\n", key, value)
		}
	}
	when := func(ts *timestamppb.Timestamp) string {
		if ts == nil {
			return ""
		}
		t := ts.AsTime()
		return fmt.Sprintf("%s (%s ago)", t.Local().Format(time.RFC3339), humanAge(now.Sub(t)))
	}

	field("ID", vm.GetId())
	field("Name", spec.GetName())
	driver := vm.GetDriver()
	if v := vm.GetContractVersion(); v != 0 {
		driver += fmt.Sprintf(" (contract v%d)", v)
	}
	field("Driver", driver)
	field("State", vm.GetState())
	field("Reason", vm.GetReason())
	field("Last error", vm.GetLastError())
	field("PID", pidString(vm.GetPid()))
	field("Created", when(vm.GetCreatedAt()))
	field("Updated", when(vm.GetUpdatedAt()))
	if n := spec.GetVcpus(); n != 0 {
		field("vCPUs", strconv.FormatUint(uint64(n), 10))
	}
	if m := spec.GetMemoryMib(); m != 0 {
		field("Memory", formatMiB(m))
	}
	field("Kernel", spec.GetKernel())
	field("Initrd", spec.GetInitrd())
	field("Cmdline", spec.GetCmdline())
	for i, d := range spec.GetDisks() {
		field(fmt.Sprintf("Disk %d", i), diskString(d))
	}
	keys := make([]string, 0, len(spec.GetOptions()))
	for k := range spec.GetOptions() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field("Option "+k, spec.GetOptions()[k])
	}
	field("Console log", vm.GetConsoleLog())
	return tw.Flush()
}

func diskString(d *apiv1.Disk) string {
	var attrs []string
	if d.GetReadOnly() {
		attrs = append(attrs, "read-only")
	}
	if f := d.GetFormat(); f != "" {
		attrs = append(attrs, f)
	}
	if len(attrs) == 0 {
		return d.GetPath()
	}
	return d.GetPath() + " (" + strings.Join(attrs, ", ") + ")"
}
