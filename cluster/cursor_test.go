package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/spatedb/spate/parser"
)

// exec1 runs one statement and returns its tag, columns and rows as text.
func exec1(ctx context.Context, s Session, sql string) (tag string, cols []string, rows [][]string, err error) {
	st, err := parser.ParseOne(sql)
	if err != nil {
		return "", nil, nil, err
	}
	res, err := s.Execute(ctx, st, nil)
	if err != nil {
		return "", nil, nil, err
	}
	for _, c := range res.Columns {
		cols = append(cols, c.Name)
	}
	if res.Rows != nil {
		defer res.Rows.Close()
		for {
			rec, err := res.Rows.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return "", nil, nil, err
			}
			rows = append(rows, textRows(rec)...)
			rec.Release()
		}
	}
	return res.Tag, cols, rows, nil
}

func mustExec1(t *testing.T, s Session, sql string) (string, [][]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tag, _, rows, err := exec1(ctx, s, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return tag, rows
}

func wantCode(t *testing.T, s Session, sql, code string) {
	t.Helper()
	_, _, _, err := exec1(context.Background(), s, sql)
	if got := errCode(err); got != code {
		t.Errorf("%s: got %v (%s), want SQLSTATE %s", sql, err, got, code)
	}
}

// TestCursorSubscribeExactlyOnce fetches a SUBSCRIBE cursor in small
// counts while rows are inserted in larger batches: every row arrives
// once, in order, and rows of a batch left over by one FETCH come with
// the next.
func TestCursorSubscribeExactlyOnce(t *testing.T) {
	_, s := startSession(t, Config{}, 0)
	run(t, s, "CREATE STREAM ev (k INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	run(t, s, "CREATE CONTINUOUS QUERY f AS SELECT k, t FROM ev WHERE k >= 0")
	if tag, _ := mustExec1(t, s, "DECLARE c CURSOR FOR SUBSCRIBE f"); tag != "DECLARE CURSOR" {
		t.Fatalf("DECLARE tag %q", tag)
	}
	const batches, per = 20, 7
	other := s2(t, s)
	go func() {
		for b := 0; b < batches; b++ {
			var vals []string
			for i := 0; i < per; i++ {
				k := b*per + i
				vals = append(vals, fmt.Sprintf("(%d, %d)", k, k))
			}
			if _, err := tryRun(other, "INSERT INTO ev VALUES "+strings.Join(vals, ", ")); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < batches*per && time.Now().Before(deadline) {
		tag, rows := mustExec1(t, s, "FETCH 3 FROM c")
		if len(rows) == 0 || len(rows) > 3 || tag != fmt.Sprintf("FETCH %d", len(rows)) {
			t.Fatalf("FETCH 3 without a timeout gave %d rows, tag %q", len(rows), tag)
		}
		for _, r := range rows {
			got = append(got, r[0])
		}
	}
	for i, k := range got {
		if k != fmt.Sprint(i) {
			t.Fatalf("row %d is k = %s (rows %v)", i, k, got)
		}
	}
	if len(got) != batches*per {
		t.Fatalf("got %d rows, want %d", len(got), batches*per)
	}
	// Nothing more: a timeout returns no rows.
	start := time.Now()
	if tag, rows := mustExec1(t, s, "FETCH 3 FROM c WITH (timeout = '100ms')"); tag != "FETCH 0" || len(rows) != 0 {
		t.Errorf("FETCH with a timeout and no rows: %q %v", tag, rows)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("FETCH with timeout 100ms returned after %v", d)
	}
	if tag, _ := mustExec1(t, s, "FETCH ALL FROM c WITH (timeout = 0)"); tag != "FETCH 0" {
		t.Errorf("FETCH with timeout 0: %q", tag)
	}
	if tag, _ := mustExec1(t, s, "CLOSE c"); tag != "CLOSE CURSOR" {
		t.Errorf("CLOSE tag %q", tag)
	}
	wantCode(t, s, "FETCH 1 FROM c", "34000")
}

// s2 opens another session on s's coordinator.
func s2(t *testing.T, s Session) Session {
	ss, err := s.(*session).c.NewSession(context.Background(), "spate", "spate")
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// TestCursorFetchWaitsAndCancels checks that FETCH without a timeout
// waits for the first row, that a cancelled FETCH consumes nothing, and
// that FETCH with a timeout collects what arrives within it.
func TestCursorFetchWaitsAndCancels(t *testing.T) {
	_, s := startSession(t, Config{}, 0)
	other := s2(t, s)
	run(t, s, "CREATE STREAM ev (k INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	run(t, s, "CREATE CONTINUOUS QUERY n AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	mustExec1(t, s, "DECLARE c CURSOR FOR SUBSCRIBE n")
	_, cols, _, err := exec1(context.Background(), s, "FETCH 0 FROM c")
	if err != nil || strings.Join(cols, ",") != "op,k,n" {
		t.Fatalf("FETCH columns %v (%v), want op,k,n", cols, err)
	}

	// Cancelled while waiting: an error, and the cursor stays usable.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, _, _, err := exec1(ctx, s, "FETCH 5 FROM c"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled FETCH: %v", err)
	}

	// A waiting FETCH returns when the row comes.
	time.AfterFunc(200*time.Millisecond, func() { _, _ = tryRun(other, "INSERT INTO ev VALUES (1, 1), (2, 2)") })
	start := time.Now()
	tag, rows := mustExec1(t, s, "FETCH 1 FROM c")
	if tag != "FETCH 1" || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("FETCH 1 gave %q %v after %v", tag, rows, time.Since(start))
	}
	// The rest of that batch is buffered; a FETCH cancelled before it
	// starts takes nothing from the buffer.
	done, stop := context.WithCancel(context.Background())
	stop()
	if _, _, _, err := exec1(done, s, "FETCH ALL FROM c"); !errors.Is(err, context.Canceled) {
		t.Errorf("FETCH ALL with a cancelled context: %v", err)
	}
	_, more := mustExec1(t, s, "FETCH ALL FROM c WITH (timeout = '50ms')")
	all := append(rows, more...)
	if got := sortedText(all); got != "+|1|1\n+|2|1" {
		t.Errorf("changes:\n%s", got)
	}

	// With a timeout, FETCH collects until the count is reached.
	time.AfterFunc(100*time.Millisecond, func() { _, _ = tryRun(other, "INSERT INTO ev VALUES (3, 3)") })
	time.AfterFunc(200*time.Millisecond, func() { _, _ = tryRun(other, "INSERT INTO ev VALUES (1, 4)") })
	tag, rows = mustExec1(t, s, "FETCH 3 FROM c WITH (timeout = '10s')")
	if tag != "FETCH 3" || sortedText(rows) != "+|1|2\n+|3|1\n-|1|1" {
		t.Errorf("FETCH 3 with a timeout: %q\n%s", tag, sortedText(rows))
	}
}

// TestCursorSelect checks a snapshot cursor: FETCH in steps, MOVE, ALL,
// then zero rows; the snapshot does not change with later inserts.
func TestCursorSelect(t *testing.T) {
	_, s := startSession(t, Config{}, 0)
	run(t, s, "CREATE TABLE t (k INT PRIMARY KEY, v TEXT)")
	var vals []string
	for i := 0; i < 10; i++ {
		vals = append(vals, fmt.Sprintf("(%d, 'v%d')", i, i))
	}
	run(t, s, "INSERT INTO t VALUES "+strings.Join(vals, ", "))
	mustExec1(t, s, `DECLARE "Cur" CURSOR WITHOUT HOLD FOR SELECT k, v FROM t ORDER BY k`)
	run(t, s, "INSERT INTO t VALUES (10, 'late')")
	var got []string
	step := func(sql, wantTag string) {
		t.Helper()
		tag, rows := mustExec1(t, s, sql)
		if tag != wantTag {
			t.Errorf("%s: tag %q, want %q", sql, tag, wantTag)
		}
		for _, r := range rows {
			got = append(got, r[0])
		}
	}
	step(`FETCH 3 FROM "Cur"`, "FETCH 3")
	step(`FETCH NEXT FROM "Cur"`, "FETCH 1")
	step(`MOVE 2 IN "Cur"`, "MOVE 2")
	step(`FETCH FORWARD 2 "Cur"`, "FETCH 2")
	step(`FETCH ALL "Cur"`, "FETCH 2")
	step(`FETCH ALL "Cur"`, "FETCH 0")
	step(`FETCH "Cur"`, "FETCH 0")
	if strings.Join(got, ",") != "0,1,2,3,6,7,8,9" {
		t.Errorf("fetched %v", got)
	}
	wantCode(t, s, "FETCH cur", "34000")
	mustExec1(t, s, `CLOSE "Cur"`)
}

// TestCursorTransactions checks which cursors COMMIT and ROLLBACK close,
// duplicate names, CLOSE ALL and errors.
func TestCursorTransactions(t *testing.T) {
	_, s := startSession(t, Config{}, 0)
	run(t, s, "CREATE STREAM ev (k INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	run(t, s, "CREATE CONTINUOUS QUERY f AS SELECT k FROM ev")
	open := func() string {
		var names []string
		for n := range s.(*session).cursors.byName {
			names = append(names, n)
		}
		sort.Strings(names)
		return strings.Join(names, ",")
	}
	mustExec1(t, s, "DECLARE outside CURSOR FOR SUBSCRIBE f") // no BEGIN: lives on
	wantCode(t, s, "DECLARE outside CURSOR FOR SELECT 1", "42P03")
	mustExec1(t, s, "BEGIN")
	mustExec1(t, s, "DECLARE plain CURSOR FOR SUBSCRIBE f")
	mustExec1(t, s, "DECLARE held CURSOR WITH HOLD FOR SUBSCRIBE f")
	if got := open(); got != "held,outside,plain" {
		t.Fatalf("open cursors %s", got)
	}
	mustExec1(t, s, "COMMIT")
	if got := open(); got != "held,outside" {
		t.Errorf("after COMMIT: %s", got)
	}
	mustExec1(t, s, "BEGIN")
	mustExec1(t, s, "DECLARE held2 CURSOR WITH HOLD FOR SUBSCRIBE f")
	mustExec1(t, s, "DECLARE plain2 CURSOR FOR SELECT 1")
	mustExec1(t, s, "ROLLBACK")
	if got := open(); got != "held,outside" {
		t.Errorf("after ROLLBACK: %s", got)
	}
	mustExec1(t, s, "COMMIT") // outside a block: nothing changes
	if got := open(); got != "held,outside" {
		t.Errorf("after a stray COMMIT: %s", got)
	}
	wantCode(t, s, "DECLARE x CURSOR FOR SUBSCRIBE missing", "42P01")
	wantCode(t, s, "DECLARE x CURSOR FOR SELECT nope FROM f", "42703")
	wantCode(t, s, "CLOSE nope", "34000")
	wantCode(t, s, "MOVE 1 FROM nope", "34000")
	if tag, _ := mustExec1(t, s, "CLOSE ALL"); tag != "CLOSE CURSOR ALL" || open() != "" {
		t.Errorf("CLOSE ALL: %q, open %q", tag, open())
	}
	// A subscription is released with its cursor.
	mustExec1(t, s, "DECLARE again CURSOR FOR SUBSCRIBE f")
	s.(*session).c.mu.Lock()
	qr := s.(*session).c.queries["f"]
	s.(*session).c.mu.Unlock()
	if n := qr.result.subscribers(); n != 1 {
		t.Errorf("%d subscribers with one cursor open", n)
	}
	s.Close()
	if n := qr.result.subscribers(); n != 0 {
		t.Errorf("%d subscribers after the session closed", n)
	}
}

// TestCursorDescribe checks what Describe reports for cursor statements.
func TestCursorDescribe(t *testing.T) {
	_, s := startSession(t, Config{}, 0)
	run(t, s, "CREATE TABLE t (k INT, v TEXT)")
	describe := func(sql string) Described {
		t.Helper()
		st, err := parser.ParseOne(sql)
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.Describe(context.Background(), st)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return d
	}
	if d := describe("DECLARE c CURSOR FOR SELECT v FROM t WHERE k = $1"); len(d.ParamTypes) != 1 || d.Columns != nil {
		t.Errorf("DECLARE: %+v", d)
	}
	if d := describe("FETCH 1 FROM c"); d.Columns != nil {
		t.Errorf("FETCH of a cursor not declared yet: %+v", d)
	}
	st, _ := parser.ParseOne("DECLARE c CURSOR FOR SELECT v, k FROM t WHERE k = $1")
	if _, err := s.Execute(context.Background(), st, []Param{"1"}); err != nil {
		t.Fatal(err)
	}
	if d := describe("FETCH 1 FROM c"); len(d.Columns) != 2 || d.Columns[0].Name != "v" || d.Columns[1].Name != "k" {
		t.Errorf("FETCH: %+v", d)
	}
	if d := describe("MOVE 1 FROM c"); d.Columns != nil {
		t.Errorf("MOVE: %+v", d)
	}
}

// TestCursorTakeSlices checks the cursor buffer directly: counts that cut
// batches, whole batches handed over, and no leaked Arrow memory.
func TestCursorTakeSlices(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{{Name: "k", Type: arrow.PrimitiveTypes.Int64}}, nil)
	var batches []arrow.RecordBatch
	next := int64(0)
	for _, n := range []int{4, 1, 0, 6} {
		b := array.NewInt64Builder(mem)
		for i := 0; i < n; i++ {
			b.Append(next)
			next++
		}
		col := b.NewArray()
		batches = append(batches, array.NewRecordBatch(schema, []arrow.Array{col}, int64(n)))
		col.Release()
		b.Release()
	}
	c := &cursor{rows: &sliceStream{batches: batches}}
	var got []string
	for _, want := range []int64{3, 0, 2, 5, -1, 4} {
		if err := c.fill(context.Background(), want, 0, false); err != nil {
			t.Fatal(err)
		}
		out, n := c.take(want)
		var k int64
		for _, b := range out {
			k += b.NumRows()
			for _, r := range textRows(b) {
				got = append(got, r[0])
			}
			b.Release()
		}
		if k != n {
			t.Errorf("take(%d) says %d rows, batches hold %d", want, n, k)
		}
	}
	if strings.Join(got, ",") != "0,1,2,3,4,5,6,7,8,9,10" {
		t.Errorf("rows %v", got)
	}
	c.close()
	c.close()
}

// TestCursorQueryDropped: a FETCH waiting on a continuous query that is
// dropped returns the rows it had, then fails saying the query was
// dropped; later FETCHes fail at once (a client polling with FETCH learns
// that nothing more will come).
func TestCursorQueryDropped(t *testing.T) {
	_, s := startSession(t, Config{}, 0)
	other := s2(t, s)
	run(t, s, "CREATE STREAM ev (k INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	run(t, s, "CREATE CONTINUOUS QUERY f AS SELECT k FROM ev")
	mustExec1(t, s, "DECLARE c CURSOR FOR SUBSCRIBE f")
	run(t, other, "INSERT INTO ev VALUES (1, 1)")
	waitUntil(t, 10*time.Second, "the row in f", func() bool { return len(run(t, s, "SELECT * FROM f")) == 1 })
	time.AfterFunc(200*time.Millisecond, func() { _, _ = tryRun(other, "DROP CONTINUOUS QUERY f") })
	if tag, _ := mustExec1(t, s, "FETCH 5 FROM c"); tag != "FETCH 1" {
		t.Errorf("FETCH when the query is dropped: %q", tag)
	}
	for _, fetch := range []string{"FETCH 5 FROM c", "FETCH ALL FROM c"} {
		if _, err := tryRun(s, fetch); errCode(err) != "42P01" || !strings.Contains(err.Error(), `"f" was dropped`) {
			t.Errorf("%s after the drop: %v", fetch, err)
		}
	}
	mustExec1(t, s, "CLOSE c")
}

// TestClosedCursorReleasesIngest: a SUBSCRIBE cursor nobody reads holds
// back every last-stage instance applying to the result (back-pressure);
// closing it lets all of them go on — not just one — so the COPY that
// waited is acknowledged and the stream takes rows again.
func TestClosedCursorReleasesIngest(t *testing.T) {
	_, s := startSession(t, Config{Parallelism: 3, BatchRows: 20}, 0)
	run(t, s, "CREATE STREAM ev (k INT, v INT)")
	run(t, s, "CREATE CONTINUOUS QUERY n AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	mustExec1(t, s, "DECLARE c CURSOR FOR SUBSCRIBE n")
	var lines []string
	for i := range 20000 {
		lines = append(lines, fmt.Sprintf("%d,%d", i%3000, i))
	}
	other := s2(t, s)
	done := make(chan error, 1)
	go func() { done <- copyLines(other, "ev", lines) }()
	select {
	case err := <-done:
		t.Fatalf("the COPY was not held back by the unread cursor (%v)", err)
	case <-time.After(time.Second): // every instance gets to wait
	}
	mustExec1(t, s, "CLOSE c")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the COPY still waits after the cursor was closed")
	}
	run(t, other, "INSERT INTO ev VALUES (1, 1)")
	if got := run(t, other, "SELECT SUM(n) FROM n"); got[0][0] != "20001" {
		t.Errorf("SUM(n) = %s, want 20001", got[0][0])
	}
}
