package exec

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ijSchemas: left (k1 bigint, k2 text, lt time, lv bigint, ls text),
// right (rk1 bigint, rk2 text, rt time, rv bigint, rf double).
func ijSchemas(timeType arrow.DataType) [2]*arrow.Schema {
	return [2]*arrow.Schema{
		arrow.NewSchema([]arrow.Field{
			{Name: "k1", Type: tInt, Nullable: true},
			{Name: "k2", Type: tText, Nullable: true},
			{Name: "lt", Type: timeType, Nullable: true},
			{Name: "lv", Type: tInt, Nullable: true},
			{Name: "ls", Type: tText, Nullable: true},
		}, nil),
		arrow.NewSchema([]arrow.Field{
			{Name: "rk1", Type: tInt, Nullable: true},
			{Name: "rk2", Type: tText, Nullable: true},
			{Name: "rt", Type: timeType, Nullable: true},
			{Name: "rv", Type: tInt, Nullable: true},
			{Name: "rf", Type: tFloat, Nullable: true},
		}, nil),
	}
}

// genJoinInput makes n rows on random sides (runs of one side of random
// length, so matches arrive in either order) with event times shuffled
// within a bounded disorder, a watermark every few rows (max seen −
// delay) and some late rows.
func genJoinInput(seed int64, n, keys int, unit int64) []bitem {
	r := rand.New(rand.NewSource(seed))
	var out []bitem
	t := int64(1000)
	maxSeen := int64(0)
	side := 0
	for i := 0; i < n; i++ {
		if r.Intn(3) == 0 {
			side = 1 - side
		}
		t += int64(r.Intn(2))
		et := t - int64(r.Intn(8))
		maxSeen = max(maxSeen, et)
		k1 := int64(r.Intn(keys))
		k2 := string(rune('a' + r.Intn(2)))
		if side == 0 {
			out = append(out, bitem{side: 0, row: []any{k1, k2, et, int64(r.Intn(10)), fmt.Sprintf("l%d", i)}})
		} else {
			out = append(out, bitem{side: 1, row: []any{k1, k2, et, int64(r.Intn(10)), float64(r.Intn(5)) / 2}})
		}
		if r.Intn(6) == 0 {
			out = append(out, bwm((maxSeen-5)*unit))
		}
	}
	return out
}

// refIntervalJoin is the naive reference: every accepted pair, then the
// unmatched left rows for a left join. It also returns the late count.
func refIntervalJoin(cfg IntervalJoinConfig, in []bitem, unit int64, residual func(l, r []any) bool) ([][]any, int64) {
	wm := int64(math.MinInt64)
	var acc [2][][]any
	var late int64
	for _, it := range in {
		if it.wm != nil {
			wm = max(wm, *it.wm)
			continue
		}
		tc := cfg.LeftTime
		if it.side == 1 {
			tc = cfg.RightTime
		}
		if it.row[tc] == nil || it.row[tc].(int64)*unit < wm {
			late++
			continue
		}
		acc[it.side] = append(acc[it.side], it.row)
	}
	keyOf := func(row []any, keys []int) (string, bool) {
		k := make([]any, len(keys))
		for i, c := range keys {
			if row[c] == nil {
				return "", false
			}
			k[i] = row[c]
		}
		return rowKey(k), true
	}
	byKey := map[string][][]any{}
	for _, r := range acc[1] {
		if k, ok := keyOf(r, cfg.RightKeys); ok {
			byKey[k] = append(byKey[k], r)
		}
	}
	var out [][]any
	for _, l := range acc[0] {
		matched := false
		k, ok := keyOf(l, cfg.LeftKeys)
		for _, r := range byKey[k] {
			if !ok {
				break
			}
			lt, rt := l[cfg.LeftTime].(int64)*unit, r[cfg.RightTime].(int64)*unit
			if rt < lt+cfg.Lower || rt > lt+cfg.Upper {
				continue
			}
			if residual != nil && !residual(l, r) {
				continue
			}
			matched = true
			out = append(out, append(append([]any{}, l...), r...))
		}
		if !matched && cfg.Type == JoinLeft {
			out = append(out, append(append([]any{}, l...), make([]any, 5)...))
		}
	}
	return out, late
}

