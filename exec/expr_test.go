package exec

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var testSchema = arrow.NewSchema([]arrow.Field{
	{Name: "a", Type: tInt, Nullable: true},
	{Name: "b", Type: tInt, Nullable: true},
	{Name: "x", Type: tFloat, Nullable: true},
	{Name: "s", Type: tText, Nullable: true},
	{Name: "p", Type: tBool, Nullable: true},
	{Name: "q", Type: tBool, Nullable: true},
	{Name: "ts", Type: tTS, Nullable: true},
	{Name: "iv", Type: tIntv, Nullable: true},
}, nil)

func col(i int) Expr { return ColRef{Index: i, Type: testSchema.Field(i).Type} }
func lit(v any) Expr {
	switch v.(type) {
	case nil:
		return Literal{Type: arrow.Null}
	case bool:
		return Literal{Type: tBool, Value: v}
	case int64:
		return Literal{Type: tInt, Value: v}
	case int:
		return Literal{Type: tInt, Value: int64(v.(int))}
	case float64:
		return Literal{Type: tFloat, Value: v}
	case string:
		return Literal{Type: tText, Value: v}
	}
	panic("lit")
}
func call(fn string, t arrow.DataType, args ...Expr) Expr { return Call{Fn: fn, Args: args, Type: t} }

// evalRowsExpr evaluates e over rows of testSchema.
func evalRowsExpr(t *testing.T, rows [][]any, e Expr) ([]any, error) {
	return evalRowsExprSlice(t, rows, e, 0, len(rows))
}

