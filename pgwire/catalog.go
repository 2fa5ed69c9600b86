package pgwire

import (
	"context"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/pgwire/pgcatalog"
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
	n, _ := pgcatalog.Params(sel)
	types := pgcatalog.ParamTypes(c.sess.Catalog(), c.catalogServer(false), sel, n)
	return cluster.Described{Columns: cols, ParamTypes: types}, nil
}

// executeCatalog runs a catalog query.
func (c *conn) executeCatalog(ctx context.Context, sel *parser.Select, params []cluster.Param) (cluster.Result, error) {
	cols, rows, err := pgcatalog.Query(ctx, c.sess.Catalog(), c.catalogServer(true), sel, params)
	if err != nil {
		return cluster.Result{}, err
	}
	return cluster.RowsResult(cols, rows, "")
}
