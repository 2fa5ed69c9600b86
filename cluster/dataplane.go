package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/spatedb/spate/cluster/transport"
)

// This file is the network side of a pipeline: where instances run
// (placement), how channels between them are named, the per-process
// data plane that accepts channels and hands them to pipelines, and the
// outlets an instance sends through (a Go channel, the sink, or a
// transport channel).

// coordinatorHost is the host ID of the serving process in a placement;
// workers are named by their registry IDs ("w1", "w2", …).
const coordinatorHost = "coordinator"

// placement says where each instance of a continuous query runs. It is a
// plain value: the coordinator computes it and sends it with a deploy.
type placement struct {
	// Run names this run of the query (unique per coordinator, "r7"); it
	// prefixes every channel ID, so a query dropped and created again
	// never receives its predecessor's channels.
	Run string `json:"run"`
	// Hosts[s][i] is the host that runs instance i of stage s.
	Hosts [][]string `json:"hosts"`
	// Addrs is the data-plane address of each host.
	Addrs map[string]string `json:"addrs"`
	// Version is the routing version the instances start with; a repair
	// raises it.
	Version uint64 `json:"version"`
	// Gens[s][i] is the incarnation of instance i of stage s (nil: all
	// 0); SinkGen the sink's. A repair raises those it restores, and
	// channels are named by their consumer's incarnation.
	Gens    [][]int `json:"gens,omitempty"`
	SinkGen int     `json:"sink_gen,omitempty"`
	// Buffered: every outlet keeps its output for replay until a
	// checkpoint covers it (upstream backup, backup.go).
	Buffered bool `json:"buffered,omitempty"`
	// Splits[s] are the key-range split points of stage s's instances
	// (instance i owns hashes [Splits[s][i-1], Splits[s][i])); nil, or a
	// nil row: equal ranges. The number of instances of stage s is
	// len(Hosts[s]), which a scale-out changes; the plan's Parallelism is
	// only where it started.
	Splits [][]uint64 `json:"splits,omitempty"`
	// Order[s][r] is the instance of stage s that owns its r-th key range
	// (nil, or a nil row: instance r). A scale-out appends the new
	// instance, so no other instance changes its index.
	Order [][]int `json:"order,omitempty"`
}

// width is the number of instances of stage s.
func (pl placement) width(s int) int { return len(pl.Hosts[s]) }

// splits is the key-range split points of stage s's instances.
func (pl placement) splits(s int) []uint64 {
	if s < len(pl.Splits) && pl.Splits[s] != nil {
		return pl.Splits[s]
	}
	return evenSplits(len(pl.Hosts[s]))
}

// ranges is how stage s's key space is divided among its instances.
func (pl placement) ranges(s int) keyRanges {
	k := keyRanges{splits: pl.splits(s)}
	if s < len(pl.Order) {
		k.order = pl.Order[s]
	}
	return k
}

// gen is the incarnation of instance i of stage s.
func (pl placement) gen(s, i int) int {
	if pl.Gens == nil {
		return 0
	}
	return pl.Gens[s][i]
}

// clone is a deep copy, for a repair to change.
func (pl placement) clone() placement {
	out := pl
	out.Hosts = make([][]string, len(pl.Hosts))
	out.Gens = make([][]int, len(pl.Hosts))
	for s, row := range pl.Hosts {
		out.Hosts[s] = append([]string(nil), row...)
		out.Gens[s] = make([]int, len(row))
		for i := range row {
			out.Gens[s][i] = pl.gen(s, i)
		}
	}
	out.Splits = make([][]uint64, len(pl.Hosts))
	for s := range pl.Hosts {
		out.Splits[s] = append([]uint64(nil), pl.splits(s)...)
	}
	if pl.Order != nil {
		out.Order = make([][]int, len(pl.Hosts))
		for s := range pl.Hosts {
			if s < len(pl.Order) {
				out.Order[s] = append([]int(nil), pl.Order[s]...)
			}
		}
	}
	out.Addrs = map[string]string{}
	for h, a := range pl.Addrs {
		out.Addrs[h] = a
	}
	return out
}

