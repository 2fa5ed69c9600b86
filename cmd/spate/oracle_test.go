package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spatedb/spate/internal/sqltest"
)

// The oracle compares Spate's continuous queries with PostgreSQL running
// the equivalent batch query over the same rows. The rows arrive with
// bounded disorder (less than the watermark delay, so no row is late);
// after loading, one row far in the future, sent to Spate only, closes
// every window.

const (
	oracleSeed     = 20260101
	oracleDelay    = 30 // watermark_delay in seconds
	oracleDisorder = 20 // an event time trails the newest one by at most this many seconds
	oracleStart    = 1000
)

// oracleEpoch is the TIMESTAMP of t = 0 in the timestamp stream.
var oracleEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// oracleRow is one generated event.
type oracleRow struct {
	sym   string
	grp   *int64
	price *float64
	qty   *int64
	uid   *int64
	t     int64 // seconds
	us    int64 // microseconds within the second, for the TIMESTAMP stream
}

func (r oracleRow) ts() time.Time {
	return oracleEpoch.Add(time.Duration(r.t)*time.Second + time.Duration(r.us)*time.Microsecond)
}

// genOracleRows generates n rows: 40 keys with a Zipf skew (two of them
// need CSV quoting), value columns that are sometimes NULL, and event
// times that grow by 0–2 s per row minus a disorder of up to 20 s.
func genOracleRows(n int) []oracleRow {
	rng := rand.New(rand.NewSource(oracleSeed))
	zipf := rand.NewZipf(rng, 1.2, 1, 39)
	syms := make([]string, 40)
	for i := range syms {
		syms[i] = fmt.Sprintf("s%02d", i)
	}
	syms[7] = "x,y"
	syms[11] = `say "hi"`
	maybe := func(pNull float64) bool { return rng.Float64() >= pNull }
	rows := make([]oracleRow, n)
	base := int64(oracleStart)
	for i := range rows {
		base += rng.Int63n(3)
		r := oracleRow{sym: syms[zipf.Uint64()], t: base - rng.Int63n(oracleDisorder+1), us: rng.Int63n(1000) * 1000}
		if maybe(0.05) {
			g := rng.Int63n(5)
			r.grp = &g
		}
		if maybe(0.05) {
			p := float64(rng.Int63n(100000)+1) / 100
			r.price = &p
		}
		if maybe(0.05) {
			q := rng.Int63n(100) + 1
			r.qty = &q
		}
		if maybe(0.1) {
			u := rng.Int63n(200)
			r.uid = &u
		}
		rows[i] = r
	}
	return rows
}

func optInt(p *int64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(*p, 10)
}

func optFloat(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'f', -1, 64)
}

const tsLayout = "2006-01-02 15:04:05.999999"

// oracleCSV renders rows as CSV (an empty unquoted field is NULL). The
// columns are sym, grp, price, qty, uid and then, as asked, t (seconds),
// ts (a timestamp) and the row number id.
func oracleCSV(rows []oracleRow, withT, withTS, withID bool) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	for i, r := range rows {
		rec := []string{r.sym, optInt(r.grp), optFloat(r.price), optInt(r.qty), optInt(r.uid)}
		if withT {
			rec = append(rec, strconv.FormatInt(r.t, 10))
		}
		if withTS {
			rec = append(rec, r.ts().Format(tsLayout))
		}
		if withID {
			rec = append(rec, strconv.Itoa(i))
		}
		if err := w.Write(rec); err != nil {
			panic(err)
		}
	}
	w.Flush()
	return b.Bytes()
}

// oraclePair is a continuous query and the PostgreSQL query that computes
// its closed windows (or its current rows) from the table ev.
type oraclePair struct {
	name  string
	types string // one letter per column, as in the logic scripts
	keys  int    // the first keys columns identify a row
	cq    string // the SELECT of CREATE CONTINUOUS QUERY
	order string // ORDER BY of the SELECT from the continuous query
	pg    string // the PostgreSQL query, with the same ORDER BY
	// updating is true for results without a window; they are compared
	// before the final row is sent.
	updating bool
}

// floorTo is the SQL (PostgreSQL) for x rounded down to a multiple of n.
func floorTo(x string, n int64) string {
	return fmt.Sprintf("(floor(%s::numeric / %d)::bigint * %d)", x, n, n)
}

