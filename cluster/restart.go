package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/spatedb/spate/exec"
	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/planner"
	"github.com/spatedb/spate/storage"
)

// Restart points let `spate serve`, restarted after a full stop, resume
// every continuous query from its checkpoints and replay only the tail
// of the write-ahead log, which is then trimmed behind them.
//
// A round (beginRound) holds the log's order lock exclusively for a
// moment — no statement is applied meanwhile — notes the log position P,
// and puts a checkpoint barrier into every source stage of every query.
// Each query's checkpoint then covers exactly the log's entries before
// P. When every query's checkpoint is complete (roundCheckpointed), the
// round writes, under restart/<P>/ in the checkpoint store: each
// instance's snapshot, each result as of its checkpoint, every table's
// rows and every stream's watermark as of P, and the DDL that made the
// catalog; the manifest goes last. Then the log is trimmed before P and
// older restart points are deleted.
//
// Recover starts from the newest restart point when there is one: it
// runs the DDL (queries deploy with their instances restored and their
// results loaded), loads the tables and streams, and replays the log
// from P.
//
// A query that reads another query's result gets its barrier into that
// source when the upstream's sink has the upstream's barrier from every
// last-stage instance; meanwhile the sink holds back what the instances
// past the barrier send (alignment), so the reader's checkpoint covers
// exactly the upstream's output for the log before P.

// ddlEntry is a DDL statement as applied, with the parallelism a query
// was planned with.
type ddlEntry struct {
	SQL         string `json:"sql"`
	Parallelism int    `json:"parallelism"`
}

// streamState is what a stream keeps between its rows.
type streamState struct {
	MaxTime   int64 `json:"max_time"`
	Watermark int64 `json:"watermark"`
	RowsIn    int64 `json:"rows_in"`
	LateRows  int64 `json:"late_rows"`
}

// restartManifest describes a restart point.
type restartManifest struct {
	Pos     uint64                 `json:"pos"`    // the first log entry not covered
	LogID   string                 `json:"log_id"` // the log's (wal.id)
	DDL     []ddlEntry             `json:"ddl"`
	Streams map[string]streamState `json:"streams"`
	Tables  []string               `json:"tables"`
	Queries map[string]roundQuery  `json:"queries"`
	Taken   time.Time              `json:"taken"`
	// Sums is every blob's CRC-32C (Castagnoli), by key below the
	// restart point's prefix: a blob that does not match is refused.
	Sums map[string]uint32 `json:"sums"`
	// History is what SHOW RECOVERIES, SHOW SCALING EVENTS and SHOW
	// RESTART POINTS listed when it was written: a restart lists it on.
	History *history `json:"history,omitempty"`
}

// history is the coordinator's record of what happened to its queries.
type history struct {
	Recoveries    []recoveryRecord `json:"recoveries,omitempty"`
	ScalingEvents []scalingEvent   `json:"scaling_events,omitempty"`
	RestartPoints []restartRecord  `json:"restart_points,omitempty"`
}

// history returns a copy of the records.
func (c *Coordinator) history() *history {
	h := &history{}
	c.mu.Lock()
	h.Recoveries = append(h.Recoveries, c.recoveries...)
	h.RestartPoints = append(h.RestartPoints, c.restartRecords...)
	c.mu.Unlock()
	c.scaling.mu.Lock()
	h.ScalingEvents = append(h.ScalingEvents, c.scaling.events...)
	c.scaling.mu.Unlock()
	return h
}

// loadHistory puts a restart point's records before those since.
func (c *Coordinator) loadHistory(h *history) {
	if h == nil {
		return
	}
	c.mu.Lock()
	c.recoveries = lastOf(append(h.Recoveries, c.recoveries...), keepRecoveryRecords)
	c.restartRecords = lastOf(append(h.RestartPoints, c.restartRecords...), keepCheckpointRecords)
	c.mu.Unlock()
	c.scaling.mu.Lock()
	c.scaling.events = lastOf(append(h.ScalingEvents, c.scaling.events...), keepScalingEvents)
	c.scaling.mu.Unlock()
}

// lastOf is the last n of xs.
func lastOf[T any](xs []T, n int) []T {
	if len(xs) > n {
		return xs[len(xs)-n:]
	}
	return xs
}

var blobCRC = crc32.MakeTable(crc32.Castagnoli)

// restartBlob reads one blob of a restart point and checks its sum.
func (c *Coordinator) restartBlob(ctx context.Context, m *restartManifest, key string) ([]byte, error) {
	full := restartKeys(m.Pos) + key
	data, err := c.store.Get(ctx, full)
	if err != nil {
		return nil, err
	}
	if sum, ok := m.Sums[key]; ok && crc32.Checksum(data, blobCRC) != sum {
		return nil, fmt.Errorf("restart point %s in %s: %d bytes that do not match their checksum (the blob is corrupt)", full, c.store, len(data))
	}
	return data, nil
}

