package xen

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hyperd/hyperd/sdk"
)

const (
	// pollInterval is how often `xl list -v` is read while the driver
	// holds a live domain: an exit or an outside pause is noticed at most
	// this late. Each poll runs xl once, which in a small dom0 costs a few
	// percent of a CPU; a stop polls faster, at stopPollInterval.
	pollInterval     = time.Second
	stopPollInterval = 250 * time.Millisecond
	// pollTimeout bounds one background poll.
	pollTimeout = 20 * time.Second

	// reasonAway is the exit reason of a domain that ended while no
	// driver watched it and left no recorded reason.
	reasonAway = "domain gone while the driver was away"
	// reasonVanished: the domain disappeared without a shutdown that the
	// driver saw, such as an `xl destroy` outside hyperd.
	reasonVanished = "domain vanished (destroyed outside hyperd?)"
)

// domain is the driver's live view of one start of a VM: a Xen domain
// from its creation or adoption to its end.
type domain struct {
	id   string
	h    handle
	log  hclog.Logger
	gone chan struct{} // closed by finish, once
	once sync.Once

	mu      sync.Mutex
	reason  string // why it ended, once gone is closed
	paused  bool
	typ     string
	killing string // the reason to give when our own destroy removes it
}

func newDomain(vmID string, h handle, log hclog.Logger) *domain {
	return &domain{
		id:   vmID,
		h:    h,
		log:  log.With("vm_id", vmID, "domain", h.Domain, "domid", h.DomID),
		gone: make(chan struct{}),
	}
}

// newGoneDomain is a domain that had already ended when the driver looked.
func newGoneDomain(vmID string, h handle, reason string, log hclog.Logger) *domain {
	dom := newDomain(vmID, h, log)
	dom.reason = reason
	dom.once.Do(func() { close(dom.gone) })
	return dom
}

func (dom *domain) alive() bool {
	select {
	case <-dom.gone:
		return false
	default:
		return true
	}
}

func (dom *domain) exitReason() string {
	dom.mu.Lock()
	defer dom.mu.Unlock()
	return dom.reason
}

// finish records the end of the domain, keeps its reason in the work
// directory for later driver processes, stops watching it and announces
// the exit. Only the first call counts.
func (d *Driver) finish(dom *domain, reason string) {
	dom.once.Do(func() {
		dom.mu.Lock()
		dom.reason = reason
		dom.mu.Unlock()
		if err := writeExitReason(dom.h.WorkDir, reason); err != nil {
			dom.log.Warn("record exit reason", "error", err)
		}
		d.mu.Lock()
		if d.doms[dom.id] == dom {
			delete(d.doms, dom.id)
		}
		d.mu.Unlock()
		dom.log.Info("domain exited", "event", sdk.EventExited.String(), "reason", reason)
		d.hub.Publish(sdk.Event{VMID: dom.id, Type: sdk.EventExited, Reason: reason, Time: time.Now()})
		close(dom.gone)
	})
}

func writeExitReason(workDir, reason string) error {
	return os.WriteFile(filepath.Join(workDir, exitReasonName), []byte(reason+"\n"), 0o640)
}

// recordedExitReason is the reason a driver recorded for the domain's
// last exit, or reasonAway.
func recordedExitReason(workDir string) string {
	b, err := os.ReadFile(filepath.Join(workDir, exitReasonName))
	if err != nil || len(strings.TrimSpace(string(b))) == 0 {
		return reasonAway
	}
	return strings.TrimSpace(string(b))
}

// track makes the driver watch dom and starts the poller if it is not
// running. It returns the domain now watched for the VM: dom, or a live
// one another call tracked first.
func (d *Driver) track(dom *domain) *domain {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cur := d.doms[dom.id]; cur != nil && cur.alive() && cur.h.DomID == dom.h.DomID {
		return cur
	}
	d.doms[dom.id] = dom
	if !d.polling {
		d.polling = true
		go d.pollLoop()
	}
	return dom
}

// pollLoop reads xl's view of the live domains every pollInterval. It
// ends when the driver holds no live domain; track starts it again.
func (d *Driver) pollLoop() {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for range t.C {
		d.mu.Lock()
		if len(d.doms) == 0 {
			d.polling = false
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
		if err := d.poll(ctx); err != nil {
			d.log.Warn("poll xl list", "error", err)
		}
		cancel()
	}
}

func (d *Driver) live() []*domain {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*domain, 0, len(d.doms))
	for _, dom := range d.doms {
		out = append(out, dom)
	}
	return out
}

