package pgcatalog

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/planner"
)

// testView is a catalog like the one the client queries were captured
// against: a table t (x int, y text) — here with a primary key — a view v
// (a continuous query) over it, and a stream.
func testView() cluster.CatalogView {
	return cluster.CatalogView{
		Streams: []*planner.Stream{{Name: "s", Columns: []planner.Column{{Name: "a", Type: planner.TypeInt}, {Name: "ts", Type: planner.TypeTimestamp}}}},
		// u's columns as declared: smallint, varchar(20), char, numeric (stored as double).
		Tables: []*planner.Table{
			{Name: "t", Columns: []planner.Column{{Name: "x", Type: planner.TypeInt}, {Name: "y", Type: planner.TypeText}}, PrimaryKey: []int{0}},
			{Name: "u", Columns: []planner.Column{{Name: "a", Type: planner.TypeInt, Declared: "smallint"}, {Name: "b", Type: planner.TypeText, Declared: "varchar(20)"},
				{Name: "c", Type: planner.TypeText, Declared: "char"}, {Name: "d", Type: planner.TypeDouble, Declared: "numeric(10,2)"}}},
		},
		Queries: []*planner.ContinuousQuery{{Name: "v", SQL: "SELECT x FROM t", Columns: []planner.Column{{Name: "x", Type: planner.TypeInt}}}},
		User:    "spate", Database: "spate",
		Settings: map[string]string{"search_path": "public", "server_version": "15.0"},
	}
}

// corpus reads the statements real clients send (testdata/client_queries.sql).
func corpus(t testing.TB) []string {
	var out []string
	for _, q := range labeledCorpus(t) {
		out = append(out, q.sql)
	}
	return out
}

// labeledQuery is a captured statement and the client step that sent it.
type labeledQuery struct{ label, sql string }

func labeledCorpus(t testing.TB) []labeledQuery {
	b, err := os.ReadFile("testdata/client_queries.sql")
	if err != nil {
		t.Fatal(err)
	}
	var out []labeledQuery
	for _, q := range strings.Split(string(b), "\n;;\n") {
		var lines []string
		label := ""
		for _, l := range strings.Split(q, "\n") {
			if c, ok := strings.CutPrefix(strings.TrimSpace(l), "-- client: "); ok {
				label = c
			}
			if !strings.HasPrefix(strings.TrimSpace(l), "--") {
				lines = append(lines, l)
			}
		}
		if sql := strings.TrimSpace(strings.Join(lines, "\n")); sql != "" {
			out = append(out, labeledQuery{label, sql})
		}
	}
	return out
}

func run(t *testing.T, view cluster.CatalogView, sql string, params ...any) ([]cluster.Column, [][]any, error) {
	t.Helper()
	stmt, err := parser.ParseOne(sql)
	if err != nil {
		return nil, nil, err
	}
	sel, ok := stmt.(*parser.Select)
	if !ok || !Reads(sel) {
		return nil, nil, nil
	}
	cols, rows, err := Query(context.Background(), view, Server{Version: "15.0 (Spate)"}, sel, params)
	if err != nil {
		return nil, nil, err
	}
	desc, err := Describe(view, Server{Version: "15.0 (Spate)"}, sel)
	if err != nil {
		t.Errorf("%s: Describe: %v", sql, err)
	}
	if len(desc) != len(cols) {
		t.Errorf("%s: Describe gives %d columns, Query %d", sql, len(desc), len(cols))
	}
	for i := range desc {
		if i < len(cols) && desc[i] != cols[i] {
			t.Errorf("%s: Describe column %d %v, Query %v", sql, i, desc[i], cols[i])
		}
	}
	return cols, rows, nil
}

// TestClientQueries runs every catalog query of the captured clients.
func TestClientQueries(t *testing.T) {
	view := testView()
	for _, sql := range corpus(t) {
		if _, _, err := run(t, view, strings.ReplaceAll(sql, "$1", "'0'")); err != nil {
			t.Errorf("%v\n%s", err, sql)
		}
	}
}

// clientQuery returns the corpus statement that contains all of the given
// fragments, with the captured OIDs of t (16384) and v (16389) replaced by
// this catalog's.
func clientQuery(t *testing.T, oids map[string]int64, fragments ...string) string {
	t.Helper()
	for _, sql := range corpus(t) {
		sql = strings.ReplaceAll(sql, "16384", text(oids["t"]))
		sql = strings.ReplaceAll(sql, "16389", text(oids["v"]))
		all := true
		for _, f := range fragments {
			all = all && strings.Contains(sql, f)
		}
		if all {
			return sql
		}
	}
	t.Fatalf("no client query contains %q", fragments)
	return ""
}

