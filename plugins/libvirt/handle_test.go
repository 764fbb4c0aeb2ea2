package libvirt

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hyperd/hyperd/sdk"
)

func TestDecodeHandle(t *testing.T) {
	good := handle{
		Version:    handleVersion,
		VMID:       "vm1",
		WorkDir:    "/state/vms/vm1",
		Spec:       sdk.Spec{Name: "web", VCPUs: 1, MemoryMiB: 256, Kernel: "/k"},
		URI:        DefaultURI,
		UUID:       "0b6f5a2e-1c2d-4e3f-8a9b-0c1d2e3f4a5b",
		Domain:     "hyperd-vm1",
		ConsoleLog: "/state/vms/vm1/console.log",
	}
	tests := []struct {
		name    string
		vmID    string
		raw     func() sdk.Handle
		wantErr string // empty: valid
	}{
		{"valid", "vm1", func() sdk.Handle { return good.encode() }, ""},
		{"empty", "vm1", func() sdk.Handle { return nil }, "empty"},
		{"not json", "vm1", func() sdk.Handle { return sdk.Handle("{") }, "not a libvirt driver handle"},
		{"other vm", "vm2", func() sdk.Handle { return good.encode() }, `belongs to vm "vm1"`},
		{"future version", "vm1", func() sdk.Handle { h := good; h.Version = 2; return h.encode() }, "version 2"},
		{"bad uuid", "vm1", func() sdk.Handle { h := good; h.UUID = "XYZ"; return h.encode() }, "uuid"},
		{"foreign domain name", "vm1", func() sdk.Handle { h := good; h.Domain = "prod-db"; return h.encode() }, "domain"},
		{"no uri", "vm1", func() sdk.Handle { h := good; h.URI = ""; return h.encode() }, "lacks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := decodeHandle(tt.vmID, tt.raw())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("decodeHandle = %v", err)
				}
				if h.UUID != good.UUID || h.Spec.MemoryMiB != 256 {
					t.Errorf("decoded %+v", h)
				}
				return
			}
			if !errors.Is(err, sdk.ErrInvalidSpec) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("decodeHandle = %v, want ErrInvalidSpec with %q", err, tt.wantErr)
			}
		})
	}
}

// TestHandleLayout pins the JSON names a stored handle depends on.
func TestHandleLayout(t *testing.T) {
	var m map[string]any
	h := handle{Version: 1, VMID: "v", UUID: "u", Domain: "hyperd-v", URI: "qemu:///system", Started: true, DomainType: "qemu"}
	if err := json.Unmarshal(h.encode(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "vm_id", "work_dir", "spec", "uri", "uuid", "domain", "console_log", "started", "domain_type"} {
		if _, ok := m[k]; !ok {
			t.Errorf("handle JSON lacks %q: %v", k, m)
		}
	}
}

func TestNewUUID(t *testing.T) {
	a, b := newUUID(), newUUID()
	if !uuidRE.MatchString(a) || a == b || a[14] != '4' {
		t.Errorf("newUUID = %s, %s", a, b)
	}
}
