package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/spatedb/spate/cluster/auth"
)

const testToken = "s3cret-cluster-token"

// spateSchema has a column of each of Spate's physical types.
var spateSchema = arrow.NewSchema([]arrow.Field{
	{Name: "i", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "ts", Type: arrow.FixedWidthTypes.Timestamp_us, Nullable: true},
	{Name: "d", Type: arrow.FixedWidthTypes.Duration_us, Nullable: true},
}, nil)

// makeBatch builds n rows of every Spate type starting at row off; every
// nullEvery-th row is NULL in every column (0: no NULLs).
func makeBatch(mem memory.Allocator, off, n, nullEvery int) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, spateSchema)
	defer b.Release()
	for r := off; r < off+n; r++ {
		if nullEvery > 0 && r%nullEvery == 0 {
			for _, f := range b.Fields() {
				f.AppendNull()
			}
			continue
		}
		b.Field(0).(*array.Int64Builder).Append(int64(r) * 7)
		b.Field(1).(*array.Float64Builder).Append(float64(r) / 3)
		b.Field(2).(*array.StringBuilder).Append(strings.Repeat("x", r%5) + fmt.Sprint(r))
		b.Field(3).(*array.BooleanBuilder).Append(r%3 == 0)
		b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000_000_000 + int64(r)))
		b.Field(5).(*array.DurationBuilder).Append(arrow.Duration(int64(r) * 1000))
	}
	return b.NewRecordBatch()
}

// settle computes the batch's lazily counted NULLs, so that the sender
// (encoding it) and the test (comparing it) can read it at the same time.
func settle(rec arrow.RecordBatch) {
	for _, c := range rec.Columns() {
		c.NullN()
	}
}

// pair is a Listener with one connected Sender and its Receiver.
type pair struct {
	l *Listener
	s *Sender
	r *Receiver
}

func newPair(t *testing.T, lc ListenConfig, dc DialConfig, id string) pair {
	t.Helper()
	if lc.Token == "" {
		lc.Token = testToken
	}
	if dc.Token == "" {
		dc.Token = testToken
	}
	l, err := lc.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := dc.Dial(ctx, l.Addr().String(), id)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	r, err := l.Accept(ctx)
	if err != nil {
		s.Close()
		l.Close()
		t.Fatal(err)
	}
	p := pair{l, s, r}
	t.Cleanup(p.close)
	return p
}

func (p pair) close() {
	p.s.Close()
	p.r.Close()
	p.l.Close()
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// checkGoroutines fails if goroutines started during the test outlive it.
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
		}
	})
}

