package planner

import (
	"fmt"
	"strings"
)

// Physical is an operator DAG: stages connected in order, each run as one
// or more instances. Rows flow from Stages[i] to Stages[i+1]; when the next
// stage has PartitionBy columns, rows are routed by the hash of those
// columns to the instance owning that key range.
type Physical struct {
	Stages []*Stage
	// Columns is the output schema of the last stage.
	Columns []Column
	// Mode is how the result is produced: AggWindowed (append-only rows,
	// also used for queries without aggregation), AggUpdating (a changelog
	// whose column 0 is "op") or AggBatch.
	Mode AggregateMode
}

// Stage is a chain of operators that runs as Parallelism instances.
type Stage struct {
	ID   int
	Name string
	// Source is set on the first stage: the relation it reads.
	Source *Source
	// Input is the schema of rows entering the stage (for the first stage,
	// the columns the source reads).
	Input []Column
	Ops   []Op
	// PartitionBy lists Input columns whose hash routes each row to an
	// instance; empty means one instance receives everything.
	PartitionBy []int
	Parallelism int
}

// Output is the schema of rows leaving the stage.
func (s *Stage) Output() []Column {
	if len(s.Ops) == 0 {
		return s.Input
	}
	return s.Ops[len(s.Ops)-1].Columns()
}

// Source is the relation a plan reads.
type Source struct {
	Relation string
	Kind     RelationKind // 0: a single row without columns (SELECT 1)
	Stream   *Stream
	// Indexes are the relation's columns the source reads, in order.
	Indexes []int
}

// Op is one operator of a stage.
type Op interface {
	// Columns is the operator's output schema.
	Columns() []Column
	describe() string
}

// CalcOp filters (when Filter is set) and then projects (when Exprs is
// set; nil keeps every input column).
type CalcOp struct {
	Filter Expr
	Exprs  []Expr
	Names  []string
	Out    []Column
}

// AggOp is a hash aggregate over input columns.
type AggOp struct {
	Keys     []int
	KeyNames []string
	Aggs     []PhysAgg
	Window   *PhysWindow
	Mode     AggregateMode
	Out      []Column
}

// PhysAgg is one aggregate over input column Arg (-1 for COUNT(*)).
type PhysAgg struct {
	Kind    AggKind
	Arg     int
	ArgName string // the input column's name, for EXPLAIN
	Name    string
	T       Type
}

// PhysWindow is an event-time window over input column TimeCol.
type PhysWindow struct {
	Kind     WindowKind
	TimeCol  int
	TimeName string // the input column's name, for EXPLAIN
	Size     int64
	Slide    int64
	Gap      int64
	TimeUnit int64
}

// SortOp orders a bounded input by column and applies LIMIT/OFFSET.
type SortOp struct {
	Keys   []PhysSortKey
	Limit  int64 // -1: none
	Offset int64
	Out    []Column
}

// PhysSortKey orders by input column Col.
type PhysSortKey struct {
	Col        int
	Desc       bool
	NullsFirst bool
}

// Columns implements Op.
func (c *CalcOp) Columns() []Column { return c.Out }

// Columns implements Op.
func (a *AggOp) Columns() []Column { return a.Out }

// Columns implements Op.
func (s *SortOp) Columns() []Column { return s.Out }

func (c *CalcOp) describe() string {
	var parts []string
	if c.Filter != nil {
		parts = append(parts, "filter="+c.Filter.String())
	}
	if c.Exprs != nil {
		parts = append(parts, "project="+namedExprs(c.Exprs, c.Names))
	}
	return "Calc " + strings.Join(parts, " ")
}

func (a *AggOp) describe() string {
	keys := make([]Expr, len(a.Keys))
	for i, k := range a.Keys {
		keys[i] = &ColRef{Index: k, Name: a.KeyNames[i]}
	}
	aggs := make([]AggCall, len(a.Aggs))
	for i, x := range a.Aggs {
		aggs[i] = AggCall{Kind: x.Kind, Name: x.Name, T: x.T}
		if x.Arg >= 0 {
			aggs[i].Arg = &ColRef{Index: x.Arg, Name: x.ArgName}
		}
	}
	var w *Window
	if a.Window != nil {
		w = &Window{Kind: a.Window.Kind, Time: &ColRef{Name: a.Window.TimeName}, Size: a.Window.Size, Slide: a.Window.Slide, Gap: a.Window.Gap}
	}
	return "HashAggregate " + describeAgg(keys, w, aggs, a.Mode)
}

