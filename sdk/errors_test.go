package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hyperd/hyperd/sdk"
)

func TestCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"nil", nil, codes.OK},
		{"invalid_spec", sdk.InvalidSpec("memory_mib", "must be at least %d", 64), codes.InvalidArgument},
		{"wrong_state", fmt.Errorf("start vm vm-1: %w", sdk.ErrWrongState), codes.FailedPrecondition},
		{"unsupported", fmt.Errorf("pause: %w", sdk.ErrUnsupported), codes.Unimplemented},
		{"not_found", fmt.Errorf("status of vm vm-1: %w", sdk.ErrNotFound), codes.NotFound},
		{"unavailable", fmt.Errorf("dial qmp: %w", sdk.ErrUnavailable), codes.Unavailable},
		{
			"wrapped_twice",
			fmt.Errorf("recover vm vm-1: %w", fmt.Errorf("read pid file: %w", sdk.ErrNotFound)),
			codes.NotFound,
		},
		{"joined", errors.Join(errors.New("qmp closed"), sdk.ErrUnavailable), codes.Unavailable},
		{"bare_sentinel", sdk.ErrWrongState, codes.FailedPrecondition},
		{"deadline", fmt.Errorf("wait for qmp: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{"canceled", fmt.Errorf("boot: %w", context.Canceled), codes.Canceled},
		{"plain", errors.New("exit status 1"), codes.Unknown},
		{"grpc_status_kept", status.Error(codes.ResourceExhausted, "no memory"), codes.ResourceExhausted},
		{
			"wrapped_grpc_status_kept",
			fmt.Errorf("call agent: %w", status.Error(codes.Aborted, "raced")),
			codes.Aborted,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sdk.Code(tt.err); got != tt.want {
				t.Errorf("Code(%v) = %s, want %s", tt.err, got, tt.want)
			}
		})
	}
}
