package sdk_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/hyperd/hyperd/sdk"
)

// driverModeEnv turns the test binary into a driver plugin. The host side
// sets it with t.Setenv and launches os.Args[0]; Launch passes the
// environment on, so the child reads its mode here before any test runs.
const driverModeEnv = "HYPERD_SDK_TEST_DRIVER"

// Driver modes, one per behaviour the host side tests.
const (
	modeRoundTrip          = "roundtrip"
	modeErrors             = "errors"
	modeHang               = "hang"
	modeEvents             = "events"
	modePauseUndeclared    = "pause_undeclared"
	modePauseDeclared      = "pause_declared"
	modePauseUnimplemented = "pause_unimplemented"
	modeVersion2           = "version2"
	modeWrongCookie        = "wrong_cookie"
	modeGarbage            = "garbage"
	modeSilent             = "silent"
)

func TestMain(m *testing.M) {
	if mode, ok := os.LookupEnv(driverModeEnv); ok {
		os.Exit(serveDriver(mode))
	}
	os.Exit(m.Run())
}

// serveDriver runs the child side of a subprocess test and returns its
// exit code.
func serveDriver(mode string) int {
	switch mode {
	case modeVersion2:
		// A driver built against a future contract: the same cookie, but
		// only version 2 on offer.
		hs := sdk.Handshake
		hs.ProtocolVersion = 2
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  hs,
			VersionedPlugins: map[int]plugin.PluginSet{2: sdk.VersionedPlugins()[sdk.ContractVersion]},
			GRPCServer:       plugin.DefaultGRPCServer,
		})
		return 0
	case modeWrongCookie:
		hs := sdk.Handshake
		hs.MagicCookieValue = "not-the-hyperd-cookie"
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  hs,
			VersionedPlugins: sdk.VersionedPlugins(),
			GRPCServer:       plugin.DefaultGRPCServer,
		})
		return 0
	case modeGarbage:
		fmt.Println("hello, I am not a hyperd driver")
		return 0
	case modeSilent:
		// Never handshakes; the host must give up after StartTimeout and
		// kill it. The sleep bounds the damage if it does not.
		time.Sleep(time.Minute)
		return 0
	}

	d, ok := fakeDrivers()[mode]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown %s %q\n", driverModeEnv, mode)
		return 2
	}
	sdk.Serve(d)
	return 0
}

// fakeDrivers builds the fake driver for each mode that serves through
// sdk.Serve.
func fakeDrivers() map[string]sdk.Driver {
	return map[string]sdk.Driver{
		modeRoundTrip: roundTripDriver(),
		modeErrors:    errorsDriver(),
		modeHang: &fakeDriver{
			status: func(context.Context, string, sdk.Handle) (sdk.Status, error) {
				// Ignores its context on purpose: the host's deadline
				// must hold even against a driver that breaks the
				// contract.
				time.Sleep(time.Minute)
				return sdk.Status{}, nil
			},
		},
		modeEvents: &fakeDriver{events: emitFixtureEvents},
		modePauseUndeclared: &pausingDriver{
			fakeDriver: fakeDriver{info: func() sdk.Info { return sdk.Info{Name: "fake"} }},
		},
		modePauseDeclared: &pausingDriver{
			fakeDriver: fakeDriver{info: func() sdk.Info {
				return sdk.Info{Name: "fake", Capabilities: []sdk.Capability{sdk.CapabilityPause}}
			}},
		},
		modePauseUnimplemented: &fakeDriver{info: func() sdk.Info {
			return sdk.Info{Name: "fake", Capabilities: []sdk.Capability{sdk.CapabilityPause}}
		}},
	}
}
