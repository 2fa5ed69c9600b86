package pgcatalog

import (
	"context"
	"sort"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
)

// binding is a column in scope: its qualifier (table alias), name and type.
type binding struct {
	qual, name string
	typ        pgType
}

// rowset is a relation while a query runs.
type rowset struct {
	cols []binding
	rows [][]any
}

// engine runs one statement against a snapshot.
type engine struct {
	ctx    context.Context
	snap   *snapshot
	params []any
	ctes   map[string]*rowset // the WITH queries in scope, by name
	steps  int                // join pairs looked at so far, against maxSteps
	values int                // values of the join rows kept so far, against maxValues
}

// maxSteps and maxValues bound the pairs of rows a catalog query's joins
// may look at and the values of the rows they keep (the largest client
// query looks at a few hundred thousand pairs), so that a cross join of
// catalog tables can take neither the server's time nor its memory.
const (
	maxSteps  = 50_000_000
	maxValues = 20_000_000
)

// step counts n join pairs and checks the budget and, every 64k pairs,
// cancellation (a cancel request or statement timeout).
func (e *engine) step(n int) error {
	before := e.steps
	e.steps += n
	if e.steps > maxSteps {
		return errorf("54000", "catalog query too large: its joins look at more than %d pairs of rows", maxSteps)
	}
	if before>>16 != e.steps>>16 {
		return e.ctx.Err()
	}
	return nil
}

// keep counts a kept join row of n values.
func (e *engine) keep(n int) error {
	e.values += n
	if e.values > maxValues {
		return errorf("54000", "catalog query too large: its joins keep more than %d values", maxValues)
	}
	return nil
}

// env is where an expression is evaluated: the columns in scope and the
// current row, the rows of the current group when aggregating, the values
// of window functions and set-returning functions for the current output
// row, and the enclosing query's env for correlated subqueries.
type env struct {
	cols    []binding
	row     []any
	group   [][]any // nil unless aggregating
	windows map[*ast.WindowFuncExpr][]any
	rowIdx  int
	srf     map[ast.ExprNode]any // set-returning calls' values for the current output row
	outer   *env
}

// column finds a column by qualifier and name here or in an enclosing
// scope. depth is how many scopes out it was found.
func (en *env) column(qual, name string) (*env, int, error) {
	for e := en; e != nil; e = e.outer {
		found := -1
		for i, b := range e.cols {
			if b.name == name && (qual == "" || b.qual == qual) {
				if found >= 0 {
					return nil, 0, errorf(codeAmbiguousColumn, "column reference %q is ambiguous", name)
				}
				found = i
			}
		}
		if found >= 0 {
			return e, found, nil
		}
	}
	if qual != "" {
		return nil, 0, errorf(codeUndefinedColumn, "column %s.%s does not exist", qual, name)
	}
	return nil, 0, errorf(codeUndefinedColumn, "column %q does not exist", name)
}

// with makes the common table expressions of a WITH clause readable by
// name until the returned function restores the names they shadow. With
// rows false only their columns are known (for typing).
func (e *engine) with(w *ast.WithClause, outer *env, rows bool) (func(), error) {
	if w.IsRecursive {
		return nil, errorf(codeNotSupported, "WITH RECURSIVE is not supported in catalog queries")
	}
	if e.ctes == nil {
		e.ctes = map[string]*rowset{}
	}
	saved := map[string]*rowset{}
	restore := func() {
		for name, rs := range saved {
			if rs == nil {
				delete(e.ctes, name)
			} else {
				e.ctes[name] = rs
			}
		}
	}
	for _, c := range w.CTEs {
		var rs *rowset
		if rows {
			r, err := e.run(c.Query.Query, outer)
			if err != nil {
				restore()
				return nil, err
			}
			rs = &rowset{cols: append([]binding(nil), r.cols...), rows: r.rows}
		} else {
			cols, err := e.columnsOf(c.Query.Query, outer)
			if err != nil {
				restore()
				return nil, err
			}
			rs = &rowset{cols: append([]binding(nil), cols...)}
		}
		for i, n := range c.ColNameList {
			if i < len(rs.cols) {
				rs.cols[i].name = n.O
			}
		}
		name := c.Name.O
		if _, done := saved[name]; !done {
			saved[name] = e.ctes[name]
		}
		e.ctes[name] = rs
	}
	return restore, nil
}

// cte returns the common table expression a FROM name reads, or nil.
func (e *engine) cte(tn *ast.TableName) *rowset {
	if tn.Schema.O != "" {
		return nil
	}
	return e.ctes[tn.Name.O]
}

