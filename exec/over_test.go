package exec

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"sort"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The OVER tests use aggSchema (k1 bigint, k2 text, t time, v bigint,
// f double, s text, iv interval, b bool) and genAggInput.

// overFuncs returns a mix of every function kind with frames pre (−1 =
// unbounded) and LAG/LEAD offsets off; lead adds LEAD functions.
func overFuncs(pre int64, off int, lead bool) []OverFunc {
	fs := []OverFunc{
		{Kind: OverRowNumber, Arg: -1, Name: "rn"},
		{Kind: OverLag, Arg: 3, Offset: off, Default: int64(-1), Name: "lag_v"},
		{Kind: OverLag, Arg: 5, Offset: 2, Default: "none", Name: "lag_s"},
		{Kind: OverLag, Arg: 4, Name: "lag_f"}, // offset 0 = 1, default NULL
		{Kind: OverCount, Arg: 3, Preceding: pre, Name: "cnt_v"},
		{Kind: OverCountStar, Arg: -1, Preceding: pre, Name: "cnt"},
		{Kind: OverSum, Arg: 3, Preceding: pre, Name: "sum_v"},
		{Kind: OverSum, Arg: 4, Preceding: pre, Name: "sum_f"},
		{Kind: OverSum, Arg: 6, Preceding: -1, Name: "sum_iv"},
		{Kind: OverAvg, Arg: 3, Preceding: pre, Name: "avg_v"},
		{Kind: OverAvg, Arg: 4, Preceding: pre, Name: "avg_f"},
		{Kind: OverMin, Arg: 3, Preceding: pre, Name: "min_v"},
		{Kind: OverMax, Arg: 3, Preceding: pre, Name: "max_v"},
		{Kind: OverMax, Arg: 5, Preceding: pre, Name: "max_s"},
		{Kind: OverMin, Arg: 7, Preceding: pre, Name: "min_b"},
		{Kind: OverMax, Arg: 4, Preceding: 2, Name: "max_f2"},
		{Kind: OverSum, Arg: 3, Preceding: 0, Name: "sum_v0"},
	}
	if lead {
		fs = append(fs,
			OverFunc{Kind: OverLead, Arg: 3, Offset: off, Default: int64(-2), Name: "lead_v"},
			OverFunc{Kind: OverLead, Arg: 5, Offset: 1, Name: "lead_s"},
			OverFunc{Kind: OverLead, Arg: 7, Offset: 1, Default: true, Name: "lead_b"})
	}
	return fs
}

func overOffset(f OverFunc) int {
	if f.Offset == 0 {
		return 1
	}
	return f.Offset
}

// refOverValue computes f for row i of a partition (sorted rows).
func refOverValue(f OverFunc, part [][]any, i int) any {
	switch f.Kind {
	case OverRowNumber:
		return int64(i + 1)
	case OverLag:
		if k := overOffset(f); i-k >= 0 {
			return part[i-k][f.Arg]
		}
		return f.Default
	case OverLead:
		if k := overOffset(f); i+k < len(part) {
			return part[i+k][f.Arg]
		}
		return f.Default
	}
	lo := 0
	if f.Preceding >= 0 {
		lo = max(0, i-int(f.Preceding))
	}
	frame := part[lo : i+1]
	if f.Kind == OverCountStar {
		return int64(len(frame))
	}
	var vals []any
	for _, r := range frame {
		if r[f.Arg] != nil {
			vals = append(vals, r[f.Arg])
		}
	}
	if f.Kind == OverCount {
		return int64(len(vals))
	}
	if len(vals) == 0 {
		return nil
	}
	switch f.Kind {
	case OverSum, OverAvg:
		if _, ok := vals[0].(float64); ok {
			s := 0.0
			for _, v := range vals {
				s += v.(float64)
			}
			if f.Kind == OverAvg {
				return s / float64(len(vals))
			}
			return s
		}
		var s int64
		for _, v := range vals {
			s += v.(int64)
		}
		if f.Kind == OverAvg {
			return float64(s) / float64(len(vals))
		}
		return s
	}
	best := vals[0]
	for _, v := range vals[1:] {
		c := cmpAny(v, best)
		if (f.Kind == OverMax && c > 0) || (f.Kind == OverMin && c < 0) {
			best = v
		}
	}
	return best
}

// refOver is the naive reference: accepted rows per partition sorted by
// (time, columns), function values by plain loops, each row emitted by the
// first watermark above the time of its K-th follower (K = largest LEAD
// offset), emitted groups ordered by (time, partition keys, columns).
func refOver(cfg OverConfig, in []item, unit int64) ([][]any, int64) {
	wm := int64(math.MinInt64)
	var wms []int64
	var late int64
	parts := map[string][][]any{}
	for _, it := range in {
		if it.wm != nil {
			wms = append(wms, *it.wm)
			wm = max(wm, *it.wm)
			continue
		}
		t := it.row[cfg.TimeCol]
		if t == nil || t.(int64)*unit < wm {
			late++
			continue
		}
		pk := make([]any, len(cfg.PartitionBy))
		for i, k := range cfg.PartitionBy {
			pk[i] = it.row[k]
		}
		parts[rowKey(pk)] = append(parts[rowKey(pk)], it.row)
	}
	k := 0
	for _, f := range cfg.Funcs {
		if f.Kind == OverLead {
			k = max(k, overOffset(f))
		}
	}
	cmpRow := func(a, b []any) int {
		if c := cmpAny(a[cfg.TimeCol], b[cfg.TimeCol]); c != 0 {
			return c
		}
		for _, p := range cfg.PartitionBy {
			if c := cmpAny(a[p], b[p]); c != 0 {
				return c
			}
		}
		return cmpKeys(a, b)
	}
	groups := make([][][]any, len(wms)+1)
	for _, part := range parts {
		slices.SortStableFunc(part, cmpRow)
		for i, r := range part {
			out := append([]any{}, r...)
			for _, f := range cfg.Funcs {
				out = append(out, refOverValue(f, part, i))
			}
			e := len(wms)
			if i+k < len(part) {
				tf := part[i+k][cfg.TimeCol].(int64) * unit
				for x, w := range wms {
					if w > tf {
						e = x
						break
					}
				}
			}
			groups[e] = append(groups[e], out)
		}
	}
	var all [][]any
	for _, g := range groups {
		slices.SortStableFunc(g, cmpRow)
		all = append(all, g...)
	}
	return all, late
}

func TestOverWindowRandom(t *testing.T) {
	for _, tt := range []struct {
		name string
		dt   arrow.DataType
		unit int64
	}{{"seconds", tInt, 1000000}, {"timestamp", tTS, 1}} {
		pks := [][]int{{0}, {0, 1}, {1}, {}, {4, 7}}
		if tt.unit != 1 {
			pks = pks[1:2]
		}
		for _, pk := range pks {
			for _, pre := range []int64{-1, 0, 1, 2, 3, 5} {
				off := int(pre%3) + 1
				for _, lead := range []bool{false, true} {
					name := fmt.Sprintf("%s/pk=%v/pre=%d/off=%d/lead=%v", tt.name, pk, pre, off, lead)
					t.Run(name, func(t *testing.T) {
						schema := aggSchema(tt.dt)
						cfg := OverConfig{PartitionBy: pk, TimeCol: 2, TimeUnit: tt.unit, Funcs: overFuncs(pre, off, lead)}
						in := genAggInput(int64(len(name)), 250, 5, tt.unit)
						runOpTest(t, opTest{
							schema:   schema,
							input:    in,
							nullCols: []int{0, 1, 2, 3, 4, 5, 6, 7},
							build: func(mem memory.Allocator) (Operator, error) {
								return NewOverWindow(schema, cfg, WithAllocator(mem))
							},
							ref: func(in []item) [][]any {
								out, _ := refOver(cfg, in, tt.unit)
								return out
							},
							ordered: true,
						})
					})
				}
			}
		}
	}
}

// TestOverWindowEmission checks the exact release rule and order on a
// small stream: rows are emitted when wm > time, ties by partition key
// then columns, LEAD rows wait for their follower.
func TestOverWindowEmission(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: tText, Nullable: true}, {Name: "t", Type: tTS, Nullable: true}, {Name: "v", Type: tInt, Nullable: true},
	}, nil)
	cfg := OverConfig{PartitionBy: []int{0}, TimeCol: 1, Funcs: []OverFunc{
		{Kind: OverRowNumber, Arg: -1, Name: "rn"},
		{Kind: OverLag, Arg: 2, Offset: 1, Name: "lag"},
		{Kind: OverSum, Arg: 2, Preceding: -1, Name: "sum"},
	}}
	w, err := NewOverWindow(schema, cfg, WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var out [][]any
	emit := func(rec arrow.RecordBatch) error { out = append(out, recordRows(rec)...); return nil }
	push := func(rows ...[]any) {
		t.Helper()
		rec, err := RecordFromValues(schema, rows, WithAllocator(mem))
		if err != nil {
			t.Fatal(err)
		}
		defer rec.Release()
		if err := w.Push(rec, emit); err != nil {
			t.Fatal(err)
		}
	}
	advance := func(wm int64, want ...[]any) {
		t.Helper()
		if err := w.Advance(wm, emit); err != nil {
			t.Fatal(err)
		}
		compareRows(t, out, want, true)
		out = nil
	}
	push([]any{"b", int64(10), int64(1)}, []any{"a", int64(10), int64(5)}, []any{"a", int64(10), int64(2)}, []any{"a", int64(12), int64(7)})
	advance(10) // nothing is final: rows at 10 may still come
	push([]any{"b", int64(10), int64(3)})
	advance(11,
		[]any{"a", int64(10), int64(2), int64(1), nil, int64(2)},
		[]any{"a", int64(10), int64(5), int64(2), int64(2), int64(7)},
		[]any{"b", int64(10), int64(1), int64(1), nil, int64(1)},
		[]any{"b", int64(10), int64(3), int64(2), int64(1), int64(4)})
	push([]any{"a", int64(10), int64(9)}) // late
	if s := w.Stats(); s.LateRows != 1 || s.StateRows != 1+2 {
		t.Fatalf("stats %+v", s)
	}
	advance(13, []any{"a", int64(12), int64(7), int64(3), int64(5), int64(14)})
	if err := w.Finish(emit); err != nil || len(out) != 0 {
		t.Fatalf("finish: %v, %v", err, out)
	}
	if s := w.Stats(); s.RowsIn != 6 || s.RowsOut != 5 || s.StateRows != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestOverWindowCheckpointRestore(t *testing.T) {
	const unit = 1000000
	schema := aggSchema(tInt)
	for _, lead := range []bool{false, true} {
		t.Run(fmt.Sprint("lead=", lead), func(t *testing.T) {
			cfg := OverConfig{PartitionBy: []int{0, 1}, TimeCol: 2, TimeUnit: unit, Funcs: overFuncs(2, 2, lead)}
			cfg.Funcs = append(cfg.Funcs, overFuncs(-1, 3, lead)[1:]...)
			for i := range cfg.Funcs {
				cfg.Funcs[i].Name = fmt.Sprint("f", i)
			}
			in := injectNulls(genAggInput(11, 80, 3, unit), []int{0, 3, 4, 5, 7}, 5)
			want, _ := refOver(cfg, in, unit)
			mk := func() *OverWindow {
				w, err := NewOverWindow(schema, cfg)
				if err != nil {
					t.Fatal(err)
				}
				return w
			}
			for p := 0; p <= len(in); p++ {
				op1 := mk()
				head := collectRun(t, op1, schema, in[:p], 3, false)
				snap, err := op1.Checkpoint()
				if err != nil {
					t.Fatal(err)
				}
				before, err := snap.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				var rest1 [][]any
				frozen := freezeWhile(t, op1, func() { rest1 = collectRun(t, op1, schema, in[p:], 3, true) })
				if after, _ := snap.Marshal(); string(after) != string(before) {
					t.Fatalf("split %d: snapshot changed after the operator continued", p)
				}
				if frozen != string(before) {
					t.Fatalf("split %d: the snapshot built from Freeze after the window went on differs from the checkpoint", p)
				}
				snap2, err := UnmarshalSnapshot(before)
				if err != nil {
					t.Fatal(err)
				}
				op2 := mk()
				if err := op2.Restore(snap2); err != nil {
					t.Fatalf("split %d: %v", p, err)
				}
				snap.Release()
				snap2.Release()
				rest2 := collectRun(t, op2, schema, in[p:], 3, true)
				compareRows(t, rest2, rest1, true)
				compareRows(t, append(append([][]any{}, head...), rest2...), want, true)
				s1, s2 := op1.Stats(), op2.Stats()
				if s1.StateBytes, s2.StateBytes = 0, 0; s1 != s2 {
					t.Fatalf("split %d: stats %+v vs %+v", p, s1, s2)
				}
				op1.Close()
				op2.Close()
			}
		})
	}
}

func TestOverWindowPartition(t *testing.T) {
	const unit = 1000000
	schema := aggSchema(tInt)
	for _, lead := range []bool{false, true} {
		t.Run(fmt.Sprint("lead=", lead), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			cfg := OverConfig{PartitionBy: []int{0, 1}, TimeCol: 2, TimeUnit: unit, Funcs: overFuncs(3, 2, lead)}
			in := injectNulls(genAggInput(13, 300, 6, unit), []int{0, 3, 5}, 9)
			want, _ := refOver(cfg, in, unit)
			mk := func() *OverWindow {
				w, err := NewOverWindow(schema, cfg, WithAllocator(mem))
				if err != nil {
					t.Fatal(err)
				}
				return w
			}
			for _, p := range []int{0, 37, 150, len(in)} {
				op := mk()
				all, err := drive(mem, op, schema, in[:p], 5, false)
				if err != nil {
					t.Fatal(err)
				}
				snap, err := op.Checkpoint()
				if err != nil {
					t.Fatal(err)
				}
				op.Close()
				parts, err := PartitionSnapshot(snap, thirds, WithAllocator(mem))
				snap.Release()
				if err != nil {
					t.Fatal(err)
				}
				var routed [3][]item
				for _, it := range in[p:] {
					if it.wm != nil {
						for i := range routed {
							routed[i] = append(routed[i], it)
						}
						continue
					}
					rec, _ := RecordFromValues(schema, [][]any{it.row}, WithAllocator(mem))
					h := HashColumns(rec, cfg.PartitionBy, nil)[0]
					rec.Release()
					i := sort.Search(len(thirds), func(i int) bool { return thirds[i] > h })
					routed[i] = append(routed[i], it)
				}
				for i, part := range parts {
					o := mk()
					if err := o.Restore(part); err != nil {
						t.Fatal(err)
					}
					part.Release()
					out, err := drive(mem, o, schema, routed[i], 5, true)
					if err != nil {
						t.Fatal(err)
					}
					all = append(all, out...)
					o.Close()
				}
				compareRows(t, all, want, false)
			}
		})
	}
}

