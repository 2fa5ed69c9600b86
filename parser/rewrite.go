package parser

import (
	"strconv"
	"strings"

	tp "github.com/pingcap/tidb/pkg/parser"
)

// This file is the PostgreSQL front: it rewrites the tokens of a SELECT or
// INSERT into text the TiDB grammar accepts, keeping for every emitted
// token the original token it stands for (see SourceMap).
//
// The tokens are first grouped into a tree by parentheses. Each sequence is
// then rewritten bottom-up in passes, mirroring PostgreSQL's operator
// precedence:
//
//  1. primaries: $n, INTERVAL literals, typed literals, TRUE/FALSE, CAST(x AS t), x::t,
//     EXTRACT, SUBSTRING … FOR, SESSION(…), OPERATOR(pg_catalog.op),
//     COLLATE, ISNULL/NOTNULL, IS [NOT] UNKNOWN, agg(…) FILTER (WHERE …).
//     Function calls, dotted names, parenthesised expressions and CASE …
//     END become single nodes, so an operand is always one node plus its
//     prefix operators.
//  2. ^ (PostgreSQL's power, binding tighter than * and /) → power(a, b).
//  3. the level of PostgreSQL's "other" operators, left to right:
//     || → concat(a, b), ~ → REGEXP, !~ → NOT REGEXP, ~* → spate_regexp_i,
//     !~* → NOT spate_regexp_i, ~~ / !~~ / ~~* / !~~* → [NOT] [I]LIKE,
//     & | << >> # (# → ^, TiDB's XOR) with parenthesised operands.
//  4. IS [NOT] DISTINCT FROM → <=> (and IS FALSE).
//
// Finally unquoted identifiers that TiDB reserves but PostgreSQL does not
// (key, index, rank, rows, values, …) are double-quoted where they stand
// for a name.

// Precedence levels, PostgreSQL's, highest binds tightest.
const (
	levelNone    = -100
	levelOr      = -2
	levelAnd     = -1
	levelNot     = 0
	levelIs      = 1
	levelCompare = 2
	levelLike    = 3 // LIKE ILIKE IN BETWEEN SIMILAR
	levelOther   = 4 // || ~ & | << >> and any other operator
	levelAdd     = 5
	levelMul     = 6
	levelPow     = 7
)

type nodeKind uint8

const (
	nLeaf  nodeKind = iota // one token
	nGroup                 // ( kids )
	nCall                  // name + group [+ FILTER/OVER parts]; kids in order
	nRef                   // dotted name a.b.c; kids in order
	nCase                  // CASE … END; kids in order
)

// node is a token or a composite. Synthetic leaves (made by the rewriter)
// carry their output text and the original token they stand for.
type node struct {
	kind        nodeKind
	tok         token
	text        string // synthetic leaves: output text
	synth       bool
	kids        []*node
	open, close *node // nGroup: parenthesis leaves; close is nil when unbalanced
}

func leaf(t token) *node { return &node{kind: nLeaf, tok: t} }

// synthLeaf is a synthetic leaf of the given kind; its tok keeps the
// position of at (for error positions) but takes kind and text as its
// value, so that the passes classify it like a written token.
func synthLeaf(kind tokKind, text string, at token) *node {
	t := at
	t.kind, t.val = kind, text
	return &node{kind: nLeaf, tok: t, text: text, synth: true}
}

func synthPunct(p string, at token) *node { return synthLeaf(tPunct, p, at) }

func synthNumber(n string, at token) *node { return synthLeaf(tNumber, n, at) }

func synthString(s string, at token) *node {
	n := synthLeaf(tString, sqlString(s), at)
	n.tok.val = s
	return n
}

// synthOp is a synthetic operator leaf.
func synthOp(op string, at token) *node { return synthLeaf(tOp, op, at) }

// synthWord is a synthetic keyword or function-name leaf (not, regexp, is,
// false, spate_cast, …).
func synthWord(w string, at token) *node { return synthLeaf(tIdent, w, at) }

func synthGroup(at token, kids ...*node) *node {
	return &node{kind: nGroup, open: synthPunct("(", at), close: synthPunct(")", at), kids: kids}
}

func mkCall(name string, at token, args ...*node) *node {
	return &node{kind: nCall, kids: []*node{synthWord(name, at), synthGroup(at, args...)}}
}

func (n *node) isWord(w string) bool  { return n != nil && n.kind == nLeaf && n.tok.isWord(w) }
func (n *node) isPunct(p string) bool { return n != nil && n.kind == nLeaf && n.tok.isPunct(p) }
func (n *node) isOp(o string) bool    { return n != nil && n.kind == nLeaf && n.tok.isOp(o) }
func (n *node) isKind(k tokKind) bool { return n != nil && n.kind == nLeaf && n.tok.kind == k }

// buildTree groups tokens by parentheses. A stray ')' stays a leaf and an
// unclosed '(' gets no close leaf; TiDB then reports the error at the right
// place.
func buildTree(toks []token) []*node {
	var stack [][]*node
	var opens []*node
	cur := []*node{}
	for _, t := range toks {
		switch {
		case t.isPunct("("):
			g := &node{kind: nGroup, open: leaf(t)}
			opens = append(opens, g)
			stack = append(stack, cur)
			cur = []*node{}
		case t.isPunct(")") && len(opens) > 0:
			g := opens[len(opens)-1]
			opens = opens[:len(opens)-1]
			g.kids, g.close = cur, leaf(t)
			cur = append(stack[len(stack)-1], g)
			stack = stack[:len(stack)-1]
		default:
			cur = append(cur, leaf(t))
		}
	}
	for len(opens) > 0 {
		g := opens[len(opens)-1]
		opens = opens[:len(opens)-1]
		g.kids = cur
		cur = append(stack[len(stack)-1], g)
		stack = stack[:len(stack)-1]
	}
	return cur
}

// flattenTokens appends the original tokens of raw (unrewritten) nodes.
func flattenTokens(dst []token, nodes []*node) []token {
	for _, n := range nodes {
		switch n.kind {
		case nGroup:
			dst = append(dst, n.open.tok)
			dst = flattenTokens(dst, n.kids)
			if n.close != nil {
				dst = append(dst, n.close.tok)
			}
		case nLeaf:
			dst = append(dst, n.tok)
		default:
			dst = flattenTokens(dst, n.kids)
		}
	}
	return dst
}

