package pgcatalog

import (
	"encoding/json"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// function is a scalar function of the catalog emulation. ret is the
// pg_type name of the result ("" for the type of the first argument).
// Strict functions return NULL when an argument is NULL without being
// called.
type function struct {
	ret     string
	lenient bool // called with NULL arguments
	fn      func(e *engine, args []any) (any, error)
}

// aggregates and setReturning name the aggregate and set-returning
// functions (evaluated by aggregate and srfValues).
var aggregates = map[string]bool{"count": true, "min": true, "max": true, "sum": true, "avg": true, "array_agg": true,
	"string_agg": true, "bool_and": true, "bool_or": true, "every": true}

var setReturning = map[string]bool{"unnest": true, "generate_series": true, "generate_subscripts": true, "_pg_expandarray": true,
	"pg_get_keywords": true}

func always(v any) func(*engine, []any) (any, error) {
	return func(*engine, []any) (any, error) { return v, nil }
}

var functions map[string]function

func init() {
	functions = map[string]function{
		"version":          {"text", false, func(e *engine, _ []any) (any, error) { return "PostgreSQL " + e.snap.srv.Version, nil }},
		"current_database": {"name", false, func(e *engine, _ []any) (any, error) { return e.snap.view.Database, nil }},
		"current_catalog":  {"name", false, func(e *engine, _ []any) (any, error) { return e.snap.view.Database, nil }},
		"current_schema":   {"name", false, always("public")},
		"current_schemas": {"_name", false, func(e *engine, args []any) (any, error) {
			if len(args) > 0 && truth(args[0]) {
				return []any{"pg_catalog", "public"}, nil
			}
			return []any{"public"}, nil
		}},
		"current_user":                       {"name", false, func(e *engine, _ []any) (any, error) { return e.snap.view.User, nil }},
		"session_user":                       {"name", false, func(e *engine, _ []any) (any, error) { return e.snap.view.User, nil }},
		"current_role":                       {"name", false, func(e *engine, _ []any) (any, error) { return e.snap.view.User, nil }},
		"pg_backend_pid":                     {"int4", false, func(e *engine, _ []any) (any, error) { return e.snap.srv.PID, nil }},
		"pg_is_in_recovery":                  {"bool", false, always(false)},
		"pg_encoding_to_char":                {"name", false, always("UTF8")},
		"pg_char_to_encoding":                {"int4", false, always(int64(6))},
		"txid_current":                       {"int8", false, always(int64(1))},
		"pg_get_userbyid":                    {"name", false, (*engine).userByID},
		"pg_table_is_visible":                {"bool", false, (*engine).tableVisible},
		"pg_type_is_visible":                 {"bool", false, always(true)},
		"pg_function_is_visible":             {"bool", false, always(true)},
		"format_type":                        {"text", true, formatType},
		"pg_get_expr":                        {"text", false, func(_ *engine, args []any) (any, error) { return args[0], nil }},
		"pg_get_viewdef":                     {"text", false, (*engine).viewDef},
		"pg_get_indexdef":                    {"text", false, (*engine).indexDef},
		"pg_get_constraintdef":               {"text", false, (*engine).constraintDef},
		"pg_get_serial_sequence":             {"text", true, always(nil)},
		"pg_get_partkeydef":                  {"text", true, always(nil)},
		"pg_get_statisticsobjdef_columns":    {"text", true, always(nil)},
		"pg_get_function_result":             {"text", false, always("text")},
		"pg_get_function_arguments":          {"text", false, always("")},
		"pg_get_function_identity_arguments": {"text", false, always("")},
		"pg_relation_is_publishable":         {"bool", false, always(false)},
		"obj_description":                    {"text", true, always(nil)},
		"col_description":                    {"text", true, always(nil)},
		"shobj_description":                  {"text", true, always(nil)},
		"has_table_privilege":                {"bool", false, (*engine).hasTablePrivilege},
		"has_schema_privilege":               {"bool", false, always(true)},
		"has_database_privilege":             {"bool", false, always(true)},
		"has_column_privilege":               {"bool", false, always(true)},
		"has_any_column_privilege":           {"bool", false, always(true)},
		"has_function_privilege":             {"bool", false, always(true)},
		"has_sequence_privilege":             {"bool", false, always(true)},
		"pg_has_role":                        {"bool", false, always(true)},
		"pg_relation_size":                   {"int8", false, always(int64(0))},
		"pg_tablespace_location":             {"text", false, always("")},
		"pg_total_relation_size":             {"int8", false, always(int64(0))},
		"pg_table_size":                      {"int8", false, always(int64(0))},
		"pg_indexes_size":                    {"int8", false, always(int64(0))},
		"pg_size_pretty":                     {"text", false, func(_ *engine, args []any) (any, error) { return text(args[0]) + " bytes", nil }},
		"current_setting":                    {"text", true, (*engine).currentSetting},
		"array_to_string":                    {"text", false, arrayToString},
		"array_upper": {"int4", false, func(_ *engine, args []any) (any, error) {
			l, err := asArray(args[0])
			if err != nil || len(l) == 0 {
				return nil, err
			}
			return int64(len(l)), nil
		}},
		"array_lower": {"int4", false, func(_ *engine, args []any) (any, error) {
			l, err := asArray(args[0])
			if err != nil || len(l) == 0 {
				return nil, err
			}
			return int64(1), nil
		}},
		"array_length": {"int4", false, func(_ *engine, args []any) (any, error) {
			l, err := asArray(args[0])
			if err != nil || len(l) == 0 {
				return nil, err
			}
			return int64(len(l)), nil
		}},
		"cardinality": {"int4", false, func(_ *engine, args []any) (any, error) {
			l, err := asArray(args[0])
			return int64(len(l)), err
		}},
		"coalesce": {"", true, func(_ *engine, args []any) (any, error) {
			for _, a := range args {
				if a != nil {
					return a, nil
				}
			}
			return nil, nil
		}},
		"nullif": {"", true, func(_ *engine, args []any) (any, error) {
			if args[0] != nil && args[1] != nil {
				if c, ok := compare(args[0], args[1]); ok && c == 0 {
					return nil, nil
				}
			}
			return args[0], nil
		}},
		"lower":  {"text", false, func(_ *engine, args []any) (any, error) { return strings.ToLower(text(args[0])), nil }},
		"upper":  {"text", false, func(_ *engine, args []any) (any, error) { return strings.ToUpper(text(args[0])), nil }},
		"length": {"int4", false, func(_ *engine, args []any) (any, error) { return int64(len([]rune(text(args[0])))), nil }},
		"char_length": {"int4", false, func(_ *engine, args []any) (any, error) {
			return int64(len([]rune(text(args[0])))), nil
		}},
		"replace": {"text", false, func(_ *engine, args []any) (any, error) {
			return strings.ReplaceAll(text(args[0]), text(args[1]), text(args[2])), nil
		}},
		"concat": {"text", true, func(_ *engine, args []any) (any, error) {
			var sb strings.Builder
			for _, a := range args {
				if a != nil {
					sb.WriteString(text(a))
				}
			}
			return sb.String(), nil
		}},
		"quote_ident": {"text", false, func(_ *engine, args []any) (any, error) { return quoteIdentIfNeeded(text(args[0])), nil }},
		"quote_literal": {"text", false, func(_ *engine, args []any) (any, error) {
			return "'" + strings.ReplaceAll(text(args[0]), "'", "''") + "'", nil
		}},
		"pg_cancel_backend":    {"bool", false, func(e *engine, args []any) (any, error) { return e.signal(args[0], false) }},
		"pg_terminate_backend": {"bool", false, func(e *engine, args []any) (any, error) { return e.signal(args[0], true) }},
		"string_to_array": {"_text", false, func(_ *engine, args []any) (any, error) {
			str, sep := text(args[0]), text(args[1])
			if str == "" {
				return []any{}, nil
			}
			var parts []string
			if sep == "" {
				parts = []string{str}
			} else {
				parts = strings.Split(str, sep)
			}
			out := make([]any, len(parts))
			for i, p := range parts {
				out[i] = p
				if len(args) > 2 && args[2] != nil && p == text(args[2]) {
					out[i] = nil
				}
			}
			return out, nil
		}},
		"to_regclass": {"regclass", false, func(e *engine, args []any) (any, error) {
			v, err := e.cast(args[0], "regclass")
			if err != nil {
				return nil, nil
			}
			return v, nil
		}},
		"starts_with": {"bool", false, func(_ *engine, args []any) (any, error) {
			return strings.HasPrefix(text(args[0]), text(args[1])), nil
		}},
		"json_build_object": {"json", true, func(_ *engine, args []any) (any, error) {
			m := map[string]any{}
			for i := 0; i+1 < len(args); i += 2 {
				m[text(args[i])] = args[i+1]
			}
			b, err := json.Marshal(m)
			return string(b), err
		}},
		"spate_concat": {"text", false, func(_ *engine, args []any) (any, error) {
			la, lok := args[0].([]any)
			ra, rok := args[1].([]any)
			if lok || rok {
				return append(append([]any{}, la...), ra...), nil
			}
			return text(args[0]) + text(args[1]), nil
		}},
		"spate_regexp_i": {"bool", false, func(_ *engine, args []any) (any, error) {
			re, err := compileRegexp(text(args[1]), true)
			if err != nil {
				return nil, err
			}
			return re.MatchString(text(args[0])), nil
		}},
		"spate_subscript": {"", false, func(_ *engine, args []any) (any, error) {
			l, err := asArray(args[0])
			if err != nil {
				return nil, err
			}
			i, err := toInt(args[1])
			if err != nil {
				return nil, err
			}
			if _, vec := args[0].(vector); vec {
				i++ // int2vector and oidvector subscripts start at 0
			}
			if i < 1 || int(i) > len(l) {
				return nil, nil
			}
			return l[i-1], nil
		}},
		"spate_field": {"", false, func(_ *engine, args []any) (any, error) {
			r, ok := args[0].(record)
			if !ok {
				return nil, errorf("42809", "column notation .%s applied to a value that is not a composite type", text(args[1]))
			}
			for i, n := range r.names {
				if n == text(args[1]) {
					return r.vals[i], nil
				}
			}
			return nil, errorf(codeUndefinedColumn, "could not identify column %q in record data type", text(args[1]))
		}},
	}
}

// call evaluates a function call.
func (e *engine) call(x *ast.FuncCallExpr, en *env) (any, error) {
	name := x.FnName.L
	switch name {
	case "spate_param":
		n, err := e.eval(x.Args[0], en)
		if err != nil {
			return nil, err
		}
		i, err := toInt(n)
		if err != nil {
			return nil, err
		}
		return e.param(int(i))
	case "spate_cast":
		v, err := e.eval(x.Args[0], en)
		if err != nil {
			return nil, err
		}
		target, _ := literalString(x.Args[1])
		return e.cast(v, target)
	case "spate_array":
		sub, ok := x.Args[0].(*ast.SubqueryExpr)
		if !ok {
			return nil, errorf(codeNotSupported, "ARRAY needs a subquery")
		}
		rs, err := e.run(sub.Query, en)
		if err != nil {
			return nil, err
		}
		out := make([]any, len(rs.rows))
		for i, r := range rs.rows {
			out[i] = r[0]
		}
		return out, nil
	}
	if name == "trim" || name == "btrim" || name == "ltrim" || name == "rtrim" {
		return e.trim(name, x.Args, en)
	}
	if aggregates[name] {
		if en.group == nil {
			return nil, errorf(codeGrouping, "aggregate functions are not allowed here")
		}
		return e.aggregate(&ast.AggregateFuncExpr{F: name, Args: x.Args}, en)
	}
	if setReturning[name] {
		if en.srf != nil {
			if v, ok := en.srf[x]; ok {
				return v, nil
			}
			for c, v := range en.srf {
				if sameCall(c, x) {
					return v, nil
				}
			}
		}
		return nil, errorf(codeNotSupported, "set-returning function %s is supported only in the select list of catalog queries", name)
	}
	f, ok := functions[name]
	if !ok {
		return nil, errorf(codeUndefinedFunction, "function %s does not exist", name)
	}
	args := make([]any, len(x.Args))
	for i, a := range x.Args {
		v, err := e.eval(a, en)
		if err != nil {
			return nil, err
		}
		if v == nil && !f.lenient {
			return nil, nil
		}
		args[i] = v
	}
	return f.fn(e, args)
}

// cast converts v to the named type.
func (e *engine) cast(v any, target string) (any, error) {
	if v == nil {
		return nil, nil
	}
	t, ok := typeNamed(target)
	if !ok {
		return nil, errorf(codeUndefinedObject, "type %q does not exist", target)
	}
	switch t.name {
	case "regclass":
		switch x := v.(type) {
		case regValue:
			return x, nil
		case int64:
			if r := e.snap.byOID[x]; r != nil {
				return regValue{x, r.name}, nil
			}
			return regValue{x, text(x)}, nil
		}
		name := text(v)
		schema := ""
		if i := strings.LastIndexByte(name, '.'); i > 0 {
			schema, name = strings.Trim(name[:i], `"`), name[i+1:]
		}
		if strings.HasPrefix(name, `"`) {
			name = strings.Trim(name, `"`)
		} else {
			name = strings.ToLower(name)
		}
		r := e.snap.lookup(schema, name)
		if r == nil {
			return nil, errorf(codeUndefinedTable, "relation %q does not exist", text(v))
		}
		return regValue{r.oid, r.name}, nil
	case "regtype":
		switch x := v.(type) {
		case regValue:
			return x, nil
		case int64:
			if ty, ok := typeByOID[x]; ok {
				return regValue{x, ty.sqlName}, nil
			}
			return regValue{x, text(x)}, nil
		}
		ty, ok := typeNamed(text(v))
		if !ok {
			return nil, errorf(codeUndefinedObject, "type %q does not exist", text(v))
		}
		return regValue{ty.oid, ty.sqlName}, nil
	case "regnamespace":
		n, err := toInt(regOID(v))
		if err != nil {
			return nil, err
		}
		name := map[int64]string{oidPgCatalog: "pg_catalog", oidPublic: "public", oidInfoSchema: "information_schema"}[n]
		return regValue{n, name}, nil
	case "regproc":
		return text(v), nil
	case "bool":
		return toBool(v)
	case "int2", "int4", "int8", "oid":
		return toInt(regOID(v))
	case "float4", "float8", "numeric":
		return toFloat(v)
	case "int2vector", "oidvector":
		l, err := asArray(v)
		return vector(l), err
	}
	if t.category == "A" {
		l, err := asArray(v)
		if err != nil {
			return nil, err
		}
		out := make([]any, len(l))
		for i, x := range l {
			if x == nil {
				continue
			}
			el := typeByOID[t.elem]
			c, err := e.cast(x, el.name)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	return text(v), nil
}

func regOID(v any) any {
	if r, ok := v.(regValue); ok {
		return r.oid
	}
	return v
}

func (e *engine) userByID(args []any) (any, error) {
	oid, err := toInt(regOID(args[0]))
	if err != nil {
		return nil, err
	}
	if n, ok := e.snap.roleName(oid); ok {
		return n, nil
	}
	return "unknown (OID=" + text(oid) + ")", nil
}

func (e *engine) tableVisible(args []any) (any, error) {
	oid, err := toInt(regOID(args[0]))
	if err != nil {
		return nil, err
	}
	if r := e.snap.byOID[oid]; r != nil {
		return r.schema == "public" || r.schema == "pg_catalog", nil
	}
	for _, r := range e.snap.rels {
		if r.indexOID == oid {
			return true, nil
		}
	}
	return nil, nil
}

// hasTablePrivilege is has_table_privilege([role,] table, privilege).
func (e *engine) hasTablePrivilege(args []any) (any, error) {
	roleName := e.snap.view.User
	if len(args) == 3 {
		roleName, args = text(args[0]), args[1:]
	}
	if len(args) != 2 {
		return nil, errorf(codeUndefinedFunction, "function has_table_privilege takes 2 or 3 arguments")
	}
	rel, err := e.cast(args[0], "regclass")
	if err != nil {
		return nil, err
	}
	r := e.snap.byOID[rel.(regValue).oid]
	if r == nil {
		return nil, errorf(codeUndefinedTable, "relation with OID %d does not exist", rel.(regValue).oid)
	}
	for _, p := range strings.Split(strings.ToUpper(text(args[1])), ",") {
		p = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(p), " WITH GRANT OPTION"))
		if p != "SELECT" && p != "INSERT" {
			if e.snap.privileged(roleName, r, "SUPERUSER") {
				return true, nil
			}
			continue
		}
		if e.snap.privileged(roleName, r, p) {
			return true, nil
		}
	}
	return false, nil
}

// signal is pg_cancel_backend(pid) and pg_terminate_backend(pid):
// allowed to a superuser and for the sessions of one's own role.
func (e *engine) signal(pidArg any, terminate bool) (any, error) {
	pid, err := toInt(pidArg)
	if err != nil {
		return nil, err
	}
	var target *Backend
	for i := range e.snap.srv.Backends {
		if e.snap.srv.Backends[i].PID == pid {
			target = &e.snap.srv.Backends[i]
		}
	}
	if target == nil || e.snap.srv.Signal == nil {
		return false, nil // PostgreSQL warns "PID … is not a PostgreSQL backend process"
	}
	super := false
	for _, r := range e.snap.roles() {
		if r.name == e.snap.view.User {
			super = r.super
		}
	}
	if !super && target.User != e.snap.view.User {
		what := "cancel query"
		if terminate {
			what = "terminate process"
		}
		return nil, errorf("42501", "permission denied to %s: only a superuser or role %q may signal this session", what, target.User)
	}
	return e.snap.srv.Signal(pid, terminate), nil
}

// trim is trim([BOTH|LEADING|TRAILING] [chars] FROM s) (the parser's
// trim(s[, chars[, direction]])), btrim, ltrim and rtrim.
func (e *engine) trim(name string, argNodes []ast.ExprNode, en *env) (any, error) {
	dir := map[string]ast.TrimDirectionType{"ltrim": ast.TrimLeading, "rtrim": ast.TrimTrailing}[name]
	var args []any
	for _, a := range argNodes {
		if d, ok := a.(*ast.TrimDirectionExpr); ok {
			dir = d.Direction
			continue
		}
		v, err := e.eval(a, en)
		if err != nil || v == nil {
			return nil, err
		}
		args = append(args, v)
	}
	if len(args) == 0 {
		return nil, errorf(codeUndefinedFunction, "function %s needs a string", name)
	}
	chars := " "
	if len(args) > 1 {
		chars = text(args[1])
	}
	s := text(args[0])
	switch dir {
	case ast.TrimLeading:
		return strings.TrimLeft(s, chars), nil
	case ast.TrimTrailing:
		return strings.TrimRight(s, chars), nil
	}
	return strings.Trim(s, chars), nil
}

func (e *engine) viewDef(args []any) (any, error) {
	oid, err := toInt(regOID(args[0]))
	if err != nil {
		return nil, err
	}
	if r := e.snap.byOID[oid]; r != nil && r.def != "" {
		return " " + r.def + ";", nil
	}
	return nil, nil
}

func (e *engine) relationWithIndex(v any) (*relation, error) {
	oid, err := toInt(regOID(v))
	if err != nil {
		return nil, err
	}
	for _, r := range e.snap.rels {
		if r.indexOID == oid || r.indexOID != 0 && r.indexOID+1 == oid {
			return r, nil
		}
	}
	return nil, nil
}

// indexDef is pg_get_indexdef(index[, column, pretty]): the CREATE INDEX
// statement, or with a column number above 0 that key column's name.
func (e *engine) indexDef(args []any) (any, error) {
	r, err := e.relationWithIndex(args[0])
	if r == nil || err != nil {
		return nil, err
	}
	if len(args) > 1 {
		k, err := toInt(args[1])
		if err != nil {
			return nil, err
		}
		if k > 0 {
			if int(k) > len(r.primary) {
				return "", nil
			}
			return quoteIdentIfNeeded(r.cols[r.primary[k-1]].name), nil
		}
	}
	return indexDef(r), nil
}

func (e *engine) constraintDef(args []any) (any, error) {
	r, err := e.relationWithIndex(args[0])
	if r == nil || err != nil {
		return nil, err
	}
	names := make([]string, len(r.primary))
	for k, i := range r.primary {
		names[k] = quoteIdentIfNeeded(r.cols[i].name)
	}
	return "PRIMARY KEY (" + strings.Join(names, ", ") + ")", nil
}

func (e *engine) currentSetting(args []any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	name := strings.ToLower(text(args[0]))
	if v, ok := e.snap.view.Settings[name]; ok {
		return v, nil
	}
	if len(args) > 1 && truth(args[1]) {
		return nil, nil
	}
	return nil, errorf(codeUndefinedObject, "unrecognized configuration parameter %q", text(args[0]))
}

func formatType(_ *engine, args []any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	oid, err := toInt(regOID(args[0]))
	if err != nil {
		return nil, err
	}
	t, ok := typeByOID[oid]
	if !ok {
		return "???", nil
	}
	if len(args) > 1 && args[1] != nil && (oid == 1043 || oid == 1042) {
		if mod, err := toInt(args[1]); err == nil && mod > 4 {
			return t.sqlName + "(" + text(mod-4) + ")", nil
		}
	}
	return t.sqlName, nil
}

func arrayToString(_ *engine, args []any) (any, error) {
	l, err := asArray(args[0])
	if err != nil {
		return nil, err
	}
	var parts []string
	for _, v := range l {
		if v == nil {
			if len(args) > 2 && args[2] != nil {
				parts = append(parts, text(args[2]))
			}
			continue
		}
		parts = append(parts, text(v))
	}
	return strings.Join(parts, text(args[1])), nil
}

// quoteIdentIfNeeded quotes a name as PostgreSQL's quote_ident does.
func quoteIdentIfNeeded(s string) string {
	plain := s != ""
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r == '_' || i > 0 && (r >= '0' && r <= '9' || r == '$')) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return quoteIdent(s)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
