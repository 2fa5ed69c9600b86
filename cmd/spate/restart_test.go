package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spatedb/spate/internal/sqltest"
	"github.com/spatedb/spate/storage"
)

// restartQueries cover every kind of state: windows, an updating
// aggregate, a lookup join on a table that is updated, a query over a
// query's result, OVER, and an interval join feeding an aggregate (two
// stages on the workers, the second's snapshots copied to the first's
// worker). restartQueryNames lists them in an order they can be created
// in.
var restartQueries = map[string]string{
	"win":     "SELECT k, window_end, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k, TUMBLE(t, INTERVAL '10' SECOND)",
	"totals":  "SELECT k, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k",
	"named":   "SELECT e.k, e.t, e.v, d.name FROM ev e JOIN dim d ON e.k = d.k",
	"busy":    "SELECT k, window_end, n FROM win WHERE n > 2",
	"running": "SELECT k, t, v, SUM(v) OVER (PARTITION BY k ORDER BY t ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS s3 FROM ev",
	"pairs":   "SELECT a.k % 7 AS g, COUNT(*) AS n, SUM(b.v) AS s FROM ev a JOIN ev b ON a.k = b.k AND b.t BETWEEN a.t - 1 AND a.t GROUP BY a.k % 7",
}

var restartQueryNames = []string{"win", "totals", "named", "busy", "running", "pairs"}

// TestRestartRecoversEverything kills `spate serve` with SIGKILL after
// COPYs, INSERTs and an UPDATE were acknowledged, restarts it on the same
// data directory, feeds more rows, and compares every continuous query
// with a server that was never killed: the results must be the same,
// every acknowledged row counted exactly once.
func TestRestartRecoversEverything(t *testing.T) {
	forEachMode(t, func(t *testing.T, args []string) {
		restartRecovers(t, args, restartQueryNames, false)
	})
}

// TestRestartFromRestartPoint: with checkpoints every 100 ms, a restart
// point is written; `spate serve` killed after it resumes every query
// from it and replays only the log after it, with the same results.
func TestRestartFromRestartPoint(t *testing.T) {
	forEachMode(t, func(t *testing.T, args []string) {
		restartRecovers(t, append([]string{"--checkpoint-interval", "100ms", "--restart-point-interval", "200ms"}, args...), restartQueryNames, true)
	})
}

