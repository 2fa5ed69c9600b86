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
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// aLongTimeAgo is a deadline in the past: setting it interrupts blocked
// reads and writes on a connection.
var aLongTimeAgo = time.Unix(1, 0)

// Sender is the producing end of one channel: it sends batches,
// watermarks and barriers, each with the next sequence number, and blocks
// while the receiver has granted no credit for them.
//
// A Sender is safe for concurrent use; frames are numbered in the order
// the calls take the connection. It owns one goroutine (reading credit
// from the receiver) that Close stops and waits for. Batches passed in
// stay owned by the caller: a Sender never keeps a reference after the
// call returns.
type Sender struct {
	id           string
	conn         net.Conn
	window       int64
	maxFrame     int64
	alloc        memory.Allocator
	closeTimeout time.Duration

	sem       chan struct{} // holds a token while a goroutine sends; Close keeps it
	closing   chan struct{} // closed when Close starts
	peerGone  chan struct{} // closed when the credit reader stops
	credited  chan struct{} // capacity 1: the credit reader added credit
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	next      atomic.Uint64 // sequence number of the next data frame

	// Owned by the holder of sem.
	schema *arrow.Schema // the channel's schema; nil before the first batch
	broken error         // a frame was partly written: the stream is unusable
	iov    [][]byte      // scratch for one frame's pieces (writev)
	hdr    [headerSize]byte
	logHdr [headerSize]byte

	mu sync.Mutex
	// protected by mu
	credit  int64  // bytes we may still send; may go negative after one oversized frame
	peerErr error  // why the credit reader stopped (set before peerGone closes)
	writing bool   // a frame write is in progress, so a cancelled ctx may cut it
	log     []byte // attached to the next frame (AttachLog)
	stats   SenderStats
}

// SenderStats are a Sender's counters since Dial.
type SenderStats struct {
	Frames     uint64        // data frames sent (batches, watermarks, barriers)
	Batches    uint64        // batches sent
	Rows       uint64        // rows in those batches
	Bytes      uint64        // wire bytes of data frames, as charged against credit
	CreditWait time.Duration // time spent blocked waiting for credit (back-pressure)
}

