package exec

import (
	"fmt"
	"math"
	"math/bits"

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
			return &minMaxInt{dt: d.inType, max: d.spec.Kind == AggMax}
		case physUint64:
			return &minMaxOrd[uint64]{dt: d.inType, max: d.spec.Kind == AggMax}
		case physFloat64:
			return &minMaxFloat{max: d.spec.Kind == AggMax}
		case physString:
			return &minMaxString{max: d.spec.Kind == AggMax}
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
func gatherInt64(mem memory.Allocator, dt arrow.DataType, vals []int64, gids []uint32, has []bool, cnt []int64) arrow.Array {
	n := len(gids)
	buf, out := allocInt64(mem, n)
	for j, g := range gids {
		out[j] = vals[g]
	}
	if has == nil && cnt == nil {
		return makeFixed(dt, n, nil, buf)
	}
	vb, vbits := allocBits(mem, n)
	for j, g := range gids {
		if (has != nil && has[g]) || (cnt != nil && cnt[g] > 0) {
			vbits[j>>3] |= 1 << uint(j&7)
		}
	}
	return makeFixed(dt, n, vb, buf)
}

func loadInt64(a arrow.Array, gids []uint32, set func(g uint32, v int64, ok bool)) {
	vals, v := Int64s(a), validityOf(a)
	for j, g := range gids {
		set(g, vals[j], v.valid(j))
	}
}

// ---- COUNT ----

type countAcc struct {
	star bool
	cnt  []int64
}

func (c *countAcc) grow(n int) { c.cnt = growTo(c.cnt, n) }
func (c *countAcc) update(gids []uint32, rows []int32, a arrow.Array) error {
	cnt := c.cnt
	if c.star || a.NullN() == 0 {
		for _, g := range gids {
			cnt[g]++
		}
		return nil
	}
	v := validityOf(a)
	for j, g := range gids {
		r := j
		if rows != nil {
			r = int(rows[j])
		}
		if v.valid(r) {
			cnt[g]++
		}
	}
	return nil
}
func (c *countAcc) merge(dst, src uint32) error { c.cnt[dst] += c.cnt[src]; return nil }
func (c *countAcc) reset(g uint32)              { c.cnt[g] = 0 }
func (c *countAcc) result(mem memory.Allocator, gids []uint32) arrow.Array {
	return gatherInt64(mem, tInt, c.cnt, gids, nil, nil)
}
func (c *countAcc) state(mem memory.Allocator, gids []uint32) []arrow.Array {
	return []arrow.Array{c.result(mem, gids)}
}
func (c *countAcc) stateFields(p string) []arrow.Field {
	return []arrow.Field{{Name: p + "count", Type: tInt, Nullable: true}}
}
func (c *countAcc) load(cols []arrow.Array, gids []uint32) {
	loadInt64(cols[0], gids, func(g uint32, v int64, _ bool) { c.cnt[g] = v })
}
func (c *countAcc) bytes() int64 { return int64(len(c.cnt)) * 8 }

// ---- SUM / AVG over int64 layouts ----

type sumIntAcc struct {
	dt   arrow.DataType
	intv bool
	sum  []int64
	n    []int64
}

func (s *sumIntAcc) grow(n int) { s.sum, s.n = growTo(s.sum, n), growTo(s.n, n) }
func (s *sumIntAcc) ovf() error {
	if s.intv {
		return errIntervalRange()
	}
	return errBigintRange()
}
func (s *sumIntAcc) update(gids []uint32, rows []int32, a arrow.Array) error {
	vals := Int64s(a)
	v := validityOf(a)
	sum, cnt := s.sum, s.n
	for j, g := range gids {
		r := j
		if rows != nil {
			r = int(rows[j])
		}
		if !v.valid(r) {
			continue
		}
		x := vals[r]
		old := sum[g]
		c := old + x
		if (c^old)&(c^x) < 0 {
			return s.ovf()
		}
		sum[g] = c
		cnt[g]++
	}
	return nil
}
func (s *sumIntAcc) merge(dst, src uint32) error {
	old, x := s.sum[dst], s.sum[src]
	c := old + x
	if (c^old)&(c^x) < 0 {
		return s.ovf()
	}
	s.sum[dst] = c
	s.n[dst] += s.n[src]
	return nil
}
func (s *sumIntAcc) reset(g uint32) { s.sum[g], s.n[g] = 0, 0 }
func (s *sumIntAcc) result(mem memory.Allocator, gids []uint32) arrow.Array {
	return gatherInt64(mem, s.dt, s.sum, gids, nil, s.n)
}
func (s *sumIntAcc) state(mem memory.Allocator, gids []uint32) []arrow.Array {
	return []arrow.Array{
		int64Col(mem, tInt, gids, func(g uint32) (int64, bool) { return s.sum[g], true }),
		int64Col(mem, tInt, gids, func(g uint32) (int64, bool) { return s.n[g], true }),
	}
}
func (s *sumIntAcc) stateFields(p string) []arrow.Field {
	return []arrow.Field{{Name: p + "sum", Type: tInt, Nullable: true}, {Name: p + "n", Type: tInt, Nullable: true}}
}
func (s *sumIntAcc) load(cols []arrow.Array, gids []uint32) {
	loadInt64(cols[0], gids, func(g uint32, v int64, _ bool) { s.sum[g] = v })
	loadInt64(cols[1], gids, func(g uint32, v int64, _ bool) { s.n[g] = v })
}
func (s *sumIntAcc) bytes() int64 { return int64(len(s.sum)) * 16 }

// avgIntAcc sums in 128 bits so AVG never overflows.
type avgIntAcc struct {
	dt   arrow.DataType
	intv bool
	hi   []int64
	lo   []uint64
	n    []int64
}

func (s *avgIntAcc) grow(n int) { s.hi, s.lo, s.n = growTo(s.hi, n), growTo(s.lo, n), growTo(s.n, n) }
func (s *avgIntAcc) add(g uint32, hi int64, lo uint64) {
	l, carry := bits.Add64(s.lo[g], lo, 0)
	s.lo[g] = l
	s.hi[g] += hi + int64(carry)
}
func (s *avgIntAcc) update(gids []uint32, rows []int32, a arrow.Array) error {
	vals := Int64s(a)
	v := validityOf(a)
	for j, g := range gids {
		r := j
		if rows != nil {
			r = int(rows[j])
		}
		if !v.valid(r) {
			continue
		}
		x := vals[r]
		s.add(g, x>>63, uint64(x))
		s.n[g]++
	}
	return nil
}
func (s *avgIntAcc) merge(dst, src uint32) error {
	s.add(dst, s.hi[src], s.lo[src])
	s.n[dst] += s.n[src]
	return nil
}
func (s *avgIntAcc) reset(g uint32) { s.hi[g], s.lo[g], s.n[g] = 0, 0, 0 }
func (s *avgIntAcc) value(g uint32) float64 {
	hi, lo := s.hi[g], s.lo[g]
	var f float64
	if hi == 0 || hi == -1 && lo >= 1<<63 {
		f = float64(int64(lo))
	} else {
		f = float64(hi)*18446744073709551616.0 + float64(lo)
	}
	return f / float64(s.n[g])
}
func (s *avgIntAcc) result(mem memory.Allocator, gids []uint32) arrow.Array {
	if s.intv {
		return int64Col(mem, s.dt, gids, func(g uint32) (int64, bool) {
			if s.n[g] == 0 {
				return 0, false
			}
			return int64(math.Round(s.value(g))), true
		})
	}
	return float64Col(mem, gids, func(g uint32) (float64, bool) {
		if s.n[g] == 0 {
			return 0, false
		}
		return s.value(g), true
	})
}
func (s *avgIntAcc) state(mem memory.Allocator, gids []uint32) []arrow.Array {
	return []arrow.Array{
		int64Col(mem, tInt, gids, func(g uint32) (int64, bool) { return s.hi[g], true }),
		int64Col(mem, tInt, gids, func(g uint32) (int64, bool) { return int64(s.lo[g]), true }),
		int64Col(mem, tInt, gids, func(g uint32) (int64, bool) { return s.n[g], true }),
	}
}
func (s *avgIntAcc) stateFields(p string) []arrow.Field {
	return []arrow.Field{{Name: p + "sum_hi", Type: tInt, Nullable: true}, {Name: p + "sum_lo", Type: tInt, Nullable: true}, {Name: p + "n", Type: tInt, Nullable: true}}
}
func (s *avgIntAcc) load(cols []arrow.Array, gids []uint32) {
	loadInt64(cols[0], gids, func(g uint32, v int64, _ bool) { s.hi[g] = v })
	loadInt64(cols[1], gids, func(g uint32, v int64, _ bool) { s.lo[g] = uint64(v) })
	loadInt64(cols[2], gids, func(g uint32, v int64, _ bool) { s.n[g] = v })
}
func (s *avgIntAcc) bytes() int64 { return int64(len(s.hi)) * 24 }

// ---- SUM / AVG over float64 ----

type sumFloatAcc struct {
	avg bool
	sum []float64
	n   []int64
}

func (s *sumFloatAcc) grow(n int) { s.sum, s.n = growTo(s.sum, n), growTo(s.n, n) }
func (s *sumFloatAcc) update(gids []uint32, rows []int32, a arrow.Array) error {
	vals := Float64s(a)
	v := validityOf(a)
	sum, cnt := s.sum, s.n
	if v.all() && rows == nil {
		for j, g := range gids {
			sum[g] += vals[j]
			cnt[g]++
		}
		return nil
	}
	for j, g := range gids {
		r := j
		if rows != nil {
			r = int(rows[j])
		}
		if v.valid(r) {
			sum[g] += vals[r]
			cnt[g]++
		}
	}
	return nil
}
func (s *sumFloatAcc) merge(dst, src uint32) error {
	s.sum[dst] += s.sum[src]
	s.n[dst] += s.n[src]
	return nil
}
func (s *sumFloatAcc) reset(g uint32) { s.sum[g], s.n[g] = 0, 0 }
func (s *sumFloatAcc) result(mem memory.Allocator, gids []uint32) arrow.Array {
	return float64Col(mem, gids, func(g uint32) (float64, bool) {
		if s.n[g] == 0 {
			return 0, false
		}
		if s.avg {
			return s.sum[g] / float64(s.n[g]), true
		}
		return s.sum[g], true
	})
}
func (s *sumFloatAcc) state(mem memory.Allocator, gids []uint32) []arrow.Array {
	return []arrow.Array{
		float64Col(mem, gids, func(g uint32) (float64, bool) { return s.sum[g], true }),
		int64Col(mem, tInt, gids, func(g uint32) (int64, bool) { return s.n[g], true }),
	}
}
func (s *sumFloatAcc) stateFields(p string) []arrow.Field {
	return []arrow.Field{{Name: p + "sum", Type: tFloat, Nullable: true}, {Name: p + "n", Type: tInt, Nullable: true}}
}
func (s *sumFloatAcc) load(cols []arrow.Array, gids []uint32) {
	vals := Float64s(cols[0])
	for j, g := range gids {
		s.sum[g] = vals[j]
	}
	loadInt64(cols[1], gids, func(g uint32, v int64, _ bool) { s.n[g] = v })
}
func (s *sumFloatAcc) bytes() int64 { return int64(len(s.sum)) * 16 }

// ---- MIN / MAX ----

type minMaxInt struct {
	dt   arrow.DataType
	max  bool
	vals []int64
	has  []bool
}

func (m *minMaxInt) grow(n int) { m.vals, m.has = growTo(m.vals, n), growTo(m.has, n) }
func (m *minMaxInt) update(gids []uint32, rows []int32, a arrow.Array) error {
	vals := Int64s(a)
	v := validityOf(a)
	for j, g := range gids {
		r := j
		if rows != nil {
			r = int(rows[j])
		}
		if !v.valid(r) {
			continue
		}
		x := vals[r]
		if !m.has[g] || (m.max && x > m.vals[g]) || (!m.max && x < m.vals[g]) {
			m.vals[g], m.has[g] = x, true
		}
	}
	return nil
}
func (m *minMaxInt) merge(dst, src uint32) error {
	if m.has[src] {
		x := m.vals[src]
		if !m.has[dst] || (m.max && x > m.vals[dst]) || (!m.max && x < m.vals[dst]) {
			m.vals[dst], m.has[dst] = x, true
		}
	}
	return nil
}
func (m *minMaxInt) reset(g uint32) { m.vals[g], m.has[g] = 0, false }
func (m *minMaxInt) result(mem memory.Allocator, gids []uint32) arrow.Array {
	return gatherInt64(mem, m.dt, m.vals, gids, m.has, nil)
}
func (m *minMaxInt) state(mem memory.Allocator, gids []uint32) []arrow.Array {
	return []arrow.Array{m.result(mem, gids)}
}
func (m *minMaxInt) stateFields(p string) []arrow.Field {
	return []arrow.Field{{Name: p + "val", Type: m.dt, Nullable: true}}
}
func (m *minMaxInt) load(cols []arrow.Array, gids []uint32) {
	loadInt64(cols[0], gids, func(g uint32, v int64, ok bool) { m.vals[g], m.has[g] = v, ok })
}
func (m *minMaxInt) bytes() int64 { return int64(len(m.vals)) * 9 }

type minMaxOrd[T uint64] struct {
	dt   arrow.DataType
	max  bool
	vals []T
	has  []bool
}

func (m *minMaxOrd[T]) grow(n int) { m.vals, m.has = growTo(m.vals, n), growTo(m.has, n) }
func (m *minMaxOrd[T]) set(g uint32, x T) {
	if !m.has[g] || (m.max && x > m.vals[g]) || (!m.max && x < m.vals[g]) {
		m.vals[g], m.has[g] = x, true
	}
}
func (m *minMaxOrd[T]) update(gids []uint32, rows []int32, a arrow.Array) error {
	vals := Uint64s(a)
	v := validityOf(a)
	for j, g := range gids {
		r := j
		if rows != nil {
			r = int(rows[j])
		}
		if v.valid(r) {
			m.set(g, T(vals[r]))
		}
	}
	return nil
}
func (m *minMaxOrd[T]) merge(dst, src uint32) error {
	if m.has[src] {
		m.set(dst, m.vals[src])
	}
	return nil
}
func (m *minMaxOrd[T]) reset(g uint32) { m.vals[g], m.has[g] = 0, false }
func (m *minMaxOrd[T]) result(mem memory.Allocator, gids []uint32) arrow.Array {
	n := len(gids)
	buf, out := allocUint64(mem, n)
	vb, vbits := allocBits(mem, n)
	for j, g := range gids {
		out[j] = uint64(m.vals[g])
		if m.has[g] {
			setBit(vbits, j)
		}
	}
	return makeFixed(m.dt, n, vb, buf)
}
func (m *minMaxOrd[T]) state(mem memory.Allocator, gids []uint32) []arrow.Array {
	return []arrow.Array{m.result(mem, gids)}
}
func (m *minMaxOrd[T]) stateFields(p string) []arrow.Field {
	return []arrow.Field{{Name: p + "val", Type: m.dt, Nullable: true}}
}
func (m *minMaxOrd[T]) load(cols []arrow.Array, gids []uint32) {
	vals, v := Uint64s(cols[0]), validityOf(cols[0])
	for j, g := range gids {
		m.vals[g], m.has[g] = T(vals[j]), v.valid(j)
	}
}
func (m *minMaxOrd[T]) bytes() int64 { return int64(len(m.vals)) * 9 }

type minMaxFloat struct {
	max  bool
	vals []float64
	has  []bool
}

func (m *minMaxFloat) grow(n int) { m.vals, m.has = growTo(m.vals, n), growTo(m.has, n) }
func (m *minMaxFloat) set(g uint32, x float64) {
	if !m.has[g] {
		m.vals[g], m.has[g] = x, true
		return
	}
	c := fcmp(x, m.vals[g])
	if (m.max && c > 0) || (!m.max && c < 0) {
		m.vals[g] = x
	}
}
func (m *minMaxFloat) update(gids []uint32, rows []int32, a arrow.Array) error {
	vals := Float64s(a)
	v := validityOf(a)
	for j, g := range gids {
		r := j
		if rows != nil {
			r = int(rows[j])
		}
		if v.valid(r) {
			m.set(g, vals[r])
		}
	}
	return nil
}
func (m *minMaxFloat) merge(dst, src uint32) error {
	if m.has[src] {
		m.set(dst, m.vals[src])
	}
	return nil
}
func (m *minMaxFloat) reset(g uint32) { m.vals[g], m.has[g] = 0, false }
func (m *minMaxFloat) result(mem memory.Allocator, gids []uint32) arrow.Array {
	return float64Col(mem, gids, func(g uint32) (float64, bool) { return m.vals[g], m.has[g] })
}
func (m *minMaxFloat) state(mem memory.Allocator, gids []uint32) []arrow.Array {
	return []arrow.Array{m.result(mem, gids)}
}
func (m *minMaxFloat) stateFields(p string) []arrow.Field {
	return []arrow.Field{{Name: p + "val", Type: tFloat, Nullable: true}}
}
func (m *minMaxFloat) load(cols []arrow.Array, gids []uint32) {
	vals, v := Float64s(cols[0]), validityOf(cols[0])
	for j, g := range gids {
		m.vals[g], m.has[g] = vals[j], v.valid(j)
	}
}
func (m *minMaxFloat) bytes() int64 { return int64(len(m.vals)) * 9 }

type minMaxString struct {
	max  bool
	vals []string
	has  []bool
}

func (m *minMaxString) grow(n int) { m.vals, m.has = growTo(m.vals, n), growTo(m.has, n) }
func (m *minMaxString) update(gids []uint32, rows []int32, a arrow.Array) error {
	sv := stringsOf(a)
	v := validityOf(a)
	for j, g := range gids {
		r := j
		if rows != nil {
			r = int(rows[j])
		}
		if !v.valid(r) {
			continue
		}
		x := sv.str(r)
		if !m.has[g] || (m.max && x > m.vals[g]) || (!m.max && x < m.vals[g]) {
			m.vals[g], m.has[g] = string(sv.bytes(r)), true // copy: x aliases the batch
		}
	}
	return nil
}
func (m *minMaxString) merge(dst, src uint32) error {
	if m.has[src] {
		x := m.vals[src]
		if !m.has[dst] || (m.max && x > m.vals[dst]) || (!m.max && x < m.vals[dst]) {
			m.vals[dst], m.has[dst] = x, true
		}
	}
	return nil
}
func (m *minMaxString) reset(g uint32) { m.vals[g], m.has[g] = "", false }
func (m *minMaxString) result(mem memory.Allocator, gids []uint32) arrow.Array {
	sb := newStringBuf(len(gids))
	for _, g := range gids {
		if m.has[g] {
			sb.appendString(m.vals[g])
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
	s := cols[0].(*array.String)
	for j, g := range gids {
		if s.IsValid(j) {
			m.vals[g], m.has[g] = string(stringsOf(s).bytes(j)), true
		} else {
			m.vals[g], m.has[g] = "", false
		}
	}
}
func (m *minMaxString) bytes() int64 {
	b := int64(len(m.vals)) * 17
	for _, s := range m.vals {
		b += int64(len(s))
	}
	return b
}

type minMaxBool struct {
	max  bool
	vals []int8 // -1 none, 0 false, 1 true
}

func (m *minMaxBool) grow(n int) {
	old := len(m.vals)
	m.vals = growTo(m.vals, n)
	for i := old; i < n; i++ {
		m.vals[i] = -1
	}
}
func (m *minMaxBool) set(g uint32, x int8) {
	if m.vals[g] < 0 || (m.max && x > m.vals[g]) || (!m.max && x < m.vals[g]) {
		m.vals[g] = x
	}
}
func (m *minMaxBool) update(gids []uint32, rows []int32, a arrow.Array) error {
	b := a.(*array.Boolean)
	v := validityOf(a)
	for j, g := range gids {
		r := j
		if rows != nil {
			r = int(rows[j])
		}
		if v.valid(r) {
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
	if m.vals[src] >= 0 {
		m.set(dst, m.vals[src])
	}
	return nil
}
func (m *minMaxBool) reset(g uint32) { m.vals[g] = -1 }
func (m *minMaxBool) result(mem memory.Allocator, gids []uint32) arrow.Array {
	n := len(gids)
	db, out := allocBits(mem, n)
	vb, vbits := allocBits(mem, n)
	for j, g := range gids {
		if m.vals[g] >= 0 {
			setBit(vbits, j)
			if m.vals[g] == 1 {
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
			m.vals[g] = -1
		case b.Value(j):
			m.vals[g] = 1
		default:
			m.vals[g] = 0
		}
	}
}
func (m *minMaxBool) bytes() int64 { return int64(len(m.vals)) }

// ---- COUNT(DISTINCT) ----

// distinctAcc keeps an exact set of the non-null values of each group.
// Values are keyed by their physical representation: int64 layouts by
// value, doubles by canonical bits (all NaNs equal, -0 = 0), text by bytes,
// booleans as a 2-bit mask.
type distinctAcc struct {
	dt   arrow.DataType
	ints []map[int64]struct{}
	strs []map[string]struct{}
	bits []uint8
	kind physical
}

func newDistinctAcc(dt arrow.DataType) *distinctAcc {
	k := physOf(dt)
	if k == physUint64 {
		k = physInt64
	}
	return &distinctAcc{dt: dt, kind: k}
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
		d.ints = growTo(d.ints, n)
	case physString:
		d.strs = growTo(d.strs, n)
	case physBool:
		d.bits = growTo(d.bits, n)
	}
}

func (d *distinctAcc) addInt(g uint32, x int64) {
	m := d.ints[g]
	if m == nil {
		m = make(map[int64]struct{}, 4)
		d.ints[g] = m
	}
	m[x] = struct{}{}
}

func (d *distinctAcc) addStr(g uint32, s string) {
	m := d.strs[g]
	if m == nil {
		m = make(map[string]struct{}, 4)
		d.strs[g] = m
	}
	m[s] = struct{}{}
}

func (d *distinctAcc) update(gids []uint32, rows []int32, a arrow.Array) error {
	v := validityOf(a)
	row := func(j int) int {
		if rows != nil {
			return int(rows[j])
		}
		return j
	}
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
			if r := row(j); v.valid(r) {
				d.addInt(g, vals[r])
			}
		}
	case physFloat64:
		vals := Float64s(a)
		for j, g := range gids {
			if r := row(j); v.valid(r) {
				d.addInt(g, canonFloatBits(vals[r]))
			}
		}
	case physString:
		sv := stringsOf(a)
		for j, g := range gids {
			r := row(j)
			if !v.valid(r) {
				continue
			}
			m := d.strs[g]
			if m != nil {
				if _, ok := m[sv.str(r)]; ok {
					continue
				}
			}
			d.addStr(g, string(sv.bytes(r)))
		}
	case physBool:
		b := a.(*array.Boolean)
		for j, g := range gids {
			if r := row(j); v.valid(r) {
				if b.Value(r) {
					d.bits[g] |= 2
				} else {
					d.bits[g] |= 1
				}
			}
		}
	}
	return nil
}

func (d *distinctAcc) merge(dst, src uint32) error {
	switch d.kind {
	case physInt64, physFloat64:
		for x := range d.ints[src] {
			d.addInt(dst, x)
		}
		d.ints[src] = nil
	case physString:
		for x := range d.strs[src] {
			d.addStr(dst, x)
		}
		d.strs[src] = nil
	case physBool:
		d.bits[dst] |= d.bits[src]
	}
	return nil
}

func (d *distinctAcc) reset(g uint32) {
	switch d.kind {
	case physInt64, physFloat64:
		d.ints[g] = nil
	case physString:
		d.strs[g] = nil
	case physBool:
		d.bits[g] = 0
	}
}

func (d *distinctAcc) count(g uint32) int64 {
	switch d.kind {
	case physInt64, physFloat64:
		return int64(len(d.ints[g]))
	case physString:
		return int64(len(d.strs[g]))
	case physBool:
		return int64(bits.OnesCount8(d.bits[g]))
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

// values returns, for groups gids, the list of (index into gids, value)
// pairs as two columns, sorted by group then value for determinism.
func (d *distinctAcc) values(mem memory.Allocator, gids []uint32) (idx []int32, vals arrow.Array) {
	switch d.kind {
	case physInt64, physFloat64:
		var out []int64
		for j, g := range gids {
			start := len(out)
			for x := range d.ints[g] {
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
			keys := make([]string, 0, len(d.strs[g]))
			for x := range d.strs[g] {
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
				if d.bits[g]&bit != 0 {
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
			d.bits[g] |= uint8(xs[j] + 1)
		}
	}
}

func (d *distinctAcc) bytes() int64 {
	var b int64
	for _, m := range d.ints {
		b += 8 + int64(len(m))*16
	}
	for _, m := range d.strs {
		b += 8
		for s := range m {
			b += int64(len(s)) + 24
		}
	}
	return b + int64(len(d.bits))
}
