package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/spatedb/spate/internal/sqltest"
)

// These tests point the clients people use at a real `spate serve`: psql,
// pgx, pgjdbc, psycopg2, SQLAlchemy and node-postgres (scripts/test-deps.sh
// installs them). Each test starts a server, creates a stream, a table and
// two continuous queries (an updating GROUP BY and a filter), feeds rows,
// and then lets the client list the relations with their columns, read a
// continuous query's rows and — where the client can — consume a SUBSCRIBE
// cursor (DECLARE … CURSOR FOR SUBSCRIBE, FETCH … WITH (timeout)).
//
// Spate describes streams and tables as tables (relkind 'r') and
// continuous queries as materialized views (relkind 'm'), all in schema
// public. The expected values below come from the test's own input: the
// columns it declares (with the type names PostgreSQL and each driver give
// those types) and the rows it inserts, aggregated here in Go.
//
// The client programs live in testdata/clients. They run their steps one
// after another, printing tab-separated records; a failing step prints an
// error record and the next one still runs, so that each subtest below
// reports one capability.

// clientType is a SQL type as each client sees it.
type clientType struct {
	decl      string // in CREATE STREAM / CREATE TABLE
	pg        string // format_type(), psql's \d
	oid       uint32 // pg_type.oid: RowDescription, psycopg2's type_code, pg's dataTypeID
	typname   string // pg_type.typname: JDBC's TYPE_NAME and getColumnTypeName
	jdbc      int    // java.sql.Types code pgjdbc gives it
	javaClass string // getColumnClassName / getObject's class
	sqla      string // str() of the type SQLAlchemy 1.4 reflects
	py        string // Python type psycopg2 returns
	js        string // typeof what node-postgres returns ("Date" for a Date)
}

var (
	ctInt       = clientType{"INT", "integer", 23, "int4", 4, "java.lang.Integer", "INTEGER", "int", "number"}
	ctBigint    = clientType{"BIGINT", "bigint", 20, "int8", -5, "java.lang.Long", "BIGINT", "int", "string"}
	ctDouble    = clientType{"DOUBLE PRECISION", "double precision", 701, "float8", 8, "java.lang.Double", "DOUBLE_PRECISION", "float", "number"}
	ctText      = clientType{"TEXT", "text", 25, "text", 12, "java.lang.String", "TEXT", "str", "string"}
	ctBool      = clientType{"BOOLEAN", "boolean", 16, "bool", -7, "java.lang.Boolean", "BOOLEAN", "bool", "boolean"}
	ctTimestamp = clientType{"TIMESTAMP", "timestamp without time zone", 1114, "timestamp", 93, "java.sql.Timestamp", "TIMESTAMP", "datetime", "Date"}
	ctInterval  = clientType{"INTERVAL", "interval", 1186, "interval", 1111, "org.postgresql.util.PGInterval", "INTERVAL", "timedelta", "object"}
)

// clientCol is a column of a relation the tests create.
type clientCol struct {
	name string
	typ  clientType
}

// clientRel is a relation the tests create.
type clientRel struct {
	name string
	cq   bool     // a continuous query (a materialized view to clients)
	pk   []string // primary key columns
	cols []clientCol
}

// relkind is the pg_class.relkind clients see.
func (r clientRel) relkind() string {
	if r.cq {
		return "m"
	}
	return "r"
}

// jdbcType is the TABLE_TYPE of DatabaseMetaData.getTables.
func (r clientRel) jdbcType() string {
	if r.cq {
		return "MATERIALIZED VIEW"
	}
	return "TABLE"
}

// psqlType is the Type column of psql's \d.
func (r clientRel) psqlType() string {
	if r.cq {
		return "materialized view"
	}
	return "table"
}

var (
	readingsCols = []clientCol{
		{"sensor", ctInt}, {"site", ctText}, {"temp", ctDouble}, {"ok", ctBool},
		{"ts", ctTimestamp}, {"seq", ctBigint}, {"dur", ctInterval},
	}
	relReadings = clientRel{name: "readings", cols: readingsCols}
	relSites    = clientRel{name: "sites", pk: []string{"site"},
		cols: []clientCol{{"site", ctText}, {"region", ctText}, {"capacity", ctInt}}}
	// per_site: COUNT(*) is bigint, SUM of double precision is double
	// precision, MAX keeps its argument's type.
	relPerSite = clientRel{name: "per_site", cq: true,
		cols: []clientCol{{"site", ctText}, {"n", ctBigint}, {"total", ctDouble}, {"last_seq", ctBigint}}}
	relHot = clientRel{name: "hot", cq: true, cols: readingsCols}
	// per_minute: a windowed query; window_start and window_end have the
	// type of the event-time column.
	relPerMinute = clientRel{name: "per_minute", cq: true,
		cols: []clientCol{{"site", ctText}, {"window_start", ctTimestamp}, {"window_end", ctTimestamp}, {"n", ctBigint}}}
	clientTables = []clientRel{relReadings, relSites}
	clientCQs    = []clientRel{relPerSite, relHot, relPerMinute}
	clientRels   = append(append([]clientRel(nil), clientTables...), clientCQs...)
)

const (
	perSiteSQL = `CREATE CONTINUOUS QUERY per_site AS
  SELECT site, COUNT(*) AS n, SUM(temp) AS total, MAX(seq) AS last_seq FROM readings GROUP BY site`
	hotSQL       = `CREATE CONTINUOUS QUERY hot AS SELECT sensor, site, temp, ok, ts, seq, dur FROM readings WHERE temp >= 13`
	perMinuteSQL = `CREATE CONTINUOUS QUERY per_minute AS
  SELECT site, window_start, window_end, COUNT(*) AS n FROM readings GROUP BY site, TUMBLE(ts, INTERVAL '1' MINUTE)`
	hotThreshold = 13.0
)

// ddl is the CREATE statement of a stream or table.
func (r clientRel) ddl(stream bool) string {
	var cols []string
	for _, c := range r.cols {
		cols = append(cols, c.name+" "+c.typ.decl)
	}
	if len(r.pk) > 0 {
		cols = append(cols, "PRIMARY KEY ("+strings.Join(r.pk, ", ")+")")
	}
	if stream {
		return fmt.Sprintf("CREATE STREAM %s (%s) WITH (event_time = 'ts')", r.name, strings.Join(cols, ", "))
	}
	return fmt.Sprintf("CREATE TABLE %s (%s)", r.name, strings.Join(cols, ", "))
}