// run evaluates a query (SELECT or a set operation).
func (e *engine) run(node ast.Node, outer *env) (*rowset, error) {
	switch x := node.(type) {
	case *ast.SelectStmt:
		return e.selectStmt(x, outer)
	case *ast.SetOprStmt:
		if x.With != nil {
			restore, err := e.with(x.With, outer, true)
			if err != nil {
				return nil, err
			}
			defer restore()
		}
		return e.setOpr(x.SelectList, x.OrderBy, x.Limit, outer)
	case *ast.SetOprSelectList:
		return e.setOpr(x, nil, nil, outer)
	}
	return nil, errorf(codeNotSupported, "%T is not supported in catalog queries", node)
}

// setOpr runs UNION [ALL] (INTERSECT and EXCEPT are not supported).
func (e *engine) setOpr(list *ast.SetOprSelectList, order *ast.OrderByClause, limit *ast.Limit, outer *env) (*rowset, error) {
	var out *rowset
	for i, n := range list.Selects {
		rs, err := e.run(n, outer)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			out = &rowset{cols: rs.cols, rows: rs.rows}
			continue
		}
		var opType *ast.SetOprType
		switch s := n.(type) {
		case *ast.SelectStmt:
			opType = s.AfterSetOperator
		case *ast.SetOprSelectList:
			opType = s.AfterSetOperator
		case *ast.SetOprStmt:
			if s.SelectList != nil {
				opType = s.SelectList.AfterSetOperator
			}
		}
		if len(rs.cols) != len(out.cols) {
			return nil, errorf(codeSyntax, "each UNION query must have the same number of columns")
		}
		if opType == nil {
			return nil, errorf(codeNotSupported, "this set operation is not supported in catalog queries")
		}
		out.rows = setOperation(*opType, out.rows, rs.rows)
	}
	if order != nil {
		keys := make([]int, len(order.Items))
		for k, it := range order.Items {
			keys[k] = -1
			switch x := it.Expr.(type) {
			case *ast.PositionExpr:
				keys[k] = x.N - 1
			case *ast.ColumnNameExpr:
				for i, c := range out.cols {
					if c.name == x.Name.Name.O {
						keys[k] = i
					}
				}
			}
			if keys[k] < 0 || keys[k] >= len(out.cols) {
				return nil, errorf(codeNotSupported, "ORDER BY of a UNION must name an output column")
			}
		}
		sort.SliceStable(out.rows, func(a, b int) bool {
			for k, it := range order.Items {
				c := sortCompare(out.rows[a][keys[k]], out.rows[b][keys[k]])
				if it.Desc {
					c = -c
				}
				if c != 0 {
					return c < 0
				}
			}
			return false
		})
	}
	return e.limit(out, limit, outer)
}

// setOperation combines the rows of two queries: UNION, INTERSECT and
// EXCEPT, with ALL as multisets, else as sets.
func setOperation(op ast.SetOprType, a, b [][]any) [][]any {
	switch op {
	case ast.UnionAll:
		return append(a, b...)
	case ast.Union:
		return distinctRows(append(a, b...))
	}
	inB := map[string]int{}
	for _, r := range b {
		inB[rowKey(r)]++
	}
	var out [][]any
	for _, r := range a {
		k := rowKey(r)
		switch op {
		case ast.Intersect, ast.IntersectAll:
			if inB[k] > 0 {
				out = append(out, r)
				if op == ast.IntersectAll {
					inB[k]--
				}
			}
		case ast.Except, ast.ExceptAll:
			if inB[k] == 0 {
				out = append(out, r)
			} else if op == ast.ExceptAll {
				inB[k]--
			}
		}
	}
	if op == ast.Intersect || op == ast.Except {
		out = distinctRows(out)
	}
	return out
}

