package libvirt

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"libvirt.org/go/libvirt"

	"github.com/hyperd/hyperd/sdk"
)

// Name is the driver's name; its binary is hyperd-driver-libvirt.
const Name = "libvirt"

// Version is the driver's own version.
const Version = "0.1.0"

// DefaultURI is the libvirt connection used unless the uri option or
// URIEnv says otherwise.
const DefaultURI = "qemu:///system"

// URIEnv sets the driver's connection URI when the daemon's config file
// sets no uri option for the driver.
const URIEnv = "HYPERD_LIBVIRT_URI"

// consoleLogName is the serial console's file in a VM's work directory.
const consoleLogName = "console.log"

// Driver runs VMs as transient libvirt domains. It implements sdk.Driver
// and sdk.Pauser. All its methods are safe for concurrent use.
type Driver struct {
	log         hclog.Logger
	uri         string
	accelOpt    string // the driver-level accel option, under AccelEnv
	probeKernel string
	hub         *sdk.EventHub

	// accelMu serializes KVM probes; accel caches each URI's conclusive
	// result for the life of the process.
	accelMu sync.Mutex
	accel   map[string]accelChoice

	mu    sync.Mutex
	conns map[string]*conn
	// vms tracks the domains this process started or found, by UUID;
	// events of any other domain are ignored.
	vms map[string]*tracked
}

// tracked is what the driver remembers of one VM's domain between calls.
// None of it is needed to find the VM again; it only sharpens events and
// exit reasons while this process lives.
type tracked struct {
	vmID string
	uri  string
	// gone is closed when the domain stops; nil while it does not run.
	gone chan struct{}
	// rebooted: the guest asked to reboot, so its exit is a reboot.
	rebooted bool
	// exitReason is why the domain last stopped.
	exitReason string
	// ending: this driver is stopping or killing the domain, so its end
	// is expected and libvirt's event, not the pidfd, gives the reason.
	ending bool
}

var (
	_ sdk.Driver = (*Driver)(nil)
	_ sdk.Pauser = (*Driver)(nil)
)

// Option configures a Driver.
type Option func(*Driver)

// WithURI sets the libvirt connection URI. Default: URIEnv when set,
// else DefaultURI.
func WithURI(uri string) Option { return func(d *Driver) { d.uri = uri } }

// WithAccel sets the accelerator of VMs whose spec leaves accel at auto:
// kvm, tcg or auto (the default). AccelEnv, when set, wins.
func WithAccel(accel string) Option { return func(d *Driver) { d.accelOpt = accel } }

// WithProbeKernel sets the kernel the KVM probe boots. Default: the
// running kernel's image in /boot, or the last /boot/vmlinuz-*; with
// none, KVM is not used unless forced.
func WithProbeKernel(path string) Option { return func(d *Driver) { d.probeKernel = path } }

// New returns a Driver logging to log (nil discards). It connects to
// libvirtd lazily, at the first call that needs it.
func New(log hclog.Logger, opts ...Option) *Driver {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	d := &Driver{
		log:   log,
		uri:   os.Getenv(URIEnv),
		hub:   sdk.NewEventHub(),
		accel: make(map[string]accelChoice),
		conns: make(map[string]*conn),
		vms:   make(map[string]*tracked),
	}
	if d.uri == "" {
		d.uri = DefaultURI
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
				Name: optURI,
				Description: "libvirt connection URI of the host's libvirtd; " + URIEnv + " sets it for the " +
					"driver process. Only local qemu URIs work: the console log is a file on this host.",
				Type:    "string",
				Default: DefaultURI,
			},
			{
				Name: optAccel,
				Description: "How guests run: kvm (domain type kvm), tcg (domain type qemu), or auto, which " +
					"uses kvm only when a probe domain under kvm boots a kernel (else tcg, or " + AccelEnv +
					" when set). A forced kvm that does not work fails the start or hangs the guest.",
				Type:    "string",
				Default: accelAuto,
			},
			{
				Name:        optStartPaused,
				Description: "Start the domain with its vCPUs stopped (the VM is paused until resumed).",
				Type:        "bool",
				Default:     "false",
			},
		},
	}, nil
}

