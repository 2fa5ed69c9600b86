package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spatedb/spate/internal/sqltest"
)

// The security acceptance runs, against real `spate serve` processes with
// psql and pgx: passwords (SCRAM-SHA-256), TLS, roles and grants across a
// restart, and the limits that protect the server.

// pgVerifierOfPencil is the verifier PostgreSQL 15 stores for the password
// "pencil" (CREATE ROLE … PASSWORD 'pencil', password_encryption =
// scram-sha-256).
const pgVerifierOfPencil = "SCRAM-SHA-256$4096:riEXvR9kR/5JuPAG9DHpow==$wGArEwTww0SDwWizAdM0mE96Y2IeCFzaDHOlOsM+Cl0=:14WjroEzqBUC1foCIedUiBhxZ5Lk1W4NmsrdzNwb1lI="

func pgState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func pgxTry(connString string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return pgx.Connect(ctx, connString)
}

// TestSecurityEndToEnd: spate serve --auth scram --tls-required with a
// superuser password file; a read-only role, a role without grants and a
// role with a verifier made by PostgreSQL; wrong passwords, plaintext
// clients, statement and idle timeouts, too many connections, garbage and
// oversized messages; then a restart on the same data directory.
func TestSecurityEndToEnd(t *testing.T) {
	psql := sqltest.RequireBinary(t, "psql")
	certs := sqltest.WriteCerts(t)
	dataDir := t.TempDir()
	const superPW, readerPW, nograntPW = "super-pass-7Qx", "reader-pass-3Kd", "nogrant-pass-8Zp"
	pwFile := filepath.Join(t.TempDir(), "superuser-password")
	if err := os.WriteFile(pwFile, []byte(superPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--workers", "0", "--data-dir", dataDir, "--auth", "scram", "--tls-cert", certs.CertFile, "--tls-key", certs.KeyFile,
		"--tls-required", "--superuser-password-file", pwFile, "--max-connections", "6", "--max-message-size", "65536", "--statement-timeout", "20s"}
	srv := sqltest.StartSpate(t, args...)
	conn := func(user, pw string) string {
		return fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=spate sslmode=verify-full sslrootcert=%s connect_timeout=20", srv.Port, user, pw, certs.CAFile)
	}
	ctx := context.Background()

	// Wrong password, no TLS.
	res := runPsql(t, psql, conn("spate", "wrong"), "-c", "SELECT 1")
	if res.exit == 0 || !strings.Contains(res.stderr, `FATAL:  password authentication failed for user "spate"`) {
		t.Fatalf("wrong password: exit %d\n%s", res.exit, res.stderr)
	}
	res = runPsql(t, psql, strings.Replace(conn("spate", superPW), "sslmode=verify-full", "sslmode=disable", 1), "-c", "SELECT 1")
	if res.exit == 0 || !strings.Contains(res.stderr, "FATAL:  no encryption") {
		t.Fatalf("plaintext client: exit %d\n%s", res.exit, res.stderr)
	}

	// The superuser sets things up, over verify-full TLS with SCRAM.
	out := mustPsql(t, psql, conn("spate", superPW), "-c", `\conninfo`, "-c", "SHOW statement_timeout")
	if !strings.Contains(out, "SSL connection") || !strings.Contains(out, "20000ms") {
		t.Fatalf("superuser session:\n%s", out)
	}
	admin, err := pgxTry(conn("spate", superPW))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, sql := range []string{
		tradesDDL, barsDDL,
		`INSERT INTO trades VALUES ('ACME', 10, 1, '2026-01-01 00:00:01'), ('ACME', 11, 2, '2026-01-01 00:00:30'), ('BOLT', 5, 3, '2026-01-01 00:02:00')`,
		"CREATE STREAM calm (k INT)",
		"CREATE CONTINUOUS QUERY calm_counts AS SELECT k, COUNT(*) AS n FROM calm GROUP BY k",
		"CREATE ROLE reader LOGIN PASSWORD '" + readerPW + "'",
		"GRANT SELECT ON bars, calm_counts TO reader",
		"CREATE USER nogrant PASSWORD '" + nograntPW + "'",
		"CREATE ROLE pgmade LOGIN PASSWORD '" + pgVerifierOfPencil + "'",
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	// checkRoles checks what the roles may do; probe is a free hour of
	// event time for rows that close a window while reader subscribes.
	checkRoles := func(t *testing.T, probe time.Time) {
		t.Helper()
		reader, err := pgxTry(conn("reader", readerPW))
		if err != nil {
			t.Fatalf("reader: %v", err)
		}
		defer reader.Close(ctx)
		var n int
		if err := reader.QueryRow(ctx, "SELECT COUNT(*) FROM bars").Scan(&n); err != nil || n == 0 {
			t.Fatalf("reader SELECT bars: %d rows, %v", n, err)
		}
		for _, sql := range []string{"CREATE STREAM x (a INT)", "DROP CONTINUOUS QUERY bars", "INSERT INTO trades VALUES ('X', 1, 1, '2026-01-01 00:00:00')",
			"CREATE ROLE y", "GRANT SELECT ON trades TO reader", "SELECT * FROM trades", "COPY trades FROM STDIN"} {
			if _, err := reader.Exec(ctx, sql); pgState(err) != "42501" {
				t.Errorf("reader: %s: %v, want 42501", sql, err)
			}
		}
		if _, err := reader.Exec(ctx, "SELECT name FROM spate_streams"); err != nil {
			t.Errorf("reader reads the system tables: %v", err)
		}
		// SUBSCRIBE: rows of windows closed meanwhile arrive.
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		w := &firstWrite{cancel: cancel}
		subscribed := make(chan error, 1)
		go func() {
			_, err := reader.PgConn().CopyTo(sctx, w, "COPY (SUBSCRIBE bars) TO STDOUT")
			subscribed <- err
		}()
		probes, err := pgxTry(conn("spate", superPW))
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 60 && !w.got() && sctx.Err() == nil; k++ {
			at := probe.Add(time.Duration(k) * time.Minute)
			_, err := probes.Exec(ctx, fmt.Sprintf("INSERT INTO trades VALUES ('PROBE', 1, 1, '%s'), ('PROBE', 1, 1, '%s')",
				at.Format("2006-01-02 15:04:05"), at.Add(70*time.Second).Format("2006-01-02 15:04:05")))
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		probes.Close(ctx)
		err = <-subscribed
		if !w.got() {
			t.Fatalf("reader SUBSCRIBE bars: no rows (%v)", err)
		}
		// The connection went with the cancelled COPY; a new one for the rest.
		reader.Close(ctx)

		nogrant, err := pgxTry(conn("nogrant", nograntPW))
		if err != nil {
			t.Fatalf("nogrant: %v", err)
		}
		defer nogrant.Close(ctx)
		_, err = nogrant.Exec(ctx, "SELECT * FROM bars")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" || pe.Message != "permission denied for continuous query bars" {
			t.Errorf("nogrant SELECT bars: %v", err)
		}
		if out := mustPsql(t, psql, conn("pgmade", "pencil"), "-c", "SELECT 1"); !strings.Contains(out, "(1 row)") {
			t.Errorf("pgmade: %s", out)
		}
	}
	checkRoles(t, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))

	// statement_timeout: a FETCH waiting for rows that do not come.
	reader, err := pgxTry(conn("reader", readerPW))
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{"SET statement_timeout = '300ms'", "BEGIN", "DECLARE c CURSOR FOR SUBSCRIBE calm_counts"} {
		if _, err := reader.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	start := time.Now()
	_, err = reader.Exec(ctx, "FETCH 1 FROM c")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57014" || pe.Message != "canceling statement due to statement timeout" {
		t.Fatalf("FETCH past the statement timeout: %v", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 10*time.Second {
		t.Errorf("the FETCH was cancelled after %v", d)
	}
	if _, err := reader.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	// idle_session_timeout.
	if _, err := reader.Exec(ctx, "SET idle_session_timeout = '300ms'"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	_, err = reader.Exec(ctx, "SELECT 1")
	if err == nil || !(pgState(err) == "57P05" || strings.Contains(err.Error(), "idle-session timeout") || reader.IsClosed()) {
		t.Fatalf("a query after the idle-session timeout: %v", err)
	}
	reader.Close(ctx)

	// Too many connections: admin is one of the six.
	var extra []*pgx.Conn
	for i := 0; ; i++ {
		c, err := pgxTry(conn("spate", superPW))
		if err != nil {
			if pgState(err) != "53300" || !strings.Contains(err.Error(), "sorry, too many clients already") {
				t.Fatalf("connection %d: %v, want 53300", i+2, err)
			}
			break
		}
		extra = append(extra, c)
		if i > 10 {
			t.Fatal("--max-connections 6 let more than 12 in")
		}
	}
	if len(extra) > 5 {
		t.Errorf("%d connections besides admin, want at most 5", len(extra))
	}
	res = runPsql(t, psql, conn("spate", superPW), "-c", "SELECT 1")
	if res.exit == 0 || !strings.Contains(res.stderr, "FATAL:  sorry, too many clients already") {
		t.Fatalf("psql beyond --max-connections: exit %d\n%s", res.exit, res.stderr)
	}
	for _, c := range extra {
		c.Close(ctx)
	}

	// Garbage bytes (an HTTP request) and an oversized message end only
	// their connection, with an error.
	nc, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = nc.Write([]byte("GET / HTTP/1.1\r\nHost: spate\r\n\r\n"))
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply, _ := io.ReadAll(nc)
	nc.Close()
	if len(reply) == 0 || reply[0] != 'E' || !strings.Contains(string(reply), "08P01") {
		t.Errorf("reply to an HTTP request: %q", reply)
	}
	var big *pgx.Conn
	waitFor(t, 10*time.Second, "a free connection", func() bool {
		big, err = pgxTry(conn("spate", superPW))
		return err == nil
	})
	_, err = big.Exec(ctx, "SELECT '"+strings.Repeat("x", 100000)+"'")
	if pgState(err) != "54000" {
		t.Errorf("a 100 kB query with --max-message-size 65536: %v, want 54000", err)
	}
	big.Close(ctx)
	var one int
	if err := admin.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("the server stopped serving others: %v", err)
	}
	admin.Close(ctx)

	// Roles, passwords and grants survive a restart; the data directory
	// holds no password.
	srv.Stop()
	err = filepath.Walk(dataDir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, pw := range []string{superPW, readerPW, nograntPW} {
			if strings.Contains(string(b), pw) {
				t.Errorf("%s holds a password", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	srv = sqltest.StartSpate(t, args...)
	checkRoles(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
}

// firstWrite is an io.Writer that records a write and then cancels.
type firstWrite struct {
	cancel context.CancelFunc
	mu     sync.Mutex
	n      int
}

func (w *firstWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.n += len(p)
	w.mu.Unlock()
	w.cancel()
	return len(p), nil
}

func (w *firstWrite) got() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n > 0
}

// nonLoopbackIPv4 returns an IPv4 address of this machine that is not
// loopback, or "".
func nonLoopbackIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return ""
}

// TestLoopbackTrustDefault: by default a client on loopback needs no
// password and one from another address does; the superuser gets a
// password with ALTER ROLE from a trusted session.
func TestLoopbackTrustDefault(t *testing.T) {
	ip := nonLoopbackIPv4()
	if ip == "" {
		t.Skip("this machine has no non-loopback IPv4 address")
	}
	port := startSpateOnAllInterfaces(t)
	local := fmt.Sprintf("host=127.0.0.1 port=%d user=spate dbname=spate sslmode=disable", port)
	remote := fmt.Sprintf("host=%s port=%d user=spate dbname=spate sslmode=disable", ip, port)
	psql := sqltest.RequireBinary(t, "psql")

	res := runPsql(t, psql, remote+" password=anything", "-c", "SELECT 1")
	if res.exit == 0 || !strings.Contains(res.stderr, "password authentication failed") {
		t.Fatalf("remote client before the superuser has a password: exit %d\n%s", res.exit, res.stderr)
	}
	mustPsql(t, psql, local, "-c", "ALTER ROLE spate PASSWORD 'remote-pw-5t'", "-c", "CREATE ROLE ann LOGIN")
	if out := mustPsql(t, psql, remote+" password=remote-pw-5t", "-c", "SELECT 1"); !strings.Contains(out, "(1 row)") {
		t.Fatalf("remote client with the password: %s", out)
	}
	res = runPsql(t, psql, remote+" password=wrong", "-c", "SELECT 1")
	if res.exit == 0 || !strings.Contains(res.stderr, `FATAL:  password authentication failed for user "spate"`) {
		t.Fatalf("remote client with a wrong password: exit %d\n%s", res.exit, res.stderr)
	}
	// Trusted, but the role must exist.
	mustPsql(t, psql, strings.Replace(local, "user=spate", "user=ann", 1), "-c", "SELECT 1")
	res = runPsql(t, psql, strings.Replace(local, "user=spate", "user=ghost", 1), "-c", "SELECT 1")
	if res.exit == 0 || !strings.Contains(res.stderr, `FATAL:  role "ghost" does not exist`) {
		t.Fatalf("unknown role on loopback: exit %d\n%s", res.exit, res.stderr)
	}
}

// startSpateOnAllInterfaces starts spate serve --pg-listen 0.0.0.0:<port>
// (StartSpate listens on loopback only) and returns the port.
func startSpateOnAllInterfaces(t *testing.T) int {
	t.Helper()
	bin := sqltest.SpateBinary(t)
	// Below the kernel's ephemeral range, as sqltest's servers.
	port := 0
	for i := 0; i < 50 && port == 0; i++ {
		p := 20000 + rand.IntN(12000)
		if l, err := net.Listen("tcp", "0.0.0.0:"+strconv.Itoa(p)); err == nil {
			l.Close()
			port = p
		}
	}
	if port == 0 {
		t.Fatal("no free port")
	}
	out := &sqltest.SyncBuffer{}
	cmd := exec.Command(bin, "serve", "--pg-listen", "0.0.0.0:"+strconv.Itoa(port), "--data-dir", t.TempDir(), "--workers", "0")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("spate serve output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			c.Close()
			return port
		}
		select {
		case <-exited:
			t.Fatalf("spate serve exited:\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("spate serve did not accept connections:\n%s", out.String())
		}
	}
}