func (s *SortOp) describe() string {
	var b strings.Builder
	b.WriteString("Sort")
	if len(s.Keys) > 0 {
		parts := make([]string, len(s.Keys))
		for i, k := range s.Keys {
			parts[i] = s.Out[k.Col].Name
			if k.Desc {
				parts[i] += " DESC"
			}
		}
		b.WriteString(" [" + strings.Join(parts, ", ") + "]")
	}
	if s.Limit >= 0 {
		fmt.Fprintf(&b, " limit=%d", s.Limit)
	}
	if s.Offset > 0 {
		fmt.Fprintf(&b, " offset=%d", s.Offset)
	}
	return b.String()
}

// lower turns a rewritten logical plan into stages. In streaming plans the
// DAG is cut before every aggregate, whose input is hash-partitioned on the
// group key across parallelism instances.
func lower(n Node, streaming bool, parallelism int) (*Physical, error) {
	if parallelism < 1 {
		parallelism = 1
	}
	chain, scan, err := linearize(n)
	if err != nil {
		return nil, err
	}
	src := &Source{Relation: scan.Relation, Kind: scan.Kind, Stream: scan.Stream, Indexes: scan.Indexes}
	cur := &Stage{ID: 0, Name: "source", Source: src, Input: scan.Cols, Parallelism: 1}
	phys := &Physical{Stages: []*Stage{cur}, Mode: AggWindowed}
	cols := scan.Cols
	for _, node := range chain {
		switch x := node.(type) {
		case *Filter:
			// Merge into a preceding filter-only Calc.
			if last := lastCalc(cur); last != nil && last.Exprs == nil {
				last.Filter = joinAnd([]Expr{last.Filter, x.Pred})
				continue
			}
			cur.Ops = append(cur.Ops, &CalcOp{Filter: x.Pred, Out: cols})
		case *Project:
			out := x.Columns()
			if last := lastCalc(cur); last != nil && last.Exprs == nil {
				last.Exprs, last.Names, last.Out = x.Exprs, x.Names, out
			} else if !isIdentity(x, cols) {
				cur.Ops = append(cur.Ops, &CalcOp{Exprs: x.Exprs, Names: x.Names, Out: out})
			}
			cols = out
		case *Aggregate:
			// The aggregate reads plain columns: keys, then arguments, then
			// event time, computed by a projection in front of it.
			var pre []Expr
			var preNames []string
			op := &AggOp{KeyNames: x.KeyNames, Mode: x.Mode, Out: x.Columns()}
			for i, k := range x.Keys {
				op.Keys = append(op.Keys, len(pre))
				pre = append(pre, k)
				preNames = append(preNames, x.KeyNames[i])
			}
			for _, a := range x.Aggs {
				pa := PhysAgg{Kind: a.Kind, Arg: -1, Name: a.Name, T: a.T}
				if a.Arg != nil {
					pa.Arg = indexOf(pre, a.Arg)
					if pa.Arg < 0 {
						pa.Arg = len(pre)
						pre = append(pre, a.Arg)
						preNames = append(preNames, a.Name+"_arg")
					}
				}
				if pa.Arg >= 0 {
					pa.ArgName = preNames[pa.Arg]
				}
				op.Aggs = append(op.Aggs, pa)
			}
			if w := x.Window; w != nil {
				pw := &PhysWindow{Kind: w.Kind, Size: w.Size, Slide: w.Slide, Gap: w.Gap, TimeUnit: w.TimeUnit}
				pw.TimeCol = indexOf(pre, w.Time)
				if pw.TimeCol < 0 {
					pw.TimeCol = len(pre)
					pre = append(pre, w.Time)
					preNames = append(preNames, w.Time.Name)
				}
				pw.TimeName = preNames[pw.TimeCol]
				op.Window = pw
			}
			if len(pre) == 0 {
				// COUNT(*) without keys still needs rows to count.
				pre = append(pre, &ColRef{Index: 0, Name: cols[0].Name, T: cols[0].Type})
				preNames = append(preNames, cols[0].Name)
			}
			preCalc := &Project{Exprs: pre, Names: preNames}
			preCols := preCalc.Columns()
			if last := lastCalc(cur); last != nil && last.Exprs == nil {
				last.Exprs, last.Names, last.Out = pre, preNames, preCols
			} else if !isIdentity(preCalc, cols) {
				cur.Ops = append(cur.Ops, &CalcOp{Exprs: pre, Names: preNames, Out: preCols})
			}
			if streaming {
				next := &Stage{ID: len(phys.Stages), Name: "aggregate", Input: preCols, Parallelism: 1}
				if len(op.Keys) > 0 {
					next.PartitionBy = op.Keys
					next.Parallelism = parallelism
				}
				phys.Stages = append(phys.Stages, next)
				cur = next
			}
			cur.Ops = append(cur.Ops, op)
			cols = op.Out
			phys.Mode = x.Mode
		case *Sort:
			op := &SortOp{Limit: x.Limit, Offset: x.Offset, Out: cols}
			for _, k := range x.Keys {
				op.Keys = append(op.Keys, PhysSortKey{Col: k.Expr.(*ColRef).Index, Desc: k.Desc, NullsFirst: k.NullsFirst})
			}
			cur.Ops = append(cur.Ops, op)
		default:
			return nil, errorf(CodeNotSupported, "cannot execute plan node %T", node)
		}
	}
	phys.Columns = cols
	if !streaming && phys.Mode != AggWindowed {
		phys.Mode = AggBatch
	}
	return phys, nil
}

