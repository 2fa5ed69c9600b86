package cluster

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRepairRestoresOnlyTheLostPart stops one of three in-process
// workers in the middle of a COPY (under -race in make test): every
// query comes back equal to a single-process run, and the instances the
// repair did not need to restore — those upstream of the lost ones and
// the lost ones' siblings in the same stage — kept running, in their
// first incarnation.
func TestRepairRestoresOnlyTheLostPart(t *testing.T) {
	for _, kills := range [][]int{{0}, {0, 1}} {
		t.Run(fmt.Sprint("kill ", kills), func(t *testing.T) { testRepair(t, kills) })
	}
}

// testRepair stops the workers kills (indexes; the second right after
// the first, while its repair may still run) in the middle of a COPY.
func testRepair(t *testing.T, kills []int) {
	rng := rand.New(rand.NewPCG(7, 7))
	var lines []string
	tm := int64(1_000)
	for i := 0; i < 6000; i++ {
		tm += int64(rng.IntN(3))
		lines = append(lines, fmt.Sprintf("%d,%d,%d", rng.IntN(40), rng.IntN(100), tm-int64(rng.IntN(2))))
	}
	lines = append(lines, fmt.Sprintf("0,0,%d", tm+1000))
	half := len(lines) / 2

	setup := func(s Session) {
		run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '2s')")
		for name, q := range metamorphicQueries {
			run(t, s, "CREATE CONTINUOUS QUERY "+name+" AS "+q)
		}
	}
	rs, s, _, kill := startCompared(t, setup, lines, Config{Parallelism: 3, BatchRows: 200}, 3)
	copyCSV(t, s, "ev", lines[:half])
	waitUntil(t, 10*time.Second, "a complete checkpoint of tumble", func() bool {
		return run(t, s, "SELECT COUNT(*) FROM spate_checkpoints WHERE query = 'tumble' AND status = 'complete'")[0][0] != "0"
	})
	for _, i := range kills {
		kill(i)
	}
	copyCSV(t, s, "ev", lines[half:])
	waitUntil(t, 30*time.Second, "the repairs", func() bool {
		recs := run(t, s, "SELECT status FROM spate_recoveries")
		for _, r := range recs {
			if !recovered(r[0]) {
				return false
			}
		}
		return len(recs) >= len(metamorphicQueries)-1 // filter runs on the coordinator only
	})
	if len(kills) > 1 {
		// Both dead workers' instances moved to the last one.
		waitUntil(t, 30*time.Second, "every instance off the dead workers", func() bool {
			return len(run(t, s, "SELECT * FROM spate_instances WHERE worker = 'w1' OR worker = 'w2'")) == 0 &&
				len(run(t, s, "SELECT * FROM spate_recoveries WHERE caught_up_ms IS NULL")) == 0
		})
	}
	for _, r := range run(t, s, "SELECT query, moved, instances, status FROM spate_recoveries") {
		if !recovered(r[3]) {
			t.Fatalf("recovery %v", r)
		}
	}
	for name := range metamorphicQueries {
		want := sortedText(run(t, rs, "SELECT * FROM "+name))
		got := sortedText(run(t, s, "SELECT * FROM "+name))
		if got != want {
			t.Errorf("%s differs after the repair: %s", name, firstDiff(want, got))
		}
	}
	if len(kills) > 1 {
		return
	}
	// tumble: a source stage, then the aggregate's three instances, one
	// on each worker. Only the one on w1 was restored (on a live worker,
	// incarnation 1); the others and the source kept running.
	for _, r := range run(t, s, "SELECT stage, instance, worker, incarnation FROM spate_instances WHERE query = 'tumble'") {
		restored := r[3] != "0"
		if r[2] == "w1" {
			t.Errorf("instance %s.%s still placed on the dead worker", r[0], r[1])
		}
		if r[0] == "0" && restored {
			t.Errorf("the source instance was restored: %v", r)
		}
		if r[0] == "1" && restored != (r[1] == "0") {
			t.Errorf("aggregate instance %s restored=%v; only instance 0 (on w1) should be: %v", r[1], restored, r)
		}
	}
}