func distinctRows(rows [][]any) [][]any {
	seen := map[string]bool{}
	out := rows[:0]
	for _, r := range rows {
		k := rowKey(r)
		if !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	return out
}

func rowKey(r []any) string {
	var sb strings.Builder
	for _, v := range r {
		if v == nil {
			sb.WriteString("\x00N")
		} else {
			sb.WriteString("\x00V")
			sb.WriteString(text(v))
		}
	}
	return sb.String()
}

func (e *engine) limit(rs *rowset, l *ast.Limit, outer *env) (*rowset, error) {
	if l == nil {
		return rs, nil
	}
	en := &env{outer: outer}
	if l.Offset != nil {
		v, err := e.eval(l.Offset, en)
		if err != nil {
			return nil, err
		}
		n, err := toInt(v)
		if err != nil {
			return nil, err
		}
		rs.rows = rs.rows[min(int(max(n, 0)), len(rs.rows)):]
	}
	if l.Count != nil {
		v, err := e.eval(l.Count, en)
		if err != nil {
			return nil, err
		}
		if v != nil {
			n, err := toInt(v)
			if err != nil {
				return nil, err
			}
			rs.rows = rs.rows[:min(int(max(n, 0)), len(rs.rows))]
		}
	}
	return rs, nil
}

// from evaluates a FROM item. where, when not nil, holds the WHERE
// conditions the item may apply early (see pushdown).
func (e *engine) from(node ast.ResultSetNode, outer *env, where *pushdown) (*rowset, error) {
	switch x := node.(type) {
	case *ast.Join:
		// The WHERE clause filters a join's output, so its conditions may
		// filter the rows of either side, except the side an outer join
		// pads with NULLs.
		lw, rw := where, where
		switch x.Tp {
		case ast.LeftJoin:
			rw = nil
		case ast.RightJoin:
			lw = nil
		}
		left, err := e.from(x.Left, outer, lw)
		if err != nil {
			return nil, err
		}
		if x.Right == nil {
			return left, nil
		}
		right, err := e.from(x.Right, outer, rw)
		if err != nil {
			return nil, err
		}
		out, err := e.join(x, left, right, outer, where)
		if err != nil {
			return nil, err
		}
		return e.filter(out, outer, where)
	case *ast.TableSource:
		var rs *rowset
		qual := x.AsName.O
		switch src := x.Source.(type) {
		case *ast.TableName:
			if c := e.cte(src); c != nil {
				if qual == "" {
					qual = src.Name.O
				}
				rs = c
				break
			}
			r := e.snap.lookup(src.Schema.O, src.Name.O)
			if r == nil {
				name := src.Name.O
				if src.Schema.O != "" {
					name = src.Schema.O + "." + name
				}
				return nil, errorf(codeUndefinedTable, "relation %q does not exist", name)
			}
			t, err := e.snap.table(r)
			if err != nil {
				return nil, err
			}
			if qual == "" {
				qual = src.Name.O
			}
			rs = &rowset{rows: t.rows}
			for _, c := range t.cols {
				rs.cols = append(rs.cols, binding{name: c.name, typ: c.typ})
			}
		case *ast.Join:
			return e.from(src, outer, where)
		default:
			sub, err := e.run(src, outer)
			if err != nil {
				return nil, err
			}
			rs = &rowset{rows: sub.rows, cols: append([]binding(nil), sub.cols...)}
			if names := recordColumns(src); names != nil {
				rs = expandRecords(rs, names)
			}
			for i, n := range x.ColumnNames {
				if i < len(rs.cols) {
					rs.cols[i].name = n.O
				}
			}
		}
		cols := make([]binding, len(rs.cols))
		for i, c := range rs.cols {
			cols[i] = binding{qual: qual, name: c.name, typ: c.typ}
		}
		return e.filter(&rowset{cols: cols, rows: rs.rows}, outer, where)
	}
	return nil, errorf(codeNotSupported, "%T is not supported in FROM of catalog queries", node)
}

// pushdown is a WHERE clause split at its ANDs, for FROM items to apply
// the conditions they can decide early: a catalog query joins many
// relations with the conditions in WHERE (FROM a, b, c WHERE a.x = b.y AND
// c.name = 't'), and joining first would look at the product of them all.
// The WHERE clause still runs in full after the joins.
type pushdown struct {
	conds [][]columnRef // per condition its column references; nil: never early
	exprs []ast.ExprNode
	all   []binding // every column the FROM clause brings into scope
}

type columnRef struct{ qual, name string }

func newPushdown(where ast.ExprNode, all []binding) *pushdown {
	p := &pushdown{all: all}
	var split func(x ast.ExprNode)
	split = func(x ast.ExprNode) {
		if b, ok := x.(*ast.BinaryOperationExpr); ok && b.Op == opcode.LogicAnd {
			split(b.L)
			split(b.R)
			return
		}
		if pe, ok := x.(*ast.ParenthesesExpr); ok {
			split(pe.Expr)
			return
		}
		v := &refCollector{}
		x.Accept(v)
		if v.opaque {
			return
		}
		p.conds = append(p.conds, v.refs)
		p.exprs = append(p.exprs, x)
	}
	split(where)
	return p
}

// applicable lists the conditions whose columns are all among cols (or
// belong to no FROM item: an enclosing query's).
func (p *pushdown) applicable(cols []binding) []ast.ExprNode {
	if p == nil {
		return nil
	}
	var out []ast.ExprNode
	for i, refs := range p.conds {
		ok := true
		for _, r := range refs {
			here, everywhere := 0, 0
			for _, b := range cols {
				if b.name == r.name && (r.qual == "" || b.qual == r.qual) {
					here++
				}
			}
			for _, b := range p.all {
				if b.name == r.name && (r.qual == "" || b.qual == r.qual) {
					everywhere++
				}
			}
			if everywhere > 0 && (here != 1 || everywhere != 1) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, p.exprs[i])
		}
	}
	return out
}

// refCollector gathers a condition's column references; opaque is set
// for conditions with subqueries, aggregates, window or set-returning
// functions, which only the full WHERE evaluates.
type refCollector struct {
	refs   []columnRef
	opaque bool
}

