package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spatedb/spate/internal/sqltest"
)

// These tests drive the real psql binary against `spate serve`, as a user
// does.

// psqlResult is the outcome of one psql run.
type psqlResult struct {
	stdout, stderr string
	exit           int
}

// runPsql runs psql -X -v VERBOSITY=verbose against connString with args
// (e.g. -c "…") and returns what it printed and its exit code.
func runPsql(t *testing.T, psql, connString string, args ...string) psqlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, psql, append([]string{"-X", "-v", "VERBOSITY=verbose", "-d", connString}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := psqlResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.exit = ee.ExitCode()
	default:
		t.Fatalf("running psql: %v", err)
	}
	return res
}

// mustPsql is runPsql that fails the test unless psql exits with 0.
func mustPsql(t *testing.T, psql, connString string, args ...string) string {
	t.Helper()
	res := runPsql(t, psql, connString, args...)
	if res.exit != 0 {
		t.Fatalf("psql %q exited with %d:\n%s%s", args, res.exit, res.stdout, res.stderr)
	}
	return res.stdout
}

// tradeCSV writes n trades (with a header) to a file: five symbols, prices
// with two decimals, event times 100 ms apart from 2026-01-01 00:00:00 with
// up to 2 s of disorder (less than the 5 s watermark delay: nothing is
// late).
func tradeCSV(t *testing.T, n int, seed int64) (path string, maxTS time.Time) {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	syms := []string{"ACME", "BOLT", "CRUX", "DYNA", "EPIC"}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	b.WriteString("sym,price,qty,ts\n")
	for i := 0; i < n; i++ {
		ts := start.Add(time.Duration(i)*100*time.Millisecond - time.Duration(rng.Int63n(2000))*time.Millisecond)
		if ts.After(maxTS) {
			maxTS = ts
		}
		fmt.Fprintf(&b, "%s,%d.%02d,%d,%s\n", syms[rng.Intn(len(syms))], rng.Intn(500)+1, rng.Intn(100), rng.Intn(100)+1, ts.Format("2006-01-02 15:04:05.000"))
	}
	path = filepath.Join(t.TempDir(), "trades.csv")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, maxTS
}

const (
	tradesDDL = `CREATE STREAM trades (sym TEXT, price DOUBLE PRECISION, qty INT, ts TIMESTAMP)
  WITH (event_time = 'ts', watermark_delay = '5 seconds')`
	barsDDL = `CREATE CONTINUOUS QUERY bars AS
  SELECT sym, window_start, window_end, COUNT(*) AS n, SUM(qty) AS volume,
         MIN(price) AS low, MAX(price) AS high, AVG(price) AS avg_price
  FROM trades
  GROUP BY sym, TUMBLE(ts, INTERVAL '1' MINUTE)`
	barsColumns = "TTTIIRRR"
)

// subscriber is a psql running COPY (SUBSCRIBE …) TO STDOUT whose output
// is read line by line as it arrives.
type subscriber struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when stdout is drained and psql has exited

	mu sync.Mutex
	// protected by mu
	lines []string
	times []time.Time // arrival time of each line
	cond  *sync.Cond
	err   error // psql's exit status, set when done
	eof   bool
}

// startSubscriber starts psql -c "COPY (SUBSCRIBE query) TO STDOUT".
// stdout goes through stdbuf -oL when available: psql writes COPY rows
// with stdio, which a pipe would otherwise buffer in 4–8 KB chunks.
func startSubscriber(t *testing.T, psql, connString, query string) *subscriber {
	t.Helper()
	args := []string{"-X", "-d", connString, "-c", "COPY (SUBSCRIBE " + query + ") TO STDOUT"}
	var cmd *exec.Cmd
	if stdbuf, err := exec.LookPath("stdbuf"); err == nil {
		cmd = exec.Command(stdbuf, append([]string{"-oL", psql}, args...)...)
	} else {
		t.Log("stdbuf not found: subscriber rows arrive in stdio-buffered chunks")
		cmd = exec.Command(psql, args...)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &subscriber{cmd: cmd, done: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			s.times = append(s.times, time.Now())
			s.cond.Broadcast()
			s.mu.Unlock()
		}
		err := cmd.Wait()
		s.mu.Lock()
		s.eof = true
		s.err = err
		if err != nil && stderr.Len() > 0 {
			s.err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
		}
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.done
	})
	return s
}

