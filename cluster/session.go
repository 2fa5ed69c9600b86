package cluster

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/spatedb/spate/exec"
	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/planner"
)

// session is one client's connection state.
type session struct {
	c        *Coordinator
	user     string
	database string
	settings map[string]string
	cursors  cursorSet // DECLAREd cursors (cursor.go)
	// system: the engine's own session (write-ahead log replay), which
	// skips privilege checks (roles.go).
	system bool
}

// defaultSettings are the session settings and their defaults, shown by
// SHOW and sent as ParameterStatus.
var defaultSettings = map[string]string{
	"server_version":              "15.0",
	"server_encoding":             "UTF8",
	"client_encoding":             "UTF8",
	"datestyle":                   "ISO, MDY",
	"intervalstyle":               "postgres",
	"timezone":                    "UTC",
	"integer_datetimes":           "on",
	"standard_conforming_strings": "on",
	"transaction_isolation":       "read committed",
	"search_path":                 "public",
	"application_name":            "",
	"extra_float_digits":          "1",
	"statement_timeout":           "0",
	"idle_session_timeout":        "0",
	"max_identifier_length":       "63",
}

func newSession(c *Coordinator, user, database string) *session {
	s := &session{c: c, user: user, database: database, settings: map[string]string{}}
	for k, v := range defaultSettings {
		s.settings[k] = v
	}
	s.settings["parallelism"] = c.defaultParallelism()
	return s
}

// Setting implements Session.
func (s *session) Setting(name string) (string, bool) {
	v, ok := s.settings[strings.ToLower(name)]
	return v, ok
}

// Catalog implements Session.
func (s *session) Catalog() CatalogView {
	settings := make(map[string]string, len(s.settings))
	for k, v := range s.settings {
		settings[k] = v
	}
	cat := s.c.catalog
	return CatalogView{
		Streams:  cat.Streams(),
		Tables:   cat.Tables(),
		Queries:  cat.Queries(),
		System:   cat.SystemTables(),
		User:     s.user,
		Database: s.database,
		Settings: settings,
		Roles:    s.c.Roles(),
		Grants:   s.c.Grants(),
		Cursors:  s.cursors.list(),
	}
}

// Close implements Session.
func (s *session) Close() { s.cursors.closeAll() }

// parallelism is the number of instances of each partitioned stage of
// the session's next continuous query: the setting, or with "auto" one per
// live worker of the cluster's own (not the pool's).
func (s *session) parallelism() int {
	n, err := strconv.Atoi(s.settings["parallelism"])
	if err != nil || n < 1 {
		return s.c.ownWorkers()
	}
	return n
}

func textColumns(names ...string) []Column {
	cols := make([]Column, len(names))
	for i, n := range names {
		cols[i] = Column{Name: n, Type: planner.TypeText}
	}
	return cols
}

func toColumns(cols []planner.Column) []Column {
	out := make([]Column, len(cols))
	for i, c := range cols {
		out[i] = Column{Name: c.Name, Type: c.Type}
	}
	return out
}

// Describe implements Session.
func (s *session) Describe(ctx context.Context, stmt parser.Statement) (Described, error) {
	switch x := stmt.(type) {
	case *parser.Select:
		sel, err := plainSelect(x)
		if err != nil {
			return Described{}, err
		}
		q, err := s.c.planner.Query(sel)
		if err != nil {
			// Drivers describe "SELECT … FROM <stream>" to learn column
			// types (pgx before COPY); describing is fine, running is not.
			describer := planner.Planner{Catalog: s.c.catalog, DescribeStreams: true}
			if dq, derr := describer.Query(x.Query); derr == nil {
				q, err = dq, nil
			}
		}
		if err != nil {
			return Described{}, err
		}
		return Described{ParamTypes: q.Params, Columns: toColumns(q.Plan.Columns)}, nil
	case *parser.Insert:
		p, err := s.c.planner.Insert(x.Stmt)
		if err != nil {
			return Described{}, err
		}
		return Described{ParamTypes: p.Params}, nil
	case *parser.Update:
		p, err := s.c.planner.Update(x.Stmt)
		if err != nil {
			return Described{}, err
		}
		return Described{ParamTypes: p.Params}, nil
	case *parser.Delete:
		p, err := s.c.planner.Delete(x.Stmt)
		if err != nil {
			return Described{}, err
		}
		return Described{ParamTypes: p.Params}, nil
	case *parser.Show:
		cols, _, err := s.show(x.What)
		return Described{Columns: cols}, err
	case *parser.Explain:
		return Described{Columns: textColumns("QUERY PLAN")}, nil
	case *parser.Subscribe:
		cols, err := s.subscribeColumns(x.Name)
		return Described{Columns: cols}, err
	case *parser.Declare, *parser.Fetch, *parser.CloseCursor:
		return s.describeCursor(ctx, x)
	}
	return Described{}, nil
}

