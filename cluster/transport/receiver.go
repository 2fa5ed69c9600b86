package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Receiver is the consuming end of one channel. A reader goroutine reads
// frames from the connection as they arrive, decodes batches (zero-copy:
// the columns are views over the body read from the socket) and queues
// them; Recv takes them in order and, as it does, grants their bytes back
// to the sender as credit. The sender can never have more than the
// window's worth of bytes queued here, so memory per channel is bounded
// (see the package doc).
//
// A Receiver owns two goroutines (the reader and the credit writer), which
// Close stops and waits for. Recv, Resume, Position, Schema and Stats are
// safe for concurrent use.
type Receiver struct {
	id           string
	conn         net.Conn
	window       int64
	maxFrame     int64
	alloc        memory.Allocator
	closeTimeout time.Duration

	done      chan struct{} // closed by Close
	readDone  chan struct{} // closed when the reader goroutine stops
	notify    chan struct{} // capacity 1: a frame was queued
	kick      chan struct{} // capacity 1: there is credit to grant
	wg        sync.WaitGroup
	closeOnce sync.Once
	wmu       sync.Mutex // serialises writes to conn (credit, close)
	schema    atomic.Pointer[arrow.Schema]

	mu sync.Mutex
	// protected by mu
	queue    []queued // frames received, not yet taken; queue[head:] is live
	head     int
	queued   int64  // wire bytes of queue[head:]
	balance  int64  // credit the sender may still use, counting grants sent
	pending  int64  // bytes taken by Recv and not yet granted back
	last     uint64 // sequence number of the last frame delivered, or the Resume position
	dropTo   uint64 // frames with Seq <= dropTo are dropped (set by Resume)
	readErr  error  // why the reader stopped: io.EOF after a clean close
	writeErr error  // a credit write failed (reported in preference to the read error)
	seqErr   error  // sticky: Recv met a gap or duplicate
	closed   bool
	stats    ReceiverStats
}

type queued struct {
	f    Frame
	cost int64
}

// ReceiverStats are a Receiver's counters since Accept.
type ReceiverStats struct {
	Frames       uint64 // data frames received
	Batches      uint64 // batches received
	Rows         uint64 // rows in those batches
	Bytes        uint64 // wire bytes of data frames received
	Delivered    uint64 // frames returned by Recv
	Dropped      uint64 // frames dropped because Resume covered them
	QueuedFrames int    // received, not yet taken by Recv (input queue depth)
	QueuedBytes  int64  // their wire bytes (at most the window, or one larger frame)
}

func newReceiver(conn net.Conn, id string, cfg ListenConfig) *Receiver {
	r := &Receiver{
		id: id, conn: conn, window: cfg.Window, maxFrame: cfg.MaxFrameBytes,
		alloc: cfg.Allocator, closeTimeout: cfg.CloseTimeout,
		done: make(chan struct{}), readDone: make(chan struct{}),
		notify: make(chan struct{}, 1), kick: make(chan struct{}, 1),
		balance: cfg.Window,
	}
	r.wg.Add(2)
	go r.readLoop()
	go r.grantLoop()
	return r
}

// ChannelID is the channel ID the sender presented in the handshake
// (authenticated: it is covered by the sender's MAC).
func (r *Receiver) ChannelID() string { return r.id }

// RemoteAddr is the sender's address.
func (r *Receiver) RemoteAddr() net.Addr { return r.conn.RemoteAddr() }

// Schema is the channel's schema, or nil before the first batch arrived.
func (r *Receiver) Schema() *arrow.Schema { return r.schema.Load() }

// Window is the channel's credit window in bytes.
func (r *Receiver) Window() int64 { return r.window }

