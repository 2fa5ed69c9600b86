package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/spatedb/spate/cluster/transport"

	"github.com/spatedb/spate/cluster/control"
	"github.com/spatedb/spate/storage"
)

// This file takes a continuous query's checkpoints: every interval the
// coordinator puts a checkpoint barrier with the next epoch into each of
// the query's source stages, behind what was ingested so far. The
// barrier flows with the data; every instance aligns it over its inputs,
// snapshots its state (checkpoint.go), reports the snapshot and passes
// the barrier on; the sink counts it in from every last-stage instance.
// When every instance's snapshot and the sink are in, the epoch is
// complete: a consistent cut of the query's state, kept in memory and
// written to the checkpoint store. Nothing stops meanwhile: an instance
// holds back only the inputs that are ahead of the barrier, until the
// others deliver it.

// checkpointRecord is one checkpoint as SHOW CHECKPOINTS lists it.
type checkpointRecord struct {
	Query     string
	Epoch     uint64
	Started   time.Time
	Duration  time.Duration
	Bytes     int64
	Instances int
	Positions string // where the barrier entered each source stage's feed: "stage 0 at 1234, …"
	Status    string // complete, or why it failed
}

// keepCheckpointRecords bounds the history kept per query.
const keepCheckpointRecords = 20

// checkpointer is a query's checkpoint state on the coordinator.
type checkpointer struct {
	query string

	mu sync.Mutex
	// protected by mu
	next    uint64
	pending map[uint64]*pendingCheckpoint
	history []checkpointRecord
	// latest is the newest complete checkpoint: a snapshot per instance.
	latest      map[[2]int][]byte
	latestEpoch uint64
	latestInst  map[[2]int]instanceCheckpoint
	// renumbered is the newest checkpoint a rescale renumbered: a repair
	// from it cannot count on what the old layout sent (dedupe.go).
	renumbered uint64
	// paused: a repair is under way; no epoch begins. held: only
	// beginCheckpoint's forced ones do (an in-place rescale's).
	paused, held bool
	begun        time.Time // when the newest epoch began
	// latestFeed is where the feed stood when the newest complete
	// checkpoint began (its zero value: not known).
	latestFeed feedMark
}

// feedMark is where a query's feed stands: the pipeline running it,
// how many messages its sources took in (pipeline.fed) and the
// coordinator's layout generation. A query whose mark is that of its
// newest complete checkpoint has the state that checkpoint holds, and
// is not checkpointed again.
type feedMark struct {
	pipe   *pipeline
	fed    uint64
	layout uint64
}

// feedMark is where qr's feed stands. It is read before a checkpoint's
// barriers go in: what comes meanwhile counts as after them, and the
// next tick checkpoints again.
func (c *Coordinator) feedMark(qr *queryRuntime) feedMark {
	p := qr.pipeline()
	return feedMark{pipe: p, fed: p.fed.Load(), layout: c.layoutGen.Load()}
}

// unchangedSince reports whether the newest complete checkpoint began
// at mark.
func (k *checkpointer) unchangedSince(mark feedMark) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.latestEpoch > 0 && k.latestFeed == mark
}

// markFeed notes where the feed stood when epoch began.
func (k *checkpointer) markFeed(epoch uint64, mark feedMark) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if pc := k.pending[epoch]; pc != nil {
		pc.feed = mark
	}
}

// lastBegun is when the newest epoch began.
func (k *checkpointer) lastBegun() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.begun
}

type pendingCheckpoint struct {
	started   time.Time
	want      int // instance snapshots
	snaps     map[[2]int][]byte
	inst      map[[2]int]instanceCheckpoint
	sinkWant  int
	sinkGot   map[int]bool
	bytes     int64
	err       error
	completed bool
	feed      feedMark
}

func newCheckpointer(query string) *checkpointer {
	return &checkpointer{query: query, next: 1, pending: map[uint64]*pendingCheckpoint{}}
}

// begin opens the next epoch for a query whose plan has instances
// instances and lastWidth last-stage instances; 0 while paused.
func (k *checkpointer) begin(instances, lastWidth int, force bool) uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.paused || (k.held && !force) {
		return 0
	}
	k.begun = time.Now()
	epoch := k.next
	k.next++
	k.pending[epoch] = &pendingCheckpoint{started: time.Now(), want: instances, snaps: map[[2]int][]byte{}, inst: map[[2]int]instanceCheckpoint{},
		sinkWant: lastWidth, sinkGot: map[int]bool{}}
	return epoch
}

