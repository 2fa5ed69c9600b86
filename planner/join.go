package planner

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
)

// errChainJoins is the error for a FROM clause joining more than two
// relations.
func errChainJoins() *Error {
	return errorf(CodeNotSupported, "a continuous query joins two relations; join more by chaining continuous queries")
}

// bindFrom binds the FROM clause: one relation, or a join of two. It
// returns the plan, the scope its columns are visible in, and the scan
// when there is a single relation (nil for a join). where is the query's
// WHERE clause: the conjuncts of it that bound the event times of an inner
// stream–stream join are moved into the join's condition (for an inner
// join, WHERE and ON keep the same rows), and the rest is returned for the
// caller to bind (where itself when nothing moved).
func (p *Planner) bindFrom(from *ast.TableRefsClause, where ast.ExprNode, mode selectMode, prm *params) (Node, []scopeColumn, *Scan, ast.ExprNode, error) {
	if from == nil {
		if mode == modeStream {
			return nil, nil, nil, nil, errorf(CodeInvalidDefinition, "a continuous query needs FROM <stream>")
		}
		return &Scan{EventTime: -1}, nil, &Scan{EventTime: -1}, where, nil
	}
	return p.bindJoinTree(from.TableRefs, where, mode, prm)
}

func (p *Planner) bindJoinTree(j *ast.Join, where ast.ExprNode, mode selectMode, prm *params) (Node, []scopeColumn, *Scan, ast.ExprNode, error) {
	if j.Right == nil {
		switch l := j.Left.(type) {
		case *ast.TableSource:
			scan, scope, err := p.bindTableSource(l, mode)
			return scan, scope, scan, where, err
		case *ast.Join:
			return p.bindJoinTree(l, where, mode, prm)
		}
		return nil, nil, nil, nil, errorf(CodeNotSupported, "this FROM clause is not supported")
	}
	if mode != modeStream {
		return nil, nil, nil, nil, errorf(CodeNotSupported, "joins are supported in continuous queries; a snapshot SELECT reads one relation")
	}
	lts, lok := j.Left.(*ast.TableSource)
	rts, rok := j.Right.(*ast.TableSource)
	if !lok || !rok {
		if rels := commaList(j); len(rels) == 2 {
			return nil, nil, nil, nil, p.commaJoinError(rels[0], rels[1], where, mode, prm)
		}
		return nil, nil, nil, nil, errChainJoins()
	}
	switch {
	case j.NaturalJoin || len(j.Using) > 0:
		return nil, nil, nil, nil, errorf(CodeNotSupported, "NATURAL and USING joins are not supported; write ON a.k = b.k")
	case j.Tp == ast.RightJoin:
		return nil, nil, nil, nil, errorf(CodeNotSupported, "RIGHT JOIN is not supported; swap the sides and use LEFT JOIN")
	case j.On == nil:
		return nil, nil, nil, nil, errorf(CodeNotSupported, "a join needs an ON condition with equality keys")
	}
	left, lscope, err := p.bindTableSource(lts, mode)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	right, rscope, err := p.bindTableSource(rts, mode)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if left.TableLike() {
		return nil, nil, nil, nil, errorf(CodeNotSupported, "the left side of a join must be a stream; %q is read as a table", left.Relation)
	}
	scope := append(append([]scopeColumn(nil), lscope...), rscope...)
	b := &binder{scope: scope, params: prm, where: "JOIN conditions", qualify: true}
	cond, err := b.expr(j.On.Expr)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if cond, err = requireBool(cond, "JOIN/ON"); err != nil {
		return nil, nil, nil, nil, err
	}
	join := &Join{Left: left, Right: right, Outer: j.Tp == ast.LeftJoin}
	nl := len(left.Cols)
	if right.TableLike() {
		join.Kind = JoinLookup
		join.RightChangelog = right.Changelog
	} else {
		join.Kind = JoinInterval
		lt, rt := scanTime(left), scanTime(right)
		if lt == nil || rt == nil {
			return nil, nil, nil, nil, errorf(CodeInvalidDefinition, "a stream–stream join needs the event-time columns of both sides")
		}
		lt.Name = qualified(lscope, lt.Name)
		join.LeftTime, join.LeftUnit = lt, left.TimeUnit
		join.RightTime = &ColRef{Index: nl + rt.Index, Name: qualified(rscope, rt.Name), T: rt.T}
		join.RightUnit = right.TimeUnit
	}
	conds := splitAnd(cond)
	// An inner join's time bound may be written in WHERE: move it into
	// the condition, where it decides how long rows are kept. (For a LEFT
	// JOIN, WHERE filters the joined rows, NULL-extended ones included, so
	// it is not a bound of the join.)
	var whereBounds bool
	if join.Kind == JoinInterval && where != nil {
		var moved []Expr
		var rest []ast.ExprNode
		for _, w := range conjuncts(where) {
			e, ok := boundConjunct(w, join, scope, prm)
			if !ok {
				rest = append(rest, w)
				continue
			}
			whereBounds = true
			if !join.Outer {
				moved = append(moved, splitAnd(e)...)
				continue
			}
			rest = append(rest, w)
		}
		if len(moved) > 0 {
			conds = append(conds, moved...)
			where = andAll(rest)
		}
	}
	var residual []Expr
	haveLower, haveUpper := false, false
	for _, c := range conds {
		if l, r, ok := equiKey(c, nl); ok {
			if _, ok := unify(l.T, r.T); !ok && l.T != r.T {
				return nil, nil, nil, nil, errorf(CodeDatatypeMismatch, "join keys %s (%s) and %s (%s) have different types", l.Name, l.T, r.Name, r.T)
			}
			join.LeftKeys = append(join.LeftKeys, l)
			join.RightKeys = append(join.RightKeys, &ColRef{Index: r.Index - nl, Name: r.Name, T: r.T})
		}
		if join.Kind == JoinInterval {
			if lo, hi, ok := timeBound(c, join); ok {
				if lo != nil && (!haveLower || *lo > join.Lower) {
					join.Lower, haveLower = *lo, true
				}
				if hi != nil && (!haveUpper || *hi < join.Upper) {
					join.Upper, haveUpper = *hi, true
				}
			}
		}
		// Every conjunct stays in the residual unless it is a plain key:
		// bounds only decide how long rows are kept.
		if _, _, ok := equiKey(c, nl); !ok {
			residual = append(residual, c)
		}
	}
	if len(join.LeftKeys) == 0 {
		return nil, nil, nil, nil, errorf(CodeNotSupported, "a join needs at least one equality between a column of each side (ON a.k = b.k)")
	}
	if join.Kind == JoinInterval && (!haveLower || !haveUpper) {
		bound := boundExample(join.RightTime.Name, join.LeftTime.Name, join.LeftTime.T, join.LeftUnit)
		if join.Outer && whereBounds {
			keys := make([]string, len(join.LeftKeys))
			for i := range keys {
				keys[i] = join.LeftKeys[i].Name + " = " + join.RightKeys[i].Name
			}
			return nil, nil, nil, nil, errorf(CodeNotSupported, "put the event-time bound of a LEFT JOIN in its ON clause, as in ON %s AND %s; in WHERE it filters the joined rows, the NULL-extended ones too", strings.Join(keys, " AND "), bound)
		}
		return nil, nil, nil, nil, errorf(CodeNotSupported, "a stream–stream join needs an event-time bound on both sides, such as %s", bound)
	}
	if join.Kind == JoinInterval && join.Lower > join.Upper {
		return nil, nil, nil, nil, errorf(CodeInvalidParameter, "the join's event-time bound is empty (lower %s > upper %s)", signedMicros(join.Lower), signedMicros(join.Upper))
	}
	join.Residual = joinAnd(residual)
	return join, scope, nil, where, nil
}

