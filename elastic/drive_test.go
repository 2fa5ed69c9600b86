package elastic

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/parser"
)

// fakeEngine records what the controller asks of it.
type fakeEngine struct {
	policies map[string]cluster.ScalingPolicy
	reports  []cluster.LoadReport
	calls    []string
}

func (f *fakeEngine) LoadReports() []cluster.LoadReport                 { return f.reports }
func (f *fakeEngine) ScalingPolicies() map[string]cluster.ScalingPolicy { return f.policies }
func (f *fakeEngine) Apply(_ context.Context, d Decision) error {
	if d.Kind == ScaleOut {
		f.calls = append(f.calls, fmt.Sprintf("out %s %d %d %016x", d.Query, d.Stage, d.Instance, d.Split))
	} else {
		f.calls = append(f.calls, fmt.Sprintf("in %s %d %d", d.Query, d.Stage, d.Instance))
	}
	return nil
}

// TestStepFollowsPolicies: the drive loop passes policies and reports to
// the controller and applies its decisions — nothing for a query with
// autoscaling off, a scale-out at the loaded buckets' middle once it is
// on, and queries that are gone are forgotten.
func TestStepFollowsPolicies(t *testing.T) {
	lo, hi := halves[1].Lo, halves[1].Hi
	buckets := make([]uint64, cluster.LoadBuckets)
	buckets[12], buckets[13] = 100, 100 // the load sits in buckets 12 and 13
	f := &fakeEngine{policies: map[string]cluster.ScalingPolicy{"q": cluster.DefaultScalingPolicy}, reports: []cluster.LoadReport{
		{Query: "q", Stage: 1, Instance: 0, Width: 2, Lo: halves[0].Lo, Hi: halves[0].Hi, Busy: 0.1},
		{Query: "q", Stage: 1, Instance: 1, Width: 2, Lo: lo, Hi: hi, Busy: 0.9, Buckets: buckets},
	}}
	c := NewController(Config{Sustain: 2, CoolDown: time.Hour})
	known := map[string]bool{}
	now := time.Unix(1_000_000, 0)
	for i := range 3 {
		step(context.Background(), c, f, now.Add(time.Duration(i)*time.Second), known)
	}
	if len(f.calls) != 0 {
		t.Fatalf("autoscale off, yet %v", f.calls)
	}
	p := cluster.DefaultScalingPolicy
	p.Autoscale = true
	f.policies["q"] = p
	for i := range 2 {
		step(context.Background(), c, f, now.Add(time.Duration(10+i)*time.Second), known)
	}
	want := fmt.Sprintf("out q 1 1 %016x", lo+13*((hi-lo)/16+1))
	if len(f.calls) != 1 || f.calls[0] != want {
		t.Fatalf("calls %v, want [%s]", f.calls, want)
	}
	delete(f.policies, "q")
	f.reports = nil
	step(context.Background(), c, f, now.Add(time.Hour), known)
	if len(known) != 0 || len(c.policies) != 0 {
		t.Errorf("a dropped query is still known: %v %v", known, c.policies)
	}
}

