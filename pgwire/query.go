package pgwire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/exec"
	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/pgwire/pgcatalog"
)

// prepared is a prepared statement (Parse).
type prepared struct {
	stmt    parser.Statement
	oids    []uint32 // one per parameter: the client's OID from Parse, else the described type's
	columns []cluster.Column
}

// portalState is the life cycle of a portal.
type portalState uint8

const (
	portalNew    portalState = iota // bound, not executed
	portalRows                      // executed; rows remain (suspended by max rows)
	portalCopyIn                    // executing COPY FROM STDIN
	portalDone                      // finished, failed or closed
)

// portal is a bound statement (Bind), or the transient portal of one
// statement of a simple query.
type portal struct {
	stmt    parser.Statement
	params  []cluster.Param
	columns []cluster.Column // as described; the result's own once executed
	formats []int16          // result format codes as bound: none, one for all, or one per column

	simple bool // part of a simple query: RowDescription precedes rows
	state  portalState
	ctx    context.Context // lives from the first Execute until close
	cancel context.CancelCauseFunc
	res    cluster.Result
	tag    string // command tag of a finished non-row statement

	// Rows not yet sent: rec[recRow:]. rec is owned (released on close).
	rec    arrow.RecordBatch
	recRow int
	oids   []uint32 // per result column
	fmts   []int16  // per result column
}

// format returns the result format of column i.
func (p *portal) format(i int) int16 {
	switch len(p.formats) {
	case 0:
		return formatText
	case 1:
		return p.formats[0]
	default:
		if i < len(p.formats) {
			return p.formats[i]
		}
		return formatText
	}
}

// setColumns fixes the result columns and their OIDs and formats.
func (p *portal) setColumns(cols []cluster.Column) {
	p.columns = cols
	p.oids = make([]uint32, len(cols))
	p.fmts = make([]int16, len(cols))
	for i, col := range cols {
		p.oids[i], _ = typeOID(col.Type)
		p.fmts[i] = p.format(i)
	}
}

// close releases the portal's stream, batch and context. Idempotent.
func (p *portal) close() {
	if p.rec != nil {
		p.rec.Release()
		p.rec = nil
	}
	if p.res.Rows != nil {
		p.res.Rows.Close()
		p.res.Rows = nil
	}
	if p.cancel != nil {
		p.cancel(context.Canceled)
	}
	p.state = portalDone
}

// rowDescription describes the columns cols of stmt with the given
// per-column formats. A column that is a stream's, table's or continuous
// query's own column carries that relation's OID and the column's number,
// as in PostgreSQL (JDBC's ResultSetMetaData reads them).
func (c *conn) rowDescription(stmt parser.Statement, cols []cluster.Column, format func(int) int16) *pgproto3.RowDescription {
	var sources []pgcatalog.Source
	if sel, ok := stmt.(*parser.Select); ok && catalogSelect(stmt) == nil {
		sources = pgcatalog.Sources(c.sess.Catalog, sel, len(cols))
	}
	fields := make([]pgproto3.FieldDescription, len(cols))
	for i, col := range cols {
		oid, size := typeOID(col.Type)
		fields[i] = pgproto3.FieldDescription{
			Name:         []byte(col.Name),
			DataTypeOID:  oid,
			DataTypeSize: size,
			TypeModifier: -1,
			Format:       format(i),
		}
		if sources != nil {
			fields[i].TableOID, fields[i].TableAttributeNumber = sources[i].OID, sources[i].Attnum
		}
	}
	return &pgproto3.RowDescription{Fields: fields}
}

// ---- simple query ----

// simpleQuery runs a Query message: every statement in order, stopping at
// the first error, then ReadyForQuery.
func (c *conn) simpleQuery(sql string) error {
	// The simple protocol replaces the unnamed statement and portal.
	delete(c.stmts, "")
	if p := c.portals[""]; p != nil {
		p.close()
		delete(c.portals, "")
	}
	stmts, err := parseSQL(sql)
	if err != nil {
		c.sendError(err)
		return c.readyForQuery()
	}
	if len(stmts) == 0 {
		c.send(&pgproto3.EmptyQueryResponse{})
		return c.readyForQuery()
	}
	c.simple = stmts
	return c.continueSimple()
}

