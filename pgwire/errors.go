package pgwire

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/spatedb/spate/parser"
)

// SQLSTATE codes pgwire raises itself.
const (
	codeProtocolViolation   = "08P01"
	codeProgramLimit        = "54000"
	codeQueryCanceled       = "57014"
	codeAdminShutdown       = "57P01"
	codeInternal            = "XX000"
	codeFeatureNotSupported = "0A000"
	codeInFailedTx          = "25P02"
	codeDuplicatePStatement = "42P05"
	codeDuplicateCursor     = "42P03"
	codeUndefinedPStatement = "26000"
	codeUndefinedCursor     = "34000"
)

// sqlError is a statement-level error raised by pgwire itself. The
// connection stays open.
type sqlError struct {
	code, msg string
}

func (e *sqlError) Error() string    { return e.msg }
func (e *sqlError) SQLState() string { return e.code }

// protocolError is a violation of the wire protocol. It is reported with
// severity FATAL and the connection is closed.
type protocolError struct {
	code, msg string
}

func (e *protocolError) Error() string    { return e.msg }
func (e *protocolError) SQLState() string { return e.code }

// fatalError ends the connection. resp, when set, is sent to the client
// first (best effort).
type fatalError struct {
	resp *pgproto3.ErrorResponse
	err  error
}

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func fatal(err error, resp *pgproto3.ErrorResponse) error {
	return &fatalError{resp: resp, err: err}
}

var (
	// errCanceledByUser is the cancellation cause of a statement stopped by
	// a CancelRequest.
	errCanceledByUser = &sqlError{code: codeQueryCanceled, msg: "canceling statement due to user request"}
	// errClientGone is the cancellation cause of a statement whose client
	// closed the connection.
	errClientGone = errors.New("pgwire: client closed the connection")
	// errServerClosing is the cancellation cause when the server shuts down.
	errServerClosing = errors.New("pgwire: server closing")
)

// adminShutdown is the message sent to clients when the server closes.
func adminShutdown() *pgproto3.ErrorResponse {
	return errorResponse("FATAL", codeAdminShutdown, "terminating connection due to administrator command")
}

func errorResponse(severity, code, msg string) *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Severity: severity, SeverityUnlocalized: severity, Code: code, Message: msg}
}

// toErrorResponse converts err into an ErrorResponse. The SQLSTATE comes
// from a SQLState() string method anywhere on the error chain (XX000
// otherwise); a *parser.Error also gives the cursor position.
func toErrorResponse(severity string, err error) *pgproto3.ErrorResponse {
	resp := errorResponse(severity, codeInternal, err.Error())
	var pe *parser.Error
	if errors.As(err, &pe) {
		if pe.Code != "" {
			resp.Code = pe.Code
		}
		if pe.Position > 0 {
			resp.Position = int32(pe.Position)
		}
		return resp
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		if code := st.SQLState(); len(code) == 5 {
			resp.Code = code
		}
	}
	return resp
}

// panicError wraps a recovered panic value.
type panicError struct{ v any }

func (e *panicError) Error() string { return fmt.Sprintf("internal error: %v", e.v) }
