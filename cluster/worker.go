package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/spatedb/spate/cluster/control"
	"github.com/spatedb/spate/cluster/transport"
	"github.com/spatedb/spate/planner"
)

// WorkerConfig configures RunWorker.
type WorkerConfig struct {
	// Join is the coordinator's control address (HOST:PORT); required.
	Join string
	// Token is the cluster token; required.
	Token string
	// Listen is the data-plane address other hosts dial to send this
	// worker batches, and the one it advertises. Default "127.0.0.1:0".
	Listen string
	// Version is advertised when joining.
	Version string
	// DialAttempts is how many times an unreachable coordinator is
	// dialled. Default 5.
	DialAttempts int
	// Logger receives the worker's logs.
	Logger zerolog.Logger
}

// RunWorker runs a worker process's runtime until ctx ends or the
// connection to the coordinator breaks: it listens for data-plane
// channels, joins the coordinator's registry, and runs the instances the
// coordinator deploys on it. A refused cluster token comes back as an
// error wrapping control.ErrUnauthorized.
func RunWorker(ctx context.Context, cfg WorkerConfig) error {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Token == "" {
		return errors.New("worker: the cluster token is required")
	}
	w := &workerRuntime{log: cfg.Logger, runs: map[string]*pipeline{}, notices: make(chan control.Notice, 256), uploaded: map[string][]byte{}}
	dp, err := newDataPlane(cfg.Listen, cfg.Token, cfg.Logger, w.receiveSnapshot)
	if err != nil {
		return err
	}
	defer dp.close()
	w.net = dp
	defer w.stopAll()
	return control.Join(ctx, control.JoinConfig{
		Coordinator:  cfg.Join,
		Token:        cfg.Token,
		DataAddr:     dp.Addr(),
		Version:      cfg.Version,
		DialAttempts: cfg.DialAttempts,
		Logger:       cfg.Logger,
		OnRegistered: func(wl control.Welcome) { w.setID(wl.WorkerID) },
		Handle:       w.handle,
		Lane:         requestLane,
		Notices:      w.notices,
		Instances:    w.loads,
		CopyBytes:    func() uint64 { return uint64(w.copies.held()) },
	})
}

// requestLane is a control request's lane: the run (query) it is about,
// so that a request that blocks (a repair waiting on its back-pressured
// output) holds up only its own query's requests, not every query's.
func requestLane(_ string, body json.RawMessage) string {
	var r struct {
		Run   string `json:"run"`
		Place struct {
			Run string `json:"run"`
		} `json:"place"`
	}
	if json.Unmarshal(body, &r) != nil {
		return ""
	}
	if r.Run != "" {
		return r.Run
	}
	return r.Place.Run
}

// workerRuntime holds the pipelines (parts of continuous queries) a
// worker runs, by run ID.
type workerRuntime struct {
	net     *dataPlane
	log     zerolog.Logger
	notices chan control.Notice

	mu sync.Mutex
	// protected by mu
	id       string
	runs     map[string]*pipeline
	parts    map[string][]byte // snapshots arriving in parts
	uploaded map[string][]byte // snapshots received on the data plane, by restoreChannel

	copies  upstreamCopies   // snapshots of instances downstream of this worker's
	copying map[copyKey]bool // instances whose copy upstream is being sent
}

// receiveSnapshot takes a snapshot sent on a restore channel, which a
// restore request applies, or a copy of a downstream instance's
// (upstreamcopy.go).
func (w *workerRuntime) receiveSnapshot(r *transport.Receiver) {
	defer r.Close()
	id := r.ChannelID()
	data, err := readUpload(r)
	if err != nil {
		w.log.Warn().Err(err).Str("channel", id).Msg("a snapshot did not arrive whole")
		return
	}
	if strings.HasPrefix(id, copyPrefix) {
		run, epoch, k, err := parseSnapshotChannel(id, copyPrefix)
		if err != nil || w.run(run) == nil {
			w.log.Warn().Err(err).Str("channel", id).Msg("refused a snapshot copy")
			return
		}
		w.copies.put(run, k, epoch, data)
		return
	}
	if !strings.HasPrefix(id, restorePrefix) {
		w.log.Warn().Str("channel", id).Msg("refused a snapshot upload")
		return
	}
	w.mu.Lock()
	w.uploaded[id] = data
	w.mu.Unlock()
}