// restartRecovers runs the queries names on a server with a data
// directory, kills it with SIGKILL, restarts it and compares with a
// server never killed; fromPoint: the restart resumes from a restart
// point written before the kill.
// TestRestartRecoversEverything keeps the default restart-point interval
// (a minute), so its restart replays the whole log.
func restartRecovers(t *testing.T, serverArgs []string, names []string, fromPoint bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	victim := sqltest.StartSpate(t, append([]string{"--data-dir", dir}, serverArgs...)...)
	reference := sqltest.StartSpate(t, serverArgs...)

	rng := rand.New(rand.NewPCG(5, 5))
	chunk := func(n int, t0 int64) []byte {
		var b bytes.Buffer
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "%d,%d,%d\n", rng.IntN(20), rng.IntN(100), t0+int64(i)/10)
		}
		return b.Bytes()
	}
	first, second := chunk(20000, 1000), chunk(20000, 3000)

	before := func(c *pgconn.PgConn) {
		for _, sql := range []string{
			"CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')",
			"CREATE TABLE dim (k INT, name TEXT)",
			"INSERT INTO dim VALUES (1, 'one'), (2, 'two'), (3, 'three')",
		} {
			mustExec(t, c, sql)
		}
		for _, name := range names {
			mustExec(t, c, "CREATE CONTINUOUS QUERY "+name+" AS "+restartQueries[name])
		}
		if _, err := c.CopyFrom(ctx, bytes.NewReader(first), "COPY ev FROM STDIN (FORMAT csv)"); err != nil {
			t.Fatal(err)
		}
		mustExec(t, c, "UPDATE dim SET name = 'TWO' WHERE k = 2")
		mustExec(t, c, "INSERT INTO dim VALUES (4, 'four')")
		mustExec(t, c, "INSERT INTO ev VALUES (2, 7, 2999), (4, 8, 2999)")
	}
	after := func(c *pgconn.PgConn) {
		if _, err := c.CopyFrom(ctx, bytes.NewReader(second), "COPY ev FROM STDIN (FORMAT csv)"); err != nil {
			t.Fatal(err)
		}
		mustExec(t, c, "DELETE FROM dim WHERE k = 1")
		mustExec(t, c, "INSERT INTO ev VALUES (1, 1, 99999)") // closes every window
	}

	v := connectPg(t, victim.ConnString())
	r := connectPg(t, reference.ConnString())
	before(v)
	before(r)
	if fromPoint {
		// A restart point after everything before() did.
		mustExec(t, v, "INSERT INTO ev VALUES (3, 3, 2999)")
		mustExec(t, r, "INSERT INTO ev VALUES (3, 3, 2999)")
		start := time.Now()
		waitFor(t, 30*time.Second, "a restart point", func() bool {
			ms, _ := filepath.Glob(filepath.Join(dir, "checkpoints", "restart", "*", "manifest.json"))
			for _, m := range ms {
				if fi, err := os.Stat(m); err == nil && fi.ModTime().After(start) {
					return true
				}
			}
			return false
		})
		// And rows after it, for the log's tail.
		mustExec(t, v, "INSERT INTO ev VALUES (5, 5, 2999)")
		mustExec(t, r, "INSERT INTO ev VALUES (5, 5, 2999)")
	}
	victim.Kill()

	restarted := sqltest.StartSpate(t, append([]string{"--data-dir", dir}, serverArgs...)...)
	v = connectPg(t, restarted.ConnString())
	after(v)
	after(r)

	for _, name := range names {
		q := "SELECT * FROM " + name
		got, err := sqltest.QueryText(ctx, v, q)
		if err != nil {
			t.Fatalf("%s after restart: %v", name, err)
		}
		want, err := sqltest.QueryText(ctx, r, q)
		if err != nil {
			t.Fatal(err)
		}
		sortAll(got)
		sortAll(want)
		if len(want) == 0 {
			t.Fatalf("%s: no rows; the test data does not exercise it", name)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s differs after the restart: %d rows, want %d; first difference %s", name, len(got), len(want), firstRowDiff(got, want))
		}
	}
	var total string
	rows, err := sqltest.QueryText(ctx, v, "SELECT SUM(n) FROM totals")
	if err == nil && len(rows) == 1 {
		total = rows[0][0]
	}
	extra := 3
	if fromPoint {
		extra += 2
	}
	if want := fmt.Sprint(len(bytes.Split(first, []byte("\n"))) - 1 + len(bytes.Split(second, []byte("\n"))) - 1 + extra); total != want {
		t.Fatalf("SUM(n) over totals is %q after the restart, want %s (every acknowledged row once)", total, want)
	}
	if !bytes.Contains([]byte(restarted.Output()), []byte("recovered the previous run")) {
		t.Errorf("the restarted server did not log its recovery:\n%s", restarted.Output())
	}
	if fromPoint && !bytes.Contains([]byte(restarted.Output()), []byte("resuming from the restart point")) {
		t.Errorf("the restart did not resume from a restart point:\n%s", restarted.Output())
	}
}

// sortAll sorts rows by every column.
func sortAll(rows [][]string) {
	if len(rows) == 0 {
		return
	}
	cols := make([]int, len(rows[0]))
	for i := range cols {
		cols[i] = i
	}
	sortRows(rows, cols...)
}

