package linearroad

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/spatedb/spate/internal/sqltest"
)

// TestRulesInPostgres checks RULES.md against the validator: the rules
// written as batch SQL (testdata/rules_postgres.sql) and run by PostgreSQL
// over a generated input must give exactly the validator's outputs.
// LRB_PG_DURATION=3h (for example) checks a longer L=1 run instead.
func TestRulesInPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	rules, err := os.ReadFile("testdata/rules_postgres.sql")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Expressways: 2, Duration: 15 * time.Minute, Seed: 11}
	if d, err := time.ParseDuration(os.Getenv("LRB_PG_DURATION")); err == nil {
		cfg = Config{Expressways: 1, Duration: d, Seed: 1}
	}
	var reports, history bytes.Buffer
	if err := WriteAll(&reports, &history, cfg); err != nil {
		t.Fatal(err)
	}
	h, err := ReadHistory(bytes.NewReader(history.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want, err := ExpectedCSV(bytes.NewReader(reports.Bytes()), h)
	if err != nil {
		t.Fatal(err)
	}

	pg := sqltest.StartPostgres(t)
	conn := sqltest.Connect(t, pg.ConnString()).PgConn()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
			t.Fatalf("%v\n%s", err, sql)
		}
	}
	exec(`CREATE TABLE reports (type INTEGER, time INTEGER, vid INTEGER, spd INTEGER, xway INTEGER, lane INTEGER,
		dir INTEGER, seg INTEGER, pos INTEGER, qid INTEGER, sinit INTEGER, send INTEGER, dow INTEGER, tod INTEGER, day INTEGER);
		CREATE TABLE history (vid INTEGER, day INTEGER, xway INTEGER, tolls INTEGER)`)
	for _, c := range []struct {
		table string
		data  []byte
	}{{"reports", reports.Bytes()}, {"history", history.Bytes()}} {
		if _, err := conn.CopyFrom(ctx, bytes.NewReader(c.data), "COPY "+c.table+" FROM STDIN (FORMAT csv)"); err != nil {
			t.Fatal(err)
		}
	}
	exec(string(rules))
	var out bytes.Buffer
	for _, tbl := range []string{"out0", "out1", "out2", "out3"} {
		if _, err := conn.CopyTo(ctx, &out, "COPY "+tbl+" TO STDOUT"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadOutputs(&out)
	if err != nil {
		t.Fatal(err)
	}
	n, tolls, _ := countOutputs(want)
	t.Logf("%d records, outputs %v, %d tolls > 0", len(bytes.Split(reports.Bytes(), []byte("\n")))-1, n, tolls)
	if n[OutAccident] == 0 || tolls == 0 {
		t.Errorf("input exercises too little: %v, %d tolls > 0", n, tolls)
	}
	if d := Compare(want, got); !d.OK() {
		t.Fatal(d.String())
	}
}
