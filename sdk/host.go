package sdk

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// DefaultStartTimeout bounds a driver's start and handshake.
const DefaultStartTimeout = 10 * time.Second

// handshakeExitWait bounds the wait, after a failed handshake, for the
// driver to exit by itself so that its last words are read.
const handshakeExitWait = 500 * time.Millisecond

// LaunchOptions tune how the host starts a driver binary.
type LaunchOptions struct {
	// Logger receives the driver's log lines; the driver's name is a good
	// logger name. Nil discards them.
	Logger hclog.Logger
	// LogLevel is passed to the driver; empty means info.
	LogLevel string
	// StartTimeout bounds the start and handshake; zero means
	// DefaultStartTimeout.
	StartTimeout time.Duration
	// Options are handed to the driver through OptionsEnv; see Options.
	Options map[string]string
}

// Plugin is a running driver process seen from the host.
type Plugin struct {
	*Client
	pc  *plugin.Client
	cmd *exec.Cmd
}

// Launch starts the driver binary at path, checks the magic cookie,
// negotiates the highest contract version both sides speak (the host
// offers every one in ContractVersions), connects over mutual TLS and
// returns the client. When the two share no version, the error names
// both sides' versions. ctx bounds the launch only; the process lives
// until Close.
func Launch(ctx context.Context, path string, opts LaunchOptions) (p *Plugin, err error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < opts.StartTimeout {
		opts.StartTimeout = time.Until(dl)
	}

	// The tail of the driver's stderr explains a failed handshake far
	// better than go-plugin's own error: a driver refusing our cookie or
	// crashing says why there.
	tail := &tailBuffer{max: 2048}
	cmd := exec.Command(path)
	// Its own process group, so that a driver started through a wrapper
	// script that leaves children holding its stdout and stderr can still
	// be ended whole: go-plugin waits for those pipes to close.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), LogLevelEnv+"="+opts.LogLevel)
	if env, err := optionsEnv(opts.Options); err != nil {
		return nil, err
	} else if env != "" {
		cmd.Env = append(cmd.Env, env)
	}
	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: VersionedPlugins(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           opts.Logger,
		StartTimeout:     opts.StartTimeout,
		Stderr:           tail,
	})
	defer func() {
		if err != nil {
			killGroup(cmd)
			pc.Kill()
		}
	}()

	rpc, err := pc.Client()
	if err != nil {
		// A driver that refuses our versions says why on stderr and
		// exits; the handshake may fail before its stderr is all read.
		waitExit(pc, handshakeExitWait)
		if said := tail.String(); said != "" {
			return nil, fmt.Errorf("handshake with driver %s (hyperd speaks contract versions %v): %w; its stderr ends with: %s",
				path, ContractVersions(), err, said)
		}
		return nil, fmt.Errorf("handshake with driver %s (hyperd speaks contract versions %v): %w",
			path, ContractVersions(), err)
	}
	if v := pc.NegotiatedVersion(); !slices.Contains(ContractVersions(), v) {
		return nil, fmt.Errorf("driver %s: %w", path,
			&VersionMismatchError{Driver: []int{v}, Host: ContractVersions()})
	}
	raw, err := rpc.Dispense(PluginName)
	if err != nil {
		return nil, fmt.Errorf("dispense driver %s: %w", path, err)
	}
	c, ok := raw.(*Client)
	if !ok {
		return nil, fmt.Errorf("dispense driver %s: got %T, want *sdk.Client", path, raw)
	}
	return &Plugin{Client: c, pc: pc, cmd: cmd}, nil
}

// waitExit waits up to d for the driver process to end.
func waitExit(pc *plugin.Client, d time.Duration) {
	deadline := time.Now().Add(d)
	for !pc.Exited() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// Exited reports whether the driver process has ended.
func (p *Plugin) Exited() bool { return p.pc.Exited() }

// PID returns the driver process's id, or zero when it is unknown.
func (p *Plugin) PID() int {
	if rc := p.pc.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// Close ends the driver process: a polite request first, then a kill.
// VMs the driver started keep running.
func (p *Plugin) Close() {
	done := make(chan struct{})
	go func() {
		p.pc.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeGrace):
		// The driver left children holding its pipes, or ignores the
		// request: end its whole group, which go-plugin then sees go.
		killGroup(p.cmd)
		<-done
	}
}

// closeGrace bounds a polite Close before the driver's process group is
// killed. go-plugin itself allows a driver 2 s to exit after asking.
const closeGrace = 3 * time.Second

// killGroup kills the process group a driver was started in. The VMs a
// driver starts run in groups of their own and are not touched.
func killGroup(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	// Fails only when the group is already gone.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int

	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

// String returns the kept bytes, trimmed, on one line.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(strings.Fields(string(t.buf)), " ")
}
