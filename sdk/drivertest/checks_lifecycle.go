package drivertest

import (
	"time"

	"github.com/hyperd/hyperd/sdk"
)

func checkLifecycle(e *env) {
	e.needGuest()
	in := e.driver()
	info := e.info(in)

	v := e.newVM(in, e.cfg.Guest.Initrd)
	if st := e.status(in, v); st.State != sdk.RunStateCreated && st.State != sdk.RunStateStopped {
		e.t.Errorf("a created vm is %s, want created (or stopped)", st.State)
	}
	st := e.start(in, v)
	e.t.Logf("vm %s runs, pid %d", v.id, st.PID)
	e.waitReady(in, v)

	if info.Has(sdk.CapabilityPause) {
		if err := pause(e.ctx, in.Driver, v); err != nil {
			e.t.Fatalf("Pause: %v", err)
		}
		e.wantState(in, v, sdk.RunStatePaused)
		if err := resume(e.ctx, in.Driver, v); err != nil {
			e.t.Fatalf("Resume: %v", err)
		}
		e.wantState(in, v, sdk.RunStateRunning)
	}

	start := time.Now()
	forced, err := in.Driver.Stop(e.ctx, v.id, v.h, e.cfg.StopTimeout)
	if err != nil {
		e.t.Fatalf("Stop: %v", err)
	}
	e.t.Logf("graceful stop took %s, forced=%v", time.Since(start).Round(time.Millisecond), forced)
	if forced && info.Has(sdk.CapabilityGracefulShutdown) {
		e.t.Errorf("Stop of a guest that powers off on the power button was forced, "+
			"though the driver declares graceful_shutdown (timeout %s)", e.cfg.StopTimeout)
	}
	st = e.wantState(in, v, sdk.RunStateStopped)
	e.wantProcsGone(v, "Stop")
	e.t.Logf("stopped: %q", st.ExitReason)

	// A restart is optional in v1: a driver may refuse it as a wrong
	// state, but must not half-do it.
	h, err := in.Driver.Start(e.ctx, v.id, v.h)
	switch {
	case isAny(err, sdk.ErrWrongState, sdk.ErrUnsupported):
		e.t.Logf("restart refused: %v", err)
	case err != nil:
		e.t.Errorf("Start of a stopped vm: %v; want success, or sdk.ErrWrongState", err)
	default:
		if len(h) > 0 {
			v.h = h
		}
		e.notePID(v, e.wantState(in, v, sdk.RunStateRunning))
		if err := in.Driver.Kill(e.ctx, v.id, v.h); err != nil {
			e.t.Fatalf("Kill of the restarted vm: %v", err)
		}
		e.wantState(in, v, sdk.RunStateStopped)
	}

	if err := in.Driver.Destroy(e.ctx, v.id, v.h); err != nil {
		e.t.Fatalf("Destroy: %v", err)
	}
	v.destroyed = true
	e.wantProcsGone(v, "Destroy")
}

func checkStopPastDeadline(e *env) {
	e.needGuest()
	if e.cfg.Guest.StubbornInitrd == "" {
		e.t.Skipf("no stubborn initrd given: the check needs a guest that ignores the power button")
	}
	in := e.driver()
	info := e.info(in)
	v := e.newVM(in, e.cfg.Guest.StubbornInitrd)
	e.start(in, v)
	// The guest must be up, or the power button would find no one to
	// ignore it and the check would prove nothing about the deadline.
	e.waitReady(in, v)

	timeout := e.cfg.ForcedStopTimeout
	start := time.Now()
	forced, err := in.Driver.Stop(e.ctx, v.id, v.h, timeout)
	took := time.Since(start)
	if err != nil {
		e.t.Fatalf("Stop with timeout %s: %v", timeout, err)
	}
	e.t.Logf("forced stop took %s", took.Round(time.Millisecond))
	if !forced {
		e.t.Errorf("Stop of a guest that ignores the power button returned forced=false")
	}
	if took > timeout+e.cfg.StopMargin {
		e.t.Errorf("Stop took %s, more than its timeout %s and the margin %s", took, timeout, e.cfg.StopMargin)
	}
	if took < timeout && info.Has(sdk.CapabilityGracefulShutdown) {
		e.t.Errorf("Stop forced the vm off after %s, before its timeout %s: the guest had no chance", took, timeout)
	}
	e.wantState(in, v, sdk.RunStateStopped)
	e.wantProcsGone(v, "a forced Stop")
}

func checkKillRunning(e *env) {
	e.needGuest()
	in := e.driver()
	v := e.newVM(in, e.cfg.Guest.Initrd)
	e.start(in, v)
	if err := in.Driver.Kill(e.ctx, v.id, v.h); err != nil {
		e.t.Fatalf("Kill of a running vm: %v", err)
	}
	st := e.wantState(in, v, sdk.RunStateStopped)
	e.wantProcsGone(v, "Kill")
	e.t.Logf("killed: %q", st.ExitReason)
}

