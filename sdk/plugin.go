package sdk

import (
	"context"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	driverv1 "github.com/hyperd/hyperd/sdk/proto/hyperd/driver/v1"
)

// Handshake is the magic cookie a driver and the daemon check before they
// talk. It is not a security measure: it keeps a driver binary run by hand
// from waiting for a host that never comes, and the daemon from talking to
// a binary that is not a hyperd driver.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ContractVersion,
	MagicCookieKey:   "HYPERD_DRIVER_MAGIC_COOKIE",
	MagicCookieValue: "6c1f3a1e-hyperd-driver-contract",
}

// PluginName is the name the driver service is dispensed under.
const PluginName = "driver"

// LogLevelEnv is the environment variable through which the daemon tells a
// driver its log level.
const LogLevelEnv = "HYPERD_DRIVER_LOG_LEVEL"

// grpcPlugin ties a Driver to go-plugin. On the driver side it holds the
// implementation; on the host side it builds a Client.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	d Driver
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	driverv1.RegisterDriverServer(s, &server{d: p.d})
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &Client{rpc: driverv1.NewDriverClient(c)}, nil
}

// VersionedPlugins maps each contract version the host speaks to its
// plugin set, for go-plugin's version negotiation.
func VersionedPlugins() map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		ContractVersion: {PluginName: &grpcPlugin{}},
	}
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

// Serve runs d as a driver plugin and returns when the daemon is done with
// it. Call it from main. Run by hand, outside the daemon, the binary prints
// a message saying so and exits.
func Serve(d Driver) {
	exitWithParent(Logger())
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			ContractVersion: {PluginName: &grpcPlugin{d: d}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
		Logger:     Logger(),
	})
}
