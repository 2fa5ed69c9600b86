package cluster

import (
	"context"
	"errors"
	"fmt"
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
	// bytes is the batch bytes held, for SHOW INSTANCES.
	bytes atomic.Int64

	// old is the outlet a reroute replaces, closed to end a send that
	// waits on it; guarded by closeMu (not mu, which a waiting send
	// holds).
	closeMu sync.Mutex
	current outlet

	mu sync.Mutex
	// protected by mu
	to     channelName // the consumer's channel (its incarnation)
	under  outlet
	broken bool      // the consumer is lost: keep, do not send
	base   uint64    // the checkpoint epoch the buffer starts after
	log    []message // everything sent after base's barrier
}

func newBackupOutlet(p *pipeline, to channelName, under outlet) *backupOutlet {
	b := &backupOutlet{p: p, to: to, under: under, current: under}
	return b
}

func (b *backupOutlet) send(ctx context.Context, m message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.rec != nil {
		m.rec.Retain()
		b.bytes.Add(exec.RecordBytes(m.rec))
	}
	b.log = append(b.log, m)
	if b.broken {
		if m.rec != nil {
			m.rec.Release()
		}
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
	b.p.log.Warn().Err(err).Str("channel", b.to.String()).Msg("lost a consumer; keeping its input for the recovery")
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

// trim drops what checkpoint epoch covers: everything before its
// barrier. An outlet that has not passed the barrier yet keeps all (the
// next checkpoint trims it).
func (b *backupOutlet) trim(epoch uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if epoch <= b.base {
		return
	}
	for i, m := range b.log {
		if m.ckpt != epoch {
			continue
		}
		for _, d := range b.log[:i+1] {
			if d.rec != nil {
				b.bytes.Add(-exec.RecordBytes(d.rec))
				d.rec.Release()
			}
		}
		b.log = append([]message(nil), b.log[i+1:]...)
		b.base = epoch
		return
	}
}

// replayStart is the index of the first message after epoch's barrier.
func (b *backupOutlet) replayStart(epoch uint64) (int, error) {
	if epoch == b.base {
		return 0, nil
	}
	for i, m := range b.log {
		if m.ckpt == epoch {
			return i + 1, nil
		}
	}
	return 0, fmt.Errorf("the output kept for %s starts after checkpoint %d, not %d", b.to, b.base, epoch)
}

// detach is the first half of a reroute to consumer to (a restored
// incarnation): from now on sends are only kept, and the old channel is
// closed. It returns how many messages the reroute will replay.
func (b *backupOutlet) detach(to channelName, epoch uint64) (int, error) {
	b.closeMu.Lock()
	old := b.current
	b.closeMu.Unlock()
	old.close() // ends a send waiting on the lost consumer
	b.mu.Lock()
	defer b.mu.Unlock()
	start, err := b.replayStart(epoch)
	if err != nil {
		return 0, err
	}
	b.broken, b.to = true, to
	return len(b.log) - start, nil
}

// reroute is the second half: send everything after epoch's barrier on
// the new channel, which then carries what follows.
func (b *backupOutlet) reroute(ctx context.Context, under outlet, epoch uint64) error {
	b.closeMu.Lock()
	b.current = under
	b.closeMu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	start, err := b.replayStart(epoch)
	if err != nil {
		return err
	}
	b.under, b.broken = under, false
	for _, m := range b.log[start:] {
		if m.rec != nil {
			m.rec.Retain()
		}
		if err := b.sendLocked(ctx, m); err != nil || b.broken {
			return err
		}
	}
	return nil
}

// release drops everything kept (the instance stopped).
func (b *backupOutlet) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.log {
		if m.rec != nil {
			m.rec.Release()
		}
	}
	b.log = nil
	b.bytes.Store(0)
}

// target is the consumer's channel the outlet sends on.
func (b *backupOutlet) target() channelName {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.to
}
