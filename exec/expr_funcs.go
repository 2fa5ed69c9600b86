package exec

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ---- strict row-wise helpers: NULL in, NULL out ----

type rowStr func(args []arrow.Array, i int, dst []byte) ([]byte, error)
type rowInt func(args []arrow.Array, i int) (int64, error)
type rowFloat func(args []arrow.Array, i int) (float64, error)
type rowBool func(args []arrow.Array, i int) (bool, error)

func strictStr(f rowStr) kernel {
	return strictStrOrNull(func(args []arrow.Array, i int, dst []byte) ([]byte, bool, error) {
		out, err := f(args, i, dst)
		return out, true, err
	})
}

// rowStrOrNull is a text function that may be NULL for non-NULL
// arguments (ok false), as a regular expression that does not match.
type rowStrOrNull func(args []arrow.Array, i int, dst []byte) (out []byte, ok bool, err error)

func strictStrOrNull(f rowStrOrNull) kernel {
	return func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
		vb := andValidity(mem, n, args...)
		vbits := bitsOf(vb)
		sb := newStringBuf(n)
		var tmp []byte
		var ok bool
		var err error
		for i := 0; i < n; i++ {
			if !validAt(vbits, i) {
				sb.appendNull()
				continue
			}
			tmp, ok, err = f(args, i, tmp[:0])
			if err != nil {
				if vb != nil {
					vb.Release()
				}
				return nil, err
			}
			if !ok {
				sb.appendNull()
				continue
			}
			sb.append(tmp)
		}
		if vb != nil {
			vb.Release()
		}
		return sb.finish(mem), nil
	}
}

func strictInt(dt arrow.DataType, f rowInt) kernel {
	return func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
		vb := andValidity(mem, n, args...)
		vbits := bitsOf(vb)
		buf, out := allocInt64(mem, n)
		for i := range out {
			out[i] = 0
			if !validAt(vbits, i) {
				continue
			}
			v, err := f(args, i)
			if err != nil {
				buf.Release()
				if vb != nil {
					vb.Release()
				}
				return nil, err
			}
			out[i] = v
		}
		return makeFixed(dt, n, vb, buf), nil
	}
}

func strictFloat(f rowFloat) kernel {
	return func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
		vb := andValidity(mem, n, args...)
		vbits := bitsOf(vb)
		buf, out := allocFloat64(mem, n)
		for i := range out {
			out[i] = 0
			if !validAt(vbits, i) {
				continue
			}
			v, err := f(args, i)
			if err != nil {
				buf.Release()
				if vb != nil {
					vb.Release()
				}
				return nil, err
			}
			out[i] = v
		}
		return makeFixed(tFloat, n, vb, buf), nil
	}
}

func strictBool(f rowBool) kernel {
	return func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error) {
		vb := andValidity(mem, n, args...)
		vbits := bitsOf(vb)
		db, out := allocBits(mem, n)
		for i := 0; i < n; i++ {
			if !validAt(vbits, i) {
				continue
			}
			v, err := f(args, i)
			if err != nil {
				db.Release()
				if vb != nil {
					vb.Release()
				}
				return nil, err
			}
			if v {
				setBit(out, i)
			}
		}
		return makeFixed(tBool, n, vb, db), nil
	}
}

func floatMap(f func(float64) (float64, error)) kernel {
	return strictFloat(func(args []arrow.Array, i int) (float64, error) {
		return f(Float64s(args[0])[i])
	})
}

func sAt(a arrow.Array, i int) string { return stringsOf(a).str(i) }
func iAt(a arrow.Array, i int) int64  { return Int64s(a)[i] }

func needText(fn string, args []node, idx ...int) error {
	for _, i := range idx {
		if i >= len(args) {
			return errArgs(fn, args)
		}
		if args[i].typ().ID() != arrow.STRING && !isNull(args[i].typ()) {
			return errArgs(fn, args)
		}
		if isNull(args[i].typ()) {
			args[i] = &litNode{dt: tText}
		}
	}
	return nil
}

func needInt(fn string, args []node, idx ...int) error {
	for _, i := range idx {
		if i >= len(args) {
			return errArgs(fn, args)
		}
		if isNull(args[i].typ()) {
			args[i] = &litNode{dt: tInt}
		}
		if args[i].typ().ID() == arrow.FLOAT64 {
			args[i] = castNode(args[i], tInt)
		}
		if args[i].typ().ID() != arrow.INT64 {
			return errArgs(fn, args)
		}
	}
	return nil
}

