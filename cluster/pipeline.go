package cluster

import (
	"context"
	"fmt"
	"math"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/rs/zerolog"

	"github.com/spatedb/spate/exec"
	"github.com/spatedb/spate/planner"
)

// pipeline runs one continuous query's physical DAG inside this process:
// each stage instance is a goroutine that reads messages from its input
// channel, runs its operator chain and routes what it emits to the
// instances of the stage that consumes it, by key range (or to the result
// store after the last stage). Channels are bounded, so a slow stage
// back-pressures its inputs.
type pipeline struct {
	log    zerolog.Logger
	query  *planner.ContinuousQuery
	result *resultStore
	stages [][]*instance
	// consumer[s] is the stage reading stage s and the side it feeds; the
	// last stage has consumer -1.
	consumer []consumerRef
	// reach[s] holds the source stages whose rows can reach stage s.
	reach []map[int]bool
	// inputSchemas[s] is the Arrow schema of rows entering stage s, built
	// once (source stages project every ingested batch to it).
	inputSchemas []*arrow.Schema
	ctx          context.Context
	cancel       context.CancelFunc
	wg           sync.WaitGroup

	mu sync.Mutex
	// protected by mu
	err error // the failure that stopped the pipeline
}

type consumerRef struct {
	stage, side int
}

// message is what flows on a channel: a batch, a watermark, or a barrier.
type message struct {
	side    int // input side of the receiving stage
	from    int // index of the sending instance within its stage
	rec     arrow.RecordBatch
	wm      int64
	hasWM   bool
	barrier *barrier
}

// barrier travels behind the data of one source; when every last-stage
// instance has seen it, everything that source sent before it has reached
// the result store.
type barrier struct {
	source    int // source stage it started from
	remaining atomic.Int32
	done      chan struct{}
}

func (b *barrier) arrive() {
	if b.remaining.Add(-1) == 0 {
		close(b.done)
	}
}

// instance is one running copy of a stage.
type instance struct {
	p     *pipeline
	stage int
	idx   int
	in    chan message
	chain *chain
	// inputs: for each side, the number of upstream instances; a source
	// stage has one pseudo-side fed by the coordinator.
	sideWidth []int
	sideBase  []int   // offset of each side's entries in wms
	wms       []int64 // latest watermark from each upstream instance
	wm        int64   // merged watermark (minimum over upstreams)
	out       int64   // output watermark last forwarded
	barriers  map[*barrier]int
	// routing to the consumer stage
	partitionBy []int
	splits      []uint64 // instance i owns [splits[i-1], splits[i])
	hashes      []uint64
	// lag is how far (µs) the stage's output watermark trails its input
	// watermark: an interval join still emits left rows (null-padded ones)
	// up to its upper bound after the watermark passed their time.
	lag int64
	// rowsIn and rowsOut count the rows the instance received and emitted.
	rowsIn, rowsOut int64
	// published is the instance's counters as of the last message, for
	// readers on other goroutines (SHOW INSTANCES).
	published atomic.Pointer[exec.Stats]
	wmPub     atomic.Int64
}

const channelDepth = 16

