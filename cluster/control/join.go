package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// JoinConfig configures Join. The zero value of each field but
// Coordinator and Token means its default.
type JoinConfig struct {
	// Coordinator is the registry's HOST:PORT; required.
	Coordinator string
	// Token is the shared cluster token; required.
	Token string
	// DataAddr is the data-plane address advertised in Register; empty
	// when the worker listens on none (no instances run on workers yet).
	DataAddr string
	// Version is advertised in Register. Default "dev".
	Version string
	// Hostname is advertised in Register. Default os.Hostname().
	Hostname string
	// DialAttempts is how many times an unreachable coordinator is
	// dialled before Join gives up. Default 5. Authentication failures
	// are never retried.
	DialAttempts int
	// DialBackoff is the wait after the first failed dial; it doubles
	// after each further failure, up to 2s. Default 200ms.
	DialBackoff time.Duration
	// DialTimeout bounds one dial. Default 5s.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the handshake and registration. Default 10s.
	HandshakeTimeout time.Duration
	// OnRegistered, if set, is called once with the registry's Welcome.
	OnRegistered func(Welcome)
	// Handle runs the coordinator's requests, one at a time in the order
	// they arrive within a lane (so a deploy is done before the start that
	// follows it); its result is marshalled as the reply's body and an
	// error becomes the reply's error. Nil refuses every request. Its ctx
	// ends when the connection does.
	Handle func(ctx context.Context, kind string, body json.RawMessage) (any, error)
	// Lane, if set, names a request's lane: requests of different lanes
	// run concurrently, so one that blocks (a query's repair waiting on
	// its back-pressured output) holds up only its own lane (that query's
	// requests). Unset: one lane.
	Lane func(kind string, body json.RawMessage) string
	// Notices, if set, are sent to the coordinator as they come.
	Notices <-chan Notice
	// Instances, if set, is called for each heartbeat to report the load
	// of the instances the worker runs.
	Instances func() []InstanceLoad
	// CopyBytes, if set, is called for each heartbeat to report the
	// bytes of the snapshot copies the worker keeps for others.
	CopyBytes func() uint64
	// Logger receives the worker's control-plane logs. Default: discard.
	Logger zerolog.Logger
}

// Validate fills in defaults and checks the configuration.
func (c *JoinConfig) Validate() error {
	if c.Coordinator == "" {
		return errors.New("control: JoinConfig.Coordinator (HOST:PORT) is required")
	}
	if c.Token == "" {
		return errors.New("control: JoinConfig.Token (the cluster token) is required")
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
	}
	if c.DialAttempts == 0 {
		c.DialAttempts = 5
	}
	if c.DialBackoff == 0 {
		c.DialBackoff = 200 * time.Millisecond
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.DialAttempts < 0 || c.DialBackoff < 0 || c.DialTimeout < 0 || c.HandshakeTimeout < 0 {
		return errors.New("control: JoinConfig attempts, backoff and timeouts must not be negative")
	}
	return nil
}

// Join connects this process to the registry at cfg.Coordinator as a
// worker: it dials (retrying an unreachable coordinator DialAttempts
// times with doubling backoff), proves the cluster token, registers, and
// then sends a Heartbeat with this process's load every interval the
// registry asked for. It returns nil when ctx ends, and otherwise the
// error that ended it: wrapping ErrUnauthorized for a token mismatch, or
// the connection's error once it breaks. Join does not reconnect after a
// registered session breaks; the caller decides (a reconnecting worker
// registers under a new ID).
func Join(ctx context.Context, cfg JoinConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Logger.With().Str("component", "control").Str("coordinator", cfg.Coordinator).Logger()
	conn, err := dialRetry(ctx, cfg, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer conn.Close()

	conn.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
	stopDeadline := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stopDeadline()
	if err := clientHandshake(conn, cfg.Token); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("control: joining %s: %w", cfg.Coordinator, err)
	}
	reg := &Register{Version: cfg.Version, PID: os.Getpid(), DataAddr: cfg.DataAddr, Hostname: cfg.Hostname}
	if err := writeFrame(conn, &message{Type: typeRegister, Register: reg}); err != nil {
		return fmt.Errorf("control: registering with %s: %w", cfg.Coordinator, err)
	}
	m, err := readFrame(conn)
	if err == nil && (m.Type != typeWelcome || m.Welcome == nil || m.Welcome.HeartbeatInterval <= 0) {
		err = fmt.Errorf("%w: answer to register is %q, want a welcome with an interval", ErrProtocol, m.Type)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("control: registering with %s: %w", cfg.Coordinator, err)
	}
	stopDeadline()
	conn.SetDeadline(time.Time{})
	welcome := *m.Welcome
	log.Info().Str("worker", welcome.WorkerID).Stringer("heartbeat", welcome.HeartbeatInterval).Msg("joined the cluster")
	if cfg.OnRegistered != nil {
		cfg.OnRegistered(welcome)
	}

	// Writes come from the heartbeat loop and from the request reader.
	var wmu sync.Mutex
	write := func(m *message) error {
		wmu.Lock()
		defer wmu.Unlock()
		conn.SetWriteDeadline(time.Now().Add(welcome.HeartbeatInterval * 3))
		return writeFrame(conn, m)
	}

	// The reader hands the coordinator's requests to their lanes (each
	// runs its requests in order) and notices the coordinator closing the
	// connection; it ends when conn is closed.
	readErr := make(chan error, 1)
	fail := func(err error) {
		select {
		case readErr <- err:
		default:
		}
	}
	hctx, hcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	runRequest := func(req *Request) {
		rep := &Reply{ID: req.ID}
		if cfg.Handle == nil {
			rep.Error = "this worker runs no requests"
		} else if out, err := cfg.Handle(hctx, req.Kind, req.Body); err != nil {
			rep.Error = err.Error()
		} else if out != nil {
			if rep.Body, err = json.Marshal(out); err != nil {
				rep.Error = fmt.Sprintf("encoding the %s reply: %v", req.Kind, err)
			}
		}
		if err := write(&message{Type: typeReply, Reply: rep}); err != nil {
			fail(err)
			conn.Close()
		}
	}
	lanes := newLanes(&wg, runRequest)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			m, err := readFrame(conn)
			if err == nil && (m.Type != typeRequest || m.Request == nil) {
				err = fmt.Errorf("%w: unexpected %q message from the coordinator", ErrProtocol, m.Type)
			}
			if err != nil {
				fail(err)
				return
			}
			lane := ""
			if cfg.Lane != nil {
				lane = cfg.Lane(m.Request.Kind, m.Request.Body)
			}
			lanes.add(lane, m.Request)
		}
	}()
	defer wg.Wait()
	defer hcancel()    // the requests running end
	defer conn.Close() // runs before wg.Wait

	sampler := newLoadSampler()
	t := time.NewTicker(welcome.HeartbeatInterval)
	defer t.Stop()
	broke := func(err error) error {
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, io.EOF) {
			err = errors.New("the coordinator closed the connection")
		}
		return fmt.Errorf("control: connection to coordinator %s broke: %w", cfg.Coordinator, err)
	}
	for seq := uint64(1); ; seq++ {
		hb := &Heartbeat{Seq: seq, Load: sampler.sample()}
		if cfg.Instances != nil {
			hb.Load.Instances = cfg.Instances()
		}
		if cfg.CopyBytes != nil {
			hb.Load.CopyBytes = cfg.CopyBytes()
		}
		if err := write(&message{Type: typeHeartbeat, Heartbeat: hb}); err != nil {
			return broke(err)
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case err := <-readErr:
				return broke(err)
			case n := <-cfg.Notices:
				if err := write(&message{Type: typeNotice, Notice: &n}); err != nil {
					return broke(err)
				}
			case <-t.C:
				break wait
			}
		}
	}
}