// nonOperandWords are keywords that never stand for a value, so they end
// operand scans and are not function names before '('.
var nonOperandWords = setOf(`select from where group order by having limit offset and or not is in
	like ilike between case when then else end as on using join inner left right full outer cross
	natural union except intersect all distinct any some with values into set asc desc similar regexp
	rlike div mod xor over filter window returning lateral for fetch collate isnull notnull to
	symmetric asymmetric partition exists recursive only rows range groups interval`)

// callExcluded are words that are not function names even when followed by '('.
var callExcluded = setOf(`select from where group order by having limit offset and or not is in
	like ilike between case when then else end as on using join inner outer cross natural union except
	intersect all distinct any some with values into set asc desc escape similar regexp rlike div xor
	over filter window returning lateral for fetch collate to exists recursive only partition rows range
	groups interval`)

func setOf(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// isPrimary reports whether a rewritten node is a complete operand.
func isPrimary(n *node) bool {
	if n == nil {
		return false
	}
	switch n.kind {
	case nGroup, nCall, nRef, nCase:
		return true
	}
	switch n.tok.kind {
	case tString, tNumber, tBitString, tQIdent:
		return true
	case tIdent:
		if n.synth {
			return n.tok.val == "null"
		}
		return !nonOperandWords[n.tok.val]
	}
	return false
}

// rewriter holds the state of one statement's rewrite.
type rewriter struct {
	sql string
	// caseEnds remembers, for each CASE seen, its END and how far after
	// it that END is, so that nested CASEs are matched in one scan
	// instead of one scan per level.
	caseEnds map[*node]caseEnd
}

type caseEnd struct {
	end  *node
	dist int
}

// rewriteSeq runs all passes on one parenthesis level.
func (r *rewriter) rewriteSeq(in []*node) ([]*node, error) {
	out, err := r.primaries(in)
	if err != nil {
		return nil, err
	}
	out = rewritePower(out)
	out = rewriteOther(out)
	out = rewriteDistinct(out)
	return out, nil
}

// primaries is pass 1.
func (r *rewriter) primaries(in []*node) ([]*node, error) {
	// Not sized by len(in): in may hold a nested level's every node (CASE … END),
	// and sizing each level by it made deep nesting quadratic.
	var out []*node
	at := func(k int) *node {
		if k < len(in) {
			return in[k]
		}
		return nil
	}
	last := func() *node {
		if len(out) > 0 {
			return out[len(out)-1]
		}
		return nil
	}
	// sawSelect and inFrom track a FROM list at this level, where a
	// function call is a table function.
	sawSelect, inFrom := false, false
	for i := 0; i < len(in); i++ {
		n := in[i]
		next := at(i + 1)
		if n.kind == nGroup {
			kids, err := r.rewriteSeq(n.kids)
			if err != nil {
				return nil, err
			}
			out = append(out, &node{kind: nGroup, open: n.open, close: n.close, kids: kids})
			continue
		}
		t := n.tok
		switch {
		case t.kind == tIdent && t.val == "select":
			sawSelect = true
		case t.kind == tIdent && (t.val == "from" || t.val == "join"):
			inFrom = sawSelect
		case t.kind == tIdent && clauseEnds[t.val]:
			inFrom = false
		}
		switch {
		case t.isPunct("[") && isPrimary(last()):
			// x[i] → spate_subscript(x, i)
			if j := matchBracket(in, i); j > 0 {
				idx, err := r.rewriteSeq(in[i+1 : j])
				if err != nil {
					return nil, err
				}
				args := append([]*node{last(), synthPunct(",", t)}, idx...)
				out[len(out)-1] = mkCall("spate_subscript", t, args...)
				i = j
				continue
			}
		case t.isPunct(".") && last() != nil && last().kind == nGroup && next != nil && next.kind == nLeaf && next.tok.isName():
			// (x).field → spate_field(x, 'field')
			out[len(out)-1] = mkCall("spate_field", t, last(), synthPunct(",", t), synthString(next.tok.val, next.tok))
			i++
			continue
		case t.kind == tIdent && t.val == "array" && next != nil && next.kind == nGroup && len(next.kids) > 0 && next.kids[0].isWord("select"):
			// ARRAY(SELECT …) → spate_array((SELECT …))
			kids, err := r.rewriteSeq(next.kids)
			if err != nil {
				return nil, err
			}
			out = append(out, mkCall("spate_array", t, &node{kind: nGroup, open: next.open, close: next.close, kids: kids}))
			i++
			continue
		case t.kind == tIdent && (t.val == "any" || t.val == "some" || t.val == "all") && next != nil && next.kind == nGroup &&
			!(len(next.kids) > 0 && (next.kids[0].isWord("select") || next.kids[0].isWord("with") || next.kids[0].isWord("values"))) &&
			last() != nil && last().kind == nLeaf && last().tok.kind == tOp:
			// x op ANY (array) → x op spate_any(array)
			kids, err := r.rewriteSeq(next.kids)
			if err != nil {
				return nil, err
			}
			name := "spate_any"
			if t.val == "all" {
				name = "spate_all"
			}
			out = append(out, mkCall(name, t, kids...))
			i++
			continue
		}
		switch {
		case t.kind == tParam:
			if last().isWord("limit") || last().isWord("offset") {
				// TiDB takes only ? here; SourceMap.Param recovers n.
				out = append(out, &node{kind: nLeaf, tok: t, text: "?", synth: true})
				continue
			}
			out = append(out, mkCall("spate_param", t, synthNumber(t.val, t)))
			continue
		case t.isPunct("::"):
			if isPrimary(last()) {
				if typ, k := castType(in[i+1:]); k > 0 {
					out[len(out)-1] = mkCall("spate_cast", t, last(), synthPunct(",", t), synthString(typ, t))
					i += k
					continue
				}
			}
		case t.kind != tIdent:
		case t.val == "interval":
			nd, k, err := r.interval(in[i:])
			if err != nil {
				return nil, err
			}
			if nd != nil {
				out = append(out, nd)
				i += k - 1
				continue
			}
		case (t.val == "true" || t.val == "false") && !last().isWord("is") &&
			!(last().isWord("not") && len(out) > 1 && out[len(out)-2].isWord("is")):
			// TiDB reads TRUE as the integer 1; keep it a boolean.
			out = append(out, mkCall("spate_cast", t, synthString(t.val, t), synthPunct(",", t), synthString("boolean", t)))
			continue
		case t.val == "case":
			if j := r.matchEnd(in, i); j > 0 {
				kids, err := r.rewriteSeq(in[i+1 : j])
				if err != nil {
					return nil, err
				}
				c := &node{kind: nCase, kids: append(append([]*node{n}, kids...), in[j])}
				out = append(out, c)
				i = j
				continue
			}
		case t.val == "collate" && isPrimary(last()) && next != nil && next.kind == nLeaf && next.tok.isName():
			// Spate has no collations: COLLATE name is dropped.
			i++
			for i+2 < len(in) && in[i+1].isPunct(".") && in[i+2].kind == nLeaf && in[i+2].tok.isName() {
				i += 2
			}
			continue
		case (t.val == "isnull" || t.val == "notnull") && (next == nil || next.kind != nGroup) && isPrimary(last()):
			out = append(out, synthWord("is", t))
			if t.val == "notnull" {
				out = append(out, synthWord("not", t))
			}
			out = append(out, synthWord("null", t))
			continue
		case t.val == "unknown" && (last().isWord("is") || last().isWord("not") && len(out) > 1 && out[len(out)-2].isWord("is")):
			out = append(out, synthWord("null", t))
			continue
		case t.val == "operator" && next != nil && next.kind == nGroup:
			if op := operatorName(next.kids); op != "" {
				out = append(out, synthOp(op, t))
				i++
				continue
			}
		}
		if n.kind == nLeaf && t.kind == tIdent && typedLiteralTypes[t.val] && !isPrimary(last()) {
			toks := flattenTokens(nil, in[i:min(len(in), i+8)])
			if k := typeExtent(toks); k > 0 {
				if nk := nodesForTokens(in[i:], k); nk > 0 && i+nk < len(in) && in[i+nk].isKind(tString) {
					typ, ok := normalizeTypeTokens(toks[:k])
					if ok {
						s := in[i+nk]
						out = append(out, mkCall("spate_cast", t, s, synthPunct(",", t), synthString(typ, t)))
						i += nk
						continue
					}
				}
			}
		}
		// Dotted names and function calls.
		if t.isName() {
			j := i + 1
			parts := []*node{n}
			for j+1 < len(in) && in[j].isPunct(".") && in[j+1].kind == nLeaf && (in[j+1].tok.isName() || in[j+1].isOp("*")) {
				parts = append(parts, in[j], in[j+1])
				j += 2
			}
			var head *node
			if len(parts) > 1 {
				head = &node{kind: nRef, kids: parts}
			} else {
				head = n
			}
			g := at(j)
			// INSERT INTO t (cols) is a table, not a call.
			if g != nil && g.kind == nGroup && !last().isWord("into") && (len(parts) > 1 || t.kind == tQIdent || !callExcluded[t.val]) {
				fromItem := inFrom && (last().isWord("from") || last().isWord("join") || last().isPunct(","))
				if fromItem && len(parts) == 1 && t.isWord("table") {
					return nil, r.windowTVF(t, g)
				}
				c, k, err := r.call(head, in[j:])
				if err != nil {
					return nil, err
				}
				i = j + k - 1
				if fromItem {
					// A table function f(…) [AS] alias in FROM reads as
					// (SELECT f(…) AS alias) alias.
					out = append(out, r.tableFunction(c, in, &i))
					continue
				}
				out = append(out, c)
				continue
			}
			if len(parts) > 1 {
				out = append(out, head)
				i = j - 1
				continue
			}
		}
		// A keyword PostgreSQL lets users take as a name (range, rows, values…)
		// standing where an operand starts is a name: make it one node.
		if t.kind == tIdent && nonOperandWords[t.val] && pgNameWords[t.val] && expectsOperand(last()) &&
			!(next != nil && (next.kind == nGroup || next.isWord("by"))) {
			out = append(out, &node{kind: nRef, kids: []*node{n}})
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

// clauseEnds are the words that end a FROM list.
var clauseEnds = setOf(`where group order having limit offset union except intersect on window using fetch for`)

// matchBracket returns the index of the ']' that closes in[i] ('['), or -1.
func matchBracket(in []*node, i int) int {
	depth := 0
	for j := i; j < len(in); j++ {
		switch {
		case in[j].isPunct("["):
			depth++
		case in[j].isPunct("]"):
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

// windowTVF is the error for FROM TABLE(…) at the word TABLE: Flink's
// window table functions, TABLE(TUMBLE(TABLE s, DESCRIPTOR(t), size)),
// are windows in GROUP BY here. g is the group after TABLE.
func (r *rewriter) windowTVF(at token, g *node) error {
	fn, rel, col := "", "<stream>", "<event time>"
	if len(g.kids) >= 2 && g.kids[0].isKind(tIdent) && g.kids[1].kind == nGroup {
		fn = g.kids[0].tok.val
		args := g.kids[1].kids
		for i := 0; i+1 < len(args); i++ {
			switch a, b := args[i], args[i+1]; {
			case a.isWord("table") && b.kind == nLeaf && b.tok.isName():
				rel = r.sql[b.tok.start:b.tok.end]
			case a.isWord("descriptor") && b.kind == nGroup && len(b.kids) == 1 && b.kids[0].kind == nLeaf && b.kids[0].tok.isName():
				col = r.sql[b.kids[0].tok.start:b.kids[0].tok.end]
			}
		}
	}
	var window string
	switch fn {
	case "tumble":
		window = "TUMBLE(" + col + ", size)"
	case "hop":
		window = "HOP(" + col + ", slide, size)"
	case "session":
		window = "SESSION(" + col + ", gap)"
	default:
		window = "TUMBLE(" + col + ", size) or HOP(" + col + ", slide, size)"
	}
	return &Error{Code: CodeFeatureNotSupported, Position: charPos(r.sql, at.start),
		Message: "window table functions are not supported; window in GROUP BY instead: SELECT …, window_start, window_end, COUNT(*) FROM " + rel + " GROUP BY …, " + window}
}

// tableFunction wraps the call c, a FROM item, as a derived table
// (SELECT c AS alias) alias, taking the alias that follows in[*i] (the
// function's name when there is none). *i moves past the alias.
func (r *rewriter) tableFunction(c *node, in []*node, i *int) *node {
	name := c.kids[0]
	for name.kind == nRef {
		name = name.kids[len(name.kids)-1]
	}
	at := name.tok
	alias := synthWord(name.tok.val, at)
	k := *i + 1
	if k < len(in) && in[k].isWord("as") {
		k++
	}
	colName := alias
	if k < len(in) && in[k].kind == nLeaf && in[k].tok.isName() && !nonOperandWords[in[k].tok.val] && !in[k].isWord("left") && !in[k].isWord("right") {
		alias, colName = in[k], in[k]
		*i = k
		// f(…) AS alias(column)
		if g := k + 1; g < len(in) && in[g].kind == nGroup && len(in[g].kids) == 1 && in[g].kids[0].kind == nLeaf && in[g].kids[0].tok.isName() {
			colName = in[g].kids[0]
			*i = g
		}
	}
	sel := &node{kind: nGroup, open: synthPunct("(", at), close: synthPunct(")", at),
		kids: []*node{synthWord("select", at), c, synthWord("as", at), colName}}
	return &node{kind: nRef, kids: []*node{sel, alias}}
}

// expectsOperand reports whether an operand can start after prev (nil: at
// the start of a parenthesised sequence).
func expectsOperand(prev *node) bool {
	if prev == nil {
		return true
	}
	if prev.kind != nLeaf {
		return false
	}
	switch prev.tok.kind {
	case tPunct:
		return prev.tok.val == "," || prev.tok.val == "("
	case tOp:
		return true
	case tIdent:
		return operandBefore[prev.tok.val]
	}
	return false
}

// typedLiteralTypes are the type names that may start a typed literal
// such as timestamp '2024-01-01' or int '5'.
var typedLiteralTypes = setOf(`date time timestamp timestamptz timetz int integer int2 int4 int8 bigint
	smallint real float float4 float8 double numeric decimal text varchar char character bool boolean
	json jsonb uuid bytea name regclass oid`)

// nodesForTokens converts a count of flattened tokens back to a count of
// nodes, or returns 0 when the tokens end inside a group.
func nodesForTokens(nodes []*node, k int) int {
	for i := range nodes {
		if k == 0 {
			return i
		}
		c := len(flattenTokens(nil, nodes[i:i+1]))
		if c > k {
			return 0
		}
		k -= c
	}
	if k == 0 {
		return len(nodes)
	}
	return 0
}

// castType reads the type after '::'. It returns the normalised name and
// the number of nodes used, 0 when no type follows.
func castType(rest []*node) (string, int) {
	toks := flattenTokens(nil, rest[:min(len(rest), 12)])
	k := typeExtent(toks)
	if k == 0 {
		return "", 0
	}
	nk := nodesForTokens(rest, k)
	if nk == 0 {
		return "", 0
	}
	typ, ok := normalizeTypeTokens(toks[:k])
	if !ok {
		return "", 0
	}
	return typ, nk
}

// matchEnd finds the END that closes the CASE at in[i], or -1. One scan
// records the ENDs of every CASE nested in it too; a recorded END is used
// when it is still at the same distance (in is a piece of the same level).
func (r *rewriter) matchEnd(in []*node, i int) int {
	if m, ok := r.caseEnds[in[i]]; ok && i+m.dist < len(in) && in[i+m.dist] == m.end {
		return i + m.dist
	}
	if r.caseEnds == nil {
		r.caseEnds = map[*node]caseEnd{}
	}
	var open []int
	for j := i; j < len(in); j++ {
		switch {
		case in[j].isWord("case"):
			open = append(open, j)
		case in[j].isWord("end") && len(open) > 0:
			k := open[len(open)-1]
			open = open[:len(open)-1]
			r.caseEnds[in[k]] = caseEnd{end: in[j], dist: j - k}
			if len(open) == 0 {
				return j
			}
		}
	}
	return -1
}

// operatorName reads the inside of OPERATOR(pg_catalog.~) or OPERATOR(~).
func operatorName(kids []*node) string {
	if len(kids) == 3 && kids[0].isWord("pg_catalog") && kids[1].isPunct(".") {
		kids = kids[2:]
	}
	if len(kids) == 1 && kids[0].isKind(tOp) {
		return kids[0].tok.val
	}
	return ""
}

// interval rewrites an INTERVAL literal at in[0] to spate_interval(µs). It
// returns a nil node when in[0] is not the start of an interval literal
// (then it is a name, such as a column called interval).
func (r *rewriter) interval(in []*node) (*node, int, error) {
	kw := in[0].tok
	k := 1
	// INTERVAL (p) '…': the precision is ignored.
	if k+1 < len(in) && in[k].kind == nGroup && len(in[k].kids) == 1 && in[k].kids[0].isKind(tNumber) && in[k+1].isKind(tString) {
		k++
	}
	if k >= len(in) || in[k].kind != nLeaf {
		return nil, 0, nil
	}
	lit := in[k].tok
	qualifier := func(j int) (int64, int) {
		if j < len(in) && in[j].kind == nLeaf && in[j].tok.kind == tIdent {
			if per, ok := intervalQualifiers[in[j].tok.val]; ok {
				// A range qualifier (HOUR TO MINUTE): the text decides.
				if j+2 < len(in) && in[j+1].isWord("to") && in[j+2].kind == nLeaf {
					if _, ok := intervalQualifiers[in[j+2].tok.val]; ok {
						return 0, 3
					}
				}
				return per, 1
			}
		}
		return 0, 0
	}
	var us int64
	var err error
	switch {
	case lit.kind == tString:
		per, qn := qualifier(k + 1)
		switch {
		case per > 0 && isPlainNumber(lit.val):
			us, err = scaleInterval(lit.val, per)
		case per > 0:
			us, err = parseIntervalText(lit.val)
			us = us / per * per
		default:
			us, err = parseIntervalText(lit.val)
		}
		k += 1 + qn
	case lit.kind == tNumber || (lit.kind == tOp && (lit.val == "-" || lit.val == "+") && k+1 < len(in) && in[k+1].isKind(tNumber)):
		num := lit.val
		j := k + 1
		if lit.kind == tOp {
			num += in[j].tok.val
			j++
		}
		per, qn := qualifier(j)
		if per == 0 {
			return nil, 0, nil
		}
		us, err = scaleInterval(num, per)
		k = j + qn
	default:
		return nil, 0, nil
	}
	if err != nil {
		text := r.sql[lit.start:lit.end]
		if lit.kind == tString {
			text = lit.val
		}
		if err == errIntervalRange {
			return nil, 0, &Error{Code: CodeIntervalFieldOverflow, Message: `interval field value out of range: "` + text + `"`, Position: charPos(r.sql, lit.start)}
		}
		return nil, 0, &Error{Code: CodeInvalidDatetimeFormat, Message: `invalid input syntax for type interval: "` + text + `"`, Position: charPos(r.sql, lit.start)}
	}
	return mkCall("spate_interval", kw, synthNumber(strconv.FormatInt(us, 10), kw)), k, nil
}

// isPlainNumber reports whether s is a decimal number with an optional sign.
func isPlainNumber(s string) bool {
	s = strings.TrimSpace(s)
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch {
		case isDigit(s[i]):
			digits++
		case s[i] == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// call builds a function-call node from its name and the nodes from its
// argument group on (rest[0] is the group). It applies the function-specific
// rewrites and takes a trailing FILTER (WHERE …) and OVER … along. It
// returns the number of nodes of rest used.
func (r *rewriter) call(head *node, rest []*node) (*node, int, error) {
	g := rest[0]
	if head.kind == nRef && len(head.kids) == 3 && head.kids[0].isWord("pg_catalog") {
		head = head.kids[2] // pg_catalog.f(…) is f(…)
	}
	name := ""
	if head.kind == nLeaf && head.tok.kind == tIdent {
		name = head.tok.val
	}
	var args []*node
	var err error
	switch name {
	case "cast":
		if as := topLevelWord(g.kids, "as"); as > 0 && as < len(g.kids)-1 {
			typ, ok := normalizeTypeTokens(flattenTokens(nil, g.kids[as+1:]))
			if ok {
				expr, err := r.rewriteSeq(g.kids[:as])
				if err != nil {
					return nil, 0, err
				}
				at := head.tok
				args = append(expr, synthPunct(",", at), synthString(typ, at))
				head = synthWord("spate_cast", at)
				g = &node{kind: nGroup, open: g.open, close: g.close}
			}
		}
	case "extract":
		// extract(field FROM x) → date_part('field', x)
		if len(g.kids) >= 3 && g.kids[0].kind == nLeaf && (g.kids[0].tok.isName() || g.kids[0].tok.kind == tString) && g.kids[1].isWord("from") {
			expr, err := r.rewriteSeq(g.kids[2:])
			if err != nil {
				return nil, 0, err
			}
			f := g.kids[0].tok
			field := strings.ToLower(f.val)
			args = append([]*node{synthString(field, f), synthPunct(",", f)}, expr...)
			head = synthWord("date_part", head.tok)
			g = &node{kind: nGroup, open: g.open, close: g.close}
		}
	case "substring":
		// substring(s FOR n) → substring(s FROM 1 FOR n)
		if f := topLevelWord(g.kids, "for"); f > 0 && topLevelWord(g.kids, "from") < 0 {
			kids := append([]*node{}, g.kids[:f]...)
			kids = append(kids, synthWord("from", g.kids[f].tok), synthNumber("1", g.kids[f].tok))
			kids = append(kids, g.kids[f:]...)
			g = &node{kind: nGroup, open: g.open, close: g.close, kids: kids}
		}
	case "session":
		head = synthWord("spate_session", head.tok)
	}
	if args == nil {
		if args, err = r.rewriteSeq(g.kids); err != nil {
			return nil, 0, err
		}
	}
	used := 1
	// agg(args) FILTER (WHERE cond) → agg(CASE WHEN cond THEN arg END)
	if len(rest) > 2 && rest[1].isWord("filter") && rest[2].kind == nGroup && len(rest[2].kids) > 1 && rest[2].kids[0].isWord("where") {
		cond, err := r.rewriteSeq(rest[2].kids[1:])
		if err != nil {
			return nil, 0, err
		}
		args = filterArgs(args, cond, rest[1].tok)
		used += 2
	}
	c := &node{kind: nCall, kids: []*node{head, {kind: nGroup, open: g.open, close: g.close, kids: args}}}
	// OVER (window) or OVER name.
	if len(rest) > used+1 && rest[used].isWord("over") {
		w := rest[used+1]
		if w.kind == nGroup {
			kids, err := r.rewriteSeq(w.kids)
			if err != nil {
				return nil, 0, err
			}
			c.kids = append(c.kids, rest[used], &node{kind: nGroup, open: w.open, close: w.close, kids: kids})
			used += 2
		} else if w.kind == nLeaf && w.tok.isName() {
			c.kids = append(c.kids, rest[used], w)
			used += 2
		}
	}
	return c, used, nil
}

// filterArgs moves a FILTER condition into the first aggregate argument:
// count(*) → count(CASE WHEN cond THEN 1 END), agg([DISTINCT] x, …) →
// agg([DISTINCT] CASE WHEN cond THEN x END, …). Aggregates ignore NULLs,
// so the result is the same.
func filterArgs(args, cond []*node, at token) []*node {
	wrap := func(val []*node) *node {
		kids := []*node{synthWord("case", at), synthWord("when", at)}
		kids = append(kids, cond...)
		kids = append(kids, synthWord("then", at))
		kids = append(kids, val...)
		kids = append(kids, synthWord("end", at))
		return &node{kind: nCase, kids: kids}
	}
	if len(args) == 1 && args[0].isOp("*") {
		return []*node{wrap([]*node{synthNumber("1", at)})}
	}
	start := 0
	if len(args) > 0 && (args[0].isWord("distinct") || args[0].isWord("all")) {
		start = 1
	}
	end := start
	for end < len(args) && !args[end].isPunct(",") {
		end++
	}
	if end == start {
		return args
	}
	res := append([]*node{}, args[:start]...)
	res = append(res, wrap(args[start:end]))
	return append(res, args[end:]...)
}

// topLevelWord returns the index of the first word w in nodes, or -1.
func topLevelWord(nodes []*node, w string) int {
	for i, n := range nodes {
		if n.isWord(w) {
			return i
		}
	}
	return -1
}

// sqlString renders s as a standard SQL string literal.
func sqlString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// ---- precedence scans ----

// opLevel returns the binary precedence of the operator at nodes[k] and how
// many nodes it spans going forward (NOT LIKE, SIMILAR TO, IS DISTINCT
// FROM…), or levelNone. nodes[k] must follow a complete operand.
func opLevel(nodes []*node, k int) (int, int) {
	n := nodes[k]
	if n.kind != nLeaf {
		return levelNone, 0
	}
	t := n.tok
	if t.kind == tOp {
		switch t.val {
		case "^":
			if n.synth {
				return levelOther, 1 // TiDB's XOR, from #
			}
			return levelPow, 1
		case "*", "/", "%":
			return levelMul, 1
		case "+", "-":
			return levelAdd, 1
		case "=", "<", ">", "<=", ">=", "<>", "<=>":
			return levelCompare, 1
		}
		return levelOther, 1
	}
	if t.kind != tIdent {
		return levelNone, 0
	}
	word := func(j int, w string) bool { return j < len(nodes) && nodes[j].isWord(w) }
	switch t.val {
	case "like", "ilike", "in", "between", "escape":
		return levelLike, 1
	case "similar":
		if word(k+1, "to") {
			return levelLike, 2
		}
	case "not":
		if k+1 < len(nodes) {
			switch nodes[k+1].tok.val {
			case "like", "ilike", "in", "between":
				if nodes[k+1].kind == nLeaf {
					return levelLike, 2
				}
			case "regexp", "rlike":
				return levelOther, 2
			case "similar":
				if word(k+2, "to") {
					return levelLike, 3
				}
			}
		}
	case "regexp", "rlike":
		return levelOther, 1
	case "div", "mod":
		return levelMul, 1
	case "is":
		// IS [NOT] DISTINCT FROM is binary; IS [NOT] NULL etc. are postfix.
		j := k + 1
		if word(j, "not") {
			j++
		}
		if word(j, "distinct") && word(j+1, "from") {
			return levelIs, j + 2 - k
		}
	case "and":
		return levelAnd, 1
	case "or", "xor":
		return levelOr, 1
	}
	return levelNone, 0
}

// postfixIs returns the width of IS [NOT] NULL|TRUE|FALSE|UNKNOWN starting
// at nodes[k], or 0.
func postfixIs(nodes []*node, k int) int {
	if !nodes[k].isWord("is") {
		return 0
	}
	j := k + 1
	if j < len(nodes) && nodes[j].isWord("not") {
		j++
	}
	if j < len(nodes) && nodes[j].kind == nLeaf && nodes[j].tok.kind == tIdent {
		switch nodes[j].tok.val {
		case "null", "true", "false", "unknown":
			return j + 1 - k
		}
	}
	return 0
}

// isPrefixOp reports whether nodes[k] is a prefix + - or ~ (one not
// preceded by a complete operand).
func isPrefixOp(nodes []*node, k int) bool {
	n := nodes[k]
	if !(n.isOp("-") || n.isOp("+") || n.isOp("~")) {
		return false
	}
	return k == 0 || !endsOperand(nodes, k-1)
}

// endsOperand reports whether nodes[k] ends a complete operand.
func endsOperand(nodes []*node, k int) bool {
	if isPrimary(nodes[k]) {
		return true
	}
	// … IS [NOT] NULL / TRUE / FALSE
	if nodes[k].kind == nLeaf && nodes[k].tok.kind == tIdent {
		switch nodes[k].tok.val {
		case "null", "true", "false", "unknown":
			return true
		}
	}
	return false
}

// scanBack returns the start of the left operand of the binary operator at
// nodes[op] of precedence level (left associative, so operators of the
// same level belong to the operand), or -1.
func scanBack(nodes []*node, op, level int) int {
	k := op - 1
	for {
		if k < 0 {
			return -1
		}
		// Postfix IS [NOT] NULL etc. end here: skip back to its operand.
		if level <= levelIs && k >= 1 {
			if w := isBackPostfix(nodes, k); w > 0 {
				k -= w
				continue
			}
		}
		if !isPrimary(nodes[k]) {
			return -1
		}
		k--
		for k >= 0 && isPrefixOp(nodes, k) {
			k--
		}
		start := k + 1
		if k < 0 {
			return start
		}
		// Find a binary operator ending at k.
		found := false
		for w := 1; w <= 3 && k-w+1 >= 0; w++ {
			j := k - w + 1
			if j > 0 && !endsOperand(nodes, j-1) {
				continue
			}
			lv, width := opLevel(nodes, j)
			if width != w || lv == levelNone {
				continue
			}
			if lv < level {
				return start
			}
			k = j - 1
			found = true
			break
		}
		if found {
			continue
		}
		// x BETWEEN a AND b: the AND belongs to BETWEEN.
		if nodes[k].isWord("and") && level <= levelLike {
			if j := scanBack(nodes, k, levelLike+1); j > 0 {
				b := j - 1
				if nodes[b].isWord("symmetric") || nodes[b].isWord("asymmetric") {
					b--
				}
				if b >= 0 && nodes[b].isWord("between") {
					if b > 0 && nodes[b-1].isWord("not") {
						b--
					}
					k = b - 1
					continue
				}
			}
		}
		return start
	}
}

// isBackPostfix returns the width of a postfix IS … operator ending at
// nodes[k], or 0.
func isBackPostfix(nodes []*node, k int) int {
	for w := 1; w <= 3; w++ {
		j := k - w + 1
		if j < 1 {
			break
		}
		if pw := postfixIs(nodes, j); pw == w && endsOperand(nodes, j-1) {
			return w
		}
	}
	return 0
}

// scanFwd returns the end (exclusive) of the right operand starting at
// nodes[start] of a binary operator of precedence level: it takes only
// operators that bind tighter. It returns -1 when no operand starts there.
func scanFwd(nodes []*node, start, level int) int {
	k := start
	for {
		for k < len(nodes) && (nodes[k].isOp("-") || nodes[k].isOp("+") || nodes[k].isOp("~")) {
			k++
		}
		if k >= len(nodes) || !isPrimary(nodes[k]) {
			return -1
		}
		k++
	postfix:
		for {
			if k >= len(nodes) {
				return k
			}
			if w := postfixIs(nodes, k); w > 0 {
				if levelIs > level {
					k += w
					continue
				}
				return k
			}
			lv, w := opLevel(nodes, k)
			if lv == levelNone || lv <= level {
				return k
			}
			between := nodes[k+w-1].isWord("between")
			k += w
			if between {
				if k < len(nodes) && (nodes[k].isWord("symmetric") || nodes[k].isWord("asymmetric")) {
					k++
				}
				e := scanFwd(nodes, k, levelLike)
				if e < 0 || e >= len(nodes) || !nodes[e].isWord("and") {
					return -1
				}
				if k = scanFwd(nodes, e+1, levelLike); k < 0 {
					return -1
				}
				continue postfix
			}
			break
		}
	}
}

// levelAt is the precedence of the operator node next to an expression
// being replaced (levelNone for boundaries such as ',', '(' or clause
// keywords).
func levelAt(nodes []*node, k int, before bool) int {
	if k < 0 || k >= len(nodes) {
		return levelNone
	}
	n := nodes[k]
	if n.kind != nLeaf {
		return levelNone
	}
	if n.tok.kind == tOp {
		return levelOther // any symbol operator binds tighter than NOT and IS
	}
	switch n.tok.val {
	case "like", "ilike", "in", "between", "escape", "similar", "to", "regexp", "rlike", "div", "mod":
		return levelLike
	case "is", "isnull", "notnull":
		return levelIs
	case "not":
		if before {
			return levelNot
		}
		return levelLike // NOT LIKE …
	case "and":
		return levelAnd
	case "or", "xor":
		return levelOr
	}
	return levelNone
}

// The passes below read nodes left to right and build out. At a binary
// operator, its left operand is the tail of out (found with scanBack) and
// its right operand the following input nodes (found with scanFwd); the
// operator and both operands are replaced by one node, so a chain of n
// operators costs O(n).

// rewritePower is pass 2: a ^ b → power(a, b).
func rewritePower(nodes []*node) []*node {
	out := make([]*node, 0, len(nodes))
	for i := 0; i < len(nodes); i++ {
		n := nodes[i]
		if n.isOp("^") && !n.synth && len(out) > 0 && endsOperand(out, len(out)-1) {
			ls, re := scanBack(out, len(out), levelPow), scanFwd(nodes, i+1, levelPow)
			if ls >= 0 && re >= 0 {
				args := append(append(append([]*node{}, out[ls:]...), synthPunct(",", n.tok)), nodes[i+1:re]...)
				out = append(out[:ls], mkCall("power", n.tok, args...))
				i = re - 1
				continue
			}
		}
		out = append(out, n)
	}
	return out
}

// otherSubst maps the operators of pass 3 that are plain substitutions.
var otherSubst = map[string][]string{
	"~":    {"regexp"},
	"!~":   {"not", "regexp"},
	"~~":   {"like"},
	"!~~":  {"not", "like"},
	"~~*":  {"ilike"},
	"!~~*": {"not", "ilike"},
}

// rewriteOther is pass 3, PostgreSQL's "any other operator" level.
func rewriteOther(nodes []*node) []*node {
	out := make([]*node, 0, len(nodes))
	for i := 0; i < len(nodes); i++ {
		n := nodes[i]
		if n.kind != nLeaf || n.tok.kind != tOp || len(out) == 0 || !endsOperand(out, len(out)-1) {
			out = append(out, n)
			continue
		}
		t := n.tok
		if words, ok := otherSubst[t.val]; ok {
			for _, w := range words {
				out = append(out, synthWord(w, t))
			}
			continue
		}
		if t.val != "||" && t.val != "~*" && t.val != "!~*" && !bitwiseOps[t.val] {
			out = append(out, n)
			continue
		}
		ls, re := scanBack(out, len(out), levelOther), scanFwd(nodes, i+1, levelOther)
		if ls < 0 || re < 0 {
			out = append(out, n)
			continue
		}
		args := append(append(append([]*node{}, out[ls:]...), synthPunct(",", t)), nodes[i+1:re]...)
		var repl []*node
		switch t.val {
		case "||":
			repl = []*node{mkCall("spate_concat", t, args...)}
		case "~*":
			repl = []*node{mkCall("spate_regexp_i", t, args...)}
		case "&", "|", "<<", ">>", "#":
			// TiDB gives each of these its own precedence level (and ^,
			// its XOR, binds tightest); parenthesise compound operands so
			// that PostgreSQL's single left-associative level survives.
			op := t.val
			if op == "#" {
				op = "^"
			}
			repl = append(append(parenIfCompound(out[ls:], t), synthOp(op, t)), parenIfCompound(nodes[i+1:re], t)...)
		default:
			repl = []*node{synthWord("not", t), mkCall("spate_regexp_i", t, args...)}
			if levelAt(out, ls-1, true) > levelNot || levelAt(nodes, re, false) > levelNot {
				repl = []*node{synthGroup(t, repl...)}
			}
		}
		out = append(out[:ls], repl...)
		i = re - 1
	}
	return out
}

// bitwiseOps are PostgreSQL's bitwise operators; # is XOR.
var bitwiseOps = setOf(`& | << >> #`)

// parenIfCompound wraps nodes in parentheses unless they are one node.
func parenIfCompound(nodes []*node, at token) []*node {
	if len(nodes) == 1 {
		return []*node{nodes[0]}
	}
	return []*node{synthGroup(at, append([]*node{}, nodes...)...)}
}

// rewriteDistinct is pass 4: a IS NOT DISTINCT FROM b → a <=> b and
// a IS DISTINCT FROM b → a <=> b IS FALSE, with parentheses where TiDB's
// grammar needs them to keep PostgreSQL's meaning.
func rewriteDistinct(nodes []*node) []*node {
	out := make([]*node, 0, len(nodes))
	for i := 0; i < len(nodes); i++ {
		n := nodes[i]
		if !n.isWord("is") || len(out) == 0 || !endsOperand(out, len(out)-1) {
			out = append(out, n)
			continue
		}
		lv, w := opLevel(nodes, i)
		if lv != levelIs {
			out = append(out, n)
			continue
		}
		ls, re := scanBack(out, len(out), levelIs), scanFwd(nodes, i+w, levelIs)
		if ls < 0 || re < 0 {
			out = append(out, n)
			continue
		}
		t := n.tok
		left := parenIfLow(append([]*node{}, out[ls:]...), t)
		right := parenIfLow(nodes[i+w:re], t)
		repl := append(append(append([]*node{}, left...), synthOp("<=>", t)), right...)
		if w == 3 { // IS DISTINCT FROM; w == 4 is IS NOT DISTINCT FROM
			repl = append(repl, synthWord("is", t), synthWord("false", t))
			if levelAt(out, ls-1, true) >= levelIs || levelAt(nodes, re, false) >= levelIs {
				repl = []*node{synthGroup(t, repl...)}
			}
		}
		out = append(out[:ls], repl...)
		i = re - 1
	}
	return out
}

// parenIfLow wraps an operand of <=> in parentheses when it contains an
// operator binding no tighter than a comparison.
func parenIfLow(nodes []*node, at token) []*node {
	if len(nodes) < 2 {
		return nodes
	}
	between := false
	for k := 1; k < len(nodes); k++ {
		if !endsOperand(nodes, k-1) {
			continue
		}
		if nodes[k].isWord("between") {
			between = true
		} else if nodes[k].isWord("and") && between {
			between = false
			continue
		}
		if postfixIs(nodes, k) > 0 {
			return []*node{synthGroup(at, nodes...)}
		}
		if lv, _ := opLevel(nodes, k); lv != levelNone && lv <= levelCompare {
			return []*node{synthGroup(at, nodes...)}
		}
	}
	return nodes
}

// ---- output ----

// outTok is one emitted token: its text for TiDB and the original token it
// stands for.
type outTok struct {
	text  string
	tok   token
	synth bool
}

func flattenOut(dst []outTok, nodes []*node) []outTok {
	for _, n := range nodes {
		switch n.kind {
		case nGroup:
			dst = flattenOut(dst, []*node{n.open})
			dst = flattenOut(dst, n.kids)
			if n.close != nil {
				dst = flattenOut(dst, []*node{n.close})
			}
		case nLeaf:
			dst = append(dst, outTok{text: n.text, tok: n.tok, synth: n.synth})
		default:
			dst = flattenOut(dst, n.kids)
		}
	}
	return dst
}

// pgNameWords are words TiDB reserves that PostgreSQL lets users take as
// column or table names. Where they stand for a name they are emitted
// double-quoted.
var pgNameWords = setOf(`add alter bigint blob by call cascade change char character continue convert
	cume_dist cursor database databases dec day_hour day_microsecond day_minute day_second decimal delayed
	delete dense_rank describe distinctrow div double drop elseif enclosed escaped exit explain
	first_value float float4 float8 force fulltext generated groups high_priority hour_microsecond
	hour_minute hour_second if ignore index infile inout insert int int1 int2 int3 int4 int8 integer
	interval iterate key keys kill lag last_value lead leave linear lines load lock long longblob
	longtext low_priority match maxvalue mediumblob mediumint mediumtext middleint minute_microsecond
	minute_second mod no_write_to_binlog nth_value ntile numeric of optimize option optionally out
	outfile over partition percent_rank precision procedure range rank read real recursive release
	rename repeat replace require restrict revoke row rows row_number schema schemas second_microsecond set show
	smallint spatial sql sqlexception sqlstate sqlwarning sql_big_result sql_calc_found_rows
	sql_small_result ssl starting stored straight_join terminated tidb_current_tso tinyblob tinyint
	tinytext trigger unlock unsigned until update usage use utc_date utc_time utc_timestamp values
	varbinary varchar varcharacter varying virtual while write year_month zerofill`)

// tidbReserved is TiDB's reserved keyword list (lower case).
var tidbReserved = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range tp.Keywords {
		if k.Reserved {
			m[strings.ToLower(k.Word)] = true
		}
	}
	return m
}()

// operandBefore are words after which an expression or a name starts.
var operandBefore = setOf(`select where and or not by on when then else case between like ilike in
	having distinct all from join into set limit offset returning regexp rlike div mod using escape
	xor any some with`)

// aliasFollowers are the tokens that can follow an alias written without AS.
var aliasFollowers = setOf(`from where group order having limit offset join inner left right full
	cross natural on union except intersect window using`)

// render computes each token's text: literals in standard SQL form,
// identifiers folded (already) and quoted where needed.
func render(toks []outTok) {
	for i := range toks {
		t := &toks[i]
		if t.synth {
			continue
		}
		switch t.tok.kind {
		case tString:
			t.text = sqlString(t.tok.val)
		case tQIdent:
			t.text = quoteIdent(t.tok.val)
		case tIdent:
			t.text = t.tok.val
			var prev, next *outTok
			if i > 0 {
				prev = &toks[i-1]
			}
			if i+1 < len(toks) {
				next = &toks[i+1]
			}
			if needsQuotes(t.tok.val, prev, next) {
				t.text = quoteIdent(t.tok.val)
			}
		default:
			t.text = t.tok.val
		}
	}
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func (t *outTok) is(kind tokKind, val string) bool {
	return t != nil && t.tok.kind == kind && t.tok.val == val
}

// needsQuotes decides whether an unquoted word must be quoted for TiDB.
func needsQuotes(w string, prev, next *outTok) bool {
	if next.is(tPunct, "(") {
		// A function name, except INSERT INTO t (cols), where TiDB would
		// read some table names (now, extract…) as functions.
		return prev.is(tIdent, "into")
	}
	if prev.is(tPunct, ".") || prev.is(tIdent, "as") {
		return tidbReserved[w] || pgNameWords[w]
	}
	if !pgNameWords[w] {
		return false
	}
	if next.is(tIdent, "by") || w == "recursive" && prev.is(tIdent, "with") || w == "row" && prev.is(tIdent, "current") {
		return false
	}
	if prev == nil {
		return false
	}
	switch prev.tok.kind {
	case tPunct:
		if prev.tok.val == "(" || prev.tok.val == "," {
			return true
		}
		if prev.tok.val != ")" {
			return false
		}
	case tOp:
		return true
	case tIdent:
		if operandBefore[prev.tok.val] {
			return true
		}
		if prev.synth || nonOperandWords[prev.tok.val] {
			return false
		}
	}
	// After a complete operand: an alias written without AS.
	return next == nil || next.is(tPunct, ",") || next.is(tPunct, ")") || next.tok.kind == tIdent && aliasFollowers[next.tok.val]
}
