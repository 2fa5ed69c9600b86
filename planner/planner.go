// Package planner binds parsed statements to the catalog, type-checks them,
// builds logical plans, rewrites them with named rules and lowers them to a
// physical DAG of stages with partition keys and parallelism. Plans are
// immutable values; building executable operators is the cluster package's
// job.
package planner

import (
	"slices"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/spatedb/spate/parser"
)

// Planner plans statements against a catalog. It holds no other state and
// is safe for concurrent use.
type Planner struct {
	Catalog *Catalog
	// DescribeStreams lets a SELECT name a stream, for describing its
	// columns only (drivers prepare "SELECT cols FROM stream" to learn
	// types before COPY). Such a plan must not be executed.
	DescribeStreams bool
}

// Options are per-statement planning settings.
type Options struct {
	// Parallelism is the number of instances of each partitioned stage.
	// Default 1.
	Parallelism int
}

// DefaultIdleTimeout is a stream's idle_timeout unless set: 10 s.
const DefaultIdleTimeout = 10_000_000

// CreateStream validates CREATE STREAM and returns the stream to register.
//
// WITH options: event_time (column name; INT, BIGINT or TIMESTAMP),
// time_unit ('s', 'ms' (default), 'us' — for integer event times),
// watermark_delay (an interval such as '2s' or '5 seconds'; default 0),
// idle_timeout (an interval of wall time; default DefaultIdleTimeout; '0'
// never).
func (p *Planner) CreateStream(s *parser.CreateStream) (*Stream, error) {
	cols, err := columnDefs(s.Columns)
	if err != nil {
		return nil, err
	}
	st := &Stream{Name: s.Name, Columns: cols, EventTime: -1, TimeUnit: 1, IdleTimeout: DefaultIdleTimeout, Options: map[string]string{}}
	unit := ""
	for _, o := range s.With {
		st.Options[o.Key] = o.Value
		switch o.Key {
		case "event_time":
			st.EventTime = -2
			for i, c := range cols {
				if c.Name == o.Value {
					st.EventTime = i
				}
			}
			if st.EventTime < 0 {
				return nil, errorf(CodeUndefinedColumn, "event_time column %q does not exist in stream %q", o.Value, s.Name)
			}
			if t := cols[st.EventTime].Type; !t.IsInteger() && t != TypeTimestamp {
				return nil, errorf(CodeDatatypeMismatch, "event_time column %q must be INT, BIGINT or TIMESTAMP, not %s", o.Value, t)
			}
		case "time_unit":
			unit = strings.ToLower(o.Value)
		case "watermark_delay":
			d, err := parser.ParseInterval(o.Value)
			if err != nil || d < 0 {
				return nil, errorf(CodeInvalidParameter, "invalid watermark_delay %q: use an interval such as '2s' or '5 seconds'", o.Value)
			}
			st.WatermarkDelay = d
		case "idle_timeout":
			d, err := parser.ParseInterval(o.Value)
			if err != nil || d < 0 {
				return nil, errorf(CodeInvalidParameter, "invalid idle_timeout %q: use an interval such as '10s', or '0' for never", o.Value)
			}
			st.IdleTimeout = d
		default:
			return nil, errorf(CodeInvalidParameter, "unrecognized stream option %q (known: event_time, time_unit, watermark_delay, idle_timeout)", o.Key)
		}
	}
	if st.EventTime >= 0 && cols[st.EventTime].Type.IsInteger() {
		switch unit {
		case "s", "sec", "second", "seconds":
			st.TimeUnit = 1_000_000
		case "", "ms", "millisecond", "milliseconds":
			st.TimeUnit = 1_000
		case "us", "microsecond", "microseconds":
			st.TimeUnit = 1
		default:
			return nil, errorf(CodeInvalidParameter, "invalid time_unit %q: use 's', 'ms' or 'us'", unit)
		}
	} else if unit != "" && st.EventTime >= 0 {
		return nil, errorf(CodeInvalidParameter, "time_unit applies to integer event times; %q is a timestamp", cols[st.EventTime].Name)
	}
	return st, nil
}

