// Command hyperd is the hyperd daemon: it runs virtual machines through
// hypervisor driver plugins and serves the operator API on a unix socket.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "hyperd: %v\n", err)
		os.Exit(1)
	}
}
