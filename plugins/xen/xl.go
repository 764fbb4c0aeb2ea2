package xen

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// xlWaitDelay bounds the wait for xl's output pipes after xl exits. `xl
// create` leaves a daemonized child that watches the domain; should it
// ever keep a pipe open, the call still returns.
const xlWaitDelay = 2 * time.Second

// runner runs one xl command and returns its standard output. Tests
// replace it with a fake.
type runner func(ctx context.Context, args ...string) ([]byte, error)

// execXL runs the xl binary at bin. ctx bounds the command; xl runs in
// its own process group, so that a signal to the driver's group does not
// cut a domain's creation in half.
func execXL(bin string) runner {
	return func(ctx context.Context, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = xlWaitDelay
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Run(); err != nil {
			return stdout.Bytes(), fmt.Errorf("xl %s: %w: %s", strings.Join(args, " "), err, lastLines(stderr.String(), 3))
		}
		return stdout.Bytes(), nil
	}
}

// lastLines returns the last n non-empty lines of s, joined by " | ".
func lastLines(s string, n int) string {
	var out []string
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			out = append([]string{l}, out...)
		}
	}
	return strings.Join(out, " | ")
}
