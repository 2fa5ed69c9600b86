package pgwire

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/rs/zerolog"
)

// testServer is a Server on 127.0.0.1:0 with a fakeEngine.
type testServer struct {
	srv    *Server
	engine *fakeEngine
	addr   string
	logs   *syncBuffer
	served chan error
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	cfg.Logger = zerolog.New(logs).Level(zerolog.DebugLevel)
	eng := newFakeEngine()
	srv, err := NewServer(cfg, eng)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, engine: eng, addr: ln.Addr().String(), logs: logs, served: make(chan error, 1)}
	go func() { ts.served <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() {
			srv.Close()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("Server.Close did not return")
		}
		if err := <-ts.served; err != ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ts
}

func (ts *testServer) url() string {
	return fmt.Sprintf("postgres://spate@%s/spate?sslmode=disable&application_name=pgwire_test", ts.addr)
}

func (ts *testServer) connect(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ts.url())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// checkAlive runs SELECT 1 on a fresh connection.
func (ts *testServer) checkAlive(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ts.url())
	if err != nil {
		t.Fatalf("server no longer accepts connections: %v", err)
	}
	defer conn.Close(ctx)
	var one int32
	if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("select 1 on a new connection: %v, %d", err, one)
	}
}

// rawClient speaks the protocol with pgproto3.Frontend.
type rawClient struct {
	t  testing.TB
	nc net.Conn
	fe *pgproto3.Frontend

	pid    uint32
	secret []byte
	params map[string]string
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc, fe: pgproto3.NewFrontend(nc, nc), params: map[string]string{}}
}

// startup sends a StartupMessage and reads up to ReadyForQuery.
func (c *rawClient) startup(params map[string]string) {
	c.t.Helper()
	if params == nil {
		params = map[string]string{"user": "spate", "database": "spate"}
	}
	c.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: params})
	for {
		switch m := c.recvMsg().(type) {
		case *pgproto3.AuthenticationOk:
		case *pgproto3.ParameterStatus:
			c.params[m.Name] = m.Value
		case *pgproto3.BackendKeyData:
			c.pid = m.ProcessID
			c.secret = append([]byte(nil), m.SecretKey...)
		case *pgproto3.ReadyForQuery:
			return
		default:
			c.t.Fatalf("unexpected startup message %T %+v", m, m)
		}
	}
}

func (c *rawClient) send(msgs ...pgproto3.FrontendMessage) {
	c.t.Helper()
	for _, m := range msgs {
		c.fe.Send(m)
	}
	if err := c.fe.Flush(); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *rawClient) recvMsg() pgproto3.BackendMessage {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := c.fe.Receive()
	if err != nil {
		c.t.Fatalf("receive: %v", err)
	}
	return m
}

// recv returns the summary of the next message.
func (c *rawClient) recv() string {
	c.t.Helper()
	return summarize(c.recvMsg())
}

// recvUntil returns summaries up to and including the first one with prefix.
func (c *rawClient) recvUntil(prefix string) []string {
	c.t.Helper()
	var out []string
	for {
		s := c.recv()
		out = append(out, s)
		if strings.HasPrefix(s, prefix) {
			return out
		}
	}
}

// expectClosed asserts that the server closes the connection, allowing the
// given messages (summaries with these prefixes) before.
func (c *rawClient) expectClosed(allowed ...string) []string {
	c.t.Helper()
	var got []string
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		m, err := c.fe.Receive()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				c.t.Fatalf("connection not closed; got %q", got)
			}
			return got
		}
		s := summarize(m)
		got = append(got, s)
		ok := false
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(s, a)
		}
		if !ok {
			c.t.Fatalf("unexpected message before close: %q (all: %q)", s, got)
		}
	}
}

// summarize renders a backend message compactly for assertions.
func summarize(m pgproto3.BackendMessage) string {
	switch m := m.(type) {
	case *pgproto3.RowDescription:
		var parts []string
		for _, f := range m.Fields {
			parts = append(parts, fmt.Sprintf("%s:%d/%d", f.Name, f.DataTypeOID, f.Format))
		}
		return "T " + strings.Join(parts, ",")
	case *pgproto3.DataRow:
		var parts []string
		for _, v := range m.Values {
			if v == nil {
				parts = append(parts, "NULL")
			} else {
				parts = append(parts, fmt.Sprintf("%q", v))
			}
		}
		return "D " + strings.Join(parts, "|")
	case *pgproto3.CommandComplete:
		return "C " + string(m.CommandTag)
	case *pgproto3.ErrorResponse:
		s := "E " + m.Severity + " " + m.Code + " " + m.Message
		if m.Position > 0 {
			s += fmt.Sprintf(" @%d", m.Position)
		}
		return s
	case *pgproto3.ReadyForQuery:
		return "Z " + string(m.TxStatus)
	case *pgproto3.ParseComplete:
		return "ParseComplete"
	case *pgproto3.BindComplete:
		return "BindComplete"
	case *pgproto3.CloseComplete:
		return "CloseComplete"
	case *pgproto3.NoData:
		return "NoData"
	case *pgproto3.PortalSuspended:
		return "PortalSuspended"
	case *pgproto3.EmptyQueryResponse:
		return "EmptyQueryResponse"
	case *pgproto3.ParameterDescription:
		return fmt.Sprintf("ParameterDescription %v", m.ParameterOIDs)
	case *pgproto3.CopyInResponse:
		return fmt.Sprintf("CopyInResponse %d %v", m.OverallFormat, m.ColumnFormatCodes)
	case *pgproto3.CopyOutResponse:
		return fmt.Sprintf("CopyOutResponse %d %v", m.OverallFormat, m.ColumnFormatCodes)
	case *pgproto3.CopyData:
		return fmt.Sprintf("CopyData %q", m.Data)
	case *pgproto3.CopyDone:
		return "CopyDone"
	case *pgproto3.ParameterStatus:
		return "S " + m.Name + "=" + m.Value
	case *pgproto3.NoticeResponse:
		return "N " + m.Message
	default:
		return fmt.Sprintf("%T", m)
	}
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func equalStrings(t testing.TB, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("messages differ\ngot:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
