package planner

import (
	"strconv"
	"strings"
	"time"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	driver "github.com/pingcap/tidb/pkg/parser/test_driver"
)

// scopeColumn is a column visible to expressions by name.
type scopeColumn struct {
	qualifier string // relation name or alias
	name      string
	typ       Type
}

// params collects the types inferred for $n parameters.
// params is state shared by the binders of one statement: the types
// inferred for $n parameters, and the statement's context.
type params struct {
	types []Type
	// untyped counts the parameters referenced whose type is still
	// unknown; noteParams has nothing to look for when it is 0.
	untyped    int
	referenced []bool
	// streaming is set while binding a continuous query, whose results
	// must not depend on when rows are processed (no now()).
	streaming bool
	// now is the statement's time (µs), the value of now() in it.
	now int64
}

// clone copies p for a binding whose inferences may be thrown away.
func (p *params) clone() *params {
	cp := *p
	cp.types = append([]Type(nil), p.types...)
	cp.referenced = append([]bool(nil), p.referenced...)
	return &cp
}

func (p *params) note(n int, t Type) {
	for len(p.types) < n {
		p.types = append(p.types, TypeUnknown)
		p.referenced = append(p.referenced, false)
	}
	if !p.referenced[n-1] {
		p.referenced[n-1] = true
		if p.types[n-1] == TypeUnknown {
			p.untyped++
		}
	}
	if t != TypeUnknown && p.types[n-1] == TypeUnknown {
		p.types[n-1] = t
		p.untyped--
	}
}

// binder turns TiDB expression ASTs into typed Exprs over a scope. The
// hooks let the aggregate planner redirect aggregates and group keys.
type binder struct {
	scope  []scopeColumn
	params *params
	// agg binds an aggregate call; nil means aggregates are not allowed here.
	agg func(*ast.AggregateFuncExpr) (Expr, error)
	// match maps a whole sub-expression to a column (group keys after
	// aggregation); nil when not aggregating.
	match func(ast.ExprNode) (Expr, bool, error)
	// where names the clause for error messages ("WHERE", "GROUP BY", …).
	where string
	// qualify names column references with their relation (a.k), as in
	// a join's conditions, where both sides may have a k.
	qualify bool
}

func (b *binder) column(cn *ast.ColumnName) (Expr, error) {
	name, qual := cn.Name.O, cn.Table.O
	found := -1
	for i, c := range b.scope {
		if c.name != name || (qual != "" && c.qualifier != qual) {
			continue
		}
		if found >= 0 {
			return nil, errorf(CodeAmbiguousColumn, "column reference %q is ambiguous", name)
		}
		found = i
	}
	if found < 0 {
		full := name
		if qual != "" {
			full = qual + "." + name
		}
		return nil, errorf(CodeUndefinedColumn, "column %q does not exist", full)
	}
	c := b.scope[found]
	if b.qualify && c.qualifier != "" {
		return &ColRef{Index: found, Name: c.qualifier + "." + c.name, T: c.typ}, nil
	}
	return &ColRef{Index: found, Name: c.name, T: c.typ}, nil
}

