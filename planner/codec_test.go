package planner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/spatedb/spate/parser"
)

// codecPlanner is testCatalog plus what the codec tests read: a stream
// without event time, a windowed query and an updating query to read from
// (query-on-query and a lookup of a changelog), and a system table.
func codecPlanner(tb testing.TB) *Planner {
	tb.Helper()
	p := &Planner{Catalog: NewCatalog()}
	for _, sql := range []string{
		"CREATE STREAM trades (sym TEXT, price DOUBLE PRECISION, qty INT, venue VARCHAR(8), ts TIMESTAMP) WITH (event_time = 'ts', watermark_delay = '2s')",
		"CREATE STREAM reports (type INT, time BIGINT, vid INT, spd INT, xway INT, seg INT) WITH (event_time = 'time', time_unit = 's')",
		"CREATE STREAM logs (msg TEXT, lvl INT)",
		"CREATE TABLE accounts (vid INT PRIMARY KEY, balance BIGINT, name TEXT)",
		"CREATE CONTINUOUS QUERY bars AS SELECT sym, window_start, window_end, COUNT(*) AS n, SUM(qty) AS vol FROM trades GROUP BY sym, TUMBLE(ts, INTERVAL '10' SECOND)",
		"CREATE CONTINUOUS QUERY bal AS SELECT vid, SUM(spd) AS s FROM reports GROUP BY vid",
	} {
		st, err := parser.ParseOne(sql)
		if err != nil {
			tb.Fatalf("parse %q: %v", sql, err)
		}
		var obj any
		switch x := st.(type) {
		case *parser.CreateStream:
			obj, err = p.CreateStream(x)
		case *parser.CreateTable:
			obj, err = p.CreateTable(x)
		case *parser.CreateContinuousQuery:
			obj, err = p.ContinuousQuery(x, Options{Parallelism: 2})
		}
		if err != nil {
			tb.Fatalf("%s: %v", sql, err)
		}
		if err := p.Catalog.Add(obj); err != nil {
			tb.Fatal(err)
		}
	}
	p.Catalog.AddSystem(&SystemTable{Name: "spate_workers", Columns: []Column{{Name: "addr", Type: TypeText}, {Name: "pid", Type: TypeBigInt}}})
	return p
}

func codecCQ(tb testing.TB, p *Planner, sql string, par int) *ContinuousQuery {
	tb.Helper()
	st, err := parser.ParseOne(sql)
	if err != nil {
		tb.Fatalf("parse %q: %v", sql, err)
	}
	q, err := p.ContinuousQuery(st.(*parser.CreateContinuousQuery), Options{Parallelism: par})
	if err != nil {
		tb.Fatalf("plan %q: %v", sql, err)
	}
	return q
}

