package cluster

import (
	"github.com/apache/arrow-go/v18/arrow"

	"github.com/spatedb/spate/exec"
)

// chain runs the operators of one stage instance in order: what operator i
// emits is pushed into operator i+1, and what the last one emits goes to
// out. A join stage starts with a two-input operator (head) whose output
// feeds ops[0]. A chain is driven by one goroutine.
type chain struct {
	head  exec.BinaryOperator // nil for a single-input stage
	ops   []exec.Operator
	emits []exec.Emit // emits[i] pushes into ops[i]; emits[len(ops)] is out
}

func newChain(head exec.BinaryOperator, ops []exec.Operator, out exec.Emit) *chain {
	c := &chain{head: head, ops: ops, emits: make([]exec.Emit, len(ops)+1)}
	c.emits[len(ops)] = out
	for i := len(ops) - 1; i >= 0; i-- {
		op, next := ops[i], c.emits
		idx := i
		c.emits[i] = func(rec arrow.RecordBatch) error { return op.Push(rec, next[idx+1]) }
	}
	return c
}

// push feeds one batch (owned by the caller) arriving on input side into
// the chain.
func (c *chain) push(side int, rec arrow.RecordBatch) error {
	if c.head != nil {
		return c.head.PushSide(side, rec, c.emits[0])
	}
	return c.emits[0](rec)
}

// advance moves event time forward through every operator in order, so
// windows closed by one operator flow through the ones after it.
func (c *chain) advance(wm int64) error {
	if c.head != nil {
		if err := c.head.Advance(wm, c.emits[0]); err != nil {
			return err
		}
	}
	for i, op := range c.ops {
		if err := op.Advance(wm, c.emits[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// holdBack lowers an output watermark to the event time of rows an
// operator still holds past the watermark (OVER with LEAD).
func (c *chain) holdBack(wm int64) int64 {
	for _, op := range c.ops {
		if h, ok := op.(exec.WatermarkHolder); ok {
			if t, held := h.HeldBack(); held && t < wm {
				wm = t
			}
		}
	}
	return wm
}

// finish ends a bounded input.
func (c *chain) finish() error {
	if c.head != nil {
		if err := c.head.Finish(c.emits[0]); err != nil {
			return err
		}
	}
	for i, op := range c.ops {
		if err := op.Finish(c.emits[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// stats sums the counters of the chain's operators: rows in of the first,
// rows out of the last, late rows and state of all.
func (c *chain) stats() exec.Stats {
	var all []any
	if c.head != nil {
		all = append(all, c.head)
	}
	for _, op := range c.ops {
		all = append(all, op)
	}
	var s exec.Stats
	for i, op := range all {
		r, ok := op.(exec.StatsReporter)
		if !ok {
			continue
		}
		st := r.Stats()
		if i == 0 {
			s.RowsIn = st.RowsIn
		}
		if i == len(all)-1 {
			s.RowsOut = st.RowsOut
		}
		s.LateRows += st.LateRows
		s.StateRows += st.StateRows
		s.StateBytes += st.StateBytes
	}
	return s
}

func (c *chain) close() {
	if c.head != nil {
		c.head.Close()
	}
	for _, op := range c.ops {
		op.Close()
	}
}