// expr binds one expression.
func (b *binder) expr(n ast.ExprNode) (Expr, error) {
	if b.match != nil {
		if e, ok, err := b.match(n); err != nil || ok {
			return e, err
		}
	}
	switch x := n.(type) {
	case *ast.ParenthesesExpr:
		return b.expr(x.Expr)
	case *ast.ColumnNameExpr:
		return b.column(x.Name)
	case *driver.ValueExpr:
		return literal(x)
	case *ast.BinaryOperationExpr:
		if x.Op == opcode.LogicAnd || x.Op == opcode.LogicOr {
			return b.logicChain(x)
		}
		l, err := b.expr(x.L)
		if err != nil {
			return nil, err
		}
		r, err := b.expr(x.R)
		if err != nil {
			return nil, err
		}
		op, ok := binaryOps[x.Op]
		if !ok {
			return nil, errorf(CodeNotSupported, "operator %s is not supported", x.Op)
		}
		if x.Op == opcode.IntDiv {
			l, r = castTo(l, TypeBigInt), castTo(r, TypeBigInt)
		}
		return b.noteParams(makeBinary(op, l, r))
	case *ast.UnaryOperationExpr:
		v, err := b.expr(x.V)
		if err != nil {
			return nil, err
		}
		switch x.Op {
		case opcode.Plus:
			return v, nil
		case opcode.Minus:
			if c, ok := v.(*Const); ok {
				switch cv := c.Value.(type) {
				case int64:
					return &Const{Value: -cv, T: c.T}, nil
				case float64:
					return &Const{Value: -cv, T: c.T}, nil
				}
			}
			if untyped(v) {
				v = castTo(v, TypeBigInt)
			}
			if !v.Type().IsNumeric() && v.Type() != TypeInterval {
				return nil, errorf(CodeUndefinedFunction, "operator does not exist: - %s", v.Type())
			}
			return &Func{Name: "neg", Args: []Expr{v}, T: v.Type()}, nil
		case opcode.Not, opcode.Not2:
			v, err := requireBool(v, "NOT")
			if err != nil {
				return nil, err
			}
			return &Func{Name: "not", Args: []Expr{v}, T: TypeBool}, nil
		}
		return nil, errorf(CodeNotSupported, "operator %s is not supported", x.Op)
	case *ast.IsNullExpr:
		v, err := b.expr(x.Expr)
		if err != nil {
			return nil, err
		}
		name := "is_null"
		if x.Not {
			name = "is_not_null"
		}
		return &Func{Name: name, Args: []Expr{v}, T: TypeBool}, nil
	case *ast.IsTruthExpr:
		v, err := b.expr(x.Expr)
		if err != nil {
			return nil, err
		}
		if v, err = requireBool(v, "IS TRUE"); err != nil {
			return nil, err
		}
		name := map[[2]bool]string{{true, false}: "is_true", {true, true}: "is_not_true", {false, false}: "is_false", {false, true}: "is_not_false"}[[2]bool{x.True == 1, x.Not}]
		return &Func{Name: name, Args: []Expr{v}, T: TypeBool}, nil
	case *ast.PatternLikeOrIlikeExpr:
		v, err := b.expr(x.Expr)
		if err != nil {
			return nil, err
		}
		p, err := b.expr(x.Pattern)
		if err != nil {
			return nil, err
		}
		name := "like"
		if !x.IsLike {
			name = "ilike"
		}
		if x.Not {
			name = "not_" + name
		}
		return b.noteParams(makeBinary(name, v, p))
	case *ast.PatternRegexpExpr:
		v, err := b.expr(x.Expr)
		if err != nil {
			return nil, err
		}
		p, err := b.expr(x.Pattern)
		if err != nil {
			return nil, err
		}
		name := "regexp"
		if x.Not {
			name = "not_regexp"
		}
		return b.noteParams(makeBinary(name, v, p))
	case *ast.PatternInExpr:
		if x.Sel != nil {
			return nil, errorf(CodeNotSupported, "subqueries are not supported")
		}
		args := make([]Expr, 0, len(x.List)+1)
		v, err := b.expr(x.Expr)
		if err != nil {
			return nil, err
		}
		args = append(args, v)
		for _, it := range x.List {
			e, err := b.expr(it)
			if err != nil {
				return nil, err
			}
			args = append(args, e)
		}
		t, err := commonType("IN", args)
		if err != nil {
			return nil, err
		}
		for i := range args {
			args[i] = castTo(args[i], t)
		}
		name := "in"
		if x.Not {
			name = "not_in"
		}
		return b.noteParams(&Func{Name: name, Args: args, T: TypeBool}, nil)
	case *ast.BetweenExpr:
		v, err := b.expr(x.Expr)
		if err != nil {
			return nil, err
		}
		lo, err := b.expr(x.Left)
		if err != nil {
			return nil, err
		}
		hi, err := b.expr(x.Right)
		if err != nil {
			return nil, err
		}
		ge, err := makeBinary(">=", v, lo)
		if err != nil {
			return nil, err
		}
		le, err := makeBinary("<=", v, hi)
		if err != nil {
			return nil, err
		}
		var out Expr = &Func{Name: "and", Args: []Expr{ge, le}, T: TypeBool}
		if x.Not {
			out = &Func{Name: "not", Args: []Expr{out}, T: TypeBool}
		}
		return b.noteParams(out, nil)
	case *ast.CaseExpr:
		return b.caseExpr(x)
	case *ast.FuncCallExpr:
		return b.call(x)
	case *ast.AggregateFuncExpr:
		if b.agg == nil {
			return nil, errorf(CodeGrouping, "aggregate functions are not allowed in %s", b.where)
		}
		return b.agg(x)
	case *ast.DefaultExpr:
		return nil, errorf(CodeNotSupported, "DEFAULT is not supported")
	case *ast.SubqueryExpr, *ast.ExistsSubqueryExpr:
		return nil, errorf(CodeNotSupported, "subqueries are not supported")
	case *ast.WindowFuncExpr:
		return nil, errorf(CodeNotSupported, "OVER windows are not supported yet")
	case ast.ParamMarkerExpr:
		return nil, errorf(CodeSyntax, "use $1, $2, … for parameters")
	}
	return nil, errorf(CodeNotSupported, "expression %T is not supported", n)
}

