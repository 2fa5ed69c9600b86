package exec

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Snapshot layout of an OverWindow (Kind "over_window"), three parts told
// apart by the schema metadata spate.part:
//
//   - rows: the rows held, as input columns, then __key_hash (HashColumns
//     over PartitionBy) and __waiting (bool): false for a row whose event
//     time the watermark has not passed yet, true for a final row waiting
//     for its LEAD followers (these in partition order);
//   - partitions: one row per partition: the PartitionBy columns (input
//     names and types), __key_hash, __row_number (rows emitted so far) and,
//     for each running aggregate i (Preceding -1), its accumulator
//     __r<i>_cnt, __r<i>_hi, __r<i>_lo (a 128-bit integer sum), __r<i>_f
//     (a float sum) and __r<i>_mm (MIN/MAX so far, the argument's type);
//   - history: the PartitionBy columns, __key_hash, then one column per
//     input column that LAG or a bounded frame reads (__h<j>, the input
//     type): the last rows emitted per partition, oldest first.
//
// Meta: "watermark", "config" (a fingerprint Restore checks) and the
// counters "count.rows_in", "count.rows_out", "count.late_rows".
const overWindowKind = "over_window"

// maxOverFrame bounds ROWS n PRECEDING and LAG/LEAD offsets.
const maxOverFrame = 1 << 20

// OverWindow computes OVER (PARTITION BY … ORDER BY <event time>) window
// functions; see OverConfig and OverFunc.
//
// Emission rule: a row whose event time t (µs) is NULL or t < wm on
// arrival (wm = the last watermark passed to Advance; a lower one is
// ignored) is late, counted in Stats().LateRows and dropped. Otherwise it
// is held, and becomes final at the first Advance(wm) with wm > t: rows
// with time t may still arrive while wm == t, so only then is its position
// in its partition known. Final rows are ordered within their partition
// by (time, then every column value in column order, NULLs last), which is
// PostgreSQL's ORDER BY time with ties broken so that the result does not
// depend on arrival order or batch boundaries. Without LEAD a final row is
// emitted by the Advance that made it final; with LEAD (K = the largest
// LEAD offset) it is emitted once the K-th following row of its partition
// is final, or by Finish, where missing followers give the default. The
// rows one Advance (or Finish) emits are ordered by (time, then the
// PartitionBy values, then every column value in column order; NULLs
// last).
//
// Function values follow PostgreSQL: ROW_NUMBER counts from 1 per
// partition; LAG/LEAD return the argument (NULL included) of the row
// Offset before/after, or Default when there is none; aggregates over
// ROWS BETWEEN Preceding PRECEDING AND CURRENT ROW (or UNBOUNDED) skip
// NULLs, COUNT is 0 and SUM/AVG/MIN/MAX are NULL without a non-NULL value;
// SUM(bigint) is bigint (SQLSTATE 22003 when the frame sum leaves its
// range), SUM(double) double, SUM(interval) interval; AVG is double
// (interval for an interval argument, rounded to the µs). Float sums add
// the frame's rows oldest first.
//
// State: the rows not yet emitted (retained input batches, compacted when
// few rows of a batch survive) and per partition the row count, the
// running aggregates and the last max(Preceding, LAG offset) values of
// the columns LAG and bounded frames read. Partitions are kept for ever
// (their row numbers and running aggregates continue).
//
// OverWindow is not safe for concurrent use. Emitted batches are valid
// only during the Emit call.
type OverWindow struct {
	cfg   OverConfig
	in    *arrow.Schema
	out   *arrow.Schema
	mem   memory.Allocator
	unit  int64
	funcs []overDesc
	leadK int // largest LEAD offset, 0 without LEAD

	pkTypes []arrow.DataType
	groups  *groupTable
	store   *rowStore
	slotGid []uint32
	slotT   []int64
	pending slotHeap // rows not final yet, by event time

	// per partition
	rowNum   []int64
	waiting  [][]uint32 // final rows waiting for LEAD followers, in order
	nWaiting int
	histLen  int   // values kept per history column (0: no history)
	histCols []int // input columns kept in history
	hist     []overHist
	run      [][]overAcc // per function: per partition (running aggregates only)

	wm     int64
	stats  Stats
	closed bool

	outSlots    []uint32 // scratch: rows being emitted
	histScratch []ov
	outVals     [][]ov // scratch: per function, values of outSlots
	hashes      []uint64
	gids        []uint32
	tus         []int64
	ok          []bool
	ready       []timedSlot
}

var _ Stateful = (*OverWindow)(nil)
var _ StatsReporter = (*OverWindow)(nil)

// ov is one SQL value of an OVER function: int64 layouts and booleans
// (0/1) in i, doubles in f, text in s.
type ov struct {
	null bool
	i    int64
	f    float64
	s    string
}

type overDesc struct {
	spec    OverFunc
	arg     int
	argType arrow.DataType
	phys    physical
	out     arrow.DataType
	offset  int
	def     ov
	prec    int64 // -1: unbounded
	hc      int   // history column, -1 none
}

// overHist is a ring of the last rows' values of the history columns of
// one partition: row i of the ring holds vals[i*nc : (i+1)*nc], nc the
// number of history columns.
type overHist struct {
	vals  []ov
	start int32
	n     int32
}

