package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
)

// fakeHyperd answers with its function fields; a nil field answers
// Unimplemented, as the embedded server does.
type fakeHyperd struct {
	apiv1.UnimplementedHyperdServer

	listDrivers func(*apiv1.ListDriversRequest) (*apiv1.ListDriversResponse, error)
	runVM       func(*apiv1.RunVMRequest) (*apiv1.RunVMResponse, error)
	listVMs     func(*apiv1.ListVMsRequest) (*apiv1.ListVMsResponse, error)
	getVM       func(*apiv1.GetVMRequest) (*apiv1.VM, error)
	stopVM      func(*apiv1.StopVMRequest) (*apiv1.VM, error)
	killVM      func(*apiv1.KillVMRequest) (*apiv1.VM, error)
	removeVM    func(*apiv1.RemoveVMRequest) (*apiv1.RemoveVMResponse, error)
	consoleLog  func(*apiv1.ConsoleLogRequest, apiv1.Hyperd_ConsoleLogServer) error
}

func (f *fakeHyperd) ListDrivers(ctx context.Context, r *apiv1.ListDriversRequest) (*apiv1.ListDriversResponse, error) {
	if f.listDrivers == nil {
		return f.UnimplementedHyperdServer.ListDrivers(ctx, r)
	}
	return f.listDrivers(r)
}

func (f *fakeHyperd) RunVM(ctx context.Context, r *apiv1.RunVMRequest) (*apiv1.RunVMResponse, error) {
	if f.runVM == nil {
		return f.UnimplementedHyperdServer.RunVM(ctx, r)
	}
	return f.runVM(r)
}

func (f *fakeHyperd) ListVMs(ctx context.Context, r *apiv1.ListVMsRequest) (*apiv1.ListVMsResponse, error) {
	if f.listVMs == nil {
		return f.UnimplementedHyperdServer.ListVMs(ctx, r)
	}
	return f.listVMs(r)
}

func (f *fakeHyperd) GetVM(ctx context.Context, r *apiv1.GetVMRequest) (*apiv1.VM, error) {
	if f.getVM == nil {
		return f.UnimplementedHyperdServer.GetVM(ctx, r)
	}
	return f.getVM(r)
}

func (f *fakeHyperd) StopVM(ctx context.Context, r *apiv1.StopVMRequest) (*apiv1.VM, error) {
	if f.stopVM == nil {
		return f.UnimplementedHyperdServer.StopVM(ctx, r)
	}
	return f.stopVM(r)
}

func (f *fakeHyperd) KillVM(ctx context.Context, r *apiv1.KillVMRequest) (*apiv1.VM, error) {
	if f.killVM == nil {
		return f.UnimplementedHyperdServer.KillVM(ctx, r)
	}
	return f.killVM(r)
}

func (f *fakeHyperd) RemoveVM(ctx context.Context, r *apiv1.RemoveVMRequest) (*apiv1.RemoveVMResponse, error) {
	if f.removeVM == nil {
		return f.UnimplementedHyperdServer.RemoveVM(ctx, r)
	}
	return f.removeVM(r)
}

func (f *fakeHyperd) ConsoleLog(r *apiv1.ConsoleLogRequest, s apiv1.Hyperd_ConsoleLogServer) error {
	if f.consoleLog == nil {
		return f.UnimplementedHyperdServer.ConsoleLog(r, s)
	}
	return f.consoleLog(r, s)
}

// serve starts f on a unix socket in a fresh directory and returns the
// socket's path.
func serve(t *testing.T, f *fakeHyperd) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "hyperd.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer()
	apiv1.RegisterHyperdServer(srv, f)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Serve returns nil after Stop; any other error fails a call anyway.
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return sock
}

type result struct {
	stdout, stderr string
	code           int
}

func runCLI(ctx context.Context, args ...string) result {
	var out, errOut bytes.Buffer
	code := execute(ctx, args, &out, &errOut)
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

func (r result) wantOK(t *testing.T) {
	t.Helper()
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q; want success", r.code, r.stderr)
	}
}