// evalRowsExprSlice evaluates e over rows[lo:hi] as a zero-copy slice of a
// batch of all rows (non-zero array offsets).
func evalRowsExprSlice(t *testing.T, rows [][]any, e Expr, lo, hi int) ([]any, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ev, err := Compile(e, testSchema, WithAllocator(mem))
	if err != nil {
		return nil, err
	}
	rec, err := RecordFromValues(testSchema, rows, WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	sl := rec.NewSlice(int64(lo), int64(hi))
	defer sl.Release()
	arr, err := ev.Eval(sl)
	if err != nil {
		return nil, err
	}
	defer arr.Release()
	if arr.Len() != hi-lo {
		t.Fatalf("result has %d rows, want %d", arr.Len(), hi-lo)
	}
	out := make([]any, arr.Len())
	for i := range out {
		out[i] = valueAt(arr, i)
	}
	return out, nil
}

func row(a, b, x, s, p, q, ts, iv any) []any { return []any{a, b, x, s, p, q, ts, iv} }

var exprRows = [][]any{
	row(int64(7), int64(2), 1.5, "hello", true, false, int64(1704164645123456), int64(60000000)),
	row(int64(-7), int64(2), -2.5, "World", false, nil, int64(0), int64(-1000000)),
	row(nil, int64(0), nil, nil, nil, true, nil, nil),
	row(int64(5), nil, 2.0, "", true, true, int64(-1), int64(93600000000)),
}

func TestExprBasics(t *testing.T) {
	cases := []struct {
		name string
		e    Expr
		want []any
	}{
		{"add", call("+", tInt, col(0), col(1)), []any{int64(9), int64(-5), nil, nil}},
		{"div_trunc", call("/", tInt, col(0), lit(2)), []any{int64(3), int64(-3), nil, int64(2)}},
		{"mod", call("%", tInt, col(0), lit(3)), []any{int64(1), int64(-1), nil, int64(2)}},
		{"neg", call("neg", tInt, col(0)), []any{int64(-7), int64(7), nil, int64(-5)}},
		{"fmul", call("*", tFloat, col(2), lit(2.0)), []any{3.0, -5.0, nil, 4.0}},
		{"mixed", call("+", tFloat, col(0), col(2)), []any{8.5, -9.5, nil, 7.0}},
		{"lt", call("<", tBool, col(0), col(1)), []any{false, true, nil, nil}},
		{"eq_text", call("=", tBool, col(3), lit("hello")), []any{true, false, nil, false}},
		{"and", call("and", tBool, col(4), col(5)), []any{false, false, nil, true}},
		{"or", call("or", tBool, col(4), col(5)), []any{true, nil, true, true}},
		{"not", call("not", tBool, col(5)), []any{true, nil, false, false}},
		{"is_null", call("is_null", tBool, col(0)), []any{false, false, true, false}},
		{"is_not_true", call("is_not_true", tBool, col(5)), []any{true, true, false, false}},
		{"distinct", call("is_distinct", tBool, col(0), lit(nil)), []any{true, true, false, true}},
		{"not_distinct", call("is_not_distinct", tBool, col(1), lit(2)), []any{true, true, false, false}},
		{"coalesce", call("coalesce", tInt, col(0), col(1), lit(99)), []any{int64(7), int64(-7), int64(0), int64(5)}},
		{"nullif", call("nullif", tInt, col(0), lit(5)), []any{int64(7), int64(-7), nil, nil}},
		{"greatest", call("greatest", tInt, col(0), col(1)), []any{int64(7), int64(2), int64(0), int64(5)}},
		{"least", call("least", tInt, col(0), col(1)), []any{int64(2), int64(-7), int64(0), int64(5)}},
		{"in", call("in", tBool, col(0), lit(5), lit(7)), []any{true, false, nil, true}},
		{"in_null", call("in", tBool, col(0), lit(5), lit(nil)), []any{nil, nil, nil, true}},
		{"in_set", call("in", tBool, col(0), lit(5), lit(7), lit(8), lit(9)), []any{true, false, nil, true}},
		{"in_set_null", call("in", tBool, col(0), lit(5), lit(nil), lit(8), lit(9)), []any{nil, nil, nil, true}},
		{"in_set_text", call("in", tBool, col(3), lit("x"), lit("hello"), lit(""), lit("y")), []any{true, false, nil, true}},
		{"promised_type", call("+", tFloat, col(0), col(1)), []any{9.0, -5.0, nil, nil}},
		{"not_in", call("not_in", tBool, col(0), lit(5), lit(1)), []any{true, true, nil, false}},
		{"case", call("case", tText, call(">", tBool, col(0), lit(0)), lit("pos"), call("<", tBool, col(0), lit(0)), lit("neg"), lit("other")), []any{"pos", "neg", "other", "pos"}},
		{"case_noelse", call("case", tInt, call(">", tBool, col(0), lit(0)), col(1)), []any{int64(2), nil, nil, nil}},
		{"case_lazy", call("case", tInt, call("=", tBool, col(1), lit(0)), lit(-1), call("/", tInt, col(0), col(1))), []any{int64(3), int64(-3), int64(-1), nil}},
		{"and_lazy", call("and", tBool, call("<>", tBool, col(1), lit(0)), call(">", tBool, call("/", tInt, col(0), col(1)), lit(0))), []any{true, false, false, nil}},
		{"cast_text_int", call("cast", tInt, lit(" 42 ")), []any{int64(42), int64(42), int64(42), int64(42)}},
		{"cast_int_text", call("cast", tText, col(0)), []any{"7", "-7", nil, "5"}},
		{"cast_float_int", call("cast", tInt, col(2)), []any{int64(2), int64(-2), nil, int64(2)}},
		{"cast_numeric_const", call("cast", tInt, lit(2.5)), []any{int64(3), int64(3), int64(3), int64(3)}},
		{"cast_float8_const", call("cast", tInt, call("cast", tFloat, lit(2.5))), []any{int64(2), int64(2), int64(2), int64(2)}},
		{"concat_fn", call("concat_ignore_nulls", tText, lit("a"), col(0), lit(nil), col(4)), []any{"a7t", "a-7f", "a", "a5t"}},
		{"concat_ws", call("concat_ws", tText, lit("-"), col(3), col(0)), []any{"hello-7", "World--7", "", "-5"}},
		{"cast_bool_text", call("cast", tText, col(4)), []any{"true", "false", nil, "true"}},
		{"cast_ts_text", call("cast", tText, col(6)), []any{"2024-01-02 03:04:05.123456", "1970-01-01 00:00:00", nil, "1969-12-31 23:59:59.999999"}},
		{"cast_iv_text", call("cast", tText, col(7)), []any{"00:01:00", "-00:00:01", nil, "1 day 02:00:00"}},
		{"cast_text_bool", call("cast", tBool, lit("yes")), []any{true, true, true, true}},
		{"ts_plus_iv", call("+", tTS, col(6), col(7)), []any{int64(1704164645123456 + 60000000), int64(-1000000), nil, int64(93600000000 - 1)}},
		{"ts_minus_ts", call("-", tIntv, col(6), col(6)), []any{int64(0), int64(0), nil, int64(0)}},
		{"like", call("like", tBool, col(3), lit("h%o")), []any{true, false, nil, false}},
		{"like_underscore", call("like", tBool, col(3), lit("_orld")), []any{false, true, nil, false}},
		{"ilike", call("ilike", tBool, col(3), lit("w%")), []any{false, true, nil, false}},
		{"like_escape", call("like", tBool, lit("a%b"), lit(`a\%b`)), []any{true, true, true, true}},
		{"regexp", call("regexp", tBool, col(3), lit("^h.l")), []any{true, false, nil, false}},
		{"regexp_i", call("regexp_i", tBool, col(3), lit("^WOR")), []any{false, true, nil, false}},
		{"concat", call("concat", tText, col(3), lit("!")), []any{"hello!", "World!", nil, "!"}},
		{"upper", call("upper", tText, col(3)), []any{"HELLO", "WORLD", nil, ""}},
		{"length", call("length", tInt, col(3)), []any{int64(5), int64(5), nil, int64(0)}},
		{"substr", call("substr", tText, col(3), lit(2), lit(3)), []any{"ell", "orl", nil, ""}},
		{"substr_neg", call("substr", tText, lit("hello"), lit(-1), lit(3)), []any{"h", "h", "h", "h"}},
		{"left_neg", call("left", tText, lit("hello"), lit(-2)), []any{"hel", "hel", "hel", "hel"}},
		{"right", call("right", tText, lit("hello"), lit(2)), []any{"lo", "lo", "lo", "lo"}},
		{"strpos", call("strpos", tInt, col(3), lit("l")), []any{int64(3), int64(4), nil, int64(0)}},
		{"replace", call("replace", tText, col(3), lit("l"), lit("L")), []any{"heLLo", "WorLd", nil, ""}},
		{"trim", call("trim", tText, lit("  x  ")), []any{"x", "x", "x", "x"}},
		{"md5", call("md5", tText, lit("abc")), []any{"900150983cd24fb0d6963f7d28e17f72", "900150983cd24fb0d6963f7d28e17f72", "900150983cd24fb0d6963f7d28e17f72", "900150983cd24fb0d6963f7d28e17f72"}},
		{"abs", call("abs", tInt, col(0)), []any{int64(7), int64(7), nil, int64(5)}},
		{"round", call("round", tFloat, col(2)), []any{2.0, -3.0, nil, 2.0}},
		{"round2", call("round", tFloat, lit(2.345), lit(2)), []any{2.35, 2.35, 2.35, 2.35}},
		{"floor", call("floor", tFloat, col(2)), []any{1.0, -3.0, nil, 2.0}},
		{"power", call("power", tFloat, lit(2.0), lit(10.0)), []any{1024.0, 1024.0, 1024.0, 1024.0}},
		{"date_trunc_hour", call("date_trunc", tTS, lit("hour"), col(6)), []any{int64(1704164400000000), int64(0), nil, int64(-3600000000)}},
		{"date_trunc_month", call("date_trunc", tTS, lit("month"), col(6)), []any{int64(1704067200000000), int64(0), nil, int64(-31 * 86400000000)}},
		{"date_part_second", call("date_part", tFloat, lit("second"), col(6)), []any{5.123456, 0.0, nil, 59.999999}},
		{"date_part_dow", call("date_part", tFloat, lit("dow"), col(6)), []any{2.0, 4.0, nil, 3.0}},
		{"date_part_epoch", call("date_part", tFloat, lit("epoch"), col(6)), []any{1704164645.123456, 0.0, nil, -0.000001}},
		{"date_part_iv_hour", call("date_part", tFloat, lit("hour"), col(7)), []any{0.0, 0.0, nil, 2.0}},
		{"to_timestamp", call("to_timestamp", tTS, lit(1.5)), []any{int64(1500000), int64(1500000), int64(1500000), int64(1500000)}},
		{"epoch_us", call("epoch_us", tInt, col(6)), []any{int64(1704164645123456), int64(0), nil, int64(-1)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := evalRowsExpr(t, exprRows, c.e)
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			// the same on a slice with a non-zero offset
			sub, err := evalRowsExprSlice(t, exprRows, c.e, 1, len(exprRows))
			if err != nil {
				t.Fatalf("slice: %v", err)
			}
			for i := range sub {
				if rowKey([]any{sub[i]}) != rowKey([]any{got[i+1]}) {
					t.Fatalf("slice row %d: got %v, want %v", i, sub[i], got[i+1])
				}
			}
			for i := range got {
				if f, ok := got[i].(float64); ok {
					if w, ok := c.want[i].(float64); ok && math.Abs(f-w) < 1e-9 {
						continue
					}
				}
				if got[i] != c.want[i] {
					t.Fatalf("row %d: got %v (%T), want %v (%T)", i, got[i], got[i], c.want[i], c.want[i])
				}
			}
		})
	}
}

func TestExprErrors(t *testing.T) {
	cases := []struct {
		name, code, msg string
		e               Expr
	}{
		{"div0", "22012", "division by zero", call("/", tInt, col(0), lit(0))},
		{"mod0", "22012", "division by zero", call("%", tInt, col(0), lit(0))},
		{"fdiv0", "22012", "division by zero", call("/", tFloat, col(2), lit(0.0))},
		{"overflow", "22003", "bigint out of range", call("*", tInt, lit(int64(math.MaxInt64)), lit(2))},
		{"add_overflow", "22003", "bigint out of range", call("+", tInt, lit(int64(math.MaxInt64)), lit(1))},
		{"bad_int", "22P02", `invalid input syntax for type bigint: "abc"`, call("cast", tInt, lit("abc"))},
		{"bad_bool", "22P02", `invalid input syntax for type boolean: "maybe"`, call("cast", tBool, lit("maybe"))},
		{"big_float_int", "22003", "bigint out of range", call("cast", tInt, lit(1e30))},
		{"sqrt_neg", "2201F", "cannot take square root of a negative number", call("sqrt", tFloat, lit(-1.0))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := evalRowsExpr(t, exprRows, c.e)
			var se interface{ SQLState() string }
			if !errors.As(err, &se) {
				t.Fatalf("want SQL error %s, got %v", c.code, err)
			}
			if se.SQLState() != c.code || err.Error() != c.msg {
				t.Fatalf("got %s %q, want %s %q", se.SQLState(), err.Error(), c.code, c.msg)
			}
		})
	}
	// Division by zero on a NULL row is not an error.
	got, err := evalRowsExpr(t, [][]any{row(nil, int64(0), nil, nil, nil, nil, nil, nil)}, call("/", tInt, col(0), col(1)))
	if err != nil || got[0] != nil {
		t.Fatalf("NULL / 0: got %v, %v", got, err)
	}
}

