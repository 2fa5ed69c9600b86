package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spatedb/spate/internal/sqltest"
)

// TestServeStartsWorkers checks that spate serve --workers 2 starts two
// worker processes that join and show as alive in SHOW WORKERS (they
// report load; instances still run in the serving process).
func TestServeStartsWorkers(t *testing.T) {
	srv := sqltest.StartSpate(t, "--workers", "2")
	conn := sqltest.Connect(t, srv.ConnString())
	ctx := context.Background()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var alive int
		if err := conn.QueryRow(ctx, "SELECT COUNT(*) FROM spate_workers WHERE status = 'alive' AND id <> 'coordinator' AND pid > 0").Scan(&alive); err != nil {
			t.Fatal(err)
		}
		if alive == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers alive after 15 s, want 2", alive)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var total int
	if err := conn.QueryRow(ctx, "SELECT COUNT(*) FROM spate_workers").Scan(&total); err != nil {
		t.Fatal(err)
	}
	if total != 3 {
		t.Errorf("spate_workers has %d rows, want the coordinator and 2 workers", total)
	}
}

// TestClusterTokenInDataDir checks that the cluster token is created in
// the data directory on first start (owner-only) and kept across restarts.
func TestClusterTokenInDataDir(t *testing.T) {
	dir := t.TempDir()
	srv := sqltest.StartSpate(t, "--data-dir", dir, "--cluster-listen", "127.0.0.1:0")
	token, err := os.ReadFile(filepath.Join(dir, "cluster-token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "cluster-token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode: %v, %v", fi.Mode(), err)
	}
	srv.Stop()
	sqltest.StartSpate(t, "--data-dir", dir)
	again, err := os.ReadFile(filepath.Join(dir, "cluster-token"))
	if err != nil || !bytes.Equal(token, again) {
		t.Errorf("the token changed across restarts: %q then %q (%v)", token, again, err)
	}
}
