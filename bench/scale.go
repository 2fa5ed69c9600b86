package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/spatedb/spate/cluster"
)

// The scale benchmark runs an updating GROUP BY (keys keys) on one
// aggregate instance of a two-worker cluster, measures the input rate it
// sustains, scales the stage out (SHOW SCALING EVENTS: time from the
// decision until the new instances process, state bytes moved) and
// measures the rate again with two instances, in one run.

// RunScale runs the benchmark on an engine from start (two workers,
// checkpoints on).
func RunScale(ctx context.Context, keys, rows int, start func() (*cluster.Coordinator, func(), error), w io.Writer) error {
	coord, stop, err := start()
	if err != nil {
		return err
	}
	defer stop()
	query := func(sql string) ([][]string, error) { return runSQL(ctx, coord, sql) }
	if err := execAll(ctx, coord,
		"CREATE STREAM s (k BIGINT, v BIGINT)",
		"SET parallelism = 1",
		"CREATE CONTINUOUS QUERY st AS SELECT k, COUNT(*) AS n, SUM(v) AS total, MAX(v) AS top FROM s GROUP BY k",
	); err != nil {
		return err
	}
	if n, err := query("SELECT COUNT(*) FROM spate_instances WHERE query = 'st' AND stage = 1"); err != nil || n[0][0] != "1" {
		return fmt.Errorf("the aggregate runs %v instances, want 1 (%v)", n, err)
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "v", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	rng := rand.New(rand.NewPCG(1, 1))
	const batch = 8192
	// ingest feeds n rows without waiting between batches (the stream
	// takes them as fast as the query keeps up), the last one waiting
	// until the query has processed everything: the rate the stage
	// sustains. The batches are built before the clock starts.
	ingest := func(n int, seq bool) (float64, error) {
		var recs []arrow.RecordBatch
		for done := 0; done < n; done += batch {
			b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
			for i := done; i < min(done+batch, n); i++ {
				k := int64(rng.IntN(keys))
				if seq {
					k = int64(i % keys)
				}
				b.Field(0).(*array.Int64Builder).Append(k)
				b.Field(1).(*array.Int64Builder).Append(int64(rng.IntN(1000)))
			}
			recs = append(recs, b.NewRecordBatch())
			b.Release()
		}
		defer func() {
			for _, rec := range recs {
				rec.Release()
			}
		}()
		t0 := time.Now()
		for i, rec := range recs {
			if err := coord.Ingest(ctx, "s", rec, i == len(recs)-1); err != nil {
				return 0, err
			}
		}
		return float64(n) / time.Since(t0).Seconds(), nil
	}
	if _, err := ingest(keys, true); err != nil { // every key once: the state
		return err
	}
	before, err := ingest(rows, false)
	if err != nil {
		return err
	}
	// A checkpoint begun after the input, so the scale-out replays little.
	epoch := func() (int64, error) {
		r, err := query("SELECT COALESCE(MAX(epoch), 0) FROM spate_checkpoints WHERE status = 'complete'")
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(r[0][0], 10, 64)
	}
	e0, err := epoch()
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(5 * time.Minute); ; {
		e, err := epoch()
		if err != nil {
			return err
		}
		if e > e0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no checkpoint after 5 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	ev, err := coord.ScaleOut(ctx, "st", 1, 0, 0, "bench")
	if err != nil {
		return err
	}
	if ev.Status != "done" {
		return fmt.Errorf("scale-out: %s", ev.Status)
	}
	after, err := ingest(rows, false)
	if err != nil {
		return err
	}
	n, err := query("SELECT COUNT(*), SUM(n) FROM st")
	if err != nil {
		return err
	}
	if want := fmt.Sprint([]string{fmt.Sprint(keys), fmt.Sprint(keys + 2*rows)}); fmt.Sprint(n[0]) != want {
		return fmt.Errorf("after the scale-out the result is %v, want %s", n[0], want)
	}
	fmt.Fprintf(w, "scale-out of an updating GROUP BY (%d keys) on 2 workers:\n", keys)
	fmt.Fprintf(w, "  decision to new instances processing %.1f ms, state moved %s (%.0f MB/s)\n",
		float64(ev.Took.Microseconds())/1000, byteSize(ev.Bytes), float64(ev.Bytes)/(1<<20)/ev.Took.Seconds())
	fmt.Fprintf(w, "  throughput: 1 instance %.0f rows/s, 2 instances %.0f rows/s (%.2fx)\n", before, after, after/before)
	return nil
}