func needFloat(fn string, args []node, idx ...int) error {
	for _, i := range idx {
		if i >= len(args) {
			return errArgs(fn, args)
		}
		if isNull(args[i].typ()) {
			args[i] = &litNode{dt: tFloat}
		}
		if args[i].typ().ID() == arrow.INT64 {
			args[i] = castNode(args[i], tFloat)
		}
		if args[i].typ().ID() != arrow.FLOAT64 {
			return errArgs(fn, args)
		}
	}
	return nil
}

func buildFunction(fn string, args []node, rt arrow.DataType) (node, error) {
	switch fn {
	case "like", "not_like", "ilike", "not_ilike":
		if err := wantArgs(fn, args, 2, 3); err != nil {
			return nil, err
		}
		if err := needText(fn, args, 0, 1); err != nil {
			return nil, err
		}
		return buildLike(fn, args)
	case "regexp", "not_regexp", "regexp_i", "not_regexp_i":
		if err := wantArgs(fn, args, 2, 2); err != nil {
			return nil, err
		}
		if err := needText(fn, args, 0, 1); err != nil {
			return nil, err
		}
		return buildRegexp(fn, args)
	case "substring_regex", "regexp_substr", "regexp_count", "regexp_replace":
		return buildRegexpText(fn, args)
	case "split_part":
		if err := wantArgs(fn, args, 3, 3); err != nil {
			return nil, err
		}
		if err := needText(fn, args, 0, 1); err != nil {
			return nil, err
		}
		if err := needInt(fn, args, 2); err != nil {
			return nil, err
		}
		return newFunc(tText, strictStr(func(a []arrow.Array, i int, dst []byte) ([]byte, error) {
			part, err := splitPart(sAt(a[0], i), sAt(a[1], i), iAt(a[2], i))
			return append(dst, part...), err
		}), true, args...), nil
	case "concat":
		for i, a := range args {
			if isNull(a.typ()) {
				args[i] = &litNode{dt: tText}
			} else if a.typ().ID() != arrow.STRING {
				c, err := buildCast(a, tText)
				if err != nil {
					return nil, err
				}
				args[i] = c
			}
		}
		return newFunc(tText, strictStr(func(a []arrow.Array, i int, dst []byte) ([]byte, error) {
			for _, c := range a {
				dst = append(dst, stringsOf(c).bytes(i)...)
			}
			return dst, nil
		}), false, args...), nil
	case "concat_ignore_nulls", "concat_ws":
		// PostgreSQL's concat() and concat_ws(): NULL arguments are
		// skipped, non-text values print with their output function
		// (true -> "t"); the result is never NULL (concat_ws: NULL when
		// the separator is NULL).
		ws := fn == "concat_ws"
		if ws {
			if len(args) < 1 {
				return nil, errArgs(fn, args)
			}
			if err := needText(fn, args, 0); err != nil {
				return nil, err
			}
		}
		return newFunc(tText, func(mem memory.Allocator, cols []arrow.Array, n int) (arrow.Array, error) {
			vs := make([]validity, len(cols))
			for i, c := range cols {
				vs[i] = validityOf(c)
			}
			sb := newStringBuf(n)
			var tmp []byte
			for r := 0; r < n; r++ {
				tmp = tmp[:0]
				vals := cols
				var sep []byte
				if ws {
					if !vs[0].valid(r) {
						sb.appendNull()
						continue
					}
					sep = stringsOf(cols[0]).bytes(r)
					vals = cols[1:]
				}
				first := true
				for i, c := range vals {
					vi := i
					if ws {
						vi++
					}
					if isNull(c.DataType()) || !vs[vi].valid(r) {
						continue
					}
					if !first {
						tmp = append(tmp, sep...)
					}
					first = false
					tmp = AppendText(tmp, c, r)
				}
				sb.append(tmp)
			}
			return sb.finish(mem), nil
		}, false, args...), nil
	case "lower", "upper", "reverse", "md5":
		if err := wantArgs(fn, args, 1, 1); err != nil {
			return nil, err
		}
		if err := needText(fn, args, 0); err != nil {
			return nil, err
		}
		var f func(string) string
		switch fn {
		case "lower":
			f = strings.ToLower
		case "upper":
			f = strings.ToUpper
		case "reverse":
			f = func(s string) string {
				r := []rune(s)
				for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
					r[i], r[j] = r[j], r[i]
				}
				return string(r)
			}
		case "md5":
			f = func(s string) string {
				h := md5.Sum([]byte(s))
				return hex.EncodeToString(h[:])
			}
		}
		return newFunc(tText, strictStr(func(a []arrow.Array, i int, dst []byte) ([]byte, error) {
			return append(dst, f(sAt(a[0], i))...), nil
		}), false, args...), nil
	case "length", "char_length", "character_length":
		if err := wantArgs(fn, args, 1, 1); err != nil {
			return nil, err
		}
		if err := needText(fn, args, 0); err != nil {
			return nil, err
		}
		return newFunc(tInt, strictInt(tInt, func(a []arrow.Array, i int) (int64, error) {
			return int64(utf8.RuneCount(stringsOf(a[0]).bytes(i))), nil
		}), false, args...), nil
	case "substr", "substring":
		if err := wantArgs(fn, args, 2, 3); err != nil {
			return nil, err
		}
		if err := needText(fn, args, 0); err != nil {
			return nil, err
		}
		idx := []int{1}
		if len(args) == 3 {
			idx = append(idx, 2)
		}
		if err := needInt(fn, args, idx...); err != nil {
			return nil, err
		}
		return newFunc(tText, strictStr(func(a []arrow.Array, i int, dst []byte) ([]byte, error) {
			s := sAt(a[0], i)
			from := iAt(a[1], i)
			end := int64(math.MaxInt64)
			if len(a) == 3 {
				l := iAt(a[2], i)
				if l < 0 {
					return nil, &Error{Code: CodeSubstringError, Message: "negative substring length not allowed"}
				}
				end = from + l
				if end < from {
					end = math.MaxInt64
				}
			}
			if from < 1 {
				from = 1
			}
			return append(dst, runeSlice(s, from-1, end-1)...), nil
		}), true, args...), nil
	case "trim", "ltrim", "rtrim", "btrim":
		if err := wantArgs(fn, args, 1, 2); err != nil {
			return nil, err
		}
		idx := []int{0}
		if len(args) == 2 {
			idx = append(idx, 1)
		}
		if err := needText(fn, args, idx...); err != nil {
			return nil, err
		}
		return newFunc(tText, strictStr(func(a []arrow.Array, i int, dst []byte) ([]byte, error) {
			s := sAt(a[0], i)
			cut := " "
			if len(a) == 2 {
				cut = sAt(a[1], i)
			}
			switch fn {
			case "ltrim":
				s = strings.TrimLeft(s, cut)
			case "rtrim":
				s = strings.TrimRight(s, cut)
			default:
				s = strings.Trim(s, cut)
			}
			return append(dst, s...), nil
		}), false, args...), nil
	case "replace":
		if err := wantArgs(fn, args, 3, 3); err != nil {
			return nil, err
		}
		if err := needText(fn, args, 0, 1, 2); err != nil {
			return nil, err
		}
		return newFunc(tText, strictStr(func(a []arrow.Array, i int, dst []byte) ([]byte, error) {
			s, from := sAt(a[0], i), sAt(a[1], i)
			if from == "" {
				return append(dst, s...), nil
			}
			return append(dst, strings.ReplaceAll(s, from, sAt(a[2], i))...), nil
		}), false, args...), nil
	case "strpos", "position":
		if err := wantArgs(fn, args, 2, 2); err != nil {
			return nil, err
		}
		if err := needText(fn, args, 0, 1); err != nil {
			return nil, err
		}
		return newFunc(tInt, strictInt(tInt, func(a []arrow.Array, i int) (int64, error) {
			s := sAt(a[0], i)
			k := strings.Index(s, sAt(a[1], i))
			if k < 0 {
				return 0, nil
			}
			return int64(utf8.RuneCountInString(s[:k])) + 1, nil
		}), false, args...), nil
	case "left", "right":
		if err := wantArgs(fn, args, 2, 2); err != nil {
			return nil, err
		}
		if err := needText(fn, args, 0); err != nil {
			return nil, err
		}
		if err := needInt(fn, args, 1); err != nil {
			return nil, err
		}
		left := fn == "left"
		return newFunc(tText, strictStr(func(a []arrow.Array, i int, dst []byte) ([]byte, error) {
			s := sAt(a[0], i)
			k := iAt(a[1], i)
			nr := int64(utf8.RuneCountInString(s))
			var from, to int64
			switch {
			case left && k >= 0:
				from, to = 0, k
			case left:
				from, to = 0, nr+k
			case k >= 0:
				from, to = nr-k, nr
			default:
				from, to = -k, nr
			}
			if from < 0 {
				from = 0
			}
			return append(dst, runeSlice(s, from, to)...), nil
		}), false, args...), nil
	case "starts_with":
		if err := wantArgs(fn, args, 2, 2); err != nil {
			return nil, err
		}
		if err := needText(fn, args, 0, 1); err != nil {
			return nil, err
		}
		return newFunc(tBool, strictBool(func(a []arrow.Array, i int) (bool, error) {
			return strings.HasPrefix(sAt(a[0], i), sAt(a[1], i)), nil
		}), false, args...), nil
	case "repeat":
		if err := wantArgs(fn, args, 2, 2); err != nil {
			return nil, err
		}
		if err := needText(fn, args, 0); err != nil {
			return nil, err
		}
		if err := needInt(fn, args, 1); err != nil {
			return nil, err
		}
		return newFunc(tText, strictStr(func(a []arrow.Array, i int, dst []byte) ([]byte, error) {
			s, k := sAt(a[0], i), iAt(a[1], i)
			if k <= 0 || s == "" {
				return dst, nil
			}
			if int64(len(s))*k > 1<<30 {
				return nil, &Error{Code: "54000", Message: "requested length too large"}
			}
			for j := int64(0); j < k; j++ {
				dst = append(dst, s...)
			}
			return dst, nil
		}), true, args...), nil
	case "int4_range":
		// An INT result: PostgreSQL's int4 arithmetic and casts fail past
		// 32 bits, where the int64 it is kept in would go on. The column
		// passes through unchanged when every value fits.
		if err := wantArgs(fn, args, 1, 1); err != nil {
			return nil, err
		}
		if !isInt(args[0].typ()) {
			return nil, errArgs(fn, args)
		}
		return newFunc(tInt, func(_ memory.Allocator, a []arrow.Array, _ int) (arrow.Array, error) {
			col := a[0].(*array.Int64)
			for i, v := range col.Int64Values() {
				if (v < math.MinInt32 || v > math.MaxInt32) && col.IsValid(i) {
					return nil, &Error{Code: CodeNumericOutOfRange, Message: "integer out of range"}
				}
			}
			col.Retain()
			return col, nil
		}, true, args...), nil
	case "abs":
		if err := wantArgs(fn, args, 1, 1); err != nil {
			return nil, err
		}
		switch physOf(args[0].typ()) {
		case physInt64:
			dt := args[0].typ()
			return newFunc(dt, strictInt(dt, func(a []arrow.Array, i int) (int64, error) {
				v := iAt(a[0], i)
				if v == math.MinInt64 {
					return 0, errBigintRange()
				}
				if v < 0 {
					return -v, nil
				}
				return v, nil
			}), true, args...), nil
		case physFloat64:
			return newFunc(tFloat, floatMap(func(x float64) (float64, error) { return math.Abs(x), nil }), false, args...), nil
		}
		return nil, errArgs(fn, args)
	case "sign":
		if err := wantArgs(fn, args, 1, 1); err != nil {
			return nil, err
		}
		if isInt(args[0].typ()) {
			return newFunc(tInt, strictInt(tInt, func(a []arrow.Array, i int) (int64, error) {
				v := iAt(a[0], i)
				switch {
				case v > 0:
					return 1, nil
				case v < 0:
					return -1, nil
				}
				return 0, nil
			}), false, args...), nil
		}
		if err := needFloat(fn, args, 0); err != nil {
			return nil, err
		}
		return newFunc(tFloat, floatMap(func(x float64) (float64, error) {
			switch {
			case x > 0:
				return 1, nil
			case x < 0:
				return -1, nil
			}
			return 0, nil
		}), false, args...), nil
	case "round":
		if err := wantArgs(fn, args, 1, 2); err != nil {
			return nil, err
		}
		if len(args) == 1 && isInt(args[0].typ()) {
			return args[0], nil
		}
		if err := needFloat(fn, args, 0); err != nil {
			return nil, err
		}
		if len(args) == 1 {
			return newFunc(tFloat, floatMap(func(x float64) (float64, error) { return math.Round(x), nil }), false, args...), nil
		}
		if err := needInt(fn, args, 1); err != nil {
			return nil, err
		}
		return newFunc(tFloat, strictFloat(func(a []arrow.Array, i int) (float64, error) {
			x, d := Float64s(a[0])[i], iAt(a[1], i)
			if d > 300 || d < -300 {
				if d > 0 {
					return x, nil
				}
				return 0, nil
			}
			p := math.Pow(10, float64(d))
			r := math.Round(x*p) / p
			if math.IsInf(r, 0) || math.IsNaN(r) {
				return x, nil
			}
			return r, nil
		}), false, args...), nil
	case "floor", "ceil", "ceiling", "trunc":
		if err := wantArgs(fn, args, 1, 1); err != nil {
			return nil, err
		}
		if isInt(args[0].typ()) {
			return args[0], nil
		}
		if err := needFloat(fn, args, 0); err != nil {
			return nil, err
		}
		f := math.Floor
		switch fn {
		case "ceil", "ceiling":
			f = math.Ceil
		case "trunc":
			f = math.Trunc
		}
		return newFunc(tFloat, floatMap(func(x float64) (float64, error) { return f(x), nil }), false, args...), nil
	case "sqrt", "ln", "log10", "log", "exp", "cbrt":
		if err := wantArgs(fn, args, 1, 1); err != nil {
			return nil, err
		}
		if err := needFloat(fn, args, 0); err != nil {
			return nil, err
		}
		var f func(float64) (float64, error)
		switch fn {
		case "sqrt":
			f = func(x float64) (float64, error) {
				if x < 0 {
					return 0, &Error{Code: CodePowerArgument, Message: "cannot take square root of a negative number"}
				}
				return math.Sqrt(x), nil
			}
		case "cbrt":
			f = func(x float64) (float64, error) { return math.Cbrt(x), nil }
		case "ln", "log10", "log":
			lg := math.Log
			if fn != "ln" {
				lg = math.Log10
			}
			f = func(x float64) (float64, error) {
				if x == 0 {
					return 0, &Error{Code: CodeLogArgument, Message: "cannot take logarithm of zero"}
				}
				if x < 0 {
					return 0, &Error{Code: CodeLogArgument, Message: "cannot take logarithm of a negative number"}
				}
				return lg(x), nil
			}
		case "exp":
			f = func(x float64) (float64, error) {
				r := math.Exp(x)
				if math.IsInf(r, 0) && !math.IsInf(x, 0) {
					return 0, errFloatOverflow()
				}
				return r, nil
			}
		}
		return newFunc(tFloat, floatMap(f), true, args...), nil
	case "power", "pow":
		if err := wantArgs(fn, args, 2, 2); err != nil {
			return nil, err
		}
		if err := needFloat(fn, args, 0, 1); err != nil {
			return nil, err
		}
		return newFunc(tFloat, strictFloat(func(a []arrow.Array, i int) (float64, error) {
			x, y := Float64s(a[0])[i], Float64s(a[1])[i]
			if x == 0 && y < 0 {
				return 0, &Error{Code: CodePowerArgument, Message: "zero raised to a negative power is undefined"}
			}
			if x < 0 && y != math.Trunc(y) {
				return 0, &Error{Code: CodePowerArgument, Message: "a negative number raised to a non-integer power yields a complex result"}
			}
			r := math.Pow(x, y)
			if math.IsInf(r, 0) && !math.IsInf(x, 0) && !math.IsInf(y, 0) {
				return 0, errFloatOverflow()
			}
			return r, nil
		}), true, args...), nil
	case "date_trunc":
		if err := wantArgs(fn, args, 2, 2); err != nil {
			return nil, err
		}
		if err := needText(fn, args, 0); err != nil {
			return nil, err
		}
		if !isTS(args[1].typ()) {
			return nil, errArgs(fn, args)
		}
		dt := args[1].typ()
		if v, ok := isLiteral(args[0]); ok && v != nil {
			if _, err := truncTS(v.(string), 0); err != nil {
				return nil, err
			}
		}
		return newFunc(dt, strictInt(dt, func(a []arrow.Array, i int) (int64, error) {
			return truncTS(sAt(a[0], i), iAt(a[1], i))
		}), true, args...), nil
	case "to_char":
		if err := wantArgs(fn, args, 2, 2); err != nil {
			return nil, err
		}
		if !isTS(args[0].typ()) {
			return nil, errArgs(fn, args)
		}
		if err := needText(fn, args, 1); err != nil {
			return nil, err
		}
		if v, ok := isLiteral(args[1]); ok && v != nil {
			items := parseCharFormat(v.(string))
			return newFunc(tText, strictStr(func(a []arrow.Array, i int, dst []byte) ([]byte, error) {
				return appendToChar(dst, items, iAt(a[0], i)), nil
			}), true, args...), nil
		}
		cache := &patternCache[[]charItem]{m: map[string][]charItem{}, compile: func(f string) ([]charItem, error) {
			return parseCharFormat(f), nil
		}}
		return newFunc(tText, strictStr(func(a []arrow.Array, i int, dst []byte) ([]byte, error) {
			items, _ := cache.get(sAt(a[1], i))
			return appendToChar(dst, items, iAt(a[0], i)), nil
		}), true, args...), nil
	case "date_part", "extract":
		if err := wantArgs(fn, args, 2, 2); err != nil {
			return nil, err
		}
		if err := needText(fn, args, 0); err != nil {
			return nil, err
		}
		intv := isIntv(args[1].typ())
		if !intv && !isTS(args[1].typ()) {
			return nil, errArgs(fn, args)
		}
		if v, ok := isLiteral(args[0]); ok && v != nil {
			if _, err := datePart(v.(string), 0, intv); err != nil {
				return nil, err
			}
		}
		return newFunc(tFloat, strictFloat(func(a []arrow.Array, i int) (float64, error) {
			return datePart(sAt(a[0], i), iAt(a[1], i), intv)
		}), true, args...), nil
	case "to_timestamp":
		if err := wantArgs(fn, args, 1, 1); err != nil {
			return nil, err
		}
		if err := needFloat(fn, args, 0); err != nil {
			return nil, err
		}
		return newFunc(tTS, strictInt(tTS, func(a []arrow.Array, i int) (int64, error) {
			x := Float64s(a[0])[i] * 1e6
			if math.IsNaN(x) || x >= 9.2e18 || x <= -9.2e18 {
				return 0, errTimestampRange()
			}
			return int64(math.Round(x)), nil
		}), true, args...), nil
	case "epoch_us":
		if err := wantArgs(fn, args, 1, 1); err != nil {
			return nil, err
		}
		if physOf(args[0].typ()) != physInt64 {
			return nil, errArgs(fn, args)
		}
		return buildCast(args[0], tInt)
	}
	return nil, &Error{Code: CodeUndefinedFunction, Message: fmt.Sprintf("function %s does not exist", fn)}
}

