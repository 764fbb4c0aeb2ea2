package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/hyperd/hyperd/core"
)

// Defaults, for a host install. The demo and the tests pass their own.
const (
	defaultStateDir = "/var/lib/hyperd"
	defaultSocket   = "/run/hyperd/hyperd.sock"
	// shutdownGrace bounds how long SIGTERM waits for API calls in
	// flight before cutting them off.
	shutdownGrace = 5 * time.Second
)

type options struct {
	configPath    string
	stateDir      string
	socket        string
	socketMode    string
	pluginDirs    []string
	logLevel      string
	logJSON       bool
	defaultDriver string
	stopTimeout   time.Duration
}

func newRootCmd() *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "hyperd",
		Short: "Run virtual machines through hypervisor driver plugins",
		Long: `hyperd is a daemon that runs virtual machines on this host through
hypervisor drivers shipped as separate plugin binaries
(hyperd-driver-NAME). At start it discovers every driver in its plugin
directories, recovers the VMs its store knows, and serves the operator
API on a unix socket; hyperctl is its client.

SIGTERM or SIGINT stops the daemon and its drivers cleanly and leaves the
VMs running: the next hyperd on the same state directory recovers them.`,
		Example: `  # run with a private state directory and the drivers built in bin/plugins
  hyperd --state-dir /tmp/hyperd --socket /tmp/hyperd.sock --plugin-dir bin/plugins`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			drivers, err := applyConfig(cmd, &o)
			if err != nil {
				return err
			}
			return run(cmd.Context(), o, drivers)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.configPath, "config", core.DefaultConfigPath,
		"HCL config file; a flag given on the command line wins over it. A missing file at the default path means defaults")
	f.StringVar(&o.stateDir, "state-dir", defaultStateDir,
		"directory for the store (hyperd.db) and one work directory per VM; made with mode 0700 if missing")
	f.StringVar(&o.socket, "socket", defaultSocket, "unix socket the operator API listens on")
	f.StringVar(&o.socketMode, "socket-mode", "0600",
		"file mode of the API socket, in octal; whoever can open it can boot any host file as a kernel or disk, so treat it as root access")
	f.StringArrayVar(&o.pluginDirs, "plugin-dir", nil,
		"directory to scan for hyperd-driver-* binaries; repeatable, first match wins (default: the plugins directory beside the hyperd binary, then /usr/lib/hyperd/plugins)")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: trace, debug, info, warn or error; drivers get the same")
	f.BoolVar(&o.logJSON, "log-json", false, "write logs as JSON lines")
	f.StringVar(&o.defaultDriver, "default-driver", "qemu", "driver for VMs whose request names none")
	f.DurationVar(&o.stopTimeout, "stop-timeout", 30*time.Second,
		"how long a graceful stop waits for the guest when the request names no timeout")
	return cmd
}

func defaultPluginDirs() []string {
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Join(filepath.Dir(exe), "plugins"))
	}
	return append(dirs, "/usr/lib/hyperd/plugins")
}

// applyConfig reads the config file into o for every setting whose flag
// was not given, and returns the driver blocks.
func applyConfig(cmd *cobra.Command, o *options) (map[string]core.DriverConfig, error) {
	fc, err := core.LoadConfig(o.configPath)
	if errors.Is(err, fs.ErrNotExist) && !cmd.Flags().Changed("config") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	set := func(flag string, dst *string, v string) {
		if v != "" && !cmd.Flags().Changed(flag) {
			*dst = v
		}
	}
	set("state-dir", &o.stateDir, fc.StateDir)
	set("socket", &o.socket, fc.Socket)
	set("socket-mode", &o.socketMode, fc.SocketMode)
	set("log-level", &o.logLevel, fc.LogLevel)
	set("default-driver", &o.defaultDriver, fc.DefaultDriver)
	if len(fc.PluginDirs) > 0 && !cmd.Flags().Changed("plugin-dir") {
		o.pluginDirs = fc.PluginDirs
	}
	if fc.StopTimeout > 0 && !cmd.Flags().Changed("stop-timeout") {
		o.stopTimeout = fc.StopTimeout
	}
	return fc.Drivers, nil
}

func run(ctx context.Context, o options, drivers map[string]core.DriverConfig) error {
	level := hclog.LevelFromString(o.logLevel)
	if level == hclog.NoLevel {
		return fmt.Errorf("--log-level: unknown level %q; use trace, debug, info, warn or error", o.logLevel)
	}
	mode, err := strconv.ParseUint(o.socketMode, 8, 32)
	if err != nil || mode > 0o777 {
		return fmt.Errorf("--socket-mode: %q is not an octal file mode such as 0600", o.socketMode)
	}
	// The state dir reaches drivers as each VM's work dir, which must be
	// absolute.
	if o.stateDir, err = filepath.Abs(o.stateDir); err != nil {
		return fmt.Errorf("--state-dir: %w", err)
	}
	if o.socket, err = filepath.Abs(o.socket); err != nil {
		return fmt.Errorf("--socket: %w", err)
	}
	if o.stopTimeout <= 0 {
		return fmt.Errorf("--stop-timeout: must be positive, such as 30s")
	}
	if len(o.pluginDirs) == 0 {
		o.pluginDirs = defaultPluginDirs()
	}
	log := hclog.New(&hclog.LoggerOptions{
		Name:       "hyperd",
		Level:      level,
		JSONFormat: o.logJSON,
		Output:     os.Stderr,
	})

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	lis, err := listen(o.socket, os.FileMode(mode))
	if err != nil {
		return err
	}
	d, err := core.Open(core.Config{
		StateDir:           o.stateDir,
		PluginDirs:         o.pluginDirs,
		DefaultDriver:      o.defaultDriver,
		DefaultStopTimeout: o.stopTimeout,
		LogLevel:           o.logLevel,
		DriverConfigs:      drivers,
		Logger:             log,
	})
	if err != nil {
		_ = lis.Close() // the open error is the one to report
		return err
	}

	srv := grpc.NewServer()
	core.RegisterAPI(srv, d)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	log.Info("hyperd ready", "socket", o.socket, "state_dir", o.stateDir, "plugin_dirs", o.pluginDirs)

	select {
	case <-ctx.Done():
		log.Info("shutting down; vms keep running")
	case err := <-served:
		log.Error("api server stopped", "error", err)
	}
	d.Drain()
	graceful := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(graceful)
	}()
	select {
	case <-graceful:
	case <-time.After(shutdownGrace):
		srv.Stop()
	}
	return d.Close()
}

// listen opens the API socket with mode perm. A socket file left by a
// daemon that died is replaced; one that still answers is not.
func listen(path string, perm os.FileMode) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("--socket: make directory for %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("--socket: %s exists and is not a socket; hyperd replaces only a stale socket, so remove it or choose another path", path)
		}
		conn, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			_ = conn.Close() // only probing whether someone listens
			return nil, fmt.Errorf("--socket: %s is in use by a running hyperd; stop it or choose another socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("--socket: remove stale socket %s: %w", path, err)
		}
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("--socket: listen on %s: %w", path, err)
	}
	// Listen creates the socket with the umask's mode; narrow it before
	// the first Accept, which is what grants access.
	if err := os.Chmod(path, perm); err != nil {
		_ = lis.Close()
		return nil, fmt.Errorf("--socket: chmod %s: %w", path, err)
	}
	return lis, nil
}
