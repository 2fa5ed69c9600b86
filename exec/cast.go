package exec

import (
	"fmt"
	"math"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// pgTypeName is the PostgreSQL name of a physical type, for messages.
func pgTypeName(dt arrow.DataType) string {
	switch dt.ID() {
	case arrow.BOOL:
		return "boolean"
	case arrow.INT64:
		return "bigint"
	case arrow.FLOAT64:
		return "double precision"
	case arrow.STRING:
		return "text"
	case arrow.TIMESTAMP:
		return "timestamp"
	case arrow.DURATION:
		return "interval"
	case arrow.NULL:
		return "unknown"
	}
	return dt.String()
}

// castNode wraps a in a cast to dt; used for implicit numeric widening.
func castNode(a node, dt arrow.DataType) node {
	n, err := buildCast(a, dt)
	if err != nil {
		return &funcNode{args: []node{a}, dt: dt, fails: true, rs: a.refs(), k: func(memory.Allocator, []arrow.Array, int) (arrow.Array, error) {
			return nil, err
		}}
	}
	return n
}

func buildCast(a node, to arrow.DataType) (node, error) {
	from := a.typ()
	if arrow.TypeEqual(from, to) {
		if _, lit := a.(*litNode); lit && physOf(to) == physFloat64 {
			// An explicit ::float8 on a constant makes it a float8 value
			// rather than a NUMERIC constant (see the double -> bigint rule).
			return newFunc(to, func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
				args[0].Retain()
				return args[0], nil
			}, false, a), nil
		}
		return a, nil
	}
	if isNull(from) {
		return &litNode{dt: to}, nil
	}
	pf, pt := physOf(from), physOf(to)
	if pf == pt && pf == physInt64 {
		// timestamp <-> bigint <-> interval: the µs value is kept.
		return newFunc(to, func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
			d := args[0].Data()
			nd := array.NewData(to, d.Len(), d.Buffers(), nil, d.NullN(), d.Offset())
			defer nd.Release()
			return array.MakeFromData(nd), nil
		}, false, a), nil
	}
	var k kernel
	fails := false
	switch {
	case pf == physInt64 && pt == physFloat64:
		k = func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
			x := Int64s(args[0])
			vb := andValidity(mem, n, args[0])
			buf, out := allocFloat64(mem, n)
			for i := range out {
				out[i] = float64(x[i])
			}
			return makeFixed(to, n, vb, buf), nil
		}
	case pf == physFloat64 && pt == physInt64:
		// PostgreSQL rounds a float8 to the nearest integer with ties to
		// even (rint), but a NUMERIC constant with ties away from zero
		// (2.5::int = 3, 2.5::float8::int = 2). Spate stores NUMERIC as
		// double, so a Literal argument is taken as a NUMERIC constant and
		// anything else (columns, expressions, an explicit ::float8 on a
		// constant) as float8.
		fails = true
		round := math.RoundToEven
		if _, lit := a.(*litNode); lit {
			round = math.Round
		}
		k = func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
			x := Float64s(args[0])
			vb := andValidity(mem, n, args[0])
			buf, out := allocInt64(mem, n)
			for i := range out {
				r := round(x[i])
				if !(r >= -9.2233720368547758e18 && r < 9.2233720368547758e18) {
					if validAt(bitsOf(vb), i) {
						buf.Release()
						if vb != nil {
							vb.Release()
						}
						return nil, ovfErr(intOvfBigint)
					}
					r = 0
				}
				out[i] = int64(r)
			}
			return makeFixed(to, n, vb, buf), nil
		}
	case pf == physInt64 && pt == physBool, pf == physFloat64 && pt == physBool:
		k = func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
			vb := andValidity(mem, n, args[0])
			db, out := allocBits(mem, n)
			if pf == physInt64 {
				for i, v := range Int64s(args[0]) {
					if v != 0 {
						setBit(out, i)
					}
				}
			} else {
				for i, v := range Float64s(args[0]) {
					if v != 0 {
						setBit(out, i)
					}
				}
			}
			return makeFixed(to, n, vb, db), nil
		}
	case pf == physBool && (pt == physInt64 || pt == physFloat64):
		k = func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
			b := args[0].(*array.Boolean)
			vb := andValidity(mem, n, args[0])
			if pt == physInt64 {
				buf, out := allocInt64(mem, n)
				for i := range out {
					out[i] = 0
					if b.Value(i) {
						out[i] = 1
					}
				}
				return makeFixed(to, n, vb, buf), nil
			}
			buf, out := allocFloat64(mem, n)
			for i := range out {
				out[i] = 0
				if b.Value(i) {
					out[i] = 1
				}
			}
			return makeFixed(to, n, vb, buf), nil
		}
	case pt == physString:
		k = func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
			src := args[0]
			v := validityOf(src)
			sb := newStringBuf(n)
			var tmp []byte
			isBool := pf == physBool
			for i := 0; i < n; i++ {
				if !v.valid(i) {
					sb.appendNull()
					continue
				}
				if isBool {
					if src.(*array.Boolean).Value(i) {
						sb.appendString("true")
					} else {
						sb.appendString("false")
					}
					continue
				}
				tmp = AppendText(tmp[:0], src, i)
				sb.append(tmp)
			}
			return sb.finish(mem), nil
		}
	case pf == physString:
		fails = true
		k = textCast(to)
		if k == nil {
			return nil, fmt.Errorf("exec: cannot cast text to %s", to)
		}
	default:
		return nil, &Error{Code: CodeFeatureNotSupported, Message: fmt.Sprintf("cannot cast type %s to %s", pgTypeName(from), pgTypeName(to))}
	}
	return newFunc(to, k, fails, a), nil
}

