package parser

import (
	"sort"
	"strconv"
	"strings"
)

// SourceMap relates the text Spate handed to the TiDB parser (the
// statement after the PostgreSQL-front rewrite) to the user's original
// query string. TiDB AST offsets, such as ast.ExprNode.OriginTextPosition
// and the Text of nodes, refer to Text(); Position maps such an offset back
// for error messages. A SourceMap is immutable and safe for concurrent use.
type SourceMap struct {
	sql  string  // the whole original query string
	text string  // the rewritten statement
	offs []int   // byte offset in text of each emitted token, ascending
	lens []int   // byte length in text of each emitted token
	orig []token // the original token each emitted token stands for
}

func newSourceMap(sql string, out []outTok) *SourceMap {
	m := &SourceMap{sql: sql, offs: make([]int, 0, len(out)), orig: make([]token, 0, len(out))}
	var sb strings.Builder
	for i, t := range out {
		if i > 0 && spaceBetween(out[i-1], t) {
			sb.WriteByte(' ')
		}
		m.offs = append(m.offs, sb.Len())
		m.orig = append(m.orig, t.tok)
		m.lens = append(m.lens, len(t.text))
		sb.WriteString(t.text)
	}
	m.text = sb.String()
	return m
}

// spaceBetween decides whether two emitted tokens are separated by a
// space: not around '.', not inside the edges of parentheses, not before
// ',' and not between a function name and its '('.
func spaceBetween(a, b outTok) bool {
	switch {
	case a.text == "." || b.text == "." || a.text == "(" || b.text == ")" || b.text == ",":
		return false
	case b.text == "(":
		return !(a.tok.kind == tQIdent || a.tok.kind == tIdent && !callExcluded[a.tok.val])
	}
	return true
}

// Param returns n for the parameter $n that TiDB parsed as the marker ?
// at byte offset off of Text(). This happens only for LIMIT $n and
// OFFSET $n, where TiDB accepts no other expression: the planner sees a
// *test_driver.ParamMarkerExpr and calls Param(marker.Offset). Everywhere
// else $n is spate_param(n).
func (m *SourceMap) Param(off int) (int, bool) {
	i := m.tokenAt(off)
	if i < 0 || m.orig[i].kind != tParam || m.offs[i] != off {
		return 0, false
	}
	n, err := strconv.Atoi(m.orig[i].val)
	if err != nil {
		return 0, false
	}
	return n, true
}

// Text returns the rewritten statement text that TiDB parsed.
func (m *SourceMap) Text() string { return m.text }

// Position returns the 1-based character position in the original query
// string of the token at byte offset off of Text(). An offset between two
// tokens maps to the following token; an offset at or past the end maps to
// just after the statement's last token.
func (m *SourceMap) Position(off int) int {
	i := m.tokenAt(off)
	if i < 0 {
		if len(m.orig) == 0 {
			return 1
		}
		return charPos(m.sql, m.orig[len(m.orig)-1].end)
	}
	return charPos(m.sql, m.orig[i].start)
}

// tokenAt returns the index of the emitted token containing or following
// byte offset off, or -1 when off is at or past the end of the text.
func (m *SourceMap) tokenAt(off int) int {
	if off >= len(m.text) || len(m.offs) == 0 {
		return -1
	}
	i := sort.SearchInts(m.offs, off+1) - 1 // last token starting at or before off
	if i < 0 {
		return 0
	}
	if off < m.offs[i]+m.lens[i] {
		return i
	}
	if i+1 < len(m.offs) {
		return i + 1
	}
	return -1
}
