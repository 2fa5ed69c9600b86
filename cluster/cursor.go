package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/planner"
)

// SQL cursors: DECLARE name CURSOR FOR { SELECT … | SUBSCRIBE q }, FETCH,
// MOVE and CLOSE, so that any driver can read a result stream with plain
// queries instead of COPY.
//
// A SELECT cursor holds the snapshot taken at DECLARE; FETCH returns its
// next rows and then none. A SUBSCRIBE cursor holds a subscription:
// FETCH without a timeout waits until at least one row is there and then
// returns what is ready, up to the count (Materialize's semantics); with
// WITH (timeout = …) it collects rows until the count is reached or the
// timeout passes, and may return none. Rows of a batch not yet fetched
// stay in the cursor for the next FETCH. A cancelled FETCH (CancelRequest,
// ctx) consumes nothing.
//
// Transactions: a cursor declared inside BEGIN … without WITH HOLD is
// closed by COMMIT and ROLLBACK; a WITH HOLD cursor survives COMMIT but not
// the ROLLBACK of the block that declared it (PostgreSQL's rules).
// PostgreSQL refuses DECLARE without HOLD outside a transaction block;
// Spate accepts it, and such a cursor lives until CLOSE or the end of the
// session, like WITH HOLD (drivers such as pgx and JDBC in auto-commit
// mode send no BEGIN). The session does not see when pgwire turns COMMIT
// of a failed block into ROLLBACK, so WITH HOLD cursors declared in a
// failed block survive it.
//
// An open SUBSCRIBE cursor is a subscriber: when it is not fetched, the
// continuous query waits for it once its queue is full, as for a
// SUBSCRIBE client that stops reading.

// Codes of cursor errors.
const (
	codeUndefinedCursor = "34000" // invalid_cursor_name
	codeDuplicateCursor = "42P03" // duplicate_cursor
)

// cursor is one open cursor of a session. It is used by the session's
// goroutine only.
type cursor struct {
	name      string
	statement string // the DECLARE as written (pg_cursors)
	hold      bool
	columns   []Column
	binary    bool
	subscribe bool // rows come from a subscription (FETCH waits for them)
	// closeAtCommit: declared without HOLD inside a transaction block.
	closeAtCommit bool
	// inBlock: declared in the current transaction block (its ROLLBACK
	// closes the cursor).
	inBlock bool

	rows RowStream
	// pending are batches read from rows and not yet fetched; the next
	// row is pending[0]'s row off. The cursor owns them.
	pending []arrow.RecordBatch
	off     int64
	end     error // io.EOF or the stream's error once rows ended; sticky
}

// buffered is the number of rows read and not yet fetched.
func (c *cursor) buffered() int64 {
	var n int64
	for _, b := range c.pending {
		n += b.NumRows()
	}
	return n - c.off
}

