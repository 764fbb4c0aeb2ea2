package xen

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hyperd/hyperd/sdk"
)

const (
	// cleanupWait bounds destroying a half-made domain after a failed
	// start, which runs even when the caller's context has ended.
	cleanupWait = 30 * time.Second
	// xlLogDir is where xl keeps each domain's own log, xl-NAME.log
	// (libxl's XEN_LOG_DIR on Debian).
	xlLogDir = "/var/log/xen"
)

// Start runs `xl create` on the VM's config and returns once the domain
// runs, with the handle naming it. ctx governs the call, not the
// domain's life: the domain lives in the hypervisor and outlives this
// driver process.
func (d *Driver) Start(ctx context.Context, vmID string, hb sdk.Handle) (_ sdk.Handle, err error) {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	xl, err := d.available()
	if err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	if err := validateWorkDir(h.WorkDir); err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	if dom, err := d.lookup(ctx, vmID, h); err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	} else if dom != nil && dom.alive() {
		return nil, fmt.Errorf("start vm %s: already running as domain %d: %w", vmID, dom.h.DomID, sdk.ErrWrongState)
	}
	if err := d.clearName(ctx, xl, h); err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}

	if err := writeConfig(h); err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	if err := removeIfExists(filepath.Join(h.WorkDir, exitReasonName)); err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	h.ConsoleLog = ""
	if dir, why := consoleDir(d.procRoot); dir != "" {
		// xenconsoled appends to the file of a name it has seen before;
		// each start begins a fresh log.
		h.ConsoleLog = filepath.Join(dir, "guest-"+h.Domain+".log")
		if err := removeIfExists(h.ConsoleLog); err != nil {
			return nil, fmt.Errorf("start vm %s: clear console log: %w", vmID, err)
		}
	} else {
		d.log.Warn("vm starts without a console log", "vm_id", vmID, "reason", why)
	}

	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupWait)
			defer cancel()
			// A failed create usually leaves no domain; when it left one,
			// the destroy's error says nothing more than err does.
			_, _ = xl(cctx, "destroy", h.Domain)
		}
	}()
	if _, err := xl(ctx, "create", filepath.Join(h.WorkDir, configName)); err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	domid, typ, err := findDomain(ctx, xl, h)
	if err != nil {
		return nil, fmt.Errorf("start vm %s: %w", vmID, err)
	}
	h.DomID = domid
	dom := newDomain(vmID, h, d.log)
	dom.typ = typ
	d.track(dom)
	dom.log.Info("vm started", "type", typ)
	return h.encode(), nil
}

// clearName makes way for a new domain of h's name: a domain of an
// earlier start of this VM that nobody reaped (it shut down while no
// driver watched) is destroyed; a domain of another owner is an error.
func (d *Driver) clearName(ctx context.Context, xl runner, h handle) error {
	out, err := xl(ctx, "list", "-v")
	if err != nil {
		return err
	}
	states, err := parseListVerbose(out)
	if err != nil {
		return err
	}
	for _, s := range states {
		if s.Name != h.Domain {
			continue
		}
		if s.UUID != h.UUID {
			return fmt.Errorf("a domain named %s (id %d, uuid %s) exists and is not this vm's: %w",
				h.Domain, s.DomID, s.UUID, sdk.ErrWrongState)
		}
		d.log.Info("destroying a leftover domain of this vm", "vm_id", h.VMID, "domid", s.DomID)
		if _, err := xl(ctx, "destroy", strconv.Itoa(s.DomID)); err != nil {
			return fmt.Errorf("destroy leftover domain %d: %w", s.DomID, err)
		}
	}
	return nil
}

// findDomain returns the domid and type of the domain with h's name and
// UUID, from `xl list -l`.
func findDomain(ctx context.Context, xl runner, h handle) (int, string, error) {
	out, err := xl(ctx, "list", "-l")
	if err != nil {
		return 0, "", err
	}
	infos, err := parseListLong(out)
	if err != nil {
		return 0, "", err
	}
	for _, in := range infos {
		if in.Config.CInfo.Name == h.Domain && in.Config.CInfo.UUID == h.UUID {
			return in.DomID, in.Config.CInfo.Type, nil
		}
	}
	return 0, "", fmt.Errorf("xl create succeeded but xl list -l shows no domain %s with uuid %s", h.Domain, h.UUID)
}

