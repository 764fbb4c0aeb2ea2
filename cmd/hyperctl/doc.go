// Command hyperctl is the operator's command line for hyperd. It talks to
// the daemon's operator API (api/hyperd/v1) over the daemon's unix socket,
// one or two calls per command. The root command is built by newRootCmd so
// that tests run it in process against a fake server.
//
// Exit codes: 0 on success, 1 when hyperd or a call fails, 2 for a usage
// error (bad flag, missing or extra argument), 130 when interrupted.
//
// Limitations: the console is read-only (logs), since the API streams the
// console log and has no input side; there is no attach. A VM's id prefix
// or name is resolved by listing every VM first, one extra call per
// command.
package main