// hopStarts is a PostgreSQL FROM item yielding w, the start of every hop
// window (slide, size) that contains x: w is a multiple of slide and
// w <= x < w + size.
func hopStarts(x string, slide, size int64) string {
	return fmt.Sprintf("CROSS JOIN LATERAL (SELECT g * %d AS w FROM generate_series(floor((%s - %d)::numeric / %d)::bigint + 1, floor(%s::numeric / %d)::bigint) AS g) AS hop",
		slide, x, size, slide, x, slide)
}

// sessions is a PostgreSQL query over ev (filtered by where) that numbers
// the sessions of each key: a row starts a new session unless it follows
// the previous row of its key by less than gap. It yields every column of
// ev plus sid.
func sessions(key, timeCol, gap, where string) string {
	return fmt.Sprintf(`(SELECT *, SUM(brk) OVER (PARTITION BY %[1]s ORDER BY %[2]s, id ROWS UNBOUNDED PRECEDING) AS sid
  FROM (SELECT *, CASE WHEN %[2]s - lag(%[2]s) OVER (PARTITION BY %[1]s ORDER BY %[2]s, id) < %[3]s THEN 0 ELSE 1 END AS brk
        FROM ev WHERE %[4]s) AS marked) AS sess`, key, timeCol, gap, where)
}