func TestRoundTripAllTypes(t *testing.T) {
	checkGoroutines(t)
	srcMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	sendMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	recvMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer srcMem.AssertSize(t, 0)
	defer sendMem.AssertSize(t, 0)
	defer recvMem.AssertSize(t, 0)

	l, err := ListenConfig{Token: testToken, Allocator: recvMem}.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := ctxT(t, 20*time.Second)
	const id = "q1/s2/i0->s3/i1/side0"
	s, err := DialConfig{Token: testToken, Allocator: sendMem}.Dial(ctx, l.Addr().String(), id)
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.ChannelID() != id || s.ChannelID() != id {
		t.Fatalf("channel IDs %q / %q", r.ChannelID(), s.ChannelID())
	}

	// What we send, in order; want[i] is frame seq i+1.
	var want []Frame
	full := makeBatch(srcMem, 0, 1000, 7)
	defer full.Release()
	batches := []arrow.RecordBatch{
		makeBatch(srcMem, 0, 0, 0),     // empty
		makeBatch(srcMem, 0, 1, 0),     // one row
		makeBatch(srcMem, 3, 7, 2),     // NULLs
		makeBatch(srcMem, 0, 3, 1),     // all NULL
		full.NewSlice(13, 500),         // sliced: non-zero offsets
		makeBatch(srcMem, 0, 65536, 5), // a full-size batch
	}
	for _, b := range batches {
		settle(b)
	}
	go func() {
		for i, b := range batches {
			send := s.SendWatermark
			if i%2 == 1 {
				send = s.SendIdle
			}
			if _, err := send(ctx, int64(i)*1000-5); err != nil {
				t.Error(err)
				return
			}
			if _, err := s.SendBatch(ctx, b); err != nil {
				t.Error(err)
				return
			}
			sendBarrier := s.SendBarrier
			if i%3 == 2 {
				sendBarrier = s.SendCheckpoint
			}
			if _, err := sendBarrier(ctx, Barrier{ID: uint64(i) << 40, Source: uint32(i)}); err != nil {
				t.Error(err)
				return
			}
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	for i, b := range batches {
		want = append(want,
			Frame{Kind: KindWatermark, Watermark: int64(i)*1000 - 5, Idle: i%2 == 1},
			Frame{Kind: KindBatch, Rec: b},
			Frame{Kind: map[bool]Kind{false: KindBarrier, true: KindCheckpoint}[i%3 == 2], Barrier: Barrier{ID: uint64(i) << 40, Source: uint32(i)}})
	}
	for i, w := range want {
		f, err := r.Recv(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Seq != uint64(i+1) || f.Kind != w.Kind {
			t.Fatalf("frame %d: seq %d kind %v, want seq %d kind %v", i, f.Seq, f.Kind, i+1, w.Kind)
		}
		if r.Position() != f.Seq {
			t.Fatalf("position %d after frame %d", r.Position(), f.Seq)
		}
		switch f.Kind {
		case KindBatch:
			if !f.Rec.Schema().Equal(spateSchema) {
				t.Fatalf("schema %s", f.Rec.Schema())
			}
			if !array.RecordEqual(f.Rec, w.Rec) {
				t.Fatalf("batch %d differs:\ngot  %v\nwant %v", i, f.Rec, w.Rec)
			}
			f.Rec.Release()
		case KindWatermark:
			if f.Watermark != w.Watermark || f.Idle != w.Idle {
				t.Fatalf("watermark %d (idle %v), want %d (idle %v)", f.Watermark, f.Idle, w.Watermark, w.Idle)
			}
		case KindBarrier, KindCheckpoint:
			if f.Barrier != w.Barrier {
				t.Fatalf("barrier %+v, want %+v", f.Barrier, w.Barrier)
			}
		}
	}
	if _, err := r.Recv(ctx); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
	if _, err := r.Recv(ctx); err != io.EOF {
		t.Fatalf("again: %v, want io.EOF", err)
	}
	st := r.Stats()
	if st.Delivered != uint64(len(want)) || st.Batches != uint64(len(batches)) || st.QueuedFrames != 0 {
		t.Fatalf("receiver stats %+v", st)
	}
	if ss := s.Stats(); ss.Frames != uint64(len(want)) || ss.Bytes != st.Bytes || ss.Rows != st.Rows {
		t.Fatalf("sender stats %+v, receiver %+v", ss, st)
	}
	for _, b := range batches {
		b.Release()
	}
	r.Close()
}

// TestZeroCopyReceive checks that a received batch's columns are views
// over one body buffer read from the socket, not copies.
func TestZeroCopyReceive(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := newPair(t, ListenConfig{Allocator: mem}, DialConfig{}, "zc")
	ctx := ctxT(t, 10*time.Second)
	rec := makeBatch(memory.DefaultAllocator, 0, 4096, 0)
	defer rec.Release()
	if _, err := p.s.SendBatch(ctx, rec); err != nil {
		t.Fatal(err)
	}
	f, err := p.r.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// One allocation holds the whole body; every column's data lies in it.
	body := mem.CurrentAlloc()
	i64 := f.Rec.Column(0).(*array.Int64).Int64Values()
	if body < 4096*8*4 || len(i64) != 4096 || i64[1] != 7 {
		t.Fatalf("body of %d bytes, values %v…", body, i64[:2])
	}
	f.Rec.Release()
	if mem.CurrentAlloc() != 0 {
		t.Fatalf("%d bytes still allocated after the only batch was released", mem.CurrentAlloc())
	}
}

func TestManyChannelsOneListener(t *testing.T) {
	checkGoroutines(t)
	l, err := Listen("127.0.0.1:0", testToken)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := ctxT(t, 20*time.Second)
	const n, frames = 4, 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Dial(ctx, l.Addr().String(), testToken, fmt.Sprintf("q/s0/i%d->s1/i0/side0", i))
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			for j := range frames {
				if _, err := s.SendWatermark(ctx, int64(i*1_000_000+j)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	seen := map[string]bool{}
	var rwg sync.WaitGroup
	for range n {
		r, err := l.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if seen[r.ChannelID()] {
			t.Fatalf("channel %q twice", r.ChannelID())
		}
		seen[r.ChannelID()] = true
		var i int
		fmt.Sscanf(r.ChannelID(), "q/s0/i%d", &i)
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			defer r.Close()
			for j := range frames {
				f, err := r.Recv(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if f.Seq != uint64(j+1) || f.Watermark != int64(i*1_000_000+j) {
					t.Errorf("channel %d frame %d: %+v", i, j, f)
					return
				}
			}
			if _, err := r.Recv(ctx); err != io.EOF {
				t.Errorf("channel %d: %v, want io.EOF", i, err)
			}
		}()
	}
	wg.Wait()
	rwg.Wait()
}

// TestConcurrentSends: frames sent from several goroutines get distinct,
// gap-free sequence numbers, delivered in order.
func TestConcurrentSends(t *testing.T) {
	p := newPair(t, ListenConfig{Window: 4 << 10}, DialConfig{}, "conc")
	ctx := ctxT(t, 20*time.Second)
	const senders, each = 4, 500
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := uint64(0)
			for range each {
				seq, err := p.s.SendWatermark(ctx, 1)
				if err != nil {
					t.Error(err)
					return
				}
				if seq <= last {
					t.Errorf("seq %d after %d", seq, last)
				}
				last = seq
			}
		}()
	}
	for i := range senders * each {
		f, err := p.r.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Seq != uint64(i+1) {
			t.Fatalf("frame %d has seq %d", i, f.Seq)
		}
	}
	wg.Wait()
	if p.s.NextSeq() != senders*each+1 {
		t.Fatalf("next seq %d", p.s.NextSeq())
	}
}

func TestWrongTokenRefused(t *testing.T) {
	checkGoroutines(t)
	l, err := Listen("127.0.0.1:0", testToken)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := ctxT(t, 10*time.Second)
	_, err = Dial(ctx, l.Addr().String(), "not-the-token", "q1/x")
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("dial with a wrong token: %v, want ErrUnauthorized", err)
	}
	t.Log("sender:", err)
	r, err := l.Accept(ctx)
	if r != nil || !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "cluster token") ||
		!strings.Contains(err.Error(), `"q1/x"`) || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("accept: %v, want a refusal naming the peer, channel and token", err)
	}
	t.Log("listener:", err)

	// The listener still works for a peer with the right token.
	p, err := Dial(ctx, l.Addr().String(), testToken, "q1/y")
	if err != nil {
		t.Fatal(err)
	}
	r, err = l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	r.Close()
}

