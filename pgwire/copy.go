package pgwire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/spatedb/spate/cluster"
)

// copyInState is a running COPY FROM STDIN.
type copyInState struct {
	p  *portal
	ci cluster.CopyIn
}

// beginCopyIn starts the COPY FROM STDIN sub-protocol for portal p: the
// connection moves to stateCopyIn and handleCopyIn takes the data.
func (c *conn) beginCopyIn(p *portal) error {
	p.state = portalCopyIn
	c.copy = &copyInState{p: p, ci: p.res.CopyIn}
	c.state = stateCopyIn
	c.send(&pgproto3.CopyInResponse{
		OverallFormat:     0,
		ColumnFormatCodes: make([]uint16, len(p.res.CopyInColumns)),
	})
	return c.flush()
}

// handleCopyIn handles one message in stateCopyIn.
func (c *conn) handleCopyIn(f frame) error {
	ci := c.copy.ci
	switch f.typ {
	case 'd':
		if err := ci.Write(f.body); err != nil {
			ci.Abort(err.Error())
			return c.endCopyIn(err)
		}
		return nil
	case 'c':
		n, err := ci.Finish()
		if err != nil {
			return c.endCopyIn(err)
		}
		c.send(&pgproto3.CommandComplete{CommandTag: []byte("COPY " + strconv.FormatInt(n, 10))})
		return c.endCopyIn(nil)
	case 'f':
		var m pgproto3.CopyFail
		if err := m.Decode(f.body); err != nil {
			return malformed(f.typ, err)
		}
		kept := ci.Abort(m.Message)
		return c.endCopyIn(withKept(&sqlError{code: codeQueryCanceled, msg: "COPY from stdin failed: " + m.Message}, kept))
	case 'H', 'S':
		// Ignored during COPY, as PostgreSQL does.
		return nil
	case 'X':
		c.state = stateClosed // cleanup aborts the copy
		return nil
	}
	if !knownMessage(f.typ) {
		return unknownMessage(f.typ)
	}
	msg := fmt.Sprintf("unexpected message type 0x%02X during COPY from stdin", f.typ)
	ci.Abort(msg)
	return c.endCopyIn(&sqlError{code: codeProtocolViolation, msg: msg})
}

// copyInterrupted handles the cancellation of a running COPY FROM STDIN
// (CancelRequest or server shutdown).
func (c *conn) copyInterrupted() error {
	cp := c.copy
	err := c.stmtErr(cp.p, context.Cause(cp.p.ctx))
	var fe *fatalError
	if errors.As(err, &fe) {
		return err // cleanup aborts the copy
	}
	kept := cp.ci.Abort(err.Error())
	return c.endCopyIn(withKept(err, kept))
}

// withKept adds to an aborted COPY's error what the COPY ingested before
// it (kept, from CopyIn.Abort), which stays.
func withKept(err error, kept string) error {
	var coded interface{ SQLState() string }
	if kept == "" || !errors.As(err, &coded) {
		return err
	}
	return &sqlError{code: coded.SQLState(), msg: err.Error() + " (" + kept + ")"}
}

// endCopyIn leaves stateCopyIn. After an error the client is told at once
// (further CopyData, CopyDone and CopyFail are ignored); a simple query
// then ends with ReadyForQuery and an extended one discards until Sync.
// After success a simple query goes on with its next statement.
func (c *conn) endCopyIn(err error) error {
	cp := c.copy
	c.copy = nil
	c.state = stateIdle
	c.setRunning(nil)
	cp.p.close()
	simple := cp.p.simple
	if err != nil {
		c.sendError(err)
		if simple {
			c.simple = nil
			return c.readyForQuery()
		}
		c.state = stateSkipToSync
		return c.flush()
	}
	if simple {
		return c.continueSimple()
	}
	return nil
}

// copyOutFormat fills in the defaults of a CopyFormat.
func copyOutFormat(f cluster.CopyFormat) cluster.CopyFormat {
	if f.CSV {
		if f.Delimiter == 0 {
			f.Delimiter = ','
		}
		if f.Quote == 0 {
			f.Quote = '"'
		}
		if f.Escape == 0 {
			f.Escape = f.Quote
		}
	} else {
		if f.Delimiter == 0 {
			f.Delimiter = '\t'
		}
		if f.Null == "" {
			f.Null = `\N`
		}
	}
	return f
}

