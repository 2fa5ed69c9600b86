package cluster

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"time"
)

// Replays (SEEP): a repair points each outlet that fed a lost consumer at
// the consumer's restored incarnation (resumeRepair). The outlet sends
// what it kept after the barrier of the checkpoint the consumer was
// restored from, then carries on with what it kept meanwhile (backup.go:
// detach, replay, attach).
//
// The source stages' outlets (on the coordinator) are replayed together,
// merged in the order their messages were first sent. When the replay
// turns from one relation's batches to another's, it first waits until
// the former's (on each source stage reading it) reached the result, as
// each statement's rows did before it was acknowledged: a stream's rows
// must not overtake the table rows a lookup join finds for them. Stages
// reading the same relation (the two sides of a self-join) took each
// statement's rows together, and are replayed so, without a wait
// between them. That wait is a flush barrier on
// every outlet of the source, so two such replays at once would wait for
// each other forever (each one's barrier kept, unsent, by an outlet the
// other detached). There is one at a time: a repair that begins while
// one runs stops it and carries on what it had left with its own.

// reroute is an outlet a repair points at a restored consumer.
type reroute struct {
	in    *instance
	b     *backupOutlet
	ch    channelName // the restored consumer's
	id    int         // the detach's
	epoch uint64      // the checkpoint the consumer was restored from
	under outlet      // the new channel (nil until opened)
	upto  uint64      // the newest message the replay covers
	// lost says the consumer was lost during the replay (a repair that
	// restores it again replays it anew); attached that the replay is
	// through and the outlet sends on under again.
	lost, attached bool
}

// replayItem is a kept message a replay sends on a reroute.
type replayItem struct {
	k keptMessage
	r *reroute
}

// replayRun is one replay: its reroutes, what it sends in order, and how
// far it got.
type replayRun struct {
	rs       []*reroute // opened
	unopened []*reroute // not yet: it was stopped first
	items    []replayItem
	next     int // the first item not sent
	// inTurn makes it wait between relations' batches (a replay of the
	// sources); sent is the source stages whose batches it sent since
	// its last wait, all reading one relation.
	inTurn bool
	sent   []int

	stop     chan struct{} // closed by halt: the run returns, leaving the rest
	stopOnce sync.Once
	done     chan struct{} // closed when the run returned
}

func newReplayRun(inTurn bool) *replayRun {
	return &replayRun{inTurn: inTurn, stop: make(chan struct{}), done: make(chan struct{})}
}

func (run *replayRun) halt() { run.stopOnce.Do(func() { close(run.stop) }) }

func (run *replayRun) halted() bool {
	select {
	case <-run.stop:
		return true
	default:
		return false
	}
}

// errReplayHalted ends a replay's wait when a repair stopped it.
var errReplayHalted = errors.New("a later repair carries on the replay")

// replay sends what the outlets rs of one instance (not a source) kept
// after checkpoint epoch's barrier to their restored consumers, then
// attaches them.
func (p *pipeline) replay(pl placement, epoch uint64, rs []*reroute) {
	ctx := rs[0].in.ctx
	run := newReplayRun(false)
	defer close(run.done)
	for _, r := range rs {
		r.epoch = epoch
	}
	p.openReroutes(ctx, pl, run, rs)
	run.sortItems()
	p.runReplay(ctx, run)
}

// replaySources starts the replay of the source stages' outlets rs (to
// consumers restored from checkpoint epoch), carrying on what the replay
// prior, which takeSourceReplay stopped, had left.
func (p *pipeline) replaySources(pl placement, epoch uint64, rs []*reroute, prior *replayRun) {
	run := newReplayRun(true)
	for _, r := range rs {
		r.epoch = epoch
	}
	p.mu.Lock()
	p.sourceReplay = run
	p.mu.Unlock()
	go func() {
		defer close(run.done)
		if prior != nil {
			<-prior.done
			run.carryOn(prior)
		}
		run.unopened = append(run.unopened, rs...)
		if run.halted() {
			return // stopped already: the next run opens them
		}
		open := run.unopened
		run.unopened = nil
		p.openReroutes(p.ctx, pl, run, open)
		run.sortItems()
		p.runReplay(p.ctx, run)
		p.mu.Lock()
		if p.sourceReplay == run && !run.halted() {
			p.sourceReplay = nil
		}
		p.mu.Unlock()
	}()
}

