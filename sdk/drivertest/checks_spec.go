package drivertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hyperd/hyperd/sdk"
)

// badSpec is one fault in an otherwise valid spec.
type badSpec struct {
	name string
	// field is what the error must name, matched case-insensitively
	// within the message.
	field string
	spoil func(s *sdk.Spec, scratch string)
}

var badSpecs = []badSpec{
	{"empty_name", "name", func(s *sdk.Spec, _ string) { s.Name = "" }},
	{"zero_memory", "memory", func(s *sdk.Spec, _ string) { s.MemoryMiB = 0 }},
	{"zero_vcpus", "vcpu", func(s *sdk.Spec, _ string) { s.VCPUs = 0 }},
	{"missing_kernel", "kernel", func(s *sdk.Spec, _ string) { s.Kernel = "" }},
	{"kernel_not_found", "kernel", func(s *sdk.Spec, scratch string) {
		s.Kernel = filepath.Join(scratch, "no-such-kernel")
	}},
	// A comma splits QEMU's and UML's option syntax; a driver must refuse
	// it rather than let the backend misread the path. The link makes the
	// comma the only fault.
	{"comma_in_path", "kernel", func(s *sdk.Spec, scratch string) {
		s.Kernel = filepath.Join(scratch, "vmlinuz,comma")
	}},
}

func checkInvalidSpec(e *env) {
	in := e.driver()
	scratch := e.dir(e.name + "-files")
	kernel := e.cfg.Guest.Kernel
	if kernel == "" {
		// Drivers check the kernel's path at Create, not its content.
		kernel = filepath.Join(scratch, "vmlinuz")
		if err := os.WriteFile(kernel, []byte("not a kernel"), 0o640); err != nil {
			e.t.Fatalf("write stand-in kernel: %v", err)
		}
	}
	if err := os.Symlink(kernel, filepath.Join(scratch, "vmlinuz,comma")); err != nil {
		e.t.Fatalf("link kernel: %v", err)
	}

	for _, bc := range badSpecs {
		v := e.addVM()
		spec := e.spec(e.cfg.Guest.Initrd)
		spec.Kernel = kernel
		bc.spoil(&spec, scratch)

		h, err := in.Driver.Create(e.ctx, v.id, spec, v.dir)
		switch {
		case err == nil:
			v.h = h
			e.t.Errorf("%s: Create succeeded; want an error wrapping sdk.ErrInvalidSpec "+
				"(gRPC InvalidArgument) naming %s", bc.name, bc.field)
		case !errors.Is(err, sdk.ErrInvalidSpec):
			e.t.Errorf("%s: Create: %v; want sdk.ErrInvalidSpec (gRPC InvalidArgument), got code %s",
				bc.name, err, sdk.Code(err))
		case !strings.Contains(strings.ToLower(err.Error()), bc.field):
			e.t.Errorf("%s: Create: %v; the message should name the field %s", bc.name, err, bc.field)
		}
		if left, _ := os.ReadDir(v.dir); len(left) > 0 && err != nil {
			var names []string
			for _, f := range left {
				names = append(names, f.Name())
			}
			e.t.Errorf("%s: a refused Create left %s in the work dir", bc.name, strings.Join(names, ", "))
		}
	}
}

// garbledHandles are handles no driver can have made.
var garbledHandles = []struct {
	name string
	h    sdk.Handle
}{
	{"garbled", sdk.Handle("\x00\xffnot a handle {\"pid\": -1")},
	{"empty", nil},
}

func checkGarbledHandle(e *env) {
	in := e.driver()
	info := e.info(in)
	const id = "garbled-handle"
	for _, gh := range garbledHandles {
		v := &vm{id: id, h: gh.h}
		calls := []namedCall{
			{"Status", func(ctx context.Context) error { _, err := in.Driver.Status(ctx, id, gh.h); return err }},
			{"Start", func(ctx context.Context) error { _, err := in.Driver.Start(ctx, id, gh.h); return err }},
			{"Stop", func(ctx context.Context) error {
				_, err := in.Driver.Stop(ctx, id, gh.h, time.Second)
				return err
			}},
			{"Kill", func(ctx context.Context) error { return in.Driver.Kill(ctx, id, gh.h) }},
			{"Recover", func(ctx context.Context) error { _, _, err := in.Driver.Recover(ctx, id, gh.h); return err }},
			{"Destroy", func(ctx context.Context) error { return in.Driver.Destroy(ctx, id, gh.h) }},
		}
		if info.Has(sdk.CapabilityPause) {
			calls = append(calls,
				namedCall{"Pause", func(ctx context.Context) error { return pause(ctx, in.Driver, v) }},
				namedCall{"Resume", func(ctx context.Context) error { return resume(ctx, in.Driver, v) }})
		}
		for _, c := range calls {
			err := guarded(e.ctx, c.call)
			switch {
			case err == nil:
				e.t.Errorf("%s with a %s handle succeeded; want sdk.ErrInvalidSpec or sdk.ErrNotFound",
					c.name, gh.name)
			case !isAny(err, sdk.ErrInvalidSpec, sdk.ErrNotFound):
				e.t.Errorf("%s with a %s handle: %v; want sdk.ErrInvalidSpec (InvalidArgument) or "+
					"sdk.ErrNotFound (NotFound), got code %s", c.name, gh.name, err, sdk.Code(err))
			}
			if in.Exited != nil && in.Exited() {
				e.t.Fatalf("the driver process ended on %s with a %s handle", c.name, gh.name)
			}
		}
	}
}

// namedCall is one driver call, named for the report.
type namedCall struct {
	name string
	call func(ctx context.Context) error
}

// guarded runs call, turning a panic of an in-process driver into an
// error; over the wire a panic ends the driver process instead.
func guarded(ctx context.Context, call func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("driver panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return call(ctx)
}