// Stop asks the guest to power off through the PV shutdown protocol,
// waits up to timeout for the domain to shut down, then destroys it.
// forced says whether the guest failed to power off in time. Stopping a
// stopped VM succeeds. ctx bounds the whole call.
func (d *Driver) Stop(ctx context.Context, vmID string, hb sdk.Handle, timeout time.Duration) (forced bool, err error) {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return false, fmt.Errorf("stop vm %s: %w", vmID, err)
	}
	dom, err := d.lookup(ctx, vmID, h)
	if err != nil {
		return false, fmt.Errorf("stop vm %s: %w", vmID, err)
	}
	if dom == nil || !dom.alive() {
		return false, nil
	}
	xl, err := d.available()
	if err != nil {
		return false, fmt.Errorf("stop vm %s: %w", vmID, err)
	}

	dom.log.Info("vm stopping", "timeout", timeout.String())
	if _, err := xl(ctx, "shutdown", strconv.Itoa(dom.h.DomID)); err != nil {
		// The guest may have gone meanwhile; else it cannot hear the
		// request and waiting would only delay the destroy.
		if perr := d.poll(ctx); perr == nil && !dom.alive() {
			return false, nil
		}
		dom.log.Info("shutdown request failed; destroying at once", "error", err)
		if err := d.kill(ctx, xl, dom, "destroyed: the shutdown request failed"); err != nil {
			return true, fmt.Errorf("stop vm %s: %w", vmID, err)
		}
		return true, nil
	}

	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(stopPollInterval)
	defer tick.Stop()
wait:
	for {
		select {
		case <-dom.gone:
			return false, nil
		case <-ctx.Done():
			return false, fmt.Errorf("stop vm %s: %w", vmID, ctx.Err())
		case <-tick.C:
			if err := d.poll(ctx); err != nil {
				dom.log.Debug("poll during stop", "error", err)
			}
		case <-deadline.C:
			break wait
		}
	}

	dom.log.Info("guest did not power off in time; destroying", "timeout", timeout.String())
	if err := d.kill(ctx, xl, dom, fmt.Sprintf("destroyed: the guest did not power off within %s", timeout)); err != nil {
		return true, fmt.Errorf("stop vm %s: %w", vmID, err)
	}
	return true, nil
}

// kill destroys a domain and returns once Xen no longer has it.
func (d *Driver) kill(ctx context.Context, xl runner, dom *domain, reason string) error {
	dom.mu.Lock()
	dom.killing = reason
	dom.mu.Unlock()
	if _, err := xl(ctx, "destroy", strconv.Itoa(dom.h.DomID)); err != nil {
		// It may have ended on its own meanwhile; poll tells.
		if perr := d.poll(ctx); perr != nil || dom.alive() {
			return fmt.Errorf("destroy domain %d: %w", dom.h.DomID, err)
		}
		return nil
	}
	d.finish(dom, reason)
	return nil
}

// Kill destroys the domain at once. Killing a stopped VM succeeds.
func (d *Driver) Kill(ctx context.Context, vmID string, hb sdk.Handle) error {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return fmt.Errorf("kill vm %s: %w", vmID, err)
	}
	dom, err := d.lookup(ctx, vmID, h)
	if err != nil {
		return fmt.Errorf("kill vm %s: %w", vmID, err)
	}
	if dom == nil || !dom.alive() {
		return nil
	}
	xl, err := d.available()
	if err != nil {
		return fmt.Errorf("kill vm %s: %w", vmID, err)
	}
	dom.log.Info("killing vm")
	if err := d.kill(ctx, xl, dom, "destroyed (kill)"); err != nil {
		return fmt.Errorf("kill vm %s: %w", vmID, err)
	}
	return nil
}

// Destroy destroys the domain if it still runs and removes the console
// log and xl's log of it, which live outside the work directory. The
// config and the exit reason stay; the daemon removes the work
// directory. An unknown VM succeeds.
func (d *Driver) Destroy(ctx context.Context, vmID string, hb sdk.Handle) error {
	if err := d.Kill(ctx, vmID, hb); err != nil {
		return fmt.Errorf("destroy vm %s: %w", vmID, err)
	}
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return fmt.Errorf("destroy vm %s: %w", vmID, err)
	}
	d.mu.Lock()
	if dom := d.doms[vmID]; dom != nil && !dom.alive() {
		delete(d.doms, vmID)
	}
	d.mu.Unlock()
	for _, p := range []string{h.ConsoleLog, filepath.Join(xlLogDir, "xl-"+h.Domain+".log")} {
		if p == "" {
			continue
		}
		if err := removeIfExists(p); err != nil {
			return fmt.Errorf("destroy vm %s: %w", vmID, err)
		}
	}
	d.log.Info("vm destroyed", "vm_id", vmID)
	return nil
}