// instanceCheckpoint is one instance's part of a checkpoint, for SHOW
// INSTANCE CHECKPOINTS.
type instanceCheckpoint struct {
	Host string
	// Copy is the worker upstream that keeps a copy of the snapshot
	// (upstreamcopy.go), "" for none; Sum is the snapshot's checksum.
	Copy      string
	Sum       uint32
	Bytes     int64
	Took      time.Duration // from the epoch's start to the snapshot's arrival
	Positions string        // instanceSnapshot.Positions
	// Align and Pause are instanceSnapshot.AlignMicros and PauseMicros.
	Align, Pause time.Duration
}

// instanceDone records an instance's snapshot (or its failure), taken on
// ic.Host, and reports whether the epoch just completed.
func (k *checkpointer) instanceDone(epoch uint64, stage, idx int, ic instanceCheckpoint, data []byte, err error) (*pendingCheckpoint, bool) {
	if h, herr := snapshotHeader(data); err == nil && herr == nil {
		ic.Positions = h.Positions
		ic.Align, ic.Pause = time.Duration(h.AlignMicros)*time.Microsecond, time.Duration(h.PauseMicros)*time.Microsecond
	}
	ic.Bytes = int64(len(data))
	k.mu.Lock()
	defer k.mu.Unlock()
	pc := k.pending[epoch]
	if pc == nil {
		return nil, false
	}
	if err != nil && pc.err == nil {
		pc.err = err
	}
	pc.snaps[[2]int{stage, idx}] = data
	ic.Took = time.Since(pc.started)
	pc.inst[[2]int{stage, idx}] = ic
	pc.bytes += int64(len(data))
	return pc, k.completeLocked(epoch, pc)
}

// sinkDone counts the barrier in from last-stage instance from.
func (k *checkpointer) sinkDone(epoch uint64, from int) (*pendingCheckpoint, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	pc := k.pending[epoch]
	if pc == nil {
		return nil, false
	}
	pc.sinkGot[from] = true
	return pc, k.completeLocked(epoch, pc)
}

func (k *checkpointer) completeLocked(epoch uint64, pc *pendingCheckpoint) bool {
	if pc.completed || len(pc.snaps) < pc.want || len(pc.sinkGot) < pc.sinkWant {
		return false
	}
	pc.completed = true
	delete(k.pending, epoch)
	rec := checkpointRecord{Query: k.query, Epoch: epoch, Started: pc.started, Duration: time.Since(pc.started),
		Bytes: pc.bytes, Instances: len(pc.snaps), Status: "complete", Positions: sourcePositions(pc.inst)}
	if pc.err != nil {
		rec.Status = "failed: " + pc.err.Error()
	} else if epoch > k.latestEpoch {
		k.latest, k.latestEpoch, k.latestInst, k.latestFeed = pc.snaps, epoch, pc.inst, pc.feed
	}
	k.history = append(k.history, rec)
	if len(k.history) > keepCheckpointRecords {
		k.history = k.history[len(k.history)-keepCheckpointRecords:]
	}
	// Older epochs still pending can no longer matter.
	for e := range k.pending {
		if e < epoch {
			delete(k.pending, e)
		}
	}
	return true
}