// reading is a row of the stream readings.
type reading struct {
	sensor int
	site   string
	temp   float64
	ok     bool
	ts     time.Time
	seq    int64
	dur    time.Duration
	noDur  bool // dur is NULL
}

// clientReadings returns the rows the tests feed: three sites, exact
// binary fractions for temp (so sums print the same everywhere), one NULL
// interval.
func clientReadings() []reading {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sites := []string{"north", "south", "east"}
	var rs []reading
	for i := 0; i < 12; i++ {
		rs = append(rs, reading{
			sensor: i%4 + 1, site: sites[i%3], temp: 10 + float64(i)*0.75, ok: i%4 != 0,
			ts: base.Add(time.Duration(i) * 10 * time.Second), seq: int64(100 + i),
			dur: time.Duration(i*90) * time.Second, noDur: i == 5,
		})
	}
	return rs
}

// subReading is the row the SUBSCRIBE steps insert while their cursor is
// open: it updates north's row of per_site.
var subReading = reading{sensor: 9, site: "north", temp: 1.25, ok: true,
	ts: time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC), seq: 500, dur: time.Minute}

const clientTSLayout = "2006-01-02 15:04:05"

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// sqlValues is the row as a VALUES tuple.
func (r reading) sqlValues() string {
	dur := "NULL"
	if !r.noDur {
		dur = fmt.Sprintf("INTERVAL '%d seconds'", int64(r.dur/time.Second))
	}
	return fmt.Sprintf("(%d, '%s', %s, %t, '%s', %d, %s)", r.sensor, r.site, fmtFloat(r.temp), r.ok, r.ts.Format(clientTSLayout), r.seq, dur)
}

// csv is the row as a CSV line (NULL is an empty field).
func (r reading) csv() string {
	dur := ""
	if !r.noDur {
		s := int64(r.dur / time.Second)
		dur = fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d,%s,%s,%t,%s,%d,%s", r.sensor, r.site, fmtFloat(r.temp), r.ok, r.ts.Format(clientTSLayout), r.seq, dur)
}

// values is the row as the client programs print it: timestamps as
// "YYYY-MM-DD HH:MM:SS", intervals in seconds, NULL as \N.
func (r reading) values() []string {
	dur := `\N`
	if !r.noDur {
		dur = strconv.FormatInt(int64(r.dur/time.Second), 10)
	}
	return []string{strconv.Itoa(r.sensor), r.site, fmtFloat(r.temp), strconv.FormatBool(r.ok), r.ts.Format(clientTSLayout), strconv.FormatInt(r.seq, 10), dur}
}

// perSiteRow is a row of per_site.
type perSiteRow struct {
	site    string
	n       int64
	total   float64
	lastSeq int64
}

func (p perSiteRow) values() []string {
	return []string{p.site, strconv.FormatInt(p.n, 10), fmtFloat(p.total), strconv.FormatInt(p.lastSeq, 10)}
}

// perSite aggregates rows as per_site does, ordered by site.
func perSite(rows []reading) []perSiteRow {
	by := map[string]*perSiteRow{}
	for _, r := range rows {
		p := by[r.site]
		if p == nil {
			p = &perSiteRow{site: r.site, lastSeq: r.seq}
			by[r.site] = p
		}
		p.n++
		p.total += r.temp
		p.lastSeq = max(p.lastSeq, r.seq)
	}
	var out []perSiteRow
	for _, p := range by {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].site < out[j].site })
	return out
}

// perSiteOf returns site's row of per_site.
func perSiteOf(rows []reading, site string) perSiteRow {
	for _, p := range perSite(rows) {
		if p.site == site {
			return p
		}
	}
	return perSiteRow{}
}

// hotRows filters rows as hot does, ordered by seq.
func hotRows(rows []reading) [][]string {
	var out [][]string
	for _, r := range rows {
		if r.temp >= hotThreshold {
			out = append(out, r.values())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][5] < out[j][5] })
	return out
}

// clientSites are the rows of the table sites.
var clientSites = [][]string{{"east", "ap", "2"}, {"north", "eu", "3"}, {"south", "eu", "5"}}

// clientServer is a running server with the tests' relations.
type clientServer struct {
	srv  *sqltest.Server
	conn *pgx.Conn // simple protocol
	rows []reading // fed so far
}

// startClientServer starts a server and creates the relations and the
// rows of sites; with feed it also inserts the readings.
func startClientServer(t *testing.T, feed bool) *clientServer {
	t.Helper()
	cs := &clientServer{srv: sqltest.StartSpate(t)}
	cs.conn = sqltest.Connect(t, cs.srv.ConnString())
	cs.exec(t, relReadings.ddl(true))
	cs.exec(t, relSites.ddl(false))
	cs.exec(t, perSiteSQL)
	cs.exec(t, hotSQL)
	cs.exec(t, perMinuteSQL)
	var vals []string
	for _, s := range clientSites {
		vals = append(vals, fmt.Sprintf("('%s', '%s', %s)", s[0], s[1], s[2]))
	}
	cs.exec(t, "INSERT INTO sites VALUES "+strings.Join(vals, ", "))
	if feed {
		rows := clientReadings()
		vals = vals[:0]
		for _, r := range rows {
			vals = append(vals, r.sqlValues())
		}
		cs.exec(t, "INSERT INTO readings VALUES "+strings.Join(vals, ", "))
		cs.rows = rows
	}
	return cs
}

func (cs *clientServer) exec(t *testing.T, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cs.conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// env is the environment of a client program: libpq's PG* variables for
// the server (any others dropped), the INSERT its SUBSCRIBE step runs, and
// TZ=UTC.
func (cs *clientServer) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "TZ=") {
			env = append(env, kv)
		}
	}
	return append(env,
		"PGHOST=127.0.0.1", "PGPORT="+strconv.Itoa(cs.srv.Port), "PGUSER=spate", "PGDATABASE=spate",
		"PGSSLMODE=disable", "TZ=UTC",
		"SPATE_SUB_INSERT=INSERT INTO readings VALUES "+subReading.sqlValues(),
		"SPATE_SITES="+strconv.Itoa(len(perSite(clientReadings()))),
		"SPATE_RELATIONS="+strings.Join(relNamesInOrder(clientRels), ","))
}

// clientStep is what a client program printed for one step.
type clientStep struct {
	err  string     // the error record's message, "" when the step succeeded
	recs [][]string // the other records, fields split
}

// of returns the fields after the kind of the records of that kind.
func (s *clientStep) of(kind string) [][]string {
	var out [][]string
	for _, r := range s.recs {
		if r[0] == kind {
			out = append(out, r[1:])
		}
	}
	return out
}

