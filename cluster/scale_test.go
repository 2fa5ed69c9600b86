package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spatedb/spate/cluster/control"
	"github.com/spatedb/spate/parser"
)

// TestScaleOutAndIn scales every partitioned stage of every metamorphic
// query out (a third instance, split where the load halves) and back in
// while a COPY streams in, on in-process workers (under -race in make
// test): the results equal a single-process run, SHOW INSTANCES shows the
// new instances and ranges, and SHOW SCALING EVENTS records each step.
func TestScaleOutAndIn(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	var lines []string
	tm := int64(1_000)
	for i := 0; i < 6000; i++ {
		tm += int64(rng.IntN(3))
		lines = append(lines, fmt.Sprintf("%d,%d,%d", rng.IntN(40), rng.IntN(100), tm-int64(rng.IntN(2))))
	}
	lines = append(lines, fmt.Sprintf("0,0,%d", tm+1000))
	setup := func(s Session) {
		run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '2s')")
		for name, q := range metamorphicQueries {
			run(t, s, "CREATE CONTINUOUS QUERY "+name+" AS "+q)
		}
	}
	rs, s, c, _ := startCompared(t, setup, lines, Config{Parallelism: 2, BatchRows: 200}, 2)
	third := len(lines) / 3
	copyCSV(t, s, "ev", lines[:third])
	type target struct {
		query string
		stage int
	}
	var targets []target
	for name := range metamorphicQueries {
		c.mu.Lock()
		q := c.queries[name].def
		c.mu.Unlock()
		for _, st := range q.Plan.Stages {
			if st.Source == nil && len(st.PartitionBy) > 0 {
				targets = append(targets, target{name, st.ID})
			}
		}
	}
	if len(targets) < 5 {
		t.Fatalf("only %d partitioned stages to scale", len(targets))
	}
	ctx := context.Background()
	waitCheckpoints := func() {
		for _, tg := range targets {
			waitUntil(t, 10*time.Second, "a complete checkpoint of "+tg.query, func() bool {
				return run(t, s, "SELECT COUNT(*) FROM spate_checkpoints WHERE query = '"+tg.query+"' AND status = 'complete'")[0][0] != "0"
			})
		}
	}
	waitCheckpoints()
	// The rescales run while a COPY streams in: what the upstream kept
	// after the checkpoint is split and replayed.
	copying := copyAsync(s, "ev", lines[third:2*third])
	split := map[target]int{} // the instance split, which the new one follows in key order
	for _, tg := range targets {
		before := incarnations(t, s, tg.query)
		ev, err := c.ScaleOut(ctx, tg.query, tg.stage, -1, 0, "test")
		if err != nil {
			t.Fatalf("scale out %s stage %d: %v", tg.query, tg.stage, err)
		}
		if ev.Status != "done" || ev.OldRanges == ev.NewRanges {
			t.Fatalf("scale out %s: %+v", tg.query, ev)
		}
		t.Logf("%s stage %d: %s -> %s, %d bytes moved in %v, %d instances restored", tg.query, tg.stage, ev.OldRanges, ev.NewRanges, ev.Bytes, ev.Took, ev.Restored)
		// In place: only the split instance and the new one are new
		// incarnations; everything else, downstream included, ran on.
		restored := restoredSince(t, before, incarnations(t, s, tg.query))
		if ev.Restored != 2 || len(restored) != 2 || restored[1] != [2]int{tg.stage, 2} || restored[0][0] != tg.stage {
			t.Fatalf("scale out of %s stage %d restored %v (%d), want the split instance and the new instance 2", tg.query, tg.stage, restored, ev.Restored)
		}
		split[tg] = restored[0][1]
	}
	for _, tg := range targets {
		n := run(t, s, fmt.Sprintf("SELECT COUNT(*) FROM spate_instances WHERE query = '%s' AND stage = %d", tg.query, tg.stage))
		if n[0][0] != "3" {
			t.Errorf("%s stage %d runs %s instances after the scale-out, want 3", tg.query, tg.stage, n[0][0])
		}
	}
	if err := <-copying; err != nil {
		t.Fatal(err)
	}
	waitCheckpoints()
	copying = copyAsync(s, "ev", lines[2*third:])
	for i, tg := range targets {
		// Half merge the split pair back, half instance 0 with the next
		// range's: after a split of instance 1 that frees index 1, and
		// the last instance (2) moves there.
		idx := split[tg]
		if i%2 == 1 {
			idx = 0
		}
		before := incarnations(t, s, tg.query)
		ev, err := c.ScaleIn(ctx, tg.query, tg.stage, idx, "test")
		if err != nil {
			t.Fatalf("scale in %s stage %d: %v", tg.query, tg.stage, err)
		}
		restored := restoredSince(t, before, incarnations(t, s, tg.query))
		t.Logf("%s stage %d: %s -> %s, restored %v", tg.query, tg.stage, ev.OldRanges, ev.NewRanges, restored)
		// In place: the merged instance, and the last one if it moved.
		want := [][2]int{{tg.stage, min(idx, 1)}}
		if idx == 0 && split[tg] == 1 {
			want = append(want, [2]int{tg.stage, 1})
		}
		if ev.Restored != len(want) || fmt.Sprint(restored) != fmt.Sprint(want) {
			t.Fatalf("scale in of %s stage %d instance %d restored %v (%d), want %v", tg.query, tg.stage, idx, restored, ev.Restored, want)
		}
	}
	if err := <-copying; err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the rescales to finish", func() bool {
		for _, qr := range c.runningQueries() {
			if qr.recovering.Load() {
				return false
			}
		}
		return true
	})
	for name := range metamorphicQueries {
		want := sortedText(run(t, rs, "SELECT * FROM "+name))
		got := sortedText(run(t, s, "SELECT * FROM "+name))
		if got != want {
			t.Errorf("%s differs after scaling: %s", name, firstDiff(want, got))
		}
	}
}

