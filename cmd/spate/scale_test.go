package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spatedb/spate/internal/sqltest"
)

// scaleRun is a cluster started with the test's arguments next to a
// single-process reference, both with the stream ev and the queries w
// (a tumbling window) and totals (an updating aggregate).
type scaleRun struct {
	t       *testing.T
	ctx     context.Context
	cluster *sqltest.Server
	cl, ref *pgconn.PgConn
	rng     *rand.Rand
	t0      int64
}

func startScaleRun(t *testing.T, ctx context.Context, seed uint64, clusterArgs []string, setup ...string) *scaleRun {
	r := &scaleRun{t: t, ctx: ctx, cluster: sqltest.StartSpate(t, clusterArgs...), rng: rand.New(rand.NewPCG(seed, seed)), t0: 1000}
	reference := sqltest.StartSpate(t, "--workers", "0")
	r.cl, r.ref = connectPg(t, r.cluster.ConnString()), connectPg(t, reference.ConnString())
	for _, c := range []*pgconn.PgConn{r.cl, r.ref} {
		for _, sql := range setup {
			mustExec(t, c, sql)
		}
		mustExec(t, c, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')")
		mustExec(t, c, "CREATE CONTINUOUS QUERY w AS SELECT k, window_end, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k, TUMBLE(t, INTERVAL '10' SECOND)")
		mustExec(t, c, "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n, MAX(v) AS top FROM ev GROUP BY k")
	}
	return r
}

// feed COPYs n rows over keys keys, ten seconds of event time, into both.
func (r *scaleRun) feed(n, keys int) {
	var buf bytes.Buffer
	for i := range n {
		fmt.Fprintf(&buf, "%d,%d,%d\n", r.rng.IntN(keys), r.rng.IntN(1000), r.t0+int64(i)*10/int64(n))
	}
	r.t0 += 10
	for _, c := range []*pgconn.PgConn{r.cl, r.ref} {
		if _, err := c.CopyFrom(r.ctx, bytes.NewReader(buf.Bytes()), "COPY ev FROM STDIN (FORMAT csv)"); err != nil {
			r.t.Fatal(err)
		}
	}
}

// query runs SQL on the cluster.
func (r *scaleRun) query(sql string) [][]string {
	r.t.Helper()
	rows, err := sqltest.QueryText(r.ctx, r.cl, sql)
	if err != nil {
		r.t.Fatalf("%s: %v", sql, err)
	}
	return rows
}

// sameResults closes every window in both and waits until w and totals
// are the same in the cluster as in the reference.
func (r *scaleRun) sameResults(timeout time.Duration) {
	r.t.Helper()
	for _, c := range []*pgconn.PgConn{r.cl, r.ref} {
		mustExec(r.t, c, "INSERT INTO ev VALUES (0, 0, 99999)")
	}
	for _, name := range []string{"w", "totals"} {
		want, _ := sqltest.QueryText(r.ctx, r.ref, "SELECT * FROM "+name)
		sortAll(want)
		if len(want) == 0 {
			r.t.Fatalf("%s is empty", name)
		}
		waitFor(r.t, timeout, name+" to equal the single-process run", func() bool {
			got, err := sqltest.QueryText(r.ctx, r.cl, "SELECT * FROM "+name)
			sortAll(got)
			return err == nil && reflect.DeepEqual(got, want)
		})
	}
}

// TestAutoscaleOntoPoolWorker: `spate serve --workers 1 --pool-size 1`
// with autoscaling on for a query. While COPY streams rows in, the
// controller scales the aggregate stage out onto the pool's warm worker
// (a real process); when the input stops it scales back in. SHOW
// SCALING EVENTS and SHOW INSTANCES show it, and the results equal a
// single-process run's.
func TestAutoscaleOntoPoolWorker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := startScaleRun(t, ctx, 9, []string{"--workers", "1", "--pool-size", "1", "--checkpoint-interval", "100ms",
		"--autoscale-interval", "200ms", "--scale-cooldown", "2s"})
	query := r.query
	waitFor(t, 30*time.Second, "the pool's worker to join", func() bool {
		return query("SELECT COUNT(*) FROM spate_workers WHERE role = 'worker' AND status = 'alive'")[0][0] == "2"
	})
	if hosts := query("SELECT DISTINCT worker FROM spate_instances WHERE stage > 0"); fmt.Sprint(hosts) != "[[w1]]" {
		t.Fatalf("instances on %v: the pool's warm worker w2 should get none until a scale-out", hosts)
	}
	mustExec(t, r.cl, "ALTER CONTINUOUS QUERY w SET (autoscale = on, max_instances = 2, target_utilisation = 0.000001)")
	feed := func() { r.feed(2000, 500) }
	deadline := time.Now().Add(60 * time.Second)
	for len(query("SELECT * FROM spate_scaling_events WHERE decision = 'scale out' AND status = 'done'")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no scale-out after a minute of input: %v", query("SELECT * FROM spate_scaling_events"))
		}
		feed()
	}
	ev := query("SELECT query, stage, reason FROM spate_scaling_events WHERE decision = 'scale out'")
	if ev[0][0] != "w" || ev[0][1] != "1" {
		t.Fatalf("scale-out %v, want query w's aggregate stage", ev)
	}
	if hosts := query("SELECT worker FROM spate_instances WHERE query = 'w' AND stage = 1 ORDER BY instance"); fmt.Sprint(hosts) != "[[w1] [w2]]" && fmt.Sprint(hosts) != "[[w2] [w1]]" {
		t.Errorf("w's aggregate instances run on %v, want w1 and the pool's w2", hosts)
	}
	for range 3 {
		feed()
	}
	// A real target again (a pair merges below half the target, which
	// the tiny one that forced the scale-out leaves no room for).
	mustExec(t, r.cl, "ALTER CONTINUOUS QUERY w SET (target_utilisation = 0.7)")
	// The input stops: the two instances idle, and merge back.
	waitFor(t, 60*time.Second, "a scale-in once the input stopped", func() bool {
		return len(query("SELECT * FROM spate_scaling_events WHERE decision = 'scale in' AND status = 'done'")) > 0
	})
	waitFor(t, 30*time.Second, "one aggregate instance", func() bool {
		return query("SELECT COUNT(*) FROM spate_instances WHERE query = 'w' AND stage = 1")[0][0] == "1"
	})
	// The pool's worker the scale-in emptied goes back to the pool at
	// the pool's next look (every 5 s), not a grace after it was taken.
	emptied := time.Now()
	waitFor(t, 20*time.Second, "the emptied pool worker to be warm again", func() bool {
		return fmt.Sprint(query("SELECT pool, instances FROM spate_workers WHERE id = 'w2'")) == "[[warm 0]]"
	})
	t.Logf("the emptied pool worker was warm again %v after the scale-in", time.Since(emptied).Round(time.Second))
	feed()
	r.sameResults(20 * time.Second)
}

