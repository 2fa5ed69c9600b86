package planner

import (
	"fmt"
	"strings"
)

// Physical is an operator DAG of stages, each run as one or more
// instances. Source stages read relations; every other stage reads the
// outputs of the stages listed in its Sides (one, or two for a join). A
// side with PartitionBy columns routes each row to the instance owning the
// key range its hash falls in. The last stage's output is the result.
// Stages are listed so that every stage comes after the stages it reads.
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
	// Source is set on source stages: the relation the stage reads.
	Source *Source
	// Sides are the inputs of a non-source stage: one, or two when the
	// stage starts with a join (side 0 left, side 1 right).
	Sides []Side
	// Input is the schema of rows entering the first operator: the source
	// columns, or side 0's columns.
	Input []Column
	Ops   []Op
	// PartitionBy lists side 0's columns whose hash routes each row to an
	// instance; empty means one instance receives everything.
	PartitionBy []int
	Parallelism int
}

// Side is one input of a stage: the stage it reads and how rows are routed.
type Side struct {
	Stage       int
	Columns     []Column
	PartitionBy []int
}

// Output is the schema of rows leaving the stage.
func (s *Stage) Output() []Column {
	if len(s.Ops) == 0 {
		return s.Input
	}
	return s.Ops[len(s.Ops)-1].Columns()
}

// Sources lists the source stages of the plan.
func (p *Physical) Sources() []*Stage {
	var out []*Stage
	for _, s := range p.Stages {
		if s.Source != nil {
			out = append(out, s)
		}
	}
	return out
}

// Source is the relation a source stage reads.
type Source struct {
	Relation string
	Kind     RelationKind // 0: a single row without columns (SELECT 1)
	Stream   *Stream
	Query    *ContinuousQuery // a continuous query read by another
	// Indexes are the relation's columns the source reads, in order.
	Indexes []int
	// Changelog: the source delivers an updating result's changelog; the
	// stage's Input starts with the "op" column.
	Changelog bool
	// Table: the source delivers a table's rows (its contents, then rows
	// as they are added) and holds no watermark back.
	Table bool
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
	Offset   int64
	TimeUnit int64
}

// SortOp orders a bounded input by column and applies LIMIT/OFFSET.
type SortOp struct {
	Keys   []PhysSortKey
	Limit  int64 // -1: none
	Offset int64
	Out    []Column
}

// JoinOp joins side 0 (left) with side 1 (right); see exec's
// IntervalJoinConfig and LookupJoinConfig. Key and time indexes are into
// each side's columns; Residual reads the output columns (left then right,
// without OpCol).
type JoinOp struct {
	Kind                JoinKind
	Outer               bool
	LeftKeys, RightKeys []int
	KeyNames            []string
	LeftTime, RightTime int
	TimeNames           [2]string
	LeftUnit, RightUnit int64
	Lower, Upper        int64
	OpCol               int // -1, or the right side's "op" column
	Residual            Expr
	Out                 []Column
}

// Columns implements Op.
func (j *JoinOp) Columns() []Column { return j.Out }

