package pgwire

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/spatedb/spate/cluster"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Close.
var ErrServerClosed = errors.New("pgwire: server closed")

// Server is a PostgreSQL wire-protocol server in front of a cluster.Engine.
// Its methods are safe for concurrent use.
type Server struct {
	cfg    Config
	engine cluster.Engine
	log    zerolog.Logger

	// ctx is cancelled by Close; every connection context derives from it.
	ctx    context.Context
	cancel context.CancelCauseFunc
	// serving counts running Serve calls; each Serve waits for its own
	// connection goroutines before it returns.
	serving sync.WaitGroup

	// mockKey derives the salts of the mock SCRAM exchanges of unknown
	// roles (auth.go); cbHash is the tls-server-end-point channel-binding
	// hash of the TLS certificate (nil: SCRAM-SHA-256-PLUS is not offered).
	mockKey [32]byte
	cbHash  []byte

	// startingUp refuses sessions with FATAL 57P03 (SetStartingUp): the
	// engine is still recovering.
	startingUp atomic.Bool

	mu sync.Mutex
	// Protected by mu:
	closed   bool
	addr     net.Addr         // the first listener's address
	conns    map[uint32]*conn // live connections by process ID, for CancelRequest
	active   int              // connections within MaxConnections (limits.go)
	refusing int              // connections beyond it, being refused
}

// NewServer returns a server for engine. cfg's zero fields take their
// defaults; an invalid cfg is an error.
func NewServer(cfg Config, engine cluster.Engine) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if engine == nil {
		return nil, errors.New("pgwire: NewServer: nil engine")
	}
	cbHash, err := channelBindingHash(cfg.TLS)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	s := &Server{
		cfg:    cfg.withDefaults(),
		engine: engine,
		log:    cfg.Logger,
		ctx:    ctx,
		cancel: cancel,
		conns:  make(map[uint32]*conn),
		cbHash: cbHash,
	}
	_, _ = rand.Read(s.mockKey[:]) // never fails (crypto/rand)
	return s, nil
}

// ListenAndServe listens on Config.Listen and serves until ctx is done or
// Close is called (it then returns nil, or ErrServerClosed when Close came
// first).
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("pgwire: listen %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve accepts connections on ln, one goroutine each, until ctx is done,
// Close is called or Accept fails permanently. It closes ln. Before it
// returns it stops the connections it accepted (when ctx is done or Accept
// failed) and waits for their goroutines. It returns nil when ctx ended it,
// ErrServerClosed after Close, and the Accept error otherwise.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if s.addr == nil {
		s.addr = ln.Addr()
	}
	s.serving.Add(1)
	s.mu.Unlock()
	defer s.serving.Done()

	// Connections live under both the server and this Serve call.
	sctx, stop := context.WithCancelCause(s.ctx)
	defer stop(errServerClosing)
	unlink := context.AfterFunc(ctx, func() { stop(errServerClosing) })
	defer unlink()
	closeLn := context.AfterFunc(sctx, func() { ln.Close() })
	defer closeLn()

	var conns sync.WaitGroup
	defer conns.Wait()
	defer ln.Close()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if sctx.Err() != nil {
				if s.ctx.Err() != nil {
					return ErrServerClosed
				}
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn().Err(err).Stringer("retry_in", backoff).Msg("pgwire: accept failed")
				select {
				case <-time.After(backoff):
				case <-sctx.Done():
				}
				continue
			}
			stop(err)
			return fmt.Errorf("pgwire: accept: %w", err)
		}
		backoff = 0
		over, ok := s.admit()
		if !ok {
			nc.Close() // far beyond MaxConnections: no goroutine for it
			continue
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer s.release(over)
			s.serveConn(sctx, nc, over)
		}()
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Addr returns the address of the first listener Serve was given, or nil
// before that.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close stops accepting, ends every connection (running statements are
// cancelled, clients get FATAL 57P01) and waits for all connection
// goroutines. It is idempotent and always returns nil.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel(errServerClosing) // closes the listeners (see Serve)
	s.serving.Wait()
	return nil
}

// register assigns c a unique process ID and a random secret key and
// makes it reachable for CancelRequest.
func (s *Server) register(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		var b [8]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand)
		pid := binary.BigEndian.Uint32(b[:4]) & 0x7fffffff
		if pid == 0 {
			continue
		}
		if _, dup := s.conns[pid]; dup {
			continue
		}
		c.pid = pid
		copy(c.secret[:], b[4:])
		s.conns[pid] = c
		return
	}
}

func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[c.pid] == c {
		delete(s.conns, c.pid)
	}
}

// cancelRequest cancels the running statement of the connection with
// process ID pid when secret matches its key. Mismatches are ignored, as
// PostgreSQL does.
func (s *Server) cancelRequest(pid uint32, secret []byte) {
	s.mu.Lock()
	c := s.conns[pid]
	s.mu.Unlock()
	if c == nil || subtle.ConstantTimeCompare(c.secret[:], secret) != 1 {
		s.log.Debug().Uint32("pid", pid).Msg("pgwire: cancel request for an unknown connection")
		return
	}
	c.cancelRunning()
}
