package exec

import (
	"fmt"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// SortKey is one ORDER BY key. PostgreSQL's default is NULLS LAST for
// ascending and NULLS FIRST for descending order; the caller sets
// NullsFirst explicitly.
type SortKey struct {
	Col        int
	Desc       bool
	NullsFirst bool
}

// Sort buffers its input (retaining the batches) and, on Finish, emits
// the rows in key order (stable: ties keep input order), skipping offset
// rows and emitting at most limit rows (-1 = no limit / no offset).
// Advance emits nothing. For snapshot queries over bounded input.
type Sort struct {
	in      *arrow.Schema
	keys    []SortKey
	limit   int64
	offset  int64
	mem     memory.Allocator
	batches []arrow.RecordBatch
	rows    int
	stats   Stats
}

var _ Operator = (*Sort)(nil)

// NewSort validates keys against input. Options: WithAllocator.
func NewSort(input *arrow.Schema, keys []SortKey, limit, offset int64, opts ...Option) (*Sort, error) {
	o := buildOptions(opts)
	for _, k := range keys {
		if k.Col < 0 || k.Col >= input.NumFields() {
			return nil, fmt.Errorf("exec: NewSort: key column %d out of range", k.Col)
		}
		if p := physOf(input.Field(k.Col).Type); p == physOther {
			return nil, fmt.Errorf("exec: NewSort: cannot sort by %s", input.Field(k.Col).Type)
		}
	}
	if offset < 0 {
		offset = 0
	}
	return &Sort{in: input, keys: keys, limit: limit, offset: offset, mem: o.mem}, nil
}

// Schema is the input schema.
func (s *Sort) Schema() *arrow.Schema { return s.in }

// Stats returns the counters.
func (s *Sort) Stats() Stats {
	st := s.stats
	st.StateRows = int64(s.rows)
	return st
}

// Push retains rec until Finish or Close.
func (s *Sort) Push(rec arrow.RecordBatch, emit Emit) error {
	s.stats.RowsIn += rec.NumRows()
	if rec.NumRows() == 0 {
		return nil
	}
	rec.Retain()
	s.batches = append(s.batches, rec)
	s.rows += int(rec.NumRows())
	return nil
}

// Advance emits nothing.
func (s *Sort) Advance(wm int64, emit Emit) error { return nil }

type rowRef struct{ b, r int32 }

// Finish sorts and emits the buffered rows, then releases them.
func (s *Sort) Finish(emit Emit) error {
	defer s.release()
	refs := make([]rowRef, 0, s.rows)
	for b, rec := range s.batches {
		for r := 0; r < int(rec.NumRows()); r++ {
			refs = append(refs, rowRef{int32(b), int32(r)})
		}
	}
	if len(s.keys) > 0 {
		cols := make([][]arrow.Array, len(s.keys))
		vals := make([][]validity, len(s.keys))
		for k, key := range s.keys {
			for _, rec := range s.batches {
				cols[k] = append(cols[k], rec.Column(key.Col))
				vals[k] = append(vals[k], validityOf(rec.Column(key.Col)))
			}
		}
		sort.SliceStable(refs, func(i, j int) bool {
			a, b := refs[i], refs[j]
			for k, key := range s.keys {
				an, bn := !vals[k][a.b].valid(int(a.r)), !vals[k][b.b].valid(int(b.r))
				if an || bn {
					if an && bn {
						continue
					}
					return an == key.NullsFirst
				}
				c := compareAt(cols[k][a.b], int(a.r), cols[k][b.b], int(b.r))
				if c == 0 {
					continue
				}
				if key.Desc {
					return c > 0
				}
				return c < 0
			}
			return false
		})
	}
	lo := min(int(s.offset), len(refs))
	hi := len(refs)
	if s.limit >= 0 && int64(lo)+s.limit < int64(hi) {
		hi = lo + int(s.limit)
	}
	return emitRefs(s.mem, s.in, s.batches, refs[lo:hi], &s.stats, emit)
}

// emitRefs emits the referenced rows in chunks of maxEmitRows.
func emitRefs(mem memory.Allocator, schema *arrow.Schema, batches []arrow.RecordBatch, refs []rowRef, st *Stats, emit Emit) error {
	for start := 0; start < len(refs); start += maxEmitRows {
		part := refs[start:min(start+maxEmitRows, len(refs))]
		which := make([]int32, len(part))
		rows := make([]int32, len(part))
		for i, r := range part {
			which[i], rows[i] = r.b, r.r
		}
		cols := make([]arrow.Array, schema.NumFields())
		for c := range cols {
			srcs := make([]arrow.Array, len(batches))
			for b, rec := range batches {
				srcs[b] = rec.Column(c)
			}
			cols[c] = gather(mem, schema.Field(c).Type, srcs, which, rows)
		}
		rec := array.NewRecordBatch(schema, cols, int64(len(part)))
		releaseAll(cols)
		st.RowsOut += int64(len(part))
		err := emit(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Sort) release() {
	for _, b := range s.batches {
		b.Release()
	}
	s.batches, s.rows = nil, 0
}

// Close releases the buffered batches. Idempotent.
func (s *Sort) Close() { s.release() }

// Limit passes through at most limit rows (-1 = all) after skipping offset
// rows, in input order, without copying (emitted batches are zero-copy
// slices of the input).
type Limit struct {
	in            *arrow.Schema
	limit, offset int64
	seen, out     int64
	stats         Stats
}

var _ Operator = (*Limit)(nil)

// NewLimit returns a Limit. Options are accepted for symmetry (Limit
// allocates nothing).
func NewLimit(input *arrow.Schema, limit, offset int64, opts ...Option) *Limit {
	if offset < 0 {
		offset = 0
	}
	return &Limit{in: input, limit: limit, offset: offset}
}

// Schema is the input schema.
func (l *Limit) Schema() *arrow.Schema { return l.in }

// Stats returns the counters.
func (l *Limit) Stats() Stats { return l.stats }

// Done reports whether the limit has been reached (upstream may stop).
func (l *Limit) Done() bool { return l.limit >= 0 && l.out >= l.limit }

// Push emits the part of rec (not retained) inside the window.
func (l *Limit) Push(rec arrow.RecordBatch, emit Emit) error {
	n := rec.NumRows()
	l.stats.RowsIn += n
	start := int64(0)
	if l.seen < l.offset {
		start = min(l.offset-l.seen, n)
	}
	l.seen += n
	end := n
	if l.limit >= 0 {
		end = min(n, start+max(0, l.limit-l.out))
	}
	if end <= start {
		return nil
	}
	l.out += end - start
	l.stats.RowsOut += end - start
	if start == 0 && end == n {
		return emit(rec)
	}
	s := rec.NewSlice(start, end)
	defer s.Release()
	return emit(s)
}

// Advance emits nothing.
func (l *Limit) Advance(wm int64, emit Emit) error { return nil }

// Finish emits nothing.
func (l *Limit) Finish(emit Emit) error { return nil }

// Close does nothing. Idempotent.
func (l *Limit) Close() {}
