package exec

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// noSlot marks an absent slot (a NULL row in a gather, an empty list).
const noSlot = ^uint32(0)

// compactChunkRows bounds the rows of one chunk built by compaction.
const compactChunkRows = 1 << 16

// rowStore holds whole input rows of one schema for the stateful joins and
// the OVER window. Rows stay in the Arrow batches they arrived in (retained
// "chunks", no copy on Push) and are addressed by slot ids that never
// change while the row is held; callers keep per-row metadata in their own
// slices indexed by slot. A chunk is released when its last row is removed.
// When chunks hold many more rows than are still live (a few survivors pin
// big batches), or when there are many small chunks (batches of one row),
// maybeCompact copies the live rows into fresh chunks allocated from mem;
// slot ids stay valid across a compaction.
type rowStore struct {
	mem    memory.Allocator
	schema *arrow.Schema // the row columns; chunks may carry more columns after them
	types  []arrow.DataType

	chunks     []arrow.RecordBatch // nil: free
	chunkLive  []int32
	chunkBytes []int64
	freeChunks []uint32

	slotChunk []uint32 // noSlot: free slot
	slotRow   []uint32
	freeSlots []uint32

	live    int   // slots in use
	held    int   // rows of the retained chunks
	nchunks int   // retained chunks
	bytes   int64 // buffer bytes of the retained chunks

	srcIdx []int32 // scratch for gather: chunk -> source index, -1
}

func newRowStore(mem memory.Allocator, schema *arrow.Schema) *rowStore {
	s := &rowStore{mem: mem, schema: schema}
	for _, f := range schema.Fields() {
		s.types = append(s.types, f.Type)
	}
	return s
}

// RecordBytes is the size of the buffers a batch references (for a slice,
// the whole parent buffers: that is what retaining it holds).
func RecordBytes(rec arrow.RecordBatch) int64 {
	var b int64
	for _, c := range rec.Columns() {
		b += dataBytes(c.Data())
	}
	return b
}

func dataBytes(d arrow.ArrayData) int64 {
	var b int64
	for _, buf := range d.Buffers() {
		if buf != nil {
			b += int64(buf.Len())
		}
	}
	for _, ch := range d.Children() {
		b += dataBytes(ch)
	}
	return b
}

func (s *rowStore) newChunk(rec arrow.RecordBatch) uint32 {
	var c uint32
	if n := len(s.freeChunks); n > 0 {
		c = s.freeChunks[n-1]
		s.freeChunks = s.freeChunks[:n-1]
		s.chunks[c] = rec
	} else {
		c = uint32(len(s.chunks))
		s.chunks = append(s.chunks, rec)
		s.chunkLive = append(s.chunkLive, 0)
		s.chunkBytes = append(s.chunkBytes, 0)
	}
	s.chunkLive[c] = 0
	s.chunkBytes[c] = RecordBytes(rec)
	s.held += int(rec.NumRows())
	s.bytes += s.chunkBytes[c]
	s.nchunks++
	return c
}

func (s *rowStore) allocSlot() uint32 {
	if n := len(s.freeSlots); n > 0 {
		sl := s.freeSlots[n-1]
		s.freeSlots = s.freeSlots[:n-1]
		return sl
	}
	s.slotChunk = append(s.slotChunk, noSlot)
	s.slotRow = append(s.slotRow, 0)
	return uint32(len(s.slotChunk) - 1)
}

// add stores rows (nil = every row) of rec, retaining rec when at least one
// row is stored, and appends the new slots to slots (in row order).
func (s *rowStore) add(rec arrow.RecordBatch, rows []int32, slots []uint32) []uint32 {
	n := len(rows)
	if rows == nil {
		n = int(rec.NumRows())
	}
	if n == 0 {
		return slots
	}
	rec.Retain()
	c := s.newChunk(rec)
	for j := 0; j < n; j++ {
		r := j
		if rows != nil {
			r = int(rows[j])
		}
		sl := s.allocSlot()
		s.slotChunk[sl] = c
		s.slotRow[sl] = uint32(r)
		slots = append(slots, sl)
	}
	s.chunkLive[c] = int32(n)
	s.live += n
	return slots
}

// cap returns the number of slot ids in use or free (per-slot metadata
// slices must have this length).
func (s *rowStore) cap() int { return len(s.slotChunk) }

// isLive reports whether slot holds a row.
func (s *rowStore) isLive(sl uint32) bool {
	return int(sl) < len(s.slotChunk) && s.slotChunk[sl] != noSlot
}

// remove drops the row of slot (releasing its chunk if it was the last).
func (s *rowStore) remove(sl uint32) {
	c := s.slotChunk[sl]
	s.slotChunk[sl] = noSlot
	s.freeSlots = append(s.freeSlots, sl)
	s.live--
	s.chunkLive[c]--
	if s.chunkLive[c] == 0 {
		s.releaseChunk(c)
	}
}

