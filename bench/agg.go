// Package bench holds Spate's benchmark harnesses. The aggregation
// benchmark compares a tumbling-window GROUP BY run through the engine with
// a hand-written Go loop computing the same result over the same in-memory
// columns.
package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/parser"
)

// AggConfig sizes the aggregation benchmark.
type AggConfig struct {
	Rows      int   // rows in total; default 10,000,000
	Keys      int   // distinct keys; default 1,000,000
	BatchRows int   // rows per batch; default 65,536
	Window    int64 // tumbling window size in seconds; default 60
	RowsPerS  int   // event-time rate: rows per second of event time; default 100,000
	Seed      uint64
}

func (c *AggConfig) defaults() {
	if c.Rows == 0 {
		c.Rows = 10_000_000
	}
	if c.Keys == 0 {
		c.Keys = 1_000_000
	}
	if c.BatchRows == 0 {
		c.BatchRows = 65_536
	}
	if c.Window == 0 {
		c.Window = 60
	}
	if c.RowsPerS == 0 {
		c.RowsPerS = 100_000
	}
}

// AggResult is what one run measured.
type AggResult struct {
	Rows         int
	Groups       int64 // result rows (key, window) pairs
	Checksum     float64
	Elapsed      time.Duration
	RowsPerSec   float64
	AllocatedMiB float64
}

// aggData is the benchmark input: columns of (sym, price, ts).
type aggData struct {
	schema  *arrow.Schema
	batches []arrow.RecordBatch
	sym     [][]int64
	price   [][]float64
	ts      [][]int64
}

