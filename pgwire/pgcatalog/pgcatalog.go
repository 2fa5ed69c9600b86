// Package pgcatalog answers the catalog queries of PostgreSQL clients —
// psql's \d commands, JDBC's DatabaseMetaData, SQLAlchemy's inspector,
// BI tools — from Spate's catalog. It emulates pg_catalog (pg_class,
// pg_attribute, pg_type, pg_namespace, pg_index, pg_constraint,
// pg_database, pg_roles, pg_settings, pg_proc, pg_am, pg_cursors,
// pg_stat_activity and the empty tables those queries join) and
// information_schema (schemata, tables, columns,
// views, table_constraints, key_column_usage), built from a
// cluster.CatalogView for each statement, and the functions introspection
// queries call (format_type, pg_get_expr, pg_table_is_visible,
// current_schema(), version(), has_*_privilege, ::regclass, …).
//
// Streams and tables are tables (relkind 'r') in schema public;
// continuous queries are materialized views ('m') whose definition is
// their SELECT; the spate_… system tables are views in pg_catalog. User
// relations' OIDs come from a hash of their names, so they stay the same
// from one statement to the next.
//
// Catalog relations are a few hundred rows, so a query runs as a small
// row-at-a-time interpreter over the TiDB AST the parser produces: joins
// are nested loops, subqueries run once per outer row. It supports SELECT
// with joins (inner, left, right, cross, USING), derived tables,
// correlated scalar, EXISTS, IN and ANY subqueries, GROUP BY with the
// usual aggregates, window functions (row_number, rank, dense_rank,
// aggregates over a partition), set-returning functions in the select
// list and in FROM (unnest, generate_series, generate_subscripts,
// _pg_expandarray, pg_get_keywords), WITH, UNION, INTERSECT and EXCEPT,
// ORDER BY, LIMIT and OFFSET. Equality joins look the other side up by
// value, and WHERE conditions filter scans and cross joins as early as
// their columns allow; a query is bounded in the pairs of rows it looks
// at. Result types come from the query alone, so Describe and Execute
// agree.
package pgcatalog

import (
	"context"
	"time"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/parser"
)

// Reads reports whether sel is a catalog query: it reads a pg_catalog or
// information_schema relation, or reads no relation and calls a catalog
// function (SELECT version(), SELECT current_schema()).
func Reads(sel *parser.Select) bool {
	var root ast.Node = sel.Query
	if sel.SetOpr != nil {
		root = sel.SetOpr
	}
	v := &reads{}
	root.Accept(v)
	return v.catalog || !v.relations && v.catalogFunc
}

type reads struct {
	catalog, relations, catalogFunc bool
}

func (v *reads) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.TableName:
		v.relations = true
		if isCatalogRelation(x.Schema.O, x.Name.O) {
			v.catalog = true
		}
	case *ast.FuncCallExpr:
		if _, ok := functions[x.FnName.L]; (ok || setReturning[x.FnName.L]) && !generalFunctions[x.FnName.L] {
			v.catalogFunc = true
		}
	}
	return n, false
}

func (v *reads) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// generalFunctions are functions the engine evaluates too; calling them
// alone does not make a query a catalog query.
var generalFunctions = map[string]bool{"coalesce": true, "nullif": true, "lower": true, "upper": true, "length": true,
	"char_length": true, "replace": true, "concat": true, "starts_with": true, "spate_concat": true, "spate_regexp_i": true,
	"spate_subscript": true, "spate_field": true}

