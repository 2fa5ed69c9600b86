package cluster

import (
	"context"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/spatedb/spate/exec"
	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/planner"
	"github.com/spatedb/spate/storage"
)

// restartQueries include a query reading another's result (busy).
var restartQueries = map[string]string{
	"busy":    "SELECT k, window_end, n FROM win WHERE n > 2",
	"win":     "SELECT k, window_end, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k, TUMBLE(t, INTERVAL '10' SECOND)",
	"totals":  "SELECT k, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k",
	"named":   "SELECT e.k, e.t, e.v, d.name FROM ev e JOIN dim d ON e.k = d.k",
	"running": "SELECT k, t, v, SUM(v) OVER (PARTITION BY k ORDER BY t ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS s3 FROM ev",
}

// TestRestartFromRestartPoint stops a coordinator (with workers, a data
// directory and a checkpoint store) after a restart point was written
// and more rows came; a new coordinator on the same directory resumes
// from the restart point, replays only the log after it, and ends up
// equal to a run that never stopped. The log is trimmed behind the
// restart point. Scaled: two queries' aggregate stages were scaled out
// before the restart point, and resume with their three instances.
func TestRestartFromRestartPoint(t *testing.T) {
	for _, scaled := range []bool{false, true} {
		t.Run(fmt.Sprint("scaled=", scaled), func(t *testing.T) { testRestartFromRestartPoint(t, scaled) })
	}
}

