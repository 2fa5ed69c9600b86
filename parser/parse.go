package parser

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"

	tp "github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // value expressions for the TiDB parser
)

// SQLSTATE codes of the errors Parse returns.
const (
	CodeSyntax                   = "42601" // syntax_error
	CodeFeatureNotSupported      = "0A000" // feature_not_supported
	CodeInvalidDatetimeFormat    = "22007" // invalid_datetime_format: bad interval text
	CodeIntervalFieldOverflow    = "22015" // interval_field_overflow
	CodeInvalidTableDefinition   = "42P16" // invalid_table_definition: two primary keys
	CodeUndefinedColumn          = "42703" // undefined_column: PRIMARY KEY (x) names no column
	CodeNumericValueOutOfRange   = "22003" // numeric_value_out_of_range: a numeric literal beyond double precision
	CodeCharacterNotInRepertoire = "22021" // character_not_in_repertoire: an E'' escape that is not UTF-8
)

// Parse splits sql into statements on top-level semicolons (those outside
// strings, quoted identifiers, comments and dollar quotes) and parses each.
// Empty statements between semicolons are skipped; a string with no
// statement at all gives []Statement{&Empty{}}. A syntax error anywhere
// fails the whole string, as in PostgreSQL. Errors are *Error with a
// SQLSTATE and a 1-based character Position into sql. Parse is safe for
// concurrent use.
func Parse(sql string) ([]Statement, error) {
	toks, lerr := lex(sql)
	if lerr != nil {
		return nil, lerr
	}
	q := &query{sql: sql}
	var stmts []Statement
	start := 0
	for i := 0; i <= len(toks); i++ {
		if i < len(toks) && !toks[i].isPunct(";") {
			continue
		}
		if i > start {
			var end *token
			if i < len(toks) {
				end = &toks[i]
			}
			st, err := q.statement(toks[start:i], end)
			if err != nil {
				return nil, err
			}
			stmts = append(stmts, st)
		}
		start = i + 1
	}
	if len(stmts) == 0 {
		return []Statement{&Empty{}}, nil
	}
	return stmts, nil
}

// ParseOne parses sql, which must hold at most one statement (as the
// extended query protocol requires); an empty string gives &Empty{}. More
// than one statement is a 42601 error.
func ParseOne(sql string) (Statement, error) {
	stmts, err := Parse(sql)
	if err != nil {
		return nil, err
	}
	if len(stmts) != 1 {
		return nil, &Error{Code: CodeSyntax, Message: "cannot insert multiple commands into a prepared statement"}
	}
	return stmts[0], nil
}

// query is the context of one Parse call.
type query struct {
	sql string
}

func (q *query) base(toks []token) Base {
	first, last := toks[0], toks[len(toks)-1]
	return Base{Text: q.sql[first.start:last.end], Offset: charPos(q.sql, first.start) - 1}
}

// errAt is a syntax error at token t.
func (q *query) errAt(t token) *Error {
	return &Error{Code: CodeSyntax, Message: `syntax error at or near "` + q.sql[t.start:t.end] + `"`, Position: charPos(q.sql, t.start)}
}

// errEnd is a syntax error at the end of a statement: at the token that
// ends it (';', or the ')' around COPY's query), or at the end of input.
func (q *query) errEnd(end *token) *Error {
	if end != nil {
		return q.errAt(*end)
	}
	return &Error{Code: CodeSyntax, Message: "syntax error at end of input", Position: charPos(q.sql, len(q.sql))}
}

func (q *query) notSupported(t token, what string) *Error {
	return &Error{Code: CodeFeatureNotSupported, Message: what + " is not supported", Position: charPos(q.sql, t.start)}
}

// tidbParsers reuses TiDB parsers, which are not safe for concurrent use
// but are costly to allocate.
var tidbParsers = sync.Pool{New: func() any {
	p := tp.New()
	p.SetSQLMode(mysql.ModeANSIQuotes | mysql.ModePipesAsConcat | mysql.ModeNoBackslashEscapes)
	return p
}}

// tidbOps are the operators that may reach TiDB as written.
var tidbOps = setOf(`+ - * / % = < > <= >= <> <=> || & | ^ ~ << >> -> ->>`)

