package exec

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// acc is the columnar state of one aggregate, indexed by group (or
// session) id.
type acc interface {
	// grow makes room for groups 0..n-1 (new groups start empty).
	grow(n int)
	// update folds rows (nil = 0..len(gids)-1) of a into groups gids.
	update(gids []uint32, rows []int32, a arrow.Array) error
	// merge folds group src into dst (session windows).
	merge(dst, src uint32) error
	// reset empties group g for reuse.
	reset(g uint32)
	// result returns the final values of groups gids.
	result(mem memory.Allocator, gids []uint32) arrow.Array
	// state exports the raw state of groups gids as columns (snapshot).
	state(mem memory.Allocator, gids []uint32) []arrow.Array
	stateFields(prefix string) []arrow.Field
	// load sets groups gids from state columns (row j -> gids[j]).
	load(cols []arrow.Array, gids []uint32)
	bytes() int64
	// frozen returns a read-only copy of the state as it is now, sharing
	// it copy-on-write (see cowVec): result, state and values may be
	// called on the copy from another goroutine while this one goes on.
	frozen(inUse *atomic.Int32) acc
}

// aggDesc is a resolved AggSpec.
type aggDesc struct {
	spec   AggSpec
	inType arrow.DataType // nil for COUNT(*)
	out    arrow.DataType
}

func resolveAgg(spec AggSpec, in *arrow.Schema) (aggDesc, error) {
	d := aggDesc{spec: spec}
	if spec.Kind != AggCountStar {
		if spec.Arg < 0 || spec.Arg >= in.NumFields() {
			return d, fmt.Errorf("exec: aggregate %s: argument column %d out of range", spec.Name, spec.Arg)
		}
		d.inType = in.Field(spec.Arg).Type
	}
	p := physNull
	if d.inType != nil {
		p = physOf(d.inType)
	}
	switch spec.Kind {
	case AggCountStar, AggCount, AggCountDistinct:
		d.out = tInt
	case AggSum:
		switch {
		case p == physInt64 && isIntv(d.inType):
			d.out = d.inType
		case p == physInt64 && !isTS(d.inType):
			d.out = tInt
		case p == physFloat64:
			d.out = tFloat
		default:
			return d, &Error{Code: CodeUndefinedFunction, Message: fmt.Sprintf("function sum(%s) does not exist", pgTypeName(d.inType))}
		}
	case AggAvg:
		switch {
		case p == physInt64 && isIntv(d.inType):
			d.out = d.inType
		case p == physInt64 && !isTS(d.inType), p == physFloat64:
			d.out = tFloat
		default:
			return d, &Error{Code: CodeUndefinedFunction, Message: fmt.Sprintf("function avg(%s) does not exist", pgTypeName(d.inType))}
		}
	case AggMin, AggMax:
		switch p {
		case physInt64, physFloat64, physString, physBool, physUint64:
			d.out = d.inType
		default:
			return d, &Error{Code: CodeUndefinedFunction, Message: fmt.Sprintf("function min/max(%s) does not exist", pgTypeName(d.inType))}
		}
	default:
		return d, fmt.Errorf("exec: unknown aggregate kind %d", spec.Kind)
	}
	if spec.Type != nil && physOf(spec.Type) != physOf(d.out) {
		return d, fmt.Errorf("exec: aggregate %s: planner type %s, kernel produces %s", spec.Name, spec.Type, d.out)
	}
	if spec.Type != nil {
		d.out = spec.Type
	}
	return d, nil
}

func newAcc(d aggDesc) acc {
	switch d.spec.Kind {
	case AggCountStar:
		return &countAcc{star: true}
	case AggCount:
		return &countAcc{}
	case AggCountDistinct:
		return newDistinctAcc(d.inType)
	case AggSum:
		if physOf(d.inType) == physFloat64 {
			return &sumFloatAcc{}
		}
		return &sumIntAcc{dt: d.out, intv: isIntv(d.inType)}
	case AggAvg:
		if physOf(d.inType) == physFloat64 {
			return &sumFloatAcc{avg: true}
		}
		return &avgIntAcc{dt: d.out, intv: isIntv(d.inType)}
	case AggMin, AggMax:
		switch physOf(d.inType) {
		case physInt64:
			return &minMaxInt{dt: d.inType, minMaxOf: minMaxOf[int64]{max: d.spec.Kind == AggMax}}
		case physUint64:
			return &minMaxUint{dt: d.inType, minMaxOf: minMaxOf[uint64]{max: d.spec.Kind == AggMax}}
		case physFloat64:
			return &minMaxFloat{minMaxOf[float64]{max: d.spec.Kind == AggMax}}
		case physString:
			return &minMaxString{minMaxOf[string]{max: d.spec.Kind == AggMax}}
		case physBool:
			return &minMaxBool{max: d.spec.Kind == AggMax}
		}
	}
	panic("exec: newAcc: unresolved aggregate")
}

