package qemu

import (
	"errors"
	"strings"
	"testing"

	"github.com/hyperd/hyperd/sdk"
)

func TestResolveAccel(t *testing.T) {
	probe := func() (Accelerator, string) { return AccelTCG, "probed" }
	tests := []struct {
		name, spec, env string
		want            Accelerator
		why             string
	}{
		{"auto probes", "", "", AccelTCG, "probed"},
		{"spec auto probes", "auto", "auto", AccelTCG, "probed"},
		{"env forces", "", "kvm", AccelKVM, "set by " + AccelEnv},
		{"spec beats env", "tcg", "kvm", AccelTCG, "set by the spec's accel option"},
		{"bad env is ignored", "", "hvf", AccelTCG, "probed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := resolveAccel(tt.spec, tt.env, probe)
			if got != tt.want || why != tt.why {
				t.Errorf("resolveAccel = %s %q, want %s %q", got, why, tt.want, tt.why)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct{ out, want string }{
		{"QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright", "7.2.22"},
		{"QEMU emulator version 9.1.0\n", "9.1.0"},
		{"garbage", ""},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got, ok := parseVersion(tt.out)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("parseVersion = %q %v, want %q", got, ok, tt.want)
			}
		})
	}
}

func TestDecodeHandle(t *testing.T) {
	good := handle{Version: handleVersion, VMID: "a", WorkDir: "/w", QMPSocket: "/w/qmp.sock"}
	tests := []struct {
		name string
		in   sdk.Handle
		ok   bool
	}{
		{"good", good.encode(), true},
		{"empty", nil, false},
		{"garbled", sdk.Handle("{not json"), false},
		{"other vm", handle{Version: handleVersion, VMID: "b", WorkDir: "/w", QMPSocket: "/s"}.encode(), false},
		{"future version", handle{Version: 2, VMID: "a", WorkDir: "/w", QMPSocket: "/s"}.encode(), false},
		{"pid without start time", handle{Version: handleVersion, VMID: "a", WorkDir: "/w", QMPSocket: "/s", PID: 5}.encode(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeHandle("a", tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("decodeHandle = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, sdk.ErrInvalidSpec) {
				t.Errorf("error %v does not wrap ErrInvalidSpec", err)
			}
		})
	}
}

func TestInfo(t *testing.T) {
	info, err := New(nil).Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []sdk.Capability{sdk.CapabilityPause, sdk.CapabilityGracefulShutdown, sdk.CapabilityConsoleLog, sdk.CapabilityRecover} {
		if !info.Has(c) {
			t.Errorf("Info lacks %s", c)
		}
	}
	if info.Name != "qemu" {
		t.Errorf("name %q", info.Name)
	}
}

func TestFingerprintWithoutQEMU(t *testing.T) {
	fp, err := New(nil, WithBinary("qemu-system-nonexistent")).Fingerprint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if fp.Health != sdk.HealthUnhealthy || !strings.Contains(fp.Description, "install Debian's qemu-system-x86") {
		t.Errorf("fingerprint = %+v", fp)
	}
}
