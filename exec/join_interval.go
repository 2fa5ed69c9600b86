package exec

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Snapshot layout of an IntervalJoin (Kind "interval_join"): batches with
// schema metadata spate.part=left or spate.part=right, holding the rows of
// that side's state in arrival order: the side's input columns, then
// __key_hash (HashColumns over the side's join keys) and __matched (bool:
// the left row has been emitted with a match; always false on the right).
// Meta: "watermark", "config" (a fingerprint Restore checks) and the
// counters "count.rows_in", "count.rows_out", "count.late_rows".
const intervalJoinKind = "interval_join"

// IntervalJoin is a stream–stream equi-join bounded in event time; see
// IntervalJoinConfig for the matching rule and the output schema.
//
// State: each side keeps its rows (retained input batches, compacted when
// few rows of a batch survive) in per-key lists of a hash table shared by
// both sides; keys of any physical type and of several columns are
// supported. A row arriving on one side probes the other side's list for
// its key, checks the time bound, evaluates Residual over the candidate
// pairs a batch at a time (so an expression that fails on a non-candidate
// pair does not) and emits the matches in the Push call that completes
// them, ordered by the pushed row, then by the arrival of the stored row.
//
// Watermark rules (wm = the last, merged watermark passed to Advance; a
// lower one is ignored): a row whose event time t (µs) is NULL or t < wm
// on arrival is late, counted in Stats().LateRows and dropped; a left row
// is released by the first Advance with wm > l.time + Upper, a right row by
// the first with wm > r.time − Lower. A JoinLeft left row that never
// matched is emitted with NULL right columns when it is released (rows
// with a NULL key never match and are released the same way); the rows
// one Advance pads are ordered by left event time, then by the left column
// values (NULLs last), so they do not depend on arrival order. A right row
// with a NULL key (and, for JoinInner, a left one) is dropped on arrival.
// Finish emits the null-padded rows of every unmatched left row still held
// (JoinLeft) in the same order and drops all state.
//
// IntervalJoin is not safe for concurrent use. Input batches are retained
// while rows of them are held; emitted batches are valid only during the
// Emit call.
type IntervalJoin struct {
	cfg      IntervalJoinConfig
	out      *arrow.Schema
	mem      memory.Allocator
	residual node // nil: none
	keyTypes []arrow.DataType

	groups     *groupTable
	gcount     []int32 // per group: rows held on both sides
	liveGroups int
	sides      [2]*joinSide

	wm     int64
	seq    uint64
	stats  Stats
	closed bool

	hashes []uint64 // scratch
	gids   []uint32
	tus    []int64
	ok     []bool
	sel    []int32
}

var _ StatefulBinary = (*IntervalJoin)(nil)
var _ StatsReporter = (*IntervalJoin)(nil)

// joinSide is one join input's state: its rows, and per key group a list
// of its rows in arrival order (doubly linked through the slots).
type joinSide struct {
	schema  *arrow.Schema
	store   *rowStore
	keys    []int
	timeCol int
	unit    int64
	off     int // first output column of this side

	// per slot
	gid     []uint32 // noSlot: NULL key, not in a list
	t       []int64  // event time µs
	next    []uint32
	prev    []uint32
	matched []bool
	seq     []uint64 // arrival order, kept across snapshots
	// per group
	head, tail []uint32
	count      []int32

	exp slotHeap // release times
}

func (s *joinSide) growSlots(n int) {
	s.gid = growTo(s.gid, n)
	s.t = growTo(s.t, n)
	s.next = growTo(s.next, n)
	s.prev = growTo(s.prev, n)
	s.matched = growTo(s.matched, n)
	s.seq = growTo(s.seq, n)
}

func (s *joinSide) growGroups(n int) {
	s.head = growTo(s.head, n)
	s.tail = growTo(s.tail, n)
	s.count = growTo(s.count, n)
}

func (s *joinSide) reset() {
	s.store.reset()
	s.gid, s.t, s.next, s.prev, s.matched, s.seq = nil, nil, nil, nil, nil, nil
	s.head, s.tail, s.count = nil, nil, nil
	s.exp = nil
}

// satAdd adds without wrapping around.
func satAdd(a, b int64) int64 {
	c := a + b
	if b > 0 && c < a {
		return math.MaxInt64
	}
	if b < 0 && c > a {
		return math.MinInt64
	}
	return c
}

