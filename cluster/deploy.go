package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/spatedb/spate/cluster/control"
	"github.com/spatedb/spate/planner"
)

// This file is the coordinator's side of running continuous queries on
// workers: placement, the deploy/start/stop/status calls over the control
// plane, and what it does when a worker reports a failure or dies.

// Control-plane request kinds and bodies (the worker side is worker.go).
const (
	reqDeploy  = "deploy"  // deployRequest → nothing: build the worker's instances
	reqStart   = "start"   // runRequest → nothing: connect channels and run
	reqStop    = "stop"    // runRequest → nothing: stop and release
	reqStatus  = "status"  // runRequest → []instanceStatus
	reqRestore = "restore" // restoreRequest → nothing: restore an instance (deployed, not started)
	reqRepair  = "repair"  // repairRequest → nothing: first step of a repair (recovery.go)
	reqResume  = "resume"  // resumeRequest → int, messages replayed: last step of a repair
	reqTrim    = "trim"    // trimRequest → nothing: a checkpoint completed
	reqLog     = "log"     // logRequest → []byte: a lost producer's input log as its consumers here know it
	reqFreeze  = "freeze"  // freezeRequest → nothing: an instance stops at the next checkpoint barrier
	reqCopy    = "copy"    // copyRequest → nothing: send a held snapshot copy to the worker restoring it

	noticeFailed = "failed" // failedNotice: a worker's part of a query failed
	noticeLost   = "lost"   // lostNotice: an outlet lost its consumer
)

// repairRequest: stop the instances in Restore that this worker runs,
// take Place, and build the new incarnations placed here (Skip: the
// checkpoint epochs they ignore).
type repairRequest struct {
	Place   placement       `json:"place"`
	Plan    json.RawMessage `json:"plan"` // for a worker new to the query
	Restore [][2]int        `json:"restore"`
	Skip    uint64          `json:"skip"`
	// Resume, when not 0, is the checkpoint the restored instances resume
	// after while their consumers keep running (dedupe.go).
	Resume uint64 `json:"resume,omitempty"`
	// Rescale, with Resume, is an in-place rescale: the consumers of the
	// stage renumber their inputs (scale.go).
	Rescale *rescaleStep `json:"rescale,omitempty"`
}

// freezeRequest: the instance stops taking input at the next checkpoint
// barrier (an in-place rescale replaces it there, scale.go).
type freezeRequest struct {
	Run      string `json:"run"`
	Stage    int    `json:"stage"`
	Instance int    `json:"instance"`
}

// resumeRequest: start the restored instances and replay to them from
// checkpoint Epoch.
type resumeRequest struct {
	Run     string   `json:"run"`
	Restore [][2]int `json:"restore"`
	Epoch   uint64   `json:"epoch"`
	// KeepSink: the sink was not restored; last-stage outlets go on.
	KeepSink bool `json:"keep_sink,omitempty"`
	// Follow gives restored instances ("stage.instance") with several
	// inputs the order to take them in (encodeLog).
	Follow map[string][]byte `json:"follow,omitempty"`
	// Gone are the hosts declared dead: outlets to them end at once
	// instead of waiting for an acknowledgement (a frozen process would
	// never send it).
	Gone []string `json:"gone,omitempty"`
}

// logRequest: retire the channels from instance Instance of stage Stage
// to its consumers on this worker and return the longest input log
// after checkpoint Epoch they hold (dedupe.go).
type logRequest struct {
	Run      string `json:"run"`
	Stage    int    `json:"stage"`
	Instance int    `json:"instance"`
	Epoch    uint64 `json:"epoch"`
}

type trimRequest struct {
	Run   string `json:"run"`
	Epoch uint64 `json:"epoch"`
}

type lostNotice struct {
	Run     string `json:"run"`
	Channel string `json:"channel"`
}

// Timeouts of control-plane calls.
const (
	deployTimeout = 15 * time.Second
	stopTimeout   = 10 * time.Second
	statusTimeout = 2 * time.Second
)

type deployRequest struct {
	Place placement       `json:"place"`
	Plan  json.RawMessage `json:"plan"` // planner.EncodeQuery
}