// Position is the sequence number of the last frame Recv delivered, or
// the position given to Resume since; 0 before either.
func (r *Receiver) Position() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// Resume positions the receiver after seq, for replay after a recovery:
// frames with a sequence number <= seq are dropped (their credit is
// granted back, their batches released) and the next frame delivered must
// be seq+1. Typically called on a fresh Receiver before the first Recv,
// with the position its consumer's restored checkpoint covers; frames
// already queued are judged against the new position too.
func (r *Receiver) Resume(seq uint64) {
	r.mu.Lock()
	r.last, r.dropTo = seq, seq
	r.mu.Unlock()
}

// Stats returns the Receiver's counters. Safe to call at any time.
func (r *Receiver) Stats() ReceiverStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stats
	st.QueuedFrames = len(r.queue) - r.head
	st.QueuedBytes = r.queued
	return st
}

// Recv returns the next frame, waiting until one arrives or ctx ends.
// Frames come in sequence order; a frame that is neither the next one nor
// covered by Resume fails with ErrSequence, and the Receiver is unusable
// after it. After the sender's Close, Recv returns the remaining frames
// and then io.EOF. If the connection is lost, Recv returns the frames that
// arrived whole and then an error wrapping ErrPeerGone.
//
// For KindBatch the caller owns Frame.Rec and must Release it.
func (r *Receiver) Recv(ctx context.Context) (Frame, error) {
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return Frame{}, chanErr(r.id, ErrClosed)
		}
		if r.seqErr != nil {
			err := r.seqErr
			r.mu.Unlock()
			return Frame{}, err
		}
		if r.head < len(r.queue) {
			q := r.queue[r.head]
			r.queue[r.head] = queued{}
			r.head++
			if r.head == len(r.queue) {
				r.queue, r.head = r.queue[:0], 0
			} else if r.head > 64 && r.head > len(r.queue)/2 {
				n := copy(r.queue, r.queue[r.head:])
				clear(r.queue[n:])
				r.queue, r.head = r.queue[:n], 0
			}
			more := r.head < len(r.queue)
			r.queued -= q.cost
			r.pending += q.cost
			grant := r.pending >= r.window/4 || !more
			var err error
			deliver := false
			switch {
			case q.f.Seq <= r.dropTo:
				r.stats.Dropped++
			case q.f.Seq != r.last+1:
				what := "a gap"
				if q.f.Seq <= r.last {
					what = "a duplicate"
				}
				err = chanErr(r.id, fmt.Errorf("%w: got sequence number %d after %d (%s)", ErrSequence, q.f.Seq, r.last, what))
				r.seqErr = err
			default:
				r.last = q.f.Seq
				r.stats.Delivered++
				deliver = true
			}
			r.mu.Unlock()
			if grant {
				signal(r.kick)
			}
			if more {
				signal(r.notify) // another Recv may be waiting
			}
			if deliver {
				return q.f, nil
			}
			if q.f.Rec != nil {
				q.f.Rec.Release()
			}
			if err != nil {
				r.sendClose(err.Error()) // the sender learns why the channel is dead
				r.conn.Close()
				return Frame{}, err
			}
			continue
		}
		if r.readErr != nil {
			err := r.readErr
			r.mu.Unlock()
			return Frame{}, err
		}
		r.mu.Unlock()
		select {
		case <-r.notify:
		case <-r.readDone:
		case <-r.done:
		case <-ctx.Done():
			return Frame{}, chanErr(r.id, ctx.Err())
		}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Close stops the channel: it tells the sender (best effort, bounded by
// CloseTimeout) unless the stream already ended, closes the connection,
// waits for the Receiver's goroutines and releases every batch still
// queued. Batches already returned by Recv stay valid (their owners
// release them). Recv calls blocked or made later return ErrClosed. Close
// is idempotent and always returns nil.
func (r *Receiver) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		close(r.done)
		select {
		case <-r.readDone:
		default:
			r.sendClose("the consumer closed the receiver")
		}
		r.conn.Close()
		r.wg.Wait()
		r.mu.Lock()
		for _, q := range r.queue[r.head:] {
			if q.f.Rec != nil {
				q.f.Rec.Release()
			}
		}
		r.queue, r.head, r.queued = nil, 0, 0
		r.mu.Unlock()
	})
	return nil
}

