package elastic

import (
	"context"
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

	mu    sync.Mutex
	taken map[string]time.Time // provider ID → when Take acquired it
}

// takenGrace is how long a worker Take handed out is not given back for
// having no instances (the scale-out is placing them).
const takenGrace = time.Minute

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

// Take acquires a warm worker (the pool starts one when none is) and
// waits until it has joined the coordinator; the pool is refilled in the
// background.
func (s *Spares) Take(ctx context.Context) (string, error) {
	pw, err := s.Pool.Acquire(ctx)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if s.taken == nil {
		s.taken = map[string]time.Time{}
	}
	s.taken[pw.ID] = time.Now()
	s.mu.Unlock()
	go func() {
		fctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		_ = s.Pool.Fill(fctx)
	}()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		for _, w := range s.Coordinator.Workers() {
			if w.Status == control.StatusAlive && w.DataAddr != "" && sameWorker(w, pw) {
				return w.ID, nil
			}
		}
		select {
		case <-ctx.Done():
			s.Pool.Release(pw.ID)
			return "", ctx.Err()
		case <-t.C:
		}
	}
}

// Keep fills the pool, then every interval gives back the workers a
// scale-in left without instances and stops warm workers idle too long,
// until ctx ends.
func (s *Spares) Keep(ctx context.Context, every time.Duration) error {
	if err := s.Pool.Fill(ctx); err != nil {
		return err
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			counts := s.Coordinator.InstancesPerWorker()
			for _, w := range s.Coordinator.Workers() {
				if n, ok := counts[w.ID]; ok && n == 0 {
					for _, pw := range s.Pool.InUse() {
						s.mu.Lock()
						recent := now.Sub(s.taken[pw.ID]) < takenGrace
						s.mu.Unlock()
						if sameWorker(w, pw) && !recent {
							s.Pool.Release(pw.ID)
						}
					}
				}
			}
			_, _ = s.Pool.Reap(ctx, now)
			_ = s.Pool.Fill(ctx)
		}
	}
}

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
