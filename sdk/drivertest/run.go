package drivertest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// check is one named conformance check.
type check struct {
	name string
	run  func(e *env)
}

// checks in the order they run; no_leftovers must stay last.
var checks = []check{
	{"info", checkInfo},
	{"fingerprint", checkFingerprint},
	{"undeclared_capabilities", checkUndeclared},
	{"invalid_spec", checkInvalidSpec},
	{"garbled_handle", checkGarbledHandle},
	{"lifecycle", checkLifecycle},
	{"stop_past_deadline", checkStopPastDeadline},
	{"kill_running", checkKillRunning},
	{"kill_starting", checkKillStarting},
	{"kill_paused", checkKillPaused},
	{"repeated_calls", checkRepeatedCalls},
	{"events_exit", checkEventsExit},
	{"recover_running", checkRecoverRunning},
	{"recover_dead", checkRecoverDead},
	{"no_leftovers", checkNoLeftovers},
}

// Checks returns the names of the checks, in the order they run.
func Checks() []string {
	names := make([]string, len(checks))
	for i, c := range checks {
		names[i] = c.name
	}
	return names
}

func checkByName(name string) (check, bool) {
	for _, c := range checks {
		if c.name == name {
			return c, true
		}
	}
	return check{}, false
}

// Run runs every check as a subtest of t, named as in Checks. A Config
// that cannot work fails t at once.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	s, err := newSuite(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { s.run(t, c) })
	}
}

// Check runs every check against the driver and returns the report. Its
// error is for a Config that cannot work; a failing driver gives a
// report with failed checks and no error. When ctx ends, the checks not
// yet begun are skipped.
func Check(ctx context.Context, cfg Config) (Report, error) {
	s, err := newSuite(cfg)
	if err != nil {
		return Report{}, err
	}
	defer s.close()

	rep := Report{Driver: s.cfg.Binary}
	if rep.Driver == "" {
		rep.Driver = s.cfg.Name
	}
	start := time.Now()
	for _, c := range checks {
		if ctx.Err() != nil {
			rep.Results = append(rep.Results, Result{
				Name: c.name, Outcome: Skip, Reasons: []string{"interrupted: " + ctx.Err().Error()},
			})
			continue
		}
		rep.Results = append(rep.Results, runReported(ctx, c.name, s.cfg.CheckTimeout,
			func(t T) { s.run(t, c) }))
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// suite is what the checks of one run share.
type suite struct {
	cfg  Config
	root string // the suite's own directory; every VM's work dir is inside
	// tag ends every VM id of the run, unique on the host.
	tag string

	mu sync.Mutex
	// procs are the driver and VM processes the run has seen, for the
	// final leftover check.
	procs []proc
}

func newSuite(cfg Config) (*suite, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp(cfg.WorkRoot, "hyperd-conformance-")
	if err != nil {
		return nil, fmt.Errorf("drivertest: work dir: %w", err)
	}
	return &suite{cfg: cfg, root: root, tag: strconv.FormatInt(time.Now().UnixNano()%1e9, 36)}, nil
}

func (s *suite) run(t T, c check) {
	t.Helper()
	if why, ok := s.cfg.Skip[c.name]; ok {
		t.Skipf("skipped by the configuration: %s", why)
	}
	c.run(newEnv(s, t, c.name))
}

// remember adds p to the processes the final check looks for.
func (s *suite) remember(p proc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.procs = append(s.procs, p)
}

func (s *suite) seen() []proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]proc(nil), s.procs...)
}

// close removes the suite's directory; every process has been dealt
// with by then.
func (s *suite) close() {
	_ = os.RemoveAll(s.root) // best effort: a temporary directory
}
