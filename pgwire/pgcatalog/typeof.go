package pgcatalog

import (
	"context"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	driver "github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/planner"
)

// The result types of a catalog query are found from the query alone, not
// from its rows, so that Describe (before any parameter is bound) and
// Execute agree.

var (
	typText   = typeByName["text"]
	typBool   = typeByName["bool"]
	typInt4   = typeByName["int4"]
	typInt8   = typeByName["int8"]
	typFloat8 = typeByName["float8"]
)

// typeOf is the static type of x in en's scope (rows are not read).
func (e *engine) typeOf(x ast.ExprNode, en *env) (pgType, error) {
	switch x := x.(type) {
	case *driver.ValueExpr:
		switch x.Kind() {
		case driver.KindInt64:
			if i := x.GetInt64(); i >= -1<<31 && i < 1<<31 {
				return typInt4, nil
			}
			return typInt8, nil
		case driver.KindUint64, driver.KindFloat32, driver.KindFloat64, driver.KindMysqlDecimal:
			return typFloat8, nil
		}
		return typText, nil
	case *ast.ColumnNameExpr:
		at, i, err := en.column(x.Name.Table.O, x.Name.Name.O)
		if err != nil {
			if f, ok := valueFunction(x); ok {
				return typeByName[f.ret], nil
			}
			return pgType{}, err
		}
		return at.cols[i].typ, nil
	case *ast.ParenthesesExpr:
		return e.typeOf(x.Expr, en)
	case *ast.UnaryOperationExpr:
		if x.Op == opcode.Not || x.Op == opcode.Not2 {
			return typBool, nil
		}
		return e.typeOf(x.V, en)
	case *ast.BinaryOperationExpr:
		if isComparison(x.Op) || x.Op == opcode.LogicAnd || x.Op == opcode.LogicOr || x.Op == opcode.LogicXor {
			return typBool, nil
		}
		l, err := e.typeOf(x.L, en)
		if err != nil {
			return pgType{}, err
		}
		r, err := e.typeOf(x.R, en)
		if err != nil {
			return pgType{}, err
		}
		switch {
		case x.Op == opcode.And || x.Op == opcode.Or || x.Op == opcode.Xor || x.Op == opcode.LeftShift || x.Op == opcode.RightShift:
			if l.oid == 20 || r.oid == 20 {
				return typInt8, nil
			}
			return typInt4, nil
		case isIntType(l) && isIntType(r):
			if l.oid == 20 || r.oid == 20 {
				return typInt8, nil
			}
			return typInt4, nil
		}
		return typFloat8, nil
	case *ast.IsNullExpr, *ast.IsTruthExpr, *ast.PatternInExpr, *ast.PatternLikeOrIlikeExpr, *ast.PatternRegexpExpr,
		*ast.BetweenExpr, *ast.ExistsSubqueryExpr, *ast.CompareSubqueryExpr:
		return typBool, nil
	case *ast.CaseExpr:
		for _, w := range x.WhenClauses {
			if v, ok := w.Result.(*driver.ValueExpr); ok && v.Kind() == driver.KindNull {
				continue
			}
			return e.typeOf(w.Result, en)
		}
		if x.ElseClause != nil {
			return e.typeOf(x.ElseClause, en)
		}
		return typText, nil
	case *ast.FuncCallExpr:
		return e.callType(x, en)
	case *ast.AggregateFuncExpr:
		return e.aggregateType(strings.ToLower(x.F), x.Args, en)
	case *ast.WindowFuncExpr:
		switch strings.ToLower(x.Name) {
		case "row_number", "rank", "dense_rank":
			return typInt8, nil
		}
		return e.aggregateType(strings.ToLower(x.Name), x.Args, en)
	case *ast.SubqueryExpr:
		cols, err := e.columnsOf(x.Query, en)
		if err != nil {
			return pgType{}, err
		}
		if len(cols) == 0 {
			return typText, nil
		}
		return cols[0].typ, nil
	}
	return typText, nil
}

