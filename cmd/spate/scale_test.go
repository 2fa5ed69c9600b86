package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spatedb/spate/internal/sqltest"
)

// TestAutoscaleOntoPoolWorker: `spate serve --workers 1 --pool-size 1`
// with autoscaling on for a query. While COPY streams rows in, the
// controller scales the aggregate stage out onto the pool's warm worker
// (a real process); when the input stops it scales back in. SHOW
// SCALING EVENTS and SHOW INSTANCES show it, and the results equal a
// single-process run's.
func TestAutoscaleOntoPoolWorker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cluster := sqltest.StartSpate(t, "--workers", "1", "--pool-size", "1", "--checkpoint-interval", "100ms",
		"--autoscale-interval", "200ms", "--scale-cooldown", "2s")
	reference := sqltest.StartSpate(t, "--workers", "0")
	cl, ref := connectPg(t, cluster.ConnString()), connectPg(t, reference.ConnString())
	for _, c := range []*pgconn.PgConn{cl, ref} {
		mustExec(t, c, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')")
		mustExec(t, c, "CREATE CONTINUOUS QUERY w AS SELECT k, window_end, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k, TUMBLE(t, INTERVAL '10' SECOND)")
		mustExec(t, c, "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n, MAX(v) AS top FROM ev GROUP BY k")
	}
	query := func(sql string) [][]string {
		t.Helper()
		rows, err := sqltest.QueryText(ctx, cl, sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return rows
	}
	waitFor(t, 30*time.Second, "the pool's worker to join", func() bool {
		return query("SELECT COUNT(*) FROM spate_workers WHERE role = 'worker' AND status = 'alive'")[0][0] == "2"
	})
	if hosts := query("SELECT DISTINCT worker FROM spate_instances WHERE stage > 0"); fmt.Sprint(hosts) != "[[w1]]" {
		t.Fatalf("instances on %v: the pool's warm worker w2 should get none until a scale-out", hosts)
	}
	mustExec(t, cl, "ALTER CONTINUOUS QUERY w SET (autoscale = on, max_instances = 2, target_utilisation = 0.000001)")

	rng := rand.New(rand.NewPCG(9, 9))
	t0 := int64(1000)
	feed := func() {
		var buf bytes.Buffer
		for i := range 2000 {
			fmt.Fprintf(&buf, "%d,%d,%d\n", rng.IntN(500), rng.IntN(1000), t0+int64(i)/200)
		}
		t0 += 10
		for _, c := range []*pgconn.PgConn{cl, ref} {
			if _, err := c.CopyFrom(ctx, bytes.NewReader(buf.Bytes()), "COPY ev FROM STDIN (FORMAT csv)"); err != nil {
				t.Fatal(err)
			}
		}
	}
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
	// The input stops: the two instances idle, and merge back.
	waitFor(t, 60*time.Second, "a scale-in once the input stopped", func() bool {
		return len(query("SELECT * FROM spate_scaling_events WHERE decision = 'scale in' AND status = 'done'")) > 0
	})
	waitFor(t, 30*time.Second, "one aggregate instance", func() bool {
		return query("SELECT COUNT(*) FROM spate_instances WHERE query = 'w' AND stage = 1")[0][0] == "1"
	})
	feed()
	for _, c := range []*pgconn.PgConn{cl, ref} {
		mustExec(t, c, "INSERT INTO ev VALUES (0, 0, 99999)")
	}
	for _, name := range []string{"w", "totals"} {
		var got [][]string
		want, _ := sqltest.QueryText(ctx, ref, "SELECT * FROM "+name)
		sortAll(want)
		waitFor(t, 20*time.Second, name+" to equal the single-process run", func() bool {
			got = query("SELECT * FROM " + name)
			sortAll(got)
			return reflect.DeepEqual(got, want)
		})
		if len(want) == 0 {
			t.Fatalf("%s is empty", name)
		}
	}
}

// TestWorkerKilledDuringScaleOut: SIGKILL of a worker process while an
// ALTER … SCALE OUT is under way; the scale-out completes, the repair
// restores what the dead worker ran, and the results equal a
// single-process run's.
func TestWorkerKilledDuringScaleOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cluster := sqltest.StartSpate(t, "--workers", "3", "--checkpoint-interval", "100ms")
	reference := sqltest.StartSpate(t, "--workers", "0")
	cl, ref := connectPg(t, cluster.ConnString()), connectPg(t, reference.ConnString())
	for _, c := range []*pgconn.PgConn{cl, ref} {
		mustExec(t, c, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')")
		mustExec(t, c, "SET parallelism = 2")
		mustExec(t, c, "CREATE CONTINUOUS QUERY w AS SELECT k, window_end, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k, TUMBLE(t, INTERVAL '10' SECOND)")
		mustExec(t, c, "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n, MAX(v) AS top FROM ev GROUP BY k")
	}
	rng := rand.New(rand.NewPCG(4, 4))
	t0 := int64(1000)
	feed := func() {
		var buf bytes.Buffer
		for i := range 3000 {
			fmt.Fprintf(&buf, "%d,%d,%d\n", rng.IntN(300), rng.IntN(1000), t0+int64(i)/300)
		}
		t0 += 10
		for _, c := range []*pgconn.PgConn{cl, ref} {
			if _, err := c.CopyFrom(ctx, bytes.NewReader(buf.Bytes()), "COPY ev FROM STDIN (FORMAT csv)"); err != nil {
				t.Fatal(err)
			}
		}
	}
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
	admin := connectPg(t, cluster.ConnString())
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
	for _, c := range []*pgconn.PgConn{cl, ref} {
		mustExec(t, c, "INSERT INTO ev VALUES (0, 0, 99999)")
	}
	for _, name := range []string{"w", "totals"} {
		var got [][]string
		want, _ := sqltest.QueryText(ctx, ref, "SELECT * FROM "+name)
		sortAll(want)
		waitFor(t, 60*time.Second, name+" to equal the single-process run", func() bool {
			got, err = sqltest.QueryText(ctx, cl, "SELECT * FROM "+name)
			sortAll(got)
			return err == nil && reflect.DeepEqual(got, want)
		})
	}
	if r, _ := sqltest.QueryText(ctx, cl, "SELECT status FROM spate_recoveries WHERE query = 'w'"); len(r) == 0 || r[len(r)-1][0] != "recovered" {
		t.Errorf("w's recoveries after the kill: %v", r)
	}
	if n, _ := sqltest.QueryText(ctx, cl, "SELECT COUNT(*) FROM spate_instances WHERE query = 'w' AND stage = 1"); n[0][0] != "3" {
		t.Errorf("w's aggregate runs %s instances after the scale-out, want 3", n[0][0])
	}
}
