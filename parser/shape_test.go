package parser

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"
)

// shape renders a TiDB expression compactly so tests can state the exact
// AST the planner will see:
//
//	FuncCallExpr            name(args…)            (FnName.L)
//	ColumnNameExpr          t.a                    (names as .O, so case shows)
//	ValueExpr               1  'x'  NULL  dec:1.5  float:1500  bin:0x1f
//	BinaryOperationExpr     op(l, r)               (opcode name: eq, nulleq, plus, and, …)
//	UnaryOperationExpr      op(x)                  (minus, not, bitneg)
//	IsTruthExpr             istrue(x) / isfalse(x) / isnottrue(x) / isnotfalse(x)
//	IsNullExpr              isnull(x) / isnotnull(x)
//	PatternRegexpExpr       regexp(x, p) / notregexp(x, p)
//	PatternLikeOrIlikeExpr  like(x, p) / ilike / notlike / notilike
//	PatternInExpr           in(x, a, b) / notin(…)
//	BetweenExpr             between(x, a, b) / notbetween(…)
//	CaseExpr                case([v] when c then r … [else e])
//	ParenthesesExpr         paren(x)
//	AggregateFuncExpr       agg:f([distinct] args…)
//	WindowFuncExpr          win:f(args…)
//	TimeUnitExpr            unit:HOUR
//	TrimDirectionExpr       trim:BOTH
func shape(e ast.ExprNode) string {
	list := func(es []ast.ExprNode) string {
		parts := make([]string, len(es))
		for i, x := range es {
			parts[i] = shape(x)
		}
		return strings.Join(parts, ", ")
	}
	neg := func(not bool, s string) string {
		if not {
			return "not" + s
		}
		return s
	}
	switch x := e.(type) {
	case nil:
		return "<nil>"
	case *ast.FuncCallExpr:
		return x.FnName.L + "(" + list(x.Args) + ")"
	case *ast.ColumnNameExpr:
		n := x.Name
		s := n.Name.O
		if n.Table.O != "" {
			s = n.Table.O + "." + s
		}
		if n.Schema.O != "" {
			s = n.Schema.O + "." + s
		}
		return s
	case *test_driver.ValueExpr:
		switch v := x.GetValue().(type) {
		case nil:
			return "NULL"
		case string:
			return sqlString(v)
		case int64:
			return fmt.Sprint(v)
		case uint64:
			return fmt.Sprint(v)
		case float64:
			return fmt.Sprintf("float:%v", v)
		case *test_driver.MyDecimal:
			return "dec:" + v.String()
		case test_driver.BinaryLiteral:
			return fmt.Sprintf("bin:0x%x", []byte(v))
		default:
			return fmt.Sprintf("%T:%v", v, v)
		}
	case *ast.BinaryOperationExpr:
		return x.Op.String() + "(" + shape(x.L) + ", " + shape(x.R) + ")"
	case *ast.UnaryOperationExpr:
		return x.Op.String() + "(" + shape(x.V) + ")"
	case *ast.IsTruthExpr:
		t := "true"
		if x.True == 0 {
			t = "false"
		}
		return "is" + neg(x.Not, t) + "(" + shape(x.Expr) + ")"
	case *ast.IsNullExpr:
		return "is" + neg(x.Not, "null") + "(" + shape(x.Expr) + ")"
	case *ast.PatternRegexpExpr:
		return neg(x.Not, "regexp") + "(" + shape(x.Expr) + ", " + shape(x.Pattern) + ")"
	case *ast.PatternLikeOrIlikeExpr:
		op := "like"
		if !x.IsLike {
			op = "ilike"
		}
		return neg(x.Not, op) + "(" + shape(x.Expr) + ", " + shape(x.Pattern) + ")"
	case *ast.PatternInExpr:
		if x.Sel != nil {
			return neg(x.Not, "in") + "(" + shape(x.Expr) + ", subquery)"
		}
		return neg(x.Not, "in") + "(" + shape(x.Expr) + ", " + list(x.List) + ")"
	case *ast.BetweenExpr:
		return neg(x.Not, "between") + "(" + shape(x.Expr) + ", " + shape(x.Left) + ", " + shape(x.Right) + ")"
	case *ast.CaseExpr:
		var parts []string
		if x.Value != nil {
			parts = append(parts, shape(x.Value))
		}
		for _, w := range x.WhenClauses {
			parts = append(parts, "when "+shape(w.Expr)+" then "+shape(w.Result))
		}
		if x.ElseClause != nil {
			parts = append(parts, "else "+shape(x.ElseClause))
		}
		return "case(" + strings.Join(parts, " ") + ")"
	case *ast.ParenthesesExpr:
		return "paren(" + shape(x.Expr) + ")"
	case *ast.AggregateFuncExpr:
		d := ""
		if x.Distinct {
			d = "distinct "
		}
		return "agg:" + strings.ToLower(x.F) + "(" + d + list(x.Args) + ")"
	case *ast.WindowFuncExpr:
		return "win:" + strings.ToLower(x.Name) + "(" + list(x.Args) + ")"
	case *ast.TimeUnitExpr:
		return "unit:" + x.Unit.String()
	case *ast.TrimDirectionExpr:
		return "trim:" + x.Direction.String()
	case *ast.SubqueryExpr:
		return "subquery"
	case *ast.ExistsSubqueryExpr:
		return neg(x.Not, "exists") + "(subquery)"
	case *ast.DefaultExpr:
		return "DEFAULT"
	}
	return fmt.Sprintf("%T", e)
}

// parseSelect parses one statement that must be a plain SELECT.
func parseSelect(t *testing.T, sql string) *Select {
	t.Helper()
	st, err := ParseOne(sql)
	if err != nil {
		t.Fatalf("ParseOne(%q): %v", sql, err)
	}
	sel, ok := st.(*Select)
	if !ok || sel.Query == nil {
		t.Fatalf("ParseOne(%q) = %T, want *Select with Query", sql, st)
	}
	return sel
}

// fieldShapes returns the shapes of the select list.
func fieldShapes(s *ast.SelectStmt) []string {
	var out []string
	for _, f := range s.Fields.Fields {
		if f.WildCard != nil {
			out = append(out, "*")
			continue
		}
		sh := shape(f.Expr)
		if f.AsName.O != "" {
			sh += " AS " + f.AsName.O
		}
		out = append(out, sh)
	}
	return out
}

// parseOne parses exactly one statement or fails the test.
func parseOne(t *testing.T, sql string) Statement {
	t.Helper()
	st, err := ParseOne(sql)
	if err != nil {
		t.Fatalf("ParseOne(%q): %v", sql, err)
	}
	return st
}

// checkError parses sql and checks the error it must give.
func checkError(t *testing.T, sql, code, msg string, pos int) {
	t.Helper()
	stmts, err := Parse(sql)
	if err == nil {
		t.Fatalf("Parse(%q) = %#v, want error %s", sql, stmts, msg)
	}
	checkErr(t, err, code, msg, pos)
}

func checkErr(t *testing.T, err error, code, msg string, pos int) {
	t.Helper()
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %v is %T, want *Error", err, err)
	}
	if e.Code != code || e.Message != msg || e.Position != pos {
		t.Errorf("got  %s %q at %d\nwant %s %q at %d", e.Code, e.Message, e.Position, code, msg, pos)
	}
}