// sendClose tells the sender why the receiver stops (best effort).
func (r *Receiver) sendClose(reason string) {
	if len(reason) > maxReasonBytes {
		reason = reason[:maxReasonBytes]
	}
	buf := make([]byte, headerSize, headerSize+len(reason))
	header{kind: wireClose, a: uint32(len(reason))}.put(buf)
	buf = append(buf, reason...)
	r.conn.SetWriteDeadline(time.Now().Add(r.closeTimeout)) // also cuts a blocked credit write
	r.wmu.Lock()
	_, _ = r.conn.Write(buf) // the connection is closed next either way
	r.wmu.Unlock()
}

// grantLoop sends credit for what Recv took. It is one of the Receiver's
// goroutines.
func (r *Receiver) grantLoop() {
	defer r.wg.Done()
	var buf [headerSize]byte
	for {
		select {
		case <-r.kick:
		case <-r.done:
			return
		case <-r.readDone:
			return
		}
		r.mu.Lock()
		g := r.pending
		r.pending = 0
		r.balance += g
		r.mu.Unlock()
		if g == 0 {
			continue
		}
		header{kind: wireCredit, b: uint64(g)}.put(buf[:])
		r.wmu.Lock()
		_, err := r.conn.Write(buf[:])
		r.wmu.Unlock()
		if err != nil {
			r.mu.Lock()
			if r.writeErr == nil && r.readErr == nil { // else the reader closed the connection
				r.writeErr = fmt.Errorf("%w: granting credit: %w", ErrPeerGone, err)
			}
			r.mu.Unlock()
			r.conn.Close() // stops the reader too
			return
		}
	}
}

// readLoop reads frames until the stream ends or fails. It is one of the
// Receiver's goroutines.
func (r *Receiver) readLoop() {
	defer r.wg.Done()
	var schemaMsg *ipc.Message // the channel's schema message, kept to decode each batch
	err := r.readFrames(&schemaMsg)
	if schemaMsg != nil {
		schemaMsg.Release()
	}
	if errors.Is(err, ErrProtocol) {
		r.sendClose(err.Error())
	}
	r.mu.Lock()
	if err != io.EOF {
		select {
		case <-r.done:
			err = ErrClosed
		default:
			// A failed credit write closed the connection under the
			// read: it is the cause.
			if r.writeErr != nil && !errors.Is(err, ErrProtocol) {
				err = r.writeErr
			}
		}
		err = chanErr(r.id, err)
	}
	r.readErr = err
	r.mu.Unlock()
	r.conn.Close()
	close(r.readDone)
}