// incarnations is each instance's incarnation from SHOW INSTANCES.
func incarnations(t *testing.T, s Session, query string) map[[2]int]string {
	t.Helper()
	out := map[[2]int]string{}
	for _, r := range run(t, s, "SELECT stage, instance, incarnation FROM spate_instances WHERE query = '"+query+"'") {
		var k [2]int
		fmt.Sscan(r[0], &k[0])
		fmt.Sscan(r[1], &k[1])
		out[k] = r[2]
	}
	return out
}

// restoredSince lists, in order, the instances of after that are not
// those of before: new, or a new incarnation.
func restoredSince(t *testing.T, before, after map[[2]int]string) [][2]int {
	set := map[[2]int]bool{}
	for k, gen := range after {
		if before[k] != gen {
			set[k] = true
		}
	}
	return sortedInstances(set)
}

// copyAsync runs a COPY of lines into table on another goroutine, in
// chunks of 50 rows, and reports its error.
func copyAsync(s Session, table string, lines []string) <-chan error {
	done := make(chan error, 1)
	go func() {
		st, err := parser.ParseOne("COPY " + table + " FROM STDIN (FORMAT csv)")
		for len(lines) > 0 && err == nil {
			n := min(len(lines), 50)
			var res Result
			if res, err = s.Execute(context.Background(), st, nil); err == nil {
				if err = res.CopyIn.Write([]byte(strings.Join(lines[:n], "\n") + "\n")); err == nil {
					_, err = res.CopyIn.Finish()
				}
			}
			lines = lines[n:]
		}
		done <- err
	}()
	return done
}

