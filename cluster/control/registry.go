package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// RegistryConfig configures a Registry. The zero value of each field but
// Token means its default.
type RegistryConfig struct {
	// Listen is the TCP address workers connect to. Default
	// "127.0.0.1:0" (loopback, a free port; see Registry.Addr).
	Listen string
	// Token is the shared cluster token; required.
	Token string
	// HeartbeatInterval is how often workers are told to send a
	// heartbeat. Default 1s.
	HeartbeatInterval time.Duration
	// DeadAfter is the number of heartbeat intervals without one after
	// which a worker is dead. Default 3; at least 2. A worker is suspect
	// after 1.5 intervals of silence.
	DeadAfter int
	// HandshakeTimeout bounds the handshake and the Register message of
	// a new connection. Default 10s.
	HandshakeTimeout time.Duration
	// EventBuffer is the capacity of the Events channel. Default 256.
	EventBuffer int
	// Now is the clock liveness is judged by. Default time.Now; tests
	// inject a fake one.
	Now func() time.Time
	// Logger receives connection, refusal and liveness logs. Default: the
	// zero zerolog.Logger, which discards.
	Logger zerolog.Logger
	// OnNotice, if set, receives every Notice a worker sends, on that
	// worker's connection goroutine (in order per worker).
	OnNotice func(worker string, n Notice)
}