// linearize lists the nodes above the scan, bottom first.
func linearize(n Node) ([]Node, *Scan, error) {
	var chain []Node
	for {
		if s, ok := n.(*Scan); ok {
			for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
				chain[i], chain[j] = chain[j], chain[i]
			}
			return chain, s, nil
		}
		ins := n.Inputs()
		if len(ins) != 1 {
			return nil, nil, errorf(CodeNotSupported, "plans with %d inputs are not supported yet", len(ins))
		}
		chain = append(chain, n)
		n = ins[0]
	}
}

func lastCalc(s *Stage) *CalcOp {
	if len(s.Ops) == 0 {
		return nil
	}
	c, _ := s.Ops[len(s.Ops)-1].(*CalcOp)
	return c
}

func isIdentity(p *Project, in []Column) bool {
	if len(p.Exprs) != len(in) {
		return false
	}
	for i, e := range p.Exprs {
		c, ok := e.(*ColRef)
		if !ok || c.Index != i || p.Names[i] != in[i].Name {
			return false
		}
	}
	return true
}

func indexOf(exprs []Expr, e Expr) int {
	k := exprKey(e)
	for i, x := range exprs {
		if exprKey(x) == k {
			return i
		}
	}
	return -1
}

// Explain renders a physical plan readably.
func Explain(p *Physical, result string) string {
	var b strings.Builder
	for i, s := range p.Stages {
		fmt.Fprintf(&b, "Stage %d: %s, parallelism %d", s.ID, s.Name, s.Parallelism)
		if len(s.PartitionBy) > 0 {
			fmt.Fprintf(&b, ", partitioned by hash(%s)", colNames(s.Input, s.PartitionBy))
		}
		b.WriteByte('\n')
		if src := s.Source; src != nil {
			names := make([]string, len(s.Input))
			for j, c := range s.Input {
				names[j] = c.Name
			}
			if src.Kind == 0 {
				b.WriteString("  Values (one row)\n")
			} else {
				fmt.Fprintf(&b, "  Scan %s %s [%s]\n", src.Kind, src.Relation, strings.Join(names, ", "))
			}
			if src.Stream != nil && src.Stream.EventTime >= 0 {
				fmt.Fprintf(&b, "  Watermark %s - %s\n", src.Stream.Columns[src.Stream.EventTime].Name, formatMicros(src.Stream.WatermarkDelay))
			}
		}
		for _, op := range s.Ops {
			b.WriteString("  " + op.describe() + "\n")
		}
		if i+1 < len(p.Stages) {
			next := p.Stages[i+1]
			if len(next.PartitionBy) > 0 {
				fmt.Fprintf(&b, "  Exchange hash(%s) -> Stage %d\n", colNames(next.Input, next.PartitionBy), next.ID)
			} else {
				fmt.Fprintf(&b, "  Exchange single -> Stage %d\n", next.ID)
			}
		}
	}
	if result != "" {
		kind := map[AggregateMode]string{AggWindowed: "append-only", AggUpdating: "updating, changelog", AggBatch: "batch"}[p.Mode]
		fmt.Fprintf(&b, "  Result %s (%s) [%s]\n", result, kind, colNames(p.Columns, nil))
	}
	return b.String()
}

func colNames(cols []Column, idx []int) string {
	var names []string
	if idx == nil {
		for _, c := range cols {
			names = append(names, c.Name)
		}
	}
	for _, i := range idx {
		names = append(names, cols[i].Name)
	}
	return strings.Join(names, ", ")
}