// snapshot returns the lines printed so far, their arrival times and
// whether psql has exited.
func (s *subscriber) snapshot() ([]string, []time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...), append([]time.Time(nil), s.times...), s.eof
}

// waitLines waits until the subscriber has printed n lines or exited, or
// the timeout passes, and returns what it has.
func (s *subscriber) waitLines(n int, timeout time.Duration) ([]string, []time.Time, bool) {
	timer := time.AfterFunc(timeout, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.lines) < n && !s.eof && time.Now().Before(deadline) {
		s.cond.Wait()
	}
	return append([]string(nil), s.lines...), append([]time.Time(nil), s.times...), s.eof
}

// waitSubscribed makes sure the subscriber's SUBSCRIBE is registered (psql
// may still be starting): it inserts probe rows (sym PROBE, a day before
// the test data) that close a window, until the subscriber prints one.
func waitSubscribed(t *testing.T, psql, conn string, s *subscriber) {
	t.Helper()
	day := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	const layout = "2006-01-02 15:04:05"
	for k := 0; k < 30; k++ {
		at := day.Add(time.Duration(k) * 10 * time.Minute)
		mustPsql(t, psql, conn, "-c", fmt.Sprintf(`INSERT INTO trades VALUES ('PROBE', 1, 1, '%s'), ('PROBE', 1, 1, '%s')`,
			at.Format(layout), at.Add(90*time.Second).Format(layout)))
		lines, _, exited := s.waitLines(1, time.Second)
		if exited {
			t.Fatalf("the subscriber exited: %v", s.err)
		}
		if len(lines) > 0 {
			if !strings.HasPrefix(lines[0], "PROBE\t") {
				t.Fatalf("the subscriber printed %q, want a PROBE window", lines[0])
			}
			return
		}
	}
	t.Fatal("the subscriber printed no window within 30 s")
}

