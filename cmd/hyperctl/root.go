package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// defaultSocket is where hyperd listens unless its config says otherwise.
const defaultSocket = "/run/hyperd/hyperd.sock"

// app holds what every command shares: the global flags and the writers
// that stand for stdout and stderr.
type app struct {
	socket         string
	requestTimeout durationValue
	stdout, stderr io.Writer
}

// execute runs hyperctl with args and returns its exit code. Errors are
// printed here, once, as "hyperctl: message".
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)

	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errReported):
		return 1
	case errors.Is(err, errInterrupted):
		fmt.Fprintln(stderr, "hyperctl: interrupted")
		return 130
	}

	fmt.Fprintf(stderr, "hyperctl: %v\n", err)

	var u *usageError
	if errors.As(err, &u) {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", u.cmd)
		return 2
	}
	return 1
}

// newRootCmd builds the hyperctl command tree writing to stdout and stderr.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr}

	root := &cobra.Command{
		Use:   "hyperctl",
		Short: "Run and control virtual machines through the hyperd daemon",
		Long: `hyperctl is the operator's command line for hyperd, the daemon that runs
virtual machines through hypervisor driver plugins (QEMU, libvirt, Xen).

hyperctl talks to hyperd's gRPC API on a unix socket; the socket's file
mode decides who may use it. The daemon owns every VM: hyperctl only asks,
so VMs keep running when hyperctl exits.

A VM is named by its full id, a unique prefix of its id, or its name.`,
		Example: `  hyperctl drivers
  hyperctl run --name web --kernel ./vmlinuz --initrd ./initrd.img --memory 1G
  hyperctl ls
  hyperctl logs -f web
  hyperctl stop web && hyperctl rm web`,
		Args:          cobra.ArbitraryArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			msg := fmt.Sprintf("unknown command %q", args[0])
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
			}
			return &usageError{cmd: cmd.CommandPath(), err: errors.New(msg)}
		},
	}
	root.SuggestionsMinimumDistance = 2
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{cmd: cmd.CommandPath(), err: err}
	})

	pf := root.PersistentFlags()
	pf.StringVar(&a.socket, "socket", socketFromEnv(),
		"path of hyperd's unix socket; HYPERD_SOCKET sets the default")
	pf.Var(&a.requestTimeout, "request-timeout",
		"give up on a call to hyperd after this long, like 10s; 0 waits as long as it takes")

	root.AddGroup(
		&cobra.Group{ID: "vm", Title: "VM commands:"},
		&cobra.Group{ID: "host", Title: "Host commands:"},
	)
	root.AddCommand(newDriversCmd(a), newRunCmd(a), newLogsCmd(a))
	root.AddCommand(newVMCmds(a)...)
	return root
}

func socketFromEnv() string {
	if s := os.Getenv("HYPERD_SOCKET"); s != "" {
		return s
	}
	return defaultSocket
}

// usageError is a mistake in how hyperctl was called; it exits with 2 and
// points at the command's help.
type usageError struct {
	cmd string
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf(format, args...)}
}

// noArgs, oneID and someIDs check positional arguments with messages an
// operator reads more easily than cobra's "accepts 1 arg(s)".
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf(cmd, "%s takes no arguments, got %q", cmd.Name(), args[0])
	}
	return nil
}

func oneID(cmd *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return usageErrorf(cmd, "missing VM id")
	case len(args) > 1:
		return usageErrorf(cmd, "%s takes one VM id, got %d arguments", cmd.Name(), len(args))
	}
	return nil
}

func someIDs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usageErrorf(cmd, "missing VM id")
	}
	return nil
}