func mustRun(t *testing.T, view cluster.CatalogView, sql string, params ...any) [][]any {
	t.Helper()
	_, rows, err := run(t, view, sql, params...)
	if err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	return rows
}

func rowsText(rows [][]any) string {
	var sb strings.Builder
	for _, r := range rows {
		for i, v := range r {
			if i > 0 {
				sb.WriteByte('|')
			}
			if v == nil {
				sb.WriteString("NULL")
			} else {
				sb.WriteString(text(v))
			}
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

func TestClientQueryResults(t *testing.T) {
	view := testView()
	oids := map[string]int64{}
	for _, name := range []string{"t", "v", "s"} {
		rows := mustRun(t, view, "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname = $1", name)
		if len(rows) != 1 {
			t.Fatalf("pg_class has %d rows for %s", len(rows), name)
		}
		oids[name] = rows[0][0].(int64)
	}
	check := func(what, sql, want string, params ...any) {
		t.Helper()
		if got := rowsText(mustRun(t, view, sql, params...)); got != want {
			t.Errorf("%s:\ngot:\n%swant:\n%s", what, got, want)
		}
	}
	check(`psql \d`, clientQuery(t, oids, "'r','p','v','m','S','f',''"),
		"public|s|table|spate\npublic|t|table|spate\npublic|u|table|spate\npublic|v|materialized view|spate\n")
	check(`psql \d t: lookup`, clientQuery(t, oids, "OPERATOR(pg_catalog.~) '^(t)$'"), text(oids["t"])+"|public|t\n")
	check(`psql \d t: columns`, clientQuery(t, oids, "pg_catalog.format_type(a.atttypid, a.atttypmod)", "a.attrelid = '"+text(oids["t"])+"'", "attgenerated\nFROM"),
		"x|integer|NULL|t|NULL||\ny|text|NULL|f|NULL||\n")
	check(`psql \d v: columns`, clientQuery(t, oids, "pg_catalog.format_type(a.atttypid, a.atttypmod)", "a.attrelid = '"+text(oids["v"])+"'"),
		"x|integer|NULL|f|NULL||\n")
	check(`psql \d t: relation`, clientQuery(t, oids, "c.relchecks", "WHERE c.oid = '"+text(oids["t"])+"'", "'', c.reltablespace"),
		"0|r|t|f|f|f|f|f|f||0||p|d|heap\n")
	check("jdbc getColumns", clientQuery(t, oids, "row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum) AS attnum"),
		"public|t|x|23|t|-1|4|-1|1|NULL|NULL|NULL|NULL|0|b\npublic|t|y|25|f|-1|-1|-1|2|NULL|NULL|NULL|NULL|0|b\n")
	check("jdbc getPrimaryKeys", clientQuery(t, oids, "_pg_expandarray"), "NULL|public|t|x|1|t_pkey\n")
	check("jdbc getTables", clientQuery(t, oids, "n.nspname LIKE 'public'", "MATERIALIZED VIEW"),
		"NULL|public|v|MATERIALIZED VIEW|NULL|||||\nNULL|public|s|TABLE|NULL|||||\nNULL|public|t|TABLE|NULL|||||\nNULL|public|u|TABLE|NULL|||||\n")
	check("sqlalchemy get_table_names", clientQuery(t, oids, "c.relkind in ('r', 'p')")+" ORDER BY 1", "s\nt\nu\n")
	check("sqlalchemy get_view_names", clientQuery(t, oids, "c.relkind IN ('v', 'm')"), "v\n")
	check("sqlalchemy get_pk_constraint", clientQuery(t, oids, "generate_subscripts(ix.indkey, 1) ord"), "x\n")
	check("sqlalchemy get_columns", clientQuery(t, oids, "json_build_object", "a.attrelid = "+text(oids["t"])),
		"x|integer|NULL|t|"+text(oids["t"])+"|NULL||NULL\ny|text|NULL|f|"+text(oids["t"])+"|NULL||NULL\n")
	check("information_schema.columns", "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
		"s|a|integer|YES\ns|ts|timestamp without time zone|YES\nt|x|integer|NO\nt|y|text|YES\nu|a|smallint|YES\nu|b|character varying|YES\nu|c|character|YES\nu|d|double precision|YES\nv|x|integer|YES\n")
	check("declared types", "SELECT attname, format_type(atttypid, atttypmod), atttypmod FROM pg_attribute WHERE attrelid = 'u'::regclass ORDER BY attnum",
		"a|smallint|-1\nb|character varying(20)|24\nc|character(1)|5\nd|double precision|-1\n")
	check("information_schema.tables", "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
		"s|BASE TABLE\nt|BASE TABLE\nu|BASE TABLE\nv|VIEW\n")
	check("functions", "SELECT current_schema(), current_database(), current_user, pg_catalog.format_type(1114, NULL), 't'::regclass::oid = "+text(oids["t"])+", (SELECT count(*) FROM pg_type WHERE typname = 'int4')",
		"public|spate|spate|timestamp without time zone|t|1\n")
	check("union and arrays", "SELECT relname FROM pg_class WHERE oid = "+text(oids["t"])+" UNION SELECT 'x' UNION ALL SELECT array_to_string(ARRAY(SELECT attname FROM pg_attribute WHERE attrelid = "+text(oids["t"])+" ORDER BY attnum), ',') ORDER BY 1",
		"t\nx\nx,y\n")
}

func TestRolesAndPrivileges(t *testing.T) {
	view := testView()
	view.User = "reader"
	view.Roles = []cluster.RoleInfo{{Name: "reader", Login: true}, {Name: "spate", Superuser: true, Login: true}}
	view.Grants = []cluster.GrantInfo{{Role: "reader", Object: "t", Privilege: "SELECT"}}
	check := func(sql, want string) {
		t.Helper()
		if got := rowsText(mustRun(t, view, sql)); got != want {
			t.Errorf("%s:\ngot:\n%swant:\n%s", sql, got, want)
		}
	}
	check("SELECT rolname, rolsuper, rolcanlogin FROM pg_roles ORDER BY 1", "reader|f|t\nspate|t|t\n")
	check("SELECT has_table_privilege('t', 'SELECT'), has_table_privilege('s', 'SELECT'), has_table_privilege('t', 'INSERT'), has_table_privilege('spate', 's', 'INSERT'), has_table_privilege('pg_class', 'SELECT')",
		"t|f|f|t|t\n")
	check("SELECT relname, relacl FROM pg_class WHERE relname IN ('s', 't') ORDER BY 1", "s|NULL\nt|{spate=arwdDxt/spate,reader=r/spate}\n")
	check("SELECT current_user, pg_get_userbyid(relowner) FROM pg_class WHERE relname = 't'", "reader|spate\n")
	view.Cursors = []cluster.CursorInfo{{Name: "c1", Statement: "DECLARE c1 CURSOR FOR SELECT x FROM t"}}
	check("SELECT name, statement, is_holdable FROM pg_cursors", "c1|DECLARE c1 CURSOR FOR SELECT x FROM t|f\n")
}

// TestCrossJoinBounded checks that a query whose joins would produce too
// many rows fails with 54000 instead of taking the memory.
func TestCrossJoinBounded(t *testing.T) {
	_, _, err := run(t, testView(), "SELECT count(*) FROM pg_attribute a, pg_attribute b, pg_attribute c")
	if e, ok := err.(*Error); !ok || e.Code != "54000" {
		t.Fatalf("got %v, want 54000", err)
	}
}

func TestSources(t *testing.T) {
	view := testView()
	oid := uint32(newSnapshot(view, Server{}).lookup("public", "t").oid)
	for sql, want := range map[string][]Source{
		"SELECT y, x + 1, * FROM t":               {{oid, 2}, {}, {oid, 1}, {oid, 2}},
		"SELECT a.x FROM t a WHERE a.x > 1":       {{oid, 1}},
		"SELECT count(*) FROM t":                  {{}},
		"SELECT x FROM t UNION SELECT 1":          nil,
		"SELECT relname FROM pg_catalog.pg_class": nil,
	} {
		stmt, err := parser.ParseOne(sql)
		if err != nil {
			t.Fatal(err)
		}
		got := Sources(func() cluster.CatalogView { return view }, stmt.(*parser.Select), len(want))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: got %v, want %v", sql, got, want)
		}
	}
}

// TestThreeValuedLogic checks AND, OR and NOT with NULLs against
// PostgreSQL's truth tables.
func TestThreeValuedLogic(t *testing.T) {
	vals := []string{"true", "false", "NULL::boolean"}
	and := [3][3]string{{"t", "f", "NULL"}, {"f", "f", "f"}, {"NULL", "f", "NULL"}}
	or := [3][3]string{{"t", "t", "t"}, {"t", "f", "NULL"}, {"t", "NULL", "NULL"}}
	for i, a := range vals {
		for j, b := range vals {
			rows := mustRun(t, testView(), "SELECT "+a+" AND "+b+", "+a+" OR "+b+", NOT "+a+", version() IS NOT NULL")
			want := and[i][j] + "|" + or[i][j] + "|" + map[int]string{0: "f", 1: "t", 2: "NULL"}[i] + "|t\n"
			if got := rowsText(rows); got != want {
				t.Errorf("%s, %s: got %s want %s", a, b, got, want)
			}
		}
	}
}

// TestWherePushdown checks that WHERE conditions applied early keep
// outer joins' meaning.
func TestWherePushdown(t *testing.T) {
	view := testView()
	for sql, want := range map[string]string{
		"SELECT c.relname FROM pg_class c LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'y' WHERE a.attname IS NULL AND c.relname IN ('t', 'u') ORDER BY 1":                   "u\n",
		"SELECT c.relname, a.attname FROM pg_attribute a RIGHT JOIN pg_class c ON a.attrelid = c.oid AND a.attname = 'y' WHERE c.relname IN ('t', 'u') ORDER BY 1":                             "t|y\nu|NULL\n",
		"SELECT c.relname, a.attname FROM pg_class c, pg_attribute a, pg_namespace n WHERE a.attrelid = c.oid AND n.oid = c.relnamespace AND n.nspname = 'public' AND a.attnum = 2 ORDER BY 1": "s|ts\nt|y\nu|b\n",
		"SELECT relname FROM pg_class c WHERE relname = 't' AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = c.oid AND attname = 'x')":                                                  "t\n",
	} {
		if got := rowsText(mustRun(t, view, sql)); got != want {
			t.Errorf("%s:\ngot:\n%swant:\n%s", sql, got, want)
		}
	}
}

// TestToolQueries runs queries Grafana's and DBeaver's PostgreSQL sources
// send on connect (written from their sources, not captured here).
func TestToolQueries(t *testing.T) {
	view := testView()
	check := func(sql, want string) {
		t.Helper()
		if got := rowsText(mustRun(t, view, sql)); got != want {
			t.Errorf("%s:\ngot:\n%swant:\n%s", sql, got, want)
		}
	}
	check(`SELECT * FROM (SELECT quote_ident(table_name) AS "table" FROM information_schema.tables WHERE quote_ident(table_schema) NOT IN ('information_schema', 'pg_catalog') AND table_type = 'BASE TABLE' AND quote_ident(table_schema) IN (SELECT CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END FROM generate_series(array_lower(string_to_array(current_setting('search_path'),','),1), array_upper(string_to_array(current_setting('search_path'),','),1)) as i, string_to_array(current_setting('search_path'),',') s)) x ORDER BY 1`,
		"s\nt\nu\n")
	check(`SELECT count(*) > 50, bool_or(word = 'select'), bool_or(word = 'abs') FROM pg_catalog.pg_get_keywords() WHERE word <> ALL ('{a,abs,absolute,select}'::text[]) AND catcode = 'R'`,
		"t|f|f\n")
	check(`SELECT db.datname FROM pg_catalog.pg_database db WHERE datallowconn AND NOT datistemplate OR db.datname = current_database() ORDER BY db.datname`, "spate\n")
	check(`SELECT n.nspname, d.description FROM pg_catalog.pg_namespace n LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass ORDER BY nspname`,
		"information_schema|NULL\npg_catalog|NULL\npublic|NULL\n")
	check(`SELECT to_regclass('t'), to_regclass('nosuch'), current_schema, session_user`, "t|NULL|public|spate\n")
}

// TestHashJoinMatchesNestedLoop compares joins on an equality of two
// columns (looked up by value) with the same joins on an expression
// (which look at every pair).
func TestHashJoinMatchesNestedLoop(t *testing.T) {
	view := testView()
	for _, pair := range [][2]string{
		{"SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid ORDER BY 1, 2",
			"SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid + 0 = c.oid ORDER BY 1, 2"},
		{"SELECT c.relname, i.indexrelid FROM pg_class c LEFT JOIN pg_index i ON c.oid = i.indrelid ORDER BY 1",
			"SELECT c.relname, i.indexrelid FROM pg_class c LEFT JOIN pg_index i ON c.oid = i.indrelid + 0 ORDER BY 1"},
		{"SELECT t.tablename, c.relkind FROM pg_tables t, pg_class c WHERE t.tablename = c.relname ORDER BY 1",
			"SELECT t.tablename, c.relkind FROM pg_tables t, pg_class c WHERE t.tablename || '' = c.relname ORDER BY 1"},
		{"SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'x' WHERE c.oid = '" + text(newSnapshot(view, Server{}).lookup("public", "t").oid) + "'",
			"SELECT relname FROM pg_class WHERE relname = 't'"},
	} {
		got, want := rowsText(mustRun(t, view, pair[0])), rowsText(mustRun(t, view, pair[1]))
		if got != want || got == "" {
			t.Errorf("%s:\n%s\nvs %s:\n%s", pair[0], got, pair[1], want)
		}
	}
}

// TestWithAndSetOperations checks WITH and INTERSECT/EXCEPT in catalog
// queries.
func TestWithAndSetOperations(t *testing.T) {
	view := testView()
	for sql, want := range map[string]string{
		"WITH rels(name, kind) AS (SELECT relname, relkind FROM pg_class WHERE relnamespace = 2200), cols AS (SELECT attrelid, count(*) AS n FROM pg_attribute GROUP BY attrelid) SELECT r.name, r.kind, c.n FROM rels r JOIN pg_class k ON k.relname = r.name JOIN cols c ON c.attrelid = k.oid ORDER BY 1": "s|r|2\nt|r|2\nt_pkey|i|1\nu|r|4\nv|m|1\n",
		"SELECT relname FROM pg_class WHERE relnamespace = 2200 INTERSECT SELECT tablename FROM pg_tables ORDER BY 1": "s\nt\nu\n",
		"SELECT relname FROM pg_class WHERE relnamespace = 2200 EXCEPT SELECT tablename FROM pg_tables ORDER BY 1":    "t_pkey\nv\n",
		"SELECT 1 FROM pg_am UNION ALL SELECT 1 FROM pg_am EXCEPT ALL SELECT 1 FROM pg_am":                            "1\n1\n", // pg_am has two rows
		"WITH x AS (SELECT 1 AS a) SELECT a FROM x UNION ALL SELECT count(*) FROM pg_database":                        "1\n1\n",
	} {
		if got := rowsText(mustRun(t, view, sql)); got != want {
			t.Errorf("%s:\ngot:\n%swant:\n%s", sql, got, want)
		}
	}
}

func TestParamTypes(t *testing.T) {
	stmt, err := parser.ParseOne("SELECT c.relname FROM pg_class c WHERE c.oid = $1 AND c.relname = $2 AND pg_terminate_backend($3) AND $4 < (SELECT count(*) FROM pg_attribute a WHERE a.attnum = $5)")
	if err != nil {
		t.Fatal(err)
	}
	got := ParamTypes(testView(), Server{}, stmt.(*parser.Select), 6)
	want := []planner.Type{planner.TypeInt, planner.TypeText, planner.TypeInt, planner.TypeBigInt, planner.TypeInt, planner.TypeText}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestSignalPermission checks that only a superuser may cancel or end
// another role's session.
func TestSignalPermission(t *testing.T) {
	view := testView()
	view.User = "reader"
	view.Roles = []cluster.RoleInfo{{Name: "reader", Login: true}, {Name: "spate", Superuser: true, Login: true}}
	var signalled []int64
	srv := Server{
		Backends: []Backend{{PID: 7, User: "spate"}, {PID: 8, User: "reader"}},
		Signal:   func(pid int64, _ bool) bool { signalled = append(signalled, pid); return true },
	}
	query := func(sql string) ([][]any, error) {
		stmt, err := parser.ParseOne(sql)
		if err != nil {
			t.Fatal(err)
		}
		_, rows, err := Query(context.Background(), view, srv, stmt.(*parser.Select), nil)
		return rows, err
	}
	if _, err := query("SELECT pg_terminate_backend(7)"); err == nil || err.(*Error).Code != "42501" {
		t.Errorf("reader ends spate's session: %v", err)
	}
	if rows, err := query("SELECT pg_cancel_backend(8), pg_cancel_backend(9)"); err != nil || rowsText(rows) != "t|f\n" {
		t.Errorf("reader cancels its own session: %v %v", rowsText(rows), err)
	}
	view.User = "spate"
	if rows, err := query("SELECT pg_terminate_backend(8)"); err != nil || rowsText(rows) != "t\n" {
		t.Errorf("superuser ends reader's session: %v %v", rowsText(rows), err)
	}
	if fmt.Sprint(signalled) != "[8 8]" {
		t.Errorf("signalled %v", signalled)
	}
}