// clientOutput is what a client program printed, by step.
type clientOutput struct {
	steps  map[string]*clientStep
	stdout string
	stderr string
}

// step returns the step's records; it fails the test when the program
// did not run the step or the step failed.
func (o *clientOutput) step(t *testing.T, name string) *clientStep {
	t.Helper()
	s := o.steps[name]
	if s == nil {
		t.Fatalf("the client did not run step %q (an earlier step failed?)", name)
	}
	if s.err != "" {
		t.Fatalf("%s: %s", name, s.err)
	}
	return s
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// runClient runs a client program (argv) in dir with env and parses its
// output. A program that exits with an error fails the test.
func runClient(t *testing.T, dir string, env []string, argv ...string) *clientOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	o := &clientOutput{steps: map[string]*clientStep{}, stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), err, o.stdout, lastLines(o.stderr, 60))
	}
	var cur *clientStep
	for _, line := range strings.Split(strings.TrimRight(o.stdout, "\n"), "\n") {
		f := strings.Split(line, "\t")
		for i := range f {
			if f[i] != `\N` {
				f[i] = strings.ReplaceAll(f[i], `\\`, `\`)
			}
		}
		switch {
		case f[0] == "step" && len(f) == 2:
			cur = &clientStep{}
			o.steps[f[1]] = cur
		case cur == nil:
			t.Fatalf("the client printed %q before its first step", line)
		case f[0] == "error":
			cur.err = strings.Join(f[1:], " ")
		default:
			cur.recs = append(cur.recs, f)
		}
	}
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("%s printed:\n%s\nstderr (the end):\n%s", filepath.Base(argv[len(argv)-1]), o.stdout, lastLines(o.stderr, 30))
		}
	})
	return o
}

// clientsDir returns testdata/clients/<sub> at the module root.
func clientsDir(t *testing.T, sub string) string {
	t.Helper()
	root, err := sqltest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "testdata", "clients", sub)
}

// canon canonicalises values for comparison: numbers that parse as
// floats are reformatted (1.50 and 1.5 are equal), booleans are
// lower-cased and t/f spelled out.
func canon(vals []string) string {
	out := make([]string, len(vals))
	for i, v := range vals {
		switch {
		case v == "t" || v == "True":
			v = "true"
		case v == "f" || v == "False":
			v = "false"
		default:
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				v = fmtFloat(f)
			}
		}
		out[i] = v
	}
	return strings.Join(out, "|")
}

func canonAll(rows [][]string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = canon(r)
	}
	return out
}

func perSiteValues(rows []perSiteRow) [][]string {
	var out [][]string
	for _, p := range rows {
		out = append(out, p.values())
	}
	return out
}

// checkRows compares rows (in order) with want.
func checkRows(t *testing.T, what string, got, want [][]string) {
	t.Helper()
	g, w := canonAll(got), canonAll(want)
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("%s:\ngot\n  %s\nwant\n  %s", what, strings.Join(g, "\n  "), strings.Join(w, "\n  "))
	}
}

// checkRowSet compares rows with want, ignoring their order.
func checkRowSet(t *testing.T, what string, got, want [][]string) {
	t.Helper()
	g, w := canonAll(got), canonAll(want)
	sort.Strings(g)
	sort.Strings(w)
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("%s:\ngot\n  %s\nwant\n  %s", what, strings.Join(g, "\n  "), strings.Join(w, "\n  "))
	}
}

// colNames returns the names of a relation's columns.
func (r clientRel) colNames() []string {
	var out []string
	for _, c := range r.cols {
		out = append(out, c.name)
	}
	return out
}

// columnsAs lists a relation's columns as [name, f(type)] rows.
func (r clientRel) columnsAs(f func(clientType) string) [][]string {
	var out [][]string
	for _, c := range r.cols {
		out = append(out, []string{c.name, f(c.typ)})
	}
	return out
}

// cursorRows turns the rows a SUBSCRIBE cursor returned into per_site
// changes "op site n total last_seq", finding the columns by name (cols
// are the result's column names, in order). An unnamed op column is
// taken to be the first.
func cursorRows(t *testing.T, cols []string, rows [][]string) [][]string {
	t.Helper()
	idx := map[string]int{}
	for i, c := range cols {
		idx[c] = i
	}
	if _, ok := idx["op"]; !ok {
		idx["op"] = 0
	}
	var out [][]string
	for _, r := range rows {
		var row []string
		for _, c := range append([]string{"op"}, relPerSite.colNames()...) {
			i, ok := idx[c]
			if !ok || i >= len(r) {
				t.Fatalf("the cursor's columns %v have no %q (row %v)", cols, c, r)
			}
			row = append(row, r[i])
		}
		out = append(out, row)
	}
	return out
}

// wantCursor returns the changes a SUBSCRIBE cursor on per_site returns:
// first the current rows as "+", then, after subReading, north's old row
// as "-" and its new one as "+".
func wantCursor(rows []reading) (initial, change [][]string) {
	for _, p := range perSite(rows) {
		initial = append(initial, append([]string{"+"}, p.values()...))
	}
	before := perSiteOf(rows, subReading.site)
	after := perSiteOf(append(append([]reading(nil), rows...), subReading), subReading.site)
	change = [][]string{append([]string{"-"}, before.values()...), append([]string{"+"}, after.values()...)}
	return initial, change
}

// checkCursor checks a cursor step: sub records (the first FETCH) and
// change records (the FETCHes after subReading), with the result's column
// names from colKind records (name first).
func checkCursor(t *testing.T, s *clientStep, colKind string, rows []reading) {
	t.Helper()
	var cols []string
	for _, c := range s.of(colKind) {
		cols = append(cols, c[0])
	}
	initial, change := wantCursor(rows)
	checkRowSet(t, "the first FETCH", cursorRows(t, cols, s.of("sub")), initial)
	checkRowSet(t, "the FETCHes after an INSERT", cursorRows(t, cols, s.of("change")), change)
}

// names returns the first field of each record, sorted.
func names(recs [][]string) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r[0])
	}
	sort.Strings(out)
	return out
}

// relNamesInOrder returns the relations' names in their order.
func relNamesInOrder(rels []clientRel) []string {
	var out []string
	for _, r := range rels {
		out = append(out, r.name)
	}
	return out
}

func relNames(rels ...clientRel) []string {
	var out []string
	for _, r := range rels {
		out = append(out, r.name)
	}
	sort.Strings(out)
	return out
}

// ---------------------------------------------------------------- psql

// TestClientPsql runs psql's meta-commands, \x and \copy against the
// server.
func TestClientPsql(t *testing.T) {
	psql := sqltest.RequireBinary(t, "psql")
	cs := startClientServer(t, false)
	conn := cs.srv.ConnString()
	// -A -t: unaligned, tuples only ("a|b|c" lines), as scripts use psql.
	run := func(t *testing.T, args ...string) []string {
		t.Helper()
		out := mustPsql(t, psql, conn, append([]string{"-A", "-t"}, args...)...)
		return strings.Split(strings.TrimRight(out, "\n"), "\n")
	}
	split := func(lines []string) [][]string {
		var out [][]string
		for _, l := range lines {
			if l != "" {
				out = append(out, strings.Split(l, "|"))
			}
		}
		return out
	}

	rows := clientReadings()
	var csv []string
	for _, r := range rows {
		csv = append(csv, r.csv())
	}
	file := filepath.Join(t.TempDir(), "readings.csv")
	if err := os.WriteFile(file, []byte(strings.Join(csv, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run(`\copy from`, func(t *testing.T) {
		got := run(t, "-c", fmt.Sprintf(`\copy readings FROM '%s' WITH (FORMAT csv)`, file))
		if want := fmt.Sprintf("COPY %d", len(rows)); len(got) != 1 || got[0] != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})

	// relations returns \d-style rows (schema, name, type, owner) of our
	// relations only.
	ours := map[string]bool{}
	for _, r := range clientRels {
		ours[r.name] = true
	}
	relations := func(lines []string) [][]string {
		var out [][]string
		for _, f := range split(lines) {
			if len(f) >= 3 && ours[f[1]] {
				out = append(out, f[:3])
			}
		}
		return out
	}
	listed := func(rels ...clientRel) [][]string {
		var out [][]string
		for _, r := range rels {
			out = append(out, []string{"public", r.name, r.psqlType()})
		}
		return out
	}
	for _, tc := range []struct {
		cmd  string
		want []clientRel
	}{
		{`\d`, clientRels},
		{`\dt`, clientTables},
		{`\dv`, nil},
		{`\dm`, clientCQs},
		{`\dt+`, clientTables}, // + adds sizes and descriptions
		{`\dm+`, clientCQs},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			res := runPsql(t, psql, conn, "-A", "-t", "-c", tc.cmd)
			if res.exit != 0 || strings.Contains(res.stderr, "ERROR") {
				t.Fatalf("psql -c %q exited with %d:\n%s", tc.cmd, res.exit, res.stderr)
			}
			checkRowSet(t, tc.cmd, relations(strings.Split(res.stdout, "\n")), listed(tc.want...))
		})
	}
	for _, r := range clientRels {
		t.Run(`\d `+r.name, func(t *testing.T) {
			// Column | Type | Collation | Nullable | Default
			var got [][]string
			for _, f := range split(run(t, "-c", `\d `+r.name)) {
				if len(f) < 4 {
					t.Fatalf("\\d %s printed %q", r.name, f)
				}
				got = append(got, f[:4])
			}
			var want [][]string
			for _, c := range r.cols {
				null := ""
				for _, k := range r.pk {
					if k == c.name {
						null = "not null"
					}
				}
				want = append(want, []string{c.name, c.typ.pg, "", null})
			}
			checkRows(t, `\d `+r.name, got, want)
		})
	}
	t.Run(`\d sites indexes`, func(t *testing.T) {
		// The footer lists the primary key's index, as for PostgreSQL:
		// Indexes:
		//     "sites_pkey" PRIMARY KEY, btree (site)
		out := mustPsql(t, psql, conn, "-c", `\d sites`)
		want := fmt.Sprintf("PRIMARY KEY, btree (%s)", strings.Join(relSites.pk, ", "))
		if !strings.Contains(out, "Indexes:") || !strings.Contains(out, want) {
			t.Errorf("\\d sites does not list the index %q:\n%s", want, out)
		}
	})
	t.Run(`\d+ per_site`, func(t *testing.T) {
		// With + psql also reads the storage, the description and the
		// view definition.
		out := mustPsql(t, psql, conn, "-c", `\d+ per_site`)
		for _, c := range relPerSite.cols {
			if !strings.Contains(out, c.name) {
				t.Errorf("\\d+ per_site does not show the column %s:\n%s", c.name, out)
			}
		}
		// A materialized view's footer shows its query.
		if !strings.Contains(out, "View definition:") || !strings.Contains(strings.ToLower(out), "from readings") {
			t.Errorf("\\d+ per_site does not show the query's definition:\n%s", out)
		}
	})
	for _, cmd := range []string{`\dx`, `\df`} {
		// Extensions and functions: they run (what they list is not
		// checked).
		t.Run(cmd, func(t *testing.T) { run(t, "-c", cmd) })
	}
	t.Run("FETCH_COUNT", func(t *testing.T) {
		// psql reads a result FETCH_COUNT rows at a time through a
		// cursor: DECLARE _psql_cursor NO SCROLL CURSOR FOR …, FETCH
		// FORWARD 3 FROM _psql_cursor until fewer come back.
		got := split(run(t, "-v", "FETCH_COUNT=3", "-c", "SELECT site, n, total, last_seq FROM per_site ORDER BY site"))
		checkRows(t, "per_site", got, perSiteValues(perSite(rows)))
	})
	t.Run(`\l`, func(t *testing.T) {
		if got := names(split(run(t, "-c", `\l`))); !contains(got, "spate") {
			t.Errorf(`\l lists %v, want the database spate`, got)
		}
	})
	t.Run(`\du`, func(t *testing.T) {
		if got := names(split(run(t, "-c", `\du`))); !contains(got, "spate") {
			t.Errorf(`\du lists %v, want the role spate`, got)
		}
	})
	t.Run(`\dn`, func(t *testing.T) {
		if got := names(split(run(t, "-c", `\dn`))); !contains(got, "public") {
			t.Errorf(`\dn lists %v, want the schema public`, got)
		}
	})
	t.Run("select", func(t *testing.T) {
		got := split(run(t, "-c", "SELECT site, n, total, last_seq FROM per_site ORDER BY site"))
		checkRows(t, "per_site", got, perSiteValues(perSite(rows)))
	})
	t.Run(`\x`, func(t *testing.T) {
		var got [][]string
		for _, f := range split(run(t, "-c", `\x`, "-c", "SELECT site, n, total, last_seq FROM per_site WHERE site = 'north'")) {
			if len(f) > 1 { // not "Expanded display is on."
				got = append(got, f)
			}
		}
		var want [][]string
		vals := perSiteOf(rows, "north").values()
		for i, c := range relPerSite.cols {
			want = append(want, []string{c.name, vals[i]})
		}
		checkRows(t, `\x`, got, want)
	})
	t.Run(`\copy to`, func(t *testing.T) {
		var got [][]string
		for _, l := range run(t, "-c", `\copy (SELECT site, n, total, last_seq FROM per_site ORDER BY site) TO STDOUT`) {
			got = append(got, strings.Split(l, "\t"))
		}
		checkRows(t, "per_site", got, perSiteValues(perSite(rows)))
		got = got[:0]
		for _, l := range run(t, "-c", `\copy sites TO STDOUT WITH (FORMAT csv)`) {
			got = append(got, strings.Split(l, ","))
		}
		checkRowSet(t, "sites", got, clientSites)
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- pgx

// TestClientPgx reads the catalog and a continuous query with pgx's
// extended protocol (binary results) and consumes a SUBSCRIBE cursor.
func TestClientPgx(t *testing.T) {
	cs := startClientServer(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, cs.srv.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	t.Run("pg_class", func(t *testing.T) {
		rows, err := conn.Query(ctx, `SELECT c.relname, c.relkind::text FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = $1 AND c.relname = ANY($2) ORDER BY c.relname`, "public", relNames(clientRels...))
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]string, error) {
			var name, kind string
			err := r.Scan(&name, &kind)
			return []string{name, kind}, err
		})
		if err != nil {
			t.Fatal(err)
		}
		var want [][]string
		for _, r := range clientRels {
			want = append(want, []string{r.name, r.relkind()})
		}
		checkRowSet(t, "pg_class", got, want)
	})
	for _, r := range clientRels {
		t.Run("pg_attribute "+r.name, func(t *testing.T) {
			rows, err := conn.Query(ctx, `SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.atttypid
  FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
  ORDER BY a.attnum`, r.name)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([]string, error) {
				var name, typ string
				var oid uint32
				err := row.Scan(&name, &typ, &oid)
				return []string{name, typ, strconv.Itoa(int(oid))}, err
			})
			if err != nil {
				t.Fatal(err)
			}
			var want [][]string
			for _, c := range r.cols {
				want = append(want, []string{c.name, c.typ.pg, strconv.Itoa(int(c.typ.oid))})
			}
			checkRows(t, r.name, got, want)
		})
	}
	t.Run("information_schema.columns", func(t *testing.T) {
		rows, err := conn.Query(ctx, `SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns
  WHERE table_schema = $1 AND table_name = ANY($2) ORDER BY table_name, ordinal_position`,
			"public", []string{relReadings.name, relSites.name})
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([]string, error) {
			var tn, cn, dt string
			err := row.Scan(&tn, &cn, &dt)
			return []string{tn, cn, dt}, err
		})
		if err != nil {
			t.Fatal(err)
		}
		var want [][]string
		for _, r := range []clientRel{relReadings, relSites} {
			for _, c := range r.cols {
				want = append(want, []string{r.name, c.name, c.typ.pg})
			}
		}
		checkRows(t, "columns", got, want)
	})
	t.Run("QueryRow", func(t *testing.T) {
		want := perSiteOf(cs.rows, "south")
		var got perSiteRow
		err := conn.QueryRow(ctx, "SELECT site, n, total, last_seq FROM per_site WHERE site = $1 AND n >= $2", "south", 1).
			Scan(&got.site, &got.n, &got.total, &got.lastSeq)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("typed rows", func(t *testing.T) {
		rows, err := conn.Query(ctx, "SELECT sensor, site, temp, ok, ts, seq, dur FROM hot WHERE seq >= $1 ORDER BY seq", int64(0))
		if err != nil {
			t.Fatal(err)
		}
		var oids []string
		for _, fd := range rows.FieldDescriptions() {
			oids = append(oids, strconv.Itoa(int(fd.DataTypeOID)))
		}
		got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([]string, error) {
			var r reading
			var sensor int32
			var dur pgtype.Interval
			if err := row.Scan(&sensor, &r.site, &r.temp, &r.ok, &r.ts, &r.seq, &dur); err != nil {
				return nil, err
			}
			r.sensor = int(sensor)
			r.noDur = !dur.Valid
			r.dur = time.Duration(dur.Microseconds)*time.Microsecond + time.Duration(dur.Days)*24*time.Hour
			return r.values(), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var wantOIDs []string
		for _, c := range relHot.cols {
			wantOIDs = append(wantOIDs, strconv.Itoa(int(c.typ.oid)))
		}
		if strings.Join(oids, ",") != strings.Join(wantOIDs, ",") {
			t.Errorf("column type OIDs %v, want %v", oids, wantOIDs)
		}
		checkRows(t, "hot", got, hotRows(cs.rows))
	})
	t.Run("subscribe cursor", func(t *testing.T) {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.Background())
		if _, err := tx.Exec(ctx, "DECLARE c CURSOR FOR SUBSCRIBE per_site"); err != nil {
			t.Fatal(err)
		}
		fetch := func() (cols []string, rows [][]string) {
			t.Helper()
			rs, err := tx.Query(ctx, "FETCH 10 FROM c WITH (timeout = '1s')")
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			for _, fd := range rs.FieldDescriptions() {
				cols = append(cols, fd.Name)
			}
			for rs.Next() {
				vals, err := rs.Values()
				if err != nil {
					t.Fatal(err)
				}
				var row []string
				for _, v := range vals {
					row = append(row, fmt.Sprint(v))
				}
				rows = append(rows, row)
			}
			if err := rs.Err(); err != nil {
				t.Fatal(err)
			}
			return cols, rows
		}
		initial, change := wantCursor(cs.rows)
		// The current rows, maybe in pieces.
		var got [][]string
		for i := 0; i < 10 && len(got) < len(initial); i++ {
			cols, rows := fetch()
			got = append(got, cursorRows(t, cols, rows)...)
		}
		checkRowSet(t, "the first FETCHes", got, initial)
		cs.exec(t, "INSERT INTO readings VALUES "+subReading.sqlValues())
		var changes [][]string
		for i := 0; i < 10 && len(changes) < len(change); i++ {
			c, rows := fetch()
			if len(rows) > 0 {
				changes = append(changes, cursorRows(t, c, rows)...)
			}
		}
		checkRowSet(t, "the FETCHes after an INSERT", changes, change)
		if _, err := tx.Exec(ctx, "CLOSE c"); err != nil {
			t.Error(err)
		}
	})
}

// ---------------------------------------------------------------- JDBC

// requireJava returns javac, java and pgjdbc's jar; it skips the test
// (fails it under CI) when one is missing.
func requireJava(t *testing.T) (javac, java, jar string) {
	t.Helper()
	jar = "/usr/share/java/postgresql.jar"
	if p := os.Getenv("SPATE_PGJDBC_JAR"); p != "" {
		jar = p
	}
	if _, err := os.Stat(jar); err != nil {
		sqltest.Missing(t, "pgjdbc not found at %s (apt: libpostgresql-jdbc-java; run scripts/test-deps.sh)", jar)
	}
	for _, name := range []string{"javac", "java"} {
		if _, err := exec.LookPath(name); err != nil {
			sqltest.Missing(t, "%s not found (apt: default-jdk-headless; run scripts/test-deps.sh)", name)
		}
	}
	return "javac", "java", jar
}

// TestClientJDBC runs testdata/clients/jdbc/ClientTest.java with pgjdbc:
// DatabaseMetaData, statements, prepared statements, ResultSet types and
// a SUBSCRIBE cursor.
func TestClientJDBC(t *testing.T) {
	javac, java, jar := requireJava(t)
	cs := startClientServer(t, true)
	classes := t.TempDir()
	src := filepath.Join(clientsDir(t, "jdbc"), "ClientTest.java")
	if out, err := exec.Command(javac, "-d", classes, "-cp", jar, src).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	o := runClient(t, classes, cs.env(), java, "-cp", jar+string(os.PathListSeparator)+classes, "ClientTest")

	t.Run("connect", func(t *testing.T) { o.step(t, "connect") })
	tables := func(t *testing.T, step string) {
		// Only ours: getTables without types also lists indexes
		// (sites_pkey) and system tables, as with PostgreSQL.
		var got [][]string
		for _, r := range o.step(t, step).of("table") {
			if r[0] == "public" && contains(relNames(clientRels...), r[1]) {
				got = append(got, r[1:])
			}
		}
		var want [][]string
		for _, r := range clientRels {
			want = append(want, []string{r.name, r.jdbcType()})
		}
		checkRowSet(t, step, got, want)
	}
	t.Run("getTables", func(t *testing.T) { tables(t, "getTables") })
	t.Run("getTables typed", func(t *testing.T) { tables(t, "getTablesTyped") })
	t.Run("getSchemas", func(t *testing.T) {
		if got := names(o.step(t, "getSchemas").of("schema")); !contains(got, "public") {
			t.Errorf("getSchemas lists %v, want public", got)
		}
	})
	for _, r := range clientRels {
		t.Run("getColumns "+r.name, func(t *testing.T) {
			var want [][]string
			for i, c := range r.cols {
				want = append(want, []string{r.name, c.name, c.typ.typname, strconv.Itoa(c.typ.jdbc), strconv.Itoa(i + 1)})
			}
			checkRows(t, r.name, o.step(t, "getColumns "+r.name).of("column"), want)
		})
	}
	t.Run("getPrimaryKeys", func(t *testing.T) {
		checkRows(t, "sites", o.step(t, "getPrimaryKeys sites").of("pk"), [][]string{{"sites", "site", "1"}})
	})
	t.Run("getIndexInfo", func(t *testing.T) {
		// The primary key's index: unique, on site.
		var want [][]string
		for i, c := range relSites.pk {
			want = append(want, []string{"sites", c, "false", strconv.Itoa(i + 1)})
		}
		checkRows(t, "sites", o.step(t, "getIndexInfo sites").of("index"), want)
	})
	t.Run("getImportedKeys", func(t *testing.T) {
		// No foreign keys: nothing, and no error.
		checkRows(t, "sites", o.step(t, "getImportedKeys sites").of("fk"), nil)
	})
	t.Run("getCatalogs", func(t *testing.T) {
		if got := names(o.step(t, "getCatalogs").of("catalog")); !contains(got, "spate") {
			t.Errorf("getCatalogs lists %v, want spate among them", got)
		}
	})
	t.Run("getTypeInfo", func(t *testing.T) {
		got := map[string]string{}
		for _, r := range o.step(t, "getTypeInfo").of("type") {
			got[r[0]] = r[1]
		}
		for _, c := range relReadings.cols {
			if got[c.typ.typname] != strconv.Itoa(c.typ.jdbc) {
				t.Errorf("getTypeInfo: %s has DATA_TYPE %q, want %d", c.typ.typname, got[c.typ.typname], c.typ.jdbc)
			}
		}
	})
	colMeta := func(r clientRel) [][]string {
		var out [][]string
		for _, c := range r.cols {
			out = append(out, []string{c.name, c.typ.typname, strconv.Itoa(c.typ.jdbc), c.typ.javaClass})
		}
		return out
	}
	t.Run("select per_site", func(t *testing.T) {
		s := o.step(t, "select per_site")
		checkRows(t, "columns", s.of("col"), colMeta(relPerSite))
		checkRows(t, "rows", s.of("row"), perSiteValues(perSite(cs.rows)))
	})
	t.Run("ResultSet types", func(t *testing.T) {
		s := o.step(t, "select hot")
		checkRows(t, "columns", s.of("col"), colMeta(relHot))
		checkRows(t, "rows", s.of("row"), hotRows(cs.rows))
	})
	t.Run("fetchSize", func(t *testing.T) {
		checkRows(t, "rows", o.step(t, "fetchSize").of("row"), hotRows(cs.rows))
	})
	t.Run("ResultSetMetaData", func(t *testing.T) {
		// isNullable: columnNullableUnknown (2) is what pgjdbc reports when
		// its pg_attribute lookup finds nothing; 1 is columnNullable.
		checkRows(t, "meta", o.step(t, "resultSetMetaData").of("meta"),
			[][]string{{"site", "per_site", "1", "false"}, {"n", "per_site", "1", "false"}})
	})
	t.Run("PreparedStatement", func(t *testing.T) {
		s := o.step(t, "prepared")
		checkRows(t, "inserted", s.of("inserted"), [][]string{{"1"}})
		var want [][]string
		for k := 0; k < 7; k++ {
			want = append(want, append([]string{strconv.Itoa(k)}, perSiteOf(cs.rows, "north").values()...))
		}
		checkRows(t, "rows", s.of("row"), want)
		checkRows(t, "inserted site", s.of("site"), [][]string{{"sa", "7"}})
	})
	t.Run("batch and copy", func(t *testing.T) {
		// The rows ClientTest.java inserts: batch1..3 (xb, 10·k) with
		// executeBatch, copy1..2 (xc, 100, 200) with CopyManager.
		s := o.step(t, "batch and copy")
		checkRows(t, "executeBatch", s.of("batch"), [][]string{{"3", "3"}})
		checkRows(t, "copyIn", s.of("copied"), [][]string{{"2"}})
		checkRows(t, "rows", s.of("site"), [][]string{
			{"batch1", "xb", "10"}, {"batch2", "xb", "20"}, {"batch3", "xb", "30"},
			{"copy1", "xc", "100"}, {"copy2", "xc", "200"}})
	})
	t.Run("subscribe cursor", func(t *testing.T) {
		checkCursor(t, o.step(t, "subscribe"), "col", cs.rows)
	})
	t.Run("cancel", func(t *testing.T) {
		// 57014 query_canceled, well before the test's own timeout; then
		// a query on the same connection works (the subscribe step's
		// INSERT did not touch east).
		s := o.step(t, "cancel")
		checkRows(t, "cancelled", s.of("cancelled"), [][]string{{"57014", "true"}})
		checkRows(t, "after", s.of("after"), [][]string{{strconv.FormatInt(perSiteOf(cs.rows, "east").n, 10)}})
	})
}

// ---------------------------------------------------------------- Python

// requirePython returns the python3 that has module (the system one: a
// pyenv shim earlier in PATH may not see the apt packages); it skips the
// test (fails it under CI) when none has it.
func requirePython(t *testing.T, module, apt string) string {
	t.Helper()
	var tried []string
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		tried = append(tried, path)
		if exec.Command(path, "-c", "import "+module).Run() == nil {
			return path
		}
	}
	sqltest.Missing(t, "no python3 with the module %s (tried %v; apt: %s; run scripts/test-deps.sh)", module, tried, apt)
	return ""
}

// TestClientPsycopg2 runs testdata/clients/python/psycopg2_client.py:
// copy_expert in and out, queries with parameters, cursor.description
// and Python types, and SUBSCRIBE through DECLARE/FETCH and a named
// cursor.
func TestClientPsycopg2(t *testing.T) {
	python := requirePython(t, "psycopg2", "python3-psycopg2")
	cs := startClientServer(t, false)
	rows := clientReadings()
	var csv []string
	for _, r := range rows {
		csv = append(csv, r.csv())
	}
	file := filepath.Join(t.TempDir(), "readings.csv")
	if err := os.WriteFile(file, []byte(strings.Join(csv, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := clientsDir(t, "python")
	o := runClient(t, dir, append(cs.env(), "SPATE_CSV="+file), python, filepath.Join(dir, "psycopg2_client.py"))

	t.Run("connect", func(t *testing.T) { o.step(t, "connect") })
	t.Run("copy_expert from", func(t *testing.T) {
		checkRows(t, "rowcount", o.step(t, "copy_expert from").of("copied"), [][]string{{strconv.Itoa(len(rows))}})
	})
	desc := columnOIDs
	pyTypes := func(r clientRel, vals [][]string) [][]string {
		return valueTypes(r, vals, "NoneType", func(c clientType) string { return c.py })
	}
	t.Run("select per_site", func(t *testing.T) {
		s := o.step(t, "select per_site")
		want := perSiteValues(perSite(rows))
		checkRows(t, "description", s.of("desc"), desc(relPerSite))
		checkRows(t, "rows", s.of("row"), want)
		checkRows(t, "types", s.of("types"), pyTypes(relPerSite, want))
	})
	t.Run("description types", func(t *testing.T) {
		s := o.step(t, "select hot")
		want := hotRows(rows)
		checkRows(t, "description", s.of("desc"), desc(relHot))
		checkRows(t, "rows", s.of("row"), want)
		checkRows(t, "types", s.of("types"), pyTypes(relHot, want))
	})
	t.Run("parameters", func(t *testing.T) {
		checkRows(t, "rows", o.step(t, "parameters").of("row"), [][]string{perSiteOf(rows, "north").values()})
	})
	t.Run("copy_expert to", func(t *testing.T) {
		s := o.step(t, "copy_expert to")
		checkRows(t, "COPY (SELECT …) TO STDOUT", s.of("copy"), perSiteValues(perSite(rows)))
		checkRowSet(t, "COPY sites TO STDOUT (FORMAT csv)", s.of("copycsv"), clientSites)
	})
	t.Run("subscribe cursor", func(t *testing.T) {
		checkCursor(t, o.step(t, "subscribe"), "desc", rows)
	})
	t.Run("cancel", func(t *testing.T) {
		s := o.step(t, "cancel")
		checkRows(t, "cancelled", s.of("cancelled"), [][]string{{"57014"}})
		checkRows(t, "after", s.of("after"), [][]string{{strconv.FormatInt(perSiteOf(rows, "east").n, 10)}})
	})
	t.Run("named cursor select", func(t *testing.T) {
		checkRows(t, "rows", o.step(t, "named cursor select").of("row"), hotRows(rows))
	})
	t.Run("named cursor", func(t *testing.T) {
		// psycopg2's named cursor: DECLARE "subs" CURSOR WITHOUT HOLD FOR
		// SUBSCRIBE per_site and FETCH FORWARD n FROM "subs" (no timeout:
		// it asks for as many rows as per_site has). It runs before the
		// subscribe step's INSERT.
		initial, _ := wantCursor(rows)
		got := o.step(t, "named cursor").of("sub")
		// No column names here: op first, then per_site's columns.
		checkRowSet(t, "FETCH FORWARD", cursorRows(t, append([]string{"op"}, relPerSite.colNames()...), got), initial)
	})
}

// TestClientSQLAlchemy runs testdata/clients/python/sqlalchemy_client.py:
// the Inspector (table, view and column names, types, keys) and Table
// reflection with a select().
func TestClientSQLAlchemy(t *testing.T) {
	python := requirePython(t, "sqlalchemy", "python3-sqlalchemy")
	requirePython(t, "psycopg2", "python3-psycopg2")
	cs := startClientServer(t, true)
	dir := clientsDir(t, "python")
	o := runClient(t, dir, cs.env(), python, filepath.Join(dir, "sqlalchemy_client.py"))

	t.Run("connect", func(t *testing.T) { o.step(t, "connect") })
	t.Run("get_table_names", func(t *testing.T) {
		if got, want := names(o.step(t, "get_table_names").of("table")), relNames(clientTables...); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("get_view_names", func(t *testing.T) {
		s := o.step(t, "get_view_names")
		want := relNames(clientCQs...)
		if got := names(s.of("view")); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("get_view_names() = %v, want %v", got, want)
		}
		if got := names(s.of("matview")); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("get_view_names(include=('materialized',)) = %v, want %v", got, want)
		}
	})
	t.Run("get_schema_names", func(t *testing.T) {
		if got := names(o.step(t, "get_schema_names").of("schema")); !contains(got, "public") {
			t.Errorf("got %v, want public among them", got)
		}
	})
	for _, r := range clientRels {
		t.Run("get_columns "+r.name, func(t *testing.T) {
			var want [][]string
			for _, c := range r.cols {
				nullable := "True"
				if contains(r.pk, c.name) {
					nullable = "False"
				}
				want = append(want, []string{r.name, c.name, c.typ.sqla, nullable})
			}
			checkRows(t, r.name, o.step(t, "get_columns "+r.name).of("column"), want)
		})
	}
	t.Run("get_pk_constraint", func(t *testing.T) {
		checkRows(t, "sites", o.step(t, "get_pk_constraint sites").of("pk"), [][]string{{"sites", strings.Join(relSites.pk, ",")}})
	})
	t.Run("has_table", func(t *testing.T) {
		checkRows(t, "has_table", o.step(t, "has_table").of("has"),
			[][]string{{"readings", "True"}, {"per_site", "True"}, {"nosuch", "False"}})
	})
	t.Run("reflect and select", func(t *testing.T) {
		s := o.step(t, "reflect and select")
		checkRows(t, "reflected", s.of("reflected"),
			[][]string{{strings.Join(relPerSite.colNames(), ",")}, {strings.Join(relSites.colNames(), ",")}})
		checkRows(t, "per_site", s.of("row"), perSiteValues(perSite(cs.rows)))
		var want [][]string
		for _, s := range clientSites {
			if s[1] == "eu" {
				want = append(want, []string{s[0], s[2]})
			}
		}
		checkRowSet(t, "sites", s.of("site"), want)
	})
}

// ---------------------------------------------------------------- node

// requireNodePg returns node and the node_modules directory holding pg
// (scripts/test-deps.sh installs it under $(go env GOCACHE)/spate-npm, or
// $SPATE_NPM_DIR); it skips the test (fails it under CI) when missing.
func requireNodePg(t *testing.T) (node, modules string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		sqltest.Missing(t, "node not found (apt: nodejs; run scripts/test-deps.sh)")
	}
	dir := os.Getenv("SPATE_NPM_DIR")
	if dir == "" {
		out, err := exec.Command("go", "env", "GOCACHE").Output()
		if err != nil {
			t.Fatalf("go env GOCACHE: %v", err)
		}
		dir = filepath.Join(strings.TrimSpace(string(out)), "spate-npm")
	}
	modules = filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "pg", "package.json")); err != nil {
		sqltest.Missing(t, "the npm package pg is not installed in %s (run scripts/test-deps.sh)", dir)
	}
	return node, modules
}

// TestClientNode runs testdata/clients/node/client.js with node-postgres:
// catalog queries and queries with parameters (unnamed and named
// statements), the JavaScript types of the results, and a SUBSCRIBE
// cursor.
func TestClientNode(t *testing.T) {
	node, modules := requireNodePg(t)
	cs := startClientServer(t, true)
	dir := clientsDir(t, "node")
	o := runClient(t, dir, append(cs.env(), "NODE_PATH="+modules), node, filepath.Join(dir, "client.js"))

	t.Run("connect", func(t *testing.T) { o.step(t, "connect") })
	t.Run("relations", func(t *testing.T) {
		var got [][]string
		for _, r := range o.step(t, "relations").of("rel") {
			if contains(relNames(clientRels...), r[0]) {
				got = append(got, r)
			}
		}
		var want [][]string
		for _, r := range clientRels {
			want = append(want, []string{r.name, r.relkind()})
		}
		checkRowSet(t, "relations", got, want)
	})
	for _, r := range clientRels {
		t.Run("columns "+r.name, func(t *testing.T) {
			var want [][]string
			for _, c := range r.cols {
				want = append(want, []string{r.name, c.name, c.typ.pg})
			}
			checkRows(t, r.name, o.step(t, "columns "+r.name).of("column"), want)
		})
	}
	fields := columnOIDs
	jsTypes := func(r clientRel, vals [][]string) [][]string {
		return valueTypes(r, vals, "null", func(c clientType) string { return c.js })
	}
	t.Run("query with parameters", func(t *testing.T) {
		s := o.step(t, "select per_site")
		want := perSiteValues(perSite(cs.rows))
		checkRows(t, "fields", s.of("field"), fields(relPerSite))
		checkRows(t, "rows", s.of("row"), want)
		checkRows(t, "types", s.of("types"), jsTypes(relPerSite, want))
	})
	t.Run("types", func(t *testing.T) {
		s := o.step(t, "select hot")
		want := hotRows(cs.rows)
		checkRows(t, "fields", s.of("field"), fields(relHot))
		checkRows(t, "rows", s.of("row"), want)
		checkRows(t, "types", s.of("types"), jsTypes(relHot, want))
	})
	t.Run("prepared", func(t *testing.T) {
		s := o.step(t, "prepared")
		checkRows(t, "rows", s.of("row"), [][]string{perSiteOf(cs.rows, "north").values(), perSiteOf(cs.rows, "south").values()})
		checkRows(t, "inserted", s.of("inserted"), [][]string{{"1"}})
		checkRows(t, "site", s.of("site"), [][]string{{"sa", "7"}})
	})
	t.Run("subscribe cursor", func(t *testing.T) {
		checkCursor(t, o.step(t, "subscribe"), "col", cs.rows)
	})
}

// columnOIDs lists r's columns with their type OIDs, as a driver's result
// description gives them.
func columnOIDs(r clientRel) [][]string {
	return r.columnsAs(func(c clientType) string { return strconv.Itoa(int(c.oid)) })
}

// valueTypes is, for each row of r's values (\N for NULL), the type a
// driver gives each value: null for a NULL, else name(the column's type).
func valueTypes(r clientRel, vals [][]string, null string, name func(clientType) string) [][]string {
	var out [][]string
	for _, v := range vals {
		var row []string
		for i, c := range r.cols {
			if v[i] == `\N` {
				row = append(row, null)
			} else {
				row = append(row, name(c.typ))
			}
		}
		out = append(out, row)
	}
	return out
}
