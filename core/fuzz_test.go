package core

import (
	"errors"
	"testing"

	"github.com/hyperd/hyperd/sdk"
)

// FuzzValidateSpec: the daemon's own checks never panic, and what they
// refuse wraps ErrInvalidSpec and names a field.
func FuzzValidateSpec(f *testing.F) {
	f.Add("web", uint32(1), uint64(256), "/boot/vmlinuz")
	f.Add("", uint32(0), uint64(0), "")
	f.Add("../..", uint32(1), uint64(1), "k")
	f.Fuzz(func(t *testing.T, name string, vcpus uint32, mem uint64, kernel string) {
		err := validateSpec(sdk.Spec{Name: name, VCPUs: vcpus, MemoryMiB: mem, Kernel: kernel})
		if err == nil {
			if !namePattern.MatchString(name) || vcpus == 0 || mem == 0 || kernel == "" {
				t.Fatalf("accepted name %q vcpus %d memory %d kernel %q", name, vcpus, mem, kernel)
			}
			return
		}
		if !errors.Is(err, sdk.ErrInvalidSpec) {
			t.Fatalf("refusal %v does not wrap ErrInvalidSpec", err)
		}
	})
}

// FuzzDecodeRecord: a store record of any bytes decodes or fails with an
// error, never a panic, so one bad record cannot stop the daemon.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"id":"a","state":"running","spec":{"Name":"x"}}`))
	f.Add([]byte(`{"state":"runing"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err == nil && r.State.String() != r.StateName {
			t.Fatalf("decoded state %s from name %q", r.State, r.StateName)
		}
	})
}
