package cluster

import (
	"context"
	"encoding/binary"
	"io"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/spatedb/spate/exec"
	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/planner"
)

// resultStore holds a continuous query's result and feeds its subscribers.
// An append-only (windowed) result keeps every emitted batch; an updating
// result applies the changelog to the current rows, keyed by the group key.
// It is safe for concurrent use: the last stage's instances apply batches
// while sessions read snapshots and subscribe.
type resultStore struct {
	name     string           // the query's
	cols     []planner.Column // without "op"
	schema   *arrow.Schema    // of stored rows, without "op"
	updating bool
	key      []int // identifying columns of an updating result; nil = whole row
	// waits is the time the result waited for subscribers to read.
	waits subscriberWaits

	mu sync.Mutex
	// protected by mu
	batches []storedBatch    // append-only results, oldest first
	nextSeq uint64           // storedBatch.seq of the next batch
	rows    map[string][]any // updating results: key → row
	counts  map[string]int   // updating results without a key: row multiplicity
	nrows   int64            // rows in the result now
	emitted int64            // rows (or changelog rows) emitted in total
	subs    map[*subscriber]struct{}
	err     error // set when the pipeline failed
	closed  bool
	closeBy error // why it closed: what a subscription ends with
	// readers are continuous queries reading this one; they receive every
	// emitted batch and the result's watermark.
	readers   []sourceReader
	wms       []int64 // watermark of each last-stage instance
	watermark int64   // minimum of wms: no later row has event time below it
	// retention (µs, ≥ 0) drops stored append-only rows whose event time
	// is that far behind the watermark; -1 keeps everything.
	retention int64
	timeCol   int   // event-time column of stored rows (with retention)
	timeUnit  int64 // µs per unit of timeCol
	// Recovery (recovery.go): with tracking on, every change is tagged
	// with the checkpoint epoch that will include it, so the store can go
	// back to a complete checkpoint.
	tracking   bool
	undo       []undoEntry    // updating: how to take back each change
	seen       map[int]uint64 // last checkpoint barrier from each producer
	seenFloor  uint64         // the epoch rolled back to: a producer not in seen (new since a rescale) is past it
	committed  uint64         // newest complete checkpoint epoch
	recovering *recoveryView  // set while a recovery replays
	gen        int            // the sink's incarnation: a repair raises it
	// firstOutput is when the first batch arrived after the last
	// rollback (SHOW RECOVERIES).
	firstOutput time.Time
	// align, during a restart point's epoch, holds back what last-stage
	// instances send after its barrier until every one delivered it;
	// then the reading queries' barriers go in (restart.go). aligned is
	// the watermark the result had then, by epoch.
	align   *sinkAlign
	aligned map[uint64]int64
}

// storedBatch is a batch of an append-only result.
type storedBatch struct {
	rec     arrow.RecordBatch
	maxTime int64  // largest event time (µs), with retention
	tag     uint64 // with tracking, the checkpoint epoch that includes it
	seq     uint64 // the order it came in (a merged batch: its last part's)
	// segment is the restart-point segment that holds it (Key "": none
	// yet), see resultCut.
	segment segmentRef
}

// sourceReader is a source stage of a pipeline that reads a relation.
type sourceReader struct {
	q     *queryRuntime
	stage int
}

// feed sends rows (the relation's full schema, owned by the caller) and
// optionally a watermark to the reader's source stage.
func (sr sourceReader) feed(rec arrow.RecordBatch, wm int64, hasWM bool) error {
	p := sr.q.pipeline()
	if p.failure() != nil {
		return nil
	}
	var proj arrow.RecordBatch
	if rec != nil {
		proj = projectColumns(rec, p.query.Plan.Stages[sr.stage], p.inputSchemas[sr.stage])
		defer proj.Release()
	}
	err := p.ingest(sr.stage, proj, wm, hasWM)
	if err != nil && p.failure() != nil {
		return nil // the reader failed on its own; its status says why
	}
	return err
}

func newResultStore(q *planner.ContinuousQuery) *resultStore {
	r := &resultStore{
		name: q.Name, cols: q.Columns, schema: ArrowSchema(q.Columns), updating: q.Updating, key: q.Key,
		rows: map[string][]any{}, counts: map[string]int{}, subs: map[*subscriber]struct{}{},
		watermark: math.MinInt64, retention: -1, timeCol: q.EventTime, timeUnit: q.TimeUnit,
	}
	if v, ok := q.Options["retention"]; ok && q.EventTime >= 0 {
		if d, err := parser.ParseInterval(v); err == nil {
			r.retention = d
		}
	}
	return r
}