// TestAlterContinuousQuery: the SQL of scaling — SCALE OUT / IN with
// SHOW SCALING EVENTS and SHOW INSTANCES' new ranges, SET of the scaling
// settings, and clear errors.
func TestAlterContinuousQuery(t *testing.T) {
	c, s := startSession(t, Config{Parallelism: 2, CheckpointInterval: 20 * time.Millisecond, CheckpointStore: "memory"}, 2)
	run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	run(t, s, "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k")
	run(t, s, "CREATE CONTINUOUS QUERY everything AS SELECT COUNT(*) AS n FROM ev")
	var lines []string
	for i := range 2000 {
		lines = append(lines, fmt.Sprintf("%d,%d,%d", i%50, i, 1000+i))
	}
	copyCSV(t, s, "ev", lines[:1000])
	run(t, s, "ALTER CONTINUOUS QUERY totals SCALE OUT STAGE 1 INSTANCE 1")
	if r := run(t, s, "SELECT COUNT(*) FROM spate_instances WHERE query = 'totals' AND stage = 1"); r[0][0] != "3" {
		t.Fatalf("totals runs %s aggregate instances after SCALE OUT, want 3", r[0][0])
	}
	// Instance 0, before the split, kept running (incarnation 0); the
	// halves of instance 1 are new incarnations.
	if r := run(t, s, "SELECT instance, incarnation > 0 FROM spate_instances WHERE query = 'totals' AND stage = 1 ORDER BY instance"); fmt.Sprint(r) != "[[0 f] [1 t] [2 t]]" {
		t.Errorf("instances and whether they were restored: %v", r)
	}
	ev := run(t, s, "SELECT query, stage, decision, status, old_ranges <> new_ranges FROM spate_scaling_events")
	if len(ev) != 1 || fmt.Sprint(ev[0]) != "[totals 1 scale out done t]" {
		t.Fatalf("SHOW SCALING EVENTS: %v", ev)
	}
	copyCSV(t, s, "ev", lines[1000:])
	// Instance 0 merges with 1, which owns the next key range; 2 (the
	// upper half of the split), the last, moves to 1: both are restored,
	// nothing else.
	before := incarnations(t, s, "totals")
	run(t, s, "ALTER CONTINUOUS QUERY totals SCALE IN STAGE 1 INSTANCE 0")
	if r := restoredSince(t, before, incarnations(t, s, "totals")); fmt.Sprint(r) != "[[1 0] [1 1]]" {
		t.Errorf("the scale-in restored %v, want instances 0 and 1 of stage 1", r)
	}
	if r := run(t, s, "SELECT instance, key_range FROM spate_instances WHERE query = 'totals' AND stage = 1 ORDER BY instance"); len(r) != 2 ||
		!strings.HasPrefix(r[0][1], "[0000000000000000, ") || !strings.HasSuffix(r[1][1], ", ffffffffffffffff]") {
		t.Fatalf("totals' aggregate instances after SCALE IN: %v", r)
	}
	if r := run(t, s, "SELECT instances_restored FROM spate_scaling_events WHERE decision = 'scale in'"); fmt.Sprint(r) != "[[2]]" {
		t.Errorf("instances restored by the scale-in: %v", r)
	}
	waitUntil(t, 10*time.Second, "the rescale to finish", func() bool { return !c.queries["totals"].recovering.Load() })
	if r := run(t, s, "SELECT COUNT(*), SUM(n), SUM(s) FROM totals"); fmt.Sprint(r) != "[[50 2000 1999000]]" {
		t.Errorf("totals after scaling out and in: %v", r)
	}

	if n := alterNotices(t, s, "ALTER CONTINUOUS QUERY totals SET (autoscale = on, max_instances = 4, target_utilisation = 0.5)"); len(n) != 0 {
		t.Errorf("autoscale on a query that can scale: notices %v", n)
	}
	// A query the controller cannot rescale says so.
	if n := alterNotices(t, s, "ALTER CONTINUOUS QUERY everything SET (autoscale = on)"); len(n) != 1 || n[0].Severity != "WARNING" || n[0].Code != "01000" ||
		!strings.Contains(n[0].Message, "no stage partitioned by key") {
		t.Errorf("autoscale on a global aggregate: notices %+v, want a warning", n)
	}
	if p := c.ScalingPolicies()["totals"]; p != (ScalingPolicy{Autoscale: true, MinInstances: 1, MaxInstances: 4, TargetUtilisation: 0.5}) {
		t.Errorf("policy %+v", p)
	}
	// A rescale by hand within the bounds says nothing; one that leaves
	// them, with autoscale on, warns that the controller undoes it.
	if n := alterNotices(t, s, "ALTER CONTINUOUS QUERY totals SCALE OUT STAGE 1"); len(n) != 0 {
		t.Errorf("a scale-out to 3 instances of at most 4: notices %+v", n)
	}
	run(t, s, "ALTER CONTINUOUS QUERY totals SET (min_instances = 3)")
	if n := alterNotices(t, s, "ALTER CONTINUOUS QUERY totals SCALE IN STAGE 1"); len(n) != 1 || n[0].Severity != "WARNING" ||
		!strings.Contains(n[0].Message, "stage 1 of continuous query \"totals\" now has 2 instances, below min_instances 3") {
		t.Errorf("a scale-in below min_instances: notices %+v, want a warning", n)
	}
	run(t, s, "ALTER CONTINUOUS QUERY totals SET (min_instances = 1)")
	// The controller's decision made on another width is refused.
	if err := c.ScaleDecided(context.Background(), "totals", 1, 0, 0, "test", true, 5); errCode(err) != "55000" || !strings.Contains(err.Error(), "runs 2 instances now, not the 5") {
		t.Errorf("a decision made on 5 instances, applied to 2: %v", err)
	}
	// A scale-out refused takes no worker from the pool.
	pool := &slowPool{id: "w1", taking: make(chan struct{}), release: make(chan struct{})}
	close(pool.release)
	c.SetWorkerPool(pool)
	for sql, code := range map[string]string{
		"ALTER CONTINUOUS QUERY nope SCALE OUT STAGE 1":                                          "42P01",
		"ALTER CONTINUOUS QUERY totals SCALE OUT STAGE 7":                                        "22023",
		"ALTER CONTINUOUS QUERY totals SCALE OUT STAGE 0":                                        "0A000", // the source stage
		"ALTER CONTINUOUS QUERY everything SCALE OUT STAGE 1":                                    "0A000", // a global aggregate: one instance
		"ALTER CONTINUOUS QUERY totals SCALE OUT STAGE 1 INSTANCE 9":                             "22023",
		"ALTER CONTINUOUS QUERY totals SET (autoscale = maybe)":                                  "22023",
		"ALTER CONTINUOUS QUERY totals SET (min_instances = 5)":                                  "22023", // above max_instances 4
		"ALTER CONTINUOUS QUERY totals SET (target_utilisation = 2)":                             "22023",
		"ALTER CONTINUOUS QUERY totals SET (target_utilisation = NaN)":                           "22023",
		"ALTER CONTINUOUS QUERY totals SET (colour = 'blue')":                                    "22023",
		"ALTER CONTINUOUS QUERY totals SET (min_instances = 1, min_instances = 2)":               "42601",
		"ALTER CONTINUOUS QUERY totals SET (target_utilisation = 0.5, target_utilization = 0.6)": "42601",
		"ALTER CONTINUOUS QUERY totals SCALE SIDEWAYS STAGE 1":                                   "42601",
		"ALTER TABLE t ADD COLUMN x INT":                                                         "0A000",
	} {
		_, err := tryRun(s, sql)
		if err == nil || errCode(err) != code {
			t.Errorf("%s: %v, want SQLSTATE %s", sql, err, code)
		}
	}
	select {
	case <-pool.taking:
		t.Error("a refused scale-out took a worker from the pool")
	default:
	}
	// A refused rescale of a query's stage is listed with the reason.
	if r := run(t, s, "SELECT status FROM spate_scaling_events WHERE status LIKE 'refused%' AND reason <> 'test'"); len(r) != 1 || !strings.Contains(r[0][0], "no instance 9") {
		t.Errorf("refused rescales in SHOW SCALING EVENTS: %v", r)
	}
}