type roundQuery struct {
	// Failed is the error a query had failed with when the restart point
	// was taken (it has no epoch, snapshots or result then).
	Failed    *Error   `json:"failed,omitempty"`
	Epoch     uint64   `json:"epoch"`
	Instances [][2]int `json:"instances"`
	Watermark int64    `json:"watermark"`
	// Splits is each stage's key-range split points when the epoch was
	// taken (a rescale changes them; the query resumes with the same).
	Splits [][]uint64 `json:"splits,omitempty"`
	Order  [][]int    `json:"order,omitempty"` // which instance owns each range
	// LateRows is the query's count of rows it did not see, late, at P.
	LateRows int64 `json:"late_rows,omitempty"`
	// Segments hold an append-only result, in order (an updating one is
	// the blob results/<name>).
	Segments []segmentRef `json:"segments,omitempty"`
}

// segmentRef names a segment of an append-only result in the store: a
// blob of some of its batches, written by one restart point and kept
// for the later ones while its batches last (segmentPrefix), so that a
// restart point writes what the result gained since the last, not all
// of it.
type segmentRef struct {
	Key  string `json:"key"` // full key in the store
	Sum  uint32 `json:"sum"` // CRC-32C of the blob
	Rows int64  `json:"rows"`
}

// segmentPrefix is where the result segments live: outside any one
// restart point's keys, as several refer to a segment.
const segmentPrefix = "result-segments/"

// restartRound is a round in progress.
type restartRound struct {
	manifest restartManifest   // without Queries, which writeRestartPoint fills
	epochs   map[string]uint64 // each query's epoch; not changed once begun
	lateRows map[string]int64  // each query's late rows at P
	// runtimes are the queries it checkpoints: a query dropped and
	// created again under the same name is another, whose epochs do not
	// count.
	runtimes map[string]*queryRuntime
	failed   map[string]*Error // the queries that had failed when it began
	tables   map[string][]arrow.RecordBatch
	started  time.Time
	layout   uint64 // Coordinator.layoutGen when it began

	mu sync.Mutex
	// protected by mu
	done    map[string]*roundResult
	written bool // being written (or abandoned): no checkpoint completes it again
}

type roundResult struct {
	snaps  map[[2]int][]byte
	store  *resultStore
	result resultCut
	wm     int64
	splits [][]uint64
	order  [][]int
}

const restartPrefix = "restart/"

// restartKeys is the prefix of the keys of the restart point at pos
// (zero-padded: they sort by position).
func restartKeys(pos uint64) string { return fmt.Sprintf("%s%020d/", restartPrefix, pos) }

// restartPointsOn reports whether rounds are taken: a log, a checkpoint
// store that outlives the process (the log is trimmed behind a restart
// point: one in memory would take the rows with it) and checkpoints.
func (c *Coordinator) restartPointsOn() bool {
	_, inMemory := c.store.(*storage.Memory)
	return c.wal != nil && c.store != nil && !inMemory && c.cfg.CheckpointInterval > 0
}