func (v *refCollector) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.ColumnNameExpr:
		v.refs = append(v.refs, columnRef{qual: x.Name.Table.O, name: x.Name.Name.O})
	case *ast.SubqueryExpr, *ast.ExistsSubqueryExpr, *ast.CompareSubqueryExpr, *ast.AggregateFuncExpr, *ast.WindowFuncExpr:
		v.opaque = true
		return n, true
	case *ast.FuncCallExpr:
		if setReturning[x.FnName.L] || aggregates[x.FnName.L] || x.FnName.L == "spate_array" {
			v.opaque = true
			return n, true
		}
	}
	return n, false
}

func (v *refCollector) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// filter keeps the rows of rs that pass the WHERE conditions it can decide.
func (e *engine) filter(rs *rowset, outer *env, where *pushdown) (*rowset, error) {
	conds := where.applicable(rs.cols)
	if len(conds) == 0 {
		return rs, nil
	}
	en := &env{cols: rs.cols, outer: outer}
	kept := rs.rows[:0:0]
	for _, row := range rs.rows {
		en.row = row
		pass := true
		for _, c := range conds {
			v, err := e.eval(c, en)
			if err != nil {
				return nil, err
			}
			if !truth(v) {
				pass = false
				break
			}
		}
		if pass {
			kept = append(kept, row)
		}
	}
	return &rowset{cols: rs.cols, rows: kept}, nil
}

// recordFunctions name the columns of the set-returning functions that
// return records, which a FROM item spreads into columns.
var recordFunctions = map[string][]column{
	"pg_get_keywords": {{name: "word", typ: typText}, {name: "catcode", typ: typeByName["char"]}, {name: "barelabel", typ: typBool},
		{name: "catdesc", typ: typText}, {name: "baredesc", typ: typText}},
	"_pg_expandarray": {{name: "x", typ: typText}, {name: "n", typ: typInt4}},
}

// recordColumns returns the columns of a derived table that is a
// record-returning table function (SELECT f(…) AS alias), or nil.
func recordColumns(src ast.Node) []column {
	sel, ok := src.(*ast.SelectStmt)
	if !ok || sel.From != nil || len(sel.Fields.Fields) != 1 {
		return nil
	}
	call, ok := sel.Fields.Fields[0].Expr.(*ast.FuncCallExpr)
	if !ok {
		return nil
	}
	return recordFunctions[call.FnName.L]
}

// expandRecords spreads a one-column rowset of records into columns.
func expandRecords(rs *rowset, cols []column) *rowset {
	out := &rowset{}
	for _, c := range cols {
		out.cols = append(out.cols, binding{name: c.name, typ: c.typ})
	}
	for _, r := range rs.rows {
		row := make([]any, len(cols))
		if rec, ok := r[0].(record); ok {
			copy(row, rec.vals)
		}
		out.rows = append(out.rows, row)
	}
	return out
}

