package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spatedb/spate/bench/linearroad"
	"github.com/spatedb/spate/internal/sqltest"
)

// TestWorkerKilledQueriesRecover kills a worker with SIGKILL while rows
// stream in: every query that had instances on it goes back to its last
// checkpoint on the surviving workers and replays, and at the end every
// result equals a single-process server's on the same input; a SUBSCRIBE
// to an append-only query got every row exactly once.
func TestWorkerKilledQueriesRecover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cluster := sqltest.StartSpate(t, "--workers", "3", "--checkpoint-interval", "200ms")
	reference := sqltest.StartSpate(t, "--workers", "0")

	rng := rand.New(rand.NewPCG(9, 9))
	chunk := func(n int, t0 int64) []byte {
		var b bytes.Buffer
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "%d,%d,%d\n", rng.IntN(30), rng.IntN(100), t0+int64(i)/20)
		}
		return b.Bytes()
	}
	chunks := [][]byte{chunk(30000, 1000), chunk(30000, 2500), chunk(30000, 4000)}

	setup := func(c *pgconn.PgConn) {
		for _, sql := range []string{
			"CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')",
			"CREATE TABLE dim (k INT, name TEXT)",
			"INSERT INTO dim VALUES (1, 'one'), (2, 'two'), (3, 'three')",
		} {
			mustExec(t, c, sql)
		}
		for _, name := range restartQueryNames {
			mustExec(t, c, "CREATE CONTINUOUS QUERY "+name+" AS "+restartQueries[name])
		}
	}
	cl := connectPg(t, cluster.ConnString())
	ref := connectPg(t, reference.ConnString())
	setup(cl)
	setup(ref)

	// A subscriber on the windowed query.
	sub := &stallingWriter{open: make(chan struct{})}
	close(sub.open)
	subConn := connectPg(t, cluster.ConnString())
	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	subDone := make(chan error, 1)
	var subRows bytes.Buffer
	go func() {
		_, err := subConn.CopyTo(subCtx, &teeWriter{w: &subRows, count: sub}, "COPY (SUBSCRIBE win) TO STDOUT")
		subDone <- err
	}()

	copyIn := func(c *pgconn.PgConn, data []byte) {
		if _, err := c.CopyFrom(ctx, bytes.NewReader(data), "COPY ev FROM STDIN (FORMAT csv)"); err != nil {
			t.Fatal(err)
		}
	}
	copyIn(cl, chunks[0])
	copyIn(ref, chunks[0])
	// Every query with instances on workers (busy runs on the
	// coordinator only) has a complete checkpoint.
	waitFor(t, 20*time.Second, "a complete checkpoint of every query on workers", func() bool {
		rows, err := sqltest.QueryText(ctx, cl, "SELECT COUNT(DISTINCT query) FROM spate_checkpoints WHERE status = 'complete' AND query <> 'busy'")
		return err == nil && rows[0][0] == strconv.Itoa(len(restartQueryNames)-1)
	})

	// Kill the worker that runs instance 0 of totals' aggregate while the
	// second chunk streams in.
	rows, err := sqltest.QueryText(ctx, cl, "SELECT w.pid, w.id FROM spate_workers w JOIN spate_instances i ON w.id = i.worker WHERE i.query = 'totals' AND i.stage = 1 AND i.instance = 0")
	if err != nil || len(rows) != 1 {
		// system tables cannot be joined yet: look it up in two steps
		inst, err := sqltest.QueryText(ctx, cl, "SELECT worker FROM spate_instances WHERE query = 'totals' AND stage = 1 AND instance = 0")
		if err != nil || len(inst) != 1 {
			t.Fatalf("instance of totals: %v %v", inst, err)
		}
		rows, err = sqltest.QueryText(ctx, cl, "SELECT pid, id FROM spate_workers WHERE id = '"+inst[0][0]+"'")
		if err != nil || len(rows) != 1 {
			t.Fatalf("worker: %v %v", rows, err)
		}
	}
	pid, _ := strconv.Atoi(rows[0][0])
	killed := make(chan struct{})
	go func() {
		time.Sleep(150 * time.Millisecond)
		syscall.Kill(pid, syscall.SIGKILL)
		close(killed)
	}()
	// The second chunk trickles in over about half a second, so the
	// worker dies in the middle of it.
	if _, err := cl.CopyFrom(ctx, &slowReader{data: chunks[1], chunk: 4096, pause: 5 * time.Millisecond}, "COPY ev FROM STDIN (FORMAT csv)"); err != nil {
		t.Fatal(err)
	}
	<-killed
	copyIn(ref, chunks[1])
	copyIn(cl, chunks[2])
	copyIn(ref, chunks[2])
	mustExec(t, cl, "INSERT INTO ev VALUES (1, 1, 99999)")
	mustExec(t, ref, "INSERT INTO ev VALUES (1, 1, 99999)")

	waitFor(t, 60*time.Second, "the recovery", func() bool {
		rows, err := sqltest.QueryText(ctx, cl, "SELECT COUNT(*) FILTER (WHERE status = 'recovered'), COUNT(*) FILTER (WHERE caught_up_ms IS NULL) FROM spate_recoveries")
		return err == nil && rows[0][0] != "0" && rows[0][1] == "0"
	})
	recs, _ := sqltest.QueryText(ctx, cl, "SELECT query, consumers, status FROM spate_recoveries")
	t.Logf("recoveries: %v", recs)
	for _, r := range recs {
		if r[2] != "recovered" && !strings.HasPrefix(r[2], "carried on by the next repair") {
			t.Fatalf("a recovery did not succeed: %v", r)
		}
	}
	// Flush everything through: an INSERT waits for every query.
	mustExec(t, cl, "INSERT INTO dim VALUES (9, 'nine')")
	for name := range restartQueries {
		q := "SELECT * FROM " + name
		var got [][]string
		waitFor(t, 30*time.Second, name+" to equal the reference", func() bool {
			g, err := sqltest.QueryText(ctx, cl, q)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got = g
			return len(g) > 0
		})
		want, err := sqltest.QueryText(ctx, ref, q)
		if err != nil {
			t.Fatal(err)
		}
		sortAll(got)
		sortAll(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s differs after the worker was killed: %d rows, want %d; first difference %s", name, len(got), len(want), firstRowDiff(got, want))
		}
	}
	// The subscriber saw every row of win exactly once.
	want, _ := sqltest.QueryText(ctx, ref, "SELECT * FROM win")
	waitFor(t, 30*time.Second, "the subscriber to catch up", func() bool { return sub.rows.Load() >= int64(len(want)) })
	time.Sleep(300 * time.Millisecond)
	stopSub()
	<-subDone
	var got [][]string
	for _, line := range bytes.Split(bytes.TrimRight(subRows.Bytes(), "\n"), []byte("\n")) {
		got = append(got, sqltest.ParseCopyText(string(line)))
	}
	sortAll(got)
	sortAll(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the subscriber got %d rows of win, the reference has %d; first difference %s", len(got), len(want), firstRowDiff(got, want))
	}
}

