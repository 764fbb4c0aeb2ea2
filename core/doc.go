// Package core is the hyperd daemon: it discovers driver plugins, keeps a
// store of VMs, runs one supervisor goroutine per VM that owns its
// lifecycle state, and serves the operator API on a unix socket.
//
// A supervisor feeds every event (an operator's request, a driver's
// report, a timer) through the fsm table, persists the outcome, and only
// then acknowledges the caller and performs the actions.
//
// A driver process that dies is restarted with backoff, and a reload
// swaps in a new binary; either way the daemon follows the new process's
// events and recovers the driver's VMs through it. The config file (HCL)
// sets the daemon's paths, the default driver and each driver's options,
// checked against the schema the driver publishes.
//
// Limitations: there are no Prometheus metrics yet, and a removed API
// socket file is not noticed while the daemon runs.
package core
