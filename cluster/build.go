package cluster

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/spatedb/spate/exec"
	"github.com/spatedb/spate/planner"
)

// This file builds executable exec operators from planner values: it maps
// SQL types to Arrow types, planner expressions to exec expressions (binding
// parameter values on the way) and physical ops to operators.

// ArrowType is the Arrow type that holds values of a SQL type.
func ArrowType(t planner.Type) arrow.DataType {
	switch t {
	case planner.TypeBool:
		return arrow.FixedWidthTypes.Boolean
	case planner.TypeInt, planner.TypeBigInt:
		return arrow.PrimitiveTypes.Int64
	case planner.TypeDouble:
		return arrow.PrimitiveTypes.Float64
	case planner.TypeTimestamp:
		return arrow.FixedWidthTypes.Timestamp_us
	case planner.TypeInterval:
		return arrow.FixedWidthTypes.Duration_us
	}
	return arrow.BinaryTypes.String
}

// ArrowSchema is the Arrow schema of a list of columns.
func ArrowSchema(cols []planner.Column) *arrow.Schema {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.Name, Type: ArrowType(c.Type), Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// RelationSchema is the Arrow schema of a stream or table: ArrowSchema
// plus the declared SQL type in field metadata where ingest must check
// more than the storage type does (INT range, VARCHAR length).
func RelationSchema(cols []planner.Column) *arrow.Schema {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.Name, Type: ArrowType(c.Type), Nullable: true}
		switch {
		case c.Type == planner.TypeInt:
			fields[i].Metadata = arrow.NewMetadata([]string{exec.SQLTypeMetadataKey}, []string{"integer"})
		case c.Type == planner.TypeText && strings.Contains(c.Declared, "("):
			fields[i].Metadata = arrow.NewMetadata([]string{exec.SQLTypeMetadataKey}, []string{c.Declared})
		}
	}
	return arrow.NewSchema(fields, nil)
}

// exprBuilder converts planner expressions, substituting parameters.
type exprBuilder struct {
	params []Param
}

func (b exprBuilder) expr(e planner.Expr) (exec.Expr, error) {
	switch x := e.(type) {
	case *planner.ColRef:
		return exec.ColRef{Index: x.Index, Type: ArrowType(x.T)}, nil
	case *planner.Const:
		return exec.Literal{Type: ArrowType(x.T), Value: x.Value}, nil
	case *planner.Param:
		if x.N > len(b.params) {
			return nil, &Error{Code: "08P01", Message: fmt.Sprintf("bind message supplies %d parameters, but the statement needs $%d", len(b.params), x.N)}
		}
		return paramLiteral(b.params[x.N-1], x.T), nil
	case *planner.Func:
		args := make([]exec.Expr, len(x.Args))
		for i, a := range x.Args {
			ea, err := b.expr(a)
			if err != nil {
				return nil, err
			}
			args[i] = ea
		}
		call := exec.Call{Fn: x.Name, Args: args, Type: ArrowType(x.T)}
		if x.T == planner.TypeInt && int4Overflows[x.Name] {
			// INT is kept in 64 bits: check the 32-bit range here.
			return exec.Call{Fn: "int4_range", Args: []exec.Expr{call}, Type: call.Type}, nil
		}
		return call, nil
	}
	return nil, fmt.Errorf("cluster: unknown expression %T", e)
}

// int4Overflows are the functions whose INT result may leave the 32-bit
// range of its INT arguments (PostgreSQL: 22003 integer out of range).
var int4Overflows = map[string]bool{"+": true, "-": true, "*": true, "/": true, "%": true, "neg": true, "abs": true, "mod": true, "cast": true}

