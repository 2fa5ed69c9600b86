package parser

import (
	"strconv"
	"strings"
	"time"
)

// CodeInvalidParameterValue is invalid_parameter_value: a FETCH timeout
// that is negative.
const CodeInvalidParameterValue = "22023"

// Declare is DECLARE name [BINARY] [ASENSITIVE | INSENSITIVE] [NO SCROLL]
// CURSOR [WITH HOLD | WITHOUT HOLD] FOR query, where query is a SELECT
// (a snapshot) or SUBSCRIBE [TO] name (a result stream). The options
// before CURSOR may come in any order; SCROLL is rejected with 0A000
// (cursors only move forward).
type Declare struct {
	Base
	Name   string    // the cursor name: unquoted folded to lower case, quoted as written
	Binary bool      // BINARY: rows go out in binary format (simple query protocol)
	Hold   bool      // WITH HOLD: the cursor survives COMMIT
	Query  Statement // *Select or *Subscribe
}

// Fetch is FETCH [direction] [FROM | IN] name [WITH (timeout = 'interval')]
// and MOVE (Move set) with the same arguments. The directions are the
// forward ones: NEXT (1 row, also when left out), count, ALL, FORWARD,
// FORWARD count, FORWARD ALL; backward and absolute ones are rejected
// with 0A000. The timeout is interval text or a number of seconds.
type Fetch struct {
	Base
	Name       string
	Count      int64 // rows to fetch; ignored when All
	All        bool
	Timeout    time.Duration // how long to wait for rows; valid when HasTimeout
	HasTimeout bool
	Move       bool // MOVE: skip the rows instead of returning them
}

// CloseCursor is CLOSE name or CLOSE ALL (All set, Name empty).
type CloseCursor struct {
	Base
	Name string
	All  bool
}

// cursorStmt parses DECLARE, FETCH, MOVE and CLOSE.
func (p *stmtParser) cursorStmt() (Statement, error) {
	switch p.peek().val {
	case "declare":
		return p.declare()
	case "fetch", "move":
		return p.fetch()
	default:
		return p.closeCursor()
	}
}

func (p *stmtParser) declare() (Statement, error) {
	p.i++ // DECLARE
	d := &Declare{}
	var err error
	if d.Name, err = p.name(); err != nil {
		return nil, err
	}
	for !p.accept("cursor") {
		switch t := p.peek(); {
		case p.accept("binary"):
			d.Binary = true
		case p.accept("insensitive"), p.accept("asensitive"), p.accept("no", "scroll"):
		case p.is("scroll"):
			return nil, p.q.notSupported(t, "SCROLL (cursors only move forward; use NO SCROLL)")
		default:
			return nil, p.fail()
		}
	}
	switch {
	case p.accept("with", "hold"):
		d.Hold = true
	case p.accept("without", "hold"):
	}
	if err := p.expect("for"); err != nil {
		return nil, err
	}
	if p.atEnd() {
		return nil, p.fail()
	}
	rest := p.toks[p.i:]
	if d.Query, err = p.q.statement(rest, p.end); err != nil {
		return nil, err
	}
	switch d.Query.(type) {
	case *Select, *Subscribe:
	default:
		return nil, p.q.notSupported(rest[0], "DECLARE CURSOR FOR "+strings.ToUpper(p.q.sql[rest[0].start:rest[0].end]))
	}
	d.Base = p.base()
	return d, nil
}

// backwardWords are FETCH directions of scrollable cursors.
var backwardWords = setOf(`prior first last absolute relative backward`)

func (p *stmtParser) fetch() (Statement, error) {
	f := &Fetch{Move: p.peek().val == "move", Count: 1}
	p.i++ // FETCH or MOVE
	// A direction word is the cursor's name when nothing follows it.
	dir := false
	if t := p.peek(); t.kind == tIdent && p.peekAt(1).kind != tEOF && !p.peekAt(1).isWord("with") {
		dir = true
		switch {
		case backwardWords[t.val]:
			return nil, p.q.notSupported(t, "FETCH "+strings.ToUpper(t.val)+" (cursors only move forward)")
		case p.accept("next"):
		case p.accept("all"):
			f.All = true
		case p.accept("forward"):
			if p.accept("all") {
				f.All = true
			} else if p.peek().kind == tNumber || p.peek().isOp("-") {
				dir = false // FORWARD count
			}
		default:
			dir = false
		}
	}
	if t := p.peek(); !dir && t.kind == tNumber {
		var ok bool
		if f.Count, ok = p.fetchCount(); !ok {
			return nil, p.fail()
		}
	} else if !dir && t.isOp("-") && p.peekAt(1).kind == tNumber {
		return nil, p.q.notSupported(t, "FETCH with a negative count (cursors only move forward)")
	}
	if !p.accept("from") {
		p.accept("in")
	}
	var err error
	if f.Name, err = p.name(); err != nil {
		return nil, err
	}
	if p.accept("with") {
		if err := p.fetchOptions(f); err != nil {
			return nil, err
		}
	}
	if err := p.done(); err != nil {
		return nil, err
	}
	f.Base = p.base()
	return f, nil
}

// fetchCount reads a non-negative row count (int64); ok is false, with
// nothing consumed, when the number is not one.
func (p *stmtParser) fetchCount() (int64, bool) {
	n, err := strconv.ParseInt(p.peek().val, 10, 64)
	if err != nil || n < 0 {
		return -1, false
	}
	p.i++
	return n, true
}

// fetchOptions reads ( timeout [=] value [, …] ) after FETCH … WITH.
func (p *stmtParser) fetchOptions(f *Fetch) error {
	if err := p.expectPunct("("); err != nil {
		return err
	}
	for {
		kt := p.peek()
		key, err := p.name()
		if err != nil {
			return err
		}
		if p.peek().isOp("=") {
			p.i++
		}
		vt := p.peek()
		val, err := p.optionValue()
		if err != nil {
			return err
		}
		if strings.ToLower(key) != "timeout" {
			return &Error{Code: CodeSyntax, Message: `unrecognized FETCH option "` + key + `"`, Position: charPos(p.q.sql, kt.start)}
		}
		us, err := ParseInterval(val)
		if err != nil {
			e := err.(*Error)
			e.Position = charPos(p.q.sql, vt.start)
			return e
		}
		if us < 0 {
			return &Error{Code: CodeInvalidParameterValue, Message: "FETCH timeout must not be negative", Position: charPos(p.q.sql, vt.start)}
		}
		f.Timeout, f.HasTimeout = time.Duration(us)*time.Microsecond, true
		if p.acceptPunct(")") {
			return nil
		}
		if err := p.expectPunct(","); err != nil {
			return err
		}
	}
}

func (p *stmtParser) closeCursor() (Statement, error) {
	p.i++ // CLOSE
	c := &CloseCursor{}
	if p.accept("all") {
		c.All = true
	} else {
		var err error
		if c.Name, err = p.name(); err != nil {
			return nil, err
		}
	}
	if err := p.done(); err != nil {
		return nil, err
	}
	c.Base = p.base()
	return c, nil
}
