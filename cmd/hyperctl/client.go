package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	apiv1 "github.com/hyperd/hyperd/api/hyperd/v1"
)

var (
	// errInterrupted means a signal cancelled the call; hyperctl exits 130.
	errInterrupted = errors.New("interrupted")
	// errReported means the failures were printed already; hyperctl exits 1.
	errReported = errors.New("failures reported")
)

// client is one connection to hyperd for one hyperctl invocation.
type client struct {
	api            apiv1.HyperdClient
	conn           *grpc.ClientConn
	socket         string
	requestTimeout time.Duration

	// vms caches ListVMs for resolving names and id prefixes.
	vms []*apiv1.VM

	// mu guards dialErr, written by gRPC's dialing goroutine.
	mu sync.Mutex
	// dialErr is the last failure to connect to the socket, nil once a
	// connection succeeds. It tells "hyperd is not there" apart from
	// hyperd itself answering Unavailable, without reading messages.
	dialErr error
}

// dial prepares a client; gRPC connects on the first call.
func (a *app) dial() (*client, error) {
	if a.socket == "" {
		return nil, errors.New("--socket is empty")
	}
	c := &client{socket: a.socket, requestTimeout: time.Duration(a.requestTimeout)}

	// The dialer ignores the address gRPC resolved: it is our path anyway,
	// and dialing here lets us keep the error.
	conn, err := grpc.NewClient("unix:"+a.socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(c.dialUnix),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to hyperd at %s: %w", a.socket, err)
	}
	c.conn = conn
	c.api = apiv1.NewHyperdClient(conn)
	return c, nil
}

func (c *client) close() {
	// Close fails only when already closed; nothing is lost either way.
	_ = c.conn.Close()
}

func (c *client) dialUnix(ctx context.Context, _ string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)

	c.mu.Lock()
	c.dialErr = err
	c.mu.Unlock()
	return conn, err
}

func (c *client) lastDialErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dialErr
}

// call makes one unary call bounded by --request-timeout and turns its
// error into one fit for an operator.
func call[Req, Resp any](
	ctx context.Context,
	c *client,
	rpc func(context.Context, Req, ...grpc.CallOption) (Resp, error),
	req Req,
) (Resp, error) {
	if c.requestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.requestTimeout)
		defer cancel()
	}
	resp, err := rpc(ctx, req)
	return resp, c.check(ctx, err)
}

// check maps an error from a call made with ctx: a socket nobody answers
// on becomes unreachableError, a cancelled or timed-out context says so,
// and any other gRPC status becomes an apiError without gRPC's prefix.
func (c *client) check(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}

	switch code := st.Code(); {
	case code == codes.Unavailable && c.lastDialErr() != nil:
		return &unreachableError{socket: c.socket, err: c.lastDialErr()}
	case code == codes.Canceled && errors.Is(ctx.Err(), context.Canceled):
		return errInterrupted
	case code == codes.DeadlineExceeded && deadlinePassed(ctx):
		return fmt.Errorf("no answer from hyperd at %s within %s (see --request-timeout); the request may still complete, so check hyperctl ls",
			c.socket, c.requestTimeout)
	}
	return &apiError{code: st.Code(), msg: st.Message()}
}

// deadlinePassed reports whether ctx's deadline is behind us. gRPC can
// report DeadlineExceeded, from hyperd cancelling the call at the deadline
// it was sent, an instant before ctx's own timer marks ctx done.
func deadlinePassed(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return errors.Is(ctx.Err(), context.DeadlineExceeded) || ok && !time.Now().Before(d)
}

// unreachableError means nothing accepted a connection on the socket.
type unreachableError struct {
	socket string
	err    error
}

func (e *unreachableError) Error() string {
	switch {
	case errors.Is(e.err, fs.ErrPermission):
		return fmt.Sprintf("cannot reach hyperd at %s: permission denied "+
			"(the socket's file mode decides who may use hyperd)", e.socket)
	case errors.Is(e.err, fs.ErrNotExist), errors.Is(e.err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot reach hyperd at %s: is it running? "+
			"(set --socket or HYPERD_SOCKET)", e.socket)
	}

	// The dialer's error repeats the path; the bare errno reads better.
	cause := e.err
	var errno syscall.Errno
	if errors.As(e.err, &errno) {
		cause = errno
	}
	return fmt.Sprintf("cannot reach hyperd at %s: %v (set --socket or HYPERD_SOCKET)",
		e.socket, cause)
}

func (e *unreachableError) Unwrap() error { return e.err }

// apiError is an error status from hyperd. It prints the status message
// after a few words for its code, so "invalid argument: memory_mib: ..."
// rather than gRPC's "rpc error: code = InvalidArgument desc = ...".
type apiError struct {
	code codes.Code
	msg  string
}

// codeWords names each code as an operator reads it. Unknown has none: its
// message stands alone.
var codeWords = map[codes.Code]string{
	codes.Canceled:           "canceled",
	codes.InvalidArgument:    "invalid argument",
	codes.DeadlineExceeded:   "timed out",
	codes.NotFound:           "not found",
	codes.AlreadyExists:      "already exists",
	codes.PermissionDenied:   "permission denied",
	codes.ResourceExhausted:  "resource exhausted",
	codes.FailedPrecondition: "not possible in this state",
	codes.Aborted:            "aborted",
	codes.OutOfRange:         "out of range",
	codes.Unimplemented:      "not supported",
	codes.Internal:           "internal error",
	codes.Unavailable:        "unavailable",
	codes.DataLoss:           "data loss",
	codes.Unauthenticated:    "unauthenticated",
}

func (e *apiError) Error() string {
	words := codeWords[e.code]
	switch {
	case words == "" && e.msg == "":
		return "unknown error from hyperd"
	case words == "":
		return e.msg
	case e.msg == "":
		return words
	}
	return words + ": " + e.msg
}

// isCode reports whether err is an apiError with code.
func isCode(err error, code codes.Code) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.code == code
}
