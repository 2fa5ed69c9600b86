package planner

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// selectMode says what a SELECT is planned for.
type selectMode uint8

const (
	modeBatch  selectMode = iota // a snapshot query: SELECT … FROM table | continuous query
	modeStream                   // the body of a continuous query over a stream
)

// bindSelect builds the logical plan of a SELECT.
func (p *Planner) bindSelect(sel *ast.SelectStmt, mode selectMode, prm *params) (Node, error) {
	switch {
	case sel.With != nil:
		return nil, errorf(CodeNotSupported, "WITH is not supported%s", chainHint(mode))
	case sel.Kind != ast.SelectStmtKindSelect:
		return nil, errorf(CodeNotSupported, "only SELECT … queries are supported here")
	case len(sel.WindowSpecs) > 0:
		return nil, errorf(CodeNotSupported, "WINDOW clauses are not supported yet")
	case sel.LockInfo != nil && sel.LockInfo.LockType != ast.SelectLockNone:
		return nil, errorf(CodeNotSupported, "SELECT … FOR UPDATE is not supported")
	}
	node, scope, scan, where, err := p.bindFrom(sel.From, sel.Where, mode, prm)
	if err != nil {
		return nil, err
	}
	// Checked on the FROM itself, before WHERE wraps it.
	if sc, ok := node.(*Scan); ok && mode == modeStream && sc.TableLike() {
		return nil, errorf(CodeNotSupported, "a continuous query reads a stream or an append-only continuous query; %q is read as a table (join it to a stream instead)", sc.Relation)
	}
	in := &binder{scope: scope, params: prm, where: "WHERE"}
	if where != nil {
		pred, err := in.expr(where)
		if err != nil {
			return nil, err
		}
		if pred, err = requireBool(pred, "WHERE"); err != nil {
			return nil, err
		}
		node = &Filter{Input: node, Pred: pred}
	}
	items, err := expandFields(sel.Fields, scope)
	if err != nil {
		return nil, err
	}
	if wf := findWindowFuncs(items); len(wf) > 0 {
		if sel.GroupBy != nil || hasAggregate(sel) || sel.Distinct {
			return nil, errorf(CodeNotSupported, "OVER windows cannot be combined with GROUP BY, aggregates or DISTINCT in one query; aggregate in a second continuous query")
		}
		if node, err = p.bindOver(node, items, wf, scope, scan, mode, prm); err != nil {
			return nil, err
		}
		if mode == modeStream {
			if sel.OrderBy != nil || sel.Limit != nil {
				return nil, errorf(CodeNotSupported, "ORDER BY and LIMIT are not supported in a continuous query")
			}
			return node, nil
		}
		return p.bindOrderLimit(node, sel, prm)
	}
	if sel.GroupBy != nil || hasAggregate(sel) || (sel.Distinct && mode == modeStream) {
		node, err = p.bindAggregate(node, sel, items, scope, scan, mode, prm)
		if err != nil {
			return nil, err
		}
	} else {
		exprs := make([]Expr, len(items))
		names := make([]string, len(items))
		in.where = "the select list"
		for i, it := range items {
			if exprs[i], err = in.expr(it.expr); err != nil {
				return nil, err
			}
			exprs[i] = finalType(exprs[i])
			names[i] = it.name
		}
		if sel.OrderBy != nil && mode == modeBatch {
			return p.bindOrderedProject(node, sel, exprs, names, in, prm)
		}
		node = &Project{Input: node, Exprs: exprs, Names: names}
		if sel.Distinct {
			node = distinct(node)
		}
	}
	if mode == modeStream {
		if sel.OrderBy != nil {
			return nil, errorf(CodeNotSupported, "ORDER BY is not supported in a continuous query; order the rows when you SELECT from it")
		}
		if sel.Limit != nil {
			return nil, errorf(CodeNotSupported, "LIMIT is not supported in a continuous query")
		}
		return node, nil
	}
	return p.bindOrderLimit(node, sel, prm)
}

// finalType gives untyped literals in a select list their PostgreSQL type.
func finalType(e Expr) Expr {
	if untyped(e) {
		if p, ok := e.(*Param); ok {
			return &Param{N: p.N, T: TypeText}
		}
		return castTo(e, TypeText)
	}
	return e
}