// beginRound starts a round if every query can take part; false when it
// cannot now.
func (c *Coordinator) beginRound() bool {
	c.mu.Lock()
	busy := c.round != nil
	c.mu.Unlock()
	if busy || !c.wal.active() {
		return false // one round at a time, and none while Recover replays
	}
	// Nothing is applied from here on: the queries are those the log
	// has created before P.
	c.wal.order.Lock()
	defer c.wal.order.Unlock()
	qs := c.runningQueries()
	c.mu.Lock()
	unchanged := len(c.restartRecords) > 0 && c.restartRecords[len(c.restartRecords)-1].Pos == c.wal.log.Next() &&
		strings.HasPrefix(c.restartRecords[len(c.restartRecords)-1].Status, "written")
	c.mu.Unlock()
	if len(qs) == 0 || (unchanged && !c.layoutUnsaved()) {
		return false // nothing to take, or nothing logged or rescaled since the last one
	}
	// A failed query takes no part: the restart point records it failed
	// (a restart brings it back failed), so it holds back neither the
	// others' restart points nor the log's trimming.
	failed := map[string]*Error{}
	live := qs[:0:0]
	for _, qr := range qs {
		if err := qr.pipeline().failure(); err != nil {
			failed[qr.def.Name] = asError(err)
			continue
		}
		if qr.recovering.Load() || qr.ckpt.inFlight() > 0 {
			return false
		}
		live = append(live, qr)
	}
	qs = live
	// Every round has a position of its own, so its blobs never
	// overwrite a complete restart point's (one at the same position,
	// after a restart or a rescale with nothing logged since): a mark in
	// the log, synced, as the restart point will say the log reaches it.
	err := c.wal.appendStatement(walMark, "", "", 0, nil)
	if err == nil {
		err = c.wal.sync()
	}
	if err != nil {
		c.cfg.Logger.Warn().Err(err).Msg("logging a restart point's position")
		return false
	}
	r := &restartRound{started: time.Now(), layout: c.layoutGen.Load(), tables: map[string][]arrow.RecordBatch{}, done: map[string]*roundResult{}, epochs: map[string]uint64{}, lateRows: map[string]int64{}, failed: failed,
		manifest: restartManifest{Pos: c.wal.log.Next(), LogID: c.wal.id, Streams: map[string]streamState{}, Taken: time.Now()}}
	c.mu.Lock()
	r.manifest.DDL = append([]ddlEntry(nil), c.ddlLog...)
	for name, s := range c.streams {
		s.ingestMu.Lock()
		r.manifest.Streams[name] = streamState{MaxTime: s.maxTime, Watermark: s.watermark.Load(), RowsIn: s.rowsIn.Load(), LateRows: s.lateRows.Load()}
		s.ingestMu.Unlock()
	}
	for name, t := range c.tables {
		t.mu.Lock()
		for _, b := range t.batches {
			b.Retain()
			r.tables[name] = append(r.tables[name], b)
		}
		t.mu.Unlock()
		r.manifest.Tables = append(r.manifest.Tables, name)
	}
	c.mu.Unlock()
	sort.Strings(r.manifest.Tables)
	// Every query's epoch first; then, for each query read by others, its
	// sink's alignment, which puts the readers' barriers in; then the
	// barriers into the streams and tables.
	byName := map[string]*queryRuntime{}
	for _, qr := range qs {
		mark := c.feedMark(qr)
		epoch := qr.ckpt.begin(qr.instanceCount(), qr.lastWidth(), false)
		if epoch == 0 {
			for name, e := range r.epochs {
				byName[name].ckpt.abort(e)
			}
			r.release()
			return false
		}
		qr.ckpt.markFeed(epoch, mark)
		r.epochs[qr.def.Name] = epoch
		r.lateRows[qr.def.Name] = qr.lateRows.Load()
		byName[qr.def.Name] = qr
	}
	r.runtimes = byName
	allFailed := len(qs) == 0 // nothing to wait for
	r.written = allFailed
	// The round is there before any barrier goes in: a checkpoint that
	// completes at once must find it (roundCheckpointed), or the round
	// would wait for it until abandoned. A round whose barrier cannot go
	// in (its query failed) is abandoned by abandonStaleRound.
	c.mu.Lock()
	c.round = r
	c.mu.Unlock()
	for _, qr := range qs {
		for _, st := range qr.def.Plan.Stages {
			if st.Source == nil {
				continue
			}
			if up := byName[st.Source.Relation]; up != nil {
				p, stage, epoch := qr.pipeline(), st.ID, r.epochs[qr.def.Name]
				up.result.alignFor(r.epochs[up.def.Name], up.lastWidth(), func() {
					if err := p.injectCheckpoint(stage, epoch); err != nil {
						c.cfg.Logger.Warn().Err(err).Str("query", qr.def.Name).Msg("restart point: a reading query's barrier")
					}
				})
			}
		}
	}
	for _, qr := range qs {
		for _, st := range qr.def.Plan.Stages {
			if st.Source != nil && byName[st.Source.Relation] == nil {
				if err := c.withSourceLock(st.Source.Relation, func() error {
					return qr.pipeline().injectCheckpoint(st.ID, r.epochs[qr.def.Name])
				}); err != nil {
					return false // the query failed; abandonStaleRound ends the round
				}
			}
		}
	}
	if allFailed {
		c.background(func() { c.writeRestartPoint(r) })
	}
	return true
}

// alignFor makes the sink align checkpoint epoch over its want
// last-stage instances; then runs under the result's lock once it has.
func (r *resultStore) alignFor(epoch uint64, want int, then func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.align == nil || r.align.epoch != epoch {
		if r.align != nil {
			// An older round's alignment that never completed (the round
			// was abandoned): what waits on it goes on.
			close(r.align.done)
		}
		r.align = &sinkAlign{epoch: epoch, want: want, got: map[int]bool{}, done: make(chan struct{})}
	}
	r.align.then = append(r.align.then, then)
}

// sinkAlign is a result's alignment on a restart point's barrier.
type sinkAlign struct {
	epoch uint64
	want  int
	got   map[int]bool
	then  []func()
	done  chan struct{}
}

// instanceCount is the number of instances of the query's plan.
func (qr *queryRuntime) instanceCount() int {
	pl := qr.pipeline().placement()
	n := 0
	for s := range pl.Hosts {
		n += pl.width(s)
	}
	return n
}

// lastWidth is the number of instances of the query's last stage.
func (qr *queryRuntime) lastWidth() int {
	pl := qr.pipeline().placement()
	return pl.width(len(pl.Hosts) - 1)
}

