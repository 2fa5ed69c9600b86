package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/rs/zerolog"

	"github.com/spatedb/spate/exec"
	"github.com/spatedb/spate/planner"
)

// Recovery of a query that lost instances (SEEP's repair): when a
// worker dies, or a channel to a consumer breaks, the lost instances and
// every instance downstream of them, up to and including the sink, are
// restored from the query's newest complete checkpoint — the lost ones
// on live workers, the others where they ran — and given new
// incarnations. Every other instance keeps running: its outlets kept
// what they sent since that checkpoint (backup.go) and replay it to the
// restored consumers. The result store rolls back to what the checkpoint
// covers; subscribers and reading queries see no step back: during the
// replay nothing reaches them, and at the end they get the difference
// between what they had seen and the recovered result.

// undoEntry takes back one change of an updating result: the key's row
// and count before it.
type undoEntry struct {
	tag   uint64
	key   string
	row   []any // nil: the key was absent
	count int
}

// recoveryView is what subscribers and readers had seen of the part of
// the result a recovery took back.
type recoveryView struct {
	epoch uint64
	rows  map[string]int  // append-only: row → times delivered
	keys  map[string]kept // updating: key → row and count delivered
}

type kept struct {
	row   []any
	count int
}

// sawBarrier notes checkpoint epoch's barrier from last-stage instance
// from: what it sends next belongs to the following epoch. It returns
// false for a barrier sent to an older incarnation of the sink.
func (r *resultStore) sawBarrier(from, gen int, epoch uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if gen != r.gen {
		return false
	}
	if r.seen == nil {
		r.seen = map[int]uint64{}
	}
	r.seen[from] = max(r.seen[from], epoch)
	if a := r.align; a != nil && a.epoch == epoch {
		a.got[from] = true
		if len(a.got) == a.want {
			if r.aligned == nil {
				r.aligned = map[uint64]int64{}
			}
			r.aligned[epoch] = r.watermark
			for _, fn := range a.then {
				fn()
			}
			r.align = nil
			close(a.done)
		}
	}
	return true
}

// commit notes that checkpoint epoch is complete: nothing before it will
// be taken back.
func (r *resultStore) commit(epoch uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.committed = max(r.committed, epoch)
	keep := r.undo[:0]
	for _, u := range r.undo {
		if u.tag > r.committed {
			keep = append(keep, u)
		}
	}
	r.undo = keep
}

// repairing notes a repair that keeps the result (its producers' restored
// incarnations send only what it lacks), once the instances are
// restored: the first output after it is timed for SHOW RECOVERIES.
func (r *resultStore) repairing() {
	r.mu.Lock()
	r.firstOutput = time.Time{}
	r.mu.Unlock()
}

// rollback takes the result back to checkpoint epoch, as the sink's
// incarnation gen (what older ones send is dropped), and starts holding
// back deliveries until finishRecovery.
func (r *resultStore) rollback(epoch uint64, gen int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen = gen
	r.firstOutput = time.Time{}
	if r.align != nil { // the restart point's epoch is aborted
		close(r.align.done)
		r.align = nil
	}
	view := r.recovering
	if view == nil {
		view = &recoveryView{epoch: epoch, rows: map[string]int{}, keys: map[string]kept{}}
		r.recovering = view
	}
	if !r.updating {
		r.keepBatches(func(b storedBatch) bool {
			if b.tag <= epoch {
				return true
			}
			for _, row := range batchRows(b.rec) {
				view.rows[r.rowKey(row)]++
			}
			r.emitted -= b.rec.NumRows()
			return false
		})
	} else {
		for i := len(r.undo) - 1; i >= 0; i-- {
			u := r.undo[i]
			if u.tag <= epoch {
				break
			}
			if _, ok := view.keys[u.key]; !ok {
				view.keys[u.key] = kept{row: r.rows[u.key], count: r.counts[u.key]}
			}
			if u.row == nil {
				delete(r.rows, u.key)
				delete(r.counts, u.key)
			} else {
				r.rows[u.key] = u.row
				if r.key == nil {
					r.counts[u.key] = u.count
				}
			}
			r.undo = r.undo[:i]
		}
		r.recount()
	}
	for k := range r.seen {
		r.seen[k] = epoch
	}
	r.seenFloor = epoch
}

// recount sets nrows of an updating result.
func (r *resultStore) recount() {
	r.nrows = int64(len(r.rows))
	if r.key == nil {
		r.nrows = 0
		for _, c := range r.counts {
			r.nrows += int64(c)
		}
	}
}

// finishRecovery delivers to subscribers and readers the difference
// between what they had seen and the recovered result, and resumes
// normal delivery.
func (r *resultStore) finishRecovery() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	view := r.recovering
	r.recovering = nil
	if view == nil {
		return nil
	}
	if err := r.deliverDifference(view); err != nil {
		return err
	}
	// Then the watermark held back meanwhile.
	if r.watermark != math.MinInt64 {
		for _, rd := range r.readers {
			_ = rd.feed(nil, r.watermark, true)
		}
	}
	return nil
}