// boundConjunct binds w, a conjunct of WHERE, over the scope of join, an
// interval join, and reports whether it bounds the two sides' event times.
// A conjunct that does not bind is left for WHERE to report.
func boundConjunct(w ast.ExprNode, join *Join, scope []scopeColumn, prm *params) (Expr, bool) {
	// Bind with a copy of the parameters: the conjunct may stay in WHERE,
	// which binds it again.
	cp := prm.clone()
	b := &binder{scope: scope, params: cp, where: "WHERE", qualify: true}
	e, err := b.expr(w)
	if err != nil || e.Type() != TypeBool {
		return nil, false
	}
	for _, c := range splitAnd(e) {
		if _, _, ok := timeBound(c, join); ok {
			*prm = *cp
			return e, true
		}
	}
	return nil, false
}

// boundExample is an event-time bound of one minute for the messages
// about a stream–stream join: rt BETWEEN lt - 1 minute AND lt, with the
// minute written for the left event time's type and unit.
func boundExample(rt, lt string, t Type, unit int64) string {
	minute := "INTERVAL '1' MINUTE"
	if t != TypeTimestamp {
		if unit <= 0 {
			unit = 1
		}
		minute = strconv.FormatInt(60_000_000/unit, 10)
	}
	return fmt.Sprintf("%s BETWEEN %s - %s AND %s", rt, lt, minute, lt)
}

