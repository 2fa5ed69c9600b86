package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spatedb/spate/internal/sqltest"
)

// TestPgxExtendedProtocol drives the real server with pgx's extended
// protocol: parameters in binary and text, prepared statements, QueryRow,
// typed scans, errors with SQLSTATEs, and a cancelled SUBSCRIBE.
func TestPgxExtendedProtocol(t *testing.T) {
	srv := sqltest.StartSpate(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := sqltest.Connect(t, srv.ConnString())
	mustExec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	mustExec("CREATE STREAM ev (k INT, name TEXT, v DOUBLE PRECISION, ok BOOLEAN, ts TIMESTAMP) WITH (event_time = 'ts')")
	mustExec("CREATE CONTINUOUS QUERY per_key AS SELECT k, name, COUNT(*) AS n, SUM(v) AS total, MAX(ts) AS last FROM ev WHERE ok GROUP BY k, name")
	mustExec("CREATE CONTINUOUS QUERY per_min AS SELECT k, window_start, COUNT(*) AS n FROM ev GROUP BY k, TUMBLE(ts, INTERVAL '1' MINUTE)")

	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ins, err := conn.Prepare(ctx, "ins", "INSERT INTO ev VALUES ($1, $2, $3, $4, $5)")
	if err != nil {
		t.Fatal(err)
	}
	if len(ins.ParamOIDs) != 5 || ins.ParamOIDs[0] != 23 || ins.ParamOIDs[4] != 1114 {
		t.Errorf("parameter OIDs %v, want int4 … timestamp", ins.ParamOIDs)
	}
	for i := 0; i < 30; i++ {
		mustExec("ins", i%3, []string{"a", "b", "c"}[i%3], float64(i)/2, i%5 != 0, base.Add(time.Duration(i)*10*time.Second))
	}
	// The same statement with text-format parameters (simple protocol).
	if _, err := conn.Exec(ctx, "INSERT INTO ev VALUES ($1, $2, $3, $4, $5)", pgx.QueryExecModeSimpleProtocol, 7, "z", 1.25, true, base.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}

	var n int64
	var total float64
	var last time.Time
	if err := conn.QueryRow(ctx, "SELECT n, total, last FROM per_key WHERE k = $1 AND name = $2", 1, "b").Scan(&n, &total, &last); err != nil {
		t.Fatal(err)
	}
	// k = 1 gets i = 1, 4, 7, …, 28 (10 rows); ok is false for i = 10, 25.
	var wantN int64
	var wantTotal float64
	var wantLast time.Time
	for i := 1; i < 30; i += 3 {
		if i%5 != 0 {
			wantN++
			wantTotal += float64(i) / 2
			wantLast = base.Add(time.Duration(i) * 10 * time.Second)
		}
	}
	if n != wantN || total != wantTotal || !last.Equal(wantLast) {
		t.Errorf("per_key(1, b) = %d, %v, %v; want %d, %v, %v", n, total, last, wantN, wantTotal, wantLast)
	}

	// Windows closed by the watermark: five minutes of rows, so [12:00,
	// 12:01) … [12:04, 12:05) are closed by the row at 12:10.
	rows, err := conn.Query(ctx, "SELECT k, window_start, n FROM per_min ORDER BY window_start, k")
	if err != nil {
		t.Fatal(err)
	}
	got := map[[2]int64]int64{}
	for rows.Next() {
		var k, c int64
		var ws time.Time
		if err := rows.Scan(&k, &ws, &c); err != nil {
			t.Fatal(err)
		}
		got[[2]int64{k, ws.Unix()}] = c
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	want := map[[2]int64]int64{}
	for i := 0; i < 30; i++ {
		ws := base.Add(time.Duration(i) * 10 * time.Second).Truncate(time.Minute)
		want[[2]int64{int64(i % 3), ws.Unix()}]++
	}
	if len(got) != len(want) {
		t.Errorf("per_min has %d windows, want %d: %v", len(got), len(want), got)
	}
	for k, c := range want {
		if got[k] != c {
			t.Errorf("per_min %v = %d, want %d", k, got[k], c)
		}
	}

	// Errors carry SQLSTATEs through the extended protocol.
	for sql, code := range map[string]string{
		"SELECT nope FROM per_key":         "42703",
		"SELECT * FROM missing":            "42P01",
		"SELECT k FROM per_key WHERE name": "42804",
		"SELECT 1 / (k - k) FROM per_key":  "22012",
		"SELEC 1":                          "42601",
	} {
		_, err := conn.Exec(ctx, sql)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != code {
			t.Errorf("%s: got %v, want SQLSTATE %s", sql, err, code)
		}
	}

	// SUBSCRIBE through pgx: rows arrive, and cancelling the context stops
	// the statement while the connection stays usable.
	sub := sqltest.Connect(t, srv.ConnString())
	subCtx, subCancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	first := make(chan []any, 1)
	go func() {
		rows, err := sub.Query(subCtx, "SUBSCRIBE per_key")
		if err != nil {
			done <- err
			return
		}
		for rows.Next() {
			vals, _ := rows.Values()
			select {
			case first <- vals:
			default:
			}
		}
		done <- rows.Err()
	}()
	mustExec("ins", 42, "new", 1.0, true, base.Add(11*time.Minute))
	select {
	case vals := <-first:
		if vals[0] != "+" {
			t.Errorf("first SUBSCRIBE row %v: want op +", vals)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no SUBSCRIBE row within 10s")
	}
	subCancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("SUBSCRIBE did not stop after cancel")
	}
	if err := sqltest.Connect(t, srv.ConnString()).Ping(ctx); err != nil {
		t.Fatal(err)
	}
}