// compactTailBatches and compactRows bound the number of small batches an
// append-only result keeps: results often come in batches of a few rows,
// and millions of tiny Arrow batches cost far more memory and GC work than
// their rows.
const (
	compactTailBatches = 256
	compactRows        = 64 << 10
)

// compactTail concatenates the newest small batches into one once there
// are compactTailBatches of them; called with mu held. With tracking,
// only batches of complete checkpoints are merged (a recovery may take
// the others back one by one), and only batches of one epoch: a restart
// point takes the result as of an epoch by the batches' tags, and a
// merged batch tagged with a later epoch would leave out older rows.
func (r *resultStore) compactTail() error {
	n := len(r.batches)
	if r.tracking {
		for n > 0 && r.batches[n-1].tag > r.committed {
			n--
		}
	}
	start := n
	var rows int64
	for start > 0 && rows+r.batches[start-1].rec.NumRows() <= compactRows && n-start < compactTailBatches &&
		r.batches[start-1].segment == r.batches[n-1].segment &&
		(!r.tracking || r.batches[start-1].tag <= r.committed && r.batches[start-1].tag == r.batches[n-1].tag) {
		start--
		rows += r.batches[start].rec.NumRows()
	}
	if n-start < compactTailBatches {
		return nil
	}
	tail := r.batches[start:n]
	merged := tail[len(tail)-1]
	for _, b := range tail {
		merged.maxTime = max(merged.maxTime, b.maxTime)
	}
	cols := make([]arrow.Array, merged.rec.NumCols())
	for c := range cols {
		parts := make([]arrow.Array, len(tail))
		for i, b := range tail {
			parts[i] = b.rec.Column(c)
		}
		m, err := array.Concatenate(parts, memoryAllocator)
		if err != nil {
			for _, m := range cols[:c] {
				m.Release()
			}
			return err
		}
		cols[c] = m
	}
	merged.rec = array.NewRecordBatch(merged.rec.Schema(), cols, rows)
	for _, c := range cols {
		c.Release()
	}
	for _, b := range tail {
		b.rec.Release()
	}
	rest := append([]storedBatch{merged}, r.batches[n:]...)
	r.batches = append(r.batches[:start], rest...)
	return nil
}

// trim drops stored batches entirely behind the retention horizon; called
// with mu held.
func (r *resultStore) trim() {
	if r.retention < 0 || r.watermark == math.MinInt64 {
		return
	}
	cut := r.watermark - r.retention
	r.keepBatches(func(b storedBatch) bool {
		return b.maxTime >= cut || r.tracking && b.tag > r.committed
	})
}

// keepBatches keeps the stored batches keep says to and releases the
// others; called with mu held.
func (r *resultStore) keepBatches(keep func(storedBatch) bool) {
	kept := r.batches[:0]
	for _, b := range r.batches {
		if keep(b) {
			kept = append(kept, b)
			continue
		}
		r.nrows -= b.rec.NumRows()
		b.rec.Release()
	}
	clear(r.batches[len(kept):])
	r.batches = kept
}

// apply adds one emitted batch (valid only during the call). It first
// waits, honouring ctx, until every subscriber has room for it: a
// SUBSCRIBE client that stops reading back-pressures the query, and
// through it the sources, instead of growing a queue.
func (r *resultStore) apply(ctx context.Context, from, gen int, rec arrow.RecordBatch) error {
	r.mu.Lock()
	subs := make([]*subscriber, 0, len(r.subs))
	for s := range r.subs {
		subs = append(subs, s)
	}
	r.mu.Unlock()
	for _, s := range subs {
		if err := s.waitRoom(ctx); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if gen != r.gen {
		return nil // sent to the sink before a repair rolled it back
	}
	for r.align != nil && r.align.got[from] {
		done := r.align.done
		r.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			r.mu.Lock()
			return ctx.Err()
		}
		r.mu.Lock()
		if gen != r.gen {
			return nil
		}
	}
	if r.firstOutput.IsZero() {
		r.firstOutput = time.Now()
	}
	n := rec.NumRows()
	r.emitted += n
	tag := max(r.seen[from], r.seenFloor) + 1
	if !r.updating {
		rec.Retain()
		b := storedBatch{rec: rec, maxTime: math.MinInt64, seq: r.nextSeq}
		r.nextSeq++
		if r.tracking {
			b.tag = tag
		}
		if r.retention >= 0 {
			col := rec.Column(r.timeCol)
			for i, v := range exec.Int64s(col) {
				if col.IsValid(i) {
					b.maxTime = max(b.maxTime, v*r.timeUnit)
				}
			}
		}
		r.batches = append(r.batches, b)
		r.nrows += n
		if err := r.compactTail(); err != nil {
			return err
		}
	} else {
		ops := rec.Column(0).(*array.String)
		for i := 0; i < int(n); i++ {
			row := make([]any, len(r.cols))
			for c := range r.cols {
				row[c] = valueAt(rec.Column(c+1), i)
			}
			k := r.rowKey(row)
			if r.tracking {
				r.undo = append(r.undo, undoEntry{tag: tag, key: k, row: r.rows[k], count: r.counts[k]})
			}
			if ops.Value(i) == "-" {
				if r.key == nil {
					if r.counts[k]--; r.counts[k] <= 0 {
						delete(r.counts, k)
						delete(r.rows, k)
					}
				} else {
					delete(r.rows, k)
				}
				continue
			}
			r.rows[k] = row
			if r.key == nil {
				r.counts[k]++
			}
		}
		r.nrows = int64(len(r.rows))
		if r.key == nil {
			r.nrows = 0
			for _, c := range r.counts {
				r.nrows += int64(c)
			}
		}
	}
	if r.recovering != nil {
		return nil // subscribers and readers get the difference at the end
	}
	return r.deliverLocked(rec)
}

