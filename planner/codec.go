package planner

// This file serialises continuous queries and physical plans, so that the
// coordinator can ship a plan to worker processes.
//
// The encoding is JSON with an envelope carrying a format version:
//
//	{"version":1,"query":{…}}   EncodeQuery
//	{"version":1,"plan":{…}}    EncodePhysical
//
// Interface values carry an explicit tag: an expression is
// {"expr":"col"|"const"|"param"|"func", …} and an operator is
// {"op":"calc"|"aggregate"|"sort"|"join"|"over", …}. Enumerations (types,
// aggregate and window kinds, modes, relation kinds) are written as names
// of their own, independent of the names EXPLAIN prints, so that the format
// stays stable when display names change. A constant's value is an object
// naming its Go type, with int64 and float64 written as strings so that
// they round-trip exactly through any JSON reader:
//
//	{"expr":"const","type":"bigint","value":{"int64":"9007199254740993"}}
//	{"expr":"const","type":"double","value":{"float64":"NaN"}}
//	{"expr":"const","type":"unknown","untyped":true}            (NULL)
//
// Other int64 fields (durations in µs, time units, LIMIT) are JSON numbers;
// Go's encoding/json decodes them into int64 exactly.
//
// A nil slice is written as null and an empty one as [], since the plan
// gives them different meanings in places (CalcOp.Exprs nil keeps every
// input column). Decoding is strict: an unknown field, tag or enumeration
// name, a version other than PlanEncodingVersion, or a plan whose column,
// stage or side references are out of range is an error, never a panic.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// PlanEncodingVersion is the version of the plan encoding. EncodeQuery and
// EncodePhysical write it; DecodeQuery and DecodePhysical accept only it.
// It changes whenever the format changes in a way an older decoder would
// not read correctly (a new field, tag or enumeration name).
const PlanEncodingVersion = 1

// ErrPlanVersion is wrapped by the decoding error of an encoding whose
// version is not PlanEncodingVersion (a coordinator and a worker of
// different builds).
var ErrPlanVersion = errors.New("unsupported plan encoding version")

// ErrBadPlanEncoding is wrapped by every other decoding error: malformed
// JSON, unknown fields, tags or names, and plans whose references are out
// of range.
var ErrBadPlanEncoding = errors.New("malformed plan encoding")

// EncodeQuery serialises a continuous query and its physical plan as
// compact JSON (see the format above). Everything the query holds is kept
// — name, SQL, columns, updating flag, key, event time and unit, plan,
// source names and options — except what its sources point to:
//
//   - Source.Stream is written by value in full: name, columns, event-time
//     column, time unit, watermark delay and options.
//   - Source.Query (a continuous query read by this one) is reduced to what
//     the runtime reads of it: name, columns, updating flag, key, event-time
//     column and time unit. Its SQL, plan, sources and options are dropped;
//     DecodeQuery returns a *ContinuousQuery with only those fields set.
//
// Streams and queries shared by several sources are written once per
// source and decode to distinct pointers. q must be a complete plan whose
// references are in range (as the planner makes them); otherwise, or when
// it holds an operator, expression or constant type the format does not
// know, EncodeQuery returns an error. EncodeQuery only reads q, so it may
// run alongside other readers of the (immutable) plan.
func EncodeQuery(q *ContinuousQuery) ([]byte, error) {
	if q == nil {
		return nil, errors.New("planner: encode query: nil query")
	}
	if err := checkQuery(q); err != nil {
		return nil, fmt.Errorf("planner: encode query %q: %w", q.Name, err)
	}
	w, err := encodeQuery(q)
	if err != nil {
		return nil, fmt.Errorf("planner: encode query %q: %w", q.Name, err)
	}
	return marshal(wireEnvelope{Version: PlanEncodingVersion, Query: w})
}

// DecodeQuery parses an encoding written by EncodeQuery. The result shares
// nothing with b, its references are in range (see checkPhysical; the
// meaning of the plan is exec's to judge when it builds operators), and
// its OVER operators get their EXPLAIN text back, recomputed from their
// input column names, so Explain of the result equals Explain of the
// encoded plan. Errors wrap ErrPlanVersion or ErrBadPlanEncoding; no input
// makes it panic.
func DecodeQuery(b []byte) (*ContinuousQuery, error) {
	env, err := decodeEnvelope(b)
	if err != nil {
		return nil, fmt.Errorf("planner: decode query: %w", err)
	}
	if env.Query == nil || env.Plan != nil {
		return nil, fmt.Errorf("planner: decode query: %w: want a \"query\" object only", ErrBadPlanEncoding)
	}
	q, err := decodeQuery(env.Query)
	if err == nil {
		err = checkQuery(q)
	}
	if err != nil {
		return nil, fmt.Errorf("planner: decode query: %w: %w", ErrBadPlanEncoding, err)
	}
	describeDecoded(q.Plan)
	return q, nil
}

// EncodePhysical serialises a physical plan on its own (a snapshot query's
// plan, say) as compact JSON. Sources are kept as EncodeQuery keeps them.
func EncodePhysical(p *Physical) ([]byte, error) {
	if p == nil {
		return nil, errors.New("planner: encode plan: nil plan")
	}
	if err := checkPhysical(p); err != nil {
		return nil, fmt.Errorf("planner: encode plan: %w", err)
	}
	w, err := encodePhysical(p)
	if err != nil {
		return nil, fmt.Errorf("planner: encode plan: %w", err)
	}
	return marshal(wireEnvelope{Version: PlanEncodingVersion, Plan: w})
}

// DecodePhysical parses an encoding written by EncodePhysical. Errors wrap
// ErrPlanVersion or ErrBadPlanEncoding.
func DecodePhysical(b []byte) (*Physical, error) {
	env, err := decodeEnvelope(b)
	if err != nil {
		return nil, fmt.Errorf("planner: decode plan: %w", err)
	}
	if env.Plan == nil || env.Query != nil {
		return nil, fmt.Errorf("planner: decode plan: %w: want a \"plan\" object only", ErrBadPlanEncoding)
	}
	p, err := decodePhysical(env.Plan)
	if err == nil {
		err = checkPhysical(p)
	}
	if err != nil {
		return nil, fmt.Errorf("planner: decode plan: %w: %w", ErrBadPlanEncoding, err)
	}
	describeDecoded(p)
	return p, nil
}