// copyOut runs COPY … TO STDOUT for portal p: CopyOutResponse, one
// CopyData per row, CopyDone, "COPY n". Output is flushed after every
// batch so that a COPY (SUBSCRIBE …) shows rows as they come.
func (c *conn) copyOut(p *portal) error {
	p.state = portalRows
	format := copyOutFormat(p.res.CopyOutFormat)
	cols := p.res.Columns
	c.send(&pgproto3.CopyOutResponse{OverallFormat: 0, ColumnFormatCodes: make([]uint16, len(cols))})
	if format.Header {
		start := c.beginCopyData()
		for j, col := range cols {
			if j > 0 {
				c.out = append(c.out, format.Delimiter)
			}
			if format.CSV {
				c.out = appendCSV(c.out, []byte(col.Name), format, len(cols) == 1)
			} else {
				c.out = appendCopyText(c.out, []byte(col.Name), format.Delimiter)
			}
		}
		c.endCopyData(start)
	}
	stop := context.AfterFunc(c.in.gone, func() { p.cancel(errClientGone) })
	defer stop()
	var rows int64
	for {
		if err := c.flush(); err != nil {
			p.close()
			return err
		}
		rec, err := p.res.Rows.Next(p.ctx)
		if errors.Is(err, io.EOF) {
			p.close()
			c.send(&pgproto3.CopyDone{})
			c.send(&pgproto3.CommandComplete{CommandTag: []byte("COPY " + strconv.FormatInt(rows, 10))})
			return nil
		}
		if err != nil {
			err = c.stmtErr(p, err)
			p.close()
			return err
		}
		n := int(rec.NumRows())
		ncols := int(rec.NumCols())
		if cap(c.cols) < ncols {
			c.cols = make([]colBuf, ncols)
		}
		bufs := c.cols[:ncols]
		const chunk = 1024
		for lo := 0; lo < n; lo += chunk {
			hi := min(lo+chunk, n)
			for j := range bufs {
				bufs[j].reset()
				encodeText(&bufs[j], rec.Column(j), lo, hi)
			}
			for r := 0; r < hi-lo; r++ {
				start := c.beginCopyData()
				for j := range bufs {
					if j > 0 {
						c.out = append(c.out, format.Delimiter)
					}
					switch {
					case bufs[j].nulls[r]:
						c.out = append(c.out, format.Null...)
					case format.CSV:
						c.out = appendCSV(c.out, bufs[j].value(r), format, ncols == 1)
					default:
						c.out = appendCopyText(c.out, bufs[j].value(r), format.Delimiter)
					}
				}
				c.endCopyData(start)
			}
			if len(c.out) > flushThreshold {
				if err := c.flush(); err != nil {
					rec.Release()
					p.close()
					return err
				}
			}
		}
		rows += int64(n)
		rec.Release()
	}
}

// beginCopyData starts a CopyData message in the output buffer and
// returns its start for endCopyData.
func (c *conn) beginCopyData() int {
	start := len(c.out)
	c.out = append(c.out, 'd', 0, 0, 0, 0)
	return start
}

// endCopyData ends the row with a newline and fills in the length.
func (c *conn) endCopyData(start int) {
	c.out = append(c.out, '\n')
	n := len(c.out) - start - 1
	c.out[start+1], c.out[start+2], c.out[start+3], c.out[start+4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
}

// appendCopyText appends v escaped for COPY's text format, as PostgreSQL's
// CopyAttributeOutText: backslash, the delimiter and the control
// characters \b \f \n \r \t \v are backslash-escaped.
func appendCopyText(dst, v []byte, delim byte) []byte {
	for _, ch := range v {
		switch {
		case ch < 0x20:
			var esc byte
			switch ch {
			case '\b':
				esc = 'b'
			case '\f':
				esc = 'f'
			case '\n':
				esc = 'n'
			case '\r':
				esc = 'r'
			case '\t':
				esc = 't'
			case '\v':
				esc = 'v'
			}
			switch {
			case esc != 0:
				dst = append(dst, '\\', esc)
			case ch == delim:
				dst = append(dst, '\\', ch)
			default:
				dst = append(dst, ch)
			}
		case ch == '\\' || ch == delim:
			dst = append(dst, '\\', ch)
		default:
			dst = append(dst, ch)
		}
	}
	return dst
}

// appendCSV appends v as a CSV field, as PostgreSQL's CopyAttributeOutCSV:
// quoted when it contains the delimiter, the quote, CR or LF, when it
// equals the NULL string, or when it is `\.` alone on a line; inside
// quotes the quote and escape characters are escaped.
func appendCSV(dst, v []byte, f cluster.CopyFormat, singleColumn bool) []byte {
	quote := string(v) == f.Null || (singleColumn && string(v) == `\.`)
	if !quote {
		for _, ch := range v {
			if ch == f.Delimiter || ch == f.Quote || ch == '\n' || ch == '\r' {
				quote = true
				break
			}
		}
	}
	if !quote {
		return append(dst, v...)
	}
	dst = append(dst, f.Quote)
	for _, ch := range v {
		if ch == f.Quote || ch == f.Escape {
			dst = append(dst, f.Escape)
		}
		dst = append(dst, ch)
	}
	return append(dst, f.Quote)
}
