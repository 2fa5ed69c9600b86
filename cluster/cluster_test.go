package cluster

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/spatedb/spate/cluster/control"
	"github.com/spatedb/spate/exec"
	"github.com/spatedb/spate/parser"
)

// run executes SQL in a session and returns the result rows as text.
func run(t *testing.T, s Session, sql string) [][]string {
	t.Helper()
	rows, err := tryRun(s, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return rows
}

func tryRun(s Session, sql string) ([][]string, error) {
	stmts, err := parser.Parse(sql)
	if err != nil {
		return nil, err
	}
	var out [][]string
	for _, st := range stmts {
		res, err := s.Execute(context.Background(), st, nil)
		if err != nil {
			return nil, err
		}
		if res.CopyIn != nil {
			return nil, fmt.Errorf("COPY needs data")
		}
		if res.Rows == nil {
			continue
		}
		for {
			rec, err := res.Rows.Next(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			out = append(out, textRows(rec)...)
			rec.Release()
		}
		res.Rows.Close()
	}
	return out, nil
}

func textRows(rec arrow.RecordBatch) [][]string {
	var out [][]string
	for i := 0; i < int(rec.NumRows()); i++ {
		row := make([]string, rec.NumCols())
		for c := range row {
			if rec.Column(c).IsNull(i) {
				row[c] = "NULL"
			} else {
				row[c] = string(exec.AppendText(nil, rec.Column(c), i))
			}
		}
		out = append(out, row)
	}
	return out
}

func sortedText(rows [][]string) string {
	lines := make([]string, len(rows))
	for i, r := range rows {
		lines[i] = strings.Join(r, "|")
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func copyCSV(t *testing.T, s Session, table string, lines []string) {
	t.Helper()
	if err := copyLines(s, table, lines); err != nil {
		t.Fatal(err)
	}
}

// copyLines runs one COPY of lines into table, sending the data in
// uneven chunks, as a client would.
func copyLines(s Session, table string, lines []string) error {
	return copyData(s, "COPY "+table+" FROM STDIN (FORMAT csv)", strings.Join(lines, "\n")+"\n")
}

// copyData runs the COPY … FROM STDIN statement sql with data, sent in
// uneven chunks.
func copyData(s Session, sql, text string) error {
	st, err := parser.ParseOne(sql)
	if err != nil {
		return err
	}
	res, err := s.Execute(context.Background(), st, nil)
	if err != nil {
		return err
	}
	data := []byte(text)
	for len(data) > 0 {
		n := min(len(data), 997)
		if err := res.CopyIn.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	_, err = res.CopyIn.Finish()
	return err
}

// queries used by the metamorphic test: every kind of window and an
// updating aggregate, with filters and expressions.
var metamorphicQueries = map[string]string{
	"tumble":   "SELECT k, window_start, COUNT(*) AS n, SUM(v) AS s, MIN(v) AS lo, MAX(v) AS hi, COUNT(DISTINCT v % 7) AS d FROM ev WHERE v IS NOT NULL GROUP BY k, TUMBLE(t, INTERVAL '10' SECOND)",
	"hop":      "SELECT k % 3 AS g, window_start, window_end, AVG(v) AS a, COUNT(v) AS c FROM ev GROUP BY k % 3, HOP(t, INTERVAL '5' SECOND, INTERVAL '15' SECOND)",
	"session":  "SELECT k, window_start, window_end, COUNT(*) AS n FROM ev GROUP BY k, SESSION(t, INTERVAL '3' SECOND)",
	"updating": "SELECT k, COUNT(*) AS n, SUM(v) AS s FROM ev WHERE k < 20 GROUP BY k",
	"global":   "SELECT COUNT(*) AS n, MAX(t) AS last FROM ev",
	"filter":   "SELECT k, v * 2 AS w FROM ev WHERE v > 90",
	"selfjoin": "SELECT a.k, a.t, b.v FROM ev a JOIN ev b ON a.k = b.k AND b.t BETWEEN a.t - 3 AND a.t AND b.v > a.v",
	"leftjoin": "SELECT a.k, a.t, b.t AS bt FROM ev a LEFT JOIN ev b ON a.k = b.k AND a.v = b.v + 1 AND b.t BETWEEN a.t - 5 AND a.t + 2",
	"over":     "SELECT k, t, v, LAG(v, 2) OVER (PARTITION BY k ORDER BY t) AS l2, SUM(v) OVER (PARTITION BY k ORDER BY t ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS s4, ROW_NUMBER() OVER (PARTITION BY k ORDER BY t) AS n FROM ev",
}

// TestMetamorphicParallelism checks that results do not depend on the
// parallelism of the aggregate stage or on how the input is cut into
// batches and COPY chunks.
func TestMetamorphicParallelism(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 42))
	var lines []string
	tm := int64(1_000)
	for i := 0; i < 5000; i++ {
		tm += int64(rng.IntN(3))
		ts := tm - int64(rng.IntN(2)) // disorder within the 2s watermark delay
		v := fmt.Sprint(rng.IntN(100))
		if rng.IntN(20) == 0 {
			v = ""
		}
		lines = append(lines, fmt.Sprintf("%d,%s,%d", rng.IntN(40), v, ts))
	}
	// A last row far ahead closes every window.
	lines = append(lines, fmt.Sprintf("0,0,%d", tm+1000))

	results := map[string]string{}
	for _, cfg := range []struct{ par, batch, workers int }{{1, 8192, 0}, {3, 100, 0}, {4, 1, 0}, {2, 777, 0}, {3, 500, 3}, {4, 64, 2}} {
		// On workers, checkpoints every few milliseconds: their barriers
		// and alignment must not change any result.
		c, stopWorkers := startTestCluster(t, Config{Parallelism: cfg.par, BatchRows: cfg.batch, CheckpointInterval: 5 * time.Millisecond, CheckpointStore: "memory"}, cfg.workers)
		s, _ := c.NewSession(context.Background(), "spate", "spate")
		run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '2s')")
		for name, q := range metamorphicQueries {
			run(t, s, "CREATE CONTINUOUS QUERY "+name+" AS "+q)
		}
		copyCSV(t, s, "ev", lines)
		late := run(t, s, "SHOW STREAMS")[0][5]
		if late != "0" {
			t.Errorf("parallelism %d: %s late rows, want 0", cfg.par, late)
		}
		for name := range metamorphicQueries {
			got := sortedText(run(t, s, "SELECT * FROM "+name))
			if got == "" {
				t.Errorf("%s: empty result", name)
			}
			if prev, ok := results[name]; ok && prev != got {
				t.Errorf("%s differs at parallelism %d, batch %d:\n%s\nvs\n%s", name, cfg.par, cfg.batch, firstDiff(prev, got), "")
			}
			results[name] = got
		}
		inst := run(t, s, "SHOW INSTANCES")
		if want := 1 + cfg.par; countPrefix(inst, "tumble") != want {
			t.Errorf("SHOW INSTANCES lists %d instances of tumble, want %d", countPrefix(inst, "tumble"), want)
		}
		if cfg.workers > 0 {
			deadline := time.Now().Add(10 * time.Second)
			for {
				done := run(t, s, "SELECT COUNT(DISTINCT query) FROM spate_checkpoints WHERE status = 'complete' AND instances > 0")[0][0]
				if done == fmt.Sprint(len(metamorphicQueries)-1) { // "filter" runs on the coordinator only
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("checkpoints completed for %s of %d queries: %v", done, len(metamorphicQueries)-1, run(t, s, "SHOW CHECKPOINTS"))
				}
				time.Sleep(20 * time.Millisecond)
			}
			if failed := run(t, s, "SELECT COUNT(*) FROM spate_checkpoints WHERE status <> 'complete' AND status <> 'in progress'")[0][0]; failed != "0" {
				t.Fatalf("failed checkpoints: %v", run(t, s, "SHOW CHECKPOINTS"))
			}
		}
		c.BeginShutdown()
		stopWorkers()
		c.Close()
	}
}

// startTestCluster starts a coordinator and, when workers > 0, that many
// worker runtimes in this process (real control and data planes over
// loopback TCP) that have joined it.
func startTestCluster(t *testing.T, cfg Config, workers int) (*Coordinator, func()) {
	t.Helper()
	c, stop, _ := startKillableCluster(t, cfg, workers)
	return c, stop
}

// startSession is startTestCluster with a session, shut down when the
// test ends.
func startSession(t *testing.T, cfg Config, workers int) (*Coordinator, Session) {
	t.Helper()
	c, s, _ := startKillableSession(t, cfg, workers)
	return c, s
}

// startKillableSession is startSession that can also stop a worker, as
// startKillableCluster.
func startKillableSession(t *testing.T, cfg Config, workers int) (*Coordinator, Session, func(i int)) {
	t.Helper()
	c, stop, kill := startKillableCluster(t, cfg, workers)
	t.Cleanup(func() {
		c.BeginShutdown()
		stop()
		c.Close()
	})
	s, err := c.NewSession(context.Background(), "spate", "spate")
	if err != nil {
		t.Fatal(err)
	}
	return c, s, kill
}

// startKillableCluster is startTestCluster that can also stop one worker
// runtime (by its index in joining order, the registry's "w1" being 0):
// its control and data connections close, as when its process dies.
func startKillableCluster(t *testing.T, cfg Config, workers int) (*Coordinator, func(), func(i int)) {
	t.Helper()
	if workers > 0 {
		cfg.Token = "test-token"
	}
	c, err := NewCoordinator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	kills := make([]context.CancelFunc, workers)
	for i := range workers {
		wctx, kill := context.WithCancel(ctx)
		kills[i] = kill
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := RunWorker(wctx, WorkerConfig{Join: c.ClusterAddr(), Token: cfg.Token}); err != nil && wctx.Err() == nil {
				t.Errorf("worker: %v", err)
			}
		}()
		// One at a time, so that worker i is "w<i+1>".
		jctx, jcancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.WaitForWorkers(jctx, i+1)
		jcancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	return c, func() {
		cancel()
		wg.Wait()
	}, func(i int) { kills[i]() }
}

func countPrefix(rows [][]string, q string) int {
	n := 0
	for _, r := range rows {
		if r[0] == q {
			n++
		}
	}
	return n
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d: %q vs %q", i, al[i], bl[i])
		}
	}
	return fmt.Sprintf("%d vs %d lines", len(al), len(bl))
}

