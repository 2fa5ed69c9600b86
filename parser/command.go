package parser

import (
	"strings"
	"unicode"
)

// CommandName is the name of stmt's command, as PostgreSQL's command tags
// and error messages call it: "CREATE STREAM", "DROP TABLE", "GRANT",
// "BEGIN", …; for other statements the first word of its text in upper
// case, and "" for an empty one.
func CommandName(stmt Statement) string {
	switch x := stmt.(type) {
	case *CreateStream:
		return "CREATE STREAM"
	case *CreateTable:
		return "CREATE TABLE"
	case *CreateContinuousQuery:
		return "CREATE CONTINUOUS QUERY"
	case *Drop:
		return "DROP " + string(x.Kind)
	case *AlterContinuousQuery:
		return "ALTER CONTINUOUS QUERY"
	case *CreateRole:
		return "CREATE ROLE"
	case *AlterRole:
		return "ALTER ROLE"
	case *DropRole:
		return "DROP ROLE"
	case *Grant:
		if x.Revoke {
			return "REVOKE"
		}
		return "GRANT"
	case *Set:
		return "SET"
	case *Transaction:
		return x.Verb
	}
	f := strings.FieldsFunc(stmt.SQL(), func(r rune) bool { return !unicode.IsLetter(r) })
	if len(f) == 0 {
		return ""
	}
	return strings.ToUpper(f[0])
}
