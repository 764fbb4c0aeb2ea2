//go:build linux

// Command faultydriver is a hyperd driver that breaks the contract on
// purpose, for testing the conformance suite: the suite must fail it on
// the broken check and on no other. Its VMs are not VMs: each is a
// `sleep` process in the VM's work directory, which is enough for every
// call of the contract and boots in a millisecond.
//
// Build it as hyperd-driver-faulty. The mode comes from the environment
// variable HYPERD_FAULTY_MODE:
//
//   - "correct" (or empty): honours the contract; passes every check.
//   - "undeclared-success": does not declare pause, yet Pause and Resume
//     succeed (doing nothing).
//   - "forgetful": keeps its VMs only in memory, so a fresh process has
//     lost them: Recover says stopped while the VM runs.
//
// A guest whose initrd's file name contains "stubborn" ignores SIGTERM,
// the stand-in for the power button.
package main

import (
	"fmt"
	"os"

	"github.com/hyperd/hyperd/sdk"
)

// ModeEnv selects the fault.
const ModeEnv = "HYPERD_FAULTY_MODE"

// Modes.
const (
	modeCorrect           = "correct"
	modeUndeclaredSuccess = "undeclared-success"
	modeForgetful         = "forgetful"
)

func main() {
	mode := os.Getenv(ModeEnv)
	switch mode {
	case "":
		mode = modeCorrect
	case modeCorrect, modeUndeclaredSuccess, modeForgetful:
	default:
		fmt.Fprintf(os.Stderr, "faultydriver: unknown %s %q; want %s, %s or %s\n",
			ModeEnv, mode, modeCorrect, modeUndeclaredSuccess, modeForgetful)
		os.Exit(2)
	}
	sdk.Serve(newDriver(mode, sdk.Logger().Named("faulty")))
}
