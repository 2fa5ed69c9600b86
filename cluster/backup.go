package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/spatedb/spate/exec"
)

// Upstream backup (SEEP): with checkpoints on, every outlet of an
// instance keeps what it sent to its consumer since the newest complete
// checkpoint, checkpoint barriers included. When the consumer is lost
// (its worker died, or the channel broke) the outlet goes on keeping,
// without sending, until a repair (recovery.go) points it at the
// consumer's restored incarnation; then it replays everything after the
// barrier of the checkpoint the consumer was restored from, and carries
// on. A complete checkpoint trims every buffer to its barrier, so a
// buffer holds at most about one checkpoint interval of output.

// errConsumerGone is a send to an instance that was stopped (a repair
// replaced it).
var errConsumerGone = errors.New("the consumer instance was stopped")

// lostConsumer reports whether a send failed because the consumer (or
// the channel to it) is gone, which a repair fixes.
func lostConsumer(err error) bool {
	return errors.Is(err, errConsumerGone) || recoverable(err)
}

// backupOutlet is an outlet that keeps what it sends for replay.
type backupOutlet struct {
	p *pipeline
	// bytes is the batch bytes held, for SHOW INSTANCES; count the
	// messages.
	bytes, count atomic.Int64

	// current is the outlet sends go to, closed to end a send that waits
	// on a lost consumer; guarded by closeMu (not mu, which such a send
	// holds).
	closeMu sync.Mutex
	current outlet

	mu sync.Mutex
	// protected by mu
	to     channelName // the consumer's channel (its incarnation)
	under  outlet
	broken bool          // the consumer is lost: keep, do not send
	base   uint64        // the checkpoint epoch the buffer starts after
	log    []keptMessage // everything sent after base's barrier
	// detached counts detaches: a reroute attaches only if no later
	// repair detached the outlet again.
	detached int
}

// keptMessage is a message kept for replay with its place in the order
// of everything the pipeline's outlets sent (pipeline.sendSeq), by which
// replays of several outlets are merged.
type keptMessage struct {
	seq uint64
	m   message
}

func newBackupOutlet(p *pipeline, to channelName, under outlet) *backupOutlet {
	return &backupOutlet{p: p, to: to, under: under, current: under}
}

func (b *backupOutlet) send(ctx context.Context, m message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.rec != nil {
		m.rec.Retain()
		b.bytes.Add(exec.RecordBytes(m.rec))
	}
	b.log = append(b.log, keptMessage{seq: b.p.sendSeq.Add(1), m: m})
	b.count.Add(1)
	if b.broken {
		m.release()
		return nil
	}
	return b.sendLocked(ctx, m)
}

// sendLocked sends m (taking its batch reference) on the current
// channel; a lost consumer turns the outlet broken and is reported.
func (b *backupOutlet) sendLocked(ctx context.Context, m message) error {
	err := b.under.send(ctx, m)
	if err == nil || ctx.Err() != nil || !lostConsumer(err) {
		return err
	}
	b.broken = true
	// Info: a rescale that replaces the consumer closes its channel too;
	// a worker that died is reported (as a warning) by the coordinator.
	b.p.log.Info().Err(err).Str("channel", b.to.String()).Msg("a consumer's channel closed; keeping its input for the repair or rescale that replaces it")
	if b.p.onLost != nil {
		go b.p.onLost(b.to)
	}
	return nil
}

func (b *backupOutlet) close() {
	b.closeMu.Lock()
	cur := b.current
	b.closeMu.Unlock()
	cur.close()
}

func (b *backupOutlet) setCurrent(o outlet) {
	b.closeMu.Lock()
	b.current = o
	b.closeMu.Unlock()
}