// CreateTable validates CREATE TABLE.
func (p *Planner) CreateTable(s *parser.CreateTable) (*Table, error) {
	cols, err := columnDefs(s.Columns)
	if err != nil {
		return nil, err
	}
	t := &Table{Name: s.Name, Columns: cols}
	pk := s.PrimaryKey
	for _, c := range s.Columns {
		if c.PrimaryKey && !contains(pk, c.Name) {
			pk = append(pk, c.Name) // the parser may list a column's PRIMARY KEY in s.PrimaryKey too
		}
	}
	for _, name := range pk {
		found := false
		for i, c := range cols {
			if c.Name == name {
				t.PrimaryKey, found = append(t.PrimaryKey, i), true
			}
		}
		if !found {
			return nil, errorf(CodeUndefinedColumn, "column %q named in key does not exist", name)
		}
	}
	return t, nil
}

func columnDefs(defs []parser.ColumnDef) ([]Column, error) {
	if len(defs) == 0 {
		return nil, errorf(CodeInvalidDefinition, "a relation needs at least one column")
	}
	seen := map[string]bool{}
	cols := make([]Column, len(defs))
	for i, d := range defs {
		if seen[d.Name] {
			return nil, errorf(CodeDuplicateColumn, "column %q specified more than once", d.Name)
		}
		seen[d.Name] = true
		t, err := ParseType(string(d.Type))
		if err != nil {
			return nil, &Error{Code: CodeUndefinedObject, Message: err.Error()}
		}
		cols[i] = Column{Name: d.Name, Type: t, Declared: string(d.Type)}
	}
	return cols, nil
}

// ContinuousQuery plans CREATE CONTINUOUS QUERY. WITH (parallelism = n)
// overrides opts.Parallelism.
func (p *Planner) ContinuousQuery(s *parser.CreateContinuousQuery, opts Options) (*ContinuousQuery, error) {
	q := &ContinuousQuery{Name: s.Name, SQL: s.QueryText, Options: map[string]string{}}
	for _, o := range s.With {
		q.Options[o.Key] = o.Value
		switch o.Key {
		case "parallelism":
			n, err := strconv.Atoi(o.Value)
			if err != nil || n < 1 || n > 1024 {
				return nil, errorf(CodeInvalidParameter, "parallelism must be an integer from 1 to 1024, not %q", o.Value)
			}
			opts.Parallelism = n
		case "retention":
			if d, err := parser.ParseInterval(o.Value); err != nil || d < 0 {
				return nil, errorf(CodeInvalidParameter, "invalid retention %q: use an interval such as '10 minutes'", o.Value)
			}
		default:
			return nil, errorf(CodeInvalidParameter, "unrecognized continuous query option %q (known: parallelism, retention)", o.Key)
		}
	}
	prm := &params{streaming: true}
	logical, err := p.bindSelect(s.Query, modeStream, prm)
	if err != nil {
		return nil, err
	}
	if len(prm.types) > 0 {
		return nil, errorf(CodeUndefinedParam, "a continuous query cannot have parameters")
	}
	phys, err := lower(Rewrite(logical), true, opts.Parallelism)
	if err != nil {
		return nil, err
	}
	q.Plan = phys
	q.Updating = phys.Mode == AggUpdating
	q.Columns = phys.Columns
	if q.Updating {
		q.Columns = phys.Columns[1:]
		// The group key identifies a row of an updating result: the output
		// columns that are plain key references.
		q.Key = updatingKey(phys)
	}
	seen := map[string]bool{}
	for _, st := range phys.Sources() {
		if !seen[st.Source.Relation] {
			seen[st.Source.Relation] = true
			q.Sources = append(q.Sources, st.Source.Relation)
		}
	}
	q.EventTime, q.TimeUnit = outputEventTime(phys, q)
	if _, ok := q.Options["retention"]; ok && (q.Updating || q.EventTime < 0) {
		return nil, errorf(CodeInvalidParameter, "retention applies to append-only results with an event time (a windowed query, or one that passes its stream's event-time column through)")
	}
	return q, nil
}

