package planner

import (
	"fmt"
	"strings"
)

// Node is a logical plan node. Nodes are immutable values; rewrite rules
// build new nodes.
type Node interface {
	// Columns is the node's output schema.
	Columns() []Column
	// Inputs are the node's children.
	Inputs() []Node
	// describe renders the node (without children) for EXPLAIN.
	describe() string
}

// Scan reads a relation: a stream (unbounded), a table or a continuous
// query's current result (bounded snapshots), or nothing (SELECT 1: one
// row, no columns).
type Scan struct {
	Relation string
	Kind     RelationKind // 0 for the one-row scan of a FROM-less SELECT
	Stream   *Stream      // for streams
	// Query is set when a continuous query reads another one's result.
	Query *ContinuousQuery
	// Indexes maps each output column to a column of the relation.
	Indexes []int
	Cols    []Column
	// EventTime is the relation's event-time column (an index into the
	// relation's columns, not Cols), or -1; TimeUnit converts it to µs.
	EventTime int
	TimeUnit  int64
	// Changelog: in a streaming plan the scan delivers a changelog whose
	// column 0 is "op" (an updating continuous query read as a table).
	Changelog bool
}

// TableLike reports whether a streaming plan reads the relation as a table
// (its current contents, for lookups) rather than as a stream.
func (s *Scan) TableLike() bool {
	return s.Kind == RelTable || (s.Query != nil && s.Query.Updating)
}

// Filter keeps the rows for which Pred is true.
type Filter struct {
	Input Node
	Pred  Expr
}

// Project computes one column per expression.
type Project struct {
	Input Node
	Exprs []Expr
	Names []string
}

// AggCall is one aggregate: Kind over Arg (nil for COUNT(*)).
type AggCall struct {
	Kind     AggKind
	Arg      Expr
	Distinct bool
	Name     string
	T        Type
}

// AggKind is an aggregate function.
type AggKind uint8

// The aggregate functions.
const (
	AggCountStar AggKind = iota
	AggCount
	AggCountDistinct
	AggSum
	AggAvg
	AggMin
	AggMax
)

var aggNames = [...]string{"count(*)", "count", "count_distinct", "sum", "avg", "min", "max"}

func (k AggKind) String() string { return aggNames[k] }

// WindowKind is the kind of event-time window of an aggregate.
type WindowKind uint8

// The window kinds.
const (
	WindowNone WindowKind = iota
	WindowTumble
	WindowHop
	WindowSession
)

// Window is an event-time window: Time is a column of the aggregate's input
// holding event time in units of TimeUnit µs.
type Window struct {
	Kind     WindowKind
	Time     *ColRef
	Size     int64 // µs
	Slide    int64 // µs, hop
	Gap      int64 // µs, session
	Offset   int64 // µs: tumble/hop windows start at Offset + k·slide
	TimeUnit int64
}

func (w *Window) String() string {
	switch w.Kind {
	case WindowTumble:
		if w.Offset != 0 {
			return fmt.Sprintf("TUMBLE(%s, %s, offset %s)", w.Time.Name, formatMicros(w.Size), formatMicros(w.Offset))
		}
		return fmt.Sprintf("TUMBLE(%s, %s)", w.Time.Name, formatMicros(w.Size))
	case WindowHop:
		if w.Offset != 0 {
			return fmt.Sprintf("HOP(%s, %s, %s, offset %s)", w.Time.Name, formatMicros(w.Slide), formatMicros(w.Size), formatMicros(w.Offset))
		}
		return fmt.Sprintf("HOP(%s, %s, %s)", w.Time.Name, formatMicros(w.Slide), formatMicros(w.Size))
	case WindowSession:
		return fmt.Sprintf("SESSION(%s, %s)", w.Time.Name, formatMicros(w.Gap))
	}
	return ""
}

// AggregateMode says how an aggregate emits results.
type AggregateMode uint8

