package planner

import (
	"strings"
	"testing"

	"github.com/spatedb/spate/parser"
)

func TestIntervalJoinPlan(t *testing.T) {
	p := testCatalog(t)
	q, err := planCQ(t, p, `CREATE CONTINUOUS QUERY j AS
		SELECT a.vid, a.seg, b.spd FROM reports a JOIN reports b
		ON a.vid = b.vid AND b.time BETWEEN a.time - 60 AND a.time AND b.seg <> a.seg
		WHERE a.type = 0`, 3)
	if err != nil {
		t.Fatal(err)
	}
	stages := q.Plan.Stages
	if len(stages) != 3 || len(stages[2].Sides) != 2 {
		t.Fatalf("want two sources and a join stage:\n%s", Explain(q.Plan, "j"))
	}
	op := stages[2].Ops[0].(*JoinOp)
	if op.Kind != JoinInterval || op.Lower != -60_000_000 || op.Upper != 0 || op.Outer {
		t.Errorf("join op %+v", op)
	}
	if op.Residual == nil || !strings.Contains(op.Residual.String(), "(b.seg <> a.seg)") {
		t.Errorf("residual %v", op.Residual)
	}
	// The join's columns are named with their side: both sides have vid,
	// time and seg.
	if plan := Explain(q.Plan, "j"); !strings.Contains(plan, "keys=[a.vid = b.vid] time=b.time - a.time in [-00:01:00, 00:00:00]") {
		t.Errorf("EXPLAIN does not say which side each join column is on:\n%s", plan)
	}
	// WHERE a.type = 0 reads only the left side: it runs in the left source.
	left := stages[0].Ops[0].(*CalcOp)
	if left.Filter == nil || !strings.Contains(left.Filter.String(), "type = 0") {
		t.Errorf("left source filter %v", left.Filter)
	}
	if stages[2].Parallelism != 3 || len(stages[2].Sides[0].PartitionBy) != 1 || len(stages[2].Sides[1].PartitionBy) != 1 {
		t.Errorf("join stage routing: %+v", stages[2].Sides)
	}
	if got := q.Sources; len(got) != 1 || got[0] != "reports" {
		t.Errorf("sources %v", got)
	}
}