func growTo[T any](s []T, n int) []T {
	if len(s) >= n {
		return s
	}
	if cap(s) >= n {
		old := len(s)
		s = s[:n]
		var zero T
		for i := old; i < n; i++ {
			s[i] = zero
		}
		return s
	}
	ns := make([]T, n, max(n, 2*cap(s)))
	copy(ns, s)
	return ns
}

func int64Col(mem memory.Allocator, dt arrow.DataType, gids []uint32, get func(g uint32) (int64, bool)) arrow.Array {
	n := len(gids)
	buf, out := allocInt64(mem, n)
	vb, vbits := allocBits(mem, n)
	for j, g := range gids {
		v, ok := get(g)
		out[j] = v
		if ok {
			setBit(vbits, j)
		}
	}
	return makeFixed(dt, n, vb, buf)
}

func float64Col(mem memory.Allocator, gids []uint32, get func(g uint32) (float64, bool)) arrow.Array {
	n := len(gids)
	buf, out := allocFloat64(mem, n)
	vb, vbits := allocBits(mem, n)
	for j, g := range gids {
		v, ok := get(g)
		out[j] = v
		if ok {
			setBit(vbits, j)
		}
	}
	return makeFixed(tFloat, n, vb, buf)
}

// gatherInt64 builds an array of vals[g] for g in gids; a value is valid
// when has[g] (has != nil) or cnt[g] > 0 (cnt != nil), else always.
func gatherInt64(mem memory.Allocator, dt arrow.DataType, vals *cowVec[int64], gids []uint32, has *cowVec[bool], cnt *cowVec[int64]) arrow.Array {
	n := len(gids)
	buf, out := allocInt64(mem, n)
	vc := vals.chunks
	for j, g := range gids {
		out[j] = *cell(vc, g)
	}
	if has == nil && cnt == nil {
		return makeFixed(dt, n, nil, buf)
	}
	vb, vbits := allocBits(mem, n)
	if has != nil {
		hc := has.chunks
		for j, g := range gids {
			if *cell(hc, g) {
				vbits[j>>3] |= 1 << uint(j&7)
			}
		}
	} else {
		cc := cnt.chunks
		for j, g := range gids {
			if *cell(cc, g) > 0 {
				vbits[j>>3] |= 1 << uint(j&7)
			}
		}
	}
	return makeFixed(dt, n, vb, buf)
}

// loadInt64 sets dst[gids[j]] from row j of a (NULL as 0).
func loadInt64(a arrow.Array, gids []uint32, dst *cowVec[int64]) {
	vals := Int64s(a)
	for j, g := range gids {
		dst.set(g, vals[j])
	}
}

// rowOf maps position j of gids to its input row.
func rowOf(rows []int32, j int) int {
	if rows != nil {
		return int(rows[j])
	}
	return j
}

// ---- COUNT ----

type countAcc struct {
	star bool
	cnt  cowVec[int64]
}

func (c *countAcc) grow(n int) { c.cnt.grow(n) }
func (c *countAcc) update(gids []uint32, rows []int32, a arrow.Array) error {
	cnt := c.cnt.write(gids)
	if c.star || a.NullN() == 0 {
		for _, g := range gids {
			*cell(cnt, g)++
		}
		return nil
	}
	v := validityOf(a)
	for j, g := range gids {
		if v.valid(rowOf(rows, j)) {
			*cell(cnt, g)++
		}
	}
	return nil
}
func (c *countAcc) merge(dst, src uint32) error { *c.cnt.ptr(dst) += c.cnt.at(src); return nil }
func (c *countAcc) reset(g uint32)              { c.cnt.set(g, 0) }
func (c *countAcc) result(mem memory.Allocator, gids []uint32) arrow.Array {
	return gatherInt64(mem, tInt, &c.cnt, gids, nil, nil)
}
func (c *countAcc) state(mem memory.Allocator, gids []uint32) []arrow.Array {
	return []arrow.Array{c.result(mem, gids)}
}
func (c *countAcc) stateFields(p string) []arrow.Field {
	return []arrow.Field{{Name: p + "count", Type: tInt, Nullable: true}}
}
func (c *countAcc) load(cols []arrow.Array, gids []uint32) { loadInt64(cols[0], gids, &c.cnt) }
func (c *countAcc) bytes() int64                           { return int64(c.cnt.len()) * 8 }
func (c *countAcc) frozen(inUse *atomic.Int32) acc {
	return &countAcc{star: c.star, cnt: c.cnt.freeze(inUse)}
}

// ---- SUM / AVG over int64 layouts ----

