package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hyperd/hyperd/fsm"
	"github.com/hyperd/hyperd/sdk"
)

// stopTimerMargin is added to a graceful stop's timeout before the
// supervisor's own deadline fires and kills. The driver escalates by
// itself first; this is the backstop for a driver that hangs.
const stopTimerMargin = 5 * time.Second

// destroyTimeout bounds a driver's Destroy during a remove.
const destroyTimeout = 30 * time.Second

// input is one event for a supervisor, with what came with it.
type input struct {
	event fsm.Event
	// reason explains the new state, such as an exit reason.
	reason string
	// callErr is a failed driver call to record.
	callErr error
	// handle, when set, replaces the VM's handle.
	handle sdk.Handle
	// status, when set, carries the pid and console log.
	status *sdk.Status
	// stopTimeout is the graceful stop's timeout, for EventStop.
	stopTimeout time.Duration
	// noteOnly marks an input that only records callErr, outside the
	// lifecycle table: a failed call changes no state.
	noteOnly bool
	// explainExit marks an input that only replaces the reason of a VM
	// that has stopped: a failed start's error says more than the exit
	// event that usually beats it here.
	explainExit bool
	// fromDriver marks a report from the driver's event stream, as
	// opposed to the completion of a call the supervisor made.
	fromDriver bool
	// stopDone marks the completion of a driver Stop call; callErr says
	// whether it failed, reason how the VM ended if it did not.
	stopDone bool
	// backstopped marks a noteOnly failure that a caller waiting on the
	// VM should not see as the end of its wait: the stop timer still
	// stands behind it and will kill.
	backstopped bool
	// clearErr says the driver answered again (a recovery): the last
	// error no longer describes the VM.
	clearErr bool
	// reply, when set, receives the outcome once it is persisted.
	reply chan error
}

// supervisor owns one VM's state. Its goroutine is the only writer of the
// record; readers take copies.
type supervisor struct {
	log    hclog.Logger
	store  *Store
	driver func() (sdk.Driver, error)

	inbox chan input
	ctx   context.Context
	stop  context.CancelFunc
	done  chan struct{}

	// These are touched only by the supervisor goroutine. stopCalls
	// counts driver Stop calls in flight; while one is, the driver's own
	// exit report is held in heldExit, because the call's completion
	// says more (a forced stop, not just "host-qmp-quit").
	timer       *time.Timer
	stopTimeout time.Duration
	stopCalls   int
	heldExit    string

	mu      sync.Mutex
	rec     Record
	errSeq  uint64
	changed chan struct{}
}

func newSupervisor(rec Record, store *Store, driver func() (sdk.Driver, error), log hclog.Logger) *supervisor {
	ctx, cancel := context.WithCancel(context.Background())
	s := &supervisor{
		log:     log.With("vm_id", rec.ID, "driver", rec.Driver),
		store:   store,
		driver:  driver,
		inbox:   make(chan input),
		ctx:     ctx,
		stop:    cancel,
		done:    make(chan struct{}),
		rec:     rec,
		changed: make(chan struct{}),
	}
	go s.run()
	return s
}

// Snapshot returns a copy of the VM's record.
func (s *supervisor) Snapshot() Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec
}

// send delivers in to the supervisor goroutine, or fails when ctx or the
// supervisor ends first.
func (s *supervisor) send(ctx context.Context, in input) error {
	select {
	case s.inbox <- in:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return fmt.Errorf("vm %s: %w", s.rec.ID, fsm.ErrRemoved)
	}
}

