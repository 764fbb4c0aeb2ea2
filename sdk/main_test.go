package sdk_test

import (
	"context"
	"fmt"
	"os"
	"strings"
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
	modeKillEmits          = "kill_emits"
	modeRawVersion3        = "raw_version3"
	modeSDKVersion3        = "sdk_version3"
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

// Suffixes of a mode that narrow what the driver serves: "roundtrip@v1"
// serves the roundtrip driver over contract version 1 only.
var serveSuffixes = map[string][]sdk.ServeOption{
	"v1":    {sdk.WithContractVersions(1)},
	"v2":    {sdk.WithContractVersions(2)},
	"both":  {sdk.WithContractVersions(1, 2)},
	"ring2": {sdk.WithEventRing(2)},
}

// serveDriver runs the child side of a subprocess test and returns its
// exit code.
func serveDriver(mode string) int {
	mode, suffix, _ := strings.Cut(mode, "@")
	opts, ok := serveSuffixes[suffix]
	if suffix != "" && !ok {
		fmt.Fprintf(os.Stderr, "unknown %s suffix %q\n", driverModeEnv, suffix)
		return 2
	}
	switch mode {
	case modeRawVersion3:
		// A driver from a future SDK that leaves the version check to
		// go-plugin: the same cookie, but only version 3 on offer.
		hs := sdk.Handshake
		hs.ProtocolVersion = 3
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  hs,
			VersionedPlugins: map[int]plugin.PluginSet{3: sdk.VersionedPlugins()[sdk.ContractVersion]},
			GRPCServer:       plugin.DefaultGRPCServer,
		})
		return 0
	case modeSDKVersion3:
		sdk.Serve(&fakeDriver{}, sdk.WithOnlyFakeContractVersion(3))
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
	sdk.Serve(d, opts...)
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
		modeEvents:    &fakeDriver{events: emitFixtureEvents},
		modeKillEmits: killEmitsDriver(),
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