// decodeEnvelope checks the version first, so that an encoding from a
// newer build fails with ErrPlanVersion rather than with an unknown field.
func decodeEnvelope(b []byte) (*wireEnvelope, error) {
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPlanEncoding, err)
	}
	if head.Version == nil {
		return nil, fmt.Errorf("%w: no \"version\" field", ErrBadPlanEncoding)
	}
	if *head.Version != PlanEncodingVersion {
		return nil, fmt.Errorf("%w %d (this build reads version %d)", ErrPlanVersion, *head.Version, PlanEncodingVersion)
	}
	var env wireEnvelope
	if err := strictUnmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPlanEncoding, err)
	}
	return &env, nil
}

// marshal is json.Marshal without HTML escaping, so that operators such as
// "<>" and "&" stay readable.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// strictUnmarshal is json.Unmarshal refusing unknown fields and trailing
// data.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// The wire types mirror the plan types. They are separate so that the
// format does not change when a Go field is renamed, and so that interface
// values carry tags.

type wireEnvelope struct {
	Version int           `json:"version"`
	Query   *wireQuery    `json:"query,omitempty"`
	Plan    *wirePhysical `json:"plan,omitempty"`
}

type wireQuery struct {
	Name      string            `json:"name"`
	SQL       string            `json:"sql"`
	Columns   []wireColumn      `json:"columns"`
	Updating  bool              `json:"updating"`
	Key       []int             `json:"key"`
	EventTime int               `json:"event_time"`
	TimeUnit  int64             `json:"time_unit"`
	Plan      *wirePhysical     `json:"plan"`
	Sources   []string          `json:"sources"`
	Options   map[string]string `json:"options"`
}

type wireColumn struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Declared string `json:"declared,omitempty"`
}

type wirePhysical struct {
	Mode    string       `json:"mode"`
	Columns []wireColumn `json:"columns"`
	Stages  []wireStage  `json:"stages"`
}

type wireStage struct {
	ID          int               `json:"id"`
	Name        string            `json:"name"`
	Parallelism int               `json:"parallelism"`
	Source      *wireSource       `json:"source,omitempty"`
	Sides       []wireSide        `json:"sides"`
	Input       []wireColumn      `json:"input"`
	PartitionBy []int             `json:"partition_by"`
	Ops         []json.RawMessage `json:"ops"`
}

type wireSide struct {
	Stage       int          `json:"stage"`
	Columns     []wireColumn `json:"columns"`
	PartitionBy []int        `json:"partition_by"`
}

type wireSource struct {
	Relation  string        `json:"relation"`
	Kind      string        `json:"kind"`
	Stream    *wireStream   `json:"stream,omitempty"`
	Query     *wireSourceCQ `json:"query,omitempty"`
	Indexes   []int         `json:"indexes"`
	Changelog bool          `json:"changelog"`
	Table     bool          `json:"table"`
}

type wireStream struct {
	Name           string            `json:"name"`
	Columns        []wireColumn      `json:"columns"`
	EventTime      int               `json:"event_time"`
	TimeUnit       int64             `json:"time_unit"`
	WatermarkDelay int64             `json:"watermark_delay"`
	IdleTimeout    int64             `json:"idle_timeout"`
	Options        map[string]string `json:"options"`
}

// wireSourceCQ is the part of a continuous query another query's source
// keeps.
type wireSourceCQ struct {
	Name      string       `json:"name"`
	Columns   []wireColumn `json:"columns"`
	Updating  bool         `json:"updating"`
	Key       []int        `json:"key"`
	EventTime int          `json:"event_time"`
	TimeUnit  int64        `json:"time_unit"`
}

// wireExpr is one tagged expression. Pointers tell a field that is absent
// from one set to its zero value, so that fields foreign to the tag are
// refused.
type wireExpr struct {
	Expr    string       `json:"expr"`
	Index   *int         `json:"index,omitempty"`   // col
	N       *int         `json:"n,omitempty"`       // param
	Name    *string      `json:"name,omitempty"`    // col, func
	Type    string       `json:"type"`              // all
	Value   *wireValue   `json:"value,omitempty"`   // const; absent for NULL
	Untyped bool         `json:"untyped,omitempty"` // const
	Args    *[]*wireExpr `json:"args,omitempty"`    // func
}

// wireValue is a non-NULL constant: exactly one field is set.
type wireValue struct {
	Bool    *bool   `json:"bool,omitempty"`
	Int64   *string `json:"int64,omitempty"`
	Float64 *string `json:"float64,omitempty"`
	String  *string `json:"string,omitempty"`
}

// wireOpTag reads the tag of an operator before its body.
type wireOpTag struct {
	Op string `json:"op"`
}

type wireCalc struct {
	Op     string       `json:"op"`
	Filter *wireExpr    `json:"filter"`
	Exprs  []*wireExpr  `json:"exprs"`
	Names  []string     `json:"names"`
	Out    []wireColumn `json:"out"`
}

type wireAgg struct {
	Op       string        `json:"op"`
	Keys     []int         `json:"keys"`
	KeyNames []string      `json:"key_names"`
	Aggs     []wireAggCall `json:"aggs"`
	Window   *wireWindow   `json:"window"`
	Mode     string        `json:"mode"`
	Out      []wireColumn  `json:"out"`
}

type wireAggCall struct {
	Kind    string `json:"kind"`
	Arg     int    `json:"arg"`
	ArgName string `json:"arg_name"`
	Name    string `json:"name"`
	Type    string `json:"type"`
}

type wireWindow struct {
	Kind     string `json:"kind"`
	TimeCol  int    `json:"time_col"`
	TimeName string `json:"time_name"`
	Size     int64  `json:"size"`
	Slide    int64  `json:"slide"`
	Gap      int64  `json:"gap"`
	Offset   int64  `json:"offset"`
	TimeUnit int64  `json:"time_unit"`
}

type wireSort struct {
	Op     string        `json:"op"`
	Keys   []wireSortKey `json:"keys"`
	Limit  int64         `json:"limit"`
	Offset int64         `json:"offset"`
	Out    []wireColumn  `json:"out"`
}

type wireSortKey struct {
	Col        int  `json:"col"`
	Desc       bool `json:"desc"`
	NullsFirst bool `json:"nulls_first"`
}

type wireJoin struct {
	Op        string       `json:"op"`
	Kind      string       `json:"kind"`
	Outer     bool         `json:"outer"`
	LeftKeys  []int        `json:"left_keys"`
	RightKeys []int        `json:"right_keys"`
	KeyNames  []string     `json:"key_names"`
	LeftTime  int          `json:"left_time"`
	RightTime int          `json:"right_time"`
	TimeNames [2]string    `json:"time_names"`
	LeftUnit  int64        `json:"left_unit"`
	RightUnit int64        `json:"right_unit"`
	Lower     int64        `json:"lower"`
	Upper     int64        `json:"upper"`
	OpCol     int          `json:"op_col"`
	Residual  *wireExpr    `json:"residual"`
	Out       []wireColumn `json:"out"`
}

