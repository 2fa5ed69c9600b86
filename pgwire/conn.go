package pgwire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/rs/zerolog"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/parser"
)

// connState is the state of a connection's protocol state machine.
//
//	startup ──StartupMessage──▶ idle ◀──────────────┐
//	   │ SSLRequest/GSSEncRequest: 'N', stay        │
//	   │ CancelRequest, bad packet: closed          │
//	idle ──Query/Parse/Bind/Describe/Execute/…──▶ idle
//	idle ──error in an extended-protocol message──▶ skipToSync ──Sync──▶ idle
//	idle ──COPY … FROM STDIN──▶ copyIn ──CopyDone/CopyFail/error──▶ idle (or skipToSync)
//	any ──Terminate, protocol violation, socket closed──▶ closed
type connState uint8

const (
	stateStartup connState = iota
	stateIdle
	stateSkipToSync
	stateCopyIn
	stateClosed
)

func (s connState) String() string {
	return [...]string{"startup", "idle", "skipToSync", "copyIn", "closed"}[s]
}

// Transaction status bytes of ReadyForQuery.
const (
	txIdle   byte = 'I'
	txBlock  byte = 'T'
	txFailed byte = 'E'
)

// Output buffer thresholds.
const (
	flushThreshold = 64 << 10 // write out when the buffer grows beyond this
	keepOutBuffer  = 1 << 20  // shrink a larger buffer after a flush
)

// conn is one client connection. All fields except mu's are used only by
// the connection goroutine.
type conn struct {
	srv *Server
	nc  net.Conn
	log zerolog.Logger
	ctx context.Context // cancelled when the server or Serve stops
	br  *bufio.Reader
	in  *reader
	out []byte // pending output; written by flush

	state   connState
	tx      byte
	pid     uint32
	secret  [4]byte
	sess    cluster.Session
	user    string
	reports map[string]string // ParameterStatus values last sent
	startup map[string]string // startup parameters

	tls       bool // the connection negotiated TLS (auth.go)
	overLimit bool // beyond MaxConnections: refused after the startup packet
	idle      bool // ReadyForQuery 'I' was sent and no message came since
	drain     bool // read what the client still sends after the FATAL error (limits.go)

	stmts   map[string]*prepared
	portals map[string]*portal
	simple  []parser.Statement // rest of a simple query suspended by COPY FROM
	copy    *copyInState       // the running COPY FROM STDIN

	cols []colBuf // scratch buffers of the row encoder
	line []byte   // scratch line of COPY TO

	msgs messages // decode flyweights

	mu sync.Mutex
	// Protected by mu:
	running    context.CancelCauseFunc // cancels the running statement; nil when none runs
	timeoutSeq uint64                  // tells statement_timeout clocks apart (limits.go)
	activity   activity                // what pg_stat_activity shows (activity.go)
}

// messages are the frontend messages decoded in place.
type messages struct {
	query    pgproto3.Query
	parse    pgproto3.Parse
	bind     pgproto3.Bind
	describe pgproto3.Describe
	execute  pgproto3.Execute
	close    pgproto3.Close
	copyFail pgproto3.CopyFail
}

// serveConn runs one connection until it ends. It is the connection
// goroutine; it owns the reader goroutine and the session. overLimit: the
// connection is beyond MaxConnections.
func (s *Server) serveConn(ctx context.Context, nc net.Conn, overLimit bool) {
	c := &conn{
		srv:       s,
		nc:        nc,
		overLimit: overLimit,
		log:       s.log.With().Str("remote", nc.RemoteAddr().String()).Logger(),
		ctx:       ctx,
		br:        bufio.NewReaderSize(nc, 32<<10),
		state:     stateStartup,
		tx:        txIdle,
		reports:   make(map[string]string),
		stmts:     make(map[string]*prepared),
		portals:   make(map[string]*portal),
	}
	// On shutdown unblock the socket: reads stop at once, writes get a
	// moment to deliver the goodbye message.
	unblock := context.AfterFunc(ctx, func() {
		_ = nc.SetReadDeadline(time.Now())
		_ = nc.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	})
	defer unblock()
	defer c.cleanup()
	defer c.recoverPanic()
	c.run()
}

