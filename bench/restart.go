package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/parser"
)

// The restart benchmark measures how long `spate serve` takes to be
// back after a stop: once replaying its whole write-ahead log, once from
// a restart point (which also trims the log). Both runs ingest the same
// rows into an updating GROUP BY and a tumbling window; after the
// restart their results must count every row once.

// RestartEngine starts a coordinator on dataDir; restartPoints says
// whether it takes them (else checkpoints are off and a restart replays
// the whole log).
type RestartEngine func(dataDir string, restartPoints bool) (*cluster.Coordinator, func(), error)

// RunRestart runs the benchmark with rows rows.
func RunRestart(ctx context.Context, rows int, start RestartEngine, w io.Writer) error {
	fmt.Fprintf(w, "restart after %d rows (updating GROUP BY over 100,000 keys and a 10 s tumbling window):\n", rows)
	var base time.Duration
	for _, points := range []bool{false, true} {
		took, walBytes, replayed, err := restartOnce(ctx, rows, points, start)
		if err != nil {
			return err
		}
		name := "whole log replayed:     "
		if points {
			name = "from a restart point:   "
		} else {
			base = took
		}
		fmt.Fprintf(w, "  %s %8.3f s  (log left %s, %d entries replayed)  ratio to the whole log: %.2f\n",
			name, took.Seconds(), byteSize(walBytes), replayed, took.Seconds()/base.Seconds())
	}
	return nil
}

func restartOnce(ctx context.Context, rows int, points bool, start RestartEngine) (time.Duration, int64, int64, error) {
	dir, err := os.MkdirTemp("", "spate-bench-restart-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	coord, stop, err := start(dir, points)
	if err != nil {
		return 0, 0, 0, err
	}
	q := func(c *cluster.Coordinator, sql string) ([][]string, error) { return runSQL(ctx, c, sql) }
	if err := execAll(ctx, coord,
		"CREATE STREAM s (k BIGINT, v BIGINT, t BIGINT) WITH (event_time = 't', time_unit = 's')",
		"CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n, SUM(v) AS s FROM s GROUP BY k",
		"CREATE CONTINUOUS QUERY win AS SELECT k % 100 AS g, window_end, COUNT(*) AS n FROM s GROUP BY k % 100, TUMBLE(t, INTERVAL '10' SECOND)",
	); err != nil {
		stop()
		return 0, 0, 0, err
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "v", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "t", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	for at := 0; at < rows; at += 8192 {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for i := at; i < min(at+8192, rows); i++ {
			b.Field(0).(*array.Int64Builder).Append(int64(i % 100000))
			b.Field(1).(*array.Int64Builder).Append(int64(i % 7))
			b.Field(2).(*array.Int64Builder).Append(int64(i / 10000))
		}
		rec := b.NewRecordBatch()
		b.Release()
		err := coord.Ingest(ctx, "s", rec, true)
		rec.Release()
		if err != nil {
			stop()
			return 0, 0, 0, err
		}
	}
	if points {
		// Wait for a restart point after the last row.
		deadline := time.Now().Add(5 * time.Minute)
		for {
			r, err := q(coord, "SELECT COUNT(*) FROM spate_restart_points WHERE status = 'written'")
			if err != nil {
				stop()
				return 0, 0, 0, err
			}
			if r[0][0] != "0" {
				last, _ := q(coord, "SELECT MAX(wal_position) FROM spate_restart_points WHERE status = 'written'")
				// Entries: 3 statements, then one per batch; the point
				// must come after the last.
				if n, _ := strconv.Atoi(last[0][0]); n >= (rows+8191)/8192+4 {
					break
				}
			}
			if time.Now().After(deadline) {
				stop()
				return 0, 0, 0, fmt.Errorf("no restart point after 5 minutes")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	stop()
	walBytes := dirBytes(filepath.Join(dir, "wal"))

	began := time.Now()
	coord, stop, err = start(dir, points)
	if err != nil {
		return 0, 0, 0, err
	}
	defer stop()
	st, err := coord.Recover(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	took := time.Since(began)
	sum, err := q(coord, "SELECT SUM(n) FROM totals")
	if err != nil {
		return 0, 0, 0, err
	}
	if sum[0][0] != strconv.Itoa(rows) {
		return 0, 0, 0, fmt.Errorf("after the restart SUM(n) = %s, want %d", sum[0][0], rows)
	}
	return took, walBytes, st.Entries, nil
}

// execAll runs statements in order on one session (so a SET holds for
// the statements after it).
func execAll(ctx context.Context, c *cluster.Coordinator, sqls ...string) error {
	sess, err := c.NewSession(ctx, "spate", "spate")
	if err != nil {
		return err
	}
	defer sess.Close()
	for _, sql := range sqls {
		if _, err := sessionSQL(ctx, sess, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
	}
	return nil
}

// runSQL runs one statement on a new session and returns its rows as
// text.
func runSQL(ctx context.Context, c *cluster.Coordinator, sql string) ([][]string, error) {
	sess, err := c.NewSession(ctx, "spate", "spate")
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	return sessionSQL(ctx, sess, sql)
}

// sessionSQL runs one statement on sess and returns its rows as text.
func sessionSQL(ctx context.Context, sess cluster.Session, sql string) ([][]string, error) {
	st, err := parser.ParseOne(sql)
	if err != nil {
		return nil, err
	}
	res, err := sess.Execute(ctx, st, nil)
	if err != nil || res.Rows == nil {
		return nil, err
	}
	defer res.Rows.Close()
	var out [][]string
	for {
		rec, err := res.Rows.Next(ctx)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]string, rec.NumCols())
			for c := range row {
				row[c] = rec.Column(c).ValueStr(i)
			}
			out = append(out, row)
		}
		rec.Release()
	}
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