// conjuncts splits a WHERE clause on its top-level ANDs.
func conjuncts(n ast.ExprNode) []ast.ExprNode {
	switch x := n.(type) {
	case *ast.BinaryOperationExpr:
		if x.Op == opcode.LogicAnd {
			return append(conjuncts(x.L), conjuncts(x.R)...)
		}
	case *ast.ParenthesesExpr:
		if a, ok := x.Expr.(*ast.BinaryOperationExpr); ok && a.Op == opcode.LogicAnd {
			return conjuncts(a)
		}
	}
	return []ast.ExprNode{n}
}

// andAll is the inverse of conjuncts; nil for no conjuncts.
func andAll(ns []ast.ExprNode) ast.ExprNode {
	var out ast.ExprNode
	for _, n := range ns {
		if out == nil {
			out = n
		} else {
			out = &ast.BinaryOperationExpr{Op: opcode.LogicAnd, L: out, R: n}
		}
	}
	return out
}

// commaList returns the relations of a FROM list written with commas
// (FROM a, b, c), or nil when j is not one.
func commaList(j *ast.Join) []*ast.TableSource {
	var rels []*ast.TableSource
	for {
		if j.Right == nil {
			ts, ok := j.Left.(*ast.TableSource)
			if !ok || len(rels) == 0 {
				return nil
			}
			return append([]*ast.TableSource{ts}, rels...)
		}
		rts, rok := j.Right.(*ast.TableSource)
		left, lok := j.Left.(*ast.Join)
		if !rok || !lok || j.Tp != ast.CrossJoin || j.On != nil || j.NaturalJoin || len(j.Using) > 0 {
			return nil
		}
		rels = append([]*ast.TableSource{rts}, rels...)
		j = left
	}
}

// commaJoinError is the error for FROM a, b: it says how to write the
// join, with the keys the WHERE clause equates and, for two streams, an
// event-time bound.
func (p *Planner) commaJoinError(lts, rts *ast.TableSource, where ast.ExprNode, mode selectMode, prm *params) error {
	left, lscope, err := p.bindTableSource(lts, mode)
	if err != nil {
		return err
	}
	right, rscope, err := p.bindTableSource(rts, mode)
	if err != nil {
		return err
	}
	written := fromItem(left, lscope) + ", " + fromItem(right, rscope)
	if left.TableLike() && !right.TableLike() {
		// The stream goes on the left.
		left, right, lscope, rscope = right, left, rscope, lscope
	}
	lq, rq := qualifierOf(lscope, left.Relation), qualifierOf(rscope, right.Relation)
	scope := append(append([]scopeColumn(nil), lscope...), rscope...)
	var keys []string
	if where != nil {
		b := &binder{scope: scope, params: prm.clone(), where: "WHERE", qualify: true}
		for _, w := range conjuncts(where) {
			if e, err := b.expr(w); err == nil {
				if l, r, ok := equiKey(e, len(lscope)); ok {
					keys = append(keys, l.Name+" = "+r.Name)
				}
			}
		}
	}
	if len(keys) == 0 {
		keys = []string{lq + ".… = " + rq + ".…"}
	}
	on := strings.Join(keys, " AND ")
	if lt, rt := scanTime(left), scanTime(right); !left.TableLike() && !right.TableLike() && lt != nil && rt != nil {
		on += " AND " + boundExample(rq+"."+rt.Name, lq+"."+lt.Name, lt.T, left.TimeUnit)
		return errorf(CodeNotSupported, "FROM %s is not supported; write FROM %s JOIN %s ON %s (a join of two streams needs an event-time bound)", written, fromItem(left, lscope), fromItem(right, rscope), on)
	}
	return errorf(CodeNotSupported, "FROM %s is not supported; write FROM %s JOIN %s ON %s", written, fromItem(left, lscope), fromItem(right, rscope), on)
}

// fromItem writes a relation of FROM as it was written: its name and
// alias.
func fromItem(scan *Scan, scope []scopeColumn) string {
	if q := qualifierOf(scope, scan.Relation); q != scan.Relation {
		return scan.Relation + " " + q
	}
	return scan.Relation
}

// qualifierOf is the name a relation's columns are qualified with: its
// alias, or its name.
func qualifierOf(scope []scopeColumn, relation string) string {
	if len(scope) > 0 && scope[0].qualifier != "" {
		return scope[0].qualifier
	}
	return relation
}

