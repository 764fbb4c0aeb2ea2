package xen

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hyperd/hyperd/sdk"
)

// fakeProc makes a procfs stand-in whose xen/capabilities holds caps, or
// none when caps is empty.
func fakeProc(t *testing.T, caps string) string {
	t.Helper()
	root := t.TempDir()
	if caps != "" {
		if err := os.MkdirAll(filepath.Join(root, "xen"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "xen", "capabilities"), []byte(caps), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCheckDom0(t *testing.T) {
	tests := []struct {
		name, caps, want string
	}{
		{"no xenfs", "", "not a Xen dom0: " + "PROC/xen/capabilities missing"},
		{"a domU", "\n", "without control_d"},
		{"dom0", "control_d\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeProc(t, tt.caps)
			err := checkDom0(root)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("checkDom0: %v", err)
				}
				return
			}
			if !errors.Is(err, sdk.ErrUnavailable) {
				t.Fatalf("checkDom0 = %v, want ErrUnavailable", err)
			}
			if want := strings.ReplaceAll(tt.want, "PROC", root); !strings.Contains(err.Error(), want) {
				t.Fatalf("checkDom0 = %q, want it to say %q", err, want)
			}
		})
	}
}

func TestConsoleDirFromArgs(t *testing.T) {
	tests := []struct {
		args    []string
		wantDir string
	}{
		{nil, ""},
		{[]string{"--log=none"}, ""},
		{[]string{"--log=guest"}, defaultConsoleDir},
		{[]string{"--pid-file=/run/x.pid", "--log=all", "--log-dir=/srv/console"}, "/srv/console"},
		{[]string{"--log", "guest", "--log-dir", "/srv/c"}, "/srv/c"},
	}
	for _, tt := range tests {
		dir, why := consoleDirFromArgs(tt.args)
		if dir != tt.wantDir {
			t.Errorf("consoleDirFromArgs(%q) = %q (%s), want %q", tt.args, dir, why, tt.wantDir)
		}
		if dir == "" && !strings.Contains(why, "--log=guest") {
			t.Errorf("consoleDirFromArgs(%q) says %q, which does not tell the fix", tt.args, why)
		}
	}
}

// TestNotDom0 runs against this host's real /proc: a build machine is no
// dom0, so the driver must say so and refuse to create.
func TestNotDom0(t *testing.T) {
	if checkDom0("/proc") == nil {
		t.Skip("this host is a Xen dom0")
	}
	d := New(nil)
	fp, err := d.Fingerprint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if fp.Health != sdk.HealthUnhealthy || !strings.HasPrefix(fp.Description, "not a Xen dom0: /proc/xen/capabilities missing") {
		t.Fatalf("fingerprint = %+v, want unhealthy, not a dom0", fp)
	}
	kernel := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(kernel, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := sdk.Spec{Name: "web", VCPUs: 1, MemoryMiB: 128, Kernel: kernel}
	_, err = d.Create(context.Background(), "0a1b2c3d4e5f", spec, t.TempDir())
	if !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), fp.Description) {
		t.Fatalf("Create = %v, want ErrUnavailable with %q", err, fp.Description)
	}
}