// sourcePositions summarises where a checkpoint's barrier entered the
// source stages' feeds.
func sourcePositions(inst map[[2]int]instanceCheckpoint) string {
	var parts []string
	for key, ic := range inst {
		if n, ok := strings.CutPrefix(ic.Positions, "feed:"); ok {
			parts = append(parts, fmt.Sprintf("stage %d at %s", key[0], n))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// restorePoint returns the newest complete checkpoint (epoch 0 and no
// snapshots when there is none).
func (k *checkpointer) restorePoint() (uint64, map[[2]int][]byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.latestEpoch, k.latest
}

// setRestorePoint replaces the newest complete checkpoint's snapshots
// with the same cut in another numbering of the instances (a rescale).
func (k *checkpointer) setRestorePoint(epoch uint64, snaps map[[2]int][]byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if epoch == k.latestEpoch && snaps != nil {
		k.latest = snaps
	}
	k.renumbered = max(k.renumbered, k.latestEpoch)
}

// upstreamCopy is the worker that holds a copy of instance key's
// snapshot of checkpoint epoch, and the snapshot's checksum; "" when
// none does, epoch is not the newest complete checkpoint, or a rescale
// renumbered its snapshots.
func (k *checkpointer) upstreamCopy(epoch uint64, key [2]int) (string, uint32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if epoch != k.latestEpoch || k.renumbered >= epoch {
		return "", 0
	}
	ic := k.latestInst[key]
	return ic.Copy, ic.Sum
}

// layoutFrom is the newest checkpoint taken before the latest rescale.
func (k *checkpointer) layoutFrom() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.renumbered
}

// pause stops epochs from beginning and aborts those in flight (a
// repair restores instances that lost their barriers); it returns the
// newest epoch begun, whose barriers the restored instances ignore.
func (k *checkpointer) pause() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.paused = true
	// An aborted epoch is listed as far as it got: when it began, how
	// long it ran and what came in until the recovery.
	for _, e := range slices.Sorted(maps.Keys(k.pending)) {
		pc := k.pending[e]
		delete(k.pending, e)
		k.history = append(k.history, checkpointRecord{Query: k.query, Epoch: e, Started: pc.started, Duration: time.Since(pc.started),
			Bytes: pc.bytes, Instances: len(pc.snaps), Status: "aborted by a recovery"})
	}
	return k.next - 1
}

// abort forgets an epoch begun whose barriers never went in.
func (k *checkpointer) abort(epoch uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.pending, epoch)
}

func (k *checkpointer) unpause() {
	k.mu.Lock()
	k.paused, k.held = false, false
	k.mu.Unlock()
}

// hold stops periodic epochs from beginning until unpause; those in
// flight go on.
func (k *checkpointer) hold() {
	k.mu.Lock()
	k.held = true
	k.mu.Unlock()
}

// outcome reports whether epoch completed, or why it did not.
func (k *checkpointer) outcome(epoch uint64) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.latestEpoch >= epoch {
		return true, nil
	}
	if k.pending[epoch] != nil {
		return false, nil
	}
	for _, r := range k.history {
		if r.Epoch == epoch {
			return false, fmt.Errorf("checkpoint %d %s", epoch, r.Status)
		}
	}
	return false, fmt.Errorf("checkpoint %d was abandoned", epoch)
}

// ended reports whether epoch ended without completing (a recovery
// aborted it, an instance failed its snapshot, or a later epoch
// completed first), and how. Asked of an epoch that began and that its
// restart round has not taken yet (a complete one gone from the history
// would read as ended).
func (k *checkpointer) ended(epoch uint64) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pending[epoch] != nil {
		return "", false
	}
	for _, r := range k.history {
		if r.Epoch == epoch {
			return r.Status, r.Status != "complete"
		}
	}
	// Neither in flight nor recorded: aborted before its barriers went in,
	// or dropped when a later epoch completed first.
	return "was dropped without completing", true
}

// records returns the history, oldest first, then the epochs in flight.
func (k *checkpointer) records() []checkpointRecord {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := append([]checkpointRecord(nil), k.history...)
	for _, e := range slices.Sorted(maps.Keys(k.pending)) {
		pc := k.pending[e]
		out = append(out, checkpointRecord{Query: k.query, Epoch: e, Started: pc.started, Duration: time.Since(pc.started),
			Bytes: pc.bytes, Instances: len(pc.snaps), Status: "in progress"})
	}
	return out
}

// instanceRow is a row of SHOW INSTANCE CHECKPOINTS.
type instanceRow struct {
	epoch  uint64
	key    [2]int
	ic     instanceCheckpoint
	status string
}

// instanceRecords lists each instance's part of the newest complete
// checkpoint and of the epochs in flight.
func (k *checkpointer) instanceRecords() []instanceRow {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []instanceRow
	add := func(epoch uint64, inst map[[2]int]instanceCheckpoint, status string) {
		for key, ic := range inst {
			out = append(out, instanceRow{epoch, key, ic, status})
		}
	}
	add(k.latestEpoch, k.latestInst, "complete")
	for e, pc := range k.pending {
		add(e, pc.inst, "in progress")
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.epoch != b.epoch {
			return a.epoch < b.epoch
		}
		if a.key[0] != b.key[0] {
			return a.key[0] < b.key[0]
		}
		return a.key[1] < b.key[1]
	})
	return out
}

// inFlight is the number of epochs begun and not complete.
func (k *checkpointer) inFlight() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.pending)
}