// poll compares `xl list -v` with the live domains: a domain that shut
// down is reaped, one that vanished is finished, and a pause or unpause
// made anywhere is announced.
func (d *Driver) poll(ctx context.Context) error {
	d.pollMu.Lock()
	defer d.pollMu.Unlock()
	doms := d.live()
	if len(doms) == 0 {
		return nil
	}
	xl, err := d.available()
	if err != nil {
		return err
	}
	out, err := xl(ctx, "list", "-v")
	if err != nil {
		return err
	}
	states, err := parseListVerbose(out)
	if err != nil {
		return err
	}
	byID := make(map[int]domainState, len(states))
	for _, s := range states {
		byID[s.DomID] = s
	}
	for _, dom := range doms {
		s, ok := byID[dom.h.DomID]
		switch {
		case !ok || s.UUID != dom.h.UUID:
			dom.mu.Lock()
			reason := dom.killing
			dom.mu.Unlock()
			if reason == "" {
				reason = reasonVanished
			}
			d.finish(dom, reason)
		case s.Shutdown || s.Crashed:
			d.reap(ctx, xl, dom, s)
		default:
			d.notePaused(dom, s.Paused)
		}
	}
	return nil
}

// notePaused announces a change of the domain's paused flag.
func (d *Driver) notePaused(dom *domain, paused bool) {
	dom.mu.Lock()
	changed := dom.paused != paused
	dom.paused = paused
	dom.mu.Unlock()
	if !changed {
		return
	}
	t := sdk.EventResumed
	if paused {
		t = sdk.EventPaused
	}
	dom.log.Debug("domain pause state changed", "event", t.String())
	d.hub.Publish(sdk.Event{VMID: dom.id, Type: t, Time: time.Now()})
}

// reap ends a domain that shut down: it records Xen's reason, destroys
// the preserved domain and announces the exit.
func (d *Driver) reap(ctx context.Context, xl runner, dom *domain, s domainState) {
	code := s.Reason
	if s.Crashed && code < 0 {
		code = 3 // xl shows a crash as 'c' and may print no code
	}
	reason := exitReason(code)
	if shutdownReasons[code] == "crash" {
		d.hub.Publish(sdk.Event{VMID: dom.id, Type: sdk.EventGuestPanicked, Reason: reason, Time: time.Now()})
	}
	// Recorded before the destroy, so a driver killed in between still
	// finds the reason.
	if err := writeExitReason(dom.h.WorkDir, reason); err != nil {
		dom.log.Warn("record exit reason", "error", err)
	}
	dom.mu.Lock()
	dom.killing = reason
	dom.mu.Unlock()
	if _, err := xl(ctx, "destroy", fmt.Sprint(s.DomID)); err != nil {
		dom.log.Error("destroy shut down domain; it stays until the next poll or Destroy", "error", err)
		return
	}
	d.finish(dom, reason)
}

// lookup returns the driver's view of the domain h names: the live one
// this process holds, else one adopted from `xl list -l` when Xen still
// has a domain with the handle's domid and UUID. It returns nil for a VM
// never started and an ended domain, with its reason, for one that is
// gone.
func (d *Driver) lookup(ctx context.Context, vmID string, h handle) (*domain, error) {
	d.mu.Lock()
	dom := d.doms[vmID]
	d.mu.Unlock()
	if dom != nil && (dom.alive() || dom.h.DomID == h.DomID) {
		return dom, nil
	}
	if h.DomID == 0 {
		return nil, nil
	}
	xl, err := d.available()
	if err != nil {
		return nil, err
	}
	out, err := xl(ctx, "list", "-l")
	if err != nil {
		return nil, fmt.Errorf("find domain %s: %w", h.Domain, err)
	}
	infos, err := parseListLong(out)
	if err != nil {
		return nil, err
	}
	for _, in := range infos {
		if in.DomID != h.DomID {
			continue
		}
		if in.Config.CInfo.UUID != h.UUID || in.Config.CInfo.Name != h.Domain {
			break // the domid now names another domain
		}
		dom := newDomain(vmID, h, d.log)
		dom.typ = in.Config.CInfo.Type
		if cur := d.track(dom); cur != dom {
			return cur, nil // adopted meanwhile by another call
		}
		dom.log.Info("adopted running domain")
		return dom, nil
	}
	return newGoneDomain(vmID, h, recordedExitReason(h.WorkDir), d.log), nil
}

// removeIfExists removes p, ignoring its absence.
func removeIfExists(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