type sumIntAcc struct {
	dt   arrow.DataType
	intv bool
	sum  cowVec[int64]
	n    cowVec[int64]
}

func (s *sumIntAcc) grow(n int) { s.sum.grow(n); s.n.grow(n) }
func (s *sumIntAcc) ovf() error {
	if s.intv {
		return errIntervalRange()
	}
	return errBigintRange()
}
func (s *sumIntAcc) update(gids []uint32, rows []int32, a arrow.Array) error {
	vals := Int64s(a)
	v := validityOf(a)
	sum, cnt := s.sum.write(gids), s.n.write(gids)
	for j, g := range gids {
		r := rowOf(rows, j)
		if !v.valid(r) {
			continue
		}
		x := vals[r]
		p := cell(sum, g)
		old := *p
		c := old + x
		if (c^old)&(c^x) < 0 {
			return s.ovf()
		}
		*p = c
		*cell(cnt, g)++
	}
	return nil
}
func (s *sumIntAcc) merge(dst, src uint32) error {
	old, x := s.sum.at(dst), s.sum.at(src)
	c := old + x
	if (c^old)&(c^x) < 0 {
		return s.ovf()
	}
	s.sum.set(dst, c)
	*s.n.ptr(dst) += s.n.at(src)
	return nil
}
func (s *sumIntAcc) reset(g uint32) { s.sum.set(g, 0); s.n.set(g, 0) }
func (s *sumIntAcc) result(mem memory.Allocator, gids []uint32) arrow.Array {
	return gatherInt64(mem, s.dt, &s.sum, gids, nil, &s.n)
}
func (s *sumIntAcc) state(mem memory.Allocator, gids []uint32) []arrow.Array {
	return []arrow.Array{gatherInt64(mem, tInt, &s.sum, gids, nil, nil), gatherInt64(mem, tInt, &s.n, gids, nil, nil)}
}
func (s *sumIntAcc) stateFields(p string) []arrow.Field {
	return []arrow.Field{{Name: p + "sum", Type: tInt, Nullable: true}, {Name: p + "n", Type: tInt, Nullable: true}}
}
func (s *sumIntAcc) load(cols []arrow.Array, gids []uint32) {
	loadInt64(cols[0], gids, &s.sum)
	loadInt64(cols[1], gids, &s.n)
}
func (s *sumIntAcc) bytes() int64 { return int64(s.sum.len()) * 16 }
func (s *sumIntAcc) frozen(inUse *atomic.Int32) acc {
	return &sumIntAcc{dt: s.dt, intv: s.intv, sum: s.sum.freeze(inUse), n: s.n.freeze(inUse)}
}

// avgIntAcc sums in 128 bits so AVG never overflows.
type avgIntAcc struct {
	dt   arrow.DataType
	intv bool
	hi   cowVec[int64]
	lo   cowVec[int64] // the low 64 bits, unsigned
	n    cowVec[int64]
}

func (s *avgIntAcc) grow(n int) { s.hi.grow(n); s.lo.grow(n); s.n.grow(n) }
func add128(hi, lo *int64, xhi int64, xlo uint64) {
	l, carry := bits.Add64(uint64(*lo), xlo, 0)
	*lo = int64(l)
	*hi += xhi + int64(carry)
}
func (s *avgIntAcc) update(gids []uint32, rows []int32, a arrow.Array) error {
	vals := Int64s(a)
	v := validityOf(a)
	hi, lo, cnt := s.hi.write(gids), s.lo.write(gids), s.n.write(gids)
	for j, g := range gids {
		r := rowOf(rows, j)
		if !v.valid(r) {
			continue
		}
		x := vals[r]
		add128(cell(hi, g), cell(lo, g), x>>63, uint64(x))
		*cell(cnt, g)++
	}
	return nil
}
func (s *avgIntAcc) merge(dst, src uint32) error {
	add128(s.hi.ptr(dst), s.lo.ptr(dst), s.hi.at(src), uint64(s.lo.at(src)))
	*s.n.ptr(dst) += s.n.at(src)
	return nil
}
func (s *avgIntAcc) reset(g uint32) { s.hi.set(g, 0); s.lo.set(g, 0); s.n.set(g, 0) }
func (s *avgIntAcc) value(g uint32) float64 {
	hi, lo := s.hi.at(g), uint64(s.lo.at(g))
	var f float64
	if hi == 0 || hi == -1 && lo >= 1<<63 {
		f = float64(int64(lo))
	} else {
		f = float64(hi)*18446744073709551616.0 + float64(lo)
	}
	return f / float64(s.n.at(g))
}
func (s *avgIntAcc) result(mem memory.Allocator, gids []uint32) arrow.Array {
	if s.intv {
		return int64Col(mem, s.dt, gids, func(g uint32) (int64, bool) {
			if s.n.at(g) == 0 {
				return 0, false
			}
			return int64(math.Round(s.value(g))), true
		})
	}
	return float64Col(mem, gids, func(g uint32) (float64, bool) {
		if s.n.at(g) == 0 {
			return 0, false
		}
		return s.value(g), true
	})
}
func (s *avgIntAcc) state(mem memory.Allocator, gids []uint32) []arrow.Array {
	return []arrow.Array{
		gatherInt64(mem, tInt, &s.hi, gids, nil, nil),
		gatherInt64(mem, tInt, &s.lo, gids, nil, nil),
		gatherInt64(mem, tInt, &s.n, gids, nil, nil),
	}
}
func (s *avgIntAcc) stateFields(p string) []arrow.Field {
	return []arrow.Field{{Name: p + "sum_hi", Type: tInt, Nullable: true}, {Name: p + "sum_lo", Type: tInt, Nullable: true}, {Name: p + "n", Type: tInt, Nullable: true}}
}
func (s *avgIntAcc) load(cols []arrow.Array, gids []uint32) {
	loadInt64(cols[0], gids, &s.hi)
	loadInt64(cols[1], gids, &s.lo)
	loadInt64(cols[2], gids, &s.n)
}
func (s *avgIntAcc) bytes() int64 { return int64(s.hi.len()) * 24 }
func (s *avgIntAcc) frozen(inUse *atomic.Int32) acc {
	return &avgIntAcc{dt: s.dt, intv: s.intv, hi: s.hi.freeze(inUse), lo: s.lo.freeze(inUse), n: s.n.freeze(inUse)}
}