// deliverDifference is finishRecovery's delivery of rows; called with mu
// held.
func (r *resultStore) deliverDifference(view *recoveryView) error {
	if !r.updating {
		// Rows (re)applied since the checkpoint that were not delivered.
		for _, b := range r.batches {
			if b.tag <= view.epoch {
				continue
			}
			var fresh [][]any
			for _, row := range batchRows(b.rec) {
				k := r.rowKey(row)
				if view.rows[k] > 0 {
					view.rows[k]--
					continue
				}
				fresh = append(fresh, row)
			}
			if len(fresh) == 0 {
				continue
			}
			rec, err := exec.RecordFromValues(r.schema, fresh)
			if err != nil {
				return err
			}
			err = r.deliverLocked(rec)
			rec.Release()
			if err != nil {
				return err
			}
		}
		return nil
	}
	// Updating: compare each key touched since the checkpoint.
	for _, u := range r.undo {
		if u.tag > view.epoch {
			if _, ok := view.keys[u.key]; !ok {
				view.keys[u.key] = kept{row: u.row, count: u.count}
			}
		}
	}
	keys := make([]string, 0, len(view.keys))
	for k := range view.keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ops []string
	var rows [][]any
	for _, k := range keys {
		was, now := view.keys[k], kept{row: r.rows[k], count: r.counts[k]}
		if r.key != nil {
			was.count, now.count = boolCount(was.row != nil), boolCount(now.row != nil)
		}
		if was.row != nil && now.row != nil && sameRow(was.row, now.row) && was.count == now.count {
			continue
		}
		for range was.count {
			ops, rows = append(ops, "-"), append(rows, was.row)
		}
		for range now.count {
			ops, rows = append(ops, "+"), append(rows, now.row)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	body, err := exec.RecordFromValues(r.schema, rows)
	if err != nil {
		return err
	}
	rec := withOps(body, ops)
	body.Release()
	defer rec.Release()
	return r.deliverLocked(rec)
}

func boolCount(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sameRow(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// batchRows reads a batch as Go rows.
func batchRows(b arrow.RecordBatch) [][]any {
	rows := make([][]any, b.NumRows())
	for i := range rows {
		row := make([]any, b.NumCols())
		for c := range row {
			row[c] = valueAt(b.Column(c), i)
		}
		rows[i] = row
	}
	return rows
}

// recoveryRecord is one recovery as SHOW RECOVERIES lists it.
type recoveryRecord struct {
	Query     string
	Reason    string
	Detected  time.Time
	Restored  time.Duration // detection → restored instances running
	Caught    time.Duration // detection → the replay done and the result caught up
	First     time.Duration // detection → the first output of the repaired query
	Epoch     uint64        // checkpoint restored (0: none, replayed from the start)
	Moved     int           // lost instances restored on other workers
	Instances int           // instances restored (the lost ones, and those downstream unless Kept)
	// Kept: the consumers of the lost instances kept running and dropped
	// what the restored ones sent again (dedupe.go); SinkDuplicates is
	// how many messages the sink dropped meanwhile.
	Kept           bool
	SinkDuplicates int64
	sinkDupsBefore int64
	Replayed       int // messages the upstream instances replayed
	FromCopies     int // instances restored from the copy upstream (upstreamcopy.go)
	Status         string
}

// repairQuery recovers a query that lost instances: those on workers
// that are no longer alive, and the consumers of the channels in lost
// (a channel of an older incarnation than the current one was repaired
// already). Repairs of a query are serialised.
func (c *Coordinator) repairQuery(qr *queryRuntime, reason string, lost []channelName) {
	qr.recoverMu.Lock()
	defer qr.recoverMu.Unlock()
	p := qr.pipeline()
	if !c.current(qr) || p.failure() != nil {
		return
	}
	pl := p.placement()
	failed := map[[2]int]bool{}
	sinkLost := false
	for _, ch := range lost {
		switch {
		case ch.toStage < 0:
			sinkLost = sinkLost || ch.gen == pl.SinkGen
		case ch.toStage >= len(pl.Hosts) || ch.toIdx >= pl.width(ch.toStage):
			// an instance a rescale took away
		case pl.gen(ch.toStage, ch.toIdx) == ch.gen:
			failed[[2]int{ch.toStage, ch.toIdx}] = true
		}
	}
	c.addDeadInstances(pl, failed)
	if len(failed) == 0 && !sinkLost {
		return // repaired already
	}
	if err := qr.crashLoop.lost(pl, failed); err != nil {
		c.cfg.Logger.Error().Str("query", qr.def.Name).Err(err).Msg("the continuous query is stopped instead of repaired")
		rec := recoveryRecord{Query: qr.def.Name, Reason: reason, Detected: time.Now(), Moved: len(failed), Status: "failed: " + err.Error()}
		c.addRecovery(rec)
		p.fail(err)
		return
	}
	qr.recovering.Store(true)
	qr.repairs++
	repair := qr.repairs
	skip := qr.ckpt.pause()
	c.abandonStaleRound(0) // its epoch of this query is aborted
	epoch, snaps := qr.ckpt.restorePoint()
	rec := recoveryRecord{Query: qr.def.Name, Reason: reason, Detected: time.Now(), Epoch: epoch, Moved: len(failed)}
	log := c.cfg.Logger.With().Str("query", qr.def.Name).Logger()
	log.Warn().Str("reason", reason).Int("lost_instances", len(failed)).Uint64("checkpoint", epoch).Msg("repairing the continuous query")
	rec.sinkDupsBefore = p.sinkDuplicates.Load()
	c.beginRepair(qr, rec, phaseRestoring)
	var out repairOutcome
	var err error
	keep := true // the consumers may keep running
	for attempt := 1; ; attempt++ {
		out, err = c.applyRepair(qr, p, failed, epoch, snaps, skip, keep)
		if errors.Is(err, errNoLiveWorker) {
			c.repairPhase(qr, phaseNoWorker)
			if !c.awaitLiveWorker(qr, p, log) {
				break
			}
			c.repairPhase(qr, phaseRestoring)
			attempt = 0 // a worker joined: the repair starts over
			c.addDeadInstances(p.placement(), failed)
			continue
		}
		if err == nil {
			break
		}
		if qr.result.waits.active() && c.current(qr) {
			// A subscriber that does not read holds the query back, and
			// the repair's steps time out behind it: that is no failure
			// of the repair, which tries again until it reads (or goes).
			log.Warn().Err(err).Msg("repairing the continuous query: a subscriber that does not read holds it back; trying again")
			attempt = 0
			time.Sleep(time.Second)
			c.addDeadInstances(p.placement(), failed)
			continue
		}
		if attempt == 5 {
			break
		}
		log.Warn().Err(err).Int("attempt", attempt).Bool("consumers_kept", out.kept).Msg("repairing the continuous query")
		if out.kept {
			// A consumer may no longer hold what the repair needed (an
			// input log, a barrier's position): restore it too.
			keep = false
			continue
		}
		time.Sleep(time.Second)
		// Workers that died meanwhile lost what was restored on them.
		c.addDeadInstances(p.placement(), failed)
	}
	rec.Moved, rec.Instances, rec.Replayed, rec.FromCopies, rec.Kept = len(failed), len(out.restored), out.replayed, out.fromCopies, out.kept
	if err != nil {
		rec.Status = "failed: " + err.Error()
		c.endRepair(qr, &rec, carriedOn)
		log.Error().Err(err).Msg("recovery failed")
		p.fail(errorf("58000", "could not recover after %s: %v", reason, err))
		return
	}
	qr.crashLoop.restoredOn(out.restored)
	rec.Restored = time.Since(rec.Detected)
	rec.Status = phaseReplaying
	c.beginRepair(qr, rec, phaseReplaying)
	go c.finishRepair(qr, p, repair, rec, true)
}

// crashLoop stops a query whose restored instances keep taking their
// workers down (a state too big for any worker, an input that crashes
// them): without it each repair would move them on to the next worker,
// until none is left for the other queries. A loss counts when it hits
// an instance the last repair restored, before that repair caught up or
// within crashLoopWindow after; crashLoopLosses of them in a row (after
// the first loss) stop the query. Losses further apart are repaired as
// always.
type crashLoop struct {
	restored map[[2]int]bool // by the last repair
	caught   time.Time       // when the last repair caught up (zero: not yet)
	losses   int             // in a row, after the first
	workers  []string        // the workers they were on, from the first
}

const (
	crashLoopLosses = 3
	crashLoopWindow = time.Minute
)

// lost counts a loss of the failed instances of placement pl, and
// returns the error that stops the query at the crashLoopLosses-th.
func (l *crashLoop) lost(pl placement, failed map[[2]int]bool) error {
	soon := l.caught.IsZero() || time.Since(l.caught) < crashLoopWindow
	again := false
	for k := range failed {
		again = again || l.restored[k]
	}
	if again && soon {
		l.losses++
	} else {
		l.losses, l.workers = 0, nil
	}
	for _, k := range sortedInstances(failed) {
		if k[0] < len(pl.Hosts) && k[1] < len(pl.Hosts[k[0]]) {
			if h := pl.Hosts[k[0]][k[1]]; !slices.Contains(l.workers, h) {
				l.workers = append(l.workers, h)
			}
		}
	}
	if l.losses < crashLoopLosses {
		return nil
	}
	return errorf("58000", "the continuous query lost the instances it restored %d times in a row soon after restoring them (on workers %s): "+
		"it is stopped so that it does not take down more workers; see what killed them (memory?), then drop and create it again",
		l.losses, strings.Join(l.workers, ", "))
}

func (l *crashLoop) restoredOn(restored [][2]int) {
	l.restored = map[[2]int]bool{}
	for _, k := range restored {
		l.restored[k] = true
	}
	l.caught = time.Time{}
}

func (l *crashLoop) caughtUp() { l.caught = time.Now() }

// current reports whether qr is its name's query and the engine is not
// stopping: whether a repair of it should go on.
func (c *Coordinator) current(qr *queryRuntime) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queries[qr.def.Name] == qr && !c.closed && !c.stopping.Load()
}

// What a repair under way is doing, as its SHOW RECOVERIES row and its
// query's status say.
const (
	phaseRestoring = "restoring the lost instances"
	phaseNoWorker  = "waiting for a worker to join (every worker is dead)"
	phaseReplaying = "replaying to the restored instances"
)

// beginRepair lists a repair under way in SHOW RECOVERIES, and its
// phase in its query's status, until endRepair. A repair that a later
// one took over before it finished is listed as such.
func (c *Coordinator) beginRepair(qr *queryRuntime, rec recoveryRecord, phase string) {
	rec.Status = phase
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.repairing == nil {
		c.repairing = map[*queryRuntime]*recoveryRecord{}
	}
	if prev := c.repairing[qr]; prev != nil && prev.Detected != rec.Detected {
		prev.Status = "carried on by the next repair (its replay was not through)"
		prev.Caught = time.Since(prev.Detected)
		c.addRecoveryLocked(*prev)
	}
	c.repairing[qr] = &rec
}

// repairPhase notes what the query's repair under way does now.
func (c *Coordinator) repairPhase(qr *queryRuntime, phase string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.repairing[qr]; r != nil {
		r.Status = phase
	}
}

// endRepair lists the query's repair as ended: rec (nil when a rescale
// that is no repair ended), after the repair under way that it carried
// on, if another, which status ends.
func (c *Coordinator) endRepair(qr *queryRuntime, rec *recoveryRecord, status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if active := c.repairing[qr]; active != nil && (rec == nil || active.Detected != rec.Detected) {
		a := *active
		a.Status, a.Caught = status, time.Since(a.Detected)
		c.addRecoveryLocked(a)
	}
	delete(c.repairing, qr)
	if rec != nil {
		c.addRecoveryLocked(*rec)
	}
}

// carriedOn ends a repair under way that a rescale carried on.
const carriedOn = "recovered (a rescale carried it on)"

// repairStatus is what the query's repair under way does ("" when none).
func (c *Coordinator) repairStatus(qr *queryRuntime) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.repairing[qr]; r != nil {
		return r.Status
	}
	return ""
}

var errNoLiveWorker = errors.New("no live worker to restore instances on")

// awaitLiveWorker waits, when every worker is dead, for one to join
// (`spate worker --join`) rather than fail the query: what is ingested
// meanwhile is kept for the replay, up to Config.ReplayBufferLimit bytes, and the
// statements that ingest it do not wait for the query. It returns
// false when the query was dropped, the coordinator stops or the kept
// output passes the limit first (the query then fails).
func (c *Coordinator) awaitLiveWorker(qr *queryRuntime, p *pipeline, log zerolog.Logger) bool {
	log.Warn().Msg("every worker is dead: the repair waits for a worker to join")
	// Statements do not wait for the query meanwhile: what they
	// ingested is logged and kept for it.
	p.stalled.Store(true)
	p.mu.Lock()
	p.abandonWaitsLocked()
	p.mu.Unlock()
	defer p.stalled.Store(false)
	for since := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		if !c.current(qr) {
			return false
		}
		if len(c.liveWorkers()) > 0 {
			return true
		}
		var kept int64
		for _, st := range p.localStats() {
			kept += st.KeptBytes
		}
		if kept > c.cfg.ReplayBufferLimit {
			log.Error().Int64("kept_bytes", kept).Msg("no worker joined before the output kept for the repair passed its limit")
			return false
		}
		if time.Since(since) > 30*time.Second {
			log.Warn().Int64("kept_bytes", kept).Msg("the repair still waits for a worker to join")
			since = time.Now()
		}
	}
}

// finishRepair waits for a repair's (or a rescale's) replay to reach the
// result, then catches up the subscribers and readers, resumes
// checkpoints and records it in SHOW RECOVERIES (unless record is
// false).
func (c *Coordinator) finishRepair(qr *queryRuntime, p *pipeline, repair int, rec recoveryRecord, record bool) {
	log := c.cfg.Logger.With().Str("query", qr.def.Name).Logger()
	epoch := rec.Epoch
	// Wait for the replay to reach the result, then catch up the
	// subscribers and readers.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var err error
	for _, st := range qr.def.Plan.Stages {
		if st.Source != nil && err == nil {
			err = p.flush(ctx, st.ID)
		}
	}
	qr.recoverMu.Lock()
	defer qr.recoverMu.Unlock()
	if qr.repairs != repair {
		return // a later repair took over; it finishes
	}
	rec.Status = "recovered"
	if err != nil && p.failure() == nil {
		// The replay is still draining (or a flush broke): what
		// reached the result so far is delivered as the difference,
		// the rest as usual when it comes.
		rec.Status = "recovered (the replay was not through after " + time.Since(rec.Detected).Round(time.Second).String() + ": " + err.Error() + ")"
		err = nil
	}
	if err == nil {
		err = qr.result.finishRecovery()
	}
	rec.Caught = time.Since(rec.Detected)
	rec.SinkDuplicates = p.sinkDuplicates.Load() - rec.sinkDupsBefore
	qr.result.mu.Lock()
	if first := qr.result.firstOutput; !first.IsZero() {
		rec.First = first.Sub(rec.Detected)
	}
	qr.result.mu.Unlock()
	qr.recovering.Store(false)
	qr.ckpt.unpause()
	qr.crashLoop.caughtUp()
	if err != nil {
		rec.Status = "failed: " + err.Error()
	}
	if record {
		c.endRepair(qr, &rec, carriedOn)
	} else {
		c.endRepair(qr, nil, carriedOn)
	}
	log.Info().Uint64("epoch", epoch).Int("restored", rec.Instances).Int("moved", rec.Moved).Int("replayed", rec.Replayed).
		Stringer("restored_in", rec.Restored).Stringer("caught_up_in", rec.Caught).Msg("continuous query recovered")
}

// addDeadInstances adds to failed the instances placed on workers that
// are not alive.
func (c *Coordinator) addDeadInstances(pl placement, failed map[[2]int]bool) {
	live := map[string]bool{coordinatorHost: true}
	for _, w := range c.liveWorkers() {
		live[w.ID] = true
	}
	for s, row := range pl.Hosts {
		for i, h := range row {
			if !live[h] {
				failed[[2]int{s, i}] = true
			}
		}
	}
}

// restoreSet is the instances a repair of the failed ones restores: them
// and every instance of every stage downstream of theirs (a consumer
// stage reads from every instance of its producer).
func restoreSet(q *planner.ContinuousQuery, pl placement, failed map[[2]int]bool) [][2]int {
	consumer := stageConsumers(q)
	set := map[[2]int]bool{}
	for k := range failed {
		set[k] = true
		for s := consumer[k[0]]; s >= 0; s = consumer[s] {
			for i := range pl.width(s) {
				set[[2]int{s, i}] = true
			}
		}
	}
	return sortedInstances(set)
}

// applyRepair moves the failed instances to live workers and restores
// them and everything downstream (and the sink) from checkpoint epoch,
// in three steps on every host: prepare (stop what is restored, build
// the new incarnations), restore (the snapshots), resume (start them and
// reroute the other instances' outlets, which replay). The consumers
// keep running when keep allows it (deterministicRepair).
func (c *Coordinator) applyRepair(qr *queryRuntime, p *pipeline, failed map[[2]int]bool, epoch uint64, snaps map[[2]int][]byte, skip uint64, keep bool) (repairOutcome, error) {
	workers := c.liveWorkers()
	if len(workers) == 0 {
		return repairOutcome{}, errNoLiveWorker
	}
	pl := p.placement().clone()
	dedupe := keep && deterministicRepair(qr.def, pl, failed, epoch, qr.ckpt.layoutFrom())
	restore := restoreSet(qr.def, pl, failed)
	pl.Version++
	if dedupe {
		restore = sortedInstances(failed)
	} else {
		pl.SinkGen++
	}
	for _, w := range workers {
		pl.Addrs[w.ID] = w.DataAddr
	}
	// Each lost instance goes to the live worker running fewest instances
	// of all queries; ties are broken from a place that depends on the
	// query, so that the repairs of several queries, which run at once,
	// do not all pick the same worker.
	workers = c.placeableWorkers()
	if len(workers) == 0 {
		return repairOutcome{}, errNoLiveWorker
	}
	all := c.InstancesPerWorker()
	load := map[string]int{}
	for _, w := range workers {
		load[w.ID] = all[w.ID]
	}
	from := int(crc32.ChecksumIEEE([]byte(qr.def.Name)) % uint32(len(workers)))
	for _, k := range restore {
		pl.Gens[k[0]][k[1]]++
		if !failed[k] {
			continue
		}
		if _, alive := load[pl.Hosts[k[0]][k[1]]]; alive {
			continue // a lost channel: restored where it ran
		}
		best := workers[from].ID
		for j := range workers {
			if w := workers[(from+j)%len(workers)]; load[w.ID] < load[best] {
				best = w.ID
			}
		}
		pl.Hosts[k[0]][k[1]] = best
		load[best]++
	}
	if !dedupe {
		qr.result.rollback(epoch, pl.SinkGen)
	}
	out, err := c.reconfigure(qr, p, pl, restore, epoch, snaps, skip, dedupe, nil)
	if dedupe {
		// The instances that kept running never stopped sending: the
		// first output timed is the first after the restore.
		qr.result.repairing()
	}
	return out, err
}

// deterministicRepair reports whether the failed instances can be
// restored alone, their consumers dropping what they send again
// (dedupe.go): fed the same messages after checkpoint epoch's barrier,
// an instance that reads one upstream instance sends the same output
// again, and one that reads several does when it takes them in the
// order its consumers' logs give — which needs those consumers, so none
// of them may be lost too. The sink must not be lost, and no rescale
// may have renumbered the instances since the checkpoint (layoutFrom is
// the newest checkpoint taken in another layout).
func deterministicRepair(q *planner.ContinuousQuery, pl placement, failed map[[2]int]bool, epoch, layoutFrom uint64) bool {
	if epoch == 0 || epoch <= layoutFrom || len(failed) == 0 {
		return false
	}
	consumer := stageConsumers(q)
	for k := range failed {
		st := q.Plan.Stages[k[0]]
		if st.Source != nil {
			return false
		}
		if inputWidth(st, pl) == 1 {
			continue
		}
		if cs := consumer[k[0]]; cs >= 0 {
			for i := range pl.width(cs) {
				if failed[[2]int{cs, i}] {
					return false
				}
			}
		}
	}
	return true
}

// stageConsumers is the stage each stage feeds (-1: the sink).
func stageConsumers(q *planner.ContinuousQuery) []int {
	consumer := make([]int, len(q.Plan.Stages))
	for i := range consumer {
		consumer[i] = -1
	}
	for _, st := range q.Plan.Stages {
		for _, side := range st.Sides {
			consumer[side.Stage] = st.ID
		}
	}
	return consumer
}

// sortedInstances lists a set of instances by stage, then index.
func sortedInstances(set map[[2]int]bool) [][2]int {
	out := make([][2]int, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i][0] != out[j][0] {
			return out[i][0] < out[j][0]
		}
		return out[i][1] < out[j][1]
	})
	return out
}