// TestImpostorSenderRefused: a client that skips checking the receiver's
// proof and sends a made-up MAC is refused with a reason, and the listener
// reports ErrUnauthorized.
func TestImpostorSenderRefused(t *testing.T) {
	l, err := Listen("127.0.0.1:0", testToken)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write(handshake.Hello(make([]byte, auth.NonceSize), "abc"))
	ch := make([]byte, 7+auth.NonceSize+auth.MACSize)
	if _, err := io.ReadFull(conn, ch); err != nil {
		t.Fatal(err)
	}
	conn.Write(make([]byte, auth.MACSize)) // a proof made up without the token
	var st [1]byte
	io.ReadFull(conn, st[:])
	if err := handshake.ReadRefusal(conn, st[0]); st[0] != auth.StatusUnauthorized || !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("status %d, %v", st[0], err)
	}
	if _, err := l.Accept(ctxT(t, 5*time.Second)); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("accept: %v", err)
	}
}

// TestImpostorReceiverRefused: a listener that cannot prove the token
// gets no proof from the sender, and Dial fails.
func TestImpostorReceiverRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		hello := make([]byte, 24+4)
		io.ReadFull(conn, hello)
		ch := append([]byte(handshake.Magic), protocolVersion, 0, auth.StatusOK)
		ch = append(ch, make([]byte, auth.NonceSize+auth.MACSize)...) // a made-up MAC
		conn.Write(ch)
		n, _ := io.Copy(io.Discard, conn) // the sender must send nothing more
		got <- int(n)
	}()
	_, err = Dial(ctxT(t, 10*time.Second), ln.Addr().String(), testToken, "q1/z")
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("dial: %v, want ErrUnauthorized", err)
	}
	if n := <-got; n != 0 {
		t.Fatalf("the sender sent %d bytes to an impostor after its challenge", n)
	}
}

