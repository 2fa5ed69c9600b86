package cluster

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/spatedb/spate/exec"
	"github.com/spatedb/spate/planner"
)

// Recovery of a query that lost instances (a worker died, a channel to
// it broke): the query goes back to its newest complete checkpoint as a
// whole — every instance restored from its snapshot on a live worker,
// the result store rolled back to what that checkpoint covers — and the
// sources replay, from the query's feed log, everything fed after the
// checkpoint's barriers. Other queries keep running; ingestion into the
// query's sources waits while it recovers. Subscribers and reading
// queries see no step back: during the replay nothing reaches them, and
// at the end they get the difference between what they had seen and the
// recovered result.

// feedLog records what a query's source stages were fed since its newest
// complete checkpoint, so a recovery can replay it. Feeding and recovery
// take mu, so nothing is fed while a recovery replaces the pipeline.
type feedLog struct {
	mu sync.Mutex
	// protected by mu
	pipe    *pipeline // the pipeline feeds go to
	entries []fedMessage
	next    uint64                    // position of the next entry
	barrier map[uint64]map[int]uint64 // epoch → source stage → position of its barrier
	bytes   map[int]int64             // batch bytes held, per source stage
}

type fedMessage struct {
	pos uint64
	src int
	m   message
}

func newFeedLog(p *pipeline) *feedLog {
	return &feedLog{pipe: p, barrier: map[uint64]map[int]uint64{}, bytes: map[int]int64{}}
}

// send records m and delivers it to source stage src of the current
// pipeline. A delivery that fails because a recovery is replacing the
// pipeline counts as done: the recovery replays the record.
func (f *feedLog) send(src int, m message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	pos := f.next
	f.next++
	if m.ckpt != 0 {
		if f.barrier[m.ckpt] == nil {
			f.barrier[m.ckpt] = map[int]uint64{}
		}
		f.barrier[m.ckpt][src] = pos
	} else {
		if m.rec != nil {
			m.rec.Retain()
			f.bytes[src] += exec.RecordBytes(m.rec)
		}
		f.entries = append(f.entries, fedMessage{pos: pos, src: src, m: m})
	}
	p := f.pipe
	if p.failure() != nil {
		if m.rec != nil {
			m.rec.Release() // the log keeps its own reference
		}
		return nil // failed: a recovery replays the log (or the query stays failed)
	}
	if err := p.ingestDirect(src, m); err != nil {
		if p.replaced() || p.failure() != nil {
			return nil
		}
		return err
	}
	return nil
}

// commit drops what checkpoint epoch covers.
func (f *feedLog) commit(epoch uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pos := f.barrier[epoch]
	if pos == nil {
		return
	}
	keep := f.entries[:0]
	for _, e := range f.entries {
		if at, ok := pos[e.src]; ok && e.pos < at {
			if e.m.rec != nil {
				f.bytes[e.src] -= exec.RecordBytes(e.m.rec)
				e.m.rec.Release()
			}
			continue
		}
		keep = append(keep, e)
	}
	for i := len(keep); i < len(f.entries); i++ {
		f.entries[i] = fedMessage{}
	}
	f.entries = keep
	for e := range f.barrier {
		if e < epoch {
			delete(f.barrier, e)
		}
	}
}