// qualified names column name of a side of a join with the side's
// relation or alias, as the join's conditions are.
func qualified(scope []scopeColumn, name string) string {
	if len(scope) == 0 || scope[0].qualifier == "" {
		return name
	}
	return scope[0].qualifier + "." + name
}

// scanTime returns the scan's event-time column as a ColRef over its
// output, or nil.
func scanTime(s *Scan) *ColRef {
	for i, idx := range s.Indexes {
		if idx == s.EventTime {
			return &ColRef{Index: i, Name: s.Cols[i].Name, T: s.Cols[i].Type}
		}
	}
	return nil
}

// equiKey recognises left.col = right.col (either order); nl is the number
// of left columns.
func equiKey(e Expr, nl int) (*ColRef, *ColRef, bool) {
	f, ok := e.(*Func)
	if !ok || f.Name != "=" {
		return nil, nil, false
	}
	a, aok := stripCast(f.Args[0]).(*ColRef)
	b, bok := stripCast(f.Args[1]).(*ColRef)
	if !aok || !bok {
		return nil, nil, false
	}
	switch {
	case a.Index < nl && b.Index >= nl:
		return a, b, true
	case b.Index < nl && a.Index >= nl:
		return b, a, true
	}
	return nil, nil, false
}

// stripCast looks through an INT→BIGINT widening, which does not change
// values.
func stripCast(e Expr) Expr {
	if f, ok := e.(*Func); ok && f.Name == "cast" && f.T.IsInteger() && f.Args[0].Type().IsInteger() {
		return f.Args[0]
	}
	return e
}

// timeBound recognises a conjunct that bounds right.time - left.time and
// returns the bound in µs: "rt >= lt + c" gives a lower bound c, "rt <= lt
// + c" an upper bound, "=" both. Strict comparisons give the same
// (slightly wider) bounds; the conjunct itself stays in the residual.
func timeBound(e Expr, j *Join) (lo, hi *int64, ok bool) {
	f, isF := e.(*Func)
	if !isF || len(f.Args) != 2 {
		return nil, nil, false
	}
	op := f.Name
	flip := map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}
	// Normalise to rt OP lt + c. The conjunct may also be written with the
	// left time on its own: lt OP rt + c is rt OP' lt - c.
	var c int64
	switch a, b := f.Args[0], f.Args[1]; {
	case isCol(a, j.RightTime):
		v, ok := offsetOf(b, j.LeftTime)
		if !ok {
			return nil, nil, false
		}
		c = v
	case isCol(b, j.RightTime):
		v, ok := offsetOf(a, j.LeftTime)
		if !ok {
			return nil, nil, false
		}
		c, op = v, flip[op]
	case isCol(a, j.LeftTime):
		v, ok := offsetOf(b, j.RightTime)
		if !ok {
			return nil, nil, false
		}
		c, op = -v, flip[op]
	case isCol(b, j.LeftTime):
		v, ok := offsetOf(a, j.RightTime)
		if !ok {
			return nil, nil, false
		}
		c = -v
	default:
		return nil, nil, false
	}
	c *= j.unitOfLeft()
	switch op {
	case ">", ">=":
		return &c, nil, true
	case "<", "<=":
		return nil, &c, true
	case "=":
		return &c, &c, true
	}
	return nil, nil, false
}

func (j *Join) unitOfLeft() int64 {
	if j.LeftTime.T == TypeTimestamp {
		return 1 // interval constants are already µs
	}
	return j.LeftUnit
}

func isCol(e Expr, c *ColRef) bool {
	r, ok := stripCast(e).(*ColRef)
	return ok && r.Index == c.Index
}

// offsetOf recognises "lt", "lt + c" and "lt - c" for a constant c.
func offsetOf(e Expr, lt *ColRef) (int64, bool) {
	if isCol(e, lt) {
		return 0, true
	}
	f, ok := e.(*Func)
	if !ok || (f.Name != "+" && f.Name != "-") || len(f.Args) != 2 || !isCol(f.Args[0], lt) {
		return 0, false
	}
	k, ok := f.Args[1].(*Const)
	if !ok {
		return 0, false
	}
	v, ok := k.Value.(int64)
	if !ok {
		return 0, false
	}
	if f.Name == "-" {
		v = -v
	}
	return v, true
}

