package pgcatalog

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spatedb/spate/planner"
)

// Values are plain Go values: nil (NULL), bool, int64, float64, string and
// []any (an array). OIDs are int64. Catalog tables are small, so a row is a
// []any and queries run row at a time.

// Error is an error with a SQLSTATE.
type Error struct {
	Code string
	Msg  string
}

func (e *Error) Error() string    { return e.Msg }
func (e *Error) SQLState() string { return e.Code }

func errorf(code, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// SQLSTATEs used here.
const (
	codeUndefinedColumn   = "42703"
	codeUndefinedTable    = "42P01"
	codeUndefinedFunction = "42883"
	codeAmbiguousColumn   = "42702"
	codeGrouping          = "42803"
	codeNotSupported      = "0A000"
	codeInvalidText       = "22P02"
	codeDivisionByZero    = "22012"
	codeCardinality       = "21000"
	codeSyntax            = "42601"
	codeUndefinedObject   = "42704"
)

// truth is a value as a condition: only true is true.
func truth(v any) bool {
	b, ok := v.(bool)
	return ok && b
}

// compare orders two non-NULL values; ok is false when they cannot be
// compared. A string compared with a number is read as the number (a
// quoted literal such as '16384' against an OID column).
func compare(a, b any) (int, bool) {
	if r, ok := a.(regValue); ok {
		if _, str := b.(string); !str {
			return compare(r.oid, regOID(b))
		}
		return strings.Compare(r.name, b.(string)), true
	}
	if r, ok := b.(regValue); ok {
		c, ok := compare(r, a)
		return -c, ok
	}
	if v, ok := a.(vector); ok {
		a = []any(v)
	}
	if v, ok := b.(vector); ok {
		b = []any(v)
	}
	switch x := a.(type) {
	case int64:
		switch y := b.(type) {
		case int64:
			return cmpOrdered(x, y), true
		case float64:
			return cmpOrdered(float64(x), y), true
		case string:
			if n, err := strconv.ParseInt(strings.TrimSpace(y), 10, 64); err == nil {
				return cmpOrdered(x, n), true
			}
			if f, err := strconv.ParseFloat(strings.TrimSpace(y), 64); err == nil {
				return cmpOrdered(float64(x), f), true
			}
			return 0, false
		case bool:
			return 0, false
		}
	case float64:
		switch y := b.(type) {
		case int64:
			return cmpOrdered(x, float64(y)), true
		case float64:
			return cmpOrdered(x, y), true
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(y), 64); err == nil {
				return cmpOrdered(x, f), true
			}
			return 0, false
		}
	case string:
		switch y := b.(type) {
		case string:
			return strings.Compare(x, y), true
		case int64, float64:
			c, ok := compare(b, a)
			return -c, ok
		case bool:
			if v, ok := parseBool(x); ok {
				return compare(v, y)
			}
		}
	case bool:
		switch y := b.(type) {
		case bool:
			xi, yi := 0, 0
			if x {
				xi = 1
			}
			if y {
				yi = 1
			}
			return xi - yi, true
		case string:
			if v, ok := parseBool(y); ok {
				return compare(x, v)
			}
		}
	case []any:
		y, ok := b.([]any)
		if !ok {
			return 0, false
		}
		for i := 0; i < len(x) && i < len(y); i++ {
			if x[i] == nil || y[i] == nil {
				continue
			}
			if c, ok := compare(x[i], y[i]); !ok || c != 0 {
				return c, ok
			}
		}
		return len(x) - len(y), true
	}
	return 0, false
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "t", "true", "y", "yes", "on", "1":
		return true, true
	case "f", "false", "n", "no", "off", "0":
		return false, true
	}
	return false, false
}

// sortLess orders values for ORDER BY: NULLs last ascending (first
// descending, as PostgreSQL), numbers before strings when mixed.
func sortCompare(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	if c, ok := compare(a, b); ok {
		return c
	}
	return strings.Compare(text(a), text(b))
}

// text renders a value as PostgreSQL's text output.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		if math.IsInf(x, 1) {
			return "Infinity"
		}
		if math.IsInf(x, -1) {
			return "-Infinity"
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		if x {
			return "t"
		}
		return "f"
	case []any:
		return arrayText(x)
	case vector:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = text(e)
		}
		return strings.Join(parts, " ")
	case regValue:
		return x.name
	case record:
		parts := make([]string, len(x.vals))
		for i, e := range x.vals {
			parts[i] = text(e)
		}
		return "(" + strings.Join(parts, ",") + ")"
	}
	return fmt.Sprint(v)
}

// arrayText is PostgreSQL's text form of a one-dimensional array.
func arrayText(a []any) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, e := range a {
		if i > 0 {
			sb.WriteByte(',')
		}
		if e == nil {
			sb.WriteString("NULL")
			continue
		}
		s := text(e)
		if _, str := e.(string); str && (s == "" || strings.ContainsAny(s, `{},"\ `) || strings.EqualFold(s, "null")) {
			sb.WriteByte('"')
			sb.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s))
			sb.WriteByte('"')
			continue
		}
		sb.WriteString(s)
	}
	sb.WriteByte('}')
	return sb.String()
}

// parseArray reads PostgreSQL's text form of a one-dimensional array
// ('{a,b}') into strings.
func parseArray(s string) ([]any, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, errorf(codeInvalidText, "malformed array literal: %q", s)
	}
	body := s[1 : len(s)-1]
	var out []any
	if strings.TrimSpace(body) == "" {
		return []any{}, nil
	}
	var cur strings.Builder
	quoted, inQuote, esc := false, false, false
	flush := func() {
		v := cur.String()
		if !quoted {
			v = strings.TrimSpace(v)
			if strings.EqualFold(v, "null") {
				out = append(out, nil)
				cur.Reset()
				return
			}
		}
		out = append(out, v)
		cur.Reset()
		quoted = false
	}
	for _, r := range body {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\':
			esc = true
		case r == '"':
			inQuote = !inQuote
			quoted = true
		case r == ',' && !inQuote:
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return out, nil
}

// toInt reads v as an integer.
func toInt(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case float64:
		return int64(math.Round(x)), nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return 0, errorf(codeInvalidText, "invalid input syntax for type integer: %q", x)
		}
		return n, nil
	}
	return 0, errorf(codeInvalidText, "cannot read %s as an integer", text(v))
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case int64:
		return float64(x), nil
	case float64:
		return x, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, errorf(codeInvalidText, "invalid input syntax for type double precision: %q", x)
		}
		return f, nil
	}
	return 0, errorf(codeInvalidText, "cannot read %s as a number", text(v))
}

// valueType is the result type of a value when nothing static says more.
func valueType(v any) planner.Type {
	switch v.(type) {
	case bool:
		return planner.TypeBool
	case int64:
		return planner.TypeBigInt
	case float64:
		return planner.TypeDouble
	}
	return planner.TypeText
}

// outputValue converts v to what a result column of type t holds.
func outputValue(v any, t planner.Type) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch t {
	case planner.TypeBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			if b, ok := parseBool(x); ok {
				return b, nil
			}
		}
		return nil, errorf(codeInvalidText, "invalid input syntax for type boolean: %q", text(v))
	case planner.TypeInt, planner.TypeBigInt:
		return toInt(regOID(v))
	case planner.TypeDouble:
		return toFloat(v)
	}
	return text(v), nil
}
