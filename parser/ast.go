// Package parser turns SQL text into statements. It wraps the TiDB parser for
// SELECT and INSERT and adds what TiDB does not know: Spate's streaming
// statements (CREATE STREAM, CREATE CONTINUOUS QUERY, SUBSCRIBE, SHOW, SET,
// COPY, DROP, EXPLAIN) and a PostgreSQL front that rewrites what psql,
// drivers and BI tools send (x::type, $n, INTERVAL '1 minute', ~, ||,
// double-quoted identifiers, IS [NOT] DISTINCT FROM) into forms the TiDB
// grammar accepts.
//
// # Rewritten forms inside TiDB ASTs
//
// The planner sees these function calls where the user wrote PostgreSQL
// syntax (all names lower case):
//
//	spate_cast(x, 'type name')   x::type and CAST(x AS type); the type name is normalised, e.g. 'bigint', 'double precision', 'varchar(10)'
//	spate_interval(µs)           INTERVAL '1 minute', INTERVAL '1' MINUTE, INTERVAL 1 MINUTE (integer microseconds; a month is 30 days)
//	spate_param(n)               $n
//	spate_session(t, gap)        SESSION(t, gap) in GROUP BY
//	spate_regexp_i(s, pattern)   s ~* pattern (and NOT … for !~*)
//
// s ~ p and s !~ p become s REGEXP p and s NOT REGEXP p; a IS NOT DISTINCT
// FROM b becomes a <=> b and a IS DISTINCT FROM b becomes (a <=> b) IS FALSE.
// Unquoted identifiers are folded to lower case and quoted ones keep their
// case, as in PostgreSQL, so names compare exactly afterwards.
package parser

import "github.com/pingcap/tidb/pkg/parser/ast"

// Statement is one parsed SQL statement.
type Statement interface {
	// SQL is the statement's original text (without the trailing semicolon).
	SQL() string
}

// Base carries the original text of a statement.
type Base struct{ Text string }

// SQL returns the original text.
func (b Base) SQL() string { return b.Text }

// TypeName is a column or cast type as written, normalised to lower case
// with single spaces: "int", "bigint", "double precision", "varchar(20)",
// "timestamp", "interval", "text", "boolean", "numeric(10,2)".
type TypeName string

// ColumnDef is one column of CREATE STREAM or CREATE TABLE.
type ColumnDef struct {
	Name       string
	Type       TypeName
	NotNull    bool
	PrimaryKey bool
	Pos        int // 1-based character offset of the column name in the statement
}

// Option is one entry of a WITH (key = value, …) list. Keys are lower case;
// values keep their text without quotes.
type Option struct {
	Key   string
	Value string
}

// CreateStream is CREATE STREAM [IF NOT EXISTS] name (cols) [WITH (…)].
type CreateStream struct {
	Base
	Name        string
	IfNotExists bool
	Columns     []ColumnDef
	With        []Option
}

// CreateTable is CREATE TABLE [IF NOT EXISTS] name (cols [, PRIMARY KEY (…)]).
type CreateTable struct {
	Base
	Name        string
	IfNotExists bool
	Columns     []ColumnDef
	PrimaryKey  []string
}

// CreateContinuousQuery is CREATE CONTINUOUS QUERY [IF NOT EXISTS] name
// [WITH (…)] AS SELECT …
type CreateContinuousQuery struct {
	Base
	Name        string
	IfNotExists bool
	With        []Option
	Query       *ast.SelectStmt
	QueryText   string // the SELECT as written by the user
}

// ObjectKind names what DROP and SHOW address.
type ObjectKind string

// The object kinds.
const (
	KindStream          ObjectKind = "STREAM"
	KindTable           ObjectKind = "TABLE"
	KindContinuousQuery ObjectKind = "CONTINUOUS QUERY"
)

// Drop is DROP STREAM | TABLE | CONTINUOUS QUERY [IF EXISTS] name [CASCADE].
type Drop struct {
	Base
	Kind     ObjectKind
	Name     string
	IfExists bool
	Cascade  bool
}

// Show is SHOW STREAMS | TABLES | CONTINUOUS QUERIES | WORKERS | INSTANCES |
// ALL | <setting name>. What is lower case: "streams", "tables",
// "continuous queries", "workers", "instances", "all", or a setting name.
type Show struct {
	Base
	What string
}

// Set is SET [SESSION | LOCAL] name { TO | = } value | DEFAULT, and
// SET TIME ZONE value. Value is unquoted text; "default" for DEFAULT.
type Set struct {
	Base
	Name  string
	Value string
}

// Select is a query: SELECT … (including VALUES-free SELECT 1).
type Select struct {
	Base
	Query *ast.SelectStmt
}

// Insert is INSERT INTO name [(cols)] VALUES (…), … | SELECT …
type Insert struct {
	Base
	Stmt *ast.InsertStmt
}

// Subscribe is SUBSCRIBE [TO] name.
type Subscribe struct {
	Base
	Name string
}

// Copy is COPY name [(cols)] FROM STDIN [WITH] [(options)] | CSV [HEADER] …,
// or COPY { name | (query) } TO STDOUT [options]. For COPY (…) TO, Query
// holds the inner statement (a *Select or *Subscribe).
type Copy struct {
	Base
	Table   string
	Columns []string
	Query   Statement
	From    bool // FROM STDIN when true, TO STDOUT otherwise
	Options []Option
}

// Explain is EXPLAIN [ANALYZE] stmt; ANALYZE with a continuous query name
// (EXPLAIN ANALYZE cq) sets Name instead of Stmt.
type Explain struct {
	Base
	Analyze bool
	Stmt    Statement
	Name    string
}

// Transaction is BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, ABORT.
// Verb is upper case: "BEGIN", "COMMIT" or "ROLLBACK". Spate has no
// multi-statement transactions; these exist so that drivers that send them
// keep working.
type Transaction struct {
	Base
	Verb string
}

// Empty is a query string with no statement (only whitespace, comments or
// semicolons).
type Empty struct{ Base }

// Error is a syntax error. Position is a 1-based character offset into the
// original SQL text (0 when unknown), as PostgreSQL's ErrorResponse P field.
type Error struct {
	Code     string // SQLSTATE, "42601" for syntax errors
	Message  string
	Position int
}

func (e *Error) Error() string { return e.Message }

// SQLState returns the SQLSTATE code.
func (e *Error) SQLState() string { return e.Code }