// alterNotices runs an ALTER and returns the notices it sent.
func alterNotices(t *testing.T, s Session, sql string) []Notice {
	t.Helper()
	stmts, err := parser.Parse(sql)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Execute(context.Background(), stmts[0], nil)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return res.Notices
}

// errCode is the SQLSTATE of an error from any layer ("" if none).
func errCode(err error) string {
	var s interface{ SQLState() string }
	if errors.As(err, &s) {
		return s.SQLState()
	}
	return ""
}

// TestWorkerKilledDuringScaleOut stops a worker while a scale-out is
// under way (at a few points of it): the scale-out completes (repairing
// what the dead worker ran) and every result equals a single-process run.
func TestWorkerKilledDuringScaleOut(t *testing.T) {
	for _, delay := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond} {
		t.Run(fmt.Sprint("after ", delay), func(t *testing.T) {
			lines := steadyLines(4000, 37)
			setup := func(s Session) {
				run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '2s')")
				run(t, s, "CREATE CONTINUOUS QUERY tumble AS "+metamorphicQueries["tumble"])
				run(t, s, "CREATE CONTINUOUS QUERY updating AS "+metamorphicQueries["updating"])
			}
			rs, s, c, kill := startCompared(t, setup, lines, Config{Parallelism: 2, BatchRows: 200}, 3)
			copyCSV(t, s, "ev", lines[:2000])
			awaitCheckpoint(t, s, "tumble")
			copying := copyAsync(s, "ev", lines[2000:3000])
			done := make(chan error, 1)
			go func() {
				_, err := c.ScaleOut(context.Background(), "tumble", 1, 0, 0, "test")
				done <- err
			}()
			time.Sleep(delay)
			kill(0)
			if err := <-done; err != nil {
				t.Fatalf("scale-out with a worker killed: %v", err)
			}
			if err := <-copying; err != nil {
				t.Fatal(err)
			}
			copyCSV(t, s, "ev", lines[3000:])
			deadline := time.Now().Add(30 * time.Second)
			for {
				busy := false
				for _, qr := range c.runningQueries() {
					busy = busy || qr.recovering.Load()
				}
				if !busy && len(run(t, s, "SELECT * FROM spate_instances WHERE worker = 'w1'")) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no repair after 30 s: instances %v, recoveries %v, scaling %v", run(t, s, "SELECT query, stage, instance, worker, incarnation FROM spate_instances"),
						run(t, s, "SELECT query, reason, status FROM spate_recoveries"), run(t, s, "SELECT query, status FROM spate_scaling_events"))
				}
				time.Sleep(20 * time.Millisecond)
			}
			for _, name := range []string{"tumble", "updating"} {
				want := sortedText(run(t, rs, "SELECT * FROM "+name))
				if got := sortedText(run(t, s, "SELECT * FROM "+name)); got != want {
					t.Errorf("%s differs: %s", name, firstDiff(want, got))
					diffSets(t, want, got)
					t.Logf("%v", run(t, s, "SELECT query, reason, status, checkpoint_epoch, instances, replayed FROM spate_recoveries"))
					t.Logf("%v", run(t, s, "SELECT * FROM spate_scaling_events"))
				}
			}
		})
	}
}

// TestRescaleCancelledWhileWaiting: a scale-out waiting for a repair
// of its query to finish gives up when its statement is cancelled, and
// does nothing; the next one goes through.
func TestRescaleCancelledWhileWaiting(t *testing.T) {
	lines := steadyLines(2000, 37)
	rs, s, c, _ := startUpdating(t, lines, 2)
	copyCSV(t, s, "ev", lines[:1000])
	c.mu.Lock()
	qr := c.queries["updating"]
	c.mu.Unlock()
	qr.recoverMu.Lock() // as a repair would
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.ScaleOut(ctx, "updating", 1, -1, 0, "test")
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the cancelled scale-out returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled scale-out still waits")
	}
	qr.recoverMu.Unlock()
	awaitCheckpoint(t, s, "updating")
	if n := run(t, s, "SELECT COUNT(*) FROM spate_instances WHERE query = 'updating' AND stage = 1")[0][0]; n != "2" {
		t.Errorf("%s instances after a cancelled scale-out, want 2", n)
	}
	// The lock is free again: the next scale-out goes through in place.
	ev, err := c.ScaleOut(context.Background(), "updating", 1, -1, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Status != "done" || ev.Restored != 2 {
		t.Errorf("scale-out: status %q, %d instances restored; want done in place (2)", ev.Status, ev.Restored)
	}
	copyCSV(t, s, "ev", lines[1000:])
	awaitReference(t, s, rs, "updating")
}

// TestScaleOutSplitsWhereTheLoadIs: with a skewed key distribution, a
// manual scale-out of the busiest aggregate instance cuts its range at
// the bucket boundary that halves the load it measured (at least as well
// as the midpoint, within one bucket), the two halves then receive the
// load that predicted, and the result stays exact — from two instances,
// and from one (whose producers send it every row, and count them too).
func TestScaleOutSplitsWhereTheLoadIs(t *testing.T) {
	for _, parallelism := range []int{2, 1} {
		t.Run(fmt.Sprintf("parallelism=%d", parallelism), func(t *testing.T) { scaleOutSplitsWhereTheLoadIs(t, parallelism) })
	}
}