// TestLostChannelRepaired breaks one data channel between live
// processes (the coordinator's source and an aggregate instance on a
// worker): after the grace period the consumer is restored in place
// from the checkpoint and its inputs replayed, and the result equals an
// unbroken run.
func TestLostChannelRepaired(t *testing.T) {
	lines := steadyLines(4000, 17)
	setup := func(s Session) {
		run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')")
		run(t, s, "CREATE CONTINUOUS QUERY w AS SELECT k, window_end, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k, TUMBLE(t, INTERVAL '10' SECOND)")
	}
	rs, s, c, _ := startCompared(t, setup, lines, Config{Parallelism: 2, BatchRows: 100}, 2)
	copyCSV(t, s, "ev", lines[:2000])
	waitUntil(t, 10*time.Second, "a complete checkpoint", func() bool {
		return run(t, s, "SELECT COUNT(*) FROM spate_checkpoints WHERE status = 'complete'")[0][0] != "0"
	})
	c.mu.Lock()
	p := c.queries["w"].pipeline()
	c.mu.Unlock()
	p.stages[0][0].route.outs[1].close() // the channel to aggregate instance 1
	copyCSV(t, s, "ev", lines[2000:])
	waitUntil(t, 30*time.Second, "the repair", func() bool {
		recs := run(t, s, "SELECT reason, status FROM spate_recoveries")
		return len(recs) == 1 && recs[0][1] == "recovered"
	})
	if reason := run(t, s, "SELECT reason FROM spate_recoveries")[0][0]; !strings.Contains(reason, "lost the data channel") {
		t.Errorf("recovery reason %q", reason)
	}
	want := sortedText(run(t, rs, "SELECT * FROM w"))
	if got := sortedText(run(t, s, "SELECT * FROM w")); got != want {
		t.Fatalf("w differs after the repair: %s", firstDiff(want, got))
	}
	inc := run(t, s, "SELECT instance, incarnation FROM spate_instances WHERE query = 'w' AND stage = 1")
	if len(inc) != 2 || inc[0][1] != "0" || inc[1][1] != "1" {
		t.Errorf("incarnations %v: only instance 1 should have been restored", inc)
	}
}

