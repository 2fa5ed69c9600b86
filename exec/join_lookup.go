package exec

import (
	"fmt"
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Snapshot layout of a LookupJoin (Kind "lookup_join"): batches with
// schema metadata spate.part=table holding the current side-1 rows in
// arrival order: every side-1 input column (OpCol included, as pushed),
// then __key_hash (HashColumns over RightKeys). Meta: "config" and the
// counters "count.rows_in", "count.rows_out", "count.late_rows".
const lookupJoinKind = "lookup_join"

// LookupJoin joins a stream (side 0) with the current contents of a table
// or updating result (side 1, a changelog); see LookupJoinConfig.
//
// Side 1: a "+" row is added to the multiset of rows of its key; a "-" row
// removes one row of its key equal to it in every column but OpCol (NULL
// equal to NULL), the earliest added; a "-" with no equal row present is
// ignored, and so is any side-1 row with a NULL key (it could never
// match). Any other OpCol value (or NULL) is an error (SQLSTATE 22023).
// Rows of one side-1 batch apply in order.
//
// Side 0: each row is joined with the rows present for its key when it is
// pushed (a NULL key matches nothing); Residual is evaluated over the
// candidate pairs a batch at a time. Output order follows the pushed rows;
// the matches of one row are in the order their side-1 rows were added;
// for JoinLeft a row with no match is emitted once with NULL right columns
// in its place.
//
// There is no event time: nothing is late, Advance and Finish emit
// nothing. LookupJoin is not safe for concurrent use. Side-1 batches are
// retained while rows of them are held (compacted when deletes leave few);
// emitted batches are valid only during the Emit call.
type LookupJoin struct {
	cfg       LookupJoinConfig
	left      *arrow.Schema
	right     *arrow.Schema
	out       *arrow.Schema
	mem       memory.Allocator
	residual  node
	rightCols []int // side-1 columns of the output (all but OpCol)
	keyTypes  []arrow.DataType

	groups     *groupTable
	liveGroups int // groups with rows
	tab        *joinSide
	seq        uint64
	stats      Stats
	closed     bool

	hashes []uint64 // scratch
	gids   []uint32
	look   []int32
	sel    []int32
}

var _ StatefulBinary = (*LookupJoin)(nil)
var _ StatsReporter = (*LookupJoin)(nil)

// Validate checks cfg against the input schemas without building state.
func (c LookupJoinConfig) Validate(left, right *arrow.Schema) error {
	_, err := NewLookupJoin(left, right, c)
	return err
}

// NewLookupJoin validates cfg against the two input schemas and returns a
// join with an empty table. The key columns must pair up with the same
// physical types; OpCol (when >= 0) must be a text column that is not a
// key. Options: WithAllocator (outputs, compacted state and snapshots).
func NewLookupJoin(left, right *arrow.Schema, cfg LookupJoinConfig, opts ...Option) (*LookupJoin, error) {
	o := buildOptions(opts)
	const who = "exec: LookupJoin"
	if cfg.Type != JoinInner && cfg.Type != JoinLeft {
		return nil, fmt.Errorf("%s: unknown join type %d", who, cfg.Type)
	}
	if err := checkJoinInputs(who, left, right, cfg.LeftKeys, cfg.RightKeys); err != nil {
		return nil, err
	}
	j := &LookupJoin{cfg: cfg, left: left, right: right, mem: o.mem}
	if cfg.OpCol >= 0 {
		if cfg.OpCol >= right.NumFields() || physOf(right.Field(cfg.OpCol).Type) != physString {
			return nil, fmt.Errorf("%s: op column %d must be a text column of side 1", who, cfg.OpCol)
		}
		for _, k := range cfg.RightKeys {
			if k == cfg.OpCol {
				return nil, fmt.Errorf("%s: op column %d is a key", who, k)
			}
		}
	}
	for c := 0; c < right.NumFields(); c++ {
		if c != cfg.OpCol {
			j.rightCols = append(j.rightCols, c)
		}
	}
	j.out = joinSchema(left, right, j.rightCols, cfg.Type == JoinLeft)
	if cfg.Residual != nil {
		r, err := compileResidual(cfg.Residual, j.out)
		if err != nil {
			return nil, err
		}
		j.residual = r
	}
	for _, k := range cfg.RightKeys {
		j.keyTypes = append(j.keyTypes, right.Field(k).Type)
	}
	j.reset()
	return j, nil
}

func (j *LookupJoin) reset() {
	if j.tab != nil {
		j.tab.reset()
	}
	j.tab = &joinSide{schema: j.right, store: newRowStore(j.mem, j.right), keys: j.cfg.RightKeys}
	j.groups = newGroupTable(j.keyTypes)
	j.liveGroups = 0
}

func (j *LookupJoin) fingerprint() string {
	var sb strings.Builder
	for _, s := range []*arrow.Schema{j.left, j.right} {
		for _, f := range s.Fields() {
			sb.WriteString(f.Type.String())
			sb.WriteByte(',')
		}
		sb.WriteByte(';')
	}
	c := j.cfg
	fmt.Fprintf(&sb, "type=%d;lk=%v;rk=%v;op=%d;res=%v", c.Type, c.LeftKeys, c.RightKeys, c.OpCol, c.Residual)
	return sb.String()
}

// Schema returns the output schema: the side-0 columns, then the side-1
// columns without OpCol.
func (j *LookupJoin) Schema() *arrow.Schema { return j.out }

// Stats returns the counters; StateRows counts the table rows held.
func (j *LookupJoin) Stats() Stats {
	s := j.stats
	s.StateRows = int64(j.tab.store.live)
	s.StateBytes = j.tab.store.stateBytes() + j.groups.bytes() + int64(len(j.tab.gid))*20 + int64(len(j.tab.head))*12
	return s
}

// PushSide applies a side-1 changelog batch to the table, or joins a
// side-0 batch with it and emits the result. rec is retained only as
// table state.
func (j *LookupJoin) PushSide(side int, rec arrow.RecordBatch, emit Emit) error {
	if j.closed {
		return fmt.Errorf("exec: LookupJoin: Push after Close")
	}
	n := int(rec.NumRows())
	if n == 0 {
		return nil
	}
	switch side {
	case 0:
		j.stats.RowsIn += int64(n)
		return j.probe(rec, emit)
	case 1:
		j.stats.RowsIn += int64(n)
		return j.apply(rec)
	}
	return fmt.Errorf("exec: LookupJoin: no input side %d", side)
}

// apply applies a side-1 changelog batch.
func (j *LookupJoin) apply(rec arrow.RecordBatch) error {
	n := int(rec.NumRows())
	t := j.tab
	keyArrs := make([]arrow.Array, len(t.keys))
	for i, k := range t.keys {
		keyArrs[i] = rec.Column(k)
	}
	nulls := nullKeyRows(keyArrs, n)
	del := make([]bool, n)
	if j.cfg.OpCol >= 0 {
		col := rec.Column(j.cfg.OpCol)
		sv, v := stringsOf(col), validityOf(col)
		for i := 0; i < n; i++ {
			op := ""
			if v.valid(i) {
				op = sv.str(i)
			}
			switch {
			case v.valid(i) && op == "+":
			case v.valid(i) && op == "-":
				del[i] = true
			default:
				if !v.valid(i) {
					op = "NULL"
				}
				return &Error{Code: CodeInvalidParameter, Message: fmt.Sprintf("lookup join: invalid changelog operation %q (want \"+\" or \"-\")", op)}
			}
		}
	}
	var ins, dels []int32
	for i := 0; i < n; i++ {
		if nulls != nil && nulls[i] {
			continue
		}
		if del[i] {
			dels = append(dels, int32(i))
		} else {
			ins = append(ins, int32(i))
		}
	}
	if len(ins)+len(dels) == 0 {
		return nil
	}
	j.hashes = hashArrays(keyArrs, n, j.hashes)
	j.groups.bind(keyArrs)
	var gids, slots []uint32
	if len(ins) > 0 {
		gids = j.groups.find(ins, 0, j.hashes, j.gids)
		j.gids = gids
		t.growGroups(j.groups.n)
		slots = t.store.add(rec, ins, nil)
		t.growSlots(t.store.cap())
	}
	var look []int32
	if len(dels) > 0 {
		look = j.groups.lookup(dels, 0, j.hashes, j.look)
		j.look = look
	}
	ii, di := 0, 0
	for ii < len(ins) || di < len(dels) {
		if di >= len(dels) || (ii < len(ins) && ins[ii] < dels[di]) {
			sl := slots[ii]
			t.seq[sl] = j.seq
			j.seq++
			j.link(sl, gids[ii])
			ii++
			continue
		}
		r, g := int(dels[di]), look[di]
		di++
		if g < 0 {
			continue
		}
		for x := t.head[g]; x != noSlot; x = t.next[x] {
			if j.sameRow(x, rec, r) {
				if g := t.unlink(x); t.count[g] == 0 {
					j.liveGroups--
				}
				t.store.remove(x)
				break
			}
		}
	}
	t.store.maybeCompact()
	j.maybeCompactGroups()
	return nil
}

func (j *LookupJoin) link(sl, g uint32) {
	if j.tab.count[g] == 0 {
		j.liveGroups++
	}
	j.tab.link(sl, g)
}

// sameRow reports whether the table row of slot x equals row r of rec in
// every column but OpCol.
func (j *LookupJoin) sameRow(x uint32, rec arrow.RecordBatch, r int) bool {
	for _, c := range j.rightCols {
		a, ar := j.tab.store.at(x, c)
		if !equalCells(a, ar, rec.Column(c), r) {
			return false
		}
	}
	return true
}

// maybeCompactGroups rebuilds the key table without the keys no row holds
// any more, once they are the majority.
func (j *LookupJoin) maybeCompactGroups() {
	t := j.tab
	live := j.liveGroups
	dead := j.groups.n - live
	if dead <= 1024 || dead <= live {
		return
	}
	keep := make([]uint32, 0, live)
	remap := make([]uint32, j.groups.n)
	for g, c := range t.count[:j.groups.n] {
		remap[g] = noSlot
		if c > 0 {
			remap[g] = uint32(len(keep))
			keep = append(keep, uint32(g))
		}
	}
	j.groups = compactGroups(j.mem, j.groups, j.keyTypes, keep)
	for ng, g := range keep {
		t.head[ng], t.tail[ng], t.count[ng] = t.head[g], t.tail[g], t.count[g]
	}
	t.head, t.tail, t.count = t.head[:live], t.tail[:live], t.count[:live]
	for sl := range t.gid {
		if t.store.isLive(uint32(sl)) && t.gid[sl] != noSlot {
			t.gid[sl] = remap[t.gid[sl]]
		}
	}
}

// probe joins a side-0 batch with the table.
func (j *LookupJoin) probe(rec arrow.RecordBatch, emit Emit) error {
	n := int(rec.NumRows())
	t := j.tab
	keyArrs := make([]arrow.Array, len(j.cfg.LeftKeys))
	for i, k := range j.cfg.LeftKeys {
		keyArrs[i] = rec.Column(k)
	}
	nulls := nullKeyRows(keyArrs, n)
	var rows []int32
	for i := 0; i < n; i++ {
		if nulls == nil || !nulls[i] {
			rows = append(rows, int32(i))
		}
	}
	var look []int32
	if len(rows) > 0 && j.groups.n > 0 {
		j.hashes = hashArrays(keyArrs, n, j.hashes)
		j.groups.bind(keyArrs)
		look = j.groups.lookup(rows, 0, j.hashes, j.look)
		j.look = look
	}
	var blk lookupBlock
	li := 0
	for i := 0; i < n; i++ {
		g := int32(-1)
		if li < len(rows) && rows[li] == int32(i) {
			if look != nil {
				g = look[li]
			}
			li++
		}
		blk.rows = append(blk.rows, int32(i))
		c := 0
		if g >= 0 {
			for x := t.head[g]; x != noSlot; x = t.next[x] {
				blk.candRows = append(blk.candRows, int32(i))
				blk.candSlots = append(blk.candSlots, x)
				c++
			}
		}
		blk.ncand = append(blk.ncand, int32(c))
		if len(blk.candRows)+len(blk.rows) >= maxEmitRows {
			if err := j.emitBlock(rec, &blk, emit); err != nil {
				return err
			}
			blk.clear()
		}
	}
	return j.emitBlock(rec, &blk, emit)
}

// lookupBlock is a run of side-0 rows with their candidate table rows.
type lookupBlock struct {
	rows      []int32 // side-0 rows in order
	ncand     []int32 // candidates per row
	candRows  []int32
	candSlots []uint32
}

func (b *lookupBlock) clear() {
	b.rows, b.ncand, b.candRows, b.candSlots = b.rows[:0], b.ncand[:0], b.candRows[:0], b.candSlots[:0]
}

func (j *LookupJoin) emitBlock(rec arrow.RecordBatch, blk *lookupBlock, emit Emit) error {
	if len(blk.rows) == 0 {
		return nil
	}
	var pass []bool // nil: every candidate passes
	if j.residual != nil && len(blk.candRows) > 0 {
		b := &batch{cols: make([]arrow.Array, j.out.NumFields()), n: len(blk.candRows)}
		nl := j.left.NumFields()
		for _, c := range j.residual.refs() {
			if c < nl {
				b.cols[c] = takeArray(j.mem, rec.Column(c), blk.candRows)
			} else {
				b.cols[c] = j.tab.store.gather(blk.candSlots, []int{j.rightCols[c-nl]})[0]
			}
		}
		sel, err := residualSelect(j.mem, j.residual, b, &j.sel)
		releaseAll(b.cols)
		if err != nil {
			return err
		}
		pass = make([]bool, len(blk.candRows))
		for _, i := range sel {
			pass[i] = true
		}
	}
	var outRows []int32
	var outSlots []uint32
	k := 0
	for i, r := range blk.rows {
		matched := false
		for c := int32(0); c < blk.ncand[i]; c++ {
			if pass == nil || pass[k] {
				outRows = append(outRows, r)
				outSlots = append(outSlots, blk.candSlots[k])
				matched = true
			}
			k++
		}
		if !matched && j.cfg.Type == JoinLeft {
			outRows = append(outRows, r)
			outSlots = append(outSlots, noSlot)
		}
	}
	m := len(outRows)
	if m == 0 {
		return nil
	}
	cols := make([]arrow.Array, 0, j.out.NumFields())
	for c := 0; c < int(rec.NumCols()); c++ {
		cols = append(cols, takeArray(j.mem, rec.Column(c), outRows))
	}
	cols = append(cols, j.tab.store.gather(outSlots, j.rightCols)...)
	defer releaseAll(cols)
	out := array.NewRecordBatch(j.out, cols, int64(m))
	defer out.Release()
	j.stats.RowsOut += int64(m)
	return emit(out)
}

// Advance emits nothing: a lookup join has no event-time state.
func (j *LookupJoin) Advance(wm int64, emit Emit) error { return nil }

// Finish emits nothing (every side-0 row was answered when pushed).
func (j *LookupJoin) Finish(emit Emit) error { return nil }

// Checkpoint returns an immutable copy of the table (see the layout
// above). The caller owns the snapshot and releases it.
func (j *LookupJoin) Checkpoint() (*Snapshot, error) {
	build, err := j.Freeze()
	if err != nil {
		return nil, err
	}
	return build()
}

// Freeze takes the table for a checkpoint without copying its rows (see
// IntervalJoin.Freeze); the returned function builds the snapshot, once,
// on any goroutine.
func (j *LookupJoin) Freeze() (func() (*Snapshot, error), error) {
	if j.closed {
		return nil, fmt.Errorf("exec: LookupJoin: Checkpoint after Close")
	}
	meta := snapMeta(math.MinInt64, j.fingerprint(), j.stats)
	delete(meta, "watermark")
	tab := j.tab.freeze()
	return func() (*Snapshot, error) {
		snap := &Snapshot{Kind: lookupJoinKind, Meta: meta, Positions: map[string]uint64{}}
		tab.export(snap, j.mem, "table", false)
		return snap, nil
	}, nil
}

// Restore replaces the table with snap's (which the caller keeps and still
// owns; its batches are retained while their rows are held). Parts
// produced by PartitionSnapshot restore the same way.
func (j *LookupJoin) Restore(snap *Snapshot) error {
	_, st, err := readSnapMeta(snap, lookupJoinKind, j.fingerprint(), "LookupJoin")
	if err != nil {
		return err
	}
	j.reset()
	j.closed = false
	j.stats, j.seq = st, 0
	t := j.tab
	for _, rec := range snap.Batches {
		if snapPart(rec) != "table" {
			return fmt.Errorf("exec: LookupJoin: snapshot batch of part %q", snapPart(rec))
		}
		if err := checkRowColumns(rec, t.store.types, 1); err != nil {
			return err
		}
		n := int(rec.NumRows())
		nc := len(t.store.types)
		if rec.Column(nc).DataType().ID() != arrow.UINT64 {
			return fmt.Errorf("exec: LookupJoin: snapshot batch without %s", KeyHashColumn)
		}
		keyArrs := make([]arrow.Array, len(t.keys))
		for i, k := range t.keys {
			keyArrs[i] = rec.Column(k)
		}
		nulls := nullKeyRows(keyArrs, n)
		var rows []int32
		for i := 0; i < n; i++ {
			if nulls == nil || !nulls[i] {
				rows = append(rows, int32(i))
			}
		}
		if len(rows) == 0 {
			continue
		}
		j.groups.bind(keyArrs)
		gids := j.groups.find(rows, 0, Uint64s(rec.Column(nc)), nil)
		t.growGroups(j.groups.n)
		slots := t.store.add(rec, rows, nil)
		t.growSlots(t.store.cap())
		for k, sl := range slots {
			t.seq[sl] = j.seq
			j.seq++
			j.link(sl, gids[k])
		}
	}
	return nil
}

// Close releases the table. Idempotent.
func (j *LookupJoin) Close() {
	if j.closed {
		return
	}
	j.closed = true
	j.reset()
}
