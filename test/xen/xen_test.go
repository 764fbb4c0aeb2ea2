package xentest

import (
	"bufio"
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hyperd/hyperd/internal/testguest"
)

const (
	// runTimeout bounds the whole nested boot and test. QEMU runs about
	// four minutes on a loaded 2-core host: dom0check's own steps one,
	// the e2e lifecycle body one and a half, the conformance suite two.
	runTimeout = 9 * time.Minute
	// exitUnavailable is build-dom0.sh's exit status for a missing
	// Debian package.
	exitUnavailable = 69

	xenCmdline = "console=com1 com1=115200,8n1 dom0_mem=512M,max:512M dom0_max_vcpus=1 " +
		"loglvl=warning guest_loglvl=warning"
	dom0Cmdline = "console=hvc0 earlyprintk=xen panic=-1 loglevel=4"
)

// resultRE matches a step's result line from dom0check or dom0's init.
var resultRE = regexp.MustCompile(`^=== XEN-TEST (\S+) (PASS|FAIL|SKIP)\b ?(.*)$`)

// doneRE matches dom0's last line before it powers off.
var doneRE = regexp.MustCompile(`^=== XEN-TEST DONE$`)

func done(serial []string) bool {
	for _, l := range serial {
		if doneRE.MatchString(l) {
			return true
		}
	}
	return false
}

type result struct {
	step, verdict, detail string
}

func TestNestedXen(t *testing.T) {
	if testing.Short() {
		t.Skip("boots Xen nested under QEMU: minutes of CPU; not in -short")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not found: install Debian's qemu-system-x86 (make deps)")
	}
	g := testguest.Build(t)

	work := t.TempDir()
	if keep := os.Getenv("HYPERD_XEN_KEEP"); keep != "" {
		work = keep
		if err := os.MkdirAll(work, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	share := filepath.Join(work, "share")
	bin := filepath.Join(share, "bin")
	buildBinaries(t, bin)
	buildE2E(t, bin)
	buildImages(t, work, share, filepath.Dir(g.Kernel))

	results, serial := boot(t, qemu, work, share)
	if !done(serial) {
		t.Errorf("dom0 never reported DONE; serial console ends:\n%s", tail(serial, 60))
	}
	failed := false
	for _, step := range requiredSteps {
		if !slices.ContainsFunc(results, func(r result) bool { return r.step == step }) {
			failed = true
			t.Errorf("dom0 reported no %s line", step)
		}
	}
	for _, r := range results {
		t.Run(r.step, func(t *testing.T) {
			switch r.verdict {
			case "FAIL":
				failed = true
				t.Error(r.detail)
			case "SKIP":
				t.Skip(r.detail)
			default:
				t.Log(r.detail)
			}
		})
	}
	if failed {
		t.Logf("serial console ends:\n%s", tail(serial, 80))
	}
}

// requiredSteps are the result lines a complete run prints: the e2e
// lifecycle body's verdict for the xen driver and the conformance
// suite's summary. Their absence fails the test, as a FAIL does.
var requiredSteps = []string{"DOM0", "E2E/TestLifecycle/xen", "CONFORMANCE"}

// buildBinaries builds the programs dom0 runs. They are static (no cgo),
// so dom0's initrd needs no libraries for them.
func buildBinaries(t *testing.T, bin string) {
	t.Helper()
	pkgs := map[string]string{
		"hyperd":                    "github.com/hyperd/hyperd/cmd/hyperd",
		"hyperctl":                  "github.com/hyperd/hyperd/cmd/hyperctl",
		"plugins/hyperd-driver-xen": "github.com/hyperd/hyperd/plugins/xen/cmd/hyperd-driver-xen",
		"xen-dom0-check":            "github.com/hyperd/hyperd/test/xen/dom0check",
	}
	for out, pkg := range pkgs {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(bin, out), pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
		mustBeStatic(t, filepath.Join(bin, out))
	}
}

// buildE2E compiles the e2e package's tests as bin/e2e.test, which dom0
// runs for the xen driver's lifecycle body.
func buildE2E(t *testing.T, bin string) {
	t.Helper()
	out := filepath.Join(bin, "e2e.test")
	cmd := exec.Command("go", "test", "-c", "-trimpath", "-o", out, "github.com/hyperd/hyperd/e2e")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test -c ./e2e: %v\n%s", err, b)
	}
	mustBeStatic(t, out)
}

// mustBeStatic fails t unless the ELF file at path asks for no dynamic
// loader: dom0's initrd has no libraries for hyperd's programs.
func mustBeStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s is dynamically linked; dom0 runs static binaries only", path)
		}
	}
}

func buildImages(t *testing.T, work, share, guestDir string) {
	t.Helper()
	cmd := exec.Command("./build-dom0.sh", work, share, guestDir)
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == exitUnavailable {
		t.Skip(strings.TrimSpace(string(b)))
	}
	if err != nil {
		t.Fatalf("build-dom0.sh: %v\n%s", err, b)
	}
	t.Logf("%s", strings.TrimSpace(string(b)))
}

// boot runs QEMU until dom0 powers the machine off, runTimeout passes or
// the test ends, and returns the result lines and the serial output. QEMU
// is always killed and reaped before it returns.
func boot(t *testing.T, qemu, work, share string) ([]result, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()

	dom0 := dom0Cmdline
	if os.Getenv("HYPERD_XEN_PVH") != "0" {
		dom0 += " xentest.pvh=1"
	}
	cmd := exec.CommandContext(ctx, qemu,
		"-accel", "tcg", "-M", "pc",
		// -cpu max crashes dom0; PVH guests need the nested NPT, since
		// Debian's Xen has no shadow paging.
		"-cpu", "qemu64,+svm,+npt", "-m", "2048", "-smp", "1",
		// A crashed Xen or dom0 reboots; -no-reboot makes that an exit
		// the test sees at once instead of a boot loop.
		"-no-reboot", "-display", "none", "-monitor", "none", "-nic", "none",
		"-serial", "stdio",
		"-fsdev", "local,id=share,path="+share+",security_model=none,readonly=on",
		"-device", "virtio-9p-pci,fsdev=share,mount_tag=hostshare",
		"-kernel", filepath.Join(work, "xen"), "-append", xenCmdline,
		"-initrd", filepath.Join(work, "vmlinuz")+" "+dom0+","+filepath.Join(work, "dom0-initrd.gz"),
	)
	cmd.Stdin = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr

	logf, err := os.Create(filepath.Join(work, "serial.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()

	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", qemu, err)
	}
	// Read everything QEMU prints; Wait closes the pipe after QEMU ends.
	var results []result
	var serial []string
	sc := bufio.NewScanner(io.TeeReader(stdout, logf))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		serial = append(serial, line)
		if m := resultRE.FindStringSubmatch(line); m != nil {
			results = append(results, result{step: m[1], verdict: m[2], detail: m[3]})
			t.Logf("%6.1fs %s", time.Since(start).Seconds(), line)
		}
	}
	werr := cmd.Wait()
	t.Logf("qemu ran %.1fs: %v", time.Since(start).Seconds(), werr)
	if ctx.Err() != nil {
		t.Errorf("nested Xen run killed after %s", runTimeout)
	} else if werr != nil {
		t.Errorf("qemu: %v: %s", werr, strings.TrimSpace(stderr.String()))
	}
	return results, serial
}

func tail(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
