package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spatedb/spate/internal/sqltest"
)

// serverModes are the two ways the end-to-end tests run a server: every
// instance in the serving process, and a cluster of three worker
// processes on loopback that run the instances. Results must be the same.
var serverModes = []struct {
	name string
	args []string
}{
	{"single", []string{"--workers", "0"}},
	{"workers3", []string{"--workers", "3"}},
}

// forEachMode runs test once per server mode, as subtests.
func forEachMode(t *testing.T, test func(t *testing.T, serverArgs []string)) {
	for _, m := range serverModes {
		t.Run(m.name, func(t *testing.T) { test(t, m.args) })
	}
}

// TestServeRunsInstancesOnWorkers is the acceptance run: spate serve
// --workers 3 shows three workers, a GROUP BY query gets one instance of
// its aggregate on each, and its results equal a single-process server's
// on the same input.
func TestServeRunsInstancesOnWorkers(t *testing.T) {
	cluster := sqltest.StartSpate(t, "--workers", "3")
	single := sqltest.StartSpate(t, "--workers", "0")
	ctx := context.Background()
	var alive int
	c := sqltest.Connect(t, cluster.ConnString())
	if err := c.QueryRow(ctx, "SELECT COUNT(*) FROM spate_workers WHERE status = 'alive' AND id <> 'coordinator' AND pid > 0").Scan(&alive); err != nil {
		t.Fatal(err)
	}
	if alive != 3 {
		t.Fatalf("%d workers alive, want 3 (spate serve waits for them before serving)", alive)
	}
	var rows bytes.Buffer
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&rows, "k%d,%d,%d\n", (i*7919)%97, i%13, i/10)
	}
	results := map[string][][]string{}
	for name, srv := range map[string]*sqltest.Server{"cluster": cluster, "single": single} {
		conn := sqltest.Connect(t, srv.ConnString())
		for _, sql := range []string{
			"CREATE STREAM ev (k TEXT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')",
			"CREATE CONTINUOUS QUERY per_key AS SELECT k, window_end, COUNT(*) AS n, SUM(v) AS total FROM ev GROUP BY k, TUMBLE(t, INTERVAL '1' MINUTE)",
		} {
			if _, err := conn.Exec(ctx, sql); err != nil {
				t.Fatalf("%s: %s: %v", name, sql, err)
			}
		}
		if _, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(rows.Bytes()), "COPY ev FROM STDIN (FORMAT csv)"); err != nil {
			t.Fatalf("%s: COPY: %v", name, err)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO ev VALUES ('end', 0, 100000)"); err != nil {
			t.Fatal(err)
		}
		got, err := sqltest.QueryText(ctx, conn.PgConn(), "SELECT k, window_end, n, total FROM per_key ORDER BY k, window_end")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		results[name] = got
	}
	if len(results["single"]) < 100 {
		t.Fatalf("only %d result rows; the input should give hundreds", len(results["single"]))
	}
	if !reflect.DeepEqual(results["cluster"], results["single"]) {
		t.Fatalf("the 3-worker cluster's result (%d rows) differs from the single process's (%d rows)", len(results["cluster"]), len(results["single"]))
	}

	// The aggregate's three instances run on the three workers, and
	// every one of them took rows.
	inst, err := sqltest.QueryText(ctx, c.PgConn(), "SELECT worker, rows_in, key_range FROM spate_instances WHERE query = 'per_key' AND stage = 1 ORDER BY instance")
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]bool{}
	for _, r := range inst {
		hosts[r[0]] = true
		if r[1] == "0" {
			t.Errorf("instance on %s (%s) took no rows", r[0], r[2])
		}
	}
	if len(inst) != 3 || !hosts["w1"] || !hosts["w2"] || !hosts["w3"] {
		t.Fatalf("aggregate instances: %v; want one on each of w1, w2, w3", inst)
	}
	src, err := sqltest.QueryText(ctx, c.PgConn(), "SELECT worker FROM spate_instances WHERE query = 'per_key' AND stage = 0")
	if err != nil || len(src) != 1 || src[0][0] != "coordinator" {
		t.Fatalf("the source stage should run on the coordinator: %v %v", src, err)
	}
}