// at returns the k-th most recent value (1 = the previous row) of history
// column c; size is the ring capacity in rows, nc the columns.
func (h *overHist) at(c, k, size, nc int) ov {
	i := int(h.start) + int(h.n) - k
	if i >= size {
		i -= size
	}
	return h.vals[i*nc+c]
}

// push appends one row of values, overwriting the oldest when full.
func (h *overHist) push(vals []ov, size int) {
	if int(h.n) < size {
		h.vals = append(h.vals, vals...)
		h.n++
		return
	}
	copy(h.vals[int(h.start)*len(vals):], vals)
	h.start++
	if int(h.start) == size {
		h.start = 0
	}
}

// overAcc accumulates one aggregate.
type overAcc struct {
	cnt int64  // non-NULL values
	hi  int64  // 128-bit integer sum, high word
	lo  uint64 // low word
	f   float64
	mm  ov
}

func cmpOV(p physical, a, b ov) int {
	switch p {
	case physFloat64:
		return fcmp(a.f, b.f)
	case physString:
		return strings.Compare(a.s, b.s)
	}
	return cmpInt64(a.i, b.i)
}

func (a *overAcc) add(d *overDesc, v ov) {
	if v.null {
		return
	}
	a.cnt++
	switch d.spec.Kind {
	case OverSum, OverAvg:
		if d.phys == physFloat64 {
			a.f += v.f
			return
		}
		l, carry := bits.Add64(a.lo, uint64(v.i), 0)
		a.lo = l
		a.hi += v.i>>63 + int64(carry)
	case OverMin, OverMax:
		if a.cnt == 1 {
			a.mm = v
			return
		}
		c := cmpOV(d.phys, v, a.mm)
		if (d.spec.Kind == OverMax && c > 0) || (d.spec.Kind == OverMin && c < 0) {
			a.mm = v
		}
	}
}

func int128Float(hi int64, lo uint64) float64 {
	if hi == 0 || hi == -1 && lo >= 1<<63 {
		return float64(int64(lo))
	}
	return float64(hi)*18446744073709551616.0 + float64(lo)
}

func (a *overAcc) result(d *overDesc) (ov, error) {
	if d.spec.Kind == OverCount {
		return ov{i: a.cnt}, nil
	}
	if a.cnt == 0 {
		return ov{null: true}, nil
	}
	switch d.spec.Kind {
	case OverSum:
		if d.phys == physFloat64 {
			return ov{f: a.f}, nil
		}
		if !(a.hi == 0 && a.lo < 1<<63) && !(a.hi == -1 && a.lo >= 1<<63) {
			if isIntv(d.argType) {
				return ov{}, errIntervalRange()
			}
			return ov{}, errBigintRange()
		}
		return ov{i: int64(a.lo)}, nil
	case OverAvg:
		if d.phys == physFloat64 {
			return ov{f: a.f / float64(a.cnt)}, nil
		}
		avg := int128Float(a.hi, a.lo) / float64(a.cnt)
		if isIntv(d.argType) {
			return ov{i: int64(math.Round(avg))}, nil
		}
		return ov{f: avg}, nil
	}
	return a.mm, nil
}

// readOV reads row r of a as an ov (text copied).
func readOV(a arrow.Array, r int, p physical) ov {
	if a.IsNull(r) {
		return ov{null: true}
	}
	switch p {
	case physInt64:
		return ov{i: Int64s(a)[r]}
	case physFloat64:
		return ov{f: Float64s(a)[r]}
	case physString:
		return ov{s: string(stringsOf(a).bytes(r))}
	case physBool:
		if a.(*array.Boolean).Value(r) {
			return ov{i: 1}
		}
		return ov{}
	}
	return ov{null: true}
}

// toOV converts a Literal value (nil, bool, int64, float64, string) to an
// ov of physical type p.
func toOV(v any, p physical) (ov, bool) {
	if v == nil {
		return ov{null: true}, true
	}
	switch p {
	case physInt64:
		x, ok := toInt64(v)
		return ov{i: x}, ok
	case physFloat64:
		switch x := v.(type) {
		case float64:
			return ov{f: x}, true
		default:
			i, ok := toInt64(v)
			return ov{f: float64(i)}, ok
		}
	case physString:
		s, ok := v.(string)
		return ov{s: s}, ok
	case physBool:
		b, ok := v.(bool)
		if b {
			return ov{i: 1}, ok
		}
		return ov{}, ok
	}
	return ov{}, false
}