// textCast parses text into to, as PostgreSQL's input functions do.
func textCast(to arrow.DataType) kernel {
	switch physOf(to) {
	case physInt64:
		return func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
			sv := stringsOf(args[0])
			v := validityOf(args[0])
			vb := andValidity(mem, n, args[0])
			buf, out := allocInt64(mem, n)
			for i := range out {
				out[i] = 0
				if !v.valid(i) {
					continue
				}
				x, err := parseTextAs(to, sv.bytes(i))
				if err != nil {
					buf.Release()
					if vb != nil {
						vb.Release()
					}
					return nil, err
				}
				out[i] = x
			}
			return makeFixed(to, n, vb, buf), nil
		}
	case physFloat64:
		return func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
			sv := stringsOf(args[0])
			v := validityOf(args[0])
			vb := andValidity(mem, n, args[0])
			buf, out := allocFloat64(mem, n)
			for i := range out {
				out[i] = 0
				if !v.valid(i) {
					continue
				}
				f, ok, rng := parseFloatBytes(sv.bytes(i))
				if !ok || rng {
					buf.Release()
					if vb != nil {
						vb.Release()
					}
					if rng {
						return nil, &Error{Code: CodeNumericOutOfRange, Message: fmt.Sprintf("\"%s\" is out of range for type double precision", sv.str(i))}
					}
					return nil, errInvalidInput("double precision", string(sv.bytes(i)))
				}
				out[i] = f
			}
			return makeFixed(to, n, vb, buf), nil
		}
	case physBool:
		return func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
			sv := stringsOf(args[0])
			v := validityOf(args[0])
			vb := andValidity(mem, n, args[0])
			db, out := allocBits(mem, n)
			for i := 0; i < n; i++ {
				if !v.valid(i) {
					continue
				}
				b, ok := parseBoolText(sv.str(i))
				if !ok {
					db.Release()
					if vb != nil {
						vb.Release()
					}
					return nil, errInvalidInput("boolean", string(sv.bytes(i)))
				}
				if b {
					setBit(out, i)
				}
			}
			return makeFixed(to, n, vb, db), nil
		}
	}
	return nil
}

// parseTextAs parses text for a type with the int64 layout (bigint,
// timestamp, interval).
func parseTextAs(to arrow.DataType, b []byte) (int64, error) {
	switch to.ID() {
	case arrow.TIMESTAMP:
		return ParseTimestamp(string(b))
	case arrow.DURATION:
		return ParseInterval(string(b))
	}
	x, ok, ovf := parseInt64Bytes(b)
	if !ok {
		return 0, errInvalidInput("bigint", string(b))
	}
	if ovf {
		return 0, &Error{Code: CodeNumericOutOfRange, Message: "value \"" + string(b) + "\" is out of range for type bigint"}
	}
	return x, nil
}

// formatInt is strconv.FormatInt, kept here for symmetry with parsing.
func formatInt(v int64) string { return strconv.FormatInt(v, 10) }