// waitRows waits until the subscriber has printed n rows that are not
// PROBE rows (or exited, or the timeout passed) and returns those rows
// with their arrival times.
func (s *subscriber) waitRows(n int, timeout time.Duration) (rows []string, times []time.Time, exited bool) {
	deadline := time.Now().Add(timeout)
	for {
		lines, ts, eof := s.snapshot()
		rows, times = rows[:0], times[:0]
		for i, l := range lines {
			if !strings.HasPrefix(l, "PROBE\t") {
				rows, times = append(rows, l), append(times, ts[i])
			}
		}
		if len(rows) >= n || eof || time.Now().After(deadline) {
			return rows, times, eof
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPsqlEndToEnd(t *testing.T) {
	psql := sqltest.RequireBinary(t, "psql")
	const n = 100000 // takes well under a second; also under -short
	srv := sqltest.StartSpate(t)
	pg := sqltest.StartPostgres(t)
	conn := srv.ConnString()

	mustPsql(t, psql, conn, "-c", tradesDDL)
	mustPsql(t, psql, conn, "-c", barsDDL)
	if out := mustPsql(t, psql, conn, "-A", "-t", "-F,", "-c", "SHOW STREAMS"); !strings.HasPrefix(out, "trades,") {
		t.Fatalf("SHOW STREAMS printed %q", out)
	}

	// The subscriber starts before the COPY.
	sub := startSubscriber(t, psql, conn, "bars")
	waitSubscribed(t, psql, conn, sub)

	// The generated file goes to Spate through psql's standard input
	// (\copy … FROM pstdin), three quarters first: the COPY is certainly
	// still running while the subscriber must print the windows those rows
	// closed.
	file, maxTS := tradeCSV(t, n, 1)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cut := bytes.IndexByte(data[len(data)*3/4:], '\n') + len(data)*3/4 + 1
	cp := startPsqlCopy(t, psql, conn, `\copy trades FROM pstdin WITH (FORMAT csv, HEADER true)`)
	copyStart := time.Now()
	cp.write(t, data[:cut])
	rows, times, exited := sub.waitRows(1, 30*time.Second)
	switch {
	case exited:
		t.Fatalf("the subscriber exited: %v", sub.err)
	case len(rows) == 0:
		t.Errorf("no window row reached the subscriber within 30 s of 3/4 of the COPY data (the COPY is still open): rows are not streamed while a COPY runs")
	case cp.exited():
		t.Errorf("psql's COPY ended early: %s", cp.stderr.String())
	default:
		t.Logf("first subscriber row %v after the COPY started, while it was running", times[0].Sub(copyStart).Round(time.Millisecond))
	}
	cp.write(t, data[cut:])
	out := cp.finish(t)
	if strings.TrimSpace(out) != fmt.Sprintf("COPY %d", n) {
		t.Errorf("\\copy printed %q, want COPY %d", out, n)
	}
	t.Logf("\\copy of %d rows took %v", n, time.Since(copyStart).Round(time.Millisecond))

	// PostgreSQL computes the windows the watermark has closed.
	mustPsql(t, psql, pg.ConnString(), "-c", `CREATE TABLE trades (sym TEXT, price DOUBLE PRECISION, qty INT, ts TIMESTAMP)`)
	mustPsql(t, psql, pg.ConnString(), "-c", fmt.Sprintf(`\copy trades FROM '%s' WITH (FORMAT csv, HEADER true)`, file))
	watermark := maxTS.Add(-5 * time.Second).Format("2006-01-02 15:04:05.000")
	want := parseCSVLines(mustPsql(t, psql, pg.ConnString(), "-A", "-t", "-F,", "-c", fmt.Sprintf(`
		SELECT sym, date_trunc('minute', ts) AS ws, date_trunc('minute', ts) + INTERVAL '1 minute',
		       COUNT(*), SUM(qty), MIN(price), MAX(price), AVG(price)
		FROM trades GROUP BY sym, ws
		HAVING date_trunc('minute', ts) + INTERVAL '1 minute' <= TIMESTAMP '%s'
		ORDER BY ws, sym`, watermark)))
	got := parseCSVLines(mustPsql(t, psql, conn, "-A", "-t", "-F,", "-c", "SELECT * FROM bars WHERE sym <> 'PROBE' ORDER BY window_start, sym"))
	if len(want) < 100 {
		t.Fatalf("PostgreSQL has only %d closed windows; the data is too small", len(want))
	}
	if diff := diffRows(barsColumns, got, want); diff != "" {
		t.Errorf("SELECT * FROM bars differs from PostgreSQL (%d rows from Spate, %d from PostgreSQL):\n%s", len(got), len(want), diff)
	}

	// The subscriber printed every closed window.
	lines, _, exited := sub.waitRows(len(want), 30*time.Second)
	if exited {
		t.Errorf("the subscriber exited: %v", sub.err)
	}
	var subRows [][]string
	for _, l := range lines {
		subRows = append(subRows, sqltest.ParseCopyText(l))
	}
	sortRows(subRows, 1, 0) // window_start, sym
	if diff := diffRows(barsColumns, subRows, want); diff != "" {
		t.Errorf("the subscriber's rows differ from PostgreSQL (%d from the subscriber, %d from PostgreSQL):\n%s", len(subRows), len(want), diff)
	}

	// Ctrl-C: psql cancels the COPY and exits.
	_ = sub.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-sub.done:
	case <-time.After(10 * time.Second):
		t.Errorf("psql did not exit within 10 s of SIGINT: the server did not end the SUBSCRIBE on a cancel request")
	}
	// The server goes on serving.
	if out := mustPsql(t, psql, conn, "-A", "-t", "-c", "SELECT sym FROM bars WHERE sym = 'ACME' LIMIT 1"); out != "ACME\n" {
		t.Errorf("SELECT sym FROM bars WHERE sym = 'ACME' LIMIT 1 printed %q, want ACME", out)
	}
}

// psqlCopy is a psql running \copy … FROM pstdin, fed by the test.
type psqlCopy struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout sqltest.SyncBuffer
	stderr sqltest.SyncBuffer
	done   chan struct{} // closed when psql has exited
	err    error         // psql's exit status, set before done is closed
}

func startPsqlCopy(t *testing.T, psql, conn, command string) *psqlCopy {
	t.Helper()
	c := &psqlCopy{done: make(chan struct{})}
	c.cmd = exec.Command(psql, "-X", "-v", "VERBOSITY=verbose", "-d", conn, "-c", command)
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
	})
	return c
}

