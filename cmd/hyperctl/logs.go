package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
)

func newLogsCmd(a *app) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:     "logs ID",
		GroupID: "vm",
		Short:   "Print a VM's serial console output",
		Long: `Print what a VM has written to its serial console so far, as hyperd
recorded it. With -f keep printing new output until Ctrl-C, which ends
hyperctl cleanly with exit code 0.

--request-timeout does not apply: the stream lasts as long as it has to.`,
		Example: `  hyperctl logs web
  hyperctl logs -f web | grep -m1 'login:'`,
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
			err = streamLog(cmd.Context(), c, id, follow, a.stdout)
			if errors.Is(err, errInterrupted) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until interrupted")
	return cmd
}

// streamLog copies the console log of VM id to w until the stream ends,
// ctx is cancelled, or w fails.
func streamLog(ctx context.Context, c *client, id string, follow bool, w io.Writer) error {
	// Cancelling ctx on return also ends the stream on hyperd's side.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	stream, err := c.api.ConsoleLog(ctx, &apiv1.ConsoleLogRequest{Id: id, Follow: follow})
	if err != nil {
		return c.check(ctx, err)
	}
	for {
		chunk, err := stream.Recv()
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return c.check(ctx, err)
		}
		if _, err := w.Write(chunk.GetData()); err != nil {
			return fmt.Errorf("write console output: %w", err)
		}
	}
}
