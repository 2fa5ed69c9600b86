package cluster

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/spatedb/spate/cluster/control"
	"github.com/spatedb/spate/exec"
	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/planner"
)

// sourceBatches returns the rows a bounded plan reads, projected to the
// source stage's input. The caller releases them.
func (c *Coordinator) sourceBatches(st *planner.Stage) ([]arrow.RecordBatch, error) {
	src := st.Source
	var full []arrow.RecordBatch
	switch src.Kind {
	case 0:
		return []arrow.RecordBatch{array.NewRecordBatch(arrow.NewSchema(nil, nil), nil, 1)}, nil
	case planner.RelTable:
		c.mu.Lock()
		t := c.tables[src.Relation]
		c.mu.Unlock()
		if t == nil {
			return nil, errorf(planner.CodeUndefinedTable, "relation %q does not exist", src.Relation)
		}
		t.mu.Lock()
		for _, b := range t.batches {
			b.Retain()
			full = append(full, b)
		}
		t.mu.Unlock()
	case planner.RelSystem:
		cols, rows, ok := c.systemRows(systemTables[src.Relation])
		if !ok {
			return nil, errorf(planner.CodeUndefinedTable, "relation %q does not exist", src.Relation)
		}
		if len(rows) > 0 {
			pc := make([]planner.Column, len(cols))
			for i, col := range cols {
				pc[i] = planner.Column{Name: col.Name, Type: col.Type}
			}
			rec, err := exec.RecordFromValues(ArrowSchema(pc), rows)
			if err != nil {
				return nil, err
			}
			full = append(full, rec)
		}
	case planner.RelContinuousQuery:
		c.mu.Lock()
		q := c.queries[src.Relation]
		c.mu.Unlock()
		if q == nil {
			return nil, errorf(planner.CodeUndefinedTable, "relation %q does not exist", src.Relation)
		}
		if err := q.result.failure(); err != nil {
			return nil, queryFailedError(src.Relation, err)
		}
		snap, err := q.result.snapshot()
		if err != nil {
			return nil, err
		}
		full = snap
	default:
		return nil, errorf(planner.CodeWrongObjectType, "cannot read %q as a snapshot", src.Relation)
	}
	out := make([]arrow.RecordBatch, len(full))
	schema := ArrowSchema(st.Input)
	for i, b := range full {
		out[i] = projectColumns(b, st, schema)
		b.Release()
	}
	return out, nil
}

// runSnapshot executes a bounded single-stage plan and returns its output.
func (c *Coordinator) runSnapshot(ctx context.Context, plan *planner.Physical, params []Param) ([]arrow.RecordBatch, error) {
	st := plan.Stages[0]
	head, ops, err := buildOps(st, params)
	if err != nil {
		return nil, err
	}
	var out []arrow.RecordBatch
	ch := newChain(head, ops, func(rec arrow.RecordBatch) error {
		if rec.NumRows() > 0 {
			rec.Retain()
			out = append(out, rec)
		}
		return nil
	})
	defer ch.close()
	in, err := c.sourceBatches(st)
	if err != nil {
		return nil, err
	}
	for i, b := range in {
		if err := ctx.Err(); err != nil {
			releaseBatches(in[i:])
			releaseBatches(out)
			return nil, err
		}
		err := ch.push(0, b)
		b.Release()
		in[i] = nil
		if err != nil {
			releaseBatches(in)
			releaseBatches(out)
			return nil, err
		}
	}
	if err := ch.finish(); err != nil {
		releaseBatches(out)
		return nil, err
	}
	return out, nil
}