// tidb rewrites toks (one SELECT or INSERT) and parses them with TiDB. end
// is the token after the statement (nil at end of input), for errors.
func (q *query) tidb(toks []token, end *token) (ast.StmtNode, *SourceMap, error) {
	if err := checkTokenNesting(toks); err != nil {
		err.Position = charPos(q.sql, toks[0].start)
		return nil, nil, err
	}
	r := &rewriter{sql: q.sql}
	nodes, err := r.rewriteSeq(buildTree(toks))
	if err != nil {
		return nil, nil, err
	}
	out := flattenOut(nil, nodes)
	for _, t := range out {
		if !t.synth && (t.tok.kind == tOp && !tidbOps[t.tok.val] || t.tok.isPunct(":")) {
			return nil, nil, q.errAt(t.tok)
		}
	}
	render(out)
	for i, t := range out {
		if t.tok.kind == tNumber && !t.synth && significantDigits(t.tok.val) > maxDecimalDigits {
			// TiDB's decimals hold 65 digits (its test driver panics on
			// longer ones); Spate reads NUMERIC as DOUBLE anyway.
			f, err := strconv.ParseFloat(t.tok.val, 64)
			if err != nil {
				return nil, nil, &Error{Code: CodeNumericValueOutOfRange, Message: `"` + t.tok.val + `" is out of range for type double precision`, Position: charPos(q.sql, t.tok.start)}
			}
			out[i].text = strconv.FormatFloat(f, 'e', -1, 64)
		}
	}
	sm := newSourceMap(q.sql, out)
	stmt, perr := parseTiDB(sm.text)
	if perr != nil {
		if perr == errTiDBPanic {
			return nil, nil, &Error{Code: CodeSyntax, Message: "syntax error: the statement could not be parsed", Position: charPos(q.sql, toks[0].start)}
		}
		return nil, nil, q.tidbError(perr, sm, end)
	}
	if err := checkNesting(stmt); err != nil {
		err.Position = charPos(q.sql, toks[0].start)
		return nil, nil, err
	}
	return stmt, sm, nil
}

// maxDecimalDigits is the precision of TiDB's DECIMAL.
const maxDecimalDigits = 65

// significantDigits counts the digits of a number's mantissa.
func significantDigits(num string) int {
	n := 0
	for i := 0; i < len(num) && num[i] != 'e' && num[i] != 'E'; i++ {
		if isDigit(num[i]) {
			n++
		}
	}
	return n
}

var errTiDBPanic = errors.New("TiDB parser panicked")

// parseTiDB runs a pooled TiDB parser on text, which must hold one
// statement. A panic inside TiDB becomes errTiDBPanic, and that parser is
// not reused.
func parseTiDB(text string) (stmt ast.StmtNode, err error) {
	p := tidbParsers.Get().(*tp.Parser)
	defer func() {
		if r := recover(); r != nil {
			stmt, err = nil, errTiDBPanic
			return
		}
		tidbParsers.Put(p)
	}()
	stmts, _, err := p.ParseSQL(text)
	if err != nil {
		return nil, err
	}
	if len(stmts) != 1 {
		return nil, errors.New(`line 1 column 0 near ""`)
	}
	return stmts[0], nil
}

var totalLength = regexp.MustCompile(`\(total length (\d+)\)\s*$`)

// tidbError turns a TiDB parse error ("line 1 column 13 near "FORM t" ")
// into a PostgreSQL-style syntax error positioned in the original text.
func (q *query) tidbError(err error, sm *SourceMap, end *token) *Error {
	msg := err.Error()
	const marker = ` near "`
	i := strings.Index(msg, marker)
	if i < 0 {
		pos := 0
		if len(sm.orig) > 0 {
			pos = charPos(q.sql, sm.orig[0].start)
		}
		return &Error{Code: CodeSyntax, Message: "syntax error: " + msg, Position: pos}
	}
	rest := msg[i+len(marker):]
	off := -1
	if m := totalLength.FindStringSubmatch(rest); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			off = len(sm.text) - n
		}
	} else if j := strings.LastIndexByte(rest, '"'); j >= 0 && strings.HasSuffix(sm.text, rest[:j]) {
		off = len(sm.text) - j
	}
	if off < 0 {
		return &Error{Code: CodeSyntax, Message: "syntax error", Position: sm.Position(0)}
	}
	k := sm.tokenAt(off)
	if k < 0 {
		return q.errEnd(end)
	}
	return q.errAt(sm.orig[k])
}