func testRestartFromRestartPoint(t *testing.T, scaled bool) {
	rng := rand.New(rand.NewPCG(5, 5))
	var chunks [][]string
	for c := range 3 {
		var lines []string
		for i := range 3000 {
			lines = append(lines, fmt.Sprintf("%d,%d,%d", rng.IntN(30), rng.IntN(100), 1000+c*400+i/10))
		}
		chunks = append(chunks, lines)
	}
	setup := func(s Session) {
		run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')")
		run(t, s, "CREATE TABLE dim (k INT, name TEXT)")
		run(t, s, "INSERT INTO dim VALUES (1, 'one'), (2, 'two'), (3, 'three')")
		for _, name := range []string{"win", "totals", "named", "running", "busy"} {
			run(t, s, "CREATE CONTINUOUS QUERY "+name+" AS "+restartQueries[name])
		}
	}
	ref, _ := startTestCluster(t, Config{Parallelism: 1}, 0)
	defer ref.Close()
	rs, _ := ref.NewSession(context.Background(), "spate", "spate")
	setup(rs)

	dir := t.TempDir()
	cfg := Config{Parallelism: 2, BatchRows: 500, DataDir: dir, WALSegmentBytes: 16 << 10, CheckpointInterval: 30 * time.Millisecond, RestartPointInterval: 30 * time.Millisecond,
		CheckpointStore: filepath.Join(dir, "checkpoints")}
	c, stop := startTestCluster(t, cfg, 2)
	s, _ := c.NewSession(context.Background(), "spate", "spate")
	setup(s)
	for i, lines := range chunks[:2] {
		copyCSV(t, s, "ev", lines)
		copyCSV(t, rs, "ev", lines)
		if i == 0 {
			run(t, s, "INSERT INTO dim VALUES (4, 'four')")
			run(t, rs, "INSERT INTO dim VALUES (4, 'four')")
			if scaled {
				for _, q := range []string{"win", "totals"} {
					if _, err := c.ScaleOut(context.Background(), q, 1, 0, 0, "test"); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		m, err := c.latestRestartPoint(context.Background())
		pts := run(t, s, "SELECT wal_position FROM spate_restart_points WHERE status = 'written'")
		if err == nil && m != nil && m.Pos > c.wal.log.Next()-2 && len(m.Queries) == 5 && // busy, which reads win, too
			len(pts) > 0 && pts[len(pts)-1][0] == fmt.Sprint(m.Pos) { // and its record
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no restart point after the second chunk (log at %d): points %v, checkpoints %v, recoveries %v, queries %v", c.wal.log.Next(),
				run(t, s, "SELECT wal_position, queries, status FROM spate_restart_points"),
				run(t, s, "SELECT query, epoch, status FROM spate_checkpoints WHERE status <> 'complete'"),
				run(t, s, "SELECT query, reason, status FROM spate_recoveries"),
				run(t, s, "SELECT name, status FROM spate_continuous_queries"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pts := run(t, s, "SELECT wal_position, queries, bytes FROM spate_restart_points WHERE status = 'written'"); len(pts) == 0 || pts[len(pts)-1][1] != "5" || pts[len(pts)-1][2] == "0" {
		t.Errorf("SHOW RESTART POINTS: %v", pts)
	}
	points := run(t, s, "SELECT wal_position, queries, status FROM spate_restart_points")
	// More after the restart point: the log's tail.
	copyCSV(t, s, "ev", chunks[2][:1500])
	copyCSV(t, rs, "ev", chunks[2][:1500])
	run(t, s, "UPDATE dim SET name = 'FOUR' WHERE k = 4")
	run(t, rs, "UPDATE dim SET name = 'FOUR' WHERE k = 4")
	shutDown(c, stop)

	segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*"))
	sort.Strings(segs)
	if len(segs) == 0 || strings.HasSuffix(segs[0], fmt.Sprintf("%020d.log", 1)) {
		t.Errorf("the log was not trimmed behind the restart point: %v", segs)
	}

	c2, st := startRecovered(t, cfg, 2)
	if st.From <= 1 {
		t.Fatalf("recovered from log position %d, want a restart point's", st.From)
	}
	s2, _ := c2.NewSession(context.Background(), "spate", "spate")
	// SHOW RESTART POINTS lists the restart point it resumed from.
	if pts := run(t, s2, "SELECT wal_position FROM spate_restart_points WHERE status = 'written'"); len(pts) == 0 || pts[len(pts)-1][0] != fmt.Sprint(st.From) {
		t.Errorf("after resuming from the restart point at %d, SHOW RESTART POINTS lists %v", st.From, pts)
	}
	copyCSV(t, s2, "ev", chunks[2][1500:])
	copyCSV(t, rs, "ev", chunks[2][1500:])
	run(t, s2, "INSERT INTO ev VALUES (0, 0, 99999)")
	run(t, rs, "INSERT INTO ev VALUES (0, 0, 99999)")
	for name := range restartQueries {
		want := sortedText(run(t, rs, "SELECT * FROM "+name))
		if got := sortedText(run(t, s2, "SELECT * FROM "+name)); got != want {
			t.Errorf("%s differs after resuming from the restart point: %s (%d rows, want %d; resumed from log position %d)", name, firstDiff(want, got),
				strings.Count(got, "\n"), strings.Count(want, "\n"), st.From)
			t.Logf("restart points before the stop: %v", points)
		}
	}
	if got, want := run(t, s2, "SELECT * FROM dim ORDER BY k"), run(t, rs, "SELECT * FROM dim ORDER BY k"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dim %v, want %v", got, want)
	}
	if scaled {
		for _, q := range []string{"win", "totals"} {
			if n := run(t, s2, "SELECT COUNT(*) FROM spate_instances WHERE query = '"+q+"' AND stage = 1"); n[0][0] != "3" {
				t.Errorf("%s resumed with %s aggregate instances, want the 3 it was scaled to", q, n[0][0])
			}
		}
		// The history goes on: the scale-outs before the restart point.
		if ev := run(t, s2, "SELECT query, decision, status FROM spate_scaling_events ORDER BY query"); fmt.Sprint(ev) != "[[totals scale out done] [win scale out done]]" {
			t.Errorf("SHOW SCALING EVENTS after the restart: %v", ev)
		}
	}
	// SHOW RESTART POINTS lists on from before the stop, and SHOW
	// RECOVERIES has the restart: each query, from the restart point.
	if pts := run(t, s2, fmt.Sprintf("SELECT COUNT(*) FROM spate_restart_points WHERE wal_position < %d AND status LIKE 'written%%'", st.From)); pts[0][0] == "0" {
		t.Errorf("SHOW RESTART POINTS after the restart lost the earlier ones: %v", run(t, s2, "SHOW RESTART POINTS"))
	}
	recs := run(t, s2, "SELECT query, reason, status, checkpoint_epoch, replayed FROM spate_recoveries ORDER BY query")
	if len(recs) != len(restartQueries) {
		t.Errorf("SHOW RECOVERIES after the restart: %v, want one row a query", recs)
	}
	for _, r := range recs {
		if !strings.HasPrefix(r[1], fmt.Sprintf("server restarted: resumed from the restart point at log position %d ", st.From)) || r[2] != "recovered" || r[3] == "0" ||
			r[4] != fmt.Sprint(st.Entries) {
			t.Errorf("SHOW RECOVERIES row %v (resumed from %d, %d entries replayed)", r, st.From, st.Entries)
		}
	}
}

// shutDown stops a test coordinator as a stopping server does.
func shutDown(c *Coordinator, stop func()) {
	c.BeginShutdown()
	stop()
	c.Close()
}

// startRecovered starts a test coordinator that recovers what cfg's
// data directory and store hold; it is shut down when the test ends.
func startRecovered(t *testing.T, cfg Config, workers int) (*Coordinator, RecoveryStats) {
	t.Helper()
	c, stop := startTestCluster(t, cfg, workers)
	t.Cleanup(func() { shutDown(c, stop) })
	st, err := c.Recover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c, st
}

// startOnDataDir starts a coordinator on cfg's data directory as serve
// does (it recovers what the directory holds first) and opens a session;
// the test stops it with shutDown, to restart on the same directory.
func startOnDataDir(t *testing.T, cfg Config, workers int) (*Coordinator, func(), Session) {
	t.Helper()
	c, stop := startTestCluster(t, cfg, workers)
	if _, err := c.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, err := c.NewSession(context.Background(), "spate", "spate")
	if err != nil {
		t.Fatal(err)
	}
	return c, stop, s
}

// TestResultAsOfEpochAfterCompaction: an append-only result's small
// batches are merged as they pile up; the result as of an epoch (what a
// restart point writes) still has every row up to that epoch, however
// many later epochs completed meanwhile.
func TestResultAsOfEpochAfterCompaction(t *testing.T) {
	q := &planner.ContinuousQuery{Columns: []planner.Column{{Name: "n", Type: planner.TypeBigInt}}}
	r := newResultStore(q)
	r.tracking = true
	schema := ArrowSchema(q.Columns)
	rows := 0
	for epoch := uint64(1); epoch <= 6; epoch++ {
		for range compactTailBatches / 2 {
			rec, err := exec.RecordFromValues(schema, [][]any{{int64(rows)}})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.apply(context.Background(), 0, 0, rec); err != nil {
				t.Fatal(err)
			}
			rec.Release()
			rows++
		}
		r.sawBarrier(0, 0, epoch)
		r.commit(epoch)
	}
	perEpoch := compactTailBatches / 2
	for epoch := 1; epoch <= 6; epoch++ {
		cut, _, err := r.encodeAt(uint64(epoch), "k")
		if err != nil {
			t.Fatal(err)
		}
		if n := blobRows(t, cut.fresh); n != epoch*perEpoch {
			t.Errorf("as of epoch %d: %d rows, want %d", epoch, n, epoch*perEpoch)
		}
	}
}

// TestRestartPointOfAnotherDataDirectory: a checkpoint store outlives
// its data directory. A server started on a new data directory resumes
// from the store's restart point and its log goes on from that position,
// so what it acknowledges is not shadowed by the old restart point at
// the next start (the rows were lost before). A data directory with a
// log of its own refuses another log's restart point, and a blob that
// does not match its checksum is refused by name.
func TestRestartPointOfAnotherDataDirectory(t *testing.T) {
	store := t.TempDir()
	cfgFor := func(dir string) Config {
		return Config{Parallelism: 1, DataDir: dir, CheckpointInterval: 20 * time.Millisecond, RestartPointInterval: 20 * time.Millisecond, CheckpointStore: store}
	}
	// start runs a coordinator on dir and recovers it; it returns the
	// session and a stop, or Recover's error.
	start := func(dir string) (Session, *Coordinator, func(), error) {
		c, stop := startTestCluster(t, cfgFor(dir), 1)
		closeAll := func() { shutDown(c, stop) }
		if _, err := c.Recover(context.Background()); err != nil {
			closeAll()
			return nil, nil, nil, err
		}
		s, _ := c.NewSession(context.Background(), "spate", "spate")
		return s, c, closeAll, nil
	}
	// restartPointAt waits for a restart point covering the whole log.
	restartPointAt := func(c *Coordinator) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			m, err := c.latestRestartPoint(context.Background())
			if err == nil && m != nil && m.Pos == c.wal.log.Next() {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no restart point at log position %d: %+v %v", c.wal.log.Next(), m, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	counts := func(s Session) string {
		return fmt.Sprint(run(t, s, "SELECT k, n FROM c ORDER BY k"))
	}

	dirA := t.TempDir()
	s, c, stop, err := start(dirA)
	if err != nil {
		t.Fatal(err)
	}
	run(t, s, "CREATE STREAM ev (k TEXT, v INT)")
	run(t, s, "CREATE CONTINUOUS QUERY c AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	for range 20 {
		run(t, s, "INSERT INTO ev VALUES ('old', 1)")
	}
	restartPointAt(c)
	oldPos := c.wal.log.Next()
	stop()

	// A new data directory: it resumes from the store and logs on from
	// the restart point's position.
	dirB := t.TempDir()
	s, c, stop, err = start(dirB)
	if err != nil {
		t.Fatal(err)
	}
	if got := counts(s); got != "[[old 20]]" {
		t.Fatalf("resumed in a new data directory: %s", got)
	}
	if c.wal.log.Next() != oldPos {
		t.Fatalf("the new log starts at %d, want the restart point's %d", c.wal.log.Next(), oldPos)
	}
	run(t, s, "INSERT INTO ev VALUES ('new', 1)")
	run(t, s, "INSERT INTO ev VALUES ('new', 2)")
	stop() // no restart point need cover them: the log has them
	s, _, stop, err = start(dirB)
	if err != nil {
		t.Fatal(err)
	}
	if got := counts(s); got != "[[new 2] [old 20]]" {
		t.Fatalf("after a restart of the new data directory: %s, want the acknowledged rows too", got)
	}
	stop()

	// dirA has a log of its own, and the store's newest restart point is
	// now dirB's (the same id, taken over) — after dirB writes one.
	s, c, stop, err = start(dirB)
	if err != nil {
		t.Fatal(err)
	}
	run(t, s, "INSERT INTO ev VALUES ('new', 3)")
	restartPointAt(c)
	stop()
	other := t.TempDir() // a data directory with a log of its own
	cO, stopO := startTestCluster(t, Config{DataDir: other}, 0)
	sO, _ := cO.NewSession(context.Background(), "spate", "spate")
	run(t, sO, "CREATE STREAM ev (k TEXT, v INT)")
	cO.BeginShutdown()
	stopO()
	cO.Close()
	if _, _, _, err := start(other); err == nil || !strings.Contains(err.Error(), "belongs to another data directory") {
		t.Fatalf("a log of its own took another log's restart point: %v", err)
	}
	// Nor does the first directory, come back: the new one took its
	// restart point over but logs under an id of its own.
	if _, _, _, err := start(dirA); err == nil || !strings.Contains(err.Error(), "belongs to another data directory") {
		t.Fatalf("the old data directory took the new one's restart point: %v", err)
	}

	// A corrupt blob is refused by name.
	dirStore, err := storage.NewDir(store)
	if err != nil {
		t.Fatal(err)
	}
	m, err := (&Coordinator{store: dirStore}).latestRestartPoint(context.Background())
	if err != nil || m == nil {
		t.Fatal(m, err)
	}
	res := filepath.Join(store, restartKeys(m.Pos)+"results/c")
	data, err := os.ReadFile(res)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)*7/10] ^= 0x40
	if err := os.WriteFile(res, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := start(dirB); err == nil || !strings.Contains(err.Error(), "results/c") || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("a corrupt restart point was loaded: %v", err)
	}
}

// TestRescaleSurvivesRestart: ALTER … SCALE OUT is acknowledged once a
// restart point has the new ranges, so a server stopped right after it
// resumes with them (it resumed from the restart point before, with the
// old ranges, long before the next was due).
func TestRescaleSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Parallelism: 2, BatchRows: 200, DataDir: dir, CheckpointInterval: 30 * time.Millisecond, RestartPointInterval: time.Hour,
		CheckpointStore: filepath.Join(dir, "checkpoints")}
	c, stop, s := startOnDataDir(t, cfg, 2)
	run(t, s, "CREATE STREAM ev (k INT, v INT)")
	run(t, s, "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k")
	var lines []string
	for i := range 3000 {
		lines = append(lines, fmt.Sprintf("%d,%d", i%97, i))
	}
	copyCSV(t, s, "ev", lines)
	var points [][]string
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("restart points:", points)
		}
	})
	waitUntil(t, 20*time.Second, "the first restart point", func() bool {
		points = run(t, s, "SELECT wal_position, status FROM spate_restart_points")
		return slices.ContainsFunc(points, func(r []string) bool { return r[1] == "written" })
	})
	run(t, s, "ALTER CONTINUOUS QUERY totals SCALE OUT STAGE 1")
	want := sortedText(run(t, s, "SELECT * FROM totals"))
	shutDown(c, stop)
	c2, _ := startRecovered(t, cfg, 2)
	s2, _ := c2.NewSession(context.Background(), "spate", "spate")
	if n := run(t, s2, "SELECT COUNT(*) FROM spate_instances WHERE query = 'totals' AND stage = 1"); n[0][0] != "3" {
		t.Errorf("resumed with %s aggregate instances, want the 3 of the acknowledged scale-out", n[0][0])
	}
	if got := sortedText(run(t, s2, "SELECT * FROM totals")); got != want {
		t.Errorf("totals after the restart: %s", firstDiff(want, got))
	}
}

