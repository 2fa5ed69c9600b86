package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/rs/zerolog"

	"github.com/spatedb/spate/cluster/transport"
	"github.com/spatedb/spate/exec"
	"github.com/spatedb/spate/planner"
)

// pipeline is one process's part of a continuous query's physical DAG:
// the instances placement assigns to this host. Each instance is a
// goroutine that reads messages from its input channel, runs its
// operator chain and hands what it emits to one outlet per instance of
// the consuming stage, by key range; after the last stage the outlet is
// the query's sink (the result store, on the coordinator). An outlet is a
// Go channel when the consumer runs in this process and a
// cluster/transport channel when it runs on another host; what arrives
// over the network is put on the instance's input channel by a receiver
// goroutine. Channels are bounded and transport channels run on credit,
// so a slow stage back-pressures its inputs across processes.
type pipeline struct {
	log   zerolog.Logger
	query *planner.ContinuousQuery
	run   string    // place.Run, which never changes
	place placement // protected by mu once running (a repair changes it)
	host  string    // this process's host ID in place
	net   *dataPlane
	// result is the query's result store (the coordinator's part only).
	result *resultStore
	// onFail reports this part's failure (a worker tells the coordinator).
	onFail func(error)
	// onCheckpoint receives each instance's snapshot at a checkpoint
	// barrier, from the instance's goroutine; onSinkCheckpoint counts a
	// checkpoint barrier in at the sink (coordinator only). Nil: ignored.
	onCheckpoint     func(epoch uint64, snap *instanceSnapshot, err error)
	onSinkCheckpoint func(from int, epoch uint64)
	// stages[s][i] is instance i of stage s, nil when another host runs it.
	stages [][]*instance
	// consumer[s] is the stage reading stage s and the side it feeds; the
	// last stage has consumer -1.
	consumer []consumerRef
	// reach[s] holds the source stages whose rows can reach stage s.
	reach []map[int]bool
	// inputGroups[s][side] groups stage s's sides by the relations that
	// feed them (watermark merges idleness per group).
	inputGroups [][]int
	// inputSchemas[s] is the Arrow schema of rows entering stage s, built
	// once (source stages project every ingested batch to it).
	inputSchemas []*arrow.Schema
	ctx          context.Context
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	nextBarrier  atomic.Uint64
	sendSeq      atomic.Uint64 // numbers what outlets keep (backup.go)
	stopOnce     sync.Once
	// onLost, when set, hears of a consumer lost by an outlet that keeps
	// its output for replay (backup.go).
	onLost func(channelName)
	// sinkGen is the incarnation of the sink (coordinator): channels and
	// messages of an older one are refused after a repair.
	sinkGen atomic.Int64
	// sinkWidth is the number of last-stage instances (the placement's,
	// without its lock: the sink reads it for every watermark).
	sinkWidth    atomic.Int64
	lastBlockLog atomic.Int64 // when ingest last logged back-pressure, ns
	// fed counts the messages ingested into the source stages other
	// than checkpoint barriers: a query whose count did not move since
	// its last checkpoint is not checkpointed again (checkpointQuery).
	fed atomic.Uint64
	// stalled is set while a repair waits for a worker to join (every
	// worker is dead): flushes return at once, as what they wait for is
	// logged and kept for the replay (awaitLiveWorker).
	stalled atomic.Bool

	mu sync.Mutex
	// protected by mu
	err       error                   // the failure that stopped the pipeline
	waits     map[uint64]*barrierWait // flushes waiting for their barrier
	senders   []*transport.Sender
	receivers []*transport.Receiver
	channels  map[channelPair]liveChannel // the newest incoming channel of each pair
	stopped   bool
	// sourceReplay is the replay of the source stages' outlets in
	// progress (replay.go), or a stopped one no repair carried on yet.
	sourceReplay *replayRun

	// sinkIns numbers what each last-stage instance sends the sink, to
	// drop what a restored one sends again (dedupe.go); guarded by mu.
	sinkIns map[int]*sinkInput
	// sinkFrom is the checkpoint the sink's incarnation was restored
	// from (0: the first).
	sinkFrom atomic.Uint64
	// sinkDuplicates counts what restored last-stage instances sent the
	// sink again.
	sinkDuplicates atomic.Int64
}

// sinkInput is the sink's position on one last-stage instance's output.
// mu serialises its deliveries, which come on the instance's channels.
type sinkInput struct {
	mu  sync.Mutex
	gen int // the sink incarnation seq counts for
	seq inputSeq
}

type consumerRef struct {
	stage, side int
}

// message is what flows on a channel: a batch, a watermark, or a barrier.
type message struct {
	side  int // input side of the receiving stage
	from  int // index of the sending instance within its stage
	rec   arrow.RecordBatch
	wm    int64
	hasWM bool
	// idle, with hasWM: the sender's input is idle (a stream without rows
	// for its idle_timeout); leave it out of the watermark minimum until
	// its next ordinary watermark. wm is its last one.
	idle    bool
	barrier uint64 // flush barrier ID (0: none), see pipeline.flush
	source  int    // with barrier: the source stage it started from
	// snapshot asks the instance for a checkpoint of its state as of this
	// point of its input (checkpoint.go).
	snapshot chan<- snapshotReply
	// ckpt is a checkpoint barrier's epoch (0: none): aligned over every
	// input, then the instance snapshots its state and passes it on.
	ckpt uint64
	// ctl runs on the instance's goroutine, between two messages (a
	// rescale swaps the instance's route, scale.go).
	ctl func() error
	// resume is a restored producer's mark: what it sends next follows
	// this checkpoint's barrier (dedupe.go).
	resume uint64
	// log is the part of the sender's input log this message carries
	// (an instance with several inputs, dedupe.go).
	log []uint32
}

// release drops m's batch reference, if it holds one.
func (m message) release() {
	if m.rec != nil {
		m.rec.Release()
	}
}

type snapshotReply struct {
	snap *instanceSnapshot
	err  error
}

// barrierWait is a flush waiting until every last-stage instance has
// passed its barrier to the sink: then everything the source sent before
// it has reached the result store.
type barrierWait struct {
	remaining int
	done      chan struct{}
	abandoned bool // by a repair: send another barrier
}

