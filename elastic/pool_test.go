package elastic

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spatedb/spate/cluster"
)

// listedProvider runs the workers in running; duringList runs after List
// took its answer (as a Fill might meanwhile).
type listedProvider struct {
	running    []Worker
	next       int
	duringList func()
	stopped    []string
}

func (f *listedProvider) Name() string { return "listed" }

func (f *listedProvider) Start(_ context.Context, n int) ([]Worker, error) {
	var out []Worker
	for range n {
		f.next++
		w := Worker{ID: fmt.Sprintf("w%d", f.next), Started: time.Now()}
		f.running = append(f.running, w)
		out = append(out, w)
	}
	return out, nil
}

func (f *listedProvider) List(context.Context) ([]Worker, error) {
	listed := slices.Clone(f.running)
	if f.duringList != nil {
		f.duringList()
	}
	return listed, nil
}

func (f *listedProvider) Stop(_ context.Context, ids []string) error {
	f.stopped = append(f.stopped, ids...)
	f.running = slices.DeleteFunc(f.running, func(w Worker) bool { return slices.Contains(ids, w.ID) })
	return nil
}

// TestPruneForgetsDeadWorkers: a warm worker and an in-use one that the
// provider no longer runs are forgotten and stopped, so the next Acquire
// hands out a live one and Fill starts a replacement; a worker started
// less than ListGrace ago (while the provider was being asked) is kept;
// Discard stops a worker and forgets it.
func TestPruneForgetsDeadWorkers(t *testing.T) {
	ctx := context.Background()
	prov := &listedProvider{}
	pool := NewPool(prov, 2, time.Minute)
	pool.ListGrace = 50 * time.Millisecond
	if err := pool.Fill(ctx); err != nil {
		t.Fatal(err)
	}
	_, _ = pool.Acquire(ctx)               // w1, in use
	if err := pool.Fill(ctx); err != nil { // w3 joins w2
		t.Fatal(err)
	}
	prov.running = slices.DeleteFunc(prov.running, func(w Worker) bool { return w.ID == "w1" || w.ID == "w2" }) // both died
	prov.duringList = func() {                                                                                  // w4 starts after the provider answered
		pool.Size = 3
		if err := pool.Fill(ctx); err != nil {
			t.Error(err)
		}
		pool.Size = 2
	}
	time.Sleep(60 * time.Millisecond) // the pool has known them for ListGrace
	gone, err := pool.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(gone)
	if fmt.Sprint(gone) != "[w1 w2]" {
		t.Errorf("pruned %v, want [w1 w2]", gone)
	}
	prov.duringList = nil
	if warm := pool.Warm(); len(warm) != 2 || warm[0].ID != "w3" || warm[1].ID != "w4" {
		t.Errorf("warm after the prune: %v, want w3 and w4 (started meanwhile)", warm)
	}
	if w, _ := pool.Acquire(ctx); w.ID != "w3" {
		t.Errorf("acquired %s after the prune, want the live w3", w.ID)
	}
	if err := pool.Fill(ctx); err != nil {
		t.Fatal(err)
	}
	if warm, inUse := pool.Counts(); warm != 2 || inUse != 1 {
		t.Errorf("after Fill: %d warm, %d in use; want 2 and 1", warm, inUse)
	}
	if err := pool.Discard(ctx, "w3"); err != nil {
		t.Fatal(err)
	}
	if slices.Sort(prov.stopped); fmt.Sprint(prov.stopped) != "[w1 w2 w3]" {
		t.Errorf("stopped %v, want the pruned w1, w2 and the discarded w3", prov.stopped)
	}
	if warm, inUse := pool.Counts(); warm != 2 || inUse != 0 {
		t.Errorf("after Discard: %d warm, %d in use", warm, inUse)
	}
}

// failingProvider fails its first fails Starts (as an EC2 endpoint that
// cannot be reached), then starts workers.
type failingProvider struct {
	listedProvider
	mu    sync.Mutex
	fails int
}

func (f *failingProvider) Start(ctx context.Context, n int) ([]Worker, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return nil, errors.New("connection refused")
	}
	return f.listedProvider.Start(ctx, n)
}

func (f *failingProvider) List(ctx context.Context) ([]Worker, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.listedProvider.List(ctx)
}

// TestKeepRetriesAFailedFill: a pool whose provider fails at first is
// filled once it works again (Keep went on), and the failure is
// reported once, not at every try.
func TestKeepRetriesAFailedFill(t *testing.T) {
	c, err := cluster.NewCoordinator(cluster.Config{Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	prov := &failingProvider{fails: 3}
	var reported atomic.Int32
	s := &Spares{Pool: NewPool(prov, 2, time.Minute), Coordinator: c, OnError: func(error) { reported.Add(1) }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Keep(ctx, 10*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for warm, _ := s.Pool.Counts(); warm != 2; warm, _ = s.Pool.Counts() {
		if time.Now().After(deadline) {
			t.Fatalf("the pool has %d warm workers after its provider recovered, want 2", warm)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := reported.Load(); n != 1 {
		t.Errorf("the failed fills were reported %d times, want once", n)
	}
}

// slowProvider's Starts wait until release is closed.
type slowProvider struct {
	failingProvider
	entered chan struct{}
	release chan struct{}
}

func (f *slowProvider) Start(ctx context.Context, n int) ([]Worker, error) {
	f.entered <- struct{}{}
	<-f.release
	return f.failingProvider.Start(ctx, n)
}

// TestConcurrentFillsDoNotOvershoot: two Fills at once (a scale-out's
// and Keep's) start the pool's shortfall once between them, not once
// each.
func TestConcurrentFillsDoNotOvershoot(t *testing.T) {
	prov := &slowProvider{entered: make(chan struct{}, 2), release: make(chan struct{})}
	pool := NewPool(prov, 2, time.Minute)
	done := make(chan error, 2)
	go func() { done <- pool.Fill(context.Background()) }()
	<-prov.entered // the first is starting 2
	go func() { done <- pool.Fill(context.Background()) }()
	select {
	case err := <-done: // the second has nothing to start
		if err != nil {
			t.Fatal(err)
		}
	case <-prov.entered:
		close(prov.release)
		t.Fatal("the second Fill starts workers too")
	}
	close(prov.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if warm, _ := pool.Counts(); warm != 2 || len(prov.running) != 2 {
		t.Errorf("%d warm, %d started; want 2 and 2", warm, len(prov.running))
	}
}
