package e2e

import (
	"context"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// driverCase is one driver the end-to-end lifecycle runs against.
type driverCase struct {
	name string
	// need skips the test when the driver's backend is truly absent,
	// saying what to install. CI installs every backend.
	need func(t *testing.T)
	// leftovers lists what the driver left running or defined for the
	// daemon d: processes, domains. It must be empty after every test.
	leftovers func(d *daemon) []string
}

var driverCases = []driverCase{
	{name: "qemu", need: needQEMU, leftovers: qemuLeftovers},
	{name: "libvirt", need: needLibvirt, leftovers: libvirtLeftovers},
}

func qemuLeftovers(d *daemon) []string {
	var out []string
	for _, pid := range qemuPIDs(d.stateDir) {
		out = append(out, "qemu pid "+itoa(pid))
	}
	return out
}

// libvirtURI is the connection the libvirt driver uses by default.
const libvirtURI = "qemu:///system"

// libvirtMetadataNS is the namespace of the tag the libvirt driver puts
// on every domain it creates.
const libvirtMetadataNS = "https://github.com/hyperd/hyperd/xmlns/libvirt/v1"

// needLibvirt skips when libvirt is not installed and fails, saying how
// to start it, when libvirtd is installed but does not answer: CI starts
// it. It also arranges that domains of a test daemon that died without
// cleaning up are destroyed once the test ends.
func needLibvirt(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("libvirtd"); err != nil {
		t.Skip("libvirtd not found: install Debian's libvirt-daemon-system (make deps)")
	}
	if out, err := virsh("version"); err != nil {
		t.Fatalf("libvirtd does not answer at %s (%v: %s): start it with `virtlogd -d && libvirtd -d` (.ci/run does)",
			libvirtURI, err, out)
	}
	// Registered before the test's daemons, so it runs after their
	// cleanups have killed them and removed their state directories.
	t.Cleanup(destroyOrphanDomains)
}

func virsh(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "virsh", append([]string{"-c", libvirtURI}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// hyperdDomain is a libvirt domain carrying the libvirt driver's tag.
type hyperdDomain struct {
	Name    string
	VMID    string
	WorkDir string
}

// hyperdDomains lists every domain, running or defined, that carries the
// libvirt driver's tag. Untagged domains are none of hyperd's business.
func hyperdDomains() []hyperdDomain {
	out, err := virsh("list", "--all", "--name")
	if err != nil {
		return nil
	}
	var doms []hyperdDomain
	for _, name := range strings.Fields(out) {
		meta, err := virsh("metadata", name, "--uri", libvirtMetadataNS)
		if err != nil {
			continue // untagged, or gone meanwhile
		}
		var m struct {
			VMID    string `xml:"vm_id"`
			WorkDir string `xml:"work_dir"`
		}
		if xml.Unmarshal([]byte(meta), &m) != nil || m.VMID == "" {
			continue
		}
		doms = append(doms, hyperdDomain{Name: name, VMID: m.VMID, WorkDir: m.WorkDir})
	}
	return doms
}

// libvirtLeftovers lists the tagged domains whose work directory lies in
// d's state directory.
func libvirtLeftovers(d *daemon) []string {
	var out []string
	for _, dom := range hyperdDomains() {
		if strings.HasPrefix(dom.WorkDir, d.stateDir+"/") {
			out = append(out, "libvirt domain "+dom.Name)
		}
	}
	return out
}

// destroyOrphanDomains destroys tagged domains left by test daemons: a
// work directory under the temporary directory's hyd-* roots that no
// longer exists belongs to a test that is over.
func destroyOrphanDomains() {
	prefix := filepath.Join(os.TempDir(), "hyd-")
	for _, dom := range hyperdDomains() {
		if !strings.HasPrefix(dom.WorkDir, prefix) {
			continue
		}
		if _, err := os.Stat(dom.WorkDir); err == nil {
			continue // a live test's
		}
		_, _ = virsh("destroy", dom.Name)  // transient: destroying also removes it
		_, _ = virsh("undefine", dom.Name) // in case it was made persistent
	}
}