// teeWriter copies a COPY TO stream into w and counts its rows.
type teeWriter struct {
	w     *bytes.Buffer
	count *stallingWriter
}

func (t *teeWriter) Write(p []byte) (int, error) {
	t.w.Write(p)
	return t.count.Write(p)
}

// slowReader hands out data chunk bytes at a time with a pause before
// each read.
type slowReader struct {
	data  []byte
	chunk int
	pause time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.pause)
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestLinearRoadSurvivesWorkerKill runs the Linear Road queries on three
// workers, fed as fast as the server takes them, and kills a worker with
// SIGKILL in the middle: the outputs the harness collects (by SUBSCRIBE)
// still validate against the reference implementation, nothing missing
// and nothing twice.
func TestLinearRoadSurvivesWorkerKill(t *testing.T) {
	srv := sqltest.StartSpate(t, "--workers", "3", "--checkpoint-interval", "300ms")
	dur := 8 * time.Minute
	if testing.Short() {
		dur = 5 * time.Minute
	}
	ctx := context.Background()
	admin := connectPg(t, srv.ConnString())
	done := make(chan struct{})
	killed := make(chan string, 1)
	go func() {
		defer close(killed)
		// Wait until the queries run and a few checkpoints completed,
		// then kill the worker that hosts most instances.
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			rows, err := sqltest.QueryText(ctx, admin, "SELECT COUNT(*) FROM spate_checkpoints WHERE status = 'complete'")
			if err != nil || len(rows) != 1 {
				continue
			}
			if n, _ := strconv.Atoi(rows[0][0]); n < 20 {
				continue
			}
			w, err := sqltest.QueryText(ctx, admin, "SELECT pid, id FROM spate_workers WHERE id = 'w2'")
			if err != nil || len(w) != 1 {
				continue
			}
			pid, _ := strconv.Atoi(w[0][0])
			syscall.Kill(pid, syscall.SIGKILL)
			killed <- w[0][1]
			return
		}
	}()
	res, err := linearroad.Run(ctx, linearroad.HarnessConfig{
		ConnString: srv.ConnString(), Gen: linearroad.Config{Expressways: 1, Duration: dur, Seed: 5}, Setup: true,
	})
	close(done)
	victim, ok := <-killed
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatal("the run ended before a worker could be killed; make it longer")
	}
	recs, _ := sqltest.QueryText(ctx, admin, "SELECT query, status, replayed, restore_ms FROM spate_recoveries")
	t.Logf("killed %s; recoveries: %v", victim, recs)
	if len(recs) == 0 {
		t.Fatal("no recovery recorded")
	}
	for _, r := range recs {
		if r[1] != "recovered" {
			t.Fatalf("recovery %v", r)
		}
	}
	if !res.Diff.OK() {
		st, _ := sqltest.QueryText(ctx, admin, "SELECT name, status, result_rows, emitted_rows, subscribers FROM spate_continuous_queries")
		t.Fatalf("validation failed after the worker was killed:\n%s\nqueries: %v", res.Diff.String(), st)
	}
	if res.Outputs[0] == 0 {
		t.Fatalf("no tolls: %v", res.Outputs)
	}
}

