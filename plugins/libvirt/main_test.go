package libvirt

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives the tests, except
// libvirt's event loop, which runs for the life of the process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/hyperd/hyperd/plugins/libvirt.runEventLoop"))
}
