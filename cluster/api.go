package cluster

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/planner"
)

// This file is the boundary between the protocol server (pgwire) and the
// engine. pgwire holds a Session per connection and calls it with parsed
// statements; everything it gets back is a plain value or a stream of Arrow
// batches. Nothing here knows about the PostgreSQL wire format.

// Column describes one result column.
type Column struct {
	Name string
	Type planner.Type
}

// Param is a bound parameter value: nil (NULL), bool, int64, float64 or
// string. pgwire decodes binary parameters of known types into the matching
// Go value and passes text parameters as strings; the engine casts them to
// the type the statement expects.
type Param = any

// Described is what a statement will take and return, without running it.
type Described struct {
	// ParamTypes has one entry per $n parameter ($1 first). A type the
	// statement does not constrain is planner.TypeText.
	ParamTypes []planner.Type
	// Columns is nil for statements that return no rows.
	Columns []Column
}

// RowStream yields result batches. Next blocks until a batch is ready, the
// stream ends (returns nil, io.EOF) or ctx is done (returns ctx.Err()). The
// returned batch is owned by the caller, who releases it. Close stops the
// stream and is idempotent; it is safe to call from another goroutine to
// interrupt a blocked Next.
type RowStream interface {
	Next(ctx context.Context) (arrow.RecordBatch, error)
	Close()
}

// CopyFormat is the data format of COPY.
type CopyFormat struct {
	CSV       bool   // CSV when true, PostgreSQL text format otherwise
	Delimiter byte   // default '\t' (text) or ',' (CSV)
	Null      string // default `\N` (text) or "" (CSV)
	Header    bool   // the first line is a header (column names)
	// HeaderMatch (HEADER MATCH, COPY FROM only): the header must name
	// the columns copied, in order.
	HeaderMatch bool
	Quote       byte // CSV only, default '"'
	Escape      byte // CSV only, default the quote

	hasNull bool // NULL was given explicitly
}

// CopyIn receives the data of COPY … FROM STDIN. pgwire calls Write with
// each CopyData payload in order, then exactly one of Finish or Abort.
type CopyIn interface {
	Write(data []byte) error
	// Finish flushes, makes the rows durable and visible, and returns how
	// many rows were accepted.
	Finish() (rows int64, err error)
	// Abort discards the rows not yet flushed (client CopyFail or a dropped
	// connection). Rows already acknowledged by earlier statements are kept,
	// and so are those a COPY into a stream already passed on: kept says
	// how many ("" when none), for the error the client gets.
	Abort(reason string) (kept string)
}

// Result is the outcome of one executed statement. Exactly one of the
// shapes applies:
//   - Tag only: a command such as CREATE STREAM ("CREATE STREAM").
//   - Columns + Rows: a query; pgwire sends RowDescription, the rows and
//     "SELECT n" (or Tag, when set). SUBSCRIBE is a Rows stream that ends
//     only when the client cancels or the continuous query is dropped.
//   - Columns + Rows + CopyOut: COPY (…) TO STDOUT; rows go out as CopyData
//     in CopyOutFormat.
//   - CopyIn: COPY … FROM STDIN; pgwire runs the sub-protocol and then sends
//     "COPY n".
type Result struct {
	Tag           string
	Notices       []Notice // sent before the result (NoticeResponse)
	Columns       []Column
	Rows          RowStream
	CopyOut       bool
	CopyOutFormat CopyFormat
	CopyIn        CopyIn
	CopyInColumns []Column // the columns COPY FROM expects, for CopyInResponse
	CopyInFormat  CopyFormat
	// Binary asks for Rows in binary format when the client gave no result
	// formats (the simple query protocol): FETCH from a BINARY cursor.
	Binary bool
}

// Notice is a message for the client that is not an error (NoticeResponse).
type Notice struct {
	Severity string // "NOTICE", "WARNING"
	Code     string // SQLSTATE: 00000 for a notice, 01000 for a warning
	Message  string
	Hint     string
}

// Session is one client's connection state: settings such as parallelism
// and the statements it runs. A Session is used by one goroutine at a time.
type Session interface {
	// Describe plans stmt without running it.
	Describe(ctx context.Context, stmt parser.Statement) (Described, error)
	// Execute runs stmt. Errors carry a SQLSTATE through a
	// SQLState() string method; other errors are internal (XX000).
	Execute(ctx context.Context, stmt parser.Statement, params []Param) (Result, error)
	// Setting returns a session setting for ParameterStatus and SHOW.
	Setting(name string) (string, bool)
	// Catalog returns what the catalog holds now, for the pg_catalog and
	// information_schema emulation.
	Catalog() CatalogView
	// Close ends the session and is idempotent.
	Close()
}

// CatalogView is a copy of the catalog as one session sees it. The
// planner objects are shared and must not be modified.
type CatalogView struct {
	Streams  []*planner.Stream          // ordered by name
	Tables   []*planner.Table           // ordered by name
	Queries  []*planner.ContinuousQuery // ordered by name
	System   []*planner.SystemTable     // the spate_… system tables, ordered by name
	User     string                     // the session's role
	Database string
	Settings map[string]string // the session's settings (a copy)
	Roles    []RoleInfo        // every role, sorted by name
	Grants   []GrantInfo       // every privilege granted
	Cursors  []CursorInfo      // the session's open cursors, by name
}

// CursorInfo describes an open cursor (pg_cursors).
type CursorInfo struct {
	Name, Statement string
	Hold, Binary    bool
}

// Engine opens sessions. It is safe for concurrent use.
type Engine interface {
	// NewSession opens a session for role user, whose authentication the
	// caller did. An Engine with roles (the Coordinator) refuses a role
	// that does not exist or may not log in with error 28000.
	NewSession(ctx context.Context, user, database string) (Session, error)
}

// Authenticator is implemented by an Engine whose roles can have
// passwords (the Coordinator). pgwire asks it for the verifier of the
// role a client authenticates as with SCRAM-SHA-256. Safe for concurrent
// use.
type Authenticator interface {
	// PasswordVerifier returns role's SCRAM-SHA-256 verifier. ok is false
	// when the role does not exist, may not log in or has no password;
	// authentication then fails without telling the client which.
	PasswordVerifier(role string) (v SCRAMVerifier, ok bool)
}
