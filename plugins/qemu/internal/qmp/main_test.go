package qmp

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// reader, a subscription or a fake server left behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
