// Package exec holds Spate's vectorized operators over Apache Arrow record
// batches: expression evaluation, filter and projection, hash aggregation with
// event-time windows, sort and limit for snapshot queries, the COPY decoder,
// and the state primitives (Checkpoint, Restore, Partition) that the runtime
// uses for recovery and scale-out.
//
// exec imports nothing of Spate's: plans arrive as plain values built by the
// cluster package from the planner's physical DAG.
//
// # Physical types
//
// Every SQL type maps onto one Arrow type, and the kernels work on a small
// set of physical layouts:
//
//	BOOLEAN                -> arrow.FixedWidthTypes.Boolean
//	INT, BIGINT            -> arrow.PrimitiveTypes.Int64 (INT is range-checked on ingest)
//	DOUBLE, NUMERIC        -> arrow.PrimitiveTypes.Float64
//	TEXT, VARCHAR          -> arrow.BinaryTypes.String
//	TIMESTAMP              -> arrow.FixedWidthTypes.Timestamp_us (int64 µs since the epoch, no zone)
//	INTERVAL               -> arrow.FixedWidthTypes.Duration_us (int64 µs; a month counts as 30 days)
//
// Int64, Timestamp_us and Duration_us share the int64 layout; kernels read
// them through Int64s.
//
// # Ownership
//
// A record passed to an operator is owned by the caller and valid only for
// the duration of the call; an operator that keeps it calls Retain. A record
// passed to an Emit callback is valid only for the duration of that call; the
// receiver calls Retain to keep it. Operators release everything they hold in
// Close, which is idempotent.
//
// # Allocation
//
// Constructors take optional Options; WithAllocator sets the
// memory.Allocator every Arrow buffer an operator creates comes from
// (default memory.DefaultAllocator). Tests pass a memory.CheckedAllocator
// to prove that every buffer is returned once outputs are released and the
// operator is closed.
package exec

import (
	"github.com/apache/arrow-go/v18/arrow"
)

// Emit receives one output batch. The batch is valid only during the call;
// the receiver retains it to keep it. An error stops the producer, which
// returns it unchanged.
type Emit func(rec arrow.RecordBatch) error

// Operator is the contract every operator implements. Operators are push
// based: streams are unbounded and watermarks are events, so the runtime
// feeds batches and watermarks in and the operator emits what they complete.
// An Operator is not safe for concurrent use; one instance goroutine drives it.
type Operator interface {
	// Schema is the schema of every batch the operator emits.
	Schema() *arrow.Schema
	// Push processes one input batch (owned by the caller).
	Push(rec arrow.RecordBatch, emit Emit) error
	// Advance tells the operator that event time (µs since the epoch) has
	// reached wm: rows with an earlier event time that still arrive are late.
	// Windowed operators emit the windows that end at or before wm.
	Advance(wm int64, emit Emit) error
	// Finish signals the end of a bounded input (snapshot queries, tests):
	// the operator emits everything it still holds.
	Finish(emit Emit) error
	// Close releases all memory the operator holds. Idempotent.
	Close()
}

// Stats are counters an operator reports for SHOW CONTINUOUS QUERIES and
// SHOW INSTANCES. All fields are totals since the operator was created or
// restored.
type Stats struct {
	RowsIn     int64 // rows pushed in
	RowsOut    int64 // rows emitted
	LateRows   int64 // rows that arrived after the watermark closed their window; counted, not aggregated
	StateRows  int64 // rows of state currently held (groups, open windows)
	StateBytes int64 // approximate bytes of state currently held
}

// StatsReporter is implemented by operators that keep counters.
type StatsReporter interface {
	Stats() Stats
}

// WatermarkHolder is implemented by operators that emit some rows after
// the watermark has passed their event time (OVER with LEAD). HeldBack
// returns the smallest event time (µs) of such rows still to come; the
// runtime keeps the operator's output watermark at or below it.
type WatermarkHolder interface {
	HeldBack() (t int64, ok bool)
}