// runeSlice returns the characters [from, to) of s (clamped).
func runeSlice(s string, from, to int64) string {
	if to <= from {
		return ""
	}
	var i int64
	start, end := len(s), len(s)
	for bi := range s {
		if i == from {
			start = bi
		}
		if i == to {
			end = bi
			break
		}
		i++
	}
	if start > end {
		return ""
	}
	return s[start:end]
}

// ---- time ----

func civil(us int64) (t time.Time, frac int64) {
	secs := us / usPerSecond
	frac = us % usPerSecond
	if frac < 0 {
		frac += usPerSecond
		secs--
	}
	return time.Unix(secs, 0).UTC(), frac
}

func fromCivil(t time.Time) int64 { return t.Unix() * usPerSecond }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// truncTS implements date_trunc(unit, timestamp).
func truncTS(unit string, us int64) (int64, error) {
	switch strings.ToLower(unit) {
	case "microsecond", "microseconds":
		return us, nil
	case "millisecond", "milliseconds":
		return floorDiv(us, usPerMs) * usPerMs, nil
	case "second", "seconds":
		return floorDiv(us, usPerSecond) * usPerSecond, nil
	case "minute", "minutes":
		return floorDiv(us, usPerMinute) * usPerMinute, nil
	case "hour", "hours":
		return floorDiv(us, usPerHour) * usPerHour, nil
	case "day", "days":
		return floorDiv(us, usPerDay) * usPerDay, nil
	case "week", "weeks":
		d := floorDiv(us, usPerDay)
		// 1970-01-01 was a Thursday; weeks start on Monday.
		dow := ((d+3)%7 + 7) % 7 // 0 = Monday
		return (d - dow) * usPerDay, nil
	}
	t, _ := civil(us)
	y, m, _ := t.Date()
	switch strings.ToLower(unit) {
	case "month", "months":
		return fromCivil(time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)), nil
	case "quarter":
		q := (int(m)-1)/3*3 + 1
		return fromCivil(time.Date(y, time.Month(q), 1, 0, 0, 0, 0, time.UTC)), nil
	case "year", "years":
		return fromCivil(time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)), nil
	case "decade":
		return fromCivil(time.Date(int(floorDiv(int64(y), 10)*10), 1, 1, 0, 0, 0, 0, time.UTC)), nil
	case "century":
		c := int(floorDiv(int64(y)-1, 100)*100 + 1)
		return fromCivil(time.Date(c, 1, 1, 0, 0, 0, 0, time.UTC)), nil
	case "millennium":
		c := int(floorDiv(int64(y)-1, 1000)*1000 + 1)
		return fromCivil(time.Date(c, 1, 1, 0, 0, 0, 0, time.UTC)), nil
	}
	return 0, &Error{Code: CodeInvalidParameter, Message: fmt.Sprintf("unit \"%s\" not recognized for type timestamp without time zone", unit)}
}

