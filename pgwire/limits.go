package pgwire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/parser"
)

// Limits that protect the server from its clients. Config.MaxMessageSize
// is enforced by the reader (reader.go); this file has the others.
//
//   - MaxConnections: connections are counted from accept to close. One
//     beyond the limit still gets its SSL/startup exchange (so that the
//     client can show the error) and a CancelRequest is still served, then
//     the session is refused with FATAL 53300. At most MaxConnections more
//     are being refused at a time; further ones are closed at once.
//   - statement_timeout: a statement running longer is cancelled with
//     57014 "canceling statement due to statement timeout". The time
//     counts from each Execute (or each statement of a simple query) until
//     its result has been sent. It does not apply to SUBSCRIBE (nor COPY
//     (SUBSCRIBE …) TO STDOUT, nor DECLARE … CURSOR FOR SUBSCRIBE), which
//     run until the client cancels them, as in Materialize; a FETCH from a
//     cursor is a statement like any other and is bounded by it (use
//     FETCH … WITH (timeout = …) to wait for rows for a while).
//   - idle_session_timeout: a session that has been idle (ReadyForQuery
//     'I' sent, no message since) for longer is closed with FATAL 57P05
//     "terminating connection due to idle-session timeout". Sessions in a
//     transaction block are not idle, as in PostgreSQL.

// SQLSTATEs of the limits.
const (
	codeTooManyConnections = "53300"
	codeCannotConnectNow   = "57P03"
	codeIdleSessionTimeout = "57P05"
)

var (
	// errStatementTimeout is the cancellation cause of a statement that ran
	// longer than statement_timeout.
	errStatementTimeout = &sqlError{code: codeQueryCanceled, msg: "canceling statement due to statement timeout"}
	errIdleTimeout      = errors.New("pgwire: idle-session timeout")
)

// admit counts a new connection. over is set when it is beyond
// MaxConnections (it is to be refused after its startup packet); ok is
// false when even the refusals are over their bound (close it at once).
func (s *Server) admit() (over, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.active < s.cfg.MaxConnections:
		s.active++
		return false, true
	case s.refusing < s.cfg.MaxConnections:
		s.refusing++
		return true, true
	}
	return true, false
}

// release uncounts a connection admit counted.
func (s *Server) release(over bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if over {
		s.refusing--
	} else {
		s.active--
	}
}

// SetStartingUp makes the server refuse sessions, after their startup
// packet, with FATAL 57P03 "the database system is starting up" (as
// PostgreSQL does during its recovery) while on is true: serve listens
// while its engine replays the log, so clients learn why they must wait.
func (s *Server) SetStartingUp(on bool) { s.startingUp.Store(on) }

func startingUp() error {
	msg := "the database system is starting up"
	return fatal(errors.New(msg), errorResponse("FATAL", codeCannotConnectNow, msg))
}

func tooManyConnections() error {
	msg := "sorry, too many clients already"
	return fatal(errors.New(msg), errorResponse("FATAL", codeTooManyConnections, msg))
}

// applySessionDefaults sets the session's statement_timeout and
// idle_session_timeout to the server's defaults.
func (c *conn) applySessionDefaults() error {
	for name, d := range map[string]time.Duration{"statement_timeout": c.srv.cfg.StatementTimeout, "idle_session_timeout": c.srv.cfg.IdleSessionTimeout} {
		if d <= 0 {
			continue
		}
		stmt, err := parser.ParseOne(fmt.Sprintf("SET %s = '%dms'", name, max(d.Milliseconds(), 1)))
		if err != nil {
			return err
		}
		if _, err := c.sess.Execute(c.ctx, stmt, nil); err != nil {
			return fmt.Errorf("setting %s: %w", name, err)
		}
	}
	return nil
}

// settingDuration reads a time setting of the session (0 when unset or
// invalid: the engine validates what SET stores).
func (c *conn) settingDuration(name string) time.Duration {
	v, ok := c.sess.Setting(name)
	if !ok || v == "" {
		return 0
	}
	d, err := cluster.SettingDuration(v)
	if err != nil {
		return 0
	}
	return d
}

// runsUntilCancelled reports whether stmt streams a result until the
// client cancels it (statement_timeout does not apply).
func runsUntilCancelled(stmt parser.Statement) bool {
	switch x := stmt.(type) {
	case *parser.Subscribe:
		return true
	case *parser.Copy:
		return runsUntilCancelled(x.Query)
	case *parser.Declare:
		return runsUntilCancelled(x.Query)
	}
	return false
}

// armStatementTimeout starts the statement_timeout clock for the running
// statement (registered with setRunning) and returns the function that
// stops it.
func (c *conn) armStatementTimeout(stmt parser.Statement) (stop func()) {
	d := c.settingDuration("statement_timeout")
	if d <= 0 || runsUntilCancelled(stmt) {
		return func() {}
	}
	c.mu.Lock()
	c.timeoutSeq++
	seq := c.timeoutSeq
	c.mu.Unlock()
	t := time.AfterFunc(d, func() {
		c.mu.Lock()
		cancel := c.running
		if c.timeoutSeq != seq {
			cancel = nil // stopped meanwhile: the statement is over
		}
		c.mu.Unlock()
		if cancel != nil {
			cancel(errStatementTimeout)
		}
	})
	return func() {
		t.Stop()
		c.mu.Lock()
		c.timeoutSeq++
		c.mu.Unlock()
	}
}

// nextMessage waits for the next client message; while the session is
// idle it does so for at most idle_session_timeout.
func (c *conn) nextMessage(interrupt <-chan struct{}) (frame, error) {
	if !c.idle {
		return c.in.next(c.ctx, interrupt)
	}
	c.idle = false
	d := c.settingDuration("idle_session_timeout")
	if d <= 0 {
		return c.in.next(c.ctx, interrupt)
	}
	ctx, cancel := context.WithTimeoutCause(c.ctx, d, errIdleTimeout)
	defer cancel()
	f, err := c.in.next(ctx, interrupt)
	if err != nil && c.ctx.Err() == nil && errors.Is(context.Cause(ctx), errIdleTimeout) {
		msg := "terminating connection due to idle-session timeout"
		return f, fatal(errIdleTimeout, errorResponse("FATAL", codeIdleSessionTimeout, msg))
	}
	return f, err
}

// tlsRequired is the FATAL error for a plaintext client of a server that
// requires TLS.
func tlsRequired() error {
	msg := "no encryption: this server accepts only TLS connections (connect with sslmode=require, verify-ca or verify-full)"
	return fatal(errors.New(msg), errorResponse("FATAL", codeInvalidAuthorization, msg))
}

// After an oversized message the server reads and discards what the
// client still sends, for at most this long and this much: a socket
// closed with unread input is reset, and the client might lose the FATAL
// message sent just before.
const (
	lingerTime  = time.Second
	lingerBytes = 64 << 20
)

// drainInput closes the connection's sending side and discards the
// client's input until it closes its side too or the linger bounds are
// reached. Only when no reader goroutine reads the socket.
func (c *conn) drainInput() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.Copy(io.Discard, io.LimitReader(c.br, lingerBytes))
}
