package pgwire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/planner"
)

// fakeEngine is a cluster.Engine with canned results for the tests. Its
// sessions answer a few SELECTs by their text (see cannedQueries),
// SUBSCRIBE with a stream fed by the test (fakeEngine.streams), COPY FROM
// with a recording CopyIn (fakeEngine.copies) and COPY TO with rows.
type fakeEngine struct {
	streams chan *fakeStream // every SUBSCRIBE stream, for the test to feed
	copies  chan *fakeCopyIn // every COPY FROM STDIN, as it starts

	mu sync.Mutex
	// Protected by mu:
	params   [][]cluster.Param // parameters of every Execute of "select p(...)"
	sessions []*fakeSession
}

var (
	_ cluster.Engine    = (*fakeEngine)(nil)
	_ cluster.Session   = (*fakeSession)(nil)
	_ cluster.RowStream = (*sliceStream)(nil)
	_ cluster.RowStream = (*fakeStream)(nil)
	_ cluster.CopyIn    = (*fakeCopyIn)(nil)
)

func newFakeEngine() *fakeEngine {
	return &fakeEngine{
		streams: make(chan *fakeStream, 16),
		copies:  make(chan *fakeCopyIn, 16),
	}
}

func (e *fakeEngine) NewSession(ctx context.Context, user, database string) (cluster.Session, error) {
	if database == "nope" {
		return nil, &testSQLError{code: "3D000", msg: fmt.Sprintf("database %q does not exist", database)}
	}
	s := &fakeSession{e: e, settings: map[string]string{}}
	e.mu.Lock()
	e.sessions = append(e.sessions, s)
	e.mu.Unlock()
	return s, nil
}

func (e *fakeEngine) lastParams() []cluster.Param {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.params) == 0 {
		return nil
	}
	return e.params[len(e.params)-1]
}

// testSQLError is an engine error with a SQLSTATE.
type testSQLError struct{ code, msg string }

func (e *testSQLError) Error() string    { return e.msg }
func (e *testSQLError) SQLState() string { return e.code }

type fakeSession struct {
	e *fakeEngine

	mu sync.Mutex
	// Protected by mu:
	settings map[string]string
	closed   bool
}

func (s *fakeSession) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

func (s *fakeSession) Catalog() cluster.CatalogView {
	return cluster.CatalogView{User: "spate", Database: "spate", Settings: map[string]string{}}
}

func (s *fakeSession) Setting(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.settings[strings.ToLower(name)]
	return v, ok
}

// canned is a SELECT with a fixed description and result.
type canned struct {
	desc    cluster.Described
	execute func(ctx context.Context, e *fakeEngine, params []cluster.Param) (cluster.Result, error)
}

var (
	allTypesCols = []cluster.Column{
		{Name: "id", Type: planner.TypeInt},
		{Name: "big", Type: planner.TypeBigInt},
		{Name: "name", Type: planner.TypeText},
		{Name: "score", Type: planner.TypeDouble},
		{Name: "ok", Type: planner.TypeBool},
		{Name: "ts", Type: planner.TypeTimestamp},
		{Name: "iv", Type: planner.TypeInterval},
	}
	paramTypes = []planner.Type{planner.TypeBigInt, planner.TypeText, planner.TypeDouble, planner.TypeBool, planner.TypeTimestamp, planner.TypeInterval}
	tsValue    = time.Date(2024, 5, 1, 12, 30, 0, 250000000, time.UTC)
)

func normalize(sql string) string {
	return strings.Join(strings.Fields(strings.ToLower(strings.TrimSuffix(strings.TrimSpace(sql), ";"))), " ")
}

