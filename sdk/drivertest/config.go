package drivertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hyperd/hyperd/sdk"
)

// DefaultReadyLine is the console line hyperd's test guest prints once it
// is up and holds the power button. It mirrors the test guest's own
// constant, which this package cannot import.
const DefaultReadyLine = "HYPERD-GUEST-READY"

// Defaults for the Config fields left zero.
const (
	DefaultMemoryMiB         = 128
	DefaultBootTimeout       = 90 * time.Second
	DefaultStopTimeout       = 30 * time.Second
	DefaultForcedStopTimeout = 2 * time.Second
	DefaultStopMargin        = 15 * time.Second
	DefaultCheckTimeout      = 4 * time.Minute
	DefaultFingerprintWait   = 20 * time.Second
)

// Config says which driver to check and with what guest.
type Config struct {
	// Binary is the path of a driver executable named hyperd-driver-NAME.
	// The suite starts it with sdk.Launch as the daemon would. Used when
	// Launch is nil.
	Binary string

	// Launch starts a fresh driver, for in-process drivers or unusual
	// launches; nil means LaunchBinary(Binary). Each check launches its
	// own, and the recover checks launch two.
	Launch Launcher

	// Name is the driver name Info must report. Empty means NAME from
	// Binary's hyperd-driver-NAME, or any non-empty name without Binary.
	Name string

	// Guest is what the VMs boot. Without a Kernel every check that
	// boots a VM is skipped.
	Guest Guest

	// MemoryMiB and VCPUs size each VM; defaults DefaultMemoryMiB and 1.
	MemoryMiB uint64
	VCPUs     uint32

	// Options are driver-specific options set in every spec; nil sets
	// none.
	Options map[string]string

	// WorkRoot is the directory under which the suite makes its own
	// temporary directory, one subdirectory per VM. Default os.TempDir().
	// Keep it short: drivers put unix sockets there, whose paths may not
	// exceed 107 bytes.
	WorkRoot string

	// BootTimeout bounds a boot to the ready line; default
	// DefaultBootTimeout, generous for TCG on a loaded machine.
	BootTimeout time.Duration
	// StopTimeout is the graceful stop's timeout; default
	// DefaultStopTimeout.
	StopTimeout time.Duration
	// ForcedStopTimeout is the timeout given to Stop for the stubborn
	// guest, which must be forced off; default DefaultForcedStopTimeout.
	ForcedStopTimeout time.Duration
	// StopMargin is how much longer than its timeout a forced Stop may
	// take; default DefaultStopMargin.
	StopMargin time.Duration
	// CheckTimeout bounds each check; default DefaultCheckTimeout.
	CheckTimeout time.Duration

	// Skip names checks not to run, each with the reason the report
	// gives, such as {"invalid_spec": "..."}. An unknown name fails the
	// run.
	Skip map[string]string

	// LogLevel is the driver's log level, passed to it and used to filter
	// what reaches the check's log; default "info".
	LogLevel string
}

// Guest is the guest the suite boots.
type Guest struct {
	// Kernel is the kernel image; required for every check that boots.
	Kernel string
	// Initrd is the normal guest, which powers off on the power button.
	Initrd string
	// StubbornInitrd ignores the power button, so that a stop must be
	// forced. Empty skips stop_past_deadline.
	StubbornInitrd string
	// Cmdline is the kernel command line; default "console=ttyS0
	// panic=-1 quiet".
	Cmdline string
	// ReadyLine is the console line that says the guest is up; default
	// DefaultReadyLine.
	ReadyLine string
	// BootDelay is how long the suite waits for a boot when the driver
	// declares no console log to read the ready line from; default 10s.
	BootDelay time.Duration
}

// Instance is one running driver, as the suite sees it.
type Instance struct {
	// Driver is the driver's contract, usually an *sdk.Plugin's client.
	Driver sdk.Driver
	// PID is the driver process's id, or zero for an in-process driver.
	PID int
	// ContractVersion is the contract version negotiated with the driver.
	ContractVersion int
	// Kill ends the driver abruptly, as SIGKILL does, and returns once it
	// is gone; the VMs it started keep running. Nil skips the checks that
	// need a driver death.
	Kill func() error
	// Exited reports whether the driver has ended; nil means never.
	Exited func() bool
	// Close ends the driver politely; VMs keep running. Nil does nothing.
	Close func()
}

