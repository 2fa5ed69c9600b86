package pgwire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// frame is one client message after startup: its type byte and body (the
// body is owned by the receiver).
type frame struct {
	typ  byte
	body []byte
}

// inboxBytes bounds the client input the reader queues ahead of the
// connection goroutine. Each frame counts its body plus frameOverhead, so
// a flood of empty messages is bounded too. A single larger message is
// still accepted when the queue is empty.
const (
	inboxBytes    = 4 << 20
	frameOverhead = 32
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
// read is still delivered, in order, by next. The look-ahead is bounded by
// inboxBytes: a client that pipelines more than that behind a statement
// that never ends is noticed only when a write to it fails.
type reader struct {
	br   *bufio.Reader
	max  int
	stop context.Context // cancelled by the owner to stop the goroutine
	done chan struct{}   // closed when the goroutine returned

	// gone is cancelled, with the read error as cause, when the goroutine
	// stops reading (EOF, socket error, oversized message). Every frame
	// read before that is already queued.
	gone    context.Context
	setGone context.CancelCauseFunc

	ready chan struct{} // cap 1: a frame was queued or the reader stopped
	space chan struct{} // cap 1: queued bytes dropped below inboxBytes

	mu sync.Mutex
	// Protected by mu:
	queue  []frame // queue[head:] are the frames not yet taken
	head   int
	queued int   // bytes accounted for queue[head:]
	err    error // why the reader stopped; nil while it runs
}

// startReader starts the reader goroutine over br.
func startReader(stop context.Context, br *bufio.Reader, maxBody int) *reader {
	r := &reader{
		br:    br,
		max:   maxBody,
		stop:  stop,
		done:  make(chan struct{}),
		ready: make(chan struct{}, 1),
		space: make(chan struct{}, 1),
	}
	r.gone, r.setGone = context.WithCancelCause(context.Background())
	go r.run()
	return r
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (r *reader) run() {
	defer close(r.done)
	for {
		f, err := readFrame(r.br, r.max)
		if err == nil {
			err = r.enqueue(f)
		}
		if err != nil {
			r.mu.Lock()
			r.err = err
			r.mu.Unlock()
			signal(r.ready)
			r.setGone(err)
			return
		}
	}
}

// enqueue adds f to the queue, first waiting while the queue is over its
// byte budget.
func (r *reader) enqueue(f frame) error {
	size := len(f.body) + frameOverhead
	for {
		r.mu.Lock()
		if r.queued == 0 || r.queued+size <= inboxBytes {
			r.queue = append(r.queue, f)
			r.queued += size
			r.mu.Unlock()
			signal(r.ready)
			return nil
		}
		r.mu.Unlock()
		select {
		case <-r.space:
		case <-r.stop.Done():
			return context.Cause(r.stop)
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
	for {
		if err := ctx.Err(); err != nil {
			return frame{}, err
		}
		r.mu.Lock()
		if r.head < len(r.queue) {
			f := r.queue[r.head]
			r.queue[r.head] = frame{}
			r.head++
			if r.head == len(r.queue) {
				r.queue, r.head = r.queue[:0], 0
			}
			r.queued -= len(f.body) + frameOverhead
			r.mu.Unlock()
			signal(r.space)
			return f, nil
		}
		err := r.err
		r.mu.Unlock()
		if err != nil {
			return frame{}, err
		}
		select {
		case <-r.ready:
		case <-ctx.Done():
			return frame{}, ctx.Err()
		case <-interrupt:
			return frame{}, errInterrupted
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