// TestOverWindowManyPartitions pushes one-row batches over many
// partitions with LEAD, so that most rows stay pinned in their batches
// until the row store compacts, and checks the result.
func TestOverWindowManyPartitions(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := aggSchema(tTS)
	cfg := OverConfig{PartitionBy: []int{0}, TimeCol: 2, Funcs: []OverFunc{
		{Kind: OverLead, Arg: 3, Offset: 2, Name: "lead"},
		{Kind: OverAvg, Arg: 4, Preceding: 4, Name: "avg"},
	}}
	r := rand.New(rand.NewSource(3))
	var in []item
	for i := 0; i < 6000; i++ {
		in = append(in, item{row: []any{int64(r.Intn(2000)), "x", int64(i), int64(i), float64(i % 10), "s", int64(0), true}})
		if i%10 == 9 {
			in = append(in, wmItem(int64(i-3)))
		}
	}
	want, _ := refOver(cfg, in, 1)
	w, err := NewOverWindow(schema, cfg, WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	got, err := drive(mem, w, schema, in, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if s := w.store; s.nchunks > 64 && s.nchunks*8 > s.live {
		t.Fatalf("row store not compacted: %d chunks for %d rows", s.nchunks, s.live)
	}
	rest, err := drive(mem, w, schema, nil, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	compareRows(t, append(got, rest...), want, true)
}

func TestOverWindowErrors(t *testing.T) {
	schema := aggSchema(tTS)
	for name, f := range map[string]OverFunc{
		"sum text":     {Kind: OverSum, Arg: 5, Preceding: -1},
		"avg ts":       {Kind: OverAvg, Arg: 2, Preceding: -1},
		"arg range":    {Kind: OverMin, Arg: 99},
		"bad frame":    {Kind: OverCount, Arg: 3, Preceding: -2},
		"bad offset":   {Kind: OverLag, Arg: 3, Offset: -1},
		"bad default":  {Kind: OverLag, Arg: 3, Default: "x"},
		"planner type": {Kind: OverCount, Arg: 3, Type: tText},
	} {
		cfg := OverConfig{TimeCol: 2, Funcs: []OverFunc{f}}
		if err := cfg.Validate(schema); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := (OverConfig{TimeCol: 1}).Validate(schema); err == nil {
		t.Error("text time column accepted")
	}
	// SUM overflow is an error with SQLSTATE 22003.
	w, err := NewOverWindow(schema, OverConfig{TimeCol: 2, Funcs: []OverFunc{{Kind: OverSum, Arg: 3, Preceding: 1, Name: "s"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rec, _ := RecordFromValues(schema, [][]any{
		{int64(1), "a", int64(1), int64(math.MaxInt64), 0.0, "", int64(0), true},
		{int64(1), "a", int64(2), int64(1), 0.0, "", int64(0), true},
	})
	defer rec.Release()
	if err := w.Push(rec, nil); err != nil {
		t.Fatal(err)
	}
	err = w.Finish(func(arrow.RecordBatch) error { return nil })
	if e, ok := err.(*Error); !ok || e.Code != CodeNumericOutOfRange {
		t.Fatalf("overflow: %v", err)
	}
}
