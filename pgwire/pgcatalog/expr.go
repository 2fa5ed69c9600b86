package pgcatalog

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	driver "github.com/pingcap/tidb/pkg/parser/test_driver"
)

// regValue is a value of regclass, regtype or regnamespace: an OID that
// prints as a name.
type regValue struct {
	oid  int64
	name string
}

// record is a composite value (the rows of _pg_expandarray).
type record struct {
	names []string
	vals  []any
}

func literalString(x ast.ExprNode) (string, bool) {
	v, ok := x.(*driver.ValueExpr)
	if !ok || (v.Kind() != driver.KindString && v.Kind() != driver.KindBytes) {
		return "", false
	}
	return v.GetString(), true
}

func literalValue(v *driver.ValueExpr) (any, error) {
	switch v.Kind() {
	case driver.KindNull:
		return nil, nil
	case driver.KindInt64:
		return v.GetInt64(), nil
	case driver.KindUint64:
		return float64(v.GetUint64()), nil
	case driver.KindFloat32, driver.KindFloat64:
		return v.GetFloat64(), nil
	case driver.KindMysqlDecimal:
		return strconv.ParseFloat(v.GetMysqlDecimal().String(), 64)
	case driver.KindString, driver.KindBytes:
		return v.GetString(), nil
	}
	return nil, errorf(codeNotSupported, "literal of kind %d is not supported", v.Kind())
}

// nodeText renders a node back to SQL (to compare two calls).
func nodeText(n ast.Node) string {
	var sb strings.Builder
	_ = n.Restore(format.NewRestoreCtx(format.DefaultRestoreFlags, &sb))
	return sb.String()
}