// codecQueries covers every operator, window kind, join kind, OVER
// function and constant type the planner makes.
var codecQueries = []string{
	// Tumbling windows, every aggregate, HAVING above and below the aggregate.
	`CREATE CONTINUOUS QUERY t1 AS
		SELECT sym, window_start, window_end, COUNT(*) AS n, COUNT(qty) AS nq, COUNT(DISTINCT qty) AS dq,
		       SUM(qty) AS vol, AVG(price) AS avgp, MIN(price) AS lo, MAX(price) AS hi
		FROM trades WHERE venue <> 'x' GROUP BY sym, TUMBLE(ts, INTERVAL '10' SECOND)
		HAVING COUNT(*) >= 2 AND sym LIKE 'A%'`,
	// A tumbling window with an offset; computed keys and arguments.
	`CREATE CONTINUOUS QUERY t2 AS
		SELECT qty % 2 AS odd, window_start, SUM(qty * price) AS notional, MAX(price) - MIN(price) AS spread
		FROM trades GROUP BY qty % 2, TUMBLE(ts, INTERVAL '1' HOUR, INTERVAL '15' MINUTE)`,
	// A global window (no key: one instance).
	`CREATE CONTINUOUS QUERY t3 AS SELECT window_start, window_end, COUNT(*) AS n FROM trades GROUP BY TUMBLE(ts, INTERVAL '1' MINUTE)`,
	// Hopping windows with an offset, over an integer event time in seconds.
	`CREATE CONTINUOUS QUERY h1 AS
		SELECT xway, seg, window_start, COUNT(DISTINCT vid) AS cars, AVG(spd) AS lav
		FROM reports WHERE type = 0
		GROUP BY xway, seg, HOP(time, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE, INTERVAL '30' SECOND)
		HAVING xway < 10 AND COUNT(*) > 1`,
	// Session windows.
	`CREATE CONTINUOUS QUERY s1 AS
		SELECT vid, window_start, window_end, COUNT(*) AS n FROM reports
		GROUP BY vid, SESSION(time, INTERVAL '10' SECOND) HAVING COUNT(*) >= 2`,
	// Updating aggregates, with HAVING and without keys.
	`CREATE CONTINUOUS QUERY u1 AS SELECT venue, sym, SUM(qty) AS vol FROM trades GROUP BY sym, venue HAVING SUM(qty) > 100`,
	`CREATE CONTINUOUS QUERY u2 AS SELECT COUNT(*) AS n, MAX(price) AS hi FROM trades`,
	// Constants of every kind, operators, casts, CASE.
	`CREATE CONTINUOUS QUERY c1 AS
		SELECT sym || 'a''b<&>é' AS s, price * 1.5 AS p, qty + 9007199254740993 AS big,
		       price > -0.0 AS neg0, qty IS NULL AS qn, NOT (qty > 1) AS nq, CAST(qty AS TEXT) AS qt, -qty AS mq,
		       ts + INTERVAL '1' HOUR AS later, CASE WHEN qty > 1 THEN 'many' ELSE NULL END AS c,
		       price / 3.0e-300 AS tiny, true AS yes
		FROM trades
		WHERE qty <> 9223372036854775807 AND ts > '2020-01-01 00:00:00'::timestamp AND venue IS NOT NULL`,
	// A stream without event time.
	`CREATE CONTINUOUS QUERY l1 AS SELECT msg, lvl * 2 AS l2 FROM logs WHERE lvl > 3 OR msg ~ 'err'`,
	// Interval joins: inner with a residual, left outer.
	`CREATE CONTINUOUS QUERY j1 AS
		SELECT a.vid, a.seg, b.spd FROM reports a JOIN reports b
		ON a.vid = b.vid AND b.time BETWEEN a.time - 60 AND a.time AND b.seg <> a.seg
		WHERE a.type = 0`,
	`CREATE CONTINUOUS QUERY j2 AS
		SELECT a.vid, b.spd, a.spd - b.spd AS d FROM reports a LEFT JOIN reports b
		ON b.vid = a.vid AND b.xway = a.xway AND b.time BETWEEN a.time AND a.time + 30 AND b.spd > a.spd`,
	// Lookup joins: a table (left, with a right-side condition), an
	// updating query read as a changelog.
	`CREATE CONTINUOUS QUERY k1 AS
		SELECT r.vid, a.balance, a.name FROM reports r LEFT JOIN accounts a ON a.vid = r.vid AND a.balance + r.spd > 0`,
	`CREATE CONTINUOUS QUERY k2 AS SELECT r.vid, b.s FROM reports r JOIN bal b ON b.vid = r.vid`,
	// OVER: every function, defaults (constant and constant expression),
	// frames, computed partition keys.
	`CREATE CONTINUOUS QUERY o1 AS
		SELECT vid, time, seg, LAG(seg) OVER (PARTITION BY vid ORDER BY time) AS prev,
		       LAG(seg, 2, -1) OVER (PARTITION BY vid ORDER BY time) AS prev2,
		       LEAD(spd, 1, 1 + 1) OVER (PARTITION BY vid ORDER BY time) AS nxt,
		       ROW_NUMBER() OVER (PARTITION BY vid ORDER BY time) AS rn,
		       COUNT(*) OVER (PARTITION BY vid ORDER BY time) AS c,
		       COUNT(spd) OVER (PARTITION BY vid ORDER BY time ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS c3,
		       SUM(spd) OVER (PARTITION BY vid ORDER BY time ROWS BETWEEN CURRENT ROW AND CURRENT ROW) AS s0,
		       AVG(spd) OVER (PARTITION BY vid ORDER BY time ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS avg4,
		       MIN(spd) OVER (PARTITION BY vid ORDER BY time ROWS UNBOUNDED PRECEDING) AS lo,
		       MAX(spd) OVER (PARTITION BY vid ORDER BY time) AS hi
		FROM reports WHERE type = 0`,
	`CREATE CONTINUOUS QUERY o2 AS
		SELECT sym, ts, LAG(ts, 1, '2026-01-01 00:00:00'::timestamp) OVER (PARTITION BY sym || venue ORDER BY ts) AS prev,
		       SUM(price * qty) OVER (PARTITION BY sym || venue ORDER BY ts ROWS UNBOUNDED PRECEDING) AS total,
		       LAG(sym, 1, 'none') OVER (PARTITION BY sym || venue ORDER BY ts) AS ps
		FROM trades`,
	`CREATE CONTINUOUS QUERY o3 AS SELECT ts, ROW_NUMBER() OVER (ORDER BY ts) AS rn FROM trades`,
	// Queries on queries: a window over window_end, a filter, a join.
	`CREATE CONTINUOUS QUERY q1 AS SELECT window_start, SUM(vol) AS total, COUNT(*) AS parts FROM bars GROUP BY TUMBLE(window_end, INTERVAL '1' MINUTE)`,
	`CREATE CONTINUOUS QUERY q2 AS SELECT sym, window_end, n FROM bars WHERE n > 5`,
	`CREATE CONTINUOUS QUERY q3 WITH (parallelism = 4) AS
		SELECT b.sym, b.n, t.price FROM bars b JOIN trades t ON t.sym = b.sym AND t.ts BETWEEN b.window_end AND b.window_end + INTERVAL '10' SECOND`,
}

