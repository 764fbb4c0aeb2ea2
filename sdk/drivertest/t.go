package drivertest

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// T is what a check needs from whoever runs it. *testing.T satisfies it;
// Check supplies its own that records a Result.
type T interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	// Fatalf and Skipf end the check: they do not return.
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Failed() bool
	// Cleanup registers f to run when the check ends, last added first.
	Cleanup(f func())
	// Context ends when the check does, before its cleanups run.
	Context() context.Context
}

// reportT is the T of a check run by Check. Fatalf and Skipf end the
// check's goroutine with runtime.Goexit, as the testing package does.
type reportT struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	outcome  Outcome
	reasons  []string
	log      []string
	cleanups []func()
}

var _ T = (*reportT)(nil)

func (r *reportT) Helper() {}

func (r *reportT) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, fmt.Sprintf(format, args...))
}

func (r *reportT) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcome = Fail
	r.reasons = append(r.reasons, fmt.Sprintf(format, args...))
}

func (r *reportT) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *reportT) Skipf(format string, args ...any) {
	r.mu.Lock()
	if r.outcome != Fail {
		r.outcome = Skip
	}
	r.reasons = append(r.reasons, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *reportT) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.outcome == Fail
}

func (r *reportT) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

func (r *reportT) Context() context.Context { return r.ctx }

// runReported runs one check to its Result. A check that overruns limit
// by a minute is abandoned, its goroutine left behind, so that one hung
// driver call cannot hang the whole report.
func runReported(parent context.Context, name string, limit time.Duration, f func(T)) Result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(parent, limit)
	r := &reportT{ctx: ctx, cancel: cancel}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer r.finish()
		defer func() {
			if p := recover(); p != nil {
				r.Errorf("panic: %v\n%s", p, debug.Stack())
			}
		}()
		f(r)
	}()
	select {
	case <-done:
	case <-time.After(limit + time.Minute):
		r.Errorf("check did not end within %s", limit+time.Minute)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return Result{
		Name:     name,
		Outcome:  r.outcome,
		Duration: time.Since(start),
		Reasons:  append([]string(nil), r.reasons...),
		Log:      append([]string(nil), r.log...),
	}
}

// finish cancels the context, then runs the cleanups, last first, each in
// a goroutine of its own so that a Fatalf in one ends only that one.
func (r *reportT) finish() {
	r.cancel()
	for {
		r.mu.Lock()
		n := len(r.cleanups)
		if n == 0 {
			r.mu.Unlock()
			return
		}
		f := r.cleanups[n-1]
		r.cleanups = r.cleanups[:n-1]
		r.mu.Unlock()

		done := make(chan struct{})
		go func() {
			defer close(done)
			defer func() {
				if p := recover(); p != nil {
					r.Errorf("panic in cleanup: %v\n%s", p, debug.Stack())
				}
			}()
			f()
		}()
		<-done
	}
}
