package transport

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestBackPressure: a receiver that stops reading makes SendBatch block
// until its context ends, with no more than the window queued; the Sender
// stays usable and resumes once the consumer reads again.
func TestBackPressure(t *testing.T) {
	checkGoroutines(t)
	const window = 1 << 20
	recvMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer recvMem.AssertSize(t, 0)
	p := newPair(t, ListenConfig{Window: window, Allocator: recvMem}, DialConfig{}, "bp")
	rec := makeBatch(memory.DefaultAllocator, 0, 8192, 0) // ~330 KB on the wire
	defer rec.Release()

	sent := 0
	var blocked error
	for sent < 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := p.s.SendBatch(ctx, rec)
		cancel()
		if err != nil {
			blocked = err
			break
		}
		sent++
	}
	if !errors.Is(blocked, context.DeadlineExceeded) {
		t.Fatalf("after %d batches: %v, want the send to block until its deadline", sent, blocked)
	}
	ss, rs := p.s.Stats(), p.r.Stats()
	t.Logf("%d batches (%d bytes) sent before blocking; receiver queue %d frames, %d bytes; receiver memory %d bytes; waited %v",
		sent, ss.Bytes, rs.QueuedFrames, rs.QueuedBytes, recvMem.CurrentAlloc(), ss.CreditWait)
	if sent == 0 || ss.Bytes > window || rs.QueuedBytes > window || recvMem.CurrentAlloc() > window {
		t.Fatalf("memory not bounded by the window: %+v %+v, %d bytes allocated", ss, rs, recvMem.CurrentAlloc())
	}
	if ss.CreditWait < 250*time.Millisecond {
		t.Fatalf("credit wait %v", ss.CreditWait)
	}

	// The consumer comes back: the blocked-then-failed send consumed no
	// sequence number, and sending resumes.
	ctx := ctxT(t, 10*time.Second)
	done := make(chan error, 1)
	go func() {
		for i := range sent + 3 {
			f, err := p.r.Recv(ctx)
			if err != nil {
				done <- err
				return
			}
			f.Rec.Release()
			if f.Seq != uint64(i+1) {
				done <- errors.New("sequence out of order")
				return
			}
		}
		done <- nil
	}()
	for range 3 {
		if _, err := p.s.SendBatch(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestOversizedFrame: a batch larger than the whole window is sent when
// nothing else is outstanding; one larger than the receiver's maximum is
// refused without breaking the channel.
func TestOversizedFrame(t *testing.T) {
	p := newPair(t, ListenConfig{Window: 64 << 10, MaxFrameBytes: 1 << 20}, DialConfig{}, "big")
	rec := makeBatch(memory.DefaultAllocator, 0, 8192, 0) // ~330 KB
	defer rec.Release()
	huge := makeBatch(memory.DefaultAllocator, 0, 40000, 0) // ~1.6 MB
	defer huge.Release()
	ctx := ctxT(t, 10*time.Second)

	if _, err := p.s.SendBatch(ctx, huge); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("over the max frame size: %v", err)
	}
	if seq, err := p.s.SendBatch(ctx, rec); err != nil || seq != 1 {
		t.Fatalf("first oversized batch: seq %d, %v", seq, err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err := p.s.SendBatch(short, rec)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second oversized batch while the first is outstanding: %v", err)
	}
	f, err := p.r.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.Rec.Release()
	if seq, err := p.s.SendBatch(ctx, rec); err != nil || seq != 2 {
		t.Fatalf("after the consumer took the first: seq %d, %v", seq, err)
	}
	f, err = p.r.Recv(ctx)
	if err != nil || f.Seq != 2 {
		t.Fatalf("seq %d, %v", f.Seq, err)
	}
	f.Rec.Release()
}

// TestResumeDropsDuplicates: after a downstream recovery, the upstream
// replays from its buffer, starting before the restored checkpoint's
// position; the new Receiver, resumed at that position, drops what it had
// and delivers the rest exactly once.
func TestResumeDropsDuplicates(t *testing.T) {
	checkGoroutines(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	l, err := ListenConfig{Token: testToken, Allocator: mem}.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := ctxT(t, 10*time.Second)
	batches := make([]arrow.RecordBatch, 9) // batches[seq]
	for i := range batches {
		batches[i] = makeBatch(memory.DefaultAllocator, i*10, 10, 3)
		defer batches[i].Release()
	}

	// First life: seqs 1..5 sent, 1..3 consumed, then the receiver dies.
	s1, err := Dial(ctx, l.Addr().String(), testToken, "q/a->b")
	if err != nil {
		t.Fatal(err)
	}
	r1, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := 1; seq <= 5; seq++ {
		if got, err := s1.SendBatch(ctx, batches[seq]); err != nil || got != uint64(seq) {
			t.Fatalf("send %d: %d, %v", seq, got, err)
		}
	}
	for seq := 1; seq <= 3; seq++ {
		f, err := r1.Recv(ctx)
		if err != nil || f.Seq != uint64(seq) {
			t.Fatalf("recv: %d, %v", f.Seq, err)
		}
		f.Rec.Release()
	}
	checkpoint := r1.Position()
	r1.Close()
	s1.Close()

	// Second life: the upstream replays its buffer from 2 on a new channel.
	s2, err := DialConfig{Token: testToken, FirstSeq: 2}.Dial(ctx, l.Addr().String(), "q/a->b")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	for seq := 2; seq <= 8; seq++ {
		if got, err := s2.SendBatch(ctx, batches[seq]); err != nil || got != uint64(seq) {
			t.Fatalf("replay %d: %d, %v", seq, got, err)
		}
	}
	s2.Close()
	// Resume after the frames are already queued: they are judged anew.
	for r2.Stats().Frames < 7 {
		time.Sleep(time.Millisecond)
	}
	r2.Resume(checkpoint)
	for seq := checkpoint + 1; seq <= 8; seq++ {
		f, err := r2.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Seq != seq || !array.RecordEqual(f.Rec, batches[seq]) {
			t.Fatalf("got seq %d, want %d (or a different batch)", f.Seq, seq)
		}
		f.Rec.Release()
	}
	if _, err := r2.Recv(ctx); err != io.EOF {
		t.Fatalf("%v, want io.EOF", err)
	}
	if st := r2.Stats(); st.Dropped != 2 || st.Delivered != 5 {
		t.Fatalf("stats %+v", st)
	}
	r2.Close()
}

// TestSequenceGap: a frame that skips sequence numbers is an error, also
// after Resume, and the error sticks.
func TestSequenceGap(t *testing.T) {
	for _, c := range []struct {
		name   string
		resume uint64
		first  uint64
		want   string
	}{
		{"fresh receiver, sender starts at 5", 0, 5, "got sequence number 5 after 0 (a gap)"},
		{"resumed at 3, sender starts at 6", 3, 6, "got sequence number 6 after 3 (a gap)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPair(t, ListenConfig{}, DialConfig{FirstSeq: c.first}, "gap")
			ctx := ctxT(t, 10*time.Second)
			if c.resume > 0 {
				p.r.Resume(c.resume)
			}
			if _, err := p.s.SendWatermark(ctx, 1); err != nil {
				t.Fatal(err)
			}
			_, err := p.r.Recv(ctx)
			if !errors.Is(err, ErrSequence) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want %q", err, c.want)
			}
			if _, err2 := p.r.Recv(ctx); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("second Recv: %v", err2)
			}
			// The receiver hung up, so the sender learns it too.
			for {
				if _, err := p.s.SendWatermark(ctx, 2); err != nil {
					if !errors.Is(err, ErrPeerGone) {
						t.Fatalf("sender: %v", err)
					}
					break
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

func TestCloseUnblocksAndIsIdempotent(t *testing.T) {
	checkGoroutines(t)
	p := newPair(t, ListenConfig{Window: 1 << 10}, DialConfig{}, "close")
	ctx := ctxT(t, 10*time.Second)

	// Fill the window, then block a send; Close releases it with ErrClosed.
	for {
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := p.s.SendWatermark(short, 1)
		cancel()
		if err != nil {
			break
		}
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := p.s.SendWatermark(ctx, 2)
		blocked <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := p.s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := <-blocked; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked send: %v", err)
	}
	if err := p.s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := p.s.SendWatermark(ctx, 3); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
	// The receiver still delivers what was queued, then io.EOF.
	n := 0
	for {
		_, err := p.r.Recv(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 1<<10/headerSize {
		t.Fatalf("%d frames before EOF, want %d", n, 1<<10/headerSize)
	}

	// A Recv blocked on an idle channel is released by Close.
	q := newPair(t, ListenConfig{}, DialConfig{}, "close2")
	got := make(chan error, 1)
	go func() {
		_, err := q.r.Recv(ctx)
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	q.r.Close()
	q.r.Close()
	if err := <-got; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked recv: %v", err)
	}
	if _, err := q.r.Recv(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("recv after close: %v", err)
	}
	// ... and the sender is told.
	for {
		_, err := q.s.SendWatermark(ctx, 1)
		if err != nil {
			if !errors.Is(err, ErrPeerGone) {
				t.Fatalf("sender after the receiver closed: %v", err)
			}
			t.Log(err)
			break
		}
		time.Sleep(time.Millisecond)
	}

	// Recv honours its context.
	r := newPair(t, ListenConfig{}, DialConfig{}, "close3")
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := r.r.Recv(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("recv with a short context: %v", err)
	}
}

// TestListenerCloseClosesPending: Receivers handshaken but never taken by
// Accept are closed with the Listener, and their senders are told.
func TestListenerCloseClosesPending(t *testing.T) {
	checkGoroutines(t)
	l, err := Listen("127.0.0.1:0", testToken)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	var senders []*Sender
	for range 3 {
		s, err := Dial(ctx, l.Addr().String(), testToken, "pending")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		senders = append(senders, s)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := l.Accept(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("accept after close: %v", err)
	}
	for _, s := range senders {
		for {
			if _, err := s.SendWatermark(ctx, 1); err != nil {
				if !errors.Is(err, ErrPeerGone) {
					t.Fatal(err)
				}
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestAbort: Abort ends a channel at once, without the clean end: a send
// blocked on credit fails with ErrClosed, Close then reports the abort,
// and the receiver gets an error after what was queued, not io.EOF.
func TestAbort(t *testing.T) {
	checkGoroutines(t)
	p := newPair(t, ListenConfig{Window: 1 << 10}, DialConfig{}, "abort")
	ctx := ctxT(t, 10*time.Second)
	for {
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := p.s.SendWatermark(short, 1)
		cancel()
		if err != nil {
			break
		}
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := p.s.SendWatermark(ctx, 2)
		blocked <- err
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	p.s.Abort()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Abort took %v", took)
	}
	if err := <-blocked; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked send: %v", err)
	}
	if err := p.s.Close(); err == nil || !strings.Contains(err.Error(), "aborted") {
		t.Fatalf("close after abort: %v", err)
	}
	for {
		_, err := p.r.Recv(ctx)
		if err == io.EOF {
			t.Fatal("the receiver saw a clean end after an abort")
		}
		if err != nil {
			break
		}
	}
}
