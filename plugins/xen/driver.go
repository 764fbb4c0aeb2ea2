package xen

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hyperd/hyperd/sdk"
)

// Name is the driver's name; its binary is hyperd-driver-xen.
const Name = "xen"

// Version is the driver's own version.
const Version = "0.1.0"

// DefaultXL is the xl binary the driver runs, looked up in PATH unless
// WithXL says otherwise. Debian's /usr/sbin/xl picks the xen-utils
// matching the running hypervisor.
const DefaultXL = "xl"

const (
	// infoTimeout bounds `xl info` in a fingerprint.
	infoTimeout = 10 * time.Second
	// healthyFor is how long a healthy fingerprint is reused before `xl
	// info` runs again: the SDK asks every few seconds, and in a small
	// dom0 each xl run costs a noticeable share of a CPU.
	healthyFor = 30 * time.Second
	// configName is the xl config in a VM's work directory.
	configName = "xl.cfg"
	// exitReasonName holds, in the work directory, the reason of the
	// domain's last exit, for a driver that starts after it.
	exitReasonName = "exit-reason"
)

// Driver runs VMs as Xen domains through xl. It implements sdk.Driver
// and sdk.Pauser. All its methods are safe for concurrent use.
type Driver struct {
	log      hclog.Logger
	xlName   string
	procRoot string
	xl       runner // nil means execXL of the resolved xlName
	hub      *sdk.EventHub

	fpMu     sync.Mutex
	fpCached sdk.Fingerprint
	fpAt     time.Time

	// pollMu serializes polls of xl, so that two never decide the same
	// domain's end at once.
	pollMu sync.Mutex

	mu      sync.Mutex
	doms    map[string]*domain // live domains this process watches, by vm id
	polling bool
}

var (
	_ sdk.Driver = (*Driver)(nil)
	_ sdk.Pauser = (*Driver)(nil)
)

// Option configures a Driver.
type Option func(*Driver)

// WithXL sets the xl binary, a path or a name looked up in PATH. Default
// DefaultXL.
func WithXL(path string) Option { return func(d *Driver) { d.xlName = path } }

// WithProcRoot sets where procfs is mounted, for the dom0 check and the
// search for xenconsoled. Default /proc; tests point it elsewhere.
func WithProcRoot(dir string) Option { return func(d *Driver) { d.procRoot = dir } }

// withRunner replaces xl with a fake, for tests.
func withRunner(r runner) Option { return func(d *Driver) { d.xl = r } }

// New returns a Driver logging to log (nil discards).
func New(log hclog.Logger, opts ...Option) *Driver {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	d := &Driver{
		log:      log,
		xlName:   DefaultXL,
		procRoot: "/proc",
		hub:      sdk.NewEventHub(),
		doms:     make(map[string]*domain),
	}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Info describes the driver.
func (d *Driver) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name:    Name,
		Version: Version,
		Capabilities: []sdk.Capability{
			sdk.CapabilityPause,
			sdk.CapabilityGracefulShutdown,
			sdk.CapabilityConsoleLog,
			sdk.CapabilityRecover,
		},
		Options: []sdk.OptionSchema{{
			Name: optType,
			Description: "Xen guest type: pv (paravirtualized, the kernel's console is hvc0) or pvh " +
				"(needs hardware virtualization with HAP on the host).",
			Type:    "string",
			Default: typePV,
		}},
	}, nil
}

// Fingerprint reports whether this host is a Xen dom0 whose toolstack
// answers, and where guest consoles are logged.
func (d *Driver) Fingerprint(ctx context.Context) (sdk.Fingerprint, error) {
	d.fpMu.Lock()
	defer d.fpMu.Unlock()
	if d.fpCached.Health == sdk.HealthHealthy && time.Since(d.fpAt) < healthyFor {
		return d.fpCached, nil
	}
	fp := d.fingerprint(ctx)
	d.fpCached, d.fpAt = fp, time.Now()
	return fp, nil
}

