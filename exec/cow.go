package exec

import (
	"slices"
	"sync/atomic"
)

// Copy-on-write state: an aggregate's per-group state lives in cowVecs, so
// a checkpoint freezes it in time proportional to the number of chunks
// (not the state's size) and builds the snapshot on another goroutine
// while the aggregate goes on; a chunk is copied only when it is written
// while a frozen copy still shares it.

const (
	cowBits = 16
	cowSize = 1 << cowBits // elements per chunk
	cowMask = cowSize - 1
)

// cowVec is a growable vector in chunks of cowSize elements (the last one
// may be shorter and grows like a slice). freeze returns a read-only copy
// that shares every chunk; the live vector copies a shared chunk before
// its first write after that (ptr), so the copy keeps the values as of the
// freeze. Elements past the end of a frozen copy may be written in place
// (grow zeroes them): the copy never reads them.
//
// Writes go through ptr (one element) or write (a batch's elements, then
// cell). Once every frozen copy of the owner is done (the counter given
// to freeze is back to zero), the flags are cleared and writes cost
// nothing extra.
type cowVec[T any] struct {
	chunks  [][]T
	shared  []bool // per chunk: a frozen copy may read it
	nshared int
	n       int
	frozen  *atomic.Int32 // the owner's frozen copies still in use
	deep    func(T) T     // copies an element that refers to memory written in place (maps); nil for plain values
}

// cell addresses element g of chunks returned by write (or of a frozen
// copy's chunks, for reading).
func cell[T any](chunks [][]T, g uint32) *T { return &chunks[g>>cowBits][g&cowMask] }

func (v *cowVec[T]) len() int { return v.n }

// at reads element i.
func (v *cowVec[T]) at(i uint32) T { return v.chunks[i>>cowBits][i&cowMask] }

// ptr returns element i for writing, copying its chunk first if a frozen
// copy shares it.
func (v *cowVec[T]) ptr(i uint32) *T {
	if v.nshared != 0 && !v.unshare() {
		v.own(i)
	}
	return &v.chunks[i>>cowBits][i&cowMask]
}

// write makes elements gids writable and returns the chunks to write
// them through with cell.
func (v *cowVec[T]) write(gids []uint32) [][]T {
	if v.nshared != 0 && !v.unshare() {
		for _, g := range gids {
			v.own(g)
		}
	}
	return v.chunks
}

// unshare clears the shared flags once no frozen copy is in use; it
// reports whether it did.
func (v *cowVec[T]) unshare() bool {
	if v.frozen.Load() != 0 {
		return false
	}
	clear(v.shared)
	v.nshared = 0
	return true
}

func (v *cowVec[T]) set(i uint32, x T) { *v.ptr(i) = x }

// own copies the chunk of element i if a frozen copy shares it.
func (v *cowVec[T]) own(i uint32) {
	c := i >> cowBits
	if !v.shared[c] {
		return
	}
	old := v.chunks[c]
	nc := make([]T, len(old), cap(old))
	copy(nc, old)
	if v.deep != nil {
		for i, x := range nc {
			nc[i] = v.deep(x)
		}
	}
	v.chunks[c], v.shared[c] = nc, false
	v.nshared--
}

// grow makes room for elements 0..n-1; new elements are zero.
func (v *cowVec[T]) grow(n int) {
	for v.n < n {
		last := len(v.chunks) - 1
		if last < 0 || len(v.chunks[last]) == cowSize {
			v.chunks = append(v.chunks, nil)
			v.shared = append(v.shared, false)
			last++
		}
		c := v.chunks[last]
		want := min(cowSize, len(c)+n-v.n)
		v.n += want - len(c)
		if want <= cap(c) {
			old := len(c)
			c = c[:want]
			clear(c[old:]) // past every frozen copy's end
		} else {
			// A shared chunk stays marked: for deep elements this copy
			// still refers to the frozen copy's maps.
			nc := make([]T, want, min(cowSize, max(want, 2*cap(c))))
			copy(nc, c)
			c = nc
		}
		v.chunks[last] = c
	}
}

// freeze returns a read-only copy of the vector as it is now. inUse
// counts the owner's frozen copies: the caller increments it before and
// decrements it when it no longer reads any of them.
func (v *cowVec[T]) freeze(inUse *atomic.Int32) cowVec[T] {
	for i := range v.shared {
		v.shared[i] = true
	}
	v.nshared = len(v.shared)
	v.frozen = inUse
	return cowVec[T]{chunks: slices.Clone(v.chunks), n: v.n}
}

// each calls f for every element in order.
func (v *cowVec[T]) each(f func(T)) {
	for _, c := range v.chunks {
		for _, x := range c {
			f(x)
		}
	}
}