func (s *rowStore) releaseChunk(c uint32) {
	rec := s.chunks[c]
	s.held -= int(rec.NumRows())
	s.bytes -= s.chunkBytes[c]
	s.nchunks--
	rec.Release()
	s.chunks[c] = nil
	s.freeChunks = append(s.freeChunks, c)
}

// at returns the column c array and row of slot.
func (s *rowStore) at(sl uint32, c int) (arrow.Array, int) {
	return s.chunks[s.slotChunk[sl]].Column(c), int(s.slotRow[sl])
}

// gather returns the columns cols of the rows slots (noSlot: a NULL row) as
// new arrays owned by the caller.
func (s *rowStore) gather(slots []uint32, cols []int) []arrow.Array {
	n := len(slots)
	which := make([]int32, n)
	rows := make([]int32, n)
	s.srcIdx = growTo(s.srcIdx, len(s.chunks))
	var used []uint32
	for j, sl := range slots {
		if sl == noSlot {
			which[j] = -1
			continue
		}
		c := s.slotChunk[sl]
		if s.srcIdx[c] == 0 {
			used = append(used, c)
			s.srcIdx[c] = int32(len(used)) // index + 1
		}
		which[j] = s.srcIdx[c] - 1
		rows[j] = int32(s.slotRow[sl])
	}
	for _, c := range used {
		s.srcIdx[c] = 0
	}
	out := make([]arrow.Array, len(cols))
	srcs := make([]arrow.Array, len(used))
	for i, col := range cols {
		for k, c := range used {
			srcs[k] = s.chunks[c].Column(col)
		}
		out[i] = gather(s.mem, s.types[col], srcs, which, rows)
	}
	return out
}

// frozen returns a read-only store of the rows of slots (slot i of the
// copy is slots[i]) that shares, retaining them, the chunks: its rows can
// be gathered on another goroutine while s goes on. releaseChunks drops
// it.
func (s *rowStore) frozen(slots []uint32) *rowStore {
	f := &rowStore{mem: s.mem, schema: s.schema, types: s.types, chunks: slices.Clone(s.chunks),
		slotChunk: make([]uint32, len(slots)), slotRow: make([]uint32, len(slots))}
	for _, rec := range f.chunks {
		if rec != nil {
			rec.Retain()
		}
	}
	for i, sl := range slots {
		f.slotChunk[i], f.slotRow[i] = s.slotChunk[sl], s.slotRow[sl]
	}
	return f
}

// gatherAll returns every row column of slots.
func (s *rowStore) gatherAll(slots []uint32) []arrow.Array {
	cols := make([]int, len(s.types))
	for i := range cols {
		cols[i] = i
	}
	return s.gather(slots, cols)
}

// compareRows orders the rows of two slots by every row column in turn,
// NULLs last (floats as PostgreSQL: NaN above everything).
func (s *rowStore) compareRows(a, b uint32) int {
	ca, ra := s.chunks[s.slotChunk[a]], int(s.slotRow[a])
	cb, rb := s.chunks[s.slotChunk[b]], int(s.slotRow[b])
	for c := range s.types {
		if r := compareCells(ca.Column(c), ra, cb.Column(c), rb); r != 0 {
			return r
		}
	}
	return 0
}

// compareCells orders two values of the same physical type, NULLs last.
func compareCells(x arrow.Array, i int, y arrow.Array, j int) int {
	xn, yn := x.IsNull(i), y.IsNull(j)
	if xn || yn {
		return nullCmp(xn, yn)
	}
	return compareAt(x, i, y, j)
}

// equalCells reports whether two values are not distinct (NULL equals
// NULL).
func equalCells(x arrow.Array, i int, y arrow.Array, j int) bool {
	xn, yn := x.IsNull(i), y.IsNull(j)
	if xn || yn {
		return xn && yn
	}
	return compareAt(x, i, y, j) == 0
}

// maybeCompact copies the live rows into fresh chunks when the retained
// chunks hold more than twice the live rows (plus slack), or when there
// are many chunks with few live rows each. Amortised O(1) per row.
func (s *rowStore) maybeCompact() {
	if s.live == 0 {
		return
	}
	if s.held <= 2*s.live+4096 && (s.nchunks <= 64 || s.nchunks*8 <= s.live) {
		return
	}
	s.compact()
}

