// Command hyperd-driver-xen is hyperd's Xen driver plugin. The daemon
// starts it; run by hand it says so and exits.
package main

import (
	"github.com/hyperd/hyperd/plugins/xen"
	"github.com/hyperd/hyperd/sdk"
)

func main() {
	sdk.Serve(xen.New(sdk.Logger().Named(xen.Name)))
}