// join is a nested-loop join; catalog tables are small.
func (e *engine) join(x *ast.Join, left, right *rowset, outer *env, where *pushdown) (*rowset, error) {
	cols := append(append([]binding(nil), left.cols...), right.cols...)
	out := &rowset{cols: cols}
	en := &env{cols: cols, outer: outer}
	var cond func(row []any) (bool, error)
	// equalities are the conditions a = b the join must meet, for the
	// hash lookup below.
	var equalities []ast.ExprNode
	if x.On != nil {
		equalities = conjuncts(x.On.Expr, nil)
	}
	if x.Tp != ast.LeftJoin && x.Tp != ast.RightJoin && x.On == nil && len(x.Using) == 0 && !x.NaturalJoin {
		// A cross join takes the WHERE conditions it can decide as its
		// join condition.
		if conds := where.applicable(cols); len(conds) > 0 {
			equalities = conds
			cond = func(row []any) (bool, error) {
				en.row = row
				for _, c := range conds {
					v, err := e.eval(c, en)
					if err != nil || !truth(v) {
						return false, err
					}
				}
				return true, nil
			}
		}
	}
	switch {
	case x.On != nil:
		cond = func(row []any) (bool, error) {
			en.row = row
			v, err := e.eval(x.On.Expr, en)
			return truth(v), err
		}
	case len(x.Using) > 0 || x.NaturalJoin:
		var pairs [][2]int
		names := []string{}
		for _, u := range x.Using {
			names = append(names, u.Name.O)
		}
		if x.NaturalJoin {
			for _, l := range left.cols {
				for _, r := range right.cols {
					if l.name == r.name {
						names = append(names, l.name)
					}
				}
			}
		}
		for _, n := range names {
			li, ri := -1, -1
			for i, c := range left.cols {
				if c.name == n {
					li = i
				}
			}
			for i, c := range right.cols {
				if c.name == n {
					ri = i
				}
			}
			if li < 0 || ri < 0 {
				return nil, errorf(codeUndefinedColumn, "column %q specified in USING clause does not exist", n)
			}
			pairs = append(pairs, [2]int{li, len(left.cols) + ri})
		}
		cond = func(row []any) (bool, error) {
			for _, p := range pairs {
				if row[p[0]] == nil || row[p[1]] == nil {
					return false, nil
				}
				if c, ok := compare(row[p[0]], row[p[1]]); !ok || c != 0 {
					return false, nil
				}
			}
			return true, nil
		}
	}
	matchedRight := make([]bool, len(right.rows))
	scratch := make([]any, len(cols)) // the pair being looked at; copied when kept
	// With an equality between a left and a right column, each left row
	// looks only at the right rows with an equal value (the condition is
	// still checked in full); otherwise at all of them.
	li, index := hashSide(equalities, left.cols, right)
	all := make([]int, len(right.rows))
	for i := range all {
		all[i] = i
	}
	for _, l := range left.rows {
		candidates := all
		if index != nil && l[li] == nil {
			candidates = nil
		} else if index != nil {
			if k, ok := hashKey(l[li]); ok {
				candidates = index[k]
			}
		}
		if err := e.step(len(candidates)); err != nil {
			return nil, err
		}
		matched := false
		copy(scratch, l)
		for _, ri := range candidates {
			r := right.rows[ri]
			copy(scratch[len(l):], r)
			if cond != nil {
				ok, err := cond(scratch)
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
			}
			matched = true
			matchedRight[ri] = true
			if err := e.keep(len(cols)); err != nil {
				return nil, err
			}
			out.rows = append(out.rows, append([]any(nil), scratch...))
		}
		if !matched && x.Tp == ast.LeftJoin {
			row := make([]any, len(cols))
			copy(row, l)
			out.rows = append(out.rows, row)
		}
	}
	if x.Tp == ast.RightJoin {
		for ri, r := range right.rows {
			if !matchedRight[ri] {
				row := make([]any, len(cols))
				copy(row[len(left.cols):], r)
				out.rows = append(out.rows, row)
			}
		}
	}
	return out, nil
}

// conjuncts splits a condition at its ANDs.
func conjuncts(x ast.ExprNode, out []ast.ExprNode) []ast.ExprNode {
	switch c := x.(type) {
	case *ast.BinaryOperationExpr:
		if c.Op == opcode.LogicAnd {
			return conjuncts(c.R, conjuncts(c.L, out))
		}
	case *ast.ParenthesesExpr:
		return conjuncts(c.Expr, out)
	}
	return append(out, x)
}

// hashSide finds a condition left.col = right.col among conds and indexes
// right's rows by that column's value. It returns the left column's index
// and the index, or a nil index when there is no such condition.
func hashSide(conds []ast.ExprNode, left []binding, right *rowset) (int, map[string][]int) {
	find := func(x ast.ExprNode, cols []binding) int {
		for {
			p, ok := x.(*ast.ParenthesesExpr)
			if !ok {
				break
			}
			x = p.Expr
		}
		c, ok := x.(*ast.ColumnNameExpr)
		if !ok {
			return -1
		}
		found := -1
		for i, b := range cols {
			if b.name == c.Name.Name.O && (c.Name.Table.O == "" || b.qual == c.Name.Table.O) {
				if found >= 0 {
					return -1
				}
				found = i
			}
		}
		// Booleans, arrays and reg* values compare across kinds in ways
		// a key cannot follow ('t' = true, a regclass = its name).
		if found >= 0 {
			if t := cols[found].typ; t.oid == 16 || t.category == "A" || strings.HasPrefix(t.name, "reg") {
				return -1
			}
		}
		return found
	}
	for _, cond := range conds {
		b, ok := cond.(*ast.BinaryOperationExpr)
		if !ok || b.Op != opcode.EQ {
			continue
		}
		for _, sides := range [2][2]ast.ExprNode{{b.L, b.R}, {b.R, b.L}} {
			li, ri := find(sides[0], left), find(sides[1], right.cols)
			// Each name must be on one side only, or the condition is
			// not between the two.
			if li < 0 || ri < 0 || find(sides[0], right.cols) >= 0 || find(sides[1], left) >= 0 {
				continue
			}
			index := map[string][]int{}
			for i, r := range right.rows {
				if k, ok := hashKey(r[ri]); ok {
					index[k] = append(index[k], i)
				} else if r[ri] != nil {
					return -1, nil // a value no key stands for: look at every row
				}
			}
			return li, index
		}
	}
	return -1, nil
}

