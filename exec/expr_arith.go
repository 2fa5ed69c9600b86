package exec

import (
	"bytes"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// andValidity returns the AND of the validity of arrs as a new bitmap, or
// nil when every row is valid.
func andValidity(mem memory.Allocator, n int, arrs ...arrow.Array) *memory.Buffer {
	any := false
	for _, a := range arrs {
		if a.NullN() > 0 {
			any = true
		}
	}
	if !any {
		return nil
	}
	vb, bits := allocBits(mem, n)
	for i := range bits {
		bits[i] = 0xff
	}
	for _, a := range arrs {
		if a.NullN() == 0 {
			continue
		}
		v := validityOf(a)
		if v.off%8 == 0 && !isNull(a.DataType()) {
			src := v.bits[v.off/8:]
			for i := range bits {
				bits[i] &= src[i]
			}
		} else {
			for i := 0; i < n; i++ {
				if !v.valid(i) {
					clearBit(bits, i)
				}
			}
		}
	}
	return vb
}

func bitsOf(b *memory.Buffer) []byte {
	if b == nil {
		return nil
	}
	return b.Bytes()
}

func validAt(bits []byte, i int) bool { return bits == nil || getBit(bits, i) }

func errTimestampRange() *Error {
	return &Error{Code: CodeDatetimeOutOfRange, Message: "timestamp out of range"}
}
func errIntervalRange() *Error {
	return &Error{Code: CodeDatetimeOutOfRange, Message: "interval out of range"}
}
func errFloatOverflow() *Error {
	return &Error{Code: CodeNumericOutOfRange, Message: "value out of range: overflow"}
}

func buildArith(fn string, args []node, rt arrow.DataType) (node, error) {
	a, b := args[0], args[1]
	at, bt := a.typ(), b.typ()
	if fn == "mod" {
		fn = "%"
	}
	op := fn[0]
	pa, pb := physOf(at), physOf(bt)
	switch {
	case isNull(at) && isNull(bt):
		dt := rt
		if dt == nil || isNull(dt) {
			dt = tInt
		}
		return &litNode{dt: dt}, nil
	case isInt(at) && isInt(bt):
		return newFunc(tInt, intArith(op, tInt, intOvfBigint), true, a, b), nil
	case (pa == physFloat64 || isInt(at)) && (pb == physFloat64 || isInt(bt)):
		args = unifyNumeric(args)
		return newFunc(tFloat, floatArith(op), op == '/' || op == '%' || op == '*' || op == '+' || op == '-', args[0], args[1]), nil
	case isTS(at) && isIntv(bt) && (op == '+' || op == '-'):
		return newFunc(at, intArith(op, at, intOvfTimestamp), true, a, b), nil
	case isIntv(at) && isTS(bt) && op == '+':
		return newFunc(bt, intArith(op, bt, intOvfTimestamp), true, a, b), nil
	case isTS(at) && isTS(bt) && op == '-':
		return newFunc(tIntv, intArith(op, tIntv, intOvfInterval), true, a, b), nil
	case isIntv(at) && isIntv(bt) && (op == '+' || op == '-'):
		return newFunc(at, intArith(op, at, intOvfInterval), true, a, b), nil
	case isIntv(at) && isInt(bt) && (op == '*' || op == '/'):
		return newFunc(at, intArith(op, at, intOvfInterval), true, a, b), nil
	case isInt(at) && isIntv(bt) && op == '*':
		return newFunc(bt, intArith(op, bt, intOvfInterval), true, a, b), nil
	case isIntv(at) && pb == physFloat64 && (op == '*' || op == '/'):
		return newFunc(at, intvFloat(op, false), true, a, b), nil
	case pa == physFloat64 && isIntv(bt) && op == '*':
		return newFunc(bt, intvFloat(op, true), true, a, b), nil
	}
	return nil, &Error{Code: CodeUndefinedFunction, Message: fmt.Sprintf("operator does not exist: %s %s %s", at, fn, bt)}
}

type ovfKind uint8

const (
	intOvfBigint ovfKind = iota
	intOvfTimestamp
	intOvfInterval
)

func ovfErr(k ovfKind) *Error {
	switch k {
	case intOvfTimestamp:
		return errTimestampRange()
	case intOvfInterval:
		return errIntervalRange()
	}
	return errBigintRange()
}

// intArith is checked int64 arithmetic over the int64 layout (bigint,
// timestamp, interval). Division truncates toward zero.
func intArith(op byte, dt arrow.DataType, ovf ovfKind) kernel {
	return func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
		x, y := Int64s(args[0]), Int64s(args[1])
		vb := andValidity(mem, n, args[0], args[1])
		vbits := bitsOf(vb)
		buf, out := allocInt64(mem, n)
		fail := func(e *Error) (arrow.Array, error) {
			buf.Release()
			if vb != nil {
				vb.Release()
			}
			return nil, e
		}
		switch op {
		case '+':
			var ov int64
			for i := range out {
				c := x[i] + y[i]
				ov |= (c ^ x[i]) & (c ^ y[i])
				out[i] = c
			}
			if ov < 0 {
				for i := range out {
					if validAt(vbits, i) && (out[i]^x[i])&(out[i]^y[i]) < 0 {
						return fail(ovfErr(ovf))
					}
				}
			}
		case '-':
			var ov int64
			for i := range out {
				c := x[i] - y[i]
				ov |= (x[i] ^ y[i]) & (c ^ x[i])
				out[i] = c
			}
			if ov < 0 {
				for i := range out {
					if validAt(vbits, i) && (x[i]^y[i])&(out[i]^x[i]) < 0 {
						return fail(ovfErr(ovf))
					}
				}
			}
		case '*':
			for i := range out {
				a, b := x[i], y[i]
				c := a * b
				out[i] = c
				if (uint64(a+0x80000000)|uint64(b+0x80000000))>>32 != 0 {
					if a != 0 && (c/a != b || (a == -1 && b == math.MinInt64)) && validAt(vbits, i) {
						return fail(ovfErr(ovf))
					}
				}
			}
		case '/':
			for i := range out {
				b := y[i]
				if b == 0 || b == -1 {
					if !validAt(vbits, i) {
						out[i] = 0
						continue
					}
					if b == 0 {
						return fail(errDivByZero())
					}
					if x[i] == math.MinInt64 {
						return fail(ovfErr(ovf))
					}
					out[i] = -x[i]
					continue
				}
				out[i] = x[i] / b
			}
		case '%':
			for i := range out {
				b := y[i]
				if b == 0 || b == -1 {
					if b == 0 && validAt(vbits, i) {
						return fail(errDivByZero())
					}
					out[i] = 0
					continue
				}
				out[i] = x[i] % b
			}
		default:
			return fail(sqlErr(CodeUndefinedFunction, "operator does not exist: %c", op))
		}
		return makeFixed(dt, n, vb, buf), nil
	}
}

