package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spatedb/spate/internal/sqltest"
)

// TestStalledSubscriberBackPressure: a SUBSCRIBE client that stops
// reading back-pressures its continuous query and, through every
// process, the COPY feeding the stream: the rows the server takes in
// level off below what the client is trying to send, no process's memory
// keeps growing, SHOW STREAMS reports the ingest waiting, and once the
// client reads again every row arrives exactly once.
func TestStalledSubscriberBackPressure(t *testing.T) { forEachMode(t, stalledSubscriber) }

func stalledSubscriber(t *testing.T, serverArgs []string) {
	total := int64(3_000_000)
	if testing.Short() {
		total = 2_000_000
	}
	srv := sqltest.StartSpate(t, serverArgs...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin := connectPg(t, srv.ConnString())
	mustExec(t, admin, "CREATE STREAM wide (id BIGINT, t BIGINT, pad TEXT) WITH (event_time = 't', time_unit = 'ms', watermark_delay = '0s')")
	// Every row comes out (once the watermark passes it), through a
	// partitioned stage that runs on the workers in cluster mode; the
	// result keeps only the last second of rows.
	mustExec(t, admin, `CREATE CONTINUOUS QUERY numbered WITH (retention = '1 second') AS
		SELECT id, t, pad, ROW_NUMBER() OVER (PARTITION BY id % 16 ORDER BY t) AS rn FROM wide`)

	// The subscriber takes one row and then stops reading.
	sub := &stallingWriter{open: make(chan struct{})}
	subConn := connectPg(t, srv.ConnString())
	subDone := make(chan error, 1)
	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	go func() {
		_, err := subConn.CopyTo(subCtx, sub, "COPY (SUBSCRIBE numbered) TO STDOUT")
		subDone <- err
	}()
	waitFor(t, 10*time.Second, "the subscription", func() bool {
		rows, err := sqltest.QueryText(ctx, admin, "SELECT subscribers FROM spate_continuous_queries WHERE name = 'numbered'")
		return err == nil && len(rows) == 1 && rows[0][0] == "1"
	})

	gen := &rowGenerator{total: total}
	copyConn := connectPg(t, srv.ConnString())
	copyDone := make(chan error, 1)
	go func() {
		tag, err := copyConn.CopyFrom(ctx, gen, "COPY wide FROM STDIN (FORMAT csv)")
		if err == nil && tag.RowsAffected() != total {
			err = fmt.Errorf("COPY reported %q, want %d rows", tag, total)
		}
		copyDone <- err
	}()

	// The rows taken in level off: back-pressure reached the source.
	rowsIn := func() int64 {
		rows, err := sqltest.QueryText(ctx, admin, "SELECT rows_in FROM spate_streams WHERE name = 'wide'")
		if err != nil || len(rows) != 1 {
			t.Fatalf("SHOW STREAMS: %v %v", rows, err)
		}
		n, _ := strconv.ParseInt(rows[0][0], 10, 64)
		return n
	}
	var plateau int64
	stable := 0
	waitFor(t, 2*time.Minute, "ingest to level off", func() bool {
		time.Sleep(500 * time.Millisecond)
		n := rowsIn()
		if n > 0 && n == plateau {
			stable++
		} else {
			plateau, stable = n, 0
		}
		return stable >= 4
	})
	select {
	case err := <-copyDone:
		t.Fatalf("COPY finished (%v) while the subscriber was stalled: no back-pressure", err)
	default:
	}
	if plateau >= total {
		t.Fatalf("the server took all %d rows in while the subscriber was stalled", total)
	}
	pids := serverPids(t, ctx, admin)
	before := rssOf(t, pids)
	time.Sleep(2 * time.Second)
	after := rssOf(t, pids)
	if n := rowsIn(); n != plateau {
		t.Fatalf("rows_in moved from %d to %d while stalled", plateau, n)
	}
	for pid, b := range before {
		if grew := after[pid] - b; grew > 64<<20 {
			t.Errorf("process %d grew by %d MiB in 2 s while everything was stalled", pid, grew>>20)
		}
	}
	blocked, err := sqltest.QueryText(ctx, admin, "SELECT backpressure_seconds FROM spate_streams WHERE name = 'wide'")
	if err != nil || len(blocked) != 1 {
		t.Fatalf("SHOW STREAMS: %v %v", blocked, err)
	}
	if waited, _ := strconv.ParseFloat(blocked[0][0], 64); err != nil || waited < 1 {
		t.Fatalf("SHOW STREAMS does not report the ingest waiting: %v %v", blocked, err)
	}
	// SHOW CONTINUOUS QUERIES says the query waits for its subscriber,
	// the wait going on included.
	subWait := func() float64 {
		rows, err := sqltest.QueryText(ctx, admin, "SELECT subscriber_wait_seconds FROM spate_continuous_queries WHERE name = 'numbered'")
		if err != nil || len(rows) != 1 {
			t.Fatalf("SHOW CONTINUOUS QUERIES: %v %v", rows, err)
		}
		v, _ := strconv.ParseFloat(rows[0][0], 64)
		return v
	}
	w0 := subWait()
	time.Sleep(time.Second)
	if w1 := subWait(); w0 < 1 || w1 < w0+0.9 {
		t.Fatalf("subscriber_wait_seconds %.2f, then %.2f a second later, while the subscriber is stalled", w0, w1)
	}
	rss := map[int]int64{}
	for pid, b := range after {
		rss[pid] = b >> 20
	}
	t.Logf("stalled at %d of %d rows taken in; ingest waited %s s; RSS by pid (MiB) %v", plateau, total, blocked[0][0], rss)

	// The subscriber reads again: the COPY completes and every row arrives.
	close(sub.open)
	if err := <-copyDone; err != nil {
		t.Fatalf("COPY: %v", err)
	}
	mustExec(t, admin, "INSERT INTO wide VALUES (-1, 999999999999, 'end')") // moves the watermark past every row
	waitFor(t, 2*time.Minute, "every row at the subscriber", func() bool { return sub.rows.Load() >= total })
	time.Sleep(200 * time.Millisecond)
	if n := sub.rows.Load(); n != total {
		t.Fatalf("the subscriber got %d rows, want %d", n, total)
	}
	if want := total * (total - 1) / 2; sub.idSum.Load() != want {
		t.Fatalf("the subscriber's ids sum to %d, want %d: rows lost or repeated", sub.idSum.Load(), want)
	}
	stopSub()
	<-subDone
}

// stallingWriter receives a COPY TO stream: it blocks on the first row
// until open is closed, then counts rows and sums their first column.
type stallingWriter struct {
	open  chan struct{}
	rows  atomic.Int64
	idSum atomic.Int64
}

func (w *stallingWriter) Write(p []byte) (int, error) {
	<-w.open
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		f := line
		if i := bytes.IndexByte(line, '\t'); i >= 0 {
			f = line[:i]
		}
		id, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("row %q: %w", line, err)
		}
		w.rows.Add(1)
		w.idSum.Add(id)
	}
	return len(p), nil
}

