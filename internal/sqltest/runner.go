package sqltest

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Timeouts of the runner.
const (
	// recordTimeout bounds one statement, query or copy.
	recordTimeout = 60 * time.Second
	// subscribeTimeout is how long a subscribe may take, once the script
	// waits for it, to deliver its rows.
	subscribeTimeout = 15 * time.Second
)

// RunFile runs the script at path against the server at connString, in
// one session, and reports every record that does not behave as written
// as a test error (file:line, the SQL and a diff). A script that does not
// parse fails the test before anything runs.
func RunFile(t *testing.T, path, connString string) {
	t.Helper()
	runFile(t, path, connString, subscribeTimeout)
}

// reporter is the part of testing.TB the runner uses (so that the runner's
// own tests can record what it reports).
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

func runFile(t reporter, path, connString string, subTimeout time.Duration) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v", err)
		return
	}
	name := displayName(path)
	recs, err := ParseScript(name, string(src))
	if err != nil {
		t.Fatalf("%v", err)
		return
	}
	r := &runner{t: t, name: name, connString: connString, subTimeout: subTimeout}
	defer r.close()
	for _, rec := range recs {
		if rec.Kind == KindHalt {
			break
		}
		r.run(rec)
	}
	r.waitSubscriptions("")
}

// displayName shows path relative to the module root when it is inside it.
func displayName(path string) string {
	root, err := ModuleRoot()
	if err != nil {
		return path
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		return path
	}
	return filepath.ToSlash(rel)
}

type runner struct {
	t          reporter
	name       string
	connString string
	subTimeout time.Duration // see subscribeTimeout
	conn       *pgconn.PgConn
	subs       []*subscription // started and not yet checked
}

func (r *runner) close() {
	for _, s := range r.subs {
		s.conn.Close()
		<-s.done
	}
	r.subs = nil
	if r.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.conn.Close(ctx)
	}
}

// fail reports a failed record.
func (r *runner) fail(rec Record, format string, args ...any) {
	r.t.Helper()
	msg := fmt.Sprintf(format, args...)
	r.t.Errorf("%s:%d: %s %s\nSQL: %s", r.name, rec.Line, rec.Kind, strings.TrimRight(msg, "\n"), strings.ReplaceAll(rec.SQL, "\n", "\n     "))
}

// expectedAt says where a record's expected rows are.
func expectedAt(rec Record) string {
	if rec.ExpectedLine == 0 {
		return "no rows expected"
	}
	return fmt.Sprintf("expected rows at line %d", rec.ExpectedLine)
}

// session returns the script's connection, (re)connecting when needed: a
// timed-out record closes the connection, and the script goes on in a new
// session.
func (r *runner) session(rec Record) *pgconn.PgConn {
	if r.conn != nil && !r.conn.IsClosed() {
		return r.conn
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgconn.Connect(ctx, r.connString)
	if err != nil {
		r.t.Fatalf("%s:%d: connecting: %v", r.name, rec.Line, err)
	}
	if r.conn != nil {
		r.t.Logf("%s:%d: the previous connection was closed; reconnected", r.name, rec.Line)
	}
	r.conn = c
	return c
}

// slowRecord is how long a record may take before the runner logs it.
const slowRecord = 2 * time.Second

func (r *runner) run(rec Record) {
	r.t.Helper()
	start := time.Now()
	defer func() {
		if d := time.Since(start); d > slowRecord && rec.Kind != KindSleep {
			r.t.Logf("%s:%d: %s took %v", r.name, rec.Line, rec.Kind, d.Round(time.Millisecond))
		}
	}()
	switch rec.Kind {
	case KindStatement:
		r.statement(rec)
	case KindQuery:
		r.query(rec)
	case KindCopy:
		r.copy(rec)
	case KindSubscribe:
		r.subscribe(rec)
	case KindSubscribeWait:
		r.waitSubscriptions(rec.Relation)
	case KindSleep:
		time.Sleep(rec.Duration)
	}
}

// describeErr renders an error with its SQLSTATE when it has one.
func describeErr(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		s := pe.Code + " " + pe.Message
		if pe.Detail != "" {
			s += " (DETAIL: " + pe.Detail + ")"
		}
		if pe.Where != "" {
			s += " (CONTEXT: " + pe.Where + ")"
		}
		return s
	}
	return err.Error()
}