// takeUploaded waits (until ctx ends) for the snapshot sent on channel id.
func (w *workerRuntime) takeUploaded(ctx context.Context, id string) ([]byte, error) {
	for {
		w.mu.Lock()
		data, ok := w.uploaded[id]
		delete(w.uploaded, id)
		w.mu.Unlock()
		if ok {
			return data, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the snapshot for %s did not arrive: %w", id, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (w *workerRuntime) setID(id string) {
	w.mu.Lock()
	w.id = id
	w.mu.Unlock()
}

// handle runs one control-plane request from the coordinator.
func (w *workerRuntime) handle(ctx context.Context, kind string, body json.RawMessage) (any, error) {
	switch kind {
	case reqDeploy:
		var req deployRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("malformed deploy: %w", err)
		}
		return nil, w.deploy(req)
	case reqRestore:
		var req restoreRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("malformed restore: %w", err)
		}
		if req.Parts == 0 { // sent on the data plane
			// Not waited for without end: an upload that does not come
			// (the coordinator gave the attempt up) must not hold the
			// query's requests.
			sctx, cancel := context.WithTimeout(ctx, deployTimeout)
			defer cancel()
			data, err := w.takeUploaded(sctx, restoreChannel(req.Run, [2]int{req.Stage, req.Instance}))
			if err != nil {
				return nil, err
			}
			req.Data, req.Parts = data, 1
		}
		return nil, w.restore(req)
	case reqRepair:
		var req repairRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("malformed repair: %w", err)
		}
		return nil, w.repair(req)
	case reqResume:
		var req resumeRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("malformed resume: %w", err)
		}
		p := w.run(req.Run)
		if p == nil {
			return 0, nil // nothing of the query here
		}
		sctx, cancel := context.WithTimeout(ctx, deployTimeout)
		defer cancel()
		follow, err := decodeFollow(req.Follow)
		if err != nil {
			return nil, err
		}
		return p.resumeRepair(sctx, req.Restore, req.Epoch, req.KeepSink, follow, req.Gone)
	case reqLog:
		var req logRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("malformed log request: %w", err)
		}
		p := w.run(req.Run)
		if p == nil {
			return []byte(nil), nil
		}
		sctx, cancel := context.WithTimeout(ctx, deployTimeout)
		defer cancel()
		log, err := p.inputLog(sctx, [2]int{req.Stage, req.Instance}, req.Epoch)
		return encodeLog(log), err
	case reqFreeze:
		var req freezeRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("malformed freeze request: %w", err)
		}
		p := w.run(req.Run)
		if p == nil {
			return nil, fmt.Errorf("run %s is not here", req.Run)
		}
		sctx, cancel := context.WithTimeout(ctx, deployTimeout)
		defer cancel()
		return nil, p.freeze(sctx, [2]int{req.Stage, req.Instance})
	case reqTrim:
		var req trimRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("malformed trim: %w", err)
		}
		if p := w.run(req.Run); p != nil {
			p.trimKept(req.Epoch)
		}
		w.copies.trim(req.Run, req.Epoch)
		return nil, nil
	case reqCopy:
		var req copyRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("malformed copy request: %w", err)
		}
		return nil, w.sendCopy(ctx, req)
	}
	var req runRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("malformed %s: %w", kind, err)
	}
	w.mu.Lock()
	p := w.runs[req.Run]
	if kind == reqStop {
		delete(w.runs, req.Run)
		for id := range w.uploaded {
			if strings.HasPrefix(id, restorePrefix+req.Run+"/") {
				delete(w.uploaded, id)
			}
		}
	}
	w.mu.Unlock()
	if kind == reqStop {
		w.copies.drop(req.Run)
	}
	if p == nil {
		if kind == reqStop {
			return nil, nil // already gone: stopping is idempotent
		}
		return nil, fmt.Errorf("no run %q on this worker", req.Run)
	}
	switch kind {
	case reqStart:
		sctx, cancel := context.WithTimeout(ctx, deployTimeout)
		defer cancel()
		return nil, p.start(sctx)
	case reqStop:
		p.stop()
		return nil, nil
	case reqStatus:
		return p.localStats(), nil
	}
	return nil, fmt.Errorf("unknown request %q", kind)
}

// restore takes a part of an instance's snapshot and, with the last
// part, restores the instance (deployed, not started).
func (w *workerRuntime) restore(req restoreRequest) error {
	key := fmt.Sprintf("%s/%d.%d", req.Run, req.Stage, req.Instance)
	w.mu.Lock()
	p := w.runs[req.Run]
	if w.parts == nil {
		w.parts = map[string][]byte{}
	}
	data := append(w.parts[key], req.Data...)
	done := req.Part+1 >= req.Parts
	if done {
		delete(w.parts, key)
	} else {
		w.parts[key] = data
	}
	w.mu.Unlock()
	if p == nil {
		return fmt.Errorf("no run %q on this worker", req.Run)
	}
	if !done {
		return nil
	}
	s, err := unmarshalInstanceSnapshot(data)
	if err != nil {
		return err
	}
	return p.restoreLocal([]*instanceSnapshot{s})
}

// run is the pipeline of a run, if this worker has a part of it.
func (w *workerRuntime) run(id string) *pipeline {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.runs[id]
}

// deploy builds this worker's instances of a query.
func (w *workerRuntime) deploy(req deployRequest) error {
	_, err := w.newRun(req.Place, req.Plan)
	return err
}

