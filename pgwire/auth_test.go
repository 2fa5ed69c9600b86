package pgwire

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/rs/zerolog"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/internal/sqltest"
)

// authEngine is a fakeEngine with roles: the ones in verifiers (a nil
// verifier: a role without a password) and "spate".
type authEngine struct {
	*fakeEngine
	verifiers map[string]*cluster.SCRAMVerifier
}

var _ cluster.Authenticator = (*authEngine)(nil)

func newAuthEngine(passwords map[string]string) *authEngine {
	e := &authEngine{fakeEngine: newFakeEngine(), verifiers: map[string]*cluster.SCRAMVerifier{"spate": nil}}
	for role, pw := range passwords {
		if pw == "" {
			e.verifiers[role] = nil
			continue
		}
		v := cluster.NewSCRAMVerifier(pw)
		e.verifiers[role] = &v
	}
	return e
}

func (e *authEngine) PasswordVerifier(role string) (cluster.SCRAMVerifier, bool) {
	v := e.verifiers[role]
	if v == nil {
		return cluster.SCRAMVerifier{}, false
	}
	return *v, true
}

func (e *authEngine) NewSession(ctx context.Context, user, database string) (cluster.Session, error) {
	if _, ok := e.verifiers[user]; !ok {
		return nil, &testSQLError{code: "28000", msg: fmt.Sprintf("role %q does not exist", user)}
	}
	return e.fakeEngine.NewSession(ctx, user, database)
}

// remoteListener makes every accepted connection report a remote
// address that is not loopback, as a client on another machine has.
type remoteListener struct {
	net.Listener
}

type remoteConn struct{ net.Conn }

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{c}, nil
}

func (remoteConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.ParseIP("192.0.2.77"), Port: 40000}
}

// startServerWith is startServer with an engine of the test's and, with
// remote, connections that look remote.
func startServerWith(t testing.TB, cfg Config, engine cluster.Engine, fake *fakeEngine, remote bool) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	cfg.Logger = zerolog.New(logs).Level(zerolog.DebugLevel)
	srv, err := NewServer(cfg, engine)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if remote {
		ln = remoteListener{ln}
	}
	ts := &testServer{srv: srv, engine: fake, addr: addr, logs: logs, served: make(chan error, 1)}
	go func() { ts.served <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-ts.served; err != ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ts
}