func isIntType(t pgType) bool { return t.oid == 20 || t.oid == 21 || t.oid == 23 || t.oid == 26 }

func (e *engine) aggregateType(name string, args []ast.ExprNode, en *env) (pgType, error) {
	switch name {
	case "count":
		return typInt8, nil
	case "avg":
		return typFloat8, nil
	case "bool_and", "bool_or", "every":
		return typBool, nil
	case "string_agg":
		return typText, nil
	}
	if len(args) == 0 {
		return typText, nil
	}
	t, err := e.typeOf(args[0], en)
	if err != nil {
		return pgType{}, err
	}
	switch name {
	case "sum":
		if isIntType(t) {
			return typInt8, nil
		}
		return typFloat8, nil
	case "array_agg":
		if t.array != 0 {
			return typeByOID[t.array], nil
		}
		return typeByName["_text"], nil
	}
	return t, nil
}

func (e *engine) callType(x *ast.FuncCallExpr, en *env) (pgType, error) {
	name := x.FnName.L
	argType := func(i int) (pgType, error) {
		if i >= len(x.Args) {
			return typText, nil
		}
		return e.typeOf(x.Args[i], en)
	}
	switch name {
	case "spate_cast":
		s, _ := literalString(x.Args[1])
		t, ok := typeNamed(s)
		if !ok {
			return typText, nil
		}
		return t, nil
	case "spate_param":
		return typText, nil
	case "spate_array":
		if sub, ok := x.Args[0].(*ast.SubqueryExpr); ok {
			cols, err := e.columnsOf(sub.Query, en)
			if err == nil && len(cols) > 0 && cols[0].typ.array != 0 {
				return typeByOID[cols[0].typ.array], nil
			}
		}
		return typeByName["_text"], nil
	case "spate_subscript", "unnest":
		t, err := argType(0)
		if err != nil {
			return pgType{}, err
		}
		if t.elem != 0 {
			return typeByOID[t.elem], nil
		}
		return typText, nil
	case "spate_field":
		if inner, ok := x.Args[0].(*ast.ParenthesesExpr); ok {
			if call, ok := inner.Expr.(*ast.FuncCallExpr); ok && call.FnName.L == "_pg_expandarray" {
				if s, _ := literalString(x.Args[1]); s == "n" {
					return typInt4, nil
				}
				t, err := e.typeOf(call.Args[0], en)
				if err == nil && t.elem != 0 {
					return typeByOID[t.elem], nil
				}
			}
		}
		return typText, nil
	case "generate_series":
		t, err := argType(0)
		if err != nil {
			return pgType{}, err
		}
		if t.oid == 20 {
			return typInt8, nil
		}
		return typInt4, nil
	case "generate_subscripts":
		return typInt4, nil
	case "trim", "btrim", "ltrim", "rtrim":
		return typText, nil
	case "_pg_expandarray", "pg_get_keywords":
		return typeByName["record"], nil
	}
	if aggregates[name] {
		return e.aggregateType(name, x.Args, en)
	}
	f, ok := functions[name]
	if !ok {
		return pgType{}, errorf(codeUndefinedFunction, "function %s does not exist", name)
	}
	if f.ret == "" {
		for i := range x.Args {
			if v, ok := x.Args[i].(*driver.ValueExpr); ok && v.Kind() == driver.KindNull {
				continue
			}
			return argType(i)
		}
		return typText, nil
	}
	return typeByName[f.ret], nil
}

