package qemu

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives the tests: every
// watcher, pump and subscriber must end with its VM or its context.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
