package exec

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ljSchemas: stream (k bigint, k2 text, lv bigint), changelog (op text,
// rk bigint, rk2 text, rv bigint, rs text).
func ljSchemas() [2]*arrow.Schema {
	return [2]*arrow.Schema{
		arrow.NewSchema([]arrow.Field{
			{Name: "k", Type: tInt, Nullable: true},
			{Name: "k2", Type: tText, Nullable: true},
			{Name: "lv", Type: tInt, Nullable: true},
		}, nil),
		arrow.NewSchema([]arrow.Field{
			{Name: "op", Type: tText},
			{Name: "rk", Type: tInt, Nullable: true},
			{Name: "rk2", Type: tText, Nullable: true},
			{Name: "rv", Type: tInt, Nullable: true},
			{Name: "rs", Type: tText, Nullable: true},
		}, nil),
	}
}

// genLookupInput interleaves stream rows with a changelog of inserts,
// duplicate inserts, deletes of present rows and deletes of absent rows.
func genLookupInput(seed int64, n, keys int) []bitem {
	r := rand.New(rand.NewSource(seed))
	var out []bitem
	var table [][]any
	side := 0
	for i := 0; i < n; i++ {
		if r.Intn(3) == 0 {
			side = 1 - side
		}
		k := int64(r.Intn(keys))
		k2 := string(rune('a' + r.Intn(2)))
		if side == 0 {
			out = append(out, bitem{side: 0, row: []any{k, k2, int64(r.Intn(10))}})
			continue
		}
		switch x := r.Intn(10); {
		case x < 3 && len(table) > 0: // delete a present row
			j := r.Intn(len(table))
			out = append(out, bitem{side: 1, row: append([]any{"-"}, table[j]...)})
			table = append(table[:j], table[j+1:]...)
		case x == 3: // delete an absent row
			out = append(out, bitem{side: 1, row: []any{"-", k, k2, int64(99), "none"}})
		case x == 4 && len(table) > 0: // a duplicate
			row := table[r.Intn(len(table))]
			out = append(out, bitem{side: 1, row: append([]any{"+"}, row...)})
			table = append(table, row)
		default:
			row := []any{k, k2, int64(r.Intn(10)), fmt.Sprintf("r%d", i)}
			out = append(out, bitem{side: 1, row: append([]any{"+"}, row...)})
			table = append(table, row)
		}
	}
	return out
}

// refLookupJoin is the naive reference: a list of table rows; each stream
// row is joined with the list in order.
func refLookupJoin(cfg LookupJoinConfig, in []bitem, residual func(l, r []any) bool) [][]any {
	var table [][]any
	nullKey := func(row []any, keys []int) bool {
		for _, k := range keys {
			if row[k] == nil {
				return true
			}
		}
		return false
	}
	// right rows without the op column: right key k is at k-1.
	rk := make([]int, len(cfg.RightKeys))
	for i, k := range cfg.RightKeys {
		rk[i] = k - 1
	}
	var out [][]any
	for _, it := range in {
		if it.side == 1 {
			row := it.row[1:]
			if nullKey(row, rk) {
				continue
			}
			if it.row[0] == "+" {
				table = append(table, row)
				continue
			}
			for j, tr := range table {
				if rowKey(tr) == rowKey(row) {
					table = append(table[:j:j], table[j+1:]...)
					break
				}
			}
			continue
		}
		l := it.row
		matched := false
		if !nullKey(l, cfg.LeftKeys) {
			for _, tr := range table {
				eq := true
				for i := range rk {
					if cmpAny(l[cfg.LeftKeys[i]], tr[rk[i]]) != 0 {
						eq = false
					}
				}
				if eq && (residual == nil || residual(l, tr)) {
					out = append(out, append(append([]any{}, l...), tr...))
					matched = true
				}
			}
		}
		if !matched && cfg.Type == JoinLeft {
			out = append(out, append(append([]any{}, l...), nil, nil, nil, nil))
		}
	}
	return out
}

// lvAbove is the residual lv > rv over (k, k2, lv, rk, rk2, rv, rs).
var lvAbove = Call{Fn: ">", Args: []Expr{ColRef{Index: 2, Type: tInt}, ColRef{Index: 5, Type: tInt}}, Type: tBool}

func lvAboveRef(l, r []any) bool {
	return l[2] != nil && r[2] != nil && l[2].(int64) > r[2].(int64)
}

func TestLookupJoinRandom(t *testing.T) {
	schemas := ljSchemas()
	for _, typ := range []JoinType{JoinInner, JoinLeft} {
		for _, keys := range [][2][]int{{{0}, {1}}, {{0, 1}, {1, 2}}, {{1}, {2}}} {
			for _, res := range []bool{false, true} {
				name := fmt.Sprintf("type=%d/keys=%v/res=%v", typ, keys[0], res)
				t.Run(name, func(t *testing.T) {
					cfg := LookupJoinConfig{Type: typ, LeftKeys: keys[0], RightKeys: keys[1], OpCol: 0}
					var rf func(l, r []any) bool
					if res {
						cfg.Residual = lvAbove
						rf = lvAboveRef
					}
					in := genLookupInput(int64(len(name)), 300, 5)
					runBinaryTest(t, binTest{
						schemas:  schemas,
						input:    in,
						nullCols: [2][]int{{0, 1, 2}, {1, 2, 3, 4}},
						build: func(mem memory.Allocator) (BinaryOperator, error) {
							return NewLookupJoin(schemas[0], schemas[1], cfg, WithAllocator(mem))
						},
						ref:     func(in []bitem) [][]any { return refLookupJoin(cfg, in, rf) },
						ordered: true,
					})
				})
			}
		}
	}
}

func TestLookupJoinInsertOnly(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	left := ljSchemas()[0]
	right := arrow.NewSchema([]arrow.Field{{Name: "rk", Type: tInt}, {Name: "name", Type: tText}}, nil)
	j, err := NewLookupJoin(left, right, LookupJoinConfig{Type: JoinLeft, LeftKeys: []int{0}, RightKeys: []int{0}, OpCol: -1}, WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if got := j.Schema().NumFields(); got != 5 {
		t.Fatalf("output has %d columns", got)
	}
	in := []bitem{
		{side: 0, row: []any{int64(1), "a", int64(0)}},
		{side: 1, row: []any{int64(1), "one"}},
		{side: 1, row: []any{int64(2), "two"}},
		{side: 0, row: []any{int64(1), "b", int64(0)}},
		{side: 0, row: []any{int64(2), "c", int64(0)}},
		bwm(100), // no effect
	}
	got, err := driveBinary(mem, j, [2]*arrow.Schema{left, right}, in, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	compareRows(t, got, [][]any{
		{int64(1), "a", int64(0), nil, nil},
		{int64(1), "b", int64(0), int64(1), "one"},
		{int64(2), "c", int64(0), int64(2), "two"},
	}, true)
	if s := j.Stats(); s.StateRows != 2 || s.RowsIn != 5 || s.RowsOut != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func TestLookupJoinCheckpointRestore(t *testing.T) {
	schemas := ljSchemas()
	for _, typ := range []JoinType{JoinInner, JoinLeft} {
		t.Run(fmt.Sprint(typ), func(t *testing.T) {
			cfg := LookupJoinConfig{Type: typ, LeftKeys: []int{0, 1}, RightKeys: []int{1, 2}, OpCol: 0, Residual: lvAbove}
			in := injectNullsB(genLookupInput(3, 90, 3), [2][]int{{0, 2}, {3, 4}}, 7)
			want := refLookupJoin(cfg, in, lvAboveRef)
			mk := func() stateful2 {
				j, err := NewLookupJoin(schemas[0], schemas[1], cfg)
				if err != nil {
					t.Fatal(err)
				}
				return j
			}
			checkpointRoundTrip2(t, mk, schemas, in, want, 3)
		})
	}
}

func TestLookupJoinPartition(t *testing.T) {
	schemas := ljSchemas()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := LookupJoinConfig{Type: JoinLeft, LeftKeys: []int{0, 1}, RightKeys: []int{1, 2}, OpCol: 0}
	in := injectNullsB(genLookupInput(5, 400, 8), [2][]int{{0, 2}, {3}}, 9)
	want := refLookupJoin(cfg, in, nil)
	mk := func() stateful2 {
		j, err := NewLookupJoin(schemas[0], schemas[1], cfg, WithAllocator(mem))
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	for _, p := range []int{0, 57, 200, len(in)} {
		got := partitionRun2(t, mem, mk, schemas, [2][]int{cfg.LeftKeys, cfg.RightKeys}, in, p, 4, thirds)
		compareRows(t, got, want, false)
	}
}

// TestLookupJoinChurn inserts and deletes many distinct keys one row at a
// time so that the row store compacts and the key table sheds dead keys.
func TestLookupJoinChurn(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schemas := ljSchemas()
	cfg := LookupJoinConfig{Type: JoinInner, LeftKeys: []int{0}, RightKeys: []int{1}, OpCol: 0}
	var in []bitem
	for i := 0; i < 8000; i++ {
		row := []any{int64(i), "a", int64(i % 3), "x"}
		in = append(in, bitem{side: 1, row: append([]any{"+"}, row...)})
		in = append(in, bitem{side: 0, row: []any{int64(i), "q", int64(1)}})
		if i >= 5 {
			old := []any{"-", int64(i - 5), "a", int64((i - 5) % 3), "x"}
			in = append(in, bitem{side: 1, row: old})
		}
	}
	j, err := NewLookupJoin(schemas[0], schemas[1], cfg, WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	got, err := driveBinary(mem, j, schemas, in, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	if s := j.Stats(); s.StateRows != 5 || j.groups.n > 1100 || j.tab.store.nchunks > 65 {
		t.Fatalf("state not bounded: %+v, %d keys, %d chunks", s, j.groups.n, j.tab.store.nchunks)
	}
	j.Close()
	compareRows(t, got, refLookupJoin(cfg, in, nil), true)
}

func TestLookupJoinErrors(t *testing.T) {
	schemas := ljSchemas()
	for name, c := range map[string]LookupJoinConfig{
		"op type":   {LeftKeys: []int{0}, RightKeys: []int{1}, OpCol: 1},
		"op is key": {LeftKeys: []int{1}, RightKeys: []int{0}, OpCol: 0},
		"key type":  {LeftKeys: []int{0}, RightKeys: []int{2}, OpCol: 0},
	} {
		if err := c.Validate(schemas[0], schemas[1]); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	j, err := NewLookupJoin(schemas[0], schemas[1], LookupJoinConfig{LeftKeys: []int{0}, RightKeys: []int{1}, OpCol: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	rec, _ := RecordFromValues(schemas[1], [][]any{{"*", int64(1), "a", int64(1), "x"}})
	defer rec.Release()
	if err := j.PushSide(1, rec, nil); err == nil {
		t.Fatal("bad op accepted")
	} else if e, ok := err.(*Error); !ok || e.Code != CodeInvalidParameter {
		t.Fatalf("bad op: %v", err)
	}
}