type wireOver struct {
	Op          string         `json:"op"`
	PartitionBy []int          `json:"partition_by"`
	TimeCol     int            `json:"time_col"`
	TimeUnit    int64          `json:"time_unit"`
	Calls       []wireOverCall `json:"calls"`
	Out         []wireColumn   `json:"out"`
	// Desc is the EXPLAIN text, written only when it differs from what
	// describeOver makes of the input column names (which is what the
	// decoder recomputes otherwise).
	Desc string `json:"desc,omitempty"`
}

type wireOverCall struct {
	Kind        string     `json:"kind"`
	Arg         *wireExpr  `json:"arg"` // a col, or null
	Offset      int        `json:"offset"`
	Default     *wireValue `json:"default"` // null: NULL
	DefaultExpr *wireExpr  `json:"default_expr"`
	Preceding   int64      `json:"preceding"`
	Name        string     `json:"name"`
	Type        string     `json:"type"`
}

// Names of enumerations on the wire, indexed by value; "" is no value.
var (
	wireTypes = [...]string{TypeUnknown: "unknown", TypeBool: "boolean", TypeInt: "integer", TypeBigInt: "bigint",
		TypeDouble: "double", TypeText: "text", TypeTimestamp: "timestamp", TypeInterval: "interval"}
	wireRelationKinds = [...]string{0: "values", RelStream: "stream", RelTable: "table",
		RelContinuousQuery: "query", RelSystem: "system"}
	wireAggKinds = [...]string{AggCountStar: "count_star", AggCount: "count", AggCountDistinct: "count_distinct",
		AggSum: "sum", AggAvg: "avg", AggMin: "min", AggMax: "max"}
	wireWindowKinds = [...]string{WindowNone: "none", WindowTumble: "tumble", WindowHop: "hop", WindowSession: "session"}
	wireModes       = [...]string{AggWindowed: "windowed", AggUpdating: "updating", AggBatch: "batch"}
	wireJoinKinds   = [...]string{JoinInterval: "interval", JoinLookup: "lookup"}
	wireOverKinds   = [...]string{OverRowNumber: "row_number", OverLag: "lag", OverLead: "lead", OverCount: "count",
		OverCountStar: "count_star", OverSum: "sum", OverAvg: "avg", OverMin: "min", OverMax: "max"}
)

func enumName[T ~uint8](what string, names []string, v T) (string, error) {
	if int(v) >= len(names) || names[v] == "" {
		return "", fmt.Errorf("%s %d has no encoding", what, v)
	}
	return names[v], nil
}

