package qmp

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// result is what the reader hands a waiting command: the whole reply
// object, or why there is none.
type result struct {
	reply []byte
	err   error
}

// Run runs one command, bounded by the Monitor's command timeout (see
// WithCommandTimeout). It satisfies qmp.Monitor; see RunContext.
func (m *Monitor) Run(cmd []byte) ([]byte, error) {
	ctx := context.Background()
	if d := m.cfg.commandTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	return m.RunContext(ctx, cmd)
}

// RunContext sends cmd, a JSON object such as
// {"execute":"query-status"}, and waits for its reply. It adds an "id" to
// the command and takes the reply with that id, so events and other
// commands' replies in between are never mistaken for it; commands may
// run concurrently.
//
// The reply is returned whole, {"return": ..., "id": ...}, as qmp/raw
// expects. A QEMU error reply becomes an error wrapping *CommandError.
// When ctx ends first RunContext returns an error wrapping ctx.Err(); QEMU
// may still carry the command out, and its late reply is dropped. When the
// connection ends first the error wraps ErrClosed.
func (m *Monitor) RunContext(ctx context.Context, cmd []byte) ([]byte, error) {
	id := m.nextID.Add(1)
	name, line, err := encodeCommand(cmd, id)
	if err != nil {
		return nil, err
	}

	// Register before writing: the reply may arrive before Write returns.
	ch := make(chan result, 1)
	if err := m.register(id, ch); err != nil {
		return nil, fmt.Errorf("run %s: %w", name, err)
	}
	if err := m.write(ctx, line); err != nil {
		m.unregister(id)
		return nil, fmt.Errorf("run %s: %w", name, err)
	}

	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("run %s: %w", name, r.err)
		}
		return r.reply, nil
	case <-ctx.Done():
		m.unregister(id)
		return nil, fmt.Errorf("run %s: %w", name, ctx.Err())
	}
}

// encodeCommand checks that cmd is a QMP command object and returns its
// name and the bytes to send, with id added.
func encodeCommand(cmd []byte, id uint64) (name string, line []byte, err error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(cmd, &obj); err != nil || obj == nil {
		return "", nil, fmt.Errorf("%w: not a json object", ErrInvalidCommand)
	}
	if err := json.Unmarshal(obj["execute"], &name); err != nil || name == "" {
		return "", nil, fmt.Errorf("%w: no \"execute\" string", ErrInvalidCommand)
	}
	if _, ok := obj["id"]; ok {
		return "", nil, fmt.Errorf("%w: %s already has an \"id\"", ErrInvalidCommand, name)
	}

	// A numeric id, because QEMU echoes the id back verbatim and a number
	// parses back without ambiguity.
	obj["id"] = json.RawMessage(fmt.Appendf(nil, "%d", id))
	line, err = json.Marshal(obj)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %s: %w", ErrInvalidCommand, name, err)
	}
	return name, append(line, '\n'), nil
}

func (m *Monitor) register(id uint64, ch chan<- result) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return m.err
	}
	m.pending[id] = ch
	return nil
}

func (m *Monitor) unregister(id uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.pending, id)
}

// write sends one command line. Only one write is in flight at a time.
func (m *Monitor) write(ctx context.Context, line []byte) error {
	select {
	case m.writeSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-m.done:
		return m.Err()
	}
	defer func() { <-m.writeSem }()

	// A QEMU that stops reading fills the socket buffer and blocks Write;
	// cutting the write short through the deadline is the only way to
	// honour ctx then.
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = m.conn.SetWriteDeadline(time.Now()) // fails only on a closed conn
		close(fired)
	})
	n, err := m.conn.Write(line)
	if !stop() {
		// The deadline was set (or is being set): clear it so the next
		// writer is not cut short by this caller's context.
		<-fired
		_ = m.conn.SetWriteDeadline(time.Time{})
	}

	switch {
	case err == nil:
		return nil
	case n == 0 && ctx.Err() != nil:
		// Nothing went out, so the stream is still in step.
		return ctx.Err()
	default:
		// Part of a command went out and the rest never will: QEMU's
		// parser is now mid-object, so no later command can be trusted
		// to be read right. End the connection.
		cause := fmt.Errorf("%w: write: %w", ErrClosed, err)
		_ = m.closeWith(cause) // the write error is the one to report
		return cause
	}
}