// ovArray builds a column of type dt from vals in the order perm.
func ovArray(mem memory.Allocator, dt arrow.DataType, vals []ov, perm []int32) arrow.Array {
	n := len(perm)
	switch physOf(dt) {
	case physInt64:
		buf, out := allocInt64(mem, n)
		vb, vbits := allocBits(mem, n)
		for j, p := range perm {
			if v := &vals[p]; !v.null {
				out[j] = v.i
				setBit(vbits, j)
			} else {
				out[j] = 0
			}
		}
		return makeFixed(dt, n, vb, buf)
	case physFloat64:
		buf, out := allocFloat64(mem, n)
		vb, vbits := allocBits(mem, n)
		for j, p := range perm {
			if v := &vals[p]; !v.null {
				out[j] = v.f
				setBit(vbits, j)
			} else {
				out[j] = 0
			}
		}
		return makeFixed(dt, n, vb, buf)
	case physBool:
		db, data := allocBits(mem, n)
		vb, vbits := allocBits(mem, n)
		for j, p := range perm {
			if v := &vals[p]; !v.null {
				setBit(vbits, j)
				if v.i != 0 {
					setBit(data, j)
				}
			}
		}
		return makeFixed(dt, n, vb, db)
	case physString:
		sb := newStringBuf(n)
		for _, p := range perm {
			if v := &vals[p]; !v.null {
				sb.appendString(v.s)
			} else {
				sb.appendNull()
			}
		}
		return sb.finish(mem)
	}
	panic(fmt.Sprintf("exec: ovArray of unsupported type %s", dt))
}

func resolveOver(f OverFunc, in *arrow.Schema) (overDesc, error) {
	d := overDesc{spec: f, arg: f.Arg, prec: f.Preceding, hc: -1, offset: f.Offset}
	name := f.Name
	needArg := f.Kind != OverRowNumber && f.Kind != OverCountStar
	if needArg {
		if f.Arg < 0 || f.Arg >= in.NumFields() {
			return d, fmt.Errorf("exec: OVER function %s: argument column %d out of range", name, f.Arg)
		}
		d.argType = in.Field(f.Arg).Type
		d.phys = physOf(d.argType)
		switch d.phys {
		case physInt64, physFloat64, physString, physBool:
		default:
			return d, &Error{Code: CodeFeatureNotSupported, Message: fmt.Sprintf("OVER function %s: unsupported argument type %s", name, d.argType)}
		}
	}
	noFn := func(fn string) error {
		return &Error{Code: CodeUndefinedFunction, Message: fmt.Sprintf("function %s(%s) does not exist", fn, pgTypeName(d.argType))}
	}
	switch f.Kind {
	case OverRowNumber, OverCount, OverCountStar:
		d.out = tInt
	case OverLag, OverLead:
		if d.offset == 0 {
			d.offset = 1
		}
		if d.offset < 0 || d.offset > maxOverFrame {
			return d, &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf("OVER function %s: offset %d must be between 1 and %d", name, f.Offset, maxOverFrame)}
		}
		def, ok := toOV(f.Default, d.phys)
		if !ok {
			return d, &Error{Code: CodeDatatypeMismatch, Message: fmt.Sprintf("OVER function %s: default %v (%T) does not match argument type %s", name, f.Default, f.Default, pgTypeName(d.argType))}
		}
		d.def = def
		d.out = d.argType
	case OverSum:
		switch {
		case d.phys == physInt64 && isIntv(d.argType):
			d.out = d.argType
		case d.phys == physInt64 && !isTS(d.argType):
			d.out = tInt
		case d.phys == physFloat64:
			d.out = tFloat
		default:
			return d, noFn("sum")
		}
	case OverAvg:
		switch {
		case d.phys == physInt64 && isIntv(d.argType):
			d.out = d.argType
		case d.phys == physInt64 && !isTS(d.argType), d.phys == physFloat64:
			d.out = tFloat
		default:
			return d, noFn("avg")
		}
	case OverMin, OverMax:
		d.out = d.argType
	default:
		return d, fmt.Errorf("exec: unknown OVER function kind %d", f.Kind)
	}
	switch f.Kind {
	case OverCount, OverCountStar, OverSum, OverAvg, OverMin, OverMax:
		if f.Preceding < -1 || f.Preceding > maxOverFrame {
			return d, &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf("OVER function %s: frame of %d preceding rows (want -1 for UNBOUNDED or 0..%d)", name, f.Preceding, maxOverFrame)}
		}
	}
	if f.Type != nil && physOf(f.Type) != physOf(d.out) {
		return d, fmt.Errorf("exec: OVER function %s: planner type %s, kernel produces %s", name, f.Type, d.out)
	}
	if f.Type != nil {
		d.out = f.Type
	}
	return d, nil
}

// Validate checks cfg against the input schema without building state.
func (c OverConfig) Validate(input *arrow.Schema) error {
	_, err := NewOverWindow(input, c)
	return err
}

