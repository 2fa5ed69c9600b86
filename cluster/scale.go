package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/spatedb/spate/cluster/control"
	"github.com/spatedb/spate/exec"
	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/planner"
)

// Scaling a partitioned stage (SEEP's scale-out, and its inverse): an
// instance's key range is split in two at a point where its measured
// load halves, and a new instance on another worker — appended to the
// stage, so no other instance changes its index — takes the upper part;
// or two instances owning adjacent ranges merge, and the stage's last
// instance takes the index that frees. In place when it can
// (see freezeCheckpoint below): only the split or merged instances are
// replaced, at a checkpoint taken for it, and everything else keeps
// running. Otherwise it goes like a repair (recovery.go) from the
// query's newest complete checkpoint, restoring everything downstream
// too. Either way the snapshots are rescaled (exec.PartitionSnapshot,
// the consumer's input positions widened or narrowed), and on each
// upstream instance a control message swaps its route to the new ranges
// between two of its messages; what its outlets kept after the
// checkpoint is split the same way and replayed to the new instances.

// scalingEvent is one scale-out or scale-in as SHOW SCALING EVENTS lists
// it.
type scalingEvent struct {
	Time      time.Time
	Query     string
	Stage     int
	Decision  string // "scale out" or "scale in"
	Reason    string
	OldRanges string
	NewRanges string
	Bytes     int64         // state moved to the new instance(s)
	Took      time.Duration // decision to the new instances running
	Restored  int           // instances restored: the new ones, or downstream too
	Status    string
}

// keepScalingEvents bounds the history.
const keepScalingEvents = 100

// ScaleOut splits instance idx of stage (idx < 0: the one that received
// most rows) at split (0: where its received load halves) and runs the
// upper part on a new instance, placed on the least loaded live worker.
func (c *Coordinator) ScaleOut(ctx context.Context, query string, stage, idx int, split uint64, reason string) (scalingEvent, error) {
	return c.rescale(ctx, query, stage, idx, split, reason, true, 0)
}

// ScaleIn merges instance idx of stage with instance idx+1 (idx < 0: the
// adjacent pair that received fewest rows together).
func (c *Coordinator) ScaleIn(ctx context.Context, query string, stage, idx int, reason string) (scalingEvent, error) {
	return c.rescale(ctx, query, stage, idx, 0, reason, false, 0)
}

// ScaleDecided is ScaleOut (out) or ScaleIn for a decision made when the
// stage had width instances: refused when it has another number by the
// time the decision is applied (a rescale by hand came first, and the
// decision's load and instance numbers are no longer the stage's).
func (c *Coordinator) ScaleDecided(ctx context.Context, query string, stage, idx int, split uint64, reason string, out bool, width int) error {
	_, err := c.rescale(ctx, query, stage, idx, split, reason, out, width)
	return err
}