// repairOutcome is what a repair (or a rescale) did: the instances it
// restored, the messages the upstream instances replay, how many
// instances were restored from the copy upstream, and whether their
// consumers kept running.
type repairOutcome struct {
	restored             [][2]int
	replayed, fromCopies int
	kept                 bool
}

// reconfigure takes a query to placement pl on every host, restoring the
// instances in restore (and the sink) from checkpoint epoch's snapshots
// (snaps, in pl's numbering): prepare (stop what is restored, build the
// new incarnations), restore (the snapshots), resume (start them; every
// other instance's outlets to them replay what they kept after epoch's
// barrier). The caller rolled the result back, unless dedupe: then the
// consumers of the restored instances keep running — after an in-place
// rescale (step), with their inputs renumbered by it.
func (c *Coordinator) reconfigure(qr *queryRuntime, p *pipeline, pl placement, restore [][2]int, epoch uint64, snaps map[[2]int][]byte, skip uint64, dedupe bool, step *rescaleStep) (repairOutcome, error) {
	out := repairOutcome{restored: restore, kept: dedupe}
	var resume uint64
	if dedupe {
		resume = epoch
	} else {
		p.sinkFrom.Store(epoch)
	}
	if err := p.prepareRepair(pl, restore, skip, resume, step); err != nil {
		return out, err
	}
	plan, err := planner.EncodeQuery(qr.def)
	if err != nil {
		return out, err
	}
	hosts := pl.hostsOf(coordinatorHost)
	ctx, cancel := context.WithTimeout(context.Background(), deployTimeout)
	defer cancel()
	for _, w := range hosts {
		if err := c.reg.Call(ctx, w, reqRepair, repairRequest{Place: pl, Plan: plan, Restore: restore, Skip: skip, Resume: resume, Rescale: step}, nil); err != nil {
			return out, fmt.Errorf("preparing worker %s: %w", w, err)
		}
	}
	// The snapshots go to their workers (and are applied there) all at
	// once; the coordinator's own are applied meanwhile.
	var local []*instanceSnapshot
	type sentResult struct {
		fromCopy bool
		err      error
	}
	sent := make(chan sentResult, len(restore))
	sending := 0
	for _, k := range restore {
		data := snaps[k]
		if data == nil {
			continue // no checkpoint yet: a fresh instance, and everything is replayed
		}
		if h := pl.Hosts[k[0]][k[1]]; h != coordinatorHost {
			sending++
			go func() {
				fromCopy, err := c.restoreInstance(qr, h, pl, k, epoch, data)
				sent <- sentResult{fromCopy, err}
			}()
			continue
		}
		s, err := unmarshalInstanceSnapshot(data)
		if err != nil {
			return out, err
		}
		local = append(local, s)
	}
	err = p.restoreLocal(local)
	for range sending {
		r := <-sent
		if err == nil {
			err = r.err
		}
		if r.fromCopy {
			out.fromCopies++
		}
	}
	if err != nil {
		return out, err
	}
	rctx, rcancel := context.WithTimeout(context.Background(), deployTimeout)
	defer rcancel()
	var follow map[[2]int][]uint32
	if dedupe {
		if follow, err = c.collectLogs(rctx, qr, p, pl, restore, epoch); err != nil {
			return out, err
		}
	}
	encoded := map[string][]byte{}
	for k, log := range follow {
		encoded[fmt.Sprintf("%d.%d", k[0], k[1])] = encodeLog(log)
	}
	gone := c.goneWorkers()
	for _, w := range hosts {
		var n int
		if err := c.reg.Call(rctx, w, reqResume, resumeRequest{Run: pl.Run, Restore: restore, Epoch: epoch, KeepSink: dedupe, Follow: encoded, Gone: gone}, &n); err != nil {
			return out, fmt.Errorf("resuming worker %s: %w", w, err)
		}
		out.replayed += n
	}
	n, err := p.resumeRepair(rctx, restore, epoch, dedupe, follow, gone)
	out.replayed += n
	return out, err
}