// lvGreater is the residual l.lv > r.rv over the concatenated row.
var lvGreater = Call{Fn: ">", Args: []Expr{ColRef{Index: 3, Type: tInt}, ColRef{Index: 5 + 3, Type: tInt}}, Type: tBool}

func lvGreaterRef(l, r []any) bool {
	return l[3] != nil && r[3] != nil && l[3].(int64) > r[3].(int64)
}

func TestIntervalJoinRandom(t *testing.T) {
	type bounds struct{ lo, up int64 }
	for _, tt := range []struct {
		name string
		dt   arrow.DataType
		unit int64
	}{{"seconds", tInt, 1000000}, {"timestamp", tTS, 1}} {
		for _, typ := range []JoinType{JoinInner, JoinLeft} {
			for _, keys := range [][2][]int{{{0}, {0}}, {{0, 1}, {0, 1}}, {{1}, {1}}} {
				bs := []bounds{{-3, 2}, {0, 0}, {2, 5}, {-6, -1}}
				if tt.unit != 1 {
					bs = bs[:2]
				}
				for _, b := range bs {
					for _, res := range []bool{false, true} {
						name := fmt.Sprintf("%s/type=%d/keys=%v/b=%v/res=%v", tt.name, typ, keys[0], b, res)
						t.Run(name, func(t *testing.T) {
							schemas := ijSchemas(tt.dt)
							cfg := IntervalJoinConfig{Type: typ, LeftKeys: keys[0], RightKeys: keys[1], LeftTime: 2, RightTime: 2,
								LeftUnit: tt.unit, RightUnit: tt.unit, Lower: b.lo * tt.unit, Upper: b.up * tt.unit}
							var rf func(l, r []any) bool
							if res {
								cfg.Residual = lvGreater
								rf = lvGreaterRef
							}
							in := genJoinInput(int64(len(name)), 200, 4, tt.unit)
							runBinaryTest(t, binTest{
								schemas:  schemas,
								input:    in,
								nullCols: [2][]int{{0, 1, 2, 3, 4}, {0, 1, 2, 3, 4}},
								build: func(mem memory.Allocator) (BinaryOperator, error) {
									return NewIntervalJoin(schemas[0], schemas[1], cfg, WithAllocator(mem))
								},
								ref: func(in []bitem) [][]any {
									out, _ := refIntervalJoin(cfg, in, tt.unit, rf)
									return out
								},
								check: func(t *testing.T, op BinaryOperator, in []bitem) {
									_, late := refIntervalJoin(cfg, in, tt.unit, rf)
									s := op.(*IntervalJoin).Stats()
									if s.LateRows != late || s.StateRows != 0 {
										t.Fatalf("stats %+v, want %d late rows and no state after Finish", s, late)
									}
								},
							})
						})
					}
				}
			}
		}
	}
}