// route is an instance's routing state towards the stage it feeds: the
// key ranges of the consumer's instances and the outlet that reaches each
// (a local instance, a worker, or the sink after the last stage). It is
// versioned: a query's routes start at placement.Version, and a change of
// ranges or hosts (scale-out, recovery) installs a higher version.
type route struct {
	version     uint64
	partitionBy []int     // key columns of the consumer's side
	ranges      keyRanges // the consumer instances' key ranges
	outs        []outlet  // outs[i] reaches consumer instance i
	// load counts the rows sent to each consumer instance in each of
	// LoadBuckets equal parts of its key range: load[i*LoadBuckets+b]
	// (partitioned routes only). counts is emit's scratch.
	load   []atomic.Uint64
	counts []uint64
}

// LoadBuckets is how many equal parts of its key range an instance's
// input rows are counted in (SHOW INSTANCES.load_buckets): where in its
// range the load is, for a split that balances it.
const LoadBuckets = 16

// LoadBucket is which of n equal parts of [lo, hi] hash h falls in (the
// last part may be shorter).
func LoadBucket(lo, hi uint64, n int, h uint64) int {
	return int((h - lo) / BucketWidth(lo, hi, n))
}

// BucketWidth is the number of hashes in each of n equal parts of [lo,
// hi] (the last may be shorter), without overflowing on the whole space.
func BucketWidth(lo, hi uint64, n int) uint64 { return (hi-lo)/uint64(n) + 1 }

// keyRanges divides a partitioned stage's key space among its instances:
// range r is [splits[r-1], splits[r]) and order[r] the instance that owns
// it (nil: instance r). Ranges stay sorted by hash while instances keep
// their index across a scale-out, which appends the new one.
type keyRanges struct {
	splits []uint64
	order  []int
}

// owner is the instance that owns range r.
func (k keyRanges) owner(r int) int {
	if k.order == nil {
		return r
	}
	return k.order[r]
}

// pos is the range instance i owns (-1: none).
func (k keyRanges) pos(i int) int {
	if k.order == nil {
		if i > len(k.splits) {
			return -1
		}
		return i
	}
	for r, o := range k.order {
		if o == i {
			return r
		}
	}
	return -1
}

// of is instance i's key range.
func (k keyRanges) of(i int) (lo, hi uint64) { return rangeOf(k.splits, k.pos(i)) }

// width is the number of ranges (and instances).
func (k keyRanges) width() int { return len(k.splits) + 1 }

// rangeOf is the r-th key range under splits.
func rangeOf(splits []uint64, i int) (lo, hi uint64) {
	lo, hi = 0, math.MaxUint64
	if i > 0 {
		lo = splits[i-1]
	}
	if i < len(splits) {
		hi = splits[i] - 1
	}
	return lo, hi
}

// instance is one running copy of a stage.
type instance struct {
	p     *pipeline
	stage int
	idx   int
	gen   int // incarnation: a repair replaces an instance with gen+1
	in    chan message
	// ctx ends when the instance stops (with the pipeline, or replaced by
	// a repair); done closes when its goroutine has returned.
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	started bool // running (control goroutines only)
	// keptFrom is the checkpoint its outlets' kept output starts after:
	// the epoch it was restored from (0: it started from nothing).
	keptFrom uint64
	wired    atomic.Bool // route set: readable by other goroutines
	// skipCkpt: checkpoint barriers of epochs up to it are dropped (a
	// restored instance; those epochs were aborted by the repair).
	// passCkpt: they go on to the consumers, which keep running, once in
	// from every input, without holding inputs back or a snapshot
	// (passBarrier); passed counts them in.
	skipCkpt, passCkpt uint64
	passed             map[uint64]int
	// freeze: the instance stops at the next checkpoint barrier it
	// aligns (frozen), dropping every input after it — an in-place
	// rescale replaces it there (scale.go).
	freeze, frozen bool
	chain          *chain
	// inputs: for each side, the number of upstream instances; a source
	// stage has one pseudo-side fed by the coordinator.
	sideWidth []int
	sideBase  []int   // offset of each side's entries in wms
	wms       []int64 // latest watermark from each upstream instance
	idle      []bool  // which upstream instances said they are idle
	// received counts the messages handled from each upstream instance:
	// a checkpoint records them as the input positions it covers.
	received []uint64
	// seqs numbers what arrives from each upstream instance, to drop what
	// a restored one sends again (dedupe.go).
	seqs []inputSeq
	// resume, on a restored instance whose consumers keep running, is the
	// checkpoint it resumes after: its channels say so (dedupe.go).
	resume uint64
	// An instance with several inputs logs the input of each message it
	// handles since its last checkpoint cut (plog); sentLog[i] is how much
	// of it outlet i carried. A restored one takes its inputs in the order
	// follow gives, queueing them in pending meanwhile (dedupe.go).
	logsInputs bool
	plog       []uint32
	sentLog    []int
	follow     []uint32
	pending    [][]message
	idleOut    bool  // this instance told its consumers it is idle
	wm         int64 // merged watermark (minimum over active upstreams)
	// Checkpoint alignment: while aligning epoch ckptEpoch, inputs that
	// delivered its barrier are blocked and their later messages held,
	// in order, until every input has delivered it.
	aligning   bool
	ckptEpoch  uint64
	alignStart time.Time // the first barrier of ckptEpoch
	barred     []bool
	nbarred    int
	held       [][]message
	out        int64 // output watermark last forwarded
	barriers   map[uint64]int
	// route is written by the instance's goroutine only (and before it
	// starts); other goroutines read it under routeMu, which a rescale's
	// route swap holds.
	route   route
	routeMu sync.RWMutex
	hashes  []uint64
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
	busy      atomic.Int64 // ns spent handling messages
	recent    busyMeter    // the same, by wall-clock second
	// duplicates counts what a restored upstream instance sent again.
	duplicates atomic.Int64
	// blocked is the time (ns) ingest waited for room in a source
	// instance's input; blockedSince is when a wait still going on began.
	blocked, blockedSince atomic.Int64
}

// ingestWait is the time (ns) ingest has waited for this source instance,
// including a wait in progress.
func (in *instance) ingestWait() int64 {
	ns := in.blocked.Load()
	if since := in.blockedSince.Load(); since != 0 {
		ns += max(0, time.Now().UnixNano()-since)
	}
	return ns
}

const channelDepth = 16