// ---- SUM / AVG over float64 ----

type sumFloatAcc struct {
	avg bool
	sum cowVec[float64]
	n   cowVec[int64]
}

func (s *sumFloatAcc) grow(n int) { s.sum.grow(n); s.n.grow(n) }
func (s *sumFloatAcc) update(gids []uint32, rows []int32, a arrow.Array) error {
	vals := Float64s(a)
	v := validityOf(a)
	sum, cnt := s.sum.write(gids), s.n.write(gids)
	if v.all() && rows == nil {
		for j, g := range gids {
			*cell(sum, g) += vals[j]
			*cell(cnt, g)++
		}
		return nil
	}
	for j, g := range gids {
		if r := rowOf(rows, j); v.valid(r) {
			*cell(sum, g) += vals[r]
			*cell(cnt, g)++
		}
	}
	return nil
}
func (s *sumFloatAcc) merge(dst, src uint32) error {
	*s.sum.ptr(dst) += s.sum.at(src)
	*s.n.ptr(dst) += s.n.at(src)
	return nil
}
func (s *sumFloatAcc) reset(g uint32) { s.sum.set(g, 0); s.n.set(g, 0) }
func (s *sumFloatAcc) result(mem memory.Allocator, gids []uint32) arrow.Array {
	return float64Col(mem, gids, func(g uint32) (float64, bool) {
		n := s.n.at(g)
		if n == 0 {
			return 0, false
		}
		if s.avg {
			return s.sum.at(g) / float64(n), true
		}
		return s.sum.at(g), true
	})
}
func (s *sumFloatAcc) state(mem memory.Allocator, gids []uint32) []arrow.Array {
	return []arrow.Array{
		float64Col(mem, gids, func(g uint32) (float64, bool) { return s.sum.at(g), true }),
		gatherInt64(mem, tInt, &s.n, gids, nil, nil),
	}
}
func (s *sumFloatAcc) stateFields(p string) []arrow.Field {
	return []arrow.Field{{Name: p + "sum", Type: tFloat, Nullable: true}, {Name: p + "n", Type: tInt, Nullable: true}}
}
func (s *sumFloatAcc) load(cols []arrow.Array, gids []uint32) {
	vals := Float64s(cols[0])
	for j, g := range gids {
		s.sum.set(g, vals[j])
	}
	loadInt64(cols[1], gids, &s.n)
}
func (s *sumFloatAcc) bytes() int64 { return int64(s.sum.len()) * 16 }
func (s *sumFloatAcc) frozen(inUse *atomic.Int32) acc {
	return &sumFloatAcc{avg: s.avg, sum: s.sum.freeze(inUse), n: s.n.freeze(inUse)}
}

// ---- MIN / MAX ----

// minMaxOf keeps the least (or greatest) value of each group under less.
type minMaxOf[T any] struct {
	max  bool
	vals cowVec[T]
	has  cowVec[bool]
}

