package planner

import "fmt"

// SQLSTATE codes the planner reports.
const (
	CodeUndefinedTable    = "42P01"
	CodeUndefinedColumn   = "42703"
	CodeUndefinedFunction = "42883"
	CodeDatatypeMismatch  = "42804"
	CodeUndefinedObject   = "42704"
	CodeDuplicateObject   = "42710"
	CodeDuplicateTable    = "42P07"
	CodeDuplicateColumn   = "42701"
	CodeAmbiguousColumn   = "42702"
	CodeGrouping          = "42803"
	CodeSyntax            = "42601"
	CodeInvalidParameter  = "22023"
	CodeNotSupported      = "0A000"
	CodeInvalidDefinition = "42P17"
	CodeDependentObjects  = "2BP01"
	CodeWrongObjectType   = "42809"
	CodeInvalidText       = "22P02"
	CodeUndefinedParam    = "42P02"
)

// Error is a planning error with a SQLSTATE.
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
