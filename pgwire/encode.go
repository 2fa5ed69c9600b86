package pgwire

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/exec"
	"github.com/spatedb/spate/planner"
)

// PostgreSQL type OIDs that Spate sends or understands.
const (
	oidUnspecified uint32 = 0
	oidBool        uint32 = 16
	oidBytea       uint32 = 17
	oidName        uint32 = 19
	oidInt8        uint32 = 20
	oidInt2        uint32 = 21
	oidInt4        uint32 = 23
	oidText        uint32 = 25
	oidFloat4      uint32 = 700
	oidFloat8      uint32 = 701
	oidUnknown     uint32 = 705
	oidBpchar      uint32 = 1042
	oidVarchar     uint32 = 1043
	oidTimestamp   uint32 = 1114
	oidTimestamptz uint32 = 1184
	oidInterval    uint32 = 1186
	oidInt2Array   uint32 = 1005
	oidInt4Array   uint32 = 1007
	oidTextArray   uint32 = 1009
	oidInt8Array   uint32 = 1016
	oidNameArray   uint32 = 1003
	oidVarcharArr  uint32 = 1015
)

// Wire format codes.
const (
	formatText   int16 = 0
	formatBinary int16 = 1
)

// pgEpochMicros is 2000-01-01 00:00:00 UTC, PostgreSQL's binary timestamp
// origin, in µs since the Unix epoch.
const pgEpochMicros int64 = 946684800 * 1_000_000

const (
	microsPerSecond = int64(1_000_000)
	microsPerDay    = 86400 * microsPerSecond
	microsPerMonth  = 30 * microsPerDay
)

// typeOID maps a Spate type to the PostgreSQL type OID and size announced in
// RowDescription and ParameterDescription. Unknown types are text.
func typeOID(t planner.Type) (oid uint32, size int16) {
	switch t {
	case planner.TypeBool:
		return oidBool, 1
	case planner.TypeInt:
		return oidInt4, 4
	case planner.TypeBigInt:
		return oidInt8, 8
	case planner.TypeDouble:
		return oidFloat8, 8
	case planner.TypeTimestamp:
		return oidTimestamp, 8
	case planner.TypeInterval:
		return oidInterval, 16
	default:
		return oidText, -1
	}
}

// arrowType maps an Arrow type to the closest Spate type; it is used only
// when the engine returned rows without Columns.
func arrowType(dt arrow.DataType) planner.Type {
	switch dt.ID() {
	case arrow.BOOL:
		return planner.TypeBool
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.UINT8, arrow.UINT16:
		return planner.TypeInt
	case arrow.INT64, arrow.UINT32, arrow.UINT64:
		return planner.TypeBigInt
	case arrow.FLOAT32, arrow.FLOAT64:
		return planner.TypeDouble
	case arrow.TIMESTAMP:
		return planner.TypeTimestamp
	case arrow.DURATION:
		return planner.TypeInterval
	default:
		return planner.TypeText
	}
}

// columnsFromSchema derives result columns from a batch schema.
func columnsFromSchema(s *arrow.Schema) []cluster.Column {
	cols := make([]cluster.Column, s.NumFields())
	for i, f := range s.Fields() {
		cols[i] = cluster.Column{Name: f.Name, Type: arrowType(f.Type)}
	}
	return cols
}

// colBuf holds the encoded values of one column for a range of rows: value
// i occupies data[ends[i-1]:ends[i]] (ends[-1] = 0); a NULL has nulls[i].
// Buffers are reused from batch to batch.
type colBuf struct {
	data  []byte
	ends  []int
	nulls []bool
}

func (b *colBuf) reset() {
	b.data = b.data[:0]
	b.ends = b.ends[:0]
	b.nulls = b.nulls[:0]
}

func (b *colBuf) value(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.data[start:b.ends[i]]
}

func (b *colBuf) end(null bool) {
	b.ends = append(b.ends, len(b.data))
	b.nulls = append(b.nulls, null)
}

// encodeError is a value that cannot be represented as the column's
// announced type.
type encodeError struct {
	code, msg string
}

func (e *encodeError) Error() string    { return e.msg }
func (e *encodeError) SQLState() string { return e.code }

// encodeColumn appends the values of arr[from:to] to b in the given format,
// as PostgreSQL type oid.
func encodeColumn(b *colBuf, arr arrow.Array, from, to int, oid uint32, format int16) error {
	if format == formatBinary {
		return encodeBinary(b, arr, from, to, oid)
	}
	encodeText(b, arr, from, to)
	return nil
}

// encodeText appends PostgreSQL text output (exec.AppendText) of
// arr[from:to] to b.
func encodeText(b *colBuf, arr arrow.Array, from, to int) {
	for i := from; i < to; i++ {
		if arr.IsNull(i) {
			b.end(true)
			continue
		}
		b.data = exec.AppendText(b.data, arr, i)
		b.end(false)
	}
}

// toMicros converts a value in unit to microseconds.
func toMicros(v int64, unit arrow.TimeUnit) int64 {
	switch unit {
	case arrow.Second:
		return v * microsPerSecond
	case arrow.Millisecond:
		return v * 1000
	case arrow.Nanosecond:
		return v / 1000
	default:
		return v
	}
}