func (m *minMaxOf[T]) grow(n int) { m.vals.grow(n); m.has.grow(n) }
func (m *minMaxOf[T]) reset(g uint32) {
	var zero T
	m.vals.set(g, zero)
	m.has.set(g, false)
}
func (m *minMaxOf[T]) bytes() int64 { return int64(m.vals.len()) * 9 }
func (m *minMaxOf[T]) freeze(inUse *atomic.Int32) minMaxOf[T] {
	return minMaxOf[T]{max: m.max, vals: m.vals.freeze(inUse), has: m.has.freeze(inUse)}
}

// offer folds x into group g; cmp orders values.
func (m *minMaxOf[T]) offer(g uint32, x T, cmp func(a, b T) int) {
	if !m.has.at(g) {
		m.vals.set(g, x)
		m.has.set(g, true)
		return
	}
	c := cmp(x, m.vals.at(g))
	if (m.max && c > 0) || (!m.max && c < 0) {
		m.vals.set(g, x)
	}
}

func (m *minMaxOf[T]) mergeWith(dst, src uint32, cmp func(a, b T) int) {
	if m.has.at(src) {
		m.offer(dst, m.vals.at(src), cmp)
	}
}

// load sets groups gids from a values column with its validity.
func (m *minMaxOf[T]) load(vals []T, valid validity, gids []uint32) {
	for j, g := range gids {
		var x T
		if valid.valid(j) {
			x = vals[j]
		}
		m.vals.set(g, x)
		m.has.set(g, valid.valid(j))
	}
}

type minMaxInt struct {
	dt arrow.DataType
	minMaxOf[int64]
}

func (m *minMaxInt) update(gids []uint32, rows []int32, a arrow.Array) error {
	vals := Int64s(a)
	v := validityOf(a)
	mv, mh := m.vals.write(gids), m.has.write(gids)
	for j, g := range gids {
		r := rowOf(rows, j)
		if !v.valid(r) {
			continue
		}
		// offer, written out: the hot path of MIN/MAX
		x, cur, has := vals[r], cell(mv, g), cell(mh, g)
		if !*has || (m.max && x > *cur) || (!m.max && x < *cur) {
			*cur, *has = x, true
		}
	}
	return nil
}
func (m *minMaxInt) merge(dst, src uint32) error {
	m.mergeWith(dst, src, cmp.Compare[int64])
	return nil
}
func (m *minMaxInt) result(mem memory.Allocator, gids []uint32) arrow.Array {
	return gatherInt64(mem, m.dt, &m.vals, gids, &m.has, nil)
}
func (m *minMaxInt) state(mem memory.Allocator, gids []uint32) []arrow.Array {
	return []arrow.Array{m.result(mem, gids)}
}
func (m *minMaxInt) stateFields(p string) []arrow.Field {
	return []arrow.Field{{Name: p + "val", Type: m.dt, Nullable: true}}
}
func (m *minMaxInt) load(cols []arrow.Array, gids []uint32) {
	m.minMaxOf.load(Int64s(cols[0]), validityOf(cols[0]), gids)
}
func (m *minMaxInt) frozen(inUse *atomic.Int32) acc {
	return &minMaxInt{dt: m.dt, minMaxOf: m.freeze(inUse)}
}

type minMaxUint struct {
	dt arrow.DataType
	minMaxOf[uint64]
}

func (m *minMaxUint) update(gids []uint32, rows []int32, a arrow.Array) error {
	vals := Uint64s(a)
	v := validityOf(a)
	for j, g := range gids {
		if r := rowOf(rows, j); v.valid(r) {
			m.offer(g, vals[r], cmp.Compare[uint64])
		}
	}
	return nil
}
func (m *minMaxUint) merge(dst, src uint32) error {
	m.mergeWith(dst, src, cmp.Compare[uint64])
	return nil
}
func (m *minMaxUint) result(mem memory.Allocator, gids []uint32) arrow.Array {
	n := len(gids)
	buf, out := allocUint64(mem, n)
	vb, vbits := allocBits(mem, n)
	for j, g := range gids {
		out[j] = m.vals.at(g)
		if m.has.at(g) {
			setBit(vbits, j)
		}
	}
	return makeFixed(m.dt, n, vb, buf)
}
func (m *minMaxUint) state(mem memory.Allocator, gids []uint32) []arrow.Array {
	return []arrow.Array{m.result(mem, gids)}
}
func (m *minMaxUint) stateFields(p string) []arrow.Field {
	return []arrow.Field{{Name: p + "val", Type: m.dt, Nullable: true}}
}
func (m *minMaxUint) load(cols []arrow.Array, gids []uint32) {
	m.minMaxOf.load(Uint64s(cols[0]), validityOf(cols[0]), gids)
}
func (m *minMaxUint) frozen(inUse *atomic.Int32) acc {
	return &minMaxUint{dt: m.dt, minMaxOf: m.freeze(inUse)}
}