// roundCheckpointed takes a query's complete checkpoint into the round
// it belongs to and, with the last query's, writes the restart point.
func (c *Coordinator) roundCheckpointed(qr *queryRuntime, epoch uint64, pc *pendingCheckpoint) {
	c.mu.Lock()
	r := c.round
	c.mu.Unlock()
	if r == nil || r.epochs[qr.def.Name] != epoch || r.runtimes[qr.def.Name] != qr {
		return
	}
	cut, wm, err := qr.result.encodeAt(epoch, segmentKey(qr.def.Name, r))
	if err != nil {
		c.cfg.Logger.Warn().Err(err).Str("query", qr.def.Name).Msg("restart point: encoding the result")
		return
	}
	r.mu.Lock()
	if r.written {
		r.mu.Unlock()
		return // being written (or abandoned) without it
	}
	pl := qr.pipeline().placement().clone()
	r.done[qr.def.Name] = &roundResult{snaps: pc.snaps, store: qr.result, result: cut, wm: wm, splits: pl.Splits, order: pl.Order}
	complete := len(r.done) == len(r.epochs) && !r.written
	if complete {
		r.written = true
	}
	r.mu.Unlock()
	if complete {
		c.background(func() { c.writeRestartPoint(r) })
	}
}

// writeRestartPoint writes a complete round to the store, then trims the
// log and deletes older restart points.
func (c *Coordinator) writeRestartPoint(r *restartRound) {
	defer func() {
		c.mu.Lock()
		if c.round == r {
			c.round = nil
		}
		c.mu.Unlock()
		r.release()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	prefix := restartKeys(r.manifest.Pos)
	var written int64
	m := r.manifest
	m.Sums = map[string]uint32{}
	put := func(key string, data []byte) error {
		written += int64(len(data))
		m.Sums[key] = crc32.Checksum(data, blobCRC)
		return c.store.Put(ctx, prefix+key, data)
	}
	fail := func(err error) {
		c.cfg.Logger.Warn().Err(err).Uint64("position", r.manifest.Pos).Msg("writing a restart point")
		c.addRestartRecord(r, written, "failed: "+err.Error())
	}
	m.Queries = map[string]roundQuery{}
	for name, e := range r.failed {
		m.Queries[name] = roundQuery{Failed: e}
	}
	for name, res := range r.done {
		q := roundQuery{Epoch: r.epochs[name], Splits: res.splits, Order: res.order, LateRows: r.lateRows[name]}
		for key, snap := range res.snaps {
			if err := put(fmt.Sprintf("queries/%s/%d.%d", name, key[0], key[1]), snap); err != nil {
				fail(err)
				return
			}
			q.Instances = append(q.Instances, key)
		}
		q.Watermark = res.wm
		if cut := res.result; cut.full != nil {
			if err := put("results/"+name, cut.full); err != nil {
				fail(err)
				return
			}
		} else {
			if cut.fresh != nil {
				written += int64(len(cut.fresh))
				if err := c.store.Put(ctx, cut.freshRef.Key, cut.fresh); err != nil {
					fail(err)
					return
				}
			}
			q.Segments = cut.segments
		}
		m.Queries[name] = q
	}
	for _, name := range m.Tables {
		data, err := encodeBatches(r.tables[name]) // empty for an empty table
		if err == nil {
			err = put("tables/"+name, data)
		}
		if err != nil {
			fail(err)
			return
		}
	}
	// The history names this restart point too: a restart from it lists
	// it (as far as it was written before the manifest).
	m.History = c.history()
	m.History.RestartPoints = lastOf(append(m.History.RestartPoints, r.record(written, "written")), keepCheckpointRecords)
	data, err := json.Marshal(m)
	if err == nil {
		err = put("manifest.json", data)
	}
	if err != nil {
		fail(err)
		return
	}
	// The results' batches written now are in their new segments.
	for name, res := range r.done {
		res.store.segmentWritten(r.epochs[name], res.result)
	}
	// Older restart points, and the log before this one, are not
	// needed, nor are the segments this one does not refer to.
	keys, err := c.store.List(ctx, restartPrefix)
	if err == nil {
		for _, k := range keys {
			if k < prefix { // an older position (zero-padded)
				_ = c.store.Delete(ctx, k)
			}
		}
	}
	referred := map[string]bool{}
	for _, q := range m.Queries {
		for _, seg := range q.Segments {
			referred[seg.Key] = true
		}
	}
	if keys, err := c.store.List(ctx, segmentPrefix); err == nil {
		for _, k := range keys {
			if !referred[k] {
				_ = c.store.Delete(ctx, k)
			}
		}
	}
	status := "written"
	if len(r.failed) > 0 {
		names := make([]string, 0, len(r.failed))
		for name := range r.failed {
			names = append(names, name)
		}
		sort.Strings(names)
		status += " (recorded as failed: " + strings.Join(names, ", ") + ")"
	}
	if err := c.wal.log.Trim(r.manifest.Pos - 1); err != nil {
		c.cfg.Logger.Warn().Err(err).Msg("trimming the write-ahead log")
		status = "written; trimming the log failed: " + err.Error()
	}
	c.addRestartRecord(r, written, status)
	if r.layout > c.savedLayoutGen.Load() { // rounds are written one at a time
		c.savedLayoutGen.Store(r.layout)
	}
	c.cfg.Logger.Debug().Uint64("position", r.manifest.Pos).Int("queries", len(r.done)).Stringer("took", time.Since(r.started)).Msg("restart point written")
}

// lastWriteFailed reports whether the newest restart point could not be
// written (the store failed; one abandoned, because a repair aborted its
// checkpoints, is no reason to wait before the next).
func (c *Coordinator) lastWriteFailed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.restartRecords)
	return n > 0 && strings.HasPrefix(c.restartRecords[n-1].Status, "failed")
}

