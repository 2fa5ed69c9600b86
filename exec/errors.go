package exec

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// SQLSTATE codes used by exec.
const (
	CodeDivisionByZero       = "22012"
	CodeNumericOutOfRange    = "22003"
	CodeInvalidTextRep       = "22P02"
	CodeBadCopyFormat        = "22P04"
	CodeInvalidParameter     = "22023"
	CodeInvalidRegex         = "2201B"
	CodeDatetimeOutOfRange   = "22008"
	CodeInvalidDatetime      = "22007"
	CodeFeatureNotSupported  = "0A000"
	CodeDatatypeMismatch     = "42804"
	CodeUndefinedFunction    = "42883"
	CodeInternal             = "XX000"
	CodeStringDataRightTrunc = "22001"
	CodeInvalidArgument      = "22023"
	CodeSubstringError       = "22011"
	CodeLogArgument          = "2201E"
	CodePowerArgument        = "2201F"
	CodeBadEncoding          = "22021" // character_not_in_repertoire
)

// CheckUTF8 reports text that is not valid UTF-8 (the only server
// encoding) as PostgreSQL does: 22021 naming the first bad byte sequence.
func CheckUTF8(b []byte) error {
	if utf8.Valid(b) {
		return nil
	}
	i := 0
	for i < len(b) {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		i += n
	}
	// As many bytes as the first one says the sequence has.
	want := 1
	switch c := b[i]; {
	case c >= 0xf8:
	case c >= 0xf0:
		want = 4
	case c >= 0xe0:
		want = 3
	case c >= 0xc0:
		want = 2
	}
	var seq []string
	for _, c := range b[i:min(i+want, len(b))] {
		seq = append(seq, fmt.Sprintf("0x%02x", c))
	}
	return &Error{Code: CodeBadEncoding, Message: `invalid byte sequence for encoding "UTF8": ` + strings.Join(seq, " ")}
}

// Error is a user-facing SQL error: a SQLSTATE, a message in PostgreSQL's
// wording and, for COPY, a context line ("COPY t, line 3, column x: ...").
type Error struct {
	Code    string // SQLSTATE
	Message string
	Context string // optional, PostgreSQL's CONTEXT field
	Err     error  // optional cause
}

// Error returns the message (with the context on a second line when set).
func (e *Error) Error() string {
	if e.Context != "" {
		return e.Message + "\nCONTEXT: " + e.Context
	}
	return e.Message
}

// SQLState returns the SQLSTATE code.
func (e *Error) SQLState() string { return e.Code }

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

func sqlErr(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func errDivByZero() *Error { return &Error{Code: CodeDivisionByZero, Message: "division by zero"} }

func errBigintRange() *Error {
	return &Error{Code: CodeNumericOutOfRange, Message: "bigint out of range"}
}

func errInvalidInput(typ, s string) *Error {
	return &Error{Code: CodeInvalidTextRep, Message: fmt.Sprintf("invalid input syntax for type %s: \"%s\"", typ, s)}
}