func floatArith(op byte) kernel {
	return func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
		x, y := Float64s(args[0]), Float64s(args[1])
		vb := andValidity(mem, n, args[0], args[1])
		vbits := bitsOf(vb)
		buf, out := allocFloat64(mem, n)
		switch op {
		case '+':
			for i := range out {
				out[i] = x[i] + y[i]
			}
		case '-':
			for i := range out {
				out[i] = x[i] - y[i]
			}
		case '*':
			for i := range out {
				out[i] = x[i] * y[i]
			}
		case '/':
			for i := range out {
				if y[i] == 0 && validAt(vbits, i) {
					buf.Release()
					if vb != nil {
						vb.Release()
					}
					return nil, errDivByZero()
				}
				out[i] = x[i] / y[i]
			}
		case '%':
			for i := range out {
				if y[i] == 0 && validAt(vbits, i) {
					buf.Release()
					if vb != nil {
						vb.Release()
					}
					return nil, errDivByZero()
				}
				out[i] = math.Mod(x[i], y[i])
			}
		}
		// overflow: an infinite result from finite inputs
		for i := range out {
			if math.IsInf(out[i], 0) && !math.IsInf(x[i], 0) && !math.IsInf(y[i], 0) && validAt(vbits, i) {
				buf.Release()
				if vb != nil {
					vb.Release()
				}
				return nil, errFloatOverflow()
			}
		}
		return makeFixed(tFloat, n, vb, buf), nil
	}
}