// newPipeline builds this host's instances of q as placed by place and
// registers the pipeline with the data plane, so channels from other
// hosts are accepted; start wires the outlets and runs the instances.
func newPipeline(q *planner.ContinuousQuery, place placement, host string, net *dataPlane, result *resultStore, log zerolog.Logger) (*pipeline, error) {
	ctx, cancel := context.WithCancel(context.Background())
	stages := q.Plan.Stages
	p := &pipeline{log: log, query: q, place: place, run: place.Run, host: host, net: net, result: result, ctx: ctx, cancel: cancel,
		consumer: make([]consumerRef, len(stages)), reach: make([]map[int]bool, len(stages)), waits: map[uint64]*barrierWait{},
		channels: map[channelPair]liveChannel{}, sinkIns: map[int]*sinkInput{}}
	if len(place.Hosts) != len(stages) {
		cancel()
		return nil, fmt.Errorf("placement of %d stages for a plan of %d", len(place.Hosts), len(stages))
	}
	for s, st := range stages {
		p.consumer[s] = consumerRef{stage: -1}
		p.inputSchemas = append(p.inputSchemas, ArrowSchema(st.Input))
		if place.width(s) == 0 {
			cancel()
			return nil, fmt.Errorf("placement of %d instances for stage %d of parallelism %d", place.width(s), s, st.Parallelism)
		}
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
	p.inputGroups = inputGroups(stages, p.reach)
	for s := range stages {
		row := make([]*instance, place.width(s))
		p.stages = append(p.stages, row)
		for i := range row {
			if place.Hosts[s][i] != host {
				continue
			}
			in, err := p.newInstance(s, i, place.gen(s, i))
			if err != nil {
				p.closeAll()
				cancel()
				return nil, err
			}
			row[i] = in
		}
	}
	p.sinkGen.Store(int64(place.SinkGen))
	p.sinkWidth.Store(int64(place.width(len(stages) - 1)))
	if net != nil {
		net.register(p)
	}
	return p, nil
}

// inputGroups numbers each stage's sides by the source relations whose
// rows reach them: sides fed by the same relations (both sides of a
// self-join) are one group.
func inputGroups(stages []*planner.Stage, reach []map[int]bool) [][]int {
	out := make([][]int, len(stages))
	for s, st := range stages {
		ids := map[string]int{}
		for _, side := range st.Sides {
			var rels []string
			for src := range reach[side.Stage] {
				rels = append(rels, stages[src].Source.Relation)
			}
			slices.Sort(rels)
			key := strings.Join(slices.Compact(rels), "\x00")
			if _, ok := ids[key]; !ok {
				ids[key] = len(ids)
			}
			out[s] = append(out[s], ids[key])
		}
	}
	return out
}

// newInstance builds instance i of stage s (not started).
func (p *pipeline) newInstance(s, i, gen int) (*instance, error) {
	stages := p.query.Plan.Stages
	st := stages[s]
	pl := p.placement()
	widths := []int{1}
	if len(st.Sides) > 0 {
		widths = widths[:0]
		for _, side := range st.Sides {
			widths = append(widths, pl.width(side.Stage))
		}
	}
	head, ops, err := buildOps(st, nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(p.ctx)
	in := &instance{
		p: p, stage: s, idx: i, gen: gen, in: make(chan message, channelDepth), ctx: ctx, cancel: cancel, done: make(chan struct{}),
		sideWidth: widths, wm: math.MinInt64, out: math.MinInt64, barriers: map[uint64]int{},
	}
	total := 0
	for _, w := range widths {
		in.sideBase = append(in.sideBase, total)
		total += w
	}
	in.wms = make([]int64, total)
	in.idle = make([]bool, total)
	in.barred = make([]bool, total)
	in.received = make([]uint64, total)
	in.seqs = make([]inputSeq, total)
	in.logsInputs = total > 1
	in.held = make([][]message, total)
	for j := range in.wms {
		in.wms[j] = math.MinInt64
	}
	if c := p.consumer[s]; c.stage >= 0 {
		next := stages[c.stage]
		in.route.partitionBy = next.Sides[c.side].PartitionBy
		in.route.ranges = pl.ranges(c.stage)
	}
	in.chain = newChain(head, ops, in.emit)
	in.lag = watermarkLag(st)
	in.wmPub.Store(math.MinInt64)
	return in, nil
}

// start connects every local instance not started yet to the instances
// it feeds (dialing the hosts that run them) and starts them. Every host
// of the query must have built its part (newPipeline, prepareRepair)
// before any starts.
func (p *pipeline) start(ctx context.Context) error {
	pl := p.placement()
	var fresh []*instance
	for _, in := range p.localInstances() {
		if !in.started {
			fresh = append(fresh, in)
		}
	}
	for _, in := range fresh {
		if err := in.wire(ctx, pl); err != nil {
			return err
		}
	}
	for _, in := range fresh {
		in.started = true
		p.wg.Add(1)
		go in.run()
	}
	return nil
}

// wire makes the instance's outlets: one per instance of the consuming
// stage, or the sink.
func (in *instance) wire(ctx context.Context, pl placement) error {
	p := in.p
	in.route.version = pl.Version
	c := p.consumer[in.stage]
	var chans []channelName
	if c.stage < 0 {
		chans = append(chans, channelName{run: pl.Run, fromStage: in.stage, fromIdx: in.idx, toStage: -1, gen: pl.SinkGen})
	}
	for j := range pl.Hosts[max(c.stage, 0)] {
		if c.stage >= 0 {
			chans = append(chans, channelName{run: pl.Run, fromStage: in.stage, fromIdx: in.idx, toStage: c.stage, toIdx: j, side: c.side, gen: pl.gen(c.stage, j)})
		}
	}
	for _, ch := range chans {
		named := ch // a backup outlet's replays name no resume
		named.resume = in.resume
		o, err := p.outlet(ctx, pl, named)
		if err != nil {
			return err
		}
		if _, remote := o.(remoteOutlet); !remote && in.resume != 0 {
			// What a channel names for a remote consumer, a local
			// one learns from a first message.
			p.retireChannel(ch.pair())
			if err := o.send(ctx, message{side: c.side, from: in.idx, resume: in.resume}); err != nil {
				return err
			}
		}
		if pl.Buffered {
			b := newBackupOutlet(p, ch, o)
			b.base = in.keptFrom
			o = b
		}
		in.route.outs = append(in.route.outs, o)
	}
	if len(in.route.partitionBy) > 0 {
		in.route.load = make([]atomic.Uint64, len(in.route.outs)*LoadBuckets)
		in.route.counts = make([]uint64, len(in.route.outs)*LoadBuckets)
	}
	in.wired.Store(true)
	return nil
}

// outlets is the instance's outlets, for goroutines other than its own.
func (in *instance) outlets() []outlet {
	in.routeMu.RLock()
	defer in.routeMu.RUnlock()
	return in.route.outs
}

// localInstances lists the instances this host runs.
func (p *pipeline) localInstances() []*instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*instance
	for _, row := range p.stages {
		for _, in := range row {
			if in != nil {
				out = append(out, in)
			}
		}
	}
	return out
}

// instanceAt is instance i of stage s if this host runs it.
func (p *pipeline) instanceAt(s, i int) *instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s < 0 || s >= len(p.stages) || i < 0 || i >= len(p.stages[s]) {
		return nil
	}
	return p.stages[s][i]
}

