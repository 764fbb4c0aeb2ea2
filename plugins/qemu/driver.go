package qemu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hyperd/hyperd/sdk"
)

// Name is the driver's name; its binary is hyperd-driver-qemu.
const Name = "qemu"

// Version is the driver's own version.
const Version = "0.1.0"

// DefaultBinary is the QEMU system emulator the driver runs, looked up in
// PATH unless WithBinary says otherwise.
const DefaultBinary = "qemu-system-x86_64"

// Driver runs VMs as qemu-system-x86_64 processes. It implements
// sdk.Driver and sdk.Pauser. All its methods are safe for concurrent use.
type Driver struct {
	log         hclog.Logger
	binary      string
	probeKernel string
	hub         *sdk.EventHub

	accelOnce   sync.Once
	accel       Accelerator
	accelReason string

	versionMu sync.Mutex
	versions  map[string]string // binary path to its -version line

	// attachMu serializes attaching to processes from handles, so that
	// two calls never dial the same QMP socket at once (QEMU serves one
	// client at a time and the second would wait for the first).
	attachMu sync.Mutex

	mu       sync.Mutex
	vms      map[string]*vm
	starting map[string]bool
}

var (
	_ sdk.Driver = (*Driver)(nil)
	_ sdk.Pauser = (*Driver)(nil)
)

// Option configures a Driver.
type Option func(*Driver)

// WithBinary sets the QEMU binary, a path or a name looked up in PATH.
// Default DefaultBinary.
func WithBinary(path string) Option { return func(d *Driver) { d.binary = path } }

// WithProbeKernel sets the kernel the KVM probe boots. Default: the
// running kernel's image in /boot, or the last /boot/vmlinuz-*; with
// none, KVM is not used unless forced.
func WithProbeKernel(path string) Option { return func(d *Driver) { d.probeKernel = path } }

// New returns a Driver logging to log (nil discards).
func New(log hclog.Logger, opts ...Option) *Driver {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	d := &Driver{
		log:      log,
		binary:   DefaultBinary,
		hub:      sdk.NewEventHub(),
		versions: make(map[string]string),
		vms:      make(map[string]*vm),
		starting: make(map[string]bool),
	}
	for _, o := range opts {
		o(d)
	}
	if d.probeKernel == "" {
		d.probeKernel = probeKernel()
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
		Options: []sdk.OptionSchema{
			{
				Name: optAccel,
				Description: "How QEMU runs guest code: kvm, tcg, or auto, which uses kvm only when a probe " +
					"boot shows it works (else tcg, or " + AccelEnv + " when set). A forced kvm that does " +
					"not work fails the start or hangs the guest.",
				Type:    "string",
				Default: "auto",
			},
			{
				Name:        optMachine,
				Description: "QEMU machine type: q35 or pc.",
				Type:        "string",
				Default:     "q35",
			},
			{
				Name:        optStartPaused,
				Description: "Start with the guest's vCPUs stopped (the VM is paused until resumed).",
				Type:        "bool",
				Default:     "false",
			},
		},
	}, nil
}

// Fingerprint reports whether QEMU is installed and which accelerator
// VMs get. The KVM probe runs once per driver process.
func (d *Driver) Fingerprint(ctx context.Context) (sdk.Fingerprint, error) {
	bin, err := d.binaryPath()
	if err != nil {
		return sdk.Fingerprint{Health: sdk.HealthUnhealthy, Description: err.Error()}, nil
	}
	version, err := d.version(ctx, bin)
	if err != nil {
		return sdk.Fingerprint{
			Health:      sdk.HealthUnhealthy,
			Description: err.Error(),
			Attributes:  map[string]string{"binary": bin},
		}, nil
	}
	accel, why := resolveAccel("", os.Getenv(AccelEnv), func() (Accelerator, string) { return d.probe(ctx, bin) })
	return sdk.Fingerprint{
		Health:      sdk.HealthHealthy,
		Description: fmt.Sprintf("qemu %s with %s (%s)", version, accel, why),
		Attributes: map[string]string{
			"accelerator":        string(accel),
			"accelerator_reason": why,
			"binary":             bin,
			"version":            version,
		},
	}, nil
}

// binaryPath resolves the QEMU binary. Its error is for an operator.
func (d *Driver) binaryPath() (string, error) {
	p, err := exec.LookPath(d.binary)
	if err != nil {
		return "", fmt.Errorf("%s not found (%w): install Debian's qemu-system-x86: %w", d.binary, err, sdk.ErrUnavailable)
	}
	return p, nil
}

// version runs "bin -version" once per binary and keeps the version
// number, such as "7.2.22".
func (d *Driver) version(ctx context.Context, bin string) (string, error) {
	d.versionMu.Lock()
	defer d.versionMu.Unlock()
	if v, ok := d.versions[bin]; ok {
		return v, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-version").Output()
	if err != nil {
		return "", fmt.Errorf("run %s -version: %w", bin, err)
	}
	v, ok := parseVersion(string(out))
	if !ok {
		return "", fmt.Errorf("%s -version printed no version: %q", bin, lastLines(string(out), 1))
	}
	d.versions[bin] = v
	return v, nil
}

// parseVersion takes the version from the first line of "-version":
// "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)".
func parseVersion(out string) (string, bool) {
	line, _, _ := strings.Cut(out, "\n")
	_, rest, ok := strings.Cut(line, "version ")
	if !ok {
		return "", false
	}
	v, _, _ := strings.Cut(rest, " ")
	return v, v != ""
}

// probe returns the accelerator auto picks, probing once per process.
func (d *Driver) probe(ctx context.Context, bin string) (Accelerator, string) {
	d.accelOnce.Do(func() {
		// The probe's result is cached for the process, so it must not
		// be cut short by one caller's context.
		ctx := context.WithoutCancel(ctx)
		d.accel, d.accelReason = probeKVM(ctx, bin, d.probeKernel)
		d.log.Info("accelerator chosen", "accelerator", string(d.accel), "reason", d.accelReason)
	})
	return d.accel, d.accelReason
}

// Create validates the spec and returns the VM's first handle. Nothing
// runs until Start.
func (d *Driver) Create(_ context.Context, vmID string, s sdk.Spec, workDir string) (sdk.Handle, error) {
	if err := validateSpec(s, hostMemoryMiB()); err != nil {
		return nil, fmt.Errorf("create vm %s: %w", vmID, err)
	}
	if err := validateWorkDir(workDir); err != nil {
		return nil, fmt.Errorf("create vm %s: %w", vmID, err)
	}
	h := handle{
		Version:   handleVersion,
		VMID:      vmID,
		WorkDir:   workDir,
		Spec:      s,
		QMPSocket: qmpSocketPath(workDir),
	}
	d.log.Debug("vm created", "vm_id", vmID)
	return h.encode(), nil
}

// Events returns every event of every VM from now on; the channel closes
// when ctx ends.
func (d *Driver) Events(ctx context.Context) (<-chan sdk.Event, error) {
	return d.hub.Subscribe(ctx), nil
}

// Close lets go of every VM without stopping any: QMP connections close
// and watchers end, as if the driver process had died. QEMU processes
// this driver started are still reaped when they end. For tests and for
// a clean driver shutdown.
func (d *Driver) Close() {
	d.mu.Lock()
	vms := d.vms
	d.vms = make(map[string]*vm)
	d.mu.Unlock()
	for _, v := range vms {
		v.detach()
	}
}

// lastLines returns the last n non-empty lines of s, joined by " | ".
func lastLines(s string, n int) string {
	var out []string
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			out = append([]string{l}, out...)
		}
	}
	return strings.Join(out, " | ")
}