// takeSourceReplay stops the sources' replay in progress, if any, and
// returns it for the next one to carry on (replaySources).
func (p *pipeline) takeSourceReplay() *replayRun {
	p.mu.Lock()
	run := p.sourceReplay
	p.sourceReplay = nil
	p.mu.Unlock()
	if run != nil {
		run.halt()
	}
	return run
}

// putBackSourceReplay keeps a stopped replay that no other carried on
// for the next repair (this one failed before it replayed).
func (p *pipeline) putBackSourceReplay(run *replayRun) {
	p.mu.Lock()
	if p.sourceReplay == nil {
		p.sourceReplay = run
	}
	p.mu.Unlock()
}

// carryOn takes what the stopped run prior had left: its reroutes that
// are not through and that no later repair detached again, with their
// messages it had not sent.
func (run *replayRun) carryOn(prior *replayRun) {
	run.sent = prior.sent
	ours := map[*reroute]bool{}
	for _, r := range prior.rs {
		switch {
		case r.lost || r.attached:
		case r.b.detachedAs(r.id):
			ours[r] = true
			run.rs = append(run.rs, r)
		default:
			// Detached again: that detach may have come before the
			// channel opened, and so not closed it.
			go r.under.close()
		}
	}
	for _, r := range prior.unopened {
		if r.b.detachedAs(r.id) {
			run.unopened = append(run.unopened, r)
		}
	}
	prior.unopened = nil
	for _, it := range prior.items[prior.next:] {
		if ours[it.r] {
			run.items = append(run.items, it)
		} else {
			it.k.m.release()
		}
	}
	prior.items, prior.next = nil, 0
}

// openReroutes points the reroutes rs at new channels to their restored
// consumers and adds to the run what they kept after the barrier of the
// checkpoint each consumer was restored from.
func (p *pipeline) openReroutes(ctx context.Context, pl placement, run *replayRun, rs []*reroute) {
	for _, r := range rs {
		run.rs = append(run.rs, r)
		under, err := p.outlet(ctx, pl, r.ch)
		if err != nil {
			p.replayLost(ctx, r, err)
			continue
		}
		r.under = under
		r.b.setCurrent(under)
		kept, upto, err := r.b.replay(r.epoch)
		if err != nil {
			p.replayLost(ctx, r, err)
			continue
		}
		r.upto = upto
		for _, k := range kept {
			run.items = append(run.items, replayItem{k, r})
		}
	}
}

// sortItems puts what the run has not sent in the order it was first
// sent.
func (run *replayRun) sortItems() {
	rest := run.items[run.next:]
	sort.SliceStable(rest, func(i, j int) bool {
		if replaySourcesInTurn {
			if a, b := rest[i].r.in.stage, rest[j].r.in.stage; a != b {
				return a > b
			}
		}
		return rest[i].k.seq < rest[j].k.seq
	})
}

// replaySourcesInTurn, set by tests, replays what each source stage kept
// in turn, the last stage first, instead of in the order it was sent: a
// restored instance with several inputs then gets them in an order of
// their own, unlike the lost one.
var replaySourcesInTurn bool

// replayFlushHook, set by tests, runs before each wait between source
// stages' batches; it should return when stop is closed.
var replayFlushHook func(stop <-chan struct{})