// recoverPanic turns a panic on the connection goroutine into FATAL XX000
// for this client; the server keeps serving the others.
func (c *conn) recoverPanic() {
	v := recover()
	if v == nil {
		return
	}
	c.log.Error().Str("panic", fmt.Sprint(v)).Bytes("stack", debug.Stack()).Msg("pgwire: panic in connection; closing it")
	c.out = c.out[:0] // may hold a partial message
	c.send(toErrorResponse("FATAL", &panicError{v: v}))
	_ = c.flush()
	c.state = stateClosed
}

// cleanup releases everything the connection holds. It runs on every exit
// path, after a panic too.
func (c *conn) cleanup() {
	safely := func(f func()) {
		defer func() {
			if v := recover(); v != nil {
				c.log.Error().Str("panic", fmt.Sprint(v)).Msg("pgwire: panic during connection cleanup")
			}
		}()
		f()
	}
	if c.copy != nil {
		cp := c.copy
		c.copy = nil
		safely(func() { cp.ci.Abort("connection closed") })
		cp.p.close()
	}
	for name, p := range c.portals {
		safely(p.close)
		delete(c.portals, name)
	}
	if c.sess != nil {
		safely(c.sess.Close)
	}
	if c.pid != 0 {
		c.srv.unregister(c)
	}
	c.nc.Close()
	if c.in != nil {
		<-c.in.done
	}
}

// run is the connection's main loop: startup, then one message at a time.
func (c *conn) run() {
	if !c.handshake() {
		return
	}
	stop, cancelReader := context.WithCancelCause(context.Background())
	defer cancelReader(errors.New("pgwire: connection closing"))
	c.in = startReader(stop, c.br, c.srv.cfg.MaxMessageSize)

	for c.state != stateClosed {
		var interrupt <-chan struct{}
		if c.copy != nil {
			interrupt = c.copy.p.ctx.Done()
		}
		f, err := c.nextMessage(interrupt)
		if err == nil {
			err = c.handle(f)
		} else if errors.Is(err, errInterrupted) {
			err = c.copyInterrupted()
		} else {
			err = c.inputEnded(err)
		}
		if err != nil {
			c.endWith(err)
			return
		}
	}
	_ = c.flush()
}

// inputEnded handles the end of the client's input: EOF, socket errors,
// oversized or malformed messages, and server shutdown.
func (c *conn) inputEnded(err error) error {
	var tl *tooLargeError
	var pe *protocolError
	var fe *fatalError
	switch {
	case errors.As(err, &fe): // the idle-session timeout
		return err
	case c.ctx.Err() != nil:
		return fatal(err, adminShutdown())
	case errors.As(err, &tl):
		c.drain = true // the client is likely still sending the message
		return fatal(err, errorResponse("FATAL", codeProgramLimit, tl.Error()))
	case errors.As(err, &pe):
		return fatal(err, toErrorResponse("FATAL", pe))
	default: // EOF or a socket error: nobody to tell.
		return fatal(err, nil)
	}
}

// endWith reports a connection-ending error to the client when it can.
func (c *conn) endWith(err error) {
	var fe *fatalError
	if !errors.As(err, &fe) {
		fe = &fatalError{err: err, resp: toErrorResponse("FATAL", err)}
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, errClientGone) {
		c.log.Debug().Err(err).Str("state", c.state.String()).Msg("pgwire: closing connection")
	}
	if fe.resp != nil {
		c.send(fe.resp)
		if c.flush() == nil && c.drain {
			c.drainInput()
		}
	}
	c.state = stateClosed
}

