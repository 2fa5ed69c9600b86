package pgcatalog

import (
	"strings"

	"github.com/spatedb/spate/planner"
)

// pgType is a row of pg_type: the types Spate's columns have and the ones
// the catalog tables use.
type pgType struct {
	oid      int64
	name     string // typname
	sqlName  string // format_type's name
	length   int64  // typlen (-1 variable)
	category string // typcategory
	elem     int64  // element type of an array type
	array    int64  // the array type of this type
	planner  planner.Type
}

// types lists the supported PostgreSQL types; arrays follow their
// element types.
var types = []pgType{
	{16, "bool", "boolean", 1, "B", 0, 1000, planner.TypeBool},
	{17, "bytea", "bytea", -1, "U", 0, 1001, planner.TypeText},
	{18, "char", `"char"`, 1, "Z", 0, 1002, planner.TypeText},
	{19, "name", "name", 64, "S", 0, 1003, planner.TypeText},
	{20, "int8", "bigint", 8, "N", 0, 1016, planner.TypeBigInt},
	{21, "int2", "smallint", 2, "N", 0, 1005, planner.TypeInt},
	{22, "int2vector", "int2vector", -1, "A", 21, 1006, planner.TypeText},
	{23, "int4", "integer", 4, "N", 0, 1007, planner.TypeInt},
	{24, "regproc", "regproc", 4, "N", 0, 1008, planner.TypeText},
	{25, "text", "text", -1, "S", 0, 1009, planner.TypeText},
	{26, "oid", "oid", 4, "N", 0, 1028, planner.TypeInt},
	{28, "xid", "xid", 4, "U", 0, 1011, planner.TypeText},
	{30, "oidvector", "oidvector", -1, "A", 26, 1013, planner.TypeText},
	{114, "json", "json", -1, "U", 0, 199, planner.TypeText},
	{194, "pg_node_tree", "pg_node_tree", -1, "Z", 0, 0, planner.TypeText},
	{700, "float4", "real", 4, "N", 0, 1021, planner.TypeDouble},
	{701, "float8", "double precision", 8, "N", 0, 1022, planner.TypeDouble},
	{705, "unknown", "unknown", -2, "X", 0, 0, planner.TypeText},
	{1033, "aclitem", "aclitem", 16, "U", 0, 1034, planner.TypeText},
	{1042, "bpchar", "character", -1, "S", 0, 1014, planner.TypeText},
	{1043, "varchar", "character varying", -1, "S", 0, 1015, planner.TypeText},
	{1082, "date", "date", 4, "D", 0, 1182, planner.TypeText},
	{1114, "timestamp", "timestamp without time zone", 8, "D", 0, 1115, planner.TypeTimestamp},
	{1184, "timestamptz", "timestamp with time zone", 8, "D", 0, 1185, planner.TypeText},
	{1186, "interval", "interval", 16, "T", 0, 1187, planner.TypeInterval},
	{1700, "numeric", "numeric", -1, "N", 0, 1231, planner.TypeDouble},
	{2205, "regclass", "regclass", 4, "N", 0, 2210, planner.TypeText},
	{2206, "regtype", "regtype", 4, "N", 0, 2211, planner.TypeText},
	{2249, "record", "record", -1, "P", 0, 2287, planner.TypeText},
	{2278, "void", "void", 4, "P", 0, 0, planner.TypeText},
	{2950, "uuid", "uuid", 16, "U", 0, 2951, planner.TypeText},
	{3802, "jsonb", "jsonb", -1, "U", 0, 3807, planner.TypeText},
	{4089, "regnamespace", "regnamespace", 4, "N", 0, 4090, planner.TypeText},
}

// typeByOID and typeByName index types and their array types.
var typeByOID, typeByName = func() (map[int64]pgType, map[string]pgType) {
	byOID, byName := map[int64]pgType{}, map[string]pgType{}
	for _, t := range types {
		byOID[t.oid], byName[t.name] = t, t
		if t.array != 0 {
			a := pgType{oid: t.array, name: "_" + t.name, sqlName: t.sqlName + "[]", length: -1, category: "A", elem: t.oid, planner: planner.TypeText}
			byOID[a.oid], byName[a.name] = a, a
		}
	}
	return byOID, byName
}()

// oidOfType is the pg_type OID of a Spate column type.
func oidOfType(t planner.Type) int64 {
	switch t {
	case planner.TypeBool:
		return 16
	case planner.TypeInt:
		return 23
	case planner.TypeBigInt:
		return 20
	case planner.TypeDouble:
		return 701
	case planner.TypeTimestamp:
		return 1114
	case planner.TypeInterval:
		return 1186
	}
	return 25
}

// typeNamed finds a type by a name as written in a cast ('int4',
// 'integer', 'pg_catalog.text', 'int2[]').
func typeNamed(name string) (pgType, bool) {
	n := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(name)), "pg_catalog.")
	n = strings.Trim(n, `"`)
	if i := strings.IndexByte(n, '('); i >= 0 {
		if j := strings.IndexByte(n[i:], ')'); j >= 0 {
			n = strings.TrimSpace(n[:i] + n[i+j+1:])
		}
	}
	if strings.HasSuffix(n, "[]") {
		el, ok := typeNamed(strings.TrimSuffix(n, "[]"))
		if !ok || el.array == 0 {
			return pgType{}, false
		}
		return typeByOID[el.array], true
	}
	if t, ok := typeByName[n]; ok {
		return t, true
	}
	switch n {
	case "boolean":
		n = "bool"
	case "smallint":
		n = "int2"
	case "int", "integer":
		n = "int4"
	case "bigint":
		n = "int8"
	case "real":
		n = "float4"
	case "double precision", "double", "float":
		n = "float8"
	case "character varying":
		n = "varchar"
	case "character", "char(1)":
		n = "bpchar"
	case "timestamp without time zone":
		n = "timestamp"
	case "timestamp with time zone":
		n = "timestamptz"
	case "decimal":
		n = "numeric"
	}
	t, ok := typeByName[n]
	return t, ok
}