// TestWorkerJoinsByHand starts a worker by hand on another loopback
// address, as on another machine: it joins, and the next continuous
// query places instances on it.
func TestWorkerJoinsByHand(t *testing.T) {
	dir := t.TempDir()
	srv := sqltest.StartSpate(t, "--workers", "1", "--data-dir", dir, "--cluster-listen", "127.0.0.1:0")
	token, err := os.ReadFile(filepath.Join(dir, "cluster-token"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn := sqltest.Connect(t, srv.ConnString())
	// The coordinator's control address is in its log line.
	join := regexp.MustCompile(`cluster=(127\.0\.0\.1:\d+)`).FindStringSubmatch(srv.Output())
	if join == nil {
		t.Fatalf("no cluster address in the server's log:\n%s", srv.Output())
	}
	wctx, cancel := context.WithCancel(ctx)
	var out sqltest.SyncBuffer
	worker := exec.CommandContext(wctx, sqltest.SpateBinary(t), "worker", "--join", join[1], "--listen", "127.0.0.2:0",
		"--cluster-token", strings.TrimSpace(string(token)))
	worker.Stdout, worker.Stderr = &out, &out
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = worker.Wait()
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var n int
		if err := conn.QueryRow(ctx, "SELECT COUNT(*) FROM spate_workers WHERE id = 'w2' AND status = 'alive' AND data_address LIKE '127.0.0.2:%'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hand-started worker did not join:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, sql := range []string{
		"CREATE STREAM ev (k INT, t BIGINT) WITH (event_time = 't', time_unit = 's')",
		"SET parallelism = 2",
		"CREATE CONTINUOUS QUERY c AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if _, err := conn.Exec(ctx, "INSERT INTO ev VALUES (1, 1), (2, 2), (3, 3), (4, 4)"); err != nil {
		t.Fatal(err)
	}
	hosts, err := sqltest.QueryText(ctx, conn.PgConn(), "SELECT worker FROM spate_instances WHERE query = 'c' AND stage = 1 ORDER BY worker")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(hosts) != "[[w1] [w2]]" {
		t.Fatalf("the aggregate runs on %v, want w1 and w2", hosts)
	}
	var total int
	if err := conn.QueryRow(ctx, "SELECT SUM(n) FROM c").Scan(&total); err != nil || total != 4 {
		t.Fatalf("SUM(n) = %d (%v), want 4", total, err)
	}
}

// TestWorkerWithWrongTokenRefused: a worker presenting another cluster
// token is refused, and the coordinator logs why.
func TestWorkerWithWrongTokenRefused(t *testing.T) {
	srv := sqltest.StartSpate(t, "--workers", "0")
	join := regexp.MustCompile(`cluster=(127\.0\.0\.1:\d+)`).FindStringSubmatch(srv.Output())
	if join == nil {
		t.Fatalf("no cluster address in the server's log:\n%s", srv.Output())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, sqltest.SpateBinary(t), "worker", "--join", join[1], "--cluster-token", "not-the-token").CombinedOutput()
	if err == nil {
		t.Fatalf("a worker with a wrong token exited 0:\n%s", out)
	}
	if !strings.Contains(string(out), "wrong cluster token") {
		t.Errorf("the worker's output does not say why:\n%s", out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(srv.Output(), "refused worker connection") || !strings.Contains(srv.Output(), "cluster token mismatch") {
		if time.Now().After(deadline) {
			t.Fatalf("the coordinator did not log the refusal:\n%s", srv.Output())
		}
		time.Sleep(50 * time.Millisecond)
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

// TestWorkerDeathFailsItsQueries kills a worker with SIGKILL in a server
// that does not checkpoint (--checkpoint-interval 0): the queries that
// had instances on it fail with a message naming the worker, while
// ingestion and a query running only on the coordinator carry on. (With
// checkpoints they recover instead: recovery_test.go.)
func TestWorkerDeathFailsItsQueries(t *testing.T) {
	srv := sqltest.StartSpate(t, "--workers", "2", "--checkpoint-interval", "0")
	ctx := context.Background()
	conn := sqltest.Connect(t, srv.ConnString())
	for _, sql := range []string{
		"CREATE STREAM ev (k INT, t BIGINT) WITH (event_time = 't', time_unit = 's')",
		"CREATE CONTINUOUS QUERY spread AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k",
		"CREATE CONTINUOUS QUERY local AS SELECT k, t FROM ev WHERE k > 0",
		"INSERT INTO ev VALUES (1, 1), (2, 2)",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pid FROM spate_workers WHERE id = 'w1'").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the query on the dead worker to fail", func() bool {
		var status string
		err := conn.QueryRow(ctx, "SELECT status FROM spate_continuous_queries WHERE name = 'spread'").Scan(&status)
		return err == nil && strings.HasPrefix(status, "failed: ") && strings.Contains(status, "w1")
	})
	var dead int
	if err := conn.QueryRow(ctx, "SELECT COUNT(*) FROM spate_workers WHERE id = 'w1' AND status = 'dead'").Scan(&dead); err != nil || dead != 1 {
		t.Fatalf("SHOW WORKERS does not show w1 dead: %d %v", dead, err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO ev VALUES (3, 3)"); err != nil {
		t.Fatalf("INSERT after the worker died: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT COUNT(*) FROM local").Scan(&n); err != nil || n != 3 {
		t.Fatalf("the coordinator-only query has %d rows (%v), want 3", n, err)
	}
	if _, err := conn.PgConn().CopyTo(ctx, io.Discard, "COPY (SUBSCRIBE spread) TO STDOUT"); err == nil || !strings.Contains(err.Error(), "w1") {
		t.Fatalf("SUBSCRIBE to the failed query: %v, want an error naming w1", err)
	}
	// serve starts another worker process in the dead one's place: it
	// joins as w3.
	waitFor(t, 15*time.Second, "a new worker process in w1's place", func() bool {
		var n int
		err := conn.QueryRow(ctx, "SELECT COUNT(*) FROM spate_workers WHERE id = 'w3' AND status = 'alive' AND pid <> $1", pid).Scan(&n)
		return err == nil && n == 1
	})
	// A query created now runs on the live workers.
	if _, err := conn.Exec(ctx, "CREATE CONTINUOUS QUERY again AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO ev VALUES (4, 4)"); err != nil {
		t.Fatal(err)
	}
	hosts, err := sqltest.QueryText(ctx, conn.PgConn(), "SELECT DISTINCT worker FROM spate_instances WHERE query = 'again' AND stage = 1 ORDER BY worker")
	if err != nil || fmt.Sprint(hosts) != "[[w2] [w3]]" {
		t.Fatalf("the new query runs on %v (%v), want w2 and w3", hosts, err)
	}
	if n := strings.Count(srv.Output(), "a worker process exited"); n != 1 {
		t.Errorf("the server logged %d worker exits, want 1", n)
	}
}

// TestCommandHelp: -h and --help of every command print its usage and
// exit 0; an unknown flag exits 1 with the usage.
func TestCommandHelp(t *testing.T) {
	bin := sqltest.SpateBinary(t)
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"worker", "-h"}, {"bench", "agg", "--help"}, {"gen", "lrb", "--help"}, {"validate", "lrb", "--help"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil || !strings.Contains(strings.ToLower(string(out)), "usage") {
			t.Errorf("spate %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	out, err := exec.Command(bin, "serve", "--no-such-flag").CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "flag provided but not defined: -no-such-flag") {
		t.Errorf("spate serve --no-such-flag: exit %d\n%s", code, out)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