func distinct(n Node) Node {
	cols := n.Columns()
	keys := make([]Expr, len(cols))
	names := make([]string, len(cols))
	for i, c := range cols {
		keys[i] = &ColRef{Index: i, Name: c.Name, T: c.Type}
		names[i] = c.Name
	}
	return &Aggregate{Input: n, Keys: keys, KeyNames: names, Mode: AggBatch}
}

// selectItem is one output column before binding.
type selectItem struct {
	expr ast.ExprNode
	name string
}

func expandFields(fields *ast.FieldList, scope []scopeColumn) ([]selectItem, error) {
	var out []selectItem
	for _, f := range fields.Fields {
		if f.WildCard != nil {
			q := f.WildCard.Table.O
			n := 0
			for _, c := range scope {
				if q != "" && c.qualifier != q {
					continue
				}
				cn := &ast.ColumnName{Name: ast.NewCIStr(c.name), Table: ast.NewCIStr(c.qualifier)}
				out = append(out, selectItem{expr: &ast.ColumnNameExpr{Name: cn}, name: c.name})
				n++
			}
			if n == 0 && q != "" {
				return nil, errorf(CodeUndefinedTable, "missing FROM-clause entry for table %q", q)
			}
			continue
		}
		name := f.AsName.O
		if name == "" {
			name = exprName(f.Expr)
		}
		out = append(out, selectItem{expr: f.Expr, name: name})
	}
	return out, nil
}

func hasAggregate(sel *ast.SelectStmt) bool {
	found := false
	v := &aggFinder{found: &found}
	for _, f := range sel.Fields.Fields {
		if f.Expr != nil {
			f.Expr.Accept(v)
		}
	}
	if sel.Having != nil {
		sel.Having.Expr.Accept(v)
	}
	return found
}

type aggFinder struct{ found *bool }

func (a *aggFinder) Enter(n ast.Node) (ast.Node, bool) {
	if _, ok := n.(*ast.AggregateFuncExpr); ok {
		*a.found = true
		return n, true
	}
	return n, false
}