// columnsOf is the output columns of a query, without running it.
func (e *engine) columnsOf(node ast.Node, outer *env) ([]binding, error) {
	switch x := node.(type) {
	case *ast.SetOprStmt:
		if x.With != nil {
			restore, err := e.with(x.With, outer, false)
			if err != nil {
				return nil, err
			}
			defer restore()
		}
		return e.columnsOf(x.SelectList, outer)
	case *ast.SetOprSelectList:
		if len(x.Selects) == 0 {
			return nil, nil
		}
		return e.columnsOf(x.Selects[0], outer)
	case *ast.SelectStmt:
		if x.With != nil {
			restore, err := e.with(x.With, outer, false)
			if err != nil {
				return nil, err
			}
			defer restore()
		}
		var in []binding
		if x.From != nil && x.From.TableRefs != nil {
			var err error
			if in, err = e.fromColumns(x.From.TableRefs, outer); err != nil {
				return nil, err
			}
		}
		en := &env{cols: in, outer: outer}
		var out []binding
		for _, f := range x.Fields.Fields {
			if f.WildCard != nil {
				for _, c := range in {
					if f.WildCard.Table.O == "" || f.WildCard.Table.O == c.qual {
						out = append(out, binding{name: c.name, typ: c.typ})
					}
				}
				continue
			}
			t, err := e.typeOf(f.Expr, en)
			if err != nil {
				return nil, err
			}
			out = append(out, binding{name: fieldName(f), typ: t})
		}
		return out, nil
	}
	return nil, errorf(codeNotSupported, "%T is not supported in catalog queries", node)
}

// fromColumns is the columns a FROM item brings into scope.
func (e *engine) fromColumns(node ast.ResultSetNode, outer *env) ([]binding, error) {
	switch x := node.(type) {
	case *ast.Join:
		l, err := e.fromColumns(x.Left, outer)
		if err != nil || x.Right == nil {
			return l, err
		}
		r, err := e.fromColumns(x.Right, outer)
		if err != nil {
			return nil, err
		}
		return append(append([]binding(nil), l...), r...), nil
	case *ast.TableSource:
		qual := x.AsName.O
		var cols []binding
		switch src := x.Source.(type) {
		case *ast.TableName:
			if qual == "" {
				qual = src.Name.O
			}
			if c := e.cte(src); c != nil {
				cols = c.cols
				break
			}
			r := e.snap.lookup(src.Schema.O, src.Name.O)
			if r == nil {
				return nil, errorf(codeUndefinedTable, "relation %q does not exist", src.Name.O)
			}
			for _, c := range r.cols {
				cols = append(cols, binding{name: c.name, typ: c.typ})
			}
		case *ast.Join:
			return e.fromColumns(src, outer)
		default:
			sub, err := e.columnsOf(src, outer)
			if err != nil {
				return nil, err
			}
			cols = sub
			if rc := recordColumns(src); rc != nil {
				cols = nil
				for _, c := range rc {
					cols = append(cols, binding{name: c.name, typ: c.typ})
				}
			}
			for i, n := range x.ColumnNames {
				if i < len(cols) {
					cols[i].name = n.O
				}
			}
		}
		out := make([]binding, len(cols))
		for i, c := range cols {
			out[i] = binding{qual: qual, name: c.name, typ: c.typ}
		}
		return out, nil
	}
	return nil, errorf(codeNotSupported, "%T is not supported in FROM of catalog queries", node)
}

// Params returns the highest $n of a catalog query and the $n it compares
// with ANY or ALL (x = ANY($1)), whose type is an array.
func Params(sel *parser.Select) (n int, arrays []int) {
	var root ast.Node = sel.Query
	if sel.SetOpr != nil {
		root = sel.SetOpr
	}
	v := &paramFinder{}
	root.Accept(v)
	return v.max, v.arrays
}

type paramFinder struct {
	max    int
	arrays []int
}

func (v *paramFinder) Enter(n ast.Node) (ast.Node, bool) {
	x, ok := n.(ast.ExprNode)
	if !ok {
		return n, false
	}
	v.max = max(v.max, paramIndex(x))
	if f, ok := x.(*ast.FuncCallExpr); ok && (f.FnName.L == "spate_any" || f.FnName.L == "spate_all") && len(f.Args) == 1 {
		if i := paramIndex(f.Args[0]); i > 0 {
			v.arrays = append(v.arrays, i)
		}
	}
	return n, false
}