// paramLiteral turns a bound parameter into a literal of type t: text
// parameters are cast by exec (so "12" becomes a bigint with PostgreSQL's
// parsing rules and errors).
func paramLiteral(v Param, t planner.Type) exec.Expr {
	at := ArrowType(t)
	switch x := v.(type) {
	case nil:
		return exec.Literal{Type: at}
	case string:
		if t == planner.TypeText {
			return exec.Literal{Type: at, Value: x}
		}
		return exec.Call{Fn: "cast", Args: []exec.Expr{exec.Literal{Type: arrow.BinaryTypes.String, Value: x}}, Type: at}
	case int64:
		switch t {
		case planner.TypeDouble:
			return exec.Literal{Type: at, Value: float64(x)}
		case planner.TypeInt, planner.TypeBigInt, planner.TypeTimestamp, planner.TypeInterval:
			return exec.Literal{Type: at, Value: x}
		}
		return exec.Call{Fn: "cast", Args: []exec.Expr{exec.Literal{Type: arrow.PrimitiveTypes.Int64, Value: x}}, Type: at}
	case float64:
		if t == planner.TypeDouble {
			return exec.Literal{Type: at, Value: x}
		}
		return exec.Call{Fn: "cast", Args: []exec.Expr{exec.Literal{Type: arrow.PrimitiveTypes.Float64, Value: x}}, Type: at}
	case bool:
		if t == planner.TypeBool {
			return exec.Literal{Type: at, Value: x}
		}
		return exec.Call{Fn: "cast", Args: []exec.Expr{exec.Literal{Type: arrow.FixedWidthTypes.Boolean, Value: x}}, Type: at}
	}
	return exec.Literal{Type: at, Value: fmt.Sprint(v)}
}

// buildOps creates the operators of one stage instance: the two-input head
// of a join stage (nil otherwise) and the single-input operators after it.
func buildOps(st *planner.Stage, params []Param) (exec.BinaryOperator, []exec.Operator, error) {
	b := exprBuilder{params: params}
	in := ArrowSchema(st.Input)
	var head exec.BinaryOperator
	var ops []exec.Operator
	fail := func(err error) (exec.BinaryOperator, []exec.Operator, error) {
		if head != nil {
			head.Close()
		}
		for _, op := range ops {
			op.Close()
		}
		return nil, nil, err
	}
	for i, op := range st.Ops {
		var o exec.Operator
		var err error
		switch x := op.(type) {
		case *planner.JoinOp:
			if i != 0 || len(st.Sides) != 2 {
				return fail(fmt.Errorf("cluster: a join must start a two-input stage"))
			}
			if head, err = buildJoin(x, st, b); err != nil {
				return fail(err)
			}
			in = head.Schema()
			continue
		case *planner.CalcOp:
			var filter exec.Expr
			if x.Filter != nil {
				if filter, err = b.expr(x.Filter); err != nil {
					return fail(err)
				}
			}
			var exprs []exec.Expr
			if x.Exprs != nil {
				exprs = make([]exec.Expr, len(x.Exprs))
				for i, e := range x.Exprs {
					if exprs[i], err = b.expr(e); err != nil {
						return fail(err)
					}
				}
			}
			names := x.Names
			if exprs == nil {
				// Keep every input column.
				for i, c := range x.Out {
					exprs = append(exprs, exec.ColRef{Index: i, Type: ArrowType(c.Type)})
					names = append(names, c.Name)
				}
			}
			o, err = exec.NewCalc(in, filter, exprs, names)
		case *planner.AggOp:
			o, err = exec.NewHashAggregate(in, aggConfig(x))
		case *planner.OverOp:
			o, err = buildOver(x, in)
		case *planner.SortOp:
			keys := make([]exec.SortKey, len(x.Keys))
			for i, k := range x.Keys {
				keys[i] = exec.SortKey{Col: k.Col, Desc: k.Desc, NullsFirst: k.NullsFirst}
			}
			o, err = exec.NewSort(in, keys, x.Limit, x.Offset)
		default:
			err = fmt.Errorf("cluster: unknown physical op %T", op)
		}
		if err != nil {
			return fail(err)
		}
		ops = append(ops, o)
		in = o.Schema()
	}
	return head, ops, nil
}

// buildJoin creates the join operator at the head of a join stage. Its
// output columns are renamed to the plan's names.
func buildJoin(x *planner.JoinOp, st *planner.Stage, b exprBuilder) (exec.BinaryOperator, error) {
	left, right := ArrowSchema(st.Sides[0].Columns), ArrowSchema(st.Sides[1].Columns)
	var residual exec.Expr
	if x.Residual != nil {
		var err error
		if residual, err = b.expr(x.Residual); err != nil {
			return nil, err
		}
	}
	typ := exec.JoinInner
	if x.Outer {
		typ = exec.JoinLeft
	}
	if x.Kind == planner.JoinLookup {
		return exec.NewLookupJoin(left, right, exec.LookupJoinConfig{
			Type: typ, LeftKeys: x.LeftKeys, RightKeys: x.RightKeys, OpCol: x.OpCol, Residual: residual,
		})
	}
	return exec.NewIntervalJoin(left, right, exec.IntervalJoinConfig{
		Type: typ, LeftKeys: x.LeftKeys, RightKeys: x.RightKeys,
		LeftTime: x.LeftTime, RightTime: x.RightTime, LeftUnit: x.LeftUnit, RightUnit: x.RightUnit,
		Lower: x.Lower, Upper: x.Upper, Residual: residual,
	})
}