// Dial connects to the Listener at addr, runs the handshake for channel
// channelID and returns the Sender. The handshake is bounded by ctx and by
// HandshakeTimeout; ctx does not bound the Sender's life after Dial
// returns. It fails with ErrUnauthorized when either side does not hold
// the token, and with ErrHandshake for other refusals.
func (c DialConfig) Dial(ctx context.Context, addr, channelID string) (*Sender, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := validChannelID(channelID); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	hctx, cancel := context.WithTimeout(ctx, c.HandshakeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(hctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s for channel %q: %w", addr, channelID, err)
	}
	g, err := handshakeWithin(hctx, conn, func() (grant, error) {
		return clientHandshake(conn, c.Token, channelID)
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("transport: dial %s for channel %q: %w", addr, channelID, err)
	}
	s := &Sender{
		id: channelID, conn: conn, window: g.window, maxFrame: g.maxFrame,
		alloc: c.Allocator, closeTimeout: c.CloseTimeout,
		sem: make(chan struct{}, 1), closing: make(chan struct{}),
		peerGone: make(chan struct{}), credited: make(chan struct{}, 1),
		credit: g.window,
	}
	s.next.Store(c.FirstSeq)
	s.wg.Add(1)
	go s.readCredits()
	return s, nil
}

// handshakeWithin runs fn with conn's deadline set from ctx, cutting it
// short if ctx ends, and clears the deadline afterwards.
func handshakeWithin[T any](ctx context.Context, conn net.Conn, fn func() (T, error)) (T, error) {
	// Only ctx's end cuts the handshake (ctx's own timer fires at its
	// deadline), so a cut always comes with ctx.Err() to report.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	v, err := fn()
	if !stop() {
		// ctx ended and may have poisoned the deadline: fail either way.
		if err == nil {
			err = ctx.Err()
		} else if !errors.Is(err, ErrUnauthorized) {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
	}
	if err != nil {
		return v, err
	}
	return v, conn.SetDeadline(time.Time{})
}

// ChannelID is the channel this Sender feeds.
func (s *Sender) ChannelID() string { return s.id }

// RemoteAddr is the receiver's address.
func (s *Sender) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// NextSeq is the sequence number the next frame will get.
func (s *Sender) NextSeq() uint64 { return s.next.Load() }

// Window is the receiver's credit window in bytes (from the handshake).
func (s *Sender) Window() int64 { return s.window }

// Stats returns the Sender's counters. Safe to call at any time.
func (s *Sender) Stats() SenderStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// SendBatch sends rec as the next frame and returns its sequence number.
// The first batch also sends the channel's schema; every later batch must
// have an equal schema, without dictionary-encoded columns. It blocks
// while the receiver's credit is used up (back-pressure), until ctx ends;
// a call that fails before writing leaves the Sender usable and consumes
// no sequence number. A batch whose frame exceeds the receiver's maximum
// frame size fails with ErrFrameTooLarge.
//
// rec's buffers are written to the socket directly (no copy in user
// space), and rec is not referenced after the call returns: the caller
// keeps its reference and releases it as usual, not before the call
// returns. rec is only read, but reading may compute Arrow's lazily
// counted null counts, so a batch other goroutines read at the same time
// should have them computed (Column(i).NullN()) beforehand.
func (s *Sender) SendBatch(ctx context.Context, rec arrow.RecordBatch) (uint64, error) {
	if rec == nil {
		return 0, chanErr(s.id, errors.New("SendBatch with a nil batch"))
	}
	if err := s.acquire(ctx); err != nil {
		return 0, err
	}
	defer s.release()
	if err := s.usable(); err != nil {
		return 0, err
	}
	if s.schema == nil {
		sc := rec.Schema()
		for _, f := range sc.Fields() {
			if hasDictionary(f.Type) {
				return 0, chanErr(s.id, fmt.Errorf("column %q: dictionary-encoded columns are not supported", f.Name))
			}
		}
		p := ipc.GetSchemaPayload(sc, s.alloc)
		err := s.writePayload(ctx, wireSchema, 0, &p, false)
		p.Release()
		if err != nil {
			return 0, err
		}
		s.schema = sc
	} else if sc := rec.Schema(); sc != s.schema && !sc.Equal(s.schema) {
		return 0, chanErr(s.id, fmt.Errorf("batch schema %s differs from the channel's schema %s", sc, s.schema))
	}
	p, err := ipc.GetRecordBatchPayload(rec, ipc.WithAllocator(s.alloc))
	if err != nil {
		return 0, chanErr(s.id, fmt.Errorf("encoding batch: %w", err))
	}
	defer p.Release()
	seq := s.next.Load()
	if err := s.writePayload(ctx, wireBatch, seq, &p, true); err != nil {
		return 0, err
	}
	s.next.Store(seq + 1)
	s.mu.Lock()
	s.stats.Batches++
	s.stats.Rows += uint64(rec.NumRows())
	s.mu.Unlock()
	return seq, nil
}

// SendWatermark sends an event-time watermark (µs) as the next frame and
// returns its sequence number. Blocking and errors as SendBatch.
func (s *Sender) SendWatermark(ctx context.Context, wm int64) (uint64, error) {
	return s.sendSmall(ctx, wireWatermark, 0, uint64(wm))
}

// SendIdle sends a watermark frame that also says the sender's input is
// idle: the receiver should leave this channel out of its watermark
// minimum until the next ordinary watermark. wm is the sender's last
// watermark. Blocking and errors as SendBatch.
func (s *Sender) SendIdle(ctx context.Context, wm int64) (uint64, error) {
	return s.sendSmall(ctx, wireWatermark, watermarkIdle, uint64(wm))
}

// SendBarrier sends a barrier as the next frame and returns its sequence
// number. Blocking and errors as SendBatch.
func (s *Sender) SendBarrier(ctx context.Context, b Barrier) (uint64, error) {
	return s.sendSmall(ctx, wireBarrier, b.Source, b.ID)
}

// SendCheckpoint sends a checkpoint barrier (b.ID is its epoch) as the
// next frame. Blocking and errors as SendBatch.
func (s *Sender) SendCheckpoint(ctx context.Context, b Barrier) (uint64, error) {
	return s.sendSmall(ctx, wireCheckpoint, b.Source, b.ID)
}

// AttachLog attaches data (1 to MaxLogBytes bytes) to the next batch,
// watermark or barrier sent: the receiver delivers it as that frame's
// Log. The two go on the wire together and take credit together.
func (s *Sender) AttachLog(data []byte) error {
	if len(data) == 0 || len(data) > MaxLogBytes {
		return chanErr(s.id, fmt.Errorf("a log of %d bytes (1 to %d)", len(data), MaxLogBytes))
	}
	s.mu.Lock()
	s.log = data
	s.mu.Unlock()
	return nil
}

// withLog puts the attached log, if any, before the frame in s.iov and
// returns the frame's cost with it. Called with sem held.
func (s *Sender) withLog(cost int64) int64 {
	s.mu.Lock()
	log := s.log
	s.log = nil
	s.mu.Unlock()
	if log == nil {
		return cost
	}
	header{kind: wireLog, a: uint32(len(log))}.put(s.logHdr[:])
	s.iov = append([][]byte{s.logHdr[:], log}, s.iov...)
	return cost + headerSize + int64(len(log))
}

func (s *Sender) sendSmall(ctx context.Context, kind wireKind, a uint32, b uint64) (uint64, error) {
	if err := s.acquire(ctx); err != nil {
		return 0, err
	}
	defer s.release()
	if err := s.usable(); err != nil {
		return 0, err
	}
	seq := s.next.Load()
	header{kind: kind, a: a, seq: seq, b: b}.put(s.hdr[:])
	s.iov = append(s.iov[:0], s.hdr[:])
	cost := s.withLog(headerSize)
	if err := s.waitCredit(ctx, cost); err != nil {
		clear(s.iov)
		return 0, err
	}
	if err := s.write(ctx, cost); err != nil {
		return 0, err
	}
	s.next.Store(seq + 1)
	return seq, nil
}

// iovWriter collects the slices written to it instead of copying them.
// It breaks io.Writer's rule against retaining p on purpose: the slices
// are an IPC payload's Arrow buffers, written to the socket (writev)
// before the payload is released.
type iovWriter struct {
	iov *[][]byte
	n   int64
}

func (w *iovWriter) Write(p []byte) (int, error) {
	*w.iov = append(*w.iov, p)
	w.n += int64(len(p))
	return len(p), nil
}

// writePayload writes one IPC message as a frame; credited frames first
// wait for credit. Called with sem held.
func (s *Sender) writePayload(ctx context.Context, kind wireKind, seq uint64, p *ipc.Payload, credited bool) error {
	meta := p.Meta()
	defer meta.Release()
	metaLen := int64(meta.Len())
	s.iov = append(s.iov[:0], s.hdr[:], meta.Bytes())
	w := iovWriter{iov: &s.iov}
	if err := p.SerializeBody(&w); err != nil {
		return chanErr(s.id, err)
	}
	cost := frameCost(metaLen, w.n)
	if metaLen > maxMetaBytes || cost > s.maxFrame {
		clear(s.iov)
		return chanErr(s.id, fmt.Errorf("%w: %d bytes, the receiver accepts at most %d", ErrFrameTooLarge, cost, s.maxFrame))
	}
	header{kind: kind, a: uint32(metaLen), seq: seq, b: uint64(w.n)}.put(s.hdr[:])
	if !credited {
		return s.write(ctx, 0)
	}
	cost = s.withLog(cost)
	if err := s.waitCredit(ctx, cost); err != nil {
		clear(s.iov)
		return err
	}
	return s.write(ctx, cost)
}

// acquire takes the right to send, honouring ctx and Close.
func (s *Sender) acquire(ctx context.Context) error {
	select {
	case <-s.closing:
		return chanErr(s.id, ErrClosed)
	default:
	}
	if err := ctx.Err(); err != nil {
		return chanErr(s.id, err)
	}
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-s.closing:
		return chanErr(s.id, ErrClosed)
	case <-ctx.Done():
		return chanErr(s.id, ctx.Err())
	}
}

func (s *Sender) release() { <-s.sem }

// usable reports why no frame can be sent, if so. Called with sem held.
func (s *Sender) usable() error {
	select {
	case <-s.closing:
		return chanErr(s.id, ErrClosed)
	default:
	}
	if s.broken != nil {
		return s.broken
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peerErr
}

// waitCredit takes cost bytes of credit, waiting for the receiver to grant
// them. A frame larger than the whole window goes when all credit is back.
func (s *Sender) waitCredit(ctx context.Context, cost int64) error {
	var start time.Time
	for {
		s.mu.Lock()
		if s.peerErr != nil {
			err := s.peerErr
			s.mu.Unlock()
			return err
		}
		if s.credit >= cost || s.credit == s.window {
			s.credit -= cost
			if !start.IsZero() {
				s.stats.CreditWait += time.Since(start)
			}
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		if start.IsZero() {
			start = time.Now()
		}
		select {
		case <-s.credited:
		case <-s.peerGone:
		case <-s.closing:
			s.addWait(start)
			return chanErr(s.id, ErrClosed)
		case <-ctx.Done():
			s.addWait(start)
			return chanErr(s.id, fmt.Errorf("waiting for credit (the receiver is not taking frames): %w", ctx.Err()))
		}
	}
}

func (s *Sender) addWait(start time.Time) {
	s.mu.Lock()
	s.stats.CreditWait += time.Since(start)
	s.mu.Unlock()
}

// write writes s.iov (one frame, charged cost bytes of credit: 0 for a
// schema frame) to the connection. If ctx ends before anything was
// written the Sender stays usable; a frame cut in the middle breaks the
// stream for good. Called with sem held.
func (s *Sender) write(ctx context.Context, cost int64) error {
	defer clear(s.iov)
	s.mu.Lock()
	s.writing = true
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		if s.writing {
			s.conn.SetWriteDeadline(aLongTimeAgo)
		}
		s.mu.Unlock()
	})
	bufs := net.Buffers(s.iov)
	n, err := bufs.WriteTo(s.conn)
	stop()
	s.mu.Lock()
	s.writing = false
	if err == nil && cost > 0 {
		s.stats.Frames++
		s.stats.Bytes += uint64(cost)
	}
	peerErr := s.peerErr
	s.mu.Unlock()
	s.conn.SetWriteDeadline(time.Time{})
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil && n == 0 {
		// Nothing went out: give the credit back and stay usable.
		s.mu.Lock()
		s.credit += cost
		s.mu.Unlock()
		return chanErr(s.id, fmt.Errorf("writing frame: %w", ctxErr))
	}
	switch {
	case peerErr != nil:
		s.broken = peerErr
	case ctx.Err() != nil:
		s.broken = chanErr(s.id, fmt.Errorf("frame cut after %d bytes, the channel is unusable: %w", n, ctx.Err()))
	default:
		s.broken = chanErr(s.id, fmt.Errorf("%w: writing frame: %w", ErrPeerGone, err))
	}
	s.conn.Close() // the receiver must not take a partial frame for a whole one
	return s.broken
}

// readCredits reads the receiver's credit grants until the connection
// ends; it is the Sender's one goroutine.
func (s *Sender) readCredits() {
	defer s.wg.Done()
	br := bufio.NewReaderSize(s.conn, 4<<10)
	var buf [headerSize]byte
	err := func() error {
		for {
			if _, err := io.ReadFull(br, buf[:]); err != nil {
				if err == io.EOF {
					return errors.New("the receiver closed the connection")
				}
				return err
			}
			h, err := parseHeader(buf[:])
			if err != nil {
				return err
			}
			switch h.kind {
			case wireCredit:
				s.mu.Lock()
				s.credit += int64(h.b)
				over := s.credit > s.window
				s.mu.Unlock()
				if over {
					return fmt.Errorf("%w: receiver granted more credit than its window", ErrProtocol)
				}
				select {
				case s.credited <- struct{}{}:
				default:
				}
			case wireClose:
				reason := make([]byte, min(int(h.a), maxReasonBytes))
				if _, err := io.ReadFull(br, reason); err != nil {
					return fmt.Errorf("the receiver closed the channel: %w", err)
				}
				return fmt.Errorf("the receiver closed the channel: %s", reason)
			default:
				return fmt.Errorf("%w: unexpected frame kind %d from the receiver", ErrProtocol, h.kind)
			}
		}
	}()
	s.mu.Lock()
	s.peerErr = chanErr(s.id, fmt.Errorf("%w: %w", ErrPeerGone, err))
	s.mu.Unlock()
	close(s.peerGone)
}

// Close ends the channel: it waits (up to CloseTimeout) for a send in
// progress, tells the receiver the stream ended after the last sequence
// number sent, waits (up to CloseTimeout) for the receiver to take note,
// closes the connection and stops the Sender's goroutine. Sends blocked
// waiting for credit return ErrClosed. Close is idempotent; the first call
// returns an error only when the clean end could not be delivered (later
// calls return the same).
func (s *Sender) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

// Abort ends the channel at once, without the clean end Close delivers:
// for a receiver known to be gone (its process dead or frozen), whose
// acknowledgement Close would wait CloseTimeout for. Sends in progress
// and later ones fail; Close after Abort returns the abort.
func (s *Sender) Abort() {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.closeErr = chanErr(s.id, errors.New("aborted: the receiver is gone"))
		s.conn.Close()
		s.wg.Wait()
	})
}

