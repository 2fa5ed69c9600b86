package exec

import (
	"fmt"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// RecordFromValues builds a batch of schema from Go values, one []any per
// row: nil (NULL), bool, int64 (or int), float64, string; timestamps and
// intervals as int64 µs (time.Time and time.Duration are accepted too); a
// float64 column accepts int64 values and a text column any value that
// AppendText could print. Field metadata SQLTypeMetadataKey adds the
// INTEGER range and VARCHAR(n) length checks. Used for INSERT … VALUES
// and system tables. The
// caller owns (and releases) the returned batch. Options: WithAllocator.
func RecordFromValues(schema *arrow.Schema, rows [][]any, opts ...Option) (arrow.RecordBatch, error) {
	o := buildOptions(opts)
	n := len(rows)
	cols := make([]arrow.Array, schema.NumFields())
	for c := range cols {
		a, err := columnFromValues(o.mem, schema.Field(c), rows, c)
		if err != nil {
			releaseAll(cols)
			return nil, err
		}
		cols[c] = a
	}
	defer releaseAll(cols)
	return array.NewRecordBatch(schema, cols, int64(n)), nil
}

func columnFromValues(mem memory.Allocator, f arrow.Field, rows [][]any, c int) (arrow.Array, error) {
	n := len(rows)
	dt := f.Type
	get := func(i int) (any, error) {
		if c >= len(rows[i]) {
			return nil, fmt.Errorf("exec: row %d has %d values, want %d", i, len(rows[i]), c+1)
		}
		return rows[i][c], nil
	}
	bad := func(i int, v any) error {
		return &Error{Code: CodeDatatypeMismatch, Message: fmt.Sprintf("column \"%s\" is of type %s but value %v is %T (row %d)", f.Name, pgTypeName(dt), v, v, i+1)}
	}
	switch physOf(dt) {
	case physInt64:
		vb, vbits := allocBits(mem, n)
		buf, out := allocInt64(mem, n)
		for i := 0; i < n; i++ {
			v, err := get(i)
			if err != nil {
				vb.Release()
				buf.Release()
				return nil, err
			}
			out[i] = 0
			switch x := v.(type) {
			case nil:
				continue
			case int64:
				out[i] = x
			case int:
				out[i] = int64(x)
			case int32:
				out[i] = int64(x)
			case time.Time:
				out[i] = x.UnixMicro()
			case time.Duration:
				out[i] = x.Microseconds()
			case string:
				p, err := parseTextAs(dt, []byte(x))
				if err != nil {
					vb.Release()
					buf.Release()
					return nil, err
				}
				out[i] = p
			default:
				vb.Release()
				buf.Release()
				return nil, bad(i, v)
			}
			setBit(vbits, i)
		}
		if isInt32Field(f) {
			for i, x := range out {
				if x < math.MinInt32 || x > math.MaxInt32 {
					vb.Release()
					buf.Release()
					return nil, &Error{Code: CodeNumericOutOfRange, Message: fmt.Sprintf("integer out of range (column \"%s\", row %d)", f.Name, i+1)}
				}
			}
		}
		return makeFixed(dt, n, vb, buf), nil
	case physFloat64:
		vb, vbits := allocBits(mem, n)
		buf, out := allocFloat64(mem, n)
		for i := 0; i < n; i++ {
			v, err := get(i)
			if err != nil {
				vb.Release()
				buf.Release()
				return nil, err
			}
			out[i] = 0
			switch x := v.(type) {
			case nil:
				continue
			case float64:
				out[i] = x
			case int64:
				out[i] = float64(x)
			case int:
				out[i] = float64(x)
			case string:
				p, ok, rng := parseFloatBytes([]byte(x))
				if !ok || rng {
					vb.Release()
					buf.Release()
					return nil, errInvalidInput("double precision", x)
				}
				out[i] = p
			default:
				vb.Release()
				buf.Release()
				return nil, bad(i, v)
			}
			setBit(vbits, i)
		}
		return makeFixed(dt, n, vb, buf), nil
	case physBool:
		vb, vbits := allocBits(mem, n)
		db, out := allocBits(mem, n)
		for i := 0; i < n; i++ {
			v, err := get(i)
			if err != nil {
				vb.Release()
				db.Release()
				return nil, err
			}
			switch x := v.(type) {
			case nil:
				continue
			case bool:
				if x {
					setBit(out, i)
				}
			case string:
				b, ok := parseBoolText(x)
				if !ok {
					vb.Release()
					db.Release()
					return nil, errInvalidInput("boolean", x)
				}
				if b {
					setBit(out, i)
				}
			default:
				vb.Release()
				db.Release()
				return nil, bad(i, v)
			}
			setBit(vbits, i)
		}
		return makeFixed(dt, n, vb, db), nil
	case physString:
		sb := newStringBuf(n)
		limit, typ := varcharLimit(f)
		for i := 0; i < n; i++ {
			v, err := get(i)
			if err != nil {
				return nil, err
			}
			switch x := v.(type) {
			case nil:
				sb.appendNull()
			case string:
				b, err := checkLen([]byte(x), limit, typ)
				if err != nil {
					return nil, err
				}
				sb.append(b)
			case []byte:
				b, err := checkLen(x, limit, typ)
				if err != nil {
					return nil, err
				}
				sb.append(b)
			case bool:
				if x {
					sb.appendString("true")
				} else {
					sb.appendString("false")
				}
			default:
				sb.appendString(fmt.Sprint(x))
			}
		}
		return sb.finish(mem), nil
	case physUint64:
		vb, vbits := allocBits(mem, n)
		buf, out := allocUint64(mem, n)
		for i := 0; i < n; i++ {
			v, err := get(i)
			if err != nil {
				vb.Release()
				buf.Release()
				return nil, err
			}
			out[i] = 0
			switch x := v.(type) {
			case nil:
				continue
			case uint64:
				out[i] = x
			case int64:
				out[i] = uint64(x)
			default:
				vb.Release()
				buf.Release()
				return nil, bad(i, v)
			}
			setBit(vbits, i)
		}
		return makeFixed(dt, n, vb, buf), nil
	case physNull:
		return array.NewNull(n), nil
	}
	return nil, fmt.Errorf("exec: RecordFromValues: unsupported type %s", dt)
}