// deliverLocked passes an applied batch to subscribers and reading
// queries; called with mu held.
func (r *resultStore) deliverLocked(rec arrow.RecordBatch) error {
	for s := range r.subs {
		s.offer(rec)
	}
	for _, rd := range r.readers {
		if err := rd.feed(rec, 0, false); err != nil {
			return err
		}
	}
	return nil
}

// advance records the watermark of last-stage instance idx (of n) and
// passes the result's watermark on to reading queries when it rises. It
// is the minimum over every instance, idle ones too: they all read the
// same relations (see instance.watermark), so an idle one's watermark
// is where it will resume.
func (r *resultStore) advance(idx, n int, wm int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.align != nil && r.align.got[idx] {
		done := r.align.done
		r.mu.Unlock()
		<-done
		r.mu.Lock()
	}
	for len(r.wms) < n {
		r.wms = append(r.wms, math.MinInt64)
	}
	r.wms = r.wms[:n] // a rescale that merged instances may have left more
	if idx >= n {
		return // from an instance a rescale took away
	}
	r.wms[idx] = max(r.wms[idx], wm)
	low := slices.Min(r.wms)
	if low <= r.watermark {
		return
	}
	r.watermark = low
	r.trim()
	if r.recovering != nil {
		return // readers get it after the rows held back (finishRecovery)
	}
	for _, rd := range r.readers {
		_ = rd.feed(nil, low, true)
	}
}

// addReader registers a query reading this result: an updating result
// first sends its current rows as "+" changes, then every change.
func (r *resultStore) addReader(rd sourceReader) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rd.q.restored {
		// Resumed from a restart point: its state has what it had seen.
		r.readers = append(r.readers, rd)
		return nil
	}
	initial, err := r.currentAsInsertsLocked()
	if err != nil {
		return err
	}
	for i, b := range initial {
		err := rd.feed(b, 0, false)
		b.Release()
		if err != nil {
			releaseBatches(initial[i+1:])
			return err
		}
	}
	if r.watermark != math.MinInt64 {
		_ = rd.feed(nil, r.watermark, true)
	}
	r.readers = append(r.readers, rd)
	return nil
}

// removeReader unregisters every source stage of query q.
func (r *resultStore) removeReader(q *queryRuntime) {
	r.mu.Lock()
	defer r.mu.Unlock()
	kept := r.readers[:0]
	for _, rd := range r.readers {
		if rd.q != q {
			kept = append(kept, rd)
		}
	}
	r.readers = kept
}

func (r *resultStore) rowKey(row []any) string {
	var b []byte
	if r.key == nil {
		for _, v := range row {
			b = appendKey(b, v)
		}
		return string(b)
	}
	for _, c := range r.key {
		b = appendKey(b, row[c])
	}
	return string(b)
}

// appendKey encodes a value unambiguously for use in a map key.
func appendKey(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, 0)
	case bool:
		if x {
			return append(b, 1, 1)
		}
		return append(b, 1, 0)
	case int64:
		b = append(b, 2)
		return binary.BigEndian.AppendUint64(b, uint64(x))
	case float64:
		b = append(b, 3)
		return binary.BigEndian.AppendUint64(b, math.Float64bits(x))
	case string:
		b = append(b, 4)
		b = binary.AppendUvarint(b, uint64(len(x)))
		return append(b, x...)
	}
	return b
}