func (j *JoinOp) describe() string {
	var b strings.Builder
	if j.Kind == JoinLookup {
		b.WriteString("LookupJoin")
	} else {
		b.WriteString("IntervalJoin")
	}
	if j.Outer {
		b.WriteString(" left outer")
	} else {
		b.WriteString(" inner")
	}
	fmt.Fprintf(&b, " keys=[%s]", strings.Join(j.KeyNames, ", "))
	if j.Kind == JoinInterval {
		fmt.Fprintf(&b, " time=%s - %s in [%s, %s]", j.TimeNames[1], j.TimeNames[0], signedMicros(j.Lower), signedMicros(j.Upper))
	}
	if j.Residual != nil {
		b.WriteString(" residual=" + j.Residual.String())
	}
	return b.String()
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
		w = &Window{Kind: a.Window.Kind, Time: &ColRef{Name: a.Window.TimeName}, Size: a.Window.Size, Slide: a.Window.Slide, Gap: a.Window.Gap, Offset: a.Window.Offset}
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
// group key across parallelism instances, and at every join, whose two
// inputs are partitioned on the join keys.
func lower(n Node, streaming bool, parallelism int) (*Physical, error) {
	if parallelism < 1 {
		parallelism = 1
	}
	l := &lowering{phys: &Physical{Mode: AggWindowed}, streaming: streaming, parallelism: parallelism}
	_, cols, err := l.node(n)
	if err != nil {
		return nil, err
	}
	l.phys.Columns = cols
	if !streaming && l.phys.Mode != AggWindowed {
		l.phys.Mode = AggBatch
	}
	return l.phys, nil
}

type lowering struct {
	phys        *Physical
	streaming   bool
	parallelism int
}

func (l *lowering) newStage(st *Stage) *Stage {
	st.ID = len(l.phys.Stages)
	l.phys.Stages = append(l.phys.Stages, st)
	return st
}

// node lowers n and returns the stage whose output is n's output.
func (l *lowering) node(n Node) (*Stage, []Column, error) {
	switch x := n.(type) {
	case *Scan:
		src := &Source{Relation: x.Relation, Kind: x.Kind, Stream: x.Stream, Query: x.Query, Indexes: x.Indexes, Changelog: x.Changelog,
			Table: l.streaming && x.Kind == RelTable}
		in := x.Cols
		if x.Changelog {
			in = append([]Column{{Name: "op", Type: TypeText}}, x.Cols...)
		}
		st := l.newStage(&Stage{Name: "source", Source: src, Input: in, Parallelism: 1})
		return st, x.Cols, nil
	case *Join:
		return l.join(x)
	}
	ins := n.Inputs()
	if len(ins) != 1 {
		return nil, nil, errorf(CodeNotSupported, "cannot execute plan node %T", n)
	}
	cur, cols, err := l.node(ins[0])
	if err != nil {
		return nil, nil, err
	}
	switch x := n.(type) {
	case *Filter:
		// Merge into a preceding filter-only Calc.
		if last := lastCalc(cur); last != nil && last.Exprs == nil {
			last.Filter = joinAnd([]Expr{last.Filter, x.Pred})
			return cur, cols, nil
		}
		cur.Ops = append(cur.Ops, &CalcOp{Filter: x.Pred, Out: cols})
		return cur, cols, nil
	case *Project:
		out := x.Columns()
		if last := lastCalc(cur); last != nil && last.Exprs == nil {
			last.Exprs, last.Names, last.Out = x.Exprs, x.Names, out
		} else if !isIdentity(x, cols) {
			cur.Ops = append(cur.Ops, &CalcOp{Exprs: x.Exprs, Names: x.Names, Out: out})
		}
		return cur, out, nil
	case *Aggregate:
		return l.aggregate(x, cur, cols)
	case *Over:
		op := &OverOp{TimeCol: x.Time.Index, TimeUnit: x.TimeUnit, Calls: x.Calls, Out: x.Columns(),
			desc: describeOver(x.PartitionBy, x.Time, x.Calls)}
		for _, p := range x.PartitionBy {
			op.PartitionBy = append(op.PartitionBy, p.Index)
		}
		if l.streaming {
			next := &Stage{Name: "over", Input: cols, Parallelism: 1}
			side := Side{Stage: cur.ID, Columns: cols}
			if len(op.PartitionBy) > 0 {
				next.PartitionBy, side.PartitionBy = op.PartitionBy, op.PartitionBy
				next.Parallelism = l.parallelism
			}
			next.Sides = []Side{side}
			cur = l.newStage(next)
		}
		cur.Ops = append(cur.Ops, op)
		return cur, op.Out, nil
	case *Sort:
		op := &SortOp{Limit: x.Limit, Offset: x.Offset, Out: cols}
		for _, k := range x.Keys {
			op.Keys = append(op.Keys, PhysSortKey{Col: k.Expr.(*ColRef).Index, Desc: k.Desc, NullsFirst: k.NullsFirst})
		}
		cur.Ops = append(cur.Ops, op)
		return cur, cols, nil
	}
	return nil, nil, errorf(CodeNotSupported, "cannot execute plan node %T", n)
}

// aggregate appends a hash aggregate: a projection computing keys,
// arguments and event time, then (streaming) an exchange on the keys.
func (l *lowering) aggregate(x *Aggregate, cur *Stage, cols []Column) (*Stage, []Column, error) {
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
			pa.ArgName = preNames[pa.Arg]
		}
		op.Aggs = append(op.Aggs, pa)
	}
	if w := x.Window; w != nil {
		pw := &PhysWindow{Kind: w.Kind, Size: w.Size, Slide: w.Slide, Gap: w.Gap, Offset: w.Offset, TimeUnit: w.TimeUnit}
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
	if l.streaming {
		next := &Stage{Name: "aggregate", Input: preCols, Parallelism: 1}
		side := Side{Stage: cur.ID, Columns: preCols}
		if len(op.Keys) > 0 {
			next.PartitionBy = op.Keys
			side.PartitionBy = op.Keys
			next.Parallelism = l.parallelism
		}
		next.Sides = []Side{side}
		cur = l.newStage(next)
	}
	cur.Ops = append(cur.Ops, op)
	l.phys.Mode = x.Mode
	return cur, op.Out, nil
}