// evalRows evaluates the VALUES rows of an INSERT into one batch.
func (c *Coordinator) evalRows(p *planner.InsertPlan, params []Param) (arrow.RecordBatch, error) {
	b := exprBuilder{params: params}
	empty := array.NewRecordBatch(arrow.NewSchema(nil, nil), nil, 1)
	defer empty.Release()
	rows := make([][]any, len(p.Rows))
	for r, row := range p.Rows {
		exprs := make([]exec.Expr, len(row))
		names := make([]string, len(row))
		literal := true
		for i, e := range row {
			x, err := b.expr(e)
			if err != nil {
				return nil, err
			}
			exprs[i], names[i] = x, p.Columns[i].Name
			if _, ok := x.(exec.Literal); !ok {
				literal = false
			}
		}
		vals := make([]any, len(row))
		if literal {
			for i, x := range exprs {
				vals[i] = x.(exec.Literal).Value
			}
		} else {
			calc, err := exec.NewCalc(empty.Schema(), nil, exprs, names)
			if err != nil {
				return nil, err
			}
			err = calc.Push(empty, func(rec arrow.RecordBatch) error {
				for i := range vals {
					vals[i] = valueAt(rec.Column(i), 0)
				}
				return nil
			})
			calc.Close()
			if err != nil {
				return nil, err
			}
		}
		for i, col := range p.Columns {
			if v, ok := vals[i].(int64); ok && col.Type == planner.TypeInt && (v < math.MinInt32 || v > math.MaxInt32) {
				return nil, errorf("22003", "integer out of range for column %q: %d", col.Name, v)
			}
		}
		rows[r] = vals
	}
	return exec.RecordFromValues(RelationSchema(p.Columns), rows)
}

// ingest appends rows (full relation schema, owned by the caller) to a
// stream or table and, for a stream, waits until its continuous queries
// have processed them.
func (c *Coordinator) ingest(ctx context.Context, relation string, rec arrow.RecordBatch) error {
	c.mu.Lock()
	s, t := c.streams[relation], c.tables[relation]
	c.mu.Unlock()
	switch {
	case s != nil:
		if err := c.ingestStream(ctx, s, rec); err != nil {
			return err
		}
		if err := c.wal.sync(); err != nil {
			return err
		}
		return c.flushStream(ctx, s)
	case t != nil:
		if err := c.appendTable(t, rec); err != nil {
			return err
		}
		return c.wal.sync()
	}
	return errorf(planner.CodeUndefinedTable, "relation %q does not exist", relation)
}

// copyOptions reads COPY's options.
func copyOptions(opts []parser.Option) (CopyFormat, error) {
	f := CopyFormat{}
	for _, o := range opts {
		v := o.Value
		switch o.Key {
		case "format":
			switch strings.ToLower(v) {
			case "csv":
				f.CSV = true
			case "text":
				f.CSV = false
			case "binary":
				return f, errorf("0A000", "COPY in binary format is not supported yet; use FORMAT csv or text")
			default:
				return f, errorf("22023", "COPY format %q not recognized (use text or csv)", v)
			}
		case "csv":
			f.CSV = true
		case "header":
			switch strings.ToLower(v) {
			case "", "true", "on", "1":
				f.Header = true
			case "false", "off", "0":
				f.Header = false
			case "match":
				f.Header, f.HeaderMatch = true, true
			default:
				return f, errorf("42601", `header requires a Boolean value or "match"`)
			}
		case "delimiter":
			if len(v) != 1 {
				return f, errorf("22023", "COPY delimiter must be a single one-byte character")
			}
			f.Delimiter = v[0]
		case "null":
			f.Null = v
			f.hasNull = true
		case "quote":
			if len(v) != 1 {
				return f, errorf("22023", "COPY quote must be a single one-byte character")
			}
			f.Quote = v[0]
		case "escape":
			if len(v) != 1 {
				return f, errorf("22023", "COPY escape must be a single one-byte character")
			}
			f.Escape = v[0]
		case "encoding":
			if !strings.EqualFold(strings.ReplaceAll(v, "-", ""), "utf8") {
				return f, errorf("0A000", "COPY encoding %q is not supported (only UTF8)", v)
			}
		default:
			return f, errorf("42601", "option %q not recognized", o.Key)
		}
	}
	if f.Delimiter == 0 {
		f.Delimiter = '\t'
		if f.CSV {
			f.Delimiter = ','
		}
	}
	if !f.hasNull && !f.CSV {
		f.Null = `\N`
	}
	if f.CSV {
		if f.Quote == 0 {
			f.Quote = '"'
		}
		if f.Escape == 0 {
			f.Escape = f.Quote
		}
	}
	return f, nil
}