// handle dispatches one message according to the connection state.
func (c *conn) handle(f frame) error {
	switch c.state {
	case stateCopyIn:
		return c.handleCopyIn(f)
	case stateSkipToSync:
		switch f.typ {
		case 'S':
			c.state = stateIdle
			return c.readyForQuery()
		case 'X':
			c.state = stateClosed
			return nil
		}
		if !knownMessage(f.typ) {
			return unknownMessage(f.typ)
		}
		return nil // discarded until Sync
	}
	switch f.typ {
	case 'Q':
		if err := c.msgs.query.Decode(f.body); err != nil {
			return malformed(f.typ, err)
		}
		return c.simpleQuery(c.msgs.query.String)
	case 'P':
		if err := c.msgs.parse.Decode(f.body); err != nil {
			return malformed(f.typ, err)
		}
		return c.extended(c.handleParse(&c.msgs.parse))
	case 'B':
		if err := c.msgs.bind.Decode(f.body); err != nil {
			return malformed(f.typ, err)
		}
		return c.extended(c.handleBind(&c.msgs.bind))
	case 'D':
		if err := c.msgs.describe.Decode(f.body); err != nil {
			return malformed(f.typ, err)
		}
		return c.extended(c.handleDescribe(&c.msgs.describe))
	case 'E':
		if err := c.msgs.execute.Decode(f.body); err != nil {
			return malformed(f.typ, err)
		}
		return c.extended(c.handleExecute(&c.msgs.execute))
	case 'C':
		if err := c.msgs.close.Decode(f.body); err != nil {
			return malformed(f.typ, err)
		}
		return c.extended(c.handleClose(&c.msgs.close))
	case 'S':
		return c.readyForQuery()
	case 'H':
		return c.flush()
	case 'X':
		c.state = stateClosed
		return nil
	case 'd', 'c', 'f':
		// Left over from a COPY that failed while the client kept sending:
		// ignored, as PostgreSQL does.
		return nil
	case 'F':
		c.sendError(&sqlError{code: codeFeatureNotSupported, msg: "function call messages are not supported"})
		return c.readyForQuery()
	case 'p':
		return fatal(errors.New("unexpected password message"), errorResponse("FATAL", codeProtocolViolation, "unexpected password message"))
	default:
		return unknownMessage(f.typ)
	}
}

func knownMessage(t byte) bool {
	switch t {
	case 'Q', 'P', 'B', 'D', 'E', 'C', 'S', 'H', 'X', 'd', 'c', 'f', 'F', 'p':
		return true
	}
	return false
}

func unknownMessage(t byte) error {
	msg := fmt.Sprintf("invalid frontend message type %d", t)
	return fatal(errors.New(msg), errorResponse("FATAL", codeProtocolViolation, msg))
}

func malformed(t byte, err error) error {
	msg := fmt.Sprintf("invalid message format (type %q): %v", t, err)
	return fatal(errors.New(msg), errorResponse("FATAL", codeProtocolViolation, msg))
}

// extended finishes an extended-protocol message: a statement-level error
// is reported and the connection discards messages until Sync; a fatal
// error ends the connection.
func (c *conn) extended(err error) error {
	if err == nil {
		return nil
	}
	var fe *fatalError
	if errors.As(err, &fe) {
		return err
	}
	var pe *protocolError
	if errors.As(err, &pe) {
		return fatal(err, toErrorResponse("FATAL", pe))
	}
	c.sendError(err)
	if c.state != stateClosed {
		c.state = stateSkipToSync
	}
	return nil
}

// sendError sends a statement-level ErrorResponse and marks an open
// transaction block failed.
func (c *conn) sendError(err error) {
	c.send(toErrorResponse("ERROR", err))
	if c.tx == txBlock {
		c.tx = txFailed
	}
}

// readyForQuery ends a query cycle. Outside a transaction block the
// implicit transaction ends, which drops every portal.
func (c *conn) readyForQuery() error {
	if c.tx == txIdle {
		for name, p := range c.portals {
			p.close()
			delete(c.portals, name)
		}
	}
	c.send(&pgproto3.ReadyForQuery{TxStatus: c.tx})
	c.idle = c.tx == txIdle
	c.setState(c.tx)
	return c.flush()
}

// send appends msg to the output buffer.
func (c *conn) send(msg pgproto3.BackendMessage) {
	out, err := msg.Encode(c.out)
	if err != nil {
		// Only messages over 1 GiB fail to encode; report instead.
		out, _ = toErrorResponse("ERROR", fmt.Errorf("pgwire: cannot encode %T: %w", msg, err)).Encode(c.out)
	}
	c.out = out
}

// flush writes the pending output. A write error ends the connection.
func (c *conn) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	_, err := c.nc.Write(c.out)
	if cap(c.out) > keepOutBuffer {
		c.out = make([]byte, 0, flushThreshold)
	} else {
		c.out = c.out[:0]
	}
	if err != nil {
		return fatal(fmt.Errorf("pgwire: write: %w", err), nil)
	}
	return nil
}

// setRunning registers (or, with nil, clears) the cancel function of the
// running statement for CancelRequest.
func (c *conn) setRunning(cancel context.CancelCauseFunc) {
	c.mu.Lock()
	c.running = cancel
	c.mu.Unlock()
}

// cancelRunning cancels the running statement, if any. Safe to call from
// any goroutine.
func (c *conn) cancelRunning() {
	c.mu.Lock()
	cancel := c.running
	c.mu.Unlock()
	if cancel != nil {
		cancel(errCanceledByUser)
	}
}
