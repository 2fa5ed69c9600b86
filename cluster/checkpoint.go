package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/spatedb/spate/exec"
)

// instanceSnapshot is one instance's whole state at a point between two
// messages: the snapshot of every stateful operator of its chain, the
// watermarks it merged, and its counters. It is what recovery restores on
// another worker and what scale-out partitions.
type instanceSnapshot struct {
	Stage    int `json:"stage"`
	Instance int `json:"instance"`
	// Watermarks is the latest watermark from each upstream slot (see
	// instance.wms), Watermark the merged one, Out the last forwarded.
	Watermarks []int64 `json:"watermarks"`
	Idle       []bool  `json:"idle"`
	IdleOut    bool    `json:"idle_out"`
	Watermark  int64   `json:"watermark"`
	Out        int64   `json:"out"`
	RowsIn     int64   `json:"rows_in"`
	RowsOut    int64   `json:"rows_out"`
	// Positions says how many messages from each upstream instance the
	// snapshot covers, barrier included: "1.0:1234 1.1:1230" (stage.
	// instance), or "feed:N" for a source stage.
	Positions string   `json:"positions"`
	Received  []uint64 `json:"received"` // the counts behind Positions
	// AlignMicros is the time from the first input's barrier to the
	// last's (inputs that delivered it were held meanwhile); PauseMicros
	// the time the instance stopped to take its operators' snapshots.
	AlignMicros int64 `json:"align_us"`
	PauseMicros int64 `json:"pause_us"`
	// Ops[i] is exec.Snapshot.Marshal of the chain's i-th operator (the
	// two-input head first, when there is one); nil for a stateless one.
	Ops [][]byte `json:"-"`
	// KeyRange, when set ([lo, hi]), restricts Ops to the keys whose hash
	// is in it: a rescale hands both halves of a split the whole
	// snapshot, and each keeps its part when it restores.
	KeyRange []uint64 `json:"key_range,omitempty"`
}

// opSnapshot decodes operator o's snapshot, keeping only KeyRange's
// keys when it is set.
func (s *instanceSnapshot) opSnapshot(o int) (*exec.Snapshot, error) {
	snap, err := exec.UnmarshalSnapshot(s.Ops[o])
	if err != nil || s.KeyRange == nil {
		return snap, err
	}
	lo, hi := s.KeyRange[0], s.KeyRange[1]
	var splits []uint64
	keep := 0
	if lo > 0 {
		splits, keep = append(splits, lo), 1
	}
	if hi < math.MaxUint64 {
		splits = append(splits, hi+1)
	}
	parts, err := exec.PartitionSnapshot(snap, splits)
	snap.Release()
	if err != nil {
		return nil, err
	}
	for i, p := range parts {
		if i != keep {
			p.Release()
		}
	}
	return parts[keep], nil
}

// errNotCheckpointable is returned for an operator without state
// primitives that holds state (none today: stateless ones are skipped).
var errNotCheckpointable = errors.New("operator has no checkpoint")

// checkpointable is what both exec.Stateful and exec.StatefulBinary offer.
type checkpointable interface {
	Checkpoint() (*exec.Snapshot, error)
	Restore(*exec.Snapshot) error
}

// freezer is an operator whose checkpoint is copy-on-write: Freeze is
// quick and the snapshot is built later, on another goroutine
// (exec.HashAggregate).
type freezer interface {
	Freeze() (func() (*exec.Snapshot, error), error)
}

// operators lists the chain's operators in order, the head first.
func (c *chain) operators() []any {
	var out []any
	if c.head != nil {
		out = append(out, c.head)
	}
	for _, op := range c.ops {
		out = append(out, op)
	}
	return out
}

// checkpoint snapshots the instance. It runs on the instance's goroutine
// (or before the instance starts), between two messages.
func (in *instance) checkpoint() (*instanceSnapshot, error) {
	cut, err := in.cut()
	if err != nil {
		return nil, err
	}
	return cut.encode()
}