func enumValue[T ~uint8](what string, names []string, s string) (T, error) {
	for i, n := range names {
		if n != "" && n == s {
			return T(i), nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q", what, s)
}

// ---- encoding ----

func encodeQuery(q *ContinuousQuery) (*wireQuery, error) {
	cols, err := encodeColumns(q.Columns)
	if err != nil {
		return nil, err
	}
	plan, err := encodePhysical(q.Plan)
	if err != nil {
		return nil, err
	}
	return &wireQuery{Name: q.Name, SQL: q.SQL, Columns: cols, Updating: q.Updating, Key: q.Key,
		EventTime: q.EventTime, TimeUnit: q.TimeUnit, Plan: plan, Sources: q.Sources, Options: q.Options}, nil
}

func encodeColumns(cols []Column) ([]wireColumn, error) {
	if cols == nil {
		return nil, nil
	}
	out := make([]wireColumn, len(cols))
	for i, c := range cols {
		t, err := enumName("type", wireTypes[:], c.Type)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		out[i] = wireColumn{Name: c.Name, Type: t, Declared: c.Declared}
	}
	return out, nil
}

func encodePhysical(p *Physical) (*wirePhysical, error) {
	mode, err := enumName("aggregate mode", wireModes[:], p.Mode)
	if err != nil {
		return nil, err
	}
	cols, err := encodeColumns(p.Columns)
	if err != nil {
		return nil, err
	}
	w := &wirePhysical{Mode: mode, Columns: cols}
	if p.Stages != nil {
		w.Stages = make([]wireStage, len(p.Stages))
	}
	for i, st := range p.Stages {
		if w.Stages[i], err = encodeStage(st); err != nil {
			return nil, fmt.Errorf("stage %d: %w", i, err)
		}
	}
	return w, nil
}

func encodeStage(st *Stage) (wireStage, error) {
	w := wireStage{ID: st.ID, Name: st.Name, Parallelism: st.Parallelism, PartitionBy: st.PartitionBy}
	var err error
	if w.Input, err = encodeColumns(st.Input); err != nil {
		return w, err
	}
	if st.Source != nil {
		if w.Source, err = encodeSource(st.Source); err != nil {
			return w, err
		}
	}
	if st.Sides != nil {
		w.Sides = make([]wireSide, len(st.Sides))
	}
	for i, s := range st.Sides {
		cols, err := encodeColumns(s.Columns)
		if err != nil {
			return w, fmt.Errorf("side %d: %w", i, err)
		}
		w.Sides[i] = wireSide{Stage: s.Stage, Columns: cols, PartitionBy: s.PartitionBy}
	}
	if st.Ops != nil {
		w.Ops = make([]json.RawMessage, len(st.Ops))
	}
	in := st.Input
	for i, op := range st.Ops {
		body, err := encodeOp(op, in)
		if err != nil {
			return w, fmt.Errorf("op %d: %w", i, err)
		}
		if w.Ops[i], err = marshal(body); err != nil {
			return w, fmt.Errorf("op %d: %w", i, err)
		}
		in = op.Columns()
	}
	return w, nil
}

func encodeSource(s *Source) (*wireSource, error) {
	kind, err := enumName("relation kind", wireRelationKinds[:], s.Kind)
	if err != nil {
		return nil, err
	}
	w := &wireSource{Relation: s.Relation, Kind: kind, Indexes: s.Indexes, Changelog: s.Changelog, Table: s.Table}
	if st := s.Stream; st != nil {
		cols, err := encodeColumns(st.Columns)
		if err != nil {
			return nil, fmt.Errorf("stream %q: %w", st.Name, err)
		}
		w.Stream = &wireStream{Name: st.Name, Columns: cols, EventTime: st.EventTime, TimeUnit: st.TimeUnit,
			WatermarkDelay: st.WatermarkDelay, IdleTimeout: st.IdleTimeout, Options: st.Options}
	}
	if q := s.Query; q != nil {
		cols, err := encodeColumns(q.Columns)
		if err != nil {
			return nil, fmt.Errorf("continuous query %q: %w", q.Name, err)
		}
		w.Query = &wireSourceCQ{Name: q.Name, Columns: cols, Updating: q.Updating, Key: q.Key,
			EventTime: q.EventTime, TimeUnit: q.TimeUnit}
	}
	return w, nil
}

// encodeOp returns the wire form of op, whose input columns are in.
func encodeOp(op Op, in []Column) (any, error) {
	switch x := op.(type) {
	case *CalcOp:
		w := &wireCalc{Op: "calc", Names: x.Names}
		var err error
		if x.Filter != nil {
			if w.Filter, err = encodeExpr(x.Filter); err != nil {
				return nil, fmt.Errorf("calc filter: %w", err)
			}
		}
		if w.Exprs, err = encodeExprs(x.Exprs); err != nil {
			return nil, fmt.Errorf("calc: %w", err)
		}
		if w.Out, err = encodeColumns(x.Out); err != nil {
			return nil, fmt.Errorf("calc: %w", err)
		}
		return w, nil
	case *AggOp:
		return encodeAgg(x)
	case *SortOp:
		w := &wireSort{Op: "sort", Limit: x.Limit, Offset: x.Offset}
		if x.Keys != nil {
			w.Keys = make([]wireSortKey, len(x.Keys))
		}
		for i, k := range x.Keys {
			w.Keys[i] = wireSortKey(k)
		}
		var err error
		if w.Out, err = encodeColumns(x.Out); err != nil {
			return nil, fmt.Errorf("sort: %w", err)
		}
		return w, nil
	case *JoinOp:
		kind, err := enumName("join kind", wireJoinKinds[:], x.Kind)
		if err != nil {
			return nil, err
		}
		w := &wireJoin{Op: "join", Kind: kind, Outer: x.Outer, LeftKeys: x.LeftKeys, RightKeys: x.RightKeys,
			KeyNames: x.KeyNames, LeftTime: x.LeftTime, RightTime: x.RightTime, TimeNames: x.TimeNames,
			LeftUnit: x.LeftUnit, RightUnit: x.RightUnit, Lower: x.Lower, Upper: x.Upper, OpCol: x.OpCol}
		if x.Residual != nil {
			if w.Residual, err = encodeExpr(x.Residual); err != nil {
				return nil, fmt.Errorf("join residual: %w", err)
			}
		}
		if w.Out, err = encodeColumns(x.Out); err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
		return w, nil
	case *OverOp:
		return encodeOver(x, in)
	case nil:
		return nil, errors.New("nil operator")
	}
	return nil, fmt.Errorf("operator %T has no encoding", op)
}

func encodeAgg(x *AggOp) (*wireAgg, error) {
	mode, err := enumName("aggregate mode", wireModes[:], x.Mode)
	if err != nil {
		return nil, err
	}
	w := &wireAgg{Op: "aggregate", Keys: x.Keys, KeyNames: x.KeyNames, Mode: mode}
	if x.Aggs != nil {
		w.Aggs = make([]wireAggCall, len(x.Aggs))
	}
	for i, a := range x.Aggs {
		kind, err := enumName("aggregate", wireAggKinds[:], a.Kind)
		if err != nil {
			return nil, err
		}
		t, err := enumName("type", wireTypes[:], a.T)
		if err != nil {
			return nil, fmt.Errorf("aggregate %q: %w", a.Name, err)
		}
		w.Aggs[i] = wireAggCall{Kind: kind, Arg: a.Arg, ArgName: a.ArgName, Name: a.Name, Type: t}
	}
	if win := x.Window; win != nil {
		kind, err := enumName("window kind", wireWindowKinds[:], win.Kind)
		if err != nil {
			return nil, err
		}
		w.Window = &wireWindow{Kind: kind, TimeCol: win.TimeCol, TimeName: win.TimeName, Size: win.Size,
			Slide: win.Slide, Gap: win.Gap, Offset: win.Offset, TimeUnit: win.TimeUnit}
	}
	if w.Out, err = encodeColumns(x.Out); err != nil {
		return nil, fmt.Errorf("aggregate: %w", err)
	}
	return w, nil
}

func encodeOver(x *OverOp, in []Column) (*wireOver, error) {
	w := &wireOver{Op: "over", PartitionBy: x.PartitionBy, TimeCol: x.TimeCol, TimeUnit: x.TimeUnit}
	if x.Calls != nil {
		w.Calls = make([]wireOverCall, len(x.Calls))
	}
	for i, c := range x.Calls {
		kind, err := enumName("window function", wireOverKinds[:], c.Kind)
		if err != nil {
			return nil, err
		}
		t, err := enumName("type", wireTypes[:], c.T)
		if err != nil {
			return nil, fmt.Errorf("window function %q: %w", c.Name, err)
		}
		wc := wireOverCall{Kind: kind, Offset: c.Offset, Preceding: c.Preceding, Name: c.Name, Type: t}
		if c.Arg != nil {
			if wc.Arg, err = encodeExpr(c.Arg); err != nil {
				return nil, fmt.Errorf("window function %q: %w", c.Name, err)
			}
		}
		if wc.Default, err = encodeValue(c.Default); err != nil {
			return nil, fmt.Errorf("window function %q default: %w", c.Name, err)
		}
		if c.DefaultExpr != nil {
			if wc.DefaultExpr, err = encodeExpr(c.DefaultExpr); err != nil {
				return nil, fmt.Errorf("window function %q default: %w", c.Name, err)
			}
		}
		w.Calls[i] = wc
	}
	var err error
	if w.Out, err = encodeColumns(x.Out); err != nil {
		return nil, fmt.Errorf("over: %w", err)
	}
	if x.desc != overDesc(x, in) {
		w.Desc = x.desc
	}
	return w, nil
}

// overDesc is OverOp's EXPLAIN text made from its input column names;
// checkPhysical has made sure the indexes are in range.
func overDesc(o *OverOp, in []Column) string {
	part := make([]*ColRef, len(o.PartitionBy))
	for i, p := range o.PartitionBy {
		part[i] = &ColRef{Index: p, Name: in[p].Name, T: in[p].Type}
	}
	t := &ColRef{Index: o.TimeCol, Name: in[o.TimeCol].Name, T: in[o.TimeCol].Type}
	return describeOver(part, t, o.Calls)
}

func encodeExprs(es []Expr) ([]*wireExpr, error) {
	if es == nil {
		return nil, nil
	}
	out := make([]*wireExpr, len(es))
	for i, e := range es {
		w, err := encodeExpr(e)
		if err != nil {
			return nil, err
		}
		out[i] = w
	}
	return out, nil
}

func encodeExpr(e Expr) (*wireExpr, error) {
	if e == nil {
		return nil, errors.New("nil expression")
	}
	t, err := enumName("type", wireTypes[:], e.Type())
	if err != nil {
		return nil, fmt.Errorf("expression %s: %w", e, err)
	}
	switch x := e.(type) {
	case *ColRef:
		idx, name := x.Index, x.Name
		return &wireExpr{Expr: "col", Index: &idx, Name: &name, Type: t}, nil
	case *Const:
		v, err := encodeValue(x.Value)
		if err != nil {
			return nil, err
		}
		return &wireExpr{Expr: "const", Type: t, Value: v, Untyped: x.Untyped}, nil
	case *Param:
		n := x.N
		return &wireExpr{Expr: "param", N: &n, Type: t}, nil
	case *Func:
		name := x.Name
		w := &wireExpr{Expr: "func", Name: &name, Type: t}
		args, err := encodeExprs(x.Args)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", x.Name, err)
		}
		w.Args = &args
		return w, nil
	}
	return nil, fmt.Errorf("expression %T has no encoding", e)
}

// encodeValue writes a constant's value; nil for NULL.
func encodeValue(v any) (*wireValue, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool:
		return &wireValue{Bool: &x}, nil
	case int64:
		s := strconv.FormatInt(x, 10)
		return &wireValue{Int64: &s}, nil
	case float64:
		// The shortest representation that parses back to x; NaN, +Inf,
		// -Inf and -0 included.
		s := strconv.FormatFloat(x, 'g', -1, 64)
		return &wireValue{Float64: &s}, nil
	case string:
		return &wireValue{String: &x}, nil
	}
	return nil, fmt.Errorf("constant of Go type %T has no encoding (want nil, bool, int64, float64 or string)", v)
}

