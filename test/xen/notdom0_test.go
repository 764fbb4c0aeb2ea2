package xentest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNotDom0Host runs hyperd with only the xen driver on this host, no
// Xen dom0: hyperctl lists the driver unhealthy with the reason, and a VM
// run with it fails with that reason and leaves nothing stored.
func TestNotDom0Host(t *testing.T) {
	if _, err := os.Stat("/proc/xen/capabilities"); err == nil {
		t.Skip("this host may be a Xen dom0")
	}
	const reason = "not a Xen dom0: /proc/xen/capabilities missing"
	root, err := os.MkdirTemp("", "hyx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	bin := filepath.Join(root, "bin")
	buildBinaries(t, bin)
	socket := filepath.Join(root, "api.sock")

	daemon := exec.Command(filepath.Join(bin, "hyperd"), "--state-dir", filepath.Join(root, "state"),
		"--socket", socket, "--plugin-dir", filepath.Join(bin, "plugins"), "--default-driver", "xen")
	var log bytes.Buffer
	daemon.Stdout, daemon.Stderr = &log, &log
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = daemon.Wait() // seen through exited
		close(exited)
	}()
	t.Cleanup(func() {
		_ = daemon.Process.Kill() // may have exited already
		<-exited
		if t.Failed() {
			t.Logf("hyperd log:\n%s", log.String())
		}
	})

	ctl := func(args ...string) (string, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "hyperctl"), append([]string{"--socket", socket}, args...)...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		return o.String(), e.String(), err
	}
	var out string
	for deadline := time.Now().Add(30 * time.Second); ; {
		if out, _, err = ctl("drivers", "-o", "json"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hyperd did not answer within 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	var list struct {
		Drivers []map[string]any `json:"drivers"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("drivers -o json: %v\n%s", err, out)
	}
	var xen map[string]any
	for _, d := range list.Drivers {
		if d["name"] == "xen" {
			xen = d
		}
	}
	if xen == nil {
		t.Fatalf("xen driver not listed: %s", out)
	}
	if healthy, _ := xen["healthy"].(bool); healthy {
		t.Fatalf("xen driver healthy on a host that is no dom0: %v", xen)
	}
	if b, _ := json.Marshal(xen); !strings.Contains(string(b), reason) {
		t.Fatalf("xen driver entry %s does not say %q", b, reason)
	}

	kernel := filepath.Join(root, "vmlinuz")
	if err := os.WriteFile(kernel, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := ctl("run", "--name", "x", "--driver", "xen", "--kernel", kernel)
	if err == nil || !strings.Contains(errOut, reason) {
		t.Fatalf("run with the xen driver: err %v, stderr %q; want a failure saying %q", err, errOut, reason)
	}
	if ids, _, err := ctl("ls", "-q"); err != nil || strings.TrimSpace(ids) != "" {
		t.Fatalf("after the failed run: ls -q = %q, %v; want nothing stored", ids, err)
	}
}