// stateCut is an instance's state as the instance's goroutine takes it:
// frozen (copy-on-write) or copied operator states. Building and encoding
// their snapshots happens on another goroutine while the instance goes on.
type stateCut struct {
	head instanceSnapshot                 // without Ops
	ops  []func() (*exec.Snapshot, error) // nil for a stateless operator; each called once
}

// cut takes the state; on the instance's goroutine, between messages.
func (in *instance) cut() (*stateCut, error) {
	c := &stateCut{head: instanceSnapshot{Stage: in.stage, Instance: in.idx, Watermarks: append([]int64(nil), in.wms...),
		Idle: append([]bool(nil), in.idle...), IdleOut: in.idleOut,
		Watermark: in.wm, Out: in.out, RowsIn: in.rowsIn, RowsOut: in.rowsOut, Positions: in.positions(), Received: append([]uint64(nil), in.received...)}}
	for i, op := range in.chain.operators() {
		var build func() (*exec.Snapshot, error)
		var err error
		switch op := op.(type) {
		case freezer:
			build, err = op.Freeze()
		case checkpointable:
			var snap *exec.Snapshot
			if snap, err = op.Checkpoint(); err == nil {
				build = func() (*exec.Snapshot, error) { return snap, nil }
			}
		}
		if err != nil {
			c.release()
			return nil, fmt.Errorf("stage %d instance %d operator %d: %w", in.stage, in.idx, i, err)
		}
		c.ops = append(c.ops, build)
	}
	return c, nil
}

// positions renders received for instanceSnapshot.Positions.
func (in *instance) positions() string {
	st := in.p.query.Plan.Stages[in.stage]
	if len(st.Sides) == 0 {
		return fmt.Sprintf("feed:%d", in.received[0])
	}
	var b strings.Builder
	for side, s := range st.Sides {
		for i := range in.sideWidth[side] {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%d.%d:%d", s.Stage, i, in.received[in.sideBase[side]+i])
		}
	}
	return b.String()
}

// snapshotHeader decodes only the header of a marshalled snapshot.
func snapshotHeader(data []byte) (*instanceSnapshot, error) {
	if len(data) < 9 {
		return nil, errors.New("truncated instance snapshot")
	}
	n := binary.LittleEndian.Uint64(data[:8])
	if uint64(len(data)-9) < n {
		return nil, errors.New("truncated instance snapshot")
	}
	s := new(instanceSnapshot)
	return s, json.Unmarshal(data[9:9+n], s)
}

// encode builds and marshals the operator snapshots.
func (c *stateCut) encode() (*instanceSnapshot, error) {
	defer c.release()
	s := c.head
	for i, build := range c.ops {
		if build == nil {
			s.Ops = append(s.Ops, nil)
			continue
		}
		c.ops[i] = nil
		snap, err := build()
		if err != nil {
			return nil, err
		}
		b, err := snap.Marshal()
		snap.Release()
		if err != nil {
			return nil, err
		}
		s.Ops = append(s.Ops, b)
	}
	return &s, nil
}

// release drops the states not encoded.
func (c *stateCut) release() {
	for _, build := range c.ops {
		if build != nil {
			if snap, err := build(); err == nil {
				snap.Release()
			}
		}
	}
	c.ops = nil
}

// restore replaces a fresh instance's state (not yet started) with a
// snapshot of the same stage.
func (in *instance) restore(s *instanceSnapshot) error {
	ops := in.chain.operators()
	if s.Stage != in.stage || len(s.Ops) != len(ops) || len(s.Watermarks) != len(in.wms) || len(s.Idle) != len(in.idle) {
		return fmt.Errorf("snapshot of stage %d (%d operators, %d inputs) does not fit stage %d (%d operators, %d inputs)",
			s.Stage, len(s.Ops), len(s.Watermarks), in.stage, len(ops), len(in.wms))
	}
	for i, op := range ops {
		if s.Ops[i] == nil {
			continue
		}
		cp, ok := op.(checkpointable)
		if !ok {
			return fmt.Errorf("operator %d: %w", i, errNotCheckpointable)
		}
		snap, err := s.opSnapshot(i)
		if err != nil {
			return err
		}
		err = cp.Restore(snap)
		snap.Release()
		if err != nil {
			return fmt.Errorf("stage %d instance %d operator %d: %w", in.stage, in.idx, i, err)
		}
	}
	copy(in.wms, s.Watermarks)
	copy(in.idle, s.Idle)
	copy(in.received, s.Received)
	in.idleOut = s.IdleOut
	in.wm, in.out, in.rowsIn, in.rowsOut = s.Watermark, s.Out, s.RowsIn, s.RowsOut
	in.wmPub.Store(in.wm)
	return nil
}