// layoutUnsaved reports whether a rescale was done since the newest
// restart point began.
func (c *Coordinator) layoutUnsaved() bool {
	return c.savedLayoutGen.Load() < c.layoutGen.Load()
}

// awaitLayoutSaved waits, when restart points are taken, until one
// begun after rescale gen is written, so that a restart keeps the
// rescale's ranges: a rescale acknowledged is not undone by a restart.
// It gives up after limit (the rescale stands; a later restart point
// saves it).
func (c *Coordinator) awaitLayoutSaved(ctx context.Context, gen uint64, limit time.Duration) {
	if !c.restartPointsOn() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for c.savedLayoutGen.Load() < gen {
		if sleepCtx(ctx, 20*time.Millisecond) != nil {
			c.cfg.Logger.Warn().Stringer("waited", limit).Msg("no restart point has the new key ranges yet: a restart before one is written resumes with the old ranges")
			return
		}
	}
}

// queries is how many queries the round takes in, failed ones too.
func (r *restartRound) queries() int { return len(r.epochs) + len(r.failed) }

func (r *restartRound) release() {
	for _, bs := range r.tables {
		releaseBatches(bs)
	}
	r.tables = nil
}

// abandonStaleRound drops a round that cannot complete: begun more than
// after ago, or one of whose queries failed, was dropped or had its
// epoch end otherwise before its checkpoint was in. A repair, which
// aborts the epochs in flight, calls it with 0.
func (c *Coordinator) abandonStaleRound(after time.Duration) {
	c.mu.Lock()
	r := c.round
	in := map[string]*queryRuntime{}
	if r != nil {
		for name := range r.epochs {
			in[name] = c.queries[name]
		}
	}
	c.mu.Unlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	written := r.written
	var missing []string
	for name := range r.epochs {
		if r.done[name] == nil {
			missing = append(missing, name)
		}
	}
	r.mu.Unlock()
	if written {
		return
	}
	status := ""
	if time.Since(r.started) >= after {
		status = "abandoned: not every query's checkpoint completed"
	}
	sort.Strings(missing)
	for _, name := range missing {
		qr := in[name]
		if qr == nil || qr != r.runtimes[name] || qr.pipeline().failure() != nil {
			status = fmt.Sprintf("abandoned: continuous query %s failed or was dropped before its checkpoint completed", name)
			break
		}
		// A repair that began as the round did aborted the query's
		// epoch before the round was there to be abandoned with it.
		if how, ended := qr.ckpt.ended(r.epochs[name]); ended {
			status = fmt.Sprintf("abandoned: checkpoint %d of continuous query %s %s", r.epochs[name], name, how)
			break
		}
	}
	if status == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.round != r {
		return
	}
	r.mu.Lock()
	written = r.written
	r.written = true // closed: a checkpoint coming in now does not write it
	r.mu.Unlock()
	if written {
		return // completed meanwhile
	}
	c.round = nil
	r.release()
	// Its epochs end with it: a reading query's barrier may never go
	// in (the upstream's alignment was aborted), and an epoch left
	// pending would hold off every later round.
	for name, e := range r.epochs {
		if qr := c.queries[name]; qr != nil {
			qr.ckpt.abort(e)
		}
	}
	c.addRestartRecordLocked(r.record(0, status))
}

// restartRecord is a restart point as SHOW RESTART POINTS lists it.
type restartRecord struct {
	Pos      uint64
	Started  time.Time
	Duration time.Duration
	Bytes    int64
	Queries  int
	Status   string
}

// addRestartRecord records how a round ended.
func (c *Coordinator) addRestartRecord(r *restartRound, bytes int64, status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addRestartRecordLocked(r.record(bytes, status))
}

func (c *Coordinator) addRestartRecordLocked(rec restartRecord) {
	c.restartRecords = lastOf(append(c.restartRecords, rec), keepCheckpointRecords)
}

// record is the round as SHOW RESTART POINTS lists it now.
func (r *restartRound) record(bytes int64, status string) restartRecord {
	return restartRecord{Pos: r.manifest.Pos, Started: r.started, Duration: time.Since(r.started), Bytes: bytes, Queries: r.queries(), Status: status}
}