// codecQuery returns the query of codecQueries with the given name.
func codecQuery(tb testing.TB, name string) string {
	for _, sql := range codecQueries {
		if strings.HasPrefix(sql, "CREATE CONTINUOUS QUERY "+name+" ") {
			return sql
		}
	}
	tb.Fatalf("no codec query %s", name)
	return ""
}

// codecSnapshots are snapshot queries, for EncodePhysical.
var codecSnapshots = []string{
	"SELECT name, balance * 2 AS b FROM accounts WHERE vid = $1 AND name <> $2 ORDER BY balance DESC, name LIMIT 3 OFFSET 2",
	"SELECT count(*), max(balance) FROM accounts",
	"SELECT DISTINCT name FROM accounts",
	"SELECT 1 + 1, 'x' || 'y', true, NULL",
	"SELECT vid, ROW_NUMBER() OVER (PARTITION BY name ORDER BY vid) FROM accounts",
	"SELECT sym, window_end, n FROM bars WHERE n > 1 ORDER BY n DESC",
	"SELECT vid, s FROM bal",
	"SELECT addr FROM spate_workers",
	"SELECT name, SUM(balance) AS total FROM accounts GROUP BY name HAVING SUM(balance) > 80 ORDER BY total DESC",
}

// sourceStubs returns q as DecodeQuery returns it: every Source.Query
// reduced to what the encoding keeps. q is not modified.
func sourceStubs(q *ContinuousQuery) *ContinuousQuery {
	cp := *q
	cp.Plan = physicalStubs(q.Plan)
	return &cp
}

func physicalStubs(p *Physical) *Physical {
	cp := *p
	cp.Stages = make([]*Stage, len(p.Stages))
	for i, st := range p.Stages {
		s := *st
		if st.Source != nil && st.Source.Query != nil {
			src := *st.Source
			up := st.Source.Query
			src.Query = &ContinuousQuery{Name: up.Name, Columns: up.Columns, Updating: up.Updating, Key: up.Key,
				EventTime: up.EventTime, TimeUnit: up.TimeUnit}
			s.Source = &src
		}
		cp.Stages[i] = &s
	}
	return &cp
}

// firstDiff names the first path where a and b differ (reflect.DeepEqual
// says only whether they do).
func firstDiff(path string, a, b reflect.Value) string {
	if a.IsValid() != b.IsValid() {
		return path + ": one side invalid"
	}
	if !a.IsValid() {
		return ""
	}
	if a.Type() != b.Type() {
		return fmt.Sprintf("%s: type %s vs %s", path, a.Type(), b.Type())
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return path + ": nil vs non-nil"
			}
			return ""
		}
		return firstDiff(path, a.Elem(), b.Elem())
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if d := firstDiff(path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice, reflect.Map:
		if a.IsNil() != b.IsNil() {
			return fmt.Sprintf("%s: nil %v vs nil %v", path, a.IsNil(), b.IsNil())
		}
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: length %d vs %d", path, a.Len(), b.Len())
		}
		if a.Kind() == reflect.Map {
			for _, k := range a.MapKeys() {
				if d := firstDiff(fmt.Sprintf("%s[%v]", path, k), a.MapIndex(k), b.MapIndex(k)); d != "" {
					return d
				}
			}
			return ""
		}
		fallthrough
	case reflect.Array:
		for i := 0; i < a.Len(); i++ {
			if d := firstDiff(fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i)); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(valueOf(a), valueOf(b)) {
		return fmt.Sprintf("%s: %v vs %v", path, valueOf(a), valueOf(b))
	}
	return ""
}

// valueOf reads a scalar, exported or not.
func valueOf(v reflect.Value) any {
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return math.Float64bits(v.Float()) // -0 and NaN payloads count
	}
	return v.String()
}

func TestCodecQueryRoundTrip(t *testing.T) {
	p := codecPlanner(t)
	for _, par := range []int{1, 3} {
		for _, sql := range codecQueries {
			q := codecCQ(t, p, sql, par)
			name := fmt.Sprintf("%s/p%d", q.Name, par)
			before := Explain(q.Plan, q.Name)
			b, err := EncodeQuery(q)
			if err != nil {
				t.Fatalf("%s: encode: %v", name, err)
			}
			got, err := DecodeQuery(b)
			if err != nil {
				t.Fatalf("%s: decode: %v\n%s", name, err, b)
			}
			if want := sourceStubs(q); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: decoded query differs at %s\n%s", name, firstDiff("q", reflect.ValueOf(got), reflect.ValueOf(want)), b)
			}
			if d := firstDiff("q", reflect.ValueOf(got), reflect.ValueOf(sourceStubs(q))); d != "" {
				t.Errorf("%s: decoded query differs bit for bit at %s", name, d)
			}
			if after := Explain(got.Plan, got.Name); after != before {
				t.Errorf("%s: EXPLAIN changed:\n%s\nwant:\n%s", name, after, before)
			}
			if again := Explain(q.Plan, q.Name); again != before {
				t.Errorf("%s: encoding changed the original plan", name)
			}
			// Re-encoding is byte for byte the same, and the planner's
			// OVER descriptions are recomputed rather than carried.
			b2, err := EncodeQuery(got)
			if err != nil {
				t.Fatalf("%s: re-encode: %v", name, err)
			}
			if !bytes.Equal(b, b2) {
				t.Errorf("%s: re-encoding differs:\n%s\n%s", name, b, b2)
			}
			if bytes.Contains(b, []byte(`"desc"`)) {
				t.Errorf("%s: an OVER description could not be recomputed:\n%s", name, b)
			}
		}
	}
}