// TestInstanceCheckpoints: SHOW INSTANCE CHECKPOINTS lists each
// instance's part of the newest checkpoint with the input positions it
// covers, which add up to what the sources were fed.
func TestInstanceCheckpoints(t *testing.T) {
	_, s := startSession(t, Config{Parallelism: 2, CheckpointInterval: 10 * time.Millisecond, CheckpointStore: "memory"}, 2)
	run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	run(t, s, "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	run(t, s, "INSERT INTO ev VALUES (1, 1, 1), (2, 2, 2), (3, 3, 3)")
	waitUntil(t, 10*time.Second, "a complete checkpoint", func() bool {
		return len(run(t, s, "SELECT * FROM spate_instance_checkpoints WHERE status = 'complete'")) == 3
	})
	rows := run(t, s, "SHOW INSTANCE CHECKPOINTS")
	var feed, agg []string
	for _, r := range rows {
		if r[10] != "complete" {
			continue
		}
		switch r[2] {
		case "0":
			feed = append(feed, r[9])
			if r[4] != "coordinator" {
				t.Errorf("the source instance's checkpoint came from %s", r[4])
			}
		case "1":
			agg = append(agg, r[9])
			if r[4] != "w1" && r[4] != "w2" {
				t.Errorf("an aggregate instance's checkpoint came from %q", r[4])
			}
		}
	}
	// The source was fed the INSERT's batch and watermark (and barriers);
	// each aggregate instance covers one channel from the source.
	if len(feed) != 1 || !strings.HasPrefix(feed[0], "feed:") || len(agg) != 2 {
		t.Fatalf("instance checkpoints: %v", rows)
	}
	if pause := run(t, s, "SELECT MIN(pause_ms), MIN(alignment_ms) FROM spate_instance_checkpoints WHERE status = 'complete'"); pause[0][0] == "" || strings.HasPrefix(pause[0][0], "-") || strings.HasPrefix(pause[0][1], "-") {
		t.Errorf("pause and alignment times %v", pause)
	}
	for _, p := range agg {
		if !strings.HasPrefix(p, "0.0:") || p == "0.0:0" {
			t.Errorf("aggregate positions %q, want the count of messages from instance 0.0", p)
		}
	}
	if pos := run(t, s, "SELECT positions FROM spate_checkpoints WHERE status = 'complete'"); len(pos) == 0 || !strings.HasPrefix(pos[len(pos)-1][0], "stage 0 at ") {
		t.Errorf("SHOW CHECKPOINTS positions: %v", pos)
	}
}

// recovered reports whether a SHOW RECOVERIES status is a repair that
// ended well: recovered, or carried on by the next repair (which a
// second kill during its replay starts).
func recovered(status string) bool {
	return status == "recovered" || strings.HasPrefix(status, "carried on by the next repair")
}

// startCompared starts a single-process reference, set up by setup and
// fed lines into ev, and a cluster of in-process workers with cfg
// (checkpoints every 20 ms) set up the same way; both stop when the
// test ends. kill stops a worker (startKillableCluster).
func startCompared(t *testing.T, setup func(Session), lines []string, cfg Config, workers int) (ref, s Session, c *Coordinator, kill func(int)) {
	t.Helper()
	rc, _ := startTestCluster(t, Config{Parallelism: 1}, 0)
	t.Cleanup(rc.Close)
	ref, _ = rc.NewSession(context.Background(), "spate", "spate")
	setup(ref)
	copyCSV(t, ref, "ev", lines)
	cfg.CheckpointInterval, cfg.CheckpointStore = 20*time.Millisecond, "memory"
	c, stop, kill := startKillableCluster(t, cfg, workers)
	t.Cleanup(func() {
		c.BeginShutdown()
		stop()
		c.Close()
	})
	s, _ = c.NewSession(context.Background(), "spate", "spate")
	setup(s)
	return ref, s, c, kill
}

// waitUntil polls cond every 20 ms until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLoadBuckets: SHOW INSTANCES counts, for each instance of a
// partitioned stage, the rows it received in each sixteenth of its key
// range — all of them, and a single hot key's in one bucket.
func TestLoadBuckets(t *testing.T) {
	c, stop := startTestCluster(t, Config{Parallelism: 2}, 0)
	defer func() {
		stop()
		c.Close()
	}()
	s, _ := c.NewSession(context.Background(), "spate", "spate")
	run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	run(t, s, "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	var lines []string
	for i := range 1000 {
		k := i % 50
		if i%2 == 0 {
			k = 7 // half the rows on one key
		}
		lines = append(lines, fmt.Sprintf("%d,%d,%d", k, i, i))
	}
	copyCSV(t, s, "ev", lines)
	total, hottest := 0, 0
	for _, r := range run(t, s, "SELECT load_buckets FROM spate_instances WHERE query = 'totals' AND stage = 1") {
		var b [LoadBuckets]int
		if _, err := fmt.Sscanf(r[0], "[%d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d]", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &b[6], &b[7],
			&b[8], &b[9], &b[10], &b[11], &b[12], &b[13], &b[14], &b[15]); err != nil {
			t.Fatalf("load_buckets %q: %v", r[0], err)
		}
		for _, n := range b {
			total += n
			hottest = max(hottest, n)
		}
	}
	if total != 1000 || hottest < 500 {
		t.Fatalf("load buckets count %d rows (want 1000), the hottest bucket %d (want at least the hot key's 500)", total, hottest)
	}
	if got := run(t, s, "SELECT load_buckets FROM spate_instances WHERE query = 'totals' AND stage = 0")[0][0]; got != "NULL" {
		t.Errorf("the source stage has load buckets %q", got)
	}
	// busy is the share of the last seconds each instance worked: some,
	// once the second the rows came in is over.
	waitUntil(t, 3*time.Second, "SHOW INSTANCES to show the instances busy", func() bool {
		return run(t, s, "SELECT MIN(busy) > 0 AND MAX(busy) <= 1 FROM spate_instances WHERE query = 'totals'")[0][0] == "t"
	})
}

// TestBusyMeter: the busy share counts the whole seconds before now's,
// back to busyWindow of them.
func TestBusyMeter(t *testing.T) {
	var m busyMeter
	t0 := time.Unix(1000, 0)
	m.add(t0.Add(500*time.Millisecond), 300*time.Millisecond)
	m.add(t0.Add(1200*time.Millisecond), 400*time.Millisecond)
	m.add(t0.Add(1700*time.Millisecond), 100*time.Millisecond)
	for _, c := range []struct {
		at   time.Duration
		want float64
	}{
		{900 * time.Millisecond, 0}, // the current second is not over
		{1500 * time.Millisecond, 0.3 / busyWindow},
		{2 * time.Second, 0.8 / busyWindow},
		{5 * time.Second, 0.8 / busyWindow},
		{6500 * time.Millisecond, 0.5 / busyWindow}, // the first second left the window
		{7 * time.Second, 0},
	} {
		if got := m.fraction(t0.Add(c.at)); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("at %v: busy %v, want %v", c.at, got, c.want)
		}
	}
	// A slot is reused for a later second, not added to.
	m.add(t0.Add(7*time.Second+100*time.Millisecond), 2*time.Second)
	if got := m.fraction(t0.Add(8 * time.Second)); got != 2.0/busyWindow {
		t.Errorf("after a slot's reuse: busy %v, want %v", got, 2.0/busyWindow)
	}
}

// steadyLines is n CSV rows (k, v, t) of keys 0..keys-1 with the time
// rising one second every ten rows, then a row far ahead that closes
// every window.
func steadyLines(n, keys int) []string {
	var lines []string
	for i := range n {
		lines = append(lines, fmt.Sprintf("%d,%d,%d", i%keys, i%100, 1000+i/10))
	}
	return append(lines, "0,0,99999")
}

// TestRepairKeepsConsumers: a lost instance is restored alone — one that
// reads one upstream instance (the aggregates, OVER) as well as a join
// of two (whose following of its log TestRepairFollowsInputLog tests). Checkpoints stop after the first half of
// the input, so everything the second half made reached the sink after
// the checkpoint the repair restores; the restored instance sends it
// again and the sink drops it (sink_duplicates_dropped), the result
// neither rolled back nor counted twice: equal to a run without the
// failure.
func TestRepairKeepsConsumers(t *testing.T) {
	lines := steadyLines(6000, 23)
	queries := map[string]string{}
	for _, name := range []string{"tumble", "session", "updating", "over", "selfjoin", "leftjoin"} {
		queries[name] = metamorphicQueries[name]
	}
	setup := func(s Session) {
		run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')")
		for name, q := range queries {
			run(t, s, "CREATE CONTINUOUS QUERY "+name+" AS "+q)
		}
	}
	rs, s, c, kill := startCompared(t, setup, lines, Config{Parallelism: 2, BatchRows: 100}, 2)
	copyCSV(t, s, "ev", lines[:3000])
	for name := range queries {
		waitUntil(t, 10*time.Second, "a complete checkpoint of "+name, func() bool {
			return run(t, s, "SELECT COUNT(*) FROM spate_checkpoints WHERE query = '"+name+"' AND status = 'complete'")[0][0] != "0"
		})
		c.mu.Lock()
		c.queries[name].ckpt.pause()
		c.mu.Unlock()
	}
	copyCSV(t, s, "ev", lines[3000:])
	kill(0)
	waitUntil(t, 30*time.Second, "the repairs", func() bool {
		recs := run(t, s, "SELECT status FROM spate_recoveries")
		for _, r := range recs {
			if r[0] != "recovered" {
				return false
			}
		}
		return len(recs) == len(queries)
	})
	for _, r := range run(t, s, "SELECT query, consumers, sink_duplicates_dropped, instances FROM spate_recoveries") {
		if r[1] != "kept running" || r[3] != "1" {
			t.Errorf("recovery of %s: consumers %s, %s instances restored; want the lost instance alone", r[0], r[1], r[3])
		}
		if r[2] == "0" {
			t.Errorf("recovery of %s: the sink dropped nothing, but the restored instance sent the second half's output again", r[0])
		}
	}
	for name := range queries {
		want := sortedText(run(t, rs, "SELECT * FROM "+name))
		if got := sortedText(run(t, s, "SELECT * FROM "+name)); got != want {
			t.Errorf("%s differs after the repair: %s", name, firstDiff(want, got))
		}
	}
}

// TestRepairFollowsInputLog: a join fed by two streams at once, its
// aggregate on another worker. The join's worker is stopped while both
// streams flow, after the aggregate received part of what the join made
// since the checkpoint; the replay then brings the join's two inputs in
// an order of their own (replaySourcesInTurn). The restored join takes
// them in the order the aggregate's log of it gives, so it sends the
// aggregate the same messages again: the aggregate keeps running, and
// its result equals a run without the failure. With the log forgotten
// (as after more than keptLogs barriers since the restore point) the
// repair falls back to restoring the aggregate too, with the same result.
func TestRepairFollowsInputLog(t *testing.T) {
	for _, forget := range []bool{false, true} {
		t.Run(fmt.Sprint("forgotten=", forget), func(t *testing.T) { testRepairFollowsInputLog(t, forget) })
	}
}

func testRepairFollowsInputLog(t *testing.T, forget bool) {
	replaySourcesInTurn, forgetInputLogs = true, forget
	defer func() { replaySourcesInTurn, forgetInputLogs = false, false }()
	rng := rand.New(rand.NewPCG(5, 5))
	gen := func(t0 int64) []string {
		var lines []string
		for i := range 400 {
			lines = append(lines, fmt.Sprintf("%d,%d,%d", rng.IntN(20), rng.IntN(100), t0+int64(i)/20))
		}
		return lines
	}
	var as, bs [][]string
	for i := range 12 {
		as, bs = append(as, gen(int64(1000+20*i))), append(bs, gen(int64(1000+20*i)))
	}
	setup := func(s Session) {
		run(t, s, "CREATE STREAM a (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')")
		run(t, s, "CREATE STREAM b (k INT, w INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')")
		run(t, s, "CREATE CONTINUOUS QUERY j AS SELECT a.v % 5 AS g, COUNT(*) AS n, SUM(b.w) AS s FROM a JOIN b ON a.k = b.k AND b.t BETWEEN a.t - 3 AND a.t GROUP BY a.v % 5")
	}
	rc, _ := startTestCluster(t, Config{Parallelism: 1}, 0)
	t.Cleanup(rc.Close)
	rs, _ := rc.NewSession(context.Background(), "spate", "spate")
	setup(rs)
	for i := range as {
		copyCSV(t, rs, "b", bs[i])
		copyCSV(t, rs, "a", as[i])
	}
	c, stop, kill := startKillableCluster(t, Config{Parallelism: 1, BatchRows: 50, CheckpointInterval: 20 * time.Millisecond, CheckpointStore: "memory"}, 2)
	t.Cleanup(func() {
		c.BeginShutdown()
		stop()
		c.Close()
	})
	s, _ := c.NewSession(context.Background(), "spate", "spate")
	setup(s)
	copyCSV(t, s, "b", bs[0])
	copyCSV(t, s, "a", as[0])
	waitUntil(t, 10*time.Second, "a complete checkpoint", func() bool {
		return run(t, s, "SELECT COUNT(*) FROM spate_checkpoints WHERE status = 'complete'")[0][0] != "0"
	})
	c.mu.Lock()
	c.queries["j"].ckpt.pause()
	c.mu.Unlock()
	join := run(t, s, "SELECT worker FROM spate_instances WHERE query = 'j' AND stage = 2")[0][0]
	if agg := run(t, s, "SELECT worker FROM spate_instances WHERE query = 'j' AND stage = 3")[0][0]; agg == join {
		t.Fatalf("the join and the aggregate are both on %s", join)
	}
	// Both streams at once, so the join takes its inputs interleaved.
	done := make(chan struct{})
	go func() {
		defer close(done)
		s2, _ := c.NewSession(context.Background(), "spate", "spate")
		for _, lines := range bs[1:] {
			copyCSV(t, s2, "b", lines)
		}
	}()
	for i, lines := range as[1:] {
		if i == 5 {
			kill(int(join[1] - '1'))
		}
		copyCSV(t, s, "a", lines)
	}
	<-done
	waitUntil(t, 30*time.Second, "the repair", func() bool {
		recs := run(t, s, "SELECT status FROM spate_recoveries")
		return len(recs) == 1 && recs[0][0] == "recovered"
	})
	if forget {
		if r := run(t, s, "SELECT consumers, instances FROM spate_recoveries")[0]; r[0] != "restored" || r[1] == "1" {
			t.Errorf("recovery without the input log: consumers %s, %s instances restored; want the aggregate restored too", r[0], r[1])
		}
	} else if r := run(t, s, "SELECT consumers, instances FROM spate_recoveries")[0]; r[0] != "kept running" || r[1] != "1" {
		t.Errorf("recovery: consumers %s, %s instances restored; want the join alone", r[0], r[1])
	} else if agg := run(t, s, "SELECT incarnation, duplicates_dropped FROM spate_instances WHERE query = 'j' AND stage = 3")[0]; agg[0] != "0" {
		t.Errorf("the aggregate was restored: %v", agg)
	} else {
		t.Logf("the aggregate dropped %s duplicates", agg[1])
	}
	want := sortedText(run(t, rs, "SELECT * FROM j"))
	if got := sortedText(run(t, s, "SELECT * FROM j")); got != want {
		t.Fatalf("j differs after the repair: %s", firstDiff(want, got))
	}
}

// TestEveryWorkerDiesThenOneJoins: both workers die. The repairs wait
// for a worker rather than fail the queries; rows ingested meanwhile
// are kept. When a new worker joins, the queries are restored on it
// from their checkpoints and the results equal a single-process run's.
func TestEveryWorkerDiesThenOneJoins(t *testing.T) {
	lines := steadyLines(6000, 37)
	setup := func(s Session) {
		run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '2s')")
		for _, name := range []string{"tumble", "updating", "selfjoin"} {
			run(t, s, "CREATE CONTINUOUS QUERY "+name+" AS "+metamorphicQueries[name])
		}
	}
	rs, s, c, kill := startCompared(t, setup, lines, Config{Parallelism: 2, BatchRows: 200}, 2)
	copyCSV(t, s, "ev", lines[:2000])
	waitUntil(t, 10*time.Second, "a checkpoint of every query", func() bool {
		return run(t, s, "SELECT COUNT(DISTINCT query) FROM spate_checkpoints WHERE status = 'complete'")[0][0] == "3"
	})
	kill(0)
	kill(1)
	waitUntil(t, 10*time.Second, "both workers to be seen dead", func() bool {
		return run(t, s, "SELECT COUNT(*) FROM spate_workers WHERE role = 'worker' AND status = 'alive'")[0][0] == "0"
	})
	copying := copyAsync(s, "ev", lines[2000:4000]) // ingested while no worker lives
	time.Sleep(6 * time.Second)                     // longer than a repair's retries
	// The queries and SHOW RECOVERIES say what they wait for.
	for _, r := range run(t, s, "SELECT name, status FROM spate_continuous_queries") {
		if r[1] != "recovering: waiting for a worker to join (every worker is dead)" {
			t.Fatalf("%s is %q while it waits for a worker", r[0], r[1])
		}
	}
	// (A repair of the first death may have finished on the second
	// worker before that one was seen dead: it is listed, recovered.)
	waiting := run(t, s, "SELECT query, status, restore_ms IS NULL, caught_up_ms IS NULL FROM spate_recoveries WHERE status NOT LIKE 'recovered%' ORDER BY query")
	if fmt.Sprint(waiting) != "[[selfjoin waiting for a worker to join (every worker is dead) t t] "+
		"[tumble waiting for a worker to join (every worker is dead) t t] [updating waiting for a worker to join (every worker is dead) t t]]" {
		t.Fatalf("SHOW RECOVERIES while the repairs wait for a worker: %v", waiting)
	}
	// SHOW INSTANCES says the dead workers' instances are lost, and why
	// they are not restored yet.
	for _, r := range run(t, s, "SELECT worker, status FROM spate_instances WHERE worker <> 'coordinator'") {
		if r[1] != "lost with worker "+r[0]+", which died; waiting for a worker to join (every worker is dead)" {
			t.Errorf("SHOW INSTANCES while the repairs wait for a worker: an instance on %s is %q", r[0], r[1])
		}
	}
	// The statements return meanwhile: what they ingested is logged and
	// kept for the queries.
	select {
	case err := <-copying:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a COPY waits for queries whose repairs wait for a worker")
	}
	copyCSV(t, s, "ev", lines[4000:5000])
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := RunWorker(ctx, WorkerConfig{Join: c.ClusterAddr(), Token: "test-token"}); err != nil && ctx.Err() == nil {
			t.Errorf("worker: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	copyCSV(t, s, "ev", lines[5000:])
	for _, name := range []string{"tumble", "updating", "selfjoin"} {
		want := sortedText(run(t, rs, "SELECT * FROM "+name))
		waitUntil(t, 30*time.Second, name+" to equal the reference", func() bool {
			return sortedText(run(t, s, "SELECT * FROM "+name)) == want
		})
	}
	if r := run(t, s, "SELECT DISTINCT worker, status FROM spate_instances WHERE worker <> 'coordinator'"); fmt.Sprint(r) != "[[w3 running]]" {
		t.Errorf("instances run on %v, want the new worker w3", r)
	}
	waitUntil(t, 10*time.Second, "every repair to be recorded as recovered", func() bool {
		recs := run(t, s, "SELECT DISTINCT query, status, caught_up_ms >= restore_ms FROM spate_recoveries WHERE restore_ms >= 6000 ORDER BY query")
		return fmt.Sprint(recs) == "[[selfjoin recovered t] [tumble recovered t] [updating recovered t]]"
	})
	if r := run(t, s, "SELECT DISTINCT status FROM spate_continuous_queries"); fmt.Sprint(r) != "[[running]]" {
		t.Errorf("after the repairs the queries are %v", r)
	}
}

// TestSelfJoinReplayDoesNotWait: the two sides of a self-join read one
// stream, whose statements fed both together; a replay of the sources
// sends them without waiting between the sides (each wait is a flush
// across the workers), and the result equals an unbroken run.
func TestSelfJoinReplayDoesNotWait(t *testing.T) {
	lines := steadyLines(4000, 13)
	setup := func(s Session) {
		run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')")
		run(t, s, "CREATE CONTINUOUS QUERY j AS SELECT a.k % 7 AS g, COUNT(*) AS n, SUM(b.v) AS s FROM ev a JOIN ev b ON a.k = b.k AND b.t BETWEEN a.t - 1 AND a.t GROUP BY a.k % 7")
	}
	var waits atomic.Int32
	replayFlushHook = func(<-chan struct{}) { waits.Add(1) }
	t.Cleanup(func() { replayFlushHook = nil }) // after the cluster stopped
	rs, s, c, _ := startCompared(t, setup, lines, Config{Parallelism: 2, BatchRows: 20}, 2)
	copyCSV(t, s, "ev", lines[:1000])
	awaitCheckpoint(t, s, "j")
	c.mu.Lock()
	qr := c.queries["j"]
	c.mu.Unlock()
	qr.ckpt.pause() // the replay covers everything from here
	for i := 1000; i < 3000; i += 100 {
		copyCSV(t, s, "ev", lines[i:i+100]) // 20 statements, each both sides
	}
	qr.pipeline().stages[0][0].outlets()[0].close() // the channel to join instance 0
	copyCSV(t, s, "ev", lines[3000:3100])           // finds it closed
	waitUntil(t, 30*time.Second, "the repair", func() bool {
		return fmt.Sprint(run(t, s, "SELECT status, replayed > 100 FROM spate_recoveries")) == "[[recovered t]]"
	})
	copyCSV(t, s, "ev", lines[3100:])
	awaitReference(t, s, rs, "j")
	if n := waits.Load(); n != 0 {
		t.Errorf("the replay waited %d times between the sides of the self-join", n)
	}
}

// TestRepairDuringSourceReplay: a join's instances lose their channels
// from one source one after the other, each time while the previous
// repair's replay of the sources waits between the two streams' batches.
// Each replay's wait passes every outlet of the source, so two replays
// at once would wait for each other for ever; instead each repair stops
// the replay in progress and carries on what it had left with its own
// (the third carries on the second's, which carried on the first's), and
// the result equals an unbroken run.
func TestRepairDuringSourceReplay(t *testing.T) {
	lines := steadyLines(8000, 13)
	setup := func(s Session) {
		for _, name := range []string{"ev", "ea", "eb"} { // ev: startCompared's
			run(t, s, "CREATE STREAM "+name+" (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s', idle_timeout = '0')")
		}
		run(t, s, "CREATE CONTINUOUS QUERY j AS SELECT a.k % 7 AS g, COUNT(*) AS n, SUM(b.v) AS s FROM ea a JOIN eb b ON a.k = b.k AND b.t BETWEEN a.t - 1 AND a.t GROUP BY a.k % 7")
	}
	// The first 4000 lines go into both streams, the rest into ea alone
	// (the copies behind the repairs: one stream keeps them in order).
	copyBoth := func(s Session, part []string) {
		copyCSV(t, s, "ea", part)
		copyCSV(t, s, "eb", part)
	}
	t.Cleanup(func() { replayFlushHook = nil }) // after the cluster stopped
	rs, s, c, _ := startCompared(t, setup, lines, Config{Parallelism: 2, BatchRows: 50}, 2)
	copyBoth(rs, lines[:4000])
	copyCSV(t, rs, "ea", lines[4000:])
	copyBoth(s, lines[:2000])
	waitUntil(t, 10*time.Second, "a complete checkpoint", func() bool {
		return run(t, s, "SELECT COUNT(*) FROM spate_checkpoints WHERE status = 'complete'")[0][0] != "0"
	})
	c.mu.Lock()
	qr := c.queries["j"]
	c.mu.Unlock()
	qr.ckpt.pause() // the replays cover everything from here
	copyBoth(s, lines[2000:4000])

	// The first two replays' first waits hold until a repair stops them
	// (or, for the second, until the test lets it go on).
	reached := []chan struct{}{make(chan struct{}), make(chan struct{})}
	release := make(chan struct{})
	var calls atomic.Int32
	replayFlushHook = func(stop <-chan struct{}) {
		if n := calls.Add(1); n <= 2 {
			close(reached[n-1])
			select {
			case <-stop:
			case <-release:
			}
		}
	}
	p := qr.pipeline()
	src := p.stages[0][0]
	// Each part is one COPY, on a session of its own: all its rows go in
	// before its acknowledgement waits for the repairs, so the parts go
	// in in order of time.
	var copies []chan error
	copyBehind := func(part []string) {
		s2, _ := c.NewSession(context.Background(), "spate", "spate")
		done := make(chan error, 1)
		go func() { done <- copyLines(s2, "ea", part) }()
		copies = append(copies, done)
	}
	awaitWait := func(i int) {
		select {
		case <-reached[i]:
		case <-time.After(30 * time.Second):
			t.Fatalf("replay %d of the sources did not wait between them", i+1)
		}
	}
	src.outlets()[0].close() // the channel to join instance 0
	copyBehind(lines[4000:5000])
	awaitWait(0)
	src.outlets()[1].close() // to join instance 1: the second repair
	copyBehind(lines[5000:6500])
	awaitWait(1)
	// To join instance 0 again, now the second replay's channel: the
	// second replay finds it closed when it goes on, and a third repair
	// carries it on.
	src.outlets()[0].close()
	time.Sleep(200 * time.Millisecond)
	close(release)
	copyBehind(lines[6500:])
	for _, done := range copies {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// The first two repairs' replays were held back until the third
	// began: each is listed as carried on by the next.
	carried := "carried on by the next repair (its replay was not through)"
	waitUntil(t, 30*time.Second, "the repairs", func() bool {
		return fmt.Sprint(run(t, s, "SELECT status FROM spate_recoveries")) == "[["+carried+"] ["+carried+"] [recovered]]"
	})
	qr.recoverMu.Lock()
	repairs := qr.repairs
	qr.recoverMu.Unlock()
	if repairs != 3 {
		t.Errorf("%d repairs, want 3", repairs)
	}
	want := sortedText(run(t, rs, "SELECT * FROM j"))
	for i := 0; i < 100; i++ {
		got := sortedText(run(t, s, "SELECT * FROM j"))
		if got == want {
			t.Logf("equal after %d", i)
			break
		}
		t.Logf("differs: %s recs %v", firstDiff(want, got), run(t, s, "SELECT * FROM spate_recoveries"))
		time.Sleep(100 * time.Millisecond)
	}
	if got := sortedText(run(t, s, "SELECT * FROM j")); got != want {
		t.Fatalf("j differs after the repairs: %s", firstDiff(want, got))
	}
}

// TestCrashLoopStopsTheQuery: a query whose restored instance is lost
// again soon after each repair (as when its state kills every worker it
// lands on) is stopped at the fourth loss in a row, with the workers
// named, instead of being moved on to the last worker; that worker stays
// for other queries.
func TestCrashLoopStopsTheQuery(t *testing.T) {
	const workers = 5
	_, s, kill := startKillableSession(t, Config{Parallelism: 1, BatchRows: 200}, workers)
	run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '2s')")
	run(t, s, "CREATE CONTINUOUS QUERY loop AS "+metamorphicQueries["tumble"])
	lines := steadyLines(2000, 7)
	copyCSV(t, s, "ev", lines[:1000])
	var killed []string
	for i := range workers - 1 {
		var host string
		waitUntil(t, 30*time.Second, "the query's aggregate restored on a live worker", func() bool {
			if run(t, s, "SELECT COUNT(*) FROM spate_recoveries WHERE status = 'recovered'")[0][0] != fmt.Sprint(i) {
				return false
			}
			rows := run(t, s, "SELECT worker FROM spate_instances WHERE query = 'loop' AND worker <> 'coordinator'")
			if len(rows) != 1 || slices.Contains(killed, rows[0][0]) {
				return false
			}
			host = rows[0][0]
			return true
		})
		killed = append(killed, host)
		var w int
		fmt.Sscanf(host, "w%d", &w)
		kill(w - 1)
	}
	var status string
	waitUntil(t, 30*time.Second, "the query to be stopped", func() bool {
		status = run(t, s, "SELECT status FROM spate_continuous_queries WHERE name = 'loop'")[0][0]
		return strings.HasPrefix(status, "failed")
	})
	if !strings.Contains(status, "3 times in a row") || !strings.Contains(status, "on workers "+strings.Join(killed, ", ")+")") {
		t.Errorf("status %q (killed %v)", status, killed)
	}
	if got := run(t, s, "SELECT COUNT(*) FROM spate_recoveries WHERE status LIKE 'failed: the continuous query lost%'"); got[0][0] != "1" {
		t.Errorf("stopping recoveries: %v", got)
	}
	// The last worker was spared: a new query runs on it.
	run(t, s, "CREATE CONTINUOUS QUERY after AS "+metamorphicQueries["tumble"])
	if got := run(t, s, "SELECT COUNT(*) FROM spate_instances WHERE query = 'after' AND worker <> 'coordinator'"); got[0][0] != "1" {
		t.Fatalf("instances of the new query on workers: %v", got)
	}
	copyCSV(t, s, "ev", lines[1000:])
	waitUntil(t, 30*time.Second, "the new query's result", func() bool {
		return run(t, s, "SELECT COUNT(*) FROM after")[0][0] != "0"
	})
}

// TestRepairWithUnreadCursor: a cursor nobody reads holds its query back
// (its result's subscriber queue is full), and a worker dies. The repairs
// of the other queries do not wait for it, the held-back query's repair
// does not fail, and once the cursor is read everything is exact.
func TestRepairWithUnreadCursor(t *testing.T) {
	lines := steadyLines(60000, 37)
	setup := func(s Session) {
		run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '2s')")
		for _, name := range []string{"filter", "updating", "tumble"} {
			run(t, s, "CREATE CONTINUOUS QUERY "+name+" AS "+metamorphicQueries[name])
		}
	}
	rs, s, _, kill := startCompared(t, setup, lines, Config{Parallelism: 2, BatchRows: 100}, 2)
	reader := s2(t, s)
	mustExec1(t, reader, "DECLARE cur CURSOR FOR SUBSCRIBE updating")
	copying := copyAsync(s, "ev", lines)
	waitUntil(t, 30*time.Second, "the query held back by the unread cursor", func() bool {
		return run(t, s, "SELECT subscriber_wait_seconds > 0.5 FROM spate_continuous_queries WHERE name = 'updating'")[0][0] == "t"
	})
	kill(0)
	waitUntil(t, 60*time.Second, "the repair of the query the cursor does not hold back", func() bool {
		rows := run(t, s, "SELECT status FROM spate_recoveries WHERE query = 'tumble'")
		return len(rows) > 0 && recovered(rows[len(rows)-1][0])
	})
	time.Sleep(20 * time.Second) // longer than a repair's attempts against a held-back worker
	for _, r := range run(t, s, "SELECT query, status FROM spate_recoveries") {
		if strings.HasPrefix(r[1], "failed") {
			t.Fatalf("a repair failed while the cursor held its query back: %v", r)
		}
	}
	mustExec1(t, reader, "FETCH 10 FROM cur")
	mustExec1(t, reader, "CLOSE cur") // lets the query go on
	if err := <-copying; err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "every repair", func() bool {
		for _, r := range run(t, s, "SELECT status FROM spate_recoveries") {
			if !recovered(r[0]) {
				return false
			}
		}
		return true
	})
	for _, q := range []string{"filter", "updating", "tumble"} {
		awaitReference(t, s, rs, q)
	}
}
