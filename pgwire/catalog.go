package pgwire

import (
	"context"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/exec"
	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/pgwire/pgcatalog"
	"github.com/spatedb/spate/planner"
)

// Catalog queries (pg_catalog, information_schema, version(), …) are
// answered here by pgcatalog from the session's view of the catalog; every
// other statement goes to the engine.

// catalogSelect returns stmt as a catalog query, or nil.
func catalogSelect(stmt parser.Statement) *parser.Select {
	if sel, ok := stmt.(*parser.Select); ok && pgcatalog.Reads(sel) {
		return sel
	}
	return nil
}

// catalogServer is what the catalog shows of the server: version(),
// pg_backend_pid(), pg_stat_activity (read only when a query needs it)
// and pg_cancel_backend/pg_terminate_backend.
func (c *conn) catalogServer(withBackends bool) pgcatalog.Server {
	srv := pgcatalog.Server{
		Version: c.srv.cfg.ServerVersion + " on x86_64-pc-linux-gnu, compiled by Go",
		PID:     int64(c.pid),
		Signal:  c.srv.signal,
	}
	if withBackends {
		srv.Backends = c.srv.backends()
	}
	return srv
}

// describeCatalog describes a catalog query: its columns and one text
// parameter for each $n it uses.
func (c *conn) describeCatalog(sel *parser.Select) (cluster.Described, error) {
	cols, err := pgcatalog.Describe(c.sess.Catalog(), c.catalogServer(false), sel)
	if err != nil {
		return cluster.Described{}, err
	}
	types := pgcatalog.ParamTypes(c.sess.Catalog(), c.catalogServer(false), sel, maxParam(sel))
	return cluster.Described{Columns: cols, ParamTypes: types}, nil
}

// executeCatalog runs a catalog query.
func (c *conn) executeCatalog(ctx context.Context, sel *parser.Select, params []cluster.Param) (cluster.Result, error) {
	cols, rows, err := pgcatalog.Query(ctx, c.sess.Catalog(), c.catalogServer(true), sel, params)
	if err != nil {
		return cluster.Result{}, err
	}
	pcols := make([]planner.Column, len(cols))
	for i, col := range cols {
		pcols[i] = planner.Column{Name: col.Name, Type: col.Type}
	}
	var batches []arrow.RecordBatch
	if len(rows) > 0 {
		rec, err := exec.RecordFromValues(cluster.ArrowSchema(pcols), rows)
		if err != nil {
			return cluster.Result{}, err
		}
		batches = append(batches, rec)
	}
	return cluster.Result{Columns: cols, Rows: &batchStream{batches: batches}}, nil
}

// maxParam is the highest $n of a statement.
func maxParam(sel *parser.Select) int {
	var root ast.Node = sel.Query
	if sel.SetOpr != nil {
		root = sel.SetOpr
	}
	v := &paramFinder{}
	root.Accept(v)
	return v.max
}

// arrayParams lists the $n a catalog query compares with ANY or ALL
// (x = ANY($1)): their type is text[].
func arrayParams(sel *parser.Select) []int {
	var root ast.Node = sel.Query
	if sel.SetOpr != nil {
		root = sel.SetOpr
	}
	v := &paramFinder{}
	root.Accept(v)
	return v.arrays
}

type paramFinder struct {
	max    int
	arrays []int
}

// paramNumber is n for spate_param(n), else 0.
func paramNumber(n ast.Node) int {
	if f, ok := n.(*ast.FuncCallExpr); ok && f.FnName.L == "spate_param" && len(f.Args) == 1 {
		if val, ok := f.Args[0].(ast.ValueExpr); ok {
			if i, ok := val.GetValue().(int64); ok {
				return int(i)
			}
		}
	}
	return 0
}

func (v *paramFinder) Enter(n ast.Node) (ast.Node, bool) {
	if i := paramNumber(n); i > v.max {
		v.max = i
	}
	if f, ok := n.(*ast.FuncCallExpr); ok && (f.FnName.L == "spate_any" || f.FnName.L == "spate_all") && len(f.Args) == 1 {
		if i := paramNumber(f.Args[0]); i > 0 {
			v.arrays = append(v.arrays, i)
		}
	}
	return n, false
}

func (v *paramFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// batchStream is a RowStream over batches already computed.
type batchStream struct {
	batches []arrow.RecordBatch
}

func (s *batchStream) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(s.batches) == 0 {
		return nil, io.EOF
	}
	b := s.batches[0]
	s.batches = s.batches[1:]
	return b, nil
}

func (s *batchStream) Close() {
	for _, b := range s.batches {
		b.Release()
	}
	s.batches = nil
}