func makeAggData(cfg AggConfig) *aggData {
	rng := rand.New(rand.NewPCG(cfg.Seed, 1))
	d := &aggData{schema: arrow.NewSchema([]arrow.Field{
		{Name: "sym", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "price", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "ts", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)}
	mem := memory.DefaultAllocator
	for start := 0; start < cfg.Rows; start += cfg.BatchRows {
		n := min(cfg.BatchRows, cfg.Rows-start)
		sym := make([]int64, n)
		price := make([]float64, n)
		ts := make([]int64, n)
		for i := range n {
			sym[i] = int64(rng.IntN(cfg.Keys))
			price[i] = float64(rng.IntN(10_000)) / 100
			ts[i] = int64((start + i) / cfg.RowsPerS)
		}
		sb, pb, tb := array.NewInt64Builder(mem), array.NewFloat64Builder(mem), array.NewInt64Builder(mem)
		sb.AppendValues(sym, nil)
		pb.AppendValues(price, nil)
		tb.AppendValues(ts, nil)
		cols := []arrow.Array{sb.NewArray(), pb.NewArray(), tb.NewArray()}
		d.batches = append(d.batches, array.NewRecordBatch(d.schema, cols, int64(n)))
		for _, c := range cols {
			c.Release()
		}
		sb.Release()
		pb.Release()
		tb.Release()
		d.sym, d.price, d.ts = append(d.sym, sym), append(d.price, price), append(d.ts, ts)
	}
	return d
}

func (d *aggData) release() {
	for _, b := range d.batches {
		b.Release()
	}
}

// RunAgg runs both sides and writes a report to w.
func RunAgg(ctx context.Context, cfg AggConfig, w io.Writer) error {
	cfg.defaults()
	// Single-core throughput: both sides get one P.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	fmt.Fprintf(w, "windowed GROUP BY: %d rows, %d keys, TUMBLE %ds, batches of %d rows, GOMAXPROCS=%d\n",
		cfg.Rows, cfg.Keys, cfg.Window, cfg.BatchRows, runtime.GOMAXPROCS(0))
	d := makeAggData(cfg)
	defer d.release()
	loop := measure(cfg.Rows, func() (int64, float64, error) { return handLoop(d, cfg.Window), 0, nil })
	loopGroups, loopSum := handLoopChecksum(d, cfg.Window)
	fmt.Fprintf(w, "  hand-written Go loop:  %8.2fM rows/s  (%v, %d groups)\n", loop.RowsPerSec/1e6, loop.Elapsed.Round(time.Millisecond), loopGroups)
	eng := measure(cfg.Rows, func() (int64, float64, error) { return engineRun(ctx, d, cfg, inProcess) })
	if eng.err != nil {
		return eng.err
	}
	fmt.Fprintf(w, "  engine (Spate CQ):     %8.2fM rows/s  (%v, %d groups, %.0f MiB allocated)\n", eng.RowsPerSec/1e6, eng.Elapsed.Round(time.Millisecond), eng.Groups, eng.AllocatedMiB)
	fmt.Fprintf(w, "  ratio engine/loop:     %8.2f  (target >= 0.50)\n", eng.RowsPerSec/loop.RowsPerSec)
	if eng.Groups != loopGroups || !closeEnough(eng.Checksum, loopSum) {
		return fmt.Errorf("engine result differs from the loop: %d groups (sum %.2f) vs %d (sum %.2f)", eng.Groups, eng.Checksum, loopGroups, loopSum)
	}
	return nil
}

func closeEnough(a, b float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= 1e-6*max(1, b)
}

type measured struct {
	AggResult
	err error
}

func measure(rows int, fn func() (int64, float64, error)) measured {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	groups, sum, err := fn()
	el := time.Since(start)
	runtime.ReadMemStats(&after)
	return measured{AggResult: AggResult{Rows: rows, Groups: groups, Checksum: sum, Elapsed: el,
		RowsPerSec: float64(rows) / el.Seconds(), AllocatedMiB: float64(after.TotalAlloc-before.TotalAlloc) / (1 << 20)}, err: err}
}

type loopKey struct{ sym, win int64 }
type loopAcc struct {
	count int64
	sum   float64
}

// handLoop is the baseline: COUNT(*) and SUM(price) per (sym, window) with
// a Go map, closing each window once event time has passed its end, as the
// engine does with a zero watermark delay.
func handLoop(d *aggData, window int64) int64 {
	open := map[int64]map[int64]loopAcc{}
	var groups int64
	wm := int64(-1 << 62)
	for b := range d.sym {
		sym, price, ts := d.sym[b], d.price[b], d.ts[b]
		var m map[int64]loopAcc
		cur := int64(-1 << 62)
		for i := range sym {
			win := ts[i] - ts[i]%window
			if win != cur {
				if m = open[win]; m == nil {
					m = map[int64]loopAcc{}
					open[win] = m
				}
				cur = win
			}
			a := m[sym[i]]
			a.count++
			a.sum += price[i]
			m[sym[i]] = a
			wm = max(wm, ts[i])
		}
		for win, m := range open {
			if win+window <= wm {
				groups += int64(len(m))
				delete(open, win)
			}
		}
	}
	for _, m := range open {
		groups += int64(len(m))
	}
	return groups
}

func handLoopChecksum(d *aggData, window int64) (int64, float64) {
	acc := map[loopKey]*loopAcc{}
	for b := range d.sym {
		for i, s := range d.sym[b] {
			k := loopKey{s, d.ts[b][i] - d.ts[b][i]%window}
			a := acc[k]
			if a == nil {
				a = &loopAcc{}
				acc[k] = a
			}
			a.count++
			a.sum += d.price[b][i]
		}
	}
	var sum float64
	for _, a := range acc {
		sum += a.sum
	}
	return int64(len(acc)), sum
}

// Engine starts the engine a benchmark runs on: a coordinator (with or
// without workers) and the function that stops it.
type Engine struct {
	Name  string
	Start func() (*cluster.Coordinator, func(), error)
}

// inProcess is the engine of the single-core comparison: every instance
// in this process, one per stage.
var inProcess = Engine{Name: "in-process", Start: func() (*cluster.Coordinator, func(), error) {
	c, err := cluster.NewCoordinator(cluster.Config{Parallelism: 1})
	if err != nil {
		return nil, nil, err
	}
	return c, c.Close, nil
}}

// RunAggScaling runs the engine side on each engine in turn (with every
// core of the machine) and reports its throughput and the ratio to the
// first engine's.
func RunAggScaling(ctx context.Context, cfg AggConfig, engines []Engine, w io.Writer) error {
	cfg.defaults()
	fmt.Fprintf(w, "windowed GROUP BY on workers: %d rows, %d keys, TUMBLE %ds, batches of %d rows\n", cfg.Rows, cfg.Keys, cfg.Window, cfg.BatchRows)
	d := makeAggData(cfg)
	defer d.release()
	wantGroups, wantSum := handLoopChecksum(d, cfg.Window)
	// A warm-up run (not reported): the first run otherwise pays for
	// faulting the input in and growing the heap.
	if r := measure(cfg.Rows, func() (int64, float64, error) { return engineRun(ctx, d, cfg, engines[0]) }); r.err != nil {
		return fmt.Errorf("warm-up: %w", r.err)
	}
	var base float64
	for i, e := range engines {
		r := measure(cfg.Rows, func() (int64, float64, error) { return engineRun(ctx, d, cfg, e) })
		if r.err != nil {
			return fmt.Errorf("%s: %w", e.Name, r.err)
		}
		if r.Groups != wantGroups || !closeEnough(r.Checksum, wantSum) {
			return fmt.Errorf("%s: %d groups (sum %.2f), want %d (sum %.2f)", e.Name, r.Groups, r.Checksum, wantGroups, wantSum)
		}
		if i == 0 {
			base = r.RowsPerSec
		}
		fmt.Fprintf(w, "  %-22s %8.2fM rows/s  (%v)  ratio to %s: %.2f\n", e.Name+":", r.RowsPerSec/1e6, r.Elapsed.Round(time.Millisecond), engines[0].Name, r.RowsPerSec/base)
	}
	return nil
}

// engineRun creates a stream and a continuous query in a fresh engine,
// ingests the batches, closes every window and reads the result.
func engineRun(ctx context.Context, d *aggData, cfg AggConfig, e Engine) (int64, float64, error) {
	coord, stop, err := e.Start()
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	sess, err := coord.NewSession(ctx, "spate", "spate")
	if err != nil {
		return 0, 0, err
	}
	defer sess.Close()
	exec := func(sql string) (cluster.Result, error) {
		st, err := parser.ParseOne(sql)
		if err != nil {
			return cluster.Result{}, err
		}
		return sess.Execute(ctx, st, nil)
	}
	if _, err := exec("CREATE STREAM trades (sym BIGINT, price DOUBLE PRECISION, ts BIGINT) WITH (event_time = 'ts', time_unit = 's')"); err != nil {
		return 0, 0, err
	}
	q := fmt.Sprintf("CREATE CONTINUOUS QUERY agg AS SELECT sym, window_start, COUNT(*) AS n, SUM(price) AS total FROM trades GROUP BY sym, TUMBLE(ts, INTERVAL '%d' SECOND)", cfg.Window)
	if _, err := exec(q); err != nil {
		return 0, 0, err
	}
	for _, b := range d.batches {
		if err := coord.Ingest(ctx, "trades", b, false); err != nil {
			return 0, 0, err
		}
	}
	// Close the remaining windows with a row far in the future, then wait.
	if err := coord.CloseWindows(ctx, "trades"); err != nil {
		return 0, 0, err
	}
	res, err := exec("SELECT count(*), sum(total) FROM agg")
	if err != nil {
		return 0, 0, err
	}
	defer res.Rows.Close()
	rec, err := res.Rows.Next(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer rec.Release()
	return rec.Column(0).(*array.Int64).Value(0), rec.Column(1).(*array.Float64).Value(0), nil
}