func (s *session) copy(ctx context.Context, x *parser.Copy, params []Param) (Result, error) {
	format, err := copyOptions(x.Options)
	if err != nil {
		return Result{}, err
	}
	if !x.From {
		if format.HeaderMatch {
			return Result{}, errorf("0A000", `cannot use "match" with HEADER in COPY TO`)
		}
		var res Result
		switch q := x.Query.(type) {
		case *parser.Subscribe:
			res, err = s.subscribe(q.Name)
		case *parser.Select:
			var sel *ast.SelectStmt
			if sel, err = plainSelect(q); err == nil {
				res, err = s.query(ctx, sel, params)
			}
		case nil:
			res, err = s.copyTable(ctx, x.Table)
		default:
			return Result{}, errorf(planner.CodeNotSupported, "COPY (…) TO supports SELECT and SUBSCRIBE")
		}
		if err != nil {
			return Result{}, err
		}
		res.CopyOut, res.CopyOutFormat = true, format
		return res, nil
	}
	obj, kind, ok := s.c.catalog.Lookup(x.Table)
	if !ok {
		return Result{}, errorf(planner.CodeUndefinedTable, "relation %q does not exist", x.Table)
	}
	var cols []planner.Column
	switch o := obj.(type) {
	case *planner.Stream:
		cols = o.Columns
	case *planner.Table:
		cols = o.Columns
	default:
		return Result{}, errorf(planner.CodeWrongObjectType, "cannot copy into %s %q", kind, x.Table)
	}
	target, err := planner.TargetColumns(x.Table, cols, x.Columns)
	if err != nil {
		return Result{}, err
	}
	in := make([]planner.Column, len(target))
	for i, t := range target {
		in[i] = cols[t]
	}
	dec, err := exec.NewCopyDecoder(RelationSchema(in), exec.CopyOptions{
		CSV: format.CSV, Delimiter: format.Delimiter, Null: format.Null, Header: format.Header, HeaderMatch: format.HeaderMatch,
		Quote: format.Quote, Escape: format.Escape, Table: x.Table, NullSet: true,
	}, s.c.cfg.BatchRows)
	if err != nil {
		return Result{}, err
	}
	ci := &copyIn{c: s.c, ctx: ctx, relation: x.Table, kind: kind, def: obj, dec: dec, full: RelationSchema(cols), target: target, cols: cols}
	if kind == planner.RelStream {
		ci.startTicker()
	}
	return Result{CopyIn: ci, CopyInColumns: toColumns(in), CopyInFormat: format}, nil
}

