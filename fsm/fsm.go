package fsm

import (
	"errors"
	"fmt"
)

// State is where a VM is in its lifecycle.
type State uint8

// States. The zero value is not a state, so a forgotten field shows.
const (
	StateInvalid State = iota
	// StateCreated: stored and prepared by its driver, never started.
	StateCreated
	// StateStarting: the driver is booting it.
	StateStarting
	// StateRunning: the guest runs.
	StateRunning
	// StatePaused: the guest's vCPUs are frozen.
	StatePaused
	// StateStopping: a graceful stop or a kill is under way.
	StateStopping
	// StateStopped: no process runs for it; it can start again or be
	// removed.
	StateStopped
	// StateFailed: it could not start; it can start again or be removed.
	StateFailed
	// StateRemoved: forgotten. Terminal: nothing follows.
	StateRemoved

	numStates
)

var stateNames = [numStates]string{
	StateInvalid:  "invalid",
	StateCreated:  "created",
	StateStarting: "starting",
	StateRunning:  "running",
	StatePaused:   "paused",
	StateStopping: "stopping",
	StateStopped:  "stopped",
	StateFailed:   "failed",
	StateRemoved:  "removed",
}

// States lists every state, in order.
func States() []State {
	out := make([]State, 0, numStates-1)
	for s := StateCreated; s < numStates; s++ {
		out = append(out, s)
	}
	return out
}

// String returns the state's lowercase name, as stored and shown.
func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// ParseState returns the state named s.
func ParseState(s string) (State, error) {
	for i, n := range stateNames {
		if n == s && State(i) != StateInvalid {
			return State(i), nil
		}
	}
	return StateInvalid, fmt.Errorf("unknown vm state %q", s)
}

// Live reports whether a process may run for a VM in this state, so that
// a kill makes sense.
func (s State) Live() bool {
	switch s {
	case StateStarting, StateRunning, StatePaused, StateStopping:
		return true
	}
	return false
}

// Event is something that happens to a VM: an operator's request, a
// driver's report, or a timer.
type Event uint8

// Events.
const (
	EventInvalid Event = iota
	// EventStart: an operator asks to boot it.
	EventStart
	// EventStarted: the driver reports it booted.
	EventStarted
	// EventStartFailed: the driver could not boot it.
	EventStartFailed
	// EventStop: an operator asks for a graceful stop.
	EventStop
	// EventKill: an operator asks to force it off.
	EventKill
	// EventStopTimeout: a graceful stop overran its deadline.
	EventStopTimeout
	// EventExited: the driver reports no process runs for it any more.
	EventExited
	// EventPause: an operator asks to freeze it.
	EventPause
	// EventPaused: the driver reports it frozen.
	EventPaused
	// EventResume: an operator asks to thaw it.
	EventResume
	// EventResumed: the driver reports it running again.
	EventResumed
	// EventRemove: an operator asks to forget it.
	EventRemove

	numEvents
)

var eventNames = [numEvents]string{
	EventInvalid:     "invalid",
	EventStart:       "start",
	EventStarted:     "started",
	EventStartFailed: "start_failed",
	EventStop:        "stop",
	EventKill:        "kill",
	EventStopTimeout: "stop_timeout",
	EventExited:      "exited",
	EventPause:       "pause",
	EventPaused:      "paused",
	EventResume:      "resume",
	EventResumed:     "resumed",
	EventRemove:      "remove",
}

// Events lists every event, in order.
func Events() []Event {
	out := make([]Event, 0, numEvents-1)
	for e := EventStart; e < numEvents; e++ {
		out = append(out, e)
	}
	return out
}

// String returns the event's snake_case name.
func (e Event) String() string {
	if e < numEvents {
		return eventNames[e]
	}
	return fmt.Sprintf("event(%d)", e)
}

// Action is work the caller performs after a transition is persisted.
type Action uint8

// Actions.
const (
	ActionInvalid Action = iota
	// ActionDriverStart: call the driver's Start.
	ActionDriverStart
	// ActionDriverStop: call the driver's graceful Stop.
	ActionDriverStop
	// ActionDriverKill: call the driver's Kill.
	ActionDriverKill
	// ActionDriverPause: call the driver's Pause.
	ActionDriverPause
	// ActionDriverResume: call the driver's Resume.
	ActionDriverResume
	// ActionDriverDestroy: call the driver's Destroy.
	ActionDriverDestroy
	// ActionArmStopTimer: arm the timer that sends EventStopTimeout when a
	// graceful stop overruns.
	ActionArmStopTimer
	// ActionDisarmStopTimer: cancel that timer.
	ActionDisarmStopTimer
	// ActionDelete: delete the VM's record; nothing follows.
	ActionDelete

	numActions
)

var actionNames = [numActions]string{
	ActionInvalid:         "invalid",
	ActionDriverStart:     "driver_start",
	ActionDriverStop:      "driver_stop",
	ActionDriverKill:      "driver_kill",
	ActionDriverPause:     "driver_pause",
	ActionDriverResume:    "driver_resume",
	ActionDriverDestroy:   "driver_destroy",
	ActionArmStopTimer:    "arm_stop_timer",
	ActionDisarmStopTimer: "disarm_stop_timer",
	ActionDelete:          "delete",
}

// String returns the action's snake_case name.
func (a Action) String() string {
	if a < numActions {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", a)
}

// Errors a rejected outcome wraps.
var (
	// ErrWrongState: the event makes no sense in the VM's state, such as
	// pausing a stopped VM. The caller's request is refused; nothing
	// changes.
	ErrWrongState = errors.New("not allowed in this state")
	// ErrRemoved: the VM is gone.
	ErrRemoved = errors.New("vm removed")
)

// Kind says what an outcome does to the state.
type Kind uint8

// Kinds of outcome.
const (
	// kindUndecided marks a table cell nobody filled in; the table test
	// fails on it, so it never ships.
	kindUndecided Kind = iota
	// KindReject: the event is refused; the state does not change and the
	// caller gets Err.
	KindReject
	// KindStay: the event is accepted; the state does not change, though
	// actions may follow.
	KindStay
	// KindMove: the state changes to To.
	KindMove
)

// Outcome is the decision for one state and one event.
type Outcome struct {
	Kind    Kind
	To      State
	Actions []Action
	// Hint tells an operator what to do instead, for a rejection.
	Hint string
}

// Err returns the error of a rejected outcome, naming the state, the event
// and the hint; nil for the others.
func (o Outcome) Err(from State, e Event) error {
	if o.Kind != KindReject {
		return nil
	}
	base := ErrWrongState
	if from == StateRemoved {
		base = ErrRemoved
	}
	if o.Hint == "" {
		return fmt.Errorf("%s: vm is %s: %w", e, from, base)
	}
	return fmt.Errorf("%s: vm is %s: %w; %s", e, from, base, o.Hint)
}