// TestLateRowsCounted checks that a row behind the watermark is counted in
// SHOW STREAMS and SHOW CONTINUOUS QUERIES and left out of the result.
func TestLateRowsCounted(t *testing.T) {
	c, _ := NewCoordinator(Config{})
	defer c.Close()
	s, _ := c.NewSession(context.Background(), "spate", "spate")
	run(t, s, "CREATE STREAM ev (k INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '5s')")
	run(t, s, "CREATE CONTINUOUS QUERY w AS SELECT k, window_start, COUNT(*) AS n FROM ev GROUP BY k, TUMBLE(t, INTERVAL '10' SECOND)")
	run(t, s, "INSERT INTO ev VALUES (1, 100), (1, 103), (1, 120)")  // watermark 115: [100,110) closes
	run(t, s, "INSERT INTO ev VALUES (1, 104), (1, 116), (1, NULL)") // 104 < 115 is late; NULL time is late; 116 is on time
	run(t, s, "INSERT INTO ev VALUES (1, 200)")
	if got := sortedText(run(t, s, "SELECT * FROM w")); got != "1|100|2\n1|110|1\n1|120|1" {
		t.Errorf("result:\n%s", got)
	}
	if got := run(t, s, "SHOW STREAMS")[0][5]; got != "2" {
		t.Errorf("SHOW STREAMS late_rows = %s, want 2", got)
	}
	if got := run(t, s, "SHOW CONTINUOUS QUERIES")[0][7]; got != "2" {
		t.Errorf("SHOW CONTINUOUS QUERIES late_rows = %s, want 2", got)
	}
}