func (v *paramFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// paramArgs are the functions whose arguments are not text, by position.
var paramArgs = map[string][]pgType{
	"pg_cancel_backend":      {typInt4},
	"pg_terminate_backend":   {typInt4, typInt8},
	"pg_get_userbyid":        {typeByName["oid"]},
	"format_type":            {typeByName["oid"], typInt4},
	"col_description":        {typeByName["oid"], typInt4},
	"obj_description":        {typeByName["oid"]},
	"pg_table_is_visible":    {typeByName["oid"]},
	"pg_get_viewdef":         {typeByName["oid"], typBool},
	"pg_get_indexdef":        {typeByName["oid"], typInt4, typBool},
	"pg_get_constraintdef":   {typeByName["oid"], typBool},
	"current_schemas":        {typBool},
	"generate_series":        {typInt4, typInt4, typInt4},
	"pg_relation_size":       {typeByName["oid"]},
	"pg_total_relation_size": {typeByName["oid"]},
}

// ParamTypes returns the type of each $n of a catalog query that its
// place tells — a function's argument, or the other side of a comparison
// with a column — and text for the others.
func ParamTypes(view cluster.CatalogView, srv Server, sel *parser.Select, n int) []planner.Type {
	out := make([]planner.Type, n)
	for i := range out {
		out[i] = planner.TypeText
	}
	e := &engine{ctx: context.Background(), snap: newSnapshot(view, srv)}
	var root ast.Node = sel.Query
	if sel.SetOpr != nil {
		root = sel.SetOpr
	}
	root.Accept(&paramTyper{e: e, out: out})
	return out
}

// paramTyper visits each SELECT with its FROM clause's columns in scope.
type paramTyper struct {
	e     *engine
	out   []planner.Type
	scope []*env
}

func (v *paramTyper) set(x ast.ExprNode, t pgType) {
	if n := paramIndex(x); n > 0 && n <= len(v.out) && t.oid != 0 {
		v.out[n-1] = t.planner
	}
}

func paramIndex(x ast.ExprNode) int {
	f, ok := x.(*ast.FuncCallExpr)
	if !ok || f.FnName.L != "spate_param" || len(f.Args) != 1 {
		return 0
	}
	v, ok := f.Args[0].(*driver.ValueExpr)
	if !ok || v.Kind() != driver.KindInt64 {
		return 0
	}
	return int(v.GetInt64())
}

func (v *paramTyper) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.SelectStmt:
		var outer *env
		if len(v.scope) > 0 {
			outer = v.scope[len(v.scope)-1]
		}
		en := &env{outer: outer}
		if x.From != nil && x.From.TableRefs != nil {
			if cols, err := v.e.fromColumns(x.From.TableRefs, outer); err == nil {
				en.cols = cols
			}
		}
		v.scope = append(v.scope, en)
	case *ast.BinaryOperationExpr:
		if isComparison(x.Op) && len(v.scope) > 0 {
			en := v.scope[len(v.scope)-1]
			if t, err := v.e.typeOf(x.R, en); err == nil && paramIndex(x.R) == 0 {
				v.set(x.L, t)
			}
			if t, err := v.e.typeOf(x.L, en); err == nil && paramIndex(x.L) == 0 {
				v.set(x.R, t)
			}
		}
	case *ast.FuncCallExpr:
		for i, a := range x.Args {
			if types := paramArgs[x.FnName.L]; i < len(types) {
				v.set(a, types[i])
			}
		}
	}
	return n, false
}

func (v *paramTyper) Leave(n ast.Node) (ast.Node, bool) {
	if _, ok := n.(*ast.SelectStmt); ok && len(v.scope) > 0 {
		v.scope = v.scope[:len(v.scope)-1]
	}
	return n, true
}