// Execute implements Session.
func (s *session) Execute(ctx context.Context, stmt parser.Statement, params []Param) (Result, error) {
	if res, handled, err := s.executeSecurity(stmt); handled || err != nil {
		return res, err // privilege checks, roles and grants (roles.go)
	}
	switch x := stmt.(type) {
	case *parser.CreateStream:
		st, err := s.c.planner.CreateStream(x)
		if err != nil {
			return Result{}, err
		}
		err = s.c.ddl(x.SQL(), 0, func() error { return s.c.addStream(st) })
		if err != nil && !(x.IfNotExists && isDuplicate(err)) {
			return Result{}, err
		}
		return Result{Tag: "CREATE STREAM"}, nil
	case *parser.CreateTable:
		t, err := s.c.planner.CreateTable(x)
		if err != nil {
			return Result{}, err
		}
		err = s.c.ddl(x.SQL(), 0, func() error { return s.c.addTable(t) })
		if err != nil && !(x.IfNotExists && isDuplicate(err)) {
			return Result{}, err
		}
		return Result{Tag: "CREATE TABLE"}, nil
	case *parser.CreateContinuousQuery:
		if x.IfNotExists {
			if _, _, ok := s.c.catalog.Lookup(x.Name); ok {
				return Result{Tag: "CREATE CONTINUOUS QUERY"}, nil
			}
		}
		par := s.parallelism()
		q, err := s.c.planner.ContinuousQuery(x, planner.Options{Parallelism: par})
		if err != nil {
			return Result{}, err
		}
		if err := s.c.ddl(x.SQL(), par, func() error { return s.c.addQuery(q) }); err != nil {
			return Result{}, err
		}
		return Result{Tag: "CREATE CONTINUOUS QUERY", Notices: planNotices(q.Plan)}, nil
	case *parser.Drop:
		kind := map[parser.ObjectKind]planner.RelationKind{parser.KindStream: planner.RelStream, parser.KindTable: planner.RelTable, parser.KindContinuousQuery: planner.RelContinuousQuery}[x.Kind]
		err := s.c.ddlDropping(x.SQL(), 0, func() ([]string, error) { return s.c.drop(x.Name, kind, x.Cascade) })
		if err != nil {
			if e, ok := err.(*planner.Error); ok && e.Code == planner.CodeUndefinedTable && x.IfExists {
				return Result{Tag: "DROP " + string(x.Kind)}, nil
			}
			return Result{}, err
		}
		return Result{Tag: "DROP " + string(x.Kind)}, nil
	case *parser.Show:
		cols, rows, err := s.show(x.What)
		if err != nil {
			return Result{}, err
		}
		return s.rowsResult(cols, rows, "SHOW")
	case *parser.AlterContinuousQuery:
		return s.c.alterQuery(ctx, x)
	case *parser.Set:
		return s.set(x)
	case *parser.Transaction:
		s.cursors.transaction(x.Verb)
		return Result{Tag: x.Verb}, nil
	case *parser.Empty:
		return Result{}, nil
	case *parser.Select:
		sel, err := plainSelect(x)
		if err != nil {
			return Result{}, err
		}
		return s.query(ctx, sel, params)
	case *parser.Insert:
		return s.insert(ctx, x, params)
	case *parser.Update:
		plan, err := s.c.planner.Update(x.Stmt)
		if err != nil {
			return Result{}, err
		}
		n, err := s.c.modifyTable(ctx, x.SQL(), plan, params)
		if err != nil {
			return Result{}, err
		}
		return Result{Tag: fmt.Sprintf("UPDATE %d", n)}, nil
	case *parser.Delete:
		plan, err := s.c.planner.Delete(x.Stmt)
		if err != nil {
			return Result{}, err
		}
		n, err := s.c.modifyTable(ctx, x.SQL(), plan, params)
		if err != nil {
			return Result{}, err
		}
		return Result{Tag: fmt.Sprintf("DELETE %d", n)}, nil
	case *parser.Subscribe:
		return s.subscribe(x.Name)
	case *parser.Declare, *parser.Fetch, *parser.CloseCursor:
		return s.executeCursor(ctx, x, params)
	case *parser.Copy:
		return s.copy(ctx, x, params)
	case *parser.Explain:
		return s.explain(x)
	}
	return Result{}, errorf(planner.CodeNotSupported, "statement %T is not supported", stmt)
}