func (c *psqlCopy) write(t *testing.T, data []byte) {
	t.Helper()
	if _, err := c.stdin.Write(data); err != nil {
		t.Fatalf("feeding psql: %v (stderr: %s)", err, c.stderr.String())
	}
}

func (c *psqlCopy) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// finish closes psql's input (the end of the COPY data) and waits for it;
// it returns what psql printed and fails the test if psql failed.
func (c *psqlCopy) finish(t *testing.T) string {
	t.Helper()
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("psql's COPY did not finish within 2 minutes")
	}
	if c.err != nil {
		t.Fatalf("psql's COPY failed: %v\n%s", c.err, c.stderr.String())
	}
	return c.stdout.String()
}

// TestPsqlCopyLatency feeds a COPY slowly, as a live feed does, and
// expects the windows its rows close to reach a subscriber while the COPY
// is still open: rows that have arrived are ingested within a bounded
// time, not only when a large batch has filled up or the COPY ends.
func TestPsqlCopyLatency(t *testing.T) {
	psql := sqltest.RequireBinary(t, "psql")
	srv := sqltest.StartSpate(t)
	conn := srv.ConnString()
	mustPsql(t, psql, conn, "-c", tradesDDL)
	mustPsql(t, psql, conn, "-c", barsDDL)
	sub := startSubscriber(t, psql, conn, "bars")
	waitSubscribed(t, psql, conn, sub)

	// 3000 rows (about 100 KB, far more than psql and libpq buffer) over 10
	// minutes of event time close 9 one-minute windows.
	cp := startPsqlCopy(t, psql, conn, `\copy trades FROM pstdin WITH (FORMAT csv)`)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&b, "ACME,1.5,1,%s\n", start.Add(time.Duration(i)*200*time.Millisecond).Format("2006-01-02 15:04:05.000"))
	}
	cp.write(t, b.Bytes())
	rows, _, exited := sub.waitRows(1, 10*time.Second)
	switch {
	case exited:
		t.Fatalf("the subscriber exited: %v", sub.err)
	case cp.exited():
		t.Fatalf("psql's COPY ended early: %s", cp.stderr.String())
	case len(rows) == 0:
		t.Errorf("3000 rows closing 9 windows were sent in an open COPY, and after 10 s no window had reached the subscriber: a slow COPY is not ingested until its batch fills or it ends")
	}
	out := cp.finish(t)
	if strings.TrimSpace(out) != "COPY 3000" {
		t.Errorf("\\copy printed %q, want COPY 3000", out)
	}
	if rows, _, _ := sub.waitRows(9, 10*time.Second); len(rows) != 9 {
		t.Errorf("after the COPY the subscriber printed %d windows, want 9: %q", len(rows), rows)
	}
}

// parseCSVLines splits psql -A -t -F, output (no field contains a comma).
// psql prints NULL as an empty field; it becomes NULL here.
func parseCSVLines(out string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		f := strings.Split(l, ",")
		for i := range f {
			if f[i] == "" {
				f[i] = "NULL"
			}
		}
		rows = append(rows, f)
	}
	return rows
}