func TestRun(t *testing.T) {
	var mu sync.Mutex
	var got *apiv1.RunVMRequest
	sock := serve(t, &fakeHyperd{runVM: func(r *apiv1.RunVMRequest) (*apiv1.RunVMResponse, error) {
		mu.Lock()
		got = r
		mu.Unlock()
		return &apiv1.RunVMResponse{Vm: &apiv1.VM{Id: "vm-7f3a", State: "running"}}, nil
	}})
	lastRequest := func() *apiv1.RunVMRequest {
		mu.Lock()
		defer mu.Unlock()
		return got
	}
	dir := t.TempDir()
	t.Chdir(dir)

	t.Run("full spec", func(t *testing.T) {
		r := runCLI(t.Context(), "--socket", sock, "run",
			"--name", "web", "--driver", "qemu",
			"--kernel", "vmlinuz", "--initrd", "boot/initrd.img", "--cmdline", "console=ttyS0 quiet",
			"--memory", "1.5G", "--cpus", "2",
			"--disk", "root.img", "--disk", "/srv/seed.iso:ro",
			"--opt", "machine=q35", "--opt", "cpu=host")
		r.wantOK(t)
		if r.stdout != "vm-7f3a\n" {
			t.Fatalf("stdout = %q, want the id alone", r.stdout)
		}
		want := &apiv1.RunVMRequest{
			Driver: "qemu",
			Spec: &apiv1.VMSpec{
				Name:      "web",
				Vcpus:     2,
				MemoryMib: 1536,
				Kernel:    filepath.Join(dir, "vmlinuz"),
				Initrd:    filepath.Join(dir, "boot", "initrd.img"),
				Cmdline:   "console=ttyS0 quiet",
				Disks: []*apiv1.Disk{
					{Path: filepath.Join(dir, "root.img")},
					{Path: "/srv/seed.iso", ReadOnly: true},
				},
				Options: map[string]string{"machine": "q35", "cpu": "host"},
			},
		}
		if !proto.Equal(lastRequest(), want) {
			t.Fatalf("request = %v\nwant      %v", lastRequest(), want)
		}
	})

	t.Run("defaults", func(t *testing.T) {
		t.Setenv("HYPERD_SOCKET", sock)
		r := runCLI(t.Context(), "run", "--kernel", "/boot/vmlinuz")
		r.wantOK(t)
		want := &apiv1.RunVMRequest{Spec: &apiv1.VMSpec{Vcpus: 1, MemoryMib: 256, Kernel: "/boot/vmlinuz"}}
		if !proto.Equal(lastRequest(), want) {
			t.Fatalf("request = %v\nwant      %v", lastRequest(), want)
		}
	})
}

func TestServerErrorGoesToStderr(t *testing.T) {
	sock := serve(t, &fakeHyperd{runVM: func(*apiv1.RunVMRequest) (*apiv1.RunVMResponse, error) {
		return nil, status.Error(codes.InvalidArgument, "memory_mib: 1048576 exceeds the host's 64 GiB")
	}})

	r := runCLI(t.Context(), "--socket", sock, "run", "--memory", "1T")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	if r.stdout != "" {
		t.Fatalf("stdout = %q, want nothing", r.stdout)
	}
	want := "hyperctl: invalid argument: memory_mib: 1048576 exceeds the host's 64 GiB\n"
	if r.stderr != want {
		t.Fatalf("stderr = %q\nwant     %q", r.stderr, want)
	}
}

