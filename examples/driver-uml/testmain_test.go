package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// repoRoot is the hyperd checkout this module replaces its dependency
// with.
const repoRoot = "../.."

// guestDirEnv names a directory that already holds the test guest
// (vmlinuz, initrd.img, initrd-stubborn.img), as `make test` builds it.
const guestDirEnv = "HYPERD_GUEST_DIR"

// needUML skips the test when the host lacks UML: Debian's
// user-mode-linux and uml-utilities, which scripts/install-deps.sh
// installs.
func needUML(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots UML guests; skipped with -short")
	}
	if _, err := os.Stat(defaultKernel); err != nil {
		t.Skipf("no UML kernel (%v): install Debian package user-mode-linux", err)
	}
	if _, err := exec.LookPath(mconsoleTool); err != nil {
		t.Skipf("no %s: install Debian package uml-utilities", mconsoleTool)
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// driverBinary builds this driver once per test run as
// DIR/hyperd-driver-uml and returns its path.
func driverBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "hyperd-uml-build-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, "hyperd-driver-"+driverName), ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New("go build: " + err.Error() + ": " + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "hyperd-driver-"+driverName)
}

// guest returns the directory of the busybox test guest: $HYPERD_GUEST_DIR,
// or one built by hyperd's guest/build.sh. Only its initrds matter here:
// UML brings its own kernel.
func guest(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv(guestDirEnv); dir != "" {
		return dir
	}
	dir := t.TempDir()
	out, err := exec.Command(filepath.Join(repoRoot, "guest", "build.sh"), dir).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 69 {
		t.Skipf("cannot build the test guest: %s", out)
	}
	if err != nil {
		t.Fatalf("guest/build.sh: %v: %s", err, out)
	}
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}