// NewOverWindow validates cfg against the input schema and returns an
// empty window. TimeCol must have the int64 layout (BIGINT in TimeUnit µs,
// or TIMESTAMP with unit 1; a unit <= 0 means 1). Options: WithAllocator
// (outputs, compacted state and snapshots).
func NewOverWindow(input *arrow.Schema, cfg OverConfig, opts ...Option) (*OverWindow, error) {
	o := buildOptions(opts)
	const who = "exec: OverWindow"
	if err := checkRowTypes(who, input); err != nil {
		return nil, err
	}
	if cfg.TimeCol < 0 || cfg.TimeCol >= input.NumFields() || physOf(input.Field(cfg.TimeCol).Type) != physInt64 {
		return nil, fmt.Errorf("%s: event time column %d must be an int64 or timestamp column", who, cfg.TimeCol)
	}
	w := &OverWindow{cfg: cfg, in: input, mem: o.mem, unit: cfg.TimeUnit, wm: math.MinInt64}
	if w.unit <= 0 {
		w.unit = 1
	}
	for _, k := range cfg.PartitionBy {
		if k < 0 || k >= input.NumFields() {
			return nil, fmt.Errorf("%s: partition column %d out of range", who, k)
		}
		w.pkTypes = append(w.pkTypes, input.Field(k).Type)
	}
	fields := append([]arrow.Field(nil), input.Fields()...)
	histIdx := map[int]int{}
	for _, f := range cfg.Funcs {
		d, err := resolveOver(f, input)
		if err != nil {
			return nil, err
		}
		need := 0
		switch {
		case f.Kind == OverLag:
			need = d.offset
		case f.Kind == OverLead:
			w.leadK = max(w.leadK, d.offset)
		case f.Kind != OverRowNumber && f.Kind != OverCountStar && d.prec > 0:
			need = int(d.prec)
		}
		if need > 0 {
			hc, ok := histIdx[d.arg]
			if !ok {
				hc = len(w.histCols)
				histIdx[d.arg] = hc
				w.histCols = append(w.histCols, d.arg)
			}
			d.hc = hc
			w.histLen = max(w.histLen, need)
		}
		w.funcs = append(w.funcs, d)
		fields = append(fields, arrow.Field{Name: f.Name, Type: d.out, Nullable: true})
	}
	w.out = arrow.NewSchema(fields, nil)
	w.run = make([][]overAcc, len(w.funcs))
	w.outVals = make([][]ov, len(w.funcs))
	w.reset()
	return w, nil
}

func (w *OverWindow) reset() {
	if w.store != nil {
		w.store.reset()
	}
	w.store = newRowStore(w.mem, w.in)
	w.groups = newGroupTable(w.pkTypes)
	w.slotGid, w.slotT, w.pending = nil, nil, nil
	w.rowNum, w.waiting, w.nWaiting, w.hist = nil, nil, 0, nil
	for i := range w.run {
		w.run[i] = nil
	}
}

func (w *OverWindow) running(i int) bool {
	switch w.funcs[i].spec.Kind {
	case OverCount, OverSum, OverAvg, OverMin, OverMax:
		return w.funcs[i].prec < 0
	}
	return false
}

func (w *OverWindow) growPartitions() {
	n := w.groups.n
	w.rowNum = growTo(w.rowNum, n)
	w.waiting = growTo(w.waiting, n)
	if w.histLen > 0 {
		w.hist = growTo(w.hist, n)
	}
	for i := range w.funcs {
		if w.running(i) {
			w.run[i] = growTo(w.run[i], n)
		}
	}
}

func (w *OverWindow) fingerprint() string {
	var sb strings.Builder
	for _, f := range w.in.Fields() {
		sb.WriteString(f.Type.String())
		sb.WriteByte(',')
	}
	fmt.Fprintf(&sb, ";pk=%v;t=%d;u=%d", w.cfg.PartitionBy, w.cfg.TimeCol, w.unit)
	for _, d := range w.funcs {
		fmt.Fprintf(&sb, ";f=%d:%d:%d:%v:%d:%s", d.spec.Kind, d.arg, d.offset, d.spec.Default, d.prec, d.out)
	}
	return sb.String()
}

// Schema returns the output schema: the input columns, then one column
// per OverFunc.
func (w *OverWindow) Schema() *arrow.Schema { return w.out }

// Stats returns the counters; StateRows counts the rows held (not emitted
// yet) plus the partitions.
func (w *OverWindow) Stats() Stats {
	s := w.stats
	s.StateRows = int64(w.store.live) + int64(w.groups.n)
	s.StateBytes = w.store.stateBytes() + w.groups.bytes() + int64(len(w.slotGid))*12 + int64(len(w.pending))*16 +
		int64(w.groups.n)*(8+24+int64(w.histLen*len(w.histCols))*40) + int64(w.nWaiting)*4
	for i := range w.run {
		s.StateBytes += int64(len(w.run[i])) * 64
	}
	return s
}

// Push holds the rows of rec (retained while they are held); it emits
// nothing.
func (w *OverWindow) Push(rec arrow.RecordBatch, emit Emit) error {
	if w.closed {
		return fmt.Errorf("exec: OverWindow: Push after Close")
	}
	n := int(rec.NumRows())
	if n == 0 {
		return nil
	}
	w.stats.RowsIn += int64(n)
	tus, ok, late := eventTimesOf(rec, w.cfg.TimeCol, w.unit, w.wm, w.tus, w.ok)
	w.tus, w.ok = tus, ok
	w.stats.LateRows += int64(late)
	rows := make([]int32, 0, n-late)
	for i := 0; i < n; i++ {
		if ok[i] {
			rows = append(rows, int32(i))
		}
	}
	if len(rows) == 0 {
		return nil
	}
	pk := make([]arrow.Array, len(w.cfg.PartitionBy))
	for i, k := range w.cfg.PartitionBy {
		pk[i] = rec.Column(k)
	}
	w.hashes = hashArrays(pk, n, w.hashes)
	w.addRows(rec, rows, pk, w.hashes, tus, nil)
	w.store.maybeCompact()
	return nil
}

