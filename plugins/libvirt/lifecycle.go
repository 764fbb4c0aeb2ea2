package libvirt

import (
	"context"

	"fmt"
	"os"
	"strings"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/hyperd/hyperd/sdk"
)

// recheckEvery is how often a wait for a domain's end asks libvirt
// directly, besides the stop event: an event lost with a connection
// that dropped must not make a Stop wait out its whole timeout.
const recheckEvery = time.Second

// domain is one VM's libvirt domain, found and verified to be hyperd's.
type domain struct {
	d   *libvirt.Domain
	cn  *conn
	c   *libvirt.Connect
	uri string
}

func (dm *domain) free() { _ = dm.d.Free() } // only fails on a bad pointer

// lookup finds the VM's domain by the handle's UUID; nil when none
// exists. A domain with that UUID that does not carry hyperd's tag for
// this VM is an error, and is never touched.
func (d *Driver) lookup(h handle) (*domain, error) {
	cn := d.conn(h.URI)
	c, err := cn.get()
	if err != nil {
		return nil, err
	}
	dom, err := c.LookupDomainByUUIDString(h.UUID)
	if err != nil {
		if libvirtCode(err) == libvirt.ERR_NO_DOMAIN {
			return nil, nil
		}
		cn.markDead(err)
		return nil, fmt.Errorf("look up domain %s: %s: %w", h.UUID, libvirtMessage(err), sdk.ErrUnavailable)
	}
	dm := &domain{d: dom, cn: cn, c: c, uri: h.URI}
	if err := checkOwned(dom, h); err != nil {
		dm.free()
		if libvirtCode(err) == libvirt.ERR_NO_DOMAIN {
			return nil, nil // ended between the two calls
		}
		return nil, err
	}
	return dm, nil
}

// checkOwned verifies that dom carries hyperd's tag naming h's VM.
func checkOwned(dom *libvirt.Domain, h handle) error {
	raw, err := dom.GetMetadata(libvirt.DOMAIN_METADATA_ELEMENT, metadataNS, libvirt.DOMAIN_AFFECT_CURRENT)
	if err != nil {
		if libvirtCode(err) == libvirt.ERR_NO_DOMAIN {
			return err
		}
		return fmt.Errorf("domain %s with this vm's uuid has no hyperd tag (%s); hyperd leaves it alone: %w",
			h.UUID, libvirtMessage(err), sdk.ErrWrongState)
	}
	m, err := parseMetadata(raw)
	if err != nil || m.VMID != h.VMID {
		return fmt.Errorf("domain %s with this vm's uuid is tagged for another vm (%q); hyperd leaves it alone: %w",
			h.UUID, m.VMID, sdk.ErrWrongState)
	}
	return nil
}

// state returns the domain's run state, nil error for a domain that
// ended meanwhile (stopped).
func (dm *domain) state() (sdk.RunState, error) {
	st, _, err := dm.d.GetState()
	if err != nil {
		if libvirtCode(err) == libvirt.ERR_NO_DOMAIN {
			return sdk.RunStateStopped, nil
		}
		dm.cn.markDead(err)
		return sdk.RunStateUnknown, fmt.Errorf("domain state: %s: %w", libvirtMessage(err), sdk.ErrUnavailable)
	}
	return runState(st), nil
}

// runState maps libvirt's domain state. A domain shutting down still
// runs; a crashed one has ended.
func runState(st libvirt.DomainState) sdk.RunState {
	switch st {
	case libvirt.DOMAIN_RUNNING, libvirt.DOMAIN_BLOCKED, libvirt.DOMAIN_SHUTDOWN, libvirt.DOMAIN_NOSTATE:
		return sdk.RunStateRunning
	case libvirt.DOMAIN_PAUSED, libvirt.DOMAIN_PMSUSPENDED:
		return sdk.RunStatePaused
	case libvirt.DOMAIN_SHUTOFF, libvirt.DOMAIN_CRASHED:
		return sdk.RunStateStopped
	}
	return sdk.RunStateUnknown
}