// trim drops what checkpoint epoch covers: everything before its
// barrier. An outlet that has not passed the barrier yet keeps all (the
// next checkpoint trims it).
func (b *backupOutlet) trim(epoch uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if epoch <= b.base {
		return
	}
	for i, k := range b.log {
		if k.m.ckpt != epoch {
			continue
		}
		for _, d := range b.log[:i+1] {
			if d.m.rec != nil {
				b.bytes.Add(-exec.RecordBytes(d.m.rec))
				d.m.rec.Release()
			}
		}
		b.log = append([]keptMessage(nil), b.log[i+1:]...)
		b.count.Store(int64(len(b.log)))
		b.base = epoch
		return
	}
}

// replayStart is the index of the first message after epoch's barrier.
func (b *backupOutlet) replayStart(epoch uint64) (int, error) {
	if epoch == b.base {
		return 0, nil
	}
	for i, k := range b.log {
		if k.m.ckpt == epoch {
			return i + 1, nil
		}
	}
	return 0, fmt.Errorf("the output kept for %s starts after checkpoint %d, not %d", b.to, b.base, epoch)
}

// A reroute to a consumer's restored incarnation goes in three steps:
// detach (from now on sends are only kept, and the old channel closes),
// replay (what was kept after the checkpoint's barrier, sent by the
// caller on the new channel while the instance goes on keeping), and
// attach (what was kept meanwhile, then sends go to the new channel).

// detach returns how many messages the replay will send and the
// detach's number, for attach.
func (b *backupOutlet) detach(to channelName, epoch uint64, gone []string) (n, id int, err error) {
	// End a send waiting on the lost consumer: at once when its host is
	// gone (a frozen one would never acknowledge a clean end).
	b.closeMu.Lock()
	cur := b.current
	b.closeMu.Unlock()
	if r, ok := cur.(remoteOutlet); ok && slices.Contains(gone, r.host) {
		r.s.Abort()
	} else {
		cur.close()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	start, err := b.replayStart(epoch)
	if err != nil {
		return 0, 0, err
	}
	b.broken, b.to = true, to
	b.detached++
	return len(b.log) - start, b.detached, nil
}

// detachedAs reports whether the outlet's last detach is number id (no
// later repair detached it again).
func (b *backupOutlet) detachedAs(id int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.detached == id
}

// replay returns the messages kept after epoch's barrier, their batches
// retained for the caller, and the number of the newest message kept.
func (b *backupOutlet) replay(epoch uint64) ([]keptMessage, uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	start, err := b.replayStart(epoch)
	if err != nil {
		return nil, 0, err
	}
	out := append([]keptMessage(nil), b.log[start:]...)
	for _, k := range out {
		if k.m.rec != nil {
			k.m.rec.Retain()
		}
	}
	var upto uint64
	if len(b.log) > 0 {
		upto = b.log[len(b.log)-1].seq
	}
	return out, upto, nil
}

// attach sends what was kept after the message numbered upto (the end
// of the replay) on under, which then takes every send — unless a later
// repair detached the outlet again (id is detach's).
func (b *backupOutlet) attach(ctx context.Context, under outlet, upto uint64, id int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if id != b.detached {
		return nil
	}
	b.under, b.broken = under, false
	for _, k := range b.log {
		if k.seq <= upto {
			continue
		}
		m := k.m
		if m.rec != nil {
			m.rec.Retain()
		}
		if err := b.sendLocked(ctx, m); err != nil || b.broken {
			return err
		}
	}
	return nil
}

// keep adds m (taking its batch reference), numbered seq, to what the
// outlet keeps, without sending it.
func (b *backupOutlet) keep(seq uint64, m message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.rec != nil {
		b.bytes.Add(exec.RecordBytes(m.rec))
	}
	b.log = append(b.log, keptMessage{seq: seq, m: m})
	b.count.Add(1)
}

// release drops everything kept (the instance stopped).
func (b *backupOutlet) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range b.log {
		k.m.release()
	}
	b.log = nil
	b.bytes.Store(0)
	b.count.Store(0)
}

// target is the consumer's channel the outlet sends on.
func (b *backupOutlet) target() channelName {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.to
}