// checkpointNotice is what a worker sends for each instance snapshot.
// A snapshot larger than a control frame comes in parts, in order.
type checkpointNotice struct {
	Run      string `json:"run"`
	Epoch    uint64 `json:"epoch"`
	Stage    int    `json:"stage"`
	Instance int    `json:"instance"`
	Part     int    `json:"part"`     // 0, 1, … of Parts
	Parts    int    `json:"parts"`    // at least 1
	Snapshot []byte `json:"snapshot"` // this part of instanceSnapshot.marshal
	Error    string `json:"error,omitempty"`
}

// checkpointPart bounds the snapshot bytes of one notice (control frames
// hold 16 MiB of JSON, and base64 takes a third more).
const checkpointPart = 8 << 20

// snapshotParts cuts data into parts of at most checkpointPart bytes;
// there is always at least one part.
func snapshotParts(data []byte) [][]byte {
	parts := [][]byte{data[:min(len(data), checkpointPart)]}
	for off := checkpointPart; off < len(data); off += checkpointPart {
		parts = append(parts, data[off:min(len(data), off+checkpointPart)])
	}
	return parts
}

const noticeCheckpoint = "checkpoint"

// Snapshots of worker instances travel on a data-plane channel of their
// own, "ckpt/<run>/<epoch>/<stage>.<instance>", as batches of one binary
// column; the coordinator takes the snapshot when the channel closes.
// (A notice in parts over the control plane is the fallback.)
const uploadPrefix = "ckpt/"

var uploadSchema = arrow.NewSchema([]arrow.Field{{Name: "data", Type: arrow.BinaryTypes.Binary}}, nil)

func uploadChannel(run string, epoch uint64, stage, idx int) string {
	return fmt.Sprintf("%s%s/%d/%d.%d", uploadPrefix, run, epoch, stage, idx)
}

// uploadSnapshot sends data on an upload channel to addr.
func uploadSnapshot(ctx context.Context, net *dataPlane, addr, id string, data []byte) error {
	s, err := net.dial(ctx, addr, id)
	if err != nil {
		return err
	}
	for _, part := range snapshotParts(data) {
		b := array.NewBinaryBuilder(memory.DefaultAllocator, arrow.BinaryTypes.Binary)
		b.Append(part)
		col := b.NewArray()
		b.Release()
		rec := array.NewRecordBatch(uploadSchema, []arrow.Array{col}, 1)
		col.Release()
		_, err := s.SendBatch(ctx, rec)
		rec.Release()
		if err != nil {
			s.Close()
			return err
		}
	}
	// The length last: an upload cut short (its sender stopping closes
	// the channel cleanly) is not taken for a whole one.
	if _, err := s.SendWatermark(ctx, int64(len(data))); err != nil {
		s.Close()
		return err
	}
	return s.Close()
}

// readUpload reads what uploadSnapshot sent, checking it came whole.
func readUpload(r *transport.Receiver) ([]byte, error) {
	var data []byte
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	whole := false
	for {
		f, err := r.Recv(ctx)
		if errors.Is(err, io.EOF) {
			if !whole {
				return nil, fmt.Errorf("upload %s ended after %d bytes, before its length", r.ChannelID(), len(data))
			}
			return data, nil
		}
		if err != nil {
			return nil, err
		}
		if f.Kind == transport.KindWatermark {
			if f.Watermark != int64(len(data)) {
				return nil, fmt.Errorf("upload %s: %d bytes, its length says %d", r.ChannelID(), len(data), f.Watermark)
			}
			whole = true
			continue
		}
		if f.Rec != nil {
			if col, ok := f.Rec.Column(0).(*array.Binary); ok && col.Len() == 1 {
				data = append(data, col.Value(0)...)
			}
			f.Rec.Release()
		}
	}
}

// receiveUpload reads a snapshot sent by uploadSnapshot and records it.
func (c *Coordinator) receiveUpload(r *transport.Receiver) {
	defer r.Close()
	run, epoch, k, err := parseSnapshotChannel(r.ChannelID(), uploadPrefix)
	if err != nil {
		c.cfg.Logger.Warn().Err(err).Msg("refused a checkpoint upload")
		return
	}
	data, err := readUpload(r)
	if err != nil {
		c.cfg.Logger.Warn().Err(err).Str("channel", r.ChannelID()).Msg("checkpoint upload broke")
		return
	}
	qr := c.runtimeOf(run)
	if qr == nil || qr.recovering.Load() {
		return
	}
	c.checkpointReported(qr, epoch, k[0], k[1], data, nil)
}