// TestFailedQueryKeepsRestartPoints: a query that fails (a division by
// zero on a worker) no longer holds back the restart points: the next
// ones record it as failed, the log is trimmed past its failure, and a
// restarted server brings it back failed with the same error — reading
// it says so (SQLSTATE 22012) — while the query beside it resumes with
// nothing lost. Dropped and created again, it starts over.
func TestFailedQueryKeepsRestartPoints(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	var chunks [][]string
	for c := range 3 {
		var lines []string
		for i := range 1000 {
			lines = append(lines, fmt.Sprintf("%d,%d,%d", rng.IntN(20), 1+rng.IntN(100), 1000+c*100+i/10))
		}
		chunks = append(chunks, lines)
	}
	const (
		stream = "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')"
		totals = "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k"
		ratio  = "CREATE CONTINUOUS QUERY ratio AS SELECT k, 100 / MIN(v) AS r FROM ev GROUP BY k" // on the aggregate's worker
	)
	ref, _ := startTestCluster(t, Config{Parallelism: 1}, 0)
	defer ref.Close()
	rs, _ := ref.NewSession(context.Background(), "spate", "spate")
	run(t, rs, stream)
	run(t, rs, totals)

	dir := t.TempDir()
	cfg := Config{Parallelism: 2, DataDir: dir, CheckpointInterval: 30 * time.Millisecond, RestartPointInterval: 30 * time.Millisecond,
		CheckpointStore: filepath.Join(dir, "checkpoints")}
	c, stop := startTestCluster(t, cfg, 2)
	s, _ := c.NewSession(context.Background(), "spate", "spate")
	run(t, s, stream)
	run(t, s, totals)
	run(t, s, ratio)
	copyCSV(t, s, "ev", chunks[0])
	copyCSV(t, rs, "ev", chunks[0])
	// restartPoint waits for a restart point that covers the log as it
	// is now, whose status starts with status.
	restartPoint := func(c *Coordinator, s Session, status string) *restartManifest {
		t.Helper()
		pos := c.wal.log.Next()
		var m *restartManifest
		waitUntil(t, 20*time.Second, "a restart point at log position "+fmt.Sprint(pos)+" or later with status "+status, func() bool {
			var err error
			m, err = c.latestRestartPoint(context.Background())
			if err != nil || m == nil || m.Pos < pos {
				return false
			}
			recs := run(t, s, fmt.Sprintf("SELECT status FROM spate_restart_points WHERE wal_position = %d", m.Pos))
			return len(recs) == 1 && strings.HasPrefix(recs[0][0], status)
		})
		return m
	}
	if m := restartPoint(c, s, "written"); m.Queries["ratio"].Failed != nil || len(m.Queries) != 2 {
		t.Fatalf("the restart point before the failure: %+v", m.Queries)
	}

	run(t, s, "INSERT INTO ev VALUES (3, 0, 1100)")
	run(t, rs, "INSERT INTO ev VALUES (3, 0, 1100)")
	waitUntil(t, 10*time.Second, "ratio to fail", func() bool {
		st := run(t, s, "SELECT status FROM spate_continuous_queries WHERE name = 'ratio'")
		return strings.HasPrefix(st[0][0], "failed: ")
	})
	// Its instances are released, on the workers too; the worker
	// counts are those of totals alone.
	waitUntil(t, 10*time.Second, "ratio's instances to be released", func() bool {
		c.mu.Lock()
		p := c.queries["ratio"].pipeline()
		c.mu.Unlock()
		for _, w := range p.placement().hostsOf(coordinatorHost) {
			if c.reg.Call(context.Background(), w, reqStatus, runRequest{Run: p.run}, nil) == nil {
				return false
			}
		}
		return true
	})
	if r := run(t, s, "SELECT DISTINCT query FROM spate_instances"); fmt.Sprint(r) != "[[totals]]" {
		t.Errorf("SHOW INSTANCES lists the queries %v after ratio failed", r)
	}
	placed := run(t, s, "SELECT SUM(instances) FROM spate_workers")[0][0]
	if want := run(t, s, "SELECT COUNT(*) FROM spate_instances")[0][0]; placed != want {
		t.Errorf("SHOW WORKERS counts %s instances, SHOW INSTANCES lists %s", placed, want)
	}
	failedAt := c.wal.log.Next()
	copyCSV(t, s, "ev", chunks[1])
	copyCSV(t, rs, "ev", chunks[1])
	m := restartPoint(c, s, "written (recorded as failed: ratio)")
	if f := m.Queries["ratio"].Failed; f == nil || f.Code != exec.CodeDivisionByZero || !strings.Contains(f.Message, "division by zero") {
		t.Errorf("the restart point records ratio as %+v, want failed with 22012", m.Queries["ratio"])
	}
	if m.Queries["totals"].Failed != nil || len(m.Queries["totals"].Instances) == 0 {
		t.Errorf("the restart point records totals as %+v", m.Queries["totals"])
	}
	readFailed := func(s Session, when string) {
		t.Helper()
		_, err := tryRun(s, "SELECT * FROM ratio")
		if err == nil || errCode(err) != exec.CodeDivisionByZero || !strings.Contains(err.Error(), `continuous query "ratio" failed`) ||
			!strings.Contains(err.Error(), "division by zero") {
			t.Errorf("%s: SELECT from the failed query: %v (SQLSTATE %s), want 22012 naming the query", when, err, errCode(err))
		}
	}
	readFailed(s, "before the restart")
	copyCSV(t, s, "ev", chunks[2][:500])
	copyCSV(t, rs, "ev", chunks[2][:500])
	shutDown(c, stop)
	c2, st := startRecovered(t, cfg, 2)
	if st.From < failedAt {
		t.Errorf("resumed from log position %d, before the failure at %d: the failed query held the restart points back", st.From, failedAt)
	}
	s2, _ := c2.NewSession(context.Background(), "spate", "spate")
	if got := run(t, s2, "SELECT status FROM spate_continuous_queries WHERE name = 'ratio'"); !strings.Contains(got[0][0], "failed: ") || !strings.Contains(got[0][0], "division by zero") {
		t.Errorf("after the restart ratio is %v, want failed as before", got)
	}
	if got := run(t, s2, "SELECT query, status, reason LIKE 'server restarted: resumed from the restart point%' FROM spate_recoveries ORDER BY query"); len(got) != 2 ||
		got[0][1] != "failed: "+m.Queries["ratio"].Failed.Message || got[1][1] != "recovered" || got[0][2] != "t" || got[1][2] != "t" {
		t.Errorf("SHOW RECOVERIES after the restart: %v", got)
	}
	readFailed(s2, "after the restart")
	copyCSV(t, s2, "ev", chunks[2][500:])
	copyCSV(t, rs, "ev", chunks[2][500:])
	if got, want := sortedText(run(t, s2, "SELECT * FROM totals")), sortedText(run(t, rs, "SELECT * FROM totals")); got != want {
		t.Errorf("totals after the restart: %s", firstDiff(want, got))
	}
	// Dropped and created again, it reads on from now.
	run(t, s2, "DROP CONTINUOUS QUERY ratio")
	run(t, s2, ratio)
	run(t, s2, "INSERT INTO ev VALUES (5, 4, 1400), (5, 20, 1400)")
	if got := run(t, s2, "SELECT * FROM ratio"); fmt.Sprint(got) != "[[5 25]]" {
		t.Errorf("ratio created again: %v, want [[5 25]] (100 / MIN of the rows since)", got)
	}
	// With every query failed, restart points still trim the log.
	run(t, s2, "DROP CONTINUOUS QUERY totals")
	run(t, s2, "INSERT INTO ev VALUES (5, 0, 1400)")
	waitUntil(t, 10*time.Second, "ratio to fail again", func() bool {
		return strings.HasPrefix(run(t, s2, "SELECT status FROM spate_continuous_queries WHERE name = 'ratio'")[0][0], "failed: ")
	})
	copyCSV(t, s2, "ev", chunks[0][:100])
	if m := restartPoint(c2, s2, "written (recorded as failed: ratio)"); len(m.Queries) != 1 {
		t.Errorf("the restart point with every query failed has %+v", m.Queries)
	}
}