// hashKey is a value's key for an equality lookup on a column that is
// neither boolean, array nor reg*: values that compare equal have equal
// keys (16384 and '16384'; keys may also match values that differ, and the
// join checks its condition in full). ok is false for NULL, which equals
// nothing, and for values of other kinds.
func hashKey(v any) (string, bool) {
	switch x := v.(type) {
	case int64, float64:
		f, _ := toFloat(x)
		return text(f), true
	case string:
		if f, err := toFloat(x); err == nil {
			return text(f), true
		}
		return x, true
	}
	return "", false
}

// selectStmt runs one SELECT.
func (e *engine) selectStmt(sel *ast.SelectStmt, outer *env) (*rowset, error) {
	if sel.With != nil {
		restore, err := e.with(sel.With, outer, true)
		if err != nil {
			return nil, err
		}
		defer restore()
	}
	in := &rowset{rows: [][]any{{}}}
	if sel.From != nil && sel.From.TableRefs != nil {
		var err error
		var where *pushdown
		if sel.Where != nil {
			all, err := e.fromColumns(sel.From.TableRefs, outer)
			if err != nil {
				return nil, err
			}
			where = newPushdown(sel.Where, all)
		}
		if in, err = e.from(sel.From.TableRefs, outer, where); err != nil {
			return nil, err
		}
	}
	en := &env{cols: in.cols, outer: outer}
	if sel.Where != nil {
		kept := in.rows[:0:0]
		for _, row := range in.rows {
			en.row = row
			v, err := e.eval(sel.Where, en)
			if err != nil {
				return nil, err
			}
			if truth(v) {
				kept = append(kept, row)
			}
		}
		in = &rowset{cols: in.cols, rows: kept}
	}

	// Output columns.
	var fields []*ast.SelectField
	var outCols []binding
	for _, f := range sel.Fields.Fields {
		if f.WildCard != nil {
			for i, c := range in.cols {
				if f.WildCard.Table.O == "" || f.WildCard.Table.O == c.qual {
					fields = append(fields, &ast.SelectField{Expr: &ast.ColumnNameExpr{Name: &ast.ColumnName{Table: ast.NewCIStr(c.qual), Name: ast.NewCIStr(c.name)}}})
					outCols = append(outCols, binding{name: in.cols[i].name, typ: c.typ})
				}
			}
			continue
		}
		fields = append(fields, f)
		t, err := e.typeOf(f.Expr, en)
		if err != nil {
			return nil, err
		}
		outCols = append(outCols, binding{name: fieldName(f), typ: t})
	}

	// Groups: every row its own unless the query aggregates.
	aggregating := sel.GroupBy != nil || sel.Having != nil
	for _, f := range fields {
		aggregating = aggregating || hasAggregate(f.Expr)
	}
	if sel.OrderBy != nil {
		for _, it := range sel.OrderBy.Items {
			aggregating = aggregating || hasAggregate(it.Expr)
		}
	}
	type unit struct {
		row   []any
		group [][]any
	}
	var units []unit
	if aggregating {
		var keys []ast.ExprNode
		if sel.GroupBy != nil {
			for _, it := range sel.GroupBy.Items {
				k := it.Expr
				if p, ok := k.(*ast.PositionExpr); ok && p.N >= 1 && p.N <= len(fields) {
					k = fields[p.N-1].Expr
				}
				keys = append(keys, k)
			}
		}
		index := map[string]int{}
		for _, row := range in.rows {
			en.row = row
			kv := make([]any, len(keys))
			for i, k := range keys {
				v, err := e.eval(k, en)
				if err != nil {
					return nil, err
				}
				kv[i] = v
			}
			key := rowKey(kv)
			gi, ok := index[key]
			if !ok {
				gi = len(units)
				index[key] = gi
				units = append(units, unit{row: row})
			}
			units[gi].group = append(units[gi].group, row)
		}
		if len(units) == 0 && len(keys) == 0 {
			units = append(units, unit{row: make([]any, len(in.cols)), group: [][]any{}})
		}
	} else {
		units = make([]unit, len(in.rows))
		for i, row := range in.rows {
			units[i] = unit{row: row}
		}
	}

	// Window functions, over the units in order.
	windows, err := e.windows(fields, in.cols, outer, func() [][]any {
		rows := make([][]any, len(units))
		for i, u := range units {
			rows[i] = u.row
		}
		return rows
	}())
	if err != nil {
		return nil, err
	}

	srfs := setReturningCalls(fields)
	out := &rowset{cols: outCols}
	var sortKeys [][]any
	for ui, u := range units {
		uen := &env{cols: in.cols, row: u.row, outer: outer, windows: windows, rowIdx: ui}
		if aggregating {
			uen.group = u.group
		}
		if sel.Having != nil {
			v, err := e.eval(sel.Having.Expr, uen)
			if err != nil {
				return nil, err
			}
			if !truth(v) {
				continue
			}
		}
		n := 1
		var lists [][]any
		if len(srfs) > 0 {
			n = 0
			for _, c := range srfs {
				l, err := e.srfValues(c, uen)
				if err != nil {
					return nil, err
				}
				lists = append(lists, l)
				n = max(n, len(l))
			}
		}
		for k := 0; k < n; k++ {
			if len(srfs) > 0 {
				uen.srf = map[ast.ExprNode]any{}
				for i, c := range srfs {
					var v any
					if k < len(lists[i]) {
						v = lists[i][k]
					}
					uen.srf[c] = v
				}
			}
			row := make([]any, len(fields))
			for i, f := range fields {
				v, err := e.eval(f.Expr, uen)
				if err != nil {
					return nil, err
				}
				row[i] = v
			}
			out.rows = append(out.rows, row)
			if sel.OrderBy != nil {
				keys := make([]any, len(sel.OrderBy.Items))
				for j, it := range sel.OrderBy.Items {
					v, err := e.orderValue(it.Expr, row, outCols, fields, uen)
					if err != nil {
						return nil, err
					}
					keys[j] = v
				}
				sortKeys = append(sortKeys, keys)
			}
		}
	}
	if sel.Distinct {
		if sortKeys != nil {
			seen := map[string]bool{}
			var rows, keys [][]any
			for i, r := range out.rows {
				k := rowKey(r)
				if !seen[k] {
					seen[k] = true
					rows, keys = append(rows, r), append(keys, sortKeys[i])
				}
			}
			out.rows, sortKeys = rows, keys
		} else {
			out.rows = distinctRows(out.rows)
		}
	}
	if sel.OrderBy != nil {
		idx := make([]int, len(out.rows))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool {
			for j, it := range sel.OrderBy.Items {
				c := sortCompare(sortKeys[idx[a]][j], sortKeys[idx[b]][j])
				if it.Desc {
					c = -c
				}
				if c != 0 {
					return c < 0
				}
			}
			return false
		})
		rows := make([][]any, len(idx))
		for i, k := range idx {
			rows[i] = out.rows[k]
		}
		out.rows = rows
	}
	return e.limit(out, sel.Limit, outer)
}