// continueSimple runs the remaining statements of a simple query. A COPY
// FROM STDIN suspends it; handleCopyIn resumes it.
func (c *conn) continueSimple() error {
	for len(c.simple) > 0 {
		st := c.simple[0]
		c.simple = c.simple[1:]
		p := &portal{stmt: st, simple: true}
		err := c.execute(p, 0)
		if c.state == stateCopyIn {
			return err
		}
		p.close()
		if err != nil {
			c.simple = nil
			var fe *fatalError
			if errors.As(err, &fe) {
				return err
			}
			c.sendError(err)
			break
		}
	}
	c.simple = nil
	return c.readyForQuery()
}

// parseSQL parses a message's SQL text, which must be UTF-8 (22021, as
// PostgreSQL answers, before the parser sees it).
func parseSQL(sql string) ([]parser.Statement, error) {
	if !utf8.ValidString(sql) {
		return nil, exec.CheckUTF8([]byte(sql))
	}
	return parser.Parse(sql)
}

// ---- extended query ----

func (c *conn) handleParse(m *pgproto3.Parse) error {
	if m.Name != "" {
		if _, dup := c.stmts[m.Name]; dup {
			return &sqlError{code: codeDuplicatePStatement, msg: fmt.Sprintf("prepared statement %q already exists", m.Name)}
		}
	} else {
		delete(c.stmts, "")
	}
	stmts, err := parseSQL(m.Query)
	if err != nil {
		return err
	}
	if len(stmts) != 1 {
		return &sqlError{code: parser.CodeSyntax, msg: "cannot insert multiple commands into a prepared statement"}
	}
	stmt := stmts[0]
	if c.tx == txFailed && !endsTransaction(stmt) {
		return errInFailedTx
	}
	ps := &prepared{stmt: stmt}
	var desc cluster.Described
	if _, empty := stmt.(*parser.Empty); !empty {
		desc, err = c.describe(stmt)
		if err != nil {
			return err
		}
	}
	n := max(len(m.ParameterOIDs), len(desc.ParamTypes))
	if n > math.MaxUint16 { // a ParameterDescription counts them in 16 bits
		return &sqlError{code: codeProgramLimit, msg: fmt.Sprintf("a statement may have at most %d parameters, this one has %d", math.MaxUint16, n)}
	}
	ps.oids = make([]uint32, n)
	for i := range ps.oids {
		if i < len(m.ParameterOIDs) && m.ParameterOIDs[i] != 0 {
			ps.oids[i] = m.ParameterOIDs[i]
		} else if i < len(desc.ParamTypes) {
			ps.oids[i], _ = typeOID(desc.ParamTypes[i])
		} else {
			ps.oids[i] = oidText
		}
	}
	if sel := catalogSelect(stmt); sel != nil {
		_, arrays := pgcatalog.Params(sel)
		for _, n := range arrays {
			if n <= len(ps.oids) && (n > len(m.ParameterOIDs) || m.ParameterOIDs[n-1] == 0) {
				ps.oids[n-1] = oidTextArray
			}
		}
	}
	ps.columns = desc.Columns
	c.stmts[m.Name] = ps
	c.send(&pgproto3.ParseComplete{})
	return nil
}

// describe runs Session.Describe as a cancellable statement.
func (c *conn) describe(stmt parser.Statement) (cluster.Described, error) {
	p := &portal{}
	p.ctx, p.cancel = context.WithCancelCause(c.ctx)
	defer p.cancel(context.Canceled)
	c.setRunning(p.cancel)
	defer c.setRunning(nil)
	var desc cluster.Described
	var err error
	if sel := catalogSelect(stmt); sel != nil {
		desc, err = c.describeCatalog(sel)
	} else {
		desc, err = c.sess.Describe(p.ctx, stmt)
	}
	if err != nil {
		return desc, c.stmtErr(p, err)
	}
	return desc, nil
}

var errInFailedTx = &sqlError{code: codeInFailedTx, msg: "current transaction is aborted, commands ignored until end of transaction block"}

// endsTransaction reports whether stmt is COMMIT or ROLLBACK, the only
// statements accepted in a failed transaction block.
func endsTransaction(stmt parser.Statement) bool {
	t, ok := stmt.(*parser.Transaction)
	return ok && (t.Verb == "COMMIT" || t.Verb == "ROLLBACK")
}