// startPipeline builds and starts the instances of every stage.
func startPipeline(q *planner.ContinuousQuery, result *resultStore, log zerolog.Logger) (*pipeline, error) {
	ctx, cancel := context.WithCancel(context.Background())
	stages := q.Plan.Stages
	p := &pipeline{log: log, query: q, result: result, ctx: ctx, cancel: cancel,
		consumer: make([]consumerRef, len(stages)), reach: make([]map[int]bool, len(stages))}
	for s, st := range stages {
		p.consumer[s] = consumerRef{stage: -1}
		p.inputSchemas = append(p.inputSchemas, ArrowSchema(st.Input))
	}
	for s, st := range stages {
		p.reach[s] = map[int]bool{}
		if st.Source != nil {
			p.reach[s][s] = true
		}
		for side, in := range st.Sides {
			p.consumer[in.Stage] = consumerRef{stage: s, side: side}
			for src := range p.reach[in.Stage] {
				p.reach[s][src] = true
			}
		}
	}
	for s, st := range stages {
		widths := []int{1}
		if len(st.Sides) > 0 {
			widths = widths[:0]
			for _, side := range st.Sides {
				widths = append(widths, stages[side.Stage].Parallelism)
			}
		}
		var row []*instance
		for i := 0; i < st.Parallelism; i++ {
			head, ops, err := buildOps(st, nil)
			if err != nil {
				p.closeAll()
				cancel()
				return nil, err
			}
			in := &instance{
				p: p, stage: s, idx: i, in: make(chan message, channelDepth),
				sideWidth: widths, wm: math.MinInt64, out: math.MinInt64, barriers: map[*barrier]int{},
			}
			total := 0
			for _, w := range widths {
				in.sideBase = append(in.sideBase, total)
				total += w
			}
			in.wms = make([]int64, total)
			for j := range in.wms {
				in.wms[j] = math.MinInt64
			}
			if c := p.consumer[s]; c.stage >= 0 {
				next := stages[c.stage]
				in.partitionBy = next.Sides[c.side].PartitionBy
				in.splits = evenSplits(next.Parallelism)
			}
			in.chain = newChain(head, ops, in.emit)
			in.lag = watermarkLag(st)
			in.wmPub.Store(math.MinInt64)
			row = append(row, in)
		}
		p.stages = append(p.stages, row)
	}
	for _, row := range p.stages {
		for _, in := range row {
			p.wg.Add(1)
			go in.run()
		}
	}
	return p, nil
}

// watermarkLag is how far a stage's output watermark trails its input's.
func watermarkLag(st *planner.Stage) int64 {
	var lag int64
	for _, op := range st.Ops {
		if j, ok := op.(*planner.JoinOp); ok && j.Kind == planner.JoinInterval {
			lag = max(lag, j.Upper)
		}
	}
	return lag
}

// evenSplits divides the 64-bit hash space into n equal key ranges and
// returns the n-1 boundaries.
func evenSplits(n int) []uint64 {
	splits := make([]uint64, 0, n-1)
	for i := 1; i < n; i++ {
		splits = append(splits, uint64(float64(i)/float64(n)*math.MaxUint64))
	}
	return splits
}

func (in *instance) run() {
	defer in.p.wg.Done()
	defer func() {
		// A bug in an operator fails this query, not the server.
		if r := recover(); r != nil {
			in.p.fail(&Error{Code: "XX000", Message: fmt.Sprintf("internal error in stage %d instance %d: %v", in.stage, in.idx, r)})
			in.p.logPanic(r)
		}
	}()
	for {
		select {
		case <-in.p.ctx.Done():
			return
		case m := <-in.in:
			err := in.handle(m)
			st := in.chain.stats()
			st.RowsIn, st.RowsOut = in.rowsIn, in.rowsOut
			in.published.Store(&st)
			if err != nil {
				in.p.fail(fmt.Errorf("stage %d instance %d: %w", in.stage, in.idx, err))
				return
			}
		}
	}
}

func (in *instance) handle(m message) error {
	switch {
	case m.rec != nil:
		defer m.rec.Release()
		in.rowsIn += m.rec.NumRows()
		return in.chain.push(m.side, m.rec)
	case m.hasWM:
		slot := in.sideBase[m.side] + m.from
		if m.wm <= in.wms[slot] {
			return nil
		}
		in.wms[slot] = m.wm
		low := in.wms[0]
		for _, w := range in.wms[1:] {
			low = min(low, w)
		}
		if low <= in.wm {
			return nil
		}
		in.wm = low
		in.wmPub.Store(low)
		if err := in.chain.advance(low); err != nil {
			return err
		}
		out := low
		if in.lag > 0 && low != math.MaxInt64 {
			out = low - in.lag
		}
		out = in.chain.holdBack(out)
		if out <= in.out {
			return nil
		}
		in.out = out
		return in.forward(message{wm: out, hasWM: true})
	case m.barrier != nil:
		in.barriers[m.barrier]++
		if in.barriers[m.barrier] < in.barrierWidth(m.barrier.source) {
			return nil
		}
		delete(in.barriers, m.barrier)
		if in.p.consumer[in.stage].stage < 0 {
			m.barrier.arrive()
			return nil
		}
		return in.forward(message{barrier: m.barrier})
	}
	return nil
}

