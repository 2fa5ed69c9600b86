package planner

import (
	"strings"
	"testing"

	"github.com/spatedb/spate/parser"
)

func testCatalog(t *testing.T) *Planner {
	t.Helper()
	p := &Planner{Catalog: NewCatalog()}
	for _, sql := range []string{
		"CREATE STREAM trades (sym TEXT, price DOUBLE PRECISION, qty INT, venue TEXT, ts TIMESTAMP) WITH (event_time = 'ts', watermark_delay = '2s')",
		"CREATE STREAM reports (type INT, time BIGINT, vid INT, spd INT, xway INT, seg INT) WITH (event_time = 'time', time_unit = 's')",
		"CREATE TABLE accounts (vid INT PRIMARY KEY, balance BIGINT, name TEXT)",
	} {
		st, err := parser.ParseOne(sql)
		if err != nil {
			t.Fatal(err)
		}
		switch x := st.(type) {
		case *parser.CreateStream:
			s, err := p.CreateStream(x)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Catalog.Add(s); err != nil {
				t.Fatal(err)
			}
		case *parser.CreateTable:
			tb, err := p.CreateTable(x)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Catalog.Add(tb); err != nil {
				t.Fatal(err)
			}
		}
	}
	return p
}

func planCQ(t *testing.T, p *Planner, sql string, par int) (*ContinuousQuery, error) {
	t.Helper()
	st, err := parser.ParseOne(sql)
	if err != nil {
		t.Fatalf("parse %q: %v", sql, err)
	}
	return p.ContinuousQuery(st.(*parser.CreateContinuousQuery), Options{Parallelism: par})
}

func TestStreamOptions(t *testing.T) {
	p := testCatalog(t)
	s, _ := p.Catalog.Stream("reports")
	if s.TimeUnit != 1_000_000 || s.EventTime != 1 || s.WatermarkDelay != 0 {
		t.Errorf("reports: unit %d, event time %d, delay %d", s.TimeUnit, s.EventTime, s.WatermarkDelay)
	}
	tr, _ := p.Catalog.Stream("trades")
	if tr.TimeUnit != 1 || tr.WatermarkDelay != 2_000_000 {
		t.Errorf("trades: unit %d, delay %d", tr.TimeUnit, tr.WatermarkDelay)
	}
	for sql, code := range map[string]string{
		"CREATE STREAM a (x INT) WITH (event_time = 'y')":                          CodeUndefinedColumn,
		"CREATE STREAM a (x TEXT) WITH (event_time = 'x')":                         CodeDatatypeMismatch,
		"CREATE STREAM a (x INT) WITH (event_time = 'x', time_unit = 'fortnight')": CodeInvalidParameter,
		"CREATE STREAM a (x INT) WITH (colour = 'blue')":                           CodeInvalidParameter,
		"CREATE STREAM a (x INT, x BIGINT)":                                        CodeDuplicateColumn,
		"CREATE STREAM a (x MONEY)":                                                CodeUndefinedObject,
		"CREATE STREAM a (x INT) WITH (watermark_delay = 'soon')":                  CodeInvalidParameter,
	} {
		st, err := parser.ParseOne(sql)
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.CreateStream(st.(*parser.CreateStream))
		if got := sqlState(err); got != code {
			t.Errorf("%s: got %s (%v), want %s", sql, got, err, code)
		}
	}
}

func sqlState(err error) string {
	if e, ok := err.(interface{ SQLState() string }); ok {
		return e.SQLState()
	}
	return ""
}