// rescale scales stage out or in; want > 0 is the number of instances
// the stage must still have.
func (c *Coordinator) rescale(ctx context.Context, query string, stage, idx int, split uint64, reason string, out bool, want int) (ev scalingEvent, err error) {
	start := time.Now()
	ev = scalingEvent{Time: start, Query: query, Stage: stage, Decision: "scale in", Reason: reason}
	if out {
		ev.Decision = "scale out"
	}
	c.mu.Lock()
	qr := c.queries[query]
	c.mu.Unlock()
	if qr == nil {
		return ev, errorf("42P01", "continuous query %q does not exist", query)
	}
	q := qr.def
	if stage < 0 || stage >= len(q.Plan.Stages) {
		return ev, errorf("22023", "continuous query %q has no stage %d (stages 0 to %d)", query, stage, len(q.Plan.Stages)-1)
	}
	if st := q.Plan.Stages[stage]; st.Source != nil || len(st.PartitionBy) == 0 {
		return ev, errorf("0A000", "stage %d of %q is not partitioned by key: it cannot change its number of instances", stage, query)
	}
	defer func() {
		if err != nil && ev.Status == "" { // refused: SHOW SCALING EVENTS says why
			ev.Status = "refused: " + err.Error()
			c.addScalingEvent(ev)
		}
	}()
	if err := rescaleRefused(qr, stage, idx, out, want); err != nil {
		return ev, err // before a pool worker is taken for nothing
	}
	// A scale-out takes its worker from the pool first (which may start
	// one: up to 2 minutes), so that a repair of the query does not wait
	// behind it; a worker taken for a scale-out that is then refused (the
	// query changed meanwhile) goes back to the pool when it stays
	// without instances.
	host := ""
	var poolErr error // why the pool gave no worker
	c.mu.Lock()
	pool := c.pool
	c.mu.Unlock()
	if out && pool != nil {
		tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		id, err := pool.Take(tctx)
		cancel()
		switch {
		case err == nil:
			host = id
			defer pool.TakeEnded(id)
		case ctx.Err() != nil:
			return ev, ctx.Err()
		default:
			c.cfg.Logger.Warn().Err(err).Str("query", query).Msg("no worker from the pool for a scale-out; using the least loaded one")
			poolErr = err
		}
	}
	// A rescale waits for a repair or another rescale of the query to
	// finish; its statement can be cancelled meanwhile (57014).
	if err := qr.recoverMu.LockContext(ctx); err != nil {
		return ev, err
	}
	defer qr.recoverMu.Unlock()
	if err := rescaleRefused(qr, stage, idx, out, want); err != nil {
		return ev, err
	}
	p := qr.pipeline()
	old := p.placement()
	workers := c.liveWorkers()
	if len(workers) == 0 {
		return ev, errorf("55000", "no live worker")
	}
	statuses := c.instanceStatuses(qr)
	load := receivedLoad(q, statuses)
	width := old.width(stage)
	ranges := old.ranges(stage)
	ev.OldRanges = rangesText(ranges)
	var pl placement
	var step rescaleStep
	switch {
	case out:
		if idx < 0 {
			idx = busiest(load, stage, width)
		}
		lo, hi := ranges.of(idx)
		if split == 0 {
			split = SplitPoint(lo, hi, load[[2]int{stage, idx}])
		}
		if split <= lo || split > hi {
			return ev, errorf("22023", "split point %016x is not inside instance %d's key range [%016x, %016x]", split, idx, lo, hi)
		}
		if host == "" {
			host = leastLoaded(c.InstancesPerWorker(), c.placeableWorkers())
		}
		pl, step = scaledOut(old, stage, idx, split, host)
		for _, w := range c.liveWorkers() {
			pl.Addrs[w.ID] = w.DataAddr
		}
	default:
		if width < 2 {
			return ev, errorf("55000", "stage %d of %q runs one instance: nothing to merge", stage, query)
		}
		if idx < 0 {
			idx = quietestPair(load, stage, ranges)
		}
		if idx >= width || ranges.pos(idx)+1 >= width {
			return ev, errorf("22023", "stage %d of %q has no instance %d with a next key range to merge with", stage, query, idx)
		}
		pl, step = scaledIn(old, stage, idx)
	}
	ev.Reason += loadShare(load, stage, width, ranges, idx, out)
	if poolErr != nil {
		ev.Reason += fmt.Sprintf("; the pool gave no worker (%v): on the least loaded one", poolErr)
	}
	ev.NewRanges = rangesText(pl.ranges(stage))
	log := c.cfg.Logger.With().Str("query", query).Logger()

	// From here on it goes to the end, cancelled or not: stopped
	// half-way, it would leave a frozen instance to a repair.
	ctx = context.WithoutCancel(ctx)

	// In place when it can: a checkpoint taken now, at whose barrier the
	// instances replaced stop, so their consumers have exactly what they
	// sent before it and keep running (dedupe.go); else from the newest
	// checkpoint, restoring everything downstream too.
	inPlace := rescaleInPlace(q, step)
	froze := inPlace     // the instances replaced may have stopped
	var notInPlace error // why a rescale that could be in place was not
	if inPlace {
		if err := c.freezeCheckpoint(ctx, qr, p, step.frozen()); err != nil {
			log.Warn().Err(err).Msg("no checkpoint to rescale in place at; restoring downstream too")
			inPlace, notInPlace = false, err
		} else if rescaleFrozenHook != nil {
			rescaleFrozenHook()
		}
	}
	// A repair whose replay is still under way (its finishRepair
	// waits) is carried on by this rescale; unless it fails first.
	inRepair := qr.recovering.Load()
	qr.recovering.Store(true)
	qr.repairs++
	repair := qr.repairs
	skip := qr.ckpt.pause()
	c.abandonStaleRound(0)
	epoch, snaps := qr.ckpt.restorePoint()
	moved, bytes, err := rescaledSnapshots(q.Plan.Stages, old, pl, step, snaps)
	if err != nil {
		if froze { // they must not stay so unnoticed
			err = fmt.Errorf("%w (and the stage is frozen)", err)
			p.fail(errorf("58000", "%s of stage %d failed: %v", ev.Decision, stage, err))
		}
		if inRepair {
			qr.repairs-- // the repair's finishRepair ends it, as if this had not begun
		} else {
			qr.recovering.Store(false)
			qr.ckpt.unpause()
		}
		return ev, err
	}
	ev.Bytes = bytes
	restore := sortedInstances(step.changed(pl))
	if !inPlace {
		pl.SinkGen++
		restore = restoreSet(q, pl, step.changed(pl))
	}
	renew(&pl, old, restore)
	ev.Restored = len(restore)
	log.Info().Str("decision", ev.Decision).Int("stage", stage).Str("ranges", ev.NewRanges).Uint64("checkpoint", epoch).Bool("in_place", inPlace).Msg("scaling a stage")
	if inPlace {
		qr.result.repairing()
	} else {
		qr.result.rollback(epoch, pl.SinkGen)
	}
	// From here on the checkpoint is the new layout's: a repair of a
	// rescale that broke (a worker died) restores that.
	qr.ckpt.setRestorePoint(epoch, moved)
	var through *rescaleStep
	if inPlace {
		through = &step
	}
	done, err := c.reconfigure(qr, p, pl, restore, epoch, moved, skip, inPlace, through)
	var broke error // what broke the rescale, when a repair completed it
	for attempt := 1; err != nil && attempt <= 5 && p.failure() == nil && !c.stopping.Load(); attempt++ {
		if broke == nil {
			broke = err
		}
		// Some hosts may have the new layout and others not: restore the
		// whole stage (and what is downstream) again, moving what was on
		// dead workers.
		log.Warn().Err(err).Int("attempt", attempt).Msg("scaling broke; repairing")
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		failed := stageInstances(p.placement(), stage)
		c.addDeadInstances(p.placement(), failed)
		done, err = c.applyRepair(qr, p, failed, epoch, moved, skip, false)
	}
	if err != nil && c.stopping.Load() {
		// The server is stopping (its workers with it): a restart resumes
		// the query from its restart point, in the layout it had.
		log.Debug().Err(err).Msg("scaling cut short by the shutdown")
		return ev, err
	}
	if err != nil {
		ev.Status = "failed: " + err.Error()
		c.addScalingEvent(ev)
		log.Error().Err(err).Msg("scaling failed")
		p.fail(errorf("58000", "%s of stage %d failed: %v", ev.Decision, stage, err))
		return ev, err
	}
	ev.Took = time.Since(start)
	ev.Status = "done"
	rec := recoveryRecord{Query: query, Reason: ev.Decision + " of stage " + fmt.Sprint(stage), Detected: start, Epoch: epoch,
		Instances: len(done.restored), Replayed: done.replayed, FromCopies: done.fromCopies, Restored: ev.Took, Kept: inPlace}
	switch {
	case broke != nil:
		ev.Status = "done (repaired: " + broke.Error() + ")"
		ev.Restored = len(done.restored)
		rec.Reason = fmt.Sprintf("%s of stage %d broke: %v", ev.Decision, stage, broke)
	case notInPlace != nil:
		ev.Status = "done (restored downstream: " + notInPlace.Error() + ")"
		rec.Reason = fmt.Sprintf("%s of stage %d restored downstream: %v", ev.Decision, stage, notInPlace)
	}
	c.addScalingEvent(ev)
	c.layoutGen.Add(1) // a restart point is due (awaitLayoutSaved)
	// In SHOW RECOVERIES when it needed a repair or restored downstream.
	go c.finishRepair(qr, p, repair, rec, broke != nil || notInPlace != nil)
	return ev, nil
}

// rescaleInPlace reports whether step can leave every instance but the
// ones it replaces running: the stage's consumer (or the sink) gets the
// new instance's input at the end of its inputs, which must be the end
// of its last side — the input logs of an instance with several inputs
// name them by position (dedupe.go). (No plan has a scalable stage
// feeding a join's first side today: a join reads two source stages.)
func rescaleInPlace(q *planner.ContinuousQuery, step rescaleStep) bool {
	if cs := stageConsumers(q)[step.Stage]; cs >= 0 {
		sides := q.Plan.Stages[cs].Sides
		return sides[len(sides)-1].Stage == step.Stage
	}
	return true
}

// layoutSaveLimit bounds how long ALTER … SCALE waits for a restart
// point with its ranges.
const layoutSaveLimit = time.Minute

// loadShare says, for SHOW SCALING EVENTS, what share of the rows stage
// received (since its upstream's routing last changed: a rescale or a
// repair starts the counts anew) went to the instance a scale-out
// splits, or to the pair a scale-in merges.
func loadShare(load map[[2]int][]uint64, stage, width int, ranges keyRanges, idx int, out bool) string {
	rows := func(i int) (n uint64) {
		for _, b := range load[[2]int{stage, i}] {
			n += b
		}
		return n
	}
	var total uint64
	for i := range width {
		total += rows(i)
	}
	if total == 0 {
		return "; no rows received since the stage's routing last changed (a rescale or repair)"
	}
	name, mine := fmt.Sprintf("instance %d", idx), rows(idx)
	if !out {
		next := ranges.owner(ranges.pos(idx) + 1)
		name, mine = fmt.Sprintf("instances %d and %d", idx, next), mine+rows(next)
	}
	return fmt.Sprintf("; %s received %.0f%% of the stage's %d rows", name, 100*float64(mine)/float64(total), total)
}