// TestWorkerKilledDuringScaleOut: SIGKILL of a worker process while an
// ALTER … SCALE OUT is under way; the scale-out completes, the repair
// restores what the dead worker ran, and the results equal a
// single-process run's.
func TestWorkerKilledDuringScaleOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := startScaleRun(t, ctx, 4, []string{"--workers", "3", "--checkpoint-interval", "100ms"}, "SET parallelism = 2")
	cl := r.cl
	feed := func() { r.feed(3000, 300) }
	for range 3 {
		feed()
	}
	waitFor(t, 20*time.Second, "a complete checkpoint of w", func() bool {
		rows, err := sqltest.QueryText(ctx, cl, "SELECT COUNT(*) FROM spate_checkpoints WHERE query = 'w' AND status = 'complete'")
		return err == nil && rows[0][0] != "0"
	})
	// The victim runs one of w's aggregate instances.
	host, err := sqltest.QueryText(ctx, cl, "SELECT worker FROM spate_instances WHERE query = 'w' AND stage = 1 AND instance = 0")
	if err != nil || len(host) != 1 {
		t.Fatalf("the worker of w's instance 0: %v %v", host, err)
	}
	victim, err := sqltest.QueryText(ctx, cl, "SELECT pid FROM spate_workers WHERE id = '"+host[0][0]+"'")
	if err != nil || len(victim) != 1 {
		t.Fatalf("the pid of %s: %v %v", host[0][0], victim, err)
	}
	pid, _ := strconv.Atoi(victim[0][0])
	admin := connectPg(t, r.cluster.ConnString())
	done := make(chan error, 1)
	go func() {
		_, err := admin.Exec(ctx, "ALTER CONTINUOUS QUERY w SCALE OUT STAGE 1 INSTANCE 0").ReadAll()
		done <- err
	}()
	time.Sleep(2 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("ALTER … SCALE OUT with a worker killed: %v", err)
	}
	for range 3 {
		feed()
	}
	r.sameResults(60 * time.Second)
	if r, _ := sqltest.QueryText(ctx, cl, "SELECT status FROM spate_recoveries WHERE query = 'w'"); len(r) == 0 || r[len(r)-1][0] != "recovered" {
		t.Errorf("w's recoveries after the kill: %v", r)
	}
	if n, _ := sqltest.QueryText(ctx, cl, "SELECT COUNT(*) FROM spate_instances WHERE query = 'w' AND stage = 1"); n[0][0] != "3" {
		t.Errorf("w's aggregate runs %s instances after the scale-out, want 3", n[0][0])
	}
}

