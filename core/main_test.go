package core

import (
	"context"
	"os"
	"testing"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/hyperd/hyperd/sdk"
)

// driverModeEnv turns the test binary into a misbehaving driver plugin,
// for the discovery tests.
const driverModeEnv = "HYPERD_CORE_TEST_DRIVER"

func TestMain(m *testing.M) {
	switch os.Getenv(driverModeEnv) {
	case "":
		os.Exit(m.Run())
	case "hang-info":
		f := newFakeDriver()
		sdk.Serve(&hangingInfo{fakeDriver: f})
	case "other-version":
		// A driver from the future: the right cookie, a contract version
		// this host does not speak.
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: sdk.Handshake,
			VersionedPlugins: map[int]plugin.PluginSet{
				99: {sdk.PluginName: futurePlugin{}},
			},
			GRPCServer: plugin.DefaultGRPCServer,
		})
	case "healthy":
		sdk.Serve(newFakeDriver())
	}
	os.Exit(0)
}

// futurePlugin serves nothing; it only has to exist for the handshake.
type futurePlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (futurePlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }

func (futurePlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

// hangingInfo answers the handshake and then never answers Info.
type hangingInfo struct{ *fakeDriver }

func (h *hangingInfo) Info(ctx context.Context) (sdk.Info, error) {
	<-ctx.Done()
	select {}
}