// ---- decoding ----

func decodeQuery(w *wireQuery) (*ContinuousQuery, error) {
	cols, err := decodeColumns(w.Columns)
	if err != nil {
		return nil, fmt.Errorf("columns: %w", err)
	}
	if w.Plan == nil {
		return nil, errors.New("query has no plan")
	}
	plan, err := decodePhysical(w.Plan)
	if err != nil {
		return nil, err
	}
	return &ContinuousQuery{Name: w.Name, SQL: w.SQL, Columns: cols, Updating: w.Updating, Key: w.Key,
		EventTime: w.EventTime, TimeUnit: w.TimeUnit, Plan: plan, Sources: w.Sources, Options: w.Options}, nil
}

func decodeColumns(ws []wireColumn) ([]Column, error) {
	if ws == nil {
		return nil, nil
	}
	out := make([]Column, len(ws))
	for i, w := range ws {
		t, err := enumValue[Type]("type", wireTypes[:], w.Type)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", w.Name, err)
		}
		out[i] = Column{Name: w.Name, Type: t, Declared: w.Declared}
	}
	return out, nil
}

func decodePhysical(w *wirePhysical) (*Physical, error) {
	mode, err := enumValue[AggregateMode]("aggregate mode", wireModes[:], w.Mode)
	if err != nil {
		return nil, err
	}
	cols, err := decodeColumns(w.Columns)
	if err != nil {
		return nil, fmt.Errorf("plan columns: %w", err)
	}
	p := &Physical{Mode: mode, Columns: cols}
	if w.Stages != nil {
		p.Stages = make([]*Stage, len(w.Stages))
	}
	for i := range w.Stages {
		if p.Stages[i], err = decodeStage(&w.Stages[i]); err != nil {
			return nil, fmt.Errorf("stage %d: %w", i, err)
		}
	}
	return p, nil
}

func decodeStage(w *wireStage) (*Stage, error) {
	st := &Stage{ID: w.ID, Name: w.Name, Parallelism: w.Parallelism, PartitionBy: w.PartitionBy}
	var err error
	if st.Input, err = decodeColumns(w.Input); err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	if w.Source != nil {
		if st.Source, err = decodeSource(w.Source); err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
	}
	if w.Sides != nil {
		st.Sides = make([]Side, len(w.Sides))
	}
	for i, s := range w.Sides {
		cols, err := decodeColumns(s.Columns)
		if err != nil {
			return nil, fmt.Errorf("side %d: %w", i, err)
		}
		st.Sides[i] = Side{Stage: s.Stage, Columns: cols, PartitionBy: s.PartitionBy}
	}
	if w.Ops != nil {
		st.Ops = make([]Op, len(w.Ops))
	}
	for i, raw := range w.Ops {
		if st.Ops[i], err = decodeOp(raw); err != nil {
			return nil, fmt.Errorf("op %d: %w", i, err)
		}
	}
	return st, nil
}

func decodeSource(w *wireSource) (*Source, error) {
	kind, err := enumValue[RelationKind]("relation kind", wireRelationKinds[:], w.Kind)
	if err != nil {
		return nil, err
	}
	s := &Source{Relation: w.Relation, Kind: kind, Indexes: w.Indexes, Changelog: w.Changelog, Table: w.Table}
	if ws := w.Stream; ws != nil {
		cols, err := decodeColumns(ws.Columns)
		if err != nil {
			return nil, fmt.Errorf("stream %q: %w", ws.Name, err)
		}
		s.Stream = &Stream{Name: ws.Name, Columns: cols, EventTime: ws.EventTime, TimeUnit: ws.TimeUnit,
			WatermarkDelay: ws.WatermarkDelay, IdleTimeout: ws.IdleTimeout, Options: ws.Options}
	}
	if wq := w.Query; wq != nil {
		cols, err := decodeColumns(wq.Columns)
		if err != nil {
			return nil, fmt.Errorf("continuous query %q: %w", wq.Name, err)
		}
		s.Query = &ContinuousQuery{Name: wq.Name, Columns: cols, Updating: wq.Updating, Key: wq.Key,
			EventTime: wq.EventTime, TimeUnit: wq.TimeUnit}
	}
	return s, nil
}