var cannedQueries = map[string]canned{
	"select 1": {
		desc: cluster.Described{Columns: []cluster.Column{{Name: "?column?", Type: planner.TypeInt}}},
		execute: func(context.Context, *fakeEngine, []cluster.Param) (cluster.Result, error) {
			return rowsResult([]cluster.Column{{Name: "?column?", Type: planner.TypeInt}}, int64Batch("?column?", 1, 1)), nil
		},
	},
	"select * from t": {
		desc: cluster.Described{Columns: allTypesCols},
		execute: func(context.Context, *fakeEngine, []cluster.Param) (cluster.Result, error) {
			return rowsResult(allTypesCols, allTypesBatch()), nil
		},
	},
	"select p($1, $2, $3, $4, $5, $6)": {
		desc: cluster.Described{ParamTypes: paramTypes, Columns: []cluster.Column{{Name: "p", Type: planner.TypeText}}},
		execute: func(_ context.Context, e *fakeEngine, params []cluster.Param) (cluster.Result, error) {
			e.mu.Lock()
			e.params = append(e.params, params)
			e.mu.Unlock()
			b := array.NewStringBuilder(memory.DefaultAllocator)
			defer b.Release()
			for _, p := range params {
				b.Append(fmt.Sprintf("%T:%v", p, p))
			}
			arr := b.NewArray()
			defer arr.Release()
			schema := arrow.NewSchema([]arrow.Field{{Name: "p", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
			rec := array.NewRecordBatch(schema, []arrow.Array{arr}, int64(arr.Len()))
			return rowsResult([]cluster.Column{{Name: "p", Type: planner.TypeText}}, rec), nil
		},
	},
	"select big": {
		desc: cluster.Described{Columns: []cluster.Column{{Name: "i", Type: planner.TypeBigInt}}},
		execute: func(context.Context, *fakeEngine, []cluster.Param) (cluster.Result, error) {
			var recs []arrow.RecordBatch
			for b := 0; b < 10; b++ {
				recs = append(recs, int64Batch("i", int64(b*1000), 1000))
			}
			return rowsResult([]cluster.Column{{Name: "i", Type: planner.TypeBigInt}}, recs...), nil
		},
	},
	"select error": {
		desc: cluster.Described{Columns: []cluster.Column{{Name: "x", Type: planner.TypeInt}}},
		execute: func(context.Context, *fakeEngine, []cluster.Param) (cluster.Result, error) {
			return cluster.Result{}, fmt.Errorf("evaluating: %w", &testSQLError{code: "22012", msg: "division by zero"})
		},
	},
	"select panic": {
		desc: cluster.Described{Columns: []cluster.Column{{Name: "x", Type: planner.TypeInt}}},
		execute: func(context.Context, *fakeEngine, []cluster.Param) (cluster.Result, error) {
			panic("boom")
		},
	},
	"select slow": {
		desc: cluster.Described{Columns: []cluster.Column{{Name: "x", Type: planner.TypeInt}}},
		execute: func(ctx context.Context, _ *fakeEngine, _ []cluster.Param) (cluster.Result, error) {
			<-ctx.Done()
			return cluster.Result{}, ctx.Err()
		},
	},
	"select internal": {
		desc: cluster.Described{Columns: []cluster.Column{{Name: "x", Type: planner.TypeInt}}},
		execute: func(context.Context, *fakeEngine, []cluster.Param) (cluster.Result, error) {
			return cluster.Result{}, errors.New("something broke")
		},
	},
	// As the engine describes "select $70000".
	"select many": {
		desc: cluster.Described{ParamTypes: make([]planner.Type, 70000), Columns: []cluster.Column{{Name: "x", Type: planner.TypeText}}},
	},
	// pgx's CopyFrom describes the target columns with this query.
	`select "a", "b" from "t"`: {
		desc: cluster.Described{Columns: []cluster.Column{{Name: "a", Type: planner.TypeBigInt}, {Name: "b", Type: planner.TypeText}}},
	},
}

func (s *fakeSession) Describe(ctx context.Context, stmt parser.Statement) (cluster.Described, error) {
	switch st := stmt.(type) {
	case *parser.Select:
		q, ok := cannedQueries[normalize(st.SQL())]
		if !ok {
			return cluster.Described{}, &testSQLError{code: "42P01", msg: fmt.Sprintf("no canned query %q", st.SQL())}
		}
		return q.desc, nil
	case *parser.Subscribe:
		return cluster.Described{Columns: subscribeCols}, nil
	}
	return cluster.Described{}, nil
}

var subscribeCols = []cluster.Column{{Name: "op", Type: planner.TypeText}, {Name: "n", Type: planner.TypeBigInt}}

func (s *fakeSession) Execute(ctx context.Context, stmt parser.Statement, params []cluster.Param) (cluster.Result, error) {
	switch st := stmt.(type) {
	case *parser.Select:
		q, ok := cannedQueries[normalize(st.SQL())]
		if !ok || q.execute == nil {
			return cluster.Result{}, &testSQLError{code: "42P01", msg: fmt.Sprintf("no canned query %q", st.SQL())}
		}
		return q.execute(ctx, s.e, params)
	case *parser.Subscribe:
		fs := newFakeStream()
		select {
		case s.e.streams <- fs:
		default: // nobody listens (fuzzing)
		}
		return cluster.Result{Columns: subscribeCols, Rows: fs}, nil
	case *parser.Copy:
		if st.From {
			ci := &fakeCopyIn{table: st.Table, done: make(chan struct{})}
			select {
			case s.e.copies <- ci:
			default: // nobody listens (fuzzing)
			}
			return cluster.Result{CopyIn: ci, CopyInColumns: []cluster.Column{{Name: "a", Type: planner.TypeBigInt}, {Name: "b", Type: planner.TypeText}}}, nil
		}
		var format cluster.CopyFormat
		for _, o := range st.Options {
			if o.Key == "format" && strings.EqualFold(o.Value, "csv") {
				format.CSV = true
				format.Header = true
			}
		}
		res, err := s.Execute(ctx, st.Query, params)
		if err != nil {
			return res, err
		}
		res.CopyOut = true
		res.CopyOutFormat = format
		return res, nil
	case *parser.Set:
		s.mu.Lock()
		s.settings[st.Name] = st.Value
		s.mu.Unlock()
		return cluster.Result{Tag: "SET"}, nil
	case *parser.Transaction:
		return cluster.Result{Tag: st.Verb}, nil
	case *parser.Insert:
		return cluster.Result{Tag: "INSERT 0 1"}, nil
	case *parser.CreateStream:
		return cluster.Result{}, nil
	}
	return cluster.Result{}, &testSQLError{code: "0A000", msg: fmt.Sprintf("fake engine cannot run %T", stmt)}
}

// sliceStream is a finite RowStream over batches.
type sliceStream struct {
	mu   sync.Mutex
	recs []arrow.RecordBatch
}

func rowsResult(cols []cluster.Column, recs ...arrow.RecordBatch) cluster.Result {
	return cluster.Result{Columns: cols, Rows: &sliceStream{recs: recs}}
}

func (s *sliceStream) Next(ctx context.Context) (arrow.RecordBatch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(s.recs) == 0 {
		return nil, io.EOF
	}
	r := s.recs[0]
	s.recs = s.recs[1:]
	return r, nil
}

func (s *sliceStream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.recs {
		r.Release()
	}
	s.recs = nil
}

// fakeStream is an endless RowStream fed by the test through push.
type fakeStream struct {
	batches chan arrow.RecordBatch
	closed  chan struct{}
	once    sync.Once
}

func newFakeStream() *fakeStream {
	return &fakeStream{batches: make(chan arrow.RecordBatch, 16), closed: make(chan struct{})}
}

func (s *fakeStream) push(rec arrow.RecordBatch) { s.batches <- rec }

func (s *fakeStream) Next(ctx context.Context) (arrow.RecordBatch, error) {
	select {
	case r := <-s.batches:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.closed:
		return nil, errors.New("stream closed")
	}
}

func (s *fakeStream) Close() { s.once.Do(func() { close(s.closed) }) }

func (s *fakeStream) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// fakeCopyIn records COPY data. A table named "bad" fails its second Write.
type fakeCopyIn struct {
	table string
	done  chan struct{} // closed by Finish or Abort

	mu sync.Mutex
	// Protected by mu:
	data        []byte
	writes      int
	finished    bool
	aborted     bool
	abortReason string
	kept        string // what Abort says was already ingested
}

func (c *fakeCopyIn) Write(data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	if c.table == "bad" && c.writes >= 2 {
		return &testSQLError{code: "22P04", msg: "bad COPY data on line 2"}
	}
	c.data = append(c.data, data...)
	return nil
}

func (c *fakeCopyIn) Finish() (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished || c.aborted {
		panic("fakeCopyIn: Finish after Finish or Abort")
	}
	c.finished = true
	close(c.done)
	if bytesHavePrefix(c.data, pgCopySignature) {
		return countBinaryCopyTuples(c.data)
	}
	return int64(strings.Count(string(c.data), "\n")), nil
}

func (c *fakeCopyIn) Abort(reason string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished || c.aborted {
		panic("fakeCopyIn: Abort after Finish or Abort")
	}
	c.aborted = true
	c.abortReason = reason
	close(c.done)
	return c.kept
}

func (c *fakeCopyIn) state() (data string, finished, aborted bool, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.data), c.finished, c.aborted, c.abortReason
}

const pgCopySignature = "PGCOPY\n\xff\r\n\x00"

func bytesHavePrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

// countBinaryCopyTuples counts the tuples of PostgreSQL's binary COPY format.
func countBinaryCopyTuples(b []byte) (int64, error) {
	b = b[len(pgCopySignature)+4:]
	ext := binary.BigEndian.Uint32(b)
	b = b[4+ext:]
	var n int64
	for {
		if len(b) == 0 {
			return n, nil // pgx sends no trailer
		}
		if len(b) < 2 {
			return 0, &testSQLError{code: "22P04", msg: "truncated binary COPY data"}
		}
		fields := int16(binary.BigEndian.Uint16(b))
		b = b[2:]
		if fields == -1 {
			return n, nil
		}
		for range fields {
			l := int32(binary.BigEndian.Uint32(b))
			b = b[4:]
			if l > 0 {
				b = b[l:]
			}
		}
		n++
	}
}

// ---- batches ----

func int64Batch(name string, start int64, n int) arrow.RecordBatch {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	for i := 0; i < n; i++ {
		b.Append(start + int64(i))
	}
	arr := b.NewArray()
	defer arr.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: name, Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	return array.NewRecordBatch(schema, []arrow.Array{arr}, int64(n))
}

// subscribeBatch is a changelog batch (op text, n bigint).
func subscribeBatch(ops []string, ns []int64) arrow.RecordBatch {
	ob := array.NewStringBuilder(memory.DefaultAllocator)
	defer ob.Release()
	nb := array.NewInt64Builder(memory.DefaultAllocator)
	defer nb.Release()
	ob.AppendValues(ops, nil)
	nb.AppendValues(ns, nil)
	oa, na := ob.NewArray(), nb.NewArray()
	defer oa.Release()
	defer na.Release()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "op", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	return array.NewRecordBatch(schema, []arrow.Array{oa, na}, int64(len(ops)))
}

// allTypesBatch has three rows: ordinary values, awkward values, NULLs.
func allTypesBatch() arrow.RecordBatch {
	mem := memory.DefaultAllocator
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "big", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "ts", Type: arrow.FixedWidthTypes.Timestamp_us, Nullable: true},
		{Name: "iv", Type: arrow.FixedWidthTypes.Duration_us, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	valid := []bool{true, true, false}
	b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, -2147483648, 0}, valid)
	b.Field(1).(*array.Int64Builder).AppendValues([]int64{10000000000, math.MinInt64, 0}, valid)
	b.Field(2).(*array.StringBuilder).AppendValues([]string{"alice", "tab\there\nnew\\line,\"q\"", ""}, valid)
	b.Field(3).(*array.Float64Builder).AppendValues([]float64{1.5, 1e20, 0}, valid)
	b.Field(4).(*array.BooleanBuilder).AppendValues([]bool{true, false, false}, valid)
	b.Field(5).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{arrow.Timestamp(tsValue.UnixMicro()), 0, 0}, valid)
	b.Field(6).(*array.DurationBuilder).AppendValues([]arrow.Duration{arrow.Duration(26 * time.Hour / time.Microsecond), -1500000, 0}, valid)
	return b.NewRecordBatch()
}