// replayLocked feeds p everything after checkpoint epoch's barriers (all
// of it for epoch 0); called with mu held.
func (f *feedLog) replayLocked(p *pipeline, epoch uint64) (int, error) {
	pos := f.barrier[epoch]
	n := 0
	prev := -1
	for _, e := range f.entries {
		if at, ok := pos[e.src]; ok && e.pos < at {
			continue
		}
		// A source's entries reach the results before another source's
		// next ones are replayed, as when they were first fed (each
		// statement's rows were through before it was acknowledged): a
		// stream's rows must not overtake a table's in a lookup join.
		if prev >= 0 && e.src != prev {
			if err := p.flush(context.Background(), prev); err != nil {
				return n, err
			}
		}
		prev = e.src
		m := e.m
		if m.rec != nil {
			m.rec.Retain()
		}
		if err := p.ingestDirect(e.src, m); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// positions describes where epoch's barriers entered the source stages:
// "stage 0 at 1234, stage 3 at 1240" (positions in the query's feed).
func (f *feedLog) positions(epoch uint64) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var srcs []int
	for s := range f.barrier[epoch] {
		srcs = append(srcs, s)
	}
	sort.Ints(srcs)
	var parts []string
	for _, s := range srcs {
		parts = append(parts, fmt.Sprintf("stage %d at %d", s, f.barrier[epoch][s]))
	}
	return strings.Join(parts, ", ")
}

// heldBytes is the batch bytes kept for source stage src.
func (f *feedLog) heldBytes(src int) int64 {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bytes[src]
}

func (f *feedLog) release() {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.entries {
		if e.m.rec != nil {
			e.m.rec.Release()
		}
	}
	f.entries = nil
}

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
// from: what it sends next belongs to the following epoch.
func (r *resultStore) sawBarrier(from int, epoch uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[int]uint64{}
	}
	r.seen[from] = max(r.seen[from], epoch)
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

// rollback takes the result back to checkpoint epoch and starts holding
// back deliveries until finishRecovery.
func (r *resultStore) rollback(epoch uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	view := r.recovering
	if view == nil {
		view = &recoveryView{epoch: epoch, rows: map[string]int{}, keys: map[string]kept{}}
		r.recovering = view
	}
	if !r.updating {
		keep, keepMax, keepTags := r.batches[:0], r.maxTime[:0], r.tags[:0]
		for i, b := range r.batches {
			if r.tags[i] <= epoch {
				keep = append(keep, b)
				keepTags = append(keepTags, r.tags[i])
				if r.retention >= 0 {
					keepMax = append(keepMax, r.maxTime[i])
				}
				continue
			}
			for _, row := range batchRows(b) {
				view.rows[r.rowKey(row)]++
			}
			r.nrows -= b.NumRows()
			r.emitted -= b.NumRows()
			b.Release()
		}
		for i := len(keep); i < len(r.batches); i++ {
			r.batches[i] = nil
		}
		r.batches, r.tags = keep, keepTags
		if r.retention >= 0 {
			r.maxTime = keepMax
		}
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
		for i, b := range r.batches {
			if r.tags[i] <= view.epoch {
				continue
			}
			var fresh [][]any
			for _, row := range batchRows(b) {
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
	Epoch     uint64        // checkpoint restored (0: none, replayed from the start)
	Instances int           // instances restored on workers
	Replayed  int           // messages replayed into the sources
	Status    string
}

// recoverQuery brings a query back after its pipeline failed lost
// instances. It runs at most once per pipeline: later triggers for the
// same failure find the pipeline replaced.
func (c *Coordinator) recoverQuery(qr *queryRuntime, failed *pipeline, reason string) {
	qr.recoverMu.Lock()
	defer qr.recoverMu.Unlock()
	old := qr.pipeline()
	if old != failed || old.replaced() || qr.feeds == nil {
		return
	}
	c.mu.Lock()
	current := c.queries[qr.def.Name] == qr && !c.closed && !c.stopping.Load()
	c.mu.Unlock()
	if !current {
		return // dropped meanwhile
	}
	qr.recovering.Store(true)
	rec := recoveryRecord{Query: qr.def.Name, Reason: reason, Detected: time.Now()}
	log := c.cfg.Logger.With().Str("query", qr.def.Name).Logger()
	log.Warn().Str("reason", reason).Msg("recovering the continuous query")
	fail := func(err error) {
		rec.Status = "failed: " + err.Error()
		c.addRecovery(rec)
		qr.recovering.Store(false)
		log.Error().Err(err).Msg("recovery failed")
		qr.result.fail(errorf("58000", "recovery after %s failed: %v", reason, err))
	}
	// Stop the old pipeline everywhere; feeds blocked on it return.
	old.markReplaced()
	old.cancel()
	qr.feeds.mu.Lock()
	defer qr.feeds.mu.Unlock()
	c.undeploy(old, nil)

	epoch, snaps := qr.ckpt.restorePoint()
	rec.Epoch = epoch
	qr.result.rollback(epoch)
	qr.ckpt.abortPending()
	// The registry may not know yet of every dead worker: a deploy that
	// fails is tried again on the workers alive then.
	var p *pipeline
	var err error
	for attempt := 1; ; attempt++ {
		if p, err = c.deployRestored(qr, snaps); err == nil || attempt == 5 {
			break
		}
		log.Warn().Err(err).Int("attempt", attempt).Msg("redeploying the recovering query")
		time.Sleep(time.Second)
	}
	if err != nil {
		fail(err)
		return
	}
	for _, row := range p.place.Hosts {
		for _, h := range row {
			if h != coordinatorHost {
				rec.Instances++
			}
		}
	}
	rec.Restored = time.Since(rec.Detected)
	n, err := qr.feeds.replayLocked(p, epoch)
	rec.Replayed = n
	if err != nil {
		fail(err)
		return
	}
	c.mu.Lock()
	gone := c.closed || c.stopping.Load() || c.queries[qr.def.Name] != qr
	if !gone {
		qr.feeds.pipe = p
		qr.setPipeline(p)
	}
	c.mu.Unlock()
	if gone { // the server went down, or the query was dropped, meanwhile
		c.undeploy(p, nil)
		return
	}
	go func() {
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
		if err == nil {
			err = qr.result.finishRecovery()
		}
		rec.Caught = time.Since(rec.Detected)
		qr.recovering.Store(false)
		rec.Status = "recovered"
		if err != nil {
			rec.Status = "failed: " + err.Error()
		}
		c.addRecovery(rec)
		log.Info().Uint64("epoch", epoch).Int("replayed", n).Dur("restored_in", rec.Restored).Dur("caught_up_in", rec.Caught).Msg("continuous query recovered")
	}()
}

// keepRecoveryRecords bounds SHOW RECOVERIES.
const keepRecoveryRecords = 100

func (c *Coordinator) addRecovery(rec recoveryRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recoveries = append(c.recoveries, rec)
	if len(c.recoveries) > keepRecoveryRecords {
		c.recoveries = c.recoveries[len(c.recoveries)-keepRecoveryRecords:]
	}
}

// recoveryRows answers SHOW RECOVERIES.
func (c *Coordinator) recoveryRows() ([]Column, [][]any) {
	cols := []Column{{"query", planner.TypeText}, {"reason", planner.TypeText}, {"detected", planner.TypeTimestamp}, {"restore_ms", planner.TypeDouble},
		{"caught_up_ms", planner.TypeDouble}, {"checkpoint_epoch", planner.TypeBigInt}, {"instances", planner.TypeBigInt}, {"replayed", planner.TypeBigInt}, {"status", planner.TypeText}}
	c.mu.Lock()
	recs := append([]recoveryRecord(nil), c.recoveries...)
	c.mu.Unlock()
	var rows [][]any
	for _, r := range recs {
		rows = append(rows, []any{r.Query, r.Reason, r.Detected.UnixMicro(), ms(r.Restored), ms(r.Caught), int64(r.Epoch),
			int64(r.Instances), int64(r.Replayed), r.Status})
	}
	return cols, rows
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