// Start creates the VM's transient domain and returns once it runs,
// with the handle marked started. ctx governs the call, not the domain,
// which libvirtd keeps running whatever becomes of this process.
//
// The domain is transient: it exists exactly while the guest runs, so a
// guest that powers off, a kill, or a daemon that never calls Destroy
// leaves nothing defined in libvirt. The XML is rebuilt from the handle
// at every start.
func (d *Driver) Start(ctx context.Context, vmID string, hb sdk.Handle) (sdk.Handle, error) {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	if err := validateWorkDir(h.WorkDir); err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	dm, err := d.lookup(h)
	if err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	if dm != nil {
		defer dm.free()
		if active, err := dm.d.IsActive(); err != nil || active {
			return nil, fmt.Errorf("start vm %s: domain %s already runs: %w", vmID, h.Domain, sdk.ErrWrongState)
		}
		// A defined but stopped domain of ours is no transient one: it
		// was defined by hand from ours. Starting makes it transient.
		if err := dm.d.Undefine(); err != nil {
			return nil, fmt.Errorf("start vm %s: undefine stale domain %s: %s", vmID, h.Domain, libvirtMessage(err))
		}
	}
	c, err := d.conn(h.URI).get()
	if err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}

	accel, why := resolveAccel(h.Spec.Options[optAccel], d.accelOverride(),
		func() (string, string) { return d.probe(ctx, h.URI) })
	xml, err := domainXML(d.params(h, domainType(accel)))
	if err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	// A fresh console per boot, created here so that it is the daemon's
	// file; libvirtd opens it again and hands QEMU the descriptor.
	if err := os.WriteFile(h.ConsoleLog, nil, 0o600); err != nil {
		return nil, fmt.Errorf("start vm %s: reset console log: %w", vmID, err)
	}

	// Tracked before it exists, so that not even an immediate failure's
	// stop event is missed.
	d.track(h)
	flags := libvirt.DOMAIN_NONE
	if h.Spec.Options[optStartPaused] == "true" {
		flags = libvirt.DOMAIN_START_PAUSED
	}
	dom, err := c.DomainCreateXML(xml, flags)
	if err != nil {
		d.untrack(h.UUID)
		if connectionError(err) {
			return nil, fmt.Errorf("start vm %s: create domain %s: %s: %w", vmID, h.Domain, libvirtMessage(err), sdk.ErrUnavailable)
		}
		msg := libvirtMessage(err)
		if strings.Contains(msg, "Permission denied") {
			msg += "; libvirt runs QEMU as an unprivileged user (libvirt-qemu on Debian), " +
				"which must be able to search every directory above the kernel, initrd and disks"
		}
		return nil, fmt.Errorf("start vm %s: create domain %s: %s", vmID, h.Domain, msg)
	}
	_ = dom.Free() // only fails on a bad pointer

	h.Started, h.DomainType = true, domainType(accel)
	d.log.Info("vm started", "vm_id", vmID, "domain", h.Domain, "uuid", h.UUID,
		"accelerator", accel, "reason", why)
	return h.encode(), nil
}

// params turns a handle into the domain's XML parameters.
func (d *Driver) params(h handle, domType string) domainParams {
	p := domainParams{
		Name:       h.Domain,
		UUID:       h.UUID,
		Type:       domType,
		VCPUs:      h.Spec.VCPUs,
		MemoryMiB:  h.Spec.MemoryMiB,
		Kernel:     h.Spec.Kernel,
		Initrd:     h.Spec.Initrd,
		Cmdline:    h.Spec.Cmdline,
		ConsoleLog: h.ConsoleLog,
		Meta:       metadata{VMID: h.VMID, WorkDir: h.WorkDir},
	}
	for _, disk := range h.Spec.Disks {
		fi, err := os.Stat(disk.Path)
		block := err == nil && fi.Mode()&os.ModeDevice != 0
		p.Disks = append(p.Disks, diskParams{Disk: disk, Block: block})
	}
	return p
}