// Validate fills in defaults and checks the configuration.
func (c *RegistryConfig) Validate() error {
	if c.Token == "" {
		return errors.New("control: RegistryConfig.Token (the cluster token) is required")
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.HeartbeatInterval < 0 {
		return fmt.Errorf("control: HeartbeatInterval must be positive, got %v", c.HeartbeatInterval)
	}
	if c.DeadAfter == 0 {
		c.DeadAfter = 3
	}
	if c.DeadAfter < 2 {
		return fmt.Errorf("control: DeadAfter must be at least 2 intervals, got %d", c.DeadAfter)
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.HandshakeTimeout < 0 {
		return fmt.Errorf("control: HandshakeTimeout must be positive, got %v", c.HandshakeTimeout)
	}
	if c.EventBuffer == 0 {
		c.EventBuffer = 256
	}
	if c.EventBuffer < 0 {
		return fmt.Errorf("control: EventBuffer must be positive, got %d", c.EventBuffer)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// WorkerInfo is a snapshot of one worker as the registry knows it.
type WorkerInfo struct {
	ID             string    // assigned by the registry per connection: "w1", "w2", …
	Addr           string    // remote address of the control connection
	DataAddr       string    // data-plane address the worker advertised
	Hostname       string    // the worker's host name
	Version        string    // the worker's binary version
	PID            int       // the worker's process ID
	Status         Status    // alive, suspect or dead
	LastHeartbeat  time.Time // last heartbeat (registration time before the first)
	HeartbeatSeq   uint64    // sequence number of the last heartbeat
	Load           Load      // load reported in the last heartbeat
	ConnectedSince time.Time // when the worker registered
}

// WorkerEventKind says what happened to a worker.
type WorkerEventKind string

// Worker event kinds.
const (
	WorkerJoined WorkerEventKind = "joined"
	WorkerDead   WorkerEventKind = "dead"
)

// WorkerEvent is sent on Registry.Events when a worker joins or dies.
type WorkerEvent struct {
	Kind   WorkerEventKind
	Worker WorkerInfo // snapshot at the time of the event
	Reason string     // why, e.g. "control connection closed"
	At     time.Time  // by the registry's clock
}

// Registry is the coordinator's side of the control plane: it accepts
// worker connections, authenticates them with the cluster token, keeps
// their registration and load, and judges their liveness. Its methods
// are safe for concurrent use.
type Registry struct {
	cfg    RegistryConfig
	log    zerolog.Logger
	ln     net.Listener
	events chan WorkerEvent

	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // connection and ticker goroutines

	// mu protects the fields below and the liveness state.
	mu           sync.Mutex
	live         *livenessState
	workers      map[string]*workerRec
	conns        map[net.Conn]struct{} // every open connection, to close on shutdown
	nextID       int
	serving      bool          // Serve was called
	serveDone    chan struct{} // closed when Serve returns
	eventsClosed bool
	dropped      uint64 // events dropped on a full Events buffer
}

type workerRec struct {
	info WorkerInfo
	conn net.Conn
	gone chan struct{} // closed when the connection's goroutine ends

	wmu sync.Mutex // serialises writes to conn
	// protected by Registry.mu
	nextReq uint64
	pending map[uint64]chan *Reply
}

// NewRegistry validates cfg and starts listening on cfg.Listen; workers
// are accepted once Serve runs.
func NewRegistry(cfg RegistryConfig) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("control: listening on %s: %w", cfg.Listen, err)
	}
	return &Registry{
		cfg:       cfg,
		log:       cfg.Logger.With().Str("component", "control").Logger(),
		ln:        ln,
		events:    make(chan WorkerEvent, cfg.EventBuffer),
		closing:   make(chan struct{}),
		live:      newLivenessState(cfg.HeartbeatInterval, cfg.DeadAfter),
		workers:   make(map[string]*workerRec),
		conns:     make(map[net.Conn]struct{}),
		serveDone: make(chan struct{}),
	}, nil
}

// Addr is the address the registry listens on.
func (r *Registry) Addr() net.Addr { return r.ln.Addr() }

// Events delivers worker joins and deaths, in order, for the recovery
// logic. The channel is buffered (RegistryConfig.EventBuffer); when the
// buffer is full an event is dropped, logged and counted (DroppedEvents)
// rather than blocking the registry, so a consumer that falls behind
// must reconcile with Workers, which is always complete. The channel is
// closed by Close.
func (r *Registry) Events() <-chan WorkerEvent { return r.events }

// DroppedEvents is the number of events dropped on a full Events buffer.
func (r *Registry) DroppedEvents() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// Workers returns a snapshot of every worker that registered since the
// registry started, dead ones included, ordered by ID.
func (r *Registry) Workers() []WorkerInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]WorkerInfo, 0, len(r.workers))
	for id := range r.workers {
		out = append(out, r.infoLocked(id))
	}
	slices.SortFunc(out, func(a, b WorkerInfo) int {
		if len(a.ID) != len(b.ID) { // "w2" before "w10"
			return len(a.ID) - len(b.ID)
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func (r *Registry) infoLocked(id string) WorkerInfo {
	w := r.workers[id]
	info := w.info
	if st, last, ok := r.live.status(id); ok {
		info.Status, info.LastHeartbeat = st, last
	}
	info.Load.Instances = slices.Clone(info.Load.Instances)
	return info
}

// Serve accepts workers until ctx ends or Close is called, then closes
// every worker connection, waits for its goroutines and returns nil. It
// also runs the liveness ticker (every quarter heartbeat interval, in
// real time, judging silence by RegistryConfig.Now). Call it once.
func (r *Registry) Serve(ctx context.Context) error {
	r.mu.Lock()
	if r.serving {
		r.mu.Unlock()
		return errors.New("control: Registry.Serve called twice")
	}
	r.serving = true
	r.mu.Unlock()
	defer close(r.serveDone)

	stop := make(chan struct{})
	r.wg.Add(2)
	go func() { // stops the accept loop on ctx or Close
		defer r.wg.Done()
		select {
		case <-ctx.Done():
		case <-r.closing:
		case <-stop:
		}
		r.ln.Close()
	}()
	go func() { // liveness ticker
		defer r.wg.Done()
		t := time.NewTicker(max(r.cfg.HeartbeatInterval/4, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.closing:
				return
			case <-stop:
				return
			case <-t.C:
				r.checkLiveness()
			}
		}
	}()

	r.log.Info().Str("listen", r.ln.Addr().String()).Msg("control registry accepting workers")
	var err error
accept:
	for {
		conn, aerr := r.ln.Accept()
		if aerr != nil {
			select {
			case <-ctx.Done():
			case <-r.closing:
			default:
				err = fmt.Errorf("control: accepting workers: %w", aerr)
			}
			break accept
		}
		r.mu.Lock()
		r.conns[conn] = struct{}{}
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.handle(conn)
		}()
	}
	close(stop)
	r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return err
}

// Close stops the registry: it stops Serve, closes every worker
// connection, waits for the goroutines and closes Events. It is
// idempotent and safe to call whether or not Serve ran.
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		close(r.closing)
		r.ln.Close()
		r.mu.Lock()
		serving := r.serving
		r.mu.Unlock()
		if serving {
			<-r.serveDone
		}
		r.mu.Lock()
		r.eventsClosed = true
		close(r.events)
		r.mu.Unlock()
	})
	return nil
}