func (s *rowStore) compact() {
	slots := make([]uint32, 0, s.live)
	for sl, c := range s.slotChunk {
		if c != noSlot {
			slots = append(slots, uint32(sl))
		}
	}
	var fresh []arrow.RecordBatch
	for start := 0; start < len(slots); start += compactChunkRows {
		part := slots[start:min(start+compactChunkRows, len(slots))]
		cols := s.gatherAll(part)
		fresh = append(fresh, array.NewRecordBatch(s.schema, cols, int64(len(part))))
		releaseAll(cols)
	}
	s.releaseChunks()
	for i, rec := range fresh {
		c := s.newChunk(rec)
		part := slots[i*compactChunkRows : min((i+1)*compactChunkRows, len(slots))]
		for r, sl := range part {
			s.slotChunk[sl] = c
			s.slotRow[sl] = uint32(r)
		}
		s.chunkLive[c] = int32(len(part))
	}
}

func (s *rowStore) releaseChunks() {
	for _, rec := range s.chunks {
		if rec != nil {
			rec.Release()
		}
	}
	s.chunks, s.chunkLive, s.chunkBytes, s.freeChunks = nil, nil, nil, nil
	s.held, s.nchunks, s.bytes = 0, 0, 0
}

// reset drops every row.
func (s *rowStore) reset() {
	s.releaseChunks()
	s.slotChunk, s.slotRow, s.freeSlots = nil, nil, nil
	s.live = 0
}

// stateBytes approximates the memory held.
func (s *rowStore) stateBytes() int64 {
	return s.bytes + int64(len(s.slotChunk))*8 + int64(len(s.chunks))*16
}

// ---- time-ordered slot queue ----

// timedSlot is a slot with a time (an expiry or an event time, µs).
type timedSlot struct {
	t    int64
	slot uint32
}

// slotHeap is a binary min-heap of slots by time (ties in any order).
type slotHeap []timedSlot

