package drivertest

import (
	"errors"

	"github.com/hyperd/hyperd/sdk"
)

func checkRecoverRunning(e *env) {
	e.needGuest()
	old := e.driver()
	if !e.info(old).Has(sdk.CapabilityRecover) {
		e.t.Skipf("the driver does not declare recover")
	}
	v := e.newVM(old, e.cfg.Guest.Initrd)
	before := e.start(old, v)

	e.kill(old)
	for _, p := range v.procs {
		if !p.alive() {
			e.t.Fatalf("%s died with its driver: a VM must outlive the driver process", p)
		}
	}

	in := e.launch()
	from := in.events.mark()
	h, st, err := in.Driver.Recover(e.ctx, v.id, v.h)
	if err != nil {
		e.t.Fatalf("Recover of a running vm by a fresh driver: %v", err)
	}
	if st.State != sdk.RunStateRunning {
		e.t.Fatalf("Recover of a vm whose process runs says %s (%q), want running", st.State, st.ExitReason)
	}
	if before.PID != 0 && st.PID != before.PID {
		e.t.Errorf("Recover reports pid %d, the vm ran as pid %d", st.PID, before.PID)
	}
	if len(h) > 0 {
		v.h = h
	}
	e.wantState(in, v, sdk.RunStateRunning)

	if _, err := in.Driver.Stop(e.ctx, v.id, v.h, e.cfg.ForcedStopTimeout); err != nil {
		e.t.Fatalf("Stop through the fresh driver: %v", err)
	}
	e.wantState(in, v, sdk.RunStateStopped)
	e.wantProcsGone(v, "Stop through the fresh driver")
	e.waitEvent(in, v, sdk.EventExited, from)
}

func checkRecoverDead(e *env) {
	e.needGuest()
	old := e.driver()
	if !e.info(old).Has(sdk.CapabilityRecover) {
		e.t.Skipf("the driver does not declare recover")
	}
	v := e.newVM(old, e.cfg.Guest.Initrd)
	st := e.start(old, v)

	e.kill(old)
	if st.PID != 0 {
		for _, p := range v.procs {
			if err := p.kill(); err != nil {
				e.t.Fatalf("kill the vm behind the driver's back: %v", err)
			}
			if err := waitFor(stateWait, func() bool { return !p.alive() }); err != nil {
				e.t.Fatalf("%s: %v", p, err)
			}
		}
	} else {
		// No pid to kill (a Xen domain has none): another driver process
		// ends the VM, and is gone too before the one that recovers.
		other := e.launch()
		if err := other.Driver.Kill(e.ctx, v.id, v.h); err != nil {
			e.t.Fatalf("end the vm through another driver process: %v", err)
		}
		e.kill(other)
	}

	in := e.launch()
	_, st, err := in.Driver.Recover(e.ctx, v.id, v.h)
	switch {
	case errors.Is(err, sdk.ErrNotFound):
		e.t.Errorf("Recover of a vm whose process died: %v; want status stopped with a reason, not NotFound", err)
	case err != nil:
		e.t.Errorf("Recover of a vm whose process died: %v; want status stopped with a reason", err)
	case st.State != sdk.RunStateStopped:
		e.t.Errorf("Recover of a vm whose process died says %s, want stopped", st.State)
	case st.ExitReason == "":
		e.t.Errorf("Recover of a vm whose process died says stopped with no reason")
	default:
		e.t.Logf("recovered as stopped: %q", st.ExitReason)
	}
	if err := in.Driver.Destroy(e.ctx, v.id, v.h); err != nil {
		e.t.Errorf("Destroy: %v", err)
	} else {
		v.destroyed = true
	}
}

func checkNoLeftovers(e *env) {
	seen := e.s.seen()
	var left []proc
	for _, p := range seen {
		if p.alive() {
			left = append(left, p)
		}
	}
	for _, p := range procsUnder(e.s.root, "process in the suite's work dir") {
		if !containsPID(left, p.pid) {
			left = append(left, p)
		}
	}
	for _, p := range left {
		e.t.Errorf("%s still runs after every check ended; the suite killed it", p)
		if err := p.kill(); err != nil {
			e.t.Logf("%v", err)
		}
	}
	e.t.Logf("%d driver and vm processes seen, %d left", len(seen), len(left))
}