// checkLiveness is one tick of the failure detector's driver.
func (r *Registry) checkLiveness() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applyLocked(r.live.tick(r.cfg.Now()))
}

// applyLocked performs the transitions the liveness state returned: it
// logs them, emits events and closes the connection of a dead worker.
func (r *Registry) applyLocked(ts []transition) {
	now := r.cfg.Now()
	for _, t := range ts {
		w := r.workers[t.worker]
		if w == nil {
			continue
		}
		ev := r.log.Info()
		if t.to != StatusAlive {
			ev = r.log.Warn()
		}
		ev.Str("worker", t.worker).Str("addr", w.info.Addr).Int("pid", w.info.PID).
			Str("from", string(t.from)).Str("to", string(t.to)).Str("reason", t.reason).Msg("worker liveness changed")
		switch t.to {
		case StatusAlive:
			if t.from == "" {
				r.emitLocked(WorkerEvent{Kind: WorkerJoined, Worker: r.infoLocked(t.worker), Reason: t.reason, At: now})
			}
		case StatusDead:
			w.conn.Close() // a worker declared dead must not linger half-alive
			r.emitLocked(WorkerEvent{Kind: WorkerDead, Worker: r.infoLocked(t.worker), Reason: t.reason, At: now})
		}
	}
}

func (r *Registry) emitLocked(ev WorkerEvent) {
	if r.eventsClosed {
		return
	}
	select {
	case r.events <- ev:
	default:
		r.dropped++
		r.log.Warn().Str("worker", ev.Worker.ID).Str("event", string(ev.Kind)).Msg("control events buffer full; event dropped (consumers must reconcile with Workers)")
	}
}