// logicChain binds a chain of ANDs or ORs (((a AND b) AND c) …), which
// TiDB parses left-deep, as one n-ary call: without recursing once per
// link, and to an expression as shallow as a list (parser.MaxNesting
// does not count the links).
func (b *binder) logicChain(x *ast.BinaryOperationExpr) (Expr, error) {
	name := binaryOps[x.Op]
	// Walk down the chain's left spine; a link that is itself a group
	// key (b.match) ends it, as the recursive binding would.
	rights := []ast.ExprNode{x.R}
	var first Expr
	left := x.L
	for first == nil {
		l, ok := left.(*ast.BinaryOperationExpr)
		if !ok || l.Op != x.Op {
			break
		}
		if b.match != nil {
			e, ok, err := b.match(l)
			if err != nil {
				return nil, err
			}
			if ok {
				first = e
				break
			}
		}
		rights = append(rights, l.R)
		left = l.L
	}
	if first == nil {
		e, err := b.expr(left)
		if err != nil {
			return nil, err
		}
		first = e
	}
	args := make([]Expr, 0, len(rights)+1)
	for i := len(rights); i >= 0; i-- {
		e := first
		if i < len(rights) {
			var err error
			if e, err = b.expr(rights[i]); err != nil {
				return nil, err
			}
		}
		e, err := b.noteParams(requireBool(e, strings.ToUpper(name)))
		if err != nil {
			return nil, err
		}
		args = append(args, e)
	}
	return &Func{Name: name, Args: args, T: TypeBool}, nil
}

// noteParams records the types parameters got from their context. It
// walks e only while a parameter is still untyped, so that binding a long
// chain of operators stays linear.
func (b *binder) noteParams(e Expr, err error) (Expr, error) {
	if err != nil {
		return nil, err
	}
	if b.params.untyped == 0 {
		return e, nil
	}
	walkExpr(e, func(x Expr) {
		if p, ok := x.(*Param); ok {
			b.params.note(p.N, p.T)
		}
	})
	return e, nil
}

var binaryOps = map[opcode.Op]string{
	opcode.Plus: "+", opcode.Minus: "-", opcode.Mul: "*", opcode.Div: "/", opcode.IntDiv: "/",
	opcode.Mod: "%", opcode.EQ: "=", opcode.NE: "<>", opcode.LT: "<", opcode.LE: "<=",
	opcode.GT: ">", opcode.GE: ">=", opcode.LogicAnd: "and", opcode.LogicOr: "or",
	opcode.NullEQ: "is_not_distinct",
}