// placement is where the query's instances run now (a repair moves
// some).
func (p *pipeline) placement() placement {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.place
}

// outlet returns the way to the consumer a channel names: the local
// instance or sink, or a transport channel to the host that runs it.
func (p *pipeline) outlet(ctx context.Context, pl placement, ch channelName) (outlet, error) {
	host := coordinatorHost
	if ch.toStage >= 0 {
		host = pl.Hosts[ch.toStage][ch.toIdx]
	}
	if host == p.host {
		if ch.toStage < 0 {
			return sinkOutlet{p: p, gen: ch.gen}, nil
		}
		to := p.instanceAt(ch.toStage, ch.toIdx)
		if to == nil {
			return nil, fmt.Errorf("channel %s: no local instance", ch)
		}
		return localOutlet{to}, nil
	}
	addr := pl.Addrs[host]
	if p.net == nil || addr == "" {
		return nil, fmt.Errorf("no data-plane address for host %q", host)
	}
	s, err := p.net.dial(ctx, addr, ch.String())
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.senders = append(p.senders, s)
	p.mu.Unlock()
	return remoteOutlet{s: s, host: host}, nil
}

// attach takes an incoming channel for this pipeline: a goroutine moves
// its frames to the instance (or sink) it names until it ends.
func (p *pipeline) attach(r *transport.Receiver, ch channelName) {
	var to outlet = sinkOutlet{p: p, gen: ch.gen}
	ctx := p.ctx
	if ch.toStage >= 0 {
		in := p.instanceAt(ch.toStage, ch.toIdx)
		if in == nil || in.gen != ch.gen {
			p.log.Warn().Str("channel", ch.String()).Msg("refusing a channel to an instance this host does not run")
			r.Close()
			return
		}
		to, ctx = localOutlet{in}, in.ctx
	} else if p.result == nil || int64(ch.gen) != p.sinkGen.Load() {
		r.Close()
		return
	}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		r.Close()
		return
	}
	p.receivers = append(p.receivers, r)
	buffered := p.place.Buffered
	done := make(chan struct{})
	// Retiring the channel also ends a delivery waiting for room.
	sendCtx, stopSends := context.WithCancel(p.ctx)
	prev := p.channels[ch.pair()]
	p.channels[ch.pair()] = liveChannel{r: r, done: done, stop: stopSends}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		defer close(done)
		defer stopSends()
		defer r.Close()
		if ch.resume != 0 {
			// A restored producer: what the channel it replaces still
			// carries is dropped (the producer sends it again), and the
			// consumer learns where the producer resumes.
			prev.retire()
			if err := p.deliverTo(sendCtx, to, ch, message{side: ch.side, from: ch.fromIdx, resume: ch.resume}); err != nil {
				return
			}
		}
		for {
			f, err := r.Recv(ctx)
			if err != nil {
				// With upstream backup a lost channel is repaired from
				// the sending side (backup.go); else it fails the query.
				if ctx.Err() == nil && !errors.Is(err, io.EOF) && !buffered {
					p.fail(errorf("58000", "lost the data channel from %s (%s): %v; with checkpoints off (--checkpoint-interval 0) the query cannot be repaired", p.placement().Hosts[ch.fromStage][ch.fromIdx], ch, err))
				}
				return
			}
			m := message{side: ch.side, from: ch.fromIdx}
			if f.Log != nil {
				if m.log, err = decodeLog(f.Log, maxLogSlots); err != nil {
					if f.Rec != nil {
						f.Rec.Release()
					}
					p.fail(errorf("08P01", "channel %s: %v", ch, err))
					return
				}
			}
			switch f.Kind {
			case transport.KindBatch:
				m.rec = f.Rec
			case transport.KindWatermark:
				m.wm, m.hasWM, m.idle = f.Watermark, true, f.Idle
			case transport.KindBarrier:
				m.barrier, m.source = f.Barrier.ID, int(f.Barrier.Source)
			case transport.KindCheckpoint:
				m.ckpt = f.Barrier.ID
			}
			if err := p.deliverTo(sendCtx, to, ch, m); err != nil {
				return
			}
		}
	}()
}

// deliverTo hands what a channel carried to its consumer: an instance (a
// stopped one, replaced by a repair, ends the channel) or the sink. ctx
// ends when the channel is retired.
func (p *pipeline) deliverTo(ctx context.Context, to outlet, ch channelName, m message) error {
	err := to.send(ctx, m)
	if err == nil || ch.toStage >= 0 || ctx.Err() != nil {
		return err
	}
	if ferr := p.failure(); ferr != nil {
		return ferr
	}
	p.fail(err)
	return err
}

// liveChannel is the newest incoming channel between two instances (or
// an instance and the sink); done closes when its goroutine has
// returned.
type liveChannel struct {
	r    *transport.Receiver
	done chan struct{}
	stop context.CancelFunc // ends its deliveries
}

// retire closes the channel and waits until it delivers no more.
func (c liveChannel) retire() {
	if c.r != nil {
		c.stop() // what it took and did not deliver, the producer sends again
		c.r.Close()
		<-c.done
	}
}

