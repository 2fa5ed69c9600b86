package elastic

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/cluster/control"
)

// Spares gives a coordinator's scale-outs the warm workers of a pool
// (cluster.WorkerPool): a registered worker the pool holds warm is a
// spare, which only a scale-out places instances on; Take acquires one
// and returns its registry ID once it has joined.
type Spares struct {
	Pool        *Pool
	Coordinator *cluster.Coordinator
	// OnError is told when filling the pool fails (Keep goes on trying);
	// nil: not told.
	OnError func(error)

	mu sync.Mutex
	// placing holds the workers Take handed out whose scale-out has not
	// ended (TakeEnded): provider ID → registry ID ("" until it joined).
	// They are not given back for having no instances: the scale-out is
	// placing them.
	placing  map[string]string
	toldFill time.Time // when OnError was last told of a failed fill
}

var _ cluster.WorkerPool = (*Spares)(nil)

// Spare reports whether w is one of the pool's warm workers.
func (s *Spares) Spare(w control.WorkerInfo) bool {
	for _, pw := range s.Pool.Warm() {
		if sameWorker(w, pw) {
			return true
		}
	}
	return false
}

// Pooled reports whether w is one of the pool's workers, warm or taken:
// the workers beyond the cluster's own, which a query's default
// parallelism does not count.
func (s *Spares) Pooled(w control.WorkerInfo) bool {
	for _, pw := range append(s.Pool.Warm(), s.Pool.InUse()...) {
		if sameWorker(w, pw) {
			return true
		}
	}
	return false
}

// claimBusy takes into use the warm workers that run instances (placed
// there when no other worker lived): a scale-out must not take one as
// new capacity, and the pool starts others to stay warm.
func (s *Spares) claimBusy() {
	counts := s.Coordinator.InstancesPerWorker()
	for _, w := range s.Coordinator.Workers() {
		if counts[w.ID] == 0 {
			continue
		}
		for _, pw := range s.Pool.Warm() {
			if sameWorker(w, pw) {
				s.Pool.Claim(pw.ID)
			}
		}
	}
}

// Take acquires a warm worker (the pool starts one when none is) and
// waits until it has joined the coordinator; the pool is refilled in the
// background. A worker that dies first is discarded and another taken,
// up to takeAttempts in all.
func (s *Spares) Take(ctx context.Context) (string, error) {
	s.prune(ctx)
	s.claimBusy()
	var err error
	for range takeAttempts {
		var pw Worker
		if pw, err = s.Pool.Acquire(ctx); err != nil {
			return "", err
		}
		s.setPlacing(pw.ID, "")
		go func() {
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			_ = s.Pool.Fill(fctx)
		}()
		var id string
		if id, err = s.joined(ctx, pw); err == nil {
			s.setPlacing(pw.ID, id)
			return id, nil
		}
		s.mu.Lock()
		delete(s.placing, pw.ID)
		s.mu.Unlock()
		if !errors.Is(err, errWorkerGone) {
			s.Pool.Release(pw.ID)
			return "", err
		}
		_ = s.Pool.Discard(ctx, pw.ID)
	}
	return "", err
}

// TakeEnded ends the placing of the worker with registry ID id: once it
// runs no instance, the next Keep tick gives it back to the pool.
func (s *Spares) TakeEnded(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for pid, rid := range s.placing {
		if rid == id {
			delete(s.placing, pid)
		}
	}
}

func (s *Spares) setPlacing(providerID, registryID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.placing == nil {
		s.placing = map[string]string{}
	}
	s.placing[providerID] = registryID
}

// takeAttempts bounds the workers Take tries when they die before joining.
const takeAttempts = 3

var errWorkerGone = errors.New("the pool's worker died before it joined")