// intvFloat multiplies or divides an interval by a double, rounding to µs.
func intvFloat(op byte, swapped bool) kernel {
	return func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
		ia, fa := args[0], args[1]
		if swapped {
			ia, fa = args[1], args[0]
		}
		x, y := Int64s(ia), Float64s(fa)
		vb := andValidity(mem, n, ia, fa)
		vbits := bitsOf(vb)
		buf, out := allocInt64(mem, n)
		for i := range out {
			if !validAt(vbits, i) {
				out[i] = 0
				continue
			}
			var r float64
			if op == '*' {
				r = float64(x[i]) * y[i]
			} else {
				if y[i] == 0 {
					buf.Release()
					if vb != nil {
						vb.Release()
					}
					return nil, errDivByZero()
				}
				r = float64(x[i]) / y[i]
			}
			r = math.Round(r)
			if math.IsNaN(r) || r >= 9.2233720368547758e18 || r < -9.2233720368547758e18 {
				buf.Release()
				if vb != nil {
					vb.Release()
				}
				return nil, errIntervalRange()
			}
			out[i] = int64(r)
		}
		return makeFixed(ia.DataType(), n, vb, buf), nil
	}
}

func buildNeg(a node) (node, error) {
	switch physOf(a.typ()) {
	case physInt64:
		ovf := intOvfBigint
		if isIntv(a.typ()) {
			ovf = intOvfInterval
		} else if isTS(a.typ()) {
			return nil, errArgs("neg", []node{a})
		}
		dt := a.typ()
		return newFunc(dt, func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
			x := Int64s(args[0])
			vb := andValidity(mem, n, args[0])
			buf, out := allocInt64(mem, n)
			for i := range out {
				if x[i] == math.MinInt64 && validAt(bitsOf(vb), i) {
					buf.Release()
					if vb != nil {
						vb.Release()
					}
					return nil, ovfErr(ovf)
				}
				out[i] = -x[i]
			}
			return makeFixed(dt, n, vb, buf), nil
		}, true, a), nil
	case physFloat64:
		return newFunc(tFloat, func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
			x := Float64s(args[0])
			vb := andValidity(mem, n, args[0])
			buf, out := allocFloat64(mem, n)
			for i := range out {
				out[i] = -x[i]
			}
			return makeFixed(tFloat, n, vb, buf), nil
		}, false, a), nil
	case physNull:
		return a, nil
	}
	return nil, errArgs("neg", []node{a})
}

// ---- comparison ----

type cmpOp uint8

const (
	opEq cmpOp = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

func parseCmp(fn string) cmpOp {
	switch fn {
	case "=":
		return opEq
	case "<>", "!=":
		return opNe
	case "<":
		return opLt
	case "<=":
		return opLe
	case ">":
		return opGt
	}
	return opGe
}

func cmpResult(op cmpOp, c int) bool {
	switch op {
	case opEq:
		return c == 0
	case opNe:
		return c != 0
	case opLt:
		return c < 0
	case opLe:
		return c <= 0
	case opGt:
		return c > 0
	}
	return c >= 0
}

func comparable2(at, bt arrow.DataType) bool {
	pa, pb := physOf(at), physOf(bt)
	if pa == physNull || pb == physNull {
		return true
	}
	if pa != pb || pa == physOther {
		return false
	}
	if pa == physInt64 && at.ID() != bt.ID() {
		return false
	}
	return true
}

func buildCompare(fn string, a, b node) (node, error) {
	if !comparable2(a.typ(), b.typ()) {
		return nil, &Error{Code: CodeUndefinedFunction, Message: fmt.Sprintf("operator does not exist: %s %s %s", a.typ(), fn, b.typ())}
	}
	op := parseCmp(fn)
	if isNull(a.typ()) || isNull(b.typ()) {
		return &litNode{dt: tBool}, nil
	}
	return newFunc(tBool, func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
		return kCompare(mem, op, args[0], args[1], n), nil
	}, false, a, b), nil
}

func cmpLoopInt(op cmpOp, x, y []int64, out []byte) {
	switch op {
	case opEq:
		for i := range x {
			if x[i] == y[i] {
				out[i>>3] |= 1 << uint(i&7)
			}
		}
	case opNe:
		for i := range x {
			if x[i] != y[i] {
				out[i>>3] |= 1 << uint(i&7)
			}
		}
	case opLt:
		for i := range x {
			if x[i] < y[i] {
				out[i>>3] |= 1 << uint(i&7)
			}
		}
	case opLe:
		for i := range x {
			if x[i] <= y[i] {
				out[i>>3] |= 1 << uint(i&7)
			}
		}
	case opGt:
		for i := range x {
			if x[i] > y[i] {
				out[i>>3] |= 1 << uint(i&7)
			}
		}
	case opGe:
		for i := range x {
			if x[i] >= y[i] {
				out[i>>3] |= 1 << uint(i&7)
			}
		}
	}
}