// orderValue is an ORDER BY key: an output position, an output column's
// name, or an expression over the input.
func (e *engine) orderValue(x ast.ExprNode, row []any, outCols []binding, fields []*ast.SelectField, en *env) (any, error) {
	switch k := x.(type) {
	case *ast.PositionExpr:
		if k.N < 1 || k.N > len(row) {
			return nil, errorf(codeUndefinedColumn, "ORDER BY position %d is not in select list", k.N)
		}
		return row[k.N-1], nil
	case *ast.ColumnNameExpr:
		if k.Name.Table.O == "" {
			for i, c := range outCols {
				if c.name == k.Name.Name.O && fields[i].AsName.O != "" {
					return row[i], nil
				}
			}
			if _, _, err := en.column("", k.Name.Name.O); err != nil {
				for i, c := range outCols {
					if c.name == k.Name.Name.O {
						return row[i], nil
					}
				}
			}
		}
	}
	return e.eval(x, en)
}

// fieldName is the name PostgreSQL gives an output column.
func fieldName(f *ast.SelectField) string {
	if f.AsName.O != "" {
		return f.AsName.O
	}
	return exprName(f.Expr)
}

func exprName(x ast.ExprNode) string {
	switch x := x.(type) {
	case *ast.ColumnNameExpr:
		return x.Name.Name.O
	case *ast.ParenthesesExpr:
		return exprName(x.Expr)
	case *ast.FuncCallExpr:
		switch x.FnName.L {
		case "spate_cast":
			if n := exprName(x.Args[0]); n != "?column?" {
				return n
			}
			if len(x.Args) > 1 {
				if s, ok := literalString(x.Args[1]); ok {
					t, ok := typeNamed(s)
					if ok {
						return t.name
					}
					return strings.TrimPrefix(s, "pg_catalog.")
				}
			}
		case "spate_field":
			if s, ok := literalString(x.Args[1]); ok {
				return s
			}
		case "spate_array":
			return "array"
		case "spate_subscript", "spate_param", "spate_concat", "spate_regexp_i":
			return "?column?"
		}
		return x.FnName.L
	case *ast.AggregateFuncExpr:
		return strings.ToLower(x.F)
	case *ast.WindowFuncExpr:
		return strings.ToLower(x.Name)
	case *ast.CaseExpr:
		return "case"
	case *ast.ExistsSubqueryExpr:
		return "exists"
	}
	return "?column?"
}

// hasAggregate reports whether x holds an aggregate outside subqueries
// and window functions.
func hasAggregate(x ast.Node) bool {
	v := &aggFinder{}
	x.Accept(v)
	return v.found
}

type aggFinder struct{ found bool }

