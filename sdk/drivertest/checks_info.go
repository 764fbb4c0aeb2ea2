package drivertest

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"time"

	"github.com/hyperd/hyperd/sdk"
)

// optionNameRE is what a driver option's name may look like: the key an
// operator writes in a spec.
var optionNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// optionParsers check an option's default against its declared type.
var optionParsers = map[string]func(string) error{
	"string":   func(string) error { return nil },
	"int":      func(s string) error { _, err := strconv.ParseInt(s, 10, 64); return err },
	"bool":     func(s string) error { _, err := strconv.ParseBool(s); return err },
	"duration": func(s string) error { _, err := time.ParseDuration(s); return err },
}

func checkInfo(e *env) {
	in := e.driver()
	info := e.info(in)
	e.t.Logf("driver %q version %q, contract v%d, capabilities %v",
		info.Name, info.Version, in.ContractVersion, info.Capabilities)

	switch {
	case info.Name == "":
		e.t.Errorf("Info has no name")
	case e.cfg.Name != "" && info.Name != e.cfg.Name:
		e.t.Errorf("Info names the driver %q, but its binary is %s%s: the daemon registers it "+
			"under the name in Info", info.Name, binaryPrefix, e.cfg.Name)
	}
	if info.Version == "" {
		e.t.Errorf("Info has no version")
	}
	if in.ContractVersion < 1 {
		e.t.Errorf("contract version %d, want 1 or more", in.ContractVersion)
	}

	seen := map[sdk.Capability]bool{}
	for _, c := range info.Capabilities {
		if c.String() == "unknown" {
			e.t.Errorf("Info declares unknown capability %d", int(c))
		}
		if seen[c] {
			e.t.Errorf("Info declares capability %s twice", c)
		}
		seen[c] = true
	}

	names := map[string]bool{}
	for _, o := range info.Options {
		if !optionNameRE.MatchString(o.Name) {
			e.t.Errorf("option %q: name must be lowercase snake_case", o.Name)
		}
		if names[o.Name] {
			e.t.Errorf("option %q declared twice", o.Name)
		}
		names[o.Name] = true
		parse, ok := optionParsers[o.Type]
		if !ok {
			e.t.Errorf("option %q: type %q is not string, int, bool or duration", o.Name, o.Type)
			continue
		}
		if o.Default != "" {
			if err := parse(o.Default); err != nil {
				e.t.Errorf("option %q: default %q is not a %s: %v", o.Name, o.Default, o.Type, err)
			}
		}
		if o.Description == "" {
			e.t.Errorf("option %q has no description", o.Name)
		}
	}
}

func checkFingerprint(e *env) {
	in := e.driver()
	ctx, cancel := context.WithTimeout(e.ctx, DefaultFingerprintWait)
	defer cancel()
	start := time.Now()
	fp, err := in.Driver.Fingerprint(ctx)
	took := time.Since(start)
	if err != nil {
		e.t.Fatalf("Fingerprint did not answer within %s: %v", DefaultFingerprintWait, err)
	}
	e.t.Logf("fingerprint after %s: %s: %s %v", took.Round(time.Millisecond), fp.Health,
		fp.Description, fp.Attributes)
	if fp.Health != sdk.HealthHealthy {
		if fp.Description == "" {
			e.t.Errorf("Fingerprint says %s without a description an operator could act on", fp.Health)
		}
		e.t.Errorf("backend is %s on this host: %s", fp.Health, fp.Description)
	}
}

func checkUndeclared(e *env) {
	in := e.driver()
	info := e.info(in)
	pauseOK, recoverOK := info.Has(sdk.CapabilityPause), info.Has(sdk.CapabilityRecover)
	if pauseOK && recoverOK {
		// Nothing is undeclared; check the converse instead: a declared
		// capability never answers Unimplemented, even for a VM the
		// driver does not know.
		v := &vm{id: e.name + "-unknown", h: sdk.Handle(`{}`)}
		for call, err := range map[string]error{
			"Pause":  pause(e.ctx, in.Driver, v),
			"Resume": resume(e.ctx, in.Driver, v),
		} {
			if errors.Is(err, sdk.ErrUnsupported) {
				e.t.Errorf("%s answers Unimplemented although the driver declares pause: %v", call, err)
			}
		}
		if _, _, err := in.Driver.Recover(e.ctx, v.id, v.h); errors.Is(err, sdk.ErrUnsupported) {
			e.t.Errorf("Recover answers Unimplemented although the driver declares recover: %v", err)
		}
		return
	}

	// A running VM, when the guest allows, so that an undeclared call
	// has something it could wrongly act on.
	var v *vm
	if e.cfg.Guest.Kernel != "" {
		v = e.newVM(in, e.cfg.Guest.Initrd)
		e.start(in, v)
	} else {
		v = &vm{id: e.name + "-none", h: sdk.Handle(`{}`)}
	}

	want := func(call string, err error) {
		e.t.Helper()
		switch {
		case err == nil:
			e.t.Errorf("%s succeeded, but the driver does not declare the capability: "+
				"want an error wrapping sdk.ErrUnsupported (gRPC Unimplemented)", call)
		case !errors.Is(err, sdk.ErrUnsupported):
			e.t.Errorf("%s: %v; want sdk.ErrUnsupported (gRPC Unimplemented), got code %s",
				call, err, sdk.Code(err))
		}
	}
	if !pauseOK {
		want("Pause", pause(e.ctx, in.Driver, v))
		want("Resume", resume(e.ctx, in.Driver, v))
	}
	if !recoverOK {
		_, _, err := in.Driver.Recover(e.ctx, v.id, v.h)
		want("Recover", err)
	}
	if in.Exited != nil && in.Exited() {
		e.t.Errorf("the driver process ended during the calls")
	}
}
