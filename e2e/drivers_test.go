package e2e

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperd/hyperd/internal/testguest"
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

	// cmdline is the guest's kernel command line; empty means
	// testguest.Cmdline, whose console is the first serial port.
	cmdline string
	// bootWithin bounds a guest's boot to its ready line; zero means
	// defaultBootWithin.
	bootWithin time.Duration
	// stopMargin is what a forced stop may take past its timeout; zero
	// means the package's stopMargin.
	stopMargin time.Duration
	// runs reports whether the backend still runs the VM v; nil means
	// its reported pid is alive. Drivers with no process per VM report
	// no pid.
	runs func(v vmView) bool
}

// defaultBootWithin bounds a boot under TCG on a loaded machine.
const defaultBootWithin = 90 * time.Second

// driverCases are the drivers this host can run. Xen runs only in a
// dom0, which a build machine is not: there the xen case is left out
// rather than skipped, and go test ./test/xen runs it inside a nested
// dom0 (and checks, on the host, that the driver refuses to run).
var driverCases = hostDriverCases()

func hostDriverCases() []driverCase {
	cases := []driverCase{
		{name: "qemu", need: needQEMU, leftovers: qemuLeftovers},
		{name: "libvirt", need: needLibvirt, leftovers: libvirtLeftovers},
	}
	if isXenDom0() {
		cases = append(cases, xenCase)
	}
	return cases
}

// isXenDom0 reports whether this host is a Xen dom0.
func isXenDom0() bool {
	b, err := os.ReadFile("/proc/xen/capabilities")
	return err == nil && strings.Contains(string(b), "control_d")
}

var xenCase = driverCase{
	name: "xen", need: needXen, leftovers: xenLeftovers,
	// A PV or PVH domain's console is hvc0; its first serial port
	// does not exist.
	cmdline: "console=hvc0 panic=-1 quiet",
	// Nested under QEMU with software emulation, xl create takes 10
	// to 15 s and the boot as long again; xl destroy a few seconds.
	bootWithin: 3 * time.Minute,
	stopMargin: 20 * time.Second,
	runs:       xenDomainRuns,
}

func (dc driverCase) guestCmdline() string {
	if dc.cmdline == "" {
		return testguest.Cmdline
	}
	return dc.cmdline
}

func (dc driverCase) bootTimeout() time.Duration {
	if dc.bootWithin == 0 {
		return defaultBootWithin
	}
	return dc.bootWithin
}

func (dc driverCase) forcedStopMargin() time.Duration {
	if dc.stopMargin == 0 {
		return stopMargin
	}
	return dc.stopMargin
}

// running reports whether the VM's backend still runs it.
func (dc driverCase) running(v vmView) bool {
	if dc.runs == nil {
		return alive(v.pid())
	}
	return dc.runs(v)
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

// needXen skips when this dom0 lacks the xl toolstack.
func needXen(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("xl"); err != nil {
		t.Skip("xl not found in this dom0: install Debian's xen-utils")
	}
}

// xenDomains returns the names of the domains `xl list` shows.
func xenDomains() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "xl", "list").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("xl list: %w: %s", err, out)
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] != "Name" {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// xenDomainRuns reports whether Xen still has the xen driver's domain
// of v, named hyperd-VMID. A Xen domain has no process, so the driver
// reports no pid.
func xenDomainRuns(v vmView) bool {
	names, err := xenDomains()
	// An unanswered xl list says nothing was proven gone.
	return err != nil || slices.Contains(names, "hyperd-"+v.ID)
}

// vmIDRE finds the VM ids in a daemon's log: the supervisor labels every
// line about a VM with its id.
var vmIDRE = regexp.MustCompile(`\bvm_id=([0-9a-f]{12})\b`)

// xenLeftovers lists the domains the xen driver made for d: those named
// hyperd-VMID for a VM id in d's log or in its state directory. Xen
// domains carry no work directory to match, as libvirt's tags do.
func xenLeftovers(d *daemon) []string {
	ids := make(map[string]bool)
	if d.log != nil {
		for _, m := range vmIDRE.FindAllStringSubmatch(d.log.String(), -1) {
			ids[m[1]] = true
		}
	}
	if ents, err := os.ReadDir(filepath.Join(d.stateDir, "vms")); err == nil {
		for _, e := range ents {
			ids[e.Name()] = true
		}
	}
	names, err := xenDomains()
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, name := range names {
		if id, ok := strings.CutPrefix(name, "hyperd-"); ok && ids[id] {
			out = append(out, "xen domain "+name)
		}
	}
	return out
}