func (c *conn) lookupStmt(name string) (*prepared, error) {
	ps := c.stmts[name]
	if ps == nil {
		if name == "" {
			return nil, &sqlError{code: codeUndefinedPStatement, msg: "unnamed prepared statement does not exist"}
		}
		return nil, &sqlError{code: codeUndefinedPStatement, msg: fmt.Sprintf("prepared statement %q does not exist", name)}
	}
	return ps, nil
}

func (c *conn) lookupPortal(name string) (*portal, error) {
	p := c.portals[name]
	if p == nil {
		return nil, &sqlError{code: codeUndefinedCursor, msg: fmt.Sprintf("portal %q does not exist", name)}
	}
	return p, nil
}

func (c *conn) handleBind(m *pgproto3.Bind) error {
	ps, err := c.lookupStmt(m.PreparedStatement)
	if err != nil {
		return err
	}
	if len(m.Parameters) != len(ps.oids) {
		return &sqlError{code: codeProtocolViolation, msg: fmt.Sprintf("bind message supplies %d parameters, but prepared statement %q requires %d", len(m.Parameters), m.PreparedStatement, len(ps.oids))}
	}
	if n := len(m.ParameterFormatCodes); n > 1 && n != len(m.Parameters) {
		return &sqlError{code: codeProtocolViolation, msg: fmt.Sprintf("bind message has %d parameter formats but %d parameters", n, len(m.Parameters))}
	}
	if n := len(m.ResultFormatCodes); n > 1 && n != len(ps.columns) {
		return &sqlError{code: codeProtocolViolation, msg: fmt.Sprintf("bind message has %d result formats but query has %d columns", n, len(ps.columns))}
	}
	for _, f := range m.ResultFormatCodes {
		if f != formatText && f != formatBinary {
			return &sqlError{code: codeProtocolViolation, msg: fmt.Sprintf("unsupported format code: %d", f)}
		}
	}
	params, err := decodeParams(ps.oids, m.ParameterFormatCodes, m.Parameters)
	if err != nil {
		return err
	}
	if m.DestinationPortal != "" {
		if _, dup := c.portals[m.DestinationPortal]; dup {
			return &sqlError{code: codeDuplicateCursor, msg: fmt.Sprintf("cursor %q already exists", m.DestinationPortal)}
		}
	} else if old := c.portals[""]; old != nil {
		old.close()
	}
	p := &portal{stmt: ps.stmt, params: params, formats: append([]int16(nil), m.ResultFormatCodes...)}
	p.setColumns(ps.columns)
	c.portals[m.DestinationPortal] = p
	c.send(&pgproto3.BindComplete{})
	return nil
}

func (c *conn) handleDescribe(m *pgproto3.Describe) error {
	switch m.ObjectType {
	case 'S':
		ps, err := c.lookupStmt(m.Name)
		if err != nil {
			return err
		}
		c.send(&pgproto3.ParameterDescription{ParameterOIDs: ps.oids})
		if len(ps.columns) == 0 {
			c.send(&pgproto3.NoData{})
		} else {
			c.send(c.rowDescription(ps.stmt, ps.columns, func(int) int16 { return formatText }))
		}
	case 'P':
		p, err := c.lookupPortal(m.Name)
		if err != nil {
			return err
		}
		if len(p.columns) == 0 {
			c.send(&pgproto3.NoData{})
		} else {
			c.send(c.rowDescription(p.stmt, p.columns, p.format))
		}
	default:
		return &sqlError{code: codeProtocolViolation, msg: fmt.Sprintf("invalid DESCRIBE message subtype %d", m.ObjectType)}
	}
	return nil
}

func (c *conn) handleExecute(m *pgproto3.Execute) error {
	p, err := c.lookupPortal(m.Portal)
	if err != nil {
		return err
	}
	maxRows := int(m.MaxRows)
	if m.MaxRows > 1<<31-1 || maxRows < 0 {
		maxRows = 0
	}
	return c.execute(p, maxRows)
}

func (c *conn) handleClose(m *pgproto3.Close) error {
	switch m.ObjectType {
	case 'S':
		delete(c.stmts, m.Name)
	case 'P':
		if p := c.portals[m.Name]; p != nil {
			p.close()
			delete(c.portals, m.Name)
		}
	default:
		return &sqlError{code: codeProtocolViolation, msg: fmt.Sprintf("invalid CLOSE message subtype %d", m.ObjectType)}
	}
	c.send(&pgproto3.CloseComplete{})
	return nil
}

// ---- execution ----