// Snapshot is an immutable copy of an operator's state: Arrow batches plus
// the input positions they cover. Snapshots are safe to share between
// goroutines; Release drops the batches.
type Snapshot struct {
	// Kind names the operator that produced it, e.g. "hash_aggregate".
	Kind string
	// Batches hold the state rows. Every batch has a uint64 column named
	// "__key_hash" with the hash of the row's group key (see HashColumns),
	// which Partition splits on.
	Batches []arrow.RecordBatch
	// Meta holds small scalar state (watermark, counters) as strings.
	Meta map[string]string
	// Positions maps an input channel name to the last sequence number the
	// snapshot covers. Filled in by the runtime, not by operators.
	Positions map[string]uint64
}

// Stateful is implemented by operators whose state must survive failures
// and be split on scale-out.
type Stateful interface {
	Operator
	// Checkpoint returns an immutable snapshot of the current state. The
	// operator may keep running after it returns.
	Checkpoint() (*Snapshot, error)
	// Restore replaces the operator's state with the snapshot's. The caller
	// keeps ownership of the snapshot.
	Restore(snap *Snapshot) error
}

// Expr is an expression over the columns of one input batch. Exprs are plain
// values; Compile turns one into an evaluator. Types are Arrow types chosen by
// the planner: the kernels expect the argument types the planner promised.
type Expr interface{ exprNode() }

// ColRef reads input column Index.
type ColRef struct {
	Index int
	Type  arrow.DataType
}

// Literal is a constant. Value is nil (NULL), bool, int64, float64 or string;
// timestamps and intervals are int64 microseconds.
type Literal struct {
	Type  arrow.DataType
	Value any
}

// Call applies the function Fn to Args; Type is the result type.
//
// Functions (argument types after the planner's implicit casts):
//
//	arithmetic  "+" "-" "*" "/" "%" (int64,int64 | float64,float64 | ts±interval | ts-ts | interval*int64), "neg"
//	comparison  "=" "<>" "<" "<=" ">" ">=" over equal types; "is_distinct", "is_not_distinct"
//	logic       "and" "or" "not" (three-valued); "is_null" "is_not_null" "is_true" "is_false" "is_not_true" "is_not_false"
//	patterns    "like" "not_like" "ilike" "not_ilike" "regexp" "not_regexp" "regexp_i" "not_regexp_i"
//	sets        "in" (arg 0 against args 1..n), "not_in"
//	conditional "case" (args: when1, then1, when2, then2, ..., [else]; odd count means an else), "coalesce", "nullif", "greatest", "least"
//	strings     "concat" (||, NULL if any NULL), "concat_ignore_nulls" (the SQL concat() function: NULLs skipped,
//	            values printed by their output function), "concat_ws"(sep, ...),
//	            "lower" "upper" "length" "substr"(s, from[, len]) "trim"(s[, chars]) "ltrim" "rtrim"
//	            "replace"(s, from, to) "strpos"(s, sub) "left"(s,n) "right"(s,n) "starts_with"(s, prefix) "repeat"(s,n) "reverse" "md5"
//	math        "abs" "round"(x[, digits]) "floor" "ceil" "sqrt" "power" "ln" "log10" "exp" "sign" "mod"
//	time        "date_trunc"(unit text, ts) "date_part"(field text, ts|interval) -> float64 "to_timestamp"(float64 seconds) "to_char"(ts, format text)
//	            "epoch_us"(ts) -> int64
//	casts       "cast" (one argument; to Type): between any two types, text parsing as PostgreSQL does;
//	            double -> bigint rounds ties to even (float8) except for a Literal argument, a NUMERIC
//	            constant, which rounds ties away from zero (2.5::int = 3; keep an explicit ::float8 on a
//	            constant as a cast node to get 2.5::float8::int = 2)
//	windows     "tumble_start"(t, size), "hop_start"... are not functions: windows are AggConfig.Window.
//
// Errors at run time (division by zero 22012, invalid cast 22P02, out of
// range 22003) carry a SQLSTATE through the SQLState method.
type Call struct {
	Fn   string
	Args []Expr
	Type arrow.DataType
}

func (ColRef) exprNode()  {}
func (Literal) exprNode() {}
func (Call) exprNode()    {}

// AggKind is an aggregate function.
type AggKind uint8