func (s *session) copyTable(ctx context.Context, name string) (Result, error) {
	_, kind, ok := s.c.catalog.Lookup(name)
	if !ok {
		return Result{}, errorf(planner.CodeUndefinedTable, "relation %q does not exist", name)
	}
	if kind == planner.RelStream {
		return Result{}, errorf(planner.CodeWrongObjectType, "cannot copy from stream %q: use COPY (SUBSCRIBE …) TO STDOUT on a continuous query", name)
	}
	stmts, err := parser.Parse("SELECT * FROM " + quoteIdent(name))
	if err != nil {
		return Result{}, err
	}
	return s.query(ctx, stmts[0].(*parser.Select).Query, nil)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// copyIn receives COPY … FROM STDIN data. Rows for a stream are ingested
// batch by batch as they arrive, so continuous queries and subscribers see
// them during a long COPY; a ticker ingests a partial batch once it has
// waited copyLatency, so a slow feed is not held back. Rows for a table
// become visible together at Finish.
type copyIn struct {
	// mu serialises the protocol goroutine (Write, Finish, Abort) and the
	// ticker; it protects everything below.
	mu       sync.Mutex
	stop     chan struct{} // closes the ticker; nil without one
	done     chan struct{}
	c        *Coordinator
	ctx      context.Context
	relation string
	kind     planner.RelationKind
	def      any // the relation's definition when COPY began (*planner.Stream or *planner.Table)
	dec      *exec.CopyDecoder
	full     *arrow.Schema
	target   []int
	cols     []planner.Column
	pending  []arrow.RecordBatch // table rows not yet visible
	ingested int64
	flushed  bool      // the decoder was flushed after an error
	lastEmit time.Time // when rows were last ingested
}

// copyLatency bounds how long decoded COPY rows wait for a batch to fill
// before they are ingested anyway.
const copyLatency = 50 * time.Millisecond

func (ci *copyIn) startTicker() {
	ci.stop, ci.done = make(chan struct{}), make(chan struct{})
	ci.lastEmit = time.Now()
	go func() {
		defer close(ci.done)
		defer func() {
			// The protocol goroutine reports errors; a panic here must not
			// take the server down.
			if r := recover(); r != nil {
				ci.c.cfg.Logger.Error().Interface("panic", r).Msg("COPY flush ticker")
			}
		}()
		t := time.NewTicker(copyLatency)
		defer t.Stop()
		for {
			select {
			case <-ci.stop:
				return
			case <-t.C:
				ci.mu.Lock()
				if time.Since(ci.lastEmit) >= copyLatency {
					// An error here is reported by the next Write or Finish,
					// which see the same failed pipeline.
					_ = ci.dec.EmitPending(ci.emit)
					ci.lastEmit = time.Now()
				}
				ci.mu.Unlock()
			}
		}
	}()
}

// stopTicker ends the ticker goroutine and waits for it. Idempotent.
func (ci *copyIn) stopTicker() {
	if ci.stop == nil {
		return
	}
	close(ci.stop)
	<-ci.done
	ci.stop = nil
}

// Write implements CopyIn.
func (ci *copyIn) Write(data []byte) error {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	err := ci.dec.Write(data, ci.emit)
	if err != nil && ci.kind == planner.RelStream {
		// Rows before the bad line are ingested, as a stream consumer
		// would have seen them; the error says how many.
		if ferr := ci.dec.Flush(ci.emit); ferr == nil {
			ci.flushed = true
			// Like a successful COPY, the error returns only once those
			// rows have reached the results.
			ci.c.mu.Lock()
			st := ci.c.streams[ci.relation]
			ci.c.mu.Unlock()
			if st != nil {
				_ = ci.c.flushStream(ci.ctx, st)
			}
		}
	}
	return ci.annotate(err)
}

func (ci *copyIn) annotate(err error) error {
	if err == nil || ci.kind != planner.RelStream || ci.ingested == 0 {
		return err
	}
	if e, ok := err.(interface{ SQLState() string }); ok {
		return &Error{Code: e.SQLState(), Message: fmt.Sprintf("%s (the %d rows before it were already ingested into stream %q)", err.Error(), ci.ingested, ci.relation)}
	}
	return err
}

func (ci *copyIn) emit(rec arrow.RecordBatch) error {
	full := ci.widen(rec)
	defer full.Release()
	if ci.kind == planner.RelTable {
		full.Retain()
		ci.pending = append(ci.pending, full)
		return nil
	}
	ci.c.mu.Lock()
	s := ci.c.streams[ci.relation]
	ci.c.mu.Unlock()
	if s == nil || s.def != ci.def { // dropped, maybe created again
		return errorf(planner.CodeUndefinedTable, "stream %q was dropped during COPY", ci.relation)
	}
	if err := ci.c.ingestStream(ci.ctx, s, full); err != nil {
		return err
	}
	ci.ingested += full.NumRows()
	ci.lastEmit = time.Now()
	return nil
}

// widen places the decoded columns at their positions in the relation and
// fills the columns COPY did not name with NULLs.
func (ci *copyIn) widen(rec arrow.RecordBatch) arrow.RecordBatch {
	if len(ci.target) == len(ci.cols) {
		identity := true
		for i, t := range ci.target {
			identity = identity && i == t
		}
		if identity {
			rec.Retain()
			return rec
		}
	}
	n := rec.NumRows()
	cols := make([]arrow.Array, len(ci.cols))
	for i, t := range ci.target {
		cols[t] = rec.Column(i)
		cols[t].Retain()
	}
	for i := range cols {
		if cols[i] == nil {
			cols[i] = array.MakeArrayOfNull(memoryAllocator, ArrowType(ci.cols[i].Type), int(n))
		}
	}
	out := array.NewRecordBatch(ci.full, cols, n)
	for _, c := range cols {
		c.Release()
	}
	return out
}

// Finish implements CopyIn.
func (ci *copyIn) Finish() (int64, error) {
	ci.stopTicker()
	if err := ci.dec.Flush(ci.emit); err != nil {
		ci.Abort("")
		return 0, ci.annotate(err)
	}
	rows := ci.dec.Rows()
	if ci.kind == planner.RelTable {
		ci.c.mu.Lock()
		t := ci.c.tables[ci.relation]
		ci.c.mu.Unlock()
		if t == nil || t.def != ci.def { // dropped, maybe created again
			ci.Abort("")
			return 0, errorf(planner.CodeUndefinedTable, "table %q was dropped during COPY", ci.relation)
		}
		var err error
		for _, b := range ci.pending {
			if err == nil {
				err = ci.c.appendTable(t, b)
			}
			b.Release()
		}
		ci.pending = nil
		if err == nil {
			err = ci.c.wal.sync()
		}
		if err != nil {
			return 0, err
		}
		return rows, nil
	}
	if err := ci.c.wal.sync(); err != nil {
		return 0, err
	}
	ci.c.mu.Lock()
	s := ci.c.streams[ci.relation]
	ci.c.mu.Unlock()
	if s != nil {
		if err := ci.c.flushStream(ci.ctx, s); err != nil {
			return 0, err
		}
	}
	return rows, nil
}

// Abort implements CopyIn.
func (ci *copyIn) Abort(reason string) (kept string) {
	ci.stopTicker()
	for _, b := range ci.pending {
		b.Release()
	}
	ci.pending = nil
	ci.dec.Close()
	if ci.ingested == 0 {
		return ""
	}
	return fmt.Sprintf("the %d rows before it were already ingested into stream %q", ci.ingested, ci.relation)
}

// receivedLoad sums, for each instance of a partitioned stage, the rows
// its producers sent it per load bucket of its key range.
func receivedLoad(q *planner.ContinuousQuery, statuses []instanceStatus) map[[2]int][]uint64 {
	consumer := map[int]int{}
	for _, st := range q.Plan.Stages {
		for _, side := range st.Sides {
			consumer[side.Stage] = st.ID
		}
	}
	out := map[[2]int][]uint64{}
	for _, st := range statuses {
		to, ok := consumer[st.Stage]
		if !ok {
			continue
		}
		for j, counts := range st.SentLoad {
			key := [2]int{to, j}
			if out[key] == nil {
				out[key] = make([]uint64, LoadBuckets)
			}
			for b, n := range counts {
				out[key][b] += n
			}
		}
	}
	return out
}

// runningQueries lists the running continuous queries in catalog order.
func (c *Coordinator) runningQueries() []*queryRuntime {
	var out []*queryRuntime
	for _, q := range c.catalog.Queries() {
		c.mu.Lock()
		qr := c.queries[q.Name]
		c.mu.Unlock()
		if qr != nil {
			out = append(out, qr)
		}
	}
	return out
}

// systemTables maps each system table to the SHOW it mirrors.
var systemTables = map[string]string{
	"spate_streams":              "streams",
	"spate_tables":               "tables",
	"spate_continuous_queries":   "continuous queries",
	"spate_instances":            "instances",
	"spate_workers":              "workers",
	"spate_checkpoints":          "checkpoints",
	"spate_instance_checkpoints": "instance checkpoints",
	"spate_restart_points":       "restart points",
	"spate_recoveries":           "recoveries",
	"spate_scaling_events":       "scaling events",
}

// registerSystemTables adds the system tables to the catalog.
func (c *Coordinator) registerSystemTables() {
	for name, what := range systemTables {
		cols, _, _ := c.systemRows(what)
		pc := make([]planner.Column, len(cols))
		for i, col := range cols {
			pc[i] = planner.Column{Name: col.Name, Type: col.Type}
		}
		c.catalog.AddSystem(&planner.SystemTable{Name: name, Columns: pc})
	}
}

func (s *session) show(what string) ([]Column, [][]any, error) {
	if cols, rows, ok := s.c.systemRows(what); ok {
		return cols, rows, nil
	}
	switch what {
	case "all":
		keys := make([]string, 0, len(s.settings))
		for k := range s.settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var rows [][]any
		for _, k := range keys {
			rows = append(rows, []any{k, s.settings[k]})
		}
		return textColumns("name", "setting"), rows, nil
	}
	name := strings.ToLower(what)
	if name == "time zone" {
		name = "timezone"
	}
	v, ok := s.settings[name]
	if !ok {
		return nil, nil, errorf(planner.CodeUndefinedObject, "unrecognized configuration parameter %q", what)
	}
	return textColumns(name), [][]any{{v}}, nil
}

// systemRows answers SHOW STREAMS | TABLES | CONTINUOUS QUERIES |
// INSTANCES | WORKERS, which are also the system tables spate_….
func (c *Coordinator) systemRows(what string) ([]Column, [][]any, bool) {
	switch what {
	case "streams":
		cols := []Column{{"name", planner.TypeText}, {"columns", planner.TypeText}, {"event_time", planner.TypeText}, {"watermark_delay", planner.TypeText}, {"rows_in", planner.TypeBigInt}, {"late_rows", planner.TypeBigInt}, {"watermark", planner.TypeText}, {"backpressure_seconds", planner.TypeDouble}, {"idle", planner.TypeBool}}
		var rows [][]any
		for _, st := range c.catalog.Streams() {
			c.mu.Lock()
			rt := c.streams[st.Name]
			c.mu.Unlock()
			et := ""
			if st.EventTime >= 0 {
				et = st.Columns[st.EventTime].Name
			}
			var in, late int64
			var blocked float64
			var idle bool
			wm := int64(math.MinInt64)
			if rt != nil {
				in, late, wm = rt.rowsIn.Load(), rt.lateRows.Load(), rt.watermark.Load()
				blocked, idle = rt.blockedSeconds(), rt.idle.Load()
			}
			rows = append(rows, []any{st.Name, describeColumns(st.Columns), et, string(exec.AppendInterval(nil, st.WatermarkDelay)), in, late, formatWatermark(wm), blocked, idle})
		}
		return cols, rows, true
	case "tables":
		cols := []Column{{"name", planner.TypeText}, {"columns", planner.TypeText}, {"rows", planner.TypeBigInt}}
		var rows [][]any
		for _, t := range c.catalog.Tables() {
			c.mu.Lock()
			td := c.tables[t.Name]
			c.mu.Unlock()
			var n int64
			if td != nil {
				td.mu.Lock()
				n = td.rows
				td.mu.Unlock()
			}
			rows = append(rows, []any{t.Name, describeColumns(t.Columns), n})
		}
		return cols, rows, true
	case "continuous queries":
		cols := []Column{{"name", planner.TypeText}, {"source", planner.TypeText}, {"kind", planner.TypeText}, {"parallelism", planner.TypeBigInt}, {"status", planner.TypeText}, {"result_rows", planner.TypeBigInt}, {"emitted_rows", planner.TypeBigInt}, {"late_rows", planner.TypeBigInt}, {"watermark", planner.TypeText}, {"sql", planner.TypeText}, {"subscribers", planner.TypeBigInt}, {"scaling", planner.TypeText}, {"subscriber_wait_seconds", planner.TypeDouble}, {"event_time", planner.TypeText}}
		var rows [][]any
		for _, q := range c.catalog.Queries() {
			c.mu.Lock()
			qr := c.queries[q.Name]
			c.mu.Unlock()
			if qr == nil {
				continue
			}
			kind := "append-only"
			if q.Updating {
				kind = "updating"
			}
			n, emitted, wm, err := qr.result.counters()
			status := "running"
			if phase := c.repairStatus(qr); phase != "" {
				status = "recovering: " + phase
			}
			if err != nil {
				status = "failed: " + err.Error()
			}
			// Late rows: those its streams dropped, and those its
			// operators did (behind an instance's watermark).
			late := qr.lateRows.Load()
			par := int64(1)
			if p := qr.pipeline(); p != nil {
				pl := p.placement()
				for s := range pl.Hosts {
					par = max(par, int64(pl.width(s)))
				}
				for _, st := range c.instanceStatuses(qr) {
					late += st.Stats.LateRows
				}
			}
			// The result's event-time column, which a query reading it
			// windows and joins by (NULL: it has none).
			var eventTime any
			if q.EventTime >= 0 {
				eventTime = q.Columns[q.EventTime].Name
			}
			rows = append(rows, []any{q.Name, strings.Join(q.Sources, ", "), kind, par, status, n, emitted, late, formatWatermark(wm), q.SQL, qr.result.subscribers(), qr.scalingPolicy().String(), qr.result.waits.seconds(), eventTime})
		}
		return cols, rows, true
	case "instances":
		cols := []Column{{"query", planner.TypeText}, {"stage", planner.TypeBigInt}, {"instance", planner.TypeBigInt}, {"operators", planner.TypeText}, {"key_range", planner.TypeText}, {"worker", planner.TypeText}, {"rows_in", planner.TypeBigInt}, {"rows_out", planner.TypeBigInt}, {"late_rows", planner.TypeBigInt}, {"state_rows", planner.TypeBigInt}, {"state_bytes", planner.TypeBigInt}, {"watermark", planner.TypeText}, {"queue_depth", planner.TypeBigInt}, {"busy_seconds", planner.TypeDouble}, {"busy", planner.TypeDouble}, {"route_version", planner.TypeBigInt}, {"incarnation", planner.TypeBigInt}, {"replay_buffer_bytes", planner.TypeBigInt},
			{"duplicates_dropped", planner.TypeBigInt}, {"load_buckets", planner.TypeText}, {"status", planner.TypeText}}
		dead := map[string]bool{}
		for _, w := range c.Workers() {
			dead[w.ID] = w.Status == control.StatusDead
		}
		var rows [][]any
		for _, qr := range c.runningQueries() {
			if qr.pipeline().failure() != nil {
				continue // released (releaseFailed)
			}
			q := qr.def
			statuses := c.instanceStatuses(qr)
			load := receivedLoad(q, statuses)
			repair := c.repairStatus(qr)
			var pl placement
			if p := qr.pipeline(); p != nil {
				pl = p.placement()
			}
			for _, st := range statuses {
				stage := q.Plan.Stages[st.Stage]
				var buckets any
				if l := load[[2]int{st.Stage, st.Instance}]; l != nil {
					buckets = fmt.Sprint(l)
				}
				rows = append(rows, []any{q.Name, int64(st.Stage), int64(st.Instance), stageOperators(stage), keyRange(stage, pl.ranges(st.Stage), st.Instance), st.Host,
					st.Stats.RowsIn, st.Stats.RowsOut, st.Stats.LateRows, st.Stats.StateRows, st.Stats.StateBytes, formatWatermark(st.Watermark),
					int64(st.QueueDepth), st.BusySeconds, busyShare(st), int64(st.RouteVersion), int64(st.Gen), st.KeptBytes, st.Duplicates, buckets,
					instanceState(st, dead[st.Host], repair)})
			}
		}
		return cols, rows, true
	case "recoveries":
		cols, rows := c.recoveryRows()
		return cols, rows, true
	case "scaling events":
		cols, rows := c.scalingRows()
		return cols, rows, true
	case "restart points":
		cols, rows := c.restartRows()
		return cols, rows, true
	case "checkpoints":
		cols := []Column{{"query", planner.TypeText}, {"epoch", planner.TypeBigInt}, {"started", planner.TypeTimestamp},
			{"duration_ms", planner.TypeDouble}, {"bytes", planner.TypeBigInt}, {"instances", planner.TypeBigInt}, {"positions", planner.TypeText}, {"status", planner.TypeText}}
		var rows [][]any
		for _, qr := range c.runningQueries() {
			for _, r := range qr.ckpt.records() {
				rows = append(rows, []any{r.Query, int64(r.Epoch), r.Started.UnixMicro(), float64(r.Duration.Microseconds()) / 1000,
					r.Bytes, int64(r.Instances), r.Positions, r.Status})
			}
		}
		return cols, rows, true
	case "instance checkpoints":
		cols := []Column{{"query", planner.TypeText}, {"epoch", planner.TypeBigInt}, {"stage", planner.TypeBigInt}, {"instance", planner.TypeBigInt},
			{"worker", planner.TypeText}, {"bytes", planner.TypeBigInt}, {"duration_ms", planner.TypeDouble}, {"alignment_ms", planner.TypeDouble},
			{"pause_ms", planner.TypeDouble}, {"positions", planner.TypeText}, {"status", planner.TypeText}, {"upstream_copy", planner.TypeText}}
		var rows [][]any
		for _, qr := range c.runningQueries() {
			for _, r := range qr.ckpt.instanceRecords() {
				var holder any
				if r.ic.Copy != "" {
					holder = r.ic.Copy
				}
				rows = append(rows, []any{qr.def.Name, int64(r.epoch), int64(r.key[0]), int64(r.key[1]), r.ic.Host, r.ic.Bytes,
					ms(r.ic.Took), ms(r.ic.Align), ms(r.ic.Pause), r.ic.Positions, r.status, holder})
			}
		}
		return cols, rows, true
	case "workers":
		cols := []Column{{"id", planner.TypeText}, {"address", planner.TypeText}, {"pid", planner.TypeBigInt}, {"status", planner.TypeText},
			{"role", planner.TypeText}, {"instances", planner.TypeBigInt}, {"cpu_seconds", planner.TypeDouble}, {"heap_bytes", planner.TypeBigInt},
			{"last_heartbeat", planner.TypeText}, {"data_address", planner.TypeText}, {"snapshot_copy_bytes", planner.TypeBigInt}, {"pool", planner.TypeText}}
		placed := c.placedPerHost()
		c.mu.Lock()
		pool := c.pool
		c.mu.Unlock()
		role := "coordinator (runs every instance)"
		dataAddr := any(nil)
		if c.reg != nil {
			role = "coordinator (sources and results)"
			dataAddr = c.net.Addr()
		}
		rows := [][]any{{coordinatorHost, "in-process", int64(os.Getpid()), "alive", role, int64(placed[coordinatorHost]), nil, nil, nil, dataAddr, nil, nil}}
		if c.reg != nil {
			for _, w := range listedWorkers(c.reg.Workers()) {
				copies := any(int64(w.Load.CopyBytes))
				if w.Status == control.StatusDead {
					copies = nil // they died with it
				}
				var pooled any // the pool's: warm (kept for a scale-out) or taken
				switch {
				case pool == nil || w.Status == control.StatusDead:
				case pool.Spare(w):
					pooled = "warm"
				case pool.Pooled(w):
					pooled = "taken"
				}
				rows = append(rows, []any{w.ID, w.Addr, int64(w.PID), string(w.Status), "worker",
					int64(placed[w.ID]), w.Load.CPUBusySeconds, int64(w.Load.HeapBytes), string(exec.AppendTimestamp(nil, w.LastHeartbeat.UnixMicro())), w.DataAddr, copies, pooled})
			}
		}
		return cols, rows, true
	}
	return nil, nil, false
}

// keepDeadWorkers is how many dead workers SHOW WORKERS lists: the ones
// that died last (a server whose workers keep dying and being started
// again would list them all).
const keepDeadWorkers = 10

// listedWorkers is ws, in registry order, without the dead workers but
// the keepDeadWorkers last seen alive.
func listedWorkers(ws []control.WorkerInfo) []control.WorkerInfo {
	var dead []time.Time
	for _, w := range ws {
		if w.Status == control.StatusDead {
			dead = append(dead, w.LastHeartbeat)
		}
	}
	if len(dead) <= keepDeadWorkers {
		return ws
	}
	slices.SortFunc(dead, func(a, b time.Time) int { return b.Compare(a) })
	oldest := dead[keepDeadWorkers-1]
	return slices.DeleteFunc(slices.Clone(ws), func(w control.WorkerInfo) bool {
		return w.Status == control.StatusDead && w.LastHeartbeat.Before(oldest)
	})
}

func describeColumns(cols []planner.Column) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = c.Name + " " + c.Type.String()
	}
	return strings.Join(parts, ", ")
}

// busyShare is SHOW INSTANCES.busy: the share of the last few seconds
// the instance was busy, NULL when its worker did not answer.
func busyShare(st instanceStatus) any {
	if st.Unanswered != "" {
		return nil
	}
	return st.Busy
}

// instanceState is SHOW INSTANCES.status: running, lost with its dead
// worker (and where the repair that restores it is), or not answering.
func instanceState(st instanceStatus, deadHost bool, repair string) string {
	switch {
	case st.Unanswered == "":
		return "running"
	case deadHost && repair != "":
		return "lost with worker " + st.Host + ", which died; " + repair
	case deadHost:
		return "lost with worker " + st.Host + ", which died; the repair is about to begin"
	default:
		return "not answering (counters unknown): " + st.Unanswered
	}
}