// fill reads from the stream until want rows are buffered (want < 0: until
// the stream ends or, for a subscription, nothing more is ready), waiting
// as FETCH does. It returns ctx's error when the statement was cancelled;
// whatever was read stays buffered.
func (c *cursor) fill(ctx context.Context, want int64, timeout time.Duration, hasTimeout bool) error {
	if want == 0 {
		return nil
	}
	var deadline context.Context
	if hasTimeout {
		var cancel context.CancelFunc
		deadline, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	poll, stop := context.WithCancel(context.Background())
	stop() // a done context: Next returns a batch only if one is ready
	have := c.buffered()
	for c.end == nil && (want < 0 || have < want) {
		rctx := ctx
		switch {
		case !c.subscribe:
			// A snapshot never waits.
		case hasTimeout:
			rctx = deadline
		case have > 0:
			rctx = poll
		}
		rec, err := c.rows.Next(rctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if rctx.Err() != nil {
				return nil // the timeout passed, or nothing more is ready
			}
			c.end = err
			return nil
		}
		if rec.NumRows() == 0 {
			rec.Release()
			continue
		}
		c.pending = append(c.pending, rec)
		have += rec.NumRows()
	}
	return nil
}

// take removes up to want buffered rows (want < 0: all) and returns them;
// the caller owns the batches.
func (c *cursor) take(want int64) ([]arrow.RecordBatch, int64) {
	var out []arrow.RecordBatch
	var n int64
	for len(c.pending) > 0 && (want < 0 || n < want) {
		rec := c.pending[0]
		k := rec.NumRows() - c.off
		if want >= 0 && k > want-n {
			k = want - n
		}
		n += k
		if c.off == 0 && k == rec.NumRows() {
			out = append(out, rec) // the whole batch changes hands
			c.pending[0] = nil
			c.pending = c.pending[1:]
			continue
		}
		out = append(out, rec.NewSlice(c.off, c.off+k))
		if c.off += k; c.off == rec.NumRows() {
			rec.Release()
			c.pending[0] = nil
			c.pending = c.pending[1:]
			c.off = 0
		}
	}
	return out, n
}

// close releases the cursor's batches and stream. Idempotent.
func (c *cursor) close() {
	releaseBatches(c.pending)
	c.pending, c.off = nil, 0
	if c.rows != nil {
		c.rows.Close()
		c.rows = nil
	}
}

// cursorSet is a session's open cursors and what it knows of the
// transaction block.
type cursorSet struct {
	byName  map[string]*cursor
	inBlock bool // between BEGIN and COMMIT/ROLLBACK
}

// transaction applies BEGIN, COMMIT or ROLLBACK to the cursors.
func (cs *cursorSet) transaction(verb string) {
	switch verb {
	case "BEGIN":
		cs.inBlock = true
		return
	case "COMMIT", "ROLLBACK":
		if !cs.inBlock {
			return
		}
		cs.inBlock = false
	}
	for name, c := range cs.byName {
		if c.closeAtCommit || verb == "ROLLBACK" && c.inBlock {
			c.close()
			delete(cs.byName, name)
			continue
		}
		c.inBlock = false
	}
}

// closeAll closes every cursor (CLOSE ALL, the end of the session).
func (cs *cursorSet) closeAll() {
	for name, c := range cs.byName {
		c.close()
		delete(cs.byName, name)
	}
}

func (cs *cursorSet) lookup(name string) (*cursor, error) {
	c := cs.byName[name]
	if c == nil {
		return nil, errorf(codeUndefinedCursor, "cursor %q does not exist", name)
	}
	return c, nil
}

// describeCursor describes DECLARE (the parameters of its query), FETCH
// (the cursor's columns; none for a cursor that does not exist yet, as in
// PostgreSQL, where the error comes at execution), MOVE and CLOSE.
func (s *session) describeCursor(ctx context.Context, stmt parser.Statement) (Described, error) {
	switch x := stmt.(type) {
	case *parser.Declare:
		d, err := s.Describe(ctx, x.Query)
		return Described{ParamTypes: d.ParamTypes}, err
	case *parser.Fetch:
		if c := s.cursors.byName[x.Name]; c != nil && !x.Move {
			return Described{Columns: c.columns}, nil
		}
	}
	return Described{}, nil
}

// executeCursor runs DECLARE, FETCH, MOVE and CLOSE.
func (s *session) executeCursor(ctx context.Context, stmt parser.Statement, params []Param) (Result, error) {
	switch x := stmt.(type) {
	case *parser.Declare:
		return s.declare(ctx, x, params)
	case *parser.Fetch:
		return s.fetch(ctx, x)
	case *parser.CloseCursor:
		if x.All {
			s.cursors.closeAll()
			return Result{Tag: "CLOSE CURSOR ALL"}, nil
		}
		c, err := s.cursors.lookup(x.Name)
		if err != nil {
			return Result{}, err
		}
		c.close()
		delete(s.cursors.byName, x.Name)
		return Result{Tag: "CLOSE CURSOR"}, nil
	}
	return Result{}, errorf(planner.CodeNotSupported, "statement %T is not a cursor statement", stmt)
}

func (s *session) declare(ctx context.Context, x *parser.Declare, params []Param) (Result, error) {
	if s.cursors.byName[x.Name] != nil {
		return Result{}, errorf(codeDuplicateCursor, "cursor %q already exists", x.Name)
	}
	res, err := s.Execute(ctx, x.Query, params)
	if err != nil {
		return Result{}, err
	}
	if res.Rows == nil {
		return Result{}, errorf(planner.CodeNotSupported, "DECLARE CURSOR needs a query that returns rows")
	}
	_, sub := x.Query.(*parser.Subscribe)
	c := &cursor{
		name: x.Name, statement: x.SQL(), hold: x.Hold, columns: res.Columns, binary: x.Binary, subscribe: sub,
		closeAtCommit: !x.Hold && s.cursors.inBlock, inBlock: s.cursors.inBlock,
		rows: res.Rows,
	}
	if s.cursors.byName == nil {
		s.cursors.byName = map[string]*cursor{}
	}
	s.cursors.byName[x.Name] = c
	return Result{Tag: "DECLARE CURSOR"}, nil
}

// list describes the open cursors, ordered by name.
func (cs *cursorSet) list() []CursorInfo {
	out := make([]CursorInfo, 0, len(cs.byName))
	for _, c := range cs.byName {
		out = append(out, CursorInfo{Name: c.name, Statement: c.statement, Hold: c.hold, Binary: c.binary})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *session) fetch(ctx context.Context, x *parser.Fetch) (Result, error) {
	c, err := s.cursors.lookup(x.Name)
	if err != nil {
		return Result{}, err
	}
	want := x.Count
	if x.All {
		want = -1
	}
	if err := c.fill(ctx, want, x.Timeout, x.HasTimeout); err != nil {
		return Result{}, err
	}
	batches, n := c.take(want)
	if n == 0 && c.end != nil && !errors.Is(c.end, io.EOF) {
		return Result{}, c.end
	}
	if x.Move {
		releaseBatches(batches)
		return Result{Tag: fmt.Sprintf("MOVE %d", n)}, nil
	}
	return Result{Tag: fmt.Sprintf("FETCH %d", n), Columns: c.columns, Rows: &sliceStream{batches: batches}, Binary: c.binary}, nil
}
