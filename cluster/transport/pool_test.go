package transport

import (
	"testing"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestSizeClass(t *testing.T) {
	for _, c := range []struct{ n, want int }{
		{64 << 10, 64 << 10},
		{64<<10 + 1, 72 << 10},
		{2_075_616, 2 << 20},
		{1 << 20, 1 << 20},
		{1<<20 + 1, 1<<20 + 128<<10},
	} {
		if got := sizeClass(c.n); got != c.want {
			t.Errorf("sizeClass(%d) = %d, want %d", c.n, got, c.want)
		}
		if got := sizeClass(c.n); got < c.n || got > c.n+c.n/8 {
			t.Errorf("sizeClass(%d) = %d: outside [n, n+n/8]", c.n, got)
		}
	}
}

func TestBodyPoolRecycles(t *testing.T) {
	p := NewBodyPool(3 << 20)
	a := p.Allocate(2_000_000)
	if len(a) != 2_000_000 || uintptr(unsafe.Pointer(&a[0]))%64 != 0 {
		t.Fatalf("len %d, address %p", len(a), &a[0])
	}
	p.Free(a)
	if p.Idle() != 2<<20 {
		t.Fatalf("idle %d", p.Idle())
	}
	b := p.Allocate(2_050_000) // same class: the same memory again
	if &b[0] != &a[0] || p.Idle() != 0 {
		t.Fatal("a buffer of the same class was not reused")
	}
	c := p.Allocate(2_090_000)
	p.Free(b)
	p.Free(c) // over maxIdle: left to the GC
	if p.Idle() != 2<<20 {
		t.Fatalf("idle %d, want the bound to hold", p.Idle())
	}
	small := p.Allocate(100)
	if len(small) != 100 || uintptr(unsafe.Pointer(&small[0]))%64 != 0 {
		t.Fatal("small allocation")
	}
	p.Free(small)
	if p.Idle() != 2<<20 {
		t.Fatal("a small buffer was pooled")
	}
	grown := p.Reallocate(3_000_000, p.Allocate(70_000))
	if len(grown) != 3_000_000 {
		t.Fatal("reallocate")
	}
}

// TestBodyPoolStream streams batches through a receiver whose bodies come
// from a BodyPool, holding some batches while newer ones arrive: a body
// recycled too early would show up as a changed batch.
func TestBodyPoolStream(t *testing.T) {
	mem := memory.NewCheckedAllocator(NewBodyPool(0))
	defer mem.AssertSize(t, 0)
	p := newPair(t, ListenConfig{Allocator: mem, Window: 1 << 20}, DialConfig{}, "pool")
	ctx := ctxT(t, 20*time.Second)
	const n = 40
	batches := make([]arrow.RecordBatch, n)
	for i := range batches {
		batches[i] = makeBatch(memory.DefaultAllocator, i*1000, 2000+i*37, 5)
		settle(batches[i])
		defer batches[i].Release()
	}
	sent := make(chan struct{})
	defer func() { <-sent }() // before the batches are released
	go func() {
		defer close(sent)
		for _, b := range batches {
			if _, err := p.s.SendBatch(ctx, b); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var held []Frame
	for range n {
		f, err := p.r.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, f)
		if len(held) == 4 { // check and release the oldest ones late
			for _, h := range held[:2] {
				if !array.RecordEqual(h.Rec, batches[h.Seq-1]) {
					t.Fatalf("batch %d changed while held", h.Seq)
				}
				h.Rec.Release()
			}
			held = held[2:]
		}
	}
	for _, h := range held {
		if !array.RecordEqual(h.Rec, batches[h.Seq-1]) {
			t.Fatalf("batch %d changed while held", h.Seq)
		}
		h.Rec.Release()
	}
	p.r.Close()
}