func TestLookupJoinPlan(t *testing.T) {
	p := testCatalog(t)
	q, err := planCQ(t, p, "CREATE CONTINUOUS QUERY l AS SELECT r.vid, a.balance FROM reports r LEFT JOIN accounts a ON a.vid = r.vid", 1)
	if err != nil {
		t.Fatal(err)
	}
	op := q.Plan.Stages[2].Ops[0].(*JoinOp)
	if op.Kind != JoinLookup || !op.Outer || op.OpCol != 0 || op.RightKeys[0] != 1 {
		t.Errorf("lookup op %+v", op)
	}
	if !q.Plan.Stages[1].Source.Table {
		t.Errorf("the accounts source should be a table source")
	}
	if len(q.Sources) != 2 {
		t.Errorf("sources %v", q.Sources)
	}
	// An updating query is read as a table: its changelog's op column
	// shifts the right keys by one.
	up, err := planCQ(t, p, "CREATE CONTINUOUS QUERY bal AS SELECT vid, SUM(spd) AS s FROM reports GROUP BY vid", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Catalog.Add(up); err != nil {
		t.Fatal(err)
	}
	q, err = planCQ(t, p, "CREATE CONTINUOUS QUERY l2 AS SELECT r.vid, b.s FROM reports r JOIN bal b ON b.vid = r.vid", 1)
	if err != nil {
		t.Fatal(err)
	}
	op = q.Plan.Stages[2].Ops[0].(*JoinOp)
	if op.OpCol != 0 || op.RightKeys[0] != 1 {
		t.Errorf("changelog lookup %+v", op)
	}
}

func TestJoinErrors(t *testing.T) {
	p := testCatalog(t)
	for sql, code := range map[string]string{
		"CREATE CONTINUOUS QUERY x AS SELECT * FROM reports a JOIN reports b ON a.vid = b.vid":                                              CodeNotSupported, // no time bound
		"CREATE CONTINUOUS QUERY x AS SELECT * FROM reports a JOIN reports b ON b.time BETWEEN a.time AND a.time + 5":                       CodeNotSupported, // no key
		"CREATE CONTINUOUS QUERY x AS SELECT * FROM accounts a JOIN reports b ON a.vid = b.vid":                                             CodeNotSupported, // table on the left
		"CREATE CONTINUOUS QUERY x AS SELECT * FROM reports a RIGHT JOIN reports b ON a.vid = b.vid AND a.time = b.time":                    CodeNotSupported,
		"CREATE CONTINUOUS QUERY x AS SELECT vid FROM reports a JOIN reports b ON a.vid = b.vid AND a.time = b.time":                        CodeAmbiguousColumn,
		"CREATE CONTINUOUS QUERY x AS SELECT a.vid FROM reports a JOIN trades b ON a.vid = b.sym AND a.time = b.qty":                        CodeDatatypeMismatch,
		"CREATE CONTINUOUS QUERY x AS SELECT a.vid FROM reports a JOIN reports b ON a.vid = b.vid AND b.time BETWEEN a.time AND a.time - 5": CodeInvalidParameter,
	} {
		if _, err := planCQ(t, p, sql, 1); sqlState(err) != code {
			t.Errorf("%s: got %s (%v), want %s", sql, sqlState(err), err, code)
		}
	}
}

func TestOverPlan(t *testing.T) {
	p := testCatalog(t)
	q, err := planCQ(t, p, `CREATE CONTINUOUS QUERY o AS
		SELECT vid, time, seg, LAG(seg) OVER w1 AS prev, ROW_NUMBER() OVER w1 AS n
		FROM reports WINDOW w1 AS (PARTITION BY vid ORDER BY time)`, 2)
	if err == nil {
		t.Fatalf("named windows should be refused, got a plan:\n%s", Explain(q.Plan, "o"))
	}
	q, err = planCQ(t, p, `CREATE CONTINUOUS QUERY o AS
		SELECT vid, time, seg, LAG(seg) OVER (PARTITION BY vid ORDER BY time) AS prev,
		       AVG(spd) OVER (PARTITION BY vid ORDER BY time ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS avg4
		FROM reports WHERE type = 0`, 2)
	if err != nil {
		t.Fatal(err)
	}
	last := q.Plan.Stages[len(q.Plan.Stages)-1]
	op, ok := last.Ops[0].(*OverOp)
	if !ok || len(op.PartitionBy) != 1 || last.Parallelism != 2 {
		t.Fatalf("over stage:\n%s", Explain(q.Plan, "o"))
	}
	if op.Calls[0].Kind != OverLag || op.Calls[0].Offset != 1 || op.Calls[1].Kind != OverAvg || op.Calls[1].Preceding != 3 {
		t.Errorf("calls %+v", op.Calls)
	}
	names := []string{}
	for _, c := range q.Columns {
		names = append(names, c.Name+":"+c.Type.String())
	}
	if got := strings.Join(names, ","); got != "vid:integer,time:bigint,seg:integer,prev:integer,avg4:double precision" {
		t.Errorf("columns %s", got)
	}
	if q.EventTime != 1 {
		t.Errorf("event time column %d, want 1 (time passes through)", q.EventTime)
	}
	for sql, code := range map[string]string{
		"CREATE CONTINUOUS QUERY x AS SELECT LAG(seg) OVER (PARTITION BY vid ORDER BY seg) FROM reports":                                 CodeInvalidDefinition,
		"CREATE CONTINUOUS QUERY x AS SELECT LAG(seg) OVER (PARTITION BY vid ORDER BY time), LAG(seg) OVER (ORDER BY time) FROM reports": CodeNotSupported,
		"CREATE CONTINUOUS QUERY x AS SELECT RANK() OVER (PARTITION BY vid ORDER BY time) FROM reports":                                  CodeNotSupported,
		"CREATE CONTINUOUS QUERY x AS SELECT vid, COUNT(*), LAG(seg) OVER (PARTITION BY vid ORDER BY time) FROM reports GROUP BY vid":    CodeNotSupported,
	} {
		if _, err := planCQ(t, p, sql, 1); sqlState(err) != code {
			t.Errorf("%s: got %s (%v), want %s", sql, sqlState(err), err, code)
		}
	}
	st, _ := parser.ParseOne("SELECT vid, ROW_NUMBER() OVER (PARTITION BY name ORDER BY vid) FROM accounts")
	if _, err := p.Query(st.(*parser.Select).Query); err != nil {
		t.Errorf("OVER in a snapshot query: %v", err)
	}
}

// joinCatalog is testCatalog with the streams s and b, whose event times
// are TIMESTAMPs, and wa, a windowed result over s.
func joinCatalog(t *testing.T) *Planner {
	t.Helper()
	p := testCatalog(t)
	for _, sql := range []string{
		"CREATE STREAM s (url TEXT, k INT, t TIMESTAMP) WITH (event_time = 't', watermark_delay = '0 seconds')",
		"CREATE STREAM b (k INT, p INT, t TIMESTAMP) WITH (event_time = 't', watermark_delay = '0 seconds')",
	} {
		st, err := parser.ParseOne(sql)
		if err != nil {
			t.Fatal(err)
		}
		s, err := p.CreateStream(st.(*parser.CreateStream))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Catalog.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	wa, err := planCQ(t, p, "CREATE CONTINUOUS QUERY wa AS SELECT k, window_start, window_end, COUNT(*) AS n FROM s GROUP BY k, TUMBLE(t, INTERVAL '1' SECOND)", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Catalog.Add(wa); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestJoinBoundInWhere checks that an inner join's event-time bound may be
// written in WHERE: it plans as if written in ON.
func TestJoinBoundInWhere(t *testing.T) {
	p := joinCatalog(t)
	inWhere, err := planCQ(t, p, `CREATE CONTINUOUS QUERY x AS SELECT s.k, b.p FROM s JOIN b ON s.k = b.k
		WHERE b.t BETWEEN s.t - INTERVAL '1' SECOND AND s.t AND s.url <> 'x'`, 1)
	if err != nil {
		t.Fatal(err)
	}
	inOn, err := planCQ(t, p, `CREATE CONTINUOUS QUERY x AS SELECT s.k, b.p FROM s JOIN b ON s.k = b.k
		AND b.t BETWEEN s.t - INTERVAL '1' SECOND AND s.t WHERE s.url <> 'x'`, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, want := Explain(inWhere.Plan, "x"), Explain(inOn.Plan, "x")
	if got != want {
		t.Errorf("bound in WHERE:\n%s\nbound in ON:\n%s", got, want)
	}
	if !strings.Contains(got, "time=b.t - s.t in [-00:00:01, 00:00:00]") || !strings.Contains(got, "filter=(url <> 'x')") {
		t.Errorf("plan:\n%s", got)
	}
}

// TestJoinErrorMessages checks the errors that say how to write a join.
func TestJoinErrorMessages(t *testing.T) {
	p := joinCatalog(t)
	for _, tc := range []struct{ sql, code, msg string }{
		{"SELECT s.k FROM s, b WHERE s.k = b.k", CodeNotSupported,
			"FROM s, b is not supported; write FROM s JOIN b ON s.k = b.k AND b.t BETWEEN s.t - INTERVAL '1' MINUTE AND s.t (a join of two streams needs an event-time bound)"},
		{"SELECT x.k FROM s x, accounts a", CodeNotSupported,
			"FROM s x, accounts a is not supported; write FROM s x JOIN accounts a ON x.… = a.…"},
		{"SELECT s.k FROM s, b, trades WHERE s.k = b.k", CodeNotSupported,
			"a continuous query joins two relations; join more by chaining continuous queries"},
		{"SELECT s.k FROM s LEFT JOIN b ON s.k = b.k WHERE b.t BETWEEN s.t - INTERVAL '1' SECOND AND s.t", CodeNotSupported,
			"put the event-time bound of a LEFT JOIN in its ON clause, as in ON s.k = b.k AND b.t BETWEEN s.t - INTERVAL '1' MINUTE AND s.t; in WHERE it filters the joined rows, the NULL-extended ones too"},
		{"SELECT s.k FROM s JOIN b ON s.k = b.k", CodeNotSupported,
			"a stream–stream join needs an event-time bound on both sides, such as b.t BETWEEN s.t - INTERVAL '1' MINUTE AND s.t"},
		{"SELECT a.vid FROM reports a JOIN reports b ON a.vid = b.vid", CodeNotSupported,
			"a stream–stream join needs an event-time bound on both sides, such as b.time BETWEEN a.time - 60 AND a.time"},
		{"SELECT * FROM HOP(s, t, INTERVAL '1' SECOND, INTERVAL '2' SECOND)", CodeNotSupported,
			"window table functions are not supported; window in GROUP BY instead: SELECT …, window_start, window_end, COUNT(*) FROM s GROUP BY …, HOP(t, slide, size)"},
		{"SELECT * FROM TUMBLE(s, t, INTERVAL '1' SECOND)", CodeNotSupported,
			"window table functions are not supported; window in GROUP BY instead: SELECT …, window_start, window_end, COUNT(*) FROM s GROUP BY …, TUMBLE(t, size)"},
		{"SELECT * FROM (SELECT k FROM s) x", CodeNotSupported,
			"subqueries in FROM are not supported; a continuous query can read another one: CREATE CONTINUOUS QUERY step1 AS SELECT …; CREATE CONTINUOUS QUERY step2 AS SELECT … FROM step1"},
		{"WITH x AS (SELECT k FROM s) SELECT * FROM x", CodeNotSupported,
			"WITH is not supported; a continuous query can read another one: CREATE CONTINUOUS QUERY step1 AS SELECT …; CREATE CONTINUOUS QUERY step2 AS SELECT … FROM step1"},
	} {
		_, err := planCQ(t, p, "CREATE CONTINUOUS QUERY x AS "+tc.sql, 1)
		if sqlState(err) != tc.code || err.Error() != tc.msg {
			t.Errorf("%s:\ngot  %s %v\nwant %s %s", tc.sql, sqlState(err), err, tc.code, tc.msg)
		}
	}
}

// TestWindowBoundNames checks that a window over a windowed result refuses
// to group by the input's window_start or window_end, which the select
// list would read as the new window's, and keeps windowing on window_end.
func TestWindowBoundNames(t *testing.T) {
	p := joinCatalog(t)
	for _, sql := range []string{
		"SELECT window_start AS ws, MAX(n) FROM wa GROUP BY window_start, TUMBLE(window_end, INTERVAL '10' SECOND)",
		"SELECT window_start AS ws, MAX(n) FROM wa GROUP BY ws, TUMBLE(window_end, INTERVAL '10' SECOND)",
		"SELECT MAX(n) FROM wa GROUP BY TUMBLE(window_end, INTERVAL '10' SECOND), window_start",
	} {
		_, err := planCQ(t, p, "CREATE CONTINUOUS QUERY x AS "+sql, 1)
		const want = `GROUP BY window_start is ambiguous: it is both a column of "wa" and the start of the new window; rename it in the query that writes "wa" (SELECT window_start AS ws, …) and group by the new name`
		if sqlState(err) != CodeAmbiguousColumn || err.Error() != want {
			t.Errorf("%s: got %s %v", sql, sqlState(err), err)
		}
	}
	_, err := planCQ(t, p, "CREATE CONTINUOUS QUERY x AS SELECT window_end, MAX(n) FROM wa GROUP BY window_end, TUMBLE(window_end, INTERVAL '10' SECOND)", 1)
	if sqlState(err) != CodeAmbiguousColumn || !strings.Contains(err.Error(), "the end of the new window") {
		t.Errorf("GROUP BY window_end: got %s %v", sqlState(err), err)
	}
	// TUMBLE's argument is the input's window_end; the select list's
	// window_start and window_end are the new window's.
	q, err := planCQ(t, p, "CREATE CONTINUOUS QUERY x AS SELECT k, window_start, window_end, COUNT(*) AS c FROM wa GROUP BY k, TUMBLE(window_end, INTERVAL '10' SECOND)", 1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range q.Columns {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, ","); got != "k,window_start,window_end,c" {
		t.Errorf("columns %s", got)
	}
	if plan := Explain(q.Plan, "x"); !strings.Contains(plan, "TUMBLE(window_end") {
		t.Errorf("the window is not on the input's window_end:\n%s", plan)
	}
}