// repair is a worker's first step of a repair (recovery.go): the
// instances it restores are stopped and their new incarnations built —
// in a part of the query new to this worker, when it had none.
func (w *workerRuntime) repair(req repairRequest) error {
	if p := w.run(req.Place.Run); p != nil {
		return p.prepareRepair(req.Place, req.Restore, req.Skip, req.Resume, req.Rescale)
	}
	p, err := w.newRun(req.Place, req.Plan)
	if err != nil {
		return err
	}
	for _, in := range p.localInstances() {
		in.setResume(req.Skip, req.Resume)
	}
	return nil
}

// newRun builds this worker's part of a query as placed.
func (w *workerRuntime) newRun(place placement, plan json.RawMessage) (*pipeline, error) {
	q, err := planner.DecodeQuery(plan)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	id := w.id
	_, dup := w.runs[place.Run]
	w.mu.Unlock()
	if dup {
		return nil, fmt.Errorf("run %q is already deployed", place.Run)
	}
	log := w.log.With().Str("query", q.Name).Str("run", place.Run).Logger()
	p, err := newPipeline(q, place, id, w.net, nil, log)
	if err != nil {
		return nil, err
	}
	run := place.Run
	p.onFail = func(err error) {
		e := asError(err)
		f := failedNotice{Run: run, Code: e.Code, Message: e.Message}
		log.Warn().Err(err).Msg("continuous query failed on this worker")
		w.notify(p.ctx, noticeFailed, f, log)
	}
	p.onLost = func(ch channelName) {
		w.notify(p.ctx, noticeLost, lostNotice{Run: run, Channel: ch.String()}, log)
	}
	p.onCheckpoint = func(epoch uint64, snap *instanceSnapshot, err error) {
		n := checkpointNotice{Run: run, Epoch: epoch, Stage: -1, Instance: -1, Parts: 1}
		if snap != nil {
			n.Stage, n.Instance = snap.Stage, snap.Instance
		}
		var data []byte
		if err == nil {
			data, err = snap.marshal()
		}
		if err != nil {
			n.Error = err.Error()
			w.notify(p.ctx, noticeCheckpoint, n, log)
			return
		}
		// A copy goes to the upstream worker meanwhile.
		go w.copyUpstream(p, epoch, [2]int{n.Stage, n.Instance}, data, log)
		// Over the data plane; over the control plane when that fails.
		uctx, ucancel := context.WithTimeout(p.ctx, 5*time.Minute)
		err = uploadSnapshot(uctx, w.net, p.placement().Addrs[coordinatorHost], uploadChannel(run, epoch, n.Stage, n.Instance), data)
		ucancel()
		if err == nil {
			return
		}
		if p.ctx.Err() != nil {
			return
		}
		log.Warn().Err(err).Msg("checkpoint upload over the data plane failed; sending it as notices")
		parts := snapshotParts(data)
		n.Parts = len(parts)
		for i, part := range parts {
			n.Part, n.Snapshot = i, part
			w.notify(p.ctx, noticeCheckpoint, n, log)
		}
	}
	w.mu.Lock()
	w.runs[run] = p
	w.mu.Unlock()
	log.Info().Msg("deployed")
	return p, nil
}

// notify queues a notice for the coordinator. Checkpoint notices wait
// for room (the instance that sends one is between messages, and a
// dropped snapshot would leave its checkpoint incomplete) unless the run
// stops; a failure notice is dropped, logged, when the queue is full.
func (w *workerRuntime) notify(ctx context.Context, kind string, body any, log zerolog.Logger) {
	b, err := json.Marshal(body)
	if err != nil {
		log.Error().Err(err).Str("kind", kind).Msg("encoding a notice")
		return
	}
	n := control.Notice{Kind: kind, Body: b}
	if kind == noticeCheckpoint {
		select {
		case w.notices <- n:
		case <-ctx.Done(): // the run is stopping: nobody waits for it
		case <-time.After(30 * time.Second):
			log.Error().Msg("the coordinator took no checkpoint notice for 30 s; this checkpoint stays incomplete")
		}
		return
	}
	select {
	case w.notices <- n:
	default:
		log.Error().Str("kind", kind).Msg("notice queue full; not reported")
	}
}

// loads reports every local instance for the heartbeat.
func (w *workerRuntime) loads() []control.InstanceLoad {
	w.mu.Lock()
	runs := make([]*pipeline, 0, len(w.runs))
	for _, p := range w.runs {
		runs = append(runs, p)
	}
	w.mu.Unlock()
	var out []control.InstanceLoad
	for _, p := range runs {
		for _, st := range p.localStats() {
			out = append(out, control.InstanceLoad{Query: p.query.Name, Stage: st.Stage, Instance: st.Instance,
				RowsIn: uint64(st.Stats.RowsIn), RowsOut: uint64(st.Stats.RowsOut), QueueDepth: st.QueueDepth,
				StateBytes: uint64(max(st.Stats.StateBytes, 0)), BusySeconds: st.BusySeconds})
		}
	}
	return out
}

// stopAll stops every pipeline (the worker is leaving).
func (w *workerRuntime) stopAll() {
	w.mu.Lock()
	runs := w.runs
	w.runs = map[string]*pipeline{}
	w.mu.Unlock()
	for _, p := range runs {
		p.stop()
	}
}
