package pgwire

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgtype"
)

var allModes = []pgx.QueryExecMode{
	pgx.QueryExecModeCacheStatement,
	pgx.QueryExecModeCacheDescribe,
	pgx.QueryExecModeDescribeExec,
	pgx.QueryExecModeExec,
	pgx.QueryExecModeSimpleProtocol,
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPgxBasics(t *testing.T) {
	ts := startServer(t, Config{})
	conn := ts.connect(t)
	ctx := testCtx(t)

	if v := conn.PgConn().ParameterStatus("application_name"); v != "pgwire_test" {
		t.Errorf("application_name = %q", v)
	}
	if v := conn.PgConn().ParameterStatus("server_version"); v != "15.0 (Spate)" {
		t.Errorf("server_version = %q", v)
	}
	tag, err := conn.Exec(ctx, "CREATE STREAM s (a int)")
	if err != nil || tag.String() != "CREATE STREAM" {
		t.Fatalf("Exec: %q, %v", tag, err)
	}
	for _, mode := range allModes {
		var one int32
		if err := conn.QueryRow(ctx, "select 1", mode).Scan(&one); err != nil || one != 1 {
			t.Fatalf("mode %v: select 1 = %d, %v", mode, one, err)
		}
	}
	// An engine error keeps the connection usable.
	_, err = conn.Exec(ctx, "select error")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "22012" || pgErr.Severity != "ERROR" {
		t.Fatalf("select error: %v", err)
	}
	rows, _ := conn.Query(ctx, "select error")
	rows.Close()
	if !errors.As(rows.Err(), &pgErr) || pgErr.Code != "22012" {
		t.Fatalf("extended select error: %v", rows.Err())
	}
	var one int32
	if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
}

func TestPgxAllTypes(t *testing.T) {
	ts := startServer(t, Config{})
	conn := ts.connect(t)
	ctx := testCtx(t)
	for _, mode := range allModes {
		rows, err := conn.Query(ctx, "select * from t", mode)
		if err != nil {
			t.Fatal(err)
		}
		type row struct {
			id    *int32
			big   *int64
			name  *string
			score *float64
			ok    *bool
			ts    *time.Time
			iv    pgtype.Interval
		}
		var got []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.big, &r.name, &r.score, &r.ok, &r.ts, &r.iv); err != nil {
				t.Fatalf("mode %v: scan: %v", mode, err)
			}
			got = append(got, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("mode %v: %v", mode, err)
		}
		if tag := rows.CommandTag().String(); tag != "SELECT 3" {
			t.Errorf("mode %v: tag %q", mode, tag)
		}
		if len(got) != 3 {
			t.Fatalf("mode %v: %d rows", mode, len(got))
		}
		us := func(iv pgtype.Interval) int64 {
			return iv.Microseconds + int64(iv.Days)*86400e6 + int64(iv.Months)*30*86400e6
		}
		r := got[0]
		if *r.id != 1 || *r.big != 10000000000 || *r.name != "alice" || *r.score != 1.5 || !*r.ok ||
			!r.ts.Equal(tsValue) || us(r.iv) != int64(26*time.Hour/time.Microsecond) {
			t.Errorf("mode %v: row 1 = %v %v %v %v %v %v %+v", mode, *r.id, *r.big, *r.name, *r.score, *r.ok, *r.ts, r.iv)
		}
		r = got[1]
		if *r.id != -2147483648 || *r.big != -9223372036854775808 || *r.name != "tab\there\nnew\\line,\"q\"" ||
			*r.score != 1e20 || *r.ok || !r.ts.Equal(time.Unix(0, 0)) || us(r.iv) != -1500000 {
			t.Errorf("mode %v: row 2 = %v %v %q %v %v %v %+v", mode, *r.id, *r.big, *r.name, *r.score, *r.ok, *r.ts, r.iv)
		}
		r = got[2]
		if r.id != nil || r.big != nil || r.name != nil || r.score != nil || r.ok != nil || r.ts != nil || r.iv.Valid {
			t.Errorf("mode %v: row 3 not all NULL: %+v", mode, r)
		}
	}
}