// Launcher starts a fresh driver. ctx bounds the launch only; log
// receives the driver's log lines.
type Launcher func(ctx context.Context, log hclog.Logger) (*Instance, error)

// LaunchBinary returns a Launcher that starts the driver executable at
// path through sdk.Launch, passing level as the driver's log level.
func LaunchBinary(path, level string) Launcher {
	return func(ctx context.Context, log hclog.Logger) (*Instance, error) {
		p, err := sdk.Launch(ctx, path, sdk.LaunchOptions{Logger: log, LogLevel: level})
		if err != nil {
			return nil, err
		}
		pid := p.PID()
		return &Instance{
			Driver:          p,
			PID:             pid,
			ContractVersion: p.ContractVersion(),
			Kill: func() error {
				defer p.Close()
				if pid == 0 {
					return fmt.Errorf("kill driver %s: pid unknown", path)
				}
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					return fmt.Errorf("kill driver %s pid %d: %w", path, pid, err)
				}
				return waitFor(10*time.Second, p.Exited)
			},
			Exited: p.Exited,
			Close:  p.Close,
		}, nil
	}
}

// binaryPrefix starts the name of every driver executable.
const binaryPrefix = "hyperd-driver-"

// withDefaults returns cfg with every zero field set, or why cfg is
// unusable.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Launch == nil {
		if cfg.Binary == "" {
			return cfg, fmt.Errorf("drivertest: Config needs Binary or Launch")
		}
		abs, err := filepath.Abs(cfg.Binary)
		if err != nil {
			return cfg, fmt.Errorf("drivertest: binary %s: %w", cfg.Binary, err)
		}
		cfg.Binary = abs
		if _, err := os.Stat(abs); err != nil {
			return cfg, fmt.Errorf("drivertest: binary: %w", err)
		}
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "info"
	}
	if cfg.Launch == nil {
		cfg.Launch = LaunchBinary(cfg.Binary, cfg.LogLevel)
	}
	if cfg.Name == "" && cfg.Binary != "" {
		cfg.Name = strings.TrimPrefix(filepath.Base(cfg.Binary), binaryPrefix)
		if cfg.Name == filepath.Base(cfg.Binary) {
			return cfg, fmt.Errorf("drivertest: binary %s is not named %sNAME", cfg.Binary, binaryPrefix)
		}
	}
	for name := range cfg.Skip {
		if _, ok := checkByName(name); !ok {
			return cfg, fmt.Errorf("drivertest: cannot skip unknown check %q; checks are %s",
				name, strings.Join(Checks(), ", "))
		}
	}
	setDefault(&cfg.MemoryMiB, DefaultMemoryMiB)
	setDefault(&cfg.VCPUs, 1)
	setDefault(&cfg.BootTimeout, DefaultBootTimeout)
	setDefault(&cfg.StopTimeout, DefaultStopTimeout)
	setDefault(&cfg.ForcedStopTimeout, DefaultForcedStopTimeout)
	setDefault(&cfg.StopMargin, DefaultStopMargin)
	setDefault(&cfg.CheckTimeout, DefaultCheckTimeout)
	setDefault(&cfg.Guest.Cmdline, "console=ttyS0 panic=-1 quiet")
	setDefault(&cfg.Guest.ReadyLine, DefaultReadyLine)
	setDefault(&cfg.Guest.BootDelay, 10*time.Second)
	if cfg.WorkRoot == "" {
		cfg.WorkRoot = os.TempDir()
	}
	return cfg, nil
}

func setDefault[V comparable](p *V, def V) {
	var zero V
	if *p == zero {
		*p = def
	}
}

// waitFor polls cond until it holds or limit passes.
func waitFor(limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("still not done after %s", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