// sortRows sorts rows by the given columns, as text.
func sortRows(rows [][]string, cols ...int) {
	sort.SliceStable(rows, func(a, b int) bool {
		for _, c := range cols {
			if rows[a][c] != rows[b][c] {
				return rows[a][c] < rows[b][c]
			}
		}
		return false
	})
}

// diffRows compares rows position by position (R columns within the
// float tolerance) and describes up to 10 differences.
func diffRows(types string, got, want [][]string) string {
	var out []string
	for i := 0; i < max(len(got), len(want)) && len(out) < 10; i++ {
		switch {
		case i >= len(got):
			out = append(out, "missing: "+strings.Join(want[i], " | "))
		case i >= len(want):
			out = append(out, "extra:   "+strings.Join(got[i], " | "))
		case !rowEqual(types, got[i], want[i]):
			out = append(out, fmt.Sprintf("row %d:\n    spate:      %s\n    postgresql: %s", i+1, strings.Join(got[i], " | "), strings.Join(want[i], " | ")))
		}
	}
	return strings.Join(out, "\n")
}

func rowEqual(types string, a, b []string) bool {
	if len(a) != len(types) || len(b) != len(types) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(types[i] == 'R' && sqltest.FloatsEqual(a[i], b[i])) {
			return false
		}
	}
	return true
}