func (a *aggFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// bindAggregate plans GROUP BY, windows, aggregates, HAVING and the select
// list over the aggregate's output.
func (p *Planner) bindAggregate(input Node, sel *ast.SelectStmt, items []selectItem, scope []scopeColumn, scan *Scan, mode selectMode, prm *params) (Node, error) {
	in := &binder{scope: scope, params: prm, where: "GROUP BY"}
	agg := &Aggregate{Input: input}
	groupBy := sel.GroupBy
	if groupBy == nil && sel.Distinct && !hasAggregate(sel) {
		// SELECT DISTINCT a, b is GROUP BY a, b.
		groupBy = &ast.GroupByClause{}
		for _, it := range items {
			groupBy.Items = append(groupBy.Items, &ast.ByItem{Expr: it.expr})
		}
	}
	// A plain column window_start or window_end in the GROUP BY of a
	// windowed aggregate (over a windowed result) would name the input's
	// column there and the new window's bound in the select list.
	var boundKey *ast.ColumnNameExpr
	if groupBy != nil {
		for _, item := range groupBy.Items {
			n := item.Expr
			// GROUP BY 1 and GROUP BY alias refer to the select list.
			if i, ok := constInt(n); ok {
				if i < 1 || int(i) > len(items) {
					return nil, errorf(CodeInvalidDefinition, "GROUP BY position %d is not in select list", i)
				}
				n = items[i-1].expr
			} else if cn, ok := n.(*ast.ColumnNameExpr); ok && cn.Name.Table.O == "" {
				if _, err := in.column(cn.Name); err != nil {
					for _, it := range items {
						if it.name == cn.Name.Name.O {
							n = it.expr
						}
					}
				}
			}
			if fc, ok := n.(*ast.FuncCallExpr); ok && isWindowFunc(fc.FnName.L) {
				if agg.Window != nil {
					return nil, errorf(CodeInvalidDefinition, "only one window function is allowed in GROUP BY")
				}
				w, err := p.bindWindow(fc, in, scan, mode)
				if err != nil {
					return nil, err
				}
				agg.Window = w
				continue
			}
			if cn, ok := n.(*ast.ColumnNameExpr); ok && boundKey == nil && (cn.Name.Name.L == "window_start" || cn.Name.Name.L == "window_end") {
				boundKey = cn
			}
			k, err := in.expr(n)
			if err != nil {
				return nil, err
			}
			agg.Keys = append(agg.Keys, k)
			agg.KeyNames = append(agg.KeyNames, keyName(k, len(agg.Keys)-1))
		}
	}
	if agg.Window != nil && boundKey != nil {
		name := boundKey.Name.Name.L
		bound, short := "start", "ws"
		if name == "window_end" {
			bound, short = "end", "we"
		}
		fix := fmt.Sprintf("rename it in the query that writes %q (SELECT %s AS %s, …)", scan.Relation, name, short)
		if scan.Kind != RelContinuousQuery {
			fix = fmt.Sprintf("rename the column of %q", scan.Relation)
		}
		return nil, errorf(CodeAmbiguousColumn, "GROUP BY %s is ambiguous: it is both a column of %q and the %s of the new window; %s and group by the new name", name, scan.Relation, bound, fix)
	}
	switch {
	case agg.Window != nil:
		agg.Mode = AggWindowed
	case mode == modeStream:
		agg.Mode = AggUpdating
	default:
		agg.Mode = AggBatch
	}
	// The aggregate's output layout.
	offset := 0
	if agg.Mode == AggUpdating {
		offset = 1
	}
	keyCol := func(i int) Expr {
		return &ColRef{Index: offset + i, Name: agg.KeyNames[i], T: agg.Keys[i].Type()}
	}
	nWin := 0
	if agg.Window != nil {
		nWin = 2
	}
	aggIndex := map[string]int{}
	post := &binder{params: prm, where: "the select list"}
	post.agg = func(x *ast.AggregateFuncExpr) (Expr, error) {
		call, err := bindAggCall(x, in)
		if err != nil {
			return nil, err
		}
		key := call.Kind.String()
		if call.Arg != nil {
			key += "(" + exprKey(call.Arg) + ")"
		}
		i, ok := aggIndex[key]
		if !ok {
			i = len(agg.Aggs)
			call.Name = "agg" + strconv.Itoa(i)
			agg.Aggs = append(agg.Aggs, call)
			aggIndex[key] = i
		}
		return &ColRef{Index: offset + len(agg.Keys) + nWin + i, Name: strings.ToLower(x.F), T: agg.Aggs[i].T}, nil
	}
	post.match = func(n ast.ExprNode) (Expr, bool, error) {
		if cn, ok := n.(*ast.ColumnNameExpr); ok && agg.Window != nil && cn.Name.Table.O == "" {
			switch cn.Name.Name.L {
			case "window_start":
				return &ColRef{Index: offset + len(agg.Keys), Name: "window_start", T: agg.Window.Time.T}, true, nil
			case "window_end":
				return &ColRef{Index: offset + len(agg.Keys) + 1, Name: "window_end", T: agg.Window.Time.T}, true, nil
			}
		}
		if _, ok := n.(*ast.AggregateFuncExpr); ok {
			return nil, false, nil
		}
		probe := &binder{scope: scope, params: &params{}, where: "GROUP BY"}
		e, err := probe.expr(n)
		if err != nil {
			if cn, ok := n.(*ast.ColumnNameExpr); ok {
				if _, cerr := in.column(cn.Name); cerr == nil {
					return nil, false, errorf(CodeGrouping, "column %q must appear in the GROUP BY clause or be used in an aggregate function", cn.Name.Name.O)
				}
			}
			return nil, false, nil
		}
		k := exprKey(e)
		for i, key := range agg.Keys {
			if exprKey(key) == k {
				return keyCol(i), true, nil
			}
		}
		if cn, ok := n.(*ast.ColumnNameExpr); ok {
			return nil, false, errorf(CodeGrouping, "column %q must appear in the GROUP BY clause or be used in an aggregate function", cn.Name.Name.O)
		}
		return nil, false, nil
	}
	exprs := make([]Expr, 0, len(items)+1)
	names := make([]string, 0, len(items)+1)
	for _, it := range items {
		e, err := post.expr(it.expr)
		if err != nil {
			return nil, err
		}
		exprs = append(exprs, finalType(e))
		names = append(names, it.name)
	}
	var having Expr
	if sel.Having != nil {
		post.where = "HAVING"
		h, err := post.expr(sel.Having.Expr)
		if err != nil {
			return nil, err
		}
		if having, err = requireBool(h, "HAVING"); err != nil {
			return nil, err
		}
	}
	var node Node = agg
	if having != nil {
		node = &Filter{Input: node, Pred: having}
	}
	if agg.Mode == AggUpdating {
		exprs = append([]Expr{&ColRef{Index: 0, Name: "op", T: TypeText}}, exprs...)
		names = append([]string{"op"}, names...)
	}
	return &Project{Input: node, Exprs: exprs, Names: names}, nil
}

func keyName(k Expr, i int) string {
	if c, ok := k.(*ColRef); ok {
		return c.Name
	}
	return "key" + strconv.Itoa(i)
}

func isWindowFunc(name string) bool {
	return name == "tumble" || name == "hop" || name == "spate_session"
}

// bindWindow binds TUMBLE(t, size), HOP(t, slide, size), SESSION(t, gap).
// MaxHopWindows bounds the windows a HOP puts each row in: every one
// holds state per key, and a row is added to each of them.
const MaxHopWindows = 10000

func (p *Planner) bindWindow(fc *ast.FuncCallExpr, in *binder, scan *Scan, mode selectMode) (*Window, error) {
	name := strings.TrimPrefix(fc.FnName.L, "spate_")
	want := map[string]int{"tumble": 2, "hop": 3, "session": 2}[name]
	// TUMBLE and HOP take an optional last argument: the offset of the
	// windows' starts from the epoch.
	if len(fc.Args) != want && !(name != "session" && len(fc.Args) == want+1) {
		return nil, errorf(CodeUndefinedFunction, "%s expects %d arguments, got %d", strings.ToUpper(name), want, len(fc.Args))
	}
	t, err := in.expr(fc.Args[0])
	if err != nil {
		return nil, err
	}
	ref, ok := t.(*ColRef)
	if !ok {
		return nil, errorf(CodeInvalidDefinition, "the first argument of %s must be the event-time column", strings.ToUpper(name))
	}
	w := &Window{Time: ref, TimeUnit: 1}
	if scan == nil {
		return nil, errorf(CodeNotSupported, "windows over a join are not supported yet: join in one continuous query and aggregate its result in another")
	}
	if mode == modeStream {
		et := scan.EventTime
		if et < 0 {
			if scan.Stream != nil {
				return nil, errorf(CodeInvalidDefinition, "stream %q has no event-time column: declare it with WITH (event_time = '<column>')", scan.Stream.Name)
			}
			return nil, errorf(CodeInvalidDefinition, "%q has no event-time column to window on (a windowed continuous query offers window_end)", scan.Relation)
		}
		if scan.Indexes[ref.Index] != et {
			return nil, errorf(CodeInvalidDefinition, "%s must use the event-time column %q of %q, not %q", strings.ToUpper(name), scan.Cols[et].Name, scan.Relation, ref.Name)
		}
		w.TimeUnit = scan.TimeUnit
	} else if ref.T != TypeTimestamp {
		return nil, errorf(CodeDatatypeMismatch, "%s over a %s needs a timestamp column, %q is %s", strings.ToUpper(name), scan.Kind, ref.Name, ref.T)
	}
	durs := make([]int64, 0, 2)
	for _, a := range fc.Args[1:] {
		e, err := in.expr(a)
		if err != nil {
			return nil, err
		}
		c, ok := e.(*Const)
		if !ok || c.T != TypeInterval {
			return nil, errorf(CodeDatatypeMismatch, "%s sizes must be constant intervals such as INTERVAL '1' MINUTE", strings.ToUpper(name))
		}
		d := c.Value.(int64)
		if d <= 0 && len(durs) < want-1 {
			return nil, errorf(CodeInvalidParameter, "%s sizes must be positive", strings.ToUpper(name))
		}
		if d%w.TimeUnit != 0 {
			return nil, errorf(CodeInvalidParameter, "%s size %s is not a whole number of the event-time unit", strings.ToUpper(name), formatMicros(d))
		}
		durs = append(durs, d)
	}
	if len(durs) == want {
		w.Offset = durs[want-1]
	}
	switch name {
	case "tumble":
		w.Kind, w.Size = WindowTumble, durs[0]
		w.Offset = ((w.Offset % w.Size) + w.Size) % w.Size
	case "hop":
		w.Kind, w.Slide, w.Size = WindowHop, durs[0], durs[1]
		w.Offset = ((w.Offset % w.Slide) + w.Slide) % w.Slide
		if w.Size < w.Slide {
			return nil, errorf(CodeInvalidParameter, "HOP size (%s) must not be smaller than its slide (%s)", formatMicros(w.Size), formatMicros(w.Slide))
		}
		if n := (w.Size + w.Slide - 1) / w.Slide; n > MaxHopWindows {
			return nil, errorf(CodeInvalidParameter, "HOP of size %s and slide %s puts each row in %d windows; at most %d (a longer slide, or a TUMBLE window and a second query over its result)",
				formatMicros(w.Size), formatMicros(w.Slide), n, MaxHopWindows)
		}
	case "session":
		w.Kind, w.Gap = WindowSession, durs[0]
	}
	return w, nil
}

func bindAggCall(x *ast.AggregateFuncExpr, in *binder) (AggCall, error) {
	f := strings.ToLower(x.F)
	inner := *in
	inner.agg = nil
	inner.where = "aggregate function calls"
	var arg Expr
	if len(x.Args) > 1 {
		return AggCall{}, errorf(CodeUndefinedFunction, "function %s with %d arguments does not exist", f, len(x.Args))
	}
	if len(x.Args) == 1 {
		var err error
		if arg, err = inner.expr(x.Args[0]); err != nil {
			return AggCall{}, err
		}
	}
	call := AggCall{Arg: arg}
	switch f {
	case "count":
		call.T = TypeBigInt
		switch {
		case x.Distinct:
			call.Kind = AggCountDistinct
		case arg == nil:
			call.Kind = AggCountStar
		default:
			if c, ok := arg.(*Const); ok && c.Value != nil {
				call.Kind, call.Arg = AggCountStar, nil
			} else {
				call.Kind = AggCount
			}
		}
		if call.Arg != nil && untyped(call.Arg) {
			call.Arg = castTo(call.Arg, TypeText)
		}
		return call, nil
	case "sum", "avg", "min", "max":
	default:
		return AggCall{}, errorf(CodeUndefinedFunction, "aggregate function %s does not exist", f)
	}
	if arg == nil {
		return AggCall{}, errorf(CodeUndefinedFunction, "%s(*) does not exist", f)
	}
	if untyped(arg) {
		arg = castTo(arg, TypeDouble)
		call.Arg = arg
	}
	if x.Distinct {
		return AggCall{}, errorf(CodeNotSupported, "%s(DISTINCT …) is not supported; only COUNT(DISTINCT …)", f)
	}
	t, err := aggResultType(f, arg.Type())
	if err != nil {
		return AggCall{}, err
	}
	call.T = t
	call.Kind = map[string]AggKind{"sum": AggSum, "avg": AggAvg, "min": AggMin, "max": AggMax}[f]
	return call, nil
}

// bindOrderedProject plans SELECT … ORDER BY for a non-aggregating query:
// sort keys may name output columns, positions or input expressions.
func (p *Planner) bindOrderedProject(input Node, sel *ast.SelectStmt, exprs []Expr, names []string, in *binder, prm *params) (Node, error) {
	all := append([]Expr(nil), exprs...)
	allNames := append([]string(nil), names...)
	var keys []SortKey
	for _, item := range sel.OrderBy.Items {
		idx, err := outputRef(item.Expr, names)
		if err != nil {
			return nil, err
		}
		if idx < 0 {
			e, err := in.expr(item.Expr)
			if err != nil {
				return nil, err
			}
			idx = -1
			for i, x := range all {
				if exprKey(x) == exprKey(e) {
					idx = i
				}
			}
			if idx < 0 {
				all = append(all, e)
				allNames = append(allNames, "?order?")
				idx = len(all) - 1
			}
		}
		keys = append(keys, sortKey(item, &ColRef{Index: idx, Name: allNames[idx], T: all[idx].Type()}))
	}
	var node Node = &Project{Input: input, Exprs: all, Names: allNames}
	if sel.Distinct {
		if len(all) != len(exprs) {
			return nil, errorf(CodeInvalidDefinition, "for SELECT DISTINCT, ORDER BY expressions must appear in select list")
		}
		node = distinct(node)
	}
	lim, off, err := limitOffset(sel.Limit)
	if err != nil {
		return nil, err
	}
	node = &Sort{Input: node, Keys: keys, Limit: lim, Offset: off}
	if len(all) > len(exprs) {
		node = trimColumns(node, len(exprs))
	}
	return node, nil
}

func trimColumns(n Node, width int) Node {
	cols := n.Columns()
	exprs := make([]Expr, width)
	names := make([]string, width)
	for i := 0; i < width; i++ {
		exprs[i] = &ColRef{Index: i, Name: cols[i].Name, T: cols[i].Type}
		names[i] = cols[i].Name
	}
	return &Project{Input: n, Exprs: exprs, Names: names}
}

func sortKey(item *ast.ByItem, e Expr) SortKey {
	// PostgreSQL: NULLS LAST for ascending, NULLS FIRST for descending.
	return SortKey{Expr: e, Desc: item.Desc, NullsFirst: item.Desc}
}

// outputRef resolves ORDER BY <position> or ORDER BY <output name>; -1
// when the item is another expression.
func outputRef(n ast.ExprNode, names []string) (int, error) {
	if i, ok := constInt(n); ok {
		if i < 1 || int(i) > len(names) {
			return 0, errorf(CodeInvalidDefinition, "ORDER BY position %d is not in select list", i)
		}
		return int(i) - 1, nil
	}
	if cn, ok := n.(*ast.ColumnNameExpr); ok && cn.Name.Table.O == "" {
		found := -1
		for i, name := range names {
			if name == cn.Name.Name.O {
				if found >= 0 {
					return 0, errorf(CodeAmbiguousColumn, "ORDER BY %q is ambiguous", name)
				}
				found = i
			}
		}
		return found, nil
	}
	return -1, nil
}

// bindOrderLimit adds ORDER BY (over output columns) and LIMIT to a batch
// query whose select list is already planned.
func (p *Planner) bindOrderLimit(node Node, sel *ast.SelectStmt, prm *params) (Node, error) {
	if sel.OrderBy == nil && sel.Limit == nil {
		return node, nil
	}
	cols := node.Columns()
	names := make([]string, len(cols))
	scope := make([]scopeColumn, len(cols))
	for i, c := range cols {
		names[i] = c.Name
		scope[i] = scopeColumn{name: c.Name, typ: c.Type}
	}
	var keys []SortKey
	if sel.OrderBy != nil {
		for _, item := range sel.OrderBy.Items {
			idx, err := outputRef(item.Expr, names)
			if err != nil {
				return nil, err
			}
			var e Expr
			if idx >= 0 {
				e = &ColRef{Index: idx, Name: names[idx], T: cols[idx].Type}
			} else {
				b := &binder{scope: scope, params: prm, where: "ORDER BY"}
				if e, err = b.expr(item.Expr); err != nil {
					return nil, err
				}
				if _, ok := e.(*ColRef); !ok {
					return nil, errorf(CodeNotSupported, "ORDER BY an expression over an aggregate result: name it in the select list and order by its name")
				}
			}
			keys = append(keys, sortKey(item, e))
		}
	}
	lim, off, err := limitOffset(sel.Limit)
	if err != nil {
		return nil, err
	}
	return &Sort{Input: node, Keys: keys, Limit: lim, Offset: off}, nil
}

func limitOffset(l *ast.Limit) (int64, int64, error) {
	if l == nil {
		return -1, 0, nil
	}
	lim, off := int64(-1), int64(0)
	if l.Count != nil {
		n, ok := constInt(l.Count)
		if !ok || n < 0 {
			return 0, 0, errorf(CodeInvalidParameter, "LIMIT must be a non-negative integer constant")
		}
		lim = n
	}
	if l.Offset != nil {
		n, ok := constInt(l.Offset)
		if !ok || n < 0 {
			return 0, 0, errorf(CodeInvalidParameter, "OFFSET must be a non-negative integer constant")
		}
		off = n
	}
	return lim, off, nil
}

// aggResultType is the result type of SUM, AVG, MIN or MAX over t, as in
// PostgreSQL (with NUMERIC results as double precision).
func aggResultType(f string, t Type) (Type, error) {
	switch f {
	case "sum":
		switch {
		case t.IsInteger():
			return TypeBigInt, nil
		case t == TypeDouble || t == TypeInterval:
			return t, nil
		}
	case "avg":
		switch {
		case t.IsNumeric():
			return TypeDouble, nil
		case t == TypeInterval:
			return TypeInterval, nil
		}
	case "min", "max":
		return t, nil
	}
	return 0, errorf(CodeUndefinedFunction, "function %s(%s) does not exist", f, t)
}
