package testguest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// ReadyLine is the serial console line the guest prints once it is up and
// listening for the power button. The stubborn guest prints ReadyLine
// followed by " stubborn" on the same line.
const ReadyLine = "HYPERD-GUEST-READY"

// Cmdline is the kernel command line the guest expects: its messages on
// the first serial port, and a reboot (an exit, under QEMU's -no-reboot)
// instead of a hang on a kernel panic.
const Cmdline = "console=ttyS0 panic=-1 quiet"

// EnvDir names the environment variable that, when set, points to a
// directory already holding vmlinuz, initrd.img and initrd-stubborn.img;
// Build then uses it and builds nothing. A set but incomplete directory
// fails the test rather than being silently rebuilt.
const EnvDir = "HYPERD_GUEST_DIR"

// exitUnavailable is build.sh's exit status when a Debian package the
// guest is made of is missing (EX_UNAVAILABLE from sysexits.h).
const exitUnavailable = 69

// Paths locates one built guest. All three files always exist together.
type Paths struct {
	// Kernel is Debian's kernel image, for QEMU's -kernel.
	Kernel string
	// Initrd is the normal guest, which powers off on the power button.
	Initrd string
	// StubbornInitrd is the guest that ignores the power button, so that a
	// graceful stop must escalate to a kill.
	StubbornInitrd string
}

var (
	once       sync.Once
	built      Paths
	skipReason string
	buildErr   error
)

// Build returns the guest's files, building them on its first call in the
// test process; later calls return the same paths or the same failure. It
// skips t only when busybox-static or the kernel is missing on the host,
// naming the Debian package, and fails t on any other error.
func Build(t testing.TB) Paths {
	t.Helper()

	// t is not used inside once: a Skip or Fatal there would end only the
	// first caller, and the others would see empty paths.
	once.Do(func() { built, skipReason, buildErr = build() })
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// pathsIn names the guest files inside dir.
func pathsIn(dir string) Paths {
	return Paths{
		Kernel:         filepath.Join(dir, "vmlinuz"),
		Initrd:         filepath.Join(dir, "initrd.img"),
		StubbornInitrd: filepath.Join(dir, "initrd-stubborn.img"),
	}
}

// check reports the first of p's files that is missing or empty.
func (p Paths) check() error {
	for _, f := range []string{p.Kernel, p.Initrd, p.StubbornInitrd} {
		st, err := os.Stat(f)
		if err != nil {
			return fmt.Errorf("guest file: %w", err)
		}
		if !st.Mode().IsRegular() || st.Size() == 0 {
			return fmt.Errorf("guest file %s: empty or not a regular file", f)
		}
	}
	return nil
}

// build returns the guest from EnvDir, from the cache, or from a fresh
// run of build.sh. A non-empty skip means the host lacks a package.
func build() (p Paths, skip string, err error) {
	if dir := os.Getenv(EnvDir); dir != "" {
		p = pathsIn(dir)
		if err := p.check(); err != nil {
			return Paths{}, "", fmt.Errorf("%s=%s: %w", EnvDir, dir, err)
		}
		return p, "", nil
	}

	root, err := moduleRoot()
	if err != nil {
		return Paths{}, "", err
	}
	script := filepath.Join(root, "guest", "build.sh")

	cache, err := cacheDir()
	if err != nil {
		return Paths{}, "", err
	}
	key, err := inputsKey(script)
	if err != nil {
		return Paths{}, "", err
	}
	final := filepath.Join(cache, key)
	if p = pathsIn(final); p.check() == nil {
		return p, "", nil
	}

	tmp, err := os.MkdirTemp(cache, "build-")
	if err != nil {
		return Paths{}, "", fmt.Errorf("guest build dir: %w", err)
	}
	out, err := exec.Command("bash", script, tmp).CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(tmp) // best effort: a failed build leaves nothing to reuse
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) && exitErr.ExitCode() == exitUnavailable {
			return Paths{}, strings.TrimSpace(string(out)), nil
		}
		return Paths{}, "", fmt.Errorf("run %s: %w\n%s", script, err, out)
	}

	// The rename publishes a complete build atomically. Another test
	// process may have published the same key first; its files are equal
	// to ours, so use them and drop ours.
	if err := os.Rename(tmp, final); err != nil {
		_ = os.RemoveAll(tmp) // best effort: only a duplicate is lost
		if p = pathsIn(final); p.check() == nil {
			return p, "", nil
		}
		return Paths{}, "", fmt.Errorf("publish guest build %s: %w", final, err)
	}
	p = pathsIn(final)
	return p, "", p.check()
}

// moduleRoot walks up from the working directory, which go test sets to
// the package's folder, to the folder holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// cacheDir returns this user's private cache folder in the temporary
// directory. It refuses a folder another user made or a symlink, since the
// temporary directory is shared and the guest's files end up as a VM's
// kernel and initrd.
func cacheDir() (string, error) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("hyperd-testguest-%d", os.Getuid()))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("guest cache: %w", err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("guest cache: %w", err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !st.IsDir() || !ok || int(sys.Uid) != os.Getuid() || st.Mode().Perm()&0o022 != 0 {
		return "", fmt.Errorf("guest cache %s: not a directory private to uid %d",
			dir, os.Getuid())
	}
	return dir, nil
}

// inputsKey hashes what the build depends on: the script itself, the
// environment it reads, and the identity (name, size, time) of busybox,
// the kernels and their module lists. A change to any of them gives a new
// key, hence a new build.
func inputsKey(script string) (string, error) {
	h := sha256.New()
	src, err := os.ReadFile(script)
	if err != nil {
		return "", fmt.Errorf("read guest build script: %w", err)
	}
	h.Write(src)

	for _, env := range []string{"KERNEL_VERSION", "BUSYBOX", "SOURCE_DATE_EPOCH"} {
		fmt.Fprintf(h, "\x00%s=%s", env, os.Getenv(env))
	}

	busybox := os.Getenv("BUSYBOX")
	if busybox == "" {
		busybox = "/bin/busybox"
	}
	files := []string{busybox}
	for _, pattern := range []string{"/boot/vmlinuz-*", "/lib/modules/*/modules.dep"} {
		// Glob fails only on a malformed pattern, and these are constant.
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	sort.Strings(files[1:])
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			fmt.Fprintf(h, "\x00%s missing", f)
			continue
		}
		fmt.Fprintf(h, "\x00%s %d %d", f, st.Size(), st.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