func (r *Receiver) readFrames(schemaMsg **ipc.Message) error {
	br := bufio.NewReaderSize(r.conn, 64<<10)
	var hb [headerSize]byte
	var lastSeq uint64
	received := false
	var log []byte    // from a log frame, for the next data frame
	var logCost int64 // its credit, returned with that frame's
	for {
		if _, err := io.ReadFull(br, hb[:]); err != nil {
			if err == io.EOF {
				return fmt.Errorf("%w: the sender hung up without closing the channel", ErrPeerGone)
			}
			return fmt.Errorf("%w: %w", ErrPeerGone, err)
		}
		h, err := parseHeader(hb[:])
		if err != nil {
			return err
		}
		var f Frame
		cost := headerSize + logCost
		switch h.kind {
		case wireSchema:
			if *schemaMsg != nil {
				return fmt.Errorf("%w: a second schema", ErrProtocol)
			}
			if int64(h.a)+int64(h.b)+headerSize > r.maxFrame {
				return fmt.Errorf("%w: schema frame of %d bytes", ErrProtocol, int64(h.a)+int64(h.b))
			}
			msg, err := r.readMessage(br, h, ipc.MessageSchema)
			if err != nil {
				return err
			}
			*schemaMsg = msg
			msg.Retain()
			rd, err := ipc.NewReaderFromMessageReader(&msgFeed{msgs: []*ipc.Message{msg}}, ipc.WithAllocator(r.alloc))
			if err != nil {
				return fmt.Errorf("%w: decoding schema: %w", ErrProtocol, err)
			}
			r.schema.Store(rd.Schema())
			rd.Release()
			continue
		case wireBatch:
			if *schemaMsg == nil {
				return fmt.Errorf("%w: a batch before the schema", ErrProtocol)
			}
			if h.a > maxMetaBytes || h.b > uint64(r.maxFrame) || frameCost(int64(h.a), int64(h.b)) > r.maxFrame {
				return fmt.Errorf("%w: batch frame with %d bytes of metadata and %d of body (max frame %d)", ErrProtocol, h.a, h.b, r.maxFrame)
			}
			cost = frameCost(int64(h.a), int64(h.b)) + logCost
			if err := r.charge(cost); err != nil {
				return err
			}
			msg, err := r.readMessage(br, h, ipc.MessageRecordBatch)
			if err != nil {
				return err
			}
			rec, err := r.decode(*schemaMsg, msg)
			if err != nil {
				return fmt.Errorf("%w: decoding batch %d: %w", ErrProtocol, h.seq, err)
			}
			f = Frame{Seq: h.seq, Kind: KindBatch, Rec: rec}
		case wireWatermark:
			if err := r.charge(cost); err != nil {
				return err
			}
			f = Frame{Seq: h.seq, Kind: KindWatermark, Watermark: int64(h.b), Idle: h.a == watermarkIdle}
		case wireBarrier:
			if err := r.charge(cost); err != nil {
				return err
			}
			f = Frame{Seq: h.seq, Kind: KindBarrier, Barrier: Barrier{ID: h.b, Source: h.a}}
		case wireCheckpoint:
			if err := r.charge(cost); err != nil {
				return err
			}
			f = Frame{Seq: h.seq, Kind: KindCheckpoint, Barrier: Barrier{ID: h.b, Source: h.a}}
		case wireLog:
			n := int64(h.a)
			if n == 0 || n > MaxLogBytes || log != nil || headerSize+n > r.maxFrame {
				return fmt.Errorf("%w: a log frame of %d bytes", ErrProtocol, n)
			}
			log = make([]byte, n) // charged with the frame it comes with
			if _, err := io.ReadFull(br, log); err != nil {
				return fmt.Errorf("%w: %w", ErrPeerGone, err)
			}
			logCost = headerSize + n
			continue
		case wireClose:
			if received && h.seq != lastSeq {
				return fmt.Errorf("%w: the sender closed after sequence number %d, but the last frame was %d", ErrProtocol, h.seq, lastSeq)
			}
			return io.EOF
		default:
			return fmt.Errorf("%w: unknown frame kind %d", ErrProtocol, h.kind)
		}
		lastSeq, received = h.seq, true
		f.Log, log = log, nil
		r.enqueue(f, cost)
		logCost = 0
	}
}

// decode turns a batch message (whose reference it takes) into a record
// batch over the message body, with the channel's schema. A short-lived
// ipc.Reader does the decoding, so that nothing but the returned batch
// holds the body afterwards: a long-lived one would keep its last batch
// alive after the consumer released it.
func (r *Receiver) decode(schemaMsg, msg *ipc.Message) (arrow.RecordBatch, error) {
	schemaMsg.Retain()
	feed := &msgFeed{msgs: []*ipc.Message{schemaMsg, msg}}
	rd, err := ipc.NewReaderFromMessageReader(feed, ipc.WithAllocator(r.alloc))
	if err != nil {
		feed.Release()
		return nil, err
	}
	defer rd.Release() // releases the feed and rd's reference to the batch
	if !rd.Next() {
		err := rd.Err()
		if err == nil {
			err = errors.New("no batch decoded")
		}
		return nil, err
	}
	rec := rd.RecordBatch()
	return array.NewRecordBatch(r.schema.Load(), rec.Columns(), rec.NumRows()), nil
}