// collectLogs asks the consumers of every restored instance with
// several inputs for its input log after checkpoint epoch (dedupe.go):
// the longest any of them holds, which covers all any of them received.
// The lost incarnations were stopped (prepareRepair); their channels are
// retired before the logs are read.
func (c *Coordinator) collectLogs(ctx context.Context, qr *queryRuntime, p *pipeline, pl placement, restore [][2]int, epoch uint64) (map[[2]int][]uint32, error) {
	follow := map[[2]int][]uint32{}
	for _, k := range restore {
		st := qr.def.Plan.Stages[k[0]]
		if inputWidth(st, pl) < 2 {
			continue
		}
		hosts := []string{coordinatorHost} // the sink's
		if cs := p.consumer[k[0]].stage; cs >= 0 {
			hosts = slices.Compact(slices.Sorted(slices.Values(pl.Hosts[cs])))
		}
		var best []uint32
		for _, h := range hosts {
			var log []uint32
			var err error
			if h == coordinatorHost {
				log, err = p.inputLog(ctx, k, epoch)
			} else {
				var data []byte
				if err = c.reg.Call(ctx, h, reqLog, logRequest{Run: pl.Run, Stage: k[0], Instance: k[1], Epoch: epoch}, &data); err == nil {
					log, err = decodeLog(data, maxLogSlots)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("reading the input log of stage %d instance %d on %s: %w", k[0], k[1], h, err)
			}
			if len(log) > len(best) {
				best = log
			}
		}
		follow[k] = best
	}
	return follow, nil
}

// inputWidth is the number of upstream instances a stage reads (1 for a
// source stage, fed by the coordinator).
func inputWidth(st *planner.Stage, pl placement) int {
	if len(st.Sides) == 0 {
		return 1
	}
	n := 0
	for _, side := range st.Sides {
		n += pl.width(side.Stage)
	}
	return n
}

// inputLog retires the channels from producer to its consumers in this
// process and returns the longest input log after checkpoint epoch they
// hold for it.
func (p *pipeline) inputLog(ctx context.Context, producer [2]int, epoch uint64) ([]uint32, error) {
	c := p.consumer[producer[0]]
	if c.stage < 0 {
		if p.result == nil {
			return nil, nil
		}
		p.retireChannel(channelPair{fromStage: producer[0], fromIdx: producer[1], toStage: -1})
		in := p.sinkInput(producer[1])
		in.mu.Lock()
		defer in.mu.Unlock()
		log, ok := in.seq.logAfter(epoch)
		if !ok {
			return nil, fmt.Errorf("the sink does not remember checkpoint %d", epoch)
		}
		return log, nil
	}
	type reply struct {
		log []uint32
		ok  bool
	}
	var best []uint32
	for _, in := range p.localInstances() {
		if in.stage != c.stage || !in.started {
			continue
		}
		p.retireChannel(channelPair{fromStage: producer[0], fromIdx: producer[1], toStage: c.stage, toIdx: in.idx, side: c.side})
		slot := in.sideBase[c.side] + producer[1]
		got := make(chan reply, 1)
		read := func() error {
			log, ok := in.seqs[slot].logAfter(epoch)
			got <- reply{log, ok}
			return nil
		}
		if err := (localOutlet{in}).send(ctx, message{ctl: read}); err != nil {
			return nil, err
		}
		select {
		case r := <-got:
			if !r.ok {
				return nil, fmt.Errorf("stage %d instance %d does not remember checkpoint %d", in.stage, in.idx, epoch)
			}
			if len(r.log) > len(best) {
				best = r.log
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-in.done:
			return nil, errConsumerGone
		}
	}
	return best, nil
}

// decodeFollow reads resumeRequest.Follow.
func decodeFollow(enc map[string][]byte) (map[[2]int][]uint32, error) {
	out := map[[2]int][]uint32{}
	for key, data := range enc {
		var k [2]int
		if _, err := fmt.Sscanf(key, "%d.%d", &k[0], &k[1]); err != nil {
			return nil, fmt.Errorf("malformed follow key %q", key)
		}
		log, err := decodeLog(data, maxLogSlots)
		if err != nil {
			return nil, err
		}
		out[k] = log
	}
	return out, nil
}

// sendRestore sends an instance's snapshot to the worker that restores
// it: over the data plane ("restore/<run>/<stage>.<instance>"), then a
// restore request that applies it; in parts that fit a control frame
// when the data plane fails.
func (c *Coordinator) sendRestore(w string, pl placement, k [2]int, data []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	err := uploadSnapshot(ctx, c.net, pl.Addrs[w], restoreChannel(pl.Run, k), data)
	cancel()
	if err == nil {
		if err = c.applyUploaded(w, pl, k); err == nil {
			return nil
		}
	}
	c.cfg.Logger.Warn().Err(err).Str("worker", w).Msg("restore over the data plane failed; sending the snapshot over the control plane")
	parts := snapshotParts(data)
	for i, part := range parts {
		req := restoreRequest{Run: pl.Run, Stage: k[0], Instance: k[1], Part: i, Parts: len(parts), Data: part}
		// Each part has a timeout of its own: a large state takes many.
		ctx, cancel := context.WithTimeout(context.Background(), deployTimeout)
		err := c.reg.Call(ctx, w, reqRestore, req, nil)
		cancel()
		if err != nil {
			return fmt.Errorf("restoring stage %d instance %d on worker %s: %w", k[0], k[1], w, err)
		}
	}
	return nil
}

// applyUploaded has worker w restore instance k from the snapshot sent
// to it on the instance's restore channel.
func (c *Coordinator) applyUploaded(w string, pl placement, k [2]int) error {
	ctx, cancel := context.WithTimeout(context.Background(), deployTimeout)
	defer cancel()
	return c.reg.Call(ctx, w, reqRestore, restoreRequest{Run: pl.Run, Stage: k[0], Instance: k[1]}, nil)
}

// restorePrefix starts the data-plane channels that carry a snapshot to
// the worker that restores it.
const restorePrefix = "restore/"

func restoreChannel(run string, k [2]int) string {
	return fmt.Sprintf("%s%s/%d.%d", restorePrefix, run, k[0], k[1])
}

// consumerLost handles an outlet's report that its consumer is gone: a
// dead worker is repaired at once (watchWorkers); a channel that broke
// while both ends live is repaired after a grace period, when no repair
// replaced its consumer meanwhile.
func (c *Coordinator) consumerLost(qr *queryRuntime, ch channelName) {
	time.Sleep(lostGrace)
	c.repairQuery(qr, fmt.Sprintf("lost the data channel %s", ch), []channelName{ch})
}

// lostGrace is how long a lost channel waits for its worker's death to
// be noticed (which repairs it with everything else lost there).
const lostGrace = 2 * time.Second

// prepareRepair is a host's first step of a repair: stop its instances
// the repair restores, take the new placement, and build the new
// incarnations of those it runs now (restored, then started by
// resumeRepair). An in-place rescale (step) also renumbers the inputs of
// the rescaled stage's consumers here, which keep running.
func (p *pipeline) prepareRepair(pl placement, restore [][2]int, skip, resume uint64, step *rescaleStep) error {
	var old []*instance
	restored := map[[2]int]bool{}
	for _, k := range restore {
		restored[k] = true
	}
	p.mu.Lock()
	for s, row := range p.stages {
		if len(row) == pl.width(s) {
			continue
		}
		// rescaled: the instances it does not restore keep their index
		next := make([]*instance, pl.width(s))
		for i, in := range row {
			switch {
			case in == nil:
			case i < len(next) && !restored[[2]int{s, i}]:
				next[i] = in
			default:
				old = append(old, in)
			}
		}
		p.stages[s] = next
	}
	for _, k := range restore {
		if in := p.stages[k[0]][k[1]]; in != nil {
			old = append(old, in)
			p.stages[k[0]][k[1]] = nil
		}
	}
	p.place = pl
	// Flushes waiting now counted barriers from the old last stage: they
	// start over, counting the new one's.
	p.sinkWidth.Store(int64(pl.width(len(pl.Hosts) - 1)))
	p.abandonWaitsLocked()
	p.mu.Unlock()
	p.sinkGen.Store(int64(pl.SinkGen))
	for _, in := range old {
		in.stop()
	}
	for _, k := range restore {
		if pl.Hosts[k[0]][k[1]] != p.host {
			continue
		}
		in, err := p.newInstance(k[0], k[1], pl.gen(k[0], k[1]))
		if err != nil {
			return err
		}
		in.setResume(skip, resume)
		p.mu.Lock()
		p.stages[k[0]][k[1]] = in
		p.mu.Unlock()
	}
	if step != nil {
		return p.rescaleInputs(*step, resume, restored)
	}
	return nil
}

// resumeRepair is a host's last step: start the restored instances it
// runs and point the outlets of its other instances that feed restored
// ones (or the sink) at the new incarnations, replaying what they sent
// after checkpoint epoch's barrier. The replays run on their own; it
// returns how many messages they send.
func (p *pipeline) resumeRepair(ctx context.Context, restore [][2]int, epoch uint64, keepSink bool, follow map[[2]int][]uint32, gone []string) (int, error) {
	// The sources' replay of an earlier repair stops; this one's carries
	// it on (replay.go).
	prior := p.takeSourceReplay()
	defer func() {
		if prior != nil { // not carried on: this repair failed first
			p.putBackSourceReplay(prior)
		}
	}()
	for _, in := range p.localInstances() {
		if !in.started {
			in.keptFrom = epoch // all it sends comes after epoch's barrier
			for i := range in.seqs {
				in.seqs[i].reset(epoch)
			}
			if log := follow[[2]int{in.stage, in.idx}]; len(log) > 0 {
				in.follow, in.pending = log, make([][]message, len(in.seqs))
			}
		}
	}
	if err := p.start(ctx); err != nil {
		return 0, err
	}
	set := map[[2]int]bool{}
	for _, k := range restore {
		set[k] = true
	}
	pl := p.placement()
	n := 0
	var fromSources []*reroute
	for _, in := range p.localInstances() {
		if set[[2]int{in.stage, in.idx}] {
			continue
		}
		outs := in.outlets()
		if c := p.consumer[in.stage]; c.stage >= 0 && len(outs) != pl.width(c.stage) {
			// its consumer stage was rescaled
			rs, k, err := p.resplit(ctx, in, pl, epoch)
			if err != nil {
				return n, err
			}
			n += k
			if p.query.Plan.Stages[in.stage].Source != nil {
				fromSources = append(fromSources, rs...)
			} else {
				go p.replay(pl, epoch, rs)
			}
			continue
		}
		for _, o := range outs {
			b, ok := o.(*backupOutlet)
			if !ok {
				continue
			}
			ch := b.target()
			if ch.toStage < 0 {
				if keepSink {
					continue
				}
				ch.gen = pl.SinkGen
			} else if set[[2]int{ch.toStage, ch.toIdx}] {
				ch.gen = pl.gen(ch.toStage, ch.toIdx)
			} else {
				continue
			}
			k, id, err := b.detach(ch, epoch, gone)
			if err != nil {
				return n, err
			}
			n += k
			r := &reroute{in: in, b: b, ch: ch, id: id}
			if p.query.Plan.Stages[in.stage].Source != nil {
				fromSources = append(fromSources, r)
				continue
			}
			go p.replay(pl, epoch, []*reroute{r})
		}
	}
	if len(fromSources) > 0 || prior != nil {
		p.replaySources(pl, epoch, fromSources, prior)
		prior = nil
	}
	return n, nil
}

// keptLocal is the output this host's instances keep for replay: bytes
// of batches and messages.
func (p *pipeline) keptLocal() (bytes, msgs int64) {
	for _, in := range p.localInstances() {
		if !in.wired.Load() {
			continue
		}
		for _, o := range in.outlets() {
			if b, ok := o.(*backupOutlet); ok {
				bytes += b.bytes.Load()
				msgs += b.count.Load()
			}
		}
	}
	return bytes, msgs
}

// trimKept drops the output kept for replay that checkpoint epoch
// covers.
func (p *pipeline) trimKept(epoch uint64) {
	for _, in := range p.localInstances() {
		if !in.wired.Load() {
			continue
		}
		for _, o := range in.outlets() {
			if b, ok := o.(*backupOutlet); ok {
				b.trim(epoch)
			}
		}
	}
}

// keepRecoveryRecords bounds SHOW RECOVERIES.
const keepRecoveryRecords = 100

func (c *Coordinator) addRecovery(rec recoveryRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addRecoveryLocked(rec)
}

func (c *Coordinator) addRecoveryLocked(rec recoveryRecord) {
	c.recoveries = lastOf(append(c.recoveries, rec), keepRecoveryRecords)
}

// recoveryRows answers SHOW RECOVERIES.
func (c *Coordinator) recoveryRows() ([]Column, [][]any) {
	cols := []Column{{"query", planner.TypeText}, {"reason", planner.TypeText}, {"detected", planner.TypeTimestamp}, {"restore_ms", planner.TypeDouble},
		{"first_output_ms", planner.TypeDouble}, {"caught_up_ms", planner.TypeDouble}, {"checkpoint_epoch", planner.TypeBigInt}, {"moved", planner.TypeBigInt}, {"instances", planner.TypeBigInt},
		{"replayed", planner.TypeBigInt}, {"status", planner.TypeText},
		{"consumers", planner.TypeText}, {"sink_duplicates_dropped", planner.TypeBigInt}, {"restored_from_upstream", planner.TypeBigInt}}
	c.mu.Lock()
	recs := append([]recoveryRecord(nil), c.recoveries...)
	// Then the repairs under way: their times so far are NULL.
	var active []recoveryRecord
	for qr, r := range c.repairing {
		if c.queries[qr.def.Name] == qr {
			active = append(active, *r)
		}
	}
	c.mu.Unlock()
	slices.SortFunc(active, func(a, b recoveryRecord) int { return a.Detected.Compare(b.Detected) })
	var rows [][]any
	for i, r := range append(recs, active...) {
		var restored, first, caught any = ms(r.Restored), nil, ms(r.Caught)
		if r.First > 0 {
			first = ms(r.First)
		}
		if i >= len(recs) {
			caught = nil
			if r.Restored == 0 {
				restored = nil
			}
		}
		consumers := "restored"
		if r.Kept {
			consumers = "kept running"
		}
		rows = append(rows, []any{r.Query, r.Reason, r.Detected.UnixMicro(), restored, first, caught, int64(r.Epoch),
			int64(r.Moved), int64(r.Instances), int64(r.Replayed), r.Status, consumers, r.SinkDuplicates, int64(r.FromCopies)})
	}
	return cols, rows
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