// TestIntervalJoinStateRelease checks the watermark rules one by one:
// matches in either arrival order, state released exactly when no future
// row can match, left rows padded at release, late rows counted.
func TestIntervalJoinStateRelease(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schemas := ijSchemas(tTS)
	cfg := IntervalJoinConfig{Type: JoinLeft, LeftKeys: []int{0}, RightKeys: []int{0}, LeftTime: 2, RightTime: 2, Lower: -2, Upper: 3}
	j, err := NewIntervalJoin(schemas[0], schemas[1], cfg, WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var out [][]any
	emit := func(rec arrow.RecordBatch) error { out = append(out, recordRows(rec)...); return nil }
	push := func(side int, rows ...[]any) {
		t.Helper()
		rec, err := RecordFromValues(schemas[side], rows, WithAllocator(mem))
		if err != nil {
			t.Fatal(err)
		}
		defer rec.Release()
		if err := j.PushSide(side, rec, emit); err != nil {
			t.Fatal(err)
		}
	}
	advance := func(wm int64) {
		t.Helper()
		if err := j.Advance(wm, emit); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(want ...[]any) {
		t.Helper()
		compareRows(t, out, want, true)
		out = nil
	}
	// left first, then right: matched on the right's arrival.
	push(0, []any{int64(1), "a", int64(10), int64(1), "x"})
	push(1, []any{int64(1), "b", int64(12), int64(2), 0.5})
	expect([]any{int64(1), "a", int64(10), int64(1), "x", int64(1), "b", int64(12), int64(2), 0.5})
	// right first, then left (r.time - l.time = -2, the lower bound).
	push(1, []any{int64(2), "c", int64(20), int64(3), 1.5})
	push(0, []any{int64(2), "d", int64(22), int64(4), "y"})
	expect([]any{int64(2), "d", int64(22), int64(4), "y", int64(2), "c", int64(20), int64(3), 1.5})
	// an unmatched left row, a left row with a NULL key, out of order.
	push(0, []any{int64(3), "e", int64(15), int64(5), "z"}, []any{nil, "f", int64(11), int64(6), "w"})
	if s := j.Stats(); s.StateRows != 6 {
		t.Fatalf("state rows %d, want 6", s.StateRows)
	}
	// wm 13: l@10 (10+3 = 13) is not released yet (that needs wm > 13).
	advance(13)
	expect()
	if s := j.Stats(); s.StateRows != 6 {
		t.Fatalf("after wm 13: state rows %d, want 6", s.StateRows)
	}
	advance(14) // l@10 (matched) released
	expect()
	if s := j.Stats(); s.StateRows != 5 {
		t.Fatalf("after wm 14: state rows %d, want 5", s.StateRows)
	}
	// wm 15: l@11 (NULL key, 11+3 < 15) padded and released; r@12
	// released (12+2 < 15).
	advance(15)
	expect([]any{nil, "f", int64(11), int64(6), "w", nil, nil, nil, nil, nil})
	if s := j.Stats(); s.StateRows != 3 {
		t.Fatalf("after wm 15: state rows %d, want 3", s.StateRows)
	}
	// a late row on each side.
	push(0, []any{int64(3), "g", int64(14), int64(7), "v"})
	push(1, []any{int64(3), "h", int64(14), int64(7), 0.0})
	if s := j.Stats(); s.LateRows != 2 {
		t.Fatalf("late rows %d, want 2", s.LateRows)
	}
	// a right row matching l@15 (key 3) arrives in time.
	push(1, []any{int64(3), "i", int64(17), int64(8), 2.5})
	expect([]any{int64(3), "e", int64(15), int64(5), "z", int64(3), "i", int64(17), int64(8), 2.5})
	advance(100)
	expect()
	if s := j.Stats(); s.StateRows != 0 || s.RowsIn != 9 || s.RowsOut != 4 {
		t.Fatalf("final stats %+v", s)
	}
	// padding order: by time, then by the column values.
	push(0, []any{int64(9), "b", int64(200), int64(0), "p"}, []any{int64(8), "a", int64(201), int64(0), "q"},
		[]any{int64(7), "z", int64(200), int64(0), "r"}, []any{int64(7), "a", int64(200), int64(0), "s"})
	advance(1000)
	n := []any{nil, nil, nil, nil, nil}
	expect(append([]any{int64(7), "a", int64(200), int64(0), "s"}, n...), append([]any{int64(7), "z", int64(200), int64(0), "r"}, n...),
		append([]any{int64(9), "b", int64(200), int64(0), "p"}, n...), append([]any{int64(8), "a", int64(201), int64(0), "q"}, n...))
}

func TestIntervalJoinCheckpointRestore(t *testing.T) {
	const unit = 1000000
	schemas := ijSchemas(tInt)
	for _, typ := range []JoinType{JoinInner, JoinLeft} {
		t.Run(fmt.Sprint(typ), func(t *testing.T) {
			cfg := IntervalJoinConfig{Type: typ, LeftKeys: []int{0, 1}, RightKeys: []int{0, 1}, LeftTime: 2, RightTime: 2,
				LeftUnit: unit, RightUnit: unit, Lower: -3 * unit, Upper: 2 * unit, Residual: lvGreater}
			in := injectNullsB(genJoinInput(3, 80, 3, unit), [2][]int{{0, 3}, {1, 3}}, 7)
			want, _ := refIntervalJoin(cfg, in, unit, lvGreaterRef)
			mk := func() stateful2 {
				j, err := NewIntervalJoin(schemas[0], schemas[1], cfg)
				if err != nil {
					t.Fatal(err)
				}
				return j
			}
			checkpointRoundTrip2(t, mk, schemas, in, want, 3)
		})
	}
}

func TestIntervalJoinPartition(t *testing.T) {
	const unit = 1000000
	schemas := ijSchemas(tInt)
	for _, typ := range []JoinType{JoinInner, JoinLeft} {
		t.Run(fmt.Sprint(typ), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			cfg := IntervalJoinConfig{Type: typ, LeftKeys: []int{0, 1}, RightKeys: []int{0, 1}, LeftTime: 2, RightTime: 2,
				LeftUnit: unit, RightUnit: unit, Lower: -3 * unit, Upper: 2 * unit}
			in := injectNullsB(genJoinInput(5, 300, 6, unit), [2][]int{{0, 3}, {1, 3}}, 9)
			want, _ := refIntervalJoin(cfg, in, unit, nil)
			mk := func() stateful2 {
				j, err := NewIntervalJoin(schemas[0], schemas[1], cfg, WithAllocator(mem))
				if err != nil {
					t.Fatal(err)
				}
				return j
			}
			for _, p := range []int{0, 41, 150, len(in)} {
				got := partitionRun2(t, mem, mk, schemas, [2][]int{cfg.LeftKeys, cfg.RightKeys}, in, p, 5, thirds)
				compareRows(t, got, want, false)
			}
		})
	}
}

// TestIntervalJoinCompaction runs enough rows through small batches that
// the row store compacts and the key table sheds dead keys, with a small
// live state, and checks the result against the reference.
func TestIntervalJoinCompaction(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schemas := ijSchemas(tTS)
	cfg := IntervalJoinConfig{Type: JoinLeft, LeftKeys: []int{0}, RightKeys: []int{0}, LeftTime: 2, RightTime: 2, Lower: -5, Upper: 5}
	r := rand.New(rand.NewSource(1))
	var in []bitem
	for i := 0; i < 12000; i++ {
		k := int64(i / 4) // ever new keys
		side := r.Intn(2)
		if side == 0 {
			in = append(in, bitem{side: 0, row: []any{k, "a", int64(i), int64(i % 7), "l"}})
		} else {
			in = append(in, bitem{side: 1, row: []any{k, "b", int64(i), int64(i % 5), 1.0}})
		}
		if i%3 == 0 {
			in = append(in, bwm(int64(i-10)))
		}
	}
	want, _ := refIntervalJoin(cfg, in, 1, nil)
	j, err := NewIntervalJoin(schemas[0], schemas[1], cfg, WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	got, err := driveBinary(mem, j, schemas, in[:len(in)/2], 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if s := j.Stats(); s.StateRows > 100 || j.groups.n > 1100 || j.sides[0].store.nchunks > 65 || j.sides[1].store.nchunks > 65 {
		t.Fatalf("state not bounded: %+v, %d keys, %d+%d chunks", s, j.groups.n, j.sides[0].store.nchunks, j.sides[1].store.nchunks)
	}
	rest, err := driveBinary(mem, j, schemas, in[len(in)/2:], 1, true)
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	compareRows(t, append(got, rest...), want, false)
}

func TestIntervalJoinErrors(t *testing.T) {
	schemas := ijSchemas(tTS)
	base := IntervalJoinConfig{LeftKeys: []int{0}, RightKeys: []int{0}, LeftTime: 2, RightTime: 2}
	for name, mod := range map[string]func(c *IntervalJoinConfig){
		"key count":   func(c *IntervalJoinConfig) { c.RightKeys = []int{0, 1} },
		"key type":    func(c *IntervalJoinConfig) { c.RightKeys = []int{1} },
		"key range":   func(c *IntervalJoinConfig) { c.LeftKeys = []int{9} },
		"time column": func(c *IntervalJoinConfig) { c.LeftTime = 1 },
		"bounds":      func(c *IntervalJoinConfig) { c.Lower = 5; c.Upper = 1 },
		"residual":    func(c *IntervalJoinConfig) { c.Residual = ColRef{Index: 0} },
		"join type":   func(c *IntervalJoinConfig) { c.Type = 7 },
	} {
		c := base
		mod(&c)
		if err := c.Validate(schemas[0], schemas[1]); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	j, err := NewIntervalJoin(schemas[0], schemas[1], base)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.PushSide(2, nil, nil); err == nil {
		t.Error("side 2 accepted")
	}
	la, _ := NewLookupJoin(schemas[0], schemas[1], LookupJoinConfig{LeftKeys: []int{0}, RightKeys: []int{0}, OpCol: -1})
	snap, _ := la.Checkpoint()
	if err := j.Restore(snap); err == nil {
		t.Error("restored a lookup join snapshot")
	}
}
