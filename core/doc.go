// Package core is the hyperd daemon: it discovers driver plugins, keeps a
// store of VMs, runs one supervisor goroutine per VM that owns its
// lifecycle state, and serves the operator API on a unix socket.
//
// A supervisor feeds every event (an operator's request, a driver's
// report, a timer) through the fsm table, persists the outcome, and only
// then acknowledges the caller and performs the actions.
//
// Limitations: a driver process that dies is marked unhealthy but not yet
// restarted, and its VMs are not re-adopted until the daemon restarts;
// the daemon has no config file, metrics or driver hot swap yet.
package core