// wireCheckpoints connects a coordinator-side pipeline's checkpoint
// callbacks to the query's checkpointer (before the pipeline starts).
func (c *Coordinator) wireCheckpoints(qr *queryRuntime, p *pipeline) {
	p.onCheckpoint = func(epoch uint64, snap *instanceSnapshot, err error) {
		var data []byte
		if err == nil {
			data, err = snap.marshal()
		}
		stage, idx := -1, -1
		if snap != nil {
			stage, idx = snap.Stage, snap.Instance
		}
		c.checkpointReported(qr, epoch, stage, idx, data, err)
	}
	p.onSinkCheckpoint = func(from int, epoch uint64) {
		if pc, done := qr.ckpt.sinkDone(epoch, from); done {
			c.background(func() { c.checkpointCompleted(qr, epoch, pc) })
		}
	}
}

// checkpointReported records an instance's snapshot. The work of a
// completed checkpoint runs on a goroutine of its own: the reporter may be
// an instance or the sink on the data path, or the registry's reader,
// none of which may wait for the outlets' locks it takes to trim them (a
// send blocked on back-pressure holds one).
func (c *Coordinator) checkpointReported(qr *queryRuntime, epoch uint64, stage, idx int, data []byte, err error) {
	if err == nil {
		// Only a snapshot that parses counts (it frames its parts).
		_, err = unmarshalInstanceSnapshot(data)
	}
	var ic instanceCheckpoint
	if pl := qr.pipeline().placement(); stage >= 0 && stage < len(pl.Hosts) && idx >= 0 && idx < len(pl.Hosts[stage]) {
		ic.Host = pl.Hosts[stage][idx]
		// The worker sent a copy to this one (upstreamcopy.go).
		if ic.Copy = upstreamCopyHost(qr.def.Plan.Stages[stage], pl, idx); ic.Copy != "" && err == nil {
			ic.Sum = snapshotSum(data)
		}
	}
	if pc, done := qr.ckpt.instanceDone(epoch, stage, idx, ic, data, err); done {
		c.background(func() { c.checkpointCompleted(qr, epoch, pc) })
	}
}

// checkpointCompleted trims what a complete checkpoint covers and hands
// it to the restart point being taken (restart.go), which writes it to
// the store.
func (c *Coordinator) checkpointCompleted(qr *queryRuntime, epoch uint64, pc *pendingCheckpoint) {
	if pc.err != nil {
		c.cfg.Logger.Warn().Err(pc.err).Str("query", qr.def.Name).Uint64("epoch", epoch).Msg("checkpoint failed")
		return
	}
	qr.result.commit(epoch)
	c.roundCheckpointed(qr, epoch, pc)
	// The outlets' kept output before the barrier is no longer needed.
	p := qr.pipeline()
	p.trimKept(epoch)
	for _, w := range p.placement().hostsOf(coordinatorHost) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			defer cancel()
			if err := c.reg.Call(ctx, w, reqTrim, trimRequest{Run: p.placement().Run, Epoch: epoch}, nil); err != nil {
				c.cfg.Logger.Debug().Err(err).Str("worker", w).Msg("trimming kept output")
			}
		}()
	}
}

// onCheckpointNotice handles a worker's instance snapshot.
func (c *Coordinator) onCheckpointNotice(worker string, n control.Notice) {
	var cn checkpointNotice
	if err := json.Unmarshal(n.Body, &cn); err != nil {
		c.cfg.Logger.Warn().Err(err).Str("worker", worker).Msg("malformed checkpoint notice")
		return
	}
	qr := c.runtimeOf(cn.Run)
	if qr == nil || qr.recovering.Load() {
		return // a recovery aborts the checkpoints in flight
	}
	var err error
	if cn.Error != "" {
		err = fmt.Errorf("worker %s: %s", worker, cn.Error)
	}
	data := cn.Snapshot
	if err == nil && cn.Parts > 1 {
		key := fmt.Sprintf("%s/%d/%d.%d", cn.Run, cn.Epoch, cn.Stage, cn.Instance)
		c.partsMu.Lock()
		buf := append(c.parts[key], cn.Snapshot...)
		if cn.Part+1 < cn.Parts {
			if c.parts == nil {
				c.parts = map[string][]byte{}
			}
			c.parts[key] = buf
			c.partsMu.Unlock()
			return
		}
		delete(c.parts, key)
		c.partsMu.Unlock()
		data = buf
	}
	c.checkpointReported(qr, cn.Epoch, cn.Stage, cn.Instance, data, err)
}

