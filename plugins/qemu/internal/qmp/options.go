package qmp

import "time"

// Defaults for the options below.
const (
	// DefaultCommandTimeout bounds Run. QMP commands are answered in
	// milliseconds by a healthy QEMU; 30 s leaves room for the slow
	// synchronous ones (block jobs being set up, a loaded TCG host) while
	// still noticing a QEMU that stopped answering.
	DefaultCommandTimeout = 30 * time.Second

	// DefaultEventBuffer is each subscriber's channel capacity. QEMU's
	// bursts (device removal, block job progress) are tens of events, so
	// 64 absorbs a burst for a subscriber that reads promptly.
	DefaultEventBuffer = 64
)

// Option configures a Monitor made by Dial or Open.
type Option func(*config)

type config struct {
	commandTimeout time.Duration
	eventBuffer    int
}

func newConfig(opts []Option) config {
	c := config{
		commandTimeout: DefaultCommandTimeout,
		eventBuffer:    DefaultEventBuffer,
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithCommandTimeout sets how long Run waits for a reply. Default
// DefaultCommandTimeout; zero or negative means Run waits until the reply
// or the end of the connection. RunContext ignores it: its context rules.
func WithCommandTimeout(d time.Duration) Option {
	return func(c *config) { c.commandTimeout = d }
}

// WithEventBuffer sets each event subscriber's channel capacity, and the
// size of the backlog kept for the first subscriber (see Monitor.Events).
// Default DefaultEventBuffer; values below 1 are taken as 1.
func WithEventBuffer(n int) Option {
	return func(c *config) { c.eventBuffer = max(n, 1) }
}