// checkError compares an error (nil: success) with the record's
// expectation and reports a mismatch. It returns whether the outcome was
// the expected one.
func (r *runner) checkError(rec Record, err error) bool {
	r.t.Helper()
	if rec.ErrorCode == "" {
		if err != nil {
			r.fail(rec, "failed: %s", describeErr(err))
			return false
		}
		return true
	}
	if err == nil {
		r.fail(rec, "succeeded; expected error %s", strings.TrimSpace(rec.ErrorCode+" "+rec.ErrorSubstring))
		return false
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		r.fail(rec, "failed without a SQLSTATE (%v); expected error %s", err, rec.ErrorCode)
		return false
	}
	// PostgreSQL puts some details (the line of a bad COPY row) in the
	// context field rather than the message.
	text := pe.Message + "\n" + pe.Detail + "\n" + pe.Where
	if pe.Code != rec.ErrorCode || !strings.Contains(text, rec.ErrorSubstring) {
		r.fail(rec, "failed with\n    %s\nexpected error\n    %s", describeErr(err), strings.TrimSpace(rec.ErrorCode+" "+rec.ErrorSubstring))
		return false
	}
	return true
}

func (r *runner) statement(rec Record) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	_, err := r.session(rec).Exec(ctx, rec.SQL).ReadAll()
	r.checkError(rec, err)
}

// typeNames names the OIDs a result column may have.
var typeNames = map[uint32]string{
	16: "boolean", 18: "char", 19: "name", 20: "bigint", 21: "smallint", 23: "integer", 25: "text",
	700: "real", 701: "double precision", 1042: "bpchar", 1043: "varchar", 1082: "date",
	1114: "timestamp", 1184: "timestamptz", 1186: "interval", 1700: "numeric",
}

// typeAllowed reports whether a column of type OID oid may be compared
// as the script type letter typ.
func typeAllowed(typ byte, oid uint32) bool {
	switch typ {
	case 'I':
		return oid == 20 || oid == 21 || oid == 23 || oid == 1700
	case 'R':
		return oid == 700 || oid == 701 || oid == 1700
	case 'B':
		return oid == 16
	}
	return true
}

func (r *runner) query(rec Record) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	results, err := readAll(r.session(rec).Exec(ctx, rec.SQL))
	if !r.checkError(rec, err) || rec.ErrorCode != "" {
		return
	}
	if len(results) == 0 || results[len(results)-1].FieldDescriptions == nil {
		r.fail(rec, "returned no rows description (not a query?)")
		return
	}
	res := results[len(results)-1]
	cols := rec.Columns
	if cols == nil {
		if len(res.FieldDescriptions) != len(rec.Types) {
			r.fail(rec, "returned %d columns (%s); the record has %d types (%s)", len(res.FieldDescriptions), columnList(res.FieldDescriptions), len(rec.Types), rec.Types)
			return
		}
		for i := range rec.Types {
			cols = append(cols, i)
		}
	}
	var problems []string
	for i, c := range cols {
		if c >= len(res.FieldDescriptions) {
			r.fail(rec, "columns= selects column %d but the result has %d (%s)", c+1, len(res.FieldDescriptions), columnList(res.FieldDescriptions))
			return
		}
		fd := res.FieldDescriptions[c]
		if !typeAllowed(rec.Types[i], fd.DataTypeOID) {
			problems = append(problems, fmt.Sprintf("column %d (%s) has type %s, not %c", c+1, fd.Name, typeName(fd.DataTypeOID), rec.Types[i]))
		}
	}
	got := make([][]string, len(res.Rows))
	for i, row := range res.Rows {
		vals := make([]string, len(cols))
		for j, c := range cols {
			vals[j] = Value(row[c])
		}
		got[i] = vals
	}
	if diff := CompareRows(rec.Types, rec.Sort, got, rec.Expected); diff != "" {
		problems = append(problems, fmt.Sprintf("result differs (%s):\n%s", expectedAt(rec), diff))
	}
	if len(problems) > 0 {
		r.fail(rec, "%s", strings.Join(problems, "\n"))
	}
}