func oraclePairs() []oraclePair {
	w60, w30, w120, w10 := floorTo("t", 60), floorTo("t", 30), floorTo("t", 120), floorTo("t", 10)
	tsUS := "(extract(epoch FROM ts) * 1000000)::bigint"
	return []oraclePair{
		{
			name: "tumble_sym", types: "TIIIIIIRRR", keys: 2,
			cq: `SELECT sym, window_start, window_end, COUNT(*) AS n, COUNT(qty) AS nq, COUNT(DISTINCT uid) AS du,
			       SUM(qty) AS sq, AVG(price) AS ap, MIN(price) AS lo, MAX(price) AS hi
			     FROM ev_s GROUP BY sym, TUMBLE(t, INTERVAL '1' MINUTE)`,
			order: "window_start, sym",
			pg: `SELECT sym, ` + w60 + ` AS ws, ` + w60 + ` + 60, COUNT(*), COUNT(qty), COUNT(DISTINCT uid),
			       SUM(qty), AVG(price), MIN(price), MAX(price)
			     FROM ev GROUP BY sym, ws ORDER BY ws, sym`,
		},
		{
			name: "tumble_grp_where_having", types: "IIRII", keys: 2,
			cq: `SELECT grp, window_start, SUM(qty * price) AS notional, COUNT(*) AS n, MAX(qty) AS mq
			     FROM ev_s WHERE price > 100 AND qty IS NOT NULL
			     GROUP BY grp, TUMBLE(t, INTERVAL '30' SECOND) HAVING COUNT(*) > 3`,
			order: "window_start, grp",
			pg: `SELECT grp, ` + w30 + ` AS ws, SUM(qty * price), COUNT(*), MAX(qty)
			     FROM ev WHERE price > 100 AND qty IS NOT NULL
			     GROUP BY grp, ws HAVING COUNT(*) > 3 ORDER BY ws, grp`,
		},
		{
			name: "tumble_expressions", types: "TIIIRIRI", keys: 3,
			cq: `SELECT upper(substr(sym, 1, 2)) AS prefix, qty % 3 AS m, window_start, window_end,
			       MAX(price) - MIN(price) AS spread, SUM(qty) * 2 AS dbl, AVG(qty) AS aq, COUNT(*) + 1 AS n1
			     FROM ev_s GROUP BY upper(substr(sym, 1, 2)), qty % 3, TUMBLE(t, INTERVAL '2' MINUTE)`,
			order: "window_start, prefix, m",
			pg: `SELECT upper(substr(sym, 1, 2)) AS prefix, qty % 3 AS m, ` + w120 + ` AS ws, ` + w120 + ` + 120,
			       MAX(price) - MIN(price), SUM(qty) * 2, AVG(qty), COUNT(*) + 1
			     FROM ev GROUP BY 1, 2, 3 ORDER BY ws, prefix, m`,
		},
		{
			name: "tumble_global", types: "IIIRII", keys: 1,
			cq: `SELECT window_start, window_end, COUNT(*) AS n, SUM(price) AS sp, COUNT(DISTINCT sym) AS syms, MIN(t) AS first_t
			     FROM ev_s GROUP BY TUMBLE(t, INTERVAL '10' SECOND)`,
			order: "window_start",
			pg: `SELECT ` + w10 + ` AS ws, ` + w10 + ` + 10, COUNT(*), SUM(price), COUNT(DISTINCT sym), MIN(t)
			     FROM ev GROUP BY ws ORDER BY ws`,
		},
		{
			name: "hop_sym", types: "TIIIIII", keys: 2,
			cq: `SELECT sym, window_start, window_end, COUNT(*) AS n, SUM(qty) AS sq, MIN(uid) AS lo, MAX(uid) AS hi
			     FROM ev_s GROUP BY sym, HOP(t, INTERVAL '30' SECOND, INTERVAL '2' MINUTE)`,
			order: "window_start, sym",
			pg: `SELECT sym, w, w + 120, COUNT(*), SUM(qty), MIN(uid), MAX(uid)
			     FROM ev ` + hopStarts("t", 30, 120) + ` GROUP BY sym, w ORDER BY w, sym`,
		},
		{
			name: "hop_grp_where_having", types: "IIIIR", keys: 2,
			cq: `SELECT grp, window_start, window_end, COUNT(DISTINCT uid) AS du, AVG(price) AS ap
			     FROM ev_s WHERE uid IS NOT NULL
			     GROUP BY grp, HOP(t, INTERVAL '20' SECOND, INTERVAL '1' MINUTE) HAVING COUNT(DISTINCT uid) >= 2`,
			order: "window_start, grp",
			pg: `SELECT grp, w, w + 60, COUNT(DISTINCT uid), AVG(price)
			     FROM ev ` + hopStarts("t", 20, 60) + ` WHERE uid IS NOT NULL
			     GROUP BY grp, w HAVING COUNT(DISTINCT uid) >= 2 ORDER BY w, grp`,
		},
		{
			name: "session_sym", types: "TIIIIRI", keys: 2,
			cq: `SELECT sym, window_start, window_end, COUNT(*) AS n, SUM(qty) AS sq, MAX(price) AS hi, COUNT(DISTINCT grp) AS dg
			     FROM ev_s GROUP BY sym, SESSION(t, INTERVAL '10' SECOND)`,
			order: "window_start, sym",
			pg: `SELECT sym, MIN(t) AS ws, MAX(t) + 10, COUNT(*), SUM(qty), MAX(price), COUNT(DISTINCT grp)
			     FROM ` + sessions("sym", "t", "10", "true") + ` GROUP BY sym, sid ORDER BY ws, sym`,
		},
		{
			name: "session_grp_where", types: "IIIIR", keys: 2,
			cq: `SELECT grp, window_start, window_end, COUNT(*) AS n, AVG(price) AS ap
			     FROM ev_s WHERE qty > 90 GROUP BY grp, SESSION(t, INTERVAL '30' SECOND)`,
			order: "window_start, grp",
			pg: `SELECT grp, MIN(t) AS ws, MAX(t) + 30, COUNT(*), AVG(price)
			     FROM ` + sessions("grp", "t", "30", "qty > 90") + ` GROUP BY grp, sid ORDER BY ws, grp`,
		},
		{
			name: "ts_tumble_sym", types: "TTTIIR", keys: 2,
			cq: `SELECT sym, window_start, window_end, COUNT(*) AS n, SUM(qty) AS sq, AVG(price) AS ap
			     FROM ev_ts GROUP BY sym, TUMBLE(ts, INTERVAL '1' MINUTE)`,
			order: "window_start, sym",
			pg: `SELECT sym, date_trunc('minute', ts) AS ws, date_trunc('minute', ts) + INTERVAL '1 minute', COUNT(*), SUM(qty), AVG(price)
			     FROM ev GROUP BY sym, ws ORDER BY ws, sym`,
		},
		{
			name: "ts_hop_global", types: "TTIRI", keys: 1,
			cq: `SELECT window_start, window_end, COUNT(*) AS n, MAX(price) AS hi, COUNT(DISTINCT grp) AS dg
			     FROM ev_ts GROUP BY HOP(ts, INTERVAL '15' SECOND, INTERVAL '45' SECOND)`,
			order: "window_start",
			pg: `SELECT TIMESTAMP 'epoch' + w * INTERVAL '1 microsecond' AS ws, TIMESTAMP 'epoch' + w * INTERVAL '1 microsecond' + INTERVAL '45 seconds',
			       COUNT(*), MAX(price), COUNT(DISTINCT grp)
			     FROM ev ` + hopStarts(tsUS, 15000000, 45000000) + ` GROUP BY w ORDER BY w`,
		},
		{
			name: "ts_session_sym", types: "TTTIR", keys: 2,
			cq: `SELECT sym, window_start, window_end, COUNT(*) AS n, MIN(price) AS lo
			     FROM ev_ts WHERE grp = 1 GROUP BY sym, SESSION(ts, INTERVAL '3 seconds')`,
			order: "window_start, sym",
			pg: `SELECT sym, MIN(ts) AS ws, MAX(ts) + INTERVAL '3 seconds', COUNT(*), MIN(price)
			     FROM ` + sessions("sym", "ts", "INTERVAL '3 seconds'", "grp = 1") + ` GROUP BY sym, sid ORDER BY ws, sym`,
		},
		{
			name: "updating_sym", types: "TIIIRRR", keys: 1, updating: true,
			cq: `SELECT sym, COUNT(*) AS n, COUNT(DISTINCT uid) AS du, SUM(qty) AS sq, MIN(price) AS lo, MAX(price) AS hi, AVG(qty) AS aq
			     FROM ev_s GROUP BY sym`,
			order: "sym",
			pg: `SELECT sym, COUNT(*), COUNT(DISTINCT uid), SUM(qty), MIN(price), MAX(price), AVG(qty)
			     FROM ev GROUP BY sym ORDER BY sym`,
		},
		{
			name: "updating_expr_having", types: "IBIR", keys: 2, updating: true,
			cq: `SELECT grp, qty > 50 AS big, COUNT(*) AS n, SUM(price) AS sp
			     FROM ev_s WHERE price IS NOT NULL GROUP BY grp, qty > 50 HAVING COUNT(*) > 10`,
			order: "grp, big",
			pg: `SELECT grp, qty > 50 AS big, COUNT(*), SUM(price)
			     FROM ev WHERE price IS NOT NULL GROUP BY grp, qty > 50 HAVING COUNT(*) > 10 ORDER BY grp, big`,
		},
		{
			name: "updating_global", types: "IIIRIII", keys: 0, updating: true,
			cq: `SELECT COUNT(*) AS n, COUNT(qty) AS nq, SUM(qty) AS sq, AVG(price) AS ap, MIN(t) AS t0, MAX(t) AS t1, COUNT(DISTINCT sym) AS syms
			     FROM ev_s`,
			order: "n",
			pg:    `SELECT COUNT(*), COUNT(qty), SUM(qty), AVG(price), MIN(t), MAX(t), COUNT(DISTINCT sym) FROM ev`,
		},
		{
			name: "updating_ts_hour", types: "TIR", keys: 1, updating: true,
			cq: `SELECT date_trunc('hour', ts) AS hour, COUNT(*) AS n, MAX(price) AS hi
			     FROM ev_ts GROUP BY date_trunc('hour', ts)`,
			order: "hour",
			pg: `SELECT date_trunc('hour', ts) AS hour, COUNT(*), MAX(price)
			     FROM ev GROUP BY 1 ORDER BY 1`,
		},
	}
}

