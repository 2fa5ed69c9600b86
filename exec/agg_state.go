package exec

import (
	"fmt"
	"math"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Snapshot layout of a HashAggregate (Kind "hash_aggregate"):
//
//   - group batches (schema metadata spate.part=groups), one per open window
//     (one in total for WindowNone and WindowSession): the key columns,
//     __key_hash, __window_start and __window_end (µs; for a session
//     __window_end is the last event time, the emitted end adds the gap),
//     then the raw accumulator state of each aggregate i in columns named
//     __a<i>_<part>;
//   - distinct batches (spate.part=distinct, spate.agg=<i>), one per window
//     and COUNT(DISTINCT) aggregate: key columns, __key_hash, __window_start,
//     __window_end and __value, one row per distinct value of a group.
//
// Meta: "watermark", "config" (a fingerprint of the configuration that
// Restore checks) and the counters "count.rows_in", "count.rows_out",
// "count.late_rows".
const aggSnapshotKind = "hash_aggregate"

func (h *HashAggregate) fingerprint() string {
	s := fmt.Sprintf("keys=%v;win=%+v;batch=%v;", h.keyTypes, h.cfg.Window, h.cfg.Batch)
	for _, d := range h.aggs {
		s += fmt.Sprintf("agg=%d:%v:%v;", d.spec.Kind, d.inType, d.out)
	}
	return s
}

func (h *HashAggregate) stateSchema(part string, agg int) *arrow.Schema {
	var fields []arrow.Field
	for i, dt := range h.keyTypes {
		fields = append(fields, arrow.Field{Name: h.cfg.KeyNames[i], Type: dt, Nullable: true})
	}
	fields = append(fields,
		arrow.Field{Name: KeyHashColumn, Type: arrow.PrimitiveTypes.Uint64},
		arrow.Field{Name: "__window_start", Type: tInt},
		arrow.Field{Name: "__window_end", Type: tInt})
	md := map[string]string{"spate.part": part}
	if part == "groups" {
		proto := h.newTable(0, 0)
		for i, a := range proto.accs {
			fields = append(fields, a.stateFields(fmt.Sprintf("__a%d_", i))...)
		}
	} else {
		md["spate.agg"] = strconv.Itoa(agg)
		d := newAcc(h.aggs[agg]).(*distinctAcc)
		fields = append(fields, arrow.Field{Name: "__value", Type: d.valueType(), Nullable: true})
	}
	return arrow.NewSchema(fields, func() *arrow.Metadata { m := arrow.MetadataFrom(md); return &m }())
}

// Checkpoint returns an immutable copy of the state (see the layout
// above); later Pushes do not change it. The caller owns the snapshot and
// releases it.
func (h *HashAggregate) Checkpoint() (*Snapshot, error) {
	build, err := h.Freeze()
	if err != nil {
		return nil, err
	}
	return build()
}

// Freeze takes the state for a checkpoint without copying it: group keys
// are append-only and accumulators copy-on-write (cowVec), so it takes
// time proportional to the number of chunks (plus, for session windows,
// the live sessions' bounds). The returned function builds the snapshot
// Checkpoint would have returned now; it may run once, on any goroutine,
// while the aggregate goes on.
func (h *HashAggregate) Freeze() (func() (*Snapshot, error), error) {
	if h.closed {
		return nil, fmt.Errorf("exec: HashAggregate: Checkpoint after Close")
	}
	meta := map[string]string{
		"watermark":       strconv.FormatInt(h.wm, 10),
		"config":          h.fingerprint(),
		"count.rows_in":   strconv.FormatInt(h.stats.RowsIn, 10),
		"count.rows_out":  strconv.FormatInt(h.stats.RowsOut, 10),
		"count.late_rows": strconv.FormatInt(h.stats.LateRows, 10),
	}
	type frozenTable struct {
		groups       *groupTable
		accs         []acc
		keyIDs, sids []uint32 // nil: every group
		ws, we       int64
		bounds       [2][]int64
	}
	freeze := func(g *groupTable, accs []acc) frozenTable {
		f := frozenTable{groups: g.frozen()}
		for _, a := range accs {
			f.accs = append(f.accs, a.frozen(&h.frozen))
		}
		return f
	}
	var tables []frozenTable
	h.frozen.Add(1)
	switch h.cfg.Window.Kind {
	case WindowNone:
		tables = append(tables, freeze(h.global.groups, h.global.accs))
	case WindowSession:
		s := h.sess
		var sids, kids []uint32
		var ws, we []int64
		for sid, alive := range s.alive {
			if alive {
				sids = append(sids, uint32(sid))
				kids = append(kids, s.kid[sid])
				ws = append(ws, s.start[sid])
				we = append(we, s.last[sid])
			}
		}
		if len(sids) > 0 {
			f := freeze(s.keys, s.accs)
			f.keyIDs, f.sids, f.bounds = kids, sids, [2][]int64{ws, we}
			tables = append(tables, f)
		}
	default:
		starts := make([]int64, 0, len(h.windows))
		for ws := range h.windows {
			starts = append(starts, ws)
		}
		sortInt64s(starts)
		for _, ws := range starts {
			t := h.windows[ws]
			f := freeze(t.groups, t.accs)
			f.ws, f.we = t.start, t.end
			tables = append(tables, f)
		}
	}
	return func() (*Snapshot, error) {
		defer h.frozen.Add(-1) // the aggregate writes in place again
		snap := &Snapshot{Kind: aggSnapshotKind, Meta: meta, Positions: map[string]uint64{}}
		for _, t := range tables {
			keyIDs := t.keyIDs
			if keyIDs == nil {
				keyIDs = identity(t.groups.n)
			}
			h.exportTable(snap, t.groups, t.accs, keyIDs, t.sids, t.ws, t.we, t.bounds)
		}
		return snap, nil
	}, nil
}

func identity(n int) []uint32 {
	ids := make([]uint32, n)
	for i := range ids {
		ids[i] = uint32(i)
	}
	return ids
}

// exportTable appends the group batch (and distinct batches) for keys
// keyIDs of g with accumulators accIDs (nil = keyIDs). Window bounds are
// ws/we for every row, or per row from bounds when bounds[0] != nil.
func (h *HashAggregate) exportTable(snap *Snapshot, g *groupTable, accs []acc, keyIDs, accIDs []uint32, ws, we int64, bounds [2][]int64) {
	if accIDs == nil {
		accIDs = keyIDs
	}
	n := len(keyIDs)
	if n == 0 {
		return
	}
	common := func(rows []int32) []arrow.Array {
		ids := keyIDs
		if rows != nil {
			ids = make([]uint32, len(rows))
			for j, r := range rows {
				ids[j] = keyIDs[r]
			}
		}
		var cols []arrow.Array
		for _, k := range g.keys {
			cols = append(cols, k.export(h.mem, ids))
		}
		m := len(ids)
		hb, hs := allocUint64(h.mem, m)
		sb, ss := allocInt64(h.mem, m)
		eb, es := allocInt64(h.mem, m)
		for j := 0; j < m; j++ {
			r := j
			if rows != nil {
				r = int(rows[j])
			}
			hs[j] = g.hashes[ids[j]]
			if bounds[0] != nil {
				ss[j], es[j] = bounds[0][r], bounds[1][r]
			} else {
				ss[j], es[j] = ws, we
			}
		}
		return append(cols, makeFixed(arrow.PrimitiveTypes.Uint64, m, nil, hb), makeFixed(tInt, m, nil, sb), makeFixed(tInt, m, nil, eb))
	}
	cols := common(nil)
	for _, a := range accs {
		cols = append(cols, a.state(h.mem, accIDs)...)
	}
	snap.Batches = append(snap.Batches, array.NewRecordBatch(h.stateSchema("groups", 0), cols, int64(n)))
	releaseAll(cols)
	for i, a := range accs {
		d, ok := a.(*distinctAcc)
		if !ok {
			continue
		}
		idx, vals := d.values(h.mem, accIDs)
		if len(idx) == 0 {
			vals.Release()
			continue
		}
		dc := common(idx)
		dc = append(dc, vals)
		snap.Batches = append(snap.Batches, array.NewRecordBatch(h.stateSchema("distinct", i), dc, int64(len(idx))))
		releaseAll(dc)
	}
}

// Restore replaces the state with snap's (which the caller keeps and
// still owns). The aggregate must have the configuration of the one that
// produced the snapshot. Snapshots produced by PartitionSnapshot restore
// the same way.
func (h *HashAggregate) Restore(snap *Snapshot) error {
	if snap == nil || snap.Kind != aggSnapshotKind {
		return fmt.Errorf("exec: HashAggregate: cannot restore a %q snapshot", snapKind(snap))
	}
	if fp := snap.Meta["config"]; fp != h.fingerprint() {
		return fmt.Errorf("exec: HashAggregate: snapshot configuration %q differs from %q", fp, h.fingerprint())
	}
	h.closed = false
	h.reset()
	h.wm = math.MinInt64
	if v, ok := snap.Meta["watermark"]; ok {
		wm, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("exec: snapshot watermark: %w", err)
		}
		h.wm = wm
	}
	h.stats = Stats{}
	for key, dst := range map[string]*int64{"count.rows_in": &h.stats.RowsIn, "count.rows_out": &h.stats.RowsOut, "count.late_rows": &h.stats.LateRows} {
		if v, ok := snap.Meta[key]; ok {
			*dst, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	nk := len(h.keyTypes)
	// groups first, then distinct values (which need the groups).
	for pass := 0; pass < 2; pass++ {
		for _, rec := range snap.Batches {
			part, _ := rec.Schema().Metadata().GetValue("spate.part")
			if (pass == 0) != (part == "groups") || rec.NumRows() == 0 {
				continue
			}
			if int(rec.NumCols()) < nk+3 {
				return fmt.Errorf("exec: snapshot batch has %d columns", rec.NumCols())
			}
			keys := rec.Columns()[:nk]
			hashes := Uint64s(rec.Column(nk))
			ws, we := Int64s(rec.Column(nk+1)), Int64s(rec.Column(nk+2))
			rest := rec.Columns()[nk+3:]
			var err error
			if pass == 0 {
				err = h.restoreGroups(keys, hashes, ws, we, rest, int(rec.NumRows()))
			} else {
				ai, _ := rec.Schema().Metadata().GetValue("spate.agg")
				agg, perr := strconv.Atoi(ai)
				if perr != nil || agg < 0 || agg >= len(h.aggs) || h.aggs[agg].spec.Kind != AggCountDistinct {
					return fmt.Errorf("exec: snapshot distinct batch for aggregate %q", ai)
				}
				err = h.restoreDistinct(agg, keys, hashes, ws, rest[0], int(rec.NumRows()))
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func snapKind(s *Snapshot) string {
	if s == nil {
		return "<nil>"
	}
	return s.Kind
}

// rowsByWindow groups row indices by window start.
func rowsByWindow(ws []int64) (order []int64, rows map[int64][]int32) {
	rows = map[int64][]int32{}
	for r, s := range ws {
		if _, ok := rows[s]; !ok {
			order = append(order, s)
		}
		rows[s] = append(rows[s], int32(r))
	}
	return
}

func takeCols(h *HashAggregate, cols []arrow.Array, rows []int32, all bool) []arrow.Array {
	if all {
		for _, c := range cols {
			c.Retain()
		}
		return append([]arrow.Array(nil), cols...)
	}
	out := make([]arrow.Array, len(cols))
	for i, c := range cols {
		out[i] = takeArray(h.mem, c, rows)
	}
	return out
}

func (h *HashAggregate) restoreGroups(keys []arrow.Array, hashes []uint64, ws, we []int64, state []arrow.Array, n int) error {
	// Split the state columns by accumulator.
	proto := h.newTable(0, 0)
	var per [][]int
	c := 0
	for i, a := range proto.accs {
		k := len(a.stateFields(fmt.Sprintf("__a%d_", i)))
		idx := make([]int, k)
		for j := range idx {
			idx[j] = c
			c++
		}
		per = append(per, idx)
	}
	if c != len(state) {
		return fmt.Errorf("exec: snapshot has %d state columns, want %d", len(state), c)
	}
	load := func(accs []acc, ids []uint32, rows []int32) {
		all := rows == nil
		sc := takeCols(h, state, rows, all)
		defer releaseAll(sc)
		for i, a := range accs {
			cols := make([]arrow.Array, len(per[i]))
			for j, ci := range per[i] {
				cols[j] = sc[ci]
			}
			a.load(cols, ids)
		}
	}
	switch h.cfg.Window.Kind {
	case WindowNone:
		t := h.global
		gids := t.find(keys, nil, n, hashes, nil)
		load(t.accs, gids, nil)
	case WindowSession:
		s := h.sess
		s.keys.bind(keys)
		kids := s.keys.find(nil, n, hashes, nil)
		s.kidSess = growTo(s.kidSess, s.keys.n)
		sids := make([]uint32, n)
		for j, kid := range kids {
			sid := s.alloc(kid, ws[j])
			s.last[sid] = we[j]
			s.insertSorted(kid, sid)
			sids[j] = sid
		}
		load(s.accs, sids, nil)
	default:
		order, byWin := rowsByWindow(ws)
		for _, start := range order {
			rows := byWin[start]
			t := h.windows[start]
			if t == nil {
				t = h.newTable(start, we[rows[0]])
				h.windows[start] = t
			}
			if len(rows) == n {
				gids := t.find(keys, nil, n, hashes, nil)
				load(t.accs, gids, nil)
				continue
			}
			gids := t.find(keys, rows, 0, hashes, nil)
			load(t.accs, gids, rows)
		}
	}
	return nil
}

func (h *HashAggregate) restoreDistinct(agg int, keys []arrow.Array, hashes []uint64, ws []int64, vals arrow.Array, n int) error {
	switch h.cfg.Window.Kind {
	case WindowNone:
		t := h.global
		gids := t.find(keys, nil, n, hashes, nil)
		t.accs[agg].(*distinctAcc).loadValues(gids, vals)
	case WindowSession:
		s := h.sess
		s.keys.bind(keys)
		kids := s.keys.find(nil, n, hashes, nil)
		s.kidSess = growTo(s.kidSess, s.keys.n)
		sids := make([]uint32, n)
		for j, kid := range kids {
			found := false
			for _, sid := range s.kidSess[kid] {
				if s.start[sid] == ws[j] {
					sids[j], found = sid, true
					break
				}
			}
			if !found {
				return fmt.Errorf("exec: snapshot distinct value for a missing session")
			}
		}
		s.accs[agg].(*distinctAcc).loadValues(sids, vals)
	default:
		order, byWin := rowsByWindow(ws)
		for _, start := range order {
			rows := byWin[start]
			t := h.windows[start]
			if t == nil {
				return fmt.Errorf("exec: snapshot distinct value for a missing window")
			}
			gids := t.find(keys, rows, 0, hashes, nil)
			v := vals
			if len(rows) != n {
				v = takeArray(h.mem, vals, rows)
				defer v.Release()
			}
			t.accs[agg].(*distinctAcc).loadValues(gids, v)
		}
	}
	return nil
}
