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
// FROM b becomes a <=> b and a IS DISTINCT FROM b becomes (a <=> b) IS FALSE
// (emitted as a <=> b IS FALSE, which TiDB groups the same way:
// IsTruthExpr{True: 0} over BinaryOperationExpr{Op: opcode.NullEQ};
// parentheses are added only where TiDB's grammar needs them).
// Unquoted identifiers are folded to lower case and quoted ones keep their
// case, as in PostgreSQL, so names compare exactly afterwards: compare
// ast.CIStr.O (not .L) of column and table names; function names are
// always lower case (FuncCallExpr.FnName.L).
//
// Further rewrites, so that one AST shape stands for each construct:
//
//	concat(a, b)                 a || b, with PostgreSQL's precedence ('x' || a + 1 is concat('x', a + 1))
//	power(a, b)                  a ^ b (PostgreSQL's exponentiation; # is bitwise XOR and becomes TiDB's ^)
//	date_part('field', x)        EXTRACT(field FROM x); the field is lower case as written ('epoch', 'hour', 'dow', …)
//	spate_cast('text', 'type')   typed literals: timestamp '2024-01-01 00:00:00', date '…', int '5', …
//	substring(s, 1, n)           SUBSTRING(s FOR n); SUBSTRING(s FROM a FOR b) is TiDB's substring(s, a, b)
//	agg(CASE WHEN c THEN x END)  agg(x) FILTER (WHERE c); count(*) FILTER (WHERE c) → count(CASE WHEN c THEN 1 END)
//	s LIKE p, s NOT LIKE p       s ~~ p, s !~~ p (and ~~* / !~~* as [NOT] ILIKE)
//	x IS NULL, x IS NOT NULL     x ISNULL, x NOTNULL, x IS [NOT] UNKNOWN
//	f(…)                         pg_catalog.f(…)
//
// COLLATE clauses are dropped (Spate has no collations). OPERATOR(pg_catalog.op)
// is read as the operator op. See the package's DESIGN notes in parse.go
// for the TiDB AST shapes of the remaining PostgreSQL functions.
package parser

import "github.com/pingcap/tidb/pkg/parser/ast"

// Statement is one parsed SQL statement.
type Statement interface {
	// SQL is the statement's original text (without the trailing semicolon).
	SQL() string
}

// Base carries the original text of a statement.
type Base struct {
	Text string // the statement as written, from its first to its last token (no trailing ';')
	// Offset is the 0-based character offset of Text in the whole query
	// string, so that a 1-based position p inside the statement (such as
	// ColumnDef.Pos) is position Offset+p of the query (Error.Position).
	Offset int
}

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
	PrimaryKey bool // part of the primary key (which implies NotNull)
	Pos        int  // 1-based character offset of the column name in the statement (see Base.Offset)
}

// Option is one entry of a WITH (key = value, …) list. Keys are lower case;
// values keep their text without quotes: 'strings' their content, numbers
// their text (with a sign), unquoted words folded to lower case (true,
// false, on, csv…), "quoted" names their case, (a, b) → "a,b", and a key
// without a value gets "true".
type Option struct {
	Key   string
	Value string
}

// CreateStream is CREATE STREAM [IF NOT EXISTS] name (cols) [WITH (…)].
// Object names (here and in every statement Spate owns) may be written
// schema.name; only the last part is kept, Spate having one namespace.
type CreateStream struct {
	Base
	Name        string
	IfNotExists bool
	Columns     []ColumnDef
	With        []Option
}

// CreateTable is CREATE TABLE [IF NOT EXISTS] name (cols [, [CONSTRAINT c]
// PRIMARY KEY (…)]) [WITH (…)]. PrimaryKey lists the key columns, from the
// table constraint or from the one column declared PRIMARY KEY; those
// columns also have ColumnDef.PrimaryKey and NotNull set. (CREATE STREAM
// accepts the same PRIMARY KEY forms and only marks the columns.)
type CreateTable struct {
	Base
	Name        string
	IfNotExists bool
	Columns     []ColumnDef
	PrimaryKey  []string
	With        []Option
}

// CreateContinuousQuery is CREATE CONTINUOUS QUERY [IF NOT EXISTS] name
// [WITH (…)] AS SELECT …
type CreateContinuousQuery struct {
	Base
	Name        string
	IfNotExists bool
	With        []Option
	Query       *ast.SelectStmt
	QueryText   string     // the SELECT as written by the user
	Source      *SourceMap // maps Query's text offsets back to the query string
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
// Name is lower case (dotted names keep their dots); unquoted word values
// are folded to lower case, strings and quoted names are kept, several
// values are joined with ", " (SET search_path TO a, b → "a, b").
// Special forms: SET TIME ZONE x → Name "timezone" (LOCAL and DEFAULT give
// "default"); SET NAMES x → "client_encoding"; SET SCHEMA x →
// "search_path"; SET ROLE x → "role"; SET SESSION AUTHORIZATION x →
// "session_authorization"; SET SESSION CHARACTERISTICS AS TRANSACTION modes
// → "session_characteristics" and SET TRANSACTION modes → "transaction",
// with Value the normalised modes ("isolation level read committed, read
// only"). RESET name and RESET ALL give Value "default" (Name "all").
type Set struct {
	Base
	Name  string
	Value string
	Local bool // SET LOCAL
}

// Select is a query: SELECT … (including VALUES-free SELECT 1), also
// WITH …, TABLE t and ( SELECT … ). Exactly one of Query and SetOpr is set:
// SetOpr holds UNION / INTERSECT / EXCEPT.
type Select struct {
	Base
	Query  *ast.SelectStmt
	SetOpr *ast.SetOprStmt
	Source *SourceMap // maps the TiDB AST's text offsets back to the query string
}

// Insert is INSERT INTO name [(cols)] VALUES (…), … | SELECT …
type Insert struct {
	Base
	Stmt   *ast.InsertStmt
	Source *SourceMap // maps the TiDB AST's text offsets back to the query string
}

// Subscribe is SUBSCRIBE [TO] name.
type Subscribe struct {
	Base
	Name string
}

// Copy is COPY name [(cols)] FROM STDIN [WITH] [(options)] | CSV [HEADER] …,
// or COPY { name | (query) } TO STDOUT [options]. For COPY (…) TO, Query
// holds the inner statement (a *Select or *Subscribe) and Table is empty.
// Options come from either syntax with lower-case keys: (FORMAT csv,
// HEADER, DELIMITER ',') gives format=csv, header=true, delimiter=","; the
// legacy words give the same keys (CSV → format=csv, BINARY →
// format=binary, HEADER → header=true, DELIMITER/NULL/QUOTE/ESCAPE/ENCODING
// 'x' → the string, FORCE QUOTE a, b → force_quote="a,b", FORCE NOT NULL →
// force_not_null, FORCE NULL → force_null). Values are as in Option.
type Copy struct {
	Base
	Table   string
	Columns []string
	Query   Statement
	From    bool // FROM STDIN when true, TO STDOUT otherwise
	Options []Option
}

// Explain is EXPLAIN [ANALYZE] [VERBOSE] stmt or EXPLAIN (option, …) stmt;
// ANALYZE with a continuous query name (EXPLAIN ANALYZE cq) sets Name
// instead of Stmt. Options holds the parenthesised options as written
// (VERBOSE gives verbose=true); Analyze is also set by (ANALYZE [true|on]).
type Explain struct {
	Base
	Analyze bool
	Stmt    Statement
	Name    string
	Options []Option
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
