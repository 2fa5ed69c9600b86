package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/spatedb/spate/internal/sqltest"
)

// These tests read continuous queries through SQL cursors (DECLARE …
// CURSOR FOR SUBSCRIBE, FETCH, CLOSE) from pgx and psql against the real
// server, as a driver that cannot use COPY does.

// cursorConn connects pgx with its default extended protocol (Parse,
// Describe, Bind, Execute with a statement cache) and cancels a query
// whose context ends with a CancelRequest, as libpq does.
func cursorConn(t *testing.T, srv *sqltest.Server) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(srv.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 10 * time.Second}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(ctx)
	})
	return conn
}

// cursorFetch runs a FETCH and returns the first column of its rows as
// integers and its command tag.
func cursorFetch(ctx context.Context, conn *pgx.Conn, sql string, args ...any) ([]int64, string, error) {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", err
	}
	var ks []int64
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return nil, "", err
		}
		switch k := vals[0].(type) {
		case int64:
			ks = append(ks, k)
		case int32:
			ks = append(ks, int64(k))
		case string:
			n, err := strconv.ParseInt(k, 10, 64)
			if err != nil {
				return nil, "", fmt.Errorf("first column %q", k)
			}
			ks = append(ks, n)
		default:
			rows.Close()
			return nil, "", fmt.Errorf("first column is %T", vals[0])
		}
	}
	rows.Close()
	return ks, rows.CommandTag().String(), rows.Err()
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// TestCursorPgxSubscribe feeds a stream with INSERT and COPY from one
// connection while another reads the continuous query through a cursor
// in FETCHes of a few rows: every row arrives exactly once and in order.
// Then FETCH with a timeout returns nothing, a blocked FETCH is cancelled
// (57014) with the cursor still open, and errors carry their SQLSTATEs.
func TestCursorPgxSubscribe(t *testing.T) {
	srv := sqltest.StartSpate(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	feed := cursorConn(t, srv)
	conn := cursorConn(t, srv)
	mustExec := func(c *pgx.Conn, sql string, args ...any) {
		t.Helper()
		if _, err := c.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	mustExec(feed, "CREATE STREAM ev (k BIGINT, note TEXT, ts TIMESTAMP) WITH (event_time = 'ts')")
	mustExec(feed, "CREATE CONTINUOUS QUERY evs AS SELECT k, note, ts FROM ev WHERE k >= 0")

	// No BEGIN: pgx runs in auto-commit mode and the cursor stays open.
	mustExec(conn, "DECLARE c CURSOR FOR SUBSCRIBE evs")
	const n = 600
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fed := make(chan error, 1)
	go func() {
		fed <- func() error {
			k := 0
			for k < n {
				if k%100 == 50 { // every other hundred rows by COPY
					var b bytes.Buffer
					for i := 0; i < 50; i++ {
						fmt.Fprintf(&b, "%d,copied,%s\n", k, base.Add(time.Duration(k)*time.Second).Format("2006-01-02 15:04:05"))
						k++
					}
					if _, err := feed.PgConn().CopyFrom(ctx, &b, "COPY ev FROM STDIN (FORMAT csv)"); err != nil {
						return err
					}
					continue
				}
				var vals []string
				var args []any
				for i := 0; i < 10; i++ {
					vals = append(vals, fmt.Sprintf("($%d, 'inserted', $%d)", 2*i+1, 2*i+2))
					args = append(args, int64(k), base.Add(time.Duration(k)*time.Second))
					k++
				}
				if _, err := feed.Exec(ctx, "INSERT INTO ev VALUES "+strings.Join(vals, ", "), args...); err != nil {
					return err
				}
			}
			return nil
		}()
	}()
	var got []int64
	counts := []int{1, 3, 7, 2, 64}
	fetches := 0
	for i := 0; len(got) < n; i++ {
		fetches++
		want := counts[i%len(counts)]
		fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
		ks, tag, err := cursorFetch(fctx, conn, fmt.Sprintf("FETCH %d FROM c", want))
		fcancel()
		if err != nil {
			t.Fatalf("after %d rows: %v", len(got), err)
		}
		if len(ks) == 0 || len(ks) > want || tag != fmt.Sprintf("FETCH %d", len(ks)) {
			t.Fatalf("FETCH %d without a timeout returned %d rows, tag %q", want, len(ks), tag)
		}
		got = append(got, ks...)
	}
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	inOrder := sort.SliceIsSorted(got, func(i, j int) bool { return got[i] < got[j] })
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	for i, k := range got {
		if k != int64(i) {
			t.Fatalf("sorted row %d of the cursor is k = %d; want every row exactly once", i, k)
		}
	}
	if len(got) != n {
		t.Fatalf("%d rows, want %d", len(got), n)
	}
	t.Logf("%d rows in %d FETCHes, in ingest order: %v", n, fetches, inOrder)

	// The same FETCH through the simple protocol, with all the columns:
	// the cursor's columns are SUBSCRIBE's.
	mustExec(feed, "INSERT INTO ev VALUES (1000, 'last', '2026-01-02 00:00:00')")
	rows, err := conn.Query(ctx, "FETCH 5 FROM c", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range rows.FieldDescriptions() {
		names = append(names, f.Name)
	}
	var k int64
	var note string
	var ts time.Time
	for rows.Next() {
		if err := rows.Scan(&k, &note, &ts); err != nil {
			t.Fatal(err)
		}
	}
	if rows.Err() != nil || strings.Join(names, ",") != "k,note,ts" || k != 1000 || note != "last" || !ts.Equal(base.Add(24*time.Hour)) {
		t.Errorf("simple-protocol FETCH: columns %v, row %d %q %v, err %v", names, k, note, ts, rows.Err())
	}

	// Nothing new: a FETCH with a timeout returns no rows after it.
	start := time.Now()
	ks, tag, err := cursorFetch(ctx, conn, "FETCH 10 FROM c WITH (timeout = '300ms')")
	if err != nil || len(ks) != 0 || tag != "FETCH 0" {
		t.Errorf("FETCH with a timeout and no rows: %v %q %v", ks, tag, err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("FETCH with timeout 300ms returned after %v", d)
	}

	// A FETCH waiting for rows is cancelled through a CancelRequest when
	// its context ends: 57014, the connection and the cursor stay usable.
	qctx, qcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, _, err = cursorFetch(qctx, conn, "FETCH 1 FROM c")
	qcancel()
	if sqlState(err) != "57014" || !strings.Contains(err.Error(), "canceling statement due to user request") {
		t.Fatalf("cancelled FETCH: %v", err)
	}
	mustExec(feed, "INSERT INTO ev VALUES (1001, 'after cancel', '2026-01-02 00:00:01')")
	if ks, _, err := cursorFetch(ctx, conn, "FETCH ALL FROM c"); err != nil || len(ks) != 1 || ks[0] != 1001 {
		t.Fatalf("FETCH after the cancel: %v %v", ks, err)
	}

	// Errors.
	for sql, code := range map[string]string{
		"FETCH 1 FROM nope":                    "34000",
		"CLOSE nope":                           "34000",
		"DECLARE c CURSOR FOR SUBSCRIBE evs":   "42P03",
		"DECLARE d CURSOR FOR SUBSCRIBE nope":  "42P01",
		"FETCH BACKWARD 1 FROM c":              "0A000",
		"FETCH 1 FROM c WITH (timeout = 'x')":  "22007",
		"DECLARE d SCROLL CURSOR FOR SELECT 1": "0A000",
	} {
		_, err := conn.Exec(ctx, sql)
		if sqlState(err) != code {
			t.Errorf("%s: got %v, want SQLSTATE %s", sql, err, code)
		}
	}
	_, err = conn.Exec(ctx, "FETCH 1 FROM nope")
	if err == nil || !strings.Contains(err.Error(), `cursor "nope" does not exist`) {
		t.Errorf("unknown cursor: %v", err)
	}
	if tag, err := conn.Exec(ctx, "CLOSE c"); err != nil || tag.String() != "CLOSE CURSOR" {
		t.Errorf("CLOSE: %q %v", tag, err)
	}
	if _, _, err := cursorFetch(ctx, conn, "FETCH 1 FROM c"); sqlState(err) != "34000" {
		t.Errorf("FETCH after CLOSE: %v", err)
	}
}

// TestCursorPgxTransactions checks cursors inside pgx transactions (as
// psycopg2 named cursors use them): a SELECT cursor fetched in steps,
// closed by COMMIT; a WITH HOLD SUBSCRIBE cursor of an updating query,
// with its op column, survives COMMIT; and a cancelled SUBSCRIBE
// statement answers 57014 and leaves the connection usable.
func TestCursorPgxTransactions(t *testing.T) {
	srv := sqltest.StartSpate(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn := cursorConn(t, srv)
	mustExec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	mustExec("CREATE STREAM ev (k INT, v BIGINT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	mustExec("CREATE CONTINUOUS QUERY totals AS SELECT k, SUM(v) AS s FROM ev GROUP BY k")
	for k := 0; k < 10; k++ {
		mustExec("INSERT INTO ev VALUES ($1, $2, $3)", k, 10*k, k)
	}

	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `DECLARE "snap" CURSOR WITHOUT HOLD FOR SELECT k, s FROM totals WHERE k >= $1 ORDER BY k`, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "DECLARE live CURSOR WITH HOLD FOR SUBSCRIBE totals"); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for {
		rows, err := tx.Query(ctx, `FETCH FORWARD 3 FROM "snap"`)
		if err != nil {
			t.Fatal(err)
		}
		before := len(got)
		for rows.Next() {
			var k int32
			var s int64
			if err := rows.Scan(&k, &s); err != nil {
				t.Fatal(err)
			}
			if s != 10*int64(k) {
				t.Errorf("row k = %d has s = %d", k, s)
			}
			got = append(got, int64(k))
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		if len(got) == before {
			break
		}
	}
	if fmt.Sprint(got) != "[2 3 4 5 6 7 8 9]" {
		t.Errorf("SELECT cursor gave %v", got)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cursorFetch(ctx, conn, `FETCH 1 FROM "snap"`); sqlState(err) != "34000" {
		t.Errorf("a cursor without HOLD after COMMIT: %v", err)
	}
	// The held cursor starts with the current rows as + changes.
	rows, err := conn.Query(ctx, "FETCH ALL FROM live WITH (timeout = '200ms')")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var op string
		var k int32
		var s int64
		if err := rows.Scan(&op, &k, &s); err != nil || op != "+" {
			t.Fatalf("held cursor row: %q %d %d %v", op, k, s, err)
		}
		n++
	}
	if rows.Err() != nil || n != 10 {
		t.Errorf("held cursor: %d rows, %v", n, rows.Err())
	}
	mustExec("INSERT INTO ev VALUES (1, 5, 100)")
	rows, err = conn.Query(ctx, "FETCH 2 FROM live")
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for rows.Next() {
		var op string
		var k int32
		var s int64
		if err := rows.Scan(&op, &k, &s); err != nil {
			t.Fatal(err)
		}
		changes = append(changes, fmt.Sprintf("%s%d:%d", op, k, s))
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	// Both changes come in one batch; FETCH 2 without a timeout returns
	// what is ready once a row is there.
	if strings.Join(changes, " ") != "-1:10 +1:15" {
		t.Errorf("changes %v", changes)
	}
	mustExec("CLOSE ALL")

	// A running SUBSCRIBE is cancelled with 57014.
	qctx, qcancel := context.WithCancel(ctx)
	rows, err = conn.Query(qctx, "SUBSCRIBE totals")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if !rows.Next() {
			t.Fatalf("SUBSCRIBE row %d: %v", i, rows.Err())
		}
	}
	qcancel()
	for rows.Next() {
	}
	if err := rows.Err(); sqlState(err) != "57014" {
		t.Fatalf("cancelled SUBSCRIBE: %v", err)
	}
	var one int32
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("connection after the cancel: %v", err)
	}
}

// TestCursorPsql drives cursors from psql: FETCH_COUNT (psql's own
// DECLARE/FETCH/CLOSE inside BEGIN … COMMIT), a script reading a
// SUBSCRIBE cursor, and Ctrl-C of a blocked FETCH, after which the same
// session reads the cursor again.
func TestCursorPsql(t *testing.T) {
	psql := sqltest.RequireBinary(t, "psql")
	srv := sqltest.StartSpate(t)
	conn := srv.ConnString()
	mustPsql(t, psql, conn, "-c", "CREATE STREAM ev (k INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	mustPsql(t, psql, conn, "-c", "CREATE CONTINUOUS QUERY evs AS SELECT k, t FROM ev")
	var vals []string
	for k := 0; k < 25; k++ {
		vals = append(vals, fmt.Sprintf("(%d, %d)", k, k))
	}
	mustPsql(t, psql, conn, "-c", "INSERT INTO ev VALUES "+strings.Join(vals, ", "))

	// FETCH_COUNT makes psql read a SELECT through a cursor, 4 rows a time.
	out := mustPsql(t, psql, conn, "-A", "-t", "-v", "FETCH_COUNT=4", "-c", "SELECT k FROM evs ORDER BY k")
	var want []string
	for k := 0; k < 25; k++ {
		want = append(want, strconv.Itoa(k))
	}
	if strings.Join(strings.Fields(out), ",") != strings.Join(want, ",") {
		t.Errorf("psql with FETCH_COUNT printed %q", out)
	}

	// A script: the cursor closes at COMMIT.
	res := runPsql(t, psql, conn, "-A", "-t", "-c", `BEGIN;
DECLARE c CURSOR FOR SUBSCRIBE evs;
COMMIT;
FETCH 1 FROM c`)
	if !strings.Contains(res.stderr, `ERROR:  34000: cursor "c" does not exist`) {
		t.Errorf("FETCH after COMMIT: %q", res.stderr)
	}
	out = mustPsql(t, psql, conn, "-q", "-A", "-t", "-c", "DECLARE c CURSOR FOR SUBSCRIBE evs", "-c", "INSERT INTO ev VALUES (101, 101), (102, 102), (103, 103)",
		"-c", "FETCH 2 FROM c", "-c", "FETCH ALL FROM c WITH (timeout = '200ms')", "-c", "FETCH 1 FROM c WITH (timeout = '0s')", "-c", "CLOSE c")
	if got := strings.Fields(out); strings.Join(got, " ") != "101|101 102|102 103|103" {
		t.Errorf("psql cursor script printed %q", out)
	}

	// Ctrl-C of a FETCH waiting for rows: psql sends a CancelRequest; the
	// next command of the same session reads the cursor. (MOVE, because
	// psql prints no more rows once Ctrl-C was pressed; it does print
	// command tags.)
	cmd := exec.Command(psql, "-X", "-A", "-t", "-v", "VERBOSITY=verbose", "-d", conn,
		"-c", "DECLARE w CURSOR FOR SUBSCRIBE evs", "-c", "FETCH 1 FROM w", "-c", "MOVE 1 FROM w")
	var stdout bytes.Buffer
	stderr := &sqltest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
		}
	}()
	waitFor(t, 30*time.Second, "the cursor's subscription", func() bool {
		return strings.TrimSpace(mustPsql(t, psql, conn, "-A", "-t", "-c", "SELECT subscribers FROM spate_continuous_queries WHERE name = 'evs'")) == "1"
	})
	// The FETCH may not have started when the signal comes: signal until
	// psql reports the cancellation.
	waitFor(t, 30*time.Second, "psql to report the cancel", func() bool {
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		time.Sleep(700 * time.Millisecond)
		return strings.Contains(stderr.String(), "canceling statement due to user request")
	})
	if !strings.Contains(stderr.String(), "57014") {
		t.Errorf("psql stderr %q, want SQLSTATE 57014", stderr.String())
	}
	mustPsql(t, psql, conn, "-c", "INSERT INTO ev VALUES (200, 200)")
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("psql's second FETCH did not return (stderr %q)", stderr.String())
	}
	if got := strings.Fields(stdout.String()); strings.Join(got, " ") != "DECLARE CURSOR MOVE 1" {
		t.Errorf("MOVE after the cancel: psql printed %q (stderr %q)", stdout.String(), stderr.String())
	}
}

// TestCursorPgxBinaryAndDisconnect checks a BINARY cursor through the
// simple protocol (binary DataRows, as PostgreSQL sends them) and that a
// client that goes away during a waiting FETCH releases its cursor's
// subscription.
func TestCursorPgxBinaryAndDisconnect(t *testing.T) {
	srv := sqltest.StartSpate(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := cursorConn(t, srv)
	for _, sql := range []string{
		"CREATE STREAM ev (k BIGINT, t BIGINT) WITH (event_time = 't', time_unit = 's')",
		"CREATE CONTINUOUS QUERY evs AS SELECT k, t FROM ev",
		"INSERT INTO ev VALUES (258, 1)",
		"DECLARE b BINARY CURSOR FOR SELECT k FROM evs",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	res, err := conn.PgConn().Exec(ctx, "FETCH 1 FROM b").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || len(res[0].FieldDescriptions) != 1 || res[0].FieldDescriptions[0].Format != 1 ||
		len(res[0].Rows) != 1 || !bytes.Equal(res[0].Rows[0][0], []byte{0, 0, 0, 0, 0, 0, 1, 2}) {
		t.Fatalf("FETCH from a BINARY cursor: %+v", res)
	}

	subscribers := func() string {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT subscribers FROM spate_continuous_queries WHERE name = 'evs'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return strconv.FormatInt(n, 10)
	}
	gone := cursorConn(t, srv)
	if _, err := gone.Exec(ctx, "DECLARE w CURSOR FOR SUBSCRIBE evs"); err != nil {
		t.Fatal(err)
	}
	fetched := make(chan error, 1)
	go func() {
		_, err := gone.Exec(context.Background(), "FETCH 1 FROM w")
		fetched <- err
	}()
	waitFor(t, 10*time.Second, "the cursor's subscription", func() bool { return subscribers() == "1" })
	time.Sleep(200 * time.Millisecond) // let the FETCH start waiting
	_ = gone.PgConn().Conn().Close()
	if err := <-fetched; err == nil {
		t.Error("the FETCH of a closed connection succeeded")
	}
	waitFor(t, 10*time.Second, "the subscription to end with the connection", func() bool { return subscribers() == "0" })
}
