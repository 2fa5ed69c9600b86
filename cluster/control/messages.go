package control

import (
	"encoding/json"
	"time"
)

// Register is the first message a worker sends after the handshake.
type Register struct {
	// Version is the worker binary's version string.
	Version string `json:"version"`
	// PID is the worker's process ID on its host.
	PID int `json:"pid"`
	// DataAddr is the address the worker advertises for data-plane
	// channels (cluster/transport); empty when it listens on none yet.
	DataAddr string `json:"data_addr,omitempty"`
	// Hostname is the worker host's name, for display.
	Hostname string `json:"hostname,omitempty"`
}

// Welcome is the registry's answer to Register.
type Welcome struct {
	// WorkerID is the ID the registry gave this connection; a worker
	// that reconnects gets a new one.
	WorkerID string `json:"worker_id"`
	// HeartbeatInterval is how often the registry expects a Heartbeat.
	HeartbeatInterval time.Duration `json:"heartbeat_interval_ns"`
}

// Heartbeat is what a worker sends every heartbeat interval.
type Heartbeat struct {
	// Seq numbers heartbeats 1, 2, 3, … within one connection.
	Seq uint64 `json:"seq"`
	// Load is the worker's load when it sent the heartbeat.
	Load Load `json:"load"`
}

// Load is a worker's resource use, as cumulative counters and gauges.
type Load struct {
	// CPUBusySeconds is the CPU time (user + system) the worker process
	// used since it started; rates come from differences between
	// heartbeats.
	CPUBusySeconds float64 `json:"cpu_busy_seconds"`
	// Goroutines is the number of goroutines in the worker.
	Goroutines int `json:"goroutines"`
	// HeapBytes is the bytes of live and not yet collected heap objects.
	HeapBytes uint64 `json:"heap_bytes"`
	// CopyBytes is the bytes of the checkpoint snapshots the worker
	// keeps for instances downstream of its own (upstream backup).
	CopyBytes uint64 `json:"copy_bytes,omitempty"`
	// Instances is the load of each operator instance the worker runs.
	Instances []InstanceLoad `json:"instances,omitempty"`
}

// InstanceLoad is the load of one operator instance on a worker.
type InstanceLoad struct {
	Query       string  `json:"query"`        // continuous query name
	Stage       int     `json:"stage"`        // stage of the physical DAG
	Instance    int     `json:"instance"`     // instance within the stage
	RowsIn      uint64  `json:"rows_in"`      // rows taken in, cumulative
	RowsOut     uint64  `json:"rows_out"`     // rows emitted, cumulative
	QueueDepth  int     `json:"queue_depth"`  // input frames waiting
	StateBytes  uint64  `json:"state_bytes"`  // operator state size
	BusySeconds float64 `json:"busy_seconds"` // CPU time in the instance, cumulative
}

// message is the envelope of every frame after the handshake: exactly
// one of the pointers is set, named by Type.
type message struct {
	Type      string     `json:"type"`
	Register  *Register  `json:"register,omitempty"`
	Welcome   *Welcome   `json:"welcome,omitempty"`
	Heartbeat *Heartbeat `json:"heartbeat,omitempty"`
	Request   *Request   `json:"request,omitempty"`
	Reply     *Reply     `json:"reply,omitempty"`
	Notice    *Notice    `json:"notice,omitempty"`
}

// Request is a call from the coordinator to a worker (Registry.Call): the
// worker's JoinConfig.Handle runs it and answers with a Reply of the same
// ID. Kind and Body belong to the caller (cluster: deploy, start, stop,
// status); control only carries them.
type Request struct {
	ID   uint64          `json:"id"`
	Kind string          `json:"kind"`
	Body json.RawMessage `json:"body,omitempty"`
}

// Reply answers a Request: Error is empty on success.
type Reply struct {
	ID    uint64          `json:"id"`
	Error string          `json:"error,omitempty"`
	Body  json.RawMessage `json:"body,omitempty"`
}

// Notice is a message a worker sends on its own (JoinConfig.Notices), such
// as an instance that failed; the registry hands it to
// RegistryConfig.OnNotice.
type Notice struct {
	Kind string          `json:"kind"`
	Body json.RawMessage `json:"body,omitempty"`
}

const (
	typeRegister  = "register"
	typeWelcome   = "welcome"
	typeHeartbeat = "heartbeat"
	typeRequest   = "request"
	typeReply     = "reply"
	typeNotice    = "notice"
)