func scaleOutSplitsWhereTheLoadIs(t *testing.T, parallelism int) {
	rng := rand.New(rand.NewPCG(11, 11))
	skewed := func(n int) []string {
		var lines []string
		for range n {
			// key k with weight about 1/(k+1): a few hot keys, a long tail
			k := int(float64(60) * rng.Float64() * rng.Float64() * rng.Float64())
			lines = append(lines, fmt.Sprintf("%d,%d,%d", k, rng.IntN(100), 1000))
		}
		return lines
	}
	a, b := skewed(6000), skewed(6000)
	setup := func(s Session) {
		run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT)")
		run(t, s, "CREATE CONTINUOUS QUERY updating AS "+metamorphicQueries["updating"])
		run(t, s, "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k")
	}
	rs, s, c, _ := startCompared(t, setup, append(append([]string{}, a...), b...), Config{Parallelism: parallelism, BatchRows: 100}, 2)
	copyCSV(t, s, "ev", a)
	c.mu.Lock()
	qr := c.queries["totals"]
	c.mu.Unlock()
	load := receivedLoad(qr.def, c.instanceStatuses(qr))
	busiest := busiest(load, 1, parallelism)
	measured := load[[2]int{1, busiest}]
	if sum(measured) == 0 {
		t.Fatalf("instance %d of %d measured no load: %v", busiest, parallelism, load)
	}
	ev, err := c.ScaleOut(context.Background(), "totals", 1, -1, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for i := range parallelism {
		total += sum(load[[2]int{1, i}])
	}
	if want := fmt.Sprintf("test; instance %d received %.0f%% of the stage's %d rows", busiest, 100*float64(sum(measured))/float64(total), total); ev.Reason != want {
		t.Errorf("the scale-out's reason is %q, want %q", ev.Reason, want)
	}
	pl := qr.pipeline().placement()
	added := pl.width(1) - 1 // the new instance, which took the upper part
	lo, hi := pl.ranges(1).of(busiest)
	_, hi2 := pl.ranges(1).of(added)
	split := hi + 1
	width := BucketWidth(lo, hi2, LoadBuckets)
	if (split-lo)%width != 0 {
		t.Fatalf("split %016x is not at a bucket boundary of [%016x, %016x] (%s)", split, lo, hi2, ev.NewRanges)
	}
	j := int((split - lo) / width)
	below, above := sum(measured[:j]), sum(measured[j:])
	midBelow, midAbove := sum(measured[:LoadBuckets/2]), sum(measured[LoadBuckets/2:])
	gap := func(x, y uint64) uint64 { return max(x, y) - min(x, y) }
	if gap(below, above) > gap(midBelow, midAbove) || gap(below, above) > maxOf(measured) {
		t.Errorf("split at bucket %d: %d rows below, %d above (midpoint: %d/%d; buckets %v)", j, below, above, midBelow, midAbove, measured)
	}
	waitUntil(t, 10*time.Second, "the rescale to finish", func() bool { return !qr.recovering.Load() })
	c.LoadReports() // the baseline
	copyCSV(t, s, "ev", b)
	got := map[int]uint64{}
	for _, r := range c.LoadReports() {
		if r.Query == "totals" && r.Stage == 1 {
			got[r.Instance] = sum(r.Buckets)
		}
	}
	x, y := got[busiest], got[added]
	if x+y == 0 || below+above == 0 {
		t.Fatalf("no load measured after the split: %v", got)
	}
	if share, want := float64(x)/float64(x+y), float64(below)/float64(below+above); share < want-0.1 || share > want+0.1 {
		t.Errorf("after the split the lower half got %.2f of the rows, the measured load predicted %.2f", share, want)
	}
	for _, name := range []string{"totals", "updating"} {
		want := sortedText(run(t, rs, "SELECT * FROM "+name))
		if got := sortedText(run(t, s, "SELECT * FROM "+name)); got != want {
			t.Errorf("%s differs: %s", name, firstDiff(want, got))
		}
	}
}

