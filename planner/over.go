package planner

import (
	"fmt"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// OverKind is a function computed over an OVER window.
type OverKind uint8

// The OVER window functions.
const (
	OverRowNumber OverKind = iota
	OverLag
	OverLead
	OverCount
	OverCountStar
	OverSum
	OverAvg
	OverMin
	OverMax
)

// MaxOverFrame bounds ROWS n PRECEDING: the rows kept per partition
// (exec's OVER operator refuses more, as a plan from elsewhere might ask).
const MaxOverFrame = 1 << 20

var overNames = [...]string{"row_number", "lag", "lead", "count", "count(*)", "sum", "avg", "min", "max"}

func (k OverKind) String() string { return overNames[k] }

// OverCall is one function of an Over node.
type OverCall struct {
	Kind    OverKind
	Arg     *ColRef // nil for ROW_NUMBER and COUNT(*)
	Offset  int     // LAG/LEAD
	Default any     // LAG/LEAD default (a constant), nil for NULL
	// DefaultExpr is a constant expression for the default, evaluated once
	// when the operator is built; nil when Default holds the value.
	DefaultExpr Expr
	Preceding   int64 // ROWS n PRECEDING; -1 for UNBOUNDED PRECEDING
	Name        string
	T           Type
}

// Over computes window functions over rows of the same PartitionBy key
// ordered by event time. Its output is its input's columns followed by one
// column per call.
type Over struct {
	Input       Node
	PartitionBy []*ColRef
	Time        *ColRef
	TimeUnit    int64
	Calls       []OverCall
}

// Columns implements Node.
func (o *Over) Columns() []Column {
	out := append([]Column(nil), o.Input.Columns()...)
	for _, c := range o.Calls {
		out = append(out, Column{Name: c.Name, Type: c.T})
	}
	return out
}

// Inputs implements Node.
func (o *Over) Inputs() []Node { return []Node{o.Input} }

func (o *Over) describe() string { return "Over " + describeOver(o.PartitionBy, o.Time, o.Calls) }

func describeOver(part []*ColRef, t *ColRef, calls []OverCall) string {
	ps := make([]string, len(part))
	for i, p := range part {
		ps[i] = p.Name
	}
	cs := make([]string, len(calls))
	for i, c := range calls {
		arg := ""
		if c.Arg != nil {
			arg = c.Arg.Name
		}
		switch c.Kind {
		case OverLag, OverLead:
			cs[i] = fmt.Sprintf("%s(%s, %d)", c.Kind, arg, c.Offset)
		case OverRowNumber, OverCountStar:
			cs[i] = c.Kind.String() + "()"
		default:
			frame := "unbounded"
			if c.Preceding >= 0 {
				frame = fmt.Sprintf("%d preceding", c.Preceding)
			}
			cs[i] = fmt.Sprintf("%s(%s) rows %s", c.Kind, arg, frame)
		}
	}
	return fmt.Sprintf("partition=[%s] order=%s funcs=[%s]", strings.Join(ps, ", "), t.Name, strings.Join(cs, ", "))
}

// OverOp is the physical OVER window operator over input columns.
type OverOp struct {
	PartitionBy []int
	TimeCol     int
	TimeUnit    int64
	Calls       []OverCall // Arg.Index is an input column
	Out         []Column
	desc        string
}

// Columns implements Op.
func (o *OverOp) Columns() []Column { return o.Out }

func (o *OverOp) describe() string { return "OverWindow " + o.desc }

// findWindowFuncs lists the OVER calls of the select list.
func findWindowFuncs(items []selectItem) []*ast.WindowFuncExpr {
	var out []*ast.WindowFuncExpr
	v := &windowFinder{found: &out}
	for _, it := range items {
		it.expr.Accept(v)
	}
	return out
}

type windowFinder struct{ found *[]*ast.WindowFuncExpr }

func (w *windowFinder) Enter(n ast.Node) (ast.Node, bool) {
	if f, ok := n.(*ast.WindowFuncExpr); ok {
		*w.found = append(*w.found, f)
		return n, true
	}
	return n, false
}

func (w *windowFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// bindOver plans a select list with OVER windows: every OVER clause shares
// one PARTITION BY and ORDER BY <event time>; the functions are computed by
// an Over node and the select list reads its output.
func (p *Planner) bindOver(input Node, items []selectItem, funcs []*ast.WindowFuncExpr, scope []scopeColumn, scan *Scan, mode selectMode, prm *params) (Node, error) {
	in := &binder{scope: scope, params: prm, where: "OVER"}
	spec := funcs[0].Spec
	if spec.Name.O != "" || spec.Ref.O != "" {
		return nil, errorf(CodeNotSupported, "named windows are not supported; write OVER (PARTITION BY … ORDER BY …)")
	}
	var part []*ColRef
	var extra []Expr // computed partition keys or arguments, appended to the input
	ncols := len(input.Columns())
	asColumn := func(e Expr) *ColRef {
		if c, ok := e.(*ColRef); ok {
			return c
		}
		for i, x := range extra {
			if exprKey(x) == exprKey(e) {
				return &ColRef{Index: ncols + i, Name: "over_arg" + fmt.Sprint(i), T: e.Type()}
			}
		}
		extra = append(extra, e)
		return &ColRef{Index: ncols + len(extra) - 1, Name: "over_arg" + fmt.Sprint(len(extra)-1), T: e.Type()}
	}
	specKey := func(s ast.WindowSpec) (string, error) {
		var b strings.Builder
		if s.PartitionBy != nil {
			for _, it := range s.PartitionBy.Items {
				e, err := in.expr(it.Expr)
				if err != nil {
					return "", err
				}
				b.WriteString(exprKey(e) + ";")
			}
		}
		b.WriteString("|")
		if s.OrderBy != nil {
			for _, it := range s.OrderBy.Items {
				e, err := in.expr(it.Expr)
				if err != nil {
					return "", err
				}
				fmt.Fprintf(&b, "%s %v;", exprKey(e), it.Desc)
			}
		}
		return b.String(), nil
	}
	want, err := specKey(spec)
	if err != nil {
		return nil, err
	}
	for _, f := range funcs[1:] {
		got, err := specKey(f.Spec)
		if err != nil {
			return nil, err
		}
		if got != want {
			return nil, errorf(CodeNotSupported, "all OVER clauses of a query must use the same PARTITION BY and ORDER BY")
		}
	}
	if spec.PartitionBy != nil {
		for _, it := range spec.PartitionBy.Items {
			e, err := in.expr(it.Expr)
			if err != nil {
				return nil, err
			}
			part = append(part, asColumn(e))
		}
	}
	if spec.OrderBy == nil || len(spec.OrderBy.Items) != 1 || spec.OrderBy.Items[0].Desc {
		return nil, errorf(CodeNotSupported, "OVER needs ORDER BY <event-time column> (ascending)")
	}
	te, err := in.expr(spec.OrderBy.Items[0].Expr)
	if err != nil {
		return nil, err
	}
	tref, ok := te.(*ColRef)
	if !ok {
		return nil, errorf(CodeNotSupported, "OVER must be ordered by the event-time column")
	}
	over := &Over{Time: tref, TimeUnit: 1}
	if mode == modeStream {
		if scan == nil || scan.EventTime < 0 || scan.Indexes[tref.Index] != scan.EventTime {
			return nil, errorf(CodeInvalidDefinition, "OVER in a continuous query must be ordered by the event-time column of its stream")
		}
		over.TimeUnit = scan.TimeUnit
	} else if tref.T != TypeTimestamp && !tref.T.IsInteger() {
		return nil, errorf(CodeDatatypeMismatch, "OVER must be ordered by a timestamp or integer column, not %s", tref.T)
	}
	index := map[*ast.WindowFuncExpr]int{}
	for i, f := range funcs {
		call, err := overCall(f, in, asColumn)
		if err != nil {
			return nil, err
		}
		call.Name = "over" + fmt.Sprint(i)
		over.Calls = append(over.Calls, call)
		index[f] = i
	}
	over.PartitionBy = part
	if len(extra) > 0 {
		cols := input.Columns()
		exprs := make([]Expr, 0, len(cols)+len(extra))
		names := make([]string, 0, len(cols)+len(extra))
		for i, c := range cols {
			exprs = append(exprs, &ColRef{Index: i, Name: c.Name, T: c.Type})
			names = append(names, c.Name)
		}
		for i, e := range extra {
			exprs = append(exprs, e)
			names = append(names, "over_arg"+fmt.Sprint(i))
		}
		input = &Project{Input: input, Exprs: exprs, Names: names}
	}
	over.Input = input
	width := len(input.Columns())
	post := &binder{scope: scope, params: prm, where: "the select list"}
	post.match = func(n ast.ExprNode) (Expr, bool, error) {
		if f, ok := n.(*ast.WindowFuncExpr); ok {
			i := index[f]
			return &ColRef{Index: width + i, Name: f.Name, T: over.Calls[i].T}, true, nil
		}
		return nil, false, nil
	}
	exprs := make([]Expr, len(items))
	names := make([]string, len(items))
	for i, it := range items {
		e, err := post.expr(it.expr)
		if err != nil {
			return nil, err
		}
		exprs[i], names[i] = finalType(e), it.name
	}
	return &Project{Input: over, Exprs: exprs, Names: names}, nil
}

// overCall binds one window function call.
func overCall(f *ast.WindowFuncExpr, in *binder, asColumn func(Expr) *ColRef) (OverCall, error) {
	name := strings.ToLower(f.Name)
	if f.Distinct || f.IgnoreNull || f.FromLast {
		return OverCall{}, errorf(CodeNotSupported, "%s(DISTINCT …)/IGNORE NULLS/FROM LAST is not supported over a window", name)
	}
	call := OverCall{Preceding: -1}
	if fr := f.Spec.Frame; fr != nil {
		if fr.Type != ast.Rows {
			return OverCall{}, errorf(CodeNotSupported, "only ROWS frames are supported (ROWS BETWEEN n PRECEDING AND CURRENT ROW)")
		}
		start, end := fr.Extent.Start, fr.Extent.End
		if end.Type != ast.CurrentRow {
			return OverCall{}, errorf(CodeNotSupported, "a window frame must end at CURRENT ROW")
		}
		switch {
		case start.Type == ast.CurrentRow:
			call.Preceding = 0
		case start.Type == ast.Preceding && start.UnBounded:
			call.Preceding = -1
		case start.Type == ast.Preceding:
			n, ok := constInt(start.Expr)
			if !ok || n < 0 {
				return OverCall{}, errorf(CodeInvalidParameter, "ROWS n PRECEDING needs a non-negative integer constant")
			}
			if n > MaxOverFrame {
				return OverCall{}, errorf(CodeInvalidParameter, "ROWS %d PRECEDING keeps too many rows per partition: at most %d (or UNBOUNDED PRECEDING, which keeps a running value)", n, MaxOverFrame)
			}
			call.Preceding = n
		default:
			return OverCall{}, errorf(CodeNotSupported, "a window frame must start at n PRECEDING, UNBOUNDED PRECEDING or CURRENT ROW")
		}
	}
	args := f.Args
	bindArg := func() (*ColRef, Type, error) {
		e, err := in.expr(args[0])
		if err != nil {
			return nil, 0, err
		}
		if untyped(e) {
			e = castTo(e, TypeText)
		}
		return asColumn(e), e.Type(), nil
	}
	switch name {
	case "row_number":
		call.Kind, call.T = OverRowNumber, TypeBigInt
		return call, nil
	case "lag", "lead":
		call.Kind = OverLag
		if name == "lead" {
			call.Kind = OverLead
		}
		if len(args) < 1 || len(args) > 3 {
			return OverCall{}, errorf(CodeUndefinedFunction, "%s expects 1 to 3 arguments", name)
		}
		arg, t, err := bindArg()
		if err != nil {
			return OverCall{}, err
		}
		call.Arg, call.T, call.Offset = arg, t, 1
		if len(args) >= 2 {
			n, ok := constInt(args[1])
			if !ok || n < 1 || n > 1000 {
				return OverCall{}, errorf(CodeInvalidParameter, "%s offset must be an integer constant from 1 to 1000", name)
			}
			call.Offset = int(n)
		}
		if len(args) == 3 {
			d, err := in.expr(args[2])
			if err != nil {
				return OverCall{}, err
			}
			d = castTo(d, t)
			if c, ok := d.(*Const); ok {
				call.Default = c.Value
			} else if !constantExpr(d) {
				return OverCall{}, errorf(CodeNotSupported, "the %s default must be a constant of type %s", name, t)
			} else {
				// A constant expression ('2000-01-01'::timestamp, 1 + 1):
				// the runtime evaluates it once.
				call.DefaultExpr = d
			}
		}
		return call, nil
	case "count":
		call.T = TypeBigInt
		if len(args) == 0 {
			call.Kind = OverCountStar
			return call, nil
		}
		if c, ok := args[0].(*ast.ColumnNameExpr); !ok || c == nil {
			if _, isConst := constInt(args[0]); isConst {
				call.Kind = OverCountStar
				return call, nil
			}
		}
		arg, _, err := bindArg()
		if err != nil {
			return OverCall{}, err
		}
		call.Kind, call.Arg = OverCount, arg
		return call, nil
	case "sum", "avg", "min", "max":
		if len(args) != 1 {
			return OverCall{}, errorf(CodeUndefinedFunction, "%s expects one argument", name)
		}
		arg, t, err := bindArg()
		if err != nil {
			return OverCall{}, err
		}
		call.Arg = arg
		if call.T, err = aggResultType(name, t); err != nil {
			return OverCall{}, err
		}
		call.Kind = map[string]OverKind{"sum": OverSum, "avg": OverAvg, "min": OverMin, "max": OverMax}[name]
		return call, nil
	}
	return OverCall{}, errorf(CodeNotSupported, "window function %s is not supported (supported: row_number, lag, lead, count, sum, avg, min, max)", name)
}

// constantExpr reports whether e reads no column and no parameter.
func constantExpr(e Expr) bool {
	ok := true
	walkExpr(e, func(x Expr) {
		switch x.(type) {
		case *ColRef, *Param:
			ok = false
		}
	})
	return ok
}