// Query runs a catalog query against view; it stops with ctx's error
// when ctx is done. params are the bound parameters ($1 first): nil,
// bool, int64, float64 or string. The rows hold the Go values of the
// columns' planner types (nil, bool, int64, float64, string).
func Query(ctx context.Context, view cluster.CatalogView, srv Server, sel *parser.Select, params []any) ([]cluster.Column, [][]any, error) {
	e := &engine{ctx: ctx, snap: newSnapshot(view, srv), params: params}
	var node ast.Node = sel.Query
	if sel.SetOpr != nil {
		node = sel.SetOpr
	}
	cols, err := e.columnsOf(node, nil)
	if err != nil {
		return nil, nil, err
	}
	rs, err := e.run(node, nil)
	if err != nil {
		return nil, nil, err
	}
	out := toColumns(cols)
	rows := make([][]any, len(rs.rows))
	for i, r := range rs.rows {
		row := make([]any, len(out))
		for j := range out {
			if j < len(r) {
				v, err := outputValue(r[j], out[j].Type)
				if err != nil {
					return nil, nil, err
				}
				row[j] = v
			}
		}
		rows[i] = row
	}
	return out, rows, nil
}

// Describe returns the columns Query would return, without running it.
func Describe(view cluster.CatalogView, srv Server, sel *parser.Select) ([]cluster.Column, error) {
	e := &engine{ctx: context.Background(), snap: newSnapshot(view, srv)}
	var node ast.Node = sel.Query
	if sel.SetOpr != nil {
		node = sel.SetOpr
	}
	cols, err := e.columnsOf(node, nil)
	if err != nil {
		return nil, err
	}
	return toColumns(cols), nil
}

func toColumns(cols []binding) []cluster.Column {
	out := make([]cluster.Column, len(cols))
	for i, c := range cols {
		out[i] = cluster.Column{Name: c.name, Type: c.typ.planner}
	}
	return out
}

// Server is what the catalog shows of the protocol server: its version
// (version()), the session's process ID (pg_backend_pid()), its sessions
// (pg_stat_activity), and how to cancel or end one
// (pg_cancel_backend, pg_terminate_backend; nil: not possible).
type Server struct {
	Version  string
	PID      int64
	Backends []Backend
	Signal   func(pid int64, terminate bool) bool
}

// Backend is one session of pg_stat_activity.
type Backend struct {
	PID                              int64
	User, Database, Application      string
	ClientAddr                       string // host:port
	State, Query                     string
	Started, StateChange, QueryStart time.Time
}

// Source is where a result column comes from: a relation's OID and the
// column's number (1-based), or zeros for a computed column.
type Source struct {
	OID    uint32
	Attnum uint16
}

// Sources returns the source of each of the n result columns of a
// SELECT that reads one stream, table or continuous query, or nil when
// it reads none or the columns cannot be matched to its select list.
// catalog is called only for such a SELECT.
func Sources(catalog func() cluster.CatalogView, sel *parser.Select, n int) []Source {
	q := sel.Query
	if sel.SetOpr != nil || q.From == nil || q.From.TableRefs == nil || q.From.TableRefs.Right != nil {
		return nil
	}
	ts, ok := q.From.TableRefs.Left.(*ast.TableSource)
	if !ok {
		return nil
	}
	tn, ok := ts.Source.(*ast.TableName)
	if !ok || (tn.Schema.O != "" && tn.Schema.O != "public") {
		return nil
	}
	var r *relation
	for _, u := range userRelations(catalog()) {
		if u.name == tn.Name.O {
			r = u
		}
	}
	if r == nil {
		return nil
	}
	qual := tn.Name.O
	if ts.AsName.O != "" {
		qual = ts.AsName.O
	}
	var out []Source
	for _, f := range q.Fields.Fields {
		if f.WildCard != nil {
			for i := range r.cols {
				out = append(out, Source{uint32(r.oid), uint16(i + 1)})
			}
			continue
		}
		src := Source{}
		if c, ok := f.Expr.(*ast.ColumnNameExpr); ok && (c.Name.Table.O == "" || c.Name.Table.O == qual) {
			for i, col := range r.cols {
				if col.name == c.Name.Name.O {
					src = Source{uint32(r.oid), uint16(i + 1)}
				}
			}
		}
		out = append(out, src)
	}
	if len(out) != n {
		return nil
	}
	return out
}
