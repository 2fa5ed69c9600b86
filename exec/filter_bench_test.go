package exec

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// BenchmarkFilter compares Calc's own selection take with arrow compute's
// FilterRecordBatch on a 1M-row (bigint, text, double) batch keeping half
// of the rows.
func BenchmarkFilter(b *testing.B) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "a", Type: tInt}, {Name: "s", Type: tText}, {Name: "x", Type: tFloat}}, nil)
	rows := make([][]any, 1<<20)
	for i := range rows {
		rows[i] = []any{int64(i), "abcdefgh"[:i%8], float64(i)}
	}
	rec, _ := RecordFromValues(schema, rows)
	defer rec.Release()
	filter := Call{Fn: "=", Type: tBool, Args: []Expr{Call{Fn: "%", Type: tInt, Args: []Expr{ColRef{Index: 0}, Literal{Type: tInt, Value: int64(2)}}}, Literal{Type: tInt, Value: int64(0)}}}
	ev, _ := Compile(filter, schema)
	mask, _ := ev.Eval(rec)
	defer mask.Release()
	b.Run("own", func(b *testing.B) {
		idx := make([]int32, 0, rec.NumRows())
		for i := 0; i < b.N; i++ {
			sel, _ := selectionIndices(mask, idx)
			for c := 0; c < 3; c++ {
				takeArray(memory.DefaultAllocator, rec.Column(c), sel).Release()
			}
		}
	})
	b.Run("compute", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			out, err := compute.FilterRecordBatch(context.Background(), rec, mask, compute.DefaultFilterOptions())
			if err != nil {
				b.Fatal(err)
			}
			out.Release()
		}
	})
}
