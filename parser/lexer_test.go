package parser

import (
	"reflect"
	"testing"
)

// TestLexer checks token kinds, values and byte offsets.
func TestLexer(t *testing.T) {
	type tk struct {
		kind tokKind
		val  string
		text string // the original text of the token
	}
	tests := []struct {
		sql  string
		want []tk
	}{
		{"SELECT Foo, \"Bar\"\"x\", _a$1", []tk{
			{tIdent, "select", "SELECT"}, {tIdent, "foo", "Foo"}, {tPunct, ",", ","},
			{tQIdent, `Bar"x`, `"Bar""x"`}, {tPunct, ",", ","}, {tIdent, "_a$1", "_a$1"},
		}},
		{"ÉtÉ 'it''s' E'a\\tb\\'c' e'\\101' N'n' B'101' X'1F'", []tk{
			{tIdent, "Ét\xc3\x89", "ÉtÉ"}, {tString, "it's", "'it''s'"}, {tString, "a\tb'c", `E'a\tb\'c'`},
			{tString, "A", `e'\101'`}, {tString, "n", "N'n'"}, {tBitString, "B'101'", "B'101'"}, {tBitString, "X'1F'", "X'1F'"},
		}},
		{"'a'\n  'b' 'c'", []tk{{tString, "ab", "'a'\n  'b'"}, {tString, "c", "'c'"}}},
		{"$$a'b$$ $x$ $$ $x$ $1 $23", []tk{
			{tString, "a'b", "$$a'b$$"}, {tString, " $$ ", "$x$ $$ $x$"}, {tParam, "1", "$1"}, {tParam, "23", "$23"},
		}},
		{"1 1.5 .5 1e3 1.5E-3 1. 2e", []tk{
			{tNumber, "1", "1"}, {tNumber, "1.5", "1.5"}, {tNumber, ".5", ".5"}, {tNumber, "1e3", "1e3"},
			{tNumber, "1.5E-3", "1.5E-3"}, {tNumber, "1.", "1."}, {tNumber, "2", "2"}, {tIdent, "e", "e"},
		}},
		{"a::int||b<=c<>d!=e<=>f~g!~h~*i!~*j", []tk{
			{tIdent, "a", "a"}, {tPunct, "::", "::"}, {tIdent, "int", "int"}, {tOp, "||", "||"}, {tIdent, "b", "b"},
			{tOp, "<=", "<="}, {tIdent, "c", "c"}, {tOp, "<>", "<>"}, {tIdent, "d", "d"}, {tOp, "<>", "!="},
			{tIdent, "e", "e"}, {tOp, "<=>", "<=>"}, {tIdent, "f", "f"}, {tOp, "~", "~"}, {tIdent, "g", "g"},
			{tOp, "!~", "!~"}, {tIdent, "h", "h"}, {tOp, "~*", "~*"}, {tIdent, "i", "i"}, {tOp, "!~*", "!~*"}, {tIdent, "j", "j"},
		}},
		// PostgreSQL's rule: a trailing + or - is split off unless the
		// operator has one of ~ ! @ # % ^ & | ` ?.
		{"a=-1 b<-2 c*-3", []tk{
			{tIdent, "a", "a"}, {tOp, "=", "="}, {tOp, "-", "-"}, {tNumber, "1", "1"},
			{tIdent, "b", "b"}, {tOp, "<", "<"}, {tOp, "-", "-"}, {tNumber, "2", "2"},
			{tIdent, "c", "c"}, {tOp, "*", "*"}, {tOp, "-", "-"}, {tNumber, "3", "3"},
		}},
		{"a -- comment ; x\n/* one /* two */ still ; */ b;c[1]", []tk{
			{tIdent, "a", "a"}, {tIdent, "b", "b"}, {tPunct, ";", ";"}, {tIdent, "c", "c"},
			{tPunct, "[", "["}, {tNumber, "1", "1"}, {tPunct, "]", "]"},
		}},
		{"a--b\nc/*d*/e", []tk{{tIdent, "a", "a"}, {tIdent, "c", "c"}, {tIdent, "e", "e"}}},
		{"1-- x", []tk{{tNumber, "1", "1"}}},
		{"x+-- y\n1", []tk{{tIdent, "x", "x"}, {tOp, "+", "+"}, {tNumber, "1", "1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			toks, err := lex(tt.sql)
			if err != nil {
				t.Fatal(err)
			}
			var got []tk
			for _, x := range toks {
				got = append(got, tk{x.kind, x.val, tt.sql[x.start:x.end]})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestTypeNames checks type normalisation.
func TestTypeNames(t *testing.T) {
	tests := map[string]string{
		"INT":                            "int",
		"Double   Precision":             "double precision",
		"VARCHAR ( 20 )":                 "varchar(20)",
		"numeric(10, 2)":                 "numeric(10,2)",
		"TIMESTAMP WITH TIME ZONE":       "timestamp with time zone",
		"timestamp(6) without time zone": "timestamp(6) without time zone",
		"pg_catalog.int8":                "int8",
		"int[]":                          "int[]",
		"int[3][]":                       "int[][]",
		"character varying":              "character varying",
		`"MyType"`:                       "MyType",
	}
	for in, want := range tests {
		toks, err := lex(in)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := normalizeTypeTokens(toks)
		if !ok || got != want {
			t.Errorf("%q: got %q %v, want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"(", "int(", "int)", "int,", "'x'", "int(1 2)", ".int", "int[", "numeric(,)"} {
		toks, err := lex(bad)
		if err != nil {
			continue
		}
		if got, ok := normalizeTypeTokens(toks); ok {
			t.Errorf("%q: got %q, want failure", bad, got)
		}
	}
}