// restartRows answers SHOW RESTART POINTS: the last ones, then the one
// in progress.
func (c *Coordinator) restartRows() ([]Column, [][]any) {
	cols := []Column{{"wal_position", planner.TypeBigInt}, {"started", planner.TypeTimestamp}, {"duration_ms", planner.TypeDouble},
		{"bytes", planner.TypeBigInt}, {"queries", planner.TypeBigInt}, {"status", planner.TypeText}}
	c.mu.Lock()
	recs := append([]restartRecord(nil), c.restartRecords...)
	if r := c.round; r != nil {
		recs = append(recs, r.record(0, "in progress"))
	}
	c.mu.Unlock()
	var rows [][]any
	for _, r := range recs {
		rows = append(rows, []any{int64(r.Pos), r.Started.UnixMicro(), ms(r.Duration), r.Bytes, int64(r.Queries), r.Status})
	}
	return cols, rows
}

// resultCut is a result as of a restart point's epoch: an updating
// result whole (full), an append-only one as the segments that hold it.
// Its batches not in a segment yet, and those of the newest segments no
// larger than them together, go into a new one (fresh, written under
// freshRef.Key): each restart point writes what the result gained, and
// a result is held by a few segments of sizes growing towards the
// oldest (as a binary counter: O(log n) of them, each row rewritten
// O(log n) times).
type resultCut struct {
	full     []byte
	segments []segmentRef // in the order of their batches, freshRef among them
	fresh    []byte       // nil: nothing new
	freshRef segmentRef
	merged   map[string]bool // the segments fresh takes the place of
	upTo     uint64          // fresh holds batches with seq below it
}

// segmentKey is the key of a query's result segment written by round r
// (unique: two rounds may share a log position, not their start).
func segmentKey(query string, r *restartRound) string {
	return fmt.Sprintf("%s%s/%020d-%d", segmentPrefix, query, r.manifest.Pos, r.started.UnixNano())
}

// encodeAt encodes the result as of checkpoint epoch (what comes after
// it is left out) and the watermark it has now; key names the segment
// an append-only result's new batches go into.
func (r *resultStore) encodeAt(epoch uint64, key string) (resultCut, int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.updating {
		cut, err := r.cutSegments(epoch, key)
		return cut, r.cutWatermark(epoch), err
	}
	rows, counts := map[string][]any{}, map[string]int{}
	for k, row := range r.rows {
		rows[k], counts[k] = row, r.counts[k]
	}
	for i := len(r.undo) - 1; i >= 0 && r.undo[i].tag > epoch; i-- {
		u := r.undo[i]
		if u.row == nil {
			delete(rows, u.key)
			delete(counts, u.key)
			continue
		}
		rows[u.key], counts[u.key] = u.row, u.count
	}
	out := r.expandRows(rows, counts)
	var cut resultCut
	var err error
	if len(out) == 0 {
		cut.full, err = encodeBatchesSchema(r.schema, nil)
	} else {
		rec, rerr := exec.RecordFromValues(r.schema, out)
		if rerr != nil {
			return cut, 0, rerr
		}
		cut.full, err = encodeBatchesSchema(r.schema, []arrow.RecordBatch{rec})
		rec.Release()
	}
	return cut, r.cutWatermark(epoch), err
}

// cutSegments is encodeAt of an append-only result; called with mu held.
func (r *resultStore) cutSegments(epoch uint64, key string) (resultCut, error) {
	cut := resultCut{upTo: r.nextSeq, merged: map[string]bool{}, freshRef: segmentRef{Key: key}}
	var fresh int64 // rows not in a segment
	listed := map[string]bool{}
	for _, b := range r.batches {
		switch {
		case b.tag > epoch: // after the cut
		case b.segment.Key == "":
			fresh += b.rec.NumRows()
		case !listed[b.segment.Key]: // a segment's batches need not be adjacent
			listed[b.segment.Key] = true
			cut.segments = append(cut.segments, b.segment)
		}
	}
	if fresh == 0 {
		return cut, nil
	}
	for n := len(cut.segments); n > 0 && cut.segments[n-1].Rows <= fresh; n-- {
		last := cut.segments[n-1]
		cut.merged[last.Key] = true
		fresh += last.Rows
		cut.segments = cut.segments[:n-1]
	}
	var batches []arrow.RecordBatch
	var rows int64 // those left of the merged segments after the retention
	for _, b := range r.batches {
		if b.tag <= epoch && (b.segment.Key == "" || cut.merged[b.segment.Key]) {
			batches = append(batches, b.rec)
			rows += b.rec.NumRows()
		}
	}
	data, err := encodeBatchesSchema(r.schema, batches)
	if err != nil {
		return cut, err
	}
	cut.fresh = data
	cut.freshRef.Sum, cut.freshRef.Rows = crc32.Checksum(data, blobCRC), rows
	cut.segments = append(cut.segments, cut.freshRef)
	return cut, nil
}

