package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Listener accepts channels from senders that hold the cluster token. It
// owns an accept goroutine and one goroutine per connection still
// handshaking or waiting for Accept; Close stops and waits for all of
// them. A worker runs one Listener for all its incoming channels and
// dispatches the Receivers by ChannelID.
type Listener struct {
	cfg    ListenConfig
	ln     net.Listener
	ctx    context.Context // cancelled by Close: cuts handshakes in progress
	cancel context.CancelFunc

	results   chan accepted // handshaken connections and refusals, for Accept
	done      chan struct{} // closed by Close
	slots     chan struct{} // bounds connections not yet taken by Accept
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

type accepted struct {
	r   *Receiver
	err error
}

// Listen listens on addr ("host:port"; port 0 picks a free port, see
// Addr) and starts accepting connections in the background; each runs
// the handshake (bounded by HandshakeTimeout) on its own goroutine, and
// Accept hands out the results. The sender's handshake completes (and it
// may start sending, up to the window) before Accept is called.
func (c ListenConfig) Listen(addr string) (*Listener, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen on %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{
		cfg: c, ln: ln, ctx: ctx, cancel: cancel,
		results: make(chan accepted), done: make(chan struct{}),
		slots: make(chan struct{}, c.MaxPendingHandshakes),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// Addr is the address the Listener is bound to.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops accepting, cuts handshakes in progress, closes the
// Receivers not yet taken by Accept and waits for the Listener's
// goroutines. Receivers already returned by Accept belong to their
// callers and are not closed. Idempotent; later calls return the first
// call's result.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.cancel()
		l.closeErr = l.ln.Close()
		l.wg.Wait()
	})
	return l.closeErr
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return
		}
		conn, err := l.ln.Accept()
		if err != nil {
			<-l.slots
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: report, back off, retry.
			if !l.deliver(accepted{err: fmt.Errorf("transport: accept: %w", err)}) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(backoff):
			case <-l.done:
				return
			}
			continue
		}
		backoff = 0
		l.wg.Add(1)
		go l.handshake(conn)
	}
}

// handshake authenticates one connection and hands its Receiver (or the
// refusal) to Accept.
func (l *Listener) handshake(conn net.Conn) {
	defer l.wg.Done()
	defer func() { <-l.slots }()
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.HandshakeTimeout)
	var id string
	_, err := handshakeWithin(ctx, conn, func() (struct{}, error) {
		var err error
		id, err = serverHandshake(conn, l.cfg.Token, grant{window: l.cfg.Window, maxFrame: l.cfg.MaxFrameBytes})
		return struct{}{}, err
	})
	cancel()
	if err != nil {
		conn.Close()
		if l.ctx.Err() != nil {
			return // closing
		}
		ch := ""
		if id != "" {
			ch = fmt.Sprintf(" for channel %q", id)
		}
		l.deliver(accepted{err: fmt.Errorf("transport: refused peer %s%s: %w", conn.RemoteAddr(), ch, err)})
		return
	}
	r := newReceiver(conn, id, l.cfg)
	if !l.deliver(accepted{r: r}) {
		r.Close()
	}
}

// deliver hands a result to Accept; false if the Listener closed first.
func (l *Listener) deliver(a accepted) bool {
	select {
	case l.results <- a:
		return true
	case <-l.done:
		return false
	}
}

// Accept waits for the next sender that completes the handshake and
// returns its Receiver, which the caller owns and must Close. A sender
// refused in the handshake (wrong cluster token: ErrUnauthorized; other
// failures: ErrHandshake) is returned as an error naming the peer, with a
// nil Receiver; the Listener stays usable, so callers log it and call
// Accept again. Only ErrClosed means the Listener is gone.
func (l *Listener) Accept(ctx context.Context) (*Receiver, error) {
	select {
	case a := <-l.results:
		return a.r, a.err
	case <-l.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
