package elastic

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Worker is a process or VM a provider started to run `spate worker`.
type Worker struct {
	ID      string // the provider's: "pid-1234", "i-0abc…"
	Addr    string // private address, when the provider knows it
	State   string // the provider's word for it: running, pending, exited
	Started time.Time
}

// Provider starts and stops workers: local processes or EC2 VMs.
type Provider interface {
	Name() string
	// Start starts n workers that join the coordinator.
	Start(ctx context.Context, n int) ([]Worker, error)
	// List returns the workers the provider runs for this cluster.
	List(ctx context.Context) ([]Worker, error)
	// Stop terminates workers.
	Stop(ctx context.Context, ids []string) error
}

// Pool keeps Size workers started and unused ("warm"), so that a
// scale-out takes one at once instead of waiting for a VM to boot;
// warm workers past Size that were idle for IdleTimeout are stopped.
type Pool struct {
	Provider    Provider
	Size        int
	IdleTimeout time.Duration
	// ListGrace is how long a worker the pool started may be missing
	// from the provider's list (EC2's DescribeInstances is eventually
	// consistent) before the pool takes it for gone (NewPool: 1 min).
	ListGrace time.Duration

	mu sync.Mutex
	// protected by mu
	warm  []Worker
	since map[string]time.Time // when each warm worker became idle
	inUse map[string]Worker
	known map[string]time.Time // when the pool started each worker (its clock)
	// starting is how many workers Fills under way are starting: two
	// at once start the pool's shortfall once between them.
	starting int
}

// NewPool returns a pool over p; Fill starts its warm workers.
func NewPool(p Provider, size int, idle time.Duration) *Pool {
	return &Pool{Provider: p, Size: size, IdleTimeout: idle, ListGrace: time.Minute, since: map[string]time.Time{}, inUse: map[string]Worker{}, known: map[string]time.Time{}}
}

// Fill starts workers until Size are warm.
func (p *Pool) Fill(ctx context.Context) error {
	p.mu.Lock()
	n := p.Size - len(p.warm) - p.starting
	if n <= 0 {
		p.mu.Unlock()
		return nil
	}
	p.starting += n
	p.mu.Unlock()
	asked := time.Now() // before any of them can register
	ws, err := p.Provider.Start(ctx, n)
	p.mu.Lock() // no longer starting and warm at once: another Fill sees one or the other
	defer p.mu.Unlock()
	p.starting -= n
	now := time.Now()
	for _, w := range ws {
		p.warm = append(p.warm, w)
		p.since[w.ID], p.known[w.ID] = now, asked
	}
	return err
}

// Known is when the pool started worker id, before the provider did
// (zero: it did not).
func (p *Pool) Known(id string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.known[id]
}

// Acquire takes a warm worker (starting one when none is warm).
func (p *Pool) Acquire(ctx context.Context) (Worker, error) {
	p.mu.Lock()
	if len(p.warm) > 0 {
		w := p.warm[0]
		p.warm = p.warm[1:]
		delete(p.since, w.ID)
		p.inUse[w.ID] = w
		p.mu.Unlock()
		return w, nil
	}
	p.mu.Unlock()
	asked := time.Now()
	ws, err := p.Provider.Start(ctx, 1)
	if err != nil {
		return Worker{}, err
	}
	if len(ws) != 1 {
		return Worker{}, fmt.Errorf("%s provider started %d workers, not 1", p.Provider.Name(), len(ws))
	}
	p.mu.Lock()
	p.inUse[ws[0].ID], p.known[ws[0].ID] = ws[0], asked
	p.mu.Unlock()
	return ws[0], nil
}

// Claim takes warm worker id into use (a query was placed on it, as on
// any worker when no other lives); false when it is not warm.
func (p *Pool) Claim(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, w := range p.warm {
		if w.ID == id {
			p.warm = append(p.warm[:i:i], p.warm[i+1:]...)
			delete(p.since, id)
			p.inUse[id] = w
			return true
		}
	}
	return false
}

// Release gives a worker back: it is warm again, and Reap stops it when
// more than Size stay idle past IdleTimeout.
func (p *Pool) Release(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w, ok := p.inUse[id]
	if !ok {
		return
	}
	delete(p.inUse, id)
	p.warm = append(p.warm, w)
	p.since[id] = time.Now()
}

// Reap stops the warm workers beyond Size idle since before now -
// IdleTimeout, longest idle first, and returns their IDs.
func (p *Pool) Reap(ctx context.Context, now time.Time) ([]string, error) {
	p.mu.Lock()
	sort.SliceStable(p.warm, func(i, j int) bool { return p.since[p.warm[i].ID].Before(p.since[p.warm[j].ID]) })
	var stop []string
	keep := p.warm[:0]
	extra := len(p.warm) - p.Size
	for _, w := range p.warm {
		if extra > 0 && now.Sub(p.since[w.ID]) >= p.IdleTimeout {
			stop = append(stop, w.ID)
			delete(p.since, w.ID)
			extra--
			continue
		}
		keep = append(keep, w)
	}
	p.warm = keep
	p.mu.Unlock()
	if len(stop) == 0 {
		return nil, nil
	}
	return stop, p.Provider.Stop(ctx, stop)
}