// plainSelect is x's SELECT; the engine does not run UNION, INTERSECT or
// EXCEPT (only the catalog emulation in pgwire does).
func plainSelect(x *parser.Select) (*ast.SelectStmt, error) {
	if x.SetOpr != nil {
		return nil, errorf(planner.CodeNotSupported, "UNION, INTERSECT or EXCEPT is not supported")
	}
	return x.Query, nil
}

func isDuplicate(err error) bool {
	e, ok := err.(*planner.Error)
	return ok && e.Code == planner.CodeDuplicateTable
}

// rowsResult returns rows of Go values as a result.
func (s *session) rowsResult(cols []Column, rows [][]any, tag string) (Result, error) {
	if tag == "SHOW" {
		tag = ""
	}
	return RowsResult(cols, rows, tag)
}

// RowsResult is a result of rows given as Go values (nil, bool, int64,
// float64, string: the columns' types' values) with the given tag (""
// for "SELECT n").
func RowsResult(cols []Column, rows [][]any, tag string) (Result, error) {
	pcols := make([]planner.Column, len(cols))
	for i, c := range cols {
		pcols[i] = planner.Column{Name: c.Name, Type: c.Type}
	}
	var batches []arrow.RecordBatch
	if len(rows) > 0 {
		rec, err := exec.RecordFromValues(ArrowSchema(pcols), rows)
		if err != nil {
			return Result{}, err
		}
		batches = append(batches, rec)
	}
	return Result{Columns: cols, Rows: &sliceStream{batches: batches}, Tag: tag}, nil
}

func (s *session) set(x *parser.Set) (Result, error) {
	name := strings.ToLower(x.Name)
	value := x.Value
	if strings.EqualFold(value, "default") {
		value = defaultSettings[name]
		if name == "parallelism" {
			value = s.c.defaultParallelism()
		}
	}
	if name == "parallelism" && !strings.EqualFold(value, "auto") {
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 || n > 1024 {
			return Result{}, errorf("22023", "parallelism must be auto or an integer from 1 to 1024, not %q", value)
		}
	}
	if name == "time zone" {
		name = "timezone"
	}
	s.settings[name] = value
	return Result{Tag: "SET"}, nil
}

// query runs a snapshot SELECT.
func (s *session) query(ctx context.Context, sel *ast.SelectStmt, params []Param) (Result, error) {
	q, err := s.c.planner.Query(sel)
	if err != nil {
		return Result{}, err
	}
	out, err := s.c.runSnapshot(ctx, q.Plan, params)
	if err != nil {
		return Result{}, err
	}
	return Result{Columns: toColumns(q.Plan.Columns), Rows: &sliceStream{batches: out}}, nil
}

func (s *session) insert(ctx context.Context, x *parser.Insert, params []Param) (Result, error) {
	p, err := s.c.planner.Insert(x.Stmt)
	if err != nil {
		return Result{}, err
	}
	rec, err := s.c.evalRows(p, params)
	if err != nil {
		return Result{}, err
	}
	defer rec.Release()
	if err := s.c.ingest(ctx, p.Relation, rec); err != nil {
		return Result{}, err
	}
	return Result{Tag: fmt.Sprintf("INSERT 0 %d", rec.NumRows())}, nil
}