func dialRetry(ctx context.Context, cfg JoinConfig, log zerolog.Logger) (net.Conn, error) {
	d := net.Dialer{Timeout: cfg.DialTimeout}
	backoff := cfg.DialBackoff
	var err error
	for attempt := 1; attempt <= cfg.DialAttempts; attempt++ {
		var conn net.Conn
		if conn, err = d.DialContext(ctx, "tcp", cfg.Coordinator); err == nil {
			return conn, nil
		}
		if ctx.Err() != nil || attempt == cfg.DialAttempts {
			break
		}
		log.Warn().Err(err).Int("attempt", attempt).Stringer("retry_in", backoff).Msg("coordinator unreachable; retrying")
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
	return nil, fmt.Errorf("control: coordinator %s unreachable after %d attempts: %w", cfg.Coordinator, cfg.DialAttempts, err)
}

// loadSampler reads this process's load; not safe for concurrent use.
type loadSampler struct {
	samples []metrics.Sample
}

func newLoadSampler() *loadSampler {
	return &loadSampler{samples: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}}
}

func (s *loadSampler) sample() Load {
	metrics.Read(s.samples)
	var heap uint64
	if v := s.samples[0].Value; v.Kind() == metrics.KindUint64 {
		heap = v.Uint64()
	}
	return Load{CPUBusySeconds: cpuSeconds(), Goroutines: runtime.NumGoroutine(), HeapBytes: heap}
}

// lanes runs requests: in order within a lane, lanes concurrently, with
// a goroutine per lane while it has requests.
type lanes struct {
	mu      sync.Mutex
	queues  map[string][]*Request // a lane is here while its goroutine runs
	wg      *sync.WaitGroup
	request func(*Request)
}

func newLanes(wg *sync.WaitGroup, request func(*Request)) *lanes {
	return &lanes{queues: map[string][]*Request{}, wg: wg, request: request}
}

func (l *lanes) add(lane string, req *Request) {
	l.mu.Lock()
	q, running := l.queues[lane]
	l.queues[lane] = append(q, req)
	l.mu.Unlock()
	if running {
		return
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			l.mu.Lock()
			q := l.queues[lane]
			if len(q) == 0 {
				delete(l.queues, lane)
				l.mu.Unlock()
				return
			}
			req := q[0]
			l.queues[lane] = q[1:]
			l.mu.Unlock()
			l.request(req)
		}
	}()
}