// join lowers both inputs and starts a join stage partitioned on the keys.
func (l *lowering) join(j *Join) (*Stage, []Column, error) {
	ls, lcols, err := l.node(j.Left)
	if err != nil {
		return nil, nil, err
	}
	rs, rcols, err := l.node(j.Right)
	if err != nil {
		return nil, nil, err
	}
	// On the right side of a lookup join over a changelog, column 0 is
	// "op" and every other column moves one to the right.
	shift, rin := 0, rcols
	if j.RightChangelog {
		shift, rin = 1, rs.Output()
	}
	op := &JoinOp{Kind: j.Kind, Outer: j.Outer, Lower: j.Lower, Upper: j.Upper, LeftUnit: j.LeftUnit, RightUnit: j.RightUnit,
		OpCol: -1, Residual: j.Residual, Out: j.Columns()}
	if j.RightChangelog {
		op.OpCol = 0
	}
	for i := range j.LeftKeys {
		op.LeftKeys = append(op.LeftKeys, j.LeftKeys[i].Index)
		op.RightKeys = append(op.RightKeys, j.RightKeys[i].Index+shift)
		op.KeyNames = append(op.KeyNames, j.LeftKeys[i].Name+" = "+j.RightKeys[i].Name)
	}
	if j.LeftTime != nil {
		op.LeftTime = j.LeftTime.Index
		op.RightTime = j.RightTime.Index - len(lcols)
		op.TimeNames = [2]string{j.LeftTime.Name, j.RightTime.Name}
	}
	st := l.newStage(&Stage{Name: "join", Input: lcols, Parallelism: l.parallelism, PartitionBy: op.LeftKeys,
		Sides: []Side{{Stage: ls.ID, Columns: lcols, PartitionBy: op.LeftKeys}, {Stage: rs.ID, Columns: rin, PartitionBy: op.RightKeys}}})
	st.Ops = append(st.Ops, op)
	return st, op.Out, nil
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

// Explain renders a physical plan readably: stages in data-flow order,
// each with where its rows come from and how they are routed.
func Explain(p *Physical, result string) string {
	var b strings.Builder
	for _, s := range p.Stages {
		fmt.Fprintf(&b, "Stage %d: %s, parallelism %d\n", s.ID, s.Name, s.Parallelism)
		if src := s.Source; src != nil {
			switch {
			case src.Kind == 0:
				b.WriteString("  Values (one row)\n")
			case src.Changelog:
				fmt.Fprintf(&b, "  Scan %s %s as a table (changelog) [%s]\n", src.Kind, src.Relation, colNames(s.Input, nil))
			default:
				fmt.Fprintf(&b, "  Scan %s %s [%s]\n", src.Kind, src.Relation, colNames(s.Input, nil))
			}
			if src.Stream != nil && src.Stream.EventTime >= 0 {
				fmt.Fprintf(&b, "  Watermark %s - %s\n", src.Stream.Columns[src.Stream.EventTime].Name, formatMicros(src.Stream.WatermarkDelay))
			}
		}
		for i, side := range s.Sides {
			route := "single"
			if len(side.PartitionBy) > 0 {
				route = "hash(" + colNames(side.Columns, side.PartitionBy) + ")"
			}
			label := "Input"
			if len(s.Sides) == 2 {
				label = [2]string{"Left input", "Right input"}[i]
			}
			fmt.Fprintf(&b, "  %s <- Stage %d, exchange %s\n", label, side.Stage, route)
		}
		for _, op := range s.Ops {
			b.WriteString("  " + op.describe() + "\n")
		}
	}
	if result != "" {
		kind := map[AggregateMode]string{AggWindowed: "append-only", AggUpdating: "updating, changelog", AggBatch: "batch"}[p.Mode]
		fmt.Fprintf(&b, "Result %s (%s) [%s]\n", result, kind, colNames(p.Columns, nil))
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