// barrierWidth is how many copies of a barrier from source src reach this
// instance: one from every upstream instance on a side src feeds.
func (in *instance) barrierWidth(src int) int {
	st := in.p.query.Plan.Stages[in.stage]
	if st.Source != nil {
		return 1
	}
	n := 0
	for side, s := range st.Sides {
		if in.p.reach[s.Stage][src] {
			n += in.sideWidth[side]
		}
	}
	return n
}

// forward sends a watermark or barrier to every instance of the consumer.
func (in *instance) forward(m message) error {
	c := in.p.consumer[in.stage]
	if c.stage < 0 {
		if m.hasWM {
			in.p.result.advance(in.idx, len(in.p.stages[in.stage]), m.wm)
		}
		return nil
	}
	m.from, m.side = in.idx, c.side
	for _, next := range in.p.stages[c.stage] {
		if err := in.p.send(next, m); err != nil {
			return err
		}
	}
	return nil
}

// emit routes a batch the chain produced (valid only during the call).
func (in *instance) emit(rec arrow.RecordBatch) error {
	if rec.NumRows() == 0 {
		return nil
	}
	in.rowsOut += rec.NumRows()
	c := in.p.consumer[in.stage]
	if c.stage < 0 {
		return in.p.result.apply(rec)
	}
	next := in.p.stages[c.stage]
	if len(next) == 1 {
		rec.Retain()
		return in.p.send(next[0], message{side: c.side, from: in.idx, rec: rec})
	}
	in.hashes = exec.HashColumns(rec, in.partitionBy, in.hashes[:0])
	parts, err := splitByRange(rec, in.hashes, in.splits)
	if err != nil {
		return err
	}
	for i, part := range parts {
		if part == nil {
			continue
		}
		if err := in.p.send(next[i], message{side: c.side, from: in.idx, rec: part}); err != nil {
			for _, rest := range parts[i+1:] {
				if rest != nil {
					rest.Release()
				}
			}
			return err
		}
	}
	return nil
}

// splitByRange partitions rec by the key range each row's hash falls in.
// Part i is nil when no row falls in range i; the caller owns the parts.
func splitByRange(rec arrow.RecordBatch, hashes []uint64, splits []uint64) ([]arrow.RecordBatch, error) {
	n := len(splits) + 1
	idx := make([][]int32, n)
	for row, h := range hashes {
		r := sort.Search(len(splits), func(i int) bool { return splits[i] > h })
		idx[r] = append(idx[r], int32(row))
	}
	parts := make([]arrow.RecordBatch, n)
	for r, rows := range idx {
		if len(rows) == 0 {
			continue
		}
		if len(rows) == int(rec.NumRows()) {
			rec.Retain()
			parts[r] = rec
			continue
		}
		b := array.NewInt32Builder(memory.DefaultAllocator)
		b.AppendValues(rows, nil)
		ind := b.NewArray()
		b.Release()
		out, err := compute.Take(context.Background(), *compute.DefaultTakeOptions(), compute.NewDatum(rec), compute.NewDatum(ind))
		ind.Release()
		if err != nil {
			for _, p := range parts {
				if p != nil {
					p.Release()
				}
			}
			return nil, err
		}
		parts[r] = out.(*compute.RecordDatum).Value
	}
	return parts, nil
}

