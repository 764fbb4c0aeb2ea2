package main

import (
	"fmt"

	"github.com/spf13/cobra"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
)

func newDriversReloadCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "reload NAME",
		Short: "Swap in the driver binary now in the plugin directory",
		Long: `Start the binary now at the driver's path, recover every VM of that
driver through the new process, and retire the old process. The VMs keep
running throughout.

Use it after replacing bin/plugins/hyperd-driver-NAME with a new build.
When the new binary fails its handshake, the old process stays in use and
the error says why.`,
		Example: `  cp new-build/hyperd-driver-qemu /usr/lib/hyperd/plugins/
  hyperctl drivers reload qemu`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.dial()
			if err != nil {
				return err
			}
			defer c.close()

			d, err := call(cmd.Context(), c, c.api.ReloadDriver, &apiv1.ReloadDriverRequest{Name: args[0]})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "%s reloaded: version %s, healthy %v\n", d.GetName(), d.GetVersion(), d.GetHealthy())
			return err
		},
	}
}
