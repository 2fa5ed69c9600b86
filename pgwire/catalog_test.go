package pgwire

import (
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