// Do feeds an operator's event to the VM and returns once its outcome is
// persisted, or with the rejection.
func (s *supervisor) Do(ctx context.Context, in input) error {
	in.reply = make(chan error, 1)
	if err := s.send(ctx, in); err != nil {
		return err
	}
	select {
	case err := <-in.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// post feeds drivers' reports or a timer to the VM, in order, without
// waiting.
func (s *supervisor) post(ins ...input) {
	go func() {
		for _, in := range ins {
			if err := s.send(s.ctx, in); err != nil {
				s.log.Debug("event dropped: supervisor gone", "event", in.event, "error", err)
				return
			}
		}
	}()
}

// ErrSeq counts the failed driver calls so far; Wait takes it to tell
// failures that came after.
func (s *supervisor) ErrSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errSeq
}

// Wait blocks until done says the record is where the caller wants it, a
// driver call fails after ErrSeq returned seq, or ctx ends.
func (s *supervisor) Wait(ctx context.Context, seq uint64, done func(Record) bool) (Record, error) {
	for {
		s.mu.Lock()
		rec, errSeq, changed := s.rec, s.errSeq, s.changed
		s.mu.Unlock()
		if done(rec) {
			return rec, nil
		}
		if errSeq != seq {
			return rec, errors.New(rec.LastError)
		}
		select {
		case <-changed:
		case <-s.done:
			return rec, nil
		case <-ctx.Done():
			return rec, fmt.Errorf("vm %s is %s: %w", rec.ID, rec.State, ctx.Err())
		}
	}
}

// Close ends the supervisor goroutine. The VM itself is left alone.
func (s *supervisor) Close() {
	s.stop()
	<-s.done
}

func (s *supervisor) run() {
	defer close(s.done)
	defer func() {
		if s.timer != nil {
			s.timer.Stop()
		}
	}()
	for {
		select {
		case <-s.ctx.Done():
			return
		case in := <-s.inbox:
			removed := s.handle(in)
			if removed {
				return
			}
		}
	}
}

// handle steps the table, persists, replies, then acts. It reports whether
// the VM is gone.
func (s *supervisor) handle(in input) (removed bool) {
	cur := s.Snapshot()
	if in.noteOnly {
		next := cur
		next.LastError = oneLine(in.callErr.Error())
		next.UpdatedAt = time.Now().UTC()
		if err := s.store.Put(next); err != nil {
			s.log.Error("cannot persist a failed call", "error", err)
			return false
		}
		s.publish(next, !in.backstopped)
		return false
	}
	if in.explainExit {
		if cur.State.Live() || cur.Reason == in.reason {
			return false
		}
		next := cur
		next.Reason = in.reason
		next.UpdatedAt = time.Now().UTC()
		if err := s.store.Put(next); err != nil {
			s.log.Error("cannot persist an exit reason", "error", err)
			return false
		}
		s.publish(next, false)
		return false
	}
	if in.stopDone {
		s.stopCalls--
		switch {
		case in.callErr == nil:
			in = input{event: fsm.EventExited, reason: in.reason}
		case s.heldExit != "" && s.stopCalls == 0:
			// The call failed, but the driver had reported the exit.
			in = input{event: fsm.EventExited, reason: s.heldExit, callErr: in.callErr}
		default:
			in = input{noteOnly: true, callErr: in.callErr, backstopped: s.timer != nil}
			return s.handle(in)
		}
		if in.reason == "" {
			in.reason = s.heldExit
		}
		if in.reason == "" {
			in.reason = "guest powered off"
		}
	}
	if in.fromDriver && in.event == fsm.EventExited && cur.State == fsm.StateStopping && s.stopCalls > 0 {
		s.heldExit = in.reason
		return false
	}
	o := fsm.Step(cur.State, in.event)
	if o.Kind == fsm.KindReject {
		err := o.Err(cur.State, in.event)
		s.log.Debug("event rejected", "event", in.event, "state", cur.State, "error", err)
		reply(in, fmt.Errorf("vm %s: %w", cur.ID, err))
		return false
	}

	for _, a := range o.Actions {
		if a == fsm.ActionDelete {
			err := s.remove(cur)
			reply(in, err)
			return err == nil
		}
	}

	next := cur
	dirty := false
	if o.Kind == fsm.KindMove {
		dirty = true
		next.State = o.To
		next.Reason = in.reason
		// A new state is news: the last failure belongs to the old one.
		next.LastError = ""
		if !o.To.Live() {
			next.PID = 0
		}
		if o.To != fsm.StateStopping {
			s.heldExit = ""
		}
	}
	if in.clearErr && next.LastError != "" {
		next.LastError = ""
		dirty = true
	}
	if in.callErr != nil {
		next.LastError = oneLine(in.callErr.Error())
		dirty = true
	}
	if in.handle != nil {
		next.Handle = in.handle
		dirty = true
	}
	if in.status != nil {
		// A driver's own event may have moved the VM already (libvirt
		// reports a paused start before Start returns); the status still
		// brings the pid.
		if next.State.Live() && (o.Kind == fsm.KindMove || in.status.PID != 0) {
			next.PID = in.status.PID
		}
		if in.status.ConsoleLog != "" {
			next.ConsoleLog = in.status.ConsoleLog
		}
		dirty = true
	}
	if in.event == fsm.EventStop {
		s.stopTimeout = in.stopTimeout
	}

	if dirty {
		next.UpdatedAt = time.Now().UTC()
		if err := s.store.Put(next); err != nil {
			s.log.Error("cannot persist transition", "event", in.event, "error", err)
			reply(in, err)
			return false
		}
		s.publish(next, in.callErr != nil)
	}
	if next.State != cur.State {
		s.log.Info("vm state changed", "event", in.event, "from", cur.State, "state", next.State, "reason", next.Reason)
	}
	reply(in, nil)

	s.act(next, o.Actions)
	return false
}

func reply(in input, err error) {
	if in.reply != nil {
		in.reply <- err
	}
}

func (s *supervisor) publish(rec Record, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec = rec
	if failed {
		s.errSeq++
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// act performs an outcome's actions. Timer actions happen here; driver
// calls run in order on one goroutine so that, say, a resume finishes
// before the stop that follows it, while a later kill is not held up.
func (s *supervisor) act(rec Record, actions []fsm.Action) {
	var calls []fsm.Action
	for _, a := range actions {
		if a == fsm.ActionDriverStop {
			s.stopCalls++
		}
		switch a {
		case fsm.ActionArmStopTimer:
			s.armTimer()
		case fsm.ActionDisarmStopTimer:
			if s.timer != nil {
				s.timer.Stop()
				s.timer = nil
			}
		default:
			calls = append(calls, a)
		}
	}
	if len(calls) == 0 {
		return
	}
	timeout := s.stopTimeout
	go func() {
		for i, a := range calls {
			if s.call(rec, a, timeout) {
				continue
			}
			// A Stop that will not run must still be accounted for.
			for _, rest := range calls[i+1:] {
				if rest == fsm.ActionDriverStop {
					s.post(input{stopDone: true, callErr: fmt.Errorf("%s: skipped: %s failed first", rest, a)})
				}
			}
			return
		}
	}()
}

func (s *supervisor) armTimer() {
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timer = time.AfterFunc(s.stopTimeout+stopTimerMargin, func() {
		s.post(input{event: fsm.EventStopTimeout, reason: "graceful stop overran its deadline"})
	})
}

// call performs one driver action and posts what came of it. It reports
// whether the actions after it should go on.
func (s *supervisor) call(rec Record, a fsm.Action, stopTimeout time.Duration) bool {
	d, err := s.driver()
	if err != nil {
		if a == fsm.ActionDriverStop {
			s.post(input{stopDone: true, callErr: fmt.Errorf("%s: %w", a, err)})
		} else {
			s.failed(a, err)
		}
		return false
	}
	// Calls are bounded by the client's own deadlines and by the
	// supervisor's life, not by the operator's request.
	ctx := s.ctx
	switch a {
	case fsm.ActionDriverStart:
		h, err := d.Start(ctx, rec.ID, rec.Handle)
		if err != nil {
			// The driver's exit event often beats this reply and moves
			// the VM to failed with a terse reason ("exit status 1");
			// the start error says why, so it has the last word.
			s.post(input{event: fsm.EventStartFailed, reason: err.Error(), callErr: err},
				input{explainExit: true, reason: err.Error()})
			return false
		}
		in := input{event: fsm.EventStarted, handle: h}
		if st, err := d.Status(ctx, rec.ID, h); err == nil {
			in.status = &st
			if st.State == sdk.RunStatePaused {
				in.event = fsm.EventPaused // started paused, as its spec asked
			}
		}
		s.post(in)
	case fsm.ActionDriverStop:
		forced, err := d.Stop(ctx, rec.ID, rec.Handle, stopTimeout)
		if err != nil {
			s.log.Warn("driver call failed", "action", a, "error", err)
			s.post(input{stopDone: true, callErr: fmt.Errorf("%s: %w", a, err)})
			return false
		}
		reason := "" // the driver's own exit reason, when it gave one
		if forced {
			reason = fmt.Sprintf("forced off: the guest did not power off within %s", stopTimeout)
		}
		s.post(input{stopDone: true, reason: reason})
	case fsm.ActionDriverKill:
		if err := d.Kill(ctx, rec.ID, rec.Handle); err != nil {
			s.failed(a, err)
			return false
		}
		s.post(input{event: fsm.EventExited, reason: "killed"})
	case fsm.ActionDriverPause:
		if err := pauser(d).Pause(ctx, rec.ID, rec.Handle); err != nil {
			s.failed(a, err)
			return false
		}
		s.post(input{event: fsm.EventPaused})
	case fsm.ActionDriverResume:
		if err := pauser(d).Resume(ctx, rec.ID, rec.Handle); err != nil {
			s.failed(a, err)
			return false
		}
		s.post(input{event: fsm.EventResumed})
	default:
		s.log.Error("action has no driver call", "action", a)
		return false
	}
	return true
}

// failed records a failed driver call without changing the state.
func (s *supervisor) failed(a fsm.Action, err error) {
	s.log.Warn("driver call failed", "action", a, "error", err)
	s.post(input{noteOnly: true, callErr: fmt.Errorf("%s: %w", a, err)})
}

// remove destroys the VM in its driver and deletes its record.
func (s *supervisor) remove(rec Record) error {
	d, err := s.driver()
	if err == nil {
		ctx, cancel := context.WithTimeout(s.ctx, destroyTimeout)
		defer cancel()
		err = d.Destroy(ctx, rec.ID, rec.Handle)
	}
	if err != nil {
		return fmt.Errorf("remove vm %s: %w", rec.ID, err)
	}
	if err := s.store.Delete(rec.ID); err != nil {
		return err
	}
	s.log.Info("vm removed")
	return nil
}

func pauser(d sdk.Driver) sdk.Pauser {
	if p, ok := d.(sdk.Pauser); ok {
		return p
	}
	return noPauser{}
}

// noPauser answers for a driver that has no Pause at all.
type noPauser struct{}

func (noPauser) Pause(context.Context, string, sdk.Handle) error {
	return fmt.Errorf("pause: %w", sdk.ErrUnsupported)
}

func (noPauser) Resume(context.Context, string, sdk.Handle) error {
	return fmt.Errorf("resume: %w", sdk.ErrUnsupported)
}

// oneLine folds an error's text onto one line, for listings: go-plugin's
// handshake errors, for one, span many.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