func aggConfig(x *planner.AggOp) exec.AggConfig {
	cfg := exec.AggConfig{Keys: x.Keys, KeyNames: x.KeyNames, Batch: x.Mode == planner.AggBatch}
	for _, a := range x.Aggs {
		cfg.Aggs = append(cfg.Aggs, exec.AggSpec{Kind: aggKinds[a.Kind], Arg: a.Arg, Name: a.Name, Type: ArrowType(a.T)})
	}
	if w := x.Window; w != nil {
		cfg.Window = exec.WindowSpec{Kind: windowKinds[w.Kind], TimeCol: w.TimeCol, Size: w.Size, Slide: w.Slide, Gap: w.Gap, Offset: w.Offset, TimeUnit: w.TimeUnit}
	}
	return cfg
}

var aggKinds = map[planner.AggKind]exec.AggKind{
	planner.AggCountStar: exec.AggCountStar, planner.AggCount: exec.AggCount,
	planner.AggCountDistinct: exec.AggCountDistinct, planner.AggSum: exec.AggSum,
	planner.AggAvg: exec.AggAvg, planner.AggMin: exec.AggMin, planner.AggMax: exec.AggMax,
}

var windowKinds = map[planner.WindowKind]exec.WindowKind{
	planner.WindowNone: exec.WindowNone, planner.WindowTumble: exec.WindowTumble,
	planner.WindowHop: exec.WindowHop, planner.WindowSession: exec.WindowSession,
}

var overKinds = map[planner.OverKind]exec.OverKind{
	planner.OverRowNumber: exec.OverRowNumber, planner.OverLag: exec.OverLag, planner.OverLead: exec.OverLead,
	planner.OverCount: exec.OverCount, planner.OverCountStar: exec.OverCountStar, planner.OverSum: exec.OverSum,
	planner.OverAvg: exec.OverAvg, planner.OverMin: exec.OverMin, planner.OverMax: exec.OverMax,
}

// overConfig maps an OVER window op to exec's configuration, evaluating
// constant LAG/LEAD defaults.
func overConfig(x *planner.OverOp) (exec.OverConfig, error) {
	cfg := exec.OverConfig{PartitionBy: x.PartitionBy, TimeCol: x.TimeCol, TimeUnit: x.TimeUnit}
	for _, c := range x.Calls {
		def := c.Default
		if c.DefaultExpr != nil {
			v, err := evalConstant(c.DefaultExpr)
			if err != nil {
				return cfg, err
			}
			def = v
		}
		f := exec.OverFunc{Kind: overKinds[c.Kind], Arg: -1, Offset: c.Offset, Default: def,
			Preceding: c.Preceding, Name: c.Name, Type: ArrowType(c.T)}
		if c.Arg != nil {
			f.Arg = c.Arg.Index
		}
		cfg.Funcs = append(cfg.Funcs, f)
	}
	return cfg, nil
}

// evalConstant evaluates an expression that reads no column into a Go
// value (nil, bool, int64, float64, string; µs for times and intervals).
func evalConstant(e planner.Expr) (any, error) {
	x, err := exprBuilder{}.expr(e)
	if err != nil {
		return nil, err
	}
	one := array.NewRecordBatch(arrow.NewSchema(nil, nil), nil, 1)
	defer one.Release()
	calc, err := exec.NewCalc(one.Schema(), nil, []exec.Expr{x}, []string{"v"})
	if err != nil {
		return nil, err
	}
	defer calc.Close()
	var v any
	err = calc.Push(one, func(rec arrow.RecordBatch) error {
		v = valueAt(rec.Column(0), 0)
		return nil
	})
	return v, err
}

// buildOver creates an OVER window operator.
func buildOver(x *planner.OverOp, in *arrow.Schema) (exec.Operator, error) {
	cfg, err := overConfig(x)
	if err != nil {
		return nil, err
	}
	return exec.NewOverWindow(in, cfg)
}
