package sdk

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The error categories of the contract. A driver wraps one with %w; it
// crosses the wire as the gRPC code beside it, and the host-side Client
// turns the code back into the same sentinel, so errors.Is works on both
// sides.
var (
	// ErrInvalidSpec: the spec or an argument is wrong (InvalidArgument).
	ErrInvalidSpec = errors.New("invalid spec")
	// ErrWrongState: the VM is not in a state that allows the call
	// (FailedPrecondition).
	ErrWrongState = errors.New("wrong state")
	// ErrUnsupported: the driver did not declare the capability the call
	// needs (Unimplemented).
	ErrUnsupported = errors.New("not supported by this driver")
	// ErrNotFound: the driver knows no such VM (NotFound).
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: the backend or the driver cannot be reached now
	// (Unavailable).
	ErrUnavailable = errors.New("unavailable")
)

var sentinelCodes = []struct {
	err  error
	code codes.Code
}{
	{ErrInvalidSpec, codes.InvalidArgument},
	{ErrWrongState, codes.FailedPrecondition},
	{ErrUnsupported, codes.Unimplemented},
	{ErrNotFound, codes.NotFound},
	{ErrUnavailable, codes.Unavailable},
}

// InvalidSpec returns an error wrapping ErrInvalidSpec that names the
// field at fault and says how to fix it.
func InvalidSpec(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidSpec, field, fmt.Sprintf(format, args...))
}

// toStatus turns a driver's error into a gRPC status error.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, s := range sentinelCodes {
		if errors.Is(err, s.err) {
			return status.Error(s.code, err.Error())
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

// fromStatus turns a gRPC error from a driver back into an error that
// wraps the matching sentinel, keeping the driver's message.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, s := range sentinelCodes {
		if st.Code() == s.code {
			return &wireError{msg: st.Message(), sentinel: s.err}
		}
	}
	switch st.Code() {
	case codes.DeadlineExceeded:
		return &wireError{msg: st.Message(), sentinel: context.DeadlineExceeded}
	case codes.Canceled:
		return &wireError{msg: st.Message(), sentinel: context.Canceled}
	}
	return errors.New(st.Message())
}

// wireError keeps a remote message verbatim while matching its sentinel.
type wireError struct {
	msg      string
	sentinel error
}

func (e *wireError) Error() string { return e.msg }

func (e *wireError) Unwrap() error { return e.sentinel }

// Code returns the gRPC code an error maps to at the plugin boundary.
func Code(err error) codes.Code {
	return status.Code(toStatus(err))
}