// snapshot returns the current result as batches the caller releases.
func (r *resultStore) snapshot() ([]arrow.RecordBatch, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshotLocked()
}

// expandRows lists an updating result's rows in key order, each as many
// times as it counts when the result has no key.
func (r *resultStore) expandRows(rows map[string][]any, counts map[string]int) [][]any {
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out [][]any
	for _, k := range keys {
		n := 1
		if r.key == nil {
			n = counts[k]
		}
		for range n {
			out = append(out, rows[k])
		}
	}
	return out
}

func (r *resultStore) snapshotLocked() ([]arrow.RecordBatch, error) {
	if !r.updating {
		out := make([]arrow.RecordBatch, len(r.batches))
		for i, b := range r.batches {
			b.rec.Retain()
			out[i] = b.rec
		}
		return out, nil
	}
	rows := r.expandRows(r.rows, r.counts)
	if len(rows) == 0 {
		return nil, nil
	}
	rec, err := exec.RecordFromValues(r.schema, rows)
	if err != nil {
		return nil, err
	}
	return []arrow.RecordBatch{rec}, nil
}

// subscribe registers a subscriber. For an updating result the current
// rows come first, as "+" changes.
func (r *resultStore) subscribe() (*subscriber, error) {
	s := &subscriber{store: r, signal: make(chan struct{}, 1), room: make(chan struct{})}
	// Snapshot and registration under one lock, so no change falls between.
	r.mu.Lock()
	defer r.mu.Unlock()
	initial, err := r.currentAsInsertsLocked()
	if err != nil {
		return nil, err
	}
	s.queue = initial
	if r.err != nil {
		s.err = queryFailedError(r.name, r.err)
	}
	if r.closed {
		s.err = r.closeBy
	}
	r.subs[s] = struct{}{}
	return s, nil
}

// currentAsInsertsLocked returns an updating result's current rows as "+"
// changes (nothing for an append-only result), for a subscriber or a
// reading query that starts now. Called with mu held; the caller releases
// the batches.
func (r *resultStore) currentAsInsertsLocked() ([]arrow.RecordBatch, error) {
	if !r.updating {
		return nil, nil
	}
	snap, err := r.snapshotLocked()
	if err != nil {
		return nil, err
	}
	var out []arrow.RecordBatch
	for i, b := range snap {
		withOp, err := addOpColumn(b, "+")
		b.Release()
		if err != nil {
			releaseBatches(snap[i+1:])
			releaseBatches(out)
			return nil, err
		}
		out = append(out, withOp)
	}
	return out, nil
}

func releaseBatches(bs []arrow.RecordBatch) {
	for _, b := range bs {
		if b != nil {
			b.Release()
		}
	}
}

// addOpColumn prefixes a batch with an "op" column holding op.
func addOpColumn(rec arrow.RecordBatch, op string) (arrow.RecordBatch, error) {
	ops := make([]string, rec.NumRows())
	for i := range ops {
		ops[i] = op
	}
	return withOps(rec, ops), nil
}

// withOps prefixes a batch with an "op" column holding ops (one per row).
// The caller releases the result.
func withOps(rec arrow.RecordBatch, ops []string) arrow.RecordBatch {
	b := array.NewStringBuilder(memoryAllocator)
	defer b.Release()
	b.AppendValues(ops, nil)
	opCol := b.NewArray()
	defer opCol.Release()
	fields := append([]arrow.Field{{Name: "op", Type: arrow.BinaryTypes.String}}, rec.Schema().Fields()...)
	cols := append([]arrow.Array{opCol}, rec.Columns()...)
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows())
}

// fail ends every subscription with err.
func (r *resultStore) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
	for s := range r.subs {
		s.finish(queryFailedError(r.name, err))
	}
}

// failure is the error the query failed with (nil while it runs).
func (r *resultStore) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// close ends every subscription with why (the query was dropped, the
// server stops) and releases the stored batches. Idempotent.
func (r *resultStore) close(why error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed, r.closeBy = true, why
	for s := range r.subs {
		s.finish(why)
	}
	for _, b := range r.batches {
		b.rec.Release()
	}
	r.batches = nil
	r.rows = nil
}

// subscribers is the number of open SUBSCRIBEs.
func (r *resultStore) subscribers() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int64(len(r.subs))
}

// counters reports the rows in the result, the rows emitted in total, the
// result's watermark and the pipeline's failure, if any.
func (r *resultStore) counters() (rows, emitted, watermark int64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nrows, r.emitted, r.watermark, r.err
}

