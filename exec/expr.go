package exec

import (
	"fmt"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Evaluator evaluates a compiled expression over whole batches. It is not
// safe for concurrent use (it caches compiled patterns).
type Evaluator interface {
	// Eval evaluates the expression over every row of rec (not retained)
	// and returns a column of rec.NumRows() values. The caller owns the
	// returned array and must Release it.
	Eval(rec arrow.RecordBatch) (arrow.Array, error)
	// Type is the Arrow type of the returned column.
	Type() arrow.DataType
}

// batch is the internal view of an input: columns by input index (nil for
// columns the expression does not read) and the row count.
type batch struct {
	cols []arrow.Array
	n    int
}

// node is a compiled expression.
type node interface {
	// eval returns a new reference (caller releases) to a column of b.n rows.
	eval(mem memory.Allocator, b *batch) (arrow.Array, error)
	typ() arrow.DataType
	// canFail reports whether evaluation can raise an error for some input
	// row (then conditional evaluation restricts it to selected rows).
	canFail() bool
	// refs lists the input columns read.
	refs() []int
}

type compiled struct {
	root node
	mem  memory.Allocator
}

// Compile type-checks e against the input schema and returns its evaluator.
// Options: WithAllocator (default memory.DefaultAllocator) for the columns
// Eval returns.
func Compile(e Expr, input *arrow.Schema, opts ...Option) (Evaluator, error) {
	o := buildOptions(opts)
	n, err := compileNode(e, input)
	if err != nil {
		return nil, err
	}
	return &compiled{root: n, mem: o.mem}, nil
}

func (c *compiled) Type() arrow.DataType { return c.root.typ() }

func (c *compiled) Eval(rec arrow.RecordBatch) (arrow.Array, error) {
	return c.root.eval(c.mem, batchOf(rec))
}

func batchOf(rec arrow.RecordBatch) *batch {
	return &batch{cols: rec.Columns(), n: int(rec.NumRows())}
}

// ---- leaves ----

type colNode struct {
	idx int
	dt  arrow.DataType
}

func (c *colNode) eval(_ memory.Allocator, b *batch) (arrow.Array, error) {
	a := b.cols[c.idx]
	a.Retain()
	return a, nil
}
func (c *colNode) typ() arrow.DataType { return c.dt }
func (c *colNode) canFail() bool       { return false }
func (c *colNode) refs() []int         { return []int{c.idx} }

type litNode struct {
	dt arrow.DataType
	v  any
}

func (l *litNode) eval(mem memory.Allocator, b *batch) (arrow.Array, error) {
	return constArray(mem, l.dt, l.v, b.n)
}
func (l *litNode) typ() arrow.DataType { return l.dt }
func (l *litNode) canFail() bool       { return false }
func (l *litNode) refs() []int         { return nil }

// kernel computes a function over evaluated argument columns of n rows.
type kernel func(mem memory.Allocator, args []arrow.Array, n int) (arrow.Array, error)

// funcNode evaluates all arguments eagerly and applies a kernel.
type funcNode struct {
	args  []node
	dt    arrow.DataType
	k     kernel
	fails bool
	rs    []int
}

func (f *funcNode) eval(mem memory.Allocator, b *batch) (arrow.Array, error) {
	args := make([]arrow.Array, len(f.args))
	defer releaseAll(args)
	for i, a := range f.args {
		v, err := a.eval(mem, b)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	return f.k(mem, args, b.n)
}
func (f *funcNode) typ() arrow.DataType { return f.dt }
func (f *funcNode) canFail() bool       { return f.fails }
func (f *funcNode) refs() []int         { return f.rs }

func unionRefs(nodes ...node) []int {
	set := map[int]bool{}
	for _, n := range nodes {
		if n == nil {
			continue
		}
		for _, r := range n.refs() {
			set[r] = true
		}
	}
	out := make([]int, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	sort.Ints(out)
	return out
}

func newFunc(dt arrow.DataType, k kernel, fails bool, args ...node) *funcNode {
	return &funcNode{args: args, dt: dt, k: k, fails: fails || anyCanFail(args...), rs: unionRefs(args...)}
}

// anyCanFail reports whether any of nodes can fail. Nodes answer canFail
// from a flag set when they are built (from this), so that asking is O(1)
// at every level of a deep expression.
func anyCanFail(nodes ...node) bool {
	for _, n := range nodes {
		if n != nil && n.canFail() {
			return true
		}
	}
	return false
}

// evalRows evaluates nd on the subset rows of b (all rows when rows is nil).
func evalRows(mem memory.Allocator, nd node, b *batch, rows []int32) (arrow.Array, error) {
	if rows == nil {
		return nd.eval(mem, b)
	}
	sub := &batch{cols: make([]arrow.Array, len(b.cols)), n: len(rows)}
	for _, c := range nd.refs() {
		sub.cols[c] = takeArray(mem, b.cols[c], rows)
	}
	defer releaseAll(sub.cols)
	return nd.eval(mem, sub)
}

// ---- compilation ----

func compileNode(e Expr, in *arrow.Schema) (node, error) {
	switch x := e.(type) {
	case ColRef:
		return compileCol(x, in)
	case *ColRef:
		return compileCol(*x, in)
	case Literal:
		return compileLit(x)
	case *Literal:
		return compileLit(*x)
	case Call:
		return compileCall(x, in)
	case *Call:
		return compileCall(*x, in)
	case nil:
		return nil, fmt.Errorf("exec: nil expression")
	}
	return nil, fmt.Errorf("exec: unknown expression %T", e)
}

func compileCol(x ColRef, in *arrow.Schema) (node, error) {
	if x.Index < 0 || x.Index >= in.NumFields() {
		return nil, fmt.Errorf("exec: column %d out of range (input has %d)", x.Index, in.NumFields())
	}
	dt := in.Field(x.Index).Type
	if x.Type != nil && !arrow.TypeEqual(x.Type, dt) && physOf(x.Type) != physOf(dt) {
		return nil, fmt.Errorf("exec: column %d is %s, expression expects %s", x.Index, dt, x.Type)
	}
	return &colNode{idx: x.Index, dt: dt}, nil
}

func compileLit(x Literal) (node, error) {
	dt := x.Type
	if dt == nil {
		switch x.Value.(type) {
		case nil:
			dt = arrow.Null
		case bool:
			dt = arrow.FixedWidthTypes.Boolean
		case int64, int:
			dt = arrow.PrimitiveTypes.Int64
		case float64:
			dt = arrow.PrimitiveTypes.Float64
		case string:
			dt = arrow.BinaryTypes.String
		default:
			return nil, fmt.Errorf("exec: literal of Go type %T", x.Value)
		}
	}
	if _, err := constArray(memory.DefaultAllocator, dt, x.Value, 0); err != nil {
		return nil, err
	}
	v := x.Value
	if i, ok := v.(int); ok {
		v = int64(i)
	}
	return &litNode{dt: dt, v: v}, nil
}

func isLiteral(n node) (any, bool) {
	if l, ok := n.(*litNode); ok {
		return l.v, true
	}
	return nil, false
}

func compileCall(c Call, in *arrow.Schema) (node, error) {
	args := make([]node, len(c.Args))
	for i, a := range c.Args {
		n, err := compileNode(a, in)
		if err != nil {
			return nil, err
		}
		args[i] = n
	}
	n, err := buildCall(c.Fn, args, c.Type)
	if err != nil {
		return nil, err
	}
	// Deliver the type the planner promised (e.g. a float result where it
	// widened, a timestamp where the kernel computed µs as bigint).
	if c.Type != nil && !isNull(c.Type) && !isNull(n.typ()) && !arrow.TypeEqual(n.typ(), c.Type) {
		cn, err := buildCast(n, c.Type)
		if err != nil {
			return nil, fmt.Errorf("exec: %s returns %s, planner expects %s: %w", c.Fn, n.typ(), c.Type, err)
		}
		n = cn
	}
	return n, nil
}

func errArgs(fn string, args []node) error {
	ts := make([]string, len(args))
	for i, a := range args {
		ts[i] = a.typ().String()
	}
	return &Error{Code: CodeUndefinedFunction, Message: fmt.Sprintf("function %s(%v) does not exist", fn, ts)}
}

func wantArgs(fn string, args []node, min, max int) error {
	if len(args) < min || len(args) > max {
		return errArgs(fn, args)
	}
	return nil
}

var (
	tBool  = arrow.FixedWidthTypes.Boolean
	tInt   = arrow.PrimitiveTypes.Int64
	tFloat = arrow.PrimitiveTypes.Float64
	tText  = arrow.BinaryTypes.String
	tTS    = arrow.FixedWidthTypes.Timestamp_us
	tIntv  = arrow.FixedWidthTypes.Duration_us
)

func isTS(dt arrow.DataType) bool   { return dt.ID() == arrow.TIMESTAMP }
func isIntv(dt arrow.DataType) bool { return dt.ID() == arrow.DURATION }
func isInt(dt arrow.DataType) bool  { return dt.ID() == arrow.INT64 }
func isNull(dt arrow.DataType) bool { return dt.ID() == arrow.NULL }

// coerceNull gives an untyped NULL argument the type of its peers.
func coerceNulls(args []node) {
	var dt arrow.DataType
	for _, a := range args {
		if !isNull(a.typ()) {
			dt = a.typ()
			break
		}
	}
	if dt == nil {
		return
	}
	for i, a := range args {
		if isNull(a.typ()) {
			args[i] = &litNode{dt: dt, v: nil}
		}
	}
}

// unify casts int64 arguments to float64 when the others are float64, so
// the kernels see equal types.
func unifyNumeric(args []node) []node {
	hasFloat := false
	for _, a := range args {
		if a.typ().ID() == arrow.FLOAT64 {
			hasFloat = true
		}
	}
	if !hasFloat {
		return args
	}
	out := make([]node, len(args))
	for i, a := range args {
		if isInt(a.typ()) {
			out[i] = castNode(a, tFloat)
		} else {
			out[i] = a
		}
	}
	return out
}

func buildCall(fn string, args []node, rt arrow.DataType) (node, error) {
	switch fn {
	case "+", "-", "*", "/", "%", "mod":
		if err := wantArgs(fn, args, 2, 2); err != nil {
			return nil, err
		}
		coerceNulls(args)
		return buildArith(fn, args, rt)
	case "neg":
		if err := wantArgs(fn, args, 1, 1); err != nil {
			return nil, err
		}
		return buildNeg(args[0])
	case "=", "<>", "!=", "<", "<=", ">", ">=":
		if err := wantArgs(fn, args, 2, 2); err != nil {
			return nil, err
		}
		coerceNulls(args)
		args = unifyNumeric(args)
		return buildCompare(fn, args[0], args[1])
	case "is_distinct", "is_not_distinct":
		if err := wantArgs(fn, args, 2, 2); err != nil {
			return nil, err
		}
		coerceNulls(args)
		args = unifyNumeric(args)
		return buildDistinct(fn == "is_not_distinct", args[0], args[1])
	case "and", "or":
		if len(args) < 2 {
			return nil, errArgs(fn, args)
		}
		for i, a := range args {
			if isNull(a.typ()) {
				args[i] = &litNode{dt: tBool}
			} else if a.typ().ID() != arrow.BOOL {
				return nil, errArgs(fn, args)
			}
		}
		n := args[0]
		for _, a := range args[1:] {
			n = newLogic(fn == "or", n, a)
		}
		return n, nil
	case "not":
		if err := wantArgs(fn, args, 1, 1); err != nil {
			return nil, err
		}
		if isNull(args[0].typ()) {
			args[0] = &litNode{dt: tBool}
		}
		if args[0].typ().ID() != arrow.BOOL {
			return nil, errArgs(fn, args)
		}
		return newFunc(tBool, kNot, false, args[0]), nil
	case "is_null", "is_not_null":
		if err := wantArgs(fn, args, 1, 1); err != nil {
			return nil, err
		}
		want := fn == "is_not_null"
		return newFunc(tBool, func(mem memory.Allocator, a []arrow.Array, n int) (arrow.Array, error) {
			return kIsNull(mem, a[0], n, want)
		}, false, args[0]), nil
	case "is_true", "is_false", "is_not_true", "is_not_false":
		if err := wantArgs(fn, args, 1, 1); err != nil {
			return nil, err
		}
		if isNull(args[0].typ()) {
			args[0] = &litNode{dt: tBool}
		}
		if args[0].typ().ID() != arrow.BOOL {
			return nil, errArgs(fn, args)
		}
		return newFunc(tBool, kIsBool(fn), false, args[0]), nil
	case "in", "not_in":
		if len(args) < 2 {
			return nil, errArgs(fn, args)
		}
		coerceNulls(args)
		args = unifyNumeric(args)
		n, err := buildIn(args)
		if err != nil {
			return nil, err
		}
		if fn == "not_in" {
			return newFunc(tBool, kNot, false, n), nil
		}
		return n, nil
	case "case":
		return buildCase(args, rt)
	case "coalesce":
		if len(args) < 1 {
			return nil, errArgs(fn, args)
		}
		coerceNulls(args)
		args = unifyNumeric(args)
		dt := args[0].typ()
		for _, a := range args {
			if physOf(a.typ()) != physOf(dt) {
				return nil, errArgs(fn, args)
			}
		}
		return &coalesceNode{args: args, dt: dt, rs: unionRefs(args...), fails: anyCanFail(args...)}, nil
	case "nullif":
		if err := wantArgs(fn, args, 2, 2); err != nil {
			return nil, err
		}
		coerceNulls(args)
		args = unifyNumeric(args)
		eq, err := buildCompare("=", args[0], args[1])
		if err != nil {
			return nil, err
		}
		// CASE WHEN a = b THEN NULL ELSE a END
		return buildCase([]node{eq, &litNode{dt: args[0].typ()}, args[0]}, args[0].typ())
	case "greatest", "least":
		if len(args) < 1 {
			return nil, errArgs(fn, args)
		}
		coerceNulls(args)
		args = unifyNumeric(args)
		return buildGreatest(fn == "greatest", args)
	case "cast":
		if err := wantArgs(fn, args, 1, 1); err != nil {
			return nil, err
		}
		if rt == nil {
			return nil, fmt.Errorf("exec: cast without a target type")
		}
		return buildCast(args[0], rt)
	}
	return buildFunction(fn, args, rt)
}

// ---- logic ----

// logicNode is a three-valued AND/OR. The right side is evaluated only on
// the rows the left side does not decide when it can fail.
type logicNode struct {
	or    bool
	l, r  node
	rs    []int
	fails bool
}

func newLogic(or bool, l, r node) *logicNode {
	return &logicNode{or: or, l: l, r: r, rs: unionRefs(l, r), fails: anyCanFail(l, r)}
}

func (n *logicNode) typ() arrow.DataType { return tBool }
func (n *logicNode) canFail() bool       { return n.fails }
func (n *logicNode) refs() []int         { return n.rs }

func (n *logicNode) eval(mem memory.Allocator, b *batch) (arrow.Array, error) {
	l, err := n.l.eval(mem, b)
	if err != nil {
		return nil, err
	}
	defer l.Release()
	if !n.r.canFail() {
		r, err := n.r.eval(mem, b)
		if err != nil {
			return nil, err
		}
		defer r.Release()
		return kLogic(mem, n.or, l, r, b.n), nil
	}
	// Evaluate the right side only where the left does not decide.
	lb := l.(*array.Boolean)
	var undecided []int32
	for i := 0; i < b.n; i++ {
		if lb.IsNull(i) || lb.Value(i) != n.or {
			undecided = append(undecided, int32(i))
		}
	}
	if len(undecided) == b.n {
		r, err := n.r.eval(mem, b)
		if err != nil {
			return nil, err
		}
		defer r.Release()
		return kLogic(mem, n.or, l, r, b.n), nil
	}
	rsub, err := evalRows(mem, n.r, b, undecided)
	if err != nil {
		return nil, err
	}
	defer rsub.Release()
	// Scatter the right side back: decided rows get the neutral value.
	which := make([]int32, b.n)
	rows := make([]int32, b.n)
	neutral, _ := constArray(mem, tBool, !n.or, 1)
	defer neutral.Release()
	for i := range which {
		which[i] = 1
	}
	for j, i := range undecided {
		which[i] = 0
		rows[i] = int32(j)
	}
	r := gather(mem, tBool, []arrow.Array{rsub, neutral}, which, rows)
	defer r.Release()
	return kLogic(mem, n.or, l, r, b.n), nil
}

// boolBits returns byte-aligned data and validity bitmaps of a boolean array.
func boolBits(a arrow.Array, n int) (data, valid []byte) {
	nb := (n + 7) / 8
	off := a.Data().Offset()
	if isNull(a.DataType()) {
		return make([]byte, nb), make([]byte, nb)
	}
	raw := a.Data().Buffers()[1].Bytes()
	if off%8 == 0 {
		data = raw[off/8 : off/8+nb]
	} else {
		data = make([]byte, nb)
		for i := 0; i < n; i++ {
			if getBit(raw, off+i) {
				setBit(data, i)
			}
		}
	}
	if a.NullN() == 0 {
		valid = make([]byte, nb)
		for i := range valid {
			valid[i] = 0xff
		}
		return
	}
	vr := a.NullBitmapBytes()
	if off%8 == 0 {
		valid = vr[off/8 : off/8+nb]
	} else {
		valid = make([]byte, nb)
		for i := 0; i < n; i++ {
			if getBit(vr, off+i) {
				setBit(valid, i)
			}
		}
	}
	return
}

func kLogic(mem memory.Allocator, or bool, l, r arrow.Array, n int) arrow.Array {
	ld, lv := boolBits(l, n)
	rd, rv := boolBits(r, n)
	db, d := allocBits(mem, n)
	vb, v := allocBits(mem, n)
	for i := range d {
		if or {
			lt, rt := lv[i]&ld[i], rv[i]&rd[i]
			d[i] = lt | rt
			v[i] = (lv[i] & rv[i]) | lt | rt
		} else {
			lf, rf := lv[i]&^ld[i], rv[i]&^rd[i]
			d[i] = ld[i] & rd[i] & lv[i] & rv[i]
			v[i] = (lv[i] & rv[i]) | lf | rf
		}
	}
	return makeFixed(tBool, n, vb, db)
}

func kNot(mem memory.Allocator, a []arrow.Array, n int) (arrow.Array, error) {
	d, v := boolBits(a[0], n)
	db, out := allocBits(mem, n)
	for i := range out {
		out[i] = ^d[i]
	}
	var vb *memory.Buffer
	if a[0].NullN() > 0 {
		var vs []byte
		vb, vs = allocBits(mem, n)
		copy(vs, v)
	}
	return makeFixed(tBool, n, vb, db), nil
}

func kIsNull(mem memory.Allocator, a arrow.Array, n int, notNull bool) (arrow.Array, error) {
	db, out := allocBits(mem, n)
	v := validityOf(a)
	for i := 0; i < n; i++ {
		if v.valid(i) == notNull {
			setBit(out, i)
		}
	}
	return makeFixed(tBool, n, nil, db), nil
}

func kIsBool(fn string) kernel {
	return func(mem memory.Allocator, a []arrow.Array, n int) (arrow.Array, error) {
		d, v := boolBits(a[0], n)
		db, out := allocBits(mem, n)
		for i := range out {
			switch fn {
			case "is_true":
				out[i] = v[i] & d[i]
			case "is_false":
				out[i] = v[i] &^ d[i]
			case "is_not_true":
				out[i] = ^(v[i] & d[i])
			case "is_not_false":
				out[i] = ^(v[i] &^ d[i])
			}
		}
		return makeFixed(tBool, n, nil, db), nil
	}
}

// ---- conditional ----

type caseNode struct {
	whens, thens []node
	els          node // nil = NULL
	dt           arrow.DataType
	rs           []int
	fails        bool
}

func buildCase(args []node, rt arrow.DataType) (node, error) {
	if len(args) < 2 {
		return nil, errArgs("case", args)
	}
	c := &caseNode{}
	var vals []node
	for i := 0; i+1 < len(args); i += 2 {
		w := args[i]
		if isNull(w.typ()) {
			w = &litNode{dt: tBool}
		}
		if w.typ().ID() != arrow.BOOL {
			return nil, &Error{Code: CodeDatatypeMismatch, Message: fmt.Sprintf("argument of CASE/WHEN must be type boolean, not type %s", w.typ())}
		}
		c.whens = append(c.whens, w)
		c.thens = append(c.thens, args[i+1])
		vals = append(vals, args[i+1])
	}
	if len(args)%2 == 1 {
		c.els = args[len(args)-1]
		vals = append(vals, c.els)
	}
	coerceNulls(vals)
	vals = unifyNumeric(vals)
	copy(c.thens, vals[:len(c.thens)])
	if c.els != nil {
		c.els = vals[len(vals)-1]
	}
	c.dt = vals[0].typ()
	if rt != nil && !isNull(rt) {
		if physOf(rt) != physOf(c.dt) && !isNull(c.dt) {
			// cast branches to the declared type
			for i := range c.thens {
				c.thens[i] = castNode(c.thens[i], rt)
			}
			if c.els != nil {
				c.els = castNode(c.els, rt)
			}
		}
		c.dt = rt
	}
	for _, v := range vals {
		if !isNull(v.typ()) && physOf(v.typ()) != physOf(c.dt) {
			return nil, &Error{Code: CodeDatatypeMismatch, Message: fmt.Sprintf("CASE types %s and %s cannot be matched", c.dt, v.typ())}
		}
	}
	all := append(append([]node{}, c.whens...), c.thens...)
	if c.els != nil {
		all = append(all, c.els)
	}
	c.rs, c.fails = unionRefs(all...), anyCanFail(all...)
	return c, nil
}

func (c *caseNode) typ() arrow.DataType { return c.dt }
func (c *caseNode) refs() []int         { return c.rs }
func (c *caseNode) canFail() bool       { return c.fails }

// eval evaluates each WHEN on the rows no earlier WHEN selected and each
// THEN only on the rows its WHEN selected, so an error in a branch that is
// not taken is never raised (PostgreSQL semantics).
func (c *caseNode) eval(mem memory.Allocator, b *batch) (arrow.Array, error) {
	n := b.n
	var remaining []int32 // nil = all rows
	which := make([]int32, n)
	rows := make([]int32, n)
	for i := range which {
		which[i] = -1
	}
	var srcs []arrow.Array
	defer func() { releaseAll(srcs) }()
	remIdx := func(j int) int32 {
		if remaining == nil {
			return int32(j)
		}
		return remaining[j]
	}
	for k := range c.whens {
		if remaining != nil && len(remaining) == 0 {
			break
		}
		cond, err := evalRows(mem, c.whens[k], b, remaining)
		if err != nil {
			return nil, err
		}
		cb := cond.(*array.Boolean)
		var sel, rest []int32
		for j := 0; j < cb.Len(); j++ {
			if cb.IsValid(j) && cb.Value(j) {
				sel = append(sel, remIdx(j))
			} else {
				rest = append(rest, remIdx(j))
			}
		}
		cond.Release()
		if len(sel) > 0 {
			var v arrow.Array
			if len(sel) == n {
				v, err = c.thens[k].eval(mem, b)
			} else if !c.thens[k].canFail() && len(sel)*4 > n {
				v, err = c.thens[k].eval(mem, b)
				if err == nil {
					srcs = append(srcs, v)
					for _, i := range sel {
						which[i] = int32(len(srcs) - 1)
						rows[i] = i
					}
					v = nil
				}
			} else {
				v, err = evalRows(mem, c.thens[k], b, sel)
			}
			if err != nil {
				return nil, err
			}
			if v != nil {
				srcs = append(srcs, v)
				for j, i := range sel {
					which[i] = int32(len(srcs) - 1)
					rows[i] = int32(j)
				}
			}
		}
		if rest == nil {
			rest = []int32{}
		}
		remaining = rest
	}
	if c.els != nil && (remaining == nil || len(remaining) > 0) {
		v, err := evalRows(mem, c.els, b, remaining)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, v)
		for j := 0; j < v.Len(); j++ {
			i := remIdx(j)
			which[i] = int32(len(srcs) - 1)
			rows[i] = int32(j)
		}
	}
	if len(srcs) == 1 && remaining == nil && srcs[0].Len() == n {
		// every row took the same branch evaluated on all rows
		a := srcs[0]
		a.Retain()
		return a, nil
	}
	if len(srcs) == 0 {
		return constArray(mem, c.dt, nil, n)
	}
	return gather(mem, c.dt, srcs, which, rows), nil
}

type coalesceNode struct {
	args  []node
	dt    arrow.DataType
	rs    []int
	fails bool
}

func (c *coalesceNode) typ() arrow.DataType { return c.dt }
func (c *coalesceNode) refs() []int         { return c.rs }
func (c *coalesceNode) canFail() bool       { return c.fails }

func (c *coalesceNode) eval(mem memory.Allocator, b *batch) (arrow.Array, error) {
	n := b.n
	first, err := c.args[0].eval(mem, b)
	if err != nil {
		return nil, err
	}
	if first.NullN() == 0 || len(c.args) == 1 {
		return first, nil
	}
	srcs := []arrow.Array{first}
	defer func() { releaseAll(srcs) }()
	which := make([]int32, n)
	rows := make([]int32, n)
	var remaining []int32
	for i := 0; i < n; i++ {
		rows[i] = int32(i)
		if first.IsNull(i) {
			remaining = append(remaining, int32(i))
		}
	}
	for _, a := range c.args[1:] {
		if len(remaining) == 0 {
			break
		}
		v, err := evalRows(mem, a, b, remaining)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, v)
		var rest []int32
		for j, i := range remaining {
			if v.IsValid(j) {
				which[i] = int32(len(srcs) - 1)
				rows[i] = int32(j)
			} else {
				rest = append(rest, i)
			}
		}
		remaining = rest
	}
	return gather(mem, c.dt, srcs, which, rows), nil
}

func buildIn(args []node) (node, error) {
	x := args[0]
	if n := buildInSet(args); n != nil {
		return n, nil
	}
	var n node
	for _, a := range args[1:] {
		eq, err := buildCompare("=", x, a)
		if err != nil {
			return nil, err
		}
		if n == nil {
			n = eq
		} else {
			n = newLogic(true, n, eq)
		}
	}
	return n, nil
}

// buildInSet handles x IN (constants…) with a hash set when every list
// element is a literal of x's type; it returns nil otherwise.
func buildInSet(args []node) node {
	x := args[0]
	p := physOf(x.typ())
	if p != physInt64 && p != physString && p != physFloat64 || len(args) < 4 {
		return nil
	}
	ints := map[int64]bool{}
	strs := map[string]bool{}
	hasNull := false
	for _, a := range args[1:] {
		v, ok := isLiteral(a)
		if !ok || !comparable2(x.typ(), a.typ()) {
			return nil
		}
		switch t := v.(type) {
		case nil:
			hasNull = true
		case int64:
			ints[t] = true
		case float64:
			ints[canonFloatBits(t)] = true
		case string:
			strs[t] = true
		default:
			return nil
		}
	}
	return newFunc(tBool, func(mem memory.Allocator, cols []arrow.Array, n int) (arrow.Array, error) {
		a := cols[0]
		v := validityOf(a)
		db, out := allocBits(mem, n)
		vb, vbits := allocBits(mem, n)
		for i := 0; i < n; i++ {
			if !v.valid(i) {
				continue
			}
			var hit bool
			switch p {
			case physInt64:
				hit = ints[Int64s(a)[i]]
			case physFloat64:
				hit = ints[canonFloatBits(Float64s(a)[i])]
			default:
				hit = strs[stringsOf(a).str(i)]
			}
			if hit {
				setBit(out, i)
				setBit(vbits, i)
			} else if !hasNull {
				setBit(vbits, i)
			}
		}
		return makeFixed(tBool, n, vb, db), nil
	}, false, x)
}