// Fingerprint reports whether libvirtd answers at the driver's URI and
// which accelerator VMs get. It redials a lost connection, so a
// libvirtd that comes back is healthy again at the next fingerprint.
func (d *Driver) Fingerprint(ctx context.Context) (sdk.Fingerprint, error) {
	attrs := map[string]string{"uri": d.uri}
	cn := d.conn(d.uri)
	c, err := cn.get()
	if err != nil {
		return sdk.Fingerprint{Health: sdk.HealthUnhealthy, Description: err.Error(), Attributes: attrs}, nil
	}
	// GetLibVersion asks libvirtd itself, so it proves the daemon answers.
	lib, err := c.GetLibVersion()
	if err != nil {
		cn.markDead(err)
		return sdk.Fingerprint{
			Health:      sdk.HealthUnhealthy,
			Description: fmt.Sprintf("libvirtd at %s does not answer: %s; restart libvirtd", d.uri, libvirtMessage(err)),
			Attributes:  attrs,
		}, nil
	}
	attrs["libvirt_version"] = versionString(lib)
	attrs["version"] = attrs["libvirt_version"]
	if hv, err := c.GetVersion(); err == nil {
		attrs["hypervisor_version"] = versionString(hv)
	}
	accel, why := resolveAccel("", d.accelOverride(), func() (string, string) { return d.probe(ctx, d.uri) })
	attrs["accelerator"] = accel
	attrs["accelerator_reason"] = why
	attrs["domain_type"] = domainType(accel)
	return sdk.Fingerprint{
		Health: sdk.HealthHealthy,
		Description: fmt.Sprintf("libvirt %s at %s, domains of type %s (%s)",
			attrs["libvirt_version"], d.uri, attrs["domain_type"], why),
		Attributes: attrs,
	}, nil
}

// versionString renders libvirt's major*1000000+minor*1000+micro.
func versionString(v uint32) string {
	return fmt.Sprintf("%d.%d.%d", v/1000000, v/1000%1000, v%1000)
}

// Create validates the spec and returns the VM's first handle, with the
// domain's UUID chosen now. No domain exists until Start.
func (d *Driver) Create(_ context.Context, vmID string, s sdk.Spec, workDir string) (sdk.Handle, error) {
	if err := validateVMID(vmID); err != nil {
		return nil, fmt.Errorf("create vm %s: %w", vmID, err)
	}
	if err := validateSpec(s, hostMemoryMiB()); err != nil {
		return nil, fmt.Errorf("create vm %s: %w", vmID, err)
	}
	if err := validateWorkDir(workDir); err != nil {
		return nil, fmt.Errorf("create vm %s: %w", vmID, err)
	}
	uri := s.Options[optURI]
	if uri == "" {
		uri = d.uri
	}
	h := handle{
		Version:    handleVersion,
		VMID:       vmID,
		WorkDir:    workDir,
		Spec:       s,
		URI:        uri,
		UUID:       newUUID(),
		Domain:     domainName(vmID),
		ConsoleLog: filepath.Join(workDir, consoleLogName),
	}
	d.log.Debug("vm created", "vm_id", vmID, "domain", h.Domain, "uuid", h.UUID)
	return h.encode(), nil
}

// newUUID returns a random (version 4) UUID in libvirt's text form.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Events returns every event of every tracked VM from now on; the
// channel closes when ctx ends.
func (d *Driver) Events(ctx context.Context) (<-chan sdk.Event, error) {
	return d.hub.Subscribe(ctx), nil
}

// Close closes every libvirt connection, as if the driver process had
// died. Domains keep running. For tests and for a clean shutdown.
func (d *Driver) Close() {
	d.mu.Lock()
	conns := d.conns
	d.conns = make(map[string]*conn)
	d.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// accelOverride is the accelerator set for the whole driver, if any:
// AccelEnv, else the driver-level option.
func (d *Driver) accelOverride() string {
	if v := os.Getenv(AccelEnv); v != "" {
		return v
	}
	return d.accelOpt
}

// conn returns the connection for uri, made on first use.
func (d *Driver) conn(uri string) *conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.conns[uri]
	if !ok {
		c = newConn(uri, d.log, callbacks{
			lifecycle:     d.onLifecycle,
			reboot:        d.onReboot,
			deviceRemoved: d.onDeviceRemoved,
			reconnected:   d.reconcile,
		})
		d.conns[uri] = c
	}
	return c
}

// track notes that the VM's domain runs (or is about to), so that its
// events are reported and a Stop can wait for its end. It returns the
// channel closed when the domain stops.
func (d *Driver) track(h handle) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.vms[h.UUID]
	if !ok {
		t = &tracked{vmID: h.VMID, uri: h.URI}
		d.vms[h.UUID] = t
	}
	if t.gone == nil {
		t.gone = make(chan struct{})
		t.rebooted, t.ending = false, false
		go d.watchQEMU(h, t.gone)
	}
	return t.gone
}