func TestUnreachableSocket(t *testing.T) {
	dir := t.TempDir()

	// A socket file nobody listens on any more refuses connections.
	stale := filepath.Join(dir, "stale.sock")
	lis, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	lis.SetUnlinkOnClose(false)
	if err := lis.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	for name, sock := range map[string]string{
		"missing": filepath.Join(dir, "nothing.sock"),
		"refused": stale,
	} {
		t.Run(name, func(t *testing.T) {
			for _, args := range [][]string{{"ls"}, {"drivers"}, {"stop", "web"}, {"logs", "-f", "web"}} {
				r := runCLI(t.Context(), append([]string{"--socket", sock}, args...)...)
				want := "hyperctl: cannot reach hyperd at " + sock +
					": is it running? (set --socket or HYPERD_SOCKET)\n"
				if r.code != 1 || r.stderr != want {
					t.Fatalf("%v: exit %d, stderr %q; want 1, %q", args, r.code, r.stderr, want)
				}
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"memory garbage", []string{"run", "--memory", "lots"}, `"--memory" flag: not a size`},
		{"memory zero", []string{"run", "--memory", "0"}, `"--memory" flag: must be more than zero`},
		{"memory negative", []string{"run", "--memory=-1G"}, `"--memory" flag: must be more than zero`},
		{"memory overflow", []string{"run", "--memory", "99999999999999999999G"}, `"--memory" flag: too large`},
		{"cpus zero", []string{"run", "--cpus", "0"}, `"--cpus" flag: must be at least 1`},
		{"opt", []string{"run", "--opt", "q35"}, `"--opt" flag: want KEY=VALUE`},
		{"stop timeout negative", []string{"stop", "--timeout=-5s", "web"}, `"--timeout" flag: must not be negative`},
		{"stop timeout garbage", []string{"stop", "--timeout", "soon", "web"}, `"--timeout" flag: not a duration`},
		{"bad output", []string{"ls", "-o", "yaml"}, "want text or json"},
		{"unknown flag", []string{"ls", "--all"}, "unknown flag: --all"},
		{"extra arg", []string{"ls", "web"}, `ls takes no arguments, got "web"`},
		{"missing id", []string{"stop"}, "missing VM id"},
		{"two ids to inspect", []string{"inspect", "a", "b"}, "inspect takes one VM id"},
		{"unknown command", []string{"lst"}, `unknown command "lst"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No daemon is needed: usage is checked before dialing.
			r := runCLI(t.Context(), append([]string{"--socket", "/nonexistent/h.sock"}, tt.args...)...)
			if r.code != 2 {
				t.Fatalf("exit %d, stderr %q; want 2", r.code, r.stderr)
			}
			if !strings.HasPrefix(r.stderr, "hyperctl: ") || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("stderr = %q, want hyperctl: ...%s", r.stderr, tt.want)
			}
		})
	}
}

func TestDrivers(t *testing.T) {
	sock := serve(t, &fakeHyperd{listDrivers: func(*apiv1.ListDriversRequest) (*apiv1.ListDriversResponse, error) {
		return &apiv1.ListDriversResponse{Drivers: []*apiv1.Driver{
			{Name: "xen", Error: "handshake: xl not found"},
			{Name: "qemu", Healthy: true, Version: "0.1.0", ContractVersion: 1,
				Capabilities: []string{"pause", "console"},
				Attributes:   map[string]string{"accelerator": "tcg"}},
		}}, nil
	}})

	r := runCLI(t.Context(), "--socket", sock, "drivers")
	r.wantOK(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want header and 2 drivers:\n%s", len(lines), r.stdout)
	}
	wantFields := [][]string{
		{"NAME", "HEALTHY", "VERSION", "CONTRACT", "ACCEL", "CAPABILITIES", "ERROR"},
		{"qemu", "yes", "0.1.0", "v1", "tcg", "pause,console", "-"},
		{"xen", "no", "-", "-", "-", "-", "handshake:", "xl", "not", "found"},
	}
	for i, want := range wantFields {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("line %d = %q, want fields %q", i, lines[i], want)
		}
	}

	r = runCLI(t.Context(), "--socket", sock, "drivers", "-o", "json")
	r.wantOK(t)
	var doc struct {
		Drivers []struct {
			Name    string `json:"name"`
			Healthy bool   `json:"healthy"`
			Error   string `json:"error"`
		} `json:"drivers"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	if len(doc.Drivers) != 2 || doc.Drivers[1].Name != "xen" || doc.Drivers[1].Error == "" {
		t.Fatalf("json drivers = %+v", doc.Drivers)
	}
}

func twoVMs() *apiv1.ListVMsResponse {
	created := timestamppb.New(time.Now().Add(-5 * time.Minute))
	return &apiv1.ListVMsResponse{Vms: []*apiv1.VM{
		{Id: "abd456", Driver: "qemu", State: "stopped", Reason: "guest powered off",
			CreatedAt: timestamppb.New(time.Now().Add(-time.Minute)), Spec: &apiv1.VMSpec{Name: "db"}},
		{Id: "abc123", Driver: "qemu", State: "running", Pid: 4242, CreatedAt: created,
			Spec: &apiv1.VMSpec{Name: "web", MemoryMib: 1024}},
	}}
}

func TestLs(t *testing.T) {
	sock := serve(t, &fakeHyperd{listVMs: func(*apiv1.ListVMsRequest) (*apiv1.ListVMsResponse, error) {
		return twoVMs(), nil
	}})

	r := runCLI(t.Context(), "--socket", sock, "ls")
	r.wantOK(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	wantFields := [][]string{
		{"ID", "NAME", "DRIVER", "STATE", "PID", "CREATED", "REASON"},
		{"abc123", "web", "qemu", "running", "4242", "5m", "ago", "-"},
		{"abd456", "db", "qemu", "stopped", "-", "1m", "ago", "guest", "powered", "off"},
	}
	if len(lines) != len(wantFields) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(wantFields), r.stdout)
	}
	for i, want := range wantFields {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("line %d = %q, want fields %q", i, lines[i], want)
		}
	}

	r = runCLI(t.Context(), "--socket", sock, "ls", "-q")
	r.wantOK(t)
	if r.stdout != "abc123\nabd456\n" {
		t.Fatalf("ls -q = %q", r.stdout)
	}

	r = runCLI(t.Context(), "--socket", sock, "ls", "-o", "json")
	r.wantOK(t)
	var doc struct {
		VMs []struct {
			ID    string `json:"id"`
			State string `json:"state"`
			Spec  struct {
				MemoryMiB string `json:"memory_mib"`
			} `json:"spec"`
		} `json:"vms"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	if len(doc.VMs) != 2 || doc.VMs[0].ID != "abc123" || doc.VMs[0].Spec.MemoryMiB != "1024" {
		t.Fatalf("json vms = %+v", doc.VMs)
	}
}

func TestStopResolvesNames(t *testing.T) {
	var mu sync.Mutex
	var got []*apiv1.StopVMRequest
	sock := serve(t, &fakeHyperd{
		listVMs: func(*apiv1.ListVMsRequest) (*apiv1.ListVMsResponse, error) { return twoVMs(), nil },
		stopVM: func(r *apiv1.StopVMRequest) (*apiv1.VM, error) {
			mu.Lock()
			got = append(got, r)
			mu.Unlock()
			if r.GetId() != "abc123" {
				return nil, status.Errorf(codes.NotFound, "vm %q", r.GetId())
			}
			return &apiv1.VM{Id: r.GetId(), State: "stopped", Reason: "guest powered off"}, nil
		},
	})

	r := runCLI(t.Context(), "--socket", sock, "stop", "--timeout", "45s", "web")
	r.wantOK(t)
	if r.stdout != "abc123 stopped (guest powered off)\n" {
		t.Fatalf("stdout = %q", r.stdout)
	}
	mu.Lock()
	last := got[len(got)-1]
	mu.Unlock()
	if last.GetId() != "abc123" || last.GetTimeout().AsDuration() != 45*time.Second {
		t.Fatalf("request = %v, want id abc123, timeout 45s", last)
	}

	r = runCLI(t.Context(), "--socket", sock, "stop", "abc")
	r.wantOK(t)
	mu.Lock()
	last = got[len(got)-1]
	mu.Unlock()
	if last.GetTimeout() != nil {
		t.Fatalf("timeout = %v, want none so hyperd picks its default", last.GetTimeout())
	}

	r = runCLI(t.Context(), "--socket", sock, "stop", "ab")
	if r.code != 1 || !strings.Contains(r.stderr, `"ab" matches 2 VMs: abc123 (web), abd456 (db)`) {
		t.Fatalf("ambiguous: exit %d, stderr %q", r.code, r.stderr)
	}

	// With several VMs a failure is reported and the others still stop.
	r = runCLI(t.Context(), "--socket", sock, "stop", "db", "web")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	if r.stderr != "hyperctl: db: not found: vm \"abd456\"\n" {
		t.Fatalf("stderr = %q", r.stderr)
	}
	if r.stdout != "abc123 stopped (guest powered off)\n" {
		t.Fatalf("stdout = %q", r.stdout)
	}
}

func TestRmForce(t *testing.T) {
	var removed []string
	var mu sync.Mutex
	sock := serve(t, &fakeHyperd{
		listVMs: func(*apiv1.ListVMsRequest) (*apiv1.ListVMsResponse, error) { return twoVMs(), nil },
		killVM: func(r *apiv1.KillVMRequest) (*apiv1.VM, error) {
			if r.GetId() == "abd456" {
				return nil, status.Error(codes.FailedPrecondition, "vm is stopped")
			}
			return &apiv1.VM{Id: r.GetId(), State: "stopped"}, nil
		},
		removeVM: func(r *apiv1.RemoveVMRequest) (*apiv1.RemoveVMResponse, error) {
			mu.Lock()
			removed = append(removed, r.GetId())
			mu.Unlock()
			return &apiv1.RemoveVMResponse{}, nil
		},
	})

	r := runCLI(t.Context(), "--socket", sock, "rm", "--force", "web", "db")
	r.wantOK(t)
	if r.stdout != "abc123\nabd456\n" {
		t.Fatalf("stdout = %q", r.stdout)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(removed, " ") != "abc123 abd456" {
		t.Fatalf("removed %v", removed)
	}
}

func TestInspect(t *testing.T) {
	sock := serve(t, &fakeHyperd{
		listVMs: func(*apiv1.ListVMsRequest) (*apiv1.ListVMsResponse, error) { return twoVMs(), nil },
		getVM: func(r *apiv1.GetVMRequest) (*apiv1.VM, error) {
			return &apiv1.VM{Id: r.GetId(), Driver: "qemu", ContractVersion: 1, State: "running",
				Spec: &apiv1.VMSpec{Name: "web", Vcpus: 2, MemoryMib: 1024, Kernel: "/boot/vmlinuz",
					Disks: []*apiv1.Disk{{Path: "/srv/seed.iso", ReadOnly: true}}}}, nil
		},
	})

	r := runCLI(t.Context(), "--socket", sock, "inspect", "web")
	r.wantOK(t)
	for _, want := range []string{
		"ID:", "abc123", "Driver:", "qemu (contract v1)", "State:", "running",
		"Memory:", "1G", "vCPUs:", "2", "Disk 0:", "/srv/seed.iso (read-only)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = runCLI(t.Context(), "--socket", sock, "inspect", "-o", "json", "web")
	r.wantOK(t)
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	if doc["id"] != "abc123" || doc["state"] != "running" || doc["contract_version"] != float64(1) {
		t.Fatalf("json = %v", doc)
	}
}

// cancelOnWrite cancels a context at the first write, as Ctrl-C would
// once output appears.
type cancelOnWrite struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel()
	return w.buf.Write(p)
}

func TestLogs(t *testing.T) {
	var followed atomic.Bool
	sock := serve(t, &fakeHyperd{
		listVMs: func(*apiv1.ListVMsRequest) (*apiv1.ListVMsResponse, error) { return twoVMs(), nil },
		consoleLog: func(r *apiv1.ConsoleLogRequest, s apiv1.Hyperd_ConsoleLogServer) error {
			if r.GetId() != "abc123" {
				return status.Errorf(codes.NotFound, "vm %q", r.GetId())
			}
			followed.Store(r.GetFollow())
			for _, line := range []string{"Booting Linux\n", "login: "} {
				if err := s.Send(&apiv1.ConsoleChunk{Data: []byte(line)}); err != nil {
					return err
				}
			}
			if r.GetFollow() {
				<-s.Context().Done()
			}
			return nil
		},
	})

	r := runCLI(t.Context(), "--socket", sock, "logs", "web")
	r.wantOK(t)
	if r.stdout != "Booting Linux\nlogin: " {
		t.Fatalf("stdout = %q", r.stdout)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	out := &cancelOnWrite{cancel: cancel}
	var errOut bytes.Buffer
	code := execute(ctx, []string{"--socket", sock, "logs", "-f", "abc"}, out, &errOut)
	if code != 0 || errOut.Len() != 0 {
		t.Fatalf("logs -f interrupted: exit %d, stderr %q; want 0 and nothing", code, errOut.String())
	}
	if !strings.HasPrefix(out.buf.String(), "Booting Linux") || !followed.Load() {
		t.Fatalf("stdout = %q, followed = %v", out.buf.String(), followed.Load())
	}

	r = runCLI(t.Context(), "--socket", sock, "logs", "nope")
	if r.code != 1 || r.stderr != "hyperctl: not found: vm \"nope\"\n" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestInterruptedCall(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	sock := serve(t, &fakeHyperd{listVMs: func(*apiv1.ListVMsRequest) (*apiv1.ListVMsResponse, error) {
		<-release
		return &apiv1.ListVMsResponse{}, nil
	}})

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	r := runCLI(ctx, "--socket", sock, "ls")
	if r.code != 130 || r.stderr != "hyperctl: interrupted\n" {
		t.Fatalf("exit %d, stderr %q; want 130, interrupted", r.code, r.stderr)
	}

	r = runCLI(t.Context(), "--socket", sock, "--request-timeout", "100ms", "ls")
	if r.code != 1 || !strings.Contains(r.stderr, "no answer from hyperd at "+sock+" within 100ms") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestHelp(t *testing.T) {
	r := runCLI(t.Context(), "--help")
	r.wantOK(t)
	if !strings.Contains(r.stdout, "hyperctl is the operator's command line for hyperd") {
		t.Fatalf("--help does not say what hyperctl is:\n%s", r.stdout)
	}

	r = runCLI(t.Context())
	r.wantOK(t)
	if !strings.Contains(r.stdout, "Usage:") {
		t.Fatalf("no arguments should print help, got %q", r.stdout)
	}

	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("%q lacks Short, Long or Example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(os.Stdout, os.Stderr))
}
