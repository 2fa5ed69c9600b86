package sqltest

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseScript(t *testing.T) {
	src := `# a comment
statement ok
CREATE STREAM s (a INT,
  b TEXT)

statement error 42601 syntax error at or near
SELEC 1

query ITR rowsort
SELECT a, b, c
# a comment inside SQL is skipped
FROM t
----
1 x 1.5
2	two words	NULL

query error 42P01
SELECT * FROM nope

query T
SELECT 'none' WHERE false

query II nosort columns=5,6
SHOW STREAMS
----
10 0

copy s csv header
a,b
1,x

3,"y"
\.

copy error 22P02 s(a) text line 2, column a
1
x
\.

subscribe cq 2 TI rowsort
----
x 1
y 2

subscribe wait cq

sleep 150ms

halt
`
	recs, err := ParseScript("t.slt", src)
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{
		{Kind: KindStatement, Line: 2, SQL: "CREATE STREAM s (a INT,\n  b TEXT)"},
		{Kind: KindStatement, Line: 6, SQL: "SELEC 1", ErrorCode: "42601", ErrorSubstring: "syntax error at or near"},
		{Kind: KindQuery, Line: 9, SQL: "SELECT a, b, c\nFROM t", Types: "ITR", Sort: RowSort,
			Expected: []string{"1 x 1.5", "2\ttwo words\tNULL"}, ExpectedLine: 14},
		{Kind: KindQuery, Line: 17, SQL: "SELECT * FROM nope", ErrorCode: "42P01"},
		{Kind: KindQuery, Line: 20, SQL: "SELECT 'none' WHERE false", Types: "T"},
		{Kind: KindQuery, Line: 23, SQL: "SHOW STREAMS", Types: "II", Columns: []int{4, 5}, Expected: []string{"10 0"}, ExpectedLine: 26},
		{Kind: KindCopy, Line: 28, SQL: "COPY s FROM STDIN WITH (FORMAT csv, HEADER true)", Relation: "s", CSV: true, Header: true,
			Data: []string{"a,b", "1,x", "", `3,"y"`}},
		{Kind: KindCopy, Line: 35, SQL: "COPY s(a) FROM STDIN", Relation: "s(a)", ErrorCode: "22P02", ErrorSubstring: "line 2, column a",
			Data: []string{"1", "x"}},
		{Kind: KindSubscribe, Line: 40, SQL: "COPY (SUBSCRIBE cq) TO STDOUT", Relation: "cq", N: 2, Types: "TI", Sort: RowSort,
			Expected: []string{"x 1", "y 2"}, ExpectedLine: 42},
		{Kind: KindSubscribeWait, Line: 45, Relation: "cq"},
		{Kind: KindSleep, Line: 47, Duration: 150 * time.Millisecond},
		{Kind: KindHalt, Line: 49},
	}
	if len(recs) != len(want) {
		for _, r := range recs {
			t.Logf("%+v", r)
		}
		t.Fatalf("got %d records, want %d", len(recs), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(recs[i], want[i]) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, recs[i], want[i])
		}
	}
}

func TestParseScriptColumnsMustMatchTypes(t *testing.T) {
	_, err := ParseScript("t.slt", "query I columns=5,6\nSHOW STREAMS\n----\n10 0\n")
	if err == nil || !strings.Contains(err.Error(), "t.slt:1:") {
		t.Fatalf("err = %v, want an error at t.slt:1", err)
	}
}

func TestParseScriptErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"statement\nSELECT 1\n", "t.slt:1: statement needs ok or error"},
		{"statement maybe\nSELECT 1\n", "t.slt:1: statement needs ok or error"},
		{"statement ok extra\nSELECT 1\n", `unexpected "extra"`},
		{"statement error\nSELECT 1\n", "error needs a SQLSTATE"},
		{"statement error syntax\nSELECT 1\n", `"syntax" is not a SQLSTATE`},
		{"statement ok\n\nSELECT 1\n", "t.slt:1: the record has no SQL"},
		{"\n\nquery X\nSELECT 1\n----\n1\n", `t.slt:3: column type 'X'`},
		{"query I sideways\nSELECT 1\n", `unknown option "sideways"`},
		{"query I columns=0\nSELECT 1\n", "1-based column number"},
		{"copy\n\\.\n", "copy needs a relation"},
		{"copy s csv bogus\n1\n\\.\n", `unexpected "bogus"`},
		{"copy s text header\n\\.\n", "header needs csv"},
		{"copy s\n1\n2\n", `not terminated by a line \.`},
		{"copy error 22P0 s\n\\.\n", "is not a SQLSTATE"},
		{"subscribe cq 2 T\n----\nx\n", "subscribe reads 2 rows but 1 are expected"},
		{"subscribe cq 0 T\n----\n", "not a positive number"},
		{"subscribe cq 1 T\nx\n", "must be followed by ----"},
		{"subscribe cq 1 T valuesort\n----\nx\n", `unknown option "valuesort"`},
		{"sleep\n", "sleep needs one duration"},
		{"sleep soon\n", "sleep:"},
		{"select 1\n", `unknown record "select"`},
	} {
		_, err := ParseScript("t.slt", tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseScript(%q) error = %v, want it to contain %q", tc.src, err, tc.want)
		}
	}
}

func TestParseScriptQueryWithoutResults(t *testing.T) {
	recs, err := ParseScript("t.slt", "query II\nSELECT 1, 2 WHERE false\n----\n\nquery I\nSELECT 1 WHERE false\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || len(recs[0].Expected) != 0 || len(recs[1].Expected) != 0 {
		t.Fatalf("got %+v", recs)
	}
	if recs[1].SQL != "SELECT 1 WHERE false" {
		t.Errorf("SQL = %q", recs[1].SQL)
	}
}

func TestParseScriptCRLF(t *testing.T) {
	recs, err := ParseScript("t.slt", "statement ok\r\nSELECT 1\r\n\r\nquery T\r\nSELECT 'a'\r\n----\r\na\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].SQL != "SELECT 1" || !reflect.DeepEqual(recs[1].Expected, []string{"a"}) {
		t.Fatalf("got %+v", recs)
	}
}

func TestCopySQL(t *testing.T) {
	for _, tc := range []struct {
		rel         string
		csv, header bool
		want        string
	}{
		{"s", false, false, "COPY s FROM STDIN"},
		{"s(a,b)", true, false, "COPY s(a,b) FROM STDIN WITH (FORMAT csv)"},
		{"s", true, true, "COPY s FROM STDIN WITH (FORMAT csv, HEADER true)"},
	} {
		if got := copySQL(tc.rel, tc.csv, tc.header); got != tc.want {
			t.Errorf("copySQL(%q, %v, %v) = %q, want %q", tc.rel, tc.csv, tc.header, got, tc.want)
		}
	}
}

func TestCopyRows(t *testing.T) {
	for _, tc := range []struct {
		rec  Record
		n    int64
		okay bool
	}{
		{Record{Data: []string{"1\tx", "2\ty"}}, 2, true},
		{Record{CSV: true, Data: []string{"1,x", `2,"a`, `b"`}}, 2, true},
		{Record{CSV: true, Header: true, Data: []string{"a,b", "1,x"}}, 1, true},
		{Record{CSV: true, Data: []string{`1,"x`}}, 0, false},
	} {
		n, ok := copyRows(tc.rec)
		if n != tc.n || ok != tc.okay {
			t.Errorf("copyRows(%q) = %d, %v; want %d, %v", tc.rec.Data, n, ok, tc.n, tc.okay)
		}
	}
}