func TestPgxParams(t *testing.T) {
	ts := startServer(t, Config{})
	conn := ts.connect(t)
	ctx := testCtx(t)
	const q = "select p($1, $2, $3, $4, $5, $6)"

	// Binary parameters (pgx chooses binary for these types).
	iv := 90*time.Second + 24*time.Hour
	var got []string
	rows, err := conn.Query(ctx, q, int64(42), "hi", 1.5, true, tsValue, iv)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"int64:42", "string:hi", "float64:1.5", "bool:true", "int64:1714566600250000", "int64:86490000000"}
	equalStrings(t, got, want)

	// NULLs.
	rows, _ = conn.Query(ctx, q, nil, nil, nil, nil, nil, nil)
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for i, p := range ts.engine.lastParams() {
		if p != nil {
			t.Errorf("param %d = %v, want nil", i, p)
		}
	}

	// Text parameters (QueryExecModeExec sends every parameter as text).
	rows, _ = conn.Query(ctx, q, pgx.QueryExecModeExec, int64(42), "hi", 1.5, true, "2024-05-01 12:30:00.25", "1 day")
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	params := ts.engine.lastParams()
	if len(params) != 6 {
		t.Fatalf("params %v", params)
	}
	for i, p := range params {
		if _, ok := p.(string); !ok {
			t.Errorf("text param %d = %T %v, want string", i, p, p)
		}
	}
	if params[0] != "42" || params[1] != "hi" || params[4] != "2024-05-01 12:30:00.25" {
		t.Errorf("text params %q", params)
	}

	// A named prepared statement.
	sd, err := conn.Prepare(ctx, "ps1", q)
	if err != nil {
		t.Fatal(err)
	}
	wantOIDs := []uint32{20, 25, 701, 16, 1114, 1186}
	if len(sd.ParamOIDs) != 6 || len(sd.Fields) != 1 || sd.Fields[0].Name != "p" {
		t.Fatalf("description %+v", sd)
	}
	for i, oid := range sd.ParamOIDs {
		if oid != wantOIDs[i] {
			t.Errorf("param %d OID %d, want %d", i, oid, wantOIDs[i])
		}
	}
	var first string
	if err := conn.QueryRow(ctx, "ps1", int64(7), "x", 2.5, false, tsValue, time.Duration(0)).Scan(&first); err != nil || first != "int64:7" {
		t.Fatalf("prepared: %q, %v", first, err)
	}
	if err := conn.Deallocate(ctx, "ps1"); err != nil {
		t.Fatal(err)
	}
}

func TestPgxCopyFrom(t *testing.T) {
	ts := startServer(t, Config{})
	conn := ts.connect(t)
	ctx := testCtx(t)
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"t"}, []string{"a", "b"},
		pgx.CopyFromRows([][]any{{int64(1), "x"}, {int64(2), "y"}, {nil, "z"}}))
	if err != nil || n != 3 {
		t.Fatalf("CopyFrom: %d, %v", n, err)
	}
	ci := <-ts.engine.copies
	data, finished, _, _ := ci.state()
	if !finished || !strings.HasPrefix(data, pgCopySignature) {
		t.Fatalf("copy data %q finished=%v", data, finished)
	}
}

func TestPgxCancelStreamingQuery(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := testCtx(t)
	cfg, err := pgx.ParseConfig(ts.url())
	if err != nil {
		t.Fatal(err)
	}
	// Cancel through a CancelRequest on a second connection (libpq's way).
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 10 * time.Second}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	qctx, cancel := context.WithCancel(ctx)
	// pgx's Query returns once the first row arrived.
	streams := feedFirstBatch(ts.engine)
	rows, err := conn.Query(qctx, "SUBSCRIBE q")
	if err != nil {
		t.Fatal(err)
	}
	st := <-streams
	for i := int64(0); i < 3; i++ {
		if i > 0 {
			st.push(subscribeBatch([]string{"+"}, []int64{i}))
		}
		if !rows.Next() {
			t.Fatalf("row %d: %v", i, rows.Err())
		}
		var op string
		var n int64
		if err := rows.Scan(&op, &n); err != nil || op != "+" || n != i {
			t.Fatalf("row %d: %q %d %v", i, op, n, err)
		}
	}
	cancel()
	for rows.Next() {
	}
	var pgErr *pgconn.PgError
	if err := rows.Err(); !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("after cancel: %v", err)
		}
	}
	waitFor(t, "stream closed", st.isClosed)
	var one int32
	if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("connection unusable after cancel: %v", err)
	}

	// The default context handler closes the socket instead: the server
	// stops the stream and keeps serving.
	conn2 := ts.connect(t)
	qctx, cancel = context.WithCancel(ctx)
	streams = feedFirstBatch(ts.engine)
	rows, err = conn2.Query(qctx, "SUBSCRIBE q")
	if err != nil {
		t.Fatal(err)
	}
	st = <-streams
	if !rows.Next() {
		t.Fatal(rows.Err())
	}
	cancel()
	for rows.Next() {
	}
	waitFor(t, "stream closed after disconnect", st.isClosed)
	ts.checkAlive(t)
}

func TestPgxPanicAndCancelSlow(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := testCtx(t)
	conn := ts.connect(t)
	_, err := conn.Exec(ctx, "select panic")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "XX000" || pgErr.Severity != "FATAL" {
		t.Fatalf("panic: %v", err)
	}
	ts.checkAlive(t)

	// Cancel a statement blocked inside the engine.
	cfg, _ := pgx.ParseConfig(ts.url())
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 10 * time.Second}
	}
	conn2, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close(ctx)
	qctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = conn2.Exec(qctx, "select slow")
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("slow: %v", err)
		}
	}
	var one int32
	if err := conn2.QueryRow(ctx, "select 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
}

// feedFirstBatch pushes the row (+, 0) into the next SUBSCRIBE stream and
// then hands the stream to the test.
func feedFirstBatch(e *fakeEngine) <-chan *fakeStream {
	out := make(chan *fakeStream, 1)
	go func() {
		st := <-e.streams
		st.push(subscribeBatch([]string{"+"}, []int64{0}))
		out <- st
	}()
	return out
}