// datePart implements date_part / EXTRACT for timestamps and intervals.
func datePart(field string, us int64, interval bool) (float64, error) {
	f := strings.ToLower(field)
	if interval {
		days := us / usPerDay
		rem := us % usPerDay
		switch f {
		case "epoch":
			return float64(us) / 1e6, nil
		case "day", "days":
			return float64(days), nil
		case "hour", "hours":
			return float64(rem / usPerHour), nil
		case "minute", "minutes":
			return float64(rem % usPerHour / usPerMinute), nil
		case "second", "seconds":
			return float64(rem%usPerMinute) / 1e6, nil
		case "millisecond", "milliseconds":
			return float64(rem%usPerMinute) / 1e3, nil
		case "microsecond", "microseconds":
			return float64(rem % usPerMinute), nil
		case "month", "months", "year", "years", "quarter", "decade", "century", "millennium":
			return 0, nil
		}
		return 0, &Error{Code: CodeInvalidParameter, Message: fmt.Sprintf("unit \"%s\" not recognized for type interval", field)}
	}
	t, frac := civil(us)
	switch f {
	case "epoch":
		return float64(us) / 1e6, nil
	case "year", "years":
		return float64(t.Year()), nil
	case "month", "months":
		return float64(t.Month()), nil
	case "day", "days":
		return float64(t.Day()), nil
	case "hour", "hours":
		return float64(t.Hour()), nil
	case "minute", "minutes":
		return float64(t.Minute()), nil
	case "second", "seconds":
		return float64(t.Second()) + float64(frac)/1e6, nil
	case "millisecond", "milliseconds":
		return float64(t.Second())*1e3 + float64(frac)/1e3, nil
	case "microsecond", "microseconds":
		return float64(int64(t.Second())*usPerSecond + frac), nil
	case "dow":
		return float64(t.Weekday()), nil
	case "isodow":
		w := t.Weekday()
		if w == 0 {
			return 7, nil
		}
		return float64(w), nil
	case "doy":
		return float64(t.YearDay()), nil
	case "week":
		_, w := t.ISOWeek()
		return float64(w), nil
	case "isoyear":
		y, _ := t.ISOWeek()
		return float64(y), nil
	case "quarter":
		return float64((int(t.Month())-1)/3 + 1), nil
	case "decade":
		return float64(floorDiv(int64(t.Year()), 10)), nil
	case "century":
		y := int64(t.Year())
		if y > 0 {
			return float64((y + 99) / 100), nil
		}
		return float64(-((99 - (y - 1)) / 100)), nil
	case "millennium":
		y := int64(t.Year())
		if y > 0 {
			return float64((y + 999) / 1000), nil
		}
		return float64(-((999 - (y - 1)) / 1000)), nil
	}
	return 0, &Error{Code: CodeInvalidParameter, Message: fmt.Sprintf("unit \"%s\" not recognized for type timestamp without time zone", field)}
}