const (
	AggCountStar     AggKind = iota // COUNT(*): Arg is -1
	AggCount                        // COUNT(x): non-null values
	AggCountDistinct                // COUNT(DISTINCT x)
	AggSum                          // SUM: int64 -> int64, float64 -> float64, interval -> interval; NULL when no non-null input
	AggAvg                          // AVG: -> float64 (interval -> interval)
	AggMin                          // MIN over any ordered type
	AggMax                          // MAX over any ordered type
)

// AggSpec is one aggregate of a HashAggregate.
type AggSpec struct {
	Kind AggKind
	Arg  int            // input column index; -1 for COUNT(*)
	Name string         // output column name
	Type arrow.DataType // output type
}

// WindowKind is the event-time window of a HashAggregate.
type WindowKind uint8

const (
	WindowNone    WindowKind = iota // updating aggregate: emits a changelog
	WindowTumble                    // fixed, non-overlapping windows of Size
	WindowHop                       // windows of Size starting every Slide
	WindowSession                   // windows per key closed by a gap of Gap without rows
)

// WindowSpec describes event-time windows. All durations are µs.
type WindowSpec struct {
	Kind    WindowKind
	TimeCol int   // input column holding event time (int64 in TimeUnit, or Timestamp_us)
	Size    int64 // tumble and hop
	Slide   int64 // hop
	Gap     int64 // session
	// TimeUnit converts TimeCol values to µs (1 for TIMESTAMP, 1e6 for a
	// BIGINT column of seconds). window_start and window_end are emitted in
	// the column's own type and unit.
	TimeUnit int64
	// Offset (µs) shifts tumble and hop windows: they start at
	// Offset + k·Size (tumble) or Offset + k·Slide (hop) instead of at
	// multiples of the epoch. Default 0.
	Offset int64
}

// AggConfig configures NewHashAggregate.
//
// Output schema: the key columns (named KeyNames, input types), then
// window_start and window_end when windowed, then one column per AggSpec.
// A non-windowed aggregate (WindowNone) emits a changelog instead: its
// first column is "op" (utf8, "+" or "-"), and each input batch produces a
// "-" row with the old values and a "+" row with the new values for every
// group it changed.
type AggConfig struct {
	Keys     []int    // input columns of the group key
	KeyNames []string // output names of the key columns
	Aggs     []AggSpec
	Window   WindowSpec
	// Batch (with WindowNone) aggregates a bounded input: Push emits
	// nothing and Finish emits one row per group, without the "op" column
	// (output: keys, then aggregates). Used for SELECT … GROUP BY over
	// snapshots of tables and continuous-query results.
	Batch bool
}

// BinaryOperator is an operator with two inputs (joins). Side 0 is the
// left (or probe) input, side 1 the right (or build/lookup) input. The
// runtime merges the two inputs' watermarks (the minimum) before calling
// Advance. Ownership rules are those of Operator.
type BinaryOperator interface {
	Schema() *arrow.Schema
	PushSide(side int, rec arrow.RecordBatch, emit Emit) error
	Advance(wm int64, emit Emit) error
	Finish(emit Emit) error
	Close()
}

// StatefulBinary is Stateful for two-input operators (IntervalJoin,
// LookupJoin): the same Checkpoint and Restore contract.
type StatefulBinary interface {
	BinaryOperator
	// Checkpoint returns an immutable snapshot of the current state. The
	// operator may keep running after it returns.
	Checkpoint() (*Snapshot, error)
	// Restore replaces the operator's state with the snapshot's. The caller
	// keeps ownership of the snapshot.
	Restore(snap *Snapshot) error
}

// JoinType is INNER or LEFT OUTER.
type JoinType uint8

// The join types.
const (
	JoinInner JoinType = iota
	JoinLeft
)