// Validate checks cfg against the input schemas without building state.
func (c IntervalJoinConfig) Validate(left, right *arrow.Schema) error {
	_, err := NewIntervalJoin(left, right, c)
	return err
}

// NewIntervalJoin validates cfg against the two input schemas and returns
// an empty join. The key columns of the two sides must pair up with the
// same physical types; the time columns must have the int64 layout
// (BIGINT in LeftUnit/RightUnit µs, or TIMESTAMP with unit 1; a unit <= 0
// means 1); Lower <= Upper; Residual must be boolean. Options:
// WithAllocator (outputs, compacted state and snapshots).
func NewIntervalJoin(left, right *arrow.Schema, cfg IntervalJoinConfig, opts ...Option) (*IntervalJoin, error) {
	o := buildOptions(opts)
	const who = "exec: IntervalJoin"
	if cfg.Type != JoinInner && cfg.Type != JoinLeft {
		return nil, fmt.Errorf("%s: unknown join type %d", who, cfg.Type)
	}
	if err := checkJoinInputs(who, left, right, cfg.LeftKeys, cfg.RightKeys); err != nil {
		return nil, err
	}
	for _, tc := range []struct {
		s   *arrow.Schema
		col int
	}{{left, cfg.LeftTime}, {right, cfg.RightTime}} {
		if tc.col < 0 || tc.col >= tc.s.NumFields() || physOf(tc.s.Field(tc.col).Type) != physInt64 {
			return nil, fmt.Errorf("%s: event time column %d must be an int64 or timestamp column", who, tc.col)
		}
	}
	if cfg.Lower > cfg.Upper {
		return nil, fmt.Errorf("%s: lower bound %d is above upper bound %d", who, cfg.Lower, cfg.Upper)
	}
	j := &IntervalJoin{cfg: cfg, mem: o.mem, wm: math.MinInt64}
	j.out = joinSchema(left, right, nil, cfg.Type == JoinLeft)
	if cfg.Residual != nil {
		r, err := compileResidual(cfg.Residual, j.out)
		if err != nil {
			return nil, err
		}
		j.residual = r
	}
	for _, k := range cfg.LeftKeys {
		j.keyTypes = append(j.keyTypes, left.Field(k).Type)
	}
	unit := func(u int64) int64 {
		if u <= 0 {
			return 1
		}
		return u
	}
	j.sides[0] = &joinSide{schema: left, store: newRowStore(o.mem, left), keys: cfg.LeftKeys, timeCol: cfg.LeftTime, unit: unit(cfg.LeftUnit)}
	j.sides[1] = &joinSide{schema: right, store: newRowStore(o.mem, right), keys: cfg.RightKeys, timeCol: cfg.RightTime, unit: unit(cfg.RightUnit), off: left.NumFields()}
	j.groups = newGroupTable(j.keyTypes)
	return j, nil
}

// checkJoinInputs validates the key columns and row types of a join.
func checkJoinInputs(who string, left, right *arrow.Schema, lk, rk []int) error {
	if err := checkRowTypes(who, left); err != nil {
		return err
	}
	if err := checkRowTypes(who, right); err != nil {
		return err
	}
	if len(lk) != len(rk) {
		return fmt.Errorf("%s: %d left keys for %d right keys", who, len(lk), len(rk))
	}
	for i := range lk {
		if lk[i] < 0 || lk[i] >= left.NumFields() {
			return fmt.Errorf("%s: left key column %d out of range", who, lk[i])
		}
		if rk[i] < 0 || rk[i] >= right.NumFields() {
			return fmt.Errorf("%s: right key column %d out of range", who, rk[i])
		}
		lt, rt := left.Field(lk[i]).Type, right.Field(rk[i]).Type
		if physOf(lt) != physOf(rt) || physOf(lt) == physNull {
			return &Error{Code: CodeDatatypeMismatch, Message: fmt.Sprintf("join key %d: cannot compare %s with %s", i, pgTypeName(lt), pgTypeName(rt))}
		}
	}
	return nil
}

// joinSchema is the left fields then the right fields rightCols (nil =
// all), the right ones nullable for an outer join.
func joinSchema(left, right *arrow.Schema, rightCols []int, outer bool) *arrow.Schema {
	fields := append([]arrow.Field(nil), left.Fields()...)
	if rightCols == nil {
		for i := 0; i < right.NumFields(); i++ {
			rightCols = append(rightCols, i)
		}
	}
	for _, c := range rightCols {
		f := right.Field(c)
		if outer {
			f.Nullable = true
		}
		fields = append(fields, f)
	}
	return arrow.NewSchema(fields, nil)
}