func TestCodecPhysicalRoundTrip(t *testing.T) {
	p := codecPlanner(t)
	for _, sql := range codecSnapshots {
		st, err := parser.ParseOne(sql)
		if err != nil {
			t.Fatalf("parse %q: %v", sql, err)
		}
		sq, err := p.Query(st.(*parser.Select).Query)
		if err != nil {
			t.Fatalf("plan %q: %v", sql, err)
		}
		b, err := EncodePhysical(sq.Plan)
		if err != nil {
			t.Fatalf("%s: encode: %v", sql, err)
		}
		got, err := DecodePhysical(b)
		if err != nil {
			t.Fatalf("%s: decode: %v\n%s", sql, err, b)
		}
		if want := physicalStubs(sq.Plan); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decoded plan differs at %s\n%s", sql, firstDiff("p", reflect.ValueOf(got), reflect.ValueOf(want)), b)
		}
		if a, w := Explain(got, "r"), Explain(sq.Plan, "r"); a != w {
			t.Errorf("%s: EXPLAIN changed:\n%s\nwant:\n%s", sql, a, w)
		}
		// A plan is not a query, nor the other way round.
		if _, err := DecodeQuery(b); !errors.Is(err, ErrBadPlanEncoding) {
			t.Errorf("%s: DecodeQuery of a plan: %v", sql, err)
		}
	}
	q := codecCQ(t, p, codecQuery(t, "t1"), 1)
	b, err := EncodeQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodePhysical(b); !errors.Is(err, ErrBadPlanEncoding) {
		t.Errorf("DecodePhysical of a query: %v", err)
	}
}

// TestCodecConstants round-trips every constant the format knows, in an
// expression and as an OVER default, bit for bit.
func TestCodecConstants(t *testing.T) {
	values := []any{nil, true, false, int64(0), int64(1)<<53 + 1, int64(math.MaxInt64), int64(math.MinInt64),
		0.0, math.Copysign(0, -1), 0.1, 1e-320, math.MaxFloat64, -math.SmallestNonzeroFloat64,
		math.NaN(), math.Inf(1), math.Inf(-1), "", "it's", "<&>\u2028\x00é", strings.Repeat("x", 1000)}
	p := codecPlanner(t)
	q := codecCQ(t, p, `CREATE CONTINUOUS QUERY c AS
		SELECT vid, time, LAG(vid, 1, 7) OVER (PARTITION BY vid ORDER BY time) AS prev FROM reports`, 1)
	last := q.Plan.Stages[len(q.Plan.Stages)-1]
	over := last.Ops[0].(*OverOp)
	src := q.Plan.Stages[0]
	for _, v := range values {
		// A filter comparing a constant, and the LAG default. The plan is
		// a copy: q's plan is left alone.
		c := &Const{Value: v, T: TypeBigInt, Untyped: v == nil}
		srcCopy := *src
		srcCopy.Ops = []Op{&CalcOp{Filter: &Func{Name: "is_distinct", Args: []Expr{c, &ColRef{Index: 0, Name: "vid", T: TypeInt}}, T: TypeBool}, Out: src.Input}}
		overCopy := *over
		overCopy.Calls = append([]OverCall(nil), over.Calls...)
		overCopy.Calls[0].Default = v
		lastCopy := *last
		lastCopy.Ops = append([]Op{&overCopy}, last.Ops[1:]...)
		qc := *q
		qc.Plan = &Physical{Stages: []*Stage{&srcCopy, &lastCopy}, Columns: q.Plan.Columns, Mode: q.Plan.Mode}
		b, err := EncodeQuery(&qc)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		got, err := DecodeQuery(b)
		if err != nil {
			t.Fatalf("%#v: %v\n%s", v, err, b)
		}
		gc := got.Plan.Stages[0].Ops[0].(*CalcOp).Filter.(*Func).Args[0].(*Const)
		gd := got.Plan.Stages[1].Ops[0].(*OverOp).Calls[0].Default
		for _, g := range []any{gc.Value, gd} {
			if !sameValue(g, v) {
				t.Errorf("%#v (%T) came back as %#v (%T)", v, v, g, g)
			}
		}
		if gc.Untyped != c.Untyped || gc.T != c.T {
			t.Errorf("%#v: const %+v, want %+v", v, gc, c)
		}
	}
	// The format of a value names its Go type; int64 and float64 are
	// strings so that no JSON reader rounds them.
	for v, want := range map[any]string{
		int64(9007199254740993): `{"int64":"9007199254740993"}`,
		math.Inf(-1):            `{"float64":"-Inf"}`,
		math.Copysign(0, -1):    `{"float64":"-0"}`,
		"a\"b":                  `{"string":"a\"b"}`,
		false:                   `{"bool":false}`,
	} {
		w, err := encodeValue(v)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := marshal(w); string(b) != want {
			t.Errorf("%#v encodes as %s, want %s", v, b, want)
		}
	}
	if _, err := encodeValue(int32(1)); err == nil {
		t.Error("an int32 constant should not encode")
	}
}

