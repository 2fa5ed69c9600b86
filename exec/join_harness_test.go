package exec

import (
	"fmt"
	"math"
	"math/rand"
	"sort"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// bitem is one input event of a two-input operator test: a row of a side
// or a watermark.
type bitem struct {
	side int
	row  []any
	wm   *int64
}

func bwm(wm int64) bitem { return bitem{wm: &wm} }

// binTest is one two-input operator test case run by runBinaryTest.
type binTest struct {
	schemas [2]*arrow.Schema
	input   []bitem
	// nullCols are, per side, the columns into which the null variant
	// injects NULLs.
	nullCols [2][]int
	build    func(mem memory.Allocator) (BinaryOperator, error)
	ref      func(in []bitem) [][]any
	ordered  bool
	// check inspects the operator after the run (before Close).
	check func(t *testing.T, op BinaryOperator, in []bitem)
}

// runBinaryTest runs tc with batch sizes 1, 7 and full, with and without
// injected NULLs, each on a fresh checked allocator that must be back to
// zero once the operator is closed and the outputs are released.
func runBinaryTest(t *testing.T, tc binTest) {
	t.Helper()
	variants := []bool{false}
	if len(tc.nullCols[0])+len(tc.nullCols[1]) > 0 {
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
					in = injectNullsB(in, tc.nullCols, 42)
				}
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				op, err := tc.build(mem)
				if err != nil {
					t.Fatalf("build: %v", err)
				}
				got, err := driveBinary(mem, op, tc.schemas, in, bs, true)
				if err == nil && tc.check != nil {
					tc.check(t, op, in)
				}
				op.Close()
				op.Close() // idempotent
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				compareRows(t, got, tc.ref(in), tc.ordered)
			})
		}
	}
}

// driveBinary feeds the events to op in batches of at most bs rows (0 =
// as many as possible) of one side, breaking batches where the side
// changes and at watermarks, and returns the emitted rows.
func driveBinary(mem memory.Allocator, op BinaryOperator, schemas [2]*arrow.Schema, in []bitem, bs int, finish bool) ([][]any, error) {
	var out [][]any
	emit := func(rec arrow.RecordBatch) error {
		if !rec.Schema().Equal(op.Schema()) {
			return fmt.Errorf("emitted schema %s, want %s", rec.Schema(), op.Schema())
		}
		out = append(out, recordRows(rec)...)
		return nil
	}
	var pending [][]any
	side := 0
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		// a zero-copy slice of a larger batch: non-zero array offsets.
		padded := append([][]any{pending[len(pending)-1]}, pending...)
		full, err := RecordFromValues(schemas[side], padded, WithAllocator(mem))
		if err != nil {
			return err
		}
		rec := full.NewSlice(1, int64(len(padded)))
		full.Release()
		pending = pending[:0]
		defer rec.Release()
		return op.PushSide(side, rec, emit)
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
		if it.side != side {
			if err := flush(); err != nil {
				return out, err
			}
			side = it.side
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

func injectNullsB(in []bitem, cols [2][]int, seed int64) []bitem {
	r := rand.New(rand.NewSource(seed))
	out := make([]bitem, len(in))
	for i, it := range in {
		out[i] = it
		if it.row == nil {
			continue
		}
		row := append([]any(nil), it.row...)
		for _, c := range cols[it.side] {
			if r.Intn(4) == 0 {
				row[c] = nil
			}
		}
		out[i].row = row
	}
	return out
}

// stateful2 is what the checkpoint tests need of a two-input operator.
type stateful2 interface {
	StatefulBinary
	StatsReporter
}

// checkpointRoundTrip2 runs in[:p] on a fresh operator, checkpoints it,
// lets it continue with in[p:] (rest1) and restores the marshalled
// snapshot into another fresh operator that runs in[p:] (rest2). rest1
// and rest2 must be identical (order included), the snapshot must not
// change while the original continues, and head+rest must equal want as a
// multiset.
func checkpointRoundTrip2(t *testing.T, mk func() stateful2, schemas [2]*arrow.Schema, in []bitem, want [][]any, bs int) {
	t.Helper()
	for p := 0; p <= len(in); p++ {
		op1 := mk()
		head, err := driveBinary(memory.DefaultAllocator, op1, schemas, in[:p], bs, false)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := op1.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		before, err := snap.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		// A frozen state built on another goroutine while the operator
		// goes on must come out as the checkpoint taken here.
		var rest1 [][]any
		frozen := freezeWhile(t, op1, func() { rest1, err = driveBinary(memory.DefaultAllocator, op1, schemas, in[p:], bs, true) })
		if err != nil {
			t.Fatal(err)
		}
		after, _ := snap.Marshal()
		if string(before) != string(after) {
			t.Fatalf("split %d: snapshot changed after the operator continued", p)
		}
		if frozen != string(before) {
			t.Fatalf("split %d: the snapshot built from Freeze after the operator continued differs from the checkpoint", p)
		}
		snap2, err := UnmarshalSnapshot(before)
		if err != nil {
			t.Fatal(err)
		}
		op2 := mk()
		if err := op2.Restore(snap2); err != nil {
			t.Fatalf("split %d: restore: %v", p, err)
		}
		snap.Release()
		snap2.Release()
		rest2, err := driveBinary(memory.DefaultAllocator, op2, schemas, in[p:], bs, true)
		if err != nil {
			t.Fatal(err)
		}
		compareRows(t, rest2, rest1, true)
		compareRows(t, append(append([][]any{}, head...), rest2...), want, false)
		if s1, s2 := op1.Stats(), op2.Stats(); s1.LateRows != s2.LateRows || s1.RowsIn != s2.RowsIn || s1.RowsOut != s2.RowsOut {
			t.Fatalf("split %d: stats %+v vs %+v", p, s1, s2)
		}
		op1.Close()
		op2.Close()
	}
}

var thirds = []uint64{math.MaxUint64 / 3, math.MaxUint64 / 3 * 2}

// partitionRun2 runs in[:p], checkpoints, splits the snapshot at splits,
// restores each part into its own operator, routes the rest of the rows by
// HashColumns over keys[side] (watermarks to every part) and returns the
// union of all outputs.
func partitionRun2(t *testing.T, mem memory.Allocator, mk func() stateful2, schemas [2]*arrow.Schema, keys [2][]int, in []bitem, p, bs int, splits []uint64) [][]any {
	t.Helper()
	op := mk()
	all, err := driveBinary(mem, op, schemas, in[:p], bs, false)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := op.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	op.Close()
	parts, err := PartitionSnapshot(snap, splits, WithAllocator(mem))
	snap.Release()
	if err != nil {
		t.Fatal(err)
	}
	routed := make([][]bitem, len(parts))
	for _, it := range in[p:] {
		if it.wm != nil {
			for i := range routed {
				routed[i] = append(routed[i], it)
			}
			continue
		}
		rec, err := RecordFromValues(schemas[it.side], [][]any{it.row}, WithAllocator(mem))
		if err != nil {
			t.Fatal(err)
		}
		h := HashColumns(rec, keys[it.side], nil)[0]
		rec.Release()
		i := sort.Search(len(splits), func(i int) bool { return splits[i] > h })
		routed[i] = append(routed[i], it)
	}
	for i, part := range parts {
		o := mk()
		if err := o.Restore(part); err != nil {
			t.Fatal(err)
		}
		part.Release()
		out, err := driveBinary(mem, o, schemas, routed[i], bs, true)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, out...)
		o.Close()
	}
	return all
}
