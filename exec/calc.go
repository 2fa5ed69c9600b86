package exec

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Calc filters and projects: for each input batch it keeps the rows where
// filter is TRUE (NULL and FALSE drop the row) and evaluates exprs on the
// kept rows only (so an expression that would fail on a filtered-out row
// does not). A plain ColRef projection shares the input column's memory
// (Retain, no copy) when every row is kept. Batches with no rows left are
// not emitted. Calc is stateless: Advance and Finish emit nothing.
type Calc struct {
	in, out *arrow.Schema
	filter  node // nil = keep every row
	exprs   []node
	refs    []int // input columns read by exprs
	mem     memory.Allocator
	idx     []int32
	stats   Stats
	closed  bool
}

var _ Operator = (*Calc)(nil)
var _ StatsReporter = (*Calc)(nil)

// NewCalc compiles filter (nil for none) and exprs against input; names
// are the output column names (len(names) == len(exprs)). Options:
// WithAllocator.
func NewCalc(input *arrow.Schema, filter Expr, exprs []Expr, names []string, opts ...Option) (*Calc, error) {
	o := buildOptions(opts)
	if len(names) != len(exprs) {
		return nil, fmt.Errorf("exec: NewCalc: %d names for %d expressions", len(names), len(exprs))
	}
	c := &Calc{in: input, mem: o.mem}
	if filter != nil {
		f, err := compileNode(filter, input)
		if err != nil {
			return nil, err
		}
		if f.typ().ID() != arrow.BOOL && !isNull(f.typ()) {
			return nil, &Error{Code: CodeDatatypeMismatch, Message: fmt.Sprintf("argument of WHERE must be type boolean, not type %s", pgTypeName(f.typ()))}
		}
		c.filter = f
	}
	fields := make([]arrow.Field, len(exprs))
	for i, e := range exprs {
		n, err := compileNode(e, input)
		if err != nil {
			return nil, err
		}
		c.exprs = append(c.exprs, n)
		fields[i] = arrow.Field{Name: names[i], Type: n.typ(), Nullable: true}
	}
	c.refs = unionRefs(c.exprs...)
	c.out = arrow.NewSchema(fields, nil)
	return c, nil
}

// Schema returns the output schema.
func (c *Calc) Schema() *arrow.Schema { return c.out }

// Stats returns the row counters.
func (c *Calc) Stats() Stats { return c.stats }

// Push filters and projects rec (not retained) and emits at most one batch.
func (c *Calc) Push(rec arrow.RecordBatch, emit Emit) error {
	n := int(rec.NumRows())
	c.stats.RowsIn += int64(n)
	if n == 0 {
		return nil
	}
	b := batchOf(rec)
	if c.filter != nil {
		m, err := c.filter.eval(c.mem, b)
		if err != nil {
			return err
		}
		if isNull(m.DataType()) {
			m.Release()
			return nil
		}
		if cap(c.idx) < n {
			c.idx = make([]int32, 0, n)
		}
		sel, all := selectionIndices(m, c.idx)
		m.Release()
		if len(sel) == 0 {
			return nil
		}
		if !all {
			fb := &batch{cols: make([]arrow.Array, len(b.cols)), n: len(sel)}
			for _, r := range c.refs {
				fb.cols[r] = takeArray(c.mem, b.cols[r], sel)
			}
			defer releaseAll(fb.cols)
			b = fb
		}
	}
	cols := make([]arrow.Array, len(c.exprs))
	defer releaseAll(cols)
	for i, e := range c.exprs {
		a, err := e.eval(c.mem, b)
		if err != nil {
			return err
		}
		cols[i] = a
	}
	out := array.NewRecordBatch(c.out, cols, int64(b.n))
	defer out.Release()
	c.stats.RowsOut += int64(b.n)
	return emit(out)
}

// Advance emits nothing: Calc keeps no state.
func (c *Calc) Advance(wm int64, emit Emit) error { return nil }

// Finish emits nothing.
func (c *Calc) Finish(emit Emit) error { return nil }

// Close releases nothing (Calc holds no batches). Idempotent.
func (c *Calc) Close() { c.closed = true }