// pgxConnect connects with a libpq-style connection string's settings
// added to ts's address.
func pgxConnect(ts *testServer, settings string) (*pgx.Conn, error) {
	host, port, _ := net.SplitHostPort(ts.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return pgx.Connect(ctx, fmt.Sprintf("host=%s port=%s dbname=spate connect_timeout=10 %s", host, port, settings))
}

// sqlState is the SQLSTATE of a pgx error ("" for none).
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func mustSelect1(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	var one int32
	if err := conn.QueryRow(context.Background(), "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("select 1: %d, %v", one, err)
	}
}

func TestSCRAMAuthentication(t *testing.T) {
	eng := newAuthEngine(map[string]string{"spate": "s3cret pw", "alice": "pâss wörd", "nopw": ""})
	ts := startServerWith(t, Config{Auth: AuthSCRAM}, eng, eng.fakeEngine, false)

	for user, pw := range map[string]string{"spate": "s3cret pw", "alice": "pâss wörd"} {
		conn, err := pgxConnect(ts, fmt.Sprintf("user=%s password='%s' sslmode=disable", user, pw))
		if err != nil {
			t.Fatalf("%s with the right password: %v", user, err)
		}
		mustSelect1(t, conn)
		conn.Close(context.Background())
	}
	// A wrong password, a role that does not exist and a role without a
	// password all fail the same way.
	for _, c := range []struct{ user, pw string }{{"spate", "wrong"}, {"spate", ""}, {"ghost", "s3cret pw"}, {"nopw", "x"}} {
		_, err := pgxConnect(ts, fmt.Sprintf("user=%s password='%s' sslmode=disable", c.user, c.pw))
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "28P01" || pe.Severity != "FATAL" || pe.Message != fmt.Sprintf("password authentication failed for user %q", c.user) {
			t.Errorf("%s/%q: %v, want FATAL 28P01", c.user, c.pw, err)
		}
	}
	ts.checkAliveAs(t, "spate", "s3cret pw")

	// psql (libpq) with PGPASSWORD.
	psql := sqltest.RequireBinary(t, "psql")
	host, port, _ := net.SplitHostPort(ts.addr)
	conninfo := fmt.Sprintf("host=%s port=%s user=spate dbname=spate sslmode=disable", host, port)
	out, stderr, err := runPsqlEnv(psql, conninfo, "s3cret pw", "-c", "SELECT 1")
	if err != nil || !strings.Contains(out, "(1 row)") {
		t.Fatalf("psql with the password: %v\n%s%s", err, out, stderr)
	}
	_, stderr, err = runPsqlEnv(psql, conninfo, "nope", "-c", "SELECT 1")
	if err == nil || !strings.Contains(stderr, `FATAL:  password authentication failed for user "spate"`) {
		t.Fatalf("psql with a wrong password: %v\n%s", err, stderr)
	}
	// Without a password, psql -w gives up at once.
	_, stderr, err = runPsqlEnv(psql, conninfo, "", "-w", "-c", "SELECT 1")
	if err == nil || !strings.Contains(stderr, "no password supplied") {
		t.Fatalf("psql without a password: %v\n%s", err, stderr)
	}
}

// checkAliveAs is checkAlive with a password.
func (ts *testServer) checkAliveAs(t *testing.T, user, password string) {
	t.Helper()
	conn, err := pgxConnect(ts, fmt.Sprintf("user=%s password='%s' sslmode=disable", user, password))
	if err != nil {
		t.Fatalf("server no longer accepts connections: %v", err)
	}
	defer conn.Close(context.Background())
	mustSelect1(t, conn)
}

// runPsqlEnv runs psql -X against conninfo with PGPASSWORD set (when not
// empty).
func runPsqlEnv(psql, conninfo, password string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := osexec.CommandContext(ctx, psql, append([]string{"-X", "-d", conninfo}, args...)...)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PAGER=", "LC_ALL=C.UTF-8", "PGPASSWORD="+password)
	if password == "" {
		cmd.Env = append(cmd.Env[:len(cmd.Env)-1], "PGPASSFILE=/nonexistent")
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// TestLoopbackTrust checks the default policy: a loopback client needs no
// password, a remote one authenticates, and a role must exist.
func TestLoopbackTrust(t *testing.T) {
	eng := newAuthEngine(map[string]string{"alice": "pw-a"})
	local := startServerWith(t, Config{}, eng, eng.fakeEngine, false)
	conn, err := pgxConnect(local, "user=alice sslmode=disable")
	if err != nil {
		t.Fatalf("loopback without a password: %v", err)
	}
	mustSelect1(t, conn)
	conn.Close(context.Background())
	// Trust still needs the role to exist (the engine says so).
	if _, err := pgxConnect(local, "user=ghost sslmode=disable"); sqlState(err) != "28000" || !strings.Contains(err.Error(), `role "ghost" does not exist`) {
		t.Errorf("unknown role on loopback: %v", err)
	}

	remote := startServerWith(t, Config{}, eng, eng.fakeEngine, true)
	if _, err := pgxConnect(remote, "user=alice sslmode=disable"); sqlState(err) != "28P01" {
		t.Errorf("remote without a password: %v, want 28P01", err)
	}
	if _, err := pgxConnect(remote, "user=spate sslmode=disable"); sqlState(err) != "28P01" {
		t.Errorf("remote spate without a password set: %v, want 28P01", err)
	}
	conn, err = pgxConnect(remote, "user=alice password=pw-a sslmode=disable")
	if err != nil {
		t.Fatalf("remote with the password: %v", err)
	}
	mustSelect1(t, conn)
	conn.Close(context.Background())
}

func TestTLS(t *testing.T) {
	certs := sqltest.WriteCerts(t)
	eng := newAuthEngine(map[string]string{"spate": "tls-pw"})
	ts := startServerWith(t, Config{TLS: certs.ServerTLS(t), Auth: AuthSCRAM}, eng, eng.fakeEngine, false)
	_, port, _ := net.SplitHostPort(ts.addr)

	for _, settings := range []string{
		"sslmode=require",
		"sslmode=verify-ca sslrootcert=" + certs.CAFile,
		"sslmode=verify-full sslrootcert=" + certs.CAFile,
		"sslmode=verify-full channel_binding=require sslrootcert=" + certs.CAFile, // SCRAM-SHA-256-PLUS
	} {
		conn, err := pgxConnect(ts, "user=spate password=tls-pw "+settings)
		if err != nil {
			t.Fatalf("pgx %s: %v", settings, err)
		}
		if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
			t.Errorf("pgx %s: not a TLS connection", settings)
		}
		mustSelect1(t, conn)
		conn.Close(context.Background())
	}
	// verify-full against a host name the certificate does not have.
	if _, err := pgx.Connect(context.Background(), fmt.Sprintf("host=127.0.0.2 port=%s user=spate password=tls-pw sslmode=verify-full sslrootcert=%s connect_timeout=5", port, certs.CAFile)); err == nil {
		t.Error("verify-full accepted a certificate for another host")
	}
	// Without TLS the server still serves (RequireTLS is off).
	conn, err := pgxConnect(ts, "user=spate password=tls-pw sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())

	psql := sqltest.RequireBinary(t, "psql")
	for _, mode := range []string{"sslmode=require", "sslmode=verify-full sslrootcert=" + certs.CAFile + " channel_binding=require"} {
		conninfo := fmt.Sprintf("host=localhost port=%s user=spate dbname=spate %s", port, mode)
		out, stderr, err := runPsqlEnv(psql, conninfo, "tls-pw", "-c", `\conninfo`, "-c", "SELECT 1")
		if err != nil || !strings.Contains(out, "SSL connection (protocol: TLSv1.3") || !strings.Contains(out, "(1 row)") {
			t.Fatalf("psql %s: %v\n%s%s", mode, err, out, stderr)
		}
	}
}

func TestTLSRequired(t *testing.T) {
	certs := sqltest.WriteCerts(t)
	ts := startServer(t, Config{TLS: certs.ServerTLS(t), RequireTLS: true})
	_, err := pgxConnect(ts, "user=spate sslmode=disable")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28000" || pe.Severity != "FATAL" || !strings.Contains(pe.Message, "accepts only TLS connections") {
		t.Fatalf("plaintext client: %v, want FATAL 28000", err)
	}
	// sslmode=prefer (pgx's default) and require get TLS.
	for _, mode := range []string{"sslmode=prefer", "sslmode=require", "sslmode=verify-full sslrootcert=" + certs.CAFile} {
		conn, err := pgxConnect(ts, "user=spate "+mode)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		mustSelect1(t, conn)
		conn.Close(context.Background())
	}
	psql := sqltest.RequireBinary(t, "psql")
	host, port, _ := net.SplitHostPort(ts.addr)
	_, stderr, err := runPsqlEnv(psql, fmt.Sprintf("host=%s port=%s user=spate dbname=spate sslmode=disable", host, port), "", "-c", "SELECT 1")
	if err == nil || !strings.Contains(stderr, "FATAL:  no encryption") {
		t.Fatalf("psql sslmode=disable: %v\n%s", err, stderr)
	}
	// Config validation: RequireTLS needs TLS.
	if err := (Config{RequireTLS: true}).Validate(); err == nil {
		t.Error("RequireTLS without TLS validated")
	}
}

// TestSCRAMMalformed sends broken SASL messages; each ends the
// connection with a FATAL error and the server goes on.
func TestSCRAMMalformed(t *testing.T) {
	eng := newAuthEngine(map[string]string{"spate": "pw"})
	ts := startServerWith(t, Config{Auth: AuthSCRAM}, eng, eng.fakeEngine, false)
	cases := []struct {
		name string
		msgs []pgproto3.FrontendMessage
		want string
	}{
		{"wrong mechanism", []pgproto3.FrontendMessage{&pgproto3.SASLInitialResponse{AuthMechanism: "PLAIN", Data: []byte("x")}}, "E FATAL 08P01 client selected an invalid SASL"},
		{"plus without TLS", []pgproto3.FrontendMessage{&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256-PLUS", Data: []byte("p=tls-server-end-point,,n=,r=abc")}}, "E FATAL 08P01 client selected an invalid SASL"},
		{"garbage first", []pgproto3.FrontendMessage{&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("\x00\xff")}}, "E FATAL 08P01 malformed SCRAM message"},
		{"binding without PLUS", []pgproto3.FrontendMessage{&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("p=tls-server-end-point,,n=,r=abc")}}, "E FATAL 08P01 channel binding was requested"},
		{"authzid", []pgproto3.FrontendMessage{&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,a=bob,n=,r=abc")}}, "E FATAL 08P01 client uses authorization identity"},
		{"bad nonce", []pgproto3.FrontendMessage{&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=")}}, "E FATAL 08P01 malformed SCRAM message"},
		{"query instead", []pgproto3.FrontendMessage{&pgproto3.Query{String: "select 1"}}, "E FATAL 08P01 expected SASL response"},
		{"final garbage", []pgproto3.FrontendMessage{
			&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=abc")},
			&pgproto3.SASLResponse{Data: []byte("c=biws,r=abc,p=AAAA")}}, "E FATAL 08P01 malformed SCRAM message"},
		{"final wrong binding", []pgproto3.FrontendMessage{
			&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=abc")},
			&pgproto3.SASLResponse{Data: []byte("c=eSws,r=abc,p=AAAA")}}, "E FATAL 08P01 SCRAM channel binding check failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, ts.addr)
			c.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "spate"}})
			if m, ok := c.recvMsg().(*pgproto3.AuthenticationSASL); !ok || strings.Join(m.AuthMechanisms, ",") != "SCRAM-SHA-256" {
				t.Fatalf("got %#v, want AuthenticationSASL SCRAM-SHA-256", m)
			}
			c.send(tc.msgs[0])
			if len(tc.msgs) > 1 {
				if _, ok := c.recvMsg().(*pgproto3.AuthenticationSASLContinue); !ok {
					t.Fatal("no SASLContinue")
				}
				c.send(tc.msgs[1])
			}
			got := c.expectClosed("E FATAL")
			if len(got) != 1 || !strings.HasPrefix(got[0], tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	ts.checkAliveAs(t, "spate", "pw")
}

// refusedAtStartup checks that a pgx and a psql connection are refused
// with FATAL code and msg.
func refusedAtStartup(t *testing.T, ts *testServer, code, msg string) {
	t.Helper()
	_, err := pgxConnect(ts, "user=spate sslmode=disable")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != code || pe.Severity != "FATAL" || pe.Message != msg {
		t.Fatalf("pgx connection: %v, want FATAL %s %s", err, code, msg)
	}
	psql := sqltest.RequireBinary(t, "psql")
	host, port, _ := net.SplitHostPort(ts.addr)
	_, stderr, err := runPsqlEnv(psql, fmt.Sprintf("host=%s port=%s user=spate dbname=spate", host, port), "", "-c", "SELECT 1")
	if err == nil || !strings.Contains(stderr, "FATAL:  "+msg) {
		t.Fatalf("psql connection: %v\n%s", err, stderr)
	}
}

// TestStartingUp: while the engine recovers, a client gets FATAL 57P03
// after its startup packet (psql shows it), and sessions open once it is
// done.
func TestStartingUp(t *testing.T) {
	ts := startServer(t, Config{})
	ts.srv.SetStartingUp(true)
	refusedAtStartup(t, ts, "57P03", "the database system is starting up")
	ts.srv.SetStartingUp(false)
	mustSelect1(t, ts.connect(t))
}

func TestMaxConnections(t *testing.T) {
	ts := startServer(t, Config{MaxConnections: 2})
	a := ts.connect(t)
	b := dialRaw(t, ts.addr)
	b.startup(nil)
	refusedAtStartup(t, ts, "53300", "sorry, too many clients already")
	// The sessions in use go on, and a cancel request still gets through.
	mustSelect1(t, a)
	b.send(&pgproto3.Query{String: "select slow"})
	time.Sleep(50 * time.Millisecond)
	cc := dialRaw(t, ts.addr)
	cc.send(&pgproto3.CancelRequest{ProcessID: b.pid, SecretKey: b.secret})
	cc.expectClosed()
	equalStrings(t, b.recvUntil("Z"), []string{"E ERROR 57014 canceling statement due to user request", "Z I"})
	a.Close(context.Background())
	waitFor(t, "a free connection slot", func() bool {
		conn, err := pgxConnect(ts, "user=spate sslmode=disable")
		if err != nil {
			return false
		}
		conn.Close(context.Background())
		return true
	})
}

func TestStatementTimeout(t *testing.T) {
	ts := startServer(t, Config{StatementTimeout: 150 * time.Millisecond})
	c := dialRaw(t, ts.addr)
	c.startup(nil)
	// The server's default reached the session through SET.
	ts.engine.mu.Lock()
	sess := ts.engine.sessions[len(ts.engine.sessions)-1]
	ts.engine.mu.Unlock()
	if v, _ := sess.Setting("statement_timeout"); v != "150ms" {
		t.Errorf("statement_timeout = %q, want 150ms", v)
	}
	start := time.Now()
	c.send(&pgproto3.Query{String: "select slow"})
	equalStrings(t, c.recvUntil("Z"), []string{"E ERROR 57014 canceling statement due to statement timeout", "Z I"})
	if d := time.Since(start); d < 150*time.Millisecond || d > 5*time.Second {
		t.Errorf("timed out after %v", d)
	}
	// The extended protocol, and a session that turned it off.
	c.send(&pgproto3.Parse{Query: "select slow"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	equalStrings(t, c.recvUntil("Z"), []string{"ParseComplete", "BindComplete", "E ERROR 57014 canceling statement due to statement timeout", "Z I"})
	c.send(&pgproto3.Query{String: "SET statement_timeout = 0; select 1"})
	c.recvUntil("Z")

	// SUBSCRIBE is not bound by it.
	c2 := dialRaw(t, ts.addr)
	c2.startup(nil)
	c2.send(&pgproto3.Query{String: "SUBSCRIBE q"})
	fs := <-ts.engine.streams
	if got := c2.recv(); !strings.HasPrefix(got, "T ") {
		t.Fatalf("SUBSCRIBE: %q", got)
	}
	time.Sleep(400 * time.Millisecond)
	fs.push(subscribeBatch([]string{"+"}, []int64{7}))
	if got := c2.recv(); got != `D "+"|"7"` {
		t.Fatalf("SUBSCRIBE after the timeout: %q", got)
	}
}

func TestIdleSessionTimeout(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	c.startup(nil)
	c.send(&pgproto3.Query{String: "SET idle_session_timeout = '200ms'"})
	c.recvUntil("Z")
	// Busy or in a transaction block is not idle.
	c.send(&pgproto3.Query{String: "BEGIN"})
	c.recvUntil("Z")
	time.Sleep(400 * time.Millisecond)
	c.send(&pgproto3.Query{String: "COMMIT"})
	equalStrings(t, c.recvUntil("Z"), []string{"C COMMIT", "Z I"})
	start := time.Now()
	got := c.expectClosed("E FATAL 57P05")
	if len(got) != 1 || got[0] != "E FATAL 57P05 terminating connection due to idle-session timeout" {
		t.Fatalf("got %q", got)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("closed after %v", d)
	}
	// The server default.
	ts2 := startServer(t, Config{IdleSessionTimeout: 100 * time.Millisecond})
	c2 := dialRaw(t, ts2.addr)
	c2.startup(nil)
	c2.expectClosed("E FATAL 57P05")
	ts2.checkAlive(t)
}

// TestGarbageAfterStartup: garbage bytes after a good startup end only
// that connection, with an error (a bad length: 08P01; an HTTP request,
// whose "length" is over a GiB: 54000).
func TestGarbageAfterStartup(t *testing.T) {
	ts := startServer(t, Config{})
	good := dialRaw(t, ts.addr)
	good.startup(nil)
	for garbage, want := range map[string]string{
		"Q\x00\x00\x00\x02garbage\xff\xff":  "E FATAL 08P01 invalid message length 2",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n": "E FATAL 54000 message of",
	} {
		bad := dialRaw(t, ts.addr)
		bad.startup(nil)
		if _, err := bad.nc.Write([]byte(garbage)); err != nil {
			t.Fatal(err)
		}
		if got := bad.expectClosed("E FATAL"); len(got) != 1 || !strings.HasPrefix(got[0], want) {
			t.Fatalf("%q: got %q, want %s", garbage, got, want)
		}
		good.send(&pgproto3.Query{String: "select 1"})
		equalStrings(t, good.recvUntil("Z"), []string{"T ?column?:23/0", `D "1"`, "C SELECT 1", "Z I"})
	}
}

// TestOversizedQueryPgx: a client sending a message far over
// MaxMessageSize gets FATAL 54000 (not a reset connection), and others go
// on.
func TestOversizedQueryPgx(t *testing.T) {
	ts := startServer(t, Config{MaxMessageSize: 64 << 10})
	other := ts.connect(t)
	for i := 0; i < 3; i++ {
		conn := ts.connect(t)
		_, err := conn.Exec(context.Background(), "select '"+strings.Repeat("x", 4<<20)+"'")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "54000" || pe.Severity != "FATAL" {
			t.Fatalf("a 4 MiB query: %v, want FATAL 54000", err)
		}
	}
	mustSelect1(t, other)
}