type minMaxFloat struct{ minMaxOf[float64] }

func (m *minMaxFloat) update(gids []uint32, rows []int32, a arrow.Array) error {
	vals := Float64s(a)
	v := validityOf(a)
	for j, g := range gids {
		if r := rowOf(rows, j); v.valid(r) {
			m.offer(g, vals[r], fcmp)
		}
	}
	return nil
}
func (m *minMaxFloat) merge(dst, src uint32) error { m.mergeWith(dst, src, fcmp); return nil }
func (m *minMaxFloat) result(mem memory.Allocator, gids []uint32) arrow.Array {
	return float64Col(mem, gids, func(g uint32) (float64, bool) { return m.vals.at(g), m.has.at(g) })
}
func (m *minMaxFloat) state(mem memory.Allocator, gids []uint32) []arrow.Array {
	return []arrow.Array{m.result(mem, gids)}
}
func (m *minMaxFloat) stateFields(p string) []arrow.Field {
	return []arrow.Field{{Name: p + "val", Type: tFloat, Nullable: true}}
}
func (m *minMaxFloat) load(cols []arrow.Array, gids []uint32) {
	m.minMaxOf.load(Float64s(cols[0]), validityOf(cols[0]), gids)
}
func (m *minMaxFloat) frozen(inUse *atomic.Int32) acc { return &minMaxFloat{m.freeze(inUse)} }

type minMaxString struct{ minMaxOf[string] }

func (m *minMaxString) update(gids []uint32, rows []int32, a arrow.Array) error {
	sv := stringsOf(a)
	v := validityOf(a)
	for j, g := range gids {
		r := rowOf(rows, j)
		if !v.valid(r) {
			continue
		}
		x := sv.str(r)
		if !m.has.at(g) || (m.max && x > m.vals.at(g)) || (!m.max && x < m.vals.at(g)) {
			m.vals.set(g, string(sv.bytes(r))) // copy: x aliases the batch
			m.has.set(g, true)
		}
	}
	return nil
}
func (m *minMaxString) merge(dst, src uint32) error {
	m.mergeWith(dst, src, strings.Compare)
	return nil
}
func (m *minMaxString) result(mem memory.Allocator, gids []uint32) arrow.Array {
	sb := newStringBuf(len(gids))
	for _, g := range gids {
		if m.has.at(g) {
			sb.appendString(m.vals.at(g))
		} else {
			sb.appendNull()
		}
	}
	return sb.finish(mem)
}
func (m *minMaxString) state(mem memory.Allocator, gids []uint32) []arrow.Array {
	return []arrow.Array{m.result(mem, gids)}
}
func (m *minMaxString) stateFields(p string) []arrow.Field {
	return []arrow.Field{{Name: p + "val", Type: tText, Nullable: true}}
}
func (m *minMaxString) load(cols []arrow.Array, gids []uint32) {
	sv, v := stringsOf(cols[0]), validityOf(cols[0])
	for j, g := range gids {
		x := ""
		if v.valid(j) {
			x = string(sv.bytes(j))
		}
		m.vals.set(g, x)
		m.has.set(g, v.valid(j))
	}
}
func (m *minMaxString) bytes() int64 {
	b := int64(m.vals.len()) * 17
	m.vals.each(func(s string) { b += int64(len(s)) })
	return b
}
func (m *minMaxString) frozen(inUse *atomic.Int32) acc { return &minMaxString{m.freeze(inUse)} }

type minMaxBool struct {
	max  bool
	vals cowVec[int8] // -1 none, 0 false, 1 true
}