// eval evaluates an expression.
func (e *engine) eval(x ast.ExprNode, en *env) (any, error) {
	switch x := x.(type) {
	case *driver.ValueExpr:
		return literalValue(x)
	case *driver.ParamMarkerExpr:
		return e.param(x.Order + 1)
	case *ast.ColumnNameExpr:
		at, i, err := en.column(x.Name.Table.O, x.Name.Name.O)
		if err != nil {
			if f, ok := valueFunction(x); ok {
				return f.fn(e, nil)
			}
			return nil, err
		}
		if at.row == nil {
			return nil, nil
		}
		return at.row[i], nil
	case *ast.ParenthesesExpr:
		return e.eval(x.Expr, en)
	case *ast.UnaryOperationExpr:
		v, err := e.eval(x.V, en)
		if err != nil || v == nil {
			return nil, err
		}
		switch x.Op {
		case opcode.Not, opcode.Not2:
			b, err := toBool(v)
			return !b, err
		case opcode.Minus:
			switch n := v.(type) {
			case int64:
				return -n, nil
			case float64:
				return -n, nil
			}
			f, err := toFloat(v)
			return -f, err
		case opcode.Plus:
			return v, nil
		}
		return nil, errorf(codeNotSupported, "operator %s is not supported in catalog queries", x.Op)
	case *ast.BinaryOperationExpr:
		return e.binary(x, en)
	case *ast.IsNullExpr:
		v, err := e.eval(x.Expr, en)
		if err != nil {
			return nil, err
		}
		return (v == nil) != x.Not, nil
	case *ast.IsTruthExpr:
		v, err := e.eval(x.Expr, en)
		if err != nil {
			return nil, err
		}
		is := false
		if v != nil {
			b, err := toBool(v)
			if err != nil {
				return nil, err
			}
			is = b == (x.True != 0)
		}
		return is != x.Not, nil
	case *ast.PatternInExpr:
		return e.in(x, en)
	case *ast.PatternLikeOrIlikeExpr:
		v, err := e.eval(x.Expr, en)
		if err != nil || v == nil {
			return nil, err
		}
		p, err := e.eval(x.Pattern, en)
		if err != nil || p == nil {
			return nil, err
		}
		re, err := likeRegexp(text(p), !x.IsLike, x.Escape)
		if err != nil {
			return nil, err
		}
		return re.MatchString(text(v)) != x.Not, nil
	case *ast.PatternRegexpExpr:
		v, err := e.eval(x.Expr, en)
		if err != nil || v == nil {
			return nil, err
		}
		p, err := e.eval(x.Pattern, en)
		if err != nil || p == nil {
			return nil, err
		}
		re, err := compileRegexp(text(p), false)
		if err != nil {
			return nil, err
		}
		return re.MatchString(text(v)) != x.Not, nil
	case *ast.BetweenExpr:
		v, err := e.eval(x.Expr, en)
		if err != nil {
			return nil, err
		}
		lo, err := e.eval(x.Left, en)
		if err != nil {
			return nil, err
		}
		hi, err := e.eval(x.Right, en)
		if err != nil {
			return nil, err
		}
		if v == nil || lo == nil || hi == nil {
			return nil, nil
		}
		a, ok1 := compare(v, lo)
		b, ok2 := compare(v, hi)
		if !ok1 || !ok2 {
			return nil, errorf(codeInvalidText, "cannot compare %s", text(v))
		}
		return (a >= 0 && b <= 0) != x.Not, nil
	case *ast.CaseExpr:
		var operand any
		if x.Value != nil {
			v, err := e.eval(x.Value, en)
			if err != nil {
				return nil, err
			}
			operand = v
		}
		for _, w := range x.WhenClauses {
			c, err := e.eval(w.Expr, en)
			if err != nil {
				return nil, err
			}
			hit := false
			if x.Value != nil {
				if operand != nil && c != nil {
					r, ok := compare(operand, c)
					hit = ok && r == 0
				}
			} else {
				hit = truth(c)
			}
			if hit {
				return e.eval(w.Result, en)
			}
		}
		if x.ElseClause != nil {
			return e.eval(x.ElseClause, en)
		}
		return nil, nil
	case *ast.FuncCallExpr:
		return e.call(x, en)
	case *ast.AggregateFuncExpr:
		if en.group == nil {
			return nil, errorf(codeGrouping, "aggregate functions are not allowed here")
		}
		return e.aggregate(x, en)
	case *ast.WindowFuncExpr:
		vals, ok := en.windows[x]
		if !ok || en.rowIdx >= len(vals) {
			return nil, errorf(codeNotSupported, "window functions are supported only in the select list of catalog queries")
		}
		return vals[en.rowIdx], nil
	case *ast.SubqueryExpr:
		rs, err := e.run(x.Query, en)
		if err != nil {
			return nil, err
		}
		if len(rs.cols) != 1 {
			return nil, errorf(codeSyntax, "subquery must return only one column")
		}
		switch len(rs.rows) {
		case 0:
			return nil, nil
		case 1:
			return rs.rows[0][0], nil
		}
		return nil, errorf(codeCardinality, "more than one row returned by a subquery used as an expression")
	case *ast.ExistsSubqueryExpr:
		sub, ok := x.Sel.(*ast.SubqueryExpr)
		if !ok {
			return nil, errorf(codeNotSupported, "EXISTS needs a subquery")
		}
		rs, err := e.run(sub.Query, en)
		if err != nil {
			return nil, err
		}
		return (len(rs.rows) > 0) != x.Not, nil
	case *ast.CompareSubqueryExpr:
		l, err := e.eval(x.L, en)
		if err != nil {
			return nil, err
		}
		sub, ok := x.R.(*ast.SubqueryExpr)
		if !ok {
			return nil, errorf(codeNotSupported, "ANY/ALL needs a subquery or an array")
		}
		rs, err := e.run(sub.Query, en)
		if err != nil {
			return nil, err
		}
		list := make([]any, len(rs.rows))
		for i, r := range rs.rows {
			list[i] = r[0]
		}
		return quantified(x.Op, l, list, x.All)
	}
	return nil, errorf(codeNotSupported, "%s is not supported in catalog queries", strings.TrimPrefix(fmt.Sprintf("%T", x), "*ast."))
}

// valueFunction is the function a bare name such as user or
// current_schema stands for when no column has that name (PostgreSQL's
// SQL value functions).
func valueFunction(x *ast.ColumnNameExpr) (function, bool) {
	if x.Name.Table.O != "" {
		return function{}, false
	}
	switch n := x.Name.Name.O; n {
	case "user", "current_user", "session_user", "current_role", "current_schema", "current_catalog":
		if n == "user" {
			n = "current_user"
		}
		return functions[n], true
	}
	return function{}, false
}

func (e *engine) param(n int) (any, error) {
	if n < 1 || n > len(e.params) {
		return nil, errorf("08P01", "there is no parameter $%d", n)
	}
	return e.params[n-1], nil
}

func toBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		if b, ok := parseBool(x); ok {
			return b, nil
		}
	case int64:
		return x != 0, nil
	}
	return false, errorf(codeInvalidText, "invalid input syntax for type boolean: %q", text(v))
}

// binary evaluates AND, OR, comparisons and arithmetic.
func (e *engine) binary(x *ast.BinaryOperationExpr, en *env) (any, error) {
	l, err := e.eval(x.L, en)
	if err != nil {
		return nil, err
	}
	switch x.Op {
	case opcode.LogicAnd, opcode.LogicOr:
		// SQL's three-valued logic: false decides an AND, true an OR.
		decides := x.Op == opcode.LogicOr
		if l != nil {
			if b, err := toBool(l); err != nil || b == decides {
				return decides, err
			}
		}
		r, err := e.eval(x.R, en)
		if err != nil || r == nil {
			return nil, err
		}
		rb, err := toBool(r)
		if err != nil {
			return nil, err
		}
		if rb == decides {
			return decides, nil
		}
		if l == nil {
			return nil, nil
		}
		return rb, nil
	}
	if call, ok := x.R.(*ast.FuncCallExpr); ok && (call.FnName.L == "spate_any" || call.FnName.L == "spate_all") && isComparison(x.Op) {
		if len(call.Args) != 1 {
			return nil, errorf(codeSyntax, "ANY takes one array")
		}
		arr, err := e.eval(call.Args[0], en)
		if err != nil || arr == nil {
			return nil, err
		}
		list, err := asArray(arr)
		if err != nil {
			return nil, err
		}
		return quantified(x.Op, l, list, call.FnName.L == "spate_all")
	}
	r, err := e.eval(x.R, en)
	if err != nil {
		return nil, err
	}
	if x.Op == opcode.NullEQ {
		if l == nil || r == nil {
			return l == nil && r == nil, nil
		}
		c, ok := compare(l, r)
		return ok && c == 0, nil
	}
	if l == nil || r == nil {
		return nil, nil
	}
	if isComparison(x.Op) {
		c, ok := compare(l, r)
		if !ok {
			return nil, errorf("42883", "operator does not exist: %s %s %s", valueTypeName(l), x.Op, valueTypeName(r))
		}
		return compareResult(x.Op, c), nil
	}
	return arith(x.Op, l, r)
}

func valueTypeName(v any) string { return valueType(v).String() }

func compareResult(op opcode.Op, c int) bool {
	switch op {
	case opcode.EQ:
		return c == 0
	case opcode.NE:
		return c != 0
	case opcode.LT:
		return c < 0
	case opcode.LE:
		return c <= 0
	case opcode.GT:
		return c > 0
	case opcode.GE:
		return c >= 0
	}
	return false
}

// quantified is l op ANY (list) or l op ALL (list), with SQL's NULLs.
func quantified(op opcode.Op, l any, list []any, all bool) (any, error) {
	if l == nil {
		if len(list) == 0 {
			return all, nil
		}
		return nil, nil
	}
	sawNull := false
	for _, v := range list {
		if v == nil {
			sawNull = true
			continue
		}
		c, ok := compare(l, v)
		if !ok {
			return nil, errorf("42883", "operator does not exist: %s %s %s", valueTypeName(l), op, valueTypeName(v))
		}
		hit := compareResult(op, c)
		if hit && !all {
			return true, nil
		}
		if !hit && all {
			return false, nil
		}
	}
	if sawNull {
		return nil, nil
	}
	return all, nil
}