func (s *session) subscribeColumns(name string) ([]Column, error) {
	q, ok := s.c.catalog.Query(name)
	if !ok {
		if _, kind, found := s.c.catalog.Lookup(name); found {
			return nil, errorf(planner.CodeWrongObjectType, "%q is a %s; SUBSCRIBE reads continuous queries", name, kind)
		}
		return nil, errorf(planner.CodeUndefinedTable, "continuous query %q does not exist", name)
	}
	cols := toColumns(q.Columns)
	if q.Updating {
		cols = append([]Column{{Name: "op", Type: planner.TypeText}}, cols...)
	}
	return cols, nil
}

func (s *session) subscribe(name string) (Result, error) {
	cols, err := s.subscribeColumns(name)
	if err != nil {
		return Result{}, err
	}
	s.c.mu.Lock()
	qr := s.c.queries[name]
	s.c.mu.Unlock()
	if qr == nil {
		return Result{}, errorf(planner.CodeUndefinedTable, "continuous query %q does not exist", name)
	}
	sub, err := qr.result.subscribe()
	if err != nil {
		return Result{}, err
	}
	return Result{Columns: cols, Rows: sub}, nil
}

func (s *session) explain(x *parser.Explain) (Result, error) {
	var text string
	switch {
	case x.Analyze && x.Name != "":
		s.c.mu.Lock()
		qr := s.c.queries[x.Name]
		s.c.mu.Unlock()
		if qr == nil {
			return Result{}, errorf(planner.CodeUndefinedTable, "continuous query %q does not exist", x.Name)
		}
		text = planner.Explain(qr.def.Plan, qr.def.Name)
		for _, st := range s.c.instanceStatuses(qr) {
			text += fmt.Sprintf("Stage %d instance %d on %s: rows in %d, rows out %d, late %d, state rows %d, state bytes %d, watermark %s\n",
				st.Stage, st.Instance, st.Host, st.Stats.RowsIn, st.Stats.RowsOut, st.Stats.LateRows, st.Stats.StateRows, st.Stats.StateBytes, formatWatermark(st.Watermark))
		}
	case x.Stmt != nil:
		switch inner := x.Stmt.(type) {
		case *parser.CreateContinuousQuery:
			q, err := s.c.planner.ContinuousQuery(inner, planner.Options{Parallelism: s.parallelism()})
			if err != nil {
				return Result{}, err
			}
			text = planner.Explain(q.Plan, inner.Name)
		case *parser.Select:
			sel, err := plainSelect(inner)
			if err != nil {
				return Result{}, err
			}
			q, err := s.c.planner.Query(sel)
			if err != nil {
				return Result{}, err
			}
			text = planner.Explain(q.Plan, "")
		default:
			return Result{}, errorf(planner.CodeNotSupported, "EXPLAIN supports SELECT and CREATE CONTINUOUS QUERY")
		}
	default:
		return Result{}, errorf(planner.CodeSyntax, "EXPLAIN needs a statement")
	}
	var rows [][]any
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		rows = append(rows, []any{line})
	}
	return s.rowsResult(textColumns("QUERY PLAN"), rows, "EXPLAIN")
}

func formatWatermark(us int64) string {
	if us == math.MinInt64 {
		return "none"
	}
	return string(exec.AppendTimestamp(nil, us))
}

// planNotices tells what a plan does that its SQL does not show: LEAD
// holds rows back.
func planNotices(plan *planner.Physical) []Notice {
	for _, st := range plan.Stages {
		for _, op := range st.Ops {
			over, ok := op.(*planner.OverOp)
			if !ok {
				continue
			}
			for _, call := range over.Calls {
				if call.Kind == planner.OverLead {
					return []Notice{{Severity: "NOTICE", Code: "00000", Message: "LEAD holds each row until the rows after it in its partition are final: " +
						"a partition's last rows wait for rows that may never come, and the result's watermark waits with them " +
						"(windows over the result do not close meanwhile); LAG does not wait"}}
				}
			}
		}
	}
	return nil
}