func decodeOp(raw json.RawMessage) (Op, error) {
	var tag wireOpTag
	if err := json.Unmarshal(raw, &tag); err != nil {
		return nil, err
	}
	switch tag.Op {
	case "calc":
		var w wireCalc
		if err := strictUnmarshal(raw, &w); err != nil {
			return nil, fmt.Errorf("calc: %w", err)
		}
		op := &CalcOp{Names: w.Names}
		var err error
		if w.Filter != nil {
			if op.Filter, err = decodeExpr(w.Filter); err != nil {
				return nil, fmt.Errorf("calc filter: %w", err)
			}
		}
		if op.Exprs, err = decodeExprs(w.Exprs); err != nil {
			return nil, fmt.Errorf("calc: %w", err)
		}
		if op.Out, err = decodeColumns(w.Out); err != nil {
			return nil, fmt.Errorf("calc: %w", err)
		}
		return op, nil
	case "aggregate":
		var w wireAgg
		if err := strictUnmarshal(raw, &w); err != nil {
			return nil, fmt.Errorf("aggregate: %w", err)
		}
		return decodeAgg(&w)
	case "sort":
		var w wireSort
		if err := strictUnmarshal(raw, &w); err != nil {
			return nil, fmt.Errorf("sort: %w", err)
		}
		op := &SortOp{Limit: w.Limit, Offset: w.Offset}
		if w.Keys != nil {
			op.Keys = make([]PhysSortKey, len(w.Keys))
		}
		for i, k := range w.Keys {
			op.Keys[i] = PhysSortKey(k)
		}
		var err error
		if op.Out, err = decodeColumns(w.Out); err != nil {
			return nil, fmt.Errorf("sort: %w", err)
		}
		return op, nil
	case "join":
		var w wireJoin
		if err := strictUnmarshal(raw, &w); err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
		kind, err := enumValue[JoinKind]("join kind", wireJoinKinds[:], w.Kind)
		if err != nil {
			return nil, err
		}
		op := &JoinOp{Kind: kind, Outer: w.Outer, LeftKeys: w.LeftKeys, RightKeys: w.RightKeys, KeyNames: w.KeyNames,
			LeftTime: w.LeftTime, RightTime: w.RightTime, TimeNames: w.TimeNames, LeftUnit: w.LeftUnit,
			RightUnit: w.RightUnit, Lower: w.Lower, Upper: w.Upper, OpCol: w.OpCol}
		if w.Residual != nil {
			if op.Residual, err = decodeExpr(w.Residual); err != nil {
				return nil, fmt.Errorf("join residual: %w", err)
			}
		}
		if op.Out, err = decodeColumns(w.Out); err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
		return op, nil
	case "over":
		var w wireOver
		if err := strictUnmarshal(raw, &w); err != nil {
			return nil, fmt.Errorf("over: %w", err)
		}
		return decodeOver(&w)
	}
	return nil, fmt.Errorf("unknown operator tag %q", tag.Op)
}

func decodeAgg(w *wireAgg) (*AggOp, error) {
	mode, err := enumValue[AggregateMode]("aggregate mode", wireModes[:], w.Mode)
	if err != nil {
		return nil, err
	}
	op := &AggOp{Keys: w.Keys, KeyNames: w.KeyNames, Mode: mode}
	if w.Aggs != nil {
		op.Aggs = make([]PhysAgg, len(w.Aggs))
	}
	for i, a := range w.Aggs {
		kind, err := enumValue[AggKind]("aggregate", wireAggKinds[:], a.Kind)
		if err != nil {
			return nil, err
		}
		t, err := enumValue[Type]("type", wireTypes[:], a.Type)
		if err != nil {
			return nil, fmt.Errorf("aggregate %q: %w", a.Name, err)
		}
		op.Aggs[i] = PhysAgg{Kind: kind, Arg: a.Arg, ArgName: a.ArgName, Name: a.Name, T: t}
	}
	if win := w.Window; win != nil {
		kind, err := enumValue[WindowKind]("window kind", wireWindowKinds[:], win.Kind)
		if err != nil {
			return nil, err
		}
		op.Window = &PhysWindow{Kind: kind, TimeCol: win.TimeCol, TimeName: win.TimeName, Size: win.Size,
			Slide: win.Slide, Gap: win.Gap, Offset: win.Offset, TimeUnit: win.TimeUnit}
	}
	if op.Out, err = decodeColumns(w.Out); err != nil {
		return nil, fmt.Errorf("aggregate: %w", err)
	}
	return op, nil
}

// decodeOver leaves an absent desc to describeDecoded, which knows the
// input columns.
func decodeOver(w *wireOver) (*OverOp, error) {
	op := &OverOp{PartitionBy: w.PartitionBy, TimeCol: w.TimeCol, TimeUnit: w.TimeUnit, desc: w.Desc}
	if w.Calls != nil {
		op.Calls = make([]OverCall, len(w.Calls))
	}
	for i, wc := range w.Calls {
		kind, err := enumValue[OverKind]("window function", wireOverKinds[:], wc.Kind)
		if err != nil {
			return nil, err
		}
		t, err := enumValue[Type]("type", wireTypes[:], wc.Type)
		if err != nil {
			return nil, fmt.Errorf("window function %q: %w", wc.Name, err)
		}
		c := OverCall{Kind: kind, Offset: wc.Offset, Preceding: wc.Preceding, Name: wc.Name, T: t}
		if wc.Arg != nil {
			e, err := decodeExpr(wc.Arg)
			if err != nil {
				return nil, fmt.Errorf("window function %q: %w", wc.Name, err)
			}
			ref, ok := e.(*ColRef)
			if !ok {
				return nil, fmt.Errorf("window function %q: the argument must be a column, not %q", wc.Name, wc.Arg.Expr)
			}
			c.Arg = ref
		}
		if c.Default, err = decodeValue(wc.Default); err != nil {
			return nil, fmt.Errorf("window function %q default: %w", wc.Name, err)
		}
		if wc.DefaultExpr != nil {
			if c.DefaultExpr, err = decodeExpr(wc.DefaultExpr); err != nil {
				return nil, fmt.Errorf("window function %q default: %w", wc.Name, err)
			}
		}
		op.Calls[i] = c
	}
	var err error
	if op.Out, err = decodeColumns(w.Out); err != nil {
		return nil, fmt.Errorf("over: %w", err)
	}
	return op, nil
}

