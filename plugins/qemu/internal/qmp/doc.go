// Package qmp is hyperd's client for the QEMU Machine Protocol: one
// Monitor per QMP socket, implementing go-qemu's qmp.Monitor so that
// go-qemu's generated qmp/raw commands and types run on top of it.
//
// It replaces go-qemu's qmp.SocketMonitor, whose faults the QEMU driver
// would otherwise inherit. Each fault, and how this package avoids it:
//
//   - SocketMonitor takes the first message after qmp_capabilities as
//     that command's reply, even when it is an event (QEMU may emit one
//     at any moment). Here every command, qmp_capabilities included, is
//     sent with a numeric "id" and only the message carrying that id is
//     its reply; events are recognised by their "event" field wherever
//     they fall: before the greeting, between the greeting and the
//     capabilities reply, or before a command's reply (QEMU sends
//     POWERDOWN before the reply to system_powerdown).
//   - SocketMonitor reads the greeting with a json.Decoder and then starts
//     a separate line scanner on the same socket, so whatever the decoder
//     had already buffered (an event sent with the greeting) is lost. Here
//     a single json.Decoder, owned by one reader goroutine, reads the
//     socket from its first byte to its last.
//   - SocketMonitor reads lines with bufio.Scanner's 64 KiB limit, so a
//     longer reply (query-qmp-schema, a large query-block) breaks the
//     connection. json.Decoder has no message size limit.
//   - SocketMonitor waits for the greeting and for replies with no
//     deadline, so a wedged QEMU hangs its caller forever. Here Dial and
//     Open are bounded by their context, RunContext by its context, and
//     Run by a default timeout (WithCommandTimeout); a blocked write is
//     cut short through the socket's write deadline.
//   - SocketMonitor's reader blocks on an unbuffered events channel once
//     anybody has called Events, so an undrained channel stops replies
//     and leaves the reader goroutine behind after Disconnect. Here each
//     subscriber has its own buffered channel and the reader only ever
//     tries to send: a full buffer drops the event for that subscriber
//     and counts it (Dropped). Subscriptions close when their context or
//     the connection ends.
//
// When the connection ends for any reason, every pending command fails at
// once with an error wrapping ErrClosed, event channels close, and Done
// closes; Err tells why. Disconnect returns only after the reader
// goroutine has ended, so a Monitor leaves no goroutine behind. QEMU's
// error replies become *CommandError, wrapped.
//
// Limitations: no out-of-band execution ("exec-oob") and no capability is
// enabled in the handshake, so a slow command delays the replies to later
// ones; no file-descriptor passing (SCM_RIGHTS), so getfd and add-fd, which
// some hotplug paths need, cannot be used yet; a Monitor never reconnects,
// so after QEMU restarts its socket the caller must Dial again; a command
// whose context ends is abandoned by the caller but still carried out by
// QEMU; events that arrive while nobody is subscribed are lost, except the
// few kept for the first subscriber; there is no logging hook, so dropped
// events and stray replies show only in Dropped or not at all.
package qmp