// restoreRequest carries (a part of) an instance's snapshot to restore
// before the run starts (recovery).
type restoreRequest struct {
	Run      string `json:"run"`
	Stage    int    `json:"stage"`
	Instance int    `json:"instance"`
	Part     int    `json:"part"`
	Parts    int    `json:"parts"` // 0: the snapshot was sent on the data plane (restoreChannel)
	Data     []byte `json:"data"`
}

// recoverable reports whether a failure is the loss of a worker or of a
// channel to one, which a recovery repairs (as opposed to an operator's
// error, which would happen again).
func recoverable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == "58000"
}

type runRequest struct {
	Run string `json:"run"`
}

type failedNotice struct {
	Run     string `json:"run"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WorkerPool is where scale-outs get their workers (elastic.Pool's
// warm workers): a spare is alive and registered, but takes instances
// only from a scale-out, which claims it with Take.
type WorkerPool interface {
	Spare(w control.WorkerInfo) bool
	// Pooled reports whether w is one of the pool's workers, warm or
	// taken (a query's default parallelism counts the others).
	Pooled(w control.WorkerInfo) bool
	// Take claims a spare (starting one if none is warm) and returns its
	// registry ID once it has joined.
	Take(ctx context.Context) (string, error)
	// TakeEnded tells the pool that the scale-out that took worker id
	// has ended, placed on it or not: from then on the pool gives the
	// worker back once it runs no instance.
	TakeEnded(id string)
}

// SetWorkerPool makes scale-outs take their workers from p, and keeps
// p's spares out of every other placement.
func (c *Coordinator) SetWorkerPool(p WorkerPool) {
	c.mu.Lock()
	c.pool = p
	c.mu.Unlock()
}

// placeableWorkers is liveWorkers without the pool's spares (all of them
// when only spares are alive).
func (c *Coordinator) placeableWorkers() []control.WorkerInfo {
	all := c.liveWorkers()
	c.mu.Lock()
	pool := c.pool
	c.mu.Unlock()
	if pool == nil {
		return all
	}
	var out []control.WorkerInfo
	for _, w := range all {
		if !pool.Spare(w) {
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		return all
	}
	return out
}

// ownWorkers is how many live workers are the cluster's own, not the
// pool's (at least 1): a query's default parallelism.
func (c *Coordinator) ownWorkers() int {
	all := c.placeableWorkers()
	c.mu.Lock()
	pool := c.pool
	c.mu.Unlock()
	n := len(all)
	if pool != nil {
		n = 0
		for _, w := range all {
			if !pool.Pooled(w) {
				n++
			}
		}
	}
	return max(1, n)
}

// InstancesPerWorker counts the instances each live worker runs.
func (c *Coordinator) InstancesPerWorker() map[string]int {
	out := map[string]int{}
	for _, w := range c.liveWorkers() {
		out[w.ID] = 0
	}
	for h, n := range c.placedPerHost() {
		if _, ok := out[h]; ok {
			out[h] = n
		}
	}
	return out
}

// placedPerHost counts the instances of the queries that have not
// failed (a failed one's are released: releaseFailed) on each host.
func (c *Coordinator) placedPerHost() map[string]int {
	out := map[string]int{}
	for _, qr := range c.runningQueries() {
		if p := qr.pipeline(); p != nil && p.failure() == nil {
			for _, row := range p.placement().Hosts {
				for _, h := range row {
					out[h]++
				}
			}
		}
	}
	return out
}

// Workers lists the registered workers, in registry order.
func (c *Coordinator) Workers() []control.WorkerInfo {
	if c.reg == nil {
		return nil
	}
	return c.reg.Workers()
}

// liveWorkers lists the workers that are alive and can take instances,
// in registry order.
// goneWorkers are the workers the registry has declared dead.
func (c *Coordinator) goneWorkers() []string {
	if c.reg == nil {
		return nil
	}
	var out []string
	for _, w := range c.reg.Workers() {
		if w.Status == control.StatusDead {
			out = append(out, w.ID)
		}
	}
	return out
}

func (c *Coordinator) liveWorkers() []control.WorkerInfo {
	if c.reg == nil {
		return nil
	}
	var out []control.WorkerInfo
	for _, w := range c.reg.Workers() {
		if w.Status == control.StatusAlive && w.DataAddr != "" {
			out = append(out, w)
		}
	}
	return out
}

// defaultParallelism is the parallelism setting a session starts with.
func (c *Coordinator) defaultParallelism() string {
	if c.cfg.Parallelism > 0 {
		return strconv.Itoa(c.cfg.Parallelism)
	}
	return "auto"
}

// place decides where q's instances run: source stages (fed by ingest,
// tables and other queries' results, which live here) on the
// coordinator; every other instance on a live worker, spread round-robin
// over the workers so that the instances of a stage, each owning a key
// range, land on different workers. Without workers everything runs here.
// splits, when set, are each stage's key-range split points and order
// which instance owns each range (a query resuming in the layout a
// rescale gave it); otherwise a stage runs the plan's Parallelism
// instances over equal ranges.
func (c *Coordinator) place(q *planner.ContinuousQuery, splits [][]uint64, order [][]int) placement {
	return c.placeOn(q, splits, order, c.placeableWorkers())
}

// placeHere places every instance of q on the coordinator.
func (c *Coordinator) placeHere(q *planner.ContinuousQuery) placement {
	return c.placeOn(q, nil, nil, nil)
}

func (c *Coordinator) placeOn(q *planner.ContinuousQuery, splits [][]uint64, order [][]int, workers []control.WorkerInfo) placement {
	c.mu.Lock()
	c.nextRun++
	pl := placement{Run: "r" + strconv.Itoa(c.nextRun), Addrs: map[string]string{}, Version: 1}
	c.mu.Unlock()
	if c.net != nil {
		pl.Addrs[coordinatorHost] = c.net.Addr()
	}
	for _, w := range c.liveWorkers() {
		pl.Addrs[w.ID] = w.DataAddr
	}
	next := 0
	if len(splits) == len(q.Plan.Stages) {
		pl.Splits = splits
		if len(order) == len(splits) {
			pl.Order = order
		}
	}
	for _, st := range q.Plan.Stages {
		width := st.Parallelism
		if pl.Splits != nil {
			width = len(pl.Splits[st.ID]) + 1
		}
		row := make([]string, width)
		for i := range row {
			row[i] = coordinatorHost
			if st.Source == nil && len(workers) > 0 {
				row[i] = workers[next%len(workers)].ID
				next++
			}
		}
		pl.Hosts = append(pl.Hosts, row)
	}
	// With checkpoints, what runs on workers can be repaired: every
	// outlet keeps its output until a checkpoint covers it. A query
	// that runs only here is not checkpointed (a restart point is what
	// restores it), so its outlets keep nothing.
	pl.Buffered = c.cfg.CheckpointInterval > 0 && len(pl.hostsOf(coordinatorHost)) > 0
	return pl
}

// deploy starts q's pipeline on the hosts place chose: every worker builds
// its instances first (so every channel finds its receiver), then every
// host connects and starts them.
func (c *Coordinator) deploy(qr *queryRuntime) (*pipeline, error) {
	q, result := qr.def, qr.result
	// Resuming from a restart point (Recover): the result as it was, and
	// the instances' snapshots, restored before anything runs, in the
	// layout they were taken in.
	c.mu.Lock()
	rs := c.restore[q.Name]
	delete(c.restore, q.Name)
	c.mu.Unlock()
	if rs != nil && rs.failed != nil {
		// It had failed: it comes back failed, as it was (it has neither
		// state nor input since).
		p, err := newPipeline(q, c.placeHere(q), coordinatorHost, c.net, result, c.cfg.Logger)
		if err != nil {
			return nil, err
		}
		p.fail(rs.failed)
		qr.restored = true
		return p, nil
	}
	var splits [][]uint64
	var order [][]int
	if rs != nil {
		splits, order = rs.splits, rs.order
		qr.lateRows.Store(rs.lateRows)
	}
	pl := c.place(q, splits, order)
	p, err := newPipeline(q, pl, coordinatorHost, c.net, result, c.cfg.Logger)
	if err != nil {
		return nil, err
	}
	c.wireCheckpoints(qr, p)
	p.onFail = func(error) { go c.releaseFailed(qr, p) }
	if pl.Buffered || c.restartPointsOn() {
		// The result can go back to a checkpoint (a repair), or be
		// written as of one (a restart point).
		result.mu.Lock()
		result.tracking = true
		result.mu.Unlock()
	}
	if pl.Buffered {
		// Repairable: a lost consumer is restored (recovery.go).
		p.onLost = func(ch channelName) { c.consumerLost(qr, ch) }
	}
	if rs != nil {
		qr.restored = true
		if err := result.load(rs); err != nil {
			p.stop()
			return nil, fmt.Errorf("restoring the result of %q: %w", q.Name, err)
		}
	}
	workers := pl.hostsOf(coordinatorHost)
	restoreAll := func() error {
		if rs == nil {
			return nil
		}
		var local []*instanceSnapshot
		for k, data := range rs.snaps {
			if k[0] < 0 || k[0] >= len(pl.Hosts) || k[1] < 0 || k[1] >= pl.width(k[0]) {
				return fmt.Errorf("the restart point has a snapshot of stage %d instance %d, which the query does not have", k[0], k[1])
			}
			if h := pl.Hosts[k[0]][k[1]]; h != coordinatorHost {
				if err := c.sendRestore(h, pl, k, data); err != nil {
					return err
				}
				continue
			}
			s, err := unmarshalInstanceSnapshot(data)
			if err != nil {
				return err
			}
			local = append(local, s)
		}
		return p.restoreLocal(local)
	}
	if len(workers) == 0 {
		if err := restoreAll(); err != nil {
			p.stop()
			return nil, err
		}
		if err := p.start(context.Background()); err != nil {
			p.stop()
			return nil, err
		}
		return p, nil
	}
	plan, err := planner.EncodeQuery(q)
	if err != nil {
		p.stop()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), deployTimeout)
	defer cancel()
	var deployed []string
	fail := func(err error) (*pipeline, error) {
		c.undeploy(p, deployed)
		return nil, errorf("58000", "could not deploy continuous query %q: %v", q.Name, err)
	}
	for _, w := range workers {
		if err := c.reg.Call(ctx, w, reqDeploy, deployRequest{Place: pl, Plan: plan}, nil); err != nil {
			return fail(err)
		}
		deployed = append(deployed, w)
	}
	if err := restoreAll(); err != nil {
		return fail(err)
	}
	for _, w := range workers {
		if err := c.reg.Call(ctx, w, reqStart, runRequest{Run: pl.Run}, nil); err != nil {
			return fail(err)
		}
	}
	if err := p.start(ctx); err != nil {
		return fail(err)
	}
	c.cfg.Logger.Info().Str("query", q.Name).Str("run", pl.Run).Strs("workers", workers).Msg("continuous query deployed")
	return p, nil
}

// undeploy stops a pipeline on the coordinator and on the workers given
// (all its workers when nil). Failures of the stopping parts are not
// reported as the query's failure.
func (c *Coordinator) undeploy(p *pipeline, workers []string) {
	if workers == nil {
		workers = p.placement().hostsOf(coordinatorHost)
	}
	p.markStopped()
	for _, w := range workers {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		if err := c.reg.Call(ctx, w, reqStop, runRequest{Run: p.run}, nil); err != nil && !errors.Is(err, control.ErrWorkerGone) {
			c.cfg.Logger.Warn().Err(err).Str("run", p.run).Str("worker", w).Msg("stopping a continuous query on a worker")
		}
		cancel()
	}
	p.stop()
}

// releaseFailed stops a failed query's instances, on the workers and
// here, and releases their state: what it keeps is its result and its
// error, as a restarted server brings it back (deploy). Dropped, or the
// server stopping, its undeploy does that.
func (c *Coordinator) releaseFailed(qr *queryRuntime, p *pipeline) {
	qr.recoverMu.Lock() // after the repair that failed it, if one did
	defer qr.recoverMu.Unlock()
	// A repair whose replay was under way ends with it.
	c.endRepair(qr, nil, "failed: "+p.failure().Error())
	if c.current(qr) {
		c.undeploy(p, nil)
	}
}

// instanceStatuses reports every instance of a query: the coordinator's
// own from memory, the workers' by a status call (an unreachable worker's
// instances are listed with zero counters).
func (c *Coordinator) instanceStatuses(qr *queryRuntime) []instanceStatus {
	p := qr.pipeline()
	out := p.localStats()
	pl := p.placement()
	// The workers are asked at once: one that does not answer (dead,
	// not yet known to be) costs statusTimeout once, not per worker.
	hosts := pl.hostsOf(coordinatorHost)
	replies := make([][]instanceStatus, len(hosts))
	var wg sync.WaitGroup
	for k, w := range hosts {
		wg.Go(func() {
			var st []instanceStatus
			ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
			err := c.reg.Call(ctx, w, reqStatus, runRequest{Run: pl.Run}, &st)
			cancel()
			if err != nil {
				c.cfg.Logger.Debug().Err(err).Str("worker", w).Msg("instance status")
				st = nil
				for s, row := range pl.Hosts {
					for i, h := range row {
						if h == w {
							st = append(st, instanceStatus{Stage: s, Instance: i, Host: w, Watermark: math.MinInt64, Unanswered: err.Error()})
						}
					}
				}
			}
			replies[k] = st
		})
	}
	wg.Wait()
	for _, st := range replies {
		out = append(out, st...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Stage != out[j].Stage {
			return out[i].Stage < out[j].Stage
		}
		return out[i].Instance < out[j].Instance
	})
	return out
}

// runtimeOf finds the running query with the given run ID.
func (c *Coordinator) runtimeOf(run string) *queryRuntime {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, qr := range c.queries {
		if qr.pipeline().run == run {
			return qr
		}
	}
	return nil
}

// onNotice handles a worker's notice: a failed part fails its query.
func (c *Coordinator) onNotice(worker string, n control.Notice) {
	switch n.Kind {
	case noticeCheckpoint:
		c.onCheckpointNotice(worker, n)
		return
	case noticeLost:
		c.onLostNotice(worker, n)
		return
	}
	if n.Kind != noticeFailed {
		return
	}
	var f failedNotice
	if err := json.Unmarshal(n.Body, &f); err != nil {
		c.cfg.Logger.Warn().Err(err).Str("worker", worker).Msg("malformed notice")
		return
	}
	if qr := c.runtimeOf(f.Run); qr != nil {
		if f.Code == "" {
			f.Code = "XX000"
		}
		qr.pipeline().fail(&Error{Code: f.Code, Message: fmt.Sprintf("%s (on worker %s)", f.Message, worker)})
	}
}

// onLostNotice handles a worker outlet's report of a lost consumer.
func (c *Coordinator) onLostNotice(worker string, n control.Notice) {
	var ln lostNotice
	if err := json.Unmarshal(n.Body, &ln); err != nil {
		c.cfg.Logger.Warn().Err(err).Str("worker", worker).Msg("malformed notice")
		return
	}
	ch, err := parseChannelName(ln.Channel)
	if qr := c.runtimeOf(ln.Run); qr != nil && err == nil {
		go c.consumerLost(qr, ch)
	}
}

// watchWorkers repairs the queries that had instances on a worker that
// died (recovery.go), or fails them when they keep no checkpoints: the
// instances' state is lost, and their results would silently miss rows.
func (c *Coordinator) watchWorkers() {
	for ev := range c.reg.Events() {
		if ev.Kind != control.WorkerDead || c.stopping.Load() {
			continue
		}
		c.mu.Lock()
		var hit []*queryRuntime
		for _, qr := range c.queries {
			for _, h := range qr.pipeline().placement().hostsOf("") {
				if h == ev.Worker.ID {
					hit = append(hit, qr)
				}
			}
		}
		c.mu.Unlock()
		for _, qr := range hit {
			p := qr.pipeline()
			if p.placement().Buffered {
				go c.repairQuery(qr, fmt.Sprintf("worker %s (pid %d) died: %s", ev.Worker.ID, ev.Worker.PID, ev.Reason), nil)
				continue
			}
			p.fail(errorf("58000", "worker %s (pid %d) died (%s); the continuous query's instances there are lost (checkpoints are off)", ev.Worker.ID, ev.Worker.PID, ev.Reason))
		}
	}
}