// segmentWritten records that cut's new segment is written: its batches
// are in it from now on.
func (r *resultStore) segmentWritten(epoch uint64, cut resultCut) {
	if cut.fresh == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, b := range r.batches {
		if b.tag <= epoch && (b.segment.Key == "" && b.seq < cut.upTo || cut.merged[b.segment.Key]) {
			r.batches[i].segment = cut.freshRef
		}
	}
}

// cutWatermark is the result's watermark as of checkpoint epoch: exact
// when the sink aligned it, else the current one.
func (r *resultStore) cutWatermark(epoch uint64) int64 {
	if wm, ok := r.aligned[epoch]; ok {
		delete(r.aligned, epoch)
		return wm
	}
	return r.watermark
}

// load fills a new result with what encodeAt wrote (a restart): an
// updating result's blob, or an append-only one's segments.
func (r *resultStore) load(rs *restoring) error {
	if rs.result != nil {
		if err := r.loadBlob(rs.result, segmentRef{}); err != nil {
			return err
		}
	}
	for _, seg := range rs.segments {
		if err := r.loadBlob(seg.data, seg.ref); err != nil {
			return fmt.Errorf("segment %s: %w", seg.ref.Key, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.watermark = rs.wm
	r.undo = r.undo[:0]
	for i := range r.batches {
		r.batches[i].tag = 0 // all committed
	}
	r.trim() // a segment kept rows the retention has dropped since
	return nil
}

// loadBlob applies the batches of one blob, held by segment seg.
func (r *resultStore) loadBlob(data []byte, seg segmentRef) error {
	batches, err := decodeBatches(data)
	if err != nil {
		return err
	}
	defer releaseBatches(batches)
	for _, b := range batches {
		rec := b
		if r.updating {
			ops := make([]string, b.NumRows())
			for i := range ops {
				ops[i] = "+"
			}
			rec = withOps(b, ops)
		}
		err := r.apply(context.Background(), 0, r.gen, rec)
		if r.updating {
			rec.Release()
		}
		if err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.batches {
		if r.batches[i].segment.Key == "" {
			r.batches[i].segment = seg
		}
	}
	return nil
}

func encodeBatches(batches []arrow.RecordBatch) ([]byte, error) {
	if len(batches) == 0 {
		return nil, nil
	}
	return encodeBatchesSchema(batches[0].Schema(), batches)
}

func encodeBatchesSchema(schema *arrow.Schema, batches []arrow.RecordBatch) ([]byte, error) {
	var b bytes.Buffer
	w := ipc.NewWriter(&b, ipc.WithSchema(schema))
	for _, rec := range batches {
		if err := w.Write(rec); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func decodeBatches(data []byte) ([]arrow.RecordBatch, error) {
	if len(data) == 0 {
		return nil, nil
	}
	rd, err := ipc.NewReader(bytes.NewReader(data), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return nil, err
	}
	defer rd.Release()
	var out []arrow.RecordBatch
	for rd.Next() {
		rec := rd.RecordBatch()
		rec.Retain()
		out = append(out, rec)
	}
	if err := rd.Err(); err != nil {
		releaseBatches(out)
		return nil, err
	}
	return out, nil
}

// latestRestartPoint reads the newest complete restart point's manifest
// (nil when there is none).
func (c *Coordinator) latestRestartPoint(ctx context.Context) (*restartManifest, error) {
	if c.store == nil {
		return nil, nil
	}
	keys, err := c.store.List(ctx, restartPrefix)
	if err != nil {
		return nil, err
	}
	var manifests []string
	for _, k := range keys {
		if strings.HasSuffix(k, "/manifest.json") {
			manifests = append(manifests, k)
		}
	}
	if len(manifests) == 0 {
		return nil, nil
	}
	sort.Strings(manifests) // zero-padded positions
	data, err := c.store.Get(ctx, manifests[len(manifests)-1])
	if err != nil {
		return nil, err
	}
	m := new(restartManifest)
	if err := json.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("restart point %s: %w", manifests[len(manifests)-1], err)
	}
	return m, nil
}

// restoring is what Recover restores a query from (deploy uses it).
type restoring struct {
	snaps    map[[2]int][]byte
	result   []byte // an updating result (nil: none)
	segments []loadedSegment
	wm       int64
	splits   [][]uint64 // the layout the snapshots were taken in (nil: the plan's)
	order    [][]int
	lateRows int64
	failed   *Error // the query had failed: it comes back failed, with nothing restored
}

type loadedSegment struct {
	ref  segmentRef
	data []byte
}

// loadRestartPoint reads a restart point's per-query data into
// c.restore, for the DDL replay to use.
func (c *Coordinator) loadRestartPoint(ctx context.Context, m *restartManifest) error {
	restore := map[string]*restoring{}
	defer func() {
		c.mu.Lock()
		c.restore = restore
		c.mu.Unlock()
	}()
	for name, q := range m.Queries {
		if q.Failed != nil {
			restore[name] = &restoring{failed: q.Failed}
			continue
		}
		rs := &restoring{snaps: map[[2]int][]byte{}, wm: q.Watermark, splits: q.Splits, order: q.Order, lateRows: q.LateRows}
		for _, key := range q.Instances {
			data, err := c.restartBlob(ctx, m, fmt.Sprintf("queries/%s/%d.%d", name, key[0], key[1]))
			if err != nil {
				return err
			}
			rs.snaps[key] = data
		}
		// An updating result is one blob; so is every result of a restart
		// point from before segments (one from before checksums, too,
		// lists no sums at all). An append-only result held by no
		// segment is empty.
		if _, ok := m.Sums["results/"+name]; ok || m.Sums == nil {
			data, err := c.restartBlob(ctx, m, "results/"+name)
			if err != nil {
				return err
			}
			rs.result = data
		}
		for _, seg := range q.Segments {
			data, err := c.store.Get(ctx, seg.Key)
			if err != nil {
				return err
			}
			if crc32.Checksum(data, blobCRC) != seg.Sum {
				return fmt.Errorf("result segment %s in %s: %d bytes that do not match their checksum (the blob is corrupt)", seg.Key, c.store, len(data))
			}
			rs.segments = append(rs.segments, loadedSegment{seg, data})
		}
		restore[name] = rs
	}
	return nil
}

// loadRelations restores the tables' rows and the streams' state of a
// restart point, after its DDL ran (without feeding readers: the restored
// queries have what they had seen).
func (c *Coordinator) loadRelations(ctx context.Context, m *restartManifest) error {
	for _, name := range m.Tables {
		c.mu.Lock()
		t := c.tables[name]
		c.mu.Unlock()
		if t == nil {
			continue
		}
		data, err := c.restartBlob(ctx, m, "tables/"+name)
		if err != nil {
			return err
		}
		batches, err := decodeBatches(data)
		if err != nil {
			return err
		}
		t.mu.Lock()
		for _, b := range batches {
			t.batches = append(t.batches, b)
			t.rows += b.NumRows()
		}
		t.mu.Unlock()
	}
	for name, st := range m.Streams {
		c.mu.Lock()
		s := c.streams[name]
		c.mu.Unlock()
		if s == nil {
			continue
		}
		s.ingestMu.Lock()
		s.maxTime = st.MaxTime
		s.watermark.Store(st.Watermark)
		s.rowsIn.Store(st.RowsIn)
		s.lateRows.Store(st.LateRows)
		s.ingestMu.Unlock()
	}
	return nil
}

// compactDDLLocked removes from ddlLog the statements that made the
// dropped relations as they were: the CREATE of each, and the ALTERs and
// GRANTs/REVOKEs after it that name only them. It removes nothing and
// reports false when a statement after the first of those CREATEs names a
// dropped relation otherwise (a GRANT on others too), or is a DROP (a
// relation created and dropped meanwhile may have read them): then the
// DROP is logged, as before. Statements about other relations stay.
func (c *Coordinator) compactDDLLocked(dropped []string) bool {
	gone := map[string]bool{}
	for _, n := range dropped {
		gone[n] = true
	}
	start := len(c.ddlLog)
	creates, found := map[int]bool{}, map[string]bool{}
	for i := len(c.ddlLog) - 1; i >= 0 && len(creates) < len(gone); i-- {
		st, err := parser.ParseOne(c.ddlLog[i].SQL)
		if err != nil {
			return false
		}
		if name, ok := createdRelation(st); ok && gone[name] && !found[name] {
			creates[i], found[name], start = true, true, i
		}
	}
	if len(creates) < len(gone) {
		return false // created before what the list holds
	}
	keep := c.ddlLog[:start:start]
	for i := start; i < len(c.ddlLog); i++ {
		st, err := parser.ParseOne(c.ddlLog[i].SQL)
		if err != nil {
			return false
		}
		remove := false
		if name, ok := createdRelation(st); ok {
			if gone[name] && !creates[i] {
				return false
			}
			remove = gone[name]
		}
		switch x := st.(type) {
		case *parser.Drop:
			return false
		case *parser.AlterContinuousQuery:
			remove = gone[x.Name]
		case *parser.Grant:
			named := 0
			for _, o := range x.Objects {
				if gone[o] {
					named++
				}
			}
			if named > 0 && named < len(x.Objects) {
				return false
			}
			remove = named > 0
		}
		if !remove {
			keep = append(keep, c.ddlLog[i])
		}
	}
	c.ddlLog = keep
	return true
}

// createdRelation is the relation a CREATE STREAM, TABLE or CONTINUOUS
// QUERY makes.
func createdRelation(st parser.Statement) (string, bool) {
	switch x := st.(type) {
	case *parser.CreateStream:
		return x.Name, true
	case *parser.CreateTable:
		return x.Name, true
	case *parser.CreateContinuousQuery:
		return x.Name, true
	}
	return "", false
}
