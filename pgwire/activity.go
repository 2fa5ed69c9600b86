package pgwire

import (
	"time"

	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/pgwire/pgcatalog"
)

// activity is what pg_stat_activity shows of a connection. It is
// guarded by conn.mu.
type activity struct {
	user, database, application string
	started                     time.Time // backend_start
	state                       string    // active, idle, idle in transaction, idle in transaction (aborted)
	stateChange                 time.Time
	query                       string // the running statement, else the last one
	queryStart                  time.Time
	terminated                  bool // pg_terminate_backend asked it to end
}

// setActive records that stmt starts running.
func (c *conn) setActive(stmt parser.Statement) {
	now := time.Now()
	c.mu.Lock()
	c.activity.state, c.activity.stateChange = "active", now
	c.activity.query, c.activity.queryStart = stmt.SQL(), now
	c.mu.Unlock()
}

// setState records the transaction status sent with ReadyForQuery.
func (c *conn) setState(tx byte) {
	state := "idle"
	switch tx {
	case txBlock:
		state = "idle in transaction"
	case txFailed:
		state = "idle in transaction (aborted)"
	}
	c.mu.Lock()
	if c.activity.state != state {
		c.activity.state, c.activity.stateChange = state, time.Now()
	}
	c.mu.Unlock()
}

// backends describes the server's sessions for pg_stat_activity.
func (s *Server) backends() []pgcatalog.Backend {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	out := make([]pgcatalog.Backend, 0, len(conns))
	for _, c := range conns {
		c.mu.Lock()
		a := c.activity
		c.mu.Unlock()
		b := pgcatalog.Backend{PID: int64(c.pid), User: a.user, Database: a.database,
			Application: a.application, Started: a.started, State: a.state,
			StateChange: a.stateChange, Query: a.query, QueryStart: a.queryStart}
		if addr := c.nc.RemoteAddr(); addr != nil {
			b.ClientAddr = addr.String()
		}
		out = append(out, b)
	}
	return out
}

// signal cancels the running statement of the session with process ID
// pid, and with terminate also ends the session. It reports whether there
// was such a session.
func (s *Server) signal(pid int64, terminate bool) bool {
	s.mu.Lock()
	c := s.conns[uint32(pid)]
	s.mu.Unlock()
	if c == nil || pid != int64(c.pid) {
		return false
	}
	c.cancelRunning()
	if terminate {
		_ = c.nc.Close()
	}
	return true
}