func compileResidual(e Expr, schema *arrow.Schema) (node, error) {
	r, err := compileNode(e, schema)
	if err != nil {
		return nil, err
	}
	if r.typ().ID() != arrow.BOOL && !isNull(r.typ()) {
		return nil, &Error{Code: CodeDatatypeMismatch, Message: fmt.Sprintf("argument of JOIN/ON must be type boolean, not type %s", pgTypeName(r.typ()))}
	}
	return r, nil
}

func (j *IntervalJoin) fingerprint() string {
	var sb strings.Builder
	for _, s := range j.sides {
		for _, f := range s.schema.Fields() {
			sb.WriteString(f.Type.String())
			sb.WriteByte(',')
		}
		sb.WriteByte(';')
	}
	c := j.cfg
	fmt.Fprintf(&sb, "type=%d;lk=%v;rk=%v;lt=%d;rt=%d;lu=%d;ru=%d;lo=%d;up=%d;res=%v",
		c.Type, c.LeftKeys, c.RightKeys, c.LeftTime, c.RightTime, j.sides[0].unit, j.sides[1].unit, c.Lower, c.Upper, c.Residual)
	return sb.String()
}

// Schema returns the output schema: the left columns, then the right ones.
func (j *IntervalJoin) Schema() *arrow.Schema { return j.out }

// Stats returns the counters; StateRows counts the rows held on both
// sides.
func (j *IntervalJoin) Stats() Stats {
	s := j.stats
	s.StateRows, s.StateBytes = 0, j.groups.bytes()+int64(len(j.gcount))*4
	for _, sd := range j.sides {
		s.StateRows += int64(sd.store.live)
		s.StateBytes += sd.store.stateBytes() + int64(len(sd.gid))*37 + int64(len(sd.exp))*16 + int64(len(sd.head))*12
	}
	return s
}

// expiry is the watermark value past which a row of side can no longer
// match: l.time + Upper on the left, r.time − Lower on the right.
func (j *IntervalJoin) expiry(side int, t int64) int64 {
	if side == 0 {
		return satAdd(t, j.cfg.Upper)
	}
	return satAdd(t, -j.cfg.Lower)
}

func (j *IntervalJoin) timeMatch(lt, rt int64) bool {
	return satAdd(lt, j.cfg.Lower) <= rt && rt <= satAdd(lt, j.cfg.Upper)
}

func (j *IntervalJoin) growGroups() {
	n := j.groups.n
	j.gcount = growTo(j.gcount, n)
	j.sides[0].growGroups(n)
	j.sides[1].growGroups(n)
}

// insert stores rows (of rec, in order) on side: times tus (per batch
// row), nulls (per batch row, nil = none), hashes (per batch row) and
// matched (per stored row, nil = false). It returns the slots and the
// group of every stored row (noSlot for a NULL key).
func (j *IntervalJoin) insert(side int, rec arrow.RecordBatch, rows []int32, tus []int64, nulls []bool, hashes []uint64, matched []bool) (slots, gids []uint32) {
	s := j.sides[side]
	if len(rows) == 0 {
		return nil, nil
	}
	var idx []int32
	for _, r := range rows {
		if nulls == nil || !nulls[r] {
			idx = append(idx, r)
		}
	}
	var found []uint32
	if len(idx) > 0 {
		keyArrs := make([]arrow.Array, len(s.keys))
		for i, k := range s.keys {
			keyArrs[i] = rec.Column(k)
		}
		j.groups.bind(keyArrs)
		found = j.groups.find(idx, 0, hashes, j.gids)
		j.gids = found
		j.growGroups()
	}
	slots = s.store.add(rec, rows, nil)
	s.growSlots(s.store.cap())
	gids = make([]uint32, len(rows))
	fi := 0
	for k, r := range rows {
		sl := slots[k]
		s.t[sl] = tus[r]
		s.matched[sl] = matched != nil && matched[k]
		s.seq[sl] = j.seq
		j.seq++
		s.exp.push(j.expiry(side, tus[r]), sl)
		if nulls != nil && nulls[r] {
			s.gid[sl] = noSlot
			gids[k] = noSlot
			continue
		}
		g := found[fi]
		fi++
		gids[k] = g
		j.link(s, sl, g)
	}
	return slots, gids
}

