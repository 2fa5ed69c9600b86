package cluster

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Error is an engine error with a SQLSTATE.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// SQLState returns the SQLSTATE code.
func (e *Error) SQLState() string { return e.Code }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// memoryAllocator is the allocator for batches the engine builds itself.
var memoryAllocator = memory.DefaultAllocator
