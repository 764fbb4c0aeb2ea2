package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestAPIErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		code codes.Code
		msg  string
		want string
	}{
		{"invalid argument", codes.InvalidArgument, "memory_mib: must be more than zero",
			"invalid argument: memory_mib: must be more than zero"},
		{"not found", codes.NotFound, `vm "x"`, `not found: vm "x"`},
		{"wrong state", codes.FailedPrecondition, "vm is stopped",
			"not possible in this state: vm is stopped"},
		{"unsupported", codes.Unimplemented, "driver xen cannot pause",
			"not supported: driver xen cannot pause"},
		{"unavailable", codes.Unavailable, "driver qemu is restarting",
			"unavailable: driver qemu is restarting"},
		{"unknown keeps message", codes.Unknown, "boom", "boom"},
		{"unknown without message", codes.Unknown, "", "unknown error from hyperd"},
		{"code without message", codes.NotFound, "", "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &client{socket: "/s"}
			err := c.check(context.Background(), status.Error(tt.code, tt.msg))
			if got := err.Error(); got != tt.want {
				t.Fatalf("message = %q, want %q", got, tt.want)
			}
			if !isCode(fmt.Errorf("wrapped: %w", err), tt.code) {
				t.Fatalf("isCode lost code %v through wrapping", tt.code)
			}
		})
	}
}

func TestCheckClassifies(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	t.Run("dial failure makes unavailable unreachable", func(t *testing.T) {
		c := &client{socket: "/s", dialErr: syscall.ENOENT}
		err := c.check(context.Background(), status.Error(codes.Unavailable, "connection error"))
		var u *unreachableError
		if !errors.As(err, &u) {
			t.Fatalf("got %T %v, want *unreachableError", err, err)
		}
	})
	t.Run("unavailable from hyperd stays an api error", func(t *testing.T) {
		c := &client{socket: "/s"}
		err := c.check(context.Background(), status.Error(codes.Unavailable, "driver restarting"))
		if !isCode(err, codes.Unavailable) {
			t.Fatalf("got %T %v, want apiError Unavailable", err, err)
		}
	})
	t.Run("cancelled context is an interruption", func(t *testing.T) {
		c := &client{socket: "/s"}
		err := c.check(cancelled, status.Error(codes.Canceled, "context canceled"))
		if !errors.Is(err, errInterrupted) {
			t.Fatalf("got %v, want errInterrupted", err)
		}
	})
	t.Run("non-status error passes through", func(t *testing.T) {
		c := &client{socket: "/s"}
		in := errors.New("plain")
		if err := c.check(context.Background(), in); err != in {
			t.Fatalf("got %v, want %v", err, in)
		}
	})
}

func TestUnreachableMessage(t *testing.T) {
	const hint = "cannot reach hyperd at /run/h.sock: is it running? (set --socket or HYPERD_SOCKET)"
	dialErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "unix",
			Err: &os.SyscallError{Syscall: "connect", Err: errno}}
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"missing", dialErr(syscall.ENOENT), hint},
		{"refused", dialErr(syscall.ECONNREFUSED), hint},
		{"permission", dialErr(syscall.EACCES),
			"cannot reach hyperd at /run/h.sock: permission denied " +
				"(the socket's file mode decides who may use hyperd)"},
		{"not a socket", dialErr(syscall.ENOTSOCK),
			"cannot reach hyperd at /run/h.sock: socket operation on non-socket " +
				"(set --socket or HYPERD_SOCKET)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &unreachableError{socket: "/run/h.sock", err: tt.err}
			if got := e.Error(); got != tt.want {
				t.Fatalf("message = %q\nwant      %q", got, tt.want)
			}
		})
	}
}