// Prune forgets, and stops, the workers the provider no longer runs (a
// process that died, a VM terminated), warm or in use, so that Acquire
// does not hand one out and Fill replaces it; it returns their IDs. A
// worker the pool started less than ListGrace ago is kept.
func (p *Pool) Prune(ctx context.Context) ([]string, error) {
	ws, err := p.Provider.List(ctx)
	if err != nil {
		return nil, err
	}
	running := map[string]bool{}
	for _, w := range ws {
		running[w.ID] = true
	}
	p.mu.Lock()
	gone := func(id string) bool { return !running[id] && time.Since(p.known[id]) >= p.ListGrace }
	var out []string
	p.warm = slices.DeleteFunc(p.warm, func(w Worker) bool {
		if gone(w.ID) {
			out = append(out, w.ID)
			return true
		}
		return false
	})
	for id := range p.inUse {
		if gone(id) {
			out = append(out, id)
			delete(p.inUse, id)
		}
	}
	for _, id := range out {
		delete(p.since, id)
		delete(p.known, id)
	}
	p.mu.Unlock()
	if len(out) == 0 {
		return nil, nil
	}
	return out, p.Provider.Stop(ctx, out)
}

// Gone reports whether the provider no longer runs worker id, once the
// pool has known it for ListGrace.
func (p *Pool) Gone(ctx context.Context, id string) bool {
	if time.Since(p.Known(id)) < p.ListGrace {
		return false
	}
	ws, err := p.Provider.List(ctx)
	return err == nil && !slices.ContainsFunc(ws, func(w Worker) bool { return w.ID == id })
}

// Discard forgets a worker that is of no use (it died as far as the
// coordinator can tell) and stops it.
func (p *Pool) Discard(ctx context.Context, id string) error {
	p.mu.Lock()
	p.warm = slices.DeleteFunc(p.warm, func(w Worker) bool { return w.ID == id })
	delete(p.since, id)
	delete(p.inUse, id)
	delete(p.known, id)
	p.mu.Unlock()
	return p.Provider.Stop(ctx, []string{id})
}

// Counts reports the warm and in-use workers.
func (p *Pool) Counts() (warm, inUse int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.warm), len(p.inUse)
}

// LocalConfig configures the local provider.
type LocalConfig struct {
	// Binary is the spate executable (default: this process's).
	Binary string
	// Join and Token are the coordinator's cluster address and token.
	Join, Token string
	// Listen is each worker's data-plane address (default 127.0.0.1:0).
	Listen string
	// Args, when set, replaces the arguments after Binary (tests).
	Args []string
	// Stderr receives the workers' logs (default: this process's).
	Stderr *os.File
}

// Local is the local provider: `spate worker` child processes.
type Local struct {
	cfg LocalConfig

	mu sync.Mutex
	// protected by mu
	procs map[string]*localProc
}

type localProc struct {
	w    Worker
	cmd  *exec.Cmd
	done chan struct{}
}

// NewLocal returns the local provider.
func NewLocal(cfg LocalConfig) (*Local, error) {
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cfg.Binary = exe
	}
	if cfg.Args == nil && (cfg.Join == "" || cfg.Token == "") {
		return nil, errors.New("local provider: the join address and token are required")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	return &Local{cfg: cfg, procs: map[string]*localProc{}}, nil
}

// Name is "local".
func (l *Local) Name() string { return "local" }

// Start starts n worker processes.
func (l *Local) Start(ctx context.Context, n int) ([]Worker, error) {
	var out []Worker
	for range n {
		args := l.cfg.Args
		if args == nil {
			args = []string{"worker", "--join", l.cfg.Join, "--listen", l.cfg.Listen}
		}
		cmd := exec.Command(l.cfg.Binary, args...)
		cmd.Env = append(os.Environ(), "SPATE_CLUSTER_TOKEN="+l.cfg.Token)
		cmd.Stdout, cmd.Stderr = l.cfg.Stderr, l.cfg.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // as serve's own workers
		if err := cmd.Start(); err != nil {
			return out, fmt.Errorf("local provider: %w", err)
		}
		p := &localProc{w: Worker{ID: "pid-" + strconv.Itoa(cmd.Process.Pid), Addr: "127.0.0.1", State: "running", Started: time.Now()}, cmd: cmd, done: make(chan struct{})}
		go func() {
			_ = cmd.Wait()
			close(p.done)
		}()
		l.mu.Lock()
		l.procs[p.w.ID] = p
		l.mu.Unlock()
		out = append(out, p.w)
	}
	return out, nil
}

// List returns the processes still running.
func (l *Local) List(context.Context) ([]Worker, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Worker
	for _, p := range l.procs {
		select {
		case <-p.done:
			continue
		default:
		}
		out = append(out, p.w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Stop ends processes: SIGTERM, then SIGKILL after 10 s.
func (l *Local) Stop(ctx context.Context, ids []string) error {
	var errs []error
	for _, id := range ids {
		l.mu.Lock()
		p := l.procs[id]
		delete(l.procs, id)
		l.mu.Unlock()
		if p == nil {
			errs = append(errs, fmt.Errorf("local provider: no worker %s", id))
			continue
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		case <-ctx.Done():
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	return errors.Join(errs...)
}

// Warm returns the warm workers.
func (p *Pool) Warm() []Worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Worker(nil), p.warm...)
}

// InUse returns the workers acquired and not released.
func (p *Pool) InUse() []Worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Worker
	for _, w := range p.inUse {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