// updatingKey finds the output columns (without "op") that carry the group
// key of an updating aggregate.
func updatingKey(phys *Physical) []int {
	last := phys.Stages[len(phys.Stages)-1]
	var agg *AggOp
	var after []Op
	for i, op := range last.Ops {
		if a, ok := op.(*AggOp); ok {
			agg, after = a, last.Ops[i+1:]
		}
	}
	if agg == nil {
		return nil
	}
	// Track where each aggregate output column ends up.
	pos := identity(len(agg.Out))
	for _, op := range after {
		c, ok := op.(*CalcOp)
		if !ok || c.Exprs == nil {
			continue
		}
		next := make([]int, len(pos))
		for i := range next {
			next[i] = -1
		}
		for j, e := range c.Exprs {
			if r, ok := e.(*ColRef); ok {
				for i, p := range pos {
					if p == r.Index && next[i] < 0 {
						next[i] = j
					}
				}
			}
		}
		pos = next
	}
	var key []int
	for k := range agg.Keys {
		if p := pos[1+k]; p > 0 {
			key = append(key, p-1)
		}
	}
	if len(key) < len(agg.Keys) {
		return nil // a key is not in the output: rows are identified by all columns
	}
	return key
}

// Query is a planned snapshot query.
type Query struct {
	Plan    *Physical
	Logical Node
	// Params are the types of $1…$n.
	Params []Type
}

// Query plans a SELECT over tables and continuous-query results.
func (p *Planner) Query(sel *ast.SelectStmt) (*Query, error) {
	prm := &params{}
	logical, err := p.bindSelect(sel, modeBatch, prm)
	if err != nil {
		return nil, err
	}
	logical = Rewrite(logical)
	phys, err := lower(logical, false, 1)
	if err != nil {
		return nil, err
	}
	return &Query{Plan: phys, Logical: logical, Params: finalParams(prm)}, nil
}

func finalParams(prm *params) []Type {
	out := append([]Type(nil), prm.types...)
	for i, t := range out {
		if t == TypeUnknown {
			out[i] = TypeText
		}
	}
	return out
}

// InsertPlan is a planned INSERT … VALUES: one full-width row of
// expressions per VALUES row (NULL for columns not named). The expressions
// are constants, parameters and casts of them.
type InsertPlan struct {
	Relation string
	Kind     RelationKind
	Columns  []Column
	Rows     [][]Expr
	Params   []Type
}

// Insert plans INSERT INTO stream|table [(cols)] VALUES ….
func (p *Planner) Insert(ins *ast.InsertStmt) (*InsertPlan, error) {
	if ins.Select != nil {
		return nil, errorf(CodeNotSupported, "INSERT … SELECT is not supported; use INSERT … VALUES or COPY")
	}
	if ins.IsReplace || len(ins.OnDuplicate) > 0 || ins.Setlist {
		return nil, errorf(CodeNotSupported, "this form of INSERT is not supported")
	}
	ts, ok := ins.Table.TableRefs.Left.(*ast.TableSource)
	if !ok {
		return nil, errorf(CodeNotSupported, "INSERT needs a table name")
	}
	tn := ts.Source.(*ast.TableName)
	name := tn.Name.O
	obj, kind, ok := p.Catalog.Lookup(name)
	if !ok {
		return nil, errorf(CodeUndefinedTable, "relation %q does not exist", name)
	}
	var cols []Column
	switch o := obj.(type) {
	case *Stream:
		cols = o.Columns
	case *Table:
		cols = o.Columns
	case *SystemTable:
		return nil, errorf(CodeWrongObjectType, "cannot insert into system table %q", name)
	default:
		return nil, errorf(CodeWrongObjectType, "cannot insert into continuous query %q: its rows come from its query", name)
	}
	names := make([]string, len(ins.Columns))
	for i, c := range ins.Columns {
		names[i] = c.Name.O
	}
	target, err := TargetColumns(name, cols, names)
	if err != nil {
		return nil, err
	}
	plan := &InsertPlan{Relation: name, Kind: kind, Columns: cols}
	prm := &params{}
	b := &binder{params: prm, where: "VALUES"}
	for r, row := range ins.Lists {
		if len(row) > len(target) {
			return nil, errorf(CodeSyntax, "INSERT has more expressions than target columns (row %d)", r+1)
		}
		if len(row) < len(target) {
			return nil, errorf(CodeSyntax, "INSERT has more target columns than expressions (row %d)", r+1)
		}
		out := make([]Expr, len(cols))
		for i, c := range cols {
			out[i] = &Const{T: c.Type}
		}
		for i, n := range row {
			e, err := b.expr(n)
			if err != nil {
				return nil, err
			}
			col := cols[target[i]]
			if !untyped(e) && !assignable(e.Type(), col.Type) {
				return nil, errorf(CodeDatatypeMismatch, "column %q is of type %s but expression is of type %s", col.Name, col.Type, e.Type())
			}
			e = castTo(e, col.Type)
			if p, ok := e.(*Param); ok {
				prm.note(p.N, p.T)
			}
			out[target[i]] = e
		}
		plan.Rows = append(plan.Rows, out)
	}
	plan.Params = finalParams(prm)
	return plan, nil
}