// marshal encodes the snapshot: a length-prefixed JSON header, then each
// operator's bytes, length-prefixed (length 0 with a flag for none).
func (s *instanceSnapshot) marshal() ([]byte, error) {
	hdr, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	put := func(b []byte, present bool) {
		var h [9]byte
		binary.LittleEndian.PutUint64(h[:8], uint64(len(b)))
		if present {
			h[8] = 1
		}
		buf.Write(h[:])
		buf.Write(b)
	}
	put(hdr, true)
	binary.Write(&buf, binary.LittleEndian, uint32(len(s.Ops)))
	for _, op := range s.Ops {
		put(op, op != nil)
	}
	return buf.Bytes(), nil
}

// unmarshalInstanceSnapshot is the inverse of marshal.
func unmarshalInstanceSnapshot(data []byte) (*instanceSnapshot, error) {
	bad := errors.New("truncated or malformed instance snapshot")
	next := func() ([]byte, bool, error) {
		if len(data) < 9 {
			return nil, false, bad
		}
		n, present := binary.LittleEndian.Uint64(data[:8]), data[8] == 1
		data = data[9:]
		if uint64(len(data)) < n {
			return nil, false, bad
		}
		b := data[:n:n]
		data = data[n:]
		return b, present, nil
	}
	hdr, _, err := next()
	if err != nil {
		return nil, err
	}
	s := new(instanceSnapshot)
	if err := json.Unmarshal(hdr, s); err != nil {
		return nil, err
	}
	if len(data) < 4 {
		return nil, bad
	}
	n := binary.LittleEndian.Uint32(data[:4])
	data = data[4:]
	if int(n) > len(data)/9 {
		return nil, bad
	}
	for range n {
		b, present, err := next()
		if err != nil {
			return nil, err
		}
		if !present {
			b = nil
		}
		s.Ops = append(s.Ops, b)
	}
	if len(data) != 0 {
		return nil, bad
	}
	return s, nil
}

// snapshotLocal checkpoints every instance this process runs, each on
// its own goroutine at the point of its input where the request arrives.
func (p *pipeline) snapshotLocal(ctx context.Context) ([]*instanceSnapshot, error) {
	var out []*instanceSnapshot
	for _, row := range p.stages {
		for _, in := range row {
			if in == nil {
				continue
			}
			reply := make(chan snapshotReply, 1)
			if err := p.deliver(localOutlet{in}, message{snapshot: reply}); err != nil {
				return nil, err
			}
			select {
			case r := <-reply:
				if r.err != nil {
					return nil, r.err
				}
				out = append(out, r.snap)
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-p.ctx.Done():
				if err := p.failure(); err != nil {
					return nil, err
				}
				return nil, p.ctx.Err()
			}
		}
	}
	return out, nil
}

// restoreLocal restores this process's instances (built, not started)
// from snapshots of the same query.
func (p *pipeline) restoreLocal(snaps []*instanceSnapshot) error {
	for _, s := range snaps {
		if s.Stage >= len(p.stages) || s.Instance >= len(p.stages[s.Stage]) {
			return fmt.Errorf("snapshot of stage %d instance %d does not fit the plan", s.Stage, s.Instance)
		}
		in := p.stages[s.Stage][s.Instance]
		if in == nil {
			continue
		}
		if err := in.restore(s); err != nil {
			return err
		}
	}
	return nil
}