// The aggregate modes.
const (
	// AggWindowed emits each window once, when the watermark closes it.
	AggWindowed AggregateMode = iota
	// AggUpdating emits a changelog: column 0 is "op" ("+" or "-").
	AggUpdating
	// AggBatch emits the final groups at the end of a bounded input.
	AggBatch
)

// Aggregate groups its input by Keys (and Window) and computes Aggs.
// Output: ["op" when updating], keys, [window_start, window_end], aggs.
type Aggregate struct {
	Input    Node
	Keys     []Expr
	KeyNames []string
	Aggs     []AggCall
	Window   *Window
	Mode     AggregateMode
}

// SortKey orders rows by an expression.
type SortKey struct {
	Expr       Expr
	Desc       bool
	NullsFirst bool
}

// Sort orders a bounded input and keeps rows [Offset, Offset+Limit).
// Limit < 0 means no limit.
type Sort struct {
	Input  Node
	Keys   []SortKey
	Limit  int64
	Offset int64
}

// Columns implements Node.
func (s *Scan) Columns() []Column { return s.Cols }

// Columns implements Node.
func (f *Filter) Columns() []Column { return f.Input.Columns() }

// Columns implements Node.
func (p *Project) Columns() []Column {
	out := make([]Column, len(p.Exprs))
	for i, e := range p.Exprs {
		out[i] = Column{Name: p.Names[i], Type: e.Type()}
	}
	return out
}

// Columns implements Node.
func (a *Aggregate) Columns() []Column {
	var out []Column
	if a.Mode == AggUpdating {
		out = append(out, Column{Name: "op", Type: TypeText})
	}
	for i, k := range a.Keys {
		out = append(out, Column{Name: a.KeyNames[i], Type: k.Type()})
	}
	if a.Window != nil {
		t := a.Window.Time.T
		out = append(out, Column{Name: "window_start", Type: t}, Column{Name: "window_end", Type: t})
	}
	for _, c := range a.Aggs {
		out = append(out, Column{Name: c.Name, Type: c.T})
	}
	return out
}

// Columns implements Node.
func (s *Sort) Columns() []Column { return s.Input.Columns() }

// Inputs implements Node.
func (s *Scan) Inputs() []Node { return nil }

// Inputs implements Node.
func (f *Filter) Inputs() []Node { return []Node{f.Input} }

// Inputs implements Node.
func (p *Project) Inputs() []Node { return []Node{p.Input} }

// Inputs implements Node.
func (a *Aggregate) Inputs() []Node { return []Node{a.Input} }

// Inputs implements Node.
func (s *Sort) Inputs() []Node { return []Node{s.Input} }

func (s *Scan) describe() string {
	if s.Kind == 0 {
		return "Values (one row)"
	}
	names := make([]string, len(s.Cols))
	for i, c := range s.Cols {
		names[i] = c.Name
	}
	return fmt.Sprintf("Scan %s %s [%s]", s.Kind, s.Relation, strings.Join(names, ", "))
}

func (f *Filter) describe() string { return "Filter " + f.Pred.String() }

func (p *Project) describe() string { return "Project " + namedExprs(p.Exprs, p.Names) }

func (a *Aggregate) describe() string {
	return "Aggregate " + describeAgg(a.Keys, a.Window, a.Aggs, a.Mode)
}

func (s *Sort) describe() string {
	var b strings.Builder
	b.WriteString("Sort")
	if len(s.Keys) > 0 {
		b.WriteString(" " + sortKeys(s.Keys))
	}
	if s.Limit >= 0 {
		fmt.Fprintf(&b, " limit=%d", s.Limit)
	}
	if s.Offset > 0 {
		fmt.Fprintf(&b, " offset=%d", s.Offset)
	}
	return b.String()
}

