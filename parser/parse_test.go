package parser

import (
	"reflect"
	"strings"
	"testing"
)

// TestSpateStatements checks every statement form Spate parses itself,
// comparing the whole statement value.
func TestSpateStatements(t *testing.T) {
	b := func(text string) Base { return Base{Text: text} }
	tests := []struct {
		sql  string
		want Statement
	}{
		// CREATE STREAM
		{
			"CREATE STREAM reports (type INT, time BIGINT, Vid int) WITH (event_time = 'time', time_unit = 's', watermark_delay = '2s')",
			&CreateStream{Base: b("CREATE STREAM reports (type INT, time BIGINT, Vid int) WITH (event_time = 'time', time_unit = 's', watermark_delay = '2s')"),
				Name: "reports",
				Columns: []ColumnDef{
					{Name: "type", Type: "int", Pos: 24},
					{Name: "time", Type: "bigint", Pos: 34},
					{Name: "vid", Type: "int", Pos: 47},
				},
				With: []Option{{"event_time", "time"}, {"time_unit", "s"}, {"watermark_delay", "2s"}},
			},
		},
		{
			`create stream if not exists Public."Bids" (auction BIGINT NOT NULL, "Bidder" bigint null, price DOUBLE  PRECISION, ts timestamp WITH TIME ZONE, s character varying(20), n NUMERIC(10, 2), a int[], id int primary key) with (Connector = nexmark, rate = 100000, flag = TRUE, neg = -5, "Q" = "Mixed", f = 1.5e3, bare)`,
			&CreateStream{Base: b(`create stream if not exists Public."Bids" (auction BIGINT NOT NULL, "Bidder" bigint null, price DOUBLE  PRECISION, ts timestamp WITH TIME ZONE, s character varying(20), n NUMERIC(10, 2), a int[], id int primary key) with (Connector = nexmark, rate = 100000, flag = TRUE, neg = -5, "Q" = "Mixed", f = 1.5e3, bare)`),
				Name: "Bids", IfNotExists: true,
				Columns: []ColumnDef{
					{Name: "auction", Type: "bigint", NotNull: true, Pos: 44},
					{Name: "Bidder", Type: "bigint", Pos: 69},
					{Name: "price", Type: "double precision", Pos: 91},
					{Name: "ts", Type: "timestamp with time zone", Pos: 116},
					{Name: "s", Type: "character varying(20)", Pos: 145},
					{Name: "n", Type: "numeric(10,2)", Pos: 170},
					{Name: "a", Type: "int[]", Pos: 188},
					{Name: "id", Type: "int", PrimaryKey: true, NotNull: true, Pos: 197},
				},
				With: []Option{{"connector", "nexmark"}, {"rate", "100000"}, {"flag", "true"}, {"neg", "-5"}, {"q", "Mixed"}, {"f", "1.5e3"}, {"bare", "true"}},
			},
		},
		{"CREATE STREAM s ()", &CreateStream{Base: b("CREATE STREAM s ()"), Name: "s"}},
		// CREATE TABLE
		{
			"CREATE TABLE accounts (vid INT PRIMARY KEY, balance BIGINT)",
			&CreateTable{Base: b("CREATE TABLE accounts (vid INT PRIMARY KEY, balance BIGINT)"), Name: "accounts",
				Columns:    []ColumnDef{{Name: "vid", Type: "int", PrimaryKey: true, NotNull: true, Pos: 24}, {Name: "balance", Type: "bigint", Pos: 45}},
				PrimaryKey: []string{"vid"}},
		},
		{
			"CREATE TABLE IF NOT EXISTS t (a int, b varchar(3), CONSTRAINT pk PRIMARY KEY (b, a)) WITH (x = 1)",
			&CreateTable{Base: b("CREATE TABLE IF NOT EXISTS t (a int, b varchar(3), CONSTRAINT pk PRIMARY KEY (b, a)) WITH (x = 1)"), Name: "t", IfNotExists: true,
				Columns:    []ColumnDef{{Name: "a", Type: "int", PrimaryKey: true, NotNull: true, Pos: 31}, {Name: "b", Type: "varchar(3)", PrimaryKey: true, NotNull: true, Pos: 38}},
				PrimaryKey: []string{"b", "a"}, With: []Option{{"x", "1"}}},
		},
		// DROP
		{"DROP STREAM reports", &Drop{Base: b("DROP STREAM reports"), Kind: KindStream, Name: "reports"}},
		{"drop table if exists s.T restrict", &Drop{Base: b("drop table if exists s.T restrict"), Kind: KindTable, Name: "t", IfExists: true}},
		{"DROP CONTINUOUS QUERY IF EXISTS seg_stats CASCADE", &Drop{Base: b("DROP CONTINUOUS QUERY IF EXISTS seg_stats CASCADE"), Kind: KindContinuousQuery, Name: "seg_stats", IfExists: true, Cascade: true}},
		// SHOW
		{"SHOW STREAMS", &Show{Base: b("SHOW STREAMS"), What: "streams"}},
		{"show tables", &Show{Base: b("show tables"), What: "tables"}},
		{"SHOW CONTINUOUS QUERIES", &Show{Base: b("SHOW CONTINUOUS QUERIES"), What: "continuous queries"}},
		{"SHOW WORKERS", &Show{Base: b("SHOW WORKERS"), What: "workers"}},
		{"SHOW INSTANCES", &Show{Base: b("SHOW INSTANCES"), What: "instances"}},
		{"SHOW INSTANCE CHECKPOINTS", &Show{Base: b("SHOW INSTANCE CHECKPOINTS"), What: "instance checkpoints"}},
		{"SHOW RESTART POINTS", &Show{Base: b("SHOW RESTART POINTS"), What: "restart points"}},
		{"SHOW SCALING EVENTS", &Show{Base: b("SHOW SCALING EVENTS"), What: "scaling events"}},
		// ALTER CONTINUOUS QUERY
		{"ALTER CONTINUOUS QUERY q SCALE OUT STAGE 1", &AlterContinuousQuery{Base: b("ALTER CONTINUOUS QUERY q SCALE OUT STAGE 1"), Name: "q", Scale: "out", Stage: 1, Instance: -1}},
		{"alter continuous query Tolls scale in stage 2 instance 0", &AlterContinuousQuery{Base: b("alter continuous query Tolls scale in stage 2 instance 0"), Name: "tolls", Scale: "in", Stage: 2, Instance: 0}},
		{"ALTER CONTINUOUS QUERY q SET (autoscale = on, max_instances = 8, target_utilisation = 0.6)", &AlterContinuousQuery{Base: b("ALTER CONTINUOUS QUERY q SET (autoscale = on, max_instances = 8, target_utilisation = 0.6)"), Name: "q", Instance: -1,
			Set: []Option{{"autoscale", "on"}, {"max_instances", "8"}, {"target_utilisation", "0.6"}}}},
		{"SHOW ALL", &Show{Base: b("SHOW ALL"), What: "all"}},
		{"SHOW transaction_isolation", &Show{Base: b("SHOW transaction_isolation"), What: "transaction_isolation"}},
		{"SHOW search_path", &Show{Base: b("SHOW search_path"), What: "search_path"}},
		{"SHOW DateStyle", &Show{Base: b("SHOW DateStyle"), What: "datestyle"}},
		{`SHOW "TimeZone"`, &Show{Base: b(`SHOW "TimeZone"`), What: "timezone"}},
		{"SHOW TIME ZONE", &Show{Base: b("SHOW TIME ZONE"), What: "timezone"}},
		{"SHOW TRANSACTION ISOLATION LEVEL", &Show{Base: b("SHOW TRANSACTION ISOLATION LEVEL"), What: "transaction_isolation"}},
		{"SHOW my.setting", &Show{Base: b("SHOW my.setting"), What: "my.setting"}},
		// SET / RESET
		{"SET search_path TO public, \"$user\"", &Set{Base: b("SET search_path TO public, \"$user\""), Name: "search_path", Value: "public, $user"}},
		{"SET SESSION extra_float_digits = 3", &Set{Base: b("SET SESSION extra_float_digits = 3"), Name: "extra_float_digits", Value: "3"}},
		{"SET LOCAL statement_timeout = '5s'", &Set{Base: b("SET LOCAL statement_timeout = '5s'"), Name: "statement_timeout", Value: "5s", Local: true}},
		{"SET application_name TO DEFAULT", &Set{Base: b("SET application_name TO DEFAULT"), Name: "application_name", Value: "default"}},
		{"SET DateStyle = ISO, MDY", &Set{Base: b("SET DateStyle = ISO, MDY"), Name: "datestyle", Value: "iso, mdy"}},
		{"SET x.y = on", &Set{Base: b("SET x.y = on"), Name: "x.y", Value: "on"}},
		{"SET x = -1.5", &Set{Base: b("SET x = -1.5"), Name: "x", Value: "-1.5"}},
		{"SET TIME ZONE 'UTC'", &Set{Base: b("SET TIME ZONE 'UTC'"), Name: "timezone", Value: "UTC"}},
		{"SET TIME ZONE LOCAL", &Set{Base: b("SET TIME ZONE LOCAL"), Name: "timezone", Value: "default"}},
		{"SET TIME ZONE -8", &Set{Base: b("SET TIME ZONE -8"), Name: "timezone", Value: "-8"}},
		{"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED", &Set{Base: b("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED"), Name: "session_characteristics", Value: "isolation level read committed"}},
		{"SET TRANSACTION READ ONLY, ISOLATION LEVEL SERIALIZABLE", &Set{Base: b("SET TRANSACTION READ ONLY, ISOLATION LEVEL SERIALIZABLE"), Name: "transaction", Value: "read only, isolation level serializable"}},
		{"SET NAMES 'UTF8'", &Set{Base: b("SET NAMES 'UTF8'"), Name: "client_encoding", Value: "UTF8"}},
		{"SET SCHEMA 'public'", &Set{Base: b("SET SCHEMA 'public'"), Name: "search_path", Value: "public"}},
		{"SET ROLE admin", &Set{Base: b("SET ROLE admin"), Name: "role", Value: "admin"}},
		{"SET SESSION AUTHORIZATION bob", &Set{Base: b("SET SESSION AUTHORIZATION bob"), Name: "session_authorization", Value: "bob"}},
		{"RESET ALL", &Set{Base: b("RESET ALL"), Name: "all", Value: "default"}},
		{"RESET search_path", &Set{Base: b("RESET search_path"), Name: "search_path", Value: "default"}},
		{"RESET TIME ZONE", &Set{Base: b("RESET TIME ZONE"), Name: "timezone", Value: "default"}},
		// SUBSCRIBE
		{"SUBSCRIBE seg_stats", &Subscribe{Base: b("SUBSCRIBE seg_stats"), Name: "seg_stats"}},
		{`SUBSCRIBE TO "Seg"`, &Subscribe{Base: b(`SUBSCRIBE TO "Seg"`), Name: "Seg"}},
		// COPY
		{"COPY reports FROM STDIN", &Copy{Base: b("COPY reports FROM STDIN"), Table: "reports", From: true}},
		{"COPY reports FROM STDIN (FORMAT csv)", &Copy{Base: b("COPY reports FROM STDIN (FORMAT csv)"), Table: "reports", From: true, Options: []Option{{"format", "csv"}}}},
		{
			`COPY reports (a, "B") FROM stdin WITH (FORMAT CSV, HEADER, DELIMITER ',', NULL '', QUOTE '"', ESCAPE '"', HEADER false, FORCE_QUOTE (a, b), ENCODING 'utf8')`,
			&Copy{Base: b(`COPY reports (a, "B") FROM stdin WITH (FORMAT CSV, HEADER, DELIMITER ',', NULL '', QUOTE '"', ESCAPE '"', HEADER false, FORCE_QUOTE (a, b), ENCODING 'utf8')`),
				Table: "reports", Columns: []string{"a", "B"}, From: true,
				Options: []Option{{"format", "csv"}, {"header", "true"}, {"delimiter", ","}, {"null", ""}, {"quote", `"`}, {"escape", `"`}, {"header", "false"}, {"force_quote", "a,b"}, {"encoding", "utf8"}}},
		},
		{"COPY t FROM STDIN WITH CSV HEADER", &Copy{Base: b("COPY t FROM STDIN WITH CSV HEADER"), Table: "t", From: true, Options: []Option{{"format", "csv"}, {"header", "true"}}}},
		{"COPY t FROM STDIN CSV", &Copy{Base: b("COPY t FROM STDIN CSV"), Table: "t", From: true, Options: []Option{{"format", "csv"}}}},
		{
			`COPY t FROM STDIN DELIMITER AS '|' NULL 'x' CSV QUOTE '"' ESCAPE E'\\' FORCE NOT NULL a, b`,
			&Copy{Base: b(`COPY t FROM STDIN DELIMITER AS '|' NULL 'x' CSV QUOTE '"' ESCAPE E'\\' FORCE NOT NULL a, b`), Table: "t", From: true,
				Options: []Option{{"delimiter", "|"}, {"null", "x"}, {"format", "csv"}, {"quote", `"`}, {"escape", `\`}, {"force_not_null", "a,b"}}},
		},
		{"COPY t FROM STDIN WITH DELIMITER E'\\t'", &Copy{Base: b("COPY t FROM STDIN WITH DELIMITER E'\\t'"), Table: "t", From: true, Options: []Option{{"delimiter", "\t"}}}},
		{"COPY t TO STDOUT WITH CSV HEADER FORCE QUOTE *", &Copy{Base: b("COPY t TO STDOUT WITH CSV HEADER FORCE QUOTE *"), Table: "t", Options: []Option{{"format", "csv"}, {"header", "true"}, {"force_quote", "*"}}}},
		{"COPY t (a) TO STDOUT (FORMAT binary)", &Copy{Base: b("COPY t (a) TO STDOUT (FORMAT binary)"), Table: "t", Columns: []string{"a"}, Options: []Option{{"format", "binary"}}}},
		{"COPY (SUBSCRIBE q) TO STDOUT", &Copy{Base: b("COPY (SUBSCRIBE q) TO STDOUT"), Query: &Subscribe{Base: Base{Text: "SUBSCRIBE q", Offset: 6}, Name: "q"}}},
		// EXPLAIN ANALYZE <cq>
		{"EXPLAIN ANALYZE seg_stats", &Explain{Base: b("EXPLAIN ANALYZE seg_stats"), Analyze: true, Name: "seg_stats"}},
		{"EXPLAIN (ANALYZE) public.Seg_Stats", &Explain{Base: b("EXPLAIN (ANALYZE) public.Seg_Stats"), Analyze: true, Name: "seg_stats", Options: []Option{{"analyze", "true"}}}},
		{"EXPLAIN ANALYZE SUBSCRIBE q", &Explain{Base: b("EXPLAIN ANALYZE SUBSCRIBE q"), Analyze: true, Stmt: &Subscribe{Base: Base{Text: "SUBSCRIBE q", Offset: 16}, Name: "q"}}},
		// Transactions
		{"BEGIN", &Transaction{Base: b("BEGIN"), Verb: "BEGIN"}},
		{"begin work", &Transaction{Base: b("begin work"), Verb: "BEGIN"}},
		{"BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ WRITE", &Transaction{Base: b("BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ WRITE"), Verb: "BEGIN"}},
		{"START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, NOT DEFERRABLE", &Transaction{Base: b("START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, NOT DEFERRABLE"), Verb: "BEGIN"}},
		{"COMMIT", &Transaction{Base: b("COMMIT"), Verb: "COMMIT"}},
		{"COMMIT TRANSACTION AND NO CHAIN", &Transaction{Base: b("COMMIT TRANSACTION AND NO CHAIN"), Verb: "COMMIT"}},
		{"END", &Transaction{Base: b("END"), Verb: "COMMIT"}},
		{"ROLLBACK", &Transaction{Base: b("ROLLBACK"), Verb: "ROLLBACK"}},
		{"abort work", &Transaction{Base: b("abort work"), Verb: "ROLLBACK"}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			got := parseOne(t, tt.sql)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

// TestCreateContinuousQuery checks the statement and the TiDB query in it.
func TestCreateContinuousQuery(t *testing.T) {
	sql := `CREATE CONTINUOUS QUERY IF NOT EXISTS Seg_Stats WITH (parallelism = 4) AS
  SELECT xway, dir, seg, window_start, window_end,
         COUNT(DISTINCT vid) AS cars, AVG(spd) AS lav
  FROM reports WHERE type = 0
  GROUP BY xway, dir, seg, HOP(time, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)`
	cq := parseOne(t, sql).(*CreateContinuousQuery)
	if cq.Name != "seg_stats" || !cq.IfNotExists || !reflect.DeepEqual(cq.With, []Option{{"parallelism", "4"}}) {
		t.Errorf("got %+v", cq)
	}
	if cq.Text != sql {
		t.Errorf("Text = %q", cq.Text)
	}
	wantQ := sql[strings.Index(sql, "SELECT"):]
	if cq.QueryText != wantQ {
		t.Errorf("QueryText = %q, want %q", cq.QueryText, wantQ)
	}
	if got, want := strings.Join(fieldShapes(cq.Query), "; "), "xway; dir; seg; window_start; window_end; agg:count(distinct vid) AS cars; agg:avg(spd) AS lav"; got != want {
		t.Errorf("fields: got %s, want %s", got, want)
	}
	if got := shape(cq.Query.GroupBy.Items[3].Expr); got != "hop(time, spate_interval(60000000), spate_interval(300000000))" {
		t.Errorf("group by: %s", got)
	}
	if got := shape(cq.Query.Where); got != "eq(type, 0)" {
		t.Errorf("where: %s", got)
	}

	// EXPLAIN CREATE CONTINUOUS QUERY
	ex := parseOne(t, "EXPLAIN "+sql).(*Explain)
	inner, ok := ex.Stmt.(*CreateContinuousQuery)
	if !ok || ex.Analyze || inner.Name != "seg_stats" || inner.Offset != 8 || inner.Text != sql {
		t.Errorf("explain: %+v / %+v", ex, ex.Stmt)
	}
}

// TestTiDBStatements checks the SELECT and INSERT wrappers.
func TestTiDBStatements(t *testing.T) {
	sel := parseOne(t, " SELECT * FROM seg_stats WHERE xway = 0 ; ").(*Select)
	if sel.Text != "SELECT * FROM seg_stats WHERE xway = 0" || shape(sel.Query.Where) != "eq(xway, 0)" {
		t.Errorf("select: %q %s", sel.Text, shape(sel.Query.Where))
	}
	for _, sql := range []string{"WITH x AS (SELECT 1 AS a) SELECT a FROM x", "(SELECT 1)", "TABLE t", "SELECT 1"} {
		if st := parseOne(t, sql).(*Select); st.Query == nil {
			t.Errorf("%s: no query", sql)
		}
	}
	ins := parseOne(t, "INSERT INTO Reports (A, \"B\") VALUES ($1, 'x'), (2, NULL)").(*Insert)
	if ins.Text != "INSERT INTO Reports (A, \"B\") VALUES ($1, 'x'), (2, NULL)" ||
		ins.Stmt.Columns[0].Name.O != "a" || ins.Stmt.Columns[1].Name.O != "B" || len(ins.Stmt.Lists) != 2 ||
		shape(ins.Stmt.Lists[0][0]) != "spate_param(1)" {
		t.Errorf("insert: %+v", ins)
	}
	ins = parseOne(t, "INSERT INTO t SELECT a::int FROM u").(*Insert)
	if ins.Stmt.Select == nil {
		t.Errorf("insert select: %+v", ins.Stmt)
	}
	cp := parseOne(t, "COPY (SELECT a, b FROM t WHERE a ~ 'x') TO STDOUT WITH (FORMAT csv)").(*Copy)
	q, ok := cp.Query.(*Select)
	if !ok || cp.From || cp.Table != "" || q.Text != "SELECT a, b FROM t WHERE a ~ 'x'" || q.Offset != 6 ||
		shape(q.Query.Where) != "regexp(a, 'x')" || !reflect.DeepEqual(cp.Options, []Option{{"format", "csv"}}) {
		t.Errorf("copy select: %+v %+v", cp, cp.Query)
	}
	ex := parseOne(t, "EXPLAIN SELECT 1").(*Explain)
	if _, ok := ex.Stmt.(*Select); !ok || ex.Analyze || ex.Name != "" {
		t.Errorf("explain select: %+v", ex)
	}
	ex = parseOne(t, "EXPLAIN ANALYZE VERBOSE SELECT 1").(*Explain)
	if _, ok := ex.Stmt.(*Select); !ok || !ex.Analyze || !reflect.DeepEqual(ex.Options, []Option{{"verbose", "true"}}) {
		t.Errorf("explain analyze select: %+v", ex)
	}
	ex = parseOne(t, "EXPLAIN (FORMAT json, ANALYZE off) (SELECT 1)").(*Explain)
	if _, ok := ex.Stmt.(*Select); !ok || ex.Analyze || !reflect.DeepEqual(ex.Options, []Option{{"format", "json"}, {"analyze", "off"}}) {
		t.Errorf("explain options: %+v", ex)
	}
}

// TestMultiStatements checks splitting, comments and Text/Offset.
func TestMultiStatements(t *testing.T) {
	sql := "SELECT 1; select 'a;b' -- c; \n;; /* x; /* nested; */ y; */ SUBSCRIBE q ; SELECT $$;$$, $t$;$t$, \"a;b\"\n; ÉÉ_x; "
	// ÉÉ_x is not a statement: make it a valid one.
	sql = strings.Replace(sql, "ÉÉ_x", "SHOW ÉÉ_x", 1)
	stmts, err := Parse(sql)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		text   string
		offset int
	}{
		{"SELECT 1", 0},
		{"select 'a;b'", 10},
		{"SUBSCRIBE q", 59},
		{`SELECT $$;$$, $t$;$t$, "a;b"`, 73},
		{"SHOW ÉÉ_x", 104},
	}
	if len(stmts) != len(want) {
		t.Fatalf("got %d statements: %#v", len(stmts), stmts)
	}
	for i, w := range want {
		got := stmts[i].SQL()
		var off int
		switch s := stmts[i].(type) {
		case *Select:
			off = s.Offset
		case *Subscribe:
			off = s.Offset
		case *Show:
			off = s.Offset
			if s.What != "éé_x" && s.What != "ÉÉ_x" {
				t.Errorf("show: %q", s.What)
			}
		}
		if got != w.text || off != w.offset {
			t.Errorf("statement %d: got %q at %d, want %q at %d", i, got, off, w.text, w.offset)
		}
		if []rune(sql)[off] != []rune(w.text)[0] {
			t.Errorf("statement %d: offset %d does not point at its text", i, off)
		}
	}
	sel := stmts[3].(*Select)
	if got := strings.Join(fieldShapes(sel.Query), "; "); got != "';'; ';'; a;b" {
		t.Errorf("fields: %s", got)
	}
}

// TestEmpty checks strings with no statement.
func TestEmpty(t *testing.T) {
	for _, sql := range []string{"", "   ", ";", " ; ;\n", "-- only a comment", "/* a */ -- b\n ;"} {
		stmts, err := Parse(sql)
		if err != nil {
			t.Fatalf("%q: %v", sql, err)
		}
		if len(stmts) != 1 || !reflect.DeepEqual(stmts[0], &Empty{}) {
			t.Errorf("%q: got %#v", sql, stmts)
		}
		st, err := ParseOne(sql)
		if err != nil || !reflect.DeepEqual(st, &Empty{}) {
			t.Errorf("ParseOne(%q) = %#v, %v", sql, st, err)
		}
	}
}

// TestParseOne checks that ParseOne wants exactly one statement.
func TestParseOne(t *testing.T) {
	if _, err := ParseOne("SELECT 1; SELECT 2"); err == nil {
		t.Fatal("want error")
	} else {
		checkErr(t, err, CodeSyntax, "cannot insert multiple commands into a prepared statement", 0)
	}
	if st, err := ParseOne("SELECT 1;"); err != nil || st.SQL() != "SELECT 1" {
		t.Errorf("got %v %v", st, err)
	}
}

// TestErrors checks codes, messages and positions (1-based characters
// into the whole query string).
func TestErrors(t *testing.T) {
	tests := []struct {
		sql, code, msg string
		pos            int
	}{
		{"SELECT * FORM t", CodeSyntax, `syntax error at or near "FORM"`, 10},
		{"SELECT (1", CodeSyntax, "syntax error at end of input", 10},
		{"SELECT (1   ", CodeSyntax, "syntax error at end of input", 13},
		{"SELECT (1; SELECT 2", CodeSyntax, `syntax error at or near ";"`, 10},
		{"SELECT 1; SELECT * FORM t", CodeSyntax, `syntax error at or near "FORM"`, 20},
		{"SELECT 1;\nSELECT a,\n  FROM t", CodeSyntax, `syntax error at or near "FROM"`, 23},
		{"SELECT 'é', * FORM t", CodeSyntax, `syntax error at or near "FORM"`, 15},
		{"SELECT a FROM t WHERE", CodeSyntax, "syntax error at end of input", 22},
		{"SELECT a FROM t WHERE x ==", CodeSyntax, `syntax error at or near "=="`, 25},
		{"SELECT a::int FROM t WHERE b::int > 'x' LIMIT", CodeSyntax, "syntax error at end of input", 46},
		{"SELECT a::int, b FORM t", CodeSyntax, `syntax error at or near "t"`, 23}, // FORM is an alias
		{"SELECT a::int FROM FROM t", CodeSyntax, `syntax error at or near "FROM"`, 20},
		{"SELECT $1, * FORM t", CodeSyntax, `syntax error at or near "FORM"`, 14},
		{"SELECT INTERVAL '1 minute' FROM t WHERE", CodeSyntax, "syntax error at end of input", 40},
		{"SELECT x::int FROM t WHERE a = (", CodeSyntax, "syntax error at end of input", 33},
		{"SELECT a FROM t WHERE s ~* 'x' AND AND", CodeSyntax, `syntax error at or near "AND"`, 36},
		{"SELECT a FROM t WHERE a IS DISTINCT FROM b )", CodeSyntax, `syntax error at or near ")"`, 44},
		{"SELECT a || FROM t", CodeSyntax, `syntax error at or near "FROM"`, 13},
		{"SELECT ::int", CodeSyntax, `syntax error at or near "::"`, 8},
		{"SELECT a @> b FROM t", CodeSyntax, `syntax error at or near "@>"`, 10},
		{"SELECT ? FROM t", CodeSyntax, `syntax error at or near "?"`, 8},
		{"SELECT `a` FROM t", CodeSyntax, "syntax error at or near \"`\"", 8},
		{"SELECT 'abc", CodeSyntax, `unterminated quoted string at or near "'abc"`, 8},
		{`SELECT "abc`, CodeSyntax, `unterminated quoted identifier at or near ""abc"`, 8},
		{`SELECT ""`, CodeSyntax, `zero-length delimited identifier at or near """"`, 8},
		{"SELECT 1 /* never closed", CodeSyntax, `unterminated /* comment at or near "/* never closed"`, 10},
		{"SELECT $$abc", CodeSyntax, `unterminated dollar-quoted string at or near "$$abc"`, 8},
		{"SELECT $a", CodeSyntax, `syntax error at or near "$"`, 8},
		{`SELECT 'é', E'\377'`, CodeCharacterNotInRepertoire, `invalid byte sequence for encoding "UTF8": 0xff`, 13},
		{`SELECT E'\u12'`, CodeSyntax, `invalid Unicode escape`, 10},
		{`SELECT E'\uD800'`, CodeSyntax, `invalid Unicode escape value`, 10},
		{"FOO BAR", CodeSyntax, `syntax error at or near "FOO"`, 1},
		{"SELECT 1; 42", CodeSyntax, `syntax error at or near "42"`, 11},
		{"TRUNCATE t", CodeFeatureNotSupported, "TRUNCATE is not supported", 1},
		{"CREATE VIEW v AS SELECT 1", CodeFeatureNotSupported, "CREATE VIEW is not supported; use CREATE CONTINUOUS QUERY v AS SELECT …", 8},
		{"CREATE MATERIALIZED VIEW IF NOT EXISTS mv AS SELECT 1", CodeFeatureNotSupported, "CREATE MATERIALIZED VIEW is not supported; use CREATE CONTINUOUS QUERY mv AS SELECT …", 8},
		{"CREATE MATERIALIZED x", CodeFeatureNotSupported, "CREATE MATERIALIZED is not supported", 8},
		{"SELECT * FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(t), INTERVAL '1' SECOND))", CodeFeatureNotSupported,
			"window table functions are not supported; window in GROUP BY instead: SELECT …, window_start, window_end, COUNT(*) FROM s GROUP BY …, TUMBLE(t, size)", 15},
		{"CREATE CONTINUOUS QUERY q AS SELECT * FROM TABLE(HOP(TABLE Clicks, DESCRIPTOR(ts), INTERVAL '1' SECOND, INTERVAL '2' SECOND))", CodeFeatureNotSupported,
			"window table functions are not supported; window in GROUP BY instead: SELECT …, window_start, window_end, COUNT(*) FROM Clicks GROUP BY …, HOP(ts, slide, size)", 44},
		{"SELECT * FROM s JOIN TABLE(CUMULATE(TABLE s, DESCRIPTOR(t), x, y)) c ON true", CodeFeatureNotSupported,
			"window table functions are not supported; window in GROUP BY instead: SELECT …, window_start, window_end, COUNT(*) FROM s GROUP BY …, TUMBLE(t, size) or HOP(t, slide, size)", 22},
		{"CREATE STREAM s (a int", CodeSyntax, "syntax error at end of input", 23},
		{"CREATE STREAM s (a int,)", CodeSyntax, `syntax error at or near ")"`, 24},
		{"CREATE STREAM s (a)", CodeSyntax, `syntax error at or near ")"`, 19},
		{"CREATE STREAM s (a int) WITH (x = )", CodeSyntax, `syntax error at or near ")"`, 35},
		{"CREATE STREAM s (a int DEFAULT 1)", CodeFeatureNotSupported, "DEFAULT in a column definition is not supported", 24},
		{"CREATE STREAM s (a int) extra", CodeSyntax, `syntax error at or near "extra"`, 25},
		{"CREATE TABLE t (a int PRIMARY KEY, b int PRIMARY KEY)", CodeInvalidTableDefinition, "multiple primary keys for table are not allowed", 36},
		{"CREATE TABLE t (a int, PRIMARY KEY (b))", CodeUndefinedColumn, `column "b" named in key does not exist`, 24},
		{"CREATE CONTINUOUS QUERY q AS", CodeSyntax, "syntax error at end of input", 29},
		{"CREATE CONTINUOUS QUERY q AS SELECT * FORM t", CodeSyntax, `syntax error at or near "FORM"`, 39},
		{"CREATE CONTINUOUS QUERY q SELECT 1", CodeSyntax, `syntax error at or near "SELECT"`, 27},
		{"CREATE CONTINUOUS QUERY q AS INSERT INTO t VALUES (1)", CodeSyntax, `syntax error at or near "INSERT"`, 30},
		{"DROP STREAM", CodeSyntax, "syntax error at end of input", 12},
		{"DROP VIEW v", CodeSyntax, `syntax error at or near "VIEW"`, 6},
		{"DROP STREAM a b", CodeSyntax, `syntax error at or near "b"`, 15},
		{"SHOW", CodeSyntax, "syntax error at end of input", 5},
		{"SHOW a b", CodeSyntax, `syntax error at or near "b"`, 8},
		{"SET x", CodeSyntax, "syntax error at end of input", 6},
		{"SET x TO", CodeSyntax, "syntax error at end of input", 9},
		{"SET x = 1 2", CodeSyntax, `syntax error at or near "2"`, 11},
		{"SUBSCRIBE", CodeSyntax, "syntax error at end of input", 10},
		{"COPY t FROM 'file.csv'", CodeFeatureNotSupported, "COPY FROM a file or program (use FROM STDIN) is not supported", 13},
		{"COPY t FROM STDOUT", CodeSyntax, `syntax error at or near "STDOUT"`, 13},
		{"COPY t FROM STDIN WITH (FORMAT csv", CodeSyntax, "syntax error at end of input", 35},
		{"COPY t FROM STDIN CSV BOGUS", CodeSyntax, `syntax error at or near "BOGUS"`, 23},
		{"COPY (SELECT 1 FROM) TO STDOUT", CodeSyntax, `syntax error at or near ")"`, 20},
		{"COPY (SELECT 1) FROM STDIN", CodeSyntax, `syntax error at or near "FROM"`, 17},
		{"COPY (SHOW x) TO STDOUT", CodeFeatureNotSupported, "COPY (SHOW …) is not supported", 7},
		{"COPY (SELECT 1 TO STDOUT", CodeSyntax, "syntax error at end of input", 25},
		{"EXPLAIN", CodeSyntax, "syntax error at end of input", 8},
		{"EXPLAIN seg_stats", CodeSyntax, `syntax error at or near "seg_stats"`, 9},
		{"BEGIN ISOLATION LEVEL CHAOS", CodeSyntax, `syntax error at or near "CHAOS"`, 23},
		{"COMMIT NOW", CodeSyntax, `syntax error at or near "NOW"`, 8},
		{"SELECT 1; SELECT 2; SELECT INTERVAL 'x'", CodeInvalidDatetimeFormat, `invalid input syntax for type interval: "x"`, 37},
	}
	// TiDB cuts the text of long errors; positions must survive that.
	long := "'" + strings.Repeat("x", 3000) + "'"
	tests = append(tests,
		struct {
			sql, code, msg string
			pos            int
		}{"SELECT * FORM t WHERE a = " + long, CodeSyntax, `syntax error at or near "FORM"`, 10},
		struct {
			sql, code, msg string
			pos            int
		}{"SELECT " + long + " FROM t WHERE", CodeSyntax, "syntax error at end of input", 3023},
	)
	for _, tt := range tests {
		name := tt.sql
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			checkError(t, tt.sql, tt.code, tt.msg, tt.pos)
		})
	}
}

func TestUpdateDelete(t *testing.T) {
	st, err := ParseOne("UPDATE users SET tier = 'gold', name = upper(name) WHERE user_id = $1")
	if err != nil {
		t.Fatal(err)
	}
	u, ok := st.(*Update)
	if !ok || len(u.Stmt.List) != 2 || u.Stmt.Where == nil {
		t.Fatalf("got %#v", st)
	}
	st, err = ParseOne("DELETE FROM users WHERE user_id IN (1, 2)")
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := st.(*Delete); !ok || d.Stmt.Where == nil {
		t.Fatalf("got %#v", st)
	}
}