// TargetColumns resolves the column list of INSERT or COPY against a
// relation's columns: the positions of the named columns, or all columns
// in order when names is empty. Unknown or repeated names are errors.
func TargetColumns(relation string, cols []Column, names []string) ([]int, error) {
	if len(names) == 0 {
		return identity(len(cols)), nil
	}
	seen := map[int]bool{}
	target := make([]int, 0, len(names))
	for _, name := range names {
		idx := -1
		for i, c := range cols {
			if c.Name == name {
				idx = i
			}
		}
		if idx < 0 {
			return nil, errorf(CodeUndefinedColumn, "column %q of relation %q does not exist", name, relation)
		}
		if seen[idx] {
			return nil, errorf(CodeDuplicateColumn, "column %q specified more than once", name)
		}
		seen[idx] = true
		target = append(target, idx)
	}
	return target, nil
}

// outputEventTime picks the column that carries event time when another
// continuous query reads q as a stream: window_end of a windowed result;
// else, for a query without aggregation, the event time of the stream
// (or stream-like result) it reads — the left side's, for a join — when
// a column passes it through unchanged, under any name. It follows the
// column through the plan, from the source to the output, so a column
// that only has the name (SELECT v AS t) is not taken for it.
func outputEventTime(phys *Physical, q *ContinuousQuery) (int, int64) {
	if q.Updating || len(phys.Stages) == 0 {
		return -1, 1
	}
	// The stages from the output back to a source, by their first side.
	path := []*Stage{phys.Stages[len(phys.Stages)-1]}
	for st := path[0]; st.Source == nil; st = path[len(path)-1] {
		if len(st.Sides) == 0 {
			return -1, 1
		}
		path = append(path, phys.Stages[st.Sides[0].Stage])
	}
	slices.Reverse(path)
	idx, unit := -1, int64(1)
	switch src := path[0].Source; {
	case src.Changelog || src.Table:
	case src.Stream != nil && src.Stream.EventTime >= 0:
		idx, unit = slices.Index(src.Indexes, src.Stream.EventTime), src.Stream.TimeUnit
	case src.Query != nil && src.Query.EventTime >= 0:
		idx, unit = slices.Index(src.Indexes, src.Query.EventTime), src.Query.TimeUnit
	}
	for _, st := range path {
		for _, op := range st.Ops {
			switch o := op.(type) {
			case *CalcOp:
				if o.Exprs != nil && idx >= 0 {
					idx = slices.IndexFunc(o.Exprs, func(e Expr) bool {
						c, ok := e.(*ColRef)
						return ok && c.Index == idx
					})
				}
			case *AggOp:
				if o.Window == nil || o.Window.Kind == WindowNone {
					return -1, 1
				}
				idx = slices.IndexFunc(o.Out, func(c Column) bool { return c.Name == "window_end" })
				unit = o.Window.TimeUnit
			case *JoinOp, *OverOp, *SortOp:
				// A join's rows start with the left side's columns, an
				// OVER window's with its input's; a sort keeps them.
			default:
				return -1, 1
			}
		}
	}
	if idx < 0 || idx >= len(q.Columns) {
		return -1, 1
	}
	return idx, unit
}

func columnNamed(cols []Column, name string) int {
	for i, c := range cols {
		if c.Name == name {
			return i
		}
	}
	return -1
}