func TestWindowedPlanShape(t *testing.T) {
	p := testCatalog(t)
	q, err := planCQ(t, p, `CREATE CONTINUOUS QUERY seg AS
		SELECT xway, seg, window_start, COUNT(DISTINCT vid) AS cars, AVG(spd) AS lav
		FROM reports WHERE type = 0
		GROUP BY xway, seg, HOP(time, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)
		HAVING xway < 10 AND COUNT(*) > 1`, 4)
	if err != nil {
		t.Fatal(err)
	}
	phys := q.Plan
	if len(phys.Stages) != 2 {
		t.Fatalf("want 2 stages, got %d:\n%s", len(phys.Stages), Explain(phys, "seg"))
	}
	src, agg := phys.Stages[0], phys.Stages[1]
	// Projection pushdown: the scan reads only the columns the query uses.
	var read []string
	for _, c := range src.Input {
		read = append(read, c.Name)
	}
	if got := strings.Join(read, ","); got != "type,time,vid,spd,xway,seg" {
		t.Errorf("scan reads %s", got)
	}
	// Predicate pushdown: HAVING xway < 10 reads only a group key, so it is
	// evaluated before the aggregate, together with WHERE.
	calc := src.Ops[0].(*CalcOp)
	if calc.Filter == nil || !strings.Contains(calc.Filter.String(), "xway < 10") || !strings.Contains(calc.Filter.String(), "type = 0") {
		t.Errorf("source filter = %v", calc.Filter)
	}
	if agg.Parallelism != 4 || len(agg.PartitionBy) != 2 {
		t.Errorf("aggregate stage: parallelism %d, partition %v", agg.Parallelism, agg.PartitionBy)
	}
	a := agg.Ops[0].(*AggOp)
	if a.Window == nil || a.Window.Kind != WindowHop || a.Window.Size != 300_000_000 || a.Window.Slide != 60_000_000 || a.Window.TimeUnit != 1_000_000 {
		t.Errorf("window = %+v", a.Window)
	}
	if phys.Mode != AggWindowed || q.Updating {
		t.Errorf("mode %v, updating %v", phys.Mode, q.Updating)
	}
	// The remaining HAVING (COUNT(*) > 1) stays above the aggregate.
	post := agg.Ops[1].(*CalcOp)
	if post.Filter == nil || !strings.Contains(post.Filter.String(), "> 1") {
		t.Errorf("post filter = %v", post.Filter)
	}
	names := []string{}
	for _, c := range q.Columns {
		names = append(names, c.Name+":"+c.Type.String())
	}
	if got := strings.Join(names, ","); got != "xway:integer,seg:integer,window_start:bigint,cars:bigint,lav:double precision" {
		t.Errorf("columns %s", got)
	}
	explain := Explain(phys, "seg")
	for _, want := range []string{"Stage 0: source", "Input <- Stage 0, exchange hash(xway, seg)", "HOP(", "Result seg (append-only)"} {
		if !strings.Contains(explain, want) {
			t.Errorf("EXPLAIN lacks %q:\n%s", want, explain)
		}
	}
}

