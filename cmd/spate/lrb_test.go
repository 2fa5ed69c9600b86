package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/spatedb/spate/bench/linearroad"
	"github.com/spatedb/spate/internal/sqltest"
)

// TestLinearRoadWithPsql is the documented walkthrough: psql -f
// queries.sql, the generator piped into psql's COPY, and the outputs read
// back with psql — the reference implementation must agree on every row.
func TestLinearRoadWithPsql(t *testing.T) { forEachMode(t, linearRoadWithPsql) }

func linearRoadWithPsql(t *testing.T, serverArgs []string) {
	psql := sqltest.RequireBinary(t, "psql")
	srv := sqltest.StartSpate(t, serverArgs...)
	root, err := sqltest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	conn := srv.ConnString()
	run := func(stdin []byte, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(psql, append([]string{"-X", "-v", "ON_ERROR_STOP=1", "-q", conn}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("psql %v: %v\n%s", args, err, errb.String())
		}
		return out.Bytes()
	}
	run(nil, "-f", filepath.Join(root, "bench", "linearroad", "queries.sql"))

	dur := 10 * time.Minute
	if testing.Short() {
		dur = 4 * time.Minute
	}
	cfg := linearroad.Config{Expressways: 1, Duration: dur, Seed: 7}
	var reports, hist bytes.Buffer
	if err := linearroad.WriteAll(&reports, &hist, cfg); err != nil {
		t.Fatal(err)
	}
	// The reports go through `spate gen lrb | psql -c COPY`, as a user would.
	histFile := filepath.Join(t.TempDir(), "history.csv")
	if err := os.WriteFile(histFile, hist.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	run(nil, "-c", `\copy history FROM '`+histFile+`' WITH (FORMAT csv)`)
	gen := exec.Command(sqltest.SpateBinary(t), "gen", "lrb", "--expressways", "1", "--duration", dur.String(), "--seed", "7", "--quiet")
	genOut, err := gen.Output()
	if err != nil {
		t.Fatalf("spate gen lrb: %v", err)
	}
	if !bytes.Equal(genOut, reports.Bytes()) {
		t.Fatalf("spate gen lrb wrote %d bytes, the library %d: the generator is not deterministic", len(genOut), reports.Len())
	}
	run(genOut, "-c", "COPY reports FROM STDIN (FORMAT csv)")
	// One record of an unused type an hour later closes every window.
	run([]byte("9,99999,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1\n"), "-c", "COPY reports FROM STDIN (FORMAT csv)")

	var got linearroad.Outputs
	for _, q := range []string{"lrb_tolls", "lrb_accidents", "lrb_balances", "lrb_daily"} {
		out := run(nil, "-c", "COPY (SELECT * FROM "+q+") TO STDOUT (FORMAT csv)")
		rows, err := linearroad.ReadOutputs(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		got = append(got, rows...)
	}
	h, err := linearroad.ReadHistory(bytes.NewReader(hist.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want, err := linearroad.ExpectedCSV(bytes.NewReader(reports.Bytes()), h)
	if err != nil {
		t.Fatal(err)
	}
	diff := linearroad.Compare(want, got)
	if !diff.OK() {
		t.Fatalf("Linear Road outputs differ from the reference:\n%s", diff.String())
	}
	if diff.Want[0] == 0 || diff.Want[1] == 0 || diff.Want[2] == 0 {
		t.Fatalf("the run produced too little to test: %v rows per output type", diff.Want)
	}
	t.Logf("Linear Road %v: %v rows per output type agree with the reference", dur, diff.Want)
}

// TestLinearRoadHarness runs `spate bench lrb`'s harness against a server
// at full speed and at 60x real time, and checks that it validates.
func TestLinearRoadHarness(t *testing.T) { forEachMode(t, linearRoadHarness) }

func linearRoadHarness(t *testing.T, serverArgs []string) {
	srv := sqltest.StartSpate(t, append([]string{"--parallelism", "2"}, serverArgs...)...)
	dur := 6 * time.Minute
	if testing.Short() {
		dur = 3 * time.Minute
	}
	res, err := linearroad.Run(context.Background(), linearroad.HarnessConfig{
		ConnString: srv.ConnString(), Gen: linearroad.Config{Expressways: 2, Duration: dur, Seed: 3},
		Speedup: 60, Setup: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var report bytes.Buffer
	res.Report(&report)
	t.Log(report.String())
	if !res.Diff.OK() {
		t.Fatalf("validation failed:\n%s", res.Diff.String())
	}
	if res.Latency.Count == 0 || res.Outputs[0] == 0 {
		t.Fatalf("no notifications measured: %+v", res.Outputs)
	}
}

// TestLinearRoadEightExpressways validates a 10-minute run at L=8 fed as
// fast as the server takes it (2 minutes under -short).
func TestLinearRoadEightExpressways(t *testing.T) { forEachMode(t, linearRoadEightExpressways) }

func linearRoadEightExpressways(t *testing.T, serverArgs []string) {
	srv := sqltest.StartSpate(t, serverArgs...)
	dur := 10 * time.Minute
	if testing.Short() {
		dur = 2 * time.Minute
	}
	res, err := linearroad.Run(context.Background(), linearroad.HarnessConfig{
		ConnString: srv.ConnString(), Gen: linearroad.Config{Expressways: 8, Duration: dur, Seed: 11}, Setup: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var report bytes.Buffer
	res.Report(&report)
	t.Log(report.String())
	if !res.Diff.OK() {
		t.Fatalf("validation failed:\n%s", res.Diff.String())
	}
	if res.Outputs[0] == 0 || res.Outputs[1] == 0 {
		t.Fatalf("too few outputs to test: %v", res.Outputs)
	}
}