func (m *minMaxBool) grow(n int) {
	old := m.vals.len()
	m.vals.grow(n)
	for i := old; i < n; i++ {
		m.vals.set(uint32(i), -1)
	}
}
func (m *minMaxBool) set(g uint32, x int8) {
	if cur := m.vals.at(g); cur < 0 || (m.max && x > cur) || (!m.max && x < cur) {
		m.vals.set(g, x)
	}
}
func (m *minMaxBool) update(gids []uint32, rows []int32, a arrow.Array) error {
	b := a.(*array.Boolean)
	v := validityOf(a)
	for j, g := range gids {
		if r := rowOf(rows, j); v.valid(r) {
			var x int8
			if b.Value(r) {
				x = 1
			}
			m.set(g, x)
		}
	}
	return nil
}
func (m *minMaxBool) merge(dst, src uint32) error {
	if x := m.vals.at(src); x >= 0 {
		m.set(dst, x)
	}
	return nil
}
func (m *minMaxBool) reset(g uint32) { m.vals.set(g, -1) }
func (m *minMaxBool) result(mem memory.Allocator, gids []uint32) arrow.Array {
	n := len(gids)
	db, out := allocBits(mem, n)
	vb, vbits := allocBits(mem, n)
	for j, g := range gids {
		if x := m.vals.at(g); x >= 0 {
			setBit(vbits, j)
			if x == 1 {
				setBit(out, j)
			}
		}
	}
	return makeFixed(tBool, n, vb, db)
}
func (m *minMaxBool) state(mem memory.Allocator, gids []uint32) []arrow.Array {
	return []arrow.Array{m.result(mem, gids)}
}
func (m *minMaxBool) stateFields(p string) []arrow.Field {
	return []arrow.Field{{Name: p + "val", Type: tBool, Nullable: true}}
}
func (m *minMaxBool) load(cols []arrow.Array, gids []uint32) {
	b := cols[0].(*array.Boolean)
	for j, g := range gids {
		switch {
		case b.IsNull(j):
			m.vals.set(g, -1)
		case b.Value(j):
			m.vals.set(g, 1)
		default:
			m.vals.set(g, 0)
		}
	}
}
func (m *minMaxBool) bytes() int64 { return int64(m.vals.len()) }
func (m *minMaxBool) frozen(inUse *atomic.Int32) acc {
	return &minMaxBool{max: m.max, vals: m.vals.freeze(inUse)}
}

// ---- COUNT(DISTINCT) ----

// distinctAcc keeps an exact set of the non-null values of each group.
// Values are keyed by their physical representation: int64 layouts by
// value, doubles by canonical bits (all NaNs equal, -0 = 0), text by bytes,
// booleans as a 2-bit mask. A group's set is written in place, so a chunk
// copied for a frozen copy copies its sets too.
type distinctAcc struct {
	dt   arrow.DataType
	ints cowVec[map[int64]struct{}]
	strs cowVec[map[string]struct{}]
	bits cowVec[uint8]
	kind physical
}

func newDistinctAcc(dt arrow.DataType) *distinctAcc {
	k := physOf(dt)
	if k == physUint64 {
		k = physInt64
	}
	d := &distinctAcc{dt: dt, kind: k}
	d.ints.deep = maps.Clone[map[int64]struct{}]
	d.strs.deep = maps.Clone[map[string]struct{}]
	return d
}

func canonFloatBits(f float64) int64 {
	if f == 0 {
		return 0
	}
	if f != f {
		return 0x7ff8000000000001
	}
	return int64(math.Float64bits(f))
}

func (d *distinctAcc) grow(n int) {
	switch d.kind {
	case physInt64, physFloat64:
		d.ints.grow(n)
	case physString:
		d.strs.grow(n)
	case physBool:
		d.bits.grow(n)
	}
}

func (d *distinctAcc) addInt(g uint32, x int64) {
	p := d.ints.ptr(g)
	if *p == nil {
		*p = make(map[int64]struct{}, 4)
	}
	(*p)[x] = struct{}{}
}

func (d *distinctAcc) addStr(g uint32, s string) {
	p := d.strs.ptr(g)
	if *p == nil {
		*p = make(map[string]struct{}, 4)
	}
	(*p)[s] = struct{}{}
}

func (d *distinctAcc) update(gids []uint32, rows []int32, a arrow.Array) error {
	v := validityOf(a)
	switch d.kind {
	case physInt64:
		var vals []int64
		if physOf(a.DataType()) == physUint64 {
			u := Uint64s(a)
			vals = make([]int64, len(u))
			for i, x := range u {
				vals[i] = int64(x)
			}
		} else {
			vals = Int64s(a)
		}
		for j, g := range gids {
			if r := rowOf(rows, j); v.valid(r) {
				d.addInt(g, vals[r])
			}
		}
	case physFloat64:
		vals := Float64s(a)
		for j, g := range gids {
			if r := rowOf(rows, j); v.valid(r) {
				d.addInt(g, canonFloatBits(vals[r]))
			}
		}
	case physString:
		sv := stringsOf(a)
		for j, g := range gids {
			r := rowOf(rows, j)
			if !v.valid(r) {
				continue
			}
			if m := d.strs.at(g); m != nil {
				if _, ok := m[sv.str(r)]; ok {
					continue
				}
			}
			d.addStr(g, string(sv.bytes(r)))
		}
	case physBool:
		b := a.(*array.Boolean)
		for j, g := range gids {
			if r := rowOf(rows, j); v.valid(r) {
				if b.Value(r) {
					*d.bits.ptr(g) |= 2
				} else {
					*d.bits.ptr(g) |= 1
				}
			}
		}
	}
	return nil
}

