package pgwire

import (
	"bufio"
	"bytes"
	"net"
	"os"
	osexec "os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// psqlCommand returns a psql invocation against ts, or skips the test when
// psql is not installed.
func psqlCommand(t *testing.T, ts *testServer, args ...string) *osexec.Cmd {
	t.Helper()
	path, err := osexec.LookPath("psql")
	if err != nil {
		t.Skip("psql not installed")
	}
	host, port, _ := net.SplitHostPort(ts.addr)
	cmd := osexec.Command(path, append([]string{"-X", "-h", host, "-p", port, "-U", "spate", "-d", "spate"}, args...)...)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PGAPPNAME=psql", "PGPASSWORD=", "PAGER=", "PSQL_PAGER=", "LC_ALL=C.UTF-8")
	return cmd
}

func TestPsql(t *testing.T) {
	ts := startServer(t, Config{})
	cmd := psqlCommand(t, ts, "-c", "SELECT 1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("psql: %v\nstderr: %s", err, stderr.String())
	}
	want := " ?column? \n----------\n        1\n(1 row)\n\n"
	if string(out) != want {
		t.Fatalf("psql printed\n%q\nwant\n%q", out, want)
	}

	cmd = psqlCommand(t, ts, "-c", "SELECT * FROM t")
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("psql: %v", err)
	}
	for _, s := range []string{"alice", "2024-05-01 12:30:00.25", "1 day 02:00:00", "1e+20", "(3 rows)"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("psql output lacks %q:\n%s", s, out)
		}
	}

	// An error: psql prints it and exits with 1.
	cmd = psqlCommand(t, ts, "-c", "select error")
	stderr.Reset()
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "ERROR:  evaluating: division by zero") {
		t.Fatalf("psql error run: %v, stderr %q", err, stderr.String())
	}
}

// TestPsqlCopySubscribeLive checks that COPY (SUBSCRIBE …) TO STDOUT
// prints rows as they are produced and that Ctrl-C (psql's CancelRequest)
// stops it.
func TestPsqlCopySubscribeLive(t *testing.T) {
	ts := startServer(t, Config{})
	cmd := psqlCommand(t, ts, "-c", "COPY (SUBSCRIBE q) TO STDOUT")
	// psql flushes COPY output only at the end when stdout is a pipe (a
	// terminal is line buffered): make the pipe line buffered too.
	stdbuf, err := osexec.LookPath("stdbuf")
	if err != nil {
		t.Skip("stdbuf not installed")
	}
	cmd.Args = append([]string{stdbuf, "-oL"}, cmd.Args...)
	cmd.Path = stdbuf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			lines <- line
		}
	}()
	var st *fakeStream
	select {
	case st = <-ts.engine.streams:
	case <-time.After(10 * time.Second):
		t.Fatal("psql did not start the SUBSCRIBE")
	}
	for i, want := range []string{"+\t1\n", "-\t1\n", "+\t2\n"} {
		st.push(subscribeBatch([]string{want[:1]}, []int64{int64(want[2] - '0')}))
		select {
		case got := <-lines:
			if got != want {
				t.Fatalf("line %d: %q, want %q (stderr %q)", i, got, want, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("line %d not printed (stderr %q)", i, stderr.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() {
		for range lines {
		}
		waitErr <- cmd.Wait()
	}()
	select {
	case err := <-waitErr:
		if err == nil || !strings.Contains(stderr.String(), "canceling statement due to user request") {
			t.Fatalf("psql after SIGINT: %v, stderr %q", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("psql did not stop after SIGINT")
	}
	waitFor(t, "stream closed", st.isClosed)
}