func arith(op opcode.Op, l, r any) (any, error) {
	li, lInt := l.(int64)
	ri, rInt := r.(int64)
	switch op {
	case opcode.And, opcode.Or, opcode.Xor, opcode.LeftShift, opcode.RightShift:
		a, err := toInt(l)
		if err != nil {
			return nil, err
		}
		b, err := toInt(r)
		if err != nil {
			return nil, err
		}
		switch op {
		case opcode.And:
			return a & b, nil
		case opcode.Or:
			return a | b, nil
		case opcode.Xor:
			return a ^ b, nil
		case opcode.LeftShift:
			return a << uint(b&63), nil
		}
		return a >> uint(b&63), nil
	}
	if lInt && rInt {
		if ri == 0 && (op == opcode.Div || op == opcode.IntDiv || op == opcode.Mod) {
			return nil, errorf(codeDivisionByZero, "division by zero")
		}
		switch op {
		case opcode.Plus:
			return li + ri, nil
		case opcode.Minus:
			return li - ri, nil
		case opcode.Mul:
			return li * ri, nil
		case opcode.Div, opcode.IntDiv:
			return li / ri, nil
		case opcode.Mod:
			return li % ri, nil
		}
	}
	lf, err := toFloat(l)
	if err != nil {
		return nil, err
	}
	rf, err := toFloat(r)
	if err != nil {
		return nil, err
	}
	switch op {
	case opcode.Plus:
		return lf + rf, nil
	case opcode.Minus:
		return lf - rf, nil
	case opcode.Mul:
		return lf * rf, nil
	case opcode.Div:
		if rf == 0 {
			return nil, errorf(codeDivisionByZero, "division by zero")
		}
		return lf / rf, nil
	case opcode.Mod:
		return math.Mod(lf, rf), nil
	}
	return nil, errorf(codeNotSupported, "operator %s is not supported in catalog queries", op)
}

func (e *engine) in(x *ast.PatternInExpr, en *env) (any, error) {
	v, err := e.eval(x.Expr, en)
	if err != nil {
		return nil, err
	}
	var list []any
	if x.Sel != nil {
		sub, ok := x.Sel.(*ast.SubqueryExpr)
		if !ok {
			return nil, errorf(codeNotSupported, "IN needs a list or a subquery")
		}
		rs, err := e.run(sub.Query, en)
		if err != nil {
			return nil, err
		}
		for _, r := range rs.rows {
			list = append(list, r[0])
		}
	} else {
		for _, it := range x.List {
			iv, err := e.eval(it, en)
			if err != nil {
				return nil, err
			}
			list = append(list, iv)
		}
	}
	res, err := quantified(opcode.EQ, v, list, false)
	if err != nil || res == nil {
		return res, err
	}
	return res.(bool) != x.Not, nil
}

// likeRegexp compiles a LIKE pattern.
func likeRegexp(p string, fold bool, escape byte) (*regexp.Regexp, error) {
	var sb strings.Builder
	if fold {
		sb.WriteString("(?is)")
	} else {
		sb.WriteString("(?s)")
	}
	sb.WriteByte('^')
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == escape && escape != 0 && i+1 < len(p):
			i++
			sb.WriteString(regexp.QuoteMeta(p[i : i+1]))
		case c == '%':
			sb.WriteString(".*")
		case c == '_':
			sb.WriteByte('.')
		default:
			sb.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	sb.WriteByte('$')
	return regexp.Compile(sb.String())
}

func compileRegexp(p string, fold bool) (*regexp.Regexp, error) {
	if fold {
		p = "(?i)" + p
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, errorf("2201B", "invalid regular expression: %v", err)
	}
	return re, nil
}

// asArray reads a value as a list.
func asArray(v any) ([]any, error) {
	switch x := v.(type) {
	case []any:
		return x, nil
	case vector:
		return x, nil
	case string:
		if strings.HasPrefix(strings.TrimSpace(x), "{") {
			return parseArray(x)
		}
		var out []any
		for _, f := range strings.Fields(x) {
			out = append(out, f)
		}
		return out, nil
	}
	return nil, errorf("42809", "op ANY/ALL (array) requires array on right side")
}