// TestRandomWorkerKills is the randomised recovery test: seeded runs with
// a random checkpoint interval, COPY batch size (--copy-batch-rows), COPY
// sizes and pace, and one or two workers killed with SIGKILL at random
// moments (the second once one query recovered, while others may still
// replay), each compared with a single-process server on the same input.
func TestRandomWorkerKills(t *testing.T) {
	seeds := 20
	if testing.Short() {
		seeds = 2
	}
	reference := sqltest.StartSpate(t, "--workers", "0")
	for seed := range uint64(seeds) {
		seed++
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) { randomKills(t, reference, seed) })
	}
}

func randomKills(t *testing.T, reference *sqltest.Server, seed uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rng := rand.New(rand.NewPCG(seed, 77))
	interval := []string{"50ms", "200ms", "1s"}[rng.IntN(3)]
	batch := []string{"100", "1000", "8192"}[rng.IntN(3)]
	kills := 1 + rng.IntN(2)
	cluster := sqltest.StartSpate(t, "--workers", "3", "--checkpoint-interval", interval, "--copy-batch-rows", batch)
	cl := connectPg(t, cluster.ConnString())
	ref := connectPg(t, reference.ConnString())
	// A schema of its own per seed on the shared reference server.
	sfx := fmt.Sprintf("_%d", seed)
	names := restartQueryNames
	for _, c := range []*pgconn.PgConn{cl, ref} {
		mustExec(t, c, "CREATE STREAM ev"+sfx+" (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')")
		mustExec(t, c, "CREATE TABLE dim"+sfx+" (k INT, name TEXT)")
		mustExec(t, c, "INSERT INTO dim"+sfx+" VALUES (1, 'one'), (2, 'two'), (3, 'three')")
		for _, name := range names {
			q := strings.NewReplacer(" ev ", " ev"+sfx+" ", " dim ", " dim"+sfx+" ", " win ", " win"+sfx+" ").Replace(restartQueries[name] + " ")
			mustExec(t, c, "CREATE CONTINUOUS QUERY "+name+sfx+" AS "+q)
		}
	}
	t0 := int64(1000)
	var chunks [][]byte
	for range 4 {
		n := 5000 + rng.IntN(25000)
		var b bytes.Buffer
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "%d,%d,%d\n", rng.IntN(30), rng.IntN(100), t0+int64(i)/20)
		}
		t0 += int64(n/20) + 1
		chunks = append(chunks, b.Bytes())
	}
	killAt := []int{1 + rng.IntN(3), 0}
	if kills == 2 {
		killAt[1] = killAt[0] + 1
		if killAt[1] > 3 {
			killAt[0], killAt[1] = 1, 2
		}
	}
	victims := []string{"w1", "w2", "w3"}
	rng.Shuffle(len(victims), func(i, j int) { victims[i], victims[j] = victims[j], victims[i] })
	killed := 0
	for i, data := range chunks {
		var kill chan struct{}
		if killed < kills && killAt[killed] == i {
			if killed == 1 {
				waitFor(t, 60*time.Second, "the first recovery", func() bool {
					rows, err := sqltest.QueryText(ctx, cl, "SELECT COUNT(*) FROM spate_recoveries WHERE status = 'recovered'")
					return err == nil && rows[0][0] != "0"
				})
			}
			rows, err := sqltest.QueryText(ctx, cl, "SELECT pid FROM spate_workers WHERE id = '"+victims[killed]+"'")
			if err != nil || len(rows) != 1 {
				t.Fatalf("worker %s: %v %v", victims[killed], rows, err)
			}
			pid, _ := strconv.Atoi(rows[0][0])
			kill = make(chan struct{})
			delay := time.Duration(rng.IntN(300)) * time.Millisecond
			go func() {
				time.Sleep(delay)
				syscall.Kill(pid, syscall.SIGKILL)
				close(kill)
			}()
			killed++
		}
		pace := time.Duration(1+rng.IntN(5)) * time.Millisecond
		if _, err := cl.CopyFrom(ctx, &slowReader{data: data, chunk: 4096, pause: pace}, "COPY ev"+sfx+" FROM STDIN (FORMAT csv)"); err != nil {
			t.Fatal(err)
		}
		if _, err := ref.CopyFrom(ctx, bytes.NewReader(data), "COPY ev"+sfx+" FROM STDIN (FORMAT csv)"); err != nil {
			t.Fatal(err)
		}
		if kill != nil {
			<-kill
		}
	}
	for _, c := range []*pgconn.PgConn{cl, ref} {
		mustExec(t, c, "INSERT INTO ev"+sfx+" VALUES (1, 1, 999999)")
	}
	waitFor(t, 60*time.Second, "the recoveries", func() bool {
		// None under way (times NULL) or failed.
		rows, err := sqltest.QueryText(ctx, cl, "SELECT COUNT(*) FROM spate_recoveries WHERE caught_up_ms IS NULL OR status LIKE 'failed%'")
		done, err2 := sqltest.QueryText(ctx, cl, "SELECT COUNT(*) FROM spate_recoveries")
		return err == nil && err2 == nil && rows[0][0] == "0" && done[0][0] != "0"
	})
	mustExec(t, cl, "INSERT INTO dim"+sfx+" VALUES (9, 'nine')") // waits for every query
	recs, _ := sqltest.QueryText(ctx, cl, "SELECT query, checkpoint_epoch, replayed, restored_from_upstream FROM spate_recoveries")
	t.Logf("seed %d: checkpoint interval %s, batches of %s rows, %d kill(s) (%v), recoveries %v", seed, interval, batch, kills, victims[:kills], recs)
	for _, name := range names {
		q := "SELECT * FROM " + name + sfx
		got, err := sqltest.QueryText(ctx, cl, q)
		if err != nil {
			t.Fatal(err)
		}
		want, err := sqltest.QueryText(ctx, ref, q)
		if err != nil {
			t.Fatal(err)
		}
		sortAll(got)
		sortAll(want)
		if len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Errorf("%s differs: %d rows, want %d; first difference %s", name, len(got), len(want), firstRowDiff(got, want))
		}
	}
}

