package sdk

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	driverv1 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v1"
	driverv2 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v2"
)

// Handshake is the magic cookie a driver and the daemon check before they
// talk. It is not a security measure: it keeps a driver binary run by hand
// from waiting for a host that never comes, and the daemon from talking to
// a binary that is not a hyperd driver. Its ProtocolVersion is go-plugin's
// legacy single version and plays no part: the contract version is
// negotiated from VersionedPlugins.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ContractVersion1,
	MagicCookieKey:   "HYPERD_DRIVER_MAGIC_COOKIE",
	MagicCookieValue: "6c1f3a1e-hyperd-driver-contract",
}

// PluginName is the name the driver service is dispensed under.
const PluginName = "driver"

// LogLevelEnv is the environment variable through which the daemon tells a
// driver its log level.
const LogLevelEnv = "HYPERD_DRIVER_LOG_LEVEL"

// DefaultEventRing is how many recent events a driver keeps for hosts
// that resume their event stream (contract version 2), unless
// WithEventRing says otherwise. At a few hundred bytes an event it costs
// well under a megabyte, and it covers far more than the events of a
// daemon restart on a busy host.
const DefaultEventRing = 4096

// grpcPlugin ties the contract's version to go-plugin. On the driver side
// it holds the server; on the host side it builds a Client.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	version int
	srv     *server // nil on the host side
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.version == ContractVersion1 {
		driverv1.RegisterDriverServer(s, &v1Server{s: p.srv})
		return nil
	}
	driverv2.RegisterDriverServer(s, &v2Server{s: p.srv, version: p.version})
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	if p.version == ContractVersion1 {
		return NewClient(driverv1.NewDriverClient(c)), nil
	}
	return &Client{rpc: driverv2.NewDriverClient(c), version: p.version}, nil
}

// VersionedPlugins maps each contract version the host speaks to its
// plugin set, for go-plugin's version negotiation.
func VersionedPlugins() map[int]plugin.PluginSet {
	out := make(map[int]plugin.PluginSet)
	for _, v := range ContractVersions() {
		out[v] = plugin.PluginSet{PluginName: &grpcPlugin{version: v}}
	}
	return out
}

// Logger returns the logger a driver should use. go-plugin reads the
// driver's stderr as JSON log lines and re-emits them in the daemon's log,
// tagged with the driver's name; the level comes from the daemon.
func Logger() hclog.Logger {
	level := hclog.LevelFromString(os.Getenv(LogLevelEnv))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{
		Level:      level,
		Output:     os.Stderr,
		JSONFormat: true,
	})
}

// ServeOption tunes Serve.
type ServeOption func(*serveConfig)

type serveConfig struct {
	versions []int
	ring     int
	// fakeVersions are served as version 2 under another number, so that
	// tests can play a driver from a future SDK.
	fakeVersions []int
}

// WithContractVersions restricts the contract versions the driver offers
// to vs, which must all be in ContractVersions. Default: all of them. A
// driver has no reason to restrict them but a test does.
func WithContractVersions(vs ...int) ServeOption {
	return func(c *serveConfig) { c.versions = slices.Clone(vs) }
}

// WithEventRing sets how many recent events the driver keeps for hosts
// that resume their event stream. Default DefaultEventRing; at least 1.
func WithEventRing(n int) ServeOption {
	return func(c *serveConfig) { c.ring = n }
}

// pluginSets builds the plugin set of each version the driver offers.
func (c *serveConfig) pluginSets(srv *server) (map[int]plugin.PluginSet, []int, error) {
	if c.ring < 1 {
		return nil, nil, fmt.Errorf("event ring of %d events: must hold at least 1", c.ring)
	}
	out := make(map[int]plugin.PluginSet)
	var offered []int
	for _, v := range c.versions {
		if !slices.Contains(ContractVersions(), v) {
			return nil, nil, fmt.Errorf("contract version %d: this SDK speaks %v", v, ContractVersions())
		}
		out[v] = plugin.PluginSet{PluginName: &grpcPlugin{version: v, srv: srv}}
		offered = append(offered, v)
	}
	for _, v := range c.fakeVersions {
		out[v] = plugin.PluginSet{PluginName: &grpcPlugin{version: v, srv: srv}}
		offered = append(offered, v)
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("no contract version to offer")
	}
	slices.Sort(offered)
	return out, offered, nil
}

// Serve runs d as a driver plugin and returns when the daemon is done with
// it. Call it from main. It offers every contract version in
// ContractVersions unless an option narrows them, and the daemon picks the
// highest both speak; d itself is the same for every version. Run by hand,
// outside the daemon, the binary prints a message saying so and exits.
// When the daemon speaks none of the driver's versions, or an option is
// wrong, Serve logs why on stderr, where the daemon quotes it, and exits
// the process with status 1.
func Serve(d Driver, opts ...ServeOption) {
	log := Logger()
	exitWithParent(log)
	cfg := serveConfig{versions: ContractVersions(), ring: DefaultEventRing}
	for _, o := range opts {
		o(&cfg)
	}
	srv := newServer(d, cfg.ring)
	defer srv.close()
	sets, offered, err := cfg.pluginSets(srv)
	if err != nil {
		log.Error("cannot serve the driver contract", "error", err)
		os.Exit(1)
	}
	// go-plugin would serve its lowest version anyway and leave the host
	// to fail the handshake knowing only that one; the driver knows both
	// lists, so it says so itself.
	host, fromHost, err := hostVersions()
	if err != nil {
		log.Error("cannot read the host's contract versions", "error", err)
		os.Exit(1)
	}
	if fromHost && !overlap(offered, host) {
		log.Error("no contract version in common",
			"error", (&VersionMismatchError{Driver: offered, Host: host}).Error())
		os.Exit(1)
	}

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: sets,
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           log,
	})
}
