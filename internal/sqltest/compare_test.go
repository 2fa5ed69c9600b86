package sqltest

import (
	"reflect"
	"strings"
	"testing"
)

func TestValue(t *testing.T) {
	if got := Value(nil); got != "NULL" {
		t.Errorf("Value(nil) = %q", got)
	}
	if got := Value([]byte{}); got != "(empty)" {
		t.Errorf("Value(empty) = %q", got)
	}
	if got := Value([]byte("x y")); got != "x y" {
		t.Errorf("Value(x y) = %q", got)
	}
}

func TestFloatsEqual(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"1.5", "1.5", true},
		{"1.5000000000000000", "1.5", true},
		{"0.30000000000000004", "0.3", true},
		{"1e+20", "100000000000000000000", true},
		{"1.000000001", "1", false},
		{"1.0000000000001", "1", true},
		{"0", "-0", true},
		{"0", "1e-300", false},
		{"NaN", "NaN", true},
		{"Infinity", "Infinity", true},
		{"-Infinity", "Infinity", false},
		{"NaN", "1", false},
		{"NULL", "0", false},
		{"NULL", "NULL", true},
		{"abc", "abd", false},
	} {
		if got := FloatsEqual(tc.a, tc.b); got != tc.want {
			t.Errorf("FloatsEqual(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestSplitExpected(t *testing.T) {
	for _, tc := range []struct {
		row  string
		got  []string
		want []string
	}{
		{"1 x 2.5", []string{"1", "x", "2.5"}, []string{"1", "x", "2.5"}},
		{"ACME 2026-01-01 09:30:00 3", []string{"ACME", "2026-01-01 09:30:00", "3"}, []string{"ACME", "2026-01-01 09:30:00", "3"}},
		{"a b\tc d", []string{"a b", "c d"}, []string{"a b", "c d"}},
		{"a\tb", []string{"a", "b", "c"}, nil},
		// The actual value has more words than the row can give: the
		// remaining columns still get one word each.
		{"x y", []string{"x y z", "w"}, []string{"x", "y"}},
		// Too many words end up in the last column.
		{"1 2 3", []string{"1", "2"}, []string{"1", "2 3"}},
		{"1", []string{"1", "2"}, nil},
	} {
		if got := splitExpected(tc.row, tc.got); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitExpected(%q, %q) = %q, want %q", tc.row, tc.got, got, tc.want)
		}
	}
}

func TestCompareRows(t *testing.T) {
	got := [][]string{{"2", "b", "0.30000000000000004"}, {"1", "a b", "NULL"}}
	for _, tc := range []struct {
		name  string
		types string
		mode  SortMode
		want  []string
		ok    bool
	}{
		{"nosort", "ITR", NoSort, []string{"2 b 0.3", "1 a b NULL"}, true},
		{"nosort order matters", "ITR", NoSort, []string{"1 a b NULL", "2 b 0.3"}, false},
		{"rowsort", "ITR", RowSort, []string{"1 a b NULL", "2 b 0.3"}, true},
		{"rowsort tabs", "ITR", RowSort, []string{"1\ta b\tNULL", "2\tb\t0.30000000000000004"}, true},
		{"float tolerance only for R", "ITT", NoSort, []string{"2 b 0.3", "1 a b NULL"}, false},
		{"NULL is not empty", "ITR", NoSort, []string{"2 b 0.3", "1 a b (empty)"}, false},
		{"too few rows", "ITR", NoSort, []string{"2 b 0.3"}, false},
		{"too many rows", "ITR", NoSort, []string{"2 b 0.3", "1 a b NULL", "3 c 1"}, false},
		{"valuesort", "ITR", ValueSort, []string{"1", "2", "a", "b", "b", "0.3", "NULL"}, true},
		{"valuesort wrong", "ITR", ValueSort, []string{"1", "2", "a", "b", "c", "0.3", "NULL"}, false},
	} {
		diff := CompareRows(tc.types, tc.mode, got, tc.want)
		if (diff == "") != tc.ok {
			t.Errorf("%s: CompareRows = %q, want ok=%v", tc.name, diff, tc.ok)
		}
	}
}

func TestCompareRowsDiff(t *testing.T) {
	diff := CompareRows("IT", NoSort, [][]string{{"1", "a"}, {"2", "x"}}, []string{"1   a", "2 b", "3 c"})
	want := "expected 3 rows, got 2\n  1 a\n- 2 b\n+ 2 x\n- 3 c\n"
	if diff != want {
		t.Errorf("diff:\n%s\nwant:\n%s", diff, want)
	}
	if !strings.Contains(CompareRows("I", RowSort, [][]string{{"1"}}, nil), "(both sorted)") {
		t.Error("rowsort diff does not say the rows are sorted")
	}
}

func TestParseCopyText(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"a\t1\t\\N", []string{"a", "1", "NULL"}},
		{"\t2", []string{"(empty)", "2"}},
		{`a\tb\\c\nd`, []string{"a\tb\\c\nd"}},
		{`\101\x42\x4`, []string{"AB\x04"}},
		{`2026-01-01 09:30:00`, []string{"2026-01-01 09:30:00"}},
	} {
		if got := ParseCopyText(tc.line); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseCopyText(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}
