package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spatedb/spate/exec"
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
	c.BeginShutdown()
	stop()
	c.Close()

	segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*"))
	sort.Strings(segs)
	if len(segs) == 0 || strings.HasSuffix(segs[0], fmt.Sprintf("%020d.log", 1)) {
		t.Errorf("the log was not trimmed behind the restart point: %v", segs)
	}

	c2, stop2 := startTestCluster(t, cfg, 2)
	defer func() {
		c2.BeginShutdown()
		stop2()
		c2.Close()
	}()
	st, err := c2.Recover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.From <= 1 {
		t.Fatalf("recovered from log position %d, want a restart point's", st.From)
	}
	s2, _ := c2.NewSession(context.Background(), "spate", "spate")
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
	}
	_ = os.Remove
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
		data, _, err := r.encodeAt(uint64(epoch))
		if err != nil {
			t.Fatal(err)
		}
		batches, err := decodeBatches(data)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, b := range batches {
			n += int(b.NumRows())
			b.Release()
		}
		if n != epoch*perEpoch {
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
		closeAll := func() {
			c.BeginShutdown()
			stop()
			c.Close()
		}
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
	c, stop := startTestCluster(t, cfg, 2)
	if _, err := c.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, _ := c.NewSession(context.Background(), "spate", "spate")
	run(t, s, "CREATE STREAM ev (k INT, v INT)")
	run(t, s, "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k")
	var lines []string
	for i := range 3000 {
		lines = append(lines, fmt.Sprintf("%d,%d", i%97, i))
	}
	copyCSV(t, s, "ev", lines)
	waitUntil(t, 20*time.Second, "the first restart point", func() bool {
		return len(run(t, s, "SELECT wal_position FROM spate_restart_points WHERE status = 'written'")) > 0
	})
	run(t, s, "ALTER CONTINUOUS QUERY totals SCALE OUT STAGE 1")
	want := sortedText(run(t, s, "SELECT * FROM totals"))
	c.BeginShutdown()
	stop()
	c.Close()

	c2, stop2 := startTestCluster(t, cfg, 2)
	defer func() {
		c2.BeginShutdown()
		stop2()
		c2.Close()
	}()
	if _, err := c2.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2, _ := c2.NewSession(context.Background(), "spate", "spate")
	if n := run(t, s2, "SELECT COUNT(*) FROM spate_instances WHERE query = 'totals' AND stage = 1"); n[0][0] != "3" {
		t.Errorf("resumed with %s aggregate instances, want the 3 of the acknowledged scale-out", n[0][0])
	}
	if got := sortedText(run(t, s2, "SELECT * FROM totals")); got != want {
		t.Errorf("totals after the restart: %s", firstDiff(want, got))
	}
}
