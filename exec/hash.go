package exec

import (
	"encoding/binary"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Hashing constants. They are fixed forever: key hashes are persisted in
// snapshots (__key_hash) and used to route rows to key ranges, so every
// process and every version must compute the same values.
const (
	hashSeed  uint64 = 0x5bd1e9955bd1e995
	hashMulK  uint64 = 0x9e3779b97f4a7c15
	hashNull  uint64 = 0x2545f4914f6cdd1d
	hashTrue  uint64 = 0x68e31da4_00000001
	hashFalse uint64 = 0x1b56c4e9_00000000
	hashStrK1 uint64 = 0xa0761d6478bd642f
	hashStrK2 uint64 = 0xe7037ed1a0b428db
	hashNaN   uint64 = 0x7ff80000deadbeef
)

// mix64 is the splitmix64 finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func hashBytes(b []byte) uint64 {
	h := hashStrK1 ^ uint64(len(b))*hashStrK2
	for len(b) >= 8 {
		h = (h ^ binary.LittleEndian.Uint64(b)) * hashStrK2
		h ^= h >> 29
		b = b[8:]
	}
	if len(b) > 0 {
		var t uint64
		for i, c := range b {
			t |= uint64(c) << (8 * uint(i))
		}
		h = (h ^ t) * hashStrK1
		h ^= h >> 32
	}
	return mix64(h)
}

func hashFloat(f float64) uint64 {
	if f == 0 {
		f = 0 // -0 and +0 group together
	}
	if f != f {
		return hashNaN // every NaN groups together
	}
	return math.Float64bits(f) * hashMulK
}

// HashColumns computes a 64-bit hash of the values of columns cols of every
// row of rec into out (grown as needed) and returns it. The hash is a pure
// function of the physical values: it is identical across processes, runs
// and versions (no random seed), NULL hashes to a fixed value, strings hash
// by their bytes, -0.0 equals 0.0 and all NaNs are equal. The runtime routes
// rows to key ranges with it and stateful operators store it as __key_hash.
// rec is not retained.
func HashColumns(rec arrow.RecordBatch, cols []int, out []uint64) []uint64 {
	arrs := make([]arrow.Array, len(cols))
	for i, c := range cols {
		arrs[i] = rec.Column(c)
	}
	return hashArrays(arrs, int(rec.NumRows()), out)
}

func hashArrays(arrs []arrow.Array, n int, out []uint64) []uint64 {
	if cap(out) < n {
		out = make([]uint64, n)
	}
	out = out[:n]
	for i := range out {
		out[i] = hashSeed
	}
	for _, a := range arrs {
		hashInto(a, out)
	}
	return out
}

// hashInto folds the hash of every value of a into h.
func hashInto(a arrow.Array, h []uint64) {
	v := validityOf(a)
	switch physOf(a.DataType()) {
	case physInt64:
		xs := Int64s(a)
		if v.all() {
			for i, x := range xs {
				h[i] = mix64(h[i] ^ uint64(x)*hashMulK)
			}
		} else {
			for i, x := range xs {
				if v.valid(i) {
					h[i] = mix64(h[i] ^ uint64(x)*hashMulK)
				} else {
					h[i] = mix64(h[i] ^ hashNull)
				}
			}
		}
	case physUint64:
		xs := Uint64s(a)
		for i, x := range xs {
			if v.valid(i) {
				h[i] = mix64(h[i] ^ x*hashMulK)
			} else {
				h[i] = mix64(h[i] ^ hashNull)
			}
		}
	case physFloat64:
		xs := Float64s(a)
		for i, x := range xs {
			if v.valid(i) {
				h[i] = mix64(h[i] ^ hashFloat(x))
			} else {
				h[i] = mix64(h[i] ^ hashNull)
			}
		}
	case physString:
		sv := stringsOf(a)
		for i := range h {
			if v.valid(i) {
				h[i] = mix64(h[i] ^ hashBytes(sv.bytes(i)))
			} else {
				h[i] = mix64(h[i] ^ hashNull)
			}
		}
	case physBool:
		b := a.(*array.Boolean)
		for i := range h {
			switch {
			case !v.valid(i):
				h[i] = mix64(h[i] ^ hashNull)
			case b.Value(i):
				h[i] = mix64(h[i] ^ hashTrue)
			default:
				h[i] = mix64(h[i] ^ hashFalse)
			}
		}
	case physNull:
		for i := range h {
			h[i] = mix64(h[i] ^ hashNull)
		}
	default:
		for i := range h {
			if v.valid(i) {
				h[i] = mix64(h[i] ^ hashBytes([]byte(a.ValueStr(i))))
			} else {
				h[i] = mix64(h[i] ^ hashNull)
			}
		}
	}
}