// TestMemoryStoreKeepsTheLog: with a checkpoint store in memory, which
// does not survive a restart, no restart point trims the log: a restart
// replays it whole and has every acknowledged row.
func TestMemoryStoreKeepsTheLog(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Parallelism: 2, DataDir: dir, WALSegmentBytes: 16 << 10, CheckpointInterval: 20 * time.Millisecond, RestartPointInterval: 20 * time.Millisecond,
		CheckpointStore: "memory"}
	c, stop := startTestCluster(t, cfg, 2)
	s, _ := c.NewSession(context.Background(), "spate", "spate")
	run(t, s, "CREATE STREAM ev (k INT, v INT)")
	run(t, s, "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k")
	for i := range 5 {
		var lines []string
		for j := range 2000 {
			lines = append(lines, fmt.Sprintf("%d,%d", j%40, i*2000+j))
		}
		copyCSV(t, s, "ev", lines)
		time.Sleep(100 * time.Millisecond) // time for restart points, were any taken
	}
	want := sortedText(run(t, s, "SELECT * FROM totals"))
	shutDown(c, stop)
	c2, st := startRecovered(t, cfg, 2)
	if st.From > 1 {
		t.Errorf("resumed from log position %d, want the whole log", st.From)
	}
	s2, _ := c2.NewSession(context.Background(), "spate", "spate")
	if got := sortedText(run(t, s2, "SELECT * FROM totals")); got != want {
		t.Errorf("totals after the restart: %s", firstDiff(want, got))
	}
}