// maxSubscriberBacklog and maxSubscriberBytes bound what is queued for a
// subscriber that does not read: apply waits for room (back-pressure), so
// the queue exceeds them by at most one batch per last-stage instance.
const (
	maxSubscriberBacklog = 64
	maxSubscriberBytes   = 8 << 20
)

// subscriber is one SUBSCRIBE: a queue of emitted batches. It implements
// RowStream.
type subscriber struct {
	store  *resultStore
	signal chan struct{}

	mu sync.Mutex
	// protected by mu
	// room is closed, and replaced, when Next takes a batch or the
	// subscription ends: it wakes every waitRoom at once (one per
	// last-stage instance applying to the result).
	room  chan struct{}
	queue []arrow.RecordBatch
	bytes int64 // Arrow buffer bytes in queue
	err   error // terminal: why the store closed, or the query failed
	done  bool
}

// offer queues a batch; called with the store's lock held.
func (s *subscriber) offer(rec arrow.RecordBatch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done || s.err != nil {
		return
	}
	rec.Retain()
	s.queue = append(s.queue, rec)
	s.bytes += exec.RecordBytes(rec)
	s.wake()
}

// waitRoom waits until the subscriber's queue is below its bound (or the
// subscription ended) or ctx ends.
func (s *subscriber) waitRoom(ctx context.Context) error {
	for {
		s.mu.Lock()
		ok := s.done || s.err != nil || (len(s.queue) < maxSubscriberBacklog && s.bytes < maxSubscriberBytes)
		room := s.room
		s.mu.Unlock()
		if ok {
			return nil
		}
		s.store.waits.begin()
		select {
		case <-room:
		case <-ctx.Done():
			s.store.waits.end()
			return ctx.Err()
		}
		s.store.waits.end()
	}
}

// subscriberWaits adds up the wall time during which at least one of a
// result's last-stage instances waited for a subscriber to read, a wait
// going on included.
type subscriberWaits struct {
	mu      sync.Mutex
	waiting int
	since   time.Time
	total   time.Duration
}

func (w *subscriberWaits) begin() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiting == 0 {
		w.since = time.Now()
	}
	w.waiting++
}

func (w *subscriberWaits) end() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waiting--
	if w.waiting == 0 {
		w.total += time.Since(w.since)
	}
}

// active reports whether an instance waits for a subscriber now.
func (w *subscriberWaits) active() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.waiting > 0
}

func (w *subscriberWaits) seconds() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.total
	if w.waiting > 0 {
		d += time.Since(w.since)
	}
	return d.Seconds()
}

func (s *subscriber) wake() {
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// madeRoom wakes every waitRoom; called with mu held.
func (s *subscriber) madeRoom() {
	close(s.room)
	s.room = make(chan struct{})
}

func (s *subscriber) finish(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	s.wake()
	s.madeRoom()
}

// Next implements RowStream.
func (s *subscriber) Next(ctx context.Context) (arrow.RecordBatch, error) {
	for {
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			return nil, io.EOF
		}
		if len(s.queue) > 0 {
			rec := s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.bytes -= exec.RecordBytes(rec)
			s.madeRoom()
			s.mu.Unlock()
			return rec, nil
		}
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return nil, err
		}
		s.mu.Unlock()
		select {
		case <-s.signal:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close implements RowStream.
func (s *subscriber) Close() {
	s.store.mu.Lock()
	delete(s.store.subs, s)
	s.store.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	s.done = true
	for _, b := range s.queue {
		b.Release()
	}
	s.queue = nil
	s.wake()
	s.madeRoom()
}

// valueAt reads one value as a Go value (nil, bool, int64, float64,
// string; timestamps and intervals as int64 µs).
func valueAt(col arrow.Array, i int) any {
	if col.IsNull(i) {
		return nil
	}
	switch c := col.(type) {
	case *array.Boolean:
		return c.Value(i)
	case *array.Int64:
		return c.Value(i)
	case *array.Float64:
		return c.Value(i)
	case *array.String:
		return c.Value(i)
	case *array.Timestamp:
		return int64(c.Value(i))
	case *array.Duration:
		return int64(c.Value(i))
	}
	return nil
}

// sliceStream is a RowStream over batches already computed.
type sliceStream struct {
	batches []arrow.RecordBatch
}

// Next implements RowStream.
func (s *sliceStream) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if len(s.batches) == 0 {
		return nil, io.EOF
	}
	b := s.batches[0]
	s.batches = s.batches[1:]
	return b, nil
}

// Close implements RowStream.
func (s *sliceStream) Close() {
	for _, b := range s.batches {
		b.Release()
	}
	s.batches = nil
}
