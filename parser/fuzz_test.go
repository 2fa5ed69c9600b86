package parser

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that Parse never panics and keeps its contracts: errors
// are *Error with a position inside the query (or just after it), and each
// statement's text is a piece of the query found at its Offset.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		";",
		"SELECT 1",
		"SELECT a::bigint, CAST(b AS double precision), $1, x ~* 'y' FROM t WHERE a IS DISTINCT FROM b + 1",
		"SELECT xway, COUNT(DISTINCT vid) FROM reports WHERE type = 0 GROUP BY xway, HOP(time, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)",
		"CREATE STREAM s (a int NOT NULL, b double precision, c varchar(20)) WITH (event_time = 'a', rate = 10)",
		"CREATE TABLE t (a int, b text, PRIMARY KEY (a, b))",
		"CREATE CONTINUOUS QUERY q WITH (x = 1) AS SELECT a, count(*) FILTER (WHERE b > 1) FROM s GROUP BY a, TUMBLE(ts, INTERVAL '1 minute')",
		"COPY t (a, b) FROM STDIN WITH (FORMAT csv, HEADER, DELIMITER ',')",
		"COPY (SUBSCRIBE q) TO STDOUT; COPY (SELECT 1) TO STDOUT CSV HEADER",
		"EXPLAIN ANALYZE q; EXPLAIN (ANALYZE, FORMAT json) SELECT 1",
		"SET search_path TO public; SHOW transaction_isolation; RESET ALL; BEGIN; COMMIT",
		"SELECT E'\\x41', $$a$$, $t$b$t$, \"Q\"\"x\", 'it''s' -- c\n/* a /* b */ c */",
		"SELECT 'x' || a + 1, 2 ^ 3 ^ -2, a # b, extract(epoch from ts), substring(s for 2), timestamp '2020-01-01'",
		"SELECT key, rank, rows, values, index FROM t WHERE key = 1 GROUP BY range ORDER BY rank",
		"SELECT s OPERATOR(pg_catalog.~) 'x' COLLATE pg_catalog.default, a ISNULL, b IS NOT UNKNOWN",
		"SELECT CASE WHEN a !~* 'x' THEN 1 END::text, a BETWEEN 1 AND 2 IS DISTINCT FROM b",
		"SELECT (1",
		"SELECT 'abc",
		"SELECT * FORM t",
		"INSERT INTO t VALUES ($1, $2), (DEFAULT, NULL)",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		stmts, err := Parse(sql)
		if err != nil {
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("error %v is %T", err, err)
			}
			if e.Code == "" || e.Message == "" {
				t.Fatalf("incomplete error %#v", e)
			}
			if n := utf8.RuneCountInString(sql); e.Position < 0 || e.Position > n+1 {
				t.Fatalf("position %d outside 0..%d", e.Position, n+1)
			}
			return
		}
		if len(stmts) == 0 {
			t.Fatal("no statements and no error")
		}
		for _, st := range stmts {
			text := st.SQL()
			if !strings.Contains(sql, text) {
				t.Fatalf("statement text %q is not in the query", text)
			}
			if text != strings.TrimSpace(text) || strings.HasSuffix(text, ";") {
				t.Fatalf("statement text %q is not trimmed", text)
			}
		}
	})
}