// bindTableSource binds one relation of FROM.
func (p *Planner) bindTableSource(ts *ast.TableSource, mode selectMode) (*Scan, []scopeColumn, error) {
	tn, ok := ts.Source.(*ast.TableName)
	if !ok {
		return nil, nil, fromSourceError(ts.Source, mode)
	}
	name := tn.Name.O
	if s := tn.Schema.L; s != "" && s != "public" && s != "spate" && !(s == "pg_catalog" && strings.HasPrefix(name, "spate_")) {
		return nil, nil, errorf(CodeUndefinedTable, "relation \"%s.%s\" does not exist", tn.Schema.O, name)
	}
	obj, kind, ok := p.Catalog.Lookup(name)
	if ok && tn.Schema.L == "pg_catalog" && kind != RelSystem {
		ok = false // pg_catalog holds only the system tables
	}
	if !ok {
		return nil, nil, errorf(CodeUndefinedTable, "relation %q does not exist", name)
	}
	qualifier := name
	if ts.AsName.O != "" {
		qualifier = ts.AsName.O
	}
	scan := &Scan{Relation: name, Kind: kind, EventTime: -1, TimeUnit: 1}
	var cols []Column
	switch o := obj.(type) {
	case *Stream:
		if mode == modeBatch && !p.DescribeStreams {
			return nil, nil, errorf(CodeWrongObjectType, "%q is a stream: streams are unbounded, so SELECT reads continuous queries and tables; use CREATE CONTINUOUS QUERY … AS SELECT … FROM %s", name, name)
		}
		scan.Stream = o
		scan.EventTime, scan.TimeUnit = o.EventTime, o.TimeUnit
		cols = o.Columns
	case *Table:
		cols = o.Columns
		if mode == modeStream {
			// Read as a changelog: inserts, and UPDATE/DELETE as - and +.
			scan.Changelog = true
		}
	case *SystemTable:
		if mode == modeStream {
			return nil, nil, errorf(CodeNotSupported, "a continuous query cannot read system table %q", name)
		}
		cols = o.Columns
	case *ContinuousQuery:
		cols = o.Columns
		if mode == modeStream {
			scan.Query = o
			scan.EventTime, scan.TimeUnit = o.EventTime, o.TimeUnit
			if o.Updating {
				// Read as a table: a changelog whose column 0 is "op".
				scan.Changelog = true
			}
		}
	}
	scan.Cols = append([]Column(nil), cols...)
	scan.Indexes = identity(len(cols))
	scope := make([]scopeColumn, len(cols))
	for i, c := range cols {
		scope[i] = scopeColumn{qualifier: qualifier, name: c.Name, typ: c.Type}
	}
	return scan, scope, nil
}

// chainHint tells how to write in a continuous query what a subquery or
// WITH would: as a continuous query reading another one.
func chainHint(mode selectMode) string {
	if mode != modeStream {
		return ""
	}
	return "; a continuous query can read another one: CREATE CONTINUOUS QUERY step1 AS SELECT …; CREATE CONTINUOUS QUERY step2 AS SELECT … FROM step1"
}

// fromSourceError is the error for a FROM item that is not a relation: a
// subquery, a parenthesised join, or a table function f(…), which the
// parser writes as (SELECT f(…) AS f) f. Window table functions (TUMBLE,
// HOP and SESSION in FROM, as in RisingWave) are windows in GROUP BY here.
func fromSourceError(src ast.ResultSetNode, mode selectMode) error {
	switch x := src.(type) {
	case *ast.Join:
		return errChainJoins()
	case *ast.SelectStmt:
		if x.From == nil && x.Fields != nil && len(x.Fields.Fields) == 1 {
			if fc, ok := x.Fields.Fields[0].Expr.(*ast.FuncCallExpr); ok {
				name := strings.TrimPrefix(fc.FnName.L, "spate_")
				window := map[string]string{"tumble": "TUMBLE(%s, size)", "hop": "HOP(%s, slide, size)", "session": "SESSION(%s, gap)"}[name]
				if window == "" {
					return errorf(CodeNotSupported, "function %s in FROM is not supported", name)
				}
				rel, t := "<stream>", "<event time>"
				if len(fc.Args) >= 2 {
					if c, ok := fc.Args[0].(*ast.ColumnNameExpr); ok {
						rel = c.Name.Name.O
					}
					if c, ok := fc.Args[1].(*ast.ColumnNameExpr); ok {
						t = c.Name.Name.O
					}
				}
				return errorf(CodeNotSupported, "window table functions are not supported; window in GROUP BY instead: SELECT …, window_start, window_end, COUNT(*) FROM %s GROUP BY …, "+window, rel, t)
			}
		}
	}
	return errorf(CodeNotSupported, "subqueries in FROM are not supported%s", chainHint(mode))
}