// rescaleRefused says why stage of qr cannot be rescaled now (nil: it
// can be tried): checked before a scale-out takes a pool worker, and
// again under the query's lock.
func rescaleRefused(qr *queryRuntime, stage, idx int, out bool, want int) error {
	p := qr.pipeline()
	if p == nil || p.failure() != nil {
		return errorf("55000", "continuous query %q is not running", qr.def.Name)
	}
	pl := p.placement()
	if !pl.Buffered {
		return errorf("55000", "scaling needs worker processes and checkpoints (spate serve --workers N, checkpoint interval > 0)")
	}
	width := pl.width(stage)
	if want > 0 && width != want {
		return errorf("55000", "stage %d of %q runs %d instances now, not the %d the decision was made on (it was rescaled meanwhile)", stage, qr.def.Name, width, want)
	}
	if out && width >= maxStageWidth {
		return errorf("54000", "stage %d of %q already runs %d instances", stage, qr.def.Name, width)
	}
	if out && idx >= width {
		return errorf("22023", "stage %d of %q has no instance %d", stage, qr.def.Name, idx)
	}
	return nil
}

// maxStageWidth bounds a stage's instances.
const maxStageWidth = 256

// stageInstances is every instance of stage s under pl.
func stageInstances(pl placement, s int) map[[2]int]bool {
	set := map[[2]int]bool{}
	for i := range pl.width(s) {
		set[[2]int{s, i}] = true
	}
	return set
}

// busiest is the instance of stage s that received most rows.
func busiest(load map[[2]int][]uint64, s, width int) int {
	best, most := 0, uint64(0)
	for i := range width {
		if n := sum(load[[2]int{s, i}]); n > most {
			best, most = i, n
		}
	}
	return best
}

// quietestPair is the instance of stage s that, with the one owning the
// next key range, received fewest rows.
func quietestPair(load map[[2]int][]uint64, s int, ranges keyRanges) int {
	best, least := 0, uint64(math.MaxUint64)
	for r := 0; r+1 < ranges.width(); r++ {
		a, b := ranges.owner(r), ranges.owner(r+1)
		if n := sum(load[[2]int{s, a}]) + sum(load[[2]int{s, b}]); n < least {
			best, least = a, n
		}
	}
	return best
}

func sum(xs []uint64) uint64 {
	var n uint64
	for _, x := range xs {
		n += x
	}
	return n
}

// SplitPoint is where to cut the key range [lo, hi] so that the rows
// counted in buckets (equal parts of it, as LoadBucket) divide most
// evenly, at a bucket boundary; the midpoint without counts. The upper
// part starts at the returned hash, so both parts are non-empty.
func SplitPoint(lo, hi uint64, buckets []uint64) uint64 {
	span := hi - lo // one less than the number of hashes
	mid := lo + span/2 + 1
	total := sum(buckets)
	if len(buckets) < 2 || total == 0 || span == 0 {
		return mid
	}
	// Boundary j (1 … n-1) starts bucket j; pick the one whose lower
	// side's load is closest to half.
	bestJ, bestGap := 0, uint64(math.MaxUint64)
	var below uint64
	for j := 1; j < len(buckets); j++ {
		below += buckets[j-1]
		gap := max(below, total-below) - min(below, total-below)
		if gap < bestGap {
			bestJ, bestGap = j, gap
		}
	}
	split := lo + uint64(bestJ)*BucketWidth(lo, hi, len(buckets))
	if split <= lo || split > hi {
		return mid
	}
	return split
}

// leastLoaded is the worker that runs fewest instances (of every
// query), in registry order on a tie.
func leastLoaded(counts map[string]int, workers []control.WorkerInfo) string {
	best := workers[0].ID
	for _, w := range workers {
		if counts[w.ID] < counts[best] {
			best = w.ID
		}
	}
	return best
}

// rescaleStep is what a rescale does to stage Stage's instances: a
// scale-out splits instance Split, the new instance Added (the stage's
// last) taking the upper part; a scale-in merges instances Lower and
// Upper (adjacent ranges, in that order) into Keep, the lower index,
// which frees Gone, and the stage's last instance Last moves to Gone
// (unless it is Gone), so no other instance is renumbered.
type rescaleStep struct {
	Stage int  `json:"stage"`
	Out   bool `json:"out"`
	Split int  `json:"split,omitempty"`
	Added int  `json:"added,omitempty"`
	Lower int  `json:"lower,omitempty"`
	Upper int  `json:"upper,omitempty"`
	Keep  int  `json:"keep,omitempty"`
	Gone  int  `json:"gone,omitempty"`
	Last  int  `json:"last,omitempty"`
}

// frozen is the instances of the old layout a rescale replaces.
func (st rescaleStep) frozen() [][2]int {
	if st.Out {
		return [][2]int{{st.Stage, st.Split}}
	}
	out := [][2]int{{st.Stage, st.Keep}, {st.Stage, st.Gone}}
	if st.Last != st.Gone {
		out = append(out, [2]int{st.Stage, st.Last})
	}
	return out
}

// from is the old index of new instance j of the rescaled stage (-1: a
// split's new instance).
func (st rescaleStep) from(j int) int {
	switch {
	case st.Out && j == st.Added:
		return -1
	case !st.Out && j == st.Gone:
		return st.Last
	}
	return j
}

// changed is the instances of stage st.Stage under pl (the new layout)
// that are not the old ones: new, split, merged or renumbered.
func (st rescaleStep) changed(pl placement) map[[2]int]bool {
	set := map[[2]int]bool{}
	if st.Out {
		set[[2]int{st.Stage, st.Split}] = true
		set[[2]int{st.Stage, st.Added}] = true
		return set
	}
	set[[2]int{st.Stage, st.Keep}] = true
	if st.Gone < pl.width(st.Stage) {
		set[[2]int{st.Stage, st.Gone}] = true // the last one, moved
	}
	return set
}

// scaledOut is pl with instance i of stage s split at split: a new
// instance (the stage's last, on host) takes [split, i's old end].
func scaledOut(pl placement, s, i int, split uint64, host string) (placement, rescaleStep) {
	out := pl.clone()
	out.Version++
	r := pl.ranges(s).pos(i)
	n := pl.width(s)
	out.Hosts[s] = append(out.Hosts[s], host)
	out.Gens[s] = append(out.Gens[s], 0)
	out.Splits[s] = insertAt(out.Splits[s], r, split)
	out.Order = orderRows(pl)
	out.Order[s] = insertAt(out.Order[s], r+1, n)
	return out, rescaleStep{Stage: s, Out: true, Split: i, Added: n}
}

