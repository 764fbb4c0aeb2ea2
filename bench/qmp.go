package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// qmpConn is the minimal QMP client of the bare-QEMU baseline: one
// connection, commands one at a time, events skipped. hyperd's own QMP
// client lives under plugins/qemu/internal, out of the bench's reach,
// and does more (ids, event fan-out) than a floor should pay for.
type qmpConn struct {
	conn net.Conn
	dec  *json.Decoder
}

// qmpMessage is any message QEMU sends: a greeting, a reply or an event.
type qmpMessage struct {
	QMP    json.RawMessage `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string `json:"event"`
}

// dialQMP connects, reads the greeting and negotiates capabilities, all
// within ctx's deadline.
func dialQMP(ctx context.Context, sock string) (*qmpConn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl) // fails only on a closed conn, which the read reports
	}
	q := &qmpConn{conn: conn, dec: json.NewDecoder(conn)}
	var greeting qmpMessage
	if err := q.dec.Decode(&greeting); err != nil || greeting.QMP == nil {
		conn.Close()
		return nil, fmt.Errorf("qmp greeting: %v", err)
	}
	if _, err := q.run("qmp_capabilities"); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

// run sends a command without arguments and returns its reply's return
// value, skipping events that come before it.
func (q *qmpConn) run(cmd string) (json.RawMessage, error) {
	if _, err := fmt.Fprintf(q.conn, "{\"execute\":%q}\n", cmd); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	for {
		var m qmpMessage
		if err := q.dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("qmp %s: %w", cmd, err)
		}
		switch {
		case m.Event != "":
			continue
		case m.Error != nil:
			return nil, fmt.Errorf("qmp %s: %s: %s", cmd, m.Error.Class, m.Error.Desc)
		default:
			return m.Return, nil
		}
	}
}

func (q *qmpConn) close() { _ = q.conn.Close() } // QEMU is killed next

// qmpTimeout bounds a bare QEMU's QMP handshake and status query.
const qmpTimeout = 10 * time.Second