func firstRowDiff(got, want [][]string) string {
	for i := range min(len(got), len(want)) {
		if !reflect.DeepEqual(got[i], want[i]) {
			return fmt.Sprintf("row %d: %v vs %v", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("%d vs %d rows", len(got), len(want))
}

// TestCheckpointsToS3AndRestart runs a cluster whose checkpoints go to an
// S3 bucket served by versitygw: checkpoint objects appear in the bucket,
// a killed worker is recovered, and `spate serve` killed with SIGKILL and
// restarted on the same data directory and store has every acknowledged
// row, once.
func TestCheckpointsToS3AndRestart(t *testing.T) {
	s3 := sqltest.StartS3(t, "spate-ckpt")
	s3.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--workers", "2", "--checkpoint-interval", "100ms", "--restart-point-interval", "200ms", "--checkpoint-store", s3.Location("spate-ckpt", "cluster-a")}
	srv := sqltest.StartSpate(t, args...)
	c := connectPg(t, srv.ConnString())
	mustExec(t, c, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	mustExec(t, c, "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k")
	chunk := func(t0 int) []byte {
		var b bytes.Buffer
		for i := 0; i < 20000; i++ {
			fmt.Fprintf(&b, "%d,%d,%d\n", i%17, i%100, t0+i/10)
		}
		return b.Bytes()
	}
	if _, err := c.CopyFrom(ctx, bytes.NewReader(chunk(0)), "COPY ev FROM STDIN (FORMAT csv)"); err != nil {
		t.Fatal(err)
	}
	store, err := storage.Open(ctx, s3.Location("spate-ckpt", "cluster-a"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "a restart point in the bucket", func() bool {
		keys, err := store.List(ctx, "restart/")
		n := 0
		for _, k := range keys {
			if strings.Contains(k, "/queries/totals/") {
				n++
			}
		}
		return err == nil && n >= 3 // the source and two aggregate instances
	})
	// A worker dies: the query recovers from its checkpoint.
	rows, err := sqltest.QueryText(ctx, c, "SELECT pid FROM spate_workers WHERE id = 'w1'")
	if err != nil || len(rows) != 1 {
		t.Fatal(rows, err)
	}
	pid, _ := strconv.Atoi(rows[0][0])
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, 30*time.Second, "the recovery", func() bool {
		rows, err := sqltest.QueryText(ctx, c, "SELECT COUNT(*) FROM spate_recoveries WHERE status = 'recovered'")
		return err == nil && rows[0][0] == "1"
	})
	if _, err := c.CopyFrom(ctx, bytes.NewReader(chunk(2000)), "COPY ev FROM STDIN (FORMAT csv)"); err != nil {
		t.Fatal(err)
	}
	check := func(c *pgconn.PgConn, when string) {
		rows, err := sqltest.QueryText(ctx, c, "SELECT SUM(n), SUM(s) FROM totals")
		if err != nil || len(rows) != 1 || rows[0][0] != "40000" || rows[0][1] != "1980000" {
			t.Fatalf("%s: SUM(n), SUM(s) = %v (%v), want 40000, 1980000", when, rows, err)
		}
	}
	check(c, "after the worker was killed")
	srv.Kill()
	restarted := sqltest.StartSpate(t, args...)
	check(connectPg(t, restarted.ConnString()), "after spate serve was killed and restarted")
	// It resumed from a restart point in the bucket.
	if !strings.Contains(restarted.Output(), "resuming from the restart point") {
		t.Errorf("the restart did not resume from a restart point in S3:\n%s", restarted.Output())
	}
	if keys, err := store.List(ctx, "restart/"); err != nil || len(keys) == 0 {
		t.Errorf("no restart point in the bucket: %v %v", keys, err)
	}
}

// TestResultsShowOnlyDurableRows: rows reach a query only once the log
// has them durably, so what a reader saw before `spate serve` was killed
// with SIGKILL in the middle of a COPY is still there after the restart
// (results do not go backwards), though that COPY was never acknowledged.
func TestResultsShowOnlyDurableRows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	victim := sqltest.StartSpate(t, "--data-dir", dir, "--workers", "0")
	c := connectPg(t, victim.ConnString())
	mustExec(t, c, "CREATE STREAM ev (k INT, v INT)")
	mustExec(t, c, "CREATE CONTINUOUS QUERY total AS SELECT COUNT(*) AS n FROM ev")
	// An endless COPY on its own connection.
	pr, pw := io.Pipe()
	go func() {
		var b bytes.Buffer
		for i := 0; ; i++ {
			fmt.Fprintf(&b, "%d,%d\n", i%97, i)
			if b.Len() > 64<<10 {
				if _, err := pw.Write(b.Bytes()); err != nil {
					return
				}
				b.Reset()
			}
		}
	}()
	defer pw.Close()
	copier := connectPg(t, victim.ConnString())
	go func() { _, _ = copier.CopyFrom(ctx, pr, "COPY ev FROM STDIN (FORMAT csv)") }()
	const seenQuery = "SELECT n FROM total"
	var seen int64
	waitFor(t, time.Minute, "a few hundred thousand rows in the result", func() bool {
		rows, err := sqltest.QueryText(ctx, c, seenQuery)
		if err != nil || len(rows) != 1 {
			return false
		}
		seen, _ = strconv.ParseInt(rows[0][0], 10, 64)
		return seen > 300000
	})
	victim.Kill()

	restarted := sqltest.StartSpate(t, "--data-dir", dir, "--workers", "0")
	r := connectPg(t, restarted.ConnString())
	rows, err := sqltest.QueryText(ctx, r, seenQuery)
	if err != nil || len(rows) != 1 {
		t.Fatalf("%s after the restart: %v %v", seenQuery, rows, err)
	}
	if after, _ := strconv.ParseInt(rows[0][0], 10, 64); after < seen {
		t.Fatalf("the result went back from %d rows before the kill to %d after the restart: it had shown rows that were not durable", seen, after)
	}
}
