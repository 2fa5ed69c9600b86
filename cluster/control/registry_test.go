package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

const testToken = "s3cret-cluster-token"

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer is a log sink safe for the registry's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startRegistry runs a registry until the test ends.
func startRegistry(t *testing.T, cfg RegistryConfig) (*Registry, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	cfg.Logger = zerolog.New(logs)
	r, err := NewRegistry(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- r.Serve(context.Background()) }()
	t.Cleanup(func() {
		r.Close()
		r.Close() // idempotent
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return r, logs
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func onlyWorker(r *Registry) (WorkerInfo, bool) {
	ws := r.Workers()
	if len(ws) != 1 {
		return WorkerInfo{}, false
	}
	return ws[0], true
}

func nextEvent(t *testing.T, r *Registry) WorkerEvent {
	t.Helper()
	select {
	case ev := <-r.Events():
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no worker event")
		return WorkerEvent{}
	}
}

func TestWorkerJoinsAndReportsLoad(t *testing.T) {
	r, _ := startRegistry(t, RegistryConfig{HeartbeatInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	joined := make(chan error, 1)
	go func() {
		joined <- Join(ctx, JoinConfig{Coordinator: r.Addr().String(), Token: testToken, DataAddr: "127.0.0.1:7100", Version: "test"})
	}()
	waitFor(t, "a heartbeat with a load", func() bool {
		w, ok := onlyWorker(r)
		return ok && w.HeartbeatSeq >= 2
	})
	w, _ := onlyWorker(r)
	if w.ID != "w1" || w.Status != StatusAlive || w.PID != os.Getpid() || w.DataAddr != "127.0.0.1:7100" || w.Version != "test" {
		t.Fatalf("worker %+v", w)
	}
	if w.Load.Goroutines <= 0 || w.Load.HeapBytes == 0 || w.Load.CPUBusySeconds <= 0 {
		t.Fatalf("load not reported: %+v", w.Load)
	}
	if w.ConnectedSince.IsZero() || w.LastHeartbeat.Before(w.ConnectedSince) || !strings.HasPrefix(w.Addr, "127.0.0.1:") {
		t.Fatalf("worker %+v", w)
	}
	if ev := nextEvent(t, r); ev.Kind != WorkerJoined || ev.Worker.ID != "w1" {
		t.Fatalf("event %+v", ev)
	}
	cancel()
	if err := <-joined; err != nil {
		t.Fatalf("Join after cancel: %v", err)
	}
	// The worker leaving closes its connection: dead at once.
	if ev := nextEvent(t, r); ev.Kind != WorkerDead || ev.Worker.ID != "w1" {
		t.Fatalf("event %+v", ev)
	}
	if w, _ := onlyWorker(r); w.Status != StatusDead {
		t.Fatalf("worker %+v", w)
	}
}

func TestWrongTokenRefused(t *testing.T) {
	r, logs := startRegistry(t, RegistryConfig{})
	err := Join(context.Background(), JoinConfig{Coordinator: r.Addr().String(), Token: "another token"})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Join with a wrong token: %v", err)
	}
	waitFor(t, "the refusal logged", func() bool {
		return strings.Contains(logs.String(), "refused worker connection") && strings.Contains(logs.String(), "cluster token mismatch")
	})
	if ws := r.Workers(); len(ws) != 0 {
		t.Fatalf("registry lists %+v", ws)
	}
}

// A registry holding another token cannot fool a worker either.
func TestWorkerRefusesImpostorRegistry(t *testing.T) {
	r, logs := startRegistry(t, RegistryConfig{Token: "impostor"})
	err := Join(context.Background(), JoinConfig{Coordinator: r.Addr().String(), Token: testToken})
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "could not prove") {
		t.Fatalf("Join: %v", err)
	}
	waitFor(t, "the refusal logged", func() bool { return strings.Contains(logs.String(), "hung up at the challenge") })
}

func TestUnreachableCoordinator(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	err = Join(context.Background(), JoinConfig{Coordinator: addr, Token: testToken, DialAttempts: 3, DialBackoff: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "unreachable after 3 attempts") {
		t.Fatalf("Join: %v", err)
	}
}

// dialRaw authenticates and registers like a worker, then sends nothing.
func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := clientHandshake(conn, testToken); err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(conn, &message{Type: typeRegister, Register: &Register{PID: 4242, Version: "fake"}}); err != nil {
		t.Fatal(err)
	}
	m, err := readFrame(conn)
	if err != nil || m.Type != typeWelcome {
		t.Fatalf("welcome: %+v, %v", m, err)
	}
	return conn
}

func TestConnectionClosedIsDeadAtOnce(t *testing.T) {
	r, _ := startRegistry(t, RegistryConfig{})
	conn := dialRaw(t, r.Addr().String())
	waitFor(t, "the worker registered", func() bool { _, ok := onlyWorker(r); return ok })
	if w, _ := onlyWorker(r); w.Status != StatusAlive || w.PID != 4242 {
		t.Fatalf("worker %+v", w)
	}
	conn.Close()
	waitFor(t, "the worker dead", func() bool { w, _ := onlyWorker(r); return w.Status == StatusDead })
	nextEvent(t, r) // joined
	if ev := nextEvent(t, r); ev.Kind != WorkerDead || ev.Reason != "control connection closed" {
		t.Fatalf("event %+v", ev)
	}
}

func TestSilentWorkerSuspectThenDead(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	// A long real interval keeps the background ticker out of the way;
	// the test drives ticks itself with the fake clock.
	r, _ := startRegistry(t, RegistryConfig{HeartbeatInterval: time.Hour, Now: clock.Now})
	conn := dialRaw(t, r.Addr().String())
	waitFor(t, "the worker registered", func() bool { _, ok := onlyWorker(r); return ok })
	if ev := nextEvent(t, r); ev.Kind != WorkerJoined {
		t.Fatalf("event %+v", ev)
	}

	clock.Advance(time.Hour)
	r.checkLiveness()
	if w, _ := onlyWorker(r); w.Status != StatusAlive {
		t.Fatalf("after one interval: %+v", w)
	}
	clock.Advance(time.Hour)
	r.checkLiveness()
	if w, _ := onlyWorker(r); w.Status != StatusSuspect {
		t.Fatalf("after two intervals: %+v", w)
	}
	clock.Advance(time.Hour)
	r.checkLiveness()
	if w, _ := onlyWorker(r); w.Status != StatusDead {
		t.Fatalf("after three intervals: %+v", w)
	}
	if ev := nextEvent(t, r); ev.Kind != WorkerDead || !strings.Contains(ev.Reason, "no heartbeat") {
		t.Fatalf("event %+v", ev)
	}
	// The registry hangs up on a worker it declared dead.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := readFrame(conn); err == nil {
		t.Fatal("connection of a dead worker still open")
	}
}

func TestRegistryConfigValidate(t *testing.T) {
	var c RegistryConfig
	if err := c.Validate(); err == nil {
		t.Fatal("no token accepted")
	}
	c = RegistryConfig{Token: "t"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:0" || c.HeartbeatInterval != time.Second || c.DeadAfter != 3 || c.Now == nil {
		t.Fatalf("defaults %+v", c)
	}
	c = RegistryConfig{Token: "t", DeadAfter: 1}
	if err := c.Validate(); err == nil {
		t.Fatal("DeadAfter 1 accepted")
	}
}

func TestCloseWithoutServe(t *testing.T) {
	r, err := NewRegistry(RegistryConfig{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	r.Close()
	if _, ok := <-r.Events(); ok {
		t.Fatal("Events not closed")
	}
}

// TestCallsAndNotices: the coordinator calls a worker's handler and gets
// its answer or its error, a call the worker does not answer in time
// ends with the caller's deadline, calls to a gone worker fail at once,
// and the worker's notices and per-instance loads reach the registry.
func TestCallsAndNotices(t *testing.T) {
	notices := make(chan Notice, 1)
	r, _ := startRegistry(t, RegistryConfig{HeartbeatInterval: 20 * time.Millisecond,
		OnNotice: func(worker string, n Notice) {
			if worker == "w1" {
				notices <- n
			}
		}})
	ctx, cancel := context.WithCancel(context.Background())
	send := make(chan Notice, 1)
	release := make(chan struct{})
	joined := make(chan error, 1)
	go func() {
		joined <- Join(ctx, JoinConfig{Coordinator: r.Addr().String(), Token: testToken, Notices: send,
			Instances: func() []InstanceLoad { return []InstanceLoad{{Query: "q", Stage: 1, RowsIn: 7}} },
			Handle: func(ctx context.Context, kind string, body json.RawMessage) (any, error) {
				switch kind {
				case "echo":
					var s string
					if err := json.Unmarshal(body, &s); err != nil {
						return nil, err
					}
					return s + "!", nil
				case "slow":
					<-release
					return nil, nil
				}
				return nil, fmt.Errorf("no such request %q", kind)
			}})
	}()
	waitFor(t, "a heartbeat with instance loads", func() bool {
		w, ok := onlyWorker(r)
		return ok && len(w.Load.Instances) == 1 && w.Load.Instances[0].RowsIn == 7
	})
	call := func(kind string, timeout time.Duration) (string, error) {
		cctx, ccancel := context.WithTimeout(context.Background(), timeout)
		defer ccancel()
		var out string
		err := r.Call(cctx, "w1", kind, "hi", &out)
		return out, err
	}
	if out, err := call("echo", 5*time.Second); err != nil || out != "hi!" {
		t.Fatalf("echo: %q, %v", out, err)
	}
	if _, err := call("nope", 5*time.Second); err == nil || !strings.Contains(err.Error(), `no such request "nope"`) {
		t.Fatalf("failing request: %v", err)
	}
	if _, err := call("slow", 50*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered request: %v", err)
	}
	close(release)
	// The late reply to the slow call is dropped; the next call still works.
	if out, err := call("echo", 5*time.Second); err != nil || out != "hi!" {
		t.Fatalf("echo after a timed-out call: %q, %v", out, err)
	}
	send <- Notice{Kind: "failed", Body: json.RawMessage(`{"run":"r1"}`)}
	select {
	case n := <-notices:
		if n.Kind != "failed" || string(n.Body) != `{"run":"r1"}` {
			t.Fatalf("notice %+v", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the notice did not arrive")
	}
	if err := r.Call(context.Background(), "w9", "echo", "x", nil); err == nil || !strings.Contains(err.Error(), "unknown worker") {
		t.Fatalf("call to an unknown worker: %v", err)
	}
	cancel()
	<-joined
	waitFor(t, "the worker to be dead", func() bool { w, _ := onlyWorker(r); return w.Status == StatusDead })
	if _, err := call("echo", 5*time.Second); !errors.Is(err, ErrWorkerGone) {
		t.Fatalf("call to a dead worker: %v", err)
	}
}

// TestLanes: with JoinConfig.Lane, a request that blocks holds up only
// its own lane: another lane's requests are answered meanwhile, and its
// own lane's next request runs after it, in order. Without Lane there is
// one lane.
func TestLanes(t *testing.T) {
	for _, lanes := range []bool{true, false} {
		r, _ := startRegistry(t, RegistryConfig{Token: testToken})
		ctx, cancel := context.WithCancel(context.Background())
		release := make(chan struct{})
		var order []string
		var mu sync.Mutex
		cfg := JoinConfig{Coordinator: r.Addr().String(), Token: testToken,
			Handle: func(ctx context.Context, kind string, body json.RawMessage) (any, error) {
				if kind == "slow" {
					select {
					case <-release:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
				mu.Lock()
				order = append(order, kind+string(body))
				mu.Unlock()
				return kind, nil
			}}
		if lanes {
			cfg.Lane = func(_ string, body json.RawMessage) string { return string(body) }
		}
		joined := make(chan error, 1)
		go func() { joined <- Join(ctx, cfg) }()
		waitFor(t, "the worker", func() bool { _, ok := onlyWorker(r); return ok })
		call := func(kind, lane string, timeout time.Duration) error {
			cctx, ccancel := context.WithTimeout(context.Background(), timeout)
			defer ccancel()
			return r.Call(cctx, "w1", kind, lane, nil)
		}
		slow := make(chan error, 1)
		go func() { slow <- call("slow", "a", 10*time.Second) }()
		time.Sleep(50 * time.Millisecond)
		sameLane := make(chan error, 1)
		go func() { sameLane <- call("after", "a", 10*time.Second) }()
		time.Sleep(50 * time.Millisecond)
		err := call("other", "b", 500*time.Millisecond)
		if lanes && err != nil {
			t.Errorf("a request of another lane while one blocks: %v", err)
		}
		if !lanes && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("without lanes, a request behind a blocked one: %v, want a timeout", err)
		}
		close(release)
		if err := <-slow; err != nil {
			t.Error(err)
		}
		if err := <-sameLane; err != nil {
			t.Error(err)
		}
		var got string
		waitFor(t, "every request handled", func() bool {
			mu.Lock()
			defer mu.Unlock()
			got = strings.Join(order, " ")
			return len(order) == 3
		})
		want := map[bool]string{true: `other"b" slow"a" after"a"`, false: `slow"a" after"a" other"b"`}[lanes]
		if got != want {
			t.Errorf("lanes %v: handled %s, want %s", lanes, got, want)
		}
		cancel()
		<-joined
	}
}
