package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/hyperd/hyperd/sdk/drivertest"
)

// TestConformance runs hyperd's conformance suite against the built
// driver, booting the busybox test guest under UML.
func TestConformance(t *testing.T) {
	needUML(t)
	g := guest(t)
	drivertest.Run(t, drivertest.Config{
		Binary: driverBinary(t),
		Guest: drivertest.Guest{
			Kernel:         defaultKernel,
			Initrd:         filepath.Join(g, "initrd.img"),
			StubbornInitrd: filepath.Join(g, "initrd-stubborn.img"),
			// Every console and serial line goes to the console log, so
			// the guest's usual console=ttyS0 works as it is.
			Cmdline: "console=ttyS0 panic=-1 quiet",
		},
		// The driver declares no graceful shutdown: the test guest
		// ignores UML's Ctrl-Alt-Del, so every Stop runs to its timeout.
		// A short one keeps the suite quick.
		StopTimeout: 2 * time.Second,
	})
}
