package parser

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestCursorStatements checks DECLARE, FETCH, MOVE and CLOSE in the forms
// psql, psycopg2 and Materialize users write.
func TestCursorStatements(t *testing.T) {
	b := func(text string) Base { return Base{Text: text} }
	sub := func(text, name string, off int) *Subscribe {
		return &Subscribe{Base: Base{Text: text, Offset: off}, Name: name}
	}
	tests := []struct {
		sql  string
		want Statement
	}{
		{"DECLARE c CURSOR FOR SUBSCRIBE q",
			&Declare{Base: b("DECLARE c CURSOR FOR SUBSCRIBE q"), Name: "c", Query: sub("SUBSCRIBE q", "q", 21)}},
		{"declare C binary no scroll cursor with hold for subscribe to public.Q",
			&Declare{Base: b("declare C binary no scroll cursor with hold for subscribe to public.Q"), Name: "c", Binary: true, Hold: true,
				Query: sub("subscribe to public.Q", "q", 48)}},
		{`DECLARE "My Cur" INSENSITIVE CURSOR WITHOUT HOLD FOR SUBSCRIBE q`,
			&Declare{Base: b(`DECLARE "My Cur" INSENSITIVE CURSOR WITHOUT HOLD FOR SUBSCRIBE q`), Name: "My Cur", Query: sub("SUBSCRIBE q", "q", 53)}},
		{"FETCH c", &Fetch{Base: b("FETCH c"), Name: "c", Count: 1}},
		{"FETCH NEXT FROM c", &Fetch{Base: b("FETCH NEXT FROM c"), Name: "c", Count: 1}},
		{"FETCH 10 c", &Fetch{Base: b("FETCH 10 c"), Name: "c", Count: 10}},
		{"fetch 10 in c", &Fetch{Base: b("fetch 10 in c"), Name: "c", Count: 10}},
		{`FETCH FORWARD 2000 FROM "Cur"`, &Fetch{Base: b(`FETCH FORWARD 2000 FROM "Cur"`), Name: "Cur", Count: 2000}},
		{"FETCH FORWARD FROM c", &Fetch{Base: b("FETCH FORWARD FROM c"), Name: "c", Count: 1}},
		{"FETCH FORWARD ALL FROM c", &Fetch{Base: b("FETCH FORWARD ALL FROM c"), Name: "c", Count: 1, All: true}},
		{"FETCH ALL c", &Fetch{Base: b("FETCH ALL c"), Name: "c", Count: 1, All: true}},
		{"FETCH 0 FROM c", &Fetch{Base: b("FETCH 0 FROM c"), Name: "c", Count: 0}},
		{"FETCH next", &Fetch{Base: b("FETCH next"), Name: "next", Count: 1}}, // a cursor named next
		{"FETCH 5 FROM c WITH (timeout = '1s')",
			&Fetch{Base: b("FETCH 5 FROM c WITH (timeout = '1s')"), Name: "c", Count: 5, Timeout: time.Second, HasTimeout: true}},
		{"FETCH ALL c WITH (TIMEOUT '250 milliseconds')",
			&Fetch{Base: b("FETCH ALL c WITH (TIMEOUT '250 milliseconds')"), Name: "c", Count: 1, All: true, Timeout: 250 * time.Millisecond, HasTimeout: true}},
		{"FETCH c WITH (timeout = 0)", &Fetch{Base: b("FETCH c WITH (timeout = 0)"), Name: "c", Count: 1, HasTimeout: true}},
		{"FETCH c WITH (timeout = 2)", &Fetch{Base: b("FETCH c WITH (timeout = 2)"), Name: "c", Count: 1, Timeout: 2 * time.Second, HasTimeout: true}},
		{"MOVE 3 FROM c", &Fetch{Base: b("MOVE 3 FROM c"), Name: "c", Count: 3, Move: true}},
		{"MOVE FORWARD ALL IN c", &Fetch{Base: b("MOVE FORWARD ALL IN c"), Name: "c", Count: 1, All: true, Move: true}},
		{"CLOSE c", &CloseCursor{Base: b("CLOSE c"), Name: "c"}},
		{`close "C"`, &CloseCursor{Base: b(`close "C"`), Name: "C"}},
		{"CLOSE ALL", &CloseCursor{Base: b("CLOSE ALL"), All: true}},
	}
	for _, tc := range tests {
		got, err := ParseOne(tc.sql)
		if err != nil {
			t.Errorf("%s: %v", tc.sql, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got  %#v\n want %#v", tc.sql, got, tc.want)
		}
	}
}

// TestDeclareSelect checks DECLARE … FOR SELECT as psycopg2's named
// cursors and psql's FETCH_COUNT send it.
func TestDeclareSelect(t *testing.T) {
	for _, sql := range []string{
		`DECLARE "c_1" CURSOR WITHOUT HOLD FOR SELECT k, n FROM q WHERE k > 1`,
		"DECLARE _psql_cursor NO SCROLL CURSOR FOR\nSELECT * FROM q ORDER BY k",
		"DECLARE c CURSOR FOR (SELECT 1)",
		"DECLARE c CURSOR FOR WITH x AS (SELECT 1 AS a) SELECT a FROM x",
		"DECLARE c CURSOR FOR SELECT $1::int",
	} {
		st, err := ParseOne(sql)
		if err != nil {
			t.Errorf("%s: %v", sql, err)
			continue
		}
		d, ok := st.(*Declare)
		if !ok {
			t.Errorf("%s: got %T", sql, st)
			continue
		}
		if sel, ok := d.Query.(*Select); !ok || sel.Query == nil {
			t.Errorf("%s: query %#v, want a *Select", sql, d.Query)
		} else if sel.SQL() != sql[len(sql)-len(sel.SQL()):] {
			t.Errorf("%s: select text %q", sql, sel.SQL())
		}
	}
	// Several statements in one string, as psql -c sends them.
	stmts, err := Parse("BEGIN; DECLARE c CURSOR FOR SUBSCRIBE q; FETCH 2 c; CLOSE c; COMMIT")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, st := range stmts {
		kinds = append(kinds, reflect.TypeOf(st).Elem().Name())
	}
	if want := []string{"Transaction", "Declare", "Fetch", "CloseCursor", "Transaction"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("statements %v, want %v", kinds, want)
	}
}

func TestCursorErrors(t *testing.T) {
	tests := []struct {
		sql, code, msg string
		pos            int
	}{
		{"DECLARE c SCROLL CURSOR FOR SELECT 1", CodeFeatureNotSupported, "SCROLL (cursors only move forward; use NO SCROLL) is not supported", 11},
		{"DECLARE c CURSOR FOR INSERT INTO t VALUES (1)", CodeFeatureNotSupported, "DECLARE CURSOR FOR INSERT is not supported", 22},
		{"DECLARE c CURSOR FOR SHOW STREAMS", CodeFeatureNotSupported, "DECLARE CURSOR FOR SHOW is not supported", 22},
		{"DECLARE c CURSOR FOR", CodeSyntax, "syntax error at end of input", 21},
		{"DECLARE c CURSOR SUBSCRIBE q", CodeSyntax, `syntax error at or near "SUBSCRIBE"`, 18},
		{"DECLARE c FOR SELECT 1", CodeSyntax, `syntax error at or near "FOR"`, 11},
		{"DECLARE CURSOR FOR SELECT 1", CodeSyntax, `syntax error at or near "FOR"`, 16},
		{"DECLARE c CURSOR FOR SELECT * FORM t", CodeSyntax, `syntax error at or near "FORM"`, 31},
		{"DECLARE c CURSOR FOR SUBSCRIBE q x", CodeSyntax, `syntax error at or near "x"`, 34},
		{"FETCH", CodeSyntax, "syntax error at end of input", 6},
		{"FETCH 10", CodeSyntax, "syntax error at end of input", 9},
		{"FETCH 1.5 c", CodeSyntax, `syntax error at or near "1.5"`, 7},
		{"FETCH PRIOR FROM c", CodeFeatureNotSupported, "FETCH PRIOR (cursors only move forward) is not supported", 7},
		{"FETCH BACKWARD 2 FROM c", CodeFeatureNotSupported, "FETCH BACKWARD (cursors only move forward) is not supported", 7},
		{"FETCH ABSOLUTE 2 FROM c", CodeFeatureNotSupported, "FETCH ABSOLUTE (cursors only move forward) is not supported", 7},
		{"FETCH -2 FROM c", CodeFeatureNotSupported, "FETCH with a negative count (cursors only move forward) is not supported", 7},
		{"FETCH FORWARD -2 FROM c", CodeFeatureNotSupported, "FETCH with a negative count (cursors only move forward) is not supported", 15},
		{"FETCH 2 FROM c extra", CodeSyntax, `syntax error at or near "extra"`, 16},
		{"FETCH 2 FROM c WITH (timeout = 'soon')", CodeInvalidDatetimeFormat, `invalid input syntax for type interval: "soon"`, 32},
		{"FETCH 2 FROM c WITH (timeout = '-1s')", CodeInvalidParameterValue, "FETCH timeout must not be negative", 32},
		{"FETCH 2 FROM c WITH (wait = '1s')", CodeSyntax, `unrecognized FETCH option "wait"`, 22},
		{"FETCH 2 FROM c WITH (timeout = '1s'", CodeSyntax, "syntax error at end of input", 36},
		{"CLOSE", CodeSyntax, "syntax error at end of input", 6},
		{"CLOSE a b", CodeSyntax, `syntax error at or near "b"`, 9},
	}
	for _, tc := range tests {
		_, err := Parse(tc.sql)
		e, ok := err.(*Error)
		if !ok {
			t.Errorf("%s: got %v, want an *Error", tc.sql, err)
			continue
		}
		if e.Code != tc.code || e.Message != tc.msg || e.Position != tc.pos {
			t.Errorf("%s: got %s %q at %d, want %s %q at %d", tc.sql, e.Code, e.Message, e.Position, tc.code, tc.msg, tc.pos)
		}
	}
}

// TestCursorTruncated parses every prefix of cursor statements, with and
// without each of their words: errors, never panics.
func TestCursorTruncated(t *testing.T) {
	for _, sql := range []string{
		`DECLARE "c" BINARY INSENSITIVE NO SCROLL CURSOR WITH HOLD FOR SUBSCRIBE TO public.q`,
		"DECLARE c CURSOR WITHOUT HOLD FOR SELECT a, b FROM t WHERE a > $1",
		"FETCH FORWARD 10 FROM c WITH (timeout = '1s', timeout = 2)",
		"FETCH FORWARD ALL IN c WITH (timeout '0')",
		"MOVE NEXT FROM c",
		"FETCH -1 c; FETCH FORWARD -1 c; CLOSE ALL; CLOSE c",
	} {
		words := strings.Fields(sql)
		for skip := -1; skip < len(words); skip++ {
			var kept []string
			for i, w := range words {
				if i != skip {
					kept = append(kept, w)
				}
			}
			text := strings.Join(kept, " ")
			for n := 0; n <= len(text); n++ {
				_, _ = Parse(text[:n])
			}
		}
	}
}
