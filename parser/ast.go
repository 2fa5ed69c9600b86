// Package parser turns SQL text into statements. It wraps the TiDB parser for
// SELECT and INSERT and adds what TiDB does not know: Spate's streaming
// statements (CREATE STREAM, CREATE CONTINUOUS QUERY, SUBSCRIBE, SHOW, SET,
// COPY, DROP, EXPLAIN) and a PostgreSQL front that rewrites what psql,
// drivers and BI tools send (x::type, $n, INTERVAL '1 minute', ~, ||,
// double-quoted identifiers, IS [NOT] DISTINCT FROM) into forms the TiDB
// grammar accepts.
//
// Parse and ParseOne are the entry points; they are safe for concurrent
// use. Errors are *Error with a SQLSTATE and a 1-based character position
// into the whole query string, worded like PostgreSQL's (syntax error at or
// near "FROM", syntax error at end of input).
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
//	spate_any(a), spate_all(a)   the right side of x op ANY (array) / ALL (array); ANY (SELECT …) stays a CompareSubqueryExpr
//	spate_array((SELECT …))      ARRAY(SELECT …)
//	spate_subscript(x, i)        x[i]
//	spate_field(x, 'f')          (x).f
//
// A function call f(…) [AS] alias[(column)] in a FROM list becomes the
// derived table (SELECT f(…) AS column) alias (a table function such as
// generate_series or unnest; the column is the alias or the function's
// name when none is given).
//
// s ~ p and s !~ p become s REGEXP p and s NOT REGEXP p; a IS NOT DISTINCT
// FROM b becomes a <=> b and a IS DISTINCT FROM b becomes (a <=> b) IS FALSE.
// Unquoted identifiers are folded to lower case and quoted ones keep their
// case, as in PostgreSQL, so names compare exactly afterwards.
//
// Details of those forms:
//
//   - spate_cast: the first argument is any expression, the second a string
//     ValueExpr. 'interval' casts ('1 minute'::interval) stay casts; a
//     leading pg_catalog. is dropped from the type ('int4'); arrays are
//     'int[]'. Every CAST goes through spate_cast (TiDB's own CAST never
//     appears).
//   - spate_interval: the argument is an int64 ValueExpr, or for a
//     negative interval a UnaryOperationExpr{Op: opcode.Minus} over one.
//     Text units: microsecond(s) us usec(s), millisecond(s) ms msec(s),
//     second(s) sec(s) s, minute(s) min(s) m, hour(s) hr(s) h, day(s) d,
//     week(s) w, month(s) mon(s), year(s) yr(s) y; several parts add up
//     ('1 hour 30 minutes', '1h30m', '1 day 02:00:00'); a bare number is
//     seconds; h:m[:s] and m:s.f clock forms; '… ago' negates. With a
//     qualifier (INTERVAL '5' MINUTE, INTERVAL 5 MINUTE) a number counts
//     that unit; interval text with a qualifier is truncated to it, as in
//     PostgreSQL. Bad text is error 22007 at the literal.
//   - spate_param: the argument is an int64 ValueExpr. In LIMIT and OFFSET,
//     where TiDB accepts only ?, $n is a *test_driver.ParamMarkerExpr
//     instead; SourceMap.Param(marker.Offset) gives n.
//   - a IS DISTINCT FROM b is emitted as a <=> b IS FALSE, which TiDB
//     groups as IsTruthExpr{True: 0, Expr: BinaryOperationExpr{Op:
//     opcode.NullEQ}}; ParenthesesExpr appear only where TiDB's grammar needs
//     them to keep PostgreSQL's meaning (an operand holding a comparison,
//     or a following IS: (a <=> b IS FALSE) IS NULL).
//   - !~* is UnaryOperationExpr{Op: opcode.Not} over spate_regexp_i, inside
//     a ParenthesesExpr when an operator binding tighter than NOT is next
//     to it.
//
// Further rewrites, so that one AST shape stands for each construct:
//
//	spate_cast('true', 'boolean')   TRUE and FALSE (TiDB would read them as the integers 1 and 0); IS [NOT] TRUE/FALSE stay IsTruthExpr
//	spate_cast('text', 'type')      typed literals: timestamp '2024-01-01 00:00:00', date '…', int '5', …
//	spate_concat(a, b)              a || b (NULL if either is NULL), with PostgreSQL's precedence ('x' || a + 1 is spate_concat('x', a + 1)); a || b || c nests left to right
//	power(a, b)                     a ^ b (PostgreSQL's exponentiation, binding tighter than * and /)
//	date_part('field', x)           EXTRACT(field FROM x); the field is a lower-case string as written ('epoch', 'hour', 'dow', …)
//	substring(s, 1, n)              SUBSTRING(s FOR n)
//	agg(CASE WHEN c THEN x END)     agg(x) FILTER (WHERE c), on the first argument; count(*) FILTER (WHERE c) is count(CASE WHEN c THEN 1 END)
//	s LIKE p, s NOT LIKE p          s ~~ p, s !~~ p (and ~~* / !~~* as [NOT] ILIKE)
//	x IS NULL, x IS NOT NULL        x ISNULL, x NOTNULL, x IS [NOT] UNKNOWN
//	f(…)                            pg_catalog.f(…)
//	a ^ b (TiDB's XOR)              a # b; & | << >> # keep PostgreSQL's single precedence level by parenthesising compound operands
//
// COLLATE clauses are dropped (Spate has no collations).
// OPERATOR(pg_catalog.op) and OPERATOR(op) are read as the operator op.
//
// # TiDB AST shapes the planner meets
//
// Names: ColumnNameExpr{Name: {Schema, Table, Name}} and TableName{Schema,
// Name}; compare CIStr.O (the case was already settled here: unquoted names
// are lower case, quoted ones as written). Function names: FnName.L.
// Expressions are in the TiDB parser's ast package unless noted:
//
//	column, t.column                ColumnNameExpr
//	1, 'x', NULL                    *test_driver.ValueExpr (read with GetValue(): int64; uint64 beyond int64; string; nil)
//	1.5, .5, 99999999999999999999   ValueExpr holding *test_driver.MyDecimal
//	1.5e3                           ValueExpr holding float64
//	x'1f', b'101'                   ValueExpr holding test_driver.BinaryLiteral
//	-x, ~x, NOT x                   UnaryOperationExpr{Op: opcode.Minus | BitNeg | Not} (also -1: minus over the literal 1)
//	a + b, a = b, a AND b, …        BinaryOperationExpr{Op: opcode.Plus, EQ, NE (<> and !=), NullEQ, LogicAnd, LogicOr, Mod (% and mod(a, b)), Div (/), IntDiv (DIV), …}
//	(x)                             ParenthesesExpr
//	f(args)                         FuncCallExpr{FnName, Args}: now(), current_timestamp, current_date, localtimestamp
//	                                (no parentheses needed, no args), coalesce, nullif, greatest, least, date_trunc, tumble, hop, …
//	position(a IN s)                FuncCallExpr "position" [a, s]
//	substring(s FROM a [FOR b])     FuncCallExpr "substring" [s, a(, b)] (substring(s, a, b) is the same)
//	trim([dir] [chars] FROM s)      FuncCallExpr "trim" [s] | [s, chars] | [s, chars, TrimDirectionExpr{Direction: Both|Leading|Trailing}]; with a direction and no chars, chars is ' '
//	count(*), sum(x), …             AggregateFuncExpr{F: "count", Args: [ValueExpr 1]} for count(*); Distinct for count(DISTINCT x)
//	f(…) OVER (…)                   WindowFuncExpr{Name, Args, Spec} (aggregates with OVER too)
//	x [NOT] IN (a, b)               PatternInExpr{Expr, List, Not}; with a subquery: Sel is a SubqueryExpr
//	x [NOT] BETWEEN a AND b         BetweenExpr{Expr, Left, Right, Not}
//	x [NOT] LIKE / ILIKE p          PatternLikeOrIlikeExpr{Expr, Pattern, Not, IsLike: true for LIKE, false for ILIKE, Escape is a backslash by default}
//	x [NOT] REGEXP p                PatternRegexpExpr{Expr, Pattern, Not} (from ~ and !~)
//	CASE [v] WHEN … THEN … ELSE … END  CaseExpr{Value, WhenClauses, ElseClause}
//	x IS [NOT] NULL                 IsNullExpr{Expr, Not}
//	x IS [NOT] TRUE / FALSE         IsTruthExpr{Expr, Not, True: 1 | 0}
//	EXISTS (q), (q), x = ANY (q)    ExistsSubqueryExpr, SubqueryExpr, CompareSubqueryExpr
//	(a, b)                          RowExpr
//
// UNION, INTERSECT and EXCEPT are rejected (0A000) in CREATE CONTINUOUS
// QUERY; a top-level one in a SELECT is kept in Select.SetOpr (with its
// first SELECT in Select.Query) for the catalog emulation, and the engine
// rejects it.
//
// Known limits of the front (TiDB rejects them, so they are syntax errors):
// ORDER BY … NULLS FIRST/LAST, SELECT DISTINCT ON, LIMIT ALL, FETCH FIRST,
// array literals (ARRAY[…]), INSERT … ON CONFLICT / RETURNING, SIMILAR TO,
// U&'…' strings, and PostgreSQL operators other than the ones above (@>,
// ?, …). A BETWEEN … AND … to the left of IS DISTINCT FROM is handled; an
// AND of other kinds there ends the operand, as it should.
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