// TestWorkerKilledDuringCheckpoint kills a worker while a checkpoint of a
// sizeable state is in flight: the recovery goes back to the checkpoint
// before it, and the results equal a single-process run's.
func TestWorkerKilledDuringCheckpoint(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cluster := sqltest.StartSpate(t, "--workers", "2", "--checkpoint-interval", "100ms")
	reference := sqltest.StartSpate(t, "--workers", "0")
	cl := connectPg(t, cluster.ConnString())
	ref := connectPg(t, reference.ConnString())
	pad := strings.Repeat("p", 200)
	chunk := func(from, n int) []byte {
		var b bytes.Buffer
		for i := from; i < from+n; i++ {
			fmt.Fprintf(&b, "%d,%s%d,%d\n", i, pad, i%7, i/100)
		}
		return b.Bytes()
	}
	for _, c := range []*pgconn.PgConn{cl, ref} {
		mustExec(t, c, "CREATE STREAM ev (k INT, pad TEXT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
		mustExec(t, c, "CREATE CONTINUOUS QUERY wide AS SELECT k % 100000 AS g, MAX(pad) AS p, COUNT(*) AS n FROM ev GROUP BY k % 100000")
		if _, err := c.CopyFrom(ctx, bytes.NewReader(chunk(0, 150000)), "COPY ev FROM STDIN (FORMAT csv)"); err != nil {
			t.Fatal(err)
		}
	}
	// Kill w1 as soon as a checkpoint is seen in progress after one completed.
	waitFor(t, 60*time.Second, "a checkpoint in progress after a complete one", func() bool {
		rows, err := sqltest.QueryText(ctx, cl, "SELECT status FROM spate_checkpoints")
		if err != nil {
			return false
		}
		complete, inProgress := false, false
		for _, r := range rows {
			complete = complete || r[0] == "complete"
			inProgress = inProgress || (complete && r[0] == "in progress")
		}
		return inProgress
	})
	w, err := sqltest.QueryText(ctx, cl, "SELECT pid FROM spate_workers WHERE id = 'w1'")
	if err != nil || len(w) != 1 {
		t.Fatal(w, err)
	}
	pid, _ := strconv.Atoi(w[0][0])
	syscall.Kill(pid, syscall.SIGKILL)
	for _, c := range []*pgconn.PgConn{cl, ref} {
		if _, err := c.CopyFrom(ctx, bytes.NewReader(chunk(150000, 50000)), "COPY ev FROM STDIN (FORMAT csv)"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 60*time.Second, "the recovery", func() bool {
		rows, err := sqltest.QueryText(ctx, cl, "SELECT status FROM spate_recoveries")
		return err == nil && len(rows) == 1 && rows[0][0] == "recovered"
	})
	mustExec(t, cl, "INSERT INTO ev VALUES (0, 'x', 99999)")
	mustExec(t, ref, "INSERT INTO ev VALUES (0, 'x', 99999)")
	got, err := sqltest.QueryText(ctx, cl, "SELECT * FROM wide")
	if err != nil {
		t.Fatal(err)
	}
	want, err := sqltest.QueryText(ctx, ref, "SELECT * FROM wide")
	if err != nil {
		t.Fatal(err)
	}
	sortAll(got)
	sortAll(want)
	if len(want) != 100000 || !reflect.DeepEqual(got, want) {
		t.Fatalf("wide differs: %d rows, want %d; first difference %s", len(got), len(want), firstRowDiff(got, want))
	}
	recs, _ := sqltest.QueryText(ctx, cl, "SELECT checkpoint_epoch, replayed, restore_ms FROM spate_recoveries")
	ck, _ := sqltest.QueryText(ctx, cl, "SELECT epoch, status, bytes FROM spate_checkpoints WHERE status <> 'complete'")
	t.Logf("recovery %v; checkpoints not complete: %v", recs, ck)
}

// TestKillUpstreamOrDownstreamWorker runs a query whose stateful stages
// sit on two workers — an interval join on one, the aggregate it feeds on
// the next — and kills, in turn, the worker of the upstream stage and the
// worker of the downstream one, mid-stream. The lost instance is restored
// alone and its consumer keeps running, dropping what the restored one
// sends again: killing the aggregate's worker leaves the join running (it
// replays what it kept), killing the join's leaves the aggregate running
// (the join takes its two inputs in the order the aggregate's log of it
// says). Either way the result equals a failure-free run. The aggregate
// keeps a copy of its snapshots on the join's worker, and is restored
// from it; the join's upstream is the coordinator, which holds its
// snapshot anyway.
func TestKillUpstreamOrDownstreamWorker(t *testing.T) {
	for _, tc := range []struct {
		victim       string
		restored     map[string]bool // stage → restored
		fromUpstream string          // instances restored from a copy upstream
	}{
		{"w1", map[string]bool{"2": true, "3": false}, "0"},
		{"w2", map[string]bool{"2": false, "3": true}, "1"},
	} {
		t.Run("kill "+tc.victim, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cluster := sqltest.StartSpate(t, "--workers", "3", "--checkpoint-interval", "100ms")
			reference := sqltest.StartSpate(t, "--workers", "0")
			cl, ref := connectPg(t, cluster.ConnString()), connectPg(t, reference.ConnString())
			for _, c := range []*pgconn.PgConn{cl, ref} {
				for _, sql := range []string{
					"CREATE STREAM a (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')",
					"CREATE STREAM b (k INT, w INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')",
					"SET parallelism = 1",
					// Stage 2 (the join) goes to w1, stage 3 (the aggregate) to w2.
					"CREATE CONTINUOUS QUERY j AS SELECT a.v % 5 AS g, COUNT(*) AS n, SUM(b.w) AS s FROM a JOIN b ON a.k = b.k AND b.t BETWEEN a.t - 3 AND a.t GROUP BY a.v % 5",
				} {
					mustExec(t, c, sql)
				}
			}
			rng := rand.New(rand.NewPCG(3, 3))
			chunk := func(stream string, t0 int64) []byte {
				var buf bytes.Buffer
				for i := range 4000 {
					fmt.Fprintf(&buf, "%d,%d,%d\n", rng.IntN(20), rng.IntN(100), t0+int64(i)/40)
				}
				return buf.Bytes()
			}
			feed := func(c *pgconn.PgConn, stream string, data []byte) {
				if _, err := c.CopyFrom(ctx, bytes.NewReader(data), "COPY "+stream+" FROM STDIN (FORMAT csv)"); err != nil {
					t.Fatal(err)
				}
			}
			var chunks [][2]any
			for i := range 6 {
				t0 := int64(1000 + 100*i)
				chunks = append(chunks, [2]any{"b", chunk("b", t0)}, [2]any{"a", chunk("a", t0)})
			}
			for i, ch := range chunks {
				if i == 4 {
					waitFor(t, 20*time.Second, "a complete checkpoint of j", func() bool {
						rows, err := sqltest.QueryText(ctx, cl, "SELECT COUNT(*) FROM spate_checkpoints WHERE query = 'j' AND status = 'complete'")
						return err == nil && rows[0][0] != "0"
					})
					hosts, _ := sqltest.QueryText(ctx, cl, "SELECT stage, worker FROM spate_instances WHERE query = 'j' AND stage >= 2 ORDER BY stage")
					if fmt.Sprint(hosts) != "[[2 w1] [3 w2]]" {
						t.Fatalf("placement %v, want the join on w1 and the aggregate on w2", hosts)
					}
					copies, _ := sqltest.QueryText(ctx, cl, "SELECT stage, upstream_copy FROM spate_instance_checkpoints WHERE query = 'j' AND stage >= 2 AND status = 'complete' ORDER BY stage")
					if fmt.Sprint(copies) != "[[2 NULL] [3 w1]]" {
						t.Fatalf("copies upstream %v, want the aggregate's on w1 and none of the join's", copies)
					}
					pid, _ := sqltest.QueryText(ctx, cl, "SELECT pid FROM spate_workers WHERE id = '"+tc.victim+"'")
					n, _ := strconv.Atoi(pid[0][0])
					syscall.Kill(n, syscall.SIGKILL)
				}
				feed(cl, ch[0].(string), ch[1].([]byte))
				feed(ref, ch[0].(string), ch[1].([]byte))
			}
			for _, c := range []*pgconn.PgConn{cl, ref} {
				mustExec(t, c, "INSERT INTO a VALUES (0, 0, 99999)")
				mustExec(t, c, "INSERT INTO b VALUES (0, 0, 99999)")
			}
			waitFor(t, 60*time.Second, "the repair", func() bool {
				rows, err := sqltest.QueryText(ctx, cl, "SELECT status FROM spate_recoveries")
				return err == nil && len(rows) == 1 && rows[0][0] == "recovered"
			})
			got, err := sqltest.QueryText(ctx, cl, "SELECT * FROM j")
			if err != nil {
				t.Fatal(err)
			}
			want, _ := sqltest.QueryText(ctx, ref, "SELECT * FROM j")
			sortAll(got)
			sortAll(want)
			if len(want) == 0 || !reflect.DeepEqual(got, want) {
				t.Fatalf("j after killing %s: %d rows, want %d; %s", tc.victim, len(got), len(want), firstRowDiff(got, want))
			}
			inst, _ := sqltest.QueryText(ctx, cl, "SELECT stage, worker, incarnation FROM spate_instances WHERE query = 'j' AND stage >= 2")
			for _, r := range inst {
				if r[1] == tc.victim {
					t.Errorf("stage %s still on the dead worker", r[0])
				}
				if restored := r[2] != "0"; restored != tc.restored[r[0]] {
					t.Errorf("stage %s restored=%v, want %v (%v)", r[0], restored, tc.restored[r[0]], inst)
				}
			}
			recs, _ := sqltest.QueryText(ctx, cl, "SELECT moved, instances, replayed, restore_ms, consumers, restored_from_upstream FROM spate_recoveries")
			t.Logf("killed %s: recovery %v", tc.victim, recs)
			if recs[0][4] != "kept running" {
				t.Errorf("killed %s: consumers %s, want them kept running", tc.victim, recs[0][4])
			}
			if recs[0][5] != tc.fromUpstream {
				t.Errorf("killed %s: %s instances restored from a copy upstream, want %s", tc.victim, recs[0][5], tc.fromUpstream)
			}
		})
	}
}