func (s *Sender) close() error {
	close(s.closing)
	timer := time.NewTimer(s.closeTimeout)
	defer timer.Stop()
	var err error
	select {
	case s.sem <- struct{}{}: // kept: no send can start after this
		if err = s.usable2(); err == nil {
			err = s.writeClose(timer)
		}
	case <-timer.C:
		err = chanErr(s.id, errors.New("close: a send was still writing after the close timeout"))
	}
	s.conn.Close()
	s.wg.Wait()
	return err
}

// usable2 is usable without the closing check (Close has closed it).
func (s *Sender) usable2() error {
	if s.broken != nil {
		return s.broken
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peerErr
}

// writeClose sends the close frame, half-closes, and waits until the
// receiver closes its side (it does on reading the close frame), so that
// nothing the receiver has not read is lost to a reset.
func (s *Sender) writeClose(timer *time.Timer) error {
	header{kind: wireClose, seq: s.next.Load() - 1}.put(s.hdr[:])
	s.conn.SetWriteDeadline(time.Now().Add(s.closeTimeout))
	if _, err := s.conn.Write(s.hdr[:]); err != nil {
		return chanErr(s.id, fmt.Errorf("%w: sending close: %w", ErrPeerGone, err))
	}
	if tc, ok := s.conn.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	select {
	case <-s.peerGone:
		return nil
	case <-timer.C:
		return chanErr(s.id, errors.New("close: the receiver did not acknowledge the end of the stream in time"))
	}
}