// scaledIn is pl with instance i of stage s merged with the instance
// that owns the next key range.
func scaledIn(pl placement, s, i int) (placement, rescaleStep) {
	ranges := pl.ranges(s)
	r := ranges.pos(i)
	st := rescaleStep{Stage: s, Lower: i, Upper: ranges.owner(r + 1), Last: pl.width(s) - 1}
	st.Keep, st.Gone = min(st.Lower, st.Upper), max(st.Lower, st.Upper)
	out := pl.clone()
	out.Version++
	out.Splits[s] = removeAt(out.Splits[s], r)
	out.Order = orderRows(pl)
	order := removeAt(out.Order[s], r+1)
	order[r] = st.Keep
	for k, o := range order {
		if o == st.Last {
			order[k] = st.Gone
		}
	}
	out.Order[s] = order
	out.Hosts[s][st.Gone], out.Gens[s][st.Gone] = out.Hosts[s][st.Last], out.Gens[s][st.Last]
	out.Hosts[s], out.Gens[s] = out.Hosts[s][:st.Last], out.Gens[s][:st.Last]
	return out, st
}

// orderRows is pl.Order with a row for every stage (copies).
func orderRows(pl placement) [][]int {
	rows := make([][]int, len(pl.Hosts))
	for s := range rows {
		if s < len(pl.Order) && pl.Order[s] != nil {
			rows[s] = append([]int(nil), pl.Order[s]...)
			continue
		}
		rows[s] = make([]int, pl.width(s))
		for i := range rows[s] {
			rows[s][i] = i
		}
	}
	return rows
}

func insertAt[T any](xs []T, i int, x T) []T {
	xs = append(xs, x)
	copy(xs[i+1:], xs[i:])
	xs[i] = x
	return xs
}

func removeAt[T any](xs []T, i int) []T {
	return append(xs[:i], xs[i+1:]...)
}

// renew gives every instance of restore a new incarnation under pl: one
// above every incarnation its stage had under old, so no channel name of
// the old instances is reused.
func renew(pl *placement, old placement, restore [][2]int) {
	top := map[int]int{}
	for _, k := range restore {
		if _, ok := top[k[0]]; !ok {
			for i := range old.width(k[0]) {
				top[k[0]] = max(top[k[0]], old.gen(k[0], i))
			}
		}
		pl.Gens[k[0]][k[1]] = top[k[0]] + 1
	}
}

// rangesText lists each instance's key range, in instance order, for
// SHOW SCALING EVENTS.
func rangesText(ranges keyRanges) string {
	var b strings.Builder
	for i := range ranges.width() {
		lo, hi := ranges.of(i)
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "[%016x,%016x]", lo, hi)
	}
	return b.String()
}

// rescaledSnapshots turns the snapshots of a checkpoint into those of
// the instances after step: the split instance's operators partitioned
// at the new split point (or the merged pair's combined), renumbered
// instances moved, and the input positions of the stage that reads the
// rescaled one widened (a slot for the new instance at the end of the
// side's) or narrowed. It returns the new snapshots and the bytes that
// went to another instance. No snapshots (no checkpoint yet): none,
// everything is replayed.
func rescaledSnapshots(stages []*planner.Stage, old, pl placement, step rescaleStep, snaps map[[2]int][]byte) (map[[2]int][]byte, int64, error) {
	if len(snaps) == 0 {
		return nil, 0, nil
	}
	s := step.Stage
	res := map[[2]int][]byte{}
	var moved int64
	decode := func(k [2]int) (*instanceSnapshot, error) {
		data, ok := snaps[k]
		if !ok {
			return nil, fmt.Errorf("the checkpoint has no snapshot of stage %d instance %d", k[0], k[1])
		}
		return unmarshalInstanceSnapshot(data)
	}
	put := func(k [2]int, snap *instanceSnapshot) error {
		snap.Stage, snap.Instance = k[0], k[1]
		b, err := snap.marshal()
		res[k] = b
		return err
	}
	consumer, side := -1, -1
	for _, st := range stages {
		for sd, in := range st.Sides {
			if in.Stage == s {
				consumer, side = st.ID, sd
			}
		}
	}
	for k, data := range snaps {
		switch {
		case k[0] == s:
			continue
		case k[0] != consumer:
			res[k] = data
			continue
		}
		snap, err := decode(k)
		if err != nil {
			return nil, 0, err
		}
		base := 0
		for sd := range side {
			base += old.width(stages[consumer].Sides[sd].Stage)
		}
		width := old.width(s)
		snap.Watermarks = rescaleSlots(snap.Watermarks, step, base, width, same, lower)
		snap.Idle = rescaleSlots(snap.Idle, step, base, width, same, both)
		snap.Received = rescaleSlots(snap.Received, step, base, width, zero, sumOf)
		if err := put(k, snap); err != nil {
			return nil, 0, err
		}
	}
	ranges := pl.ranges(s)
	for j := range pl.width(s) {
		k := [2]int{s, j}
		var err error
		switch {
		case step.Out && j == step.Added:
			continue // with the split
		case step.Out && j == step.Split:
			var snap *instanceSnapshot
			if snap, err = decode(k); err == nil {
				lo, _ := ranges.of(j)
				split, hi := ranges.of(step.Added)
				parts := splitInstanceSnapshot(snap, lo, split, hi)
				moved += opsBytes(parts[1])
				if err = put(k, parts[0]); err == nil {
					err = put([2]int{s, step.Added}, parts[1])
				}
			}
		case !step.Out && j == step.Keep:
			var a, b *instanceSnapshot
			if a, err = decode([2]int{s, step.Lower}); err == nil {
				if b, err = decode([2]int{s, step.Upper}); err == nil {
					moved += opsBytes(b)
					var merged *instanceSnapshot
					if merged, err = mergeInstanceSnapshots(a, b); err == nil {
						err = put(k, merged)
					}
				}
			}
		case step.from(j) != j: // the last one, moved
			var snap *instanceSnapshot
			if snap, err = decode([2]int{s, step.from(j)}); err == nil {
				err = put(k, snap)
			}
		default: // unchanged
			if res[k] = snaps[k]; res[k] == nil {
				err = fmt.Errorf("the checkpoint has no snapshot of stage %d instance %d", s, j)
			}
		}
		if err != nil {
			return nil, 0, err
		}
	}
	return res, moved, nil
}

func opsBytes(s *instanceSnapshot) int64 {
	var n int64
	for _, op := range s.Ops {
		n += int64(len(op))
	}
	return n
}

// splitInstanceSnapshot splits an instance's snapshot (of key range
// [lo, hi]) at split: both halves carry the operators' whole snapshots
// (no re-encoding here) with the key range each keeps when it restores
// (instanceSnapshot.KeyRange), in parallel on its worker. Input
// positions and watermarks go to both; the row counters to the lower.
func splitInstanceSnapshot(s *instanceSnapshot, lo, split, hi uint64) [2]*instanceSnapshot {
	var parts [2]*instanceSnapshot
	for p := range parts {
		c := *s
		c.Watermarks = append([]int64(nil), s.Watermarks...)
		c.Idle = append([]bool(nil), s.Idle...)
		c.Received = append([]uint64(nil), s.Received...)
		c.KeyRange = []uint64{lo, split - 1}
		if p == 1 {
			c.RowsIn, c.RowsOut = 0, 0
			c.KeyRange = []uint64{split, hi}
		}
		parts[p] = &c
	}
	return parts
}