func (d *distinctAcc) merge(dst, src uint32) error {
	switch d.kind {
	case physInt64, physFloat64:
		for x := range d.ints.at(src) {
			d.addInt(dst, x)
		}
		d.ints.set(src, nil)
	case physString:
		for x := range d.strs.at(src) {
			d.addStr(dst, x)
		}
		d.strs.set(src, nil)
	case physBool:
		*d.bits.ptr(dst) |= d.bits.at(src)
	}
	return nil
}

func (d *distinctAcc) reset(g uint32) {
	switch d.kind {
	case physInt64, physFloat64:
		d.ints.set(g, nil)
	case physString:
		d.strs.set(g, nil)
	case physBool:
		d.bits.set(g, 0)
	}
}

func (d *distinctAcc) count(g uint32) int64 {
	switch d.kind {
	case physInt64, physFloat64:
		return int64(len(d.ints.at(g)))
	case physString:
		return int64(len(d.strs.at(g)))
	case physBool:
		return int64(bits.OnesCount8(d.bits.at(g)))
	}
	return 0
}

func (d *distinctAcc) result(mem memory.Allocator, gids []uint32) arrow.Array {
	return int64Col(mem, tInt, gids, func(g uint32) (int64, bool) { return d.count(g), true })
}

// state holds only the count; the values go to a separate snapshot batch
// (see values).
func (d *distinctAcc) state(mem memory.Allocator, gids []uint32) []arrow.Array {
	return []arrow.Array{d.result(mem, gids)}
}
func (d *distinctAcc) stateFields(p string) []arrow.Field {
	return []arrow.Field{{Name: p + "distinct_count", Type: tInt, Nullable: true}}
}
func (d *distinctAcc) load(cols []arrow.Array, gids []uint32) {}
func (d *distinctAcc) frozen(inUse *atomic.Int32) acc {
	return &distinctAcc{dt: d.dt, kind: d.kind, ints: d.ints.freeze(inUse), strs: d.strs.freeze(inUse), bits: d.bits.freeze(inUse)}
}

// values returns, for groups gids, the list of (index into gids, value)
// pairs as two columns, sorted by group then value for determinism.
func (d *distinctAcc) values(mem memory.Allocator, gids []uint32) (idx []int32, vals arrow.Array) {
	switch d.kind {
	case physInt64, physFloat64:
		var out []int64
		for j, g := range gids {
			start := len(out)
			for x := range d.ints.at(g) {
				out = append(out, x)
				idx = append(idx, int32(j))
			}
			sortInt64s(out[start:])
		}
		buf, o := allocInt64(mem, len(out))
		copy(o, out)
		if d.kind == physFloat64 {
			return idx, makeFixed(arrow.PrimitiveTypes.Int64, len(out), nil, buf)
		}
		return idx, makeFixed(d.dt, len(out), nil, buf)
	case physString:
		sb := newStringBuf(0)
		for j, g := range gids {
			m := d.strs.at(g)
			keys := make([]string, 0, len(m))
			for x := range m {
				keys = append(keys, x)
			}
			sortStrings(keys)
			for _, x := range keys {
				sb.appendString(x)
				idx = append(idx, int32(j))
			}
		}
		return idx, sb.finish(mem)
	case physBool:
		var out []int64
		for j, g := range gids {
			for bit := uint8(1); bit <= 2; bit <<= 1 {
				if d.bits.at(g)&bit != 0 {
					out = append(out, int64(bit-1))
					idx = append(idx, int32(j))
				}
			}
		}
		buf, o := allocInt64(mem, len(out))
		copy(o, out)
		return idx, makeFixed(arrow.PrimitiveTypes.Int64, len(out), nil, buf)
	}
	return nil, nil
}

// valueType is the Arrow type of the values column of a distinct batch.
func (d *distinctAcc) valueType() arrow.DataType {
	switch d.kind {
	case physString:
		return tText
	case physInt64:
		return d.dt
	}
	return arrow.PrimitiveTypes.Int64
}

// loadValues adds values (as produced by values) to groups gids.
func (d *distinctAcc) loadValues(gids []uint32, vals arrow.Array) {
	switch d.kind {
	case physInt64, physFloat64:
		xs := Int64s(vals)
		for j, g := range gids {
			d.addInt(g, xs[j])
		}
	case physString:
		sv := stringsOf(vals)
		for j, g := range gids {
			d.addStr(g, string(sv.bytes(j)))
		}
	case physBool:
		xs := Int64s(vals)
		for j, g := range gids {
			*d.bits.ptr(g) |= uint8(xs[j] + 1)
		}
	}
}

func (d *distinctAcc) bytes() int64 {
	var b int64
	d.ints.each(func(m map[int64]struct{}) { b += 8 + int64(len(m))*16 })
	d.strs.each(func(m map[string]struct{}) {
		b += 8
		for s := range m {
			b += int64(len(s)) + 24
		}
	})
	return b + int64(d.bits.len())
}
