package sqltest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Postgres is a throwaway PostgreSQL server started by StartPostgres, the
// oracle that query results are compared with.
type Postgres struct {
	// Port is the TCP port it listens on (127.0.0.1 only).
	Port int
	// Dir holds the data directory ("data") and the Unix socket.
	Dir string

	cmd     *exec.Cmd
	output  *SyncBuffer
	exited  chan struct{}
	waitErr error
}

// ConnString returns a libpq connection string for the superuser
// "postgres" and the database "postgres".
func (p *Postgres) ConnString() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", p.Port)
}

// Output returns what the server has logged so far.
func (p *Postgres) Output() string { return p.output.String() }

// StartPostgres initialises a fresh cluster (initdb -U postgres -A trust
// --no-sync -E UTF8) in a temporary directory, starts postgres on a free
// loopback port with fsync off and returns once it answers queries. It is
// stopped (SIGINT, a fast shutdown; SIGKILL after 10 s) and deleted when
// the test ends. The binaries come from PATH, /usr/local/bin or
// /usr/lib/postgresql/*/bin; when they are missing the test is skipped
// (failed under CI=true).
//
// PostgreSQL refuses to run as root: when the test runs as root, initdb and
// postgres run as the user "nobody" through setpriv (or runuser), and the
// directory is owned by that user.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	initdb, postgres, err := findServerBinaries()
	if err != nil {
		Missing(t, "%v", err)
	}
	// Not t.TempDir: its parents are private to root, and the server may run
	// as nobody.
	dir, err := os.MkdirTemp("", "spate-sqltest-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	wrap, err := unprivileged(dir)
	if err != nil {
		t.Fatalf("preparing to run PostgreSQL unprivileged: %v", err)
	}
	data := filepath.Join(dir, "data")
	cmd := command(wrap, initdb, "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		p := &Postgres{Port: port, Dir: dir, output: &SyncBuffer{}, exited: make(chan struct{})}
		p.cmd = command(wrap, postgres, "-D", data, "-p", strconv.Itoa(port), "-k", dir,
			"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
			"-c", "full_page_writes=off", "-c", "max_connections=50", "-c", "TimeZone=UTC")
		p.cmd.Dir = dir
		p.cmd.Stdout = p.output
		p.cmd.Stderr = p.output
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("starting postgres: %v", err)
		}
		go func() {
			p.waitErr = p.cmd.Wait()
			close(p.exited)
		}()
		err = p.waitReady()
		if err == nil && !stillRunning(p.exited) {
			err = fmt.Errorf("postgres exited right after starting (%v)", p.waitErr)
		}
		if err != nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
			lastErr = fmt.Errorf("%w\n%s", err, tail(p.Output(), stderrTail))
			if strings.Contains(p.Output(), "already in use") {
				continue
			}
			break
		}
		t.Cleanup(func() {
			stopProcess(p.cmd.Process, p.exited, syscall.SIGINT)
			if t.Failed() {
				t.Logf("postgres output:\n%s", tail(p.Output(), stderrTail))
			}
		})
		return p
	}
	t.Fatalf("postgres did not start: %v", lastErr)
	return nil
}

// waitReady connects until the server accepts a session (it refuses them
// while it starts up).
func (p *Postgres) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgconn.Connect(ctx, p.ConnString())
		cancel()
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("postgres exited (%v)", p.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after %v: %w", startTimeout, err)
		}
	}
}

// command runs prog with args behind the prefix wrap (see unprivileged).
func command(wrap []string, prog string, args ...string) *exec.Cmd {
	if wrap[0] == "" {
		return exec.Command(prog, args...)
	}
	full := append(append(append([]string{}, wrap[1:]...), prog), args...)
	return exec.Command(wrap[0], full...)
}

// unprivileged returns the command prefix that runs a program as an
// unprivileged user when the test runs as root ({""} otherwise: run it
// directly), after giving that user the directory dir.
func unprivileged(dir string) ([]string, error) {
	if os.Geteuid() != 0 {
		return []string{""}, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running as root and there is no user nobody: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	if p, err := exec.LookPath("setpriv"); err == nil {
		// setpriv execs the program, so signals reach postgres itself.
		return []string{p, "--reuid=" + u.Uid, "--regid=" + u.Gid, "--clear-groups", "--"}, nil
	}
	if p, err := exec.LookPath("runuser"); err == nil {
		return []string{p, "-u", "nobody", "--"}, nil
	}
	return nil, fmt.Errorf("running as root and neither setpriv nor runuser is installed")
}