// addRows stores rows of rec with partition arrays pk, hashes and times
// per batch row; waiting (per row, nil = none) marks final rows waiting
// for LEAD followers, appended to their partition's queue in order.
func (w *OverWindow) addRows(rec arrow.RecordBatch, rows []int32, pk []arrow.Array, hashes []uint64, tus []int64, waiting []bool) {
	w.groups.bind(pk)
	gids := w.groups.find(rows, 0, hashes, w.gids)
	w.gids = gids
	w.growPartitions()
	slots := w.store.add(rec, rows, nil)
	w.slotGid = growTo(w.slotGid, w.store.cap())
	w.slotT = growTo(w.slotT, w.store.cap())
	for k, r := range rows {
		sl := slots[k]
		w.slotGid[sl] = gids[k]
		w.slotT[sl] = tus[r]
		if waiting != nil && waiting[r] {
			w.waiting[gids[k]] = append(w.waiting[gids[k]], sl)
			w.nWaiting++
			continue
		}
		w.pending.push(tus[r], sl)
	}
}

// cmpFinal orders rows by (time, partition key values, every column).
func (w *OverWindow) cmpFinal(a, b uint32) int {
	if c := cmpInt64(w.slotT[a], w.slotT[b]); c != 0 {
		return c
	}
	if ga, gb := w.slotGid[a], w.slotGid[b]; ga != gb {
		if c := w.groups.cmpGroups(ga, gb); c != 0 {
			return c
		}
	}
	return w.store.compareRows(a, b)
}

// Advance records the watermark and emits the rows it makes final (and,
// with LEAD, the rows whose followers it makes final); see the type
// comment for the rule and the order. A watermark lower than a previous
// one is ignored.
func (w *OverWindow) Advance(wm int64, emit Emit) error {
	if w.closed {
		return fmt.Errorf("exec: OverWindow: Advance after Close")
	}
	if wm <= w.wm {
		return nil
	}
	w.wm = wm
	w.ready = w.pending.popBefore(wm, w.ready[:0])
	return w.release(w.ready, false, emit)
}

// Finish makes every held row final and emits all of them (LEAD without a
// following row gives its default).
func (w *OverWindow) Finish(emit Emit) error {
	if w.closed {
		return fmt.Errorf("exec: OverWindow: Finish after Close")
	}
	w.ready = w.ready[:0]
	for len(w.pending) > 0 {
		w.ready = append(w.ready, w.pending.pop())
	}
	return w.release(w.ready, true, emit)
}

// release processes newly final rows (ascending time) and emits what is
// complete; final also flushes the LEAD queues.
func (w *OverWindow) release(ready []timedSlot, final bool, emit Emit) error {
	// ties on time: by partition key values, then by the columns.
	for i := 0; i < len(ready); {
		j := i + 1
		for j < len(ready) && ready[j].t == ready[i].t {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(ready[i:j], func(a, b timedSlot) int { return w.cmpFinal(a.slot, b.slot) })
		}
		i = j
	}
	w.outSlots = w.outSlots[:0]
	for i := range w.outVals {
		w.outVals[i] = w.outVals[i][:0]
	}
	for _, e := range ready {
		g := w.slotGid[e.slot]
		if w.leadK == 0 {
			if err := w.compute(g, e.slot, nil); err != nil {
				return err
			}
			continue
		}
		q := append(w.waiting[g], e.slot)
		w.nWaiting++
		if len(q) > w.leadK {
			if err := w.compute(g, q[0], q[1:]); err != nil {
				return err
			}
			q = q[1:]
			w.nWaiting--
		}
		w.waiting[g] = q
	}
	if final && w.nWaiting > 0 {
		for g, q := range w.waiting {
			for i := range q {
				if err := w.compute(uint32(g), q[i], q[i+1:]); err != nil {
					return err
				}
			}
			w.waiting[g] = nil
		}
		w.nWaiting = 0
	}
	err := w.emitOut(emit)
	for _, sl := range w.outSlots {
		w.store.remove(sl)
	}
	w.outSlots = w.outSlots[:0]
	w.store.maybeCompact()
	return err
}

// HeldBack reports the smallest event time (µs) of the rows that are
// final but still held for their LEAD followers, so the runtime does not
// advance the watermark of the operator's output past rows it has yet to
// emit. ok is false when no row is held (always without LEAD). It scans
// the partitions that hold rows.
func (w *OverWindow) HeldBack() (t int64, ok bool) {
	if w.leadK == 0 || w.nWaiting == 0 {
		return 0, false
	}
	for _, q := range w.waiting {
		if len(q) > 0 && (!ok || w.slotT[q[0]] < t) {
			t, ok = w.slotT[q[0]], true
		}
	}
	return t, ok
}

