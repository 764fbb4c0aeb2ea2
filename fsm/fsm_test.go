package fsm

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestTableIsComplete(t *testing.T) {
	for _, s := range States() {
		for _, e := range Events() {
			t.Run(s.String()+"/"+e.String(), func(t *testing.T) {
				o := Step(s, e)
				switch o.Kind {
				case KindReject:
					err := o.Err(s, e)
					if err == nil {
						t.Fatal("rejection without an error")
					}
					if !errors.Is(err, ErrWrongState) && !errors.Is(err, ErrRemoved) {
						t.Fatalf("rejection error %q wraps neither sentinel", err)
					}
					if len(o.Actions) != 0 {
						t.Fatalf("rejection carries actions %v", o.Actions)
					}
				case KindStay:
					if o.To != StateInvalid {
						t.Fatalf("stay names a target %s", o.To)
					}
				case KindMove:
					if o.To == StateInvalid || o.To >= numStates {
						t.Fatalf("move to invalid state %d", o.To)
					}
					if o.To == s {
						t.Fatalf("move to the same state; use stay")
					}
				case kindUndecided:
					t.Fatal("no decided outcome: the table leaves this cell empty")
				default:
					t.Fatalf("unknown outcome kind %d", o.Kind)
				}
				for _, a := range o.Actions {
					if a == ActionInvalid || a >= numActions {
						t.Fatalf("invalid action %d", a)
					}
				}
			})
		}
	}
}

func TestKillFromEveryLiveState(t *testing.T) {
	for _, s := range States() {
		if !s.Live() {
			continue
		}
		t.Run(s.String(), func(t *testing.T) {
			o := Step(s, EventKill)
			if o.Kind == KindReject {
				t.Fatalf("kill rejected: %v", o.Err(s, EventKill))
			}
			if !slices.Contains(o.Actions, ActionDriverKill) {
				t.Fatalf("kill does not call the driver: %v", o.Actions)
			}
			if o.Kind == KindMove && o.To != StateStopping {
				t.Fatalf("kill moves to %s, want stopping", o.To)
			}
		})
	}
}

// TestGracefulStopEscalates follows a graceful stop whose guest ignores it:
// the timer is armed on the way in, and its firing kills.
func TestGracefulStopEscalates(t *testing.T) {
	for _, from := range []State{StateRunning, StatePaused} {
		t.Run(from.String(), func(t *testing.T) {
			o := Step(from, EventStop)
			if o.Kind != KindMove || o.To != StateStopping {
				t.Fatalf("stop from %s: got %+v, want a move to stopping", from, o)
			}
			if !slices.Contains(o.Actions, ActionArmStopTimer) || !slices.Contains(o.Actions, ActionDriverStop) {
				t.Fatalf("stop from %s does not arm the deadline and call the driver: %v", from, o.Actions)
			}
			if o.Actions[0] != ActionArmStopTimer {
				t.Fatalf("the deadline must be armed before the driver is called: %v", o.Actions)
			}

			timeout := Step(StateStopping, EventStopTimeout)
			if !slices.Contains(timeout.Actions, ActionDriverKill) {
				t.Fatalf("stop timeout does not kill: %+v", timeout)
			}
			exited := Step(StateStopping, EventExited)
			if exited.Kind != KindMove || exited.To != StateStopped {
				t.Fatalf("exit while stopping: got %+v, want a move to stopped", exited)
			}
			if !slices.Contains(exited.Actions, ActionDisarmStopTimer) {
				t.Fatalf("exit while stopping leaves the timer armed: %v", exited.Actions)
			}
		})
	}
}