// fcmp orders doubles as PostgreSQL does: NaN equals NaN and sorts above
// every other value.
func fcmp(a, b float64) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	if a == b {
		return 0
	}
	an, bn := a != a, b != b
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	}
	return -1
}

func kCompare(mem memory.Allocator, op cmpOp, a, b arrow.Array, n int) arrow.Array {
	vb := andValidity(mem, n, a, b)
	db, out := allocBits(mem, n)
	switch physOf(a.DataType()) {
	case physInt64:
		cmpLoopInt(op, Int64s(a), Int64s(b), out)
	case physFloat64:
		x, y := Float64s(a), Float64s(b)
		for i := range x {
			if cmpResult(op, fcmp(x[i], y[i])) {
				out[i>>3] |= 1 << uint(i&7)
			}
		}
	case physString:
		x, y := stringsOf(a), stringsOf(b)
		for i := 0; i < n; i++ {
			if cmpResult(op, bytes.Compare(x.bytes(i), y.bytes(i))) {
				setBit(out, i)
			}
		}
	case physBool:
		x, y := a.(*array.Boolean), b.(*array.Boolean)
		for i := 0; i < n; i++ {
			if cmpResult(op, boolCmp(x.Value(i), y.Value(i))) {
				setBit(out, i)
			}
		}
	case physUint64:
		x, y := Uint64s(a), Uint64s(b)
		for i := range x {
			c := 0
			if x[i] < y[i] {
				c = -1
			} else if x[i] > y[i] {
				c = 1
			}
			if cmpResult(op, c) {
				setBit(out, i)
			}
		}
	}
	return makeFixed(tBool, n, vb, db)
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// compareAt compares a[i] with b[j] (both non-null, same physical type).
func compareAt(a arrow.Array, i int, b arrow.Array, j int) int {
	switch physOf(a.DataType()) {
	case physInt64:
		x, y := Int64s(a)[i], Int64s(b)[j]
		if x < y {
			return -1
		} else if x > y {
			return 1
		}
		return 0
	case physFloat64:
		return fcmp(Float64s(a)[i], Float64s(b)[j])
	case physString:
		return bytes.Compare(stringsOf(a).bytes(i), stringsOf(b).bytes(j))
	case physBool:
		return boolCmp(a.(*array.Boolean).Value(i), b.(*array.Boolean).Value(j))
	case physUint64:
		x, y := Uint64s(a)[i], Uint64s(b)[j]
		if x < y {
			return -1
		} else if x > y {
			return 1
		}
		return 0
	}
	return 0
}

func buildDistinct(notDistinct bool, a, b node) (node, error) {
	if !comparable2(a.typ(), b.typ()) {
		return nil, errArgs("is_distinct", []node{a, b})
	}
	return newFunc(tBool, func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
		x, y := args[0], args[1]
		db, out := allocBits(mem, n)
		xv, yv := validityOf(x), validityOf(y)
		both := isNull(x.DataType()) || isNull(y.DataType())
		for i := 0; i < n; i++ {
			xn, yn := !xv.valid(i), !yv.valid(i)
			var same bool
			switch {
			case xn && yn:
				same = true
			case xn || yn:
				same = false
			case both:
				same = false
			default:
				same = compareAt(x, i, y, i) == 0
			}
			if same == notDistinct {
				setBit(out, i)
			}
		}
		return makeFixed(tBool, n, nil, db), nil
	}, false, a, b), nil
}

func buildGreatest(greatest bool, args []node) (node, error) {
	dt := args[0].typ()
	for _, a := range args {
		if !comparable2(dt, a.typ()) {
			return nil, errArgs("greatest", args)
		}
	}
	return newFunc(dt, func(mem memory.Allocator, cols []arrow.Array, n int) (arrow.Array, error) {
		which := make([]int32, n)
		rows := make([]int32, n)
		vs := make([]validity, len(cols))
		for k, c := range cols {
			vs[k] = validityOf(c)
		}
		for i := 0; i < n; i++ {
			best := int32(-1)
			rows[i] = int32(i)
			for k, c := range cols {
				if !vs[k].valid(i) {
					continue
				}
				if best < 0 {
					best = int32(k)
					continue
				}
				cmp := compareAt(c, i, cols[best], i)
				if (greatest && cmp > 0) || (!greatest && cmp < 0) {
					best = int32(k)
				}
			}
			which[i] = best
		}
		return gather(mem, dt, cols, which, rows), nil
	}, false, args...), nil
}
