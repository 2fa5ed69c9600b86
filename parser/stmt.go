package parser

import (
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// stmtParser is the recursive-descent parser for the statements Spate owns.
type stmtParser struct {
	q    *query
	toks []token
	i    int
	end  *token // the token after the statement, nil at end of input
}

// statement parses one statement (toks is non-empty, without the ';').
func (q *query) statement(toks []token, end *token) (Statement, error) {
	p := &stmtParser{q: q, toks: toks, end: end}
	return p.statement()
}

func (p *stmtParser) peek() token { return p.peekAt(0) }

func (p *stmtParser) peekAt(k int) token {
	if p.i+k < len(p.toks) {
		return p.toks[p.i+k]
	}
	return token{kind: tEOF}
}

func (p *stmtParser) atEnd() bool { return p.i >= len(p.toks) }

// is reports whether the next token is one of the unquoted words ws.
func (p *stmtParser) is(ws ...string) bool {
	t := p.peek()
	for _, w := range ws {
		if t.isWord(w) {
			return true
		}
	}
	return false
}

// accept consumes the words ws if they all come next, in order.
func (p *stmtParser) accept(ws ...string) bool {
	for k, w := range ws {
		if !p.peekAt(k).isWord(w) {
			return false
		}
	}
	p.i += len(ws)
	return true
}

func (p *stmtParser) acceptPunct(s string) bool {
	if p.peek().isPunct(s) {
		p.i++
		return true
	}
	return false
}

// fail is a syntax error at the next token (or at the end).
func (p *stmtParser) fail() error {
	if p.atEnd() {
		return p.q.errEnd(p.end)
	}
	return p.q.errAt(p.toks[p.i])
}

func (p *stmtParser) expect(ws ...string) error {
	for _, w := range ws {
		if !p.accept(w) {
			return p.fail()
		}
	}
	return nil
}

func (p *stmtParser) expectPunct(s string) error {
	if !p.acceptPunct(s) {
		return p.fail()
	}
	return nil
}

// done checks that the statement has no more tokens.
func (p *stmtParser) done() error {
	if !p.atEnd() {
		return p.fail()
	}
	return nil
}

func (p *stmtParser) base() Base { return p.q.base(p.toks) }

// name reads an identifier: unquoted ones are folded to lower case, quoted
// ones keep their case.
func (p *stmtParser) name() (string, error) {
	t := p.peek()
	if !t.isName() {
		return "", p.fail()
	}
	p.i++
	return t.val, nil
}

// objectName reads a possibly qualified name (schema.name) and keeps only
// its last part: Spate has one namespace.
func (p *stmtParser) objectName() (string, error) {
	n, err := p.name()
	if err != nil {
		return "", err
	}
	for p.peek().isPunct(".") && p.peekAt(1).isName() {
		p.i++
		if n, err = p.name(); err != nil {
			return "", err
		}
	}
	return n, nil
}

// dottedName reads name[.name…] and joins the parts with '.' (setting names).
func (p *stmtParser) dottedName() (string, error) {
	n, err := p.name()
	if err != nil {
		return "", err
	}
	for p.peek().isPunct(".") {
		p.i++
		m, err := p.name()
		if err != nil {
			return "", err
		}
		n += "." + m
	}
	return n, nil
}

// unsupportedVerbs are PostgreSQL statements Spate does not run.
var unsupportedVerbs = setOf(`truncate merge vacuum analyze analyse
	prepare execute deallocate discard listen notify unlisten savepoint
	release lock comment refresh call do checkpoint reindex cluster security load import
	reassign`)

func (p *stmtParser) statement() (Statement, error) {
	t := p.peek()
	if t.isPunct("(") {
		return p.selectStmt()
	}
	if t.kind != tIdent {
		return nil, p.fail()
	}
	if st, ok, err := p.roleStatement(); ok {
		return st, err // stmt_role.go
	}
	switch t.val {
	case "select", "with", "values", "table":
		return p.selectStmt()
	case "insert":
		stmt, sm, err := p.q.tidb(p.toks, p.end)
		if err != nil {
			return nil, err
		}
		ins, ok := stmt.(*ast.InsertStmt)
		if !ok {
			return nil, p.q.errAt(t)
		}
		return &Insert{Base: p.base(), Stmt: ins, Source: sm}, nil
	case "update", "delete":
		stmt, _, err := p.q.tidb(p.toks, p.end)
		if err != nil {
			return nil, err
		}
		switch x := stmt.(type) {
		case *ast.UpdateStmt:
			return &Update{Base: p.base(), Stmt: x}, nil
		case *ast.DeleteStmt:
			return &Delete{Base: p.base(), Stmt: x}, nil
		}
		return nil, p.q.errAt(t)
	case "create":
		return p.create()
	case "drop":
		return p.drop()
	case "alter":
		return p.alter()
	case "show":
		return p.show()
	case "set":
		return p.set()
	case "reset":
		return p.reset()
	case "subscribe":
		return p.subscribe()
	case "declare", "fetch", "move", "close":
		return p.cursorStmt() // stmt_cursor.go
	case "copy":
		return p.copyStmt()
	case "explain":
		return p.explain()
	case "begin", "start", "commit", "end", "rollback", "abort":
		return p.transaction()
	}
	if unsupportedVerbs[t.val] {
		return nil, p.q.notSupported(t, strings.ToUpper(t.val))
	}
	return nil, p.fail()
}

func (p *stmtParser) selectStmt() (Statement, error) {
	stmt, sm, err := p.q.tidb(p.toks, p.end)
	if err != nil {
		return nil, err
	}
	switch s := stmt.(type) {
	case *ast.SelectStmt:
		return &Select{Base: p.base(), Query: s, Source: sm}, nil
	case *ast.SetOprStmt:
		first := firstSelect(s)
		if first == nil {
			return nil, p.q.notSupported(setOprToken(p.toks), "this UNION, INTERSECT or EXCEPT")
		}
		return &Select{Base: p.base(), Query: first, SetOpr: s, Source: sm}, nil
	}
	return nil, p.q.errAt(p.toks[0])
}

// firstSelect is the leftmost SELECT of a set operation.
func firstSelect(s *ast.SetOprStmt) *ast.SelectStmt {
	return firstInList(s.SelectList)
}

func firstInList(l *ast.SetOprSelectList) *ast.SelectStmt {
	if l == nil || len(l.Selects) == 0 {
		return nil
	}
	switch x := l.Selects[0].(type) {
	case *ast.SelectStmt:
		return x
	case *ast.SetOprStmt:
		return firstSelect(x)
	case *ast.SetOprSelectList:
		return firstInList(x)
	}
	return nil
}

// setOprToken finds the first UNION, INTERSECT or EXCEPT outside
// parentheses, for the error position (toks[0] if there is none).
func setOprToken(toks []token) token {
	depth := 0
	for _, t := range toks {
		switch {
		case t.isPunct("("):
			depth++
		case t.isPunct(")"):
			depth--
		case depth == 0 && (t.isWord("union") || t.isWord("intersect") || t.isWord("except")):
			return t
		}
	}
	return toks[0]
}

// ---- CREATE ----

func (p *stmtParser) create() (Statement, error) {
	p.i++ // CREATE
	switch {
	case p.accept("stream"):
		return p.createRelation(true)
	case p.accept("table"):
		return p.createRelation(false)
	case p.accept("continuous", "query"):
		return p.createCQ()
	}
	if t := p.peek(); t.kind == tIdent {
		switch t.val {
		case "view":
			return nil, p.createView("CREATE VIEW")
		case "materialized":
			if p.peekAt(1).isWord("view") {
				return nil, p.createView("CREATE MATERIALIZED VIEW")
			}
		}
		switch t.val {
		case "view", "materialized", "index", "unique", "function", "or", "schema", "database", "type",
			"sequence", "role", "user", "extension", "trigger", "temp", "temporary", "unlogged", "source", "sink":
			return nil, p.q.notSupported(t, "CREATE "+strings.ToUpper(t.val))
		}
	}
	return nil, p.fail()
}

// createView is the error for CREATE [MATERIALIZED] VIEW (what), with
// the parser at the word after CREATE: a view over streams is a
// continuous query.
func (p *stmtParser) createView(what string) error {
	at := p.peek()
	p.accept("materialized")
	p.i++ // VIEW
	p.ifNotExists()
	name := "name"
	if t := p.peek(); t.isName() {
		name = p.q.sql[t.start:t.end]
	}
	return &Error{Code: CodeFeatureNotSupported, Message: what + " is not supported; use CREATE CONTINUOUS QUERY " + name + " AS SELECT …", Position: charPos(p.q.sql, at.start)}
}

func (p *stmtParser) ifNotExists() bool { return p.accept("if", "not", "exists") }

// createRelation parses CREATE STREAM and CREATE TABLE after the kind.
func (p *stmtParser) createRelation(stream bool) (Statement, error) {
	ine := p.ifNotExists()
	name, err := p.objectName()
	if err != nil {
		return nil, err
	}
	if err := p.expectPunct("("); err != nil {
		return nil, err
	}
	var cols []ColumnDef
	var pk []string  // from a table constraint or a column's PRIMARY KEY
	var pkTok *token // where the first primary key was declared
	for first := true; !p.peek().isPunct(")"); first = false {
		if !first {
			if err := p.expectPunct(","); err != nil {
				return nil, err
			}
		}
		start := p.peek()
		// Table constraint: [CONSTRAINT name] PRIMARY KEY (a, b).
		if p.is("constraint") || p.is("primary") && p.peekAt(1).isWord("key") {
			if p.accept("constraint") {
				if _, err := p.name(); err != nil {
					return nil, err
				}
			}
			if err := p.expect("primary", "key"); err != nil {
				return nil, err
			}
			if pkTok != nil {
				return nil, p.multiplePK(start)
			}
			if pk, err = p.nameList(); err != nil {
				return nil, err
			}
			pkTok = &start
			continue
		}
		col, err := p.columnDef()
		if err != nil {
			return nil, err
		}
		if col.PrimaryKey {
			if pkTok != nil {
				return nil, p.multiplePK(start)
			}
			pk, pkTok = []string{col.Name}, &start
		}
		cols = append(cols, col)
	}
	if p.atEnd() {
		return nil, p.fail()
	}
	p.i++ // )
	// Mark the key columns, which are NOT NULL as in PostgreSQL.
	for _, k := range pk {
		found := false
		for c := range cols {
			if cols[c].Name == k {
				cols[c].PrimaryKey, cols[c].NotNull, found = true, true, true
			}
		}
		if !found {
			return nil, &Error{Code: CodeUndefinedColumn, Message: `column "` + k + `" named in key does not exist`, Position: charPos(p.q.sql, pkTok.start)}
		}
	}
	var with []Option
	if p.accept("with") {
		if with, err = p.options(true); err != nil {
			return nil, err
		}
	}
	if err := p.done(); err != nil {
		return nil, err
	}
	if stream {
		return &CreateStream{Base: p.base(), Name: name, IfNotExists: ine, Columns: cols, With: with}, nil
	}
	return &CreateTable{Base: p.base(), Name: name, IfNotExists: ine, Columns: cols, PrimaryKey: pk, With: with}, nil
}

func (p *stmtParser) multiplePK(at token) error {
	return &Error{Code: CodeInvalidTableDefinition, Message: "multiple primary keys for table are not allowed", Position: charPos(p.q.sql, at.start)}
}

// constraintWords end a column's type.
var constraintWords = setOf(`not null primary constraint default unique check references collate generated`)

func (p *stmtParser) columnDef() (ColumnDef, error) {
	nt := p.peek()
	name, err := p.name()
	if err != nil {
		return ColumnDef{}, err
	}
	col := ColumnDef{Name: name, Pos: charPos(p.q.sql, nt.start) - charPos(p.q.sql, p.toks[0].start) + 1}
	start, depth := p.i, 0
	for !p.atEnd() {
		t := p.peek()
		if depth == 0 && (t.isPunct(",") || t.isPunct(")") || t.kind == tIdent && constraintWords[t.val]) {
			break
		}
		if t.isPunct("(") {
			depth++
		} else if t.isPunct(")") {
			depth--
		}
		p.i++
	}
	if p.i == start {
		return ColumnDef{}, p.fail()
	}
	typ, ok := normalizeTypeTokens(p.toks[start:p.i])
	if !ok {
		return ColumnDef{}, p.q.errAt(p.toks[start])
	}
	col.Type = TypeName(typ)
	for {
		switch {
		case p.accept("not", "null"):
			col.NotNull = true
		case p.accept("null"):
			col.NotNull = false
		case p.accept("primary", "key"):
			col.PrimaryKey, col.NotNull = true, true
		case p.is("default", "unique", "check", "references", "collate", "generated", "constraint"):
			return ColumnDef{}, p.q.notSupported(p.peek(), strings.ToUpper(p.peek().val)+" in a column definition")
		default:
			return col, nil
		}
	}
}

// nameList reads ( name [, name …] ).
func (p *stmtParser) nameList() ([]string, error) {
	if err := p.expectPunct("("); err != nil {
		return nil, err
	}
	var names []string
	for {
		n, err := p.name()
		if err != nil {
			return nil, err
		}
		names = append(names, n)
		if p.acceptPunct(")") {
			return names, nil
		}
		if err := p.expectPunct(","); err != nil {
			return nil, err
		}
	}
}

// options reads ( key [=] value, … ) for WITH. Keys are lower case (dotted
// keys keep their dots); values are strings without quotes, numbers as
// written (with their sign), unquoted words folded to lower case, quoted
// names as written, a parenthesised name list joined with ',' and "true"
// when the value is left out. eq requires the '=' (WITH of CREATE); COPY
// and EXPLAIN options have no '='.
func (p *stmtParser) options(eq bool) ([]Option, error) {
	if err := p.expectPunct("("); err != nil {
		return nil, err
	}
	var opts []Option
	for {
		key, err := p.dottedName()
		if err != nil {
			return nil, err
		}
		key = strings.ToLower(key)
		val := "true"
		hasValue := true
		if eq {
			if !p.peek().isOp("=") {
				hasValue = false
			} else {
				p.i++
			}
		} else {
			hasValue = !p.peek().isPunct(",") && !p.peek().isPunct(")")
		}
		if hasValue {
			if val, err = p.optionValue(); err != nil {
				return nil, err
			}
		}
		opts = append(opts, Option{Key: key, Value: val})
		if p.acceptPunct(")") {
			return opts, nil
		}
		if err := p.expectPunct(","); err != nil {
			return nil, err
		}
	}
}

// optionValue reads one option or SET value.
func (p *stmtParser) optionValue() (string, error) {
	t := p.peek()
	switch {
	case t.kind == tString || t.kind == tIdent || t.kind == tQIdent || t.kind == tNumber:
		p.i++
		return t.val, nil
	case (t.isOp("-") || t.isOp("+")) && p.peekAt(1).kind == tNumber:
		p.i += 2
		if t.val == "-" {
			return "-" + p.toks[p.i-1].val, nil
		}
		return p.toks[p.i-1].val, nil
	case t.isOp("*"):
		p.i++
		return "*", nil
	case t.isPunct("("):
		names, err := p.nameList()
		if err != nil {
			return "", err
		}
		return strings.Join(names, ","), nil
	}
	return "", p.fail()
}

func (p *stmtParser) createCQ() (Statement, error) {
	ine := p.ifNotExists()
	name, err := p.objectName()
	if err != nil {
		return nil, err
	}
	var with []Option
	if p.accept("with") {
		if with, err = p.options(true); err != nil {
			return nil, err
		}
	}
	if err := p.expect("as"); err != nil {
		return nil, err
	}
	if p.atEnd() || !(p.is("select", "with") || p.peek().isPunct("(")) {
		return nil, p.fail()
	}
	body := p.toks[p.i:]
	stmt, sm, err := p.q.tidb(body, p.end)
	if err != nil {
		return nil, err
	}
	sel, ok := stmt.(*ast.SelectStmt)
	if !ok {
		return nil, p.q.notSupported(setOprToken(body), "UNION, INTERSECT or EXCEPT")
	}
	return &CreateContinuousQuery{
		Base: p.base(), Name: name, IfNotExists: ine, With: with,
		Query: sel, QueryText: p.q.sql[body[0].start:body[len(body)-1].end], Source: sm,
	}, nil
}

// ---- DROP ----

func (p *stmtParser) drop() (Statement, error) {
	p.i++ // DROP
	var kind ObjectKind
	switch {
	case p.accept("stream"):
		kind = KindStream
	case p.accept("table"):
		kind = KindTable
	case p.accept("continuous", "query"):
		kind = KindContinuousQuery
	default:
		return nil, p.fail()
	}
	ie := p.accept("if", "exists")
	name, err := p.objectName()
	if err != nil {
		return nil, err
	}
	cascade := false
	if p.accept("cascade") {
		cascade = true
	} else {
		p.accept("restrict")
	}
	if err := p.done(); err != nil {
		return nil, err
	}
	return &Drop{Base: p.base(), Kind: kind, Name: name, IfExists: ie, Cascade: cascade}, nil
}

// ---- ALTER ----

func (p *stmtParser) alter() (Statement, error) {
	at := p.peek()
	p.i++ // ALTER
	if !p.accept("continuous", "query") {
		return nil, p.q.notSupported(at, "ALTER other than ALTER CONTINUOUS QUERY")
	}
	name, err := p.objectName()
	if err != nil {
		return nil, err
	}
	st := &AlterContinuousQuery{Base: p.base(), Name: name, Instance: -1}
	switch {
	case p.accept("set"):
		if st.Set, err = p.options(true); err != nil {
			return nil, err
		}
	case p.accept("scale"):
		switch {
		case p.accept("out"):
			st.Scale = "out"
		case p.accept("in"):
			st.Scale = "in"
		default:
			return nil, p.fail()
		}
		if err := p.expect("stage"); err != nil {
			return nil, err
		}
		if st.Stage, err = p.count(); err != nil {
			return nil, err
		}
		if p.accept("instance") {
			if st.Instance, err = p.count(); err != nil {
				return nil, err
			}
		}
	default:
		return nil, p.fail()
	}
	if err := p.done(); err != nil {
		return nil, err
	}
	return st, nil
}

// count reads a non-negative integer.
func (p *stmtParser) count() (int, error) {
	t := p.peek()
	if t.kind != tNumber {
		return 0, p.fail()
	}
	n, err := strconv.Atoi(t.val)
	if err != nil || n < 0 {
		return 0, p.fail()
	}
	p.i++
	return n, nil
}

// ---- SHOW, SET, RESET ----

func (p *stmtParser) show() (Statement, error) {
	p.i++ // SHOW
	var what string
	switch {
	case p.accept("continuous", "queries"):
		what = "continuous queries"
	case p.accept("instance", "checkpoints"):
		what = "instance checkpoints"
	case p.accept("restart", "points"):
		what = "restart points"
	case p.accept("scaling", "events"):
		what = "scaling events"
	case p.accept("time", "zone"):
		what = "timezone"
	case p.accept("transaction", "isolation", "level"):
		what = "transaction_isolation"
	case p.accept("session", "authorization"):
		what = "session_authorization"
	default:
		n, err := p.dottedName()
		if err != nil {
			return nil, err
		}
		what = strings.ToLower(n)
	}
	if err := p.done(); err != nil {
		return nil, err
	}
	return &Show{Base: p.base(), What: what}, nil
}

func (p *stmtParser) set() (Statement, error) {
	p.i++ // SET
	st := &Set{}
	if p.accept("local") {
		st.Local = true
	} else if p.is("session") && !p.peekAt(1).isPunct(".") && !p.peekAt(1).isOp("=") && !p.peekAt(1).isWord("to") {
		p.i++
	}
	var err error
	switch {
	case p.accept("time", "zone"):
		st.Name = "timezone"
		switch {
		case p.accept("local"), p.accept("default"):
			st.Value = "default"
		default:
			st.Value, err = p.optionValue()
		}
	case p.accept("characteristics", "as", "transaction"):
		st.Name = "session_characteristics"
		st.Value, err = p.txnModes(true)
	case p.accept("transaction"):
		st.Name = "transaction"
		st.Value, err = p.txnModes(true)
	case p.accept("names"):
		st.Name = "client_encoding"
		st.Value, err = p.setValues()
	case p.accept("schema"):
		st.Name = "search_path"
		st.Value, err = p.optionValue()
	case p.accept("authorization"):
		st.Name = "session_authorization"
		st.Value, err = p.setValues()
	case p.accept("role"):
		st.Name = "role"
		st.Value, err = p.setValues()
	default:
		if st.Name, err = p.dottedName(); err != nil {
			return nil, err
		}
		st.Name = strings.ToLower(st.Name)
		if !p.accept("to") {
			if !p.peek().isOp("=") {
				return nil, p.fail()
			}
			p.i++
		}
		st.Value, err = p.setValues()
	}
	if err != nil {
		return nil, err
	}
	if err := p.done(); err != nil {
		return nil, err
	}
	st.Base = p.base()
	return st, nil
}

// setValues reads DEFAULT or value [, value …]; several values are joined
// with ", ".
func (p *stmtParser) setValues() (string, error) {
	if p.is("default") && p.peekAt(1).kind == tEOF {
		p.i++
		return "default", nil
	}
	var vals []string
	for {
		v, err := p.optionValue()
		if err != nil {
			return "", err
		}
		vals = append(vals, v)
		if !p.acceptPunct(",") {
			return strings.Join(vals, ", "), nil
		}
	}
}

func (p *stmtParser) reset() (Statement, error) {
	p.i++ // RESET
	var name string
	switch {
	case p.accept("time", "zone"):
		name = "timezone"
	case p.accept("session", "authorization"):
		name = "session_authorization"
	default:
		n, err := p.dottedName()
		if err != nil {
			return nil, err
		}
		name = strings.ToLower(n)
	}
	if err := p.done(); err != nil {
		return nil, err
	}
	return &Set{Base: p.base(), Name: name, Value: "default"}, nil
}

// txnModes reads transaction modes (ISOLATION LEVEL …, READ WRITE|ONLY,
// [NOT] DEFERRABLE) and returns them normalised, e.g. "isolation level
// read committed, read only". required asks for at least one.
func (p *stmtParser) txnModes(required bool) (string, error) {
	var modes []string
	for {
		switch {
		case p.accept("isolation", "level"):
			var lvl string
			switch {
			case p.accept("serializable"):
				lvl = "serializable"
			case p.accept("repeatable", "read"):
				lvl = "repeatable read"
			case p.accept("read", "committed"):
				lvl = "read committed"
			case p.accept("read", "uncommitted"):
				lvl = "read uncommitted"
			default:
				return "", p.fail()
			}
			modes = append(modes, "isolation level "+lvl)
		case p.accept("read", "write"):
			modes = append(modes, "read write")
		case p.accept("read", "only"):
			modes = append(modes, "read only")
		case p.accept("deferrable"):
			modes = append(modes, "deferrable")
		case p.accept("not", "deferrable"):
			modes = append(modes, "not deferrable")
		default:
			if required && len(modes) == 0 || len(modes) > 0 && p.toks[p.i-1].isPunct(",") {
				return "", p.fail()
			}
			return strings.Join(modes, ", "), nil
		}
		if !p.acceptPunct(",") && !p.is("isolation", "read", "deferrable", "not") {
			return strings.Join(modes, ", "), nil
		}
	}
}

// ---- SUBSCRIBE, COPY, EXPLAIN ----

func (p *stmtParser) subscribe() (Statement, error) {
	p.i++ // SUBSCRIBE
	p.accept("to")
	name, err := p.objectName()
	if err != nil {
		return nil, err
	}
	if err := p.done(); err != nil {
		return nil, err
	}
	return &Subscribe{Base: p.base(), Name: name}, nil
}

func (p *stmtParser) copyStmt() (Statement, error) {
	p.i++ // COPY
	c := &Copy{}
	if p.peek().isPunct("(") {
		open := p.i
		depth := 0
		closeAt := -1
		for k := open; k < len(p.toks); k++ {
			if p.toks[k].isPunct("(") {
				depth++
			} else if p.toks[k].isPunct(")") {
				if depth--; depth == 0 {
					closeAt = k
					break
				}
			}
		}
		if closeAt < 0 {
			p.i = len(p.toks)
			return nil, p.fail()
		}
		if closeAt == open+1 {
			p.i = closeAt
			return nil, p.fail()
		}
		inner, err := p.q.statement(p.toks[open+1:closeAt], &p.toks[closeAt])
		if err != nil {
			return nil, err
		}
		switch inner.(type) {
		case *Select, *Subscribe:
		default:
			return nil, p.q.notSupported(p.toks[open+1], "COPY ("+strings.ToUpper(p.toks[open+1].val)+" …)")
		}
		c.Query = inner
		p.i = closeAt + 1
		if err := p.expect("to"); err != nil {
			return nil, err
		}
	} else {
		name, err := p.objectName()
		if err != nil {
			return nil, err
		}
		c.Table = name
		if p.peek().isPunct("(") {
			if c.Columns, err = p.nameList(); err != nil {
				return nil, err
			}
		}
		switch {
		case p.accept("from"):
			c.From = true
		case p.accept("to"):
		default:
			return nil, p.fail()
		}
	}
	if c.From {
		if !p.accept("stdin") {
			if p.is("program") || p.peek().kind == tString {
				return nil, p.q.notSupported(p.peek(), "COPY FROM a file or program (use FROM STDIN)")
			}
			return nil, p.fail()
		}
	} else if !p.accept("stdout") {
		if p.is("program") || p.peek().kind == tString {
			return nil, p.q.notSupported(p.peek(), "COPY TO a file or program (use TO STDOUT)")
		}
		return nil, p.fail()
	}
	var err error
	if c.Options, err = p.copyOptions(); err != nil {
		return nil, err
	}
	if err := p.done(); err != nil {
		return nil, err
	}
	c.Base = p.base()
	return c, nil
}

// copyOptions reads [WITH] (option [value], …) or the legacy option words.
func (p *stmtParser) copyOptions() ([]Option, error) {
	with := p.accept("with")
	if p.peek().isPunct("(") {
		return p.options(false)
	}
	var opts []Option
	str := func(key string) error {
		p.accept("as")
		if p.peek().kind != tString {
			return p.fail()
		}
		opts = append(opts, Option{Key: key, Value: p.peek().val})
		p.i++
		return nil
	}
	cols := func(key string) error {
		if p.peek().isOp("*") {
			p.i++
			opts = append(opts, Option{Key: key, Value: "*"})
			return nil
		}
		var names []string
		for {
			n, err := p.name()
			if err != nil {
				return err
			}
			names = append(names, n)
			if !p.acceptPunct(",") {
				break
			}
		}
		opts = append(opts, Option{Key: key, Value: strings.Join(names, ",")})
		return nil
	}
	for !p.atEnd() {
		var err error
		switch {
		case p.accept("binary"):
			opts = append(opts, Option{Key: "format", Value: "binary"})
		case p.accept("csv"):
			opts = append(opts, Option{Key: "format", Value: "csv"})
		case p.accept("header"):
			opts = append(opts, Option{Key: "header", Value: "true"})
		case p.accept("delimiter"):
			err = str("delimiter")
		case p.accept("null"):
			err = str("null")
		case p.accept("quote"):
			err = str("quote")
		case p.accept("escape"):
			err = str("escape")
		case p.accept("encoding"):
			err = str("encoding")
		case p.accept("force", "quote"):
			err = cols("force_quote")
		case p.accept("force", "not", "null"):
			err = cols("force_not_null")
		case p.accept("force", "null"):
			err = cols("force_null")
		default:
			return nil, p.fail()
		}
		if err != nil {
			return nil, err
		}
	}
	if with && len(opts) == 0 {
		return nil, p.fail()
	}
	return opts, nil
}

// statementVerbs start statements; EXPLAIN ANALYZE followed by one of them
// alone is not a continuous query name.
var statementVerbs = setOf(`select with values table insert create drop show set reset subscribe copy
	explain begin start commit end rollback abort`)

func (p *stmtParser) explain() (Statement, error) {
	p.i++ // EXPLAIN
	ex := &Explain{}
	if p.peek().isPunct("(") && p.peekAt(1).kind == tIdent && !statementVerbs[p.peekAt(1).val] {
		opts, err := p.options(false)
		if err != nil {
			return nil, err
		}
		for _, o := range opts {
			if o.Key == "analyze" || o.Key == "analyse" {
				switch strings.ToLower(o.Value) {
				case "true", "on", "1":
					ex.Analyze = true
				}
			}
		}
		ex.Options = opts
	} else {
		if p.accept("analyze") || p.accept("analyse") {
			ex.Analyze = true
		}
		if p.accept("verbose") {
			ex.Options = append(ex.Options, Option{Key: "verbose", Value: "true"})
		}
	}
	if p.atEnd() {
		return nil, p.fail()
	}
	rest := p.toks[p.i:]
	if ex.Analyze && isObjectName(rest) && !statementVerbs[rest[0].val] {
		name, err := p.objectName()
		if err != nil {
			return nil, err
		}
		ex.Name = name
	} else {
		st, err := p.q.statement(rest, p.end)
		if err != nil {
			return nil, err
		}
		ex.Stmt = st
	}
	ex.Base = p.base()
	return ex, nil
}

// isObjectName reports whether toks are exactly name[.name…].
func isObjectName(toks []token) bool {
	if len(toks)%2 == 0 {
		return false
	}
	for i, t := range toks {
		if i%2 == 0 && !t.isName() || i%2 == 1 && !t.isPunct(".") {
			return false
		}
	}
	return true
}

// ---- transactions ----

func (p *stmtParser) transaction() (Statement, error) {
	t := p.peek()
	p.i++
	tx := &Transaction{}
	switch t.val {
	case "begin":
		tx.Verb = "BEGIN"
		if !p.accept("work") {
			p.accept("transaction")
		}
		if _, err := p.txnModes(false); err != nil {
			return nil, err
		}
	case "start":
		tx.Verb = "BEGIN"
		if err := p.expect("transaction"); err != nil {
			return nil, err
		}
		if _, err := p.txnModes(false); err != nil {
			return nil, err
		}
	default:
		tx.Verb = "COMMIT"
		if t.val == "rollback" || t.val == "abort" {
			tx.Verb = "ROLLBACK"
		}
		if !p.accept("work") {
			p.accept("transaction")
		}
		if !p.accept("and", "chain") {
			p.accept("and", "no", "chain")
		}
	}
	if err := p.done(); err != nil {
		return nil, err
	}
	tx.Base = p.base()
	return tx, nil
}