// readAll is MultiResultReader.ReadAll that keeps the row description of
// results without rows.
func readAll(mrr *pgconn.MultiResultReader) ([]*pgconn.Result, error) {
	var results []*pgconn.Result
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		res := rr.Read()
		if res.FieldDescriptions == nil && rr.FieldDescriptions() != nil {
			res.FieldDescriptions = append([]pgconn.FieldDescription{}, rr.FieldDescriptions()...)
		}
		results = append(results, res)
	}
	return results, mrr.Close()
}

func typeName(oid uint32) string {
	if n, ok := typeNames[oid]; ok {
		return n
	}
	return "OID " + strconv.FormatUint(uint64(oid), 10)
}

func columnList(fds []pgconn.FieldDescription) string {
	names := make([]string, len(fds))
	for i, fd := range fds {
		names[i] = fd.Name + " " + typeName(fd.DataTypeOID)
	}
	return strings.Join(names, ", ")
}

func (r *runner) copy(rec Record) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	var data bytes.Buffer
	for _, line := range rec.Data {
		data.WriteString(line)
		data.WriteByte('\n')
	}
	tag, err := r.session(rec).CopyFrom(ctx, &data, rec.SQL)
	if !r.checkError(rec, err) || rec.ErrorCode != "" {
		return
	}
	if want, ok := copyRows(rec); ok && tag.RowsAffected() != want {
		r.fail(rec, "reported %q; the data has %d rows", tag.String(), want)
	}
}

// copyRows counts the rows in a copy record's data: lines in text format,
// CSV records (less the header) in CSV. ok is false when the CSV does not
// parse (the count is then unknown).
func copyRows(rec Record) (n int64, ok bool) {
	if !rec.CSV {
		return int64(len(rec.Data)), true
	}
	rd := csv.NewReader(strings.NewReader(strings.Join(rec.Data, "\n")))
	rd.FieldsPerRecord = -1
	all, err := rd.ReadAll()
	if err != nil {
		return 0, false
	}
	n = int64(len(all))
	if rec.Header && n > 0 {
		n--
	}
	return n, true
}

// subscription is a running subscribe record: COPY (SUBSCRIBE …) TO
// STDOUT on its own connection, read by a goroutine until it has the rows
// the record expects.
type subscription struct {
	rec  Record
	conn net.Conn
	done chan struct{} // closed when the reader has stopped

	// Written by the reader goroutine; read after done is closed.
	rows [][]string
	err  error
}

// subscribe starts a subscribe record and returns once the server has
// started the COPY (so rows emitted by later records are seen). The rows
// are checked by subscribe wait or at the end of the script.
func (r *runner) subscribe(rec Record) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pc, err := pgconn.Connect(ctx, r.connString)
	if err != nil {
		r.fail(rec, "connecting: %v", err)
		return
	}
	hc, err := pc.Hijack()
	if err != nil {
		r.fail(rec, "hijacking the connection: %v", err)
		return
	}
	fe := hc.Frontend
	fe.Send(&pgproto3.Query{String: rec.SQL})
	if err := fe.Flush(); err != nil {
		hc.Conn.Close()
		r.fail(rec, "sending: %v", err)
		return
	}
	_ = hc.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for started := false; !started; {
		msg, err := fe.Receive()
		if err != nil {
			hc.Conn.Close()
			r.fail(rec, "waiting for the COPY to start: %v", err)
			return
		}
		switch m := msg.(type) {
		case *pgproto3.CopyOutResponse:
			started = true
		case *pgproto3.ErrorResponse:
			hc.Conn.Close()
			r.fail(rec, "failed: %s %s", m.Code, m.Message)
			return
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		default:
			hc.Conn.Close()
			r.fail(rec, "the server answered %T, not CopyOutResponse", msg)
			return
		}
	}
	_ = hc.Conn.SetReadDeadline(time.Time{})
	s := &subscription{rec: rec, conn: hc.Conn, done: make(chan struct{})}
	go s.read(fe)
	r.subs = append(r.subs, s)
}