func (j *IntervalJoin) link(s *joinSide, sl, g uint32) {
	s.link(sl, g)
	if j.gcount[g] == 0 {
		j.liveGroups++
	}
	j.gcount[g]++
}

// link appends slot sl to the list of group g.
func (s *joinSide) link(sl, g uint32) {
	s.gid[sl] = g
	s.next[sl] = noSlot
	if s.count[g] > 0 {
		s.prev[sl] = s.tail[g]
		s.next[s.tail[g]] = sl
	} else {
		s.prev[sl] = noSlot
		s.head[g] = sl
	}
	s.tail[g] = sl
	s.count[g]++
}

// unlink removes slot sl from its group's list (if any) and returns the
// group (noSlot for none). The row stays in the store.
func (s *joinSide) unlink(sl uint32) uint32 {
	g := s.gid[sl]
	if g == noSlot {
		return g
	}
	p, nx := s.prev[sl], s.next[sl]
	if p != noSlot {
		s.next[p] = nx
	} else {
		s.head[g] = nx
	}
	if nx != noSlot {
		s.prev[nx] = p
	} else {
		s.tail[g] = p
	}
	s.count[g]--
	return g
}

// release drops slot sl of side (unlinking it from its key list).
func (j *IntervalJoin) release(side int, sl uint32) {
	s := j.sides[side]
	if g := s.unlink(sl); g != noSlot {
		j.gcount[g]--
		if j.gcount[g] == 0 {
			j.liveGroups--
		}
	}
	s.store.remove(sl)
}

// PushSide stores the rows of rec (side 0 left, 1 right; not retained
// beyond the state) and emits their matches with the other side's rows.
func (j *IntervalJoin) PushSide(side int, rec arrow.RecordBatch, emit Emit) error {
	if j.closed {
		return fmt.Errorf("exec: IntervalJoin: Push after Close")
	}
	if side != 0 && side != 1 {
		return fmt.Errorf("exec: IntervalJoin: no input side %d", side)
	}
	n := int(rec.NumRows())
	if n == 0 {
		return nil
	}
	j.stats.RowsIn += int64(n)
	s, o := j.sides[side], j.sides[1-side]
	tus, ok, late := eventTimesOf(rec, s.timeCol, s.unit, j.wm, j.tus, j.ok)
	j.tus, j.ok = tus, ok
	j.stats.LateRows += int64(late)
	keyArrs := make([]arrow.Array, len(s.keys))
	for i, k := range s.keys {
		keyArrs[i] = rec.Column(k)
	}
	nulls := nullKeyRows(keyArrs, n)
	keepNull := side == 0 && j.cfg.Type == JoinLeft
	rows := make([]int32, 0, n)
	for i := 0; i < n; i++ {
		if ok[i] && (keepNull || nulls == nil || !nulls[i]) {
			rows = append(rows, int32(i))
		}
	}
	if len(rows) == 0 {
		return nil
	}
	j.hashes = hashArrays(keyArrs, n, j.hashes)
	slots, gids := j.insert(side, rec, rows, tus, nulls, j.hashes, nil)

	var pr []int32
	var ps, os []uint32
	for k, r := range rows {
		g := gids[k]
		if g == noSlot || o.count[g] == 0 {
			continue
		}
		t := tus[r]
		for x := o.head[g]; x != noSlot; x = o.next[x] {
			lt, rt := t, o.t[x]
			if side == 1 {
				lt, rt = rt, lt
			}
			if j.timeMatch(lt, rt) {
				pr = append(pr, r)
				ps = append(ps, slots[k])
				os = append(os, x)
			}
		}
		if len(pr) >= maxEmitRows {
			if err := j.emitPairs(side, rec, pr, ps, os, emit); err != nil {
				return err
			}
			pr, ps, os = pr[:0], ps[:0], os[:0]
		}
	}
	if len(pr) > 0 {
		if err := j.emitPairs(side, rec, pr, ps, os, emit); err != nil {
			return err
		}
	}
	s.store.maybeCompact()
	return nil
}