// IntervalJoinConfig configures NewIntervalJoin: a stream–stream equi-join
// bounded in event time. A left row l and a right row r match when their
// keys are equal (NULL keys never match), when
//
//	l.time + Lower <= r.time <= l.time + Upper   (times in µs)
//
// and when Residual (if set) is true. Residual is evaluated over the
// concatenated row: left columns first, then right columns.
//
// Output schema: the left columns then the right columns (names as in the
// input schemas; the caller renames). A match is emitted as soon as both
// rows are present, whichever arrives first. For JoinLeft, a left row that
// never matched is emitted with NULL right columns once the watermark
// passes l.time + Upper (no future right row can match). State is
// released when the watermark proves no future match: left rows once
// wm > l.time + Upper, right rows once wm > r.time - Lower. Rows whose
// event time is already behind the watermark on arrival (time < wm, or
// NULL) are counted as late and dropped (Stats.LateRows). Emitted rows do
// not depend on batch boundaries or on how the two inputs interleave (as a
// multiset); rows emitted by one Advance are in a deterministic order (by
// left event time, then the left column values), and so are the matches
// one PushSide emits (by pushed row, then by arrival of the stored row).
// A left row with a NULL key never matches; for JoinLeft it is emitted
// null-padded by the same watermark rule.
type IntervalJoinConfig struct {
	Type                JoinType
	LeftKeys, RightKeys []int
	LeftTime, RightTime int   // event-time columns
	LeftUnit, RightUnit int64 // µs per unit of each time column
	Lower, Upper        int64 // µs
	Residual            Expr
}

// LookupJoinConfig configures NewLookupJoin: a stream (side 0) joined to
// the current contents of a table or of an updating continuous-query
// result (side 1). Side 1 receives a changelog: when OpCol >= 0 that
// column holds "+" or "-" per row (the other columns are the row); when
// OpCol < 0 every row is an insert. The lookup state holds, per key, the
// current rows of side 1 (a multiset). Each side-0 row is joined with the
// rows present when it is pushed (processing-time lookup, like Flink's
// lookup join): INNER drops rows with no match, LEFT emits them with NULL
// right columns. A "-" removes one row equal to it in every column but
// OpCol (NULL equals NULL); a "-" with no equal row is ignored. Side-1
// rows with a NULL key are ignored (they can never match). Residual is
// evaluated over left columns then the right columns (without OpCol).
// Output: left columns, then the right columns without OpCol.
type LookupJoinConfig struct {
	Type                JoinType
	LeftKeys, RightKeys []int
	OpCol               int
	Residual            Expr
}

// OverKind is a function computed by an OVER window.
type OverKind uint8

// The OVER window functions.
const (
	OverRowNumber OverKind = iota // ROW_NUMBER()
	OverLag                       // LAG(arg, Offset[, Default])
	OverLead                      // LEAD(arg, Offset[, Default])
	OverCount                     // COUNT(arg) over the frame
	OverCountStar                 // COUNT(*) over the frame
	OverSum
	OverAvg
	OverMin
	OverMax
)

// OverFunc is one function of an OVER window.
type OverFunc struct {
	Kind    OverKind
	Arg     int // input column; -1 for ROW_NUMBER and COUNT(*)
	Offset  int // LAG/LEAD offset (0 means the default, 1)
	Default any // LAG/LEAD default value (nil = NULL), a Literal value of the argument's type
	// Preceding is the frame for aggregates: ROWS BETWEEN Preceding
	// PRECEDING AND CURRENT ROW; -1 means UNBOUNDED PRECEDING (a running
	// aggregate).
	Preceding int64
	Name      string
	Type      arrow.DataType
}

// OverConfig configures NewOverWindow: functions over rows of the same
// PartitionBy key ordered by event time. A row is held until the
// watermark passes its event time (the first Advance with wm > time: rows
// with time == wm may still arrive), then it is final; within a partition
// final rows are ordered by time, ties broken by the other column values
// (NULLs last), so the output does not depend on arrival order or batch
// boundaries. The rows one Advance emits are ordered by (time, partition
// key values, then the other column values). A row with a LEAD is held
// until its K-th following row in the partition is final, K the largest
// LEAD Offset (or until Finish, where a missing following row gives the
// Default). Per partition the operator keeps only what the frames and
// offsets need. Late rows (event time NULL or behind the watermark on
// arrival) are counted and dropped.
//
// Output schema: the input columns, then one column per OverFunc.
type OverConfig struct {
	PartitionBy []int
	TimeCol     int
	TimeUnit    int64 // µs per unit of TimeCol
	Funcs       []OverFunc
}
