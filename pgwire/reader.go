package pgwire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// frame is one client message after startup: its type byte and body (the
// body is owned by the receiver).
type frame struct {
	typ  byte
	body []byte
}

// Inbox limits: the reader queues at most inboxFrames messages and, beyond
// the first, at most inboxBytes bytes of message bodies before it waits for
// the connection goroutine to catch up.
const (
	inboxFrames = 128
	inboxBytes  = 4 << 20
)

// tooLargeError is a message whose declared length exceeds MaxMessageSize.
type tooLargeError struct{ size, max int }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("message of %d bytes exceeds the maximum message size of %d bytes", e.size, e.max)
}

// reader frames client messages from the socket into a bounded queue. Its
// goroutine is owned by the connection goroutine, which stops it (by
// cancelling stop and unblocking the socket read) and waits for done.
//
// Reading ahead lets a running statement notice that the client went away
// (gone is cancelled with the read error as its cause) while every message
// read is still delivered in order by next.
type reader struct {
	br     *bufio.Reader
	max    int
	frames chan frame
	space  chan struct{} // signalled when queued drops to the budget
	queued atomic.Int64  // bytes of bodies in frames

	// gone is cancelled, with the read error as cause, when the goroutine
	// stops reading (EOF, socket error, oversized message). Every frame
	// read before that is already in frames.
	gone     context.Context
	setGone  context.CancelCauseFunc
	stopRead context.Context // cancelled by the owner to stop the goroutine
	done     chan struct{}   // closed when the goroutine returned
}

// startReader starts the reader goroutine over br. stop ends it (together
// with unblocking the socket: the caller closes or deadlines it).
func startReader(stop context.Context, br *bufio.Reader, maxBody int) *reader {
	r := &reader{
		br:       br,
		max:      maxBody,
		frames:   make(chan frame, inboxFrames),
		space:    make(chan struct{}, 1),
		stopRead: stop,
		done:     make(chan struct{}),
	}
	r.gone, r.setGone = context.WithCancelCause(context.Background())
	go r.run()
	return r
}

func (r *reader) run() {
	defer close(r.done)
	for {
		f, err := readFrame(r.br, r.max)
		if err != nil {
			r.setGone(err)
			return
		}
		for r.queued.Load() > inboxBytes {
			select {
			case <-r.space:
			case <-r.stopRead.Done():
				r.setGone(context.Cause(r.stopRead))
				return
			}
		}
		r.queued.Add(int64(len(f.body)))
		select {
		case r.frames <- f:
		case <-r.stopRead.Done():
			r.setGone(context.Cause(r.stopRead))
			return
		}
	}
}

// errInterrupted is returned by next when its interrupt channel fired.
var errInterrupted = errors.New("pgwire: interrupted")

// next returns the next client message in order. When the reader has
// stopped and every message was delivered it returns the reason (io.EOF
// for a closed socket). It returns ctx's error when ctx is done and
// errInterrupted when interrupt is closed (a nil interrupt never fires).
func (r *reader) next(ctx context.Context, interrupt <-chan struct{}) (frame, error) {
	if err := ctx.Err(); err != nil {
		return frame{}, err
	}
	select {
	case f := <-r.frames:
		r.took(f)
		return f, nil
	default:
	}
	select {
	case f := <-r.frames:
		r.took(f)
		return f, nil
	case <-r.gone.Done():
		select {
		case f := <-r.frames:
			r.took(f)
			return f, nil
		default:
			return frame{}, context.Cause(r.gone)
		}
	case <-ctx.Done():
		return frame{}, ctx.Err()
	case <-interrupt:
		return frame{}, errInterrupted
	}
}

func (r *reader) took(f frame) {
	if r.queued.Add(-int64(len(f.body))) <= inboxBytes {
		select {
		case r.space <- struct{}{}:
		default:
		}
	}
}

// readFrame reads one message: type byte, int32 length (including itself),
// body.
func readFrame(br *bufio.Reader, maxBody int) (frame, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return frame{}, err
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[1:])))
	if n < 4 {
		return frame{}, &protocolError{code: codeProtocolViolation, msg: fmt.Sprintf("invalid message length %d", n)}
	}
	n -= 4
	if n > maxBody {
		return frame{}, &tooLargeError{size: n, max: maxBody}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return frame{}, err
	}
	return frame{typ: hdr[0], body: body}, nil
}