func literal(v *driver.ValueExpr) (Expr, error) {
	switch v.Kind() {
	case driver.KindNull:
		return &Const{T: TypeUnknown, Untyped: true}, nil
	case driver.KindInt64:
		if mysql.HasIsBooleanFlag(v.GetType().GetFlag()) {
			return &Const{Value: v.GetInt64() != 0, T: TypeBool}, nil
		}
		i := v.GetInt64()
		if i >= -1<<31 && i < 1<<31 {
			return &Const{Value: i, T: TypeInt}, nil
		}
		return &Const{Value: i, T: TypeBigInt}, nil
	case driver.KindUint64:
		u := v.GetUint64()
		if u > 1<<63-1 {
			return &Const{Value: float64(u), T: TypeDouble}, nil
		}
		return &Const{Value: int64(u), T: TypeBigInt}, nil
	case driver.KindFloat32, driver.KindFloat64:
		return &Const{Value: v.GetFloat64(), T: TypeDouble}, nil
	case driver.KindMysqlDecimal:
		f, err := strconv.ParseFloat(v.GetMysqlDecimal().String(), 64)
		if err != nil {
			return nil, errorf(CodeInvalidText, "invalid number %s", v.GetMysqlDecimal().String())
		}
		return &Const{Value: f, T: TypeDouble}, nil
	case driver.KindString, driver.KindBytes:
		return &Const{Value: v.GetString(), T: TypeText, Untyped: true}, nil
	}
	return nil, errorf(CodeNotSupported, "literal of kind %d is not supported", v.Kind())
}

func (b *binder) caseExpr(x *ast.CaseExpr) (Expr, error) {
	var operand Expr
	if x.Value != nil {
		var err error
		if operand, err = b.expr(x.Value); err != nil {
			return nil, err
		}
	}
	var conds, results []Expr
	for _, w := range x.WhenClauses {
		c, err := b.expr(w.Expr)
		if err != nil {
			return nil, err
		}
		if operand != nil {
			if c, err = makeBinary("=", operand, c); err != nil {
				return nil, err
			}
		} else if c, err = requireBool(c, "CASE/WHEN"); err != nil {
			return nil, err
		}
		r, err := b.expr(w.Result)
		if err != nil {
			return nil, err
		}
		conds, results = append(conds, c), append(results, r)
	}
	if x.ElseClause != nil {
		e, err := b.expr(x.ElseClause)
		if err != nil {
			return nil, err
		}
		results = append(results, e)
	}
	t, err := commonType("CASE", results)
	if err != nil {
		return nil, err
	}
	var args []Expr
	for i, c := range conds {
		args = append(args, c, castTo(results[i], t))
	}
	if x.ElseClause != nil {
		args = append(args, castTo(results[len(results)-1], t))
	}
	return b.noteParams(&Func{Name: "case", Args: args, T: t}, nil)
}