func sortKeys(keys []SortKey) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.Expr.String()
		if k.Desc {
			parts[i] += " DESC"
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func namedExprs(exprs []Expr, names []string) string {
	parts := make([]string, len(exprs))
	for i, e := range exprs {
		s := e.String()
		if names != nil && names[i] != s {
			s += " AS " + names[i]
		}
		parts[i] = s
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func describeAgg(keys []Expr, w *Window, aggs []AggCall, mode AggregateMode) string {
	var b strings.Builder
	ks := make([]string, len(keys))
	for i, k := range keys {
		ks[i] = k.String()
	}
	fmt.Fprintf(&b, "keys=[%s]", strings.Join(ks, ", "))
	if w != nil {
		b.WriteString(" window=" + w.String())
	}
	as := make([]string, len(aggs))
	for i, a := range aggs {
		switch {
		case a.Kind == AggCountStar:
			as[i] = "count(*)"
		case a.Kind == AggCountDistinct:
			as[i] = "count(DISTINCT " + a.Arg.String() + ")"
		default:
			as[i] = a.Kind.String() + "(" + a.Arg.String() + ")"
		}
	}
	fmt.Fprintf(&b, " aggs=[%s]", strings.Join(as, ", "))
	switch mode {
	case AggUpdating:
		b.WriteString(" emit=changelog")
	case AggWindowed:
		b.WriteString(" emit=on-window-close")
	case AggBatch:
		b.WriteString(" emit=at-end")
	}
	return b.String()
}

// ExplainLogical renders a logical plan as an indented tree.
func ExplainLogical(n Node) string {
	var b strings.Builder
	var walk func(n Node, depth int)
	walk = func(n Node, depth int) {
		b.WriteString(strings.Repeat("  ", depth))
		b.WriteString(n.describe())
		b.WriteByte('\n')
		for _, in := range n.Inputs() {
			walk(in, depth+1)
		}
	}
	walk(n, 0)
	return b.String()
}

// JoinKind says how a join is executed.
type JoinKind uint8

// The join kinds.
const (
	// JoinInterval joins two streams whose event times are related by a
	// bound (Lower <= right.time - left.time <= Upper).
	JoinInterval JoinKind = iota
	// JoinLookup joins a stream with the current contents of a table or
	// an updating continuous-query result.
	JoinLookup
)

// Join combines two inputs. Its output is the left columns followed by the
// right columns. LeftKeys[i] = RightKeys[i] are the equality keys; the
// residual condition (all ON conjuncts that are not keys) is evaluated over
// the output columns.
type Join struct {
	Left, Right         Node
	Kind                JoinKind
	Outer               bool // LEFT OUTER JOIN
	LeftKeys, RightKeys []*ColRef
	// Interval joins: event-time columns and the bound in µs.
	LeftTime, RightTime *ColRef
	LeftUnit, RightUnit int64
	Lower, Upper        int64
	Residual            Expr
	// RightChangelog: the right input is an updating result whose column 0
	// is "op" (lookup joins).
	RightChangelog bool
}

// Columns implements Node.
func (j *Join) Columns() []Column {
	return append(append([]Column(nil), j.Left.Columns()...), j.Right.Columns()...)
}

// Inputs implements Node.
func (j *Join) Inputs() []Node { return []Node{j.Left, j.Right} }

func (j *Join) describe() string {
	var b strings.Builder
	kind := "IntervalJoin"
	if j.Kind == JoinLookup {
		kind = "LookupJoin"
	}
	b.WriteString(kind)
	if j.Outer {
		b.WriteString(" left outer")
	} else {
		b.WriteString(" inner")
	}
	keys := make([]string, len(j.LeftKeys))
	for i := range j.LeftKeys {
		keys[i] = j.LeftKeys[i].Name + " = " + j.RightKeys[i].Name
	}
	fmt.Fprintf(&b, " keys=[%s]", strings.Join(keys, ", "))
	if j.Kind == JoinInterval {
		fmt.Fprintf(&b, " time=%s - %s in [%s, %s]", j.RightTime.Name, j.LeftTime.Name, signedMicros(j.Lower), signedMicros(j.Upper))
	}
	if j.Residual != nil {
		b.WriteString(" residual=" + j.Residual.String())
	}
	return b.String()
}

func signedMicros(us int64) string {
	if us < 0 {
		return "-" + formatMicros(-us)
	}
	return formatMicros(us)
}
