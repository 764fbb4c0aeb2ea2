package fsm

// Outcome constructors keep the table below one line per cell.
func move(to State, actions ...Action) Outcome {
	return Outcome{Kind: KindMove, To: to, Actions: actions}
}

func stay(actions ...Action) Outcome {
	return Outcome{Kind: KindStay, Actions: actions}
}

func reject(hint string) Outcome {
	return Outcome{Kind: KindReject, Hint: hint}
}

// ignore is the outcome of a driver's report that no longer fits the state,
// such as an exit reported after a kill already moved the VM to stopped.
// It is accepted and changes nothing; the supervisor reconciles with the
// driver's Status when in doubt.
var ignore = stay()

// offline is the row for a VM with no process: created, stopped or failed.
// Stop and kill are accepted and do nothing, so that repeating them is
// safe.
func offline() [numEvents]Outcome {
	return [numEvents]Outcome{
		EventStart:       move(StateStarting, ActionDriverStart),
		EventStarted:     ignore,
		EventStartFailed: ignore,
		EventStop:        stay(),
		EventKill:        stay(),
		EventStopTimeout: ignore,
		EventExited:      ignore,
		EventPause:       reject("start it first"),
		EventPaused:      ignore,
		EventResume:      reject("start it first"),
		EventResumed:     ignore,
		EventRemove:      move(StateRemoved, ActionDriverDestroy, ActionDelete),
	}
}

// table decides every (state, event) pair. TestTableIsComplete walks it.
var table = [numStates][numEvents]Outcome{
	StateCreated: offline(),
	StateStarting: {
		EventStart:       reject("it is already starting"),
		EventStarted:     move(StateRunning),
		EventStartFailed: move(StateFailed),
		EventStop:        reject("a booting guest cannot shut down gracefully; wait, or kill it"),
		EventKill:        move(StateStopping, ActionDriverKill),
		EventStopTimeout: ignore,
		EventExited:      move(StateFailed),
		EventPause:       reject("wait until it runs"),
		// A driver asked to start a VM paused reports it so, not started.
		EventPaused:  move(StatePaused),
		EventResume:  reject("it is not paused"),
		EventResumed: ignore,
		EventRemove:  reject("kill it first"),
	},
	StateRunning: {
		EventStart:       reject("it is already running"),
		EventStarted:     ignore,
		EventStartFailed: ignore,
		EventStop:        move(StateStopping, ActionArmStopTimer, ActionDriverStop),
		EventKill:        move(StateStopping, ActionDriverKill),
		EventStopTimeout: ignore,
		EventExited:      move(StateStopped),
		EventPause:       stay(ActionDriverPause),
		EventPaused:      move(StatePaused),
		EventResume:      reject("it is not paused"),
		EventResumed:     ignore,
		EventRemove:      reject("stop it first"),
	},
	StatePaused: {
		EventStart:       reject("it is paused; resume it"),
		EventStarted:     ignore,
		EventStartFailed: ignore,
		// A frozen guest cannot see the power button: thaw it first.
		EventStop:        move(StateStopping, ActionArmStopTimer, ActionDriverResume, ActionDriverStop),
		EventKill:        move(StateStopping, ActionDriverKill),
		EventStopTimeout: ignore,
		EventExited:      move(StateStopped),
		EventPause:       reject("it is already paused"),
		EventPaused:      ignore,
		EventResume:      stay(ActionDriverResume),
		EventResumed:     move(StateRunning),
		EventRemove:      reject("stop it first"),
	},
	StateStopping: {
		EventStart:       reject("it is stopping; start it once stopped"),
		EventStarted:     ignore,
		EventStartFailed: ignore,
		EventStop:        stay(),
		EventKill:        stay(ActionDisarmStopTimer, ActionDriverKill),
		EventStopTimeout: stay(ActionDriverKill),
		EventExited:      move(StateStopped, ActionDisarmStopTimer),
		EventPause:       reject("it is stopping"),
		EventPaused:      ignore,
		EventResume:      reject("it is stopping"),
		EventResumed:     ignore,
		EventRemove:      reject("wait until it has stopped"),
	},
	StateStopped: offline(),
	StateFailed:  offline(),
	StateRemoved: {
		EventStart:       reject(""),
		EventStarted:     ignore,
		EventStartFailed: ignore,
		EventStop:        reject(""),
		EventKill:        reject(""),
		EventStopTimeout: ignore,
		EventExited:      ignore,
		EventPause:       reject(""),
		EventPaused:      ignore,
		EventResume:      reject(""),
		EventResumed:     ignore,
		EventRemove:      reject(""),
	},
}

// Step returns the outcome of event e in state s. It never panics: a state
// or event outside the table is rejected.
func Step(s State, e Event) Outcome {
	if s == StateInvalid || s >= numStates || e == EventInvalid || e >= numEvents {
		return reject("")
	}
	return table[s][e]
}
