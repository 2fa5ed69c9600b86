package planner

import (
	"fmt"
	"strings"
)

// Type is a SQL type of Spate. NUMERIC and DECIMAL are accepted and stored
// as DOUBLE (binary floating point); REAL and FLOAT are DOUBLE too.
type Type uint8

// The SQL types.
const (
	TypeUnknown   Type = iota // NULL literal or an untyped parameter before inference
	TypeBool                  // BOOLEAN
	TypeInt                   // INT, INTEGER, SMALLINT (32-bit range, stored as int64)
	TypeBigInt                // BIGINT
	TypeDouble                // DOUBLE PRECISION, REAL, FLOAT, NUMERIC, DECIMAL
	TypeText                  // TEXT, VARCHAR(n), CHAR(n)
	TypeTimestamp             // TIMESTAMP [WITHOUT TIME ZONE], µs precision
	TypeInterval              // INTERVAL, µs precision; a month is 30 days
)

var typeNames = [...]string{"unknown", "boolean", "integer", "bigint", "double precision", "text", "timestamp", "interval"}

// String returns the PostgreSQL name of the type.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", t)
}

// IsNumeric reports whether t is INT, BIGINT or DOUBLE.
func (t Type) IsNumeric() bool { return t == TypeInt || t == TypeBigInt || t == TypeDouble }

// IsInteger reports whether t is INT or BIGINT.
func (t Type) IsInteger() bool { return t == TypeInt || t == TypeBigInt }

// ParseType maps a type name as written (any case, with length or precision
// modifiers) to a Type.
func ParseType(name string) (Type, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if i := strings.IndexByte(n, '('); i >= 0 {
		j := strings.LastIndexByte(n, ')')
		if j < i {
			return TypeUnknown, fmt.Errorf("type %q does not exist", name)
		}
		n = strings.TrimSpace(n[:i] + n[j+1:])
	}
	n = strings.Join(strings.Fields(n), " ")
	switch n {
	case "bool", "boolean":
		return TypeBool, nil
	case "int", "integer", "int4", "smallint", "int2", "tinyint", "mediumint":
		return TypeInt, nil
	case "bigint", "int8":
		return TypeBigInt, nil
	case "double", "double precision", "float", "float8", "float4", "real", "numeric", "decimal":
		return TypeDouble, nil
	case "text", "varchar", "character varying", "char", "character", "string", "name", "bpchar":
		return TypeText, nil
	case "timestamp", "timestamp without time zone", "timestamptz", "timestamp with time zone", "datetime":
		return TypeTimestamp, nil
	case "interval":
		return TypeInterval, nil
	}
	return TypeUnknown, fmt.Errorf("type %q does not exist", name)
}