// AlterContinuousQuery is ALTER CONTINUOUS QUERY name SCALE { OUT | IN }
// STAGE n [INSTANCE i], or ALTER CONTINUOUS QUERY name SET (key = value,
// …). Scale is "out", "in", or "" for SET; Instance is -1 when left out
// (the runtime picks by load).
type AlterContinuousQuery struct {
	Base
	Name     string
	Scale    string
	Stage    int
	Instance int
	Set      []Option
}

// Show is SHOW STREAMS | TABLES | CONTINUOUS QUERIES | WORKERS | INSTANCES |
// INSTANCE CHECKPOINTS | RESTART POINTS | SCALING EVENTS | ALL | <setting
// name>. What is lower case: "streams", "tables", "continuous queries",
// "workers", "instances", "instance checkpoints", "restart points",
// "scaling events", "all", or a setting name.
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
// WITH …, TABLE t and ( SELECT … ). Query is never nil. For UNION,
// INTERSECT and EXCEPT, SetOpr is the whole statement and Query its first
// SELECT; only the catalog emulation answers those (the engine reports
// 0A000).
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

// Update is UPDATE table SET col = expr, … [WHERE …].
type Update struct {
	Base
	Stmt *ast.UpdateStmt
}

// Delete is DELETE FROM table [WHERE …].
type Delete struct {
	Base
	Stmt *ast.DeleteStmt
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

// Error is a parse error: a syntax error (Code 42601) or one of the other
// Code… constants (bad interval text, unsupported statement, …). Position
// is a 1-based character offset into the original SQL text, the whole query
// string (0 when unknown), as PostgreSQL's ErrorResponse P field.
type Error struct {
	Code     string // SQLSTATE, "42601" for syntax errors
	Message  string
	Position int
}

func (e *Error) Error() string { return e.Message }

// SQLState returns the SQLSTATE code.
func (e *Error) SQLState() string { return e.Code }
