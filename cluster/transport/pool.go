package transport

import (
	"math/bits"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// BodyPool is a memory.Allocator that recycles large buffers: a buffer
// freed (its last Arrow reference released) is kept and handed out again
// for a similar size, instead of the Go heap allocating, zeroing and
// later collecting a fresh one. Used as ListenConfig.Allocator it roughly
// doubles a channel's throughput on 64K-row batches (see the package
// doc), because receive bodies are large, short-lived and of similar
// sizes.
//
// The price: a batch used after its last Release reads memory that may
// already hold another batch, where the Go allocator would have kept the
// old bytes alive. Use it only behind consumers that follow Arrow's
// reference counting (the checked-allocator tests show they do).
//
// Buffers of at least 64 KiB are pooled, in size classes an eighth of a
// power of two apart (so a buffer may be up to 1/8 larger than asked);
// smaller ones come from the Go allocator. At most maxIdle bytes are kept
// unused; beyond that freed buffers go to the garbage collector. Safe for
// concurrent use; one pool can serve every Receiver of a Listener.
type BodyPool struct {
	small   memory.Allocator
	maxIdle int64

	mu sync.Mutex
	// protected by mu
	free map[int][][]byte // unused buffers by capacity (a class size)
	idle int64            // bytes in free
}

var _ memory.Allocator = (*BodyPool)(nil)

// DefaultMaxIdle is the bound on unused bytes of NewBodyPool(0).
const DefaultMaxIdle = 64 << 20

const (
	minPooled     = 64 << 10
	poolAlignment = 64 // as memory.GoAllocator
)

// NewBodyPool returns a pool keeping at most maxIdle bytes of unused
// buffers (DefaultMaxIdle, 64 MiB, when maxIdle <= 0).
func NewBodyPool(maxIdle int64) *BodyPool {
	if maxIdle <= 0 {
		maxIdle = DefaultMaxIdle
	}
	return &BodyPool{small: memory.NewGoAllocator(), maxIdle: maxIdle, free: map[int][][]byte{}}
}

// sizeClass rounds n (>= minPooled) up to a multiple of an eighth of the
// largest power of two not above it.
func sizeClass(n int) int {
	step := 1 << (bits.Len(uint(n)) - 1) >> 3
	return (n + step - 1) / step * step
}

// Allocate returns a buffer of size bytes, 64-byte aligned. A recycled
// buffer is not zeroed.
func (p *BodyPool) Allocate(size int) []byte {
	if size < minPooled {
		return p.small.Allocate(size)
	}
	c := sizeClass(size)
	p.mu.Lock()
	if l := p.free[c]; len(l) > 0 {
		b := l[len(l)-1]
		l[len(l)-1] = nil
		p.free[c] = l[:len(l)-1]
		p.idle -= int64(c)
		p.mu.Unlock()
		return b[:size]
	}
	p.mu.Unlock()
	b := make([]byte, c)
	if uintptr(unsafe.Pointer(unsafe.SliceData(b)))%poolAlignment != 0 {
		// Never seen for large objects (they start on a page); if the
		// runtime ever does this, fall back to the aligning allocator,
		// whose buffers Free does not take back.
		return p.small.Allocate(size)
	}
	return b[:size]
}

// Reallocate grows or shrinks b to size, keeping its contents.
func (p *BodyPool) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) && (cap(b) < minPooled || sizeClass(size) == cap(b)) {
		return b[:size]
	}
	nb := p.Allocate(size)
	copy(nb, b)
	p.Free(b)
	return nb
}

// Free takes back a buffer from Allocate. Buffers it did not pool
// (small, or not one of its classes) are left to the garbage collector.
func (p *BodyPool) Free(b []byte) {
	c := cap(b)
	if c < minPooled || sizeClass(c) != c || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%poolAlignment != 0 {
		return
	}
	p.mu.Lock()
	if p.idle+int64(c) <= p.maxIdle {
		p.free[c] = append(p.free[c], b[:c])
		p.idle += int64(c)
	}
	p.mu.Unlock()
}

// Idle is the number of bytes kept unused for reuse.
func (p *BodyPool) Idle() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.idle
}
