package parser

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// tokKind is the lexical class of a token.
type tokKind uint8

const (
	tEOF       tokKind = iota
	tIdent             // unquoted word; val is folded to lower case (ASCII only, as PostgreSQL)
	tQIdent            // "quoted identifier"; val is the unescaped name, case kept
	tString            // 'x', E'x', N'x', $$x$$, $tag$x$tag$; val is the decoded content
	tBitString         // B'0101' or X'1F'; val is the text as written
	tNumber            // 12, 1.5, .5, 1e3, 1.5E-3; val is the text as written
	tParam             // $n; val is n
	tOp                // operator: + - * / < > = ~ ! @ # % ^ & | ? and runs of them, e.g. <= <> || !~*
	tPunct             // ( ) [ ] , ; . : ::
)

// token is one lexical token. start and end are byte offsets into the whole
// query string, so positions survive statement splitting and rewriting.
type token struct {
	kind       tokKind
	val        string
	start, end int
}

// isWord reports whether t is the unquoted word w (w in lower case).
func (t token) isWord(w string) bool { return t.kind == tIdent && t.val == w }

// isPunct reports whether t is the punctuation p.
func (t token) isPunct(p string) bool { return t.kind == tPunct && t.val == p }

// isOp reports whether t is the operator o.
func (t token) isOp(o string) bool { return t.kind == tOp && t.val == o }

// isName reports whether t can name something (an identifier, quoted or not).
func (t token) isName() bool { return t.kind == tIdent || t.kind == tQIdent }

// lexer splits a query string into tokens, PostgreSQL style.
type lexer struct {
	src  string
	pos  int
	toks []token
}

// lex tokenises the whole query string. Comments and whitespace are dropped.
func lex(src string) ([]token, *Error) {
	l := &lexer{src: src}
	for {
		t, err := l.next()
		if err != nil {
			return nil, err
		}
		if t.kind == tEOF {
			return l.toks, nil
		}
		l.toks = append(l.toks, t)
	}
}

// errAt builds a 42601 error positioned at byte offset off.
func (l *lexer) errAt(off int, msg string) *Error {
	return &Error{Code: CodeSyntax, Message: msg, Position: charPos(l.src, off)}
}

// nearText returns a PostgreSQL-style excerpt of the text at off for
// "at or near" messages about unterminated tokens (the rest of the input).
func (l *lexer) nearText(off int) string {
	return l.src[off:]
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentCont(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '$'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isOpChar reports whether c can be part of a PostgreSQL operator.
func isOpChar(c byte) bool { return strings.IndexByte("+-*/<>=~!@#%^&|`?", c) >= 0 }

// lowerASCII folds ASCII letters only, as PostgreSQL folds unquoted names.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// skipSpaceAndComments advances over whitespace, -- comments and (nested)
// /* */ comments.
func (l *lexer) skipSpaceAndComments() *Error {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case isSpace(c):
			l.pos++
		case c == '-' && strings.HasPrefix(l.src[l.pos:], "--"):
			if i := strings.IndexByte(l.src[l.pos:], '\n'); i >= 0 {
				l.pos += i + 1
			} else {
				l.pos = len(l.src)
			}
		case c == '/' && strings.HasPrefix(l.src[l.pos:], "/*"):
			start := l.pos
			depth := 0
			for {
				if l.pos >= len(l.src) {
					return l.errAt(start, `unterminated /* comment at or near "`+l.nearText(start)+`"`)
				}
				if strings.HasPrefix(l.src[l.pos:], "/*") {
					depth++
					l.pos += 2
				} else if strings.HasPrefix(l.src[l.pos:], "*/") {
					depth--
					l.pos += 2
					if depth == 0 {
						break
					}
				} else {
					l.pos++
				}
			}
		default:
			return nil
		}
	}
	return nil
}

