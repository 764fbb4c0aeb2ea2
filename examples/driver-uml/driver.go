package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hyperd/hyperd/sdk"
)

const (
	driverName    = "uml"
	driverVersion = "0.1.0"
	// defaultKernel is where Debian's user-mode-linux installs the UML
	// kernel; the fingerprint looks for it.
	defaultKernel = "/usr/bin/linux.uml"
	// mconsoleTool is uml-utilities' mconsole client.
	mconsoleTool = "uml_mconsole"
	// minMemoryMiB is below what a UML kernel with an initrd boots in.
	minMemoryMiB = 32
	// maxSocketPath is the longest unix socket path (sun_path less its
	// terminating NUL).
	maxSocketPath = 107
)

// umidPattern is what a umid may hold: it becomes a directory name and a
// command-line argument.
var umidPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// driver runs VMs as linux.uml processes. Its methods are safe for
// concurrent use.
type driver struct {
	log hclog.Logger
	hub *sdk.EventHub

	mu  sync.Mutex
	vms map[string]*vm // the live view of VMs this process has seen
}

var (
	_ sdk.Driver = (*driver)(nil)
	_ sdk.Pauser = (*driver)(nil)
)

func newDriver(log hclog.Logger) *driver {
	return &driver{log: log, hub: sdk.NewEventHub(), vms: make(map[string]*vm)}
}

// Info declares what UML can do; see the package doc for why.
func (d *driver) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name:    driverName,
		Version: driverVersion,
		Capabilities: []sdk.Capability{
			sdk.CapabilityPause,
			sdk.CapabilityConsoleLog,
			sdk.CapabilityRecover,
		},
	}, nil
}

// Fingerprint reports whether Debian's UML kernel and uml_mconsole are
// installed.
func (d *driver) Fingerprint(ctx context.Context) (sdk.Fingerprint, error) {
	tool, err := exec.LookPath(mconsoleTool)
	if err != nil {
		return sdk.Fingerprint{
			Health:      sdk.HealthUnhealthy,
			Description: "uml_mconsole not found: install Debian package uml-utilities",
		}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, defaultKernel, "--version").Output()
	if err != nil {
		return sdk.Fingerprint{
			Health:      sdk.HealthUnhealthy,
			Description: fmt.Sprintf("%s --version: %v: install Debian package user-mode-linux", defaultKernel, err),
		}, nil
	}
	version := strings.TrimSpace(string(out))
	return sdk.Fingerprint{
		Health:      sdk.HealthHealthy,
		Description: "user mode linux " + version,
		Attributes:  map[string]string{"binary": defaultKernel, "version": version, "mconsole": tool},
	}, nil
}

// Create checks the spec against what UML can run and returns the VM's
// first handle; nothing runs until Start.
func (d *driver) Create(_ context.Context, vmID string, s sdk.Spec, workDir string) (sdk.Handle, error) {
	h := handle{Version: handleVersion, VMID: vmID, WorkDir: workDir, UMID: vmID}
	sp, err := checkSpec(s)
	if err == nil {
		err = checkPlace(h)
	}
	if err != nil {
		return nil, fmt.Errorf("create vm %s: %w", vmID, err)
	}
	h.Spec = sp
	return h.encode(), nil
}

// checkSpec turns s into what the handle keeps, or names the field UML
// cannot honour.
func checkSpec(s sdk.Spec) (spec, error) {
	out := spec{Name: s.Name, MemoryMiB: s.MemoryMiB, Kernel: s.Kernel, Initrd: s.Initrd, Cmdline: s.Cmdline}
	switch {
	case s.Name == "":
		return out, sdk.InvalidSpec("name", "must not be empty")
	case s.VCPUs != 1:
		return out, sdk.InvalidSpec("vcpus", "UML runs one virtual CPU, got %d", s.VCPUs)
	case s.MemoryMiB < minMemoryMiB:
		return out, sdk.InvalidSpec("memory_mib", "must be at least %d, got %d", minMemoryMiB, s.MemoryMiB)
	case s.Kernel == "":
		return out, sdk.InvalidSpec("kernel", "must name a UML kernel, such as %s", defaultKernel)
	case len(s.Options) > 0:
		return out, sdk.InvalidSpec("options", "this driver takes none")
	}
	if err := checkPath("kernel", s.Kernel, true); err != nil {
		return out, err
	}
	if s.Initrd != "" {
		if err := checkPath("initrd", s.Initrd, false); err != nil {
			return out, err
		}
	}
	for i, dk := range s.Disks {
		field := fmt.Sprintf("disks[%d]", i)
		if dk.Format != "" && dk.Format != "raw" {
			return out, sdk.InvalidSpec(field+".format", "UML reads raw images only, got %q", dk.Format)
		}
		if err := checkPath(field+".path", dk.Path, false); err != nil {
			return out, err
		}
		out.Disks = append(out.Disks, disk{Path: dk.Path, ReadOnly: dk.ReadOnly})
	}
	for _, arg := range strings.Fields(s.Cmdline) {
		key, _, _ := strings.Cut(arg, "=")
		switch key {
		case "umid", "uml_dir", "mem", "initrd", "con", "ssl":
			return out, sdk.InvalidSpec("cmdline", "%s= is the driver's to set", key)
		}
	}
	return out, nil
}