// retireChannel retires the incoming channel of pair, if any: a restored
// producer replaces it with one in this process.
func (p *pipeline) retireChannel(pair channelPair) {
	p.mu.Lock()
	c := p.channels[pair]
	delete(p.channels, pair)
	p.mu.Unlock()
	c.retire()
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
	defer close(in.done)
	defer func() {
		// A bug in an operator fails this query, not the server.
		if r := recover(); r != nil {
			in.p.fail(&Error{Code: "XX000", Message: fmt.Sprintf("internal error in stage %d instance %d: %v", in.stage, in.idx, r)})
			in.p.logPanic(r)
		}
	}()
	for {
		select {
		case <-in.ctx.Done():
			return
		case m := <-in.in:
			start := time.Now()
			err := in.dispatch(m)
			end := time.Now()
			in.busy.Add(int64(end.Sub(start)))
			in.recent.add(end, end.Sub(start))
			st := in.chain.stats()
			st.RowsIn, st.RowsOut = in.rowsIn, in.rowsOut
			in.published.Store(&st)
			if err != nil {
				if in.ctx.Err() == nil { // not stopped (by a repair or a rescale) mid-message
					in.p.fail(fmt.Errorf("stage %d instance %d: %w", in.stage, in.idx, err))
				}
				return
			}
		}
	}
}

// dispatch takes a message from the instance's input: a control
// message runs, a duplicate from a restored upstream instance is
// dropped, anything else is admitted.
func (in *instance) dispatch(m message) error {
	if m.ctl != nil {
		return m.ctl()
	}
	if in.frozen {
		if m.snapshot != nil {
			m.snapshot <- snapshotReply{err: fmt.Errorf("stage %d instance %d is being rescaled", in.stage, in.idx)}
		}
		m.release()
		return nil
	}
	if m.snapshot != nil {
		return in.handle(m)
	}
	slot := in.sideBase[m.side] + m.from
	if m.resume != 0 {
		return in.seqs[slot].resume(m.resume)
	}
	if in.seqs[slot].arrive(&m) {
		in.duplicates.Add(1)
		m.release()
		return nil
	}
	if in.follow != nil && m.barrier == 0 {
		return in.takeFollowing(slot, m)
	}
	return in.admit(slot, m)
}

// admit handles a message that arrived, unless checkpoint alignment
// blocks its input: then it is held back.
func (in *instance) admit(slot int, m message) error {
	if in.aligning && in.barred[slot] {
		in.held[slot] = append(in.held[slot], m)
		return nil
	}
	in.received[slot]++
	if in.logsInputs && m.barrier == 0 {
		in.plog = append(in.plog, uint32(slot))
	}
	if m.ckpt != 0 {
		switch {
		case m.ckpt <= in.skipCkpt:
			return nil // an epoch aborted by the repair that restored this instance
		case m.ckpt <= in.passCkpt:
			return in.passBarrier(m.ckpt)
		}
		return in.checkpointBarrier(slot, m.ckpt)
	}
	return in.handle(m)
}

// checkpointBarrier takes the barrier of a checkpoint epoch from one input.
// Once every input delivered it, the instance's state covers exactly what
// came before the barrier on every input: it is snapshotted and reported,
// the barrier goes on to the consumers, and the held messages are
// dispatched again.
func (in *instance) checkpointBarrier(slot int, epoch uint64) error {
	if !in.aligning {
		in.aligning, in.ckptEpoch, in.alignStart = true, epoch, time.Now()
	}
	if epoch != in.ckptEpoch {
		return fmt.Errorf("checkpoint barrier %d arrived while aligning %d", epoch, in.ckptEpoch)
	}
	in.barred[slot] = true
	in.nbarred++
	if in.nbarred < len(in.barred) {
		return nil
	}
	// The instance takes its state (operator snapshots are immutable
	// copies) and goes on; encoding and reporting happen elsewhere.
	cutStart := time.Now()
	cut, err := in.cut()
	if err == nil {
		cut.head.AlignMicros = cutStart.Sub(in.alignStart).Microseconds()
		cut.head.PauseMicros = time.Since(cutStart).Microseconds()
	}
	if err != nil {
		if in.p.onCheckpoint != nil {
			in.p.onCheckpoint(epoch, nil, err)
		}
		return err
	}
	if report := in.p.onCheckpoint; report != nil {
		go func() {
			snap, err := cut.encode()
			report(epoch, snap, err)
		}()
	} else {
		cut.release()
	}
	if err := in.forward(message{ckpt: epoch}); err != nil {
		return err
	}
	in.resetLog() // the barrier carried what was left of it
	in.aligning, in.nbarred = false, 0
	held := in.held
	in.held = make([][]message, len(held))
	for j := range in.barred {
		in.barred[j] = false
	}
	if in.freeze {
		in.frozen = true
		for _, q := range held {
			for _, m := range q {
				m.release()
			}
		}
		return nil
	}
	for slot, q := range held {
		for i, m := range q {
			if err := in.admit(slot, m); err != nil {
				for _, rest := range q[i+1:] {
					rest.release()
				}
				return err
			}
		}
	}
	return nil
}

func (in *instance) handle(m message) error {
	switch {
	case m.rec != nil:
		defer m.rec.Release()
		in.rowsIn += m.rec.NumRows()
		return in.chain.push(m.side, m.rec)
	case m.hasWM:
		return in.watermark(m)
	case m.snapshot != nil:
		snap, err := in.checkpoint()
		m.snapshot <- snapshotReply{snap, err} // buffered by the asker
		return nil
	case m.barrier != 0:
		in.barriers[m.barrier]++
		if in.barriers[m.barrier] < in.barrierWidth(m.source) {
			return nil
		}
		delete(in.barriers, m.barrier)
		return in.forward(message{barrier: m.barrier, source: m.source})
	}
	return nil
}

