package bench

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/spatedb/spate/cluster"
)

// The recovery benchmark builds an updating GROUP BY whose state is about
// the given size (one row of a 1,000-byte string per key) on a cluster of
// worker processes, waits for a checkpoint that holds it, kills a worker
// with SIGKILL and reports what SHOW RECOVERIES measured: the time from
// detection until the restored instances run, and until the result has
// caught up. It runs twice: the GROUP BY reading the stream (restored
// from the coordinator's snapshot), then reading a join of the stream
// with itself on the workers (restored from the copy on the join's
// worker when that worker lives).
//
// The join runs only up to its maxState: at 1 GB the coordinator alone
// holds about 9 GB (the stream's rows kept for replay to both sides of
// the join, the checkpoints, the result), which with the workers is more
// than this 24 GiB machine has.
var recoveryQueries = []struct {
	name, sql string
	maxState  int64
}{
	{"GROUP BY", "SELECT k, MAX(pad) AS pad, COUNT(*) AS n FROM s GROUP BY k", 1 << 40},
	{"join → GROUP BY", "SELECT a.k + 0 AS k, MAX(a.pad) AS pad, COUNT(*) AS n FROM s a JOIN s b ON a.k = b.k AND b.t BETWEEN a.t AND a.t GROUP BY a.k + 0", 256 << 20},
}

// RunRecovery runs the benchmark once per query and state size on
// engines from start (which must have workers and checkpoints on).
func RunRecovery(ctx context.Context, sizes []int64, start func() (*cluster.Coordinator, func(), error), w io.Writer) error {
	fmt.Fprintf(w, "recovery of a killed worker (updating GROUP BY, 1,000-byte rows):\n")
	for _, q := range recoveryQueries {
		for _, size := range sizes {
			if size > q.maxState {
				fmt.Fprintf(w, "  %-16s state %-8s skipped: more than %s\n", q.name, byteSize(size), byteSize(q.maxState))
				continue
			}
			if err := recoveryOnce(ctx, q.name, q.sql, size, start, w); err != nil {
				return fmt.Errorf("%s, state %s: %w", q.name, byteSize(size), err)
			}
		}
	}
	return nil
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d B", n)
}

func recoveryOnce(ctx context.Context, name, sql string, size int64, start func() (*cluster.Coordinator, func(), error), w io.Writer) error {
	coord, stop, err := start()
	if err != nil {
		return err
	}
	defer stop()
	query := func(sql string) ([][]string, error) { return runSQL(ctx, coord, sql) }
	if err := execAll(ctx, coord,
		"CREATE STREAM s (k BIGINT, pad TEXT, t BIGINT) WITH (event_time = 't', time_unit = 's')",
		"CREATE CONTINUOUS QUERY st AS "+sql,
	); err != nil {
		return err
	}
	const padBytes = 1000
	keys := max(size/padBytes, 1)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "pad", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "t", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	pad := strings.Repeat("x", padBytes-8)
	loadStart := time.Now()
	for k := int64(0); k < keys; k += 8192 {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for i := k; i < min(k+8192, keys); i++ {
			b.Field(0).(*array.Int64Builder).Append(i)
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("%08d", i%100000000) + pad)
			b.Field(2).(*array.Int64Builder).Append(i / 8192)
		}
		rec := b.NewRecordBatch()
		b.Release()
		err := coord.Ingest(ctx, "s", rec, true)
		rec.Release()
		if err != nil {
			return err
		}
	}
	load := time.Since(loadStart)
	// A checkpoint that holds the whole state.
	var ckptBytes int64
	var ckptMs string
	deadline := time.Now().Add(10 * time.Minute)
	for ckptBytes < size*9/10 {
		if time.Now().After(deadline) {
			return fmt.Errorf("no checkpoint of %s after 10 minutes", byteSize(size))
		}
		time.Sleep(200 * time.Millisecond)
		rows, err := query("SELECT bytes, duration_ms FROM spate_checkpoints WHERE status = 'complete'")
		if err != nil {
			return err
		}
		for _, r := range rows {
			if b, _ := strconv.ParseInt(r[0], 10, 64); b > ckptBytes {
				ckptBytes, ckptMs = b, r[1]
			}
		}
	}
	// The longest an instance stopped to take its state (copy-on-write:
	// not proportional to the state).
	pause, err := query("SELECT MAX(pause_ms) FROM spate_instance_checkpoints WHERE status = 'complete'")
	if err != nil {
		return err
	}
	ws, err := query("SELECT pid FROM spate_workers WHERE id = 'w1'")
	if err != nil || len(ws) != 1 {
		return fmt.Errorf("worker w1: %v %v", ws, err)
	}
	pid, _ := strconv.Atoi(ws[0][0])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	var rec []string
	for deadline := time.Now().Add(10 * time.Minute); ; {
		if time.Now().After(deadline) {
			return fmt.Errorf("no recovery after 10 minutes")
		}
		time.Sleep(100 * time.Millisecond)
		// A repair under way is listed too, with no caught_up_ms yet.
		rows, err := query("SELECT status, restore_ms, caught_up_ms, replayed, instances, restored_from_upstream FROM spate_recoveries WHERE caught_up_ms IS NOT NULL")
		if err != nil {
			return err
		}
		if len(rows) > 0 {
			rec = rows[0]
			break
		}
	}
	if rec[0] != "recovered" {
		return fmt.Errorf("recovery: %s", rec[0])
	}
	n, err := query("SELECT COUNT(*) FROM st")
	if err != nil {
		return err
	}
	if n[0][0] != strconv.FormatInt(keys, 10) {
		return fmt.Errorf("after the recovery the result has %s rows, want %d", n[0][0], keys)
	}
	fmt.Fprintf(w, "  %-16s state %-8s keys %8d  load %6.1fs  checkpoint %s in %s ms (instance paused %s ms)  restored in %s ms (%s instances, %s from a copy upstream)  caught up in %s ms (replayed %s messages)\n",
		name, byteSize(size), keys, load.Seconds(), byteSize(ckptBytes), ckptMs, pause[0][0], rec[1], rec[4], rec[5], rec[2], rec[3])
	return nil
}