func TestProtocolVersionRefused(t *testing.T) {
	l, err := Listen("127.0.0.1:0", testToken)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	old := handshake
	old.Version = 99
	conn.Write(old.Hello(make([]byte, auth.NonceSize), "a"))
	head := make([]byte, 7)
	if _, err := io.ReadFull(conn, head); err != nil {
		t.Fatal(err)
	}
	if err := handshake.ReadRefusal(conn, head[6]); !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "version 99") {
		t.Fatalf("%v", err)
	}
	if _, err := l.Accept(ctxT(t, 5*time.Second)); !errors.Is(err, ErrHandshake) {
		t.Fatalf("accept: %v", err)
	}
}

func TestHandshakeTimeouts(t *testing.T) {
	checkGoroutines(t)
	// A peer that connects and says nothing is dropped after the timeout.
	l, err := ListenConfig{Token: testToken, HandshakeTimeout: 100 * time.Millisecond}.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := l.Accept(ctxT(t, 5*time.Second)); !errors.Is(err, ErrHandshake) {
		t.Fatalf("accept: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}

	// A listener that never answers makes Dial time out.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	start = time.Now()
	_, err = DialConfig{Token: testToken, HandshakeTimeout: 100 * time.Millisecond}.Dial(context.Background(), ln.Addr().String(), "c")
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("dial to a silent listener: %v after %v", err, time.Since(start))
	}
	// ... and so does the caller's context.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, ln.Addr().String(), testToken, "c")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial with a short context: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := Listen("127.0.0.1:0", ""); err == nil {
		t.Fatal("empty token accepted by Listen")
	}
	if _, err := Dial(context.Background(), "127.0.0.1:1", "", "c"); err == nil {
		t.Fatal("empty token accepted by Dial")
	}
	if _, err := Dial(context.Background(), "127.0.0.1:1", "t", ""); err == nil {
		t.Fatal("empty channel ID accepted")
	}
	if err := (ListenConfig{Token: "t", Window: -1}).Validate(); err == nil {
		t.Fatal("negative window accepted")
	}
}

// TestAttachLog: a log attached before a batch, a watermark or a barrier
// arrives with that frame only; frames without one carry none; a window
// smaller than a log and its frame together still lets them through.
func TestAttachLog(t *testing.T) {
	p := newPair(t, ListenConfig{Window: 4096}, DialConfig{}, "log")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	big := make([]byte, 6000)
	for i := range big {
		big[i] = byte(i)
	}
	rec := makeBatch(memory.DefaultAllocator, 0, 10, 0)
	defer rec.Release()
	go func() {
		must := func(err error) {
			if err != nil {
				t.Error(err)
			}
		}
		must(p.s.AttachLog([]byte("first")))
		_, err := p.s.SendBatch(ctx, rec)
		must(err)
		_, err = p.s.SendWatermark(ctx, 7)
		must(err)
		must(p.s.AttachLog(big))
		_, err = p.s.SendCheckpoint(ctx, Barrier{ID: 3})
		must(err)
		must(p.s.AttachLog([]byte("last")))
		_, err = p.s.SendWatermark(ctx, 8)
		must(err)
	}()
	want := []string{"first", "", string(big), "last"}
	for i, w := range want {
		f, err := p.r.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Rec != nil {
			f.Rec.Release()
		}
		if string(f.Log) != w {
			t.Errorf("frame %d (%s): log of %d bytes, want %d", i, f.Kind, len(f.Log), len(w))
		}
	}
	if err := p.s.AttachLog(nil); err == nil {
		t.Error("an empty log was accepted")
	}
}
