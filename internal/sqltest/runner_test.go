package sqltest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRunFilePostgres runs a script that exercises every record kind the
// server can answer (all but subscribe) against a real PostgreSQL.
func TestRunFilePostgres(t *testing.T) {
	pg := StartPostgres(t)
	RunFile(t, "testdata/postgres.slt", pg.ConnString())
}

// recorder is a reporter that records instead of failing.
type recorder struct {
	t      *testing.T
	errors []string
}

type fatal struct{}

func (r *recorder) Helper()                         {}
func (r *recorder) Logf(format string, args ...any) { r.t.Logf(format, args...) }
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic(fatal{})
}

func (r *recorder) run(path, connString string) (fataled bool) {
	return r.runWith(path, connString, subscribeTimeout)
}

func (r *recorder) runWith(path, connString string, subTimeout time.Duration) (fataled bool) {
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(fatal); !ok {
				panic(v)
			}
			fataled = true
		}
	}()
	runFile(r, path, connString, subTimeout)
	return false
}

// TestRunFileReportsFailures checks that each wrong expectation in
// failing.slt is reported, with its file and line.
func TestRunFileReportsFailures(t *testing.T) {
	pg := StartPostgres(t)
	rec := &recorder{t: t}
	if rec.run("testdata/failing.slt", pg.ConnString()) {
		t.Fatalf("the runner stopped: %q", rec.errors)
	}
	wantLines := []string{":3: statement failed: 42703", ":6: statement succeeded; expected error 42601",
		":9: statement failed with", ":12: query result differs", ":17: query column 1", ":20: query result differs",
		":25: query returned 1 columns", ":28: query result differs", ":34: query succeeded; expected error 22012",
		":37: copy failed with", ":41: query columns= selects column 3"}
	if len(rec.errors) != len(wantLines) {
		t.Errorf("got %d failures, want %d:\n%s", len(rec.errors), len(wantLines), strings.Join(rec.errors, "\n---\n"))
	}
	for i, want := range wantLines {
		if i < len(rec.errors) && !strings.Contains(rec.errors[i], "internal/sqltest/testdata/failing.slt"+want) {
			t.Errorf("failure %d:\n%s\nwant it to contain %q", i, rec.errors[i], want)
		}
	}
	for _, e := range rec.errors {
		t.Log(e)
	}
}

func TestRunFileBadScript(t *testing.T) {
	rec := &recorder{t: t}
	if !rec.run("testdata/does-not-exist.slt", "host=127.0.0.1 port=1") {
		t.Fatal("a missing script did not stop the runner")
	}
}
