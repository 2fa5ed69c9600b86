package transport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/spatedb/spate/cluster/auth"
)

// protocolVersion is sent in the handshake; a receiver refuses any other.
const protocolVersion = 2

// Errors. Every error the package returns wraps one of these (or a
// context error, or the network error that caused it), so callers test
// with errors.Is.
var (
	// ErrUnauthorized: the peer does not hold the cluster token. Returned
	// by Dial when the receiver refused us or could not prove the token,
	// and by Accept for each refused sender (the Listener stays usable).
	ErrUnauthorized = auth.ErrUnauthorized
	// ErrHandshake: the handshake failed for another reason (timeout,
	// protocol version, not a spate peer, malformed hello).
	ErrHandshake = auth.ErrHandshake
	// ErrClosed: the Sender, Receiver or Listener was closed by its owner.
	ErrClosed = errors.New("transport: closed")
	// ErrPeerGone: the other end closed the channel or the connection was
	// lost. A Receiver reports a sender that closed cleanly as io.EOF
	// instead.
	ErrPeerGone = errors.New("peer went away")
	// ErrSequence: a frame arrived whose sequence number is not the one
	// after the last delivered (a gap or a duplicate) and not covered by
	// Resume. The Receiver is unusable after it.
	ErrSequence = errors.New("sequence error")
	// ErrProtocol: the peer broke the wire protocol (malformed frame,
	// frame over the credit window or size limit, batch before schema).
	ErrProtocol = errors.New("transport protocol violation")
	// ErrFrameTooLarge: SendBatch was given a batch larger than the
	// receiver's maximum frame size. The Sender stays usable.
	ErrFrameTooLarge = errors.New("batch exceeds the receiver's maximum frame size")
)

// Defaults of ListenConfig and DialConfig.
const (
	DefaultWindow               = 8 << 20   // bytes of credit per channel
	DefaultMaxFrameBytes        = 256 << 20 // largest frame a receiver accepts
	DefaultHandshakeTimeout     = 10 * time.Second
	DefaultCloseTimeout         = 5 * time.Second
	DefaultMaxPendingHandshakes = 64
)

// ListenConfig configures a Listener and every Receiver it accepts. The
// zero value of each field but Token means its default.
type ListenConfig struct {
	// Token is the cluster token, the shared secret a sender must prove it
	// holds. Required: an empty token is refused by Validate.
	Token string
	// Window is the credit window of each channel, in bytes of frames on
	// the wire (a 24-byte header plus the Arrow IPC metadata and body of a
	// batch). A sender may have at most this many bytes sent and not yet
	// taken by Recv; a single frame larger than the window is allowed only
	// when nothing else is outstanding. Default DefaultWindow (8 MiB).
	Window int64
	// MaxFrameBytes is the largest frame a Receiver accepts; the sender
	// learns it in the handshake and refuses larger batches itself with
	// ErrFrameTooLarge. Default DefaultMaxFrameBytes (256 MiB).
	MaxFrameBytes int64
	// HandshakeTimeout bounds each incoming handshake. Default 10s.
	HandshakeTimeout time.Duration
	// CloseTimeout bounds how long Receiver.Close spends telling the
	// sender. Default 5s.
	CloseTimeout time.Duration
	// MaxPendingHandshakes bounds connections that are handshaking or
	// handshaken but not yet taken by Accept; beyond it the Listener stops
	// accepting until Accept catches up. Default 64.
	MaxPendingHandshakes int
	// Allocator allocates the bodies of received batches; the batches'
	// buffers are views over them. Default memory.DefaultAllocator. A
	// BodyPool here recycles bodies and about doubles throughput, at the
	// cost described on BodyPool.
	Allocator memory.Allocator
}

// Validate reports a configuration that cannot work.
func (c ListenConfig) Validate() error {
	switch {
	case c.Token == "":
		return errors.New("transport: ListenConfig.Token is empty (a cluster token is required)")
	case c.Window < 0, c.MaxFrameBytes < 0, c.HandshakeTimeout < 0, c.CloseTimeout < 0, c.MaxPendingHandshakes < 0:
		return errors.New("transport: ListenConfig has a negative value")
	}
	return nil
}

func (c ListenConfig) withDefaults() ListenConfig {
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.MaxPendingHandshakes == 0 {
		c.MaxPendingHandshakes = DefaultMaxPendingHandshakes
	}
	if c.Allocator == nil {
		c.Allocator = memory.DefaultAllocator
	}
	return c
}

// DialConfig configures a Sender. The zero value of each field but Token
// means its default.
type DialConfig struct {
	// Token is the cluster token. Required.
	Token string
	// FirstSeq is the sequence number of the first frame sent; each frame
	// after it gets the next number. A sender replaying buffered frames
	// after a recovery starts at the first one it replays. Default 1
	// (0 is never a frame's sequence number).
	FirstSeq uint64
	// HandshakeTimeout bounds connecting plus the handshake (the context
	// passed to Dial can shorten it). Default 10s.
	HandshakeTimeout time.Duration
	// CloseTimeout bounds how long Close waits for the receiver to
	// acknowledge the end of the stream. Default 5s.
	CloseTimeout time.Duration
	// Allocator allocates the IPC metadata of each batch (and bitmaps of
	// sliced boolean or validity buffers, the only thing the IPC encoder
	// copies). Default memory.DefaultAllocator.
	Allocator memory.Allocator
}

// Validate reports a configuration that cannot work.
func (c DialConfig) Validate() error {
	switch {
	case c.Token == "":
		return errors.New("transport: DialConfig.Token is empty (a cluster token is required)")
	case c.HandshakeTimeout < 0, c.CloseTimeout < 0:
		return errors.New("transport: DialConfig has a negative timeout")
	}
	return nil
}

func (c DialConfig) withDefaults() DialConfig {
	if c.FirstSeq == 0 {
		c.FirstSeq = 1
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.Allocator == nil {
		c.Allocator = memory.DefaultAllocator
	}
	return c
}

// Listen listens on addr ("host:port"; port 0 picks one, see
// Listener.Addr) for senders holding token, with every other setting at
// its default. See ListenConfig.Listen.
func Listen(addr, token string) (*Listener, error) {
	return ListenConfig{Token: token}.Listen(addr)
}

// Dial opens the channel channelID to the Listener at addr, proving
// token, with every other setting at its default. See DialConfig.Dial.
func Dial(ctx context.Context, addr, token, channelID string) (*Sender, error) {
	return DialConfig{Token: token}.Dial(ctx, addr, channelID)
}

// chanErr prefixes an error with the channel it happened on.
func chanErr(id string, err error) error {
	return fmt.Errorf("transport: channel %q: %w", id, err)
}