// hostsOf lists the distinct hosts of a placement other than skip.
func (pl placement) hostsOf(skip string) []string {
	seen := map[string]bool{skip: true}
	var out []string
	for _, row := range pl.Hosts {
		for _, h := range row {
			if !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	return out
}

// channelName identifies one channel: from an instance to an instance's
// input side, or to the sink (toStage -1), of the consumer's incarnation
// gen. Its string form is the transport channel ID,
// "run/fromStage.fromIdx/toStage.toIdx.side/gen" or
// "run/fromStage.fromIdx/sink/gen".
type channelName struct {
	run                string
	fromStage, fromIdx int
	toStage, toIdx     int
	side               int
	gen                int
	// resume, when not 0, says the producer was restored from this
	// checkpoint and sends what follows its barrier (dedupe.go).
	resume uint64
}

func (c channelName) String() string {
	to := "sink"
	if c.toStage >= 0 {
		to = fmt.Sprintf("%d.%d.%d", c.toStage, c.toIdx, c.side)
	}
	id := fmt.Sprintf("%s/%d.%d/%s/%d", c.run, c.fromStage, c.fromIdx, to, c.gen)
	if c.resume != 0 {
		id += fmt.Sprintf("/r%d", c.resume)
	}
	return id
}

// channelPair names the two ends of a channel, whatever their
// incarnations.
type channelPair struct {
	fromStage, fromIdx, toStage, toIdx, side int
}

func (c channelName) pair() channelPair {
	return channelPair{c.fromStage, c.fromIdx, c.toStage, c.toIdx, c.side}
}

// parseChannelName is the inverse of channelName.String.
func parseChannelName(id string) (channelName, error) {
	parts := strings.Split(id, "/")
	bad := fmt.Errorf("malformed channel ID %q", id)
	if len(parts) != 4 && len(parts) != 5 || parts[0] == "" {
		return channelName{}, bad
	}
	nums := func(s string, n int) ([]int, bool) {
		fs := strings.Split(s, ".")
		if len(fs) != n {
			return nil, false
		}
		out := make([]int, n)
		for i, f := range fs {
			v, err := strconv.Atoi(f)
			if err != nil || v < 0 {
				return nil, false
			}
			out[i] = v
		}
		return out, true
	}
	c := channelName{run: parts[0], toStage: -1}
	from, ok := nums(parts[1], 2)
	if !ok {
		return channelName{}, bad
	}
	c.fromStage, c.fromIdx = from[0], from[1]
	if parts[2] != "sink" {
		to, ok := nums(parts[2], 3)
		if !ok {
			return channelName{}, bad
		}
		c.toStage, c.toIdx, c.side = to[0], to[1], to[2]
	}
	gen, ok := nums(parts[3], 1)
	if !ok {
		return channelName{}, bad
	}
	c.gen = gen[0]
	if len(parts) == 5 {
		r, err := strconv.ParseUint(strings.TrimPrefix(parts[4], "r"), 10, 64)
		if err != nil || r == 0 || !strings.HasPrefix(parts[4], "r") {
			return channelName{}, bad
		}
		c.resume = r
	}
	return c, nil
}

// dataPlane is a process's end of the data plane: one transport listener
// for every incoming channel, dispatched to the pipeline its run names,
// and the dial configuration for outgoing ones.
type dataPlane struct {
	ln   *transport.Listener
	dial func(ctx context.Context, addr, channelID string) (*transport.Sender, error)
	// onUpload takes channels that carry a snapshot: a checkpoint's to
	// the coordinator, "ckpt/…" (checkpointer.go), one to restore to a
	// worker, "restore/…" (recovery.go), or a copy to the upstream
	// worker, "copy/…" (upstreamcopy.go).
	onUpload func(r *transport.Receiver)
	log      zerolog.Logger
	done     chan struct{}

	mu sync.Mutex
	// protected by mu
	runs map[string]*pipeline
}

// newDataPlane listens on addr for channels from peers holding token.
// Received batches live in fresh bodies from Go's allocator, not in a
// transport.BodyPool (2.5 times the throughput, make bench measures
// both): operators keep strings that point into the batches they were
// pushed (MAX over TEXT, for one) without retaining them, and a pool
// would hand those bytes to the next batch.
func newDataPlane(addr, token string, log zerolog.Logger, onUpload func(*transport.Receiver)) (*dataPlane, error) {
	ln, err := transport.ListenConfig{Token: token}.Listen(addr)
	if err != nil {
		return nil, fmt.Errorf("data plane: %w", err)
	}
	cfg := transport.DialConfig{Token: token}
	d := &dataPlane{ln: ln, log: log, runs: map[string]*pipeline{}, done: make(chan struct{}), onUpload: onUpload,
		dial: func(ctx context.Context, addr, id string) (*transport.Sender, error) { return cfg.Dial(ctx, addr, id) }}
	go d.accept()
	return d, nil
}

// Addr is the address peers dial.
func (d *dataPlane) Addr() string { return d.ln.Addr().String() }

func (d *dataPlane) accept() {
	defer close(d.done)
	for {
		r, err := d.ln.Accept(context.Background())
		if errors.Is(err, transport.ErrClosed) {
			return
		}
		if err != nil {
			d.log.Warn().Err(err).Msg("refused a data-plane channel")
			continue
		}
		if id := r.ChannelID(); (strings.HasPrefix(id, uploadPrefix) || strings.HasPrefix(id, restorePrefix) || strings.HasPrefix(id, copyPrefix)) && d.onUpload != nil {
			go d.onUpload(r)
			continue
		}
		ch, err := parseChannelName(r.ChannelID())
		var p *pipeline
		if err == nil {
			d.mu.Lock()
			p = d.runs[ch.run]
			d.mu.Unlock()
			if p == nil {
				err = fmt.Errorf("channel %q for a query this process does not run", r.ChannelID())
			}
		}
		if err != nil {
			d.log.Warn().Err(err).Str("peer", r.RemoteAddr().String()).Msg("refused a data-plane channel")
			r.Close()
			continue
		}
		p.attach(r, ch)
	}
}

func (d *dataPlane) register(p *pipeline) {
	d.mu.Lock()
	d.runs[p.run] = p
	d.mu.Unlock()
}

func (d *dataPlane) unregister(p *pipeline) {
	d.mu.Lock()
	if d.runs[p.run] == p {
		delete(d.runs, p.run)
	}
	d.mu.Unlock()
}

// close stops accepting channels.
func (d *dataPlane) close() {
	d.ln.Close()
	<-d.done
}

// outlet is where an instance sends what it emits: one consumer instance
// or the sink. send takes the message's batch reference; close ends a
// send waiting on the outlet (a transport channel's).
type outlet interface {
	send(ctx context.Context, m message) error
	close()
}

// localOutlet is an instance in this process: its input channel.
type localOutlet struct{ to *instance }

func (o localOutlet) send(ctx context.Context, m message) error {
	select {
	case o.to.in <- m:
		return nil
	case <-ctx.Done():
		m.release()
		return ctx.Err()
	case <-o.to.ctx.Done():
		m.release()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errConsumerGone
	}
}

func (localOutlet) close() {}

// sinkOutlet is the query's result store on the coordinator: batches are
// applied, watermarks merged over the last stage's instances, barriers
// counted in for flush.
// Messages of a channel to an older incarnation of the sink (before a
// repair) are dropped.
type sinkOutlet struct {
	p   *pipeline
	gen int
}

func (sinkOutlet) close() {}

func (o sinkOutlet) send(ctx context.Context, m message) error {
	in := o.p.sinkInput(m.from)
	in.mu.Lock()
	defer in.mu.Unlock()
	if gen := int(o.p.sinkGen.Load()); o.gen != gen {
		m.release()
		return nil
	} else if in.gen != gen {
		// A new incarnation of the sink counts from its checkpoint.
		in.gen = gen
		in.seq.reset(o.p.sinkFrom.Load())
	}
	if m.resume != 0 {
		return in.seq.resume(m.resume)
	}
	if in.seq.arrive(&m) {
		o.p.sinkDuplicates.Add(1)
		m.release()
		return nil
	}
	switch {
	case m.rec != nil:
		defer m.rec.Release()
		err := o.p.result.apply(ctx, m.from, o.gen, m.rec)
		if err != nil {
			in.seq.unarrive(&m) // not applied: it comes again
		}
		return err
	case m.hasWM:
		o.p.result.advance(m.from, int(o.p.sinkWidth.Load()), m.wm)
	case m.barrier != 0:
		o.p.arrive(m.barrier)
	case m.ckpt != 0:
		if !o.p.result.sawBarrier(m.from, o.gen, m.ckpt) {
			return nil
		}
		if o.p.onSinkCheckpoint != nil {
			o.p.onSinkCheckpoint(m.from, m.ckpt)
		}
	}
	return nil
}

// sinkInput is the sink's position on last-stage instance from.
func (p *pipeline) sinkInput(from int) *sinkInput {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := p.sinkIns[from]
	if in == nil {
		in = &sinkInput{gen: int(p.sinkGen.Load())}
		p.sinkIns[from] = in
	}
	return in
}

// remoteOutlet is an instance (or the sink) on another host: a transport
// channel, which blocks on credit while the consumer is behind.
type remoteOutlet struct {
	s    *transport.Sender
	host string
}

func (o remoteOutlet) close() { o.s.Close() }

func (o remoteOutlet) send(ctx context.Context, m message) error {
	var err error
	if len(m.log) > 0 {
		if err = o.s.AttachLog(encodeLog(m.log)); err != nil {
			m.release()
			return err
		}
	}
	switch {
	case m.rec != nil:
		_, err = o.s.SendBatch(ctx, m.rec)
		m.rec.Release()
	case m.hasWM && m.idle:
		_, err = o.s.SendIdle(ctx, m.wm)
	case m.hasWM:
		_, err = o.s.SendWatermark(ctx, m.wm)
	case m.barrier != 0:
		_, err = o.s.SendBarrier(ctx, transport.Barrier{ID: m.barrier, Source: uint32(m.source)})
	case m.ckpt != 0:
		_, err = o.s.SendCheckpoint(ctx, transport.Barrier{ID: m.ckpt})
	}
	if err != nil && ctx.Err() == nil {
		return errorf("58000", "lost the data channel to %s (%s): %v", o.host, o.s.ChannelID(), err)
	}
	return err
}