// mergeInstanceSnapshots combines the snapshots of two adjacent instances
// of a stage (disjoint key ranges): their operators' batches together,
// the lower watermarks, the counters added.
func mergeInstanceSnapshots(a, b *instanceSnapshot) (*instanceSnapshot, error) {
	m := *a
	m.KeyRange = nil // the operators below keep only their ranges
	m.Watermarks = append([]int64(nil), a.Watermarks...)
	m.Idle = append([]bool(nil), a.Idle...)
	m.Received = append([]uint64(nil), a.Received...)
	for j := range m.Watermarks {
		m.Watermarks[j] = min(m.Watermarks[j], b.Watermarks[j])
		m.Idle[j] = m.Idle[j] && b.Idle[j]
	}
	m.Watermark, m.Out = min(a.Watermark, b.Watermark), min(a.Out, b.Out)
	m.IdleOut = a.IdleOut && b.IdleOut
	m.RowsIn, m.RowsOut = a.RowsIn+b.RowsIn, a.RowsOut+b.RowsOut
	m.Ops = make([][]byte, len(a.Ops))
	for o := range a.Ops {
		if a.Ops[o] == nil {
			continue
		}
		x, err := a.opSnapshot(o)
		if err != nil {
			return nil, err
		}
		y, err := b.opSnapshot(o)
		if err != nil {
			x.Release()
			return nil, err
		}
		merged, err := exec.MergeSnapshots(x, y)
		x.Release()
		y.Release()
		if err != nil {
			return nil, err
		}
		m.Ops[o], err = merged.Marshal()
		merged.Release()
		if err != nil {
			return nil, err
		}
	}
	return &m, nil
}