func (v *aggFinder) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.AggregateFuncExpr:
		v.found = true
		return n, true
	case *ast.FuncCallExpr:
		if aggregates[x.FnName.L] {
			v.found = true
			return n, true
		}
	case *ast.SubqueryExpr, *ast.WindowFuncExpr:
		return n, true
	}
	return n, false
}

func (v *aggFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// setReturningCalls lists the set-returning function calls of the select
// list (outside subqueries).
func setReturningCalls(fields []*ast.SelectField) []ast.ExprNode {
	v := &srfFinder{}
	for _, f := range fields {
		f.Expr.Accept(v)
	}
	return v.calls
}

type srfFinder struct{ calls []ast.ExprNode }

func (v *srfFinder) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.FuncCallExpr:
		if setReturning[x.FnName.L] {
			for _, c := range v.calls {
				if sameCall(c, x) {
					return n, true
				}
			}
			v.calls = append(v.calls, x)
			return n, true
		}
	case *ast.SubqueryExpr:
		return n, true
	}
	return n, false
}

func (v *srfFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// sameCall reports whether two set-returning calls are written the same
// (PostgreSQL evaluates f(x) once per row however often it appears).
func sameCall(a ast.ExprNode, b *ast.FuncCallExpr) bool {
	x, ok := a.(*ast.FuncCallExpr)
	return ok && x.FnName.L == b.FnName.L && nodeText(x) == nodeText(b)
}

// windows computes each window function of the select list for every row.
func (e *engine) windows(fields []*ast.SelectField, cols []binding, outer *env, rows [][]any) (map[*ast.WindowFuncExpr][]any, error) {
	var calls []*ast.WindowFuncExpr
	for _, f := range fields {
		f.Expr.Accept(&windowFinder{calls: &calls})
	}
	if len(calls) == 0 {
		return nil, nil
	}
	out := map[*ast.WindowFuncExpr][]any{}
	en := &env{cols: cols, outer: outer}
	for _, w := range calls {
		spec := w.Spec
		vals := make([]any, len(rows))
		parts := map[string][]int{}
		var order []string
		for i, row := range rows {
			en.row = row
			var kv []any
			if spec.PartitionBy != nil {
				for _, it := range spec.PartitionBy.Items {
					v, err := e.eval(it.Expr, en)
					if err != nil {
						return nil, err
					}
					kv = append(kv, v)
				}
			}
			k := rowKey(kv)
			if _, ok := parts[k]; !ok {
				order = append(order, k)
			}
			parts[k] = append(parts[k], i)
		}
		for _, k := range order {
			idx := parts[k]
			var keys [][]any
			if spec.OrderBy != nil {
				keys = make([][]any, len(rows))
				for _, i := range idx {
					en.row = rows[i]
					for _, it := range spec.OrderBy.Items {
						v, err := e.eval(it.Expr, en)
						if err != nil {
							return nil, err
						}
						keys[i] = append(keys[i], v)
					}
				}
				sort.SliceStable(idx, func(a, b int) bool {
					for j, it := range spec.OrderBy.Items {
						c := sortCompare(keys[idx[a]][j], keys[idx[b]][j])
						if it.Desc {
							c = -c
						}
						if c != 0 {
							return c < 0
						}
					}
					return false
				})
			}
			switch strings.ToLower(w.Name) {
			case "row_number":
				for n, i := range idx {
					vals[i] = int64(n + 1)
				}
			case "rank", "dense_rank":
				rank, dense := int64(0), int64(0)
				for n, i := range idx {
					if n == 0 || keys == nil || rowKey(keys[i]) != rowKey(keys[idx[n-1]]) {
						rank, dense = int64(n+1), dense+1
					}
					if strings.EqualFold(w.Name, "rank") {
						vals[i] = rank
					} else {
						vals[i] = dense
					}
				}
			default:
				group := make([][]any, len(idx))
				for n, i := range idx {
					group[n] = rows[i]
				}
				agg := &ast.AggregateFuncExpr{F: w.Name, Args: w.Args, Distinct: w.Distinct}
				v, err := e.aggregate(agg, &env{cols: cols, outer: outer, group: group})
				if err != nil {
					return nil, err
				}
				for _, i := range idx {
					vals[i] = v
				}
			}
		}
		out[w] = vals
	}
	return out, nil
}

type windowFinder struct{ calls *[]*ast.WindowFuncExpr }

func (v *windowFinder) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.WindowFuncExpr:
		*v.calls = append(*v.calls, x)
		return n, true
	case *ast.SubqueryExpr:
		return n, true
	}
	return n, false
}

func (v *windowFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// isComparison reports whether op compares.
func isComparison(op opcode.Op) bool {
	switch op {
	case opcode.EQ, opcode.NE, opcode.LT, opcode.LE, opcode.GT, opcode.GE, opcode.NullEQ:
		return true
	}
	return false
}
