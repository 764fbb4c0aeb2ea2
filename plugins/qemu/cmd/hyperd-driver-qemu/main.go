// Command hyperd-driver-qemu is hyperd's QEMU driver plugin. The daemon
// starts it; run by hand it says so and exits.
package main

import (
	"github.com/hyperd/hyperd/plugins/qemu"
	"github.com/hyperd/hyperd/sdk"
)

func main() {
	sdk.Serve(qemu.New(sdk.Logger().Named(qemu.Name)))
}