// ---- patterns ----

type likeTok struct {
	kind byte // 'l' literal, '_' one char, '%' any
	lit  string
}

// compileLike turns a LIKE pattern (escape character esc, 0 = none) into
// tokens.
func compileLike(p string, esc rune) ([]likeTok, error) {
	var toks []likeTok
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			toks = append(toks, likeTok{kind: 'l', lit: string(lit)})
			lit = lit[:0]
		}
	}
	rs := []rune(p)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case esc != 0 && r == esc:
			if i+1 >= len(rs) {
				return nil, &Error{Code: "22025", Message: "LIKE pattern must not end with escape character"}
			}
			i++
			lit = utf8.AppendRune(lit, rs[i])
		case r == '%':
			flush()
			if len(toks) == 0 || toks[len(toks)-1].kind != '%' {
				toks = append(toks, likeTok{kind: '%'})
			}
		case r == '_':
			flush()
			toks = append(toks, likeTok{kind: '_'})
		default:
			lit = utf8.AppendRune(lit, r)
		}
	}
	flush()
	return toks, nil
}

// likeMatch matches s against tokens starting at token ti.
func likeMatch(s string, toks []likeTok) bool {
	for ti := 0; ti < len(toks); ti++ {
		t := toks[ti]
		switch t.kind {
		case 'l':
			if !strings.HasPrefix(s, t.lit) {
				return false
			}
			s = s[len(t.lit):]
		case '_':
			if s == "" {
				return false
			}
			_, sz := utf8.DecodeRuneInString(s)
			s = s[sz:]
		case '%':
			rest := toks[ti+1:]
			if len(rest) == 0 {
				return true
			}
			if rest[0].kind == 'l' {
				// jump to each occurrence of the next literal
				for {
					k := strings.Index(s, rest[0].lit)
					if k < 0 {
						return false
					}
					if likeMatch(s[k:], rest) {
						return true
					}
					_, sz := utf8.DecodeRuneInString(s[k:])
					s = s[k+sz:]
				}
			}
			for {
				if likeMatch(s, rest) {
					return true
				}
				if s == "" {
					return false
				}
				_, sz := utf8.DecodeRuneInString(s)
				s = s[sz:]
			}
		}
	}
	return s == ""
}