// watermark merges a watermark (or idle mark) from an upstream instance.
// Inputs are grouped by the relations that feed them (inputGroups): a
// group's watermark is the minimum over its inputs, and the group is
// idle only when all of them are — they all see the same relations, so
// when one turns active again the others will too, and until they say
// so their older watermarks hold the group back (else what they send
// for the same time would be late). The instance's watermark is the
// minimum over its active groups — or, when every group is idle, the
// largest any of them reached (idle relations hold nothing back). When
// it rises, the chain advances and the output watermark (less an
// interval join's lag, held back by OVER's LEAD) goes to the consumers;
// they also learn when this instance turns idle or active.
func (in *instance) watermark(m message) error {
	slot := in.sideBase[m.side] + m.from
	if m.idle {
		in.idle[slot] = true
	} else {
		in.idle[slot] = false
		in.wms[slot] = max(in.wms[slot], m.wm)
	}
	low, active := in.mergedWatermark()
	if low > in.wm {
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
		if out > in.out {
			in.out = out
			in.idleOut = false
			if err := in.forward(message{wm: out, hasWM: true}); err != nil {
				return err
			}
		}
	}
	switch {
	case !active && !in.idleOut:
		in.idleOut = true
		return in.forward(message{wm: in.out, hasWM: true, idle: true})
	case active && in.idleOut:
		in.idleOut = false
		return in.forward(message{wm: in.out, hasWM: true})
	}
	return nil
}