// execute runs portal p, or resumes it when an earlier Execute stopped at
// maxRows (0 = no limit). A simple-query portal (p.simple) sends
// RowDescription before its rows. It returns statement errors for the caller
// to report and *fatalError when the connection must end.
func (c *conn) execute(p *portal, maxRows int) error {
	switch p.state {
	case portalDone:
		// A finished portal runs no more: PostgreSQL reports zero rows.
		if p.tag != "" {
			c.send(&pgproto3.CommandComplete{CommandTag: []byte(p.tag)})
		} else {
			c.send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 0")})
		}
		return nil
	case portalRows:
		c.setRunning(p.cancel)
		defer c.setRunning(nil)
		defer c.armStatementTimeout(p.stmt)() // limits.go
		return c.sendRows(p, maxRows)
	}

	if _, empty := p.stmt.(*parser.Empty); empty {
		p.state = portalDone
		c.send(&pgproto3.EmptyQueryResponse{})
		return nil
	}
	if c.tx == txFailed && !endsTransaction(p.stmt) {
		p.state = portalDone
		return errInFailedTx
	}
	p.ctx, p.cancel = context.WithCancelCause(c.ctx)
	c.setRunning(p.cancel)
	defer func() {
		if p.state != portalCopyIn {
			c.setRunning(nil)
		}
	}()
	defer c.armStatementTimeout(p.stmt)() // limits.go
	if _, waits := p.stmt.(*parser.Fetch); waits {
		// A FETCH may wait for rows: stop it when the client goes away.
		stop := context.AfterFunc(c.in.gone, func() { p.cancel(errClientGone) })
		defer stop()
	}
	c.setActive(p.stmt)
	var res cluster.Result
	var err error
	if sel := catalogSelect(p.stmt); sel != nil {
		res, err = c.executeCatalog(p.ctx, sel, p.params)
	} else {
		res, err = c.sess.Execute(p.ctx, p.stmt, p.params)
	}
	if err != nil {
		p.state = portalDone
		return c.stmtErr(p, err)
	}
	p.res = res
	for _, n := range res.Notices {
		c.send(&pgproto3.NoticeResponse{Severity: n.Severity, SeverityUnlocalized: n.Severity, Code: n.Code, Message: n.Message, Hint: n.Hint})
	}
	switch {
	case res.CopyIn != nil:
		return c.beginCopyIn(p)
	case res.Rows != nil && res.CopyOut:
		return c.copyOut(p)
	case res.Rows != nil:
		p.state = portalRows
		if res.Binary && p.simple {
			p.formats = []int16{formatBinary} // FETCH from a BINARY cursor
		}
		if len(res.Columns) > 0 {
			p.setColumns(res.Columns)
			if p.simple {
				c.send(c.rowDescription(p.stmt, p.columns, p.format))
			}
		} else if p.simple || len(p.oids) == 0 {
			p.columns = nil // taken from the first batch
		}
		return c.sendRows(p, maxRows)
	default:
		p.state = portalDone
		p.tag = res.Tag
		if p.tag == "" {
			p.tag = defaultTag(p.stmt)
		}
		if c.tx == txFailed && endsTransaction(p.stmt) {
			p.tag = "ROLLBACK" // COMMIT of a failed transaction block rolls back
		}
		c.afterCommand(p.stmt)
		c.send(&pgproto3.CommandComplete{CommandTag: []byte(p.tag)})
		return nil
	}
}

// afterCommand applies what a successful statement changes on the
// connection: transaction status and reported parameters.
func (c *conn) afterCommand(stmt parser.Statement) {
	switch s := stmt.(type) {
	case *parser.Transaction:
		switch s.Verb {
		case "BEGIN":
			if c.tx == txIdle {
				c.tx = txBlock
			}
		case "COMMIT", "ROLLBACK":
			c.tx = txIdle
		}
	case *parser.Set:
		c.reportChanges()
		if app, ok := c.sess.Setting("application_name"); ok {
			c.mu.Lock()
			c.activity.application = app
			c.mu.Unlock()
		}
	}
}

// defaultTag is the command tag of a statement whose Result has no Tag.
func defaultTag(stmt parser.Statement) string {
	if _, ok := stmt.(*parser.Insert); ok {
		return "INSERT 0 0"
	}
	if name := parser.CommandName(stmt); name != "" {
		return name
	}
	return "OK"
}

