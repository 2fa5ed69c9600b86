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