// mergedWatermark is the watermark over the instance's inputs, and
// whether any group of them is active (see watermark).
func (in *instance) mergedWatermark() (low int64, active bool) {
	groups := in.p.inputGroups[in.stage]
	if len(groups) == 0 { // a source stage: the coordinator's one input
		return in.wms[0], !in.idle[0]
	}
	low, hi, ended := int64(math.MaxInt64), int64(math.MinInt64), true
	for g := range slices.Max(groups) + 1 {
		gw, idle := int64(math.MaxInt64), true
		for side, sg := range groups {
			if sg != g {
				continue
			}
			for j := in.sideBase[side]; j < in.sideBase[side]+in.sideWidth[side]; j++ {
				gw, idle = min(gw, in.wms[j]), idle && in.idle[j]
			}
		}
		if gw == math.MaxInt64 {
			// A table's (it holds nothing back) or an ended input's:
			// it neither holds the others back nor keeps the instance
			// active when they are idle.
			continue
		}
		ended = false
		if !idle {
			low, active = min(low, gw), true
		}
		hi = max(hi, gw)
	}
	switch {
	case ended:
		return math.MaxInt64, true
	case !active:
		low = hi
	}
	return low, active
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

// forward sends a watermark or barrier to every instance of the consumer
// (or to the sink).
func (in *instance) forward(m message) error {
	m.from, m.side = in.idx, in.p.consumer[in.stage].side
	for i := range in.route.outs {
		if err := in.sendTo(i, m); err != nil {
			return err
		}
	}
	return nil
}

// sendTo hands m to outlet i with the part of the input log it has not
// carried yet — unless m is a flush barrier, which consumers do not
// number (dedupe.go).
func (in *instance) sendTo(i int, m message) error {
	if m.barrier == 0 {
		m.log = in.logDelta(i)
	}
	return in.deliver(in.route.outs[i], m)
}

// emit routes a batch the chain produced (valid only during the call).
func (in *instance) emit(rec arrow.RecordBatch) error {
	if rec.NumRows() == 0 {
		return nil
	}
	in.rowsOut += rec.NumRows()
	side := in.p.consumer[in.stage].side
	r := &in.route
	if len(r.outs) == 1 {
		// A partitioned consumer with one instance: its rows are still
		// counted per load bucket, for the split point of a scale-out.
		if len(r.partitionBy) > 0 {
			in.hashes = exec.HashColumns(rec, r.partitionBy, in.hashes[:0])
			countLoad(in.hashes, r.counts)
			r.addLoad()
		}
		rec.Retain()
		return in.sendTo(0, message{side: side, from: in.idx, rec: rec})
	}
	in.hashes = exec.HashColumns(rec, r.partitionBy, in.hashes[:0])
	parts, err := splitByRange(rec, in.hashes, r.ranges.splits, r.counts)
	if err != nil {
		return err
	}
	r.addLoad()
	for i, part := range parts {
		if part == nil {
			continue
		}
		if err := in.sendTo(r.ranges.owner(i), message{side: side, from: in.idx, rec: part}); err != nil {
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

// countLoad counts each hash of a batch for a stage with a single
// range (all hashes) in its load bucket.
func countLoad(hashes []uint64, counts []uint64) {
	w := BucketWidth(0, math.MaxUint64, LoadBuckets)
	for _, h := range hashes {
		counts[h/w]++
	}
}

// addLoad moves the counts of the batch just routed into the load the
// instance reports, per owner of each range.
func (r *route) addLoad() {
	for i, n := range r.counts {
		if n != 0 {
			r.load[r.ranges.owner(i/LoadBuckets)*LoadBuckets+i%LoadBuckets].Add(n)
			r.counts[i] = 0
		}
	}
}

// splitByRange partitions rec by the key range each row's hash falls in.
// Part i is nil when no row falls in range i; the caller owns the parts.
// With counts (LoadBuckets per range), each row is counted in the
// bucket of its range it falls in.
func splitByRange(rec arrow.RecordBatch, hashes []uint64, splits []uint64, counts []uint64) ([]arrow.RecordBatch, error) {
	n := len(splits) + 1
	idx := make([][]int32, n)
	var los, widths []uint64 // of each range's load buckets
	if counts != nil {
		los, widths = make([]uint64, n), make([]uint64, n)
		for r := range n {
			lo, hi := rangeOf(splits, r)
			los[r], widths[r] = lo, BucketWidth(lo, hi, LoadBuckets)
		}
	}
	for row, h := range hashes {
		r := sort.Search(len(splits), func(i int) bool { return splits[i] > h })
		idx[r] = append(idx[r], int32(row))
		if counts != nil {
			counts[r*LoadBuckets+int((h-los[r])/widths[r])]++
		}
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

// deliver is pipeline.deliver for what the instance sends: it ends when
// the instance stops.
func (in *instance) deliver(o outlet, m message) error {
	err := o.send(in.ctx, m)
	if err == nil {
		return nil
	}
	if ferr := in.p.failure(); ferr != nil {
		return ferr
	}
	if in.ctx.Err() != nil {
		return in.ctx.Err()
	}
	in.p.fail(err)
	return err
}

// deliver hands m (whose batch reference it takes) to an outlet, waiting
// for room (back-pressure). When the pipeline stops first it returns the
// failure that stopped it.
func (p *pipeline) deliver(o outlet, m message) error {
	err := o.send(p.ctx, m)
	if err == nil {
		return nil
	}
	if ferr := p.failure(); ferr != nil {
		return ferr
	}
	if p.ctx.Err() != nil {
		return p.ctx.Err()
	}
	p.fail(err)
	return err
}

// ingest sends a batch (already projected to the source stage's input;
// nil for none) and then, when hasWM, the source's watermark into source
// stage src, which runs on the coordinator. The caller keeps its
// reference to rec.
func (p *pipeline) ingest(src int, rec arrow.RecordBatch, wm int64, hasWM bool) error {
	if rec != nil && rec.NumRows() > 0 {
		rec.Retain()
		if err := p.ingestDirect(src, message{rec: rec}); err != nil {
			return err
		}
	}
	if !hasWM {
		return nil
	}
	return p.ingestDirect(src, message{wm: wm, hasWM: true})
}

// injectCheckpoint starts checkpoint epoch at source stage src, behind
// everything ingested into it so far.
func (p *pipeline) injectCheckpoint(src int, epoch uint64) error {
	return p.ingestDirect(src, message{ckpt: epoch})
}

// markIdle tells source stage src that its stream is idle.
func (p *pipeline) markIdle(src int) error {
	return p.ingestDirect(src, message{hasWM: true, idle: true})
}

// ingestDirect puts m into source stage src, counting the time it waits
// for room: back-pressure from the query reaching its source.
func (p *pipeline) ingestDirect(src int, m message) error {
	if m.ckpt == 0 {
		p.fed.Add(1)
	}
	to := p.stages[src][0]
	select {
	case to.in <- m:
		return nil
	default:
	}
	end := to.block()
	err := p.deliver(localOutlet{to}, m)
	if waited := end(); waited > time.Second {
		p.warnBlocked(src, waited, "ingest is back-pressured: the continuous query (or a SUBSCRIBE client reading it) is not keeping up")
	}
	return err
}

// block counts ingest as waiting for the instance from now on (SHOW
// STREAMS' backpressure_seconds); end stops and returns the wait.
func (in *instance) block() (end func() time.Duration) {
	start := time.Now()
	in.blockedSince.Store(start.UnixNano())
	return func() time.Duration {
		waited := time.Since(start)
		in.blocked.Add(int64(waited))
		in.blockedSince.Store(0)
		return waited
	}
}

// warnBlocked logs why ingest into source stage src waited, at most
// every 10 s per query.
func (p *pipeline) warnBlocked(src int, waited time.Duration, why string) {
	if last := p.lastBlockLog.Load(); time.Since(time.Unix(0, last)) > 10*time.Second && p.lastBlockLog.CompareAndSwap(last, time.Now().UnixNano()) {
		p.log.Warn().Str("query", p.query.Name).Str("source", p.query.Plan.Stages[src].Source.Relation).Stringer("waited", waited).Msg(why)
	}
}

// flush waits until everything source stage src was sent so far has
// reached the result store: a barrier follows the data through every
// instance it can reach, and the sink counts it in from each last-stage
// instance.
func (p *pipeline) flush(ctx context.Context, src int) error {
	for {
		if p.stalled.Load() {
			return nil
		}
		again, err := p.flushOnce(ctx, src)
		if !again {
			return err
		}
	}
}

// flushOnce sends one flush barrier and waits for it; again is true
// when a repair abandoned the wait (the barrier may have been lost with
// a consumer): a new barrier then follows everything sent before.
func (p *pipeline) flushOnce(ctx context.Context, src int) (again bool, err error) {
	id, w, forget := p.newWait()
	defer forget()
	if err := p.deliver(localOutlet{p.stages[src][0]}, message{barrier: id, source: src}); err != nil {
		return false, err
	}
	select {
	case <-w.done:
		return w.abandoned, nil
	case <-ctx.Done():
		return false, ctx.Err()
	case <-p.ctx.Done():
		if err := p.failure(); err != nil {
			return false, err
		}
		return false, p.ctx.Err()
	}
}

// newWait registers a wait for a new flush barrier, to arrive from
// every last-stage instance; forget unregisters it.
func (p *pipeline) newWait() (id uint64, w *barrierWait, forget func()) {
	id = p.nextBarrier.Add(1)
	w = &barrierWait{done: make(chan struct{})}
	p.mu.Lock()           // with the placement: a repair abandons the waits under the old one
	if p.stalled.Load() { // set before its waits were abandoned
		w.abandoned = true
		close(w.done)
		p.mu.Unlock()
		return id, w, func() {}
	}
	w.remaining = int(p.sinkWidth.Load())
	p.waits[id] = w
	p.mu.Unlock()
	return id, w, func() {
		p.mu.Lock()
		delete(p.waits, id)
		p.mu.Unlock()
	}
}

// abandonWaitsLocked ends every flush waiting for its barrier (a repair
// changed the placement), so that each sends a new one; called with mu
// held.
func (p *pipeline) abandonWaitsLocked() {
	for id, w := range p.waits {
		if w.remaining > 0 {
			w.abandoned, w.remaining = true, 0
			close(w.done)
		}
		delete(p.waits, id)
	}
}

// arrive counts a barrier in at the sink.
func (p *pipeline) arrive(id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.waits[id]; w != nil && w.remaining > 0 {
		if w.remaining--; w.remaining == 0 {
			close(w.done)
		}
	}
}

func (p *pipeline) fail(err error) {
	p.mu.Lock()
	first := p.err == nil && !p.stopped
	if first {
		p.err = err
	}
	p.mu.Unlock()
	// The result records the failure before anything waiting on the
	// pipeline (a flush, an INSERT's acknowledgement) wakes up, so the
	// query's status says failed by then.
	if first && p.result != nil {
		p.result.fail(err)
	}
	p.cancel()
	if first && p.onFail != nil {
		p.onFail(err)
	}
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

// markStopped makes later failures of the pipeline (such as channels
// breaking while its hosts stop) not count as the query's failure.
func (p *pipeline) markStopped() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
}

// stop ends every local instance and channel and releases their state.
// Idempotent.
func (p *pipeline) stop() {
	p.stopOnce.Do(p.stopNow) // concurrent callers wait for the first
}

func (p *pipeline) stopNow() {
	p.markStopped()
	if p.net != nil {
		p.net.unregister(p)
	}
	p.cancel()
	if run := p.takeSourceReplay(); run != nil {
		go func() {
			<-run.done
			run.releaseRest()
		}()
	}
	p.mu.Lock()
	senders, receivers := p.senders, p.receivers
	p.senders, p.receivers = nil, nil
	p.mu.Unlock()
	for _, r := range receivers {
		r.Close()
	}
	p.wg.Wait()
	for _, s := range senders {
		s.Close()
	}
	for _, in := range p.localInstances() {
		in.drain()
	}
	p.closeAll()
}

// drain releases what the instance holds besides its operators' state:
// queued and held input, and the output kept for replay.
func (in *instance) drain() {
	for {
		select {
		case m := <-in.in:
			m.release()
		default:
			for _, q := range append(in.held, in.pending...) {
				for _, m := range q {
					m.release()
				}
			}
			in.held, in.pending = nil, nil
			for _, o := range in.route.outs {
				if b, ok := o.(*backupOutlet); ok {
					b.release()
				}
			}
			return
		}
	}
}

// stop ends one instance (a repair replaces it) and releases it.
func (in *instance) stop() {
	in.cancel()
	if in.started {
		<-in.done
	}
	for _, o := range in.route.outs {
		o.close()
	}
	in.drain()
	in.chain.close()
}

func (p *pipeline) closeAll() {
	for _, row := range p.stages {
		for _, in := range row {
			if in != nil {
				in.chain.close()
			}
		}
	}
}

// instanceStatus reports one instance for SHOW INSTANCES and the
// coordinator's status calls (it crosses the control plane as JSON).
type instanceStatus struct {
	RouteVersion uint64     `json:"route_version"`
	Stage        int        `json:"stage"`
	Instance     int        `json:"instance"`
	Host         string     `json:"host"`
	Stats        exec.Stats `json:"stats"`
	Watermark    int64      `json:"watermark"`
	QueueDepth   int        `json:"queue_depth"`
	BusySeconds  float64    `json:"busy_seconds"`
	// Busy is the share of the last few seconds the instance was busy
	// (busyMeter).
	Busy float64 `json:"busy"`
	Gen  int     `json:"gen"`
	// KeptBytes is the output kept for replay (upstream backup).
	KeptBytes int64 `json:"kept_bytes"`
	// Duplicates counts the messages dropped because a restored upstream
	// instance sent them again (dedupe.go).
	Duplicates int64 `json:"duplicates"`
	// SentLoad[j][b] is the rows sent to consumer instance j in bucket b
	// of its key range (partitioned routes only).
	SentLoad [][]uint64 `json:"sent_load,omitempty"`
	// Unanswered is why the instance's worker gave no status (its
	// counters are then unknown); "": it answered.
	Unanswered string `json:"-"`
}

// busyMeter is an instance's busy time in each of the last few
// wall-clock seconds: SHOW INSTANCES shows what share of the last
// busyWindow seconds it was busy. Only the instance's goroutine adds;
// anyone reads.
type busyMeter struct {
	sec [busyWindow + 2]atomic.Int64 // the second (Unix) each slot counts
	ns  [busyWindow + 2]atomic.Int64
}

const busyWindow = 5

// add counts d of busy time in the second the work ended in.
func (m *busyMeter) add(end time.Time, d time.Duration) {
	sec := end.Unix()
	i := sec % int64(len(m.sec))
	if m.sec[i].Load() != sec {
		m.ns[i].Store(0)
		m.sec[i].Store(sec)
	}
	m.ns[i].Add(int64(d))
}

// fraction is the share of the busyWindow whole seconds before now's
// that the instance was busy.
func (m *busyMeter) fraction(now time.Time) float64 {
	sec := now.Unix()
	var ns int64
	for i := range m.sec {
		if ago := sec - m.sec[i].Load(); ago >= 1 && ago <= busyWindow {
			ns += m.ns[i].Load()
		}
	}
	return min(1, float64(ns)/(busyWindow*1e9))
}

// localStats reads the local instances' counters as published after
// their last message, without stopping them.
func (p *pipeline) localStats() []instanceStatus {
	var out []instanceStatus
	for _, in := range p.localInstances() {
		{
			s, i := in.stage, in.idx
			var stats exec.Stats
			if ps := in.published.Load(); ps != nil {
				stats = *ps
			}
			st := instanceStatus{Stage: s, Instance: i, Host: p.host, Stats: stats, Watermark: in.wmPub.Load(),
				QueueDepth: len(in.in), BusySeconds: float64(in.busy.Load()) / 1e9, Busy: in.recent.fraction(time.Now()), Gen: in.gen, Duplicates: in.duplicates.Load()}
			if in.wired.Load() {
				in.routeMu.RLock()
				st.RouteVersion = in.route.version
				for i := range in.route.load {
					if i%LoadBuckets == 0 {
						st.SentLoad = append(st.SentLoad, make([]uint64, LoadBuckets))
					}
					st.SentLoad[i/LoadBuckets][i%LoadBuckets] = in.route.load[i].Load()
				}
				for _, o := range in.route.outs {
					if b, ok := o.(*backupOutlet); ok {
						st.KeptBytes += b.bytes.Load()
					}
				}
				in.routeMu.RUnlock()
			}
			out = append(out, st)
		}
	}
	return out
}

// keyRange describes the key range instance i of a stage owns under
// splits.
func keyRange(st *planner.Stage, ranges keyRanges, i int) string {
	if len(st.PartitionBy) == 0 {
		return "all"
	}
	lo, hi := ranges.of(i)
	return fmt.Sprintf("[%016x, %016x]", lo, hi)
}

// stageOperators names a stage's operators, for SHOW INSTANCES.
func stageOperators(st *planner.Stage) string {
	var ops []string
	for _, op := range st.Ops {
		ops = append(ops, opName(op))
	}
	return fmt.Sprint(ops)
}

func opName(op planner.Op) string {
	switch x := op.(type) {
	case *planner.CalcOp:
		return "Calc"
	case *planner.AggOp:
		return "HashAggregate"
	case *planner.SortOp:
		return "Sort"
	case *planner.OverOp:
		return "OverWindow"
	case *planner.JoinOp:
		if x.Kind == planner.JoinLookup {
			return "LookupJoin"
		}
		return "IntervalJoin"
	}
	return fmt.Sprintf("%T", op)
}
