package main

import (
	"strings"
	"testing"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
)

func testVM(id, name string) *apiv1.VM {
	return &apiv1.VM{Id: id, Spec: &apiv1.VMSpec{Name: name}}
}

func TestMatchVM(t *testing.T) {
	vms := []*apiv1.VM{
		testVM("abc123", "web"),
		testVM("abd456", "db"),
		testVM("f00", "abc"),
		testVM("e11", "twin"),
		testVM("e22", "twin"),
	}
	tests := []struct {
		name    string
		arg     string
		want    string
		wantErr string
	}{
		{name: "full id", arg: "abd456", want: "abd456"},
		{name: "name", arg: "web", want: "abc123"},
		{name: "unique prefix", arg: "abd", want: "abd456"},
		{name: "name beats prefix", arg: "abc", want: "f00"},
		{name: "no match passes through", arg: "zzz", want: "zzz"},
		{name: "ambiguous prefix", arg: "ab", wantErr: `"ab" matches 2 VMs: abc123 (web), abd456 (db)`},
		{name: "ambiguous name", arg: "twin", wantErr: `"twin" matches 2 VMs: e11 (twin), e22 (twin)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := matchVM(vms, tt.arg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("matchVM(%q) = %q, %v; want error containing %q", tt.arg, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("matchVM(%q) = %q, %v; want %q", tt.arg, got, err, tt.want)
			}
		})
	}
}