// TestDriveAppliesDecisionsOnce: Drive ticks the controller and applies
// a decision once; the stage's cool-down holds off the next.
func TestDriveAppliesDecisionsOnce(t *testing.T) {
	p := cluster.DefaultScalingPolicy
	p.Autoscale = true
	f := &lockedEngine{fakeEngine: fakeEngine{policies: map[string]cluster.ScalingPolicy{"q": p}, reports: []cluster.LoadReport{
		{Query: "q", Stage: 1, Instance: 1, Width: 2, Lo: halves[1].Lo, Hi: halves[1].Hi, Busy: 0.95}}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Drive(ctx, f, 5*time.Millisecond, Config{Sustain: 1, CoolDown: time.Hour}, nil)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(f.callsNow()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // ten more ticks
	cancel()
	<-done
	if calls := f.callsNow(); len(calls) != 1 || !strings.HasPrefix(calls[0], "out q 1 1 ") {
		t.Fatalf("calls %v, want one scale-out of instance 1", calls)
	}
}

// lockedEngine is fakeEngine for Drive's goroutine.
type lockedEngine struct {
	mu sync.Mutex
	fakeEngine
}

func (l *lockedEngine) Apply(ctx context.Context, d Decision) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fakeEngine.Apply(ctx, d)
}

func (l *lockedEngine) callsNow() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

// startTotals runs a coordinator with two in-process workers, a stream
// ev and an updating query totals over it, and returns it with a
// function that runs a statement and returns its rows.
func startTotals(t *testing.T) (*cluster.Coordinator, func(sql string) [][]string) {
	t.Helper()
	c, err := cluster.NewCoordinator(cluster.Config{Parallelism: 1, Token: "t", CheckpointInterval: 50 * time.Millisecond, CheckpointStore: "memory"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		c.BeginShutdown()
		wg.Wait()
		c.Close()
	})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = cluster.RunWorker(ctx, cluster.WorkerConfig{Join: c.ClusterAddr(), Token: "t"})
		}()
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := c.WaitForWorkers(wctx, 2); err != nil {
		t.Fatal(err)
	}
	s, err := c.NewSession(ctx, "spate", "spate")
	if err != nil {
		t.Fatal(err)
	}
	exec := func(sql string) [][]string {
		t.Helper()
		st, err := parser.ParseOne(sql)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Execute(ctx, st, nil)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		var out [][]string
		if res.Rows != nil {
			for {
				rec, err := res.Rows.Next(ctx)
				if err != nil {
					break
				}
				for r := range int(rec.NumRows()) {
					var row []string
					for col := range int(rec.NumCols()) {
						row = append(row, rec.Column(col).ValueStr(r))
					}
					out = append(out, row)
				}
				rec.Release()
			}
			res.Rows.Close()
		}
		return out
	}
	exec("CREATE STREAM ev (k INT, v INT)")
	exec("CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k")
	return c, exec
}

// TestDriveScalesOutARealQuery runs the controller over a coordinator
// with two in-process workers while rows stream in: with autoscale on
// (and a target low enough that the test's load exceeds it) the
// aggregate stage is scaled out, SHOW SCALING EVENTS says why, and the
// result is exact.
func TestDriveScalesOutARealQuery(t *testing.T) {
	c, exec := startTotals(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exec("ALTER CONTINUOUS QUERY totals SET (autoscale = on, max_instances = 2, target_utilisation = 0.000001)")
	go Drive(ctx, ForCoordinator(c), 50*time.Millisecond, Config{Sustain: 2, CoolDown: time.Hour}, nil)
	deadline := time.Now().Add(20 * time.Second)
	rows := 0
	for len(exec("SELECT * FROM spate_scaling_events")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no scale-out after 20 s of load")
		}
		var vals []string
		for i := range 200 {
			vals = append(vals, fmt.Sprintf("(%d, %d)", (rows+i)%97, rows+i))
		}
		exec("INSERT INTO ev VALUES " + strings.Join(vals, ", "))
		rows += 200
	}
	ev := exec("SELECT query, stage, decision, status, reason FROM spate_scaling_events")
	if ev[0][0] != "totals" || ev[0][1] != "1" || ev[0][2] != "scale out" || ev[0][3] != "done" || !strings.Contains(ev[0][4], "busy") {
		t.Fatalf("SHOW SCALING EVENTS: %v", ev)
	}
	exec("INSERT INTO ev VALUES (0, 0)")
	rows++
	if n := exec("SELECT COUNT(*) FROM spate_instances WHERE query = 'totals' AND stage = 1"); n[0][0] != "2" {
		t.Errorf("aggregate instances after the scale-out: %s", n[0][0])
	}
	want := fmt.Sprint([][]string{{"97", fmt.Sprint(rows), fmt.Sprint((rows - 1) * (rows - 2) / 2)}})
	deadline = time.Now().Add(10 * time.Second)
	for {
		got := fmt.Sprint(exec("SELECT COUNT(*), SUM(n), SUM(s) FROM totals"))
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("totals %s, want %s", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRescaleByHandIsNotUndoneAtOnce: with autoscale on and a stage the
// controller would merge (no load), a SCALE OUT by hand is left alone
// for the cool-down, counted from the rescale; only then does the
// controller merge the stage again.
func TestRescaleByHandIsNotUndoneAtOnce(t *testing.T) {
	c, exec := startTotals(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exec("INSERT INTO ev VALUES (1, 1), (2, 2), (3, 3)")
	exec("ALTER CONTINUOUS QUERY totals SET (autoscale = on, min_instances = 1)")
	exec("ALTER CONTINUOUS QUERY totals SCALE OUT STAGE 1")
	scaledAt := time.Now()
	go Drive(ctx, ForCoordinator(c), 50*time.Millisecond, Config{Sustain: 2, CoolDown: 3 * time.Second}, nil)
	events := func() [][]string { return exec("SELECT decision FROM spate_scaling_events ORDER BY time") }
	for time.Since(scaledAt) < 2*time.Second {
		if ev := events(); len(ev) != 1 {
			t.Fatalf("%v after the scale-out by hand: undone within its cool-down", ev)
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(events()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the controller did not merge the idle stage after the cool-down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if took := time.Since(scaledAt); took < 3*time.Second {
		t.Errorf("merged %v after the scale-out by hand, within the cool-down of 3 s", took)
	}
}