func TestUpdatingPlan(t *testing.T) {
	p := testCatalog(t)
	q, err := planCQ(t, p, "CREATE CONTINUOUS QUERY v AS SELECT venue, sym, SUM(qty) AS vol FROM trades GROUP BY sym, venue", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !q.Updating || q.Plan.Columns[0].Name != "op" {
		t.Fatalf("updating %v, columns %v", q.Updating, q.Plan.Columns)
	}
	// The key is (sym, venue), found at output positions 1 and 0.
	if len(q.Key) != 2 || q.Key[0] != 1 || q.Key[1] != 0 {
		t.Errorf("key = %v", q.Key)
	}
}

func TestPlanErrors(t *testing.T) {
	p := testCatalog(t)
	for sql, code := range map[string]string{
		"CREATE CONTINUOUS QUERY x AS SELECT * FROM nope":                                                                                                       CodeUndefinedTable,
		"CREATE CONTINUOUS QUERY x AS SELECT nope FROM trades":                                                                                                  CodeUndefinedColumn,
		"CREATE CONTINUOUS QUERY x AS SELECT sym FROM trades WHERE qty":                                                                                         CodeDatatypeMismatch,
		"CREATE CONTINUOUS QUERY x AS SELECT sym FROM trades WHERE sym = 1":                                                                                     CodeDatatypeMismatch,
		"CREATE CONTINUOUS QUERY x AS SELECT sym, price FROM trades GROUP BY sym":                                                                               CodeGrouping,
		"CREATE CONTINUOUS QUERY x AS SELECT sym, COUNT(*) FROM trades GROUP BY sym, TUMBLE(price, INTERVAL '1' MINUTE)":                                        CodeInvalidDefinition,
		"CREATE CONTINUOUS QUERY x AS SELECT sum(sym) FROM trades":                                                                                              CodeUndefinedFunction,
		"CREATE CONTINUOUS QUERY x AS SELECT nofunc(sym) FROM trades":                                                                                           CodeUndefinedFunction,
		"CREATE CONTINUOUS QUERY x AS SELECT to_char(price, '999.99') FROM trades":                                                                              CodeNotSupported,
		"CREATE CONTINUOUS QUERY x AS SELECT to_char(sym, 'YYYY') FROM trades":                                                                                  CodeUndefinedFunction,
		"CREATE CONTINUOUS QUERY x AS SELECT sym FROM trades ORDER BY sym":                                                                                      CodeNotSupported,
		"CREATE CONTINUOUS QUERY x AS SELECT * FROM accounts":                                                                                                   CodeNotSupported,
		"CREATE CONTINUOUS QUERY x WITH (parallelism = 0) AS SELECT sym FROM trades":                                                                            CodeInvalidParameter,
		"CREATE CONTINUOUS QUERY x AS SELECT sym FROM trades GROUP BY sym, TUMBLE(ts, INTERVAL '0' SECOND)":                                                     CodeInvalidParameter,
		"CREATE CONTINUOUS QUERY x AS SELECT sym, COUNT(*) FROM trades GROUP BY sym, HOP(ts, INTERVAL '1' MILLISECOND, INTERVAL '1' HOUR)":                      CodeInvalidParameter,
		"CREATE CONTINUOUS QUERY x AS SELECT sym, SUM(qty) OVER (PARTITION BY sym ORDER BY ts ROWS BETWEEN 1048577 PRECEDING AND CURRENT ROW) AS s FROM trades": CodeInvalidParameter,
	} {
		if _, err := planCQ(t, p, sql, 1); sqlState(err) != code {
			t.Errorf("%s: got %s (%v), want %s", sql, sqlState(err), err, code)
		}
	}
}

func TestBatchQueries(t *testing.T) {
	p := testCatalog(t)
	for _, tc := range []struct {
		sql    string
		cols   string
		params int
	}{
		{"SELECT name, balance * 2 AS b FROM accounts WHERE vid = $1 ORDER BY balance DESC LIMIT 3", "name:text,b:bigint", 1},
		{"SELECT count(*), max(balance) FROM accounts", "count:bigint,max:bigint", 0},
		{"SELECT DISTINCT name FROM accounts", "name:text", 0},
		{"SELECT 1 + 1, 'x' || 'y', true, concat('a', 1)", "?column?:integer,?column?:text,bool:boolean,concat:text", 0},
		{"SELECT vid FROM accounts ORDER BY balance", "vid:integer", 0},
	} {
		st, err := parser.ParseOne(tc.sql)
		if err != nil {
			t.Fatal(err)
		}
		q, err := p.Query(st.(*parser.Select).Query)
		if err != nil {
			t.Errorf("%s: %v", tc.sql, err)
			continue
		}
		var cols []string
		for _, c := range q.Plan.Columns {
			cols = append(cols, c.Name+":"+c.Type.String())
		}
		if got := strings.Join(cols, ","); got != tc.cols {
			t.Errorf("%s: columns %s, want %s", tc.sql, got, tc.cols)
		}
		if len(q.Params) != tc.params {
			t.Errorf("%s: %d params, want %d", tc.sql, len(q.Params), tc.params)
		}
	}
	// Streams are unbounded: SELECT reads continuous queries and tables.
	st, _ := parser.ParseOne("SELECT * FROM trades")
	if _, err := p.Query(st.(*parser.Select).Query); sqlState(err) != CodeWrongObjectType {
		t.Errorf("SELECT from a stream: %v", err)
	}
}

func TestParamInference(t *testing.T) {
	p := testCatalog(t)
	st, _ := parser.ParseOne("INSERT INTO accounts (vid, name) VALUES ($1, $2)")
	ins, err := p.Insert(st.(*parser.Insert).Stmt)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins.Params) != 2 || ins.Params[0] != TypeInt || ins.Params[1] != TypeText {
		t.Errorf("params %v", ins.Params)
	}
	if c, ok := ins.Rows[0][1].(*Const); !ok || c.Value != nil {
		t.Errorf("unnamed column should be NULL, got %v", ins.Rows[0][1])
	}
	st, _ = parser.ParseOne("INSERT INTO accounts VALUES ('x', 1, 'a')")
	if _, err := p.Insert(st.(*parser.Insert).Stmt); err == nil {
		// 'x' is an untyped literal: accepted here, rejected by the cast at run time.
	} else {
		t.Errorf("untyped literal: %v", err)
	}
	st, _ = parser.ParseOne("INSERT INTO accounts VALUES (1.5 > 2, 1, 'a')")
	if _, err := p.Insert(st.(*parser.Insert).Stmt); sqlState(err) != CodeDatatypeMismatch {
		t.Errorf("bool into int: %v", err)
	}
}

// TestPrimaryKey checks that a column's PRIMARY KEY names the column once.
func TestPrimaryKey(t *testing.T) {
	p := testCatalog(t)
	tb, ok := p.Catalog.Table("accounts")
	if !ok || len(tb.PrimaryKey) != 1 || tb.PrimaryKey[0] != 0 {
		t.Fatalf("accounts primary key %v, want [0]", tb.PrimaryKey)
	}
}