// stmtErr translates an error of a running statement. Cancellation by a
// CancelRequest becomes 57014; a vanished client or a closing server end
// the connection.
func (c *conn) stmtErr(p *portal, err error) error {
	if p.ctx != nil && p.ctx.Err() != nil {
		cause := context.Cause(p.ctx)
		switch {
		case errors.Is(cause, errCanceledByUser):
			return errCanceledByUser
		case errors.Is(cause, errStatementTimeout):
			return errStatementTimeout
		case errors.Is(cause, errClientGone):
			return fatal(errClientGone, nil)
		case c.ctx.Err() != nil:
			return fatal(errServerClosing, adminShutdown())
		}
	}
	return err
}

// sendRows sends the portal's rows as DataRows until the stream ends
// (CommandComplete) or maxRows rows were sent (PortalSuspended). Output is
// flushed whenever the stream is about to block, so streaming results
// reach the client as each batch arrives.
func (c *conn) sendRows(p *portal, maxRows int) error {
	stop := context.AfterFunc(c.in.gone, func() { p.cancel(errClientGone) })
	defer stop()
	sent := 0
	for maxRows == 0 || sent < maxRows {
		if p.rec == nil {
			if err := c.flush(); err != nil {
				p.close()
				return err
			}
			rec, err := p.res.Rows.Next(p.ctx)
			if err != nil {
				tag := p.res.Tag
				if !errors.Is(err, io.EOF) {
					err = c.stmtErr(p, err)
					p.close()
					return err
				}
				p.close()
				if tag == "" {
					tag = "SELECT " + strconv.Itoa(sent)
				}
				c.send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
				return nil
			}
			if p.columns == nil {
				p.setColumns(columnsFromSchema(rec.Schema()))
				if p.simple {
					c.send(c.rowDescription(p.stmt, p.columns, p.format))
				}
			}
			if rec.NumRows() == 0 {
				rec.Release()
				continue
			}
			p.rec, p.recRow = rec, 0
		}
		n := int(p.rec.NumRows()) - p.recRow
		if maxRows > 0 && n > maxRows-sent {
			n = maxRows - sent
		}
		if err := c.appendDataRows(p, p.recRow, p.recRow+n); err != nil {
			p.close()
			return err
		}
		sent += n
		p.recRow += n
		if p.recRow == int(p.rec.NumRows()) {
			p.rec.Release()
			p.rec = nil
		}
	}
	c.send(&pgproto3.PortalSuspended{})
	return nil
}

// appendDataRows encodes rows [from, to) of the portal's current batch as
// DataRow messages. The batch is encoded column by column into reused
// buffers, then the rows are assembled into the output buffer; output is
// written out whenever it exceeds flushThreshold.
func (c *conn) appendDataRows(p *portal, from, to int) error {
	const chunk = 1024 // rows encoded per pass, bounding the scratch buffers
	rec := p.rec
	ncols := int(rec.NumCols())
	if ncols != len(p.oids) {
		return &sqlError{code: codeInternal, msg: fmt.Sprintf("result batch has %d columns, expected %d", ncols, len(p.oids))}
	}
	if cap(c.cols) < ncols {
		c.cols = make([]colBuf, ncols)
	}
	cols := c.cols[:ncols]
	for lo := from; lo < to; lo += chunk {
		hi := min(lo+chunk, to)
		size := 0
		for j := range cols {
			cols[j].reset()
			if err := encodeColumn(&cols[j], rec.Column(j), lo, hi, p.oids[j], p.fmts[j]); err != nil {
				return err
			}
			size += len(cols[j].data)
		}
		c.out = growBytes(c.out, size+(hi-lo)*(7+4*ncols))
		for r := 0; r < hi-lo; r++ {
			start := len(c.out)
			c.out = append(c.out, 'D', 0, 0, 0, 0, byte(ncols>>8), byte(ncols))
			for j := range cols {
				if cols[j].nulls[r] {
					c.out = append(c.out, 0xff, 0xff, 0xff, 0xff)
					continue
				}
				v := cols[j].value(r)
				n := len(v)
				c.out = append(c.out, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
				c.out = append(c.out, v...)
			}
			n := len(c.out) - start - 1
			c.out[start+1], c.out[start+2], c.out[start+3], c.out[start+4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		}
		if len(c.out) > flushThreshold {
			if err := c.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// growBytes makes room for n more bytes in b.
func growBytes(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), 2*cap(b)+n)
	copy(nb, b)
	return nb
}
