package exec

import (
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// maxEmitRows bounds the rows of one emitted batch.
const maxEmitRows = 1 << 16

// HashAggregate groups rows by key (and event-time window) and computes
// aggregates; see AggConfig for the output schema.
//
// Windowed aggregates (TUMBLE, HOP, SESSION) keep one group table per open
// window (per key and session for SESSION) and emit a window's rows when
// Advance(wm) passes its end (window_end <= wm). Emission order is
// deterministic and independent of batch boundaries: windows by window_end,
// then window_start; within a window, groups by their key values in
// ascending order (NULLs last). Windows are aligned to the epoch (a tumble
// window of size s starts at a multiple of s µs; hop windows start at
// multiples of Slide).
//
// Late rows: a row whose event time (µs) is below the last watermark passed
// to Advance, or whose event time is NULL, is counted in Stats().LateRows
// and not aggregated.
//
// A Batch aggregate (AggConfig.Batch) emits only on Finish. Otherwise a
// non-windowed aggregate (WindowNone) emits, for each pushed batch, a
// changelog: for every group the batch touched, in order of first
// appearance in the batch, a "-" row with the previous values (when the
// group existed before) followed by a "+" row with the new values.
//
// Group keys of any physical type are supported; NULL keys group together.
// HashAggregate is not safe for concurrent use. Emitted batches are valid
// only during the Emit call.
type HashAggregate struct {
	cfg      AggConfig
	in, out  *arrow.Schema
	mem      memory.Allocator
	keyTypes []arrow.DataType
	aggs     []aggDesc
	unit     int64
	timeType arrow.DataType

	wm    int64 // last watermark passed to Advance (math.MinInt64 before any)
	stats Stats

	global   *aggTable           // WindowNone
	windows  map[int64]*aggTable // tumble/hop, by window start µs
	sess     *sessionState       // WindowSession
	mark     []uint32            // WindowNone: batch epoch per group
	epoch    uint32              //
	oldPos   int32               // WindowNone: position in the old results while emitting
	sizeHint int                 // groups of the last closed window (tumble/hop)
	buckets  map[int64][]int32   // scratch: rows per window
	order    []int64             // scratch: window starts in order of appearance
	hashes   []uint64            // scratch
	gids     []uint32            // scratch
	tus      []int64             // scratch: event time µs per row
	closed   bool
	frozen   atomic.Int32 // snapshots from Freeze not built yet (see cowVec)
}

var _ Stateful = (*HashAggregate)(nil)
var _ StatsReporter = (*HashAggregate)(nil)

// aggTable is one group table with its accumulators (one per window).
type aggTable struct {
	start, end int64 // µs, windowed only
	groups     *groupTable
	accs       []acc
}

func (h *HashAggregate) newTable(start, end int64) *aggTable {
	t := &aggTable{start: start, end: end, groups: newGroupTable(h.keyTypes)}
	for _, d := range h.aggs {
		t.accs = append(t.accs, newAcc(d))
	}
	return t
}

// find maps rows to group ids, growing the accumulators for new groups.
func (t *aggTable) find(keyArrs []arrow.Array, rows []int32, n int, hashes []uint64, gids []uint32) []uint32 {
	t.groups.bind(keyArrs)
	gids = t.groups.find(rows, n, hashes, gids)
	for _, a := range t.accs {
		a.grow(t.groups.n)
	}
	return gids
}

func (t *aggTable) update(gids []uint32, rows []int32, args []arrow.Array) error {
	for i, a := range t.accs {
		if err := a.update(gids, rows, args[i]); err != nil {
			return err
		}
	}
	return nil
}

func (t *aggTable) bytes() int64 {
	b := t.groups.bytes()
	for _, a := range t.accs {
		b += a.bytes()
	}
	return b
}

// Validate checks cfg against the input schema (key and argument columns,
// aggregate argument types, window parameters) without building state.
func (c AggConfig) Validate(input *arrow.Schema) error {
	_, err := NewHashAggregate(input, c)
	return err
}

// NewHashAggregate validates cfg against the input schema and returns an
// empty aggregate. Options: WithAllocator (outputs and snapshots).
func NewHashAggregate(input *arrow.Schema, cfg AggConfig, opts ...Option) (*HashAggregate, error) {
	o := buildOptions(opts)
	h := &HashAggregate{cfg: cfg, in: input, mem: o.mem, wm: math.MinInt64, buckets: map[int64][]int32{}}
	if len(cfg.KeyNames) != len(cfg.Keys) {
		return nil, fmt.Errorf("exec: HashAggregate: %d key names for %d keys", len(cfg.KeyNames), len(cfg.Keys))
	}
	var fields []arrow.Field
	if cfg.Batch && cfg.Window.Kind != WindowNone {
		return nil, fmt.Errorf("exec: HashAggregate: Batch applies to non-windowed aggregates only")
	}
	if cfg.Window.Kind == WindowNone && !cfg.Batch {
		fields = append(fields, arrow.Field{Name: "op", Type: tText})
	}
	for i, k := range cfg.Keys {
		if k < 0 || k >= input.NumFields() {
			return nil, fmt.Errorf("exec: HashAggregate: key column %d out of range", k)
		}
		dt := input.Field(k).Type
		h.keyTypes = append(h.keyTypes, dt)
		fields = append(fields, arrow.Field{Name: cfg.KeyNames[i], Type: dt, Nullable: true})
	}
	w := cfg.Window
	if w.Kind != WindowNone {
		if w.TimeCol < 0 || w.TimeCol >= input.NumFields() || physOf(input.Field(w.TimeCol).Type) != physInt64 {
			return nil, fmt.Errorf("exec: HashAggregate: event time column %d must be an int64 or timestamp column", w.TimeCol)
		}
		h.timeType = input.Field(w.TimeCol).Type
		h.unit = w.TimeUnit
		if h.unit <= 0 {
			h.unit = 1
		}
		switch w.Kind {
		case WindowTumble:
			if w.Size <= 0 {
				return nil, fmt.Errorf("exec: HashAggregate: tumble size must be positive")
			}
		case WindowHop:
			if w.Size <= 0 || w.Slide <= 0 {
				return nil, fmt.Errorf("exec: HashAggregate: hop size and slide must be positive")
			}
		case WindowSession:
			if w.Gap <= 0 {
				return nil, fmt.Errorf("exec: HashAggregate: session gap must be positive")
			}
		default:
			return nil, fmt.Errorf("exec: HashAggregate: unknown window kind %d", w.Kind)
		}
		fields = append(fields,
			arrow.Field{Name: "window_start", Type: h.timeType, Nullable: true},
			arrow.Field{Name: "window_end", Type: h.timeType, Nullable: true})
	}
	for _, s := range cfg.Aggs {
		d, err := resolveAgg(s, input)
		if err != nil {
			return nil, err
		}
		h.aggs = append(h.aggs, d)
		fields = append(fields, arrow.Field{Name: s.Name, Type: d.out, Nullable: true})
	}
	h.out = arrow.NewSchema(fields, nil)
	h.reset()
	return h, nil
}

func (h *HashAggregate) reset() {
	h.global, h.windows, h.sess = nil, nil, nil
	h.mark = nil
	switch h.cfg.Window.Kind {
	case WindowNone:
		h.global = h.newTable(0, 0)
	case WindowSession:
		h.sess = newSessionState(h)
	default:
		h.windows = map[int64]*aggTable{}
	}
}

// Schema returns the output schema.
func (h *HashAggregate) Schema() *arrow.Schema { return h.out }

// Stats returns the counters; StateRows counts groups (sessions) held.
func (h *HashAggregate) Stats() Stats {
	s := h.stats
	s.StateRows, s.StateBytes = 0, 0
	switch {
	case h.global != nil:
		s.StateRows = int64(h.global.groups.n)
		s.StateBytes = h.global.bytes()
	case h.sess != nil:
		s.StateRows = int64(h.sess.live)
		s.StateBytes = h.sess.bytes()
	default:
		for _, t := range h.windows {
			s.StateRows += int64(t.groups.n)
			s.StateBytes += t.bytes()
		}
	}
	return s
}

func (h *HashAggregate) inputs(rec arrow.RecordBatch) (keys, args []arrow.Array) {
	keys = make([]arrow.Array, len(h.cfg.Keys))
	for i, k := range h.cfg.Keys {
		keys[i] = rec.Column(k)
	}
	args = make([]arrow.Array, len(h.aggs))
	for i, d := range h.aggs {
		if d.spec.Kind != AggCountStar {
			args[i] = rec.Column(d.spec.Arg)
		}
	}
	return
}

// Push aggregates rec (not retained). A non-windowed aggregate emits the
// changelog of the batch; a windowed one emits nothing.
func (h *HashAggregate) Push(rec arrow.RecordBatch, emit Emit) error {
	if h.closed {
		return fmt.Errorf("exec: HashAggregate: Push after Close")
	}
	n := int(rec.NumRows())
	if n == 0 {
		return nil
	}
	h.stats.RowsIn += int64(n)
	keys, args := h.inputs(rec)
	h.hashes = hashArrays(keys, n, h.hashes)
	switch h.cfg.Window.Kind {
	case WindowNone:
		return h.pushNone(keys, args, n, emit)
	case WindowSession:
		return h.sess.push(rec, keys, args, n)
	}
	return h.pushWindowed(rec, keys, args, n)
}

// eventTimes converts the time column to µs; NULL and late rows get
// ok=false and are counted.
func (h *HashAggregate) eventTimes(rec arrow.RecordBatch, n int) (tus []int64, allOK bool, ok []bool) {
	tc := rec.Column(h.cfg.Window.TimeCol)
	raw := Int64s(tc)
	v := validityOf(tc)
	if cap(h.tus) < n {
		h.tus = make([]int64, n)
	}
	tus = h.tus[:n]
	unit := h.unit
	allOK = true
	wm := h.wm
	for i := 0; i < n; i++ {
		t := raw[i] * unit
		tus[i] = t
		if t < wm || !v.valid(i) {
			allOK = false
		}
	}
	if allOK {
		return tus, true, nil
	}
	ok = make([]bool, n)
	for i := 0; i < n; i++ {
		ok[i] = v.valid(i) && tus[i] >= wm
		if !ok[i] {
			h.stats.LateRows++
		}
	}
	return tus, false, ok
}

func (h *HashAggregate) pushWindowed(rec arrow.RecordBatch, keys, args []arrow.Array, n int) error {
	w := h.cfg.Window
	tus, allOK, ok := h.eventTimes(rec, n)
	// Fast path: one tumble window for the whole batch.
	if w.Kind == WindowTumble && allOK {
		ws := floorDiv(tus[0]-w.Offset, w.Size)*w.Size + w.Offset
		same := true
		for _, t := range tus {
			if t < ws || t >= ws+w.Size {
				same = false
				break
			}
		}
		if same {
			return h.addToWindow(ws, keys, args, nil, n)
		}
	}
	for k := range h.buckets {
		h.buckets[k] = h.buckets[k][:0]
	}
	h.order = h.order[:0]
	add := func(ws int64, r int32) {
		b, seen := h.buckets[ws]
		if !seen || len(b) == 0 {
			h.order = append(h.order, ws)
		}
		h.buckets[ws] = append(b, r)
	}
	for i := 0; i < n; i++ {
		if !allOK && !ok[i] {
			continue
		}
		t := tus[i]
		if w.Kind == WindowTumble {
			add(floorDiv(t-w.Offset, w.Size)*w.Size+w.Offset, int32(i))
			continue
		}
		last := floorDiv(t-w.Offset, w.Slide)*w.Slide + w.Offset
		for s := last; s > t-w.Size; s -= w.Slide {
			add(s, int32(i))
		}
	}
	for _, ws := range h.order {
		if err := h.addToWindow(ws, keys, args, h.buckets[ws], 0); err != nil {
			return err
		}
	}
	// Drop scratch buckets of windows no longer seen to bound memory.
	if len(h.buckets) > 64 {
		h.buckets = map[int64][]int32{}
	}
	return nil
}

func (h *HashAggregate) addToWindow(ws int64, keys, args []arrow.Array, rows []int32, n int) error {
	t := h.windows[ws]
	if t == nil {
		size := h.cfg.Window.Size
		t = h.newTable(ws, ws+size)
		if h.sizeHint > 0 {
			// Windows of a stream tend to have similar group counts:
			// size the table like the last closed one to avoid regrowth.
			t.groups.reserve(h.sizeHint)
			for _, a := range t.accs {
				a.grow(h.sizeHint)
			}
		}
		h.windows[ws] = t
	}
	h.gids = t.find(keys, rows, n, h.hashes, h.gids)
	return t.update(h.gids, rows, args)
}

func (h *HashAggregate) pushNone(keys, args []arrow.Array, n int, emit Emit) error {
	t := h.global
	if h.cfg.Batch {
		h.gids = t.find(keys, nil, n, h.hashes, h.gids)
		return t.update(h.gids, nil, args)
	}
	before := uint32(t.groups.n)
	h.gids = t.find(keys, nil, n, h.hashes, h.gids)
	gids := h.gids
	h.mark = growTo(h.mark, t.groups.n)
	h.epoch++
	if h.epoch == 0 {
		clear(h.mark)
		h.epoch = 1
	}
	var changed, existed []uint32
	for _, g := range gids {
		if h.mark[g] != h.epoch {
			h.mark[g] = h.epoch
			changed = append(changed, g)
			if g < before {
				existed = append(existed, g)
			}
		}
	}
	old := make([]arrow.Array, len(t.accs))
	defer releaseAll(old)
	for i, a := range t.accs {
		old[i] = a.result(h.mem, existed)
	}
	if err := t.update(gids, nil, args); err != nil {
		return err
	}
	h.oldPos = 0
	for start := 0; start < len(changed); start += maxEmitRows / 2 {
		end := min(start+maxEmitRows/2, len(changed))
		if err := h.emitChanges(t, changed[start:end], before, old, emit); err != nil {
			return err
		}
	}
	return nil
}

// emitChanges emits "-" (old) and "+" (new) rows for the groups changed;
// old holds the previous results of the changed groups with id < before,
// in order (oldPos counts through it across chunks).
func (h *HashAggregate) emitChanges(t *aggTable, changed []uint32, before uint32, old []arrow.Array, emit Emit) error {
	// index of each existed group in old: count existed groups preceding.
	newRes := make([]arrow.Array, len(t.accs))
	defer releaseAll(newRes)
	for i, a := range t.accs {
		newRes[i] = a.result(h.mem, changed)
	}
	keyArrs := make([]arrow.Array, len(t.groups.keys))
	defer releaseAll(keyArrs)
	for i, k := range t.groups.keys {
		keyArrs[i] = k.export(h.mem, changed)
	}
	var keyIdx, which, rows []int32
	ops := newStringBuf(len(changed) * 2)
	for j, g := range changed {
		if g < before {
			keyIdx = append(keyIdx, int32(j))
			which = append(which, 0)
			rows = append(rows, h.oldPos)
			h.oldPos++
			ops.appendString("-")
		}
		keyIdx = append(keyIdx, int32(j))
		which = append(which, 1)
		rows = append(rows, int32(j))
		ops.appendString("+")
	}
	m := len(keyIdx)
	cols := make([]arrow.Array, 0, h.out.NumFields())
	defer func() { releaseAll(cols) }()
	cols = append(cols, ops.finish(h.mem))
	for _, k := range keyArrs {
		cols = append(cols, takeArray(h.mem, k, keyIdx))
	}
	for i := range t.accs {
		cols = append(cols, gather(h.mem, h.aggs[i].out, []arrow.Array{old[i], newRes[i]}, which, rows))
	}
	rec := array.NewRecordBatch(h.out, cols, int64(m))
	defer rec.Release()
	h.stats.RowsOut += int64(m)
	return emit(rec)
}

// Advance records the watermark and emits every window that ends at or
// before wm (see the type comment for the order). A watermark lower than
// a previous one is ignored.
func (h *HashAggregate) Advance(wm int64, emit Emit) error {
	if wm <= h.wm {
		return nil
	}
	h.wm = wm
	switch h.cfg.Window.Kind {
	case WindowNone:
		return nil
	case WindowSession:
		return h.sess.close(wm, false, emit)
	}
	return h.emitWindows(func(t *aggTable) bool { return t.end <= wm }, emit)
}

// Finish emits every open window (bounded inputs); for a non-windowed
// aggregate it emits nothing (the changelog is already out).
//
// A Batch aggregate emits its groups here, once, in key order (NULLs
// last); without keys it emits exactly one row even for an empty input
// (COUNT(*) = 0, SUM NULL), as SQL requires.
func (h *HashAggregate) Finish(emit Emit) error {
	switch h.cfg.Window.Kind {
	case WindowNone:
		if !h.cfg.Batch || h.global == nil {
			return nil
		}
		t := h.global
		h.global = h.newTable(0, 0)
		if t.groups.n == 0 && len(h.keyTypes) == 0 {
			for _, a := range t.accs {
				a.grow(1)
			}
			return h.emitRows(t.groups, []uint32{0}, t.accs, []uint32{0}, nil, nil, emit)
		}
		gids := t.groups.sorted()
		for start := 0; start < len(gids); start += maxEmitRows {
			part := gids[start:min(start+maxEmitRows, len(gids))]
			if err := h.emitRows(t.groups, part, t.accs, part, nil, nil, emit); err != nil {
				return err
			}
		}
		return nil
	case WindowSession:
		return h.sess.close(math.MaxInt64, true, emit)
	}
	return h.emitWindows(func(*aggTable) bool { return true }, emit)
}

func (h *HashAggregate) emitWindows(due func(*aggTable) bool, emit Emit) error {
	var ts []*aggTable
	for _, t := range h.windows {
		if due(t) {
			ts = append(ts, t)
		}
	}
	slices.SortFunc(ts, func(a, b *aggTable) int {
		if a.end != b.end {
			return cmpInt64(a.end, b.end)
		}
		return cmpInt64(a.start, b.start)
	})
	for _, t := range ts {
		delete(h.windows, t.start)
		h.sizeHint = t.groups.n
		if err := h.emitTable(t, t.groups.sorted(), emit); err != nil {
			return err
		}
	}
	return nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// emitTable emits the groups gids (in that order) of a window table.
func (h *HashAggregate) emitTable(t *aggTable, gids []uint32, emit Emit) error {
	for start := 0; start < len(gids); start += maxEmitRows {
		part := gids[start:min(start+maxEmitRows, len(gids))]
		ws := make([]int64, len(part))
		we := make([]int64, len(part))
		for i := range part {
			ws[i], we[i] = t.start, t.end
		}
		if err := h.emitRows(t.groups, part, t.accs, part, ws, we, emit); err != nil {
			return err
		}
	}
	return nil
}

// emitRows emits one batch: the keys keyIDs of g and the aggregates accIDs
// of accs, with window bounds ws/we (µs) when windowed.
func (h *HashAggregate) emitRows(g *groupTable, keyIDs []uint32, accs []acc, accIDs []uint32, ws, we []int64, emit Emit) error {
	n := len(keyIDs)
	gids := accIDs
	cols := make([]arrow.Array, 0, h.out.NumFields())
	defer func() { releaseAll(cols) }()
	for _, k := range g.keys {
		cols = append(cols, k.export(h.mem, keyIDs))
	}
	if h.cfg.Window.Kind != WindowNone {
		bs, s := allocInt64(h.mem, n)
		be, e := allocInt64(h.mem, n)
		for i := range s {
			s[i] = floorDiv(ws[i], h.unit)
			e[i] = floorDiv(we[i], h.unit)
		}
		cols = append(cols, makeFixed(h.timeType, n, nil, bs), makeFixed(h.timeType, n, nil, be))
	}
	for _, a := range accs {
		cols = append(cols, a.result(h.mem, gids))
	}
	rec := array.NewRecordBatch(h.out, cols, int64(n))
	defer rec.Release()
	h.stats.RowsOut += int64(n)
	return emit(rec)
}

// Close drops all state. Idempotent.
func (h *HashAggregate) Close() {
	h.closed = true
	h.global, h.windows, h.sess = nil, nil, nil
	h.buckets, h.hashes, h.gids, h.mark = nil, nil, nil, nil
}