// runReplay sends the run's messages, then attaches its reroutes. A
// reroute whose consumer is lost meanwhile is reported and left out. It
// returns early when the run is halted, leaving the rest to the run that
// carries it on.
func (p *pipeline) runReplay(ctx context.Context, run *replayRun) {
	defer func() {
		if ctx.Err() != nil {
			run.releaseRest()
		}
	}()
	for run.next < len(run.items) {
		if run.halted() || ctx.Err() != nil {
			return
		}
		it := run.items[run.next]
		if it.r.lost {
			it.k.m.release()
			run.next++
			continue
		}
		if src := it.r.in.stage; run.inTurn && it.k.m.rec != nil && !slices.Contains(run.sent, src) {
			if len(run.sent) > 0 && p.relation(src) != p.relation(run.sent[0]) {
				r, err := p.replayFlush(ctx, run)
				switch {
				case errors.Is(err, errReplayHalted) || ctx.Err() != nil:
					return
				case r != nil:
					p.replayLost(ctx, r, err)
					continue
				case err != nil:
					// A repair began (its waits were abandoned): it may
					// have taken the barrier's way; wait again, unless it
					// carries this replay on.
					p.pauseReplay(ctx, run)
					continue
				}
				run.sent = run.sent[:0]
			}
			run.sent = append(run.sent, src)
		}
		run.next++
		if err := it.r.under.send(ctx, it.k.m); err != nil {
			p.replayLost(ctx, it.r, err)
		}
	}
	for _, r := range run.rs {
		if r.lost || r.attached {
			continue
		}
		if err := r.b.attach(ctx, r.under, r.upto, r.id); err != nil {
			p.replayLost(ctx, r, err)
			continue
		}
		r.attached = true
	}
}

// pauseReplay waits a little before a replay sends another flush barrier
// (the last one's wait was abandoned), and while a repair waits for a
// worker to join (p.stalled: a flush's wait ends at once); it returns
// early when the run is stopped.
func (p *pipeline) pauseReplay(ctx context.Context, run *replayRun) {
	for {
		select {
		case <-run.stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		if !p.stalled.Load() {
			return
		}
	}
}

// releaseRest drops what a run that will not go on had left to send.
func (run *replayRun) releaseRest() {
	for _, it := range run.items[run.next:] {
		it.k.m.release()
	}
	run.items, run.next = nil, 0
}

// replayLost reports a reroute whose restored consumer was lost during
// the replay: the rest of its replay is dropped, and the repair that
// restores the consumer again replays it anew.
func (p *pipeline) replayLost(ctx context.Context, r *reroute, err error) {
	r.lost = true
	if ctx.Err() != nil {
		return
	}
	p.log.Warn().Err(err).Str("channel", r.ch.String()).Msg("replaying to a restored consumer")
	if p.onLost != nil {
		go p.onLost(r.ch)
	}
}

// relation is what source stage src reads.
func (p *pipeline) relation(src int) string {
	return p.query.Plan.Stages[src].Source.Relation
}

// replayFlush waits until everything the source stages in run.sent sent
// so far, the replay included, reached the result: a flush barrier on
// every outlet of each, sent directly on the new channels of those the
// run replays. It returns the reroute whose channel failed, if one did.
func (p *pipeline) replayFlush(ctx context.Context, run *replayRun) (*reroute, error) {
	if replayFlushHook != nil {
		replayFlushHook(run.stop)
	}
	for _, src := range run.sent {
		if r, err := p.flushSource(ctx, run, src); r != nil || err != nil {
			return r, err
		}
	}
	return nil, nil
}

// flushSource is replayFlush for one source stage.
func (p *pipeline) flushSource(ctx context.Context, run *replayRun, src int) (*reroute, error) {
	if run.halted() {
		return nil, errReplayHalted
	}
	direct := map[*backupOutlet]*reroute{}
	for _, r := range run.rs {
		if !r.lost && !r.attached {
			direct[r.b] = r
		}
	}
	id, w, forget := p.newWait()
	defer forget()
	in := p.stages[src][0]
	for _, o := range in.outlets() {
		m := message{barrier: id, source: src, from: in.idx, side: p.consumer[src].side}
		if r := direct[o.(*backupOutlet)]; r != nil {
			if err := r.under.send(ctx, m); err != nil {
				return r, err
			}
		} else if err := o.send(ctx, m); err != nil {
			return nil, err
		}
	}
	select {
	case <-w.done:
		if w.abandoned {
			return nil, errors.New("another repair began")
		}
		return nil, nil
	case <-run.stop:
		return nil, errReplayHalted
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