// TestScaleOutWithSuspectWorker: a worker that misses heartbeats for a
// moment (stopped with SIGSTOP, as a stall on a busy machine does) is
// suspect, not dead: a scale-out of an instance it runs waits for it and
// completes in place, rather than giving up and restoring everything
// downstream from the last checkpoint.
func TestScaleOutWithSuspectWorker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := startScaleRun(t, ctx, 6, []string{"--workers", "3", "--checkpoint-interval", "100ms"}, "SET parallelism = 2")
	for range 3 {
		r.feed(3000, 300)
	}
	waitFor(t, 20*time.Second, "a complete checkpoint of w", func() bool {
		return r.query("SELECT COUNT(*) FROM spate_checkpoints WHERE query = 'w' AND status = 'complete'")[0][0] != "0"
	})
	// The suspect one runs instance 1, whose part of the rescale's
	// checkpoint is late; instance 0, on another worker, is split.
	hosts := r.query("SELECT worker FROM spate_instances WHERE query = 'w' AND stage = 1 ORDER BY instance")
	host := hosts[1][0]
	if host == hosts[0][0] {
		t.Fatalf("w's aggregate instances both run on %s", host)
	}
	pid, _ := strconv.Atoi(r.query("SELECT pid FROM spate_workers WHERE id = '" + host + "'")[0][0])
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	waitFor(t, 10*time.Second, host+" to be suspect", func() bool {
		return r.query("SELECT status FROM spate_workers WHERE id = '" + host + "'")[0][0] == "suspect"
	})
	admin := connectPg(t, r.cluster.ConnString())
	done := make(chan error, 1)
	go func() {
		_, err := admin.Exec(ctx, "ALTER CONTINUOUS QUERY w SCALE OUT STAGE 1 INSTANCE 0").ReadAll()
		done <- err
	}()
	// Past the rescale's look at the instances' load (which gives up on
	// a worker that does not answer within two seconds), into its checkpoint.
	time.Sleep(3 * time.Second)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	if err := <-done; err != nil {
		t.Fatalf("ALTER … SCALE OUT with a suspect worker: %v", err)
	}
	if ev := r.query("SELECT status FROM spate_scaling_events WHERE query = 'w'"); len(ev) != 1 || ev[0][0] != "done" {
		t.Errorf("the scale-out with a suspect worker: %v, want done in place", ev)
	}
	if st := r.query("SELECT status FROM spate_workers WHERE id = '" + host + "'")[0][0]; st != "alive" {
		t.Errorf("%s is %s after SIGCONT", host, st)
	}
	for range 3 {
		r.feed(3000, 300)
	}
	r.sameResults(60 * time.Second)
}

