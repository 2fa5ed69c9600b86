package cluster

import (
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Error is an engine error with a SQLSTATE.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// SQLState returns the SQLSTATE code.
func (e *Error) SQLState() string { return e.Code }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// asError is err as an *Error: its SQLSTATE when it carries one
// (XX000 when not) and its message.
func asError(err error) *Error {
	code := "XX000"
	var st interface{ SQLState() string }
	if errors.As(err, &st) && len(st.SQLState()) == 5 {
		code = st.SQLState()
	}
	return &Error{Code: code, Message: err.Error()}
}

// queryFailedError is what reading a failed query's result returns:
// the failure's SQLSTATE, the query named.
func queryFailedError(name string, err error) *Error {
	e := asError(err)
	return errorf(e.Code, "continuous query %q failed: %s (its result stopped there; DROP CONTINUOUS QUERY %s and create it again to start over)", name, e.Message, name)
}

// memoryAllocator is the allocator for batches the engine builds itself.
var memoryAllocator = memory.DefaultAllocator
