package xen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hyperd/hyperd/sdk"
)

// ConsoleDirEnv overrides the directory where xenconsoled writes each
// guest's console log (its --log-dir), when the driver cannot read it
// from xenconsoled's command line.
const ConsoleDirEnv = "HYPERD_XEN_CONSOLE_DIR"

// defaultConsoleDir is xenconsoled's --log-dir default.
const defaultConsoleDir = "/var/log/xen/console"

// checkDom0 says why this host cannot run Xen domains, or nil when it is
// a dom0: /proc/xen/capabilities, from xenfs, holds control_d only in the
// control domain. The error wraps sdk.ErrUnavailable and is written for
// an operator.
func checkDom0(procRoot string) error {
	p := filepath.Join(procRoot, "xen", "capabilities")
	b, err := os.ReadFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("not a Xen dom0: %s missing; this host runs no Xen hypervisor, "+
			"or runs it without xenfs mounted on %s: %w", p, filepath.Join(procRoot, "xen"), sdk.ErrUnavailable)
	case err != nil:
		return fmt.Errorf("not a Xen dom0: read %s: %w (%w)", p, err, sdk.ErrUnavailable)
	}
	if !strings.Contains(string(b), "control_d") {
		return fmt.Errorf("not a Xen dom0: %s says %q, without control_d: this is a Xen guest, "+
			"not the control domain: %w", p, strings.TrimSpace(string(b)), sdk.ErrUnavailable)
	}
	return nil
}

// parseXLInfo reads `xl info`'s "key : value" lines.
func parseXLInfo(b []byte) map[string]string {
	out := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out
}

// consoleDir finds where xenconsoled logs guest consoles: the env
// override, else the --log-dir of a running xenconsoled started with
// --log=guest or --log=all. It returns "" and why when guest consoles are
// not logged.
func consoleDir(procRoot string) (dir, why string) {
	if d := os.Getenv(ConsoleDirEnv); d != "" {
		return d, ConsoleDirEnv + " is set"
	}
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return "", fmt.Sprintf("cannot look for xenconsoled: %v", err)
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue // gone meanwhile, or a kernel thread
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if filepath.Base(args[0]) != "xenconsoled" {
			continue
		}
		return consoleDirFromArgs(args[1:])
	}
	return "", "xenconsoled is not running: start it with --log=guest (XENCONSOLED_TRACE=guest in /etc/default/xen)"
}

// consoleDirFromArgs reads xenconsoled's --log and --log-dir options.
func consoleDirFromArgs(args []string) (dir, why string) {
	logWhat, dir := "none", defaultConsoleDir
	for i := 0; i < len(args); i++ {
		a := args[i]
		val := func(name string) (string, bool) {
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				return v, true
			}
			if a == name && i+1 < len(args) {
				i++
				return args[i], true
			}
			return "", false
		}
		if v, ok := val("--log"); ok {
			logWhat = v
		} else if v, ok := val("--log-dir"); ok {
			dir = v
		}
	}
	if logWhat != "guest" && logWhat != "all" {
		return "", fmt.Sprintf("xenconsoled runs with --log=%s: restart it with --log=guest "+
			"(XENCONSOLED_TRACE=guest in /etc/default/xen) for console logs", logWhat)
	}
	return dir, "xenconsoled --log=" + logWhat
}