// TestSubscribeAndFailure checks SUBSCRIBE delivery and that a query
// failing at run time (division by zero) is reported while other queries
// on the same stream keep running.
func TestSubscribeAndFailure(t *testing.T) {
	c, _ := NewCoordinator(Config{})
	defer c.Close()
	s, _ := c.NewSession(context.Background(), "spate", "spate")
	run(t, s, "CREATE STREAM ev (k INT, d INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	run(t, s, "CREATE CONTINUOUS QUERY ok AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	run(t, s, "CREATE CONTINUOUS QUERY bad AS SELECT k, 10 / d AS q FROM ev")
	st, _ := parser.ParseOne("SUBSCRIBE ok")
	res, err := s.Execute(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Rows.Close()
	if res.Columns[0].Name != "op" {
		t.Fatalf("SUBSCRIBE to an updating query should start with op, got %v", res.Columns)
	}
	run(t, s, "INSERT INTO ev VALUES (1, 1, 1), (1, 0, 2)")
	run(t, s, "INSERT INTO ev VALUES (1, 5, 3)")
	var changes []string
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for len(changes) < 3 {
		rec, err := res.Rows.Next(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", changes, err)
		}
		for _, r := range textRows(rec) {
			changes = append(changes, strings.Join(r, "|"))
		}
		rec.Release()
	}
	if got := strings.Join(changes, ","); got != "+|1|2,-|1|2,+|1|3" {
		t.Errorf("changelog %s", got)
	}
	rows := run(t, s, "SHOW CONTINUOUS QUERIES")
	status := map[string]string{}
	for _, r := range rows {
		status[r[0]] = r[4]
	}
	if !strings.Contains(status["bad"], "division by zero") || status["ok"] != "running" {
		t.Errorf("statuses %v", status)
	}
	if _, err := tryRun(s, "DROP STREAM ev"); err == nil || !strings.Contains(err.Error(), "depends") {
		t.Errorf("DROP STREAM with dependents: %v", err)
	}
	run(t, s, "DROP STREAM ev CASCADE")
	// The subscription ends when its query is dropped, with an error
	// that says so (not as if the stream were complete).
	for {
		rec, err := res.Rows.Next(ctx)
		if err != nil {
			if errCode(err) != "42P01" || !strings.Contains(err.Error(), "was dropped") {
				t.Fatalf("subscription after DROP: %v", err)
			}
			break
		}
		rec.Release()
	}
}

// TestQueryOnQuery checks that a continuous query reads another's
// windowed output as a stream, with the upstream's watermark.
func TestQueryOnQuery(t *testing.T) {
	c, _ := NewCoordinator(Config{Parallelism: 2})
	defer c.Close()
	s, _ := c.NewSession(context.Background(), "spate", "spate")
	run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	run(t, s, "CREATE CONTINUOUS QUERY per10 AS SELECT k, window_start, window_end, SUM(v) AS s FROM ev GROUP BY k, TUMBLE(t, INTERVAL '10' SECOND)")
	run(t, s, "CREATE CONTINUOUS QUERY per30 AS SELECT window_start, window_end, SUM(s) AS total, COUNT(*) AS parts FROM per10 GROUP BY TUMBLE(window_end, INTERVAL '30' SECOND)")
	run(t, s, "CREATE CONTINUOUS QUERY big AS SELECT k, window_end, s FROM per10 WHERE s > 5")
	run(t, s, "INSERT INTO ev VALUES (1, 1, 1), (2, 2, 5), (1, 3, 12), (2, 4, 25), (1, 5, 29), (1, 6, 31)")
	run(t, s, "INSERT INTO ev VALUES (1, 0, 100)")
	// per10: (1,0,10,1) (2,0,10,2) (1,10,20,3) (2,20,30,4) (1,20,30,5) (1,30,40,6)
	// per30 windows on window_end: [0,30) holds ends 10, 20; [30,60) holds 30, 30, 40.
	if got := sortedText(run(t, s, "SELECT * FROM per30")); got != "0|30|6|3\n30|60|15|3" {
		t.Errorf("per30:\n%s", got)
	}
	if got := sortedText(run(t, s, "SELECT * FROM big")); got != "1|40|6" {
		t.Errorf("big:\n%s", got)
	}
	if _, err := tryRun(s, "DROP CONTINUOUS QUERY per10"); err == nil {
		t.Error("dropping a query another reads should fail without CASCADE")
	}
	run(t, s, "DROP CONTINUOUS QUERY per10 CASCADE")
	if rows := run(t, s, "SHOW CONTINUOUS QUERIES"); len(rows) != 0 {
		t.Errorf("after CASCADE: %v", rows)
	}
}

// TestRetention checks that an append-only result keeps only the rows
// within its retention of the watermark.
func TestRetention(t *testing.T) {
	c, _ := NewCoordinator(Config{})
	defer c.Close()
	s, _ := c.NewSession(context.Background(), "spate", "spate")
	run(t, s, "CREATE STREAM ev (k INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	run(t, s, "CREATE CONTINUOUS QUERY w WITH (retention = '30 seconds') AS SELECT k, window_end, COUNT(*) AS n FROM ev GROUP BY k, TUMBLE(t, INTERVAL '10' SECOND)")
	if _, err := tryRun(s, "CREATE CONTINUOUS QUERY u WITH (retention = '1 minute') AS SELECT k, COUNT(*) FROM ev GROUP BY k"); errCode(err) != "22023" {
		t.Errorf("retention on an updating result: %v", err)
	}
	for i := 0; i < 10; i++ {
		run(t, s, fmt.Sprintf("INSERT INTO ev VALUES (1, %d)", i*10))
	}
	// Watermark 90: windows ending 10…90 emitted; rows ending before 60
	// are dropped.
	if got := sortedText(run(t, s, "SELECT window_end FROM w")); got != "60\n70\n80\n90" {
		t.Errorf("retained rows:\n%s", got)
	}
	if got := run(t, s, "SELECT result_rows FROM spate_continuous_queries")[0][0]; got != "4" {
		t.Errorf("result_rows = %s, want 4", got)
	}
}

// TestResultCompaction checks that many small result batches are merged
// without changing the result.
func TestResultCompaction(t *testing.T) {
	c, _ := NewCoordinator(Config{})
	defer c.Close()
	s, _ := c.NewSession(context.Background(), "spate", "spate")
	run(t, s, "CREATE STREAM ev (k INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	run(t, s, "CREATE CONTINUOUS QUERY w AS SELECT k, window_start, COUNT(*) AS n FROM ev GROUP BY k, TUMBLE(t, INTERVAL '1' SECOND)")
	var want []string
	for i := 0; i < 700; i++ {
		run(t, s, fmt.Sprintf("INSERT INTO ev VALUES (%d, %d), (%d, %d)", i%7, i, i%7, i))
		if i < 699 {
			want = append(want, fmt.Sprintf("%d|%d|2", i%7, i))
		}
	}
	c.mu.Lock()
	store := c.queries["w"].result
	c.mu.Unlock()
	store.mu.Lock()
	batches := len(store.batches)
	store.mu.Unlock()
	if batches >= compactTailBatches {
		t.Errorf("%d stored batches for 699 one-row emissions: the tail was not compacted", batches)
	}
	if got := sortedText(run(t, s, "SELECT * FROM w")); got != sortedText(splitRows(want)) {
		t.Errorf("result changed by compaction:\n%s", firstDiff(sortedText(splitRows(want)), got))
	}
}

func splitRows(lines []string) [][]string {
	out := make([][]string, len(lines))
	for i, l := range lines {
		out[i] = strings.Split(l, "|")
	}
	return out
}

// TestListedWorkers: SHOW WORKERS lists every live worker and the dead
// ones that died last, keepDeadWorkers of them, in registry order.
func TestListedWorkers(t *testing.T) {
	start := time.Now()
	var ws []control.WorkerInfo
	for i := range 15 {
		st := control.StatusDead
		if i%5 == 0 {
			st = control.StatusAlive
		}
		ws = append(ws, control.WorkerInfo{ID: fmt.Sprintf("w%d", i+1), Status: st, LastHeartbeat: start.Add(time.Duration(i) * time.Second)})
	}
	var ids []string
	for _, w := range listedWorkers(ws) {
		ids = append(ids, w.ID)
	}
	// 12 dead (all but w1, w6, w11): the two that died first, w2 and w3,
	// are left out.
	if want := "w1 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15"; strings.Join(ids, " ") != want {
		t.Errorf("listed %v, want %s", ids, want)
	}
	if n := len(listedWorkers(ws[:5])); n != 5 {
		t.Errorf("listed %d of 5 workers", n)
	}
}

// TestLeadNotice: a continuous query with LEAD is told that its rows wait
// for the rows after them (and its watermark with them); one without
// LEAD is told nothing.
func TestLeadNotice(t *testing.T) {
	_, s := startSession(t, Config{}, 0)
	run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	if n := alterNotices(t, s, "CREATE CONTINUOUS QUERY lagged AS SELECT k, t, LAG(v) OVER (PARTITION BY k ORDER BY t) AS p FROM ev"); len(n) != 0 {
		t.Errorf("LAG: notices %+v", n)
	}
	n := alterNotices(t, s, "CREATE CONTINUOUS QUERY led AS SELECT k, t, LEAD(v) OVER (PARTITION BY k ORDER BY t) AS nx FROM ev")
	if len(n) != 1 || n[0].Severity != "NOTICE" || !strings.Contains(n[0].Message, "a partition's last rows wait for rows that may never come") {
		t.Errorf("LEAD: notices %+v, want one saying rows wait", n)
	}
}

// TestResultEventTime: SHOW CONTINUOUS QUERIES names each result's
// event-time column (what a query reading it windows and joins by), NULL
// when it has none.
func TestResultEventTime(t *testing.T) {
	_, s := startSession(t, Config{}, 0)
	run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	run(t, s, "CREATE CONTINUOUS QUERY win AS SELECT k, window_end, COUNT(*) AS n FROM ev GROUP BY k, TUMBLE(t, INTERVAL '10' SECOND)")
	run(t, s, "CREATE CONTINUOUS QUERY pass AS SELECT k, t AS at FROM ev WHERE v > 0")
	run(t, s, "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	// Followed by value, not by name: a column named t that is not the
	// event time is not taken for it.
	run(t, s, "CREATE CONTINUOUS QUERY fake AS SELECT k, v AS t FROM ev")
	run(t, s, "CREATE CONTINUOUS QUERY renamed AS SELECT k, window_end AS closes, COUNT(*) AS n FROM ev GROUP BY k, TUMBLE(t, INTERVAL '10' SECOND)")
	run(t, s, "CREATE CONTINUOUS QUERY fromwin AS SELECT k, n, window_end AS w FROM win WHERE n > 1")
	run(t, s, "CREATE CONTINUOUS QUERY pairs AS SELECT a.k, b.v, a.t AS at FROM ev a JOIN ev b ON a.k = b.k AND b.t BETWEEN a.t - 5 AND a.t")
	run(t, s, "CREATE CONTINUOUS QUERY running AS SELECT k, t AS at, SUM(v) OVER (PARTITION BY k ORDER BY t) AS s FROM ev")
	got := run(t, s, "SELECT name, event_time FROM spate_continuous_queries ORDER BY name")
	if fmt.Sprint(got) != "[[fake NULL] [fromwin w] [pairs at] [pass at] [renamed closes] [running at] [totals NULL] [win window_end]]" {
		t.Errorf("event_time of the results: %v", got)
	}
}

// TestAutoscaleDefault: with Config.Autoscale (serve --autoscale) every
// continuous query autoscales until ALTER … SET (autoscale = off) says
// otherwise for one; other settings keep it on.
func TestAutoscaleDefault(t *testing.T) {
	_, s := startSession(t, Config{Autoscale: true}, 0)
	run(t, s, "CREATE STREAM ev (k INT, v INT)")
	run(t, s, "CREATE CONTINUOUS QUERY a AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	run(t, s, "CREATE CONTINUOUS QUERY b AS SELECT k, SUM(v) AS s FROM ev GROUP BY k")
	run(t, s, "ALTER CONTINUOUS QUERY a SET (max_instances = 4)")
	run(t, s, "ALTER CONTINUOUS QUERY b SET (autoscale = off)")
	got := run(t, s, "SELECT name, scaling FROM spate_continuous_queries ORDER BY name")
	if fmt.Sprint(got) != "[[a autoscale on, 1 to 4 instances, target utilisation 0.70] [b autoscale off, 1 to 16 instances, target utilisation 0.70]]" {
		t.Errorf("scaling with autoscale on by default: %v", got)
	}
}

// TestIngestWhileReaderIsDroppedAndCreated: statements ingesting into a
// stream succeed while another session drops and creates a continuous
// query reading it, over and over — a query dropped while a statement
// waits for it to take the rows is nothing to wait for, not an error
// (the rows are logged: a client retrying an error would ingest them
// twice) — and every row is counted once.
func TestIngestWhileReaderIsDroppedAndCreated(t *testing.T) {
	c, s := startSession(t, Config{Parallelism: 2, BatchRows: 50}, 2)
	ddl, _ := c.NewSession(context.Background(), "spate", "spate")
	run(t, s, "CREATE STREAM e2 (k INT, v INT)")
	done := make(chan struct{})
	churned := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-done:
				churned <- n
				return
			default:
			}
			for _, sql := range []string{"DROP CONTINUOUS QUERY IF EXISTS e2q", "CREATE CONTINUOUS QUERY e2q AS SELECT k, COUNT(*) AS n FROM e2 GROUP BY k"} {
				if _, err := tryRun(ddl, sql); err != nil {
					t.Errorf("%s: %v", sql, err)
				}
			}
			n++
		}
	}()
	var lines []string
	for i := range 100 {
		lines = append(lines, fmt.Sprintf("%d,%d", i%7, i))
	}
	stmts := 0
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); stmts++ {
		if stmts%2 == 0 {
			copyCSV(t, s, "e2", lines)
		} else {
			run(t, s, "INSERT INTO e2 VALUES (1, 1), (2, 2)")
		}
	}
	close(done)
	t.Logf("%d statements while the query was dropped and created %d times", stmts, <-churned)
	want := (stmts+1)/2*100 + stmts/2*2
	if got := run(t, s, "SELECT rows_in FROM spate_streams WHERE name = 'e2'")[0][0]; got != fmt.Sprint(want) {
		t.Errorf("the stream took in %s rows, want %d", got, want)
	}
}

// TestInfiniteEventTimeIsLate: a row whose event time is 'infinity' (or
// beyond some 146,000 years either way) is late — dropped and counted —
// instead of moving the watermark to the end of time, which made every
// later row late and its window's end overflow.
func TestInfiniteEventTimeIsLate(t *testing.T) {
	_, s := startSession(t, Config{}, 0)
	run(t, s, "CREATE STREAM ti (t TIMESTAMP, v INT) WITH (event_time = 't', watermark_delay = '0s')")
	run(t, s, "CREATE STREAM tb (t BIGINT, v INT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')")
	run(t, s, "CREATE CONTINUOUS QUERY w AS SELECT window_end, COUNT(*) AS n FROM ti GROUP BY TUMBLE(t, INTERVAL '1' HOUR)")
	run(t, s, "INSERT INTO ti VALUES ('2026-01-01 00:10:00', 1), ('infinity', 2), ('-infinity', 3), ('2026-01-01 00:20:00', 4), ('2026-01-01 02:00:00', 5)")
	run(t, s, "INSERT INTO tb VALUES (100, 1), (9000000000000000000, 2), (-9000000000000000000, 3), (200, 4)")
	got := run(t, s, "SELECT name, rows_in, late_rows, watermark FROM spate_streams ORDER BY name")
	if fmt.Sprint(got) != "[[tb 4 2 1970-01-01 00:03:20] [ti 5 2 2026-01-01 02:00:00]]" {
		t.Errorf("streams after infinite event times: %v", got)
	}
	if got := run(t, s, "SELECT * FROM w"); fmt.Sprint(got) != "[[2026-01-01 01:00:00 2]]" {
		t.Errorf("the window: %v", got)
	}
}

// TestDeepExpressionsOnWorkers: an expression nested almost
// parser.MaxNesting deep, and a WHERE of 20,000 ORs, plan, ship to a
// worker (whose plan decoding has a JSON depth limit) and compute what Go
// computes from the same rows.
func TestDeepExpressionsOnWorkers(t *testing.T) {
	_, s := startSession(t, Config{Parallelism: 2}, 1)
	run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	const terms = parser.MaxNesting - 50
	var ors []string
	for k := range 20_000 {
		ors = append(ors, fmt.Sprintf("k = %d", 2*k))
	}
	run(t, s, fmt.Sprintf("CREATE CONTINUOUS QUERY deep AS SELECT k, SUM(v%s + 0.5) AS s, COUNT(*) AS c FROM ev WHERE %s GROUP BY k, TUMBLE(t, INTERVAL '10' SECOND)",
		strings.Repeat(" + v", terms-1), strings.Join(ors, " OR ")))
	if got := run(t, s, "SELECT count(*) FROM spate_instances WHERE query = 'deep' AND worker <> 'coordinator'"); got[0][0] == "0" {
		t.Fatal("no instance of the query runs on a worker")
	}
	sums, counts := map[int]float64{}, map[int]int{}
	lines := steadyLines(3000, 7)
	for _, l := range lines[:len(lines)-1] {
		var k, v, ts int
		fmt.Sscanf(l, "%d,%d,%d", &k, &v, &ts)
		if k%2 == 0 {
			sums[k] += float64(terms*v) + 0.5
			counts[k]++
		}
	}
	var want []string
	for _, k := range slices.Sorted(maps.Keys(sums)) {
		want = append(want, fmt.Sprintf("[%d %s %d]", k, strconv.FormatFloat(sums[k], 'f', -1, 64), counts[k]))
	}
	copyCSV(t, s, "ev", lines)
	var got [][]string
	waitUntil(t, 30*time.Second, "every window of deep", func() bool {
		got = run(t, s, "SELECT k, SUM(s), SUM(c) FROM deep GROUP BY k ORDER BY k")
		return fmt.Sprint(got) == "["+strings.Join(want, " ")+"]"
	})
}

// TestCopyHeader: HEADER in text and CSV format skips the first line;
// HEADER MATCH checks it against the columns copied (22P04 naming the
// field), as PostgreSQL 15 does; other values and MATCH in COPY TO are
// refused.
func TestCopyHeader(t *testing.T) {
	_, s := startSession(t, Config{}, 0)
	run(t, s, "CREATE TABLE th (a INT, b TEXT)")
	for _, c := range []struct{ sql, data, code string }{
		{"COPY th FROM STDIN (HEADER)", "anything\n1\tx\n", ""},
		{"COPY th FROM STDIN (FORMAT csv, HEADER match)", "a,b\n2,y\n", ""},
		{"COPY th (b, a) FROM STDIN (FORMAT csv, HEADER match)", "b,a\nw,4\n", ""},
		{"COPY th FROM STDIN (HEADER match)", "a\tb\n5\tv\n", ""},
		{"COPY th FROM STDIN (FORMAT csv, HEADER match)", "a,c\n3,z\n", "22P04"},
		{"COPY th FROM STDIN (FORMAT csv, HEADER match)", "a\n3,z\n", "22P04"},
		{"COPY th FROM STDIN (FORMAT csv, HEADER false)", "3,z\n", ""},
		{"COPY th FROM STDIN (FORMAT csv, HEADER bogus)", "a,b\n", "42601"},
	} {
		if err := copyData(s, c.sql, c.data); errCode(err) != c.code && !(c.code == "" && err == nil) {
			t.Errorf("%s with %q: %v, want %q", c.sql, c.data, err, c.code)
		}
	}
	if _, err := tryRun(s, "COPY th TO STDOUT (HEADER match)"); errCode(err) != "0A000" {
		t.Errorf("COPY TO with HEADER match: %v", err)
	}
	if got := run(t, s, "SELECT * FROM th ORDER BY a"); fmt.Sprint(got) != "[[1 x] [2 y] [3 z] [4 w] [5 v]]" {
		t.Errorf("rows copied: %v", got)
	}
}