func sameValue(a, b any) bool {
	fa, ok1 := a.(float64)
	fb, ok2 := b.(float64)
	if ok1 && ok2 {
		return math.Float64bits(fa) == math.Float64bits(fb) || (math.IsNaN(fa) && math.IsNaN(fb))
	}
	return a == b
}

// TestCodecFormat pins the parts of the format a reader relies on.
func TestCodecFormat(t *testing.T) {
	p := codecPlanner(t)
	q := codecCQ(t, p, codecQuery(t, "t1"), 2)
	b, err := EncodeQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"version":1,"query":{"name":"t1",`,
		`"stream":{"name":"trades","columns":[{"name":"sym","type":"text","declared":"text"}`,
		`"watermark_delay":2000000`,
		`{"op":"calc","filter":{"expr":"func","name":"and","type":"boolean","args":[`,
		`{"expr":"col","index":`,
		`{"expr":"const","type":"text","value":{"string":"x"}`,
		`{"op":"aggregate","keys":[0],"key_names":["sym"]`,
		`"window":{"kind":"tumble","time_col":`,
		`"mode":"windowed"`,
		`{"kind":"count_star","arg":-1,`,
		`"name":"<>"`, // not HTML-escaped
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("encoding lacks %s:\n%s", want, b)
		}
	}
	// The encoding is deterministic.
	b2, _ := EncodeQuery(q)
	if !bytes.Equal(b, b2) {
		t.Error("two encodings of one query differ")
	}
}

func TestCodecErrors(t *testing.T) {
	p := codecPlanner(t)
	q := codecCQ(t, p, codecQuery(t, "t1"), 2)
	good, err := EncodeQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, from, to string
		version        bool // ErrPlanVersion rather than ErrBadPlanEncoding
		msg            string
	}{
		{"future version", `"version":1`, `"version":2`, true, "version 2"},
		{"no version", `"version":1,`, ``, false, "no \"version\""},
		{"unknown op", `{"op":"aggregate"`, `{"op":"shuffle"`, false, `unknown operator tag "shuffle"`},
		{"unknown expr", `{"expr":"col"`, `{"expr":"column"`, false, `unknown expression tag "column"`},
		{"unknown field", `"updating":false`, `"updating":false,"colour":"blue"`, false, "colour"},
		{"unknown op field", `{"op":"aggregate"`, `{"op":"aggregate","shards":3`, false, "shards"},
		{"unknown type", `"type":"text"`, `"type":"money"`, false, `unknown type "money"`},
		{"unknown window", `"kind":"tumble"`, `"kind":"cascade"`, false, `unknown window kind "cascade"`},
		{"foreign field", `{"expr":"col","index":0,`, `{"expr":"col","index":0,"untyped":true,`, false, `no "untyped" field`},
		{"column out of range", `"keys":[0]`, `"keys":[40]`, false, "aggregate key 40 out of range"},
		{"side out of range", `"sides":[{"stage":0`, `"sides":[{"stage":1`, false, "side 0 reads stage 1"},
		{"bad int", `{"string":"x"}`, `{"int64":"x"}`, false, "int64 constant"},
		{"two values", `{"string":"x"}`, `{"string":"x","bool":true}`, false, "exactly one"},
		{"trailing data", `"options":{}}}`, `"options":{}}} {}`, false, ""},
	} {
		if !bytes.Contains(good, []byte(tc.from)) {
			t.Fatalf("%s: encoding lacks %s:\n%s", tc.name, tc.from, good)
		}
		bad := bytes.Replace(good, []byte(tc.from), []byte(tc.to), 1)
		_, err := DecodeQuery(bad)
		want := ErrBadPlanEncoding
		if tc.version {
			want = ErrPlanVersion
		}
		if !errors.Is(err, want) || !strings.Contains(fmt.Sprint(err), tc.msg) {
			t.Errorf("%s: got %v, want %v mentioning %q", tc.name, err, want, tc.msg)
		}
	}
	for _, b := range []string{"", "null", "[]", "{}", `{"version":1}`, `{"version":"1"}`, `{"version":1,"query":null}`} {
		if _, err := DecodeQuery([]byte(b)); err == nil {
			t.Errorf("%q decoded", b)
		}
	}
	if _, err := EncodeQuery(nil); err == nil {
		t.Error("nil query encoded")
	}
	// A plan the format cannot hold is refused at encoding, not shipped.
	bad := *q
	bad.Plan = physicalStubs(q.Plan)
	bad.Plan.Stages[1] = &Stage{ID: 1, Name: "aggregate", Parallelism: 1, Sides: q.Plan.Stages[1].Sides, Input: q.Plan.Stages[1].Input,
		Ops: []Op{&CalcOp{Filter: &ColRef{Index: 99, Name: "nope", T: TypeBool}, Out: q.Plan.Stages[1].Input}}}
	if _, err := EncodeQuery(&bad); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("out-of-range column: %v", err)
	}
	bad.Plan.Stages[1].Ops = []Op{&CalcOp{Filter: &Const{Value: int32(1), T: TypeInt}, Out: q.Plan.Stages[1].Input}}
	if _, err := EncodeQuery(&bad); err == nil || !strings.Contains(err.Error(), "int32") {
		t.Errorf("int32 constant: %v", err)
	}
}

// TestCodecOverDescription: the planner's OVER descriptions are
// recomputed on decoding; one that cannot be (an OverOp whose description
// does not follow from its input columns) is carried, and an OverOp built
// without one gets one.
func TestCodecOverDescription(t *testing.T) {
	p := codecPlanner(t)
	q := codecCQ(t, p, codecQuery(t, "o2"), 2)
	last := q.Plan.Stages[len(q.Plan.Stages)-1]
	over := last.Ops[0].(*OverOp)
	for _, tc := range []struct{ desc, want string }{
		{"partition=[driver] order=time funcs=[]", "partition=[driver] order=time funcs=[]"},
		{"", over.desc},
	} {
		o := *over
		o.desc = tc.desc
		st := *last
		st.Ops = append([]Op{&o}, last.Ops[1:]...)
		qc := *q
		qc.Plan = &Physical{Stages: append(append([]*Stage(nil), q.Plan.Stages[:len(q.Plan.Stages)-1]...), &st),
			Columns: q.Plan.Columns, Mode: q.Plan.Mode}
		b, err := EncodeQuery(&qc)
		if err != nil {
			t.Fatal(err)
		}
		if carried := bytes.Contains(b, []byte(`"desc":`)); carried != (tc.desc != "") {
			t.Errorf("desc %q: carried %v", tc.desc, carried)
		}
		got, err := DecodeQuery(b)
		if err != nil {
			t.Fatal(err)
		}
		if d := got.Plan.Stages[len(got.Plan.Stages)-1].Ops[0].(*OverOp).desc; d != tc.want {
			t.Errorf("desc %q decoded as %q, want %q", tc.desc, d, tc.want)
		}
	}
}

// TestCodecCoversEveryField fails when a plan type gains a field, so that
// whoever adds it also adds it to the encoding (and to PlanEncodingVersion).
func TestCodecCoversEveryField(t *testing.T) {
	for _, tc := range []struct {
		v      any
		fields string
	}{
		{ContinuousQuery{}, "Name SQL Columns Updating Key EventTime TimeUnit Plan Sources Options"},
		{Physical{}, "Stages Columns Mode"},
		{Stage{}, "ID Name Source Sides Input Ops PartitionBy Parallelism"},
		{Side{}, "Stage Columns PartitionBy"},
		{Source{}, "Relation Kind Stream Query Indexes Changelog Table"},
		{Stream{}, "Name Columns EventTime TimeUnit WatermarkDelay IdleTimeout Options"},
		{Column{}, "Name Type Declared"},
		{CalcOp{}, "Filter Exprs Names Out"},
		{AggOp{}, "Keys KeyNames Aggs Window Mode Out"},
		{PhysAgg{}, "Kind Arg ArgName Name T"},
		{PhysWindow{}, "Kind TimeCol TimeName Size Slide Gap Offset TimeUnit"},
		{SortOp{}, "Keys Limit Offset Out"},
		{PhysSortKey{}, "Col Desc NullsFirst"},
		{JoinOp{}, "Kind Outer LeftKeys RightKeys KeyNames LeftTime RightTime TimeNames LeftUnit RightUnit Lower Upper OpCol Residual Out"},
		{OverOp{}, "PartitionBy TimeCol TimeUnit Calls Out desc"},
		{OverCall{}, "Kind Arg Offset Default DefaultExpr Preceding Name T"},
		{ColRef{}, "Index Name T"},
		{Const{}, "Value T Untyped"},
		{Param{}, "N T"},
		{Func{}, "Name Args T"},
	} {
		rt := reflect.TypeOf(tc.v)
		var names []string
		for i := 0; i < rt.NumField(); i++ {
			names = append(names, rt.Field(i).Name)
		}
		if got := strings.Join(names, " "); got != tc.fields {
			t.Errorf("%s has fields %s; the codec knows %s: update codec.go", rt.Name(), got, tc.fields)
		}
	}
	// Every value of every enumeration has a name on the wire.
	for _, n := range [][]string{wireTypes[:], wireRelationKinds[:], wireAggKinds[:], wireWindowKinds[:], wireModes[:], wireJoinKinds[:], wireOverKinds[:]} {
		for i, s := range n {
			if s == "" {
				t.Errorf("%v: value %d has no name", n, i)
			}
		}
	}
	for _, c := range []struct {
		n    []string
		last int
	}{{wireTypes[:], int(TypeInterval)}, {wireRelationKinds[:], int(RelSystem)}, {wireAggKinds[:], int(AggMax)},
		{wireWindowKinds[:], int(WindowSession)}, {wireModes[:], int(AggBatch)}, {wireJoinKinds[:], int(JoinLookup)}, {wireOverKinds[:], int(OverMax)}} {
		if len(c.n) != c.last+1 {
			t.Errorf("%v: want %d names", c.n, c.last+1)
		}
	}
}

// TestCodecLogicCorpus round-trips every continuous query and snapshot
// query of the logic tests and of Linear Road, planned in order against the
// objects each script creates.
func TestCodecLogicCorpus(t *testing.T) {
	files, err := filepath.Glob("../testdata/logic/*.slt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no logic tests: %v", err)
	}
	scripts := map[string][]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range strings.Split(string(data), "\n\n") {
			lines := strings.Split(strings.TrimSpace(rec), "\n")
			for len(lines) > 0 && strings.HasPrefix(lines[0], "#") {
				lines = lines[1:]
			}
			switch {
			case len(lines) < 2:
			case lines[0] == "statement ok":
				scripts[f] = append(scripts[f], strings.Join(lines[1:], "\n"))
			case strings.HasPrefix(lines[0], "query "):
				sql, _, _ := strings.Cut(strings.Join(lines[1:], "\n"), "\n----")
				scripts[f] = append(scripts[f], sql)
			}
		}
	}
	lrb, err := os.ReadFile("../bench/linearroad/queries.sql")
	if err != nil {
		t.Fatal(err)
	}
	scripts["queries.sql"] = []string{string(lrb)}
	queries, snapshots := 0, 0
	for name, script := range scripts {
		p := &Planner{Catalog: NewCatalog()}
		for _, sql := range script {
			sts, err := parser.Parse(sql)
			if err != nil {
				continue // not for the planner (SET, COPY data, …)
			}
			for _, st := range sts {
				switch x := st.(type) {
				case *parser.CreateStream:
					if s, err := p.CreateStream(x); err == nil {
						_ = p.Catalog.Add(s)
					}
				case *parser.CreateTable:
					if tb, err := p.CreateTable(x); err == nil {
						_ = p.Catalog.Add(tb)
					}
				case *parser.CreateContinuousQuery:
					q, err := p.ContinuousQuery(x, Options{Parallelism: 3})
					if err != nil {
						continue
					}
					_ = p.Catalog.Add(q)
					queries++
					b, err := EncodeQuery(q)
					if err != nil {
						t.Errorf("%s: %s: %v", name, q.Name, err)
						continue
					}
					got, err := DecodeQuery(b)
					if err != nil {
						t.Errorf("%s: %s: %v", name, q.Name, err)
						continue
					}
					if d := firstDiff("q", reflect.ValueOf(got), reflect.ValueOf(sourceStubs(q))); d != "" {
						t.Errorf("%s: %s differs at %s", name, q.Name, d)
					}
					if Explain(got.Plan, q.Name) != Explain(q.Plan, q.Name) {
						t.Errorf("%s: %s: EXPLAIN changed", name, q.Name)
					}
				case *parser.Select:
					sq, err := p.Query(x.Query)
					if err != nil {
						continue
					}
					snapshots++
					b, err := EncodePhysical(sq.Plan)
					if err != nil {
						t.Errorf("%s: %s: %v", name, sql, err)
						continue
					}
					got, err := DecodePhysical(b)
					if err != nil {
						t.Errorf("%s: %s: %v", name, sql, err)
						continue
					}
					if d := firstDiff("p", reflect.ValueOf(got), reflect.ValueOf(physicalStubs(sq.Plan))); d != "" {
						t.Errorf("%s: %s differs at %s", name, sql, d)
					}
				}
			}
		}
	}
	if queries < 40 || snapshots < 100 {
		t.Errorf("only %d continuous queries and %d snapshot queries planned", queries, snapshots)
	}
}

// corruptions of the encodings of several plans, for the no-panic tests.
func codecSeeds(tb testing.TB) [][]byte {
	p := codecPlanner(tb)
	var seeds [][]byte
	for _, name := range []string{"t1", "h1", "s1", "u1", "c1", "j2", "k1", "k2", "o1", "o2", "q2"} {
		b, err := EncodeQuery(codecCQ(tb, p, codecQuery(tb, name), 2))
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// decodeNoPanic decodes b; a decoded query must also explain and encode.
func decodeNoPanic(t *testing.T, b []byte) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panic %v on input:\n%s", r, b)
		}
	}()
	q, err := DecodeQuery(b)
	if err != nil {
		return
	}
	_ = Explain(q.Plan, q.Name)
	for _, st := range q.Plan.Stages {
		_ = st.Output()
	}
	if _, err := EncodeQuery(q); err != nil {
		t.Fatalf("a decoded query does not encode: %v\n%s", err, b)
	}
}

func TestCodecCorruptedInput(t *testing.T) {
	seeds := codecSeeds(t)
	rng := rand.New(rand.NewPCG(4, 2))
	n := 8000
	if testing.Short() {
		n = 1000
	}
	for i := 0; i < n; i++ {
		seed := seeds[rng.IntN(len(seeds))]
		var b []byte
		if i%2 == 0 {
			b = mutateBytes(rng, seed)
		} else {
			b = mutateJSON(rng, seed)
		}
		decodeNoPanic(t, b)
	}
}

func mutateBytes(rng *rand.Rand, seed []byte) []byte {
	b := append([]byte(nil), seed...)
	for k := 1 + rng.IntN(3); k > 0 && len(b) > 0; k-- {
		i := rng.IntN(len(b))
		switch rng.IntN(5) {
		case 0:
			b[i] = `{}[]":,-0123456789aeflnrstu\ `[rng.IntN(29)]
		case 1:
			b[i] ^= byte(1 << rng.IntN(8))
		case 2:
			j := min(len(b), i+rng.IntN(40))
			b = append(b[:i], b[j:]...)
		case 3:
			b = b[:i]
		case 4:
			j := min(len(b), i+rng.IntN(40))
			b = append(b[:j:j], append(append([]byte(nil), b[i:j]...), b[j:]...)...)
		}
	}
	return b
}

// mutateJSON changes the parsed encoding in a way that keeps it valid
// JSON, so that the decoder's checks rather than the JSON parser see it.
func mutateJSON(rng *rand.Rand, seed []byte) []byte {
	parse := func(b []byte) any {
		var v any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			panic(err)
		}
		return v
	}
	doc := parse(seed)
	type ref struct {
		get func() any
		set func(any)
	}
	var refs []ref
	var walk func(r ref)
	walk = func(r ref) {
		refs = append(refs, r)
		switch x := r.get().(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(ref{func() any { return x[k] }, func(v any) { x[k] = v }})
			}
		case []any:
			for i := range x {
				walk(ref{func() any { return x[i] }, func(v any) { x[i] = v }})
			}
		}
	}
	replacements := []any{nil, true, false, json.Number("-1"), json.Number("0"), json.Number("1"), json.Number("2"),
		json.Number("7"), json.Number("1000000"), json.Number("-9223372036854775808"), json.Number("9223372036854775807"),
		"", "x", "col", "func", "const", "param", "calc", "aggregate", "sort", "join", "over", "lookup", "interval",
		"count_star", "lag", "row_number", "updating", "batch", "NaN", "neg", "cast", "hop", "session",
		[]any{}, []any{json.Number("0")}, []any{json.Number("5")}, map[string]any{}}
	for k := 1 + rng.IntN(3); k > 0; k-- {
		// Walk again after each change: the tree changed.
		refs = refs[:0]
		walk(ref{func() any { return doc }, func(v any) { doc = v }})
		target := refs[rng.IntN(len(refs))]
		switch rng.IntN(4) {
		case 0, 1:
			target.set(replacements[rng.IntN(len(replacements))])
		case 2: // a copy of another node of the document
			b, err := json.Marshal(refs[rng.IntN(len(refs))].get())
			if err != nil {
				panic(err)
			}
			target.set(parse(b))
		case 3: // drop a field, or drop or duplicate an element
			switch x := target.get().(type) {
			case map[string]any:
				keys := make([]string, 0, len(x))
				for k := range x {
					keys = append(keys, k)
				}
				if len(keys) > 0 {
					sort.Strings(keys)
					delete(x, keys[rng.IntN(len(keys))])
				}
			case []any:
				if len(x) > 0 {
					i := rng.IntN(len(x))
					if rng.IntN(2) == 0 {
						target.set(append(x[:i:i], x[i+1:]...))
					} else {
						target.set(append(x[:i+1:i+1], x[i:]...))
					}
				}
			}
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return out
}

// FuzzDecodeQuery: run with go test -fuzz=FuzzDecodeQuery ./planner.
func FuzzDecodeQuery(f *testing.F) {
	for _, s := range codecSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeNoPanic(t, b)
	})
}
