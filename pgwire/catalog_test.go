package pgwire

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestPgxCatalogQueries runs catalog queries through pgx's extended
// protocol, in binary and text result formats, with a parameter: the
// columns Describe reports must be the ones the rows come in.
func TestPgxCatalogQueries(t *testing.T) {
	ts := startServer(t, Config{})
	conn := ts.connect(t)
	ctx := testCtx(t)
	var name string
	var natts int32
	var oid uint32
	var visible bool
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeDescribeExec} {
		err := conn.QueryRow(ctx, `SELECT c.relname, c.relnatts, c.oid, pg_catalog.pg_table_is_visible(c.oid)
			FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relname = $1 AND n.nspname = 'pg_catalog'`, mode, "pg_namespace").Scan(&name, &natts, &oid, &visible)
		if err != nil {
			t.Fatalf("mode %v: %v", mode, err)
		}
		if name != "pg_namespace" || natts != 4 || oid == 0 || !visible {
			t.Errorf("mode %v: got %q %d %d %v", mode, name, natts, oid, visible)
		}
	}
	// An array parameter (binary text[]) compared with ANY.
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_catalog.pg_class WHERE relname = ANY($1)", []string{"pg_class", "pg_type", `no "such", {name}`}).Scan(&n); err != nil || n != 2 {
		t.Errorf("relname = ANY($1): %d, %v", n, err)
	}
	var version, schema string
	if err := conn.QueryRow(ctx, "SELECT version(), current_schema()").Scan(&version, &schema); err != nil {
		t.Fatal(err)
	}
	if schema != "public" || len(version) < 14 || version[:14] != "PostgreSQL 15." {
		t.Errorf("version() %q, current_schema() %q", version, schema)
	}
	// A broken catalog query is an error with a SQLSTATE, and the
	// connection goes on.
	if _, err := conn.Exec(ctx, "SELECT nosuchcolumn FROM pg_catalog.pg_class"); sqlState(err) != "42703" {
		t.Errorf("unknown column: %v", err)
	}
	ts.checkAlive(t)
}

// TestStatActivity checks pg_stat_activity, pg_backend_pid and
// pg_terminate_backend across two real connections.
func TestStatActivity(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := testCtx(t)
	a := ts.connect(t)
	cfg, err := pgx.ParseConfig(ts.url())
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = "bee"
	b, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	var bPID int32
	if err := b.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&bPID); err != nil || bPID == 0 || uint32(bPID) != b.PgConn().PID() {
		t.Fatalf("pg_backend_pid() %d (%v), protocol pid %d", bPID, err, b.PgConn().PID())
	}
	rows, err := a.Query(ctx, "SELECT pid, application_name, state, query, backend_start IS NOT NULL FROM pg_stat_activity ORDER BY pid")
	if err != nil {
		t.Fatal(err)
	}
	got := map[int32]string{}
	for rows.Next() {
		var pid int32
		var app, state, query string
		var started bool
		if err := rows.Scan(&pid, &app, &state, &query, &started); err != nil {
			t.Fatal(err)
		}
		got[pid] = fmt.Sprintf("%s|%s|%s|%v", app, state, query, started)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := "bee|idle|SELECT pg_backend_pid()|true"; got[bPID] != want {
		t.Errorf("b's row %q, want %q", got[bPID], want)
	}
	if own := got[int32(a.PgConn().PID())]; !strings.Contains(own, "|active|SELECT pid, application_name") {
		t.Errorf("a's own row %q", own)
	}
	var ok bool
	if err := a.QueryRow(ctx, "SELECT pg_cancel_backend(123456789)").Scan(&ok); err != nil || ok {
		t.Errorf("cancel of no session: %v %v", ok, err)
	}
	if err := a.QueryRow(ctx, "SELECT pg_terminate_backend($1)", bPID).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate: %v %v", ok, err)
	}
	if _, err := b.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("a terminated session still answers")
	}
	ts.checkAlive(t)
}