// rowGenerator is a CSV input of total rows "id,t,pad" made as it is read.
type rowGenerator struct {
	total, next int64
	buf         []byte
}

func (g *rowGenerator) Read(p []byte) (int, error) {
	for len(g.buf) < len(p) && g.next < g.total {
		g.buf = strconv.AppendInt(g.buf, g.next, 10)
		g.buf = append(g.buf, ',')
		g.buf = strconv.AppendInt(g.buf, g.next, 10)
		g.buf = append(g.buf, ",pad-pad-pad\n"...)
		g.next++
	}
	if len(g.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.buf)
	g.buf = g.buf[:copy(g.buf, g.buf[n:])]
	return n, nil
}

// serverPids lists the pids of the coordinator and its workers.
func serverPids(t *testing.T, ctx context.Context, c *pgconn.PgConn) []int {
	t.Helper()
	rows, err := sqltest.QueryText(ctx, c, "SELECT pid FROM spate_workers WHERE status = 'alive'")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, r := range rows {
		pid, _ := strconv.Atoi(r[0])
		pids = append(pids, pid)
	}
	return pids
}

// rssOf reads each process's resident set size in bytes.
func rssOf(t *testing.T, pids []int) map[int]int64 {
	t.Helper()
	out := map[int]int64{}
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				out[pid] = kb << 10
			}
		}
	}
	return out
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