// Stop presses the guest's ACPI power button, waits up to timeout for
// the domain to end, then destroys it. forced says whether the guest
// failed to power off in time. Stopping a stopped VM succeeds. A paused
// guest cannot see the button, so its stop always ends forced.
func (d *Driver) Stop(ctx context.Context, vmID string, hb sdk.Handle, timeout time.Duration) (bool, error) {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return false, fmt.Errorf("stop vm %s: %w", vmID, err)
	}
	dm, err := d.lookup(h)
	if err != nil {
		return false, fmt.Errorf("stop vm %s: %w", vmID, err)
	}
	if dm == nil {
		return false, nil
	}
	defer dm.free()
	gone := d.track(h)
	if st, err := dm.state(); err != nil {
		return false, fmt.Errorf("stop vm %s: %w", vmID, err)
	} else if st == sdk.RunStateStopped {
		return false, nil
	}

	d.expectEnd(h.UUID)
	if err := dm.d.ShutdownFlags(libvirt.DOMAIN_SHUTDOWN_ACPI_POWER_BTN); err != nil {
		if libvirtCode(err) == libvirt.ERR_NO_DOMAIN {
			return false, nil
		}
		d.log.Debug("acpi power button failed; forcing after the timeout", "vm_id", vmID, "error", libvirtMessage(err))
	}
	d.log.Info("vm stopping", "vm_id", vmID, "domain", h.Domain, "timeout", timeout.String())
	if ended, err := d.waitEnd(ctx, dm, gone, timeout); err != nil {
		return false, fmt.Errorf("stop vm %s: %w", vmID, err)
	} else if ended {
		return false, nil
	}

	d.log.Info("guest did not power off in time; destroying", "vm_id", vmID, "domain", h.Domain, "timeout", timeout.String())
	if err := destroyDomain(dm); err != nil {
		return true, fmt.Errorf("stop vm %s: %w", vmID, err)
	}
	return true, nil
}

// waitEnd waits up to timeout for the domain to end: its stop event, or
// libvirt saying so when asked every recheckEvery. It reports whether
// it ended; an error only when ctx ended first.
func (d *Driver) waitEnd(ctx context.Context, dm *domain, gone <-chan struct{}, timeout time.Duration) (bool, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(recheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-gone:
			return true, nil
		case <-ctx.Done():
			return false, ctx.Err()
		case <-deadline.C:
			return false, nil
		case <-tick.C:
			if st, err := dm.state(); err == nil && st == sdk.RunStateStopped {
				return true, nil
			}
		}
	}
}

// destroyDomain forces the domain off (libvirt sends SIGTERM, then
// SIGKILL, and returns once QEMU is gone). A domain that already ended
// is not an error.
func destroyDomain(dm *domain) error {
	if err := dm.d.Destroy(); err != nil {
		switch libvirtCode(err) {
		case libvirt.ERR_NO_DOMAIN, libvirt.ERR_OPERATION_INVALID:
			return nil
		}
		dm.cn.markDead(err)
		return fmt.Errorf("destroy domain: %s", libvirtMessage(err))
	}
	return nil
}

// Kill destroys the domain and returns once it no longer runs. Killing a
// stopped VM succeeds.
func (d *Driver) Kill(_ context.Context, vmID string, hb sdk.Handle) error {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return fmt.Errorf("kill vm %s: %w", vmID, err)
	}
	dm, err := d.lookup(h)
	if err != nil {
		return fmt.Errorf("kill vm %s: %w", vmID, err)
	}
	if dm == nil {
		return nil
	}
	defer dm.free()
	d.log.Info("killing vm", "vm_id", vmID, "domain", h.Domain)
	d.expectEnd(h.UUID)
	if err := destroyDomain(dm); err != nil {
		return fmt.Errorf("kill vm %s: %w", vmID, err)
	}
	return nil
}

// Pause suspends the guest's vCPUs.
func (d *Driver) Pause(_ context.Context, vmID string, hb sdk.Handle) error {
	return d.suspendResume(vmID, hb, "pause", (*libvirt.Domain).Suspend)
}

// Resume lets a paused guest run again.
func (d *Driver) Resume(_ context.Context, vmID string, hb sdk.Handle) error {
	return d.suspendResume(vmID, hb, "resume", (*libvirt.Domain).Resume)
}

func (d *Driver) suspendResume(vmID string, hb sdk.Handle, verb string, call func(*libvirt.Domain) error) error {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return fmt.Errorf("%s vm %s: %w", verb, vmID, err)
	}
	dm, err := d.lookup(h)
	if err != nil {
		return fmt.Errorf("%s vm %s: %w", verb, vmID, err)
	}
	if dm == nil {
		return fmt.Errorf("%s vm %s: not running: %w", verb, vmID, sdk.ErrWrongState)
	}
	defer dm.free()
	d.track(h)
	if err := call(dm.d); err != nil {
		switch libvirtCode(err) {
		case libvirt.ERR_OPERATION_INVALID, libvirt.ERR_NO_DOMAIN:
			return fmt.Errorf("%s vm %s: %s: %w", verb, vmID, libvirtMessage(err), sdk.ErrWrongState)
		}
		dm.cn.markDead(err)
		return fmt.Errorf("%s vm %s: %s", verb, vmID, libvirtMessage(err))
	}
	return nil
}