// Pause pauses the domain's vCPUs (`xl pause`).
func (d *Driver) Pause(ctx context.Context, vmID string, hb sdk.Handle) error {
	return d.xlCommand(ctx, vmID, hb, "pause")
}

// Resume unpauses the domain (`xl unpause`).
func (d *Driver) Resume(ctx context.Context, vmID string, hb sdk.Handle) error {
	return d.xlCommand(ctx, vmID, hb, "unpause")
}

func (d *Driver) xlCommand(ctx context.Context, vmID string, hb sdk.Handle, cmd string) error {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return fmt.Errorf("%s vm %s: %w", cmd, vmID, err)
	}
	dom, err := d.lookup(ctx, vmID, h)
	if err != nil {
		return fmt.Errorf("%s vm %s: %w", cmd, vmID, err)
	}
	if dom == nil || !dom.alive() {
		return fmt.Errorf("%s vm %s: not running: %w", cmd, vmID, sdk.ErrWrongState)
	}
	xl, err := d.available()
	if err != nil {
		return fmt.Errorf("%s vm %s: %w", cmd, vmID, err)
	}
	if _, err := xl(ctx, cmd, strconv.Itoa(dom.h.DomID)); err != nil {
		if perr := d.poll(ctx); perr == nil && !dom.alive() {
			return fmt.Errorf("%s vm %s: exited meanwhile: %w", cmd, vmID, sdk.ErrWrongState)
		}
		return fmt.Errorf("%s vm %s: %w", cmd, vmID, err)
	}
	// Announce the change now rather than at the next poll.
	if err := d.poll(ctx); err != nil {
		dom.log.Debug("poll after "+cmd, "error", err)
	}
	dom.log.Info("vm "+cmd+"d", "event", cmd)
	return nil
}

// Recover reattaches to the VM's domain from its handle. A domain that is
// gone, or whose domid now names another domain, gives a stopped status
// with the reason recorded, not an error.
func (d *Driver) Recover(ctx context.Context, vmID string, hb sdk.Handle) (sdk.Handle, sdk.Status, error) {
	st, err := d.Status(ctx, vmID, hb)
	if err != nil {
		return nil, sdk.Status{}, fmt.Errorf("recover vm %s: %w", vmID, err)
	}
	return hb, st, nil
}

// Status reports what Xen says of the domain now.
func (d *Driver) Status(ctx context.Context, vmID string, hb sdk.Handle) (sdk.Status, error) {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return sdk.Status{}, fmt.Errorf("status of vm %s: %w", vmID, err)
	}
	dom, err := d.lookup(ctx, vmID, h)
	if err != nil {
		return sdk.Status{}, fmt.Errorf("status of vm %s: %w", vmID, err)
	}
	st := sdk.Status{
		ConsoleLog: h.ConsoleLog,
		Attributes: map[string]string{"domain": h.Domain, "uuid": h.UUID},
	}
	if dom == nil {
		st.State = sdk.RunStateCreated
		return st, nil
	}
	if dom.alive() {
		// Fresh from Xen, so that a shutdown or pause is seen now.
		if err := d.poll(ctx); err != nil {
			return sdk.Status{}, fmt.Errorf("status of vm %s: %w", vmID, err)
		}
	}
	st.Attributes["domid"] = strconv.Itoa(dom.h.DomID)
	if !dom.alive() {
		st.State, st.ExitReason = sdk.RunStateStopped, dom.exitReason()
		return st, nil
	}
	dom.mu.Lock()
	paused, typ := dom.paused, dom.typ
	dom.mu.Unlock()
	if typ != "" {
		st.Attributes["type"] = typ
	}
	st.State = sdk.RunStateRunning
	if paused {
		st.State = sdk.RunStatePaused
	}
	return st, nil
}