// aggregate evaluates an aggregate over en.group.
func (e *engine) aggregate(x *ast.AggregateFuncExpr, en *env) (any, error) {
	name := strings.ToLower(x.F)
	var vals []any
	ren := &env{cols: en.cols, outer: en.outer}
	seen := map[string]bool{}
	for _, row := range en.group {
		ren.row = row
		var v any = int64(1)
		if len(x.Args) > 0 {
			var err error
			if v, err = e.eval(x.Args[0], ren); err != nil {
				return nil, err
			}
		}
		if v == nil && name != "array_agg" {
			continue
		}
		if x.Distinct {
			k := rowKey([]any{v})
			if seen[k] {
				continue
			}
			seen[k] = true
		}
		vals = append(vals, v)
	}
	switch name {
	case "count":
		return int64(len(vals)), nil
	case "array_agg":
		if len(vals) == 0 {
			return nil, nil
		}
		return vals, nil
	}
	if len(vals) == 0 {
		return nil, nil
	}
	switch name {
	case "min", "max":
		best := vals[0]
		for _, v := range vals[1:] {
			c := sortCompare(v, best)
			if name == "min" && c < 0 || name == "max" && c > 0 {
				best = v
			}
		}
		return best, nil
	case "sum", "avg":
		var si int64
		var sf float64
		allInt := true
		for _, v := range vals {
			if i, ok := v.(int64); ok {
				si += i
				sf += float64(i)
				continue
			}
			f, err := toFloat(v)
			if err != nil {
				return nil, err
			}
			allInt = false
			sf += f
		}
		if name == "avg" {
			return sf / float64(len(vals)), nil
		}
		if allInt {
			return si, nil
		}
		return sf, nil
	case "bool_and", "every", "bool_or":
		acc := name != "bool_or"
		for _, v := range vals {
			b, err := toBool(v)
			if err != nil {
				return nil, err
			}
			if name == "bool_or" {
				acc = acc || b
			} else {
				acc = acc && b
			}
		}
		return acc, nil
	case "string_agg", "group_concat":
		sep := ","
		if len(x.Args) > 1 {
			s, err := e.eval(x.Args[1], ren)
			if err != nil {
				return nil, err
			}
			sep = text(s)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = text(v)
		}
		return strings.Join(parts, sep), nil
	}
	return nil, errorf(codeUndefinedFunction, "aggregate %s is not supported in catalog queries", name)
}

// reservedKeywords are PostgreSQL's reserved keywords (pg_get_keywords).
var reservedKeywords = strings.Fields(`all analyse analyze and any array as asc asymmetric both case cast check
	collate column constraint create current_catalog current_date current_role current_time current_timestamp
	current_user default deferrable desc distinct do else end except false fetch for foreign from grant group
	having in initially intersect into lateral leading limit localtime localtimestamp not null offset on only or
	order placing primary references returning select session_user some symmetric table then to trailing true
	union unique user using variadic when where window with`)

// srfValues evaluates a set-returning call's list for the current row.
func (e *engine) srfValues(c ast.ExprNode, en *env) ([]any, error) {
	call := c.(*ast.FuncCallExpr)
	args := make([]any, len(call.Args))
	for i, a := range call.Args {
		v, err := e.eval(a, en)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	for _, a := range args {
		if a == nil {
			return nil, nil
		}
	}
	switch call.FnName.L {
	case "unnest":
		return asArray(args[0])
	case "generate_subscripts":
		l, err := asArray(args[0])
		if err != nil {
			return nil, err
		}
		out := make([]any, len(l))
		for i := range l {
			out[i] = int64(i + 1)
		}
		return out, nil
	case "_pg_expandarray":
		l, err := asArray(args[0])
		if err != nil {
			return nil, err
		}
		out := make([]any, len(l))
		for i, v := range l {
			out[i] = record{names: []string{"x", "n"}, vals: []any{v, int64(i + 1)}}
		}
		return out, nil
	case "pg_get_keywords":
		out := make([]any, len(reservedKeywords))
		for i, w := range reservedKeywords {
			out[i] = record{names: []string{"word", "catcode", "barelabel", "catdesc", "baredesc"},
				vals: []any{w, "R", true, "reserved", "can be bare label"}}
		}
		return out, nil
	case "generate_series":
		if len(args) < 2 {
			return nil, errorf(codeUndefinedFunction, "generate_series needs a start and a stop")
		}
		lo, err := toInt(args[0])
		if err != nil {
			return nil, err
		}
		hi, err := toInt(args[1])
		if err != nil {
			return nil, err
		}
		step := int64(1)
		if len(args) > 2 {
			if step, err = toInt(args[2]); err != nil {
				return nil, err
			}
		}
		if step == 0 {
			return nil, errorf("22023", "step size cannot equal zero")
		}
		var out []any
		for v := lo; (step > 0 && v <= hi || step < 0 && v >= hi) && len(out) < 1_000_000; v += step {
			out = append(out, v)
		}
		return out, nil
	}
	return nil, errorf(codeUndefinedFunction, "function %s does not exist", call.FnName.L)
}