// emitPairs evaluates the residual over candidate pairs (pushed row pr[i]
// of rec stored as ps[i], other side's slot os[i]) and emits the matches.
func (j *IntervalJoin) emitPairs(side int, rec arrow.RecordBatch, pr []int32, ps, os []uint32, emit Emit) error {
	o := j.sides[1-side]
	if j.residual != nil {
		sel, err := j.evalResidual(side, rec, pr, os)
		if err != nil {
			return err
		}
		if len(sel) < len(pr) {
			npr := make([]int32, len(sel))
			nps := make([]uint32, len(sel))
			nos := make([]uint32, len(sel))
			for k, i := range sel {
				npr[k], nps[k], nos[k] = pr[i], ps[i], os[i]
			}
			pr, ps, os = npr, nps, nos
		}
	}
	m := len(pr)
	if m == 0 {
		return nil
	}
	if j.cfg.Type == JoinLeft {
		left := j.sides[0]
		if side == 0 {
			for _, sl := range ps {
				left.matched[sl] = true
			}
		} else {
			for _, sl := range os {
				left.matched[sl] = true
			}
		}
	}
	pushed := make([]arrow.Array, rec.NumCols())
	for c := range pushed {
		pushed[c] = takeArray(j.mem, rec.Column(c), pr)
	}
	stored := o.store.gatherAll(os)
	var cols []arrow.Array
	if side == 0 {
		cols = append(pushed, stored...)
	} else {
		cols = append(stored, pushed...)
	}
	defer releaseAll(cols)
	out := array.NewRecordBatch(j.out, cols, int64(m))
	defer out.Release()
	j.stats.RowsOut += int64(m)
	return emit(out)
}

// evalResidual returns the indices of the candidate pairs for which the
// residual is TRUE. Only the columns it reads are materialised.
func (j *IntervalJoin) evalResidual(side int, rec arrow.RecordBatch, pr []int32, os []uint32) ([]int32, error) {
	o := j.sides[1-side]
	b := &batch{cols: make([]arrow.Array, j.out.NumFields()), n: len(pr)}
	defer releaseAll(b.cols)
	nl := j.sides[1].off
	for _, c := range j.residual.refs() {
		cside, cc := 0, c
		if c >= nl {
			cside, cc = 1, c-nl
		}
		if cside == side {
			b.cols[c] = takeArray(j.mem, rec.Column(cc), pr)
		} else {
			b.cols[c] = o.store.gather(os, []int{cc})[0]
		}
	}
	return residualSelect(j.mem, j.residual, b, &j.sel)
}

// residualSelect evaluates a boolean node over b and returns the rows where
// it is TRUE (a fresh slice; buf is scratch).
func residualSelect(mem memory.Allocator, r node, b *batch, buf *[]int32) ([]int32, error) {
	m, err := r.eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer m.Release()
	if isNull(m.DataType()) {
		return nil, nil
	}
	if cap(*buf) < b.n {
		*buf = make([]int32, 0, b.n)
	}
	sel, _ := selectionIndices(m, *buf)
	return append([]int32(nil), sel...), nil
}

// Advance records the watermark, emits the null-padded rows of unmatched
// left rows it releases (JoinLeft) and releases the state it proves
// useless (see the type comment). A watermark lower than a previous one
// is ignored.
func (j *IntervalJoin) Advance(wm int64, emit Emit) error {
	if j.closed {
		return fmt.Errorf("exec: IntervalJoin: Advance after Close")
	}
	if wm <= j.wm {
		return nil
	}
	j.wm = wm
	left, right := j.sides[0], j.sides[1]
	var pad []uint32
	for _, e := range left.exp.popBefore(wm, nil) {
		if j.cfg.Type == JoinLeft && !left.matched[e.slot] {
			pad = append(pad, e.slot)
			continue
		}
		j.release(0, e.slot)
	}
	err := j.emitPadded(pad, emit)
	for _, sl := range pad {
		j.release(0, sl)
	}
	for _, e := range right.exp.popBefore(wm, nil) {
		j.release(1, e.slot)
	}
	left.store.maybeCompact()
	right.store.maybeCompact()
	j.maybeCompactGroups()
	return err
}

