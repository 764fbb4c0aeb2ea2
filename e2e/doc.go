// Package e2e holds end-to-end tests: they run the built hyperd, hyperctl
// and driver binaries as an operator would, against real QEMU and the real
// test guest.
//
// The binaries come from $HYPERD_BIN_DIR (make test sets it to bin/) or
// are built into a temporary directory.
package e2e