func (b *binder) args(in []ast.ExprNode) ([]Expr, error) {
	out := make([]Expr, len(in))
	for i, a := range in {
		e, err := b.expr(a)
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

func (b *binder) call(x *ast.FuncCallExpr) (Expr, error) {
	name := x.FnName.L
	switch name {
	case "spate_param":
		n, ok := constInt(x.Args[0])
		if !ok || n < 1 {
			return nil, errorf(CodeUndefinedParam, "invalid parameter number")
		}
		b.params.note(int(n), TypeUnknown)
		return &Param{N: int(n), T: b.params.types[n-1]}, nil
	case "spate_interval":
		n, ok := constInt(x.Args[0])
		if !ok {
			return nil, errorf(CodeSyntax, "invalid interval")
		}
		return &Const{Value: n, T: TypeInterval}, nil
	case "spate_cast":
		arg, err := b.expr(x.Args[0])
		if err != nil {
			return nil, err
		}
		tn, _ := constString(x.Args[1])
		t, err := ParseType(tn)
		if err != nil {
			return nil, &Error{Code: CodeUndefinedObject, Message: err.Error()}
		}
		if p, ok := arg.(*Param); ok && p.T == TypeUnknown {
			b.params.note(p.N, t)
			return &Param{N: p.N, T: t}, nil
		}
		if arg.Type() == t {
			if _, isConst := arg.(*Const); !isConst {
				return arg, nil
			}
			// Keep an explicit cast of a constant: exec treats a bare
			// decimal literal as NUMERIC (2.5::int rounds half away from
			// zero) but 2.5::float8::int as a double (ties to even).
		}
		return &Func{Name: "cast", Args: []Expr{arg}, T: t}, nil
	case "tumble", "hop", "spate_session":
		return nil, errorf(CodeGrouping, "window function %s(…) is only allowed in GROUP BY", strings.TrimPrefix(name, "spate_"))
	case "spate_subscript":
		return nil, errorf(CodeNotSupported, "array subscripts (x[i]) are not supported: Spate has no array type; regexp_substr(s, pattern) and substring(s FROM pattern) return the matched text")
	case "substring":
		// substring(s FROM pattern): a text pattern is a regular
		// expression (PostgreSQL: the first parenthesised part's match,
		// else the whole match); an integer is a position.
		args, err := b.args(x.Args)
		if err != nil {
			return nil, err
		}
		if len(args) == 2 && isTextArg(args[1]) {
			return b.noteParams(fixed(TypeText, TypeText, TypeText)("substring_regex", args))
		}
		return b.noteParams(optional(2, TypeText, TypeText, TypeBigInt, TypeBigInt)("substr", args))
	case "spate_regexp_i":
		args, err := b.args(x.Args)
		if err != nil {
			return nil, err
		}
		return b.noteParams(makeBinary("regexp_i", args[0], args[1]))
	case "spate_concat":
		// a || b: NULL when either side is NULL.
		args, err := b.args(x.Args)
		if err != nil {
			return nil, err
		}
		out := castTo(args[0], TypeText)
		for _, a := range args[1:] {
			if out, err = makeBinary("concat", out, a); err != nil {
				return nil, err
			}
		}
		return b.noteParams(out, nil)
	case "extract", "date_part":
		var field string
		var rest []ast.ExprNode
		if u, ok := x.Args[0].(*ast.TimeUnitExpr); ok {
			field = strings.ToLower(u.Unit.String())
			rest = x.Args[1:]
		} else if s, ok := constString(x.Args[0]); ok {
			field = strings.ToLower(s)
			rest = x.Args[1:]
		}
		if field == "" || len(rest) != 1 {
			return nil, errorf(CodeSyntax, "%s needs a field and a value", name)
		}
		v, err := b.expr(rest[0])
		if err != nil {
			return nil, err
		}
		if untyped(v) {
			v = castTo(v, TypeTimestamp)
		}
		if v.Type() != TypeTimestamp && v.Type() != TypeInterval {
			return nil, errorf(CodeUndefinedFunction, "function date_part(text, %s) does not exist", v.Type())
		}
		return &Func{Name: "date_part", Args: []Expr{&Const{Value: field, T: TypeText}, v}, T: TypeDouble}, nil
	case "locate", "position":
		// position(sub IN s) arrives as position(sub, s).
		args, err := b.args(x.Args)
		if err != nil || len(args) != 2 {
			return nil, errorf(CodeUndefinedFunction, "function %s expects 2 arguments", name)
		}
		return b.noteParams(fixed(TypeBigInt, TypeText, TypeText)("strpos", []Expr{args[1], args[0]}))
	case "now", "current_timestamp", "localtimestamp", "transaction_timestamp", "statement_timestamp":
		if b.params.streaming {
			return nil, errorf(CodeNotSupported, "%s() is not allowed in a continuous query: its results must not depend on when rows are processed; use the event time", name)
		}
		if b.params.now == 0 {
			b.params.now = time.Now().UnixMicro()
		}
		return &Const{Value: b.params.now, T: TypeTimestamp}, nil
	case "version":
		return &Const{Value: "PostgreSQL 15.0 (Spate streaming SQL engine)", T: TypeText}, nil
	case "current_database":
		return &Const{Value: "spate", T: TypeText}, nil
	case "current_schema":
		return &Const{Value: "public", T: TypeText}, nil
	}
	if name == "trim" && len(x.Args) == 3 {
		// trim(LEADING|TRAILING|BOTH chars FROM s) arrives as (s, chars, direction).
		if d, ok := x.Args[2].(*ast.TrimDirectionExpr); ok {
			switch d.Direction {
			case ast.TrimLeading:
				name = "ltrim"
			case ast.TrimTrailing:
				name = "rtrim"
			}
			x = &ast.FuncCallExpr{FnName: ast.NewCIStr(name), Args: x.Args[:2]}
		}
	}
	f, ok := scalarFuncs[name]
	if !ok {
		return nil, errorf(CodeUndefinedFunction, "function %s does not exist", name)
	}
	args, err := b.args(x.Args)
	if err != nil {
		return nil, err
	}
	e, err := f.sig(name, args)
	if err != nil {
		return nil, err
	}
	if fn, ok := e.(*Func); ok {
		fn.Name = f.exec
	}
	return b.noteParams(e, nil)
}

func constInt(n ast.ExprNode) (int64, bool) {
	if p, ok := n.(*ast.PositionExpr); ok && p.P == nil {
		// ORDER BY 2, GROUP BY 1.
		return int64(p.N), true
	}
	if v, ok := n.(*driver.ValueExpr); ok && (v.Kind() == driver.KindInt64 || v.Kind() == driver.KindUint64) {
		return v.GetInt64(), true
	}
	if u, ok := n.(*ast.UnaryOperationExpr); ok && u.Op == opcode.Minus {
		if i, ok := constInt(u.V); ok {
			return -i, true
		}
	}
	return 0, false
}

func constString(n ast.ExprNode) (string, bool) {
	if v, ok := n.(*driver.ValueExpr); ok && (v.Kind() == driver.KindString || v.Kind() == driver.KindBytes) {
		return v.GetString(), true
	}
	return "", false
}

// pgTypeNames are PostgreSQL's internal type names, which it uses to name
// an unaliased cast column.
var pgTypeNames = map[Type]string{
	TypeBool: "bool", TypeInt: "int4", TypeBigInt: "int8", TypeDouble: "float8",
	TypeText: "text", TypeTimestamp: "timestamp", TypeInterval: "interval", TypeUnknown: "text",
}

// exprName is the column name PostgreSQL gives an unaliased select item.
func exprName(n ast.ExprNode) string {
	switch x := n.(type) {
	case *ast.ParenthesesExpr:
		return exprName(x.Expr)
	case *ast.ColumnNameExpr:
		return x.Name.Name.O
	case *ast.AggregateFuncExpr:
		return strings.ToLower(x.F)
	case *ast.FuncCallExpr:
		switch x.FnName.L {
		case "spate_cast":
			if inner := exprName(x.Args[0]); inner != "?column?" {
				return inner
			}
			tn, _ := constString(x.Args[1])
			if t, err := ParseType(tn); err == nil {
				return pgTypeNames[t]
			}
		case "spate_interval":
			return "interval"
		case "spate_param":
			return "?column?"
		case "spate_concat":
			return "?column?"
		case "locate":
			return "position"
		case "extract":
			return "extract"
		default:
			return x.FnName.L
		}
	case *ast.CaseExpr:
		return "case"
	}
	return "?column?"
}
