// Package control is the control plane of Spate's distributed runtime:
// the coordinator's Registry of workers and the worker's side, Join. A
// worker connects to the registry over TCP, both prove they hold the
// shared cluster token, the worker registers (version, PID, data-plane
// address, host name) and then sends a heartbeat with its load (process
// and per instance) every interval. The registry keeps each worker's
// registration, last load and liveness (alive, suspect, dead) for SHOW
// WORKERS, and reports joins and deaths on Events for the recovery logic.
// Over the same connection the coordinator calls the worker (Call: a
// request with an ID, answered by a reply with that ID, bounded by the
// caller's context) and the worker sends notices (OnNotice). The kinds
// and bodies of requests and notices belong to the caller (cluster:
// deploy, start, stop, status; failed).
//
// # Using it
//
//	reg, err := control.NewRegistry(control.RegistryConfig{Token: token, Logger: log})
//	go reg.Serve(ctx)                 // accepts workers at reg.Addr()
//	for ev := range reg.Events() { … } // WorkerJoined, WorkerDead
//	ws := reg.Workers()               // snapshot, dead workers included
//	err = reg.Call(ctx, "w1", "status", req, &reply) // JSON in, JSON out
//	reg.Close()                       // idempotent, waits for its goroutines
//
// and in the worker process (spate worker --join HOST:PORT):
//
//	err := control.Join(ctx, control.JoinConfig{Coordinator: addr, Token: token,
//		Handle: func(ctx, kind, body) (any, error) { … }, Notices: ch, Instances: loads})
//
// # Handshake
//
// The connection opens with the cluster handshake of cluster/auth (magic
// "SPCC", the worker as client, the registry as server): each side proves
// it holds the token with an HMAC-SHA256 over both nonces, compared in
// constant time, with labels of its own so a MAC from the data plane is
// never accepted here. The token never crosses the wire, the worker never
// registers with a registry that cannot prove the token, and a refused
// worker is told why ("cluster token mismatch") before the connection
// closes; the registry logs "refused worker connection" with the peer's
// address and the reason. The handshake and registration are bounded by
// HandshakeTimeout (10 s). The connection is not encrypted.
//
// # Framing
//
// After the handshake each message is a frame: a 4-byte big-endian length
// n (1 ≤ n ≤ 16 MiB: a deploy carries a plan) followed by n bytes of
// JSON, an envelope {"type": "register"|"welcome"|"heartbeat"|"request"|
// "reply"|"notice", "<type>": {…}} with exactly one body. The worker
// sends register, the registry answers welcome (the worker's ID and the
// heartbeat interval), then the worker sends a heartbeat at once and
// every interval. Requests run one at a time on the worker, in order (a
// deploy completes before the start after it). JSON keeps the messages
// readable and extensible; control traffic is a few small messages per
// worker per second, so its cost does not matter.
//
// # Liveness
//
// Failure detection is a pure state machine (livenessState: observe an
// event, tick the clock, get back transitions; no goroutines, clock or
// network), driven by the Registry: a heartbeat — or any other message,
// since heartbeats may wait behind a large notice on the wire — keeps a
// worker alive (and revives a suspect one); 1.5 intervals without one
// make it suspect; DeadAfter intervals (default 3; the coordinator uses
// 10) make it dead; a broken or closed control
// connection makes it dead at once. Dead is final for a worker ID: the
// registry closes a dead worker's connection, and a worker that comes
// back registers under a new ID. Silence is judged by the injected
// RegistryConfig.Now, checked every quarter interval.
//
// # Not done
//
// Join does not reconnect once a registered session breaks (it returns
// the error; the caller may call it again). Dead workers stay in Workers
// for the registry's lifetime. No TLS.
package control