func (l *lexer) next() (token, *Error) {
	if err := l.skipSpaceAndComments(); err != nil {
		return token{}, err
	}
	if l.pos >= len(l.src) {
		return token{kind: tEOF, start: len(l.src), end: len(l.src)}, nil
	}
	start := l.pos
	c := l.src[l.pos]
	// Prefixed strings: E'..', N'..', B'..', X'..'.
	if l.pos+1 < len(l.src) && l.src[l.pos+1] == '\'' {
		switch c {
		case 'e', 'E':
			l.pos++
			return l.quotedString(start, true)
		case 'n', 'N':
			l.pos++
			return l.quotedString(start, false)
		case 'b', 'B', 'x', 'X':
			l.pos += 2
			i := strings.IndexByte(l.src[l.pos:], '\'')
			if i < 0 {
				return token{}, l.errAt(start, `unterminated bit string literal at or near "`+l.nearText(start)+`"`)
			}
			l.pos += i + 1
			return token{kind: tBitString, val: l.src[start:l.pos], start: start, end: l.pos}, nil
		}
	}
	switch {
	case isIdentStart(c):
		for l.pos < len(l.src) && isIdentCont(l.src[l.pos]) {
			l.pos++
		}
		return token{kind: tIdent, val: lowerASCII(l.src[start:l.pos]), start: start, end: l.pos}, nil
	case isDigit(c) || c == '.' && l.pos+1 < len(l.src) && isDigit(l.src[l.pos+1]):
		return l.number(start), nil
	case c == '\'':
		return l.quotedString(start, false)
	case c == '"':
		return l.quotedIdent(start)
	case c == '$':
		return l.dollar(start)
	case c == ':':
		if strings.HasPrefix(l.src[l.pos:], "::") {
			l.pos += 2
			return token{kind: tPunct, val: "::", start: start, end: l.pos}, nil
		}
		l.pos++
		return token{kind: tPunct, val: ":", start: start, end: l.pos}, nil
	case strings.IndexByte("()[],;.", c) >= 0:
		l.pos++
		return token{kind: tPunct, val: string(c), start: start, end: l.pos}, nil
	case isOpChar(c):
		return l.operator(start), nil
	}
	_, size := utf8.DecodeRuneInString(l.src[l.pos:])
	return token{}, l.errAt(start, `syntax error at or near "`+l.src[start:start+size]+`"`)
}

// number scans 12, 1.5, .5, 1., 1e3, 1.5e-3.
func (l *lexer) number(start int) token {
	s := l.src
	for l.pos < len(s) && isDigit(s[l.pos]) {
		l.pos++
	}
	// A '.' followed by another '.' is not part of the number (1..2).
	if l.pos < len(s) && s[l.pos] == '.' && !(l.pos+1 < len(s) && s[l.pos+1] == '.') {
		l.pos++
		for l.pos < len(s) && isDigit(s[l.pos]) {
			l.pos++
		}
	}
	if l.pos < len(s) && (s[l.pos] == 'e' || s[l.pos] == 'E') {
		j := l.pos + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			l.pos = j
		}
	}
	return token{kind: tNumber, val: s[start:l.pos], start: start, end: l.pos}
}

// quotedString scans a '...' literal starting at l.pos (the quote); start
// is where the token began (before an E or N prefix). Adjacent literals
// separated by whitespace containing a newline are concatenated, as in SQL.
func (l *lexer) quotedString(start int, escapes bool) (token, *Error) {
	var sb strings.Builder
	for {
		l.pos++ // opening quote
		for {
			if l.pos >= len(l.src) {
				return token{}, l.errAt(start, `unterminated quoted string at or near "`+l.nearText(start)+`"`)
			}
			c := l.src[l.pos]
			if c == '\'' {
				if l.pos+1 < len(l.src) && l.src[l.pos+1] == '\'' {
					sb.WriteByte('\'')
					l.pos += 2
					continue
				}
				l.pos++
				break
			}
			if c == '\\' && escapes {
				if err := l.backslashEscape(&sb, start); err != nil {
					return token{}, err
				}
				continue
			}
			sb.WriteByte(c)
			l.pos++
		}
		// Continuation: whitespace with at least one newline, then a quote.
		j, newline := l.pos, false
		for j < len(l.src) && isSpace(l.src[j]) {
			if l.src[j] == '\n' || l.src[j] == '\r' {
				newline = true
			}
			j++
		}
		if !newline || j >= len(l.src) || l.src[j] != '\'' {
			break
		}
		l.pos = j
	}
	val := sb.String()
	if escapes && !utf8.ValidString(val) {
		bad := val
		for len(bad) > 0 {
			r, size := utf8.DecodeRuneInString(bad)
			if r == utf8.RuneError && size <= 1 {
				break
			}
			bad = bad[size:]
		}
		return token{}, &Error{Code: CodeCharacterNotInRepertoire, Message: fmt.Sprintf(`invalid byte sequence for encoding "UTF8": 0x%02x`, bad[0]), Position: charPos(l.src, start)}
	}
	return token{kind: tString, val: val, start: start, end: l.pos}, nil
}