func (d *Driver) fingerprint(ctx context.Context) sdk.Fingerprint {
	xl, err := d.available()
	if err != nil {
		return sdk.Fingerprint{Health: sdk.HealthUnhealthy, Description: err.Error()}
	}
	attrs := map[string]string{"binary": d.xlName}
	ictx, cancel := context.WithTimeout(ctx, infoTimeout)
	defer cancel()
	out, err := xl(ictx, "info")
	if err != nil {
		return sdk.Fingerprint{
			Health:      sdk.HealthUnhealthy,
			Description: fmt.Sprintf("Xen dom0, but xl info failed (are xenstored and the xen modules up?): %v", err),
			Attributes:  attrs,
		}
	}
	info := parseXLInfo(out)
	version := info["xen_version"]
	attrs["version"] = version
	attrs["virt_caps"] = info["virt_caps"]
	attrs["free_memory_mib"] = info["free_memory"]
	dir, why := consoleDir(d.procRoot)
	console := "console logs in " + dir
	if dir == "" {
		console = "no console logs: " + why
	}
	attrs["console_log_dir"] = dir
	return sdk.Fingerprint{
		Health:      sdk.HealthHealthy,
		Description: fmt.Sprintf("Xen %s dom0 (%s); %s", version, info["virt_caps"], console),
		Attributes:  attrs,
	}
}

// available checks that this host is a dom0 with xl installed and returns
// the xl runner. Its error wraps sdk.ErrUnavailable.
func (d *Driver) available() (runner, error) {
	if err := checkDom0(d.procRoot); err != nil {
		return nil, err
	}
	if d.xl != nil {
		return d.xl, nil
	}
	p, err := exec.LookPath(d.xlName)
	if err != nil {
		return nil, fmt.Errorf("xl (%s) not found in this Xen dom0 (%w): install Debian's xen-utils-4.17: %w",
			d.xlName, err, sdk.ErrUnavailable)
	}
	return execXL(p), nil
}

// Create checks that this host can run Xen domains, validates the spec
// and writes the domain's xl config. Nothing runs until Start.
func (d *Driver) Create(_ context.Context, vmID string, s sdk.Spec, workDir string) (sdk.Handle, error) {
	// A bad spec is named as such on any host, dom0 or not.
	if err := validateSpec(s); err != nil {
		return nil, fmt.Errorf("create vm %s: %w", vmID, err)
	}
	if _, err := d.available(); err != nil {
		return nil, fmt.Errorf("create vm %s: %w", vmID, err)
	}
	if err := validateWorkDir(workDir); err != nil {
		return nil, fmt.Errorf("create vm %s: %w", vmID, err)
	}
	uuid, err := newUUID()
	if err != nil {
		return nil, fmt.Errorf("create vm %s: %w", vmID, err)
	}
	h := handle{
		Version: handleVersion,
		VMID:    vmID,
		WorkDir: workDir,
		Spec:    s,
		Domain:  domainName(vmID),
		UUID:    uuid,
	}
	if err := writeConfig(h); err != nil {
		return nil, fmt.Errorf("create vm %s: %w", vmID, err)
	}
	d.log.Debug("vm created", "vm_id", vmID, "domain", h.Domain, "uuid", uuid)
	return h.encode(), nil
}

// writeConfig writes the xl config into the work directory, through a
// rename so that xl never reads half a file.
func writeConfig(h handle) error {
	text, err := configFor(h).render(h.VMID)
	if err != nil {
		return err
	}
	p := filepath.Join(h.WorkDir, configName)
	if err := os.WriteFile(p+".tmp", []byte(text), 0o640); err != nil {
		return fmt.Errorf("write xl config: %w", err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("write xl config: %w", err)
	}
	return nil
}

// newUUID returns a random (version 4) UUID in lowercase.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make domain uuid: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// Events returns every event of every VM from now on; the channel closes
// when ctx ends.
func (d *Driver) Events(ctx context.Context) (<-chan sdk.Event, error) {
	return d.hub.Subscribe(ctx), nil
}