// Status reports the domain's state, QEMU's pid and the console log. A
// VM never started is created; one whose domain is gone is stopped.
func (d *Driver) Status(_ context.Context, vmID string, hb sdk.Handle) (sdk.Status, error) {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return sdk.Status{}, fmt.Errorf("status of vm %s: %w", vmID, err)
	}
	st, err := d.status(h)
	if err != nil {
		return sdk.Status{}, fmt.Errorf("status of vm %s: %w", vmID, err)
	}
	return st, nil
}

func (d *Driver) status(h handle) (sdk.Status, error) {
	st := sdk.Status{
		ConsoleLog: h.ConsoleLog,
		Attributes: map[string]string{"domain": h.Domain, "uuid": h.UUID, "uri": h.URI},
	}
	if h.DomainType != "" {
		st.Attributes["domain_type"] = h.DomainType
	}
	dm, err := d.lookup(h)
	if err != nil {
		return sdk.Status{}, err
	}
	if dm == nil {
		st.State = sdk.RunStateStopped
		if !h.Started {
			st.State = sdk.RunStateCreated
		} else {
			st.ExitReason = d.exitReason(h.UUID)
		}
		return st, nil
	}
	defer dm.free()
	if st.State, err = dm.state(); err != nil {
		return sdk.Status{}, err
	}
	if st.State == sdk.RunStateStopped {
		st.ExitReason = d.exitReason(h.UUID)
		return st, nil
	}
	st.PID = int64(qemuPID(h.Domain, h.UUID))
	if st.PID == 0 && localURI(h.URI) {
		// libvirtd has not yet noticed that the QEMU behind a domain it
		// calls running is gone (it takes a second or more); the host's
		// processes are the truth.
		st.State, st.ExitReason = sdk.RunStateStopped, reasonDied
		return st, nil
	}
	d.track(h)
	return st, nil
}

// Destroy destroys the domain if it still runs and undefines it if
// someone made it persistent, so that libvirt keeps nothing of the VM.
// console.log stays; the daemon removes the work directory. An unknown
// VM succeeds.
func (d *Driver) Destroy(_ context.Context, vmID string, hb sdk.Handle) error {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return fmt.Errorf("destroy vm %s: %w", vmID, err)
	}
	dm, err := d.lookup(h)
	if err != nil {
		return fmt.Errorf("destroy vm %s: %w", vmID, err)
	}
	if dm != nil {
		defer dm.free()
		d.expectEnd(h.UUID)
		if err := destroyDomain(dm); err != nil {
			return fmt.Errorf("destroy vm %s: %w", vmID, err)
		}
		if persistent, err := dm.d.IsPersistent(); err == nil && persistent {
			if err := dm.d.Undefine(); err != nil && libvirtCode(err) != libvirt.ERR_NO_DOMAIN {
				return fmt.Errorf("destroy vm %s: undefine domain %s: %s", vmID, h.Domain, libvirtMessage(err))
			}
		}
	}
	d.untrack(h.UUID)
	d.log.Info("vm destroyed", "vm_id", vmID, "domain", h.Domain)
	return nil
}

// Recover finds the VM's domain again by its UUID and reports its
// status; from then on its events are reported. A domain that is gone is
// not an error: the status says stopped, with the reason.
func (d *Driver) Recover(_ context.Context, vmID string, hb sdk.Handle) (sdk.Handle, sdk.Status, error) {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return nil, sdk.Status{}, fmt.Errorf("recover vm %s: %w", vmID, err)
	}
	st, err := d.status(h)
	if err != nil {
		return nil, sdk.Status{}, fmt.Errorf("recover vm %s: %w", vmID, err)
	}
	d.log.Info("vm recovered", "vm_id", vmID, "domain", h.Domain, "state", st.State.String())
	return hb, st, nil
}