// backslashEscape decodes one escape of an E-string at l.pos (the backslash).
func (l *lexer) backslashEscape(sb *strings.Builder, start int) *Error {
	s := l.src
	if l.pos+1 >= len(s) {
		return l.errAt(start, `unterminated quoted string at or near "`+l.nearText(start)+`"`)
	}
	c := s[l.pos+1]
	l.pos += 2
	switch c {
	case 'b':
		sb.WriteByte('\b')
	case 'f':
		sb.WriteByte('\f')
	case 'n':
		sb.WriteByte('\n')
	case 'r':
		sb.WriteByte('\r')
	case 't':
		sb.WriteByte('\t')
	case '0', '1', '2', '3', '4', '5', '6', '7':
		v := int(c - '0')
		for k := 0; k < 2 && l.pos < len(s) && s[l.pos] >= '0' && s[l.pos] <= '7'; k++ {
			v = v*8 + int(s[l.pos]-'0')
			l.pos++
		}
		sb.WriteByte(byte(v))
	case 'x':
		v, n := 0, 0
		for n < 2 && l.pos < len(s) && isHex(s[l.pos]) {
			v = v*16 + hexVal(s[l.pos])
			l.pos++
			n++
		}
		if n == 0 {
			sb.WriteByte('x')
		} else {
			sb.WriteByte(byte(v))
		}
	case 'u', 'U':
		want := 4
		if c == 'U' {
			want = 8
		}
		if l.pos+want > len(s) {
			return l.errAt(l.pos-2, "invalid Unicode escape")
		}
		v, err := strconv.ParseUint(s[l.pos:l.pos+want], 16, 32)
		if err != nil || !utf8.ValidRune(rune(v)) {
			return l.errAt(l.pos-2, "invalid Unicode escape value")
		}
		sb.WriteRune(rune(v))
		l.pos += want
	default:
		sb.WriteByte(c) // \\ \' and any other character stand for themselves
	}
	return nil
}

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func hexVal(c byte) int {
	switch {
	case isDigit(c):
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}

// quotedIdent scans "name" with "" escapes.
func (l *lexer) quotedIdent(start int) (token, *Error) {
	var sb strings.Builder
	l.pos++
	for {
		if l.pos >= len(l.src) {
			return token{}, l.errAt(start, `unterminated quoted identifier at or near "`+l.nearText(start)+`"`)
		}
		c := l.src[l.pos]
		if c == '"' {
			if l.pos+1 < len(l.src) && l.src[l.pos+1] == '"' {
				sb.WriteByte('"')
				l.pos += 2
				continue
			}
			l.pos++
			break
		}
		sb.WriteByte(c)
		l.pos++
	}
	if sb.Len() == 0 {
		return token{}, l.errAt(start, `zero-length delimited identifier at or near """"`)
	}
	return token{kind: tQIdent, val: sb.String(), start: start, end: l.pos}, nil
}

// dollar scans $n parameters and $tag$…$tag$ strings.
func (l *lexer) dollar(start int) (token, *Error) {
	s := l.src
	j := l.pos + 1
	if j < len(s) && isDigit(s[j]) {
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		l.pos = j
		return token{kind: tParam, val: s[start+1 : j], start: start, end: j}, nil
	}
	// Tag: identifier characters except '$', not starting with a digit.
	for j < len(s) && s[j] != '$' && isIdentCont(s[j]) {
		j++
	}
	if j >= len(s) || s[j] != '$' {
		return token{}, l.errAt(start, `syntax error at or near "$"`)
	}
	delim := s[start : j+1]
	body := j + 1
	k := strings.Index(s[body:], delim)
	if k < 0 {
		return token{}, l.errAt(start, `unterminated dollar-quoted string at or near "`+l.nearText(start)+`"`)
	}
	l.pos = body + k + len(delim)
	return token{kind: tString, val: s[body : body+k], start: start, end: l.pos}, nil
}

// operator scans an operator with PostgreSQL's rules: the longest run of
// operator characters, stopping before a comment start; a multi-character
// operator cannot end in + or - unless it contains one of ~ ! @ # % ^ & | ` ?.
func (l *lexer) operator(start int) token {
	s := l.src
	j := l.pos
	for j < len(s) && isOpChar(s[j]) {
		if j > l.pos && (strings.HasPrefix(s[j:], "--") || strings.HasPrefix(s[j:], "/*")) {
			break
		}
		j++
	}
	op := s[l.pos:j]
	if len(op) > 1 && !strings.ContainsAny(op, "~!@#%^&|`?") {
		for len(op) > 1 && (op[len(op)-1] == '+' || op[len(op)-1] == '-') {
			op = op[:len(op)-1]
		}
	}
	l.pos += len(op)
	if op == "!=" {
		op = "<>"
	}
	return token{kind: tOp, val: op, start: start, end: l.pos}
}

// charPos converts a byte offset in src to PostgreSQL's 1-based character
// position.
func charPos(src string, off int) int {
	if off > len(src) {
		off = len(src)
	}
	if off < 0 {
		off = 0
	}
	return utf8.RuneCountInString(src[:off]) + 1
}
