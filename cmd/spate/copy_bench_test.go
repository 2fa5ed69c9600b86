package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/spatedb/spate/bench"
	"github.com/spatedb/spate/internal/sqltest"
)

// BenchmarkCopyIngest compares COPY … FROM STDIN of the same CSV file
// through pgwire: into a Spate stream feeding a tumbling-window query,
// and into a PostgreSQL 15 table (the DESIGN.md target: Spate faster than
// PostgreSQL's own COPY). It reports rows/s for both and their ratio.
func BenchmarkCopyIngest(b *testing.B) {
	const rows = 1_000_000
	var csv bytes.Buffer
	if err := bench.WriteTrades(&csv, bench.TradesConfig{Rows: rows, Seed: 1, RowsPerS: 1000}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	spate := sqltest.StartSpate(b)
	pg := sqltest.StartPostgres(b)
	sc := sqltest.Connect(b, spate.ConnString())
	pc := sqltest.Connect(b, pg.ConnString())
	var spateTime, pgTime time.Duration
	for i := 0; i < b.N; i++ {
		for _, sql := range []string{
			"DROP STREAM IF EXISTS trades CASCADE",
			"CREATE STREAM trades (sym TEXT, price DOUBLE PRECISION, qty INT, ts TIMESTAMP) WITH (event_time = 'ts')",
			"CREATE CONTINUOUS QUERY bars AS SELECT sym, window_start, COUNT(*) AS n, SUM(qty) AS v, MAX(price) AS hi FROM trades GROUP BY sym, TUMBLE(ts, INTERVAL '1' MINUTE)",
		} {
			if _, err := sc.Exec(ctx, sql); err != nil {
				b.Fatal(err)
			}
		}
		for _, sql := range []string{
			"DROP TABLE IF EXISTS trades",
			"CREATE TABLE trades (sym TEXT, price DOUBLE PRECISION, qty INT, ts TIMESTAMP)",
		} {
			if _, err := pc.Exec(ctx, sql); err != nil {
				b.Fatal(err)
			}
		}
		start := time.Now()
		if _, err := sc.PgConn().CopyFrom(ctx, bytes.NewReader(csv.Bytes()), "COPY trades FROM STDIN (FORMAT csv, HEADER true)"); err != nil {
			b.Fatal(err)
		}
		spateTime += time.Since(start)
		start = time.Now()
		if _, err := pc.PgConn().CopyFrom(ctx, bytes.NewReader(csv.Bytes()), "COPY trades FROM STDIN (FORMAT csv, HEADER true)"); err != nil {
			b.Fatal(err)
		}
		pgTime += time.Since(start)
	}
	spateRate := float64(rows*b.N) / spateTime.Seconds()
	pgRate := float64(rows*b.N) / pgTime.Seconds()
	b.ReportMetric(spateRate, "spate_rows/s")
	b.ReportMetric(pgRate, "postgres_rows/s")
	b.ReportMetric(spateRate/pgRate, "ratio")
}