// stopped records that the domain with uuid ended, for reason, and
// wakes whoever waits for it. It reports whether the domain was tracked
// as running.
func (d *Driver) stopped(uuid, reason string) (vmID string, wasRunning bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.vms[uuid]
	if !ok {
		return "", false
	}
	t.exitReason = reason
	if t.gone == nil {
		return t.vmID, false
	}
	close(t.gone)
	t.gone = nil
	return t.vmID, true
}

// exitReason is why the VM's domain last stopped, as far as this
// process saw.
func (d *Driver) exitReason(uuid string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := d.vms[uuid]; ok && t.exitReason != "" {
		return t.exitReason
	}
	return reasonGone
}

// expectEnd notes that this driver is about to stop or kill the domain.
func (d *Driver) expectEnd(uuid string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := d.vms[uuid]; ok {
		t.ending = true
	}
}

// endExpected reports whether this driver is stopping or killing the
// domain.
func (d *Driver) endExpected(uuid string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.vms[uuid]
	return ok && t.ending
}

func (d *Driver) untrack(uuid string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := d.vms[uuid]; ok && t.gone != nil {
		close(t.gone)
	}
	delete(d.vms, uuid)
}

// onLifecycle maps a lifecycle event of a tracked domain and publishes
// it. It runs on libvirt's event loop goroutine.
func (d *Driver) onLifecycle(_, uuid string, ev libvirt.DomainEventType, detail int) {
	d.mu.Lock()
	t, ok := d.vms[uuid]
	var vmID string
	var rebooted bool
	if ok {
		vmID, rebooted = t.vmID, t.rebooted
	}
	d.mu.Unlock()
	if !ok {
		return // not a domain of this driver: never reported
	}
	e, ok := mapLifecycle(vmID, ev, detail, rebooted)
	if ev == libvirt.DOMAIN_EVENT_STOPPED {
		d.stopped(uuid, e.Reason)
	}
	if !ok {
		d.log.Trace("libvirt event without a counterpart", "vm_id", vmID, "event", int(ev), "detail", detail)
		return
	}
	d.log.Info("vm event", "vm_id", vmID, "domain", domainName(vmID), "event", e.Type.String(), "reason", e.Reason)
	d.hub.Publish(e)
}

// onReboot notes a guest's reboot request, which on_reboot=destroy turns
// into the domain's end, and reports the guest shutting down.
func (d *Driver) onReboot(_, uuid string) {
	d.mu.Lock()
	t, ok := d.vms[uuid]
	if ok {
		t.rebooted = true
	}
	d.mu.Unlock()
	if !ok {
		return
	}
	d.log.Info("vm event", "vm_id", t.vmID, "event", sdk.EventShutdown.String(), "reason", reasonReboot)
	d.hub.Publish(sdk.Event{VMID: t.vmID, Type: sdk.EventShutdown, Reason: reasonReboot, Time: time.Now()})
}

func (d *Driver) onDeviceRemoved(_, uuid, alias string) {
	d.mu.Lock()
	t, ok := d.vms[uuid]
	d.mu.Unlock()
	if !ok {
		return
	}
	d.log.Info("vm event", "vm_id", t.vmID, "event", sdk.EventDeviceRemoved.String(), "device", alias)
	d.hub.Publish(sdk.Event{
		VMID: t.vmID, Type: sdk.EventDeviceRemoved, Reason: alias, Time: time.Now(),
		Attributes: map[string]string{"device": alias},
	})
}

// reconcile runs after a lost connection to uri came back: a domain
// that ended while libvirtd was unreachable sent no event, so each
// tracked running domain is looked up and reported exited when gone.
func (d *Driver) reconcile(uri string) {
	d.mu.Lock()
	var uuids []string
	for uuid, t := range d.vms {
		if t.uri == uri && t.gone != nil {
			uuids = append(uuids, uuid)
		}
	}
	d.mu.Unlock()
	c, err := d.conn(uri).get()
	if err != nil {
		return // the next reconnection tries again
	}
	for _, uuid := range uuids {
		dom, err := c.LookupDomainByUUIDString(uuid)
		if err == nil {
			active, aerr := dom.IsActive()
			_ = dom.Free() // only fails on a bad pointer
			if aerr != nil || active {
				continue
			}
		} else if libvirtCode(err) != libvirt.ERR_NO_DOMAIN {
			continue
		}
		const reason = "domain ended while libvirtd was unreachable"
		if vmID, ok := d.stopped(uuid, reason); ok {
			d.log.Info("vm event", "vm_id", vmID, "event", sdk.EventExited.String(), "reason", reason)
			d.hub.Publish(sdk.Event{VMID: vmID, Type: sdk.EventExited, Reason: reason, Time: time.Now()})
		}
	}
}