// checkpointQuery starts the query's next checkpoint: a barrier into
// each source stage, each behind what its relation fed so far (taken
// under the relation's feeding lock, so no batch is half before and half
// after). A query whose previous checkpoint is still in flight is left
// alone, and so is one that took nothing in since its newest complete
// checkpoint began (its state is that checkpoint's): an idle server
// does not keep checkpointing.
func (c *Coordinator) checkpointQuery(qr *queryRuntime) {
	p := qr.pipeline()
	if p.failure() != nil || qr.recovering.Load() || qr.ckpt.inFlight() > 0 {
		return
	}
	mark := c.feedMark(qr)
	if qr.ckpt.unchangedSince(mark) {
		return
	}
	if epoch := c.beginCheckpoint(qr, false); epoch != 0 {
		qr.ckpt.markFeed(epoch, mark)
	}
}

// beginCheckpoint opens the query's next epoch and puts its barrier into
// each source stage; 0 when checkpoints are paused or a barrier could
// not go in. force begins one while checkpoints are held.
func (c *Coordinator) beginCheckpoint(qr *queryRuntime, force bool) uint64 {
	p := qr.pipeline()
	epoch := qr.ckpt.begin(qr.instanceCount(), qr.lastWidth(), force)
	if epoch == 0 {
		return 0
	}
	for _, st := range qr.def.Plan.Stages {
		if st.Source == nil {
			continue
		}
		err := c.withSourceLock(st.Source.Relation, func() error { return p.injectCheckpoint(st.ID, epoch) })
		if err != nil {
			return 0
		}
	}
	return epoch
}

// withSourceLock runs fn holding the lock under which a relation feeds
// its readers.
func (c *Coordinator) withSourceLock(relation string, fn func() error) error {
	c.mu.Lock()
	s, t, up := c.streams[relation], c.tables[relation], c.queries[relation]
	c.mu.Unlock()
	switch {
	case s != nil:
		s.ingestMu.Lock()
		defer s.ingestMu.Unlock()
	case t != nil:
		t.mu.Lock()
		defer t.mu.Unlock()
	case up != nil:
		up.result.mu.Lock()
		defer up.result.mu.Unlock()
	}
	return fn()
}

// watchCheckpoints checkpoints every query that runs instances on
// workers every interval — or sooner, when the output its sources keep
// for replay (backup.go) passes keptLimit bytes or keptMessages
// messages: kept output costs memory and, in many small batches, the
// garbage collector's time.
func (c *Coordinator) watchCheckpoints(done <-chan struct{}, interval time.Duration) {
	var lastRound time.Time
	every(done, min(interval, 100*time.Millisecond), func() {
		// A restart point checkpoints every query at once (restart.go),
		// and one is due at once after a rescale (tried again no sooner
		// than layoutRetry when writing it failed, as with a store down).
		if c.restartPointsOn() {
			c.abandonStaleRound(10 * max(interval, c.cfg.RestartPointInterval))
			due := time.Since(lastRound) >= c.cfg.RestartPointInterval ||
				(c.layoutUnsaved() && (time.Since(lastRound) >= layoutRetry || !c.lastWriteFailed()))
			if due && c.beginRound() {
				lastRound = time.Now()
				return
			}
		}
		for _, qr := range c.runningQueries() {
			if len(qr.pipeline().placement().hostsOf(coordinatorHost)) == 0 {
				continue // nothing to repair: no worker runs an instance
			}
			since := time.Since(qr.ckpt.lastBegun())
			bytes, msgs := qr.pipeline().keptLocal()
			if since >= interval || (since >= keptSpacing && (bytes > c.cfg.ReplayBufferLimit/2 || msgs > keptMessages)) {
				c.checkpointQuery(qr)
			}
		}
	})
}

// layoutRetry spaces the restart points a rescale asks for after one
// failed.
const layoutRetry = 10 * time.Second

// Kept output that starts a checkpoint before its interval is up, at
// most once per keptSpacing.
const (
	keptSpacing  = 500 * time.Millisecond
	keptMessages = 16384
)

// openCheckpointStore opens Config.CheckpointStore.
func openCheckpointStore(loc string) (storage.BlobStore, error) {
	if loc == "" {
		return nil, nil
	}
	return storage.Open(context.Background(), loc)
}