// handle runs one worker connection: handshake, Register, heartbeats.
func (r *Registry) handle(conn net.Conn) {
	defer func() {
		conn.Close()
		r.mu.Lock()
		delete(r.conns, conn)
		r.mu.Unlock()
	}()
	peer := conn.RemoteAddr().String()
	conn.SetDeadline(time.Now().Add(r.cfg.HandshakeTimeout))
	if err := serverHandshake(conn, r.cfg.Token); err != nil {
		r.log.Warn().Str("peer", peer).Err(err).Msg("refused worker connection")
		return
	}
	m, err := readFrame(conn)
	if err == nil && (m.Type != typeRegister || m.Register == nil) {
		err = fmt.Errorf("%w: first message is %q, want %q", ErrProtocol, m.Type, typeRegister)
	}
	if err != nil {
		r.log.Warn().Str("peer", peer).Err(err).Msg("refused worker connection: no registration")
		return
	}
	reg := *m.Register

	r.mu.Lock()
	select {
	case <-r.closing:
		r.mu.Unlock()
		return
	default:
	}
	r.nextID++
	id := fmt.Sprintf("w%d", r.nextID)
	now := r.cfg.Now()
	rec := &workerRec{conn: conn, gone: make(chan struct{}), pending: map[uint64]chan *Reply{}, info: WorkerInfo{
		ID: id, Addr: peer, DataAddr: reg.DataAddr, Hostname: reg.Hostname, Version: reg.Version,
		PID: reg.PID, ConnectedSince: now,
	}}
	defer close(rec.gone)
	rec.wmu.Lock() // the welcome goes before any request
	r.workers[id] = rec
	r.applyLocked(r.live.observe(livenessEvent{kind: evJoined, worker: id}, now))
	r.mu.Unlock()

	err = writeFrame(conn, &message{Type: typeWelcome, Welcome: &Welcome{WorkerID: id, HeartbeatInterval: r.cfg.HeartbeatInterval}})
	rec.wmu.Unlock()
	conn.SetDeadline(time.Time{})
	for err == nil {
		m, err = readFrame(conn)
		if err != nil {
			break
		}
		switch {
		case m.Type == typeHeartbeat && m.Heartbeat != nil:
			r.mu.Lock()
			rec.info.Load, rec.info.HeartbeatSeq = m.Heartbeat.Load, m.Heartbeat.Seq
			r.applyLocked(r.live.observe(livenessEvent{kind: evHeartbeat, worker: id}, r.cfg.Now()))
			r.mu.Unlock()
		case m.Type == typeReply && m.Reply != nil:
			r.mu.Lock()
			r.applyLocked(r.live.observe(livenessEvent{kind: evHeartbeat, worker: id}, r.cfg.Now()))
			ch := rec.pending[m.Reply.ID]
			delete(rec.pending, m.Reply.ID)
			r.mu.Unlock()
			if ch != nil {
				ch <- m.Reply // buffered; a caller that gave up never reads it
			}
		case m.Type == typeNotice && m.Notice != nil:
			// Any message shows the worker alive: heartbeats may wait
			// behind large notices (checkpoint snapshots) on the wire.
			r.mu.Lock()
			r.applyLocked(r.live.observe(livenessEvent{kind: evHeartbeat, worker: id}, r.cfg.Now()))
			r.mu.Unlock()
			if r.cfg.OnNotice != nil {
				r.cfg.OnNotice(id, *m.Notice)
			}
		default:
			err = fmt.Errorf("%w: unexpected %q message from a worker", ErrProtocol, m.Type)
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	r.mu.Lock()
	r.applyLocked(r.live.observe(livenessEvent{kind: evDisconnected, worker: id}, r.cfg.Now()))
	r.mu.Unlock()
	if err != nil {
		r.log.Debug().Str("worker", id).Err(err).Msg("worker connection ended")
	}
}

// ErrWorkerGone is returned (wrapped) by Call when the worker's control
// connection is gone or ends before it answers.
var ErrWorkerGone = errors.New("worker is gone")

// Call sends a request of the given kind to a worker and waits for its
// reply: body is marshalled as the request's JSON body and the reply's
// body is unmarshalled into out (unless out is nil). It returns an error
// when ctx ends first (bound every call with a timeout), when the worker
// is unknown, dead or disconnects, or with the worker's own error
// message when its handler failed.
func (r *Registry) Call(ctx context.Context, worker, kind string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("control: encoding %s request: %w", kind, err)
	}
	r.mu.Lock()
	w := r.workers[worker]
	if w == nil {
		r.mu.Unlock()
		return fmt.Errorf("control: %s to worker %s: unknown worker", kind, worker)
	}
	if st, _, _ := r.live.status(worker); st == StatusDead {
		r.mu.Unlock()
		return fmt.Errorf("control: %s to worker %s: %w", kind, worker, ErrWorkerGone)
	}
	w.nextReq++
	id := w.nextReq
	ch := make(chan *Reply, 1)
	w.pending[id] = ch
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(w.pending, id)
		r.mu.Unlock()
	}()

	w.wmu.Lock()
	if d, ok := ctx.Deadline(); ok {
		w.conn.SetWriteDeadline(d)
	}
	err = writeFrame(w.conn, &message{Type: typeRequest, Request: &Request{ID: id, Kind: kind, Body: raw}})
	w.conn.SetWriteDeadline(time.Time{})
	w.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("control: %s to worker %s: %w: %w", kind, worker, ErrWorkerGone, err)
	}
	select {
	case rep := <-ch:
		if rep.Error != "" {
			return fmt.Errorf("worker %s: %s", worker, rep.Error)
		}
		if out != nil && len(rep.Body) > 0 {
			if err := json.Unmarshal(rep.Body, out); err != nil {
				return fmt.Errorf("control: decoding %s reply from worker %s: %w", kind, worker, err)
			}
		}
		return nil
	case <-w.gone:
		return fmt.Errorf("control: %s to worker %s: %w (connection closed)", kind, worker, ErrWorkerGone)
	case <-ctx.Done():
		return fmt.Errorf("control: %s to worker %s: no answer: %w", kind, worker, ctx.Err())
	}
}
