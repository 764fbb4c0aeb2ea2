package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)

	// After the first signal cancels the call, give the signals back so a
	// second Ctrl-C ends hyperctl at once even if something hangs.
	go func() {
		<-ctx.Done()
		stop()
	}()

	code := execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
