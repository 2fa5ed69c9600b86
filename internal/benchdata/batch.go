// Package benchdata builds the data the data-plane benchmarks send, so the
// transport's Go benchmarks, the Flight comparison and `spate bench net`
// measure the same batch.
package benchdata

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Rows is the rows in a Batch.
const Rows = 64 << 10

// Batch is 64K rows of 4 columns (int64 id, float64 price, timestamp_us
// ts, string symbol of 3-4 bytes), about 2 MB of buffers.
func Batch() arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "price", Type: arrow.PrimitiveTypes.Float64},
		{Name: "ts", Type: arrow.FixedWidthTypes.Timestamp_us},
		{Name: "sym", Type: arrow.BinaryTypes.String},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	syms := []string{"AAPL", "MSFT", "IBM", "GOOG", "AMZN", "SAP"}
	for i := range Rows {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.Float64Builder).Append(float64(i) * 0.25)
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000_000_000 + int64(i)))
		b.Field(3).(*array.StringBuilder).Append(syms[i%len(syms)])
	}
	return b.NewRecordBatch()
}
