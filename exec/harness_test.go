package exec

import (
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// item is one input event of an operator test: a row or a watermark.
type item struct {
	row []any
	wm  *int64
}

func rowsItems(rows [][]any) []item {
	out := make([]item, len(rows))
	for i, r := range rows {
		out[i] = item{row: r}
	}
	return out
}

func wmItem(wm int64) item { return item{wm: &wm} }

// opTest is one operator test case run by runOpTest.
type opTest struct {
	schema *arrow.Schema
	input  []item
	// nullCols are input columns into which the harness injects NULLs in
	// its null variant (none: no null variant).
	nullCols []int
	build    func(mem memory.Allocator) (Operator, error)
	// ref computes the expected output rows from the input events.
	ref func(in []item) [][]any
	// ordered compares output order too; otherwise as sorted multisets.
	ordered bool
	// finish calls Finish at the end (default true via noFinish=false).
	noFinish bool
}

// freezeWhile freezes op (which has Freeze), builds the snapshot on
// another goroutine while goOn runs the operator further, and returns
// the snapshot's bytes: they must be the checkpoint's at the freeze.
func freezeWhile(t *testing.T, op any, goOn func()) string {
	t.Helper()
	build, err := op.(interface {
		Freeze() (func() (*Snapshot, error), error)
	}).Freeze()
	if err != nil {
		t.Fatal(err)
	}
	built := make(chan string, 1)
	go func() {
		s, err := build()
		if err != nil {
			built <- err.Error()
			return
		}
		b, _ := s.Marshal()
		s.Release()
		built <- string(b)
	}()
	goOn()
	return <-built
}

// runOpTest runs tc with batch sizes 1, 7 and full, with and without
// injected NULLs, each on a fresh checked allocator that must be back to
// zero once the operator is closed and the outputs are released.
func runOpTest(t *testing.T, tc opTest) {
	t.Helper()
	variants := []bool{false}
	if len(tc.nullCols) > 0 {
		variants = append(variants, true)
	}
	for _, nulls := range variants {
		for _, bs := range []int{1, 7, 0} {
			name := fmt.Sprintf("batch=%d/nulls=%v", bs, nulls)
			if bs == 0 {
				name = fmt.Sprintf("batch=full/nulls=%v", nulls)
			}
			t.Run(name, func(t *testing.T) {
				in := tc.input
				if nulls {
					in = injectNulls(in, tc.nullCols, 42)
				}
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				op, err := tc.build(mem)
				if err != nil {
					t.Fatalf("build: %v", err)
				}
				got, err := drive(mem, op, tc.schema, in, bs, !tc.noFinish)
				op.Close()
				op.Close() // idempotent
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				want := tc.ref(in)
				compareRows(t, got, want, tc.ordered)
			})
		}
	}
}

// drive feeds the events to op in batches of bs rows (0 = as many as
// possible), breaking batches at watermarks, and returns the emitted rows.
func drive(mem memory.Allocator, op Operator, schema *arrow.Schema, in []item, bs int, finish bool) ([][]any, error) {
	var out [][]any
	emit := func(rec arrow.RecordBatch) error {
		if !schema.Equal(schema) || rec.NumCols() != int64(op.Schema().NumFields()) {
			return fmt.Errorf("emitted batch has %d columns, schema %d", rec.NumCols(), op.Schema().NumFields())
		}
		out = append(out, recordRows(rec)...)
		return nil
	}
	var pending [][]any
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		// Push a zero-copy slice of a larger batch so operators see a
		// non-zero array offset.
		padded := append([][]any{pending[len(pending)-1]}, pending...)
		full, err := RecordFromValues(schema, padded, WithAllocator(mem))
		if err != nil {
			return err
		}
		rec := full.NewSlice(1, int64(len(padded)))
		full.Release()
		pending = pending[:0]
		defer rec.Release()
		return op.Push(rec, emit)
	}
	for _, it := range in {
		if it.wm != nil {
			if err := flush(); err != nil {
				return out, err
			}
			if err := op.Advance(*it.wm, emit); err != nil {
				return out, err
			}
			continue
		}
		pending = append(pending, it.row)
		if bs > 0 && len(pending) >= bs {
			if err := flush(); err != nil {
				return out, err
			}
		}
	}
	if err := flush(); err != nil {
		return out, err
	}
	if finish {
		if err := op.Finish(emit); err != nil {
			return out, err
		}
	}
	return out, nil
}

func injectNulls(in []item, cols []int, seed int64) []item {
	r := rand.New(rand.NewSource(seed))
	out := make([]item, len(in))
	for i, it := range in {
		if it.row == nil {
			out[i] = it
			continue
		}
		row := append([]any(nil), it.row...)
		for _, c := range cols {
			if r.Intn(4) == 0 {
				row[c] = nil
			}
		}
		out[i] = item{row: row}
	}
	return out
}

// valueAt returns row i of a as a Go value (nil, bool, int64, float64,
// string, uint64).
func valueAt(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch physOf(a.DataType()) {
	case physBool:
		return a.(*array.Boolean).Value(i)
	case physInt64:
		return Int64s(a)[i]
	case physFloat64:
		return Float64s(a)[i]
	case physString:
		return a.(*array.String).Value(i)
	case physUint64:
		return Uint64s(a)[i]
	}
	return a.ValueStr(i)
}

func recordRows(rec arrow.RecordBatch) [][]any {
	rows := make([][]any, rec.NumRows())
	for i := range rows {
		row := make([]any, rec.NumCols())
		for c := range row {
			row[c] = valueAt(rec.Column(c), i)
		}
		rows[i] = row
	}
	return rows
}

func rowKey(r []any) string {
	var sb strings.Builder
	for _, v := range r {
		fmt.Fprintf(&sb, "%T:%v|", v, v)
	}
	return sb.String()
}

func compareRows(t *testing.T, got, want [][]any, ordered bool) {
	t.Helper()
	if !ordered {
		got = sortedRows(got)
		want = sortedRows(want)
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(normRows(got), normRows(want)) {
		n := len(got)
		if len(want) > n {
			n = len(want)
		}
		var sb strings.Builder
		shown := 0
		for i := 0; i < n && shown < 15; i++ {
			var g, w []any
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if rowKey(g) != rowKey(w) {
				fmt.Fprintf(&sb, "  row %d: got %v want %v\n", i, g, w)
				shown++
			}
		}
		t.Fatalf("output differs (got %d rows, want %d):\n%s", len(got), len(want), sb.String())
	}
}

func normRows(rs [][]any) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = rowKey(r)
	}
	return out
}

func sortedRows(rs [][]any) [][]any {
	out := append([][]any(nil), rs...)
	sort.SliceStable(out, func(i, j int) bool { return rowKey(out[i]) < rowKey(out[j]) })
	return out
}