func TestPsqlErrors(t *testing.T) {
	psql := sqltest.RequireBinary(t, "psql")
	srv := sqltest.StartSpate(t)
	conn := srv.ConnString()

	t.Run("syntax", func(t *testing.T) {
		res := runPsql(t, psql, conn, "-c", "SELEC 1")
		if res.exit != 1 {
			t.Errorf("exit code %d, want 1", res.exit)
		}
		if !strings.Contains(res.stderr, "ERROR:  42601: syntax error") {
			t.Errorf("stderr does not show the syntax error with its SQLSTATE:\n%s", res.stderr)
		}
		// With the error position, psql points at the offending text.
		if !strings.Contains(res.stderr, "LINE 1: SELEC 1") {
			t.Errorf("stderr does not show the position of the error (LINE 1: …):\n%s", res.stderr)
		}
	})

	t.Run("unknown_table", func(t *testing.T) {
		res := runPsql(t, psql, conn, "-c", "SELECT * FROM no_such_table")
		if res.exit != 1 || !strings.Contains(res.stderr, "ERROR:  42P01:") || !strings.Contains(res.stderr, "no_such_table") {
			t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and ERROR:  42P01: … no_such_table", res.exit, res.stderr)
		}
	})

	t.Run("on_error_stop", func(t *testing.T) {
		// A script stops at the first error; the statement before it ran.
		script := filepath.Join(t.TempDir(), "s.sql")
		if err := os.WriteFile(script, []byte("CREATE STREAM s1 (a INT);\nSELECT nope FROM s1x;\nCREATE STREAM s2 (a INT);\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		res := runPsql(t, psql, conn, "-v", "ON_ERROR_STOP=1", "-f", script)
		if res.exit != 3 || !strings.Contains(res.stderr, "42P01") {
			t.Errorf("exit %d, stderr:\n%s\nwant exit 3 (ON_ERROR_STOP) and 42P01", res.exit, res.stderr)
		}
		out := mustPsql(t, psql, conn, "-A", "-t", "-c", "SHOW STREAMS")
		if !strings.Contains(out, "s1|") || strings.Contains(out, "s2|") {
			t.Errorf("SHOW STREAMS:\n%s\nwant s1 and not s2", out)
		}
	})

	t.Run("bad_csv_line", func(t *testing.T) {
		mustPsql(t, psql, conn, "-c", `CREATE TABLE t_csv (a INT, b TEXT)`)
		file := filepath.Join(t.TempDir(), "bad.csv")
		if err := os.WriteFile(file, []byte("1,one\n2,two\nthree,3\n4,four\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		res := runPsql(t, psql, conn, "-c", fmt.Sprintf(`\copy t_csv FROM '%s' WITH (FORMAT csv)`, file))
		if res.exit != 1 || !strings.Contains(res.stderr, "22P02") || !strings.Contains(res.stderr, "line 3") {
			t.Errorf("exit %d, stderr:\n%s\nwant exit 1, 22P02 and the line number (line 3)", res.exit, res.stderr)
		}
		// COPY into a table is all or nothing.
		if out := mustPsql(t, psql, conn, "-A", "-t", "-c", "SELECT * FROM t_csv"); out != "" {
			t.Errorf("after the failed COPY the table has rows:\n%s", out)
		}
	})
}

// TestPsqlKilledDuringCopy kills psql (SIGKILL) in the middle of a COPY
// into a stream: the server must go on serving new sessions, and the
// stream must go on working.
func TestPsqlKilledDuringCopy(t *testing.T) {
	psql := sqltest.RequireBinary(t, "psql")
	srv := sqltest.StartSpate(t)
	conn := srv.ConnString()
	mustPsql(t, psql, conn, "-c", tradesDDL)
	mustPsql(t, psql, conn, "-c", `CREATE CONTINUOUS QUERY per_sym AS SELECT sym, COUNT(*) AS n FROM trades GROUP BY sym`)

	// psql copies from its standard input, which this test feeds: the
	// COPY is certainly still running when psql is killed.
	cmd := exec.Command(psql, "-X", "-d", conn, "-c", `\copy trades FROM pstdin WITH (FORMAT csv)`)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr sqltest.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := bufio.NewWriter(stdin)
	for i := 0; i < 200000; i++ {
		fmt.Fprintf(w, "ACME,1.5,%d,%s\n", i%100, start.Add(time.Duration(i)*time.Millisecond).Format("2006-01-02 15:04:05.000"))
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("feeding psql: %v (stderr: %s)", err, stderr.String())
	}
	// Wait until the server has ingested some of it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := mustPsql(t, psql, conn, "-A", "-t", "-c", "SELECT n FROM per_sym")
		if strings.TrimSpace(out) != "" {
			t.Logf("killing psql after %s rows were ingested", strings.TrimSpace(out))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no row of the COPY was ingested within 30 s (psql stderr: %s)", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("psql did not die")
	}
	stdin.Close()

	// A new session works, and so does the stream.
	before := countOf(t, psql, conn)
	mustPsql(t, psql, conn, "-c", `INSERT INTO trades VALUES ('ACME', 2, 1, '2026-01-02 00:00:00'), ('BOLT', 3, 1, '2026-01-02 00:00:01')`)
	after := countOf(t, psql, conn)
	if after["ACME"] != before["ACME"]+1 || after["BOLT"] != 1 {
		t.Errorf("after an INSERT the counts went from %v to %v; want ACME +1 and BOLT 1", before, after)
	}
	// A new COPY into the stream works too.
	file := filepath.Join(t.TempDir(), "more.csv")
	if err := os.WriteFile(file, []byte("CRUX,1,1,2026-01-02 00:00:02\nCRUX,1,1,2026-01-02 00:00:03\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustPsql(t, psql, conn, "-c", fmt.Sprintf(`\copy trades FROM '%s' WITH (FORMAT csv)`, file)); strings.TrimSpace(out) != "COPY 2" {
		t.Errorf("\\copy printed %q, want COPY 2", out)
	}
	if got := countOf(t, psql, conn)["CRUX"]; got != 2 {
		t.Errorf("CRUX count %d, want 2", got)
	}
}

// countOf reads the per_sym continuous query.
func countOf(t *testing.T, psql, conn string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(mustPsql(t, psql, conn, "-A", "-t", "-F,", "-c", "SELECT sym, n FROM per_sym")))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		if len(f) != 2 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			t.Fatalf("per_sym row %q", sc.Text())
		}
		counts[f[0]] = n
	}
	return counts
}