func TestCalc(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: tInt, Nullable: true},
		{Name: "v", Type: tFloat, Nullable: true},
		{Name: "s", Type: tText, Nullable: true},
	}, nil)
	var rows [][]any
	for i := 0; i < 50; i++ {
		rows = append(rows, []any{int64(i % 5), float64(i) / 2, string(rune('a' + i%26))})
	}
	c0 := ColRef{Index: 0, Type: tInt}
	c1 := ColRef{Index: 1, Type: tFloat}
	c2 := ColRef{Index: 2, Type: tText}
	filter := Call{Fn: "<>", Type: tBool, Args: []Expr{c0, Literal{Type: tInt, Value: int64(0)}}}
	exprs := []Expr{c2, Call{Fn: "/", Type: tInt, Args: []Expr{Literal{Type: tInt, Value: int64(100)}, c0}}, c1}
	runOpTest(t, opTest{
		schema:   schema,
		input:    rowsItems(rows),
		nullCols: []int{0, 1, 2},
		build: func(mem memory.Allocator) (Operator, error) {
			return NewCalc(schema, filter, exprs, []string{"s", "q", "v"}, WithAllocator(mem))
		},
		ordered: true,
		ref: func(in []item) [][]any {
			var out [][]any
			for _, it := range in {
				r := it.row
				if r == nil || r[0] == nil || r[0].(int64) == 0 {
					continue
				}
				out = append(out, []any{r[2], 100 / r[0].(int64), r[1]})
			}
			return out
		},
	})
	// Pass-through: no filter, ColRef projection shares memory.
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	c, err := NewCalc(schema, nil, []Expr{c1, c0}, []string{"v", "k"}, WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec, _ := RecordFromValues(schema, rows, WithAllocator(mem))
	defer rec.Release()
	err = c.Push(rec, func(out arrow.RecordBatch) error {
		if out.Column(0).Data().Buffers()[1] != rec.Column(1).Data().Buffers()[1] {
			t.Fatal("ColRef projection copied data")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestToCharAnyFormat: any format, of pattern letters, prefixes,
// suffixes, quotes and backslashes cut anywhere, formats any timestamp
// without failing (PostgreSQL prints what is no pattern as it is).
func TestToCharAnyFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const alphabet = `YMDHISFUJQWCRTOABP.,"\ th9`
	for range 20000 {
		f := make([]byte, rng.IntN(12))
		for i := range f {
			f[i] = alphabet[rng.IntN(len(alphabet))]
		}
		us := rng.Int64N(400*365*86400*1e6) - 200*365*86400*1e6
		if out := appendToChar(nil, parseCharFormat(string(f)), us); len(out) > 40*len(f)+1 {
			t.Fatalf("to_char(%d, %q) = %q", us, f, out)
		}
	}
}
