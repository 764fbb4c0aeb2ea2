// Package fsm is the VM lifecycle as data: typed states, typed events, and
// a transition table that decides, for every state and every event, one
// outcome: move to another state, stay, or reject with an error. An outcome
// carries the actions the caller must perform (call the driver, arm a
// timer); the package itself does no I/O, so the whole lifecycle is tested
// by walking the table.
//
// The daemon's supervisor owns one VM's state, feeds it events (an
// operator's request, a driver's report, a timer) through Step, persists
// the new state, and then performs the actions.
//
// Limitations: there are no states for migration, snapshots or reboots
// kept inside one VM's life; a guest reboot ends the VM.
package fsm