// read collects rows until it has rec.N of them, the COPY ends or the
// connection fails (a deadline set by wait, or close).
func (s *subscription) read(fe *pgproto3.Frontend) {
	defer close(s.done)
	defer s.conn.Close()
	var partial []byte
	for len(s.rows) < s.rec.N {
		msg, err := fe.Receive()
		if err != nil {
			s.err = err
			return
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			partial = append(partial, m.Data...)
			for len(s.rows) < s.rec.N {
				i := bytes.IndexByte(partial, '\n')
				if i < 0 {
					break
				}
				s.rows = append(s.rows, ParseCopyText(string(partial[:i])))
				partial = partial[i+1:]
			}
		case *pgproto3.ErrorResponse:
			s.err = fmt.Errorf("%s %s", m.Code, m.Message)
			return
		case *pgproto3.CopyDone, *pgproto3.CommandComplete, *pgproto3.ReadyForQuery:
			s.err = io.EOF
			return
		}
	}
}

// waitSubscriptions checks the running subscriptions of the continuous
// query cq (all when cq is ""), giving each subscribeTimeout to complete.
func (r *runner) waitSubscriptions(cq string) {
	r.t.Helper()
	var keep []*subscription
	var wg sync.WaitGroup
	var checked []*subscription
	for _, s := range r.subs {
		if cq != "" && s.rec.Relation != cq {
			keep = append(keep, s)
			continue
		}
		checked = append(checked, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.conn.SetReadDeadline(time.Now().Add(r.subTimeout))
			<-s.done
		}()
	}
	wg.Wait()
	r.subs = keep
	for _, s := range checked {
		r.checkSubscription(s)
	}
}

// checkSubscription compares the rows of a finished subscription.
func (r *runner) checkSubscription(s *subscription) {
	r.t.Helper()
	rec := s.rec
	if len(s.rows) < rec.N {
		var ne net.Error
		why := fmt.Sprint(s.err)
		if errors.As(s.err, &ne) && ne.Timeout() {
			why = fmt.Sprintf("no more rows within %v", r.subTimeout)
		} else if s.err == io.EOF {
			why = "the COPY ended"
		}
		got := make([]string, len(s.rows))
		for i, row := range s.rows {
			got[i] = "+ " + strings.Join(row, " ")
		}
		r.fail(rec, "received %d of %d rows (%s):\n%s", len(s.rows), rec.N, why, strings.Join(got, "\n"))
		return
	}
	for _, row := range s.rows {
		if len(row) != len(rec.Types) {
			r.fail(rec, "rows have %d columns; the record has %d types (%s): %s", len(row), len(rec.Types), rec.Types, strings.Join(row, " "))
			return
		}
	}
	if diff := CompareRows(rec.Types, rec.Sort, s.rows, rec.Expected); diff != "" {
		r.fail(rec, "result differs (%s):\n%s", expectedAt(rec), diff)
	}
}

// QueryText runs one SQL statement through the simple query protocol and
// returns the rows of its (last) result as values rendered by Value.
func QueryText(ctx context.Context, conn *pgconn.PgConn, sql string) ([][]string, error) {
	results, err := readAll(conn.Exec(ctx, sql))
	if err != nil {
		return nil, err
	}
	if len(results) == 0 {
		return nil, nil
	}
	res := results[len(results)-1]
	rows := make([][]string, len(res.Rows))
	for i, r := range res.Rows {
		vals := make([]string, len(r))
		for j, v := range r {
			vals[j] = Value(v)
		}
		rows[i] = vals
	}
	return rows, nil
}