type likeMatcher func(s string) bool

func newLikeMatcher(p string, fold bool, esc rune) (likeMatcher, error) {
	if fold {
		p = strings.ToLower(p)
	}
	toks, err := compileLike(p, esc)
	if err != nil {
		return nil, err
	}
	if fold {
		return func(s string) bool { return likeMatch(strings.ToLower(s), toks) }, nil
	}
	switch {
	case len(toks) == 0:
		return func(s string) bool { return s == "" }, nil
	case len(toks) == 1 && toks[0].kind == 'l':
		lit := toks[0].lit
		return func(s string) bool { return s == lit }, nil
	case len(toks) == 2 && toks[0].kind == 'l' && toks[1].kind == '%':
		lit := toks[0].lit
		return func(s string) bool { return strings.HasPrefix(s, lit) }, nil
	case len(toks) == 2 && toks[0].kind == '%' && toks[1].kind == 'l':
		lit := toks[1].lit
		return func(s string) bool { return strings.HasSuffix(s, lit) }, nil
	case len(toks) == 3 && toks[0].kind == '%' && toks[1].kind == 'l' && toks[2].kind == '%':
		lit := toks[1].lit
		return func(s string) bool { return strings.Contains(s, lit) }, nil
	}
	return func(s string) bool { return likeMatch(s, toks) }, nil
}