func decodeExprs(ws []*wireExpr) ([]Expr, error) {
	if ws == nil {
		return nil, nil
	}
	out := make([]Expr, len(ws))
	for i, w := range ws {
		e, err := decodeExpr(w)
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

func decodeExpr(w *wireExpr) (Expr, error) {
	if w == nil {
		return nil, errors.New("null expression")
	}
	t, err := enumValue[Type]("type", wireTypes[:], w.Type)
	if err != nil {
		return nil, fmt.Errorf("%s expression: %w", w.Expr, err)
	}
	// allow lists the optional fields the tag may carry.
	allow := func(index, n, name, value, untyped, args bool) error {
		for _, f := range []struct {
			set, ok bool
			name    string
		}{{w.Index != nil, index, "index"}, {w.N != nil, n, "n"}, {w.Name != nil, name, "name"},
			{w.Value != nil, value, "value"}, {w.Untyped, untyped, "untyped"}, {w.Args != nil, args, "args"}} {
			if f.set && !f.ok {
				return fmt.Errorf("a %q expression has no %q field", w.Expr, f.name)
			}
		}
		return nil
	}
	switch w.Expr {
	case "col":
		if err := allow(true, false, true, false, false, false); err != nil {
			return nil, err
		}
		if w.Index == nil {
			return nil, errors.New("a \"col\" expression needs an index")
		}
		c := &ColRef{Index: *w.Index, T: t}
		if w.Name != nil {
			c.Name = *w.Name
		}
		return c, nil
	case "const":
		if err := allow(false, false, false, true, true, false); err != nil {
			return nil, err
		}
		v, err := decodeValue(w.Value)
		if err != nil {
			return nil, err
		}
		return &Const{Value: v, T: t, Untyped: w.Untyped}, nil
	case "param":
		if err := allow(false, true, false, false, false, false); err != nil {
			return nil, err
		}
		if w.N == nil {
			return nil, errors.New("a \"param\" expression needs n")
		}
		return &Param{N: *w.N, T: t}, nil
	case "func":
		if err := allow(false, false, true, false, false, true); err != nil {
			return nil, err
		}
		if w.Name == nil {
			return nil, errors.New("a \"func\" expression needs a name")
		}
		f := &Func{Name: *w.Name, T: t}
		if w.Args != nil {
			if f.Args, err = decodeExprs(*w.Args); err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name, err)
			}
		}
		return f, nil
	}
	return nil, fmt.Errorf("unknown expression tag %q", w.Expr)
}

func decodeValue(w *wireValue) (any, error) {
	if w == nil {
		return nil, nil
	}
	n := 0
	for _, set := range []bool{w.Bool != nil, w.Int64 != nil, w.Float64 != nil, w.String != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("a constant value needs exactly one of bool, int64, float64, string (got %d)", n)
	}
	switch {
	case w.Bool != nil:
		return *w.Bool, nil
	case w.Int64 != nil:
		v, err := strconv.ParseInt(*w.Int64, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("int64 constant: %w", err)
		}
		return v, nil
	case w.Float64 != nil:
		v, err := strconv.ParseFloat(*w.Float64, 64)
		if err != nil {
			return nil, fmt.Errorf("float64 constant: %w", err)
		}
		return v, nil
	}
	return *w.String, nil
}

// ---- consistency ----

// checkQuery checks that q's references are in range: see checkPhysical.
func checkQuery(q *ContinuousQuery) error {
	if q.Plan == nil {
		return errors.New("query has no plan")
	}
	if err := checkIndexes("key", q.Key, len(q.Columns)); err != nil {
		return err
	}
	if q.EventTime < -1 || q.EventTime >= len(q.Columns) {
		return fmt.Errorf("event-time column %d out of range (%d columns)", q.EventTime, len(q.Columns))
	}
	return checkPhysical(q.Plan)
}

// checkPhysical checks what the runtime and EXPLAIN index without looking:
// stage ids and sides, and every column reference (partition keys, source
// indexes, operator columns, ColRefs in expressions) against the schema it
// refers to. It does not judge the plan's meaning (window sizes, function
// names); exec does when it builds the operators.
func checkPhysical(p *Physical) error {
	if len(p.Stages) == 0 {
		return errors.New("plan has no stages")
	}
	for i, st := range p.Stages {
		if err := checkStage(p, i, st); err != nil {
			return fmt.Errorf("stage %d: %w", i, err)
		}
	}
	return nil
}

func checkStage(p *Physical, i int, st *Stage) error {
	if st == nil {
		return errors.New("nil stage")
	}
	if st.ID != i {
		return fmt.Errorf("id %d at position %d", st.ID, i)
	}
	if st.Parallelism < 1 {
		return fmt.Errorf("parallelism %d", st.Parallelism)
	}
	if err := checkIndexes("partition key", st.PartitionBy, len(st.Input)); err != nil {
		return err
	}
	if src := st.Source; src != nil {
		if len(st.Sides) > 0 {
			return errors.New("a source stage has no sides")
		}
		if err := checkSource(src); err != nil {
			return fmt.Errorf("source: %w", err)
		}
	} else if len(st.Sides) < 1 || len(st.Sides) > 2 {
		return fmt.Errorf("%d sides (want 1 or 2)", len(st.Sides))
	}
	if len(st.Sides) == 2 && len(st.Ops) == 0 {
		return errors.New("a stage with two sides starts with a join")
	}
	for j, s := range st.Sides {
		if s.Stage < 0 || s.Stage >= i {
			return fmt.Errorf("side %d reads stage %d, which does not come before it", j, s.Stage)
		}
		if err := checkIndexes("side partition key", s.PartitionBy, len(s.Columns)); err != nil {
			return fmt.Errorf("side %d: %w", j, err)
		}
	}
	in := st.Input
	for j, op := range st.Ops {
		if err := checkOp(st, j, op, in); err != nil {
			return fmt.Errorf("op %d: %w", j, err)
		}
		in = op.Columns()
	}
	return nil
}

func checkSource(src *Source) error {
	width := -1 // unknown: a table's columns are not in the plan
	if s := src.Stream; s != nil {
		width = len(s.Columns)
		if s.EventTime < -1 || s.EventTime >= len(s.Columns) {
			return fmt.Errorf("stream %q: event-time column %d out of range", s.Name, s.EventTime)
		}
	}
	if q := src.Query; q != nil {
		width = len(q.Columns)
		if err := checkIndexes("key", q.Key, len(q.Columns)); err != nil {
			return fmt.Errorf("continuous query %q: %w", q.Name, err)
		}
		if q.EventTime < -1 || q.EventTime >= len(q.Columns) {
			return fmt.Errorf("continuous query %q: event-time column %d out of range", q.Name, q.EventTime)
		}
	}
	if width >= 0 {
		return checkIndexes("source column", src.Indexes, width)
	}
	for _, x := range src.Indexes {
		if x < 0 {
			return fmt.Errorf("source column %d out of range", x)
		}
	}
	return nil
}