// charge takes a frame's cost from the credit the sender was granted;
// a sender that exceeds it breaks the protocol.
func (r *Receiver) charge(cost int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.balance >= cost || r.balance == r.window {
		r.balance -= cost
		return nil
	}
	return fmt.Errorf("%w: a frame of %d bytes with %d bytes of credit granted", ErrProtocol, cost, r.balance)
}

func (r *Receiver) enqueue(f Frame, cost int64) {
	r.mu.Lock()
	r.stats.Frames++
	r.stats.Bytes += uint64(cost)
	if f.Rec != nil {
		r.stats.Batches++
		r.stats.Rows += uint64(f.Rec.NumRows())
	}
	r.queue = append(r.queue, queued{f: f, cost: cost})
	r.queued += cost
	r.mu.Unlock()
	signal(r.notify)
}

// readMessage reads the IPC metadata and body following header h into a
// message of type want. The body is read straight into a buffer from the
// allocator; decoded columns are slices of it.
func (r *Receiver) readMessage(br *bufio.Reader, h header, want ipc.MessageType) (*ipc.Message, error) {
	if h.a > maxMetaBytes {
		return nil, fmt.Errorf("%w: %d bytes of IPC metadata", ErrProtocol, h.a)
	}
	meta := make([]byte, h.a)
	if _, err := io.ReadFull(br, meta); err != nil {
		return nil, fmt.Errorf("%w: reading frame: %w", ErrPeerGone, unexpected(err))
	}
	body := memory.NewResizableBuffer(r.alloc)
	defer body.Release()
	body.Resize(int(h.b))
	if _, err := io.ReadFull(br, body.Bytes()); err != nil {
		return nil, fmt.Errorf("%w: reading frame: %w", ErrPeerGone, unexpected(err))
	}
	msg, err := newMessage(meta, body)
	if err != nil {
		return nil, err
	}
	if msg.Type() != want || msg.BodyLen() != int64(h.b) {
		msg.Release()
		return nil, fmt.Errorf("%w: IPC message %v with a %d-byte body in a frame for %v with %d", ErrProtocol, msg.Type(), msg.BodyLen(), want, h.b)
	}
	return msg, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// newMessage wraps ipc.NewMessage, which panics on malformed metadata.
func newMessage(meta []byte, body *memory.Buffer) (msg *ipc.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			msg, err = nil, fmt.Errorf("%w: malformed IPC metadata: %v", ErrProtocol, p)
		}
	}()
	msg = ipc.NewMessage(memory.NewBufferBytes(meta), body)
	_ = msg.Type() // parse the header now, inside the recover
	_ = msg.BodyLen()
	return msg, nil
}

// msgFeed is the ipc.MessageReader behind the short-lived ipc.Readers a
// Receiver decodes with: it hands over the messages it was given, each
// released on the next call (as ipc's own stream reader does) or by
// Release.
type msgFeed struct {
	msgs []*ipc.Message // not yet handed over; the feed owns a reference to each
	cur  *ipc.Message   // handed over last
}

var _ ipc.MessageReader = (*msgFeed)(nil)

func (f *msgFeed) Message() (*ipc.Message, error) {
	if f.cur != nil {
		f.cur.Release()
		f.cur = nil
	}
	if len(f.msgs) == 0 {
		return nil, io.EOF
	}
	f.cur, f.msgs = f.msgs[0], f.msgs[1:]
	return f.cur, nil
}

// Retain is a no-op: a feed has a single owner, the ipc.Reader.
func (f *msgFeed) Retain() {}

// Release releases the messages still held; it is idempotent.
func (f *msgFeed) Release() {
	if f.cur != nil {
		f.cur.Release()
		f.cur = nil
	}
	for _, m := range f.msgs {
		m.Release()
	}
	f.msgs = nil
}
