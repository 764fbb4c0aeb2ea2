package main

import (
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
)

func newDriversCmd(a *app) *cobra.Command {
	output := outputText
	cmd := &cobra.Command{
		Use:     "drivers",
		GroupID: "host",
		Short:   "List the hypervisor drivers hyperd found",
		Long: `List every driver hyperd found in its plugin directories, healthy or not.

A driver is healthy when it answered the handshake and its fingerprint says
its backend works on this host. For one that is not, ERROR says why: a
missing binary, a failed handshake, no accelerator. ACCEL is the
accelerator the driver reports, such as kvm or tcg.`,
		Example: `  hyperctl drivers
  hyperctl drivers -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.dial()
			if err != nil {
				return err
			}
			defer c.close()

			resp, err := call(cmd.Context(), c, c.api.ListDrivers, &apiv1.ListDriversRequest{})
			if err != nil {
				return err
			}
			sort.Slice(resp.Drivers, func(i, j int) bool {
				return resp.Drivers[i].GetName() < resp.Drivers[j].GetName()
			})
			if output == outputJSON {
				return printJSON(a.stdout, resp)
			}
			return printDrivers(a, resp.GetDrivers())
		},
	}
	cmd.Flags().VarP(&output, "output", "o", "print as text or json")
	cmd.AddCommand(newDriversReloadCmd(a))
	cmd.AddCommand(newDriversCheckCmd(a))
	return cmd
}

func printDrivers(a *app, drivers []*apiv1.Driver) error {
	t := newTable(a.stdout, "NAME", "HEALTHY", "VERSION", "CONTRACT", "ACCEL", "CAPABILITIES", "ERROR")
	for _, d := range drivers {
		healthy, reason := "yes", ""
		if !d.GetHealthy() {
			healthy, reason = "no", d.GetError()
			if reason == "" {
				reason = d.GetHealthDescription()
			}
		}
		contract := ""
		if v := d.GetContractVersion(); v != 0 {
			contract = "v" + strconv.FormatUint(uint64(v), 10)
		}
		t.row(d.GetName(), healthy, d.GetVersion(), contract,
			d.GetAttributes()["accelerator"],
			strings.Join(d.GetCapabilities(), ","), reason)
	}
	return t.flush()
}
