package exec

import (
	"math/rand"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// joinBenchBatches builds batches of (key bigint, ts timestamp, v bigint)
// with keys uniform over keySpace and time advancing 1 µs a row.
func joinBenchBatches(rows, batchRows, keySpace int, seed int64) ([]arrow.RecordBatch, *arrow.Schema) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "key", Type: tInt}, {Name: "ts", Type: tTS}, {Name: "v", Type: tInt}}, nil)
	r := rand.New(rand.NewSource(seed))
	var out []arrow.RecordBatch
	mem := memory.DefaultAllocator
	for start := 0; start < rows; start += batchRows {
		n := min(batchRows, rows-start)
		kb, tb, vb := array.NewInt64Builder(mem), array.NewTimestampBuilder(mem, tTS.(*arrow.TimestampType)), array.NewInt64Builder(mem)
		for i := 0; i < n; i++ {
			kb.Append(int64(r.Intn(keySpace)))
			tb.Append(arrow.Timestamp(start + i))
			vb.Append(int64(r.Intn(1000)))
		}
		cols := []arrow.Array{kb.NewArray(), tb.NewArray(), vb.NewArray()}
		out = append(out, array.NewRecordBatch(schema, cols, int64(n)))
		releaseAll(cols)
		kb.Release()
		tb.Release()
		vb.Release()
	}
	return out, schema
}

// BenchmarkIntervalJoin joins two streams of 1M rows (keys over 100K,
// a ±2000 µs interval, about 2 matches per row) in batches of 4096,
// advancing the watermark after every pair of batches; rows/s counts the
// input rows of both sides.
func BenchmarkIntervalJoin(b *testing.B) {
	const rows = 1 << 20
	left, schema := joinBenchBatches(rows, 4096, 100_000, 1)
	right, _ := joinBenchBatches(rows, 4096, 100_000, 2)
	defer func() {
		for _, r := range append(left, right...) {
			r.Release()
		}
	}()
	cfg := IntervalJoinConfig{Type: JoinLeft, LeftKeys: []int{0}, RightKeys: []int{0}, LeftTime: 1, RightTime: 1, Lower: -2000, Upper: 2000}
	var out int64
	emit := func(rec arrow.RecordBatch) error { out += rec.NumRows(); return nil }
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		j, err := NewIntervalJoin(schema, schema, cfg)
		if err != nil {
			b.Fatal(err)
		}
		for i := range left {
			if err := j.PushSide(0, left[i], emit); err != nil {
				b.Fatal(err)
			}
			if err := j.PushSide(1, right[i], emit); err != nil {
				b.Fatal(err)
			}
			if err := j.Advance(int64(i*4096-1000), emit); err != nil {
				b.Fatal(err)
			}
		}
		if err := j.Finish(emit); err != nil {
			b.Fatal(err)
		}
		j.Close()
	}
	b.ReportMetric(float64(2*rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(out)/float64(b.N), "out_rows")
}

// BenchmarkOverWindow runs ROW_NUMBER, LAG and a running SUM over 1M
// rows (keys over 100K partitions) in batches of 4096, advancing the
// watermark after every batch.
func BenchmarkOverWindow(b *testing.B) {
	const rows = 1 << 20
	batches, schema := joinBenchBatches(rows, 4096, 100_000, 1)
	defer func() {
		for _, r := range batches {
			r.Release()
		}
	}()
	cfg := OverConfig{PartitionBy: []int{0}, TimeCol: 1, Funcs: []OverFunc{
		{Kind: OverRowNumber, Arg: -1, Name: "rn"},
		{Kind: OverLag, Arg: 2, Offset: 1, Name: "lag"},
		{Kind: OverSum, Arg: 2, Preceding: -1, Name: "sum"},
		{Kind: OverAvg, Arg: 2, Preceding: 3, Name: "avg3"},
	}}
	emit := func(rec arrow.RecordBatch) error { return nil }
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		w, err := NewOverWindow(schema, cfg)
		if err != nil {
			b.Fatal(err)
		}
		for i, rec := range batches {
			if err := w.Push(rec, emit); err != nil {
				b.Fatal(err)
			}
			if err := w.Advance(int64(i*4096-1000), emit); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Finish(emit); err != nil {
			b.Fatal(err)
		}
		w.Close()
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