func maxOf(xs []uint64) uint64 {
	var m uint64
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// diffSets logs the lines whose counts differ between two sortedText
// results (for a failure's message).
func diffSets(t *testing.T, want, got string) {
	t.Helper()
	count := func(text string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(text, "\n") {
			m[l]++
		}
		return m
	}
	w, g := count(want), count(got)
	n := 0
	for l, c := range w {
		if g[l] != c && n < 20 {
			t.Logf("%q: want %d, got %d", l, c, g[l])
			n++
		}
	}
	for l, c := range g {
		if _, ok := w[l]; !ok && n < 40 {
			t.Logf("%q: want 0, got %d", l, c)
			n++
		}
	}
}

// TestScaledLayouts: a scale-out appends the new instance after the
// split one in key order; a scale-in merges an instance with the next
// range's and moves the last instance to the index it frees; no other
// instance changes its index, host or range.
func TestScaledLayouts(t *testing.T) {
	pl := placement{Hosts: [][]string{{"c"}, {"a", "b"}}, Addrs: map[string]string{}}
	pl, st := scaledOut(pl, 1, 0, 1<<62, "x") // 0 → 0 + 2
	if st != (rescaleStep{Stage: 1, Out: true, Split: 0, Added: 2}) || fmt.Sprint(pl.Hosts[1], pl.Order[1]) != "[a b x] [0 2 1]" {
		t.Fatalf("after splitting 0: %+v, hosts %v, order %v", st, pl.Hosts[1], pl.Order[1])
	}
	pl, _ = scaledOut(pl, 1, 1, 3<<62, "y") // 1 → 1 + 3
	if fmt.Sprint(pl.Hosts[1], pl.Order[1]) != "[a b x y] [0 2 1 3]" {
		t.Fatalf("after splitting 1: hosts %v, order %v", pl.Hosts[1], pl.Order[1])
	}
	ranges := func(pl placement) string { return rangesText(pl.ranges(1)) }
	before := pl.ranges(1)
	in, st := scaledIn(pl, 1, 0) // 0 with 2 (the next range), 3 moves to 2
	if st != (rescaleStep{Stage: 1, Lower: 0, Upper: 2, Keep: 0, Gone: 2, Last: 3}) || fmt.Sprint(in.Hosts[1], in.Order[1]) != "[a b y] [0 1 2]" {
		t.Fatalf("after merging 0 and 2: %+v, hosts %v, order %v", st, in.Hosts[1], in.Order[1])
	}
	lo, _ := before.of(0)
	_, hi := before.of(2)
	if got, want := fmt.Sprint(in.ranges(1).of(0)), fmt.Sprint(lo, hi); got != want {
		t.Errorf("merged range %s, want %s (%s)", got, want, ranges(in))
	}
	for _, k := range [][2]int{{1, 1}, {3, 2}} { // old index → new
		a, b := before.of(k[0])
		if got := fmt.Sprint(in.ranges(1).of(k[1])); got != fmt.Sprint(a, b) {
			t.Errorf("instance %d (was %d) has range %s, want [%x, %x]", k[1], k[0], got, a, b)
		}
	}
	in, st = scaledIn(pl, 1, 1) // 1 with 3, the last
	if st.Keep != 1 || st.Gone != 3 || fmt.Sprint(in.Hosts[1], in.Order[1]) != "[a b x] [0 2 1]" {
		t.Fatalf("after merging 1 and 3: %+v, hosts %v, order %v", st, in.Hosts[1], in.Order[1])
	}
}

// TestFreezeGivesUpOnDeadWorker: a rescale that finds a checkpoint in
// flight waits for it to finish before freezing — unless a worker of the
// query died, whose part never comes: then it gives up at once (the
// repair that clears that checkpoint waits behind the rescale), rather
// than after freezeTimeout with the query and its stream stalled. The
// repair then recovers the query.
func TestFreezeGivesUpOnDeadWorker(t *testing.T) {
	lines := steadyLines(3000, 37)
	rs, s, c, kill := startUpdating(t, lines, 2)
	copyCSV(t, s, "ev", lines[:1500])
	awaitCheckpoint(t, s, "updating")
	qr := c.runningQueries()[0]
	qr.recoverMu.Lock() // as a rescale holds it: the repair waits
	kill(0)
	waitUntil(t, 10*time.Second, "w1 to be seen dead", func() bool {
		return run(t, s, "SELECT status FROM spate_workers WHERE id = 'w1'")[0][0] != "alive"
	})
	if qr.ckpt.inFlight() == 0 && c.beginCheckpoint(qr, true) == 0 {
		qr.recoverMu.Unlock()
		t.Fatal("no checkpoint in flight")
	}
	p := qr.pipeline()
	if qr.ckpt.inFlight() == 0 {
		qr.recoverMu.Unlock()
		t.Fatal("the checkpoint in flight completed without w1's part")
	}
	start := time.Now()
	err := c.freezeCheckpoint(context.Background(), qr, p, [][2]int{{1, 0}})
	took := time.Since(start)
	qr.ckpt.unpause()
	qr.recoverMu.Unlock()
	if err == nil || !strings.Contains(err.Error(), "during the checkpoint in flight") || took > 5*time.Second {
		t.Fatalf("freezing with a dead worker's checkpoint in flight: %v after %v", err, took)
	}
	copyCSV(t, s, "ev", lines[1500:])
	want := sortedText(run(t, rs, "SELECT * FROM updating"))
	waitUntil(t, 30*time.Second, "the repaired query to equal the reference", func() bool {
		return sortedText(run(t, s, "SELECT * FROM updating")) == want
	})
}

// slowPool is a worker pool whose Take waits until released, as one
// starting a VM does, and then hands out worker id.
type slowPool struct {
	id      string
	taking  chan struct{} // closed when Take was called
	release chan struct{}
	gave    atomic.Bool // Take returned
	// given and placed are how many instances coordinator c had placed
	// on id when Take returned it and when TakeEnded was called for it.
	c             *Coordinator
	given, placed atomic.Int64
}

func (p *slowPool) TakeEnded(id string) {
	if id == p.id && p.c != nil {
		p.placed.Store(int64(p.c.InstancesPerWorker()[id]))
	}
}

func (p *slowPool) Spare(control.WorkerInfo) bool  { return false }
func (p *slowPool) Pooled(control.WorkerInfo) bool { return false }

func (p *slowPool) Take(ctx context.Context) (string, error) {
	close(p.taking)
	defer p.gave.Store(true)
	select {
	case <-p.release:
		if p.c != nil {
			p.given.Store(int64(p.c.InstancesPerWorker()[p.id]))
		}
		return p.id, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// TestRepairWhileScaleOutWaitsForPool: a scale-out waiting for the pool
// to start a worker does not hold up the repair of a worker that dies
// meanwhile; it then goes on onto the pool's worker, and the result
// equals a single-process run.
func TestRepairWhileScaleOutWaitsForPool(t *testing.T) {
	lines := steadyLines(3000, 37)
	rs, s, c, kill := startUpdating(t, lines, 3)
	copyCSV(t, s, "ev", lines[:1000])
	awaitCheckpoint(t, s, "updating")
	pool := &slowPool{id: "w3", taking: make(chan struct{}), release: make(chan struct{}), c: c}
	c.SetWorkerPool(pool)
	done := make(chan error, 1)
	go func() {
		_, err := c.ScaleOut(context.Background(), "updating", 1, -1, 0, "test")
		done <- err
	}()
	<-pool.taking
	kill(0)
	copyCSV(t, s, "ev", lines[1000:2000])
	waitUntil(t, 20*time.Second, "the repair", func() bool {
		recs := run(t, s, "SELECT status FROM spate_recoveries")
		return len(recs) == 1 && recs[0][0] == "recovered"
	})
	if pool.gave.Load() {
		t.Fatal("the repair (and the COPY) waited until the pool gave up")
	}
	close(pool.release)
	if err := <-done; err != nil {
		t.Fatalf("scale-out: %v", err)
	}
	if n := run(t, s, "SELECT COUNT(*) FROM spate_instances WHERE query = 'updating' AND stage = 1 AND worker = 'w3'")[0][0]; n == "0" {
		t.Errorf("no instance on the pool's worker w3: %v", run(t, s, "SELECT stage, instance, worker FROM spate_instances"))
	}
	// The pool is told the scale-out ended once it placed the instance
	// (until then the pool does not give the empty worker back).
	if given, placed := pool.given.Load(), pool.placed.Load(); placed <= given {
		t.Errorf("w3 ran %d instances when the pool gave it and %d when told the scale-out ended: want it told after the new one was placed", given, placed)
	}
	copyCSV(t, s, "ev", lines[2000:])
	awaitReference(t, s, rs, "updating")
}

// awaitCheckpoint waits for a complete checkpoint of query.
func awaitCheckpoint(t *testing.T, s Session, query string) {
	t.Helper()
	waitUntil(t, 10*time.Second, "a checkpoint of "+query, func() bool {
		return run(t, s, "SELECT COUNT(*) FROM spate_checkpoints WHERE query = '"+query+"' AND status = 'complete'")[0][0] != "0"
	})
}

// awaitReference waits until query's result in s equals the reference's.
func awaitReference(t *testing.T, s, ref Session, query string) {
	t.Helper()
	want := sortedText(run(t, ref, "SELECT * FROM "+query))
	waitUntil(t, 20*time.Second, query+" to equal the reference", func() bool {
		return sortedText(run(t, s, "SELECT * FROM "+query)) == want
	})
}

// startUpdating is startCompared with the updating aggregate over a
// stream ev (two instances a stage) on workers in-process workers.
func startUpdating(t *testing.T, lines []string, workers int) (ref, s Session, c *Coordinator, kill func(int)) {
	t.Helper()
	setup := func(s Session) {
		run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '2s')")
		run(t, s, "CREATE CONTINUOUS QUERY updating AS "+metamorphicQueries["updating"])
	}
	return startCompared(t, setup, lines, Config{Parallelism: 2, BatchRows: 200}, workers)
}

// failedPool's Take fails at once, as a pool whose VMs cannot start.
type failedPool struct{}

func (failedPool) Spare(control.WorkerInfo) bool  { return false }
func (failedPool) Pooled(control.WorkerInfo) bool { return false }
func (failedPool) Take(context.Context) (string, error) {
	return "", errors.New("no capacity")
}
func (failedPool) TakeEnded(string) {}

// TestScaleOutWithoutPoolWorker: a scale-out the pool gives no worker
// goes onto the least loaded one, and SHOW SCALING EVENTS says why.
func TestScaleOutWithoutPoolWorker(t *testing.T) {
	lines := steadyLines(2000, 41)
	rs, s, c, _ := startUpdating(t, lines, 2)
	c.SetWorkerPool(failedPool{})
	copyCSV(t, s, "ev", lines[:1000])
	run(t, s, "ALTER CONTINUOUS QUERY updating SCALE OUT STAGE 1")
	if ev := run(t, s, "SELECT status, reason FROM spate_scaling_events"); len(ev) != 1 || ev[0][0] != "done" ||
		!strings.HasSuffix(ev[0][1], "; the pool gave no worker (no capacity): on the least loaded one") {
		t.Errorf("SHOW SCALING EVENTS: %v", ev)
	}
	copyCSV(t, s, "ev", lines[1000:])
	awaitReference(t, s, rs, "updating")
}

// TestRescaleAfterAbandonedRestartPoint: a restart point abandoned
// (a repair aborted its checkpoints, as when a worker dies during a
// rescale) is no reason to wait before the next one: a rescale then
// returns once a new restart point has its ranges, not layoutRetry later
// (which spaces retries after the store failed).
func TestRescaleAfterAbandonedRestartPoint(t *testing.T) {
	dir := t.TempDir()
	c, s := startSession(t, Config{Parallelism: 2, CheckpointInterval: 20 * time.Millisecond, DataDir: dir, CheckpointStore: filepath.Join(dir, "checkpoints"),
		RestartPointInterval: time.Hour}, 2)
	run(t, s, "CREATE STREAM ev (k INT, v INT)")
	run(t, s, "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k")
	run(t, s, "INSERT INTO ev VALUES (1, 1), (2, 2), (3, 3)")
	deadline := time.Now().Add(10 * time.Second)
	for run(t, s, "SELECT COUNT(*) FROM spate_restart_points WHERE status = 'written'")[0][0] == "0" {
		if time.Now().After(deadline) {
			t.Fatalf("no restart point: %v\ncheckpoints %v", run(t, s, "SELECT * FROM spate_restart_points"), run(t, s, "SELECT query, epoch, status FROM spate_checkpoints"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.mu.Lock()
	c.addRestartRecordLocked(restartRecord{Started: time.Now(), Status: "abandoned: not every query's checkpoint completed"})
	c.mu.Unlock()
	start := time.Now()
	run(t, s, "ALTER CONTINUOUS QUERY totals SCALE OUT STAGE 1")
	if took := time.Since(start); took >= layoutRetry {
		t.Errorf("the scale-out returned after %v: it waited layoutRetry after an abandoned restart point", took)
	}
	if c.layoutUnsaved() {
		t.Error("the scale-out returned before a restart point had its ranges")
	}
}

// TestIngestWaitsForReplayRoom: while an in-place rescale holds the
// query's checkpoints (a hook keeps it frozen after its freeze
// checkpoint), nothing trims the output the sources keep for replay;
// past Config.ReplayBufferLimit ingest waits — SHOW STREAMS counts the
// wait — and goes on once the rescale is through, with the result
// exact.
func TestIngestWaitsForReplayRoom(t *testing.T) {
	lines := steadyLines(6000, 37)
	setup := func(s Session) {
		run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '2s')")
		run(t, s, "CREATE CONTINUOUS QUERY tumble AS "+metamorphicQueries["tumble"])
	}
	const limit = 16 << 10
	rs, s, c, _ := startCompared(t, setup, lines, Config{Parallelism: 2, BatchRows: 50, ReplayBufferLimit: limit}, 2)
	copyCSV(t, s, "ev", lines[:1000])
	awaitCheckpoint(t, s, "tumble")
	frozen, release := make(chan struct{}), make(chan struct{})
	rescaleFrozenHook = func() { close(frozen); <-release }
	released := false
	t.Cleanup(func() {
		if !released {
			close(release) // before the cluster stops
		}
		rescaleFrozenHook = nil
	})
	scaled := make(chan error, 1)
	go func() {
		_, err := c.ScaleOut(context.Background(), "tumble", 1, 0, 0, "test")
		scaled <- err
	}()
	<-frozen
	// One COPY: its batches go in as it reads (a COPY per few rows would
	// wait for each to reach the frozen stage's result instead).
	copying := make(chan error, 1)
	go func() {
		st, err := parser.ParseOne("COPY ev FROM STDIN (FORMAT csv)")
		var res Result
		if err == nil {
			res, err = s.Execute(context.Background(), st, nil)
		}
		if err == nil {
			if err = res.CopyIn.Write([]byte(strings.Join(lines[1000:5000], "\n") + "\n")); err == nil {
				_, err = res.CopyIn.Finish()
			}
		}
		copying <- err
	}()
	waitUntil(t, 10*time.Second, "ingest to wait for the replay buffer", func() bool {
		return run(t, s, "SELECT backpressure_seconds > 0.2 FROM spate_streams WHERE name = 'ev'")[0][0] == "t"
	})
	select {
	case err := <-copying:
		t.Fatalf("the COPY ended (%v) while the rescale holds the query's checkpoints", err)
	default:
	}
	// Past the limit by at most what the source's input queue holds
	// (channelDepth batches of 50 rows, 16 bytes a row).
	kept, _ := strconv.Atoi(run(t, s, "SELECT SUM(replay_buffer_bytes) FROM spate_instances WHERE query = 'tumble' AND worker = 'coordinator'")[0][0])
	if kept <= limit || kept > limit+channelDepth*50*16*2 {
		t.Errorf("the sources keep %d bytes while ingest waits; want just past the limit, %d", kept, limit)
	}
	if in, _ := strconv.Atoi(run(t, s, "SELECT rows_in FROM spate_streams")[0][0]); in >= 5000 {
		t.Errorf("the stream took in all %d rows while the rescale holds the query's checkpoints", in)
	}
	released = true
	close(release)
	if err := <-scaled; err != nil {
		t.Fatal(err)
	}
	if err := <-copying; err != nil {
		t.Fatal(err)
	}
	copyCSV(t, s, "ev", lines[5000:])
	awaitReference(t, s, rs, "tumble")
}
