package qmp

import (
	"encoding/json"
	"fmt"

	"github.com/digitalocean/go-qemu/qmp"
)

// greeting is the message QEMU sends unprompted when a client connects.
type greeting struct {
	QMP struct {
		Version      qmp.Version `json:"version"`
		Capabilities []string    `json:"capabilities"`
	} `json:"QMP"`
}

// envelope is just enough of any QMP message to tell what it is. The
// "return" value is left unparsed: the caller gets the whole reply.
type envelope struct {
	QMP   json.RawMessage `json:"QMP"`
	Event string          `json:"event"`
	ID    json.RawMessage `json:"id"`
	Error *CommandError   `json:"error"`
}

// read is the Monitor's only reader of the socket. One json.Decoder
// reads the stream from the first byte to the last, so no message sits
// in a buffer that a later reader cannot see, and no message is too long.
func (m *Monitor) read() {
	dec := json.NewDecoder(m.conn)
	var err error
	for {
		var msg json.RawMessage
		if err = dec.Decode(&msg); err != nil {
			break
		}
		m.dispatch(msg)
	}
	m.finish(err)
}

// dispatch routes one message by its content, never by its position.
func (m *Monitor) dispatch(msg json.RawMessage) {
	var env envelope
	if err := json.Unmarshal(msg, &env); err != nil {
		// Valid JSON that is not an object is not QMP; skipping it keeps
		// the stream in step, which a decode error would not.
		return
	}

	switch {
	case env.Event != "":
		var e qmp.Event
		if err := json.Unmarshal(msg, &e); err != nil {
			// Only a malformed data or timestamp field gets here; the
			// name is known, so deliver what there is.
			e = qmp.Event{Event: env.Event}
		}
		m.publish(e)
	case env.QMP != nil:
		var g greeting
		if err := json.Unmarshal(msg, &g); err != nil {
			return
		}
		select {
		case m.greeting <- g:
		default: // a second greeting: nobody waits for it
		}
	case env.ID != nil:
		var id uint64
		if err := json.Unmarshal(env.ID, &id); err != nil {
			return // not an id this package gave out
		}
		r := result{reply: msg}
		if env.Error != nil {
			r = result{err: env.Error}
		}
		m.deliver(id, r)
	default:
		// A reply without an id: QEMU sends these only for input it could
		// not parse as a command, which encodeCommand prevents. With
		// nothing to match it to, it is dropped.
	}
}

// deliver hands r to the command waiting for id, if it still waits.
func (m *Monitor) deliver(id uint64, r result) {
	m.mu.Lock()
	ch, ok := m.pending[id]
	delete(m.pending, id)
	m.mu.Unlock()

	if ok {
		ch <- r // buffered for exactly this one send
	}
}

// finish ends the Monitor after the reader stops: it records why, fails
// every pending command, closes every subscription and then Done.
func (m *Monitor) finish(readErr error) {
	m.mu.Lock()
	closeConn := m.cause == nil
	if closeConn {
		// QEMU ended the connection (io.EOF when it exits) or sent
		// something that is not JSON, after which the stream cannot be
		// trusted.
		m.cause = fmt.Errorf("%w: read: %w", ErrClosed, readErr)
	}
	m.err = m.cause
	m.closed = true
	pending := m.pending
	m.pending = nil
	m.closeSubscribers()
	m.mu.Unlock()

	if closeConn {
		_ = m.conn.Close() // the read error above is the one that matters
	}
	for _, ch := range pending {
		ch <- result{err: m.err}
	}
	close(m.done)
}