func (w *OverWindow) emitOut(emit Emit) error {
	n := len(w.outSlots)
	if n == 0 {
		return nil
	}
	perm := make([]int32, n)
	for i := range perm {
		perm[i] = int32(i)
	}
	if w.leadK > 0 {
		slices.SortFunc(perm, func(a, b int32) int { return w.cmpFinal(w.outSlots[a], w.outSlots[b]) })
	}
	slots := make([]uint32, 0, min(n, maxEmitRows))
	for start := 0; start < n; start += maxEmitRows {
		part := perm[start:min(start+maxEmitRows, n)]
		slots = slots[:0]
		for _, p := range part {
			slots = append(slots, w.outSlots[p])
		}
		cols := w.store.gatherAll(slots)
		for i, d := range w.funcs {
			cols = append(cols, ovArray(w.mem, d.out, w.outVals[i], part))
		}
		out := array.NewRecordBatch(w.out, cols, int64(len(part)))
		releaseAll(cols)
		w.stats.RowsOut += int64(len(part))
		err := emit(out)
		out.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// read returns column c of the row of slot sl.
func (w *OverWindow) read(sl uint32, c int, p physical) ov {
	a, r := w.store.at(sl, c)
	return readOV(a, r, p)
}

// compute appends the function values of row sl, the next row of
// partition g (lead: the final rows after it), to outVals and advances the
// partition's state past it.
func (w *OverWindow) compute(g, sl uint32, lead []uint32) error {
	rn := w.rowNum[g]
	var h *overHist
	if w.histLen > 0 {
		h = &w.hist[g]
	}
	for i := range w.funcs {
		d := &w.funcs[i]
		var v ov
		switch d.spec.Kind {
		case OverRowNumber:
			v.i = rn + 1
		case OverLag:
			if d.offset <= int(h.n) {
				v = h.at(d.hc, d.offset, w.histLen, len(w.histCols))
			} else {
				v = d.def
			}
		case OverLead:
			if d.offset <= len(lead) {
				v = w.read(lead[d.offset-1], d.arg, d.phys)
			} else {
				v = d.def
			}
		case OverCountStar:
			if d.prec < 0 {
				v.i = rn + 1
			} else {
				v.i = min(d.prec, rn) + 1
			}
		default:
			cur := w.read(sl, d.arg, d.phys)
			var err error
			if d.prec < 0 {
				a := &w.run[i][g]
				a.add(d, cur)
				v, err = a.result(d)
			} else {
				var a overAcc
				if d.prec > 0 {
					for k := min(int(d.prec), int(h.n)); k >= 1; k-- {
						a.add(d, h.at(d.hc, k, w.histLen, len(w.histCols)))
					}
				}
				a.add(d, cur)
				v, err = a.result(d)
			}
			if err != nil {
				return err
			}
		}
		w.outVals[i] = append(w.outVals[i], v)
	}
	if h != nil {
		vals := w.histScratch[:0]
		for _, col := range w.histCols {
			vals = append(vals, w.read(sl, col, physOf(w.in.Field(col).Type)))
		}
		w.histScratch = vals
		h.push(vals, w.histLen)
	}
	w.rowNum[g] = rn + 1
	w.outSlots = append(w.outSlots, sl)
	return nil
}

// ---- state primitives ----

func (w *OverWindow) pkFields() []arrow.Field {
	var fs []arrow.Field
	for _, k := range w.cfg.PartitionBy {
		f := w.in.Field(k)
		f.Nullable = true
		fs = append(fs, f)
	}
	return fs
}

func (w *OverWindow) partSchema(part string, extra ...arrow.Field) *arrow.Schema {
	fields := append(w.pkFields(), arrow.Field{Name: KeyHashColumn, Type: arrow.PrimitiveTypes.Uint64})
	fields = append(fields, extra...)
	md := arrow.MetadataFrom(map[string]string{"spate.part": part})
	return arrow.NewSchema(fields, &md)
}

// exportKeys returns the partition key columns and hashes of gids.
func (w *OverWindow) exportKeys(gids []uint32) []arrow.Array {
	var cols []arrow.Array
	for _, k := range w.groups.keys {
		cols = append(cols, k.export(w.mem, gids))
	}
	hs := make([]uint64, len(gids))
	for i, g := range gids {
		hs[i] = w.groups.hashes[g]
	}
	return append(cols, uint64Array(w.mem, hs))
}

// Checkpoint returns an immutable copy of the state (see the layout
// above); later calls do not change it. The caller owns the snapshot and
// releases it.
func (w *OverWindow) Checkpoint() (*Snapshot, error) {
	build, err := w.Freeze()
	if err != nil {
		return nil, err
	}
	return build()
}

// Freeze takes the state for a checkpoint: where the held rows are (they
// are immutable batches, retained), their partitions' hashes, and copies
// of the per-partition counters, running aggregates and LAG histories
// (which later rows change in place); partition keys are append-only and
// shared. The returned function builds the snapshot Checkpoint would have
// returned now; it must run once, and may run on another goroutine while
// the window goes on.
func (w *OverWindow) Freeze() (func() (*Snapshot, error), error) {
	if w.closed {
		return nil, fmt.Errorf("exec: OverWindow: Checkpoint after Close")
	}
	meta := snapMeta(w.wm, w.fingerprint(), w.stats)
	// rows: pending, then the LEAD queues in order.
	var slots []uint32
	var waiting []bool
	for _, e := range w.pending {
		slots = append(slots, e.slot)
		waiting = append(waiting, false)
	}
	for _, q := range w.waiting {
		for _, sl := range q {
			slots = append(slots, sl)
			waiting = append(waiting, true)
		}
	}
	hs := make([]uint64, len(slots))
	for i, sl := range slots {
		hs[i] = w.groups.hashes[w.slotGid[sl]]
	}
	f := &OverWindow{cfg: w.cfg, in: w.in, out: w.out, mem: w.mem, unit: w.unit, funcs: w.funcs, pkTypes: w.pkTypes,
		groups: w.groups.frozen(), store: w.store.frozen(slots), rowNum: slices.Clone(w.rowNum),
		histLen: w.histLen, histCols: w.histCols, run: make([][]overAcc, len(w.run)), hist: make([]overHist, len(w.hist))}
	for i, r := range w.run {
		f.run[i] = slices.Clone(r)
	}
	for g, h := range w.hist {
		f.hist[g] = overHist{vals: slices.Clone(h.vals), start: h.start, n: h.n}
	}
	return func() (*Snapshot, error) {
		defer f.store.releaseChunks()
		return f.export(meta, hs, waiting), nil
	}, nil
}

// export builds the snapshot of a frozen window (see Freeze): the rows of
// its store (slot i with partition hash hs[i]), then the partitions.
func (w *OverWindow) export(meta map[string]string, hs []uint64, waiting []bool) *Snapshot {
	snap := &Snapshot{Kind: overWindowKind, Meta: meta, Positions: map[string]uint64{}}
	rowSchema := stateSchema(w.in, "rows",
		arrow.Field{Name: KeyHashColumn, Type: arrow.PrimitiveTypes.Uint64},
		arrow.Field{Name: "__waiting", Type: tBool})
	slots := identity(len(hs))
	for start := 0; start < len(slots); start += maxEmitRows {
		end := min(start+maxEmitRows, len(slots))
		cols := w.store.gatherAll(slots[start:end])
		cols = append(cols, uint64Array(w.mem, hs[start:end]), boolArray(w.mem, waiting[start:end]))
		snap.Batches = append(snap.Batches, array.NewRecordBatch(rowSchema, cols, int64(end-start)))
		releaseAll(cols)
	}
	// partitions
	var extra []arrow.Field
	for i, d := range w.funcs {
		if !w.running(i) {
			continue
		}
		p := fmt.Sprintf("__r%d_", i)
		mmType := d.argType
		extra = append(extra,
			arrow.Field{Name: p + "cnt", Type: tInt}, arrow.Field{Name: p + "hi", Type: tInt},
			arrow.Field{Name: p + "lo", Type: tInt}, arrow.Field{Name: p + "f", Type: tFloat},
			arrow.Field{Name: p + "mm", Type: mmType, Nullable: true})
	}
	partSchema := w.partSchema("partitions", append([]arrow.Field{{Name: "__row_number", Type: tInt}}, extra...)...)
	for start := 0; start < w.groups.n; start += maxEmitRows {
		end := min(start+maxEmitRows, w.groups.n)
		gids := make([]uint32, 0, end-start)
		for g := start; g < end; g++ {
			gids = append(gids, uint32(g))
		}
		cols := w.exportKeys(gids)
		cols = append(cols, int64Array(w.mem, w.rowNum[start:end]))
		for i, d := range w.funcs {
			if !w.running(i) {
				continue
			}
			accs := w.run[i][start:end]
			cnt, hi, lo := make([]int64, len(accs)), make([]int64, len(accs)), make([]int64, len(accs))
			fs := make([]float64, len(accs))
			mm := make([]ov, len(accs))
			perm := make([]int32, len(accs))
			for k, a := range accs {
				cnt[k], hi[k], lo[k], fs[k], mm[k], perm[k] = a.cnt, a.hi, int64(a.lo), a.f, a.mm, int32(k)
				if a.cnt == 0 || (d.spec.Kind != OverMin && d.spec.Kind != OverMax) {
					mm[k] = ov{null: true}
				}
			}
			fb, fv := allocFloat64(w.mem, len(fs))
			copy(fv, fs)
			cols = append(cols, int64Array(w.mem, cnt), int64Array(w.mem, hi), int64Array(w.mem, lo),
				makeFixed(tFloat, len(fs), nil, fb), ovArray(w.mem, d.argType, mm, perm))
		}
		snap.Batches = append(snap.Batches, array.NewRecordBatch(partSchema, cols, int64(len(gids))))
		releaseAll(cols)
	}
	// history
	if w.histLen > 0 {
		var hf []arrow.Field
		for j, c := range w.histCols {
			hf = append(hf, arrow.Field{Name: fmt.Sprintf("__h%d", j), Type: w.in.Field(c).Type, Nullable: true})
		}
		histSchema := w.partSchema("history", hf...)
		var gids []uint32
		vals := make([][]ov, len(w.histCols))
		flush := func() {
			if len(gids) == 0 {
				return
			}
			cols := w.exportKeys(gids)
			perm := make([]int32, len(gids))
			for i := range perm {
				perm[i] = int32(i)
			}
			for j, c := range w.histCols {
				cols = append(cols, ovArray(w.mem, w.in.Field(c).Type, vals[j], perm))
			}
			snap.Batches = append(snap.Batches, array.NewRecordBatch(histSchema, cols, int64(len(gids))))
			releaseAll(cols)
			gids = gids[:0]
			for j := range vals {
				vals[j] = vals[j][:0]
			}
		}
		for g := range w.hist {
			h := &w.hist[g]
			for k := int(h.n); k >= 1; k-- {
				gids = append(gids, uint32(g))
				for j := range w.histCols {
					vals[j] = append(vals[j], h.at(j, k, w.histLen, len(w.histCols)))
				}
			}
			if len(gids) >= maxEmitRows {
				flush()
			}
		}
		flush()
	}
	return snap
}

// Restore replaces the state with snap's (which the caller keeps and
// still owns; its row batches are retained while their rows are held).
// The window must have the configuration of the one that produced the
// snapshot. Parts produced by PartitionSnapshot restore the same way.
func (w *OverWindow) Restore(snap *Snapshot) error {
	wm, st, err := readSnapMeta(snap, overWindowKind, w.fingerprint(), "OverWindow")
	if err != nil {
		return err
	}
	w.reset()
	w.closed = false
	w.wm, w.stats = wm, st
	npk := len(w.cfg.PartitionBy)
	nrun := 0
	for i := range w.funcs {
		if w.running(i) {
			nrun++
		}
	}
	find := func(rec arrow.RecordBatch, want int) ([]uint32, error) {
		if int(rec.NumCols()) != want {
			return nil, fmt.Errorf("exec: OverWindow: snapshot %s batch has %d columns, want %d", snapPart(rec), rec.NumCols(), want)
		}
		for i, dt := range w.pkTypes {
			if physOf(rec.Column(i).DataType()) != physOf(dt) {
				return nil, fmt.Errorf("exec: OverWindow: snapshot partition column %d is %s", i, rec.Column(i).DataType())
			}
		}
		if rec.Column(npk).DataType().ID() != arrow.UINT64 {
			return nil, fmt.Errorf("exec: OverWindow: snapshot batch without %s", KeyHashColumn)
		}
		w.groups.bind(rec.Columns()[:npk])
		gids := w.groups.find(nil, int(rec.NumRows()), Uint64s(rec.Column(npk)), nil)
		w.growPartitions()
		return gids, nil
	}
	for pass, part := range []string{"partitions", "history", "rows"} {
		for _, rec := range snap.Batches {
			if snapPart(rec) != part || rec.NumRows() == 0 {
				continue
			}
			switch pass {
			case 0:
				gids, err := find(rec, npk+2+5*nrun)
				if err != nil {
					return err
				}
				rn := Int64s(rec.Column(npk + 1))
				for k, g := range gids {
					w.rowNum[g] = rn[k]
				}
				c := npk + 2
				for i, d := range w.funcs {
					if !w.running(i) {
						continue
					}
					cnt, hi, lo := Int64s(rec.Column(c)), Int64s(rec.Column(c+1)), Int64s(rec.Column(c+2))
					fs := Float64s(rec.Column(c + 3))
					mm := rec.Column(c + 4)
					for k, g := range gids {
						w.run[i][g] = overAcc{cnt: cnt[k], hi: hi[k], lo: uint64(lo[k]), f: fs[k], mm: readOV(mm, k, d.phys)}
					}
					c += 5
				}
			case 1:
				gids, err := find(rec, npk+1+len(w.histCols))
				if err != nil {
					return err
				}
				vals := make([]ov, len(w.histCols))
				for k, g := range gids {
					for j, col := range w.histCols {
						vals[j] = readOV(rec.Column(npk+1+j), k, physOf(w.in.Field(col).Type))
					}
					w.hist[g].push(vals, w.histLen)
				}
			case 2:
				if err := checkRowColumns(rec, w.store.types, 2); err != nil {
					return err
				}
				nc := w.in.NumFields()
				wc, ok := rec.Column(nc + 1).(*array.Boolean)
				if !ok || rec.Column(nc).DataType().ID() != arrow.UINT64 {
					return fmt.Errorf("exec: OverWindow: snapshot rows batch without %s/__waiting", KeyHashColumn)
				}
				n := int(rec.NumRows())
				tus, tok, _ := eventTimesOf(rec, w.cfg.TimeCol, w.unit, math.MinInt64, nil, nil)
				rows := make([]int32, 0, n)
				waiting := make([]bool, n)
				for i := 0; i < n; i++ {
					if tok[i] {
						rows = append(rows, int32(i))
					}
					waiting[i] = wc.IsValid(i) && wc.Value(i)
				}
				if len(rows) == 0 {
					continue
				}
				pk := make([]arrow.Array, npk)
				for i, k := range w.cfg.PartitionBy {
					pk[i] = rec.Column(k)
				}
				w.addRows(rec, rows, pk, Uint64s(rec.Column(nc)), tus, waiting)
			}
		}
	}
	return nil
}

// Close releases all state. Idempotent.
func (w *OverWindow) Close() {
	if w.closed {
		return
	}
	w.closed = true
	w.reset()
}
