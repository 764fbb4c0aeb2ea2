package qmp

import (
	"errors"
	"fmt"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrClosed: the connection to QEMU has ended, by Disconnect, by QEMU
	// closing its end, or by a broken read or write. Every command pending
	// at that moment, and every later one, fails with an error wrapping
	// it; Err tells the cause.
	ErrClosed = errors.New("qmp monitor closed")

	// ErrInvalidCommand: the bytes given to Run or RunContext are not a
	// JSON object naming a command in "execute", or they already carry an
	// "id", which this package owns to match replies.
	ErrInvalidCommand = errors.New("invalid qmp command")
)

// CommandError is an error QEMU returned for a command, the
// {"error": {"class": ..., "desc": ...}} reply. Run and RunContext wrap it,
// so callers reach it with errors.As.
type CommandError struct {
	// Class is QEMU's error class, for example "GenericError",
	// "CommandNotFound" or "DeviceNotActive".
	Class string `json:"class"`
	// Desc is QEMU's human-readable description.
	Desc string `json:"desc"`
}

// Error implements error.
func (e *CommandError) Error() string {
	return fmt.Sprintf("qemu error %s: %s", e.Class, e.Desc)
}