// send delivers m to an instance, waiting for room (back-pressure). The
// message's batch is released if the pipeline stops first.
func (p *pipeline) send(to *instance, m message) error {
	select {
	case to.in <- m:
		return nil
	case <-p.ctx.Done():
		if m.rec != nil {
			m.rec.Release()
		}
		if err := p.failure(); err != nil {
			return err
		}
		return p.ctx.Err()
	}
}

// ingest sends a batch (already projected to the source stage's input;
// nil for none) and then, when hasWM, the source's watermark into source
// stage src. The caller keeps its reference to rec.
func (p *pipeline) ingest(src int, rec arrow.RecordBatch, wm int64, hasWM bool) error {
	to := p.stages[src][0]
	if rec != nil && rec.NumRows() > 0 {
		rec.Retain()
		if err := p.send(to, message{rec: rec}); err != nil {
			return err
		}
	}
	if !hasWM {
		return nil
	}
	return p.send(to, message{wm: wm, hasWM: true})
}

// flush waits until everything source stage src was sent so far has
// reached the result store.
func (p *pipeline) flush(ctx context.Context, src int) error {
	last := p.stages[len(p.stages)-1]
	b := &barrier{source: src, done: make(chan struct{})}
	b.remaining.Store(int32(len(last)))
	if err := p.send(p.stages[src][0], message{barrier: b}); err != nil {
		return err
	}
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.ctx.Done():
		if err := p.failure(); err != nil {
			return err
		}
		return p.ctx.Err()
	}
}

func (p *pipeline) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	p.cancel()
	p.result.fail(err)
}

// logPanic records a recovered panic with its stack, for the operator.
func (p *pipeline) logPanic(r any) {
	p.log.Error().Str("query", p.query.Name).Interface("panic", r).Str("stack", string(debug.Stack())).Msg("continuous query failed")
}

func (p *pipeline) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// stop ends every instance and releases their state. Idempotent.
func (p *pipeline) stop() {
	p.cancel()
	p.wg.Wait()
	for _, row := range p.stages {
		for _, in := range row {
		drain:
			for {
				select {
				case m := <-in.in:
					if m.rec != nil {
						m.rec.Release()
					}
				default:
					break drain
				}
			}
		}
	}
	p.closeAll()
}

func (p *pipeline) closeAll() {
	for _, row := range p.stages {
		for _, in := range row {
			in.chain.close()
		}
	}
}

// instanceStats reports each instance for SHOW INSTANCES.
type instanceStats struct {
	Stage, Instance int
	Operators       string
	KeyRange        string
	Stats           exec.Stats
	Watermark       int64
}

// stats reads the instances' counters as published after their last
// message, without stopping them.
func (p *pipeline) stats() []instanceStats {
	var out []instanceStats
	for s, row := range p.stages {
		st := p.query.Plan.Stages[s]
		var ops []string
		for _, op := range st.Ops {
			ops = append(ops, opName(op))
		}
		splits := evenSplits(len(row))
		for i, in := range row {
			lo, hi := uint64(0), uint64(math.MaxUint64)
			if i > 0 {
				lo = splits[i-1]
			}
			if i < len(splits) {
				hi = splits[i] - 1
			}
			kr := "all"
			if len(st.PartitionBy) > 0 {
				kr = fmt.Sprintf("[%016x, %016x]", lo, hi)
			}
			var stats exec.Stats
			if ps := in.published.Load(); ps != nil {
				stats = *ps
			}
			out = append(out, instanceStats{Stage: s, Instance: i, Operators: fmt.Sprint(ops), KeyRange: kr, Stats: stats, Watermark: in.wmPub.Load()})
		}
	}
	return out
}

func opName(op planner.Op) string {
	switch x := op.(type) {
	case *planner.CalcOp:
		return "Calc"
	case *planner.AggOp:
		return "HashAggregate"
	case *planner.SortOp:
		return "Sort"
	case *planner.JoinOp:
		if x.Kind == planner.JoinLookup {
			return "LookupJoin"
		}
		return "IntervalJoin"
	}
	return fmt.Sprintf("%T", op)
}
