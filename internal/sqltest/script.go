package sqltest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kind is the kind of a script record.
type Kind int

// The record kinds (see the package documentation for their syntax).
const (
	KindStatement     Kind = iota + 1 // statement ok | statement error
	KindQuery                         // query <types> … | query error
	KindCopy                          // copy <relation> … | copy error
	KindSubscribe                     // subscribe <cq> <n> <types>
	KindSubscribeWait                 // subscribe wait <cq>
	KindSleep                         // sleep <duration>
	KindHalt                          // halt
)

func (k Kind) String() string {
	switch k {
	case KindStatement:
		return "statement"
	case KindQuery:
		return "query"
	case KindCopy:
		return "copy"
	case KindSubscribe:
		return "subscribe"
	case KindSubscribeWait:
		return "subscribe wait"
	case KindSleep:
		return "sleep"
	case KindHalt:
		return "halt"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// SortMode says how a query's rows are ordered before they are compared.
type SortMode int

// The sort modes.
const (
	NoSort    SortMode = iota // compare rows in the order the server sent them
	RowSort                   // sort the rows (as text) on both sides
	ValueSort                 // sort all values individually on both sides
)

// Record is one record of a script.
type Record struct {
	Kind Kind
	// Line is the 1-based line of the record's first line (its header).
	Line int
	// SQL is the statement (statement, query); the COPY statement the
	// runner sends (copy); or COPY (SUBSCRIBE cq) TO STDOUT (subscribe).
	SQL string

	// ErrorCode is the SQLSTATE a statement, query or copy must fail with;
	// "" when it must succeed.
	ErrorCode string
	// ErrorSubstring must occur in the error message when not empty.
	ErrorSubstring string

	// Types has one letter per result column (query, subscribe): I
	// integer, R floating point, T text (anything compared as text), B
	// boolean.
	Types string
	// Sort is the sort mode of a query or subscribe.
	Sort SortMode
	// Columns, when not nil, selects the 0-based result columns that are
	// compared (query … columns=1,3 — written 1-based).
	Columns []int
	// Expected holds the expected rows (query, subscribe) as written.
	Expected []string
	// ExpectedLine is the line of the first expected row.
	ExpectedLine int

	// Relation is the target of a copy, possibly with a column list, or
	// the continuous query of a subscribe or subscribe wait.
	Relation string
	// CSV is true for copy … csv (text format otherwise).
	CSV bool
	// Header is true for copy … header (CSV only).
	Header bool
	// Data holds the lines of a copy, without the terminating \. line.
	Data []string

	// N is the number of rows a subscribe reads.
	N int

	// Duration is the pause of a sleep.
	Duration time.Duration
}

// ParseScript parses a script. name is used in error messages.
func ParseScript(name, src string) ([]Record, error) {
	p := &scriptParser{name: name, lines: strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")}
	return p.parse()
}

type scriptParser struct {
	name  string
	lines []string
	i     int // index of the next line
}

func (p *scriptParser) errorf(line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.name, line, fmt.Sprintf(format, args...))
}

func isBlank(s string) bool     { return strings.TrimSpace(s) == "" }
func isComment(s string) bool   { return strings.HasPrefix(strings.TrimLeft(s, " \t"), "#") }
func isSeparator(s string) bool { return strings.TrimRight(s, " \t") == "----" }

func (p *scriptParser) parse() ([]Record, error) {
	var recs []Record
	for p.i < len(p.lines) {
		line := p.lines[p.i]
		if isBlank(line) || isComment(line) {
			p.i++
			continue
		}
		rec, err := p.record()
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// record parses the record whose header is the current line.
func (p *scriptParser) record() (Record, error) {
	lineNo := p.i + 1
	header := strings.TrimSpace(p.lines[p.i])
	if i := strings.Index(header, " #"); i >= 0 && !strings.HasPrefix(header, "statement error") && !strings.HasPrefix(header, "query error") && !strings.HasPrefix(header, "copy error") {
		header = strings.TrimSpace(header[:i]) // trailing comment
	}
	p.i++
	f := strings.Fields(header)
	rec := Record{Line: lineNo}
	switch f[0] {
	case "statement":
		rec.Kind = KindStatement
		if len(f) < 2 {
			return rec, p.errorf(lineNo, "statement needs ok or error <SQLSTATE>")
		}
		switch f[1] {
		case "ok":
			if len(f) > 2 {
				return rec, p.errorf(lineNo, "unexpected %q after statement ok", f[2])
			}
		case "error":
			code, msg, err := p.errorSpec(lineNo, header, 2)
			if err != nil {
				return rec, err
			}
			rec.ErrorCode, rec.ErrorSubstring = code, msg
		default:
			return rec, p.errorf(lineNo, "statement needs ok or error <SQLSTATE>, not %q", f[1])
		}
		sql, err := p.sql(lineNo, false)
		if err != nil {
			return rec, err
		}
		rec.SQL = sql
		return rec, nil

	case "query":
		rec.Kind = KindQuery
		if len(f) < 2 {
			return rec, p.errorf(lineNo, "query needs column types or error <SQLSTATE>")
		}
		if f[1] == "error" {
			code, msg, err := p.errorSpec(lineNo, header, 2)
			if err != nil {
				return rec, err
			}
			rec.ErrorCode, rec.ErrorSubstring = code, msg
			sql, err := p.sql(lineNo, false)
			if err != nil {
				return rec, err
			}
			rec.SQL = sql
			return rec, nil
		}
		if err := p.resultSpec(&rec, lineNo, f[1:], true); err != nil {
			return rec, err
		}
		sql, err := p.sql(lineNo, true)
		if err != nil {
			return rec, err
		}
		rec.SQL = sql
		if p.i < len(p.lines) && isSeparator(p.lines[p.i]) {
			p.i++
			rec.ExpectedLine = p.i + 1
			rec.Expected = p.rows()
		}
		if rec.Columns != nil && len(rec.Columns) != len(rec.Types) {
			return rec, p.errorf(lineNo, "columns= selects %d columns but there are %d types", len(rec.Columns), len(rec.Types))
		}
		return rec, nil

	case "copy":
		rec.Kind = KindCopy
		rest := f[1:]
		if len(rest) > 0 && rest[0] == "error" {
			if len(rest) < 3 {
				return rec, p.errorf(lineNo, "copy error needs <SQLSTATE> <relation>")
			}
			if !validSQLState(rest[1]) {
				return rec, p.errorf(lineNo, "%q is not a SQLSTATE (5 characters, digits and upper-case letters)", rest[1])
			}
			rec.ErrorCode = rest[1]
			rest = rest[2:]
		}
		if len(rest) == 0 {
			return rec, p.errorf(lineNo, "copy needs a relation")
		}
		// A column list may contain spaces: s(a, b) or s (a, b).
		rec.Relation = rest[0]
		rest = rest[1:]
		if len(rest) > 0 && strings.HasPrefix(rest[0], "(") && !strings.Contains(rec.Relation, "(") {
			rec.Relation += rest[0]
			rest = rest[1:]
		}
		for strings.Contains(rec.Relation, "(") && !strings.Contains(rec.Relation, ")") && len(rest) > 0 {
			rec.Relation += " " + rest[0]
			rest = rest[1:]
		}
		if len(rest) > 0 && (rest[0] == "csv" || rest[0] == "text") {
			rec.CSV = rest[0] == "csv"
			rest = rest[1:]
		}
		if len(rest) > 0 && rest[0] == "header" {
			if !rec.CSV {
				return rec, p.errorf(lineNo, "header needs csv")
			}
			rec.Header = true
			rest = rest[1:]
		}
		if len(rest) > 0 {
			if rec.ErrorCode == "" {
				return rec, p.errorf(lineNo, "unexpected %q in copy (want: copy <relation> [csv|text] [header])", rest[0])
			}
			rec.ErrorSubstring = strings.Join(rest, " ")
			// Keep the message's own spacing.
			if i := strings.Index(header, rest[0]); i >= 0 {
				rec.ErrorSubstring = strings.TrimSpace(header[i:])
			}
		}
		rec.SQL = copySQL(rec.Relation, rec.CSV, rec.Header)
		for {
			if p.i >= len(p.lines) {
				return rec, p.errorf(lineNo, `copy data is not terminated by a line \.`)
			}
			line := p.lines[p.i]
			p.i++
			if line == `\.` {
				break
			}
			rec.Data = append(rec.Data, line)
		}
		return rec, nil

	case "subscribe":
		if len(f) == 3 && f[1] == "wait" {
			rec.Kind = KindSubscribeWait
			rec.Relation = f[2]
			return rec, nil
		}
		rec.Kind = KindSubscribe
		if len(f) < 4 {
			return rec, p.errorf(lineNo, "subscribe needs <continuous query> <rows> <types> [rowsort|nosort], or wait <continuous query>")
		}
		rec.Relation = f[1]
		n, err := strconv.Atoi(f[2])
		if err != nil || n <= 0 {
			return rec, p.errorf(lineNo, "subscribe: %q is not a positive number of rows", f[2])
		}
		rec.N = n
		if err := p.resultSpec(&rec, lineNo, f[3:], false); err != nil {
			return rec, err
		}
		rec.SQL = "COPY (SUBSCRIBE " + rec.Relation + ") TO STDOUT"
		if p.i >= len(p.lines) || !isSeparator(p.lines[p.i]) {
			return rec, p.errorf(lineNo, "subscribe must be followed by ---- and the expected rows")
		}
		p.i++
		rec.ExpectedLine = p.i + 1
		rec.Expected = p.rows()
		if len(rec.Expected) != n {
			return rec, p.errorf(lineNo, "subscribe reads %d rows but %d are expected", n, len(rec.Expected))
		}
		return rec, nil

	case "sleep":
		rec.Kind = KindSleep
		if len(f) != 2 {
			return rec, p.errorf(lineNo, "sleep needs one duration, such as 100ms")
		}
		d, err := time.ParseDuration(f[1])
		if err != nil {
			return rec, p.errorf(lineNo, "sleep: %v", err)
		}
		rec.Duration = d
		return rec, nil

	case "halt":
		rec.Kind = KindHalt
		return rec, nil
	}
	return rec, p.errorf(lineNo, "unknown record %q (want statement, query, copy, subscribe, sleep or halt)", f[0])
}

// errorSpec parses "<SQLSTATE> [message substring]" from field index at of
// the header.
func (p *scriptParser) errorSpec(lineNo int, header string, at int) (code, msg string, err error) {
	f := strings.Fields(header)
	if len(f) <= at {
		return "", "", p.errorf(lineNo, "error needs a SQLSTATE")
	}
	code = f[at]
	if !validSQLState(code) {
		return "", "", p.errorf(lineNo, "%q is not a SQLSTATE (5 characters, digits and upper-case letters)", code)
	}
	rest := header
	for k := 0; k <= at; k++ {
		rest = strings.TrimLeft(rest, " \t")
		rest = rest[len(f[k]):]
	}
	return code, strings.TrimSpace(rest), nil
}

// resultSpec parses "<types> [sort mode] [columns=…]".
func (p *scriptParser) resultSpec(rec *Record, lineNo int, f []string, allowValueSort bool) error {
	rec.Types = f[0]
	for _, c := range rec.Types {
		if !strings.ContainsRune("IRTB", c) {
			return p.errorf(lineNo, "column type %q is not one of I, R, T, B", c)
		}
	}
	for _, opt := range f[1:] {
		switch {
		case opt == "nosort":
			rec.Sort = NoSort
		case opt == "rowsort":
			rec.Sort = RowSort
		case opt == "valuesort" && allowValueSort:
			rec.Sort = ValueSort
		case strings.HasPrefix(opt, "columns=") && rec.Kind == KindQuery:
			rec.Columns = []int{}
			for _, s := range strings.Split(strings.TrimPrefix(opt, "columns="), ",") {
				n, err := strconv.Atoi(s)
				if err != nil || n < 1 {
					return p.errorf(lineNo, "columns=: %q is not a 1-based column number", s)
				}
				rec.Columns = append(rec.Columns, n-1)
			}
		default:
			return p.errorf(lineNo, "unknown option %q", opt)
		}
	}
	return nil
}

// sql reads SQL lines up to a blank line (or, for a query, a ---- line).
// Comment lines (#) are skipped.
func (p *scriptParser) sql(lineNo int, query bool) (string, error) {
	var lines []string
	for p.i < len(p.lines) {
		line := p.lines[p.i]
		if isBlank(line) || (query && isSeparator(line)) {
			break
		}
		p.i++
		if isComment(line) {
			continue
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		return "", p.errorf(lineNo, "the record has no SQL")
	}
	return strings.Join(lines, "\n"), nil
}

// rows reads expected rows up to a blank line.
func (p *scriptParser) rows() []string {
	rows := []string{}
	for p.i < len(p.lines) && !isBlank(p.lines[p.i]) {
		rows = append(rows, p.lines[p.i])
		p.i++
	}
	return rows
}

func validSQLState(s string) bool {
	if len(s) != 5 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// copySQL is the COPY … FROM STDIN statement of a copy record.
func copySQL(relation string, csv, header bool) string {
	switch {
	case csv && header:
		return "COPY " + relation + " FROM STDIN WITH (FORMAT csv, HEADER true)"
	case csv:
		return "COPY " + relation + " FROM STDIN WITH (FORMAT csv)"
	}
	return "COPY " + relation + " FROM STDIN"
}