// emitPadded emits left slots with NULL right columns, ordered by event
// time, then by the left column values.
func (j *IntervalJoin) emitPadded(pad []uint32, emit Emit) error {
	if len(pad) == 0 {
		return nil
	}
	left := j.sides[0]
	slices.SortFunc(pad, func(a, b uint32) int {
		if c := cmpInt64(left.t[a], left.t[b]); c != 0 {
			return c
		}
		return left.store.compareRows(a, b)
	})
	right := j.sides[1].schema
	for start := 0; start < len(pad); start += maxEmitRows {
		part := pad[start:min(start+maxEmitRows, len(pad))]
		m := len(part)
		cols := left.store.gatherAll(part)
		for _, f := range right.Fields() {
			cols = append(cols, array.MakeArrayOfNull(j.mem, f.Type, m))
		}
		out := array.NewRecordBatch(j.out, cols, int64(m))
		releaseAll(cols)
		j.stats.RowsOut += int64(m)
		err := emit(out)
		out.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// maybeCompactGroups rebuilds the key table without the keys no row holds
// any more, once they are the majority.
func (j *IntervalJoin) maybeCompactGroups() {
	dead := j.groups.n - j.liveGroups
	if dead <= 1024 || dead <= j.liveGroups {
		return
	}
	keep := make([]uint32, 0, j.liveGroups)
	remap := make([]uint32, j.groups.n)
	for g, c := range j.gcount[:j.groups.n] {
		remap[g] = noSlot
		if c > 0 {
			remap[g] = uint32(len(keep))
			keep = append(keep, uint32(g))
		}
	}
	j.groups = compactGroups(j.mem, j.groups, j.keyTypes, keep)
	for ng, g := range keep {
		j.gcount[ng] = j.gcount[g]
		for _, s := range j.sides {
			s.head[ng], s.tail[ng], s.count[ng] = s.head[g], s.tail[g], s.count[g]
		}
	}
	n := len(keep)
	j.gcount = j.gcount[:n]
	for _, s := range j.sides {
		s.head, s.tail, s.count = s.head[:n], s.tail[:n], s.count[:n]
		for sl := range s.gid {
			if s.store.isLive(uint32(sl)) && s.gid[sl] != noSlot {
				s.gid[sl] = remap[s.gid[sl]]
			}
		}
	}
}

// Finish emits the null-padded rows of every unmatched left row still
// held (JoinLeft) and drops all state.
func (j *IntervalJoin) Finish(emit Emit) error {
	if j.closed {
		return fmt.Errorf("exec: IntervalJoin: Finish after Close")
	}
	var err error
	if j.cfg.Type == JoinLeft {
		left := j.sides[0]
		var pad []uint32
		for sl := range left.gid {
			if left.store.isLive(uint32(sl)) && !left.matched[sl] {
				pad = append(pad, uint32(sl))
			}
		}
		err = j.emitPadded(pad, emit)
	}
	j.reset()
	return err
}

func (j *IntervalJoin) reset() {
	for _, s := range j.sides {
		s.reset()
	}
	j.groups = newGroupTable(j.keyTypes)
	j.gcount, j.liveGroups = nil, 0
}

// frozenSide is a joinSide's rows as of a freeze: its store holds the
// live rows as slots 0, 1, … sharing their (retained) chunks, so the
// snapshot batches can be built on another goroutine.
type frozenSide struct {
	store   *rowStore
	schema  *arrow.Schema
	keys    []int
	seq     []uint64
	matched []bool
}

// freeze takes the side's live rows without copying them: per row its
// chunk and row, arrival number and matched flag.
func (s *joinSide) freeze() *frozenSide {
	var slots []uint32
	for sl := range s.gid {
		if s.store.isLive(uint32(sl)) {
			slots = append(slots, uint32(sl))
		}
	}
	f := &frozenSide{store: s.store.frozen(slots), schema: s.schema, keys: s.keys,
		seq: make([]uint64, len(slots)), matched: make([]bool, len(slots))}
	for i, sl := range slots {
		f.seq[i], f.matched[i] = s.seq[sl], s.matched[sl]
	}
	return f
}

// export appends the rows in arrival order as snapshot batches of part:
// the row columns, __key_hash, and __matched when withMatched. It
// releases the frozen rows.
func (f *frozenSide) export(snap *Snapshot, mem memory.Allocator, part string, withMatched bool) {
	defer f.store.releaseChunks()
	fields := []arrow.Field{{Name: KeyHashColumn, Type: arrow.PrimitiveTypes.Uint64}}
	if withMatched {
		fields = append(fields, arrow.Field{Name: "__matched", Type: tBool})
	}
	schema := stateSchema(f.schema, part, fields...)
	order := identity(len(f.seq))
	slices.SortFunc(order, func(a, b uint32) int { return cmp.Compare(f.seq[a], f.seq[b]) })
	for start := 0; start < len(order); start += maxEmitRows {
		chunk := order[start:min(start+maxEmitRows, len(order))]
		cols := f.store.gatherAll(chunk)
		keys := make([]arrow.Array, len(f.keys))
		for i, k := range f.keys {
			keys[i] = cols[k]
		}
		cols = append(cols, uint64Array(mem, hashArrays(keys, len(chunk), nil)))
		if withMatched {
			matched := make([]bool, len(chunk))
			for i, r := range chunk {
				matched[i] = f.matched[r]
			}
			cols = append(cols, boolArray(mem, matched))
		}
		snap.Batches = append(snap.Batches, array.NewRecordBatch(schema, cols, int64(len(chunk))))
		releaseAll(cols)
	}
}

// Checkpoint returns an immutable copy of the state (see the layout
// above); later calls do not change it. The caller owns the snapshot and
// releases it.
func (j *IntervalJoin) Checkpoint() (*Snapshot, error) {
	build, err := j.Freeze()
	if err != nil {
		return nil, err
	}
	return build()
}

// Freeze takes the state for a checkpoint without copying the rows (they
// are immutable Arrow batches): per live row its place, arrival number
// and matched flag. The returned function builds the snapshot Checkpoint
// would have returned now; it must run once, and may run on another
// goroutine while the join goes on.
func (j *IntervalJoin) Freeze() (func() (*Snapshot, error), error) {
	if j.closed {
		return nil, fmt.Errorf("exec: IntervalJoin: Checkpoint after Close")
	}
	meta := snapMeta(j.wm, j.fingerprint(), j.stats)
	sides := [2]*frozenSide{j.sides[0].freeze(), j.sides[1].freeze()}
	return func() (*Snapshot, error) {
		snap := &Snapshot{Kind: intervalJoinKind, Meta: meta, Positions: map[string]uint64{}}
		sides[0].export(snap, j.mem, "left", true)
		sides[1].export(snap, j.mem, "right", true)
		return snap, nil
	}, nil
}

// Restore replaces the state with snap's (which the caller keeps and
// still owns; its batches are retained while their rows are held). The
// join must have the configuration of the one that produced the snapshot.
// Parts produced by PartitionSnapshot restore the same way.
func (j *IntervalJoin) Restore(snap *Snapshot) error {
	wm, st, err := readSnapMeta(snap, intervalJoinKind, j.fingerprint(), "IntervalJoin")
	if err != nil {
		return err
	}
	j.reset()
	j.closed = false
	j.wm, j.stats, j.seq = wm, st, 0
	for _, rec := range snap.Batches {
		side := 0
		switch snapPart(rec) {
		case "left":
		case "right":
			side = 1
		default:
			return fmt.Errorf("exec: IntervalJoin: snapshot batch of part %q", snapPart(rec))
		}
		s := j.sides[side]
		if err := checkRowColumns(rec, s.store.types, 2); err != nil {
			return err
		}
		n := int(rec.NumRows())
		if n == 0 {
			continue
		}
		nc := len(s.store.types)
		tus, ok, _ := eventTimesOf(rec, s.timeCol, s.unit, math.MinInt64, nil, nil)
		keyArrs := make([]arrow.Array, len(s.keys))
		for i, k := range s.keys {
			keyArrs[i] = rec.Column(k)
		}
		nulls := nullKeyRows(keyArrs, n)
		mcol, okm := rec.Column(nc + 1).(*array.Boolean)
		if !okm || rec.Column(nc).DataType().ID() != arrow.UINT64 {
			return fmt.Errorf("exec: IntervalJoin: snapshot batch without %s/__matched", KeyHashColumn)
		}
		var rows []int32
		var matched []bool
		for i := 0; i < n; i++ {
			if ok[i] {
				rows = append(rows, int32(i))
				matched = append(matched, mcol.IsValid(i) && mcol.Value(i))
			}
		}
		j.insert(side, rec, rows, tus, nulls, Uint64s(rec.Column(nc)), matched)
	}
	return nil
}

// Close releases all state. Idempotent.
func (j *IntervalJoin) Close() {
	if j.closed {
		return
	}
	j.closed = true
	j.reset()
}
