package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperd/hyperd/internal/testguest"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hyperd.hcl")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigOptionTypoRefused: a driver option the driver's schema does
// not declare stops hyperd at startup, naming the file, line and field.
func TestConfigOptionTypoRefused(t *testing.T) {
	needQEMU(t)
	d := newDaemon(t, nil)
	cfg := writeConfig(t, "default_driver = \"qemu\"\n\ndriver \"qemu\" {\n  acel = \"tcg\"\n}\n")
	cmd := exec.Command(filepath.Join(d.bin, "hyperd"), "--config", cfg,
		"--state-dir", d.stateDir, "--socket", d.socket, "--plugin-dir", d.pluginDir)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("hyperd started with a typo in its config:\n%s", out)
	}
	for _, want := range []string{cfg + ":4", `"acel"`, "accel"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(d.socket); err == nil {
		t.Error("a refused hyperd left its socket behind")
	}
}

// TestConfigPinnedChecksum: a wrong pin keeps the driver out, with the
// reason in hyperctl drivers; the right pin lets it in.
func TestConfigPinnedChecksum(t *testing.T) {
	needQEMU(t)
	b, err := os.ReadFile(filepath.Join(binaries(t), "plugins", "hyperd-driver-qemu"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	right := hex.EncodeToString(sum[:])
	wrong := strings.Repeat("0", 64)

	for _, tc := range []struct {
		name    string
		pin     string
		healthy bool
	}{
		{"wrong pin", wrong, false},
		{"right pin", right, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDaemon(t, nil)
			d.args = []string{"--config", writeConfig(t, "driver \"qemu\" {\n  sha256 = \""+tc.pin+"\"\n}\n")}
			d.start()
			q := d.drivers()["qemu"]
			if q.Healthy != tc.healthy {
				t.Fatalf("qemu with %s: %+v", tc.name, q)
			}
			if !tc.healthy && (!strings.Contains(q.Error, "sha256") || !strings.Contains(q.Error, right)) {
				t.Fatalf("refusal %q does not give the binary's checksum", q.Error)
			}
			d.term()
		})
	}
}

// TestConfigDefaultDriver: run without --driver uses the config's
// default driver, and settings come from the file when no flag is given.
func TestConfigDefaultDriver(t *testing.T) {
	needQEMU(t)
	d := newDaemon(t, nil)
	cfg := writeConfig(t, "state_dir = \""+d.stateDir+"\"\nsocket = \""+d.socket+"\"\nplugin_dirs = [\""+
		d.pluginDir+"\"]\ndefault_driver = \"nosuch\"\nstop_timeout = \"7s\"\n")
	d.cmd = exec.Command(filepath.Join(d.bin, "hyperd"), "--config", cfg)
	var log strings.Builder
	d.cmd.Stdout, d.cmd.Stderr = &log, &log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.exited = make(chan struct{})
	go func() {
		_ = d.cmd.Wait() // watched through d.exited
		close(d.exited)
	}()
	eventually(t, 30*time.Second, "hyperd answering on the config's socket", func() bool {
		_, _, err := d.ctl("drivers")
		return err == nil
	})
	_, errOut, err := d.ctl("run", "--name", "x", "--kernel", "/boot/vmlinuz-does-not-matter")
	if err == nil || !strings.Contains(errOut, `"nosuch"`) {
		t.Fatalf("run without --driver: err %v, stderr %q; want the config's default driver named", err, errOut)
	}
	d.term()
}

// TestConfigDefaultsToLibvirt: a config naming libvirt as the host's
// default makes hyperctl run, given no --driver, boot through libvirt.
func TestConfigDefaultsToLibvirt(t *testing.T) {
	needLibvirt(t)
	g := testguest.Build(t)
	d := newDaemon(t, nil)
	d.args = []string{"--config", writeConfig(t, "default_driver = \"libvirt\"\n")}
	d.start()
	out := d.mustCtl("run", "--name", "by-default", "--memory", "256M",
		"--kernel", g.Kernel, "--initrd", g.Initrd, "--cmdline", testguest.Cmdline)
	id := strings.TrimSpace(out)
	var v struct {
		Driver string `json:"driver"`
		State  string `json:"state"`
	}
	if err := json.Unmarshal([]byte(d.mustCtl("inspect", "-o", "json", id)), &v); err != nil {
		t.Fatal(err)
	}
	if v.Driver != "libvirt" || v.State != "running" {
		t.Fatalf("vm run without --driver: driver %q state %q, want libvirt running", v.Driver, v.State)
	}
	d.mustCtl("kill", id)
	d.mustCtl("rm", id)
	d.term()
	if left := libvirtLeftovers(d); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}
