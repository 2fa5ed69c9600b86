package sqltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Timeouts of the server helpers.
const (
	// startTimeout bounds how long a server may take to accept connections.
	startTimeout = 60 * time.Second
	// stopTimeout is how long a server has to exit after SIGTERM (SIGINT
	// for PostgreSQL) before it is killed.
	stopTimeout = 10 * time.Second
	// stderrTail is how much of a server's output a failed test logs.
	stderrTail = 64 << 10
)

// build is the spate binary shared by every StartSpate of one test binary.
var build struct {
	once sync.Once
	dir  string // temporary directory holding the binary ("" with SPATE_BIN)
	path string
	err  error
}

// SpateBinary returns the path of a spate binary built from the module
// this test belongs to. The first call runs `go build ./cmd/spate` into a
// temporary directory (RemoveBuilds deletes it); later calls reuse it. When
// the environment variable SPATE_BIN is set, that binary is used instead.
// A build failure fails the test.
func SpateBinary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		if p := os.Getenv("SPATE_BIN"); p != "" {
			build.path, build.err = filepath.Abs(p)
			return
		}
		root, err := ModuleRoot()
		if err != nil {
			build.err = err
			return
		}
		dir, err := os.MkdirTemp("", "spate-sqltest-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.dir = dir
		out := filepath.Join(dir, "spate")
		cmd := exec.Command(goTool(), "build", "-o", out, "./cmd/spate")
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/spate: %w\n%s", err, msg)
			return
		}
		build.path = out
	})
	if build.err != nil {
		t.Fatalf("building spate: %v", build.err)
	}
	return build.path
}

// RemoveBuilds deletes the binary SpateBinary built. Call it from TestMain
// after m.Run; a later SpateBinary in the same process fails.
func RemoveBuilds() {
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if isExecutable(p) {
		return p
	}
	return "go"
}

// Server is a running `spate serve` started by StartSpate.
type Server struct {
	// Addr is the PostgreSQL-protocol address, "127.0.0.1:port".
	Addr string
	// Port is the port of Addr.
	Port int

	cmd    *exec.Cmd
	output *SyncBuffer
	exited chan struct{} // closed when the process has exited
	// waitErr is the process's exit status; read it only after exited is closed.
	waitErr error

	stopOnce sync.Once
	stopped  bool // Stop was called (the exit was asked for)
}

// ConnString returns a libpq connection string for the server.
func (s *Server) ConnString() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=spate dbname=spate sslmode=disable", s.Port)
}

// Output returns everything the server has written to stdout and stderr
// so far.
func (s *Server) Output() string { return s.output.String() }

// Exited reports whether the server process has exited.
func (s *Server) Exited() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// StartSpate starts `spate serve --pg-listen 127.0.0.1:<free port> args…`
// and returns once it accepts connections. The server is stopped when the
// test ends (SIGTERM, then SIGKILL after 10 s). If the test failed, or the
// server exited by itself (a crash), its output is logged and in the
// latter case the test fails.
func StartSpate(t testing.TB, args ...string) *Server {
	t.Helper()
	bin := SpateBinary(t)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, output: &SyncBuffer{}, exited: make(chan struct{})}
		s.cmd = exec.Command(bin, append([]string{"serve", "--pg-listen", s.Addr, "--data-dir", t.TempDir()}, args...)...)
		s.cmd.Env = append(os.Environ(), "NO_COLOR=1") // plain logs in test output
		s.cmd.Stdout = s.output
		s.cmd.Stderr = s.output
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", bin, err)
		}
		go func() {
			s.waitErr = s.cmd.Wait()
			close(s.exited)
		}()
		err = waitAccepting(s.Addr, s.exited, startTimeout)
		if err == nil && !stillRunning(s.exited) {
			err = fmt.Errorf("spate serve exited right after starting (%v)", s.waitErr)
		}
		if err == nil {
			t.Cleanup(func() { s.finish(t) })
			return s
		}
		s.kill()
		lastErr = fmt.Errorf("%w\n%s", err, tail(s.Output(), stderrTail))
		if !strings.Contains(s.Output(), "address already in use") {
			break
		}
	}
	t.Fatalf("spate serve did not start: %v", lastErr)
	return nil
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s) and waits for
// it to exit. It is idempotent and also runs when the test ends.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.stopped = true
		stopProcess(s.cmd.Process, s.exited, syscall.SIGTERM)
	})
}

// Kill kills the server with SIGKILL and waits for it to exit.
func (s *Server) Kill() {
	s.stopOnce.Do(func() {
		s.stopped = true
		s.kill()
	})
}

func (s *Server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// finish is the cleanup of StartSpate.
func (s *Server) finish(t testing.TB) {
	crashed := s.Exited() && !s.stopped
	s.Stop()
	switch {
	case crashed:
		t.Errorf("spate serve exited by itself during the test (%v); output:\n%s", s.waitErr, tail(s.Output(), stderrTail))
	case t.Failed():
		t.Logf("spate serve output:\n%s", tail(s.Output(), stderrTail))
	}
}

// stopProcess sends sig, waits up to stopTimeout for exited to close and
// then kills the process.
func stopProcess(p *os.Process, exited <-chan struct{}, sig syscall.Signal) {
	select {
	case <-exited:
		return
	default:
	}
	_ = p.Signal(sig)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = p.Kill()
		<-exited
	}
}

// freePort returns a loopback TCP port that was free a moment ago. It
// picks at random below the kernel's ephemeral range (32768 and up on
// Linux), where the kernel never hands out ports by itself: a port it
// gave one test's ":0" listener, closed again, would otherwise be a likely
// pick for another test starting a server at the same time.
func freePort() (int, error) {
	for i := 0; i < 50; i++ {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startGrace is how long a server must stay up after it first accepted a
// connection: a server that lost the race for its port (another one bound
// it first, and answered the probe) exits within it.
const startGrace = 150 * time.Millisecond

// stillRunning waits startGrace and reports whether the process has not
// exited.
func stillRunning(exited <-chan struct{}) bool {
	select {
	case <-exited:
		return false
	case <-time.After(startGrace):
		return true
	}
}

// waitAccepting dials addr until it accepts a connection, the process
// exits or the timeout passes.
func waitAccepting(addr string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := sessionAnswer(addr)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("the server exited before accepting connections")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no session on %s after %v: %w", addr, timeout, err)
		}
	}
}

// sessionAnswer is nil once the server at addr answers a startup as a
// session would: it opens one, or refuses it for the client (a password
// or TLS the test did not give) — not while it listens but still
// recovers (57P03 the database system is starting up), nor before it
// listens.
func sessionAnswer(addr string) error {
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgconn.Connect(ctx, fmt.Sprintf("host=%s port=%s user=spate dbname=spate sslmode=disable connect_timeout=5", host, port))
	if err == nil {
		c.Close(ctx)
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code != "57P03" {
		return nil
	}
	return err
}

// Connect opens a pgx connection that uses the simple query protocol (so
// results come back in text format, as psql shows them) and closes it when
// the test ends.
func Connect(t testing.TB, connString string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		t.Fatalf("parsing %q: %v", connString, err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connecting to %q: %v", connString, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(ctx)
	})
	return conn
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers
// (a process writing its output while a test reads it).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer // protected by mu
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// tail returns the last n bytes of s, starting at a line boundary.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "…\n" + s
}