// encodeBinary appends PostgreSQL binary output of arr[from:to] as type oid.
func encodeBinary(b *colBuf, arr arrow.Array, from, to int, oid uint32) error {
	mismatch := func() error {
		return &encodeError{code: "XX000", msg: fmt.Sprintf("cannot send a column of Arrow type %s in binary format as type OID %d", arr.DataType(), oid)}
	}
	switch oid {
	case oidInt8, oidInt4, oidInt2:
		a, ok := arr.(*array.Int64)
		if !ok {
			return encodeBinaryOtherInt(b, arr, from, to, oid)
		}
		vals := a.Int64Values()
		for i := from; i < to; i++ {
			if a.IsNull(i) {
				b.end(true)
				continue
			}
			if err := appendBinaryInt(b, vals[i], oid); err != nil {
				return err
			}
		}
	case oidFloat8, oidFloat4:
		for i := from; i < to; i++ {
			if arr.IsNull(i) {
				b.end(true)
				continue
			}
			var f float64
			switch a := arr.(type) {
			case *array.Float64:
				f = a.Value(i)
			case *array.Float32:
				f = float64(a.Value(i))
			default:
				return mismatch()
			}
			if oid == oidFloat4 {
				b.data = binary.BigEndian.AppendUint32(b.data, math.Float32bits(float32(f)))
			} else {
				b.data = binary.BigEndian.AppendUint64(b.data, math.Float64bits(f))
			}
			b.end(false)
		}
	case oidBool:
		a, ok := arr.(*array.Boolean)
		if !ok {
			return mismatch()
		}
		for i := from; i < to; i++ {
			if a.IsNull(i) {
				b.end(true)
				continue
			}
			if a.Value(i) {
				b.data = append(b.data, 1)
			} else {
				b.data = append(b.data, 0)
			}
			b.end(false)
		}
	case oidTimestamp, oidTimestamptz, oidInterval:
		switch a := arr.(type) {
		case *array.Timestamp:
			unit := a.DataType().(*arrow.TimestampType).Unit
			ts := a.TimestampValues()
			for i := from; i < to; i++ {
				if a.IsNull(i) {
					b.end(true)
					continue
				}
				appendBinaryTime(b, toMicros(int64(ts[i]), unit), oid)
			}
			return nil
		case *array.Duration:
			unit := a.DataType().(*arrow.DurationType).Unit
			ds := a.DurationValues()
			for i := from; i < to; i++ {
				if a.IsNull(i) {
					b.end(true)
					continue
				}
				appendBinaryTime(b, toMicros(int64(ds[i]), unit), oid)
			}
			return nil
		case *array.Int64:
			vs := a.Int64Values()
			for i := from; i < to; i++ {
				if a.IsNull(i) {
					b.end(true)
					continue
				}
				appendBinaryTime(b, vs[i], oid)
			}
			return nil
		default:
			return mismatch()
		}
	default:
		// text, varchar and every type sent as text: the binary form of
		// text is its bytes.
		encodeText(b, arr, from, to)
	}
	return nil
}

func appendBinaryTime(b *colBuf, us int64, oid uint32) {
	if oid == oidInterval {
		b.data = binary.BigEndian.AppendUint64(b.data, uint64(us))
		b.data = binary.BigEndian.AppendUint32(b.data, 0) // days
		b.data = binary.BigEndian.AppendUint32(b.data, 0) // months
	} else {
		v := us
		if v != math.MaxInt64 && v != math.MinInt64 { // ±infinity stay as they are
			v -= pgEpochMicros
		}
		b.data = binary.BigEndian.AppendUint64(b.data, uint64(v))
	}
	b.end(false)
}

func appendBinaryInt(b *colBuf, v int64, oid uint32) error {
	switch oid {
	case oidInt2:
		if v < math.MinInt16 || v > math.MaxInt16 {
			return &encodeError{code: "22003", msg: "smallint out of range"}
		}
		b.data = binary.BigEndian.AppendUint16(b.data, uint16(v))
	case oidInt4:
		if v < math.MinInt32 || v > math.MaxInt32 {
			return &encodeError{code: "22003", msg: "integer out of range"}
		}
		b.data = binary.BigEndian.AppendUint32(b.data, uint32(v))
	default:
		b.data = binary.BigEndian.AppendUint64(b.data, uint64(v))
	}
	b.end(false)
	return nil
}

func encodeBinaryOtherInt(b *colBuf, arr arrow.Array, from, to int, oid uint32) error {
	for i := from; i < to; i++ {
		if arr.IsNull(i) {
			b.end(true)
			continue
		}
		var v int64
		switch a := arr.(type) {
		case *array.Int32:
			v = int64(a.Value(i))
		case *array.Int16:
			v = int64(a.Value(i))
		case *array.Int8:
			v = int64(a.Value(i))
		case *array.Uint32:
			v = int64(a.Value(i))
		case *array.Uint16:
			v = int64(a.Value(i))
		case *array.Uint8:
			v = int64(a.Value(i))
		default:
			return &encodeError{code: "XX000", msg: fmt.Sprintf("cannot send a column of Arrow type %s in binary format as type OID %d", arr.DataType(), oid)}
		}
		if err := appendBinaryInt(b, v, oid); err != nil {
			return err
		}
	}
	return nil
}