// patternCache compiles per-row patterns with a bounded cache.
type patternCache[T any] struct {
	m       map[string]T
	compile func(string) (T, error)
}

func (c *patternCache[T]) get(p string) (T, error) {
	if v, ok := c.m[p]; ok {
		return v, nil
	}
	v, err := c.compile(p)
	if err != nil {
		return v, err
	}
	if len(c.m) > 256 {
		clear(c.m)
	}
	c.m[p] = v
	return v, nil
}

func buildLike(fn string, args []node) (node, error) {
	fold := fn == "ilike" || fn == "not_ilike"
	neg := strings.HasPrefix(fn, "not_")
	esc := '\\'
	if len(args) == 3 {
		v, ok := isLiteral(args[2])
		if !ok {
			return nil, &Error{Code: CodeFeatureNotSupported, Message: "LIKE ESCAPE must be a constant"}
		}
		s, _ := v.(string)
		switch utf8.RuneCountInString(s) {
		case 0:
			esc = 0
		case 1:
			esc, _ = utf8.DecodeRuneInString(s)
		default:
			return nil, &Error{Code: "22019", Message: "invalid escape string"}
		}
		args = args[:2]
	}
	cache := &patternCache[likeMatcher]{m: map[string]likeMatcher{}, compile: func(p string) (likeMatcher, error) {
		return newLikeMatcher(p, fold, esc)
	}}
	if v, ok := isLiteral(args[1]); ok && v != nil {
		m, err := newLikeMatcher(v.(string), fold, esc)
		if err != nil {
			return nil, err
		}
		return newFunc(tBool, strictBool(func(a []arrow.Array, i int) (bool, error) {
			return m(sAt(a[0], i)) != neg, nil
		}), false, args...), nil
	}
	return newFunc(tBool, strictBool(func(a []arrow.Array, i int) (bool, error) {
		m, err := cache.get(sAt(a[1], i))
		if err != nil {
			return false, err
		}
		return m(sAt(a[0], i)) != neg, nil
	}), true, args...), nil
}

