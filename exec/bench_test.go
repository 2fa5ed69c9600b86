package exec

import (
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// benchBatches builds rows of (key bigint, ts timestamp, price bigint) in
// batches of batchRows: keys uniform over keySpace, time advancing so that
// rows/windows windows are spanned.
func benchBatches(rows, batchRows, keySpace int, span int64) ([]arrow.RecordBatch, *arrow.Schema) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "key", Type: tInt}, {Name: "ts", Type: tTS}, {Name: "price", Type: tInt},
	}, nil)
	r := rand.New(rand.NewSource(1))
	var out []arrow.RecordBatch
	mem := memory.DefaultAllocator
	for start := 0; start < rows; start += batchRows {
		n := min(batchRows, rows-start)
		kb := array.NewInt64Builder(mem)
		tb := array.NewTimestampBuilder(mem, tTS.(*arrow.TimestampType))
		pb := array.NewInt64Builder(mem)
		for i := 0; i < n; i++ {
			kb.Append(int64(r.Intn(keySpace)))
			tb.Append(arrow.Timestamp(int64(start+i) * span / int64(rows)))
			pb.Append(int64(r.Intn(1000)))
		}
		cols := []arrow.Array{kb.NewArray(), tb.NewArray(), pb.NewArray()}
		out = append(out, array.NewRecordBatch(schema, cols, int64(n)))
		releaseAll(cols)
		kb.Release()
		tb.Release()
		pb.Release()
	}
	return out, schema
}

const benchWindow = int64(10_000_000) // 10 s tumble windows

// BenchmarkTumbleAggregate measures HashAggregate (COUNT, SUM, MAX per key
// per 10 s tumble window) against BenchmarkTumbleMapLoop, a hand-written Go
// loop with map[key]acc over the same int64 columns. rows/s are reported.
// SPATE_BENCH_ROWS=10000000 runs one size (the default is 1M and 4M rows;
// the key space is 1M and the input spans four 10 s windows).
func BenchmarkTumbleAggregate(b *testing.B) {
	sizes := []int{1_000_000, 4_000_000}
	if v := os.Getenv("SPATE_BENCH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		sizes = []int{n}
	}
	for _, rows := range sizes {
		batches, schema := benchBatches(rows, 8192, 1_000_000, 4*benchWindow)
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			cfg := AggConfig{Keys: []int{0}, KeyNames: []string{"key"},
				Aggs:   []AggSpec{{Kind: AggCountStar, Arg: -1, Name: "n"}, {Kind: AggSum, Arg: 2, Name: "s"}, {Kind: AggMax, Arg: 2, Name: "m"}},
				Window: WindowSpec{Kind: WindowTumble, TimeCol: 1, Size: benchWindow, TimeUnit: 1}}
			var out int64
			emit := func(rec arrow.RecordBatch) error { out += rec.NumRows(); return nil }
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				op, _ := NewHashAggregate(schema, cfg)
				for _, rec := range batches {
					if err := op.Push(rec, emit); err != nil {
						b.Fatal(err)
					}
					_ = op.Advance(Int64s(rec.Column(1))[0], emit)
				}
				_ = op.Finish(emit)
				op.Close()
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
		b.Run(fmt.Sprintf("maploop/rows=%d", rows), func(b *testing.B) {
			type acc struct{ n, s, m int64 }
			for it := 0; it < b.N; it++ {
				wins := map[int64]map[int64]*acc{}
				var out int64
				for _, rec := range batches {
					keys, ts, prices := Int64s(rec.Column(0)), Int64s(rec.Column(1)), Int64s(rec.Column(2))
					for i, k := range keys {
						w := ts[i] / benchWindow * benchWindow
						m := wins[w]
						if m == nil {
							m = map[int64]*acc{}
							wins[w] = m
						}
						a := m[k]
						if a == nil {
							a = &acc{m: prices[i]}
							m[k] = a
						}
						a.n++
						a.s += prices[i]
						if prices[i] > a.m {
							a.m = prices[i]
						}
					}
					wm := ts[0]
					for w, m := range wins {
						if w+benchWindow <= wm {
							out += int64(len(m))
							delete(wins, w)
						}
					}
				}
				for _, m := range wins {
					out += int64(len(m))
				}
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
		for _, r := range batches {
			r.Release()
		}
	}
}