func checkOp(st *Stage, j int, op Op, in []Column) error {
	if _, ok := op.(*JoinOp); ok != (j == 0 && len(st.Sides) == 2) {
		return errors.New("a join is the first operator of a stage with two sides, and only there")
	}
	switch x := op.(type) {
	case *CalcOp:
		if x.Filter != nil {
			if err := checkExpr(x.Filter, len(in)); err != nil {
				return fmt.Errorf("calc filter: %w", err)
			}
		}
		if x.Exprs == nil {
			if len(x.Out) != len(in) {
				return fmt.Errorf("calc keeps %d input columns but has %d output columns", len(in), len(x.Out))
			}
			return nil
		}
		if len(x.Out) != len(x.Exprs) || (x.Names != nil && len(x.Names) != len(x.Exprs)) {
			return fmt.Errorf("calc has %d expressions, %d names and %d output columns", len(x.Exprs), len(x.Names), len(x.Out))
		}
		for _, e := range x.Exprs {
			if err := checkExpr(e, len(in)); err != nil {
				return fmt.Errorf("calc: %w", err)
			}
		}
	case *AggOp:
		return checkAgg(x, len(in))
	case *SortOp:
		if len(x.Out) != len(in) {
			return fmt.Errorf("sort has %d input and %d output columns", len(in), len(x.Out))
		}
		for _, k := range x.Keys {
			if k.Col < 0 || k.Col >= len(x.Out) {
				return fmt.Errorf("sort column %d out of range (%d columns)", k.Col, len(x.Out))
			}
		}
	case *JoinOp:
		return checkJoin(x, st.Sides[0].Columns, st.Sides[1].Columns)
	case *OverOp:
		return checkOver(x, in)
	case nil:
		return errors.New("nil operator")
	}
	return nil
}

func checkAgg(a *AggOp, width int) error {
	if len(a.KeyNames) != len(a.Keys) {
		return fmt.Errorf("aggregate has %d keys and %d key names", len(a.Keys), len(a.KeyNames))
	}
	if err := checkIndexes("aggregate key", a.Keys, width); err != nil {
		return err
	}
	for _, x := range a.Aggs {
		if x.Arg < -1 || x.Arg >= width || (x.Arg < 0 && x.Kind != AggCountStar) {
			return fmt.Errorf("aggregate %q reads column %d (%d columns)", x.Name, x.Arg, width)
		}
	}
	want := len(a.Keys) + len(a.Aggs)
	if a.Mode == AggUpdating {
		want++
	}
	if a.Window != nil {
		want += 2
		if a.Window.TimeCol < 0 || a.Window.TimeCol >= width {
			return fmt.Errorf("window time column %d out of range (%d columns)", a.Window.TimeCol, width)
		}
	}
	if len(a.Out) != want {
		return fmt.Errorf("aggregate has %d output columns, want %d", len(a.Out), want)
	}
	return nil
}

func checkJoin(j *JoinOp, left, right []Column) error {
	if len(j.RightKeys) != len(j.LeftKeys) || len(j.KeyNames) != len(j.LeftKeys) {
		return fmt.Errorf("join has %d left keys, %d right keys and %d key names", len(j.LeftKeys), len(j.RightKeys), len(j.KeyNames))
	}
	if err := checkIndexes("left join key", j.LeftKeys, len(left)); err != nil {
		return err
	}
	if err := checkIndexes("right join key", j.RightKeys, len(right)); err != nil {
		return err
	}
	if j.Kind == JoinInterval {
		if j.LeftTime < 0 || j.LeftTime >= len(left) || j.RightTime < 0 || j.RightTime >= len(right) {
			return fmt.Errorf("join time columns %d, %d out of range (%d, %d columns)", j.LeftTime, j.RightTime, len(left), len(right))
		}
	}
	if j.OpCol < -1 || j.OpCol >= len(right) {
		return fmt.Errorf("join op column %d out of range (%d columns)", j.OpCol, len(right))
	}
	if j.Residual != nil {
		if err := checkExpr(j.Residual, len(j.Out)); err != nil {
			return fmt.Errorf("join residual: %w", err)
		}
	}
	return nil
}

func checkOver(o *OverOp, in []Column) error {
	if err := checkIndexes("partition column", o.PartitionBy, len(in)); err != nil {
		return err
	}
	if o.TimeCol < 0 || o.TimeCol >= len(in) {
		return fmt.Errorf("over time column %d out of range (%d columns)", o.TimeCol, len(in))
	}
	for _, c := range o.Calls {
		if c.Arg == nil {
			if c.Kind != OverRowNumber && c.Kind != OverCountStar {
				return fmt.Errorf("window function %q (%s) needs an argument", c.Name, c.Kind)
			}
		} else if err := checkExpr(c.Arg, len(in)); err != nil {
			return fmt.Errorf("window function %q: %w", c.Name, err)
		}
		if c.DefaultExpr != nil {
			// A constant: it reads no column.
			if err := checkExpr(c.DefaultExpr, 0); err != nil {
				return fmt.Errorf("window function %q default: %w", c.Name, err)
			}
		}
	}
	if len(o.Out) != len(in)+len(o.Calls) {
		return fmt.Errorf("over has %d output columns, want %d", len(o.Out), len(in)+len(o.Calls))
	}
	return nil
}

// describeDecoded sets the EXPLAIN text of a decoded plan's OVER operators
// that the encoding left to recompute. p has passed checkPhysical.
func describeDecoded(p *Physical) {
	for _, st := range p.Stages {
		in := st.Input
		for _, op := range st.Ops {
			if o, ok := op.(*OverOp); ok && o.desc == "" {
				o.desc = overDesc(o, in)
			}
			in = op.Columns()
		}
	}
}

// checkExpr checks e's column references against an input of width
// columns, and the arity of the functions Func.String renders by position.
func checkExpr(e Expr, width int) error {
	switch x := e.(type) {
	case nil:
		return errors.New("nil expression")
	case *ColRef:
		if x.Index < 0 || x.Index >= width {
			return fmt.Errorf("column %d (%s) out of range (%d columns)", x.Index, x.Name, width)
		}
	case *Param:
		if x.N < 1 {
			return fmt.Errorf("parameter $%d", x.N)
		}
	case *Func:
		switch x.Name {
		case "neg", "not", "cast", "is_null", "is_not_null", "is_true", "is_false", "is_not_true", "is_not_false":
			if len(x.Args) < 1 {
				return fmt.Errorf("%s needs an argument", x.Name)
			}
		}
		for _, a := range x.Args {
			if err := checkExpr(a, width); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkIndexes(what string, idx []int, width int) error {
	for _, x := range idx {
		if x < 0 || x >= width {
			return fmt.Errorf("%s %d out of range (%d columns)", what, x, width)
		}
	}
	return nil
}
