package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hyperd/hyperd/internal/testguest"
)

// TestLibvirtTouchesOnlyItsDomains: while a VM runs, virsh shows its
// domain and `hyperctl rm` removes it; domains made by hand with virsh,
// even named like hyperd's, are never listed, stopped or removed.
func TestLibvirtTouchesOnlyItsDomains(t *testing.T) {
	needLibvirt(t)
	g := testguest.Build(t)

	// Two hand-made domains with hyperd's name prefix but no tag: one
	// defined and never started, one transient and paused before its
	// firmware runs.
	tag := strconv.Itoa(os.Getpid())
	defined, paused := "hyperd-handmade-"+tag+"-defined", "hyperd-handmade-"+tag+"-paused"
	dir := t.TempDir()
	for _, name := range []string{defined, paused} {
		x := fmt.Sprintf(`<domain type='qemu'><name>%s</name><memory unit='MiB'>32</memory>`+
			`<os><type arch='x86_64'>hvm</type></os><devices><memballoon model='none'/></devices></domain>`, name)
		if err := os.WriteFile(filepath.Join(dir, name+".xml"), []byte(x), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := virsh("define", filepath.Join(dir, defined+".xml")); err != nil {
		t.Fatalf("virsh define: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = virsh("undefine", defined) }) // ours, made above
	if out, err := virsh("create", "--paused", filepath.Join(dir, paused+".xml")); err != nil {
		t.Fatalf("virsh create --paused: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = virsh("destroy", paused) }) // ours, made above

	d := newDaemon(t, nil)
	d.start()
	if ids := strings.TrimSpace(d.mustCtl("ls", "-q")); ids != "" {
		t.Fatalf("hyperctl ls lists vms of a fresh daemon: %s", ids)
	}

	id := runGuest(d, "libvirt", "visible", g.Kernel, g.Initrd)
	d.waitConsole(id, testguest.ReadyLine, 90*time.Second)
	if names := domainNames(t); !slices.Contains(names, "hyperd-"+id) {
		t.Fatalf("virsh list --all lacks hyperd-%s while it runs: %v", id, names)
	}
	if ids := strings.Fields(d.mustCtl("ls", "-q")); !slices.Equal(ids, []string{id}) {
		t.Fatalf("hyperctl ls -q = %v, want only %s", ids, id)
	}
	d.mustCtl("rm", "--force", id)
	if names := domainNames(t); slices.Contains(names, "hyperd-"+id) {
		t.Fatalf("domain hyperd-%s still listed after hyperctl rm: %v", id, names)
	}
	d.term()

	for name, want := range map[string]string{defined: "shut off", paused: "paused"} {
		out, err := virsh("domstate", name)
		if err != nil || out != want {
			t.Errorf("hand-made domain %s: state %q, %v; want %q", name, out, err, want)
		}
	}
	if left := libvirtLeftovers(d); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// domainNames lists every domain libvirt knows, running or defined.
func domainNames(t *testing.T) []string {
	t.Helper()
	out, err := virsh("list", "--all", "--name")
	if err != nil {
		t.Fatalf("virsh list --all: %v: %s", err, out)
	}
	return strings.Fields(out)
}
