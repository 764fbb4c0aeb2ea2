// Command hyperd-driver-libvirt is hyperd's libvirt driver plugin. The
// daemon starts it; run by hand it says so and exits.
package main

import (
	"github.com/hyperd/hyperd/plugins/libvirt"
	"github.com/hyperd/hyperd/sdk"
)

func main() {
	log := sdk.Logger().Named(libvirt.Name)
	// The options of the driver's block in the daemon's config file,
	// already checked against Info's schema, are this process's defaults.
	var opts []libvirt.Option
	cfg, err := sdk.Options()
	if err != nil {
		log.Error("driver options ignored", "error", err)
	}
	if uri := cfg["uri"]; uri != "" {
		opts = append(opts, libvirt.WithURI(uri))
	}
	if accel := cfg["accel"]; accel != "" {
		opts = append(opts, libvirt.WithAccel(accel))
	}
	sdk.Serve(libvirt.New(log, opts...))
}