// joined waits until pw has joined the coordinator and returns its
// registry ID, or errWorkerGone once it is dead.
func (s *Spares) joined(ctx context.Context, pw Worker) (string, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for tick := 1; ; tick++ {
		if id, alive, dead := s.registered(pw); alive {
			return id, nil
		} else if dead {
			return "", errWorkerGone
		}
		if tick%50 == 0 && s.Pool.Gone(ctx, pw.ID) { // asked once a second
			return "", errWorkerGone
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.C:
		}
	}
}

// registered finds pw among the coordinator's workers: its ID when it is
// alive, or dead when it registered and every registration is dead. Only
// registrations after the pool started pw count: an older one with the
// same process ID or address was another worker's.
func (s *Spares) registered(pw Worker) (id string, alive, dead bool) {
	started := s.Pool.Known(pw.ID)
	seen := false
	for _, w := range s.Coordinator.Workers() {
		if !sameWorker(w, pw) || w.ConnectedSince.Before(started) {
			continue
		}
		if w.Status == control.StatusAlive && w.DataAddr != "" {
			return w.ID, true, false
		}
		seen = seen || w.Status == control.StatusDead
	}
	return "", false, seen
}

// prune forgets the pool's workers that died: those the provider no
// longer runs, and those the coordinator saw die (stopped, for a VM whose
// worker process died).
func (s *Spares) prune(ctx context.Context) {
	_, _ = s.Pool.Prune(ctx)
	for _, pw := range append(s.Pool.Warm(), s.Pool.InUse()...) {
		if _, _, dead := s.registered(pw); dead {
			_ = s.Pool.Discard(ctx, pw.ID)
		}
	}
}

// Keep fills the pool, then every interval takes into use the warm
// workers queries were placed on, gives back the workers a scale-in
// left without instances, forgets those that died and stops warm
// workers idle too long, refilling it (a failed fill is tried again),
// until ctx ends.
func (s *Spares) Keep(ctx context.Context, every time.Duration) {
	s.fill(ctx)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.claimBusy()
			s.releaseIdle()
			s.prune(ctx)
			_, _ = s.Pool.Reap(ctx, now)
			s.fill(ctx)
		}
	}
}

// releaseIdle gives back the workers in use that run no instance (a
// scale-in emptied them, or the scale-out that took one placed nothing
// on it), unless the scale-out that took one is still placing.
func (s *Spares) releaseIdle() {
	counts := s.Coordinator.InstancesPerWorker()
	for _, w := range s.Coordinator.Workers() {
		if n, ok := counts[w.ID]; !ok || n > 0 {
			continue
		}
		for _, pw := range s.Pool.InUse() {
			if !sameWorker(w, pw) {
				continue
			}
			s.mu.Lock()
			_, placing := s.placing[pw.ID]
			s.mu.Unlock()
			if !placing {
				s.Pool.Release(pw.ID)
			}
		}
	}
}

// fill fills the pool, telling OnError when it fails: the first time,
// then at most once every fillErrorSpacing while it goes on failing.
func (s *Spares) fill(ctx context.Context) {
	err := s.Pool.Fill(ctx)
	s.mu.Lock()
	tell := err != nil && time.Since(s.toldFill) >= fillErrorSpacing
	if tell {
		s.toldFill = time.Now()
	} else if err == nil {
		s.toldFill = time.Time{}
	}
	s.mu.Unlock()
	if tell && s.OnError != nil && ctx.Err() == nil {
		s.OnError(err)
	}
}

// fillErrorSpacing spaces the reports of a pool that keeps failing to fill.
const fillErrorSpacing = time.Minute

// sameWorker matches a registered worker with a provider's: local
// processes by process ID ("pid-1234"), VMs by private address.
func sameWorker(w control.WorkerInfo, pw Worker) bool {
	if pid, ok := strings.CutPrefix(pw.ID, "pid-"); ok {
		n, err := strconv.Atoi(pid)
		return err == nil && n == w.PID
	}
	host, _, err := net.SplitHostPort(w.DataAddr)
	return err == nil && pw.Addr != "" && host == pw.Addr
}