// checkKillStarting kills a VM while its Start is still in flight. The
// Kill may win (Start fails) or come first and find nothing yet (Start
// succeeds, and a second Kill ends the VM); either way Start returns,
// and nothing of the VM runs after.
func checkKillStarting(e *env) {
	e.needGuest()
	in := e.driver()
	v := e.newVM(in, e.cfg.Guest.Initrd)
	type result struct {
		h   sdk.Handle
		err error
	}
	started := make(chan result, 1)
	go func() {
		h, err := in.Driver.Start(e.ctx, v.id, v.h)
		started <- result{h, err}
	}()
	// Long enough for a driver to have begun spawning, far shorter than
	// any boot.
	time.Sleep(killDuringStartAfter)
	if err := in.Driver.Kill(e.ctx, v.id, v.h); err != nil {
		e.t.Fatalf("Kill during Start: %v", err)
	}
	var r result
	select {
	case r = <-started:
	case <-time.After(e.cfg.BootTimeout):
		e.t.Fatalf("Start did not return within %s of a Kill", e.cfg.BootTimeout)
	}
	if r.err == nil {
		e.t.Logf("Start won the race; killing the vm it started")
		if len(r.h) > 0 {
			v.h = r.h
		}
		if err := in.Driver.Kill(e.ctx, v.id, v.h); err != nil {
			e.t.Fatalf("Kill after Start: %v", err)
		}
	} else {
		e.t.Logf("Start ended by the Kill: %v", r.err)
	}
	deadline := time.Now().Add(stateWait)
	for {
		st := e.status(in, v)
		if st.State == sdk.RunStateStopped || st.State == sdk.RunStateCreated {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("after Kill during Start the vm is %s, want stopped (or created, if it never ran)", st.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.wantProcsGone(v, "Kill during Start")
}

// killDuringStartAfter is how long checkKillStarting lets Start run
// before it kills.
const killDuringStartAfter = 100 * time.Millisecond

func checkKillPaused(e *env) {
	e.needGuest()
	in := e.driver()
	if !e.info(in).Has(sdk.CapabilityPause) {
		e.t.Skipf("the driver does not declare pause")
	}
	v := e.newVM(in, e.cfg.Guest.Initrd)
	e.start(in, v)
	if err := pause(e.ctx, in.Driver, v); err != nil {
		e.t.Fatalf("Pause: %v", err)
	}
	e.wantState(in, v, sdk.RunStatePaused)
	if err := in.Driver.Kill(e.ctx, v.id, v.h); err != nil {
		e.t.Fatalf("Kill of a paused vm: %v", err)
	}
	e.wantState(in, v, sdk.RunStateStopped)
	e.wantProcsGone(v, "Kill")
}

func checkRepeatedCalls(e *env) {
	e.needGuest()
	in := e.driver()
	v := e.newVM(in, e.cfg.Guest.Initrd)
	e.start(in, v)
	if err := in.Driver.Kill(e.ctx, v.id, v.h); err != nil {
		e.t.Fatalf("Kill: %v", err)
	}
	e.wantState(in, v, sdk.RunStateStopped)

	for i := 1; i <= 2; i++ {
		if forced, err := in.Driver.Stop(e.ctx, v.id, v.h, time.Second); err != nil {
			e.t.Errorf("Stop #%d of a stopped vm: %v; want success", i, err)
		} else if forced {
			e.t.Errorf("Stop #%d of a stopped vm says it forced it", i)
		}
	}
	if err := in.Driver.Kill(e.ctx, v.id, v.h); err != nil {
		e.t.Errorf("Kill of a stopped vm: %v; want success", err)
	}
	for i := 1; i <= 2; i++ {
		if err := in.Driver.Destroy(e.ctx, v.id, v.h); err != nil {
			e.t.Errorf("Destroy #%d: %v; want success", i, err)
		}
	}
	v.destroyed = !e.t.Failed()

	// A VM created by one driver process and destroyed by another that
	// never saw it, as after a driver restart.
	u := e.newVM(in, e.cfg.Guest.Initrd)
	fresh := e.launch()
	if err := fresh.Driver.Destroy(e.ctx, u.id, u.h); err != nil {
		e.t.Errorf("Destroy of a vm this driver process never saw: %v; want success", err)
	} else {
		u.destroyed = true
	}
}

func checkEventsExit(e *env) {
	e.needGuest()
	in := e.driver()

	from := in.events.mark()
	v := e.newVM(in, e.cfg.Guest.Initrd)
	e.start(in, v)
	if _, err := in.Driver.Stop(e.ctx, v.id, v.h, e.cfg.ForcedStopTimeout); err != nil {
		e.t.Fatalf("Stop: %v", err)
	}
	if ev, ok := e.waitEvent(in, v, sdk.EventExited, from); ok {
		e.t.Logf("exit after stop: %q", ev.Reason)
		if ev.Reason == "" {
			e.t.Errorf("the exited event after Stop gives no reason")
		}
	}

	from = in.events.mark()
	w := e.newVM(in, e.cfg.Guest.Initrd)
	e.start(in, w)
	if err := in.Driver.Kill(e.ctx, w.id, w.h); err != nil {
		e.t.Fatalf("Kill: %v", err)
	}
	if ev, ok := e.waitEvent(in, w, sdk.EventExited, from); ok {
		e.t.Logf("exit after kill: %q", ev.Reason)
		if ev.Reason == "" {
			e.t.Errorf("the exited event after Kill gives no reason")
		}
	}
}