// TestRestartRecordsSayWhereEachQueryCameFrom: the SHOW RECOVERIES rows
// of a restart say, for a query the restart point holds, that it resumed
// from it, and for one created after it, that the log made it anew; with
// no restart point, that the whole log was replayed.
func TestRestartRecordsSayWhereEachQueryCameFrom(t *testing.T) {
	c, s := startSession(t, Config{Parallelism: 1}, 0)
	run(t, s, "CREATE STREAM ev (k INT, v INT)")
	run(t, s, "CREATE CONTINUOUS QUERY held AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	run(t, s, "CREATE CONTINUOUS QUERY later AS SELECT k, SUM(v) AS s FROM ev GROUP BY k")
	c.mu.Lock()
	c.queries["held"].restored = true // as Recover's deploy marks a query the restart point holds
	c.mu.Unlock()
	// later has a part too, but of an earlier query of that name (dropped
	// and created again after the restart point): it was made anew.
	m := &restartManifest{Pos: 7, Taken: time.Date(2026, 11, 22, 10, 12, 55, 0, time.UTC), Queries: map[string]roundQuery{"held": {Epoch: 3}, "later": {Epoch: 4}}}
	c.recordRestart(m, RecoveryStats{From: 7, Entries: 5}, time.Now(), time.Millisecond)
	c.recordRestart(nil, RecoveryStats{From: 1, Entries: 9}, time.Now(), time.Millisecond)
	want := [][]string{
		{"held", "server restarted: resumed from the restart point at log position 7 (taken 2026-11-22 10:12:55) and 5 log entries after it", "3"},
		{"later", "server restarted: created after the restart point at log position 7 (taken 2026-11-22 10:12:55), made anew by replaying the 5 log entries after it", "0"},
		{"held", "server restarted: no restart point, the whole log replayed (9 entries)", "0"},
		{"later", "server restarted: no restart point, the whole log replayed (9 entries)", "0"},
	}
	if got := run(t, s, "SELECT query, reason, checkpoint_epoch FROM spate_recoveries"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("SHOW RECOVERIES:\n%v\nwant\n%v", got, want)
	}
}

// TestResultSegments: each restart point writes what an append-only
// result gained since the last (with the newest segments no larger than
// that), its segments hold exactly the rows as of its epoch, a segment
// whose restart point was not written is written again by the next, and
// a result loaded from its segments writes only what comes after.
func TestResultSegments(t *testing.T) {
	q := &planner.ContinuousQuery{Columns: []planner.Column{{Name: "n", Type: planner.TypeBigInt}}}
	schema := ArrowSchema(q.Columns)
	next := int64(0)
	add := func(r *resultStore, n int) {
		for range n {
			rec, err := exec.RecordFromValues(schema, [][]any{{next}})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.apply(context.Background(), 0, r.gen, rec); err != nil {
				t.Fatal(err)
			}
			rec.Release()
			next++
		}
	}
	store := map[string][]byte{}
	read := func(segs []segmentRef) (vals []int64) {
		for _, seg := range segs {
			data, ok := store[seg.Key]
			if !ok {
				t.Fatalf("segment %s was never written", seg.Key)
			}
			if crc32.Checksum(data, blobCRC) != seg.Sum {
				t.Fatalf("segment %s: wrong sum", seg.Key)
			}
			batches, err := decodeBatches(data)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, b := range batches {
				vals = append(vals, exec.Int64s(b.Column(0))...)
				n += int(b.NumRows())
				b.Release()
			}
			if int64(n) != seg.Rows {
				t.Fatalf("segment %s has %d rows, its reference says %d", seg.Key, n, seg.Rows)
			}
		}
		slices.Sort(vals)
		return vals
	}
	upTo := func(n int64) []int64 {
		var vals []int64
		for v := range n {
			vals = append(vals, v)
		}
		return vals
	}

	r := newResultStore(q)
	r.tracking = true
	const rounds = 40
	var last resultCut
	var written int64
	for epoch := uint64(1); epoch <= rounds; epoch++ {
		add(r, 100)
		r.sawBarrier(0, 0, epoch)
		asOf := next
		add(r, 7) // after the barrier: not in this epoch's cut
		r.commit(epoch)
		cut, _, err := r.encodeAt(epoch, fmt.Sprint("seg", epoch))
		if err != nil {
			t.Fatal(err)
		}
		if epoch == 10 {
			continue // this restart point was not written: the next writes its rows
		}
		if cut.fresh == nil {
			t.Fatalf("epoch %d: nothing new to write", epoch)
		}
		store[cut.freshRef.Key] = cut.fresh
		written += cut.freshRef.Rows
		r.segmentWritten(epoch, cut)
		if got := read(cut.segments); !slices.Equal(got, upTo(asOf)) {
			t.Fatalf("epoch %d: the segments hold %d rows (%v…), want 0 to %d", epoch, len(got), got[:min(len(got), 5)], asOf-1)
		}
		if len(cut.segments) > 7 {
			t.Errorf("epoch %d: %d segments, want O(log n)", epoch, len(cut.segments))
		}
		last = cut
	}
	t.Logf("%d rows written, %d segments at the end", written, len(last.segments))
	// Each row is written O(log n) times, not once per restart point.
	if total := int64(rounds * 107); written > total*7 {
		t.Errorf("%d rows written in %d restart points for %d rows", written, rounds, total)
	}

	// Loaded from its segments, the result holds their rows; the next
	// restart point writes only the rows after them.
	r2 := newResultStore(q)
	r2.tracking = true
	rs := &restoring{}
	for _, seg := range last.segments {
		rs.segments = append(rs.segments, loadedSegment{seg, store[seg.Key]})
	}
	if err := r2.load(rs); err != nil {
		t.Fatal(err)
	}
	if r2.nrows != int64(len(read(last.segments))) {
		t.Fatalf("loaded %d rows, the segments hold %d", r2.nrows, len(read(last.segments)))
	}
	add(r2, 5)
	r2.sawBarrier(0, 0, 1)
	r2.commit(1)
	cut, _, err := r2.encodeAt(1, "after")
	if err != nil {
		t.Fatal(err)
	}
	if cut.freshRef.Rows != 5 || len(cut.segments) != len(last.segments)+1 {
		t.Errorf("after a restart the restart point writes %d rows into a new segment and refers to %d, want 5 and %d", cut.freshRef.Rows, len(cut.segments), len(last.segments)+1)
	}
}

// TestRoundAbandonedWhenItsEpochWasAborted: a repair that begins as a
// round does aborts the query's epoch before the round is there to be
// abandoned with it. The round is abandoned at the next look, not held
// until it is stale (ten restart-point intervals) with no restart point
// meanwhile.
func TestRoundAbandonedWhenItsEpochWasAborted(t *testing.T) {
	dir := t.TempDir()
	c, s := startSession(t, Config{Parallelism: 2, CheckpointInterval: time.Hour, DataDir: dir, CheckpointStore: filepath.Join(dir, "checkpoints"),
		RestartPointInterval: time.Hour}, 2)
	run(t, s, "CREATE STREAM ev (k INT, v INT)")
	run(t, s, "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	run(t, s, "INSERT INTO ev VALUES (1, 1)")
	c.mu.Lock()
	qr := c.queries["totals"]
	c.mu.Unlock()
	// The round's epoch begins; a repair's pause aborts it; the round is
	// installed after.
	epoch := qr.ckpt.begin(qr.instanceCount(), qr.lastWidth(), false)
	if epoch == 0 {
		t.Fatal("no epoch began")
	}
	qr.ckpt.pause()
	qr.ckpt.unpause()
	r := &restartRound{started: time.Now(), epochs: map[string]uint64{"totals": epoch}, runtimes: map[string]*queryRuntime{"totals": qr}, done: map[string]*roundResult{}}
	c.mu.Lock()
	c.round = r
	c.mu.Unlock()
	c.abandonStaleRound(time.Hour)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.round != nil {
		t.Fatal("the round whose epoch a repair aborted is still waiting for it")
	}
	if last := c.restartRecords[len(c.restartRecords)-1].Status; last != fmt.Sprintf("abandoned: checkpoint %d of continuous query totals aborted by a recovery", epoch) {
		t.Errorf("the abandoned round is recorded as %q", last)
	}
}

// TestRoundAbandonedWhenItsQueryWasCreatedAgain: a round waits for the
// query it began an epoch of, not another created under the same name
// after a DROP (whose epochs have the same numbers): that round is
// abandoned, and the new query's checkpoint does not complete it.
func TestRoundAbandonedWhenItsQueryWasCreatedAgain(t *testing.T) {
	dir := t.TempDir()
	c, s := startSession(t, Config{Parallelism: 1, CheckpointInterval: time.Hour, DataDir: dir, CheckpointStore: filepath.Join(dir, "checkpoints"),
		RestartPointInterval: time.Hour}, 1)
	run(t, s, "CREATE STREAM ev (k INT, v INT)")
	run(t, s, "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	c.mu.Lock()
	old := c.queries["totals"]
	c.mu.Unlock()
	epoch := old.ckpt.begin(old.instanceCount(), old.lastWidth(), false)
	r := &restartRound{started: time.Now(), epochs: map[string]uint64{"totals": epoch}, runtimes: map[string]*queryRuntime{"totals": old}, done: map[string]*roundResult{}}
	c.mu.Lock()
	c.round = r
	c.mu.Unlock()
	run(t, s, "DROP CONTINUOUS QUERY totals")
	run(t, s, "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	c.mu.Lock()
	created := c.queries["totals"]
	c.mu.Unlock()
	c.roundCheckpointed(created, epoch, &pendingCheckpoint{})
	r.mu.Lock()
	done := len(r.done)
	r.mu.Unlock()
	if done != 0 {
		t.Fatal("the query created again completed the round of the dropped one")
	}
	c.abandonStaleRound(time.Hour)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.round != nil {
		t.Fatal("the round of a dropped query is still waiting for it")
	}
	if last := c.restartRecords[len(c.restartRecords)-1].Status; last != "abandoned: continuous query totals failed or was dropped before its checkpoint completed" {
		t.Errorf("the abandoned round is recorded as %q", last)
	}
}

// TestLoadRestartPointBeforeSegments: a restart point written before
// results were kept in segments (and before blobs had checksums) holds
// each result as the blob results/<name>; it is loaded, not taken for
// an empty result.
func TestLoadRestartPointBeforeSegments(t *testing.T) {
	ctx := context.Background()
	store, err := storage.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	schema := ArrowSchema([]planner.Column{{Name: "n", Type: planner.TypeBigInt}})
	rec, err := exec.RecordFromValues(schema, [][]any{{int64(1)}, {int64(2)}, {int64(3)}})
	if err != nil {
		t.Fatal(err)
	}
	blob, err := encodeBatchesSchema(schema, []arrow.RecordBatch{rec})
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	m := &restartManifest{Pos: 5, Queries: map[string]roundQuery{"w": {Epoch: 1}}} // no sums, no segments
	if err := store.Put(ctx, restartKeys(m.Pos)+"results/w", blob); err != nil {
		t.Fatal(err)
	}
	c := &Coordinator{store: store}
	if err := c.loadRestartPoint(ctx, m); err != nil {
		t.Fatal(err)
	}
	if n := blobRows(t, c.restore["w"].result); n != 3 {
		t.Errorf("the old restart point's result loads %d rows, want 3", n)
	}
}

// TestRestartLeavesOutQueryThatNoLongerPlans: a CREATE CONTINUOUS QUERY
// in the log that this version's planner refuses (an older one took it)
// does not keep the server from starting: it is left out, with the
// statements on it and the queries reading it, logged and listed in
// SHOW RECOVERIES; everything else is restored.
func TestRestartLeavesOutQueryThatNoLongerPlans(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir, CheckpointInterval: -1}
	c, stop, s := startOnDataDir(t, cfg, 0)
	run(t, s, "CREATE STREAM ev (k INT, v INT)")
	run(t, s, "CREATE CONTINUOUS QUERY good AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	// As an older version would have logged them.
	for _, sql := range []string{
		"CREATE CONTINUOUS QUERY bad AS SELECT no_such_function(k) AS x FROM ev",
		"CREATE CONTINUOUS QUERY reader AS SELECT x FROM bad",
		"ALTER CONTINUOUS QUERY bad SET (autoscale = on)",
		"DROP CONTINUOUS QUERY reader",
	} {
		if err := c.wal.appendStatement(walDDL, "", sql, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	run(t, s, "INSERT INTO ev VALUES (1, 1), (1, 2), (2, 3)")
	shutDown(c, stop)

	c2, _ := startRecovered(t, cfg, 0)
	s2, _ := c2.NewSession(context.Background(), "spate", "spate")
	if got := sortedText(run(t, s2, "SELECT * FROM good")); got != sortedText([][]string{{"1", "2"}, {"2", "1"}}) {
		t.Errorf("good after the restart: %s", got)
	}
	if got := run(t, s2, "SELECT name FROM spate_continuous_queries"); fmt.Sprint(got) != "[[good]]" {
		t.Errorf("queries after the restart: %v", got)
	}
	recs := run(t, s2, "SELECT query, reason, status FROM spate_recoveries WHERE status LIKE 'failed%' ORDER BY query")
	if len(recs) != 2 || recs[0][0] != "bad" || recs[1][0] != "reader" ||
		recs[0][1] != "server restarted: left out, its CREATE no longer plans" || !strings.Contains(recs[0][2], "no_such_function") {
		t.Errorf("SHOW RECOVERIES after leaving queries out: %v", recs)
	}
}

// blobRows is the number of rows in an encoded blob of batches.
func blobRows(t *testing.T, data []byte) int {
	t.Helper()
	batches, err := decodeBatches(data)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseBatches(batches)
	n := 0
	for _, b := range batches {
		n += int(b.NumRows())
	}
	return n
}

// TestCopyAcrossDropAndCreate: a COPY into a stream that is dropped and
// created again (other columns) while it runs fails at its next batch
// instead of logging rows of the old columns for the new stream; and a
// log that has such rows (as one written before this was refused) still
// replays: they are left out, the rest is kept.
func TestCopyAcrossDropAndCreate(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir, CheckpointInterval: -1, BatchRows: 10}
	c, stop, s := startOnDataDir(t, cfg, 0)
	other, _ := c.NewSession(context.Background(), "spate", "spate")
	run(t, s, "CREATE STREAM ee (k TEXT, v BIGINT)")
	st, err := parser.ParseOne("COPY ee FROM STDIN (FORMAT csv)")
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Execute(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.CopyIn.Write([]byte(strings.Repeat("a,1\n", 10))); err != nil {
		t.Fatal(err)
	}
	run(t, other, "DROP STREAM ee")
	run(t, other, "CREATE STREAM ee (x BIGINT, y BIGINT, z TEXT)")
	err = res.CopyIn.Write([]byte(strings.Repeat("b,2\n", 10)))
	if err == nil {
		_, err = res.CopyIn.Finish()
	} else {
		res.CopyIn.Abort("")
	}
	if errCode(err) != planner.CodeUndefinedTable || !strings.Contains(err.Error(), "dropped during COPY") {
		t.Fatalf("COPY across a DROP and CREATE: %v", err)
	}
	run(t, other, "INSERT INTO ee VALUES (1, 2, 'c')")
	// As the old code logged it: rows of the old columns for the new ee.
	old, err := exec.RecordFromValues(RelationSchema([]planner.Column{{Name: "k", Type: planner.TypeText}, {Name: "v", Type: planner.TypeBigInt}}), [][]any{{"a", int64(1)}})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Release()
	if err := c.wal.appendData(walStream, "ee", old); err != nil {
		t.Fatal(err)
	}
	run(t, other, "INSERT INTO ee VALUES (3, 4, 'd')")
	// A COPY the client gives up says what it already ingested, which
	// stays.
	res, err = s.Execute(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.CopyIn.Write([]byte(strings.Repeat("5,6,e\n", 10))); err != nil {
		t.Fatal(err)
	}
	if kept := res.CopyIn.Abort("client gave up"); kept != `the 10 rows before it were already ingested into stream "ee"` {
		t.Errorf("an aborted COPY says %q", kept)
	}
	shutDown(c, stop)

	c2, _ := startRecovered(t, cfg, 0)
	s2, _ := c2.NewSession(context.Background(), "spate", "spate")
	if got := run(t, s2, "SELECT rows_in FROM spate_streams WHERE name = 'ee'")[0][0]; got != "12" {
		t.Errorf("after the restart ee took in %s rows, want the 2 inserted and the 10 the aborted COPY passed on", got)
	}
}

// TestRestartPointLeavesOutDroppedRelations: the DDL a restart point
// holds leaves out the relations dropped since they were created (their
// CREATE, ALTERs and GRANTs, and the DROP), so that a restart after a
// churn of queries does not create and drop them all again. A DROP it
// cannot leave out (a GRANT names a dropped and a living relation) stays
// with what it drops. The restart brings back the same relations, rows
// and privileges.
func TestRestartPointLeavesOutDroppedRelations(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Parallelism: 1, DataDir: dir, CheckpointInterval: 30 * time.Millisecond, RestartPointInterval: 30 * time.Millisecond,
		CheckpointStore: filepath.Join(dir, "checkpoints")}
	c, stop, s := startOnDataDir(t, cfg, 1)
	run(t, s, "CREATE ROLE viewer LOGIN")
	run(t, s, "CREATE STREAM ev (k INT, v INT)")
	run(t, s, "CREATE CONTINUOUS QUERY keep AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	for i := range 30 {
		run(t, s, "CREATE CONTINUOUS QUERY tmp AS SELECT k, SUM(v) AS s FROM ev GROUP BY k")
		run(t, s, "GRANT SELECT ON tmp TO viewer")
		run(t, s, "ALTER CONTINUOUS QUERY tmp SET (autoscale = on)")
		run(t, s, fmt.Sprintf("INSERT INTO ev VALUES (%d, 1)", i))
		run(t, s, "DROP CONTINUOUS QUERY tmp")
	}
	run(t, s, "CREATE STREAM gone (k INT)")
	run(t, s, "CREATE CONTINUOUS QUERY a AS SELECT k FROM gone")
	run(t, s, "CREATE CONTINUOUS QUERY b AS SELECT k FROM a")
	run(t, s, "DROP STREAM gone CASCADE")
	run(t, s, "CREATE CONTINUOUS QUERY blocked AS SELECT k FROM ev")
	run(t, s, "GRANT SELECT ON keep, blocked TO viewer")
	run(t, s, "DROP CONTINUOUS QUERY blocked")

	want := []string{"CREATE ROLE", "CREATE STREAM ev", "CREATE CONTINUOUS QUERY keep", "CREATE CONTINUOUS QUERY blocked",
		`GRANT SELECT ON "keep", "blocked"`, "DROP CONTINUOUS QUERY blocked"}
	c.mu.Lock()
	ddl := append([]ddlEntry(nil), c.ddlLog...)
	c.mu.Unlock()
	ok := len(ddl) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = strings.HasPrefix(ddl[i].SQL, want[i])
	}
	if !ok {
		t.Fatalf("the restart points' DDL:\n%v\nwant statements starting\n%q", ddl, want)
	}
	waitUntil(t, 20*time.Second, "a restart point after the last DROP", func() bool {
		m, err := c.latestRestartPoint(context.Background())
		return err == nil && m != nil && m.Pos > c.wal.log.Next()-2 && len(m.DDL) == len(want)
	})
	shutDown(c, stop)

	c2, st := startRecovered(t, cfg, 1)
	if st.From <= 1 || st.Statements != int64(len(want)) {
		t.Errorf("recovered from log position %d with %d statements, want a restart point's and %d", st.From, st.Statements, len(want))
	}
	s2, _ := c2.NewSession(context.Background(), "spate", "spate")
	if got := run(t, s2, "SELECT name FROM spate_continuous_queries"); fmt.Sprint(got) != "[[keep]]" {
		t.Errorf("queries after the restart: %v", got)
	}
	if got := run(t, s2, "SELECT name FROM spate_streams"); fmt.Sprint(got) != "[[ev]]" {
		t.Errorf("streams after the restart: %v", got)
	}
	viewer := roleSession(t, c2, "viewer")
	if got := run(t, viewer, "SELECT COUNT(*), SUM(n) FROM keep"); fmt.Sprint(got) != "[[30 30]]" {
		t.Errorf("keep read by viewer after the restart: %v", got)
	}
	if got := c2.Grants(); fmt.Sprint(got) != "[{viewer keep SELECT}]" {
		t.Errorf("grants after the restart: %v", got)
	}
}

// TestQueryLateRowsSurviveRestart: the rows a query did not see because
// its stream had them late are counted on after a restart from a restart
// point (they were counted from zero).
func TestQueryLateRowsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Parallelism: 1, DataDir: dir, CheckpointInterval: 30 * time.Millisecond, RestartPointInterval: 30 * time.Millisecond,
		CheckpointStore: filepath.Join(dir, "checkpoints")}
	c, stop, s := startOnDataDir(t, cfg, 1)
	run(t, s, "CREATE STREAM ev (k INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')")
	run(t, s, "CREATE CONTINUOUS QUERY n AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	run(t, s, "INSERT INTO ev VALUES (1, 100)")
	run(t, s, "INSERT INTO ev VALUES (1, 50), (2, 40)")
	const late = "SELECT late_rows FROM spate_continuous_queries WHERE name = 'n'"
	if got := run(t, s, late); got[0][0] != "2" {
		t.Fatalf("late rows before the restart: %v", got)
	}
	waitUntil(t, 20*time.Second, "a restart point after the late rows", func() bool {
		m, err := c.latestRestartPoint(context.Background())
		return err == nil && m != nil && m.Pos > c.wal.log.Next()-2
	})
	shutDown(c, stop)
	c2, st := startRecovered(t, cfg, 1)
	if st.From <= 1 {
		t.Fatalf("recovered from log position %d, want a restart point's", st.From)
	}
	s2, _ := c2.NewSession(context.Background(), "spate", "spate")
	if got := run(t, s2, late); got[0][0] != "2" {
		t.Errorf("late rows after the restart: %v", got)
	}
}
