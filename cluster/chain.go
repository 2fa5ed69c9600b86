package cluster

import (
	"github.com/apache/arrow-go/v18/arrow"

	"github.com/spatedb/spate/exec"
)

// chain runs the operators of one stage instance in order: what operator i
// emits is pushed into operator i+1, and what the last one emits goes to
// out. It is driven by one goroutine.
type chain struct {
	ops   []exec.Operator
	emits []exec.Emit // emits[i] pushes into ops[i]; emits[len(ops)] is out
}

func newChain(ops []exec.Operator, out exec.Emit) *chain {
	c := &chain{ops: ops, emits: make([]exec.Emit, len(ops)+1)}
	c.emits[len(ops)] = out
	for i := len(ops) - 1; i >= 0; i-- {
		op, next := ops[i], c.emits
		idx := i
		c.emits[i] = func(rec arrow.RecordBatch) error { return op.Push(rec, next[idx+1]) }
	}
	return c
}

// push feeds one batch (owned by the caller) into the chain.
func (c *chain) push(rec arrow.RecordBatch) error { return c.emits[0](rec) }

// advance moves event time forward through every operator in order, so
// windows closed by one operator flow through the ones after it.
func (c *chain) advance(wm int64) error {
	for i, op := range c.ops {
		if err := op.Advance(wm, c.emits[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// finish ends a bounded input.
func (c *chain) finish() error {
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
	var s exec.Stats
	for i, op := range c.ops {
		r, ok := op.(exec.StatsReporter)
		if !ok {
			continue
		}
		st := r.Stats()
		if i == 0 {
			s.RowsIn = st.RowsIn
		}
		if i == len(c.ops)-1 {
			s.RowsOut = st.RowsOut
		}
		s.LateRows += st.LateRows
		s.StateRows += st.StateRows
		s.StateBytes += st.StateBytes
	}
	return s
}

func (c *chain) close() {
	for _, op := range c.ops {
		op.Close()
	}
}
