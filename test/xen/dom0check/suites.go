package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hyperd/hyperd/sdk/drivertest"
)

const (
	// e2eTimeout bounds the e2e lifecycle body: two boots of a few tens
	// of seconds each here, and its bad specs.
	e2eTimeout = 4 * time.Minute
	// e2eCase is the e2e test dom0 runs: the lifecycle body every driver
	// passes, for the xen driver.
	e2eCase = "TestLifecycle/xen"
	// conformanceTimeout bounds the whole conformance suite: about ten
	// xl creates of 10 to 15 s each, and their boots.
	conformanceTimeout = 6 * time.Minute
)

// testLineRE matches go test -v's verdict lines, indented for subtests.
var testLineRE = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(([0-9.]+)s\)`)

// e2eResult turns a go test -v verdict line of e2eCase or its subtests
// into a result line's step, verdict and detail. This host is a dom0, so
// e2eCase skipping is a failure.
func e2eResult(line string) (step, verdict, detail string, ok bool) {
	m := testLineRE.FindStringSubmatch(line)
	if m == nil || (m[2] != e2eCase && !strings.HasPrefix(m[2], e2eCase+"/")) {
		return "", "", "", false
	}
	verdict, detail = m[1], m[3]+"s"
	if m[2] == e2eCase && verdict == "SKIP" {
		verdict, detail = "FAIL", "skipped inside a Xen dom0; see the e2e| lines"
	}
	return "E2E/" + m[2], verdict, detail, true
}

// e2eLifecycle runs the e2e package's lifecycle body against the xen
// driver: bin/e2e.test, compiled on the host, with the shared binaries
// and guest. Each of its tests under e2eCase becomes a result line; a
// skip of e2eCase itself is a failure, since this host is a dom0.
func (r *runner) e2eLifecycle() {
	bin := filepath.Join(r.share, "bin")
	// The test binary's own timeout comes first and prints where it hung;
	// the kill is the backstop.
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "e2e.test"),
		"-test.run", "^TestLifecycle$/^xen$", "-test.v", "-test.count", "1",
		"-test.timeout", e2eTimeout.String())
	// Without HYPERD_BIN_DIR the e2e harness would run go build, which
	// dom0 does not have.
	cmd.Env = append(os.Environ(),
		"HYPERD_BIN_DIR="+bin, "HYPERD_GUEST_DIR="+filepath.Join(r.share, "guest"), "TMPDIR=/tmp")
	cmd.Dir = "/tmp"

	start, failed := time.Now(), r.failed
	seen := false
	lines, err := runLines(cmd, func(line string) {
		if step, verdict, detail, ok := e2eResult(line); ok {
			seen = seen || step == "E2E/"+e2eCase
			r.result(step, verdict, detail)
		}
	})
	if !seen || err != nil || r.failed > failed {
		printLines("e2e| ", lines)
	}
	switch {
	case !seen:
		r.result("E2E/"+e2eCase, "FAIL", fmt.Sprintf("did not run: %v", err))
	case err != nil:
		r.result("E2E", "FAIL", fmt.Sprintf("e2e.test: %v", err))
	default:
		r.result("E2E", "PASS", fmt.Sprintf("%.1fs", time.Since(start).Seconds()))
	}
}

// conformance runs the SDK's conformance suite against the xen driver
// through `hyperctl drivers check`, one result line per check, and then
// checks that it left no domain behind: the suite finds leftover
// processes, and a Xen domain is none.
func (r *runner) conformance(g guestFiles) {
	bin := filepath.Join(r.share, "bin")
	ctx, cancel := context.WithTimeout(context.Background(), conformanceTimeout)
	defer cancel()
	before, err := domains()
	if err != nil {
		r.result("CONFORMANCE", "FAIL", err.Error())
		return
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "hyperctl"), "drivers", "check",
		filepath.Join(bin, "plugins", "hyperd-driver-xen"),
		"--kernel", g.kernel, "--initrd", g.initrd, "--stubborn-initrd", g.stubborn,
		"--cmdline", guestCmdline, "-o", "json")
	cmd.Dir = "/tmp"
	var out bytes.Buffer
	cmd.Stdout = &out
	start := time.Now()
	lines, err := runLines(cmd, nil)
	if err != nil {
		printLines("check| ", lines)
	}
	var rep drivertest.Report
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		r.result("CONFORMANCE", "FAIL", fmt.Sprintf("hyperctl drivers check: %v; its output is no report: %v: %s",
			err, jerr, oneLine(out.String())))
		return
	}
	for _, res := range rep.Results {
		detail := fmt.Sprintf("%.1fs %s", res.Duration.Seconds(), strings.Join(res.Reasons, "; "))
		r.result("CONFORMANCE/"+res.Name, res.Outcome.String(), detail)
		if res.Outcome == drivertest.Fail {
			for _, l := range res.Log {
				fmt.Printf("check| %s: %s\n", res.Name, l)
			}
		}
	}
	// hyperctl exits 1 when a check failed, reported above; anything
	// else is its own failure.
	if err != nil && !rep.Failed() {
		r.result("CONFORMANCE", "FAIL", fmt.Sprintf("hyperctl drivers check: %v", err))
		return
	}
	after, err := domains()
	if err != nil {
		r.result("CONFORMANCE-DOMAINS-LEFT", "FAIL", err.Error())
		return
	}
	var left []string
	for name := range after {
		if _, ok := before[name]; !ok {
			left = append(left, name)
			_ = exec.Command("xl", "destroy", name).Run() // best effort; reported below
		}
	}
	if len(left) > 0 {
		r.result("CONFORMANCE-DOMAINS-LEFT", "FAIL", fmt.Sprintf("the suite left domains %v", left))
		return
	}
	r.result("CONFORMANCE", "PASS", fmt.Sprintf("%.1fs, %d passed, %d failed, %d skipped", time.Since(start).Seconds(),
		rep.Count(drivertest.Pass), rep.Count(drivertest.Fail), rep.Count(drivertest.Skip)))
}

// result prints one result line and counts a failure.
func (r *runner) result(step, verdict, detail string) {
	if verdict == "FAIL" {
		r.failed++
	}
	fmt.Printf("=== XEN-TEST %s %s %s\n", step, verdict, oneLine(detail))
}

// runLines runs cmd and returns the lines of its stderr, and of its
// stdout unless cmd.Stdout is set, handing each to each as it comes when
// each is given. The console is a slow emulated serial port that may
// drop what overflows it, so the caller prints the lines only when
// something failed. It returns cmd's exit error.
func runLines(cmd *exec.Cmd, each func(string)) ([]string, error) {
	pr, pw := io.Pipe()
	if cmd.Stdout == nil {
		cmd.Stdout = pw
	}
	cmd.Stderr = pw
	// WaitDelay bounds a grandchild that keeps the pipe after cmd ends.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var lines []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if each != nil {
				each(sc.Text())
			}
		}
		_, _ = io.Copy(io.Discard, pr) // a too-long line's rest
	}()
	err := cmd.Wait()
	pw.Close()
	<-done
	return lines, err
}

func printLines(prefix string, lines []string) {
	for _, l := range lines {
		fmt.Println(prefix + l)
	}
}