// TestScaleOutAfterPoolWorkerDied: the pool's warm worker is killed
// (SIGKILL) before any scale-out. The pool notices: a scale-out then
// gets a new warm worker, and the stage runs on two workers — not both
// halves on the one it had — with results equal to a single-process
// run's.
func TestScaleOutAfterPoolWorkerDied(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := startScaleRun(t, ctx, 12, []string{"--workers", "1", "--pool-size", "1", "--checkpoint-interval", "100ms"})
	query := r.query
	waitFor(t, 30*time.Second, "the pool's worker to join", func() bool {
		return query("SELECT COUNT(*) FROM spate_workers WHERE role = 'worker' AND status = 'alive'")[0][0] == "2"
	})
	spare := query("SELECT id, pid FROM spate_workers WHERE role = 'worker' AND id <> 'w1'") // w1 from --workers 1
	if len(spare) != 1 {
		t.Fatalf("the pool's warm worker: %v", spare)
	}
	r.feed(2000, 500)
	pid, _ := strconv.Atoi(spare[0][1])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the warm worker to be seen dead", func() bool {
		return query("SELECT status FROM spate_workers WHERE id = '" + spare[0][0] + "'")[0][0] == "dead"
	})
	mustExec(t, r.cl, "ALTER CONTINUOUS QUERY w SCALE OUT STAGE 1")
	hosts := query("SELECT DISTINCT worker FROM spate_instances WHERE query = 'w' AND stage = 1")
	if len(hosts) != 2 {
		t.Errorf("after the scale-out w's aggregate runs on %v, want two workers", hosts)
	}
	for _, h := range hosts {
		if h[0] == spare[0][0] {
			t.Errorf("an instance was placed on the dead worker %s", h[0])
		}
	}
	r.feed(2000, 500)
	r.sameResults(30 * time.Second)
}

// TestAutoscaleWarning: psql shows the warning of an ALTER that turns
// autoscale on where the query cannot be rescaled (no worker processes),
// and the ALTER still succeeds.
func TestAutoscaleWarning(t *testing.T) {
	psql := sqltest.RequireBinary(t, "psql")
	srv := sqltest.StartSpate(t, "--workers", "0")
	res := runPsql(t, psql, srv.ConnString(),
		"-c", "CREATE STREAM ev (k INT, v INT)",
		"-c", "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k",
		"-c", "ALTER CONTINUOUS QUERY totals SET (autoscale = on)",
		"-c", "SELECT scaling FROM spate_continuous_queries")
	if res.exit != 0 || !strings.Contains(res.stderr, `WARNING:  01000: autoscale is on, but continuous query "totals" cannot be rescaled: scaling needs worker processes`) ||
		!strings.Contains(res.stdout, "autoscale on") {
		t.Errorf("psql exited with %d:\n%s%s", res.exit, res.stdout, res.stderr)
	}
}

// TestPoolOnlyCluster: with no worker of its own (--workers 0
// --pool-size 1) the queries run on the pool's worker; that worker is
// then in use, so a scale-out gets a new one — the two halves on two
// workers — and a query created after it has the default parallelism of
// one instance, not one per pool worker. Stopping the server does not
// take the pool's workers stopping for failures to repair.
func TestPoolOnlyCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := startScaleRun(t, ctx, 14, []string{"--workers", "0", "--pool-size", "1", "--checkpoint-interval", "100ms"})
	query := r.query
	r.feed(2000, 500)
	first := query("SELECT DISTINCT worker FROM spate_instances WHERE query = 'w' AND stage = 1")
	if len(first) != 1 || first[0][0] == "coordinator" {
		t.Fatalf("w's aggregate runs on %v, want the pool's worker", first)
	}
	waitFor(t, 30*time.Second, "the pool to start another warm worker", func() bool {
		pool := query("SELECT id, pool FROM spate_workers WHERE role = 'worker' AND status = 'alive' ORDER BY id")
		return fmt.Sprint(pool) == fmt.Sprintf("[[%s taken] [w2 warm]]", first[0][0])
	})
	mustExec(t, r.cl, "ALTER CONTINUOUS QUERY w SCALE OUT STAGE 1")
	if hosts := query("SELECT DISTINCT worker FROM spate_instances WHERE query = 'w' AND stage = 1"); len(hosts) != 2 {
		t.Errorf("after the scale-out w's aggregate runs on %v, want two workers (the new one from the pool)", hosts)
	}
	mustExec(t, r.cl, "CREATE CONTINUOUS QUERY later AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	if p := query("SELECT parallelism FROM spate_continuous_queries WHERE name = 'later'"); p[0][0] != "1" {
		t.Errorf("a query created after the scale-out has parallelism %s, want 1 (no worker of the cluster's own)", p[0][0])
	}
	r.feed(2000, 500)
	r.sameResults(30 * time.Second)
	r.cluster.Stop()
	if out := r.cluster.Output(); strings.Contains(out, "repairing the continuous query") || strings.Contains(out, "recovery failed") {
		t.Errorf("stopping the server repaired queries:\n%s", out)
	}
}