// checkPath checks a host file the UML command line will name: UML splits
// its arguments on commas and its command line on spaces.
func checkPath(field, p string, executable bool) error {
	if strings.ContainsAny(p, ", \t\n:") {
		return sdk.InvalidSpec(field, "%q: UML cannot take a path with a comma, colon or space", p)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return sdk.InvalidSpec(field, "%v", err)
	}
	if !fi.Mode().IsRegular() {
		return sdk.InvalidSpec(field, "%s is not a regular file", p)
	}
	if executable && fi.Mode().Perm()&0o111 == 0 {
		return sdk.InvalidSpec(field, "%s is not executable: UML runs its kernel as a program, such as %s",
			p, defaultKernel)
	}
	return nil
}

// checkPlace checks the work directory and the umid that names the VM's
// mconsole socket.
func checkPlace(h handle) error {
	if !umidPattern.MatchString(h.UMID) {
		return sdk.InvalidSpec("vm_id", "%q cannot be a UML umid: letters, digits, '.', '_', '-'", h.UMID)
	}
	if strings.ContainsAny(h.WorkDir, ", \t\n:") {
		return sdk.InvalidSpec("work_dir", "%q: UML cannot take a path with a comma, colon or space", h.WorkDir)
	}
	fi, err := os.Stat(h.WorkDir)
	if err != nil || !fi.IsDir() {
		return sdk.InvalidSpec("work_dir", "%s is not a directory", h.WorkDir)
	}
	if n := len(h.mconsole()); n > maxSocketPath {
		return sdk.InvalidSpec("work_dir", "the mconsole socket %s would be %d bytes, more than a unix socket's %d",
			h.mconsole(), n, maxSocketPath)
	}
	return nil
}

// Destroy removes what the driver made in the work directory. The VM
// must not run; an unknown VM is already destroyed.
func (d *driver) Destroy(ctx context.Context, vmID string, hb sdk.Handle) error {
	h, err := decodeHandle(vmID, hb)
	if err != nil {
		return fmt.Errorf("destroy vm %s: %w", vmID, err)
	}
	v, err := d.lookup(vmID, h)
	if err != nil {
		return fmt.Errorf("destroy vm %s: %w", vmID, err)
	}
	if v != nil && v.alive() {
		return fmt.Errorf("destroy vm %s: still runs as pid %d: %w", vmID, v.h.PID, sdk.ErrWrongState)
	}
	d.forget(vmID)
	for _, p := range []string{h.umlDir(), h.pausedFile(), h.exitFile()} {
		if err := os.RemoveAll(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("destroy vm %s: %w", vmID, err)
		}
	}
	return nil
}

// Events returns every event of every VM from now on; the channel closes
// when ctx ends.
func (d *driver) Events(ctx context.Context) (<-chan sdk.Event, error) {
	return d.hub.Subscribe(ctx), nil
}

// mconsole runs one uml_mconsole command against the VM's socket and
// returns its reply. ctx bounds the command.
func mconsole(ctx context.Context, h handle, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mconsoleTool, append([]string{h.mconsole()}, args...)...)
	// uml_mconsole warns on stderr about the umid directories it tries
	// before taking the argument as a path; its reply is on stdout.
	out, err := cmd.Output()
	reply := strings.TrimSpace(string(out))
	if err != nil || !strings.HasPrefix(reply, "OK") {
		if reply == "" && err != nil {
			reply = err.Error()
		}
		return reply, fmt.Errorf("mconsole %s: %s: %w", strings.Join(args, " "), reply, sdk.ErrUnavailable)
	}
	return strings.TrimSpace(strings.TrimPrefix(reply, "OK")), nil
}