func compileRegexp(p string, fold bool) (*regexp.Regexp, error) {
	if fold {
		p = "(?i)" + p
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, &Error{Code: CodeInvalidRegex, Message: fmt.Sprintf("invalid regular expression: %v", err), Err: err}
	}
	return re, nil
}

func buildRegexp(fn string, args []node) (node, error) {
	fold := strings.HasSuffix(fn, "_i")
	neg := strings.HasPrefix(fn, "not_")
	if v, ok := isLiteral(args[1]); ok && v != nil {
		re, err := compileRegexp(v.(string), fold)
		if err != nil {
			return nil, err
		}
		return newFunc(tBool, strictBool(func(a []arrow.Array, i int) (bool, error) {
			return re.Match(stringsOf(a[0]).bytes(i)) != neg, nil
		}), false, args...), nil
	}
	cache := &patternCache[*regexp.Regexp]{m: map[string]*regexp.Regexp{}, compile: func(p string) (*regexp.Regexp, error) {
		return compileRegexp(p, fold)
	}}
	return newFunc(tBool, strictBool(func(a []arrow.Array, i int) (bool, error) {
		re, err := cache.get(sAt(a[1], i))
		if err != nil {
			return false, err
		}
		return re.Match(stringsOf(a[0]).bytes(i)) != neg, nil
	}), true, args...), nil
}

var _ = array.NewBoolean