// TestTransitions pins the decisions that matter most to an operator.
func TestTransitions(t *testing.T) {
	tests := []struct {
		name    string
		from    State
		event   Event
		kind    Kind
		to      State
		actions []Action
	}{
		{"start created", StateCreated, EventStart, KindMove, StateStarting, []Action{ActionDriverStart}},
		{"boot done", StateStarting, EventStarted, KindMove, StateRunning, nil},
		{"boot failed", StateStarting, EventStartFailed, KindMove, StateFailed, nil},
		{"died while booting", StateStarting, EventExited, KindMove, StateFailed, nil},
		{"started paused", StateStarting, EventPaused, KindMove, StatePaused, nil},
		{"stop while booting", StateStarting, EventStop, KindReject, StateInvalid, nil},
		{"guest powered off", StateRunning, EventExited, KindMove, StateStopped, nil},
		{"pause", StateRunning, EventPause, KindStay, StateInvalid, []Action{ActionDriverPause}},
		{"paused", StateRunning, EventPaused, KindMove, StatePaused, nil},
		{"resume", StatePaused, EventResume, KindStay, StateInvalid, []Action{ActionDriverResume}},
		{"resumed", StatePaused, EventResumed, KindMove, StateRunning, nil},
		{"stop paused thaws first", StatePaused, EventStop, KindMove, StateStopping,
			[]Action{ActionArmStopTimer, ActionDriverResume, ActionDriverStop}},
		{"stop twice", StateStopping, EventStop, KindStay, StateInvalid, nil},
		{"kill while stopping", StateStopping, EventKill, KindStay, StateInvalid,
			[]Action{ActionDisarmStopTimer, ActionDriverKill}},
		{"stop stopped", StateStopped, EventStop, KindStay, StateInvalid, nil},
		{"kill stopped", StateStopped, EventKill, KindStay, StateInvalid, nil},
		{"restart stopped", StateStopped, EventStart, KindMove, StateStarting, []Action{ActionDriverStart}},
		{"retry failed", StateFailed, EventStart, KindMove, StateStarting, []Action{ActionDriverStart}},
		{"remove running", StateRunning, EventRemove, KindReject, StateInvalid, nil},
		{"remove stopped", StateStopped, EventRemove, KindMove, StateRemoved,
			[]Action{ActionDriverDestroy, ActionDelete}},
		{"pause stopped", StateStopped, EventPause, KindReject, StateInvalid, nil},
		{"start removed", StateRemoved, EventStart, KindReject, StateInvalid, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Step(tt.from, tt.event)
			if o.Kind != tt.kind || o.To != tt.to || !slices.Equal(o.Actions, tt.actions) {
				t.Fatalf("Step(%s, %s) = {kind %d, to %s, actions %v}, want {kind %d, to %s, actions %v}",
					tt.from, tt.event, o.Kind, o.To, o.Actions, tt.kind, tt.to, tt.actions)
			}
		})
	}
}

func TestStepOutsideTheTable(t *testing.T) {
	for _, c := range []struct {
		s State
		e Event
	}{
		{StateInvalid, EventStart},
		{numStates, EventStart},
		{StateRunning, EventInvalid},
		{StateRunning, numEvents},
	} {
		if o := Step(c.s, c.e); o.Kind != KindReject {
			t.Errorf("Step(%d, %d) = %+v, want a rejection", c.s, c.e, o)
		}
	}
}

func TestNamesRoundTrip(t *testing.T) {
	for _, s := range States() {
		got, err := ParseState(s.String())
		if err != nil || got != s {
			t.Errorf("ParseState(%q) = %v, %v", s.String(), got, err)
		}
	}
	if _, err := ParseState("runing"); err == nil {
		t.Error("ParseState accepted a misspelled state")
	}
	if _, err := ParseState("invalid"); err == nil {
		t.Error("ParseState accepted the invalid state")
	}
}

func TestRejectionNamesStateAndHint(t *testing.T) {
	err := Step(StateRunning, EventRemove).Err(StateRunning, EventRemove)
	for _, want := range []string{"remove", "running", "stop it first"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestMermaid(t *testing.T) {
	d := Mermaid()
	for _, want := range []string{
		"stateDiagram-v2",
		"running --> stopping: stop",
		"stopping --> stopped: exited",
		"stopped --> [*]: remove",
	} {
		if !strings.Contains(d, want) {
			t.Errorf("diagram lacks %q:\n%s", want, d)
		}
	}
}