// resplit points instance in's outlets at the instances of its consumer
// stage under pl, whose number changed. New outlets keep without sending;
// then a control message in the instance's input, between two of its
// messages, moves what the old outlets kept after checkpoint epoch's
// barrier into them — batches split by the new key ranges, watermarks
// and barriers from the old outlet that held the new range's start — and
// swaps the route. It returns the new outlets for the replay and the
// number of messages they will replay.
func (p *pipeline) resplit(ctx context.Context, in *instance, pl placement, epoch uint64) ([]*reroute, int, error) {
	c := p.consumer[in.stage]
	width, ranges := pl.width(c.stage), pl.ranges(c.stage)
	in.routeMu.RLock()
	olds, oldRanges, partitionBy := in.route.outs, in.route.ranges, in.route.partitionBy
	in.routeMu.RUnlock()
	// An outlet to a consumer that kept its index, incarnation and range
	// stays as it is; the others are detached (they keep, not send) and
	// replaced.
	kept := map[int]bool{}
	for j, o := range olds {
		b, ok := o.(*backupOutlet)
		if !ok {
			return nil, 0, fmt.Errorf("stage %d instance %d keeps no output to replay", in.stage, in.idx)
		}
		ch := b.target()
		if j < width && ch.toIdx == j && ch.gen == pl.gen(c.stage, j) && sameRange(oldRanges, ranges, j) {
			kept[j] = true
			continue
		}
		if _, _, err := b.detach(ch, epoch, nil); err != nil {
			return nil, 0, err
		}
	}
	news := make([]*backupOutlet, width)
	var rs []*reroute
	for j := range news {
		if kept[j] {
			news[j] = olds[j].(*backupOutlet)
			continue
		}
		ch := channelName{run: pl.Run, fromStage: in.stage, fromIdx: in.idx, toStage: c.stage, toIdx: j, side: c.side, gen: pl.gen(c.stage, j)}
		b := newBackupOutlet(p, ch, discardOutlet{})
		b.broken, b.base, b.detached = true, epoch, 1
		news[j] = b
		rs = append(rs, &reroute{in: in, b: b, ch: ch, id: 1})
	}
	err := in.control(ctx, func() error {
		if err := moveKept(olds, oldRanges, news, ranges, partitionBy, epoch, kept); err != nil {
			return err
		}
		outs := make([]outlet, width)
		for j, b := range news {
			outs[j] = b
		}
		for j, o := range olds {
			if !kept[j] {
				o.(*backupOutlet).release()
				o.close()
			}
		}
		in.routeMu.Lock()
		in.route.outs, in.route.ranges, in.route.version = outs, ranges, pl.Version
		in.route.load = make([]atomic.Uint64, width*LoadBuckets)
		in.route.counts = make([]uint64, width*LoadBuckets)
		in.routeMu.Unlock()
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	n := 0
	for _, r := range rs {
		n += int(r.b.count.Load())
	}
	return rs, n, nil
}

// sameRange reports whether instance j has the same key range under a
// and b.
func sameRange(a, b keyRanges, j int) bool {
	if a.pos(j) < 0 || b.pos(j) < 0 {
		return false
	}
	alo, ahi := a.of(j)
	blo, bhi := b.of(j)
	return alo == blo && ahi == bhi
}

// moveKept copies into news (outlets to the instances of ranges) what
// olds (to those of oldRanges) kept after epoch's barrier, in the
// order it was sent: each new outlet gets the rows of its range from the
// batches of every old outlet whose range overlaps it, and the other
// messages of the old outlet whose range held its start (every outlet
// got those).
func moveKept(olds []outlet, oldRanges keyRanges, news []*backupOutlet, ranges keyRanges, partitionBy []int, epoch uint64, kept map[int]bool) error {
	type item struct {
		seq uint64
		m   message
	}
	lists := make([][]item, len(news))
	var hashes []uint64
	for oi, o := range olds {
		if kept[oi] {
			continue // the same consumer, which has it
		}
		msgs, _, err := o.(*backupOutlet).replay(epoch)
		if err != nil {
			return err
		}
		olo, ohi := oldRanges.of(oi)
		for _, k := range msgs {
			var parts []arrow.RecordBatch
			if k.m.rec != nil {
				hashes = exec.HashColumns(k.m.rec, partitionBy, hashes[:0])
				if parts, err = splitByRange(k.m.rec, hashes, ranges.splits, nil); err != nil {
					k.m.rec.Release()
					return err
				}
				k.m.rec.Release()
			}
			for j := range news {
				lo, hi := ranges.of(j)
				if kept[j] || hi < olo || lo > ohi {
					continue
				}
				m := k.m
				if parts != nil {
					r := ranges.pos(j)
					if m.rec = parts[r]; m.rec == nil {
						continue
					}
					parts[r] = nil
				} else if lo < olo {
					continue // the old outlet of this range's start has it
				}
				lists[j] = append(lists[j], item{k.seq, m})
			}
			for _, part := range parts {
				if part != nil {
					part.Release()
				}
			}
		}
	}
	for j, l := range lists {
		if kept[j] {
			continue
		}
		sort.Slice(l, func(a, b int) bool { return l[a].seq < l[b].seq })
		for _, it := range l {
			news[j].keep(it.seq, it.m)
		}
	}
	return nil
}

// discardOutlet is the outlet of a new backupOutlet before its consumer
// exists: it keeps (broken) and never sends.
type discardOutlet struct{}

func (discardOutlet) send(_ context.Context, m message) error {
	m.release()
	return nil
}
func (discardOutlet) close() {}

// ScalingPolicy is a query's scaling settings (ALTER CONTINUOUS QUERY …
// SET (autoscale = on, min_instances = 1, max_instances = 16,
// target_utilisation = 0.7)), which the elastic controller follows.
type ScalingPolicy struct {
	Autoscale         bool
	MinInstances      int
	MaxInstances      int
	TargetUtilisation float64
}

// DefaultScalingPolicy is a query's policy until it is altered.
var DefaultScalingPolicy = ScalingPolicy{MinInstances: 1, MaxInstances: 16, TargetUtilisation: 0.7}

// ScalingPolicies returns every running query's scaling policy.
func (c *Coordinator) ScalingPolicies() map[string]ScalingPolicy {
	out := map[string]ScalingPolicy{}
	for _, qr := range c.runningQueries() {
		out[qr.def.Name] = qr.scalingPolicy()
	}
	return out
}

// String is how SHOW CONTINUOUS QUERIES shows it.
func (p ScalingPolicy) String() string {
	auto := "off"
	if p.Autoscale {
		auto = "on"
	}
	return fmt.Sprintf("autoscale %s, %d to %d instances, target utilisation %.2f", auto, p.MinInstances, p.MaxInstances, p.TargetUtilisation)
}

func (qr *queryRuntime) scalingPolicy() ScalingPolicy {
	if p := qr.policy.Load(); p != nil {
		return *p
	}
	return DefaultScalingPolicy
}

// alterQuery runs ALTER CONTINUOUS QUERY: a manual scale-out or
// scale-in, or new scaling settings (logged like DDL, so a restart keeps
// them).
func (c *Coordinator) alterQuery(ctx context.Context, x *parser.AlterContinuousQuery) (Result, error) {
	if x.Scale != "" {
		var err error
		if x.Scale == "out" {
			_, err = c.ScaleOut(ctx, x.Name, x.Stage, x.Instance, 0, "ALTER CONTINUOUS QUERY … SCALE OUT")
		} else {
			_, err = c.ScaleIn(ctx, x.Name, x.Stage, x.Instance, "ALTER CONTINUOUS QUERY … SCALE IN")
		}
		if err != nil {
			return Result{}, err
		}
		// Acknowledged once a restart point has the new ranges.
		c.awaitLayoutSaved(ctx, c.layoutGen.Load(), layoutSaveLimit)
		res := Result{Tag: "ALTER CONTINUOUS QUERY"}
		if why := c.outsideBounds(x.Name, x.Stage); why != "" {
			res.Notices = append(res.Notices, Notice{Severity: "WARNING", Code: "01000", Message: why})
		}
		return res, nil
	}
	c.mu.Lock()
	qr := c.queries[x.Name]
	c.mu.Unlock()
	if qr == nil {
		return Result{}, errorf("42P01", "continuous query %q does not exist", x.Name)
	}
	p := qr.scalingPolicy()
	seen := map[string]bool{}
	for _, o := range x.Set {
		key := strings.ReplaceAll(o.Key, "utilization", "utilisation")
		if seen[key] {
			return Result{}, errorf("42601", "conflicting or redundant options: %s is given twice", o.Key)
		}
		seen[key] = true
		bad := func(want string) error {
			return errorf("22023", "invalid value for %s: %q (want %s)", o.Key, o.Value, want)
		}
		switch o.Key {
		case "autoscale":
			b, ok := boolSetting(o.Value)
			if !ok {
				return Result{}, bad("on or off")
			}
			p.Autoscale = b
		case "min_instances", "max_instances":
			n, err := strconv.Atoi(o.Value)
			if err != nil || n < 1 || n > maxStageWidth {
				return Result{}, bad(fmt.Sprintf("an integer from 1 to %d", maxStageWidth))
			}
			if o.Key == "min_instances" {
				p.MinInstances = n
			} else {
				p.MaxInstances = n
			}
		case "target_utilisation", "target_utilization":
			f, err := strconv.ParseFloat(o.Value, 64)
			if err != nil || !(f > 0 && f <= 1) { // NaN too
				return Result{}, bad("a fraction above 0 and at most 1")
			}
			p.TargetUtilisation = f
		default:
			return Result{}, errorf("22023", "unrecognized option %q of ALTER CONTINUOUS QUERY … SET (autoscale, min_instances, max_instances, target_utilisation)", o.Key)
		}
	}
	if p.MinInstances > p.MaxInstances {
		return Result{}, errorf("22023", "min_instances %d is above max_instances %d", p.MinInstances, p.MaxInstances)
	}
	if err := c.ddl(x.SQL(), 0, func() error { qr.policy.Store(&p); return nil }); err != nil {
		return Result{}, err
	}
	res := Result{Tag: "ALTER CONTINUOUS QUERY"}
	if p.Autoscale {
		if why := autoscaleIdle(qr); why != "" {
			res.Notices = append(res.Notices, Notice{Severity: "WARNING", Code: "01000",
				Message: fmt.Sprintf("autoscale is on, but continuous query %q cannot be rescaled: %s", x.Name, why)})
		}
	}
	return res, nil
}

// outsideBounds warns, after a rescale by hand, when autoscale is on
// and the stage's width is now outside the query's bounds, which the
// controller restores once its cool-down is over ("" otherwise).
func (c *Coordinator) outsideBounds(query string, stage int) string {
	c.mu.Lock()
	qr := c.queries[query]
	c.mu.Unlock()
	if qr == nil {
		return ""
	}
	p, n := qr.scalingPolicy(), qr.pipeline().placement().width(stage)
	if !p.Autoscale {
		return ""
	}
	var bound string
	switch {
	case n < p.MinInstances:
		bound = fmt.Sprintf("below min_instances %d", p.MinInstances)
	case n > p.MaxInstances:
		bound = fmt.Sprintf("above max_instances %d", p.MaxInstances)
	default:
		return ""
	}
	return fmt.Sprintf("stage %d of continuous query %q now has %d instances, %s: with autoscale on, the controller rescales it back after its cool-down (--scale-cooldown); change the bounds with ALTER CONTINUOUS QUERY %s SET (…) to keep it",
		stage, query, n, bound, query)
}

// autoscaleIdle says why the controller cannot rescale qr now ("" when
// it can).
func autoscaleIdle(qr *queryRuntime) string {
	for _, st := range qr.def.Plan.Stages {
		if st.Source == nil && len(st.PartitionBy) > 0 {
			if err := rescaleRefused(qr, st.ID, -1, false, 0); err != nil {
				return err.Error()
			}
			return ""
		}
	}
	return "it has no stage partitioned by key (a GROUP BY, a join or an OVER window with PARTITION BY)"
}

// boolSetting reads on/off, true/false, yes/no, 1/0.
func boolSetting(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "on", "true", "yes", "1":
		return true, true
	case "off", "false", "no", "0":
		return false, true
	}
	return false, false
}

// LoadReport is an instance's load since the previous LoadReports, for
// the elastic controller.
type LoadReport struct {
	Query           string
	Stage, Instance int
	Width           int    // instances the stage has now
	Lo, Hi          uint64 // the instance's key range
	Busy            float64
	QueueDepth      int
	Buckets         []uint64 // rows received per sixteenth of the range (LoadBuckets)
	// Rescaled is when the stage's newest rescale (the controller's or
	// ALTER … SCALE's) ended; zero for none.
	Rescaled time.Time
}

// loadKey names an instance incarnation for LoadReports' baseline.
type loadKey struct {
	query                  string
	version                uint64
	stage, instance, incar int
}

// loadBase is an instance's counters at the previous LoadReports.
type loadBase struct {
	busy    float64
	buckets []uint64
	at      time.Time
}

// LoadReports returns, for every instance of every partitioned stage of
// the running queries, its busy fraction and received rows per key-range
// bucket since the previous call (the first call only takes the
// baseline; an instance restored or rescaled meanwhile starts over).
func (c *Coordinator) LoadReports() []LoadReport {
	now := time.Now()
	var out []LoadReport
	seen := map[loadKey]loadBase{}
	rescaled := c.rescaleEnds()
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	for _, qr := range c.runningQueries() {
		p := qr.pipeline()
		if p == nil || qr.recovering.Load() {
			continue
		}
		pl := p.placement()
		statuses := c.instanceStatuses(qr)
		load := receivedLoad(qr.def, statuses)
		for _, st := range statuses {
			stage := qr.def.Plan.Stages[st.Stage]
			if stage.Source != nil || len(stage.PartitionBy) == 0 || st.Stage >= len(pl.Hosts) || st.Instance >= pl.width(st.Stage) {
				continue
			}
			key := loadKey{qr.def.Name, pl.Version, st.Stage, st.Instance, st.Gen}
			buckets := load[[2]int{st.Stage, st.Instance}]
			cur := loadBase{busy: st.BusySeconds, buckets: buckets, at: now}
			seen[key] = cur
			prev, ok := c.loadBase[key]
			if !ok || now.Sub(prev.at) <= 0 {
				continue
			}
			lo, hi := pl.ranges(st.Stage).of(st.Instance)
			r := LoadReport{Query: qr.def.Name, Stage: st.Stage, Instance: st.Instance, Width: pl.width(st.Stage), Lo: lo, Hi: hi,
				Busy: min(1, max(0, (cur.busy-prev.busy)/now.Sub(prev.at).Seconds())), QueueDepth: st.QueueDepth, Rescaled: rescaled[stageRef{qr.def.Name, st.Stage}]}
			if len(buckets) == len(prev.buckets) {
				r.Buckets = make([]uint64, len(buckets))
				for b := range buckets {
					if buckets[b] >= prev.buckets[b] {
						r.Buckets[b] = buckets[b] - prev.buckets[b]
					}
				}
			}
			out = append(out, r)
		}
	}
	c.loadBase = seen
	return out
}

// rescaleEnds is when each stage's newest rescale that was done ended
// (a refused or failed one changed nothing).
func (c *Coordinator) rescaleEnds() map[stageRef]time.Time {
	c.scaling.mu.Lock()
	defer c.scaling.mu.Unlock()
	ends := map[stageRef]time.Time{}
	for _, e := range c.scaling.events {
		if strings.HasPrefix(e.Status, "done") {
			k := stageRef{e.Query, e.Stage}
			ends[k] = later(ends[k], e.Time.Add(e.Took))
		}
	}
	return ends
}

// stageRef names a query's stage.
type stageRef struct {
	query string
	stage int
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// scalingRows is SHOW SCALING EVENTS.
func (c *Coordinator) scalingRows() ([]Column, [][]any) {
	cols := []Column{{"time", planner.TypeTimestamp}, {"query", planner.TypeText}, {"stage", planner.TypeBigInt}, {"decision", planner.TypeText},
		{"reason", planner.TypeText}, {"old_ranges", planner.TypeText}, {"new_ranges", planner.TypeText}, {"bytes_moved", planner.TypeBigInt},
		{"took_ms", planner.TypeDouble}, {"instances_restored", planner.TypeBigInt}, {"status", planner.TypeText}}
	c.scaling.mu.Lock()
	evs := append([]scalingEvent(nil), c.scaling.events...)
	c.scaling.mu.Unlock()
	var rows [][]any
	for _, e := range evs {
		rows = append(rows, []any{e.Time.UnixMicro(), e.Query, int64(e.Stage), e.Decision, e.Reason, e.OldRanges, e.NewRanges, e.Bytes, ms(e.Took), int64(e.Restored), e.Status})
	}
	return cols, rows
}

// scalingEvents is SHOW SCALING EVENTS' history.
type scalingEvents struct {
	mu     sync.Mutex
	events []scalingEvent
}

func (c *Coordinator) addScalingEvent(ev scalingEvent) {
	c.scaling.mu.Lock()
	defer c.scaling.mu.Unlock()
	c.scaling.events = lastOf(append(c.scaling.events, ev), keepScalingEvents)
}

// An in-place rescale (rescaleInPlace) replaces only the instances it
// splits or merges. freezeCheckpoint takes a checkpoint at whose barrier
// they stop taking input (instance.freeze): the checkpoint's snapshots
// of them hold all they ever processed, their consumers have exactly
// what they sent before the barrier, and what their producers sent after
// it is kept for replay. The new instances are restored from those
// snapshots, resume after the barrier, and the producers' kept output is
// split among them (resplit). Their consumers keep running: they
// renumber their inputs (rescaleInputs) — a new last input for the new
// instance, or the merged pair's two made one — and drop nothing, since
// nothing was sent after the barrier.

// freezeTimeout bounds the checkpoint an in-place rescale waits for.
const freezeTimeout = time.Minute

// rescaleFrozenHook, set by tests, runs when an in-place rescale's
// freeze checkpoint completed: the stage is frozen and the query's
// checkpoints are held until the rescale ends.
var rescaleFrozenHook func()

// freezeCheckpoint holds the query's periodic checkpoints, has the
// frozen instances stop at the next barrier and takes a checkpoint; it
// returns once that is complete, the query's restore point (nothing else
// begins while held). On an error the frozen instances may have stopped,
// so the caller restores them (and checkpoints stay held until it pauses
// and resumes them).
func (c *Coordinator) freezeCheckpoint(ctx context.Context, qr *queryRuntime, p *pipeline, frozen [][2]int) error {
	ctx, cancel := context.WithTimeout(ctx, freezeTimeout)
	defer cancel()
	qr.ckpt.hold()
	pl := p.placement()
	// A checkpoint in flight finishes first — unless a worker of the
	// query died, whose part never comes (the repair that clears it
	// waits behind this rescale).
	for qr.ckpt.inFlight() > 0 {
		switch {
		case p.failure() != nil:
			return p.failure()
		case c.anyDead(pl):
			return errors.New("a worker of the query died during the checkpoint in flight")
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for the checkpoint in flight: %w", err)
		}
	}
	for _, k := range frozen {
		var err error
		if h := pl.Hosts[k[0]][k[1]]; h == coordinatorHost {
			err = p.freeze(ctx, k)
		} else {
			err = c.reg.Call(ctx, h, reqFreeze, freezeRequest{Run: pl.Run, Stage: k[0], Instance: k[1]}, nil)
		}
		if err != nil {
			return fmt.Errorf("freezing stage %d instance %d: %w", k[0], k[1], err)
		}
	}
	epoch := c.beginCheckpoint(qr, true)
	if epoch == 0 {
		return errors.New("the checkpoint could not begin")
	}
	for {
		done, err := qr.ckpt.outcome(epoch)
		switch {
		case err != nil:
			return err
		case done:
			return nil
		case p.failure() != nil:
			return p.failure()
		case c.anyDead(pl):
			return errors.New("a worker of the query died")
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return fmt.Errorf("checkpoint %d: %w", epoch, err)
		}
	}
}

// anyDead reports whether a host of pl is dead (or gone from the
// registry). A suspect one — a heartbeat late, as on a busy machine —
// is not: its part of a checkpoint may still come, and a rescale given
// up for it turns into a repair that restores everything downstream.
func (c *Coordinator) anyDead(pl placement) bool {
	status := map[string]control.Status{coordinatorHost: control.StatusAlive}
	for _, w := range c.Workers() {
		status[w.ID] = w.Status
	}
	for _, row := range pl.Hosts {
		for _, h := range row {
			if st := status[h]; st == "" || st == control.StatusDead {
				return true
			}
		}
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// freeze has instance k stop at the next checkpoint barrier it aligns.
func (p *pipeline) freeze(ctx context.Context, k [2]int) error {
	in := p.instanceAt(k[0], k[1])
	if in == nil {
		return fmt.Errorf("stage %d instance %d does not run here", k[0], k[1])
	}
	return in.control(ctx, func() error {
		in.freeze = true
		return nil
	})
}

// control runs fn on the instance's goroutine, between two of its
// messages, and waits for it.
func (in *instance) control(ctx context.Context, fn func() error) error {
	done := make(chan error, 1)
	ctl := func() error {
		err := fn()
		done <- err
		return err
	}
	select {
	case in.in <- message{ctl: ctl}:
	case <-in.ctx.Done():
		return fmt.Errorf("stage %d instance %d stopped (%v)", in.stage, in.idx, in.p.failure())
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-in.ctx.Done():
		return fmt.Errorf("stage %d instance %d stopped (%v)", in.stage, in.idx, in.p.failure())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rescaleInputs renumbers the inputs of this host's consumers of an
// in-place rescale's stage that keep running (not in restored), and the
// sink's: epoch is the checkpoint the new instances resume after.
func (p *pipeline) rescaleInputs(step rescaleStep, epoch uint64, restored map[[2]int]bool) error {
	c := p.consumer[step.Stage]
	if c.stage < 0 {
		if p.result != nil {
			p.mu.Lock()
			if step.Out {
				in := &sinkInput{gen: int(p.sinkGen.Load())}
				in.seq.reset(epoch)
				p.sinkIns[step.Added] = in
			} else {
				p.sinkIns[step.Gone] = p.sinkIns[step.Last]
				delete(p.sinkIns, step.Last)
			}
			p.mu.Unlock()
			p.result.rescaleInputs(step, epoch)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(p.ctx, deployTimeout)
	defer cancel()
	for _, in := range p.localInstances() {
		if in.stage != c.stage || restored[[2]int{in.stage, in.idx}] {
			continue
		}
		if err := in.control(ctx, func() error { in.rescaleInputs(c.side, step, epoch); return nil }); err != nil {
			return err
		}
	}
	return nil
}

// rescaleInputs renumbers the instance's inputs on side after step: a
// scale-out adds the new instance's at the end of the side's (its
// watermark the split one's, its position after checkpoint epoch's
// barrier); a scale-in merges the pair's into the kept one's.
func (in *instance) rescaleInputs(side int, step rescaleStep, epoch uint64) {
	base, width := in.sideBase[side], in.sideWidth[side]
	var fresh inputSeq
	fresh.reset(epoch)
	in.wms = rescaleSlots(in.wms, step, base, width, same, lower)
	in.idle = rescaleSlots(in.idle, step, base, width, same, both)
	in.received = rescaleSlots(in.received, step, base, width, zero, sumOf)
	in.seqs = rescaleSlots(in.seqs, step, base, width, func(inputSeq) inputSeq { return fresh }, first)
	// Not aligning (the rescale's checkpoint completed): none barred or held.
	in.barred = rescaleSlots(in.barred, step, base, width, zero, first)
	in.held = rescaleSlots(in.held, step, base, width, zero, first)
	if in.pending != nil {
		in.pending = rescaleSlots(in.pending, step, base, width, zero, first)
	}
	if step.Out {
		in.sideWidth[side]++
	} else {
		in.sideWidth[side]--
	}
	total := 0
	for sd, w := range in.sideWidth {
		in.sideBase[sd] = total
		total += w
	}
	in.logsInputs = total > 1
}

// rescaleSlots applies step to xs, one value per input of a consumer,
// whose inputs from the rescaled stage are xs[base:base+width]: a
// scale-out adds the new instance's (added of the split one's) after
// them; a scale-in merges the pair's into the kept one's and moves the
// last one's to the index freed.
func rescaleSlots[T any](xs []T, step rescaleStep, base, width int, added func(T) T, merge func(a, b T) T) []T {
	if step.Out {
		return insertAt(xs, base+width, added(xs[base+step.Split]))
	}
	keep, gone, last := base+step.Keep, base+step.Gone, base+step.Last
	xs[keep] = merge(xs[keep], xs[gone])
	xs[gone] = xs[last]
	return removeAt(xs, last)
}

// Ways rescaleSlots makes a new input's value and merges two.
func same[T any](x T) T        { return x }
func zero[T any](T) T          { var z T; return z }
func first[T any](a, _ T) T    { return a }
func both(a, b bool) bool      { return a && b }
func lower(a, b int64) int64   { return min(a, b) }
func sumOf(a, b uint64) uint64 { return a + b }

// rescaleInputs renumbers the result's inputs (last-stage instances)
// after an in-place rescale of the last stage at checkpoint epoch, like
// instance.rescaleInputs.
func (r *resultStore) rescaleInputs(step rescaleStep, epoch uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[int]uint64{}
	}
	width := step.Added // the old width
	if step.Out {
		r.seen[step.Added] = epoch
	} else {
		width = step.Last + 1
		if e, ok := r.seen[step.Last]; ok {
			r.seen[step.Gone] = e
		}
		delete(r.seen, step.Last)
	}
	for len(r.wms) < width { // as advance grows them
		r.wms = append(r.wms, math.MinInt64)
	}
	r.wms = rescaleSlots(r.wms, step, 0, width, same, lower)
}