// oracleParallelism lists the parallelism every continuous query is
// created with; the results must not depend on it.
var oracleParallelism = []int{1, 3}

func TestOracleWindows(t *testing.T) { forEachMode(t, oracleWindows) }

func oracleWindows(t *testing.T, serverArgs []string) {
	n := 20000
	if testing.Short() {
		n = 3000
	}
	rows := genOracleRows(n)
	pg := sqltest.StartPostgres(t)
	srv := sqltest.StartSpate(t, serverArgs...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sp := connectPg(t, srv.ConnString())
	pgc := connectPg(t, pg.ConnString())

	// PostgreSQL: one table with both time columns and a row number.
	mustExec(t, pgc, `CREATE TABLE ev (sym TEXT, grp INT, price DOUBLE PRECISION, qty INT, uid INT, t BIGINT, ts TIMESTAMP, id INT)`)
	if _, err := pgc.CopyFrom(ctx, bytes.NewReader(oracleCSV(rows, true, true, true)), "COPY ev FROM STDIN WITH (FORMAT csv)"); err != nil {
		t.Fatalf("COPY into PostgreSQL: %v", err)
	}

	// Spate: two streams and every continuous query, before any row.
	mustExec(t, sp, fmt.Sprintf(`CREATE STREAM ev_s (sym TEXT, grp INT, price DOUBLE PRECISION, qty INT, uid INT, t BIGINT)
		WITH (event_time = 't', time_unit = 's', watermark_delay = '%ds')`, oracleDelay))
	mustExec(t, sp, fmt.Sprintf(`CREATE STREAM ev_ts (sym TEXT, grp INT, price DOUBLE PRECISION, qty INT, uid INT, ts TIMESTAMP)
		WITH (event_time = 'ts', watermark_delay = '%d seconds')`, oracleDelay))
	pairs := oraclePairs()
	for _, p := range oracleParallelism {
		mustExec(t, sp, fmt.Sprintf("SET parallelism = %d", p))
		for _, pair := range pairs {
			mustExec(t, sp, fmt.Sprintf("CREATE CONTINUOUS QUERY %s_p%d AS %s", pair.name, p, pair.cq))
		}
	}

	// Load in a few COPYs, as a client streaming data would.
	const chunks = 4
	for c := 0; c < chunks; c++ {
		part := rows[c*len(rows)/chunks : (c+1)*len(rows)/chunks]
		for _, target := range []struct {
			stream    string
			withT, ts bool
		}{{"ev_s", true, false}, {"ev_ts", false, true}} {
			tag, err := sp.CopyFrom(ctx, bytes.NewReader(oracleCSV(part, target.withT, target.ts, false)), "COPY "+target.stream+" FROM STDIN WITH (FORMAT csv)")
			if err != nil {
				t.Fatalf("COPY into %s: %v", target.stream, err)
			}
			if tag.RowsAffected() != int64(len(part)) {
				t.Errorf("COPY into %s: %q, want %d rows", target.stream, tag, len(part))
			}
		}
	}

	// No row was late: the disorder is smaller than the watermark delay.
	streams, err := sqltest.QueryText(ctx, sp, "SHOW STREAMS")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range streams {
		if s[4] != strconv.Itoa(n) || s[5] != "0" {
			t.Errorf("SHOW STREAMS: %s has rows_in %s, late_rows %s; want %d, 0", s[0], s[4], s[5], n)
		}
	}

	compare := func(pair oraclePair) {
		want, err := sqltest.QueryText(ctx, pgc, pair.pg)
		if err != nil {
			t.Errorf("%s: PostgreSQL: %v\n%s", pair.name, err, pair.pg)
			return
		}
		if len(want) == 0 {
			t.Errorf("%s: PostgreSQL returned no rows; the test data does not exercise the query", pair.name)
		}
		for _, p := range oracleParallelism {
			name := fmt.Sprintf("%s_p%d", pair.name, p)
			got, err := sqltest.QueryText(ctx, sp, fmt.Sprintf("SELECT * FROM %s ORDER BY %s", name, pair.order))
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if diff := diffResults(pair, got, want); diff != "" {
				t.Errorf("%s differs from PostgreSQL (%d rows from Spate, %d from PostgreSQL):\n%s\ncontinuous query: %s\nPostgreSQL: %s",
					name, len(got), len(want), diff, pair.cq, pair.pg)
			} else {
				t.Logf("%s: %d rows, as in PostgreSQL", name, len(got))
			}
		}
	}

	// Updating results are current now.
	for _, pair := range pairs {
		if pair.updating {
			compare(pair)
		}
	}

	// One row far in the future, to Spate only, closes every window.
	last := rows[len(rows)-1].t
	for _, r := range rows {
		last = max(last, r.t)
	}
	final := oracleRow{sym: "~final", t: last + 1000000}
	mustExec(t, sp, fmt.Sprintf("INSERT INTO ev_s VALUES ('%s', NULL, NULL, NULL, NULL, %d)", final.sym, final.t))
	mustExec(t, sp, fmt.Sprintf("INSERT INTO ev_ts VALUES ('%s', NULL, NULL, NULL, NULL, '%s')", final.sym, final.ts().Format(tsLayout)))
	for _, pair := range pairs {
		if !pair.updating {
			compare(pair)
		}
	}
}

// diffResults compares Spate's rows with PostgreSQL's: the same rows
// (matched on the key columns, floats within the tolerance) in the same
// order. It describes up to 10 differences.
func diffResults(pair oraclePair, got, want [][]string) string {
	const maxReport = 10
	var out []string
	report := func(format string, args ...any) {
		if len(out) < maxReport {
			out = append(out, fmt.Sprintf(format, args...))
		} else if len(out) == maxReport {
			out = append(out, "…")
		}
	}
	key := func(r []string) string { return strings.Join(r[:min(pair.keys, len(r))], "\x00") }
	wantByKey := map[string][]string{}
	for _, r := range want {
		wantByKey[key(r)] = r
	}
	gotKeys := map[string]bool{}
	for _, r := range got {
		k := key(r)
		if len(r) != len(pair.types) {
			report("row with %d columns, want %d: %s", len(r), len(pair.types), strings.Join(r, " | "))
			continue
		}
		if gotKeys[k] {
			report("duplicate row for key %s: %s", strings.ReplaceAll(k, "\x00", ", "), strings.Join(r, " | "))
		}
		gotKeys[k] = true
		w, ok := wantByKey[k]
		if !ok {
			report("unexpected row: %s", strings.Join(r, " | "))
			continue
		}
		for i := range r {
			if r[i] != w[i] && !(pair.types[i] == 'R' && sqltest.FloatsEqual(r[i], w[i])) {
				report("row %s:\n    spate:      %s\n    postgresql: %s", strings.ReplaceAll(k, "\x00", ", "), strings.Join(r, " | "), strings.Join(w, " | "))
				break
			}
		}
	}
	for _, w := range want {
		if !gotKeys[key(w)] {
			report("missing row: %s", strings.Join(w, " | "))
		}
	}
	if len(out) == 0 && len(got) == len(want) {
		for i := range got {
			if key(got[i]) != key(want[i]) {
				report("ORDER BY %s: row %d is %s, PostgreSQL has %s", pair.order, i+1, strings.Join(got[i], " | "), strings.Join(want[i], " | "))
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// connectPg opens a pgconn connection closed when the test ends.
func connectPg(t *testing.T, connString string) *pgconn.PgConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgconn.Connect(ctx, connString)
	if err != nil {
		t.Fatalf("connecting to %s: %v", connString, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func mustExec(t *testing.T, c *pgconn.PgConn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.Exec(ctx, sql).ReadAll(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestDiffResults(t *testing.T) {
	pair := oraclePair{types: "TIR", keys: 2, order: "k, w"}
	want := [][]string{{"a", "0", "1.5"}, {"a", "10", "2"}, {"b", "0", "NULL"}}
	for _, tc := range []struct {
		name string
		got  [][]string
		diff string // a substring of the diff; "" when equal
	}{
		{"equal", [][]string{{"a", "0", "1.5000000000001"}, {"a", "10", "2"}, {"b", "0", "NULL"}}, ""},
		{"value", [][]string{{"a", "0", "1.6"}, {"a", "10", "2"}, {"b", "0", "NULL"}}, "row a, 0:"},
		{"null", [][]string{{"a", "0", "1.5"}, {"a", "10", "2"}, {"b", "0", "0"}}, "row b, 0:"},
		{"missing", [][]string{{"a", "0", "1.5"}, {"b", "0", "NULL"}}, "missing row: a | 10 | 2"},
		{"extra", append([][]string{{"c", "0", "1"}}, want...), "unexpected row: c | 0 | 1"},
		{"duplicate", append([][]string{{"a", "0", "1.5"}}, want...), "duplicate row for key a, 0"},
		{"order", [][]string{{"a", "10", "2"}, {"a", "0", "1.5"}, {"b", "0", "NULL"}}, "ORDER BY k, w: row 1"},
		{"columns", [][]string{{"a", "0"}, {"a", "10", "2"}, {"b", "0", "NULL"}}, "row with 2 columns"},
	} {
		diff := diffResults(pair, tc.got, want)
		if (tc.diff == "") != (diff == "") || !strings.Contains(diff, tc.diff) {
			t.Errorf("%s: diff = %q, want it to contain %q", tc.name, diff, tc.diff)
		}
	}
}