func (h *slotHeap) push(t int64, sl uint32) {
	*h = append(*h, timedSlot{t, sl})
	a := *h
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if a[p].t <= a[i].t {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

// popBefore removes and appends to out every entry with t < limit, in
// ascending t.
func (h *slotHeap) popBefore(limit int64, out []timedSlot) []timedSlot {
	for len(*h) > 0 && (*h)[0].t < limit {
		out = append(out, h.pop())
	}
	return out
}

func (h *slotHeap) pop() timedSlot {
	a := *h
	top := a[0]
	last := len(a) - 1
	a[0] = a[last]
	a = a[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(a) {
			break
		}
		m := l
		if r := l + 1; r < len(a) && a[r].t < a[l].t {
			m = r
		}
		if a[i].t <= a[m].t {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	*h = a
	return top
}

// ---- group tables without insertion, and their compaction ----

// lookup maps rows (nil = 0..n-1) of the bound batch to existing group ids,
// -1 where the key is absent, without inserting. hashes are per batch row.
func (t *groupTable) lookup(rows []int32, n int, hashes []uint64, out []int32) []int32 {
	if rows != nil {
		n = len(rows)
	}
	out = growTo(out[:0], n)
	for j := 0; j < n; j++ {
		r := j
		if rows != nil {
			r = int(rows[j])
		}
		out[j] = t.lookupRow(r, hashes[r])
	}
	return out
}

func (t *groupTable) lookupRow(r int, h uint64) int32 {
	if t.fast {
		if !t.fkeys.inVal.valid(r) {
			return int32(t.nullGid)
		}
		k := t.fkeys.in[r]
		for i := h & t.mask; ; i = (i + 1) & t.mask {
			s := t.fslots[i]
			if s.gid == 0 {
				return -1
			}
			if s.key == k {
				return int32(s.gid - 1)
			}
		}
	}
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			return -1
		}
		g := s - 1
		if t.hashes[g] == h && t.eq(g, r) {
			return int32(g)
		}
	}
}

// compactGroups returns a table holding only the groups keep of t, with
// new ids 0..len(keep)-1 in the order of keep.
func compactGroups(mem memory.Allocator, t *groupTable, keyTypes []arrow.DataType, keep []uint32) *groupTable {
	nt := newGroupTable(keyTypes)
	if len(keep) == 0 {
		return nt
	}
	arrs := make([]arrow.Array, len(t.keys))
	for i, k := range t.keys {
		arrs[i] = k.export(mem, keep)
	}
	defer releaseAll(arrs)
	hashes := make([]uint64, len(keep))
	for j, g := range keep {
		hashes[j] = t.hashes[g]
	}
	nt.reserve(len(keep))
	nt.bind(arrs)
	nt.find(nil, len(keep), hashes, nil)
	return nt
}

// nullKeyRows reports, per row, whether any of the key arrays is NULL
// (nil when no row has a NULL key).
func nullKeyRows(keys []arrow.Array, n int) []bool {
	var out []bool
	for _, a := range keys {
		if a.NullN() == 0 {
			continue
		}
		if out == nil {
			out = make([]bool, n)
		}
		v := validityOf(a)
		for i := 0; i < n; i++ {
			if !v.valid(i) {
				out[i] = true
			}
		}
	}
	return out
}

// ---- snapshot helpers ----

// stateSchema appends fields to the row fields of a schema and tags it
// with spate.part.
func stateSchema(rows *arrow.Schema, part string, extra ...arrow.Field) *arrow.Schema {
	fields := append(append([]arrow.Field(nil), rows.Fields()...), extra...)
	md := arrow.MetadataFrom(map[string]string{"spate.part": part})
	return arrow.NewSchema(fields, &md)
}

func snapPart(rec arrow.RecordBatch) string {
	p, _ := rec.Schema().Metadata().GetValue("spate.part")
	return p
}

// checkRowColumns verifies that the first columns of a snapshot batch have
// the physical types of the rows they hold.
func checkRowColumns(rec arrow.RecordBatch, types []arrow.DataType, extra int) error {
	if int(rec.NumCols()) != len(types)+extra {
		return fmt.Errorf("exec: snapshot batch has %d columns, want %d", rec.NumCols(), len(types)+extra)
	}
	for i, dt := range types {
		if got := rec.Column(i).DataType(); physOf(got) != physOf(dt) {
			return fmt.Errorf("exec: snapshot column %d is %s, want %s", i, got, dt)
		}
	}
	return nil
}

func boolArray(mem memory.Allocator, vals []bool) arrow.Array {
	buf, bits := allocBits(mem, len(vals))
	for i, v := range vals {
		if v {
			setBit(bits, i)
		}
	}
	return makeFixed(tBool, len(vals), nil, buf)
}

func uint64Array(mem memory.Allocator, vals []uint64) arrow.Array {
	buf, out := allocUint64(mem, len(vals))
	copy(out, vals)
	return makeFixed(arrow.PrimitiveTypes.Uint64, len(vals), nil, buf)
}

func int64Array(mem memory.Allocator, vals []int64) arrow.Array {
	buf, out := allocInt64(mem, len(vals))
	copy(out, vals)
	return makeFixed(tInt, len(vals), nil, buf)
}

// snapMeta holds the scalar state every stateful operator checkpoints.
func snapMeta(wm int64, config string, st Stats) map[string]string {
	return map[string]string{
		"watermark":       strconv.FormatInt(wm, 10),
		"config":          config,
		"count.rows_in":   strconv.FormatInt(st.RowsIn, 10),
		"count.rows_out":  strconv.FormatInt(st.RowsOut, 10),
		"count.late_rows": strconv.FormatInt(st.LateRows, 10),
	}
}

// readSnapMeta checks the kind and configuration and returns the
// watermark (math.MinInt64 when absent) and counters.
func readSnapMeta(snap *Snapshot, kind, config, who string) (int64, Stats, error) {
	var st Stats
	if snap == nil || snap.Kind != kind {
		return 0, st, fmt.Errorf("exec: %s: cannot restore a %q snapshot", who, snapKind(snap))
	}
	if fp := snap.Meta["config"]; fp != config {
		return 0, st, fmt.Errorf("exec: %s: snapshot configuration %q differs from %q", who, fp, config)
	}
	wm := int64(minInt64)
	if v, ok := snap.Meta["watermark"]; ok {
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, st, fmt.Errorf("exec: snapshot watermark: %w", err)
		}
		wm = x
	}
	for key, dst := range map[string]*int64{"count.rows_in": &st.RowsIn, "count.rows_out": &st.RowsOut, "count.late_rows": &st.LateRows} {
		if v, ok := snap.Meta[key]; ok {
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, st, fmt.Errorf("exec: snapshot counter %s: %w", key, err)
			}
			*dst = x
		}
	}
	return wm, st, nil
}

const minInt64 = -1 << 63

// checkRowTypes rejects column types the row kernels (gather, compare)
// do not handle.
func checkRowTypes(who string, schema *arrow.Schema) error {
	for i, f := range schema.Fields() {
		if physOf(f.Type) == physOther {
			return &Error{Code: CodeFeatureNotSupported, Message: fmt.Sprintf("%s: column %d (%s) has unsupported type %s", who, i, f.Name, f.Type)}
		}
	}
	return nil
}

// eventTimesOf converts column c (int64 layout, unit µs per value) of rec
// to µs; ok[i] is false for NULL times and for times < wm (late rows).
// late counts those.
func eventTimesOf(rec arrow.RecordBatch, c int, unit, wm int64, tus []int64, ok []bool) ([]int64, []bool, int) {
	n := int(rec.NumRows())
	col := rec.Column(c)
	raw := Int64s(col)
	v := validityOf(col)
	tus = growTo(tus[:0], n)
	ok = growTo(ok[:0], n)
	late := 0
	for i := 0; i < n; i++ {
		if !v.valid(i) {
			ok[i] = false
			late++
			continue
		}
		t := raw[i] * unit
		tus[i] = t
		ok[i] = t >= wm
		if !ok[i] {
			late++
		}
	}
	return tus, ok, late
}
