package parser

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"
)

// TestExpressionShapes checks, for each PostgreSQL construct, the exact
// TiDB AST the planner receives (see shape for the notation).
func TestExpressionShapes(t *testing.T) {
	tests := []struct {
		expr string
		want string
	}{
		// Casts: every form becomes spate_cast(x, 'normalised type').
		{"a::bigint", "spate_cast(a, 'bigint')"},
		{"a::BIGINT", "spate_cast(a, 'bigint')"},
		{"'1 minute'::interval", "spate_cast('1 minute', 'interval')"},
		{"t.a::text::varchar(10)", "spate_cast(spate_cast(t.a, 'text'), 'varchar(10)')"},
		{"(a + b)::double precision", "spate_cast(paren(plus(a, b)), 'double precision')"},
		{"$1::int", "spate_cast(spate_param(1), 'int')"},
		{"-1::int", "minus(spate_cast(1, 'int'))"},
		{"count(*)::int", "spate_cast(agg:count(1), 'int')"},
		{"now()::timestamp with time zone", "spate_cast(now(), 'timestamp with time zone')"},
		{"x::timestamp(3) without time zone", "spate_cast(x, 'timestamp(3) without time zone')"},
		{"x::pg_catalog.int4", "spate_cast(x, 'int4')"},
		{"x::numeric(10, 2)", "spate_cast(x, 'numeric(10,2)')"},
		{"x::int[]", "spate_cast(x, 'int[]')"},
		{"x::character varying(5) || 'a'", "spate_concat(spate_cast(x, 'character varying(5)'), 'a')"},
		{"'5'::int + 1", "plus(spate_cast('5', 'int'), 1)"},
		{"a.b.c::text", "spate_cast(a.b.c, 'text')"},
		{"CASE WHEN a THEN 1 END::text", "spate_cast(case(when a then 1), 'text')"},
		{"sum(x) OVER (ORDER BY ts)::int", "spate_cast(win:sum(x), 'int')"},
		{"NULL::int", "spate_cast(NULL, 'int')"},
		{`"Col"::text`, "spate_cast(Col, 'text')"},
		{"CAST(a AS BIGINT)", "spate_cast(a, 'bigint')"},
		{"cast(b as numeric(10, 2))", "spate_cast(b, 'numeric(10,2)')"},
		{"CAST(x AS character varying(5))", "spate_cast(x, 'character varying(5)')"},
		{"CAST(a + 1 AS double precision) * 2", "mul(spate_cast(plus(a, 1), 'double precision'), 2)"},
		{"CAST($2 AS timestamp)", "spate_cast(spate_param(2), 'timestamp')"},
		// Typed literals and booleans.
		{"timestamp '2024-01-01 00:00:00'", "spate_cast('2024-01-01 00:00:00', 'timestamp')"},
		{"DATE '2024-01-01'", "spate_cast('2024-01-01', 'date')"},
		{"int '5'", "spate_cast('5', 'int')"},
		{"timestamp with time zone '2024-01-01'", "spate_cast('2024-01-01', 'timestamp with time zone')"},
		{"true", "spate_cast('true', 'boolean')"},
		{"FALSE", "spate_cast('false', 'boolean')"},
		{"a = true", "eq(a, spate_cast('true', 'boolean'))"},
		{"a IS TRUE", "istrue(a)"},
		{"a IS NOT FALSE", "isnotfalse(a)"},
		// Parameters.
		{"$1", "spate_param(1)"},
		{"$12 + $3", "plus(spate_param(12), spate_param(3))"},
		// Intervals (exact conversions are in TestIntervalConversions).
		{"INTERVAL '1 minute'", "spate_interval(60000000)"},
		{"INTERVAL '5' MINUTE", "spate_interval(300000000)"},
		{"INTERVAL 1 MINUTE", "spate_interval(60000000)"},
		{"ts + INTERVAL '2 days'", "plus(ts, spate_interval(172800000000))"},
		{"now() - interval '1 hour'", "minus(now(), spate_interval(3600000000))"},
		// Windows.
		{"TUMBLE(ts, INTERVAL '1' MINUTE)", "tumble(ts, spate_interval(60000000))"},
		{"HOP(time, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)", "hop(time, spate_interval(60000000), spate_interval(300000000))"},
		{"SESSION(ts, INTERVAL '10' SECOND)", "spate_session(ts, spate_interval(10000000))"},
		// Regular expressions.
		{"s ~ 'x'", "regexp(s, 'x')"},
		{"s !~ 'x'", "notregexp(s, 'x')"},
		{"s ~* 'x'", "spate_regexp_i(s, 'x')"},
		{"s !~* 'x'", "not(spate_regexp_i(s, 'x'))"},
		{"a || b ~* c", "spate_regexp_i(spate_concat(a, b), c)"},
		{"s ~* p || 'x' AND q", "and(spate_concat(spate_regexp_i(s, p), 'x'), q)"},
		{"s ~* lower(p) AND q", "and(spate_regexp_i(s, lower(p)), q)"},
		{"(s !~* 'x') = false", "eq(paren(not(spate_regexp_i(s, 'x'))), spate_cast('false', 'boolean'))"},
		{"s !~* 'x' = false", "eq(paren(not(spate_regexp_i(s, 'x'))), spate_cast('false', 'boolean'))"},
		{"s !~* 'x' IS TRUE", "istrue(paren(not(spate_regexp_i(s, 'x'))))"},
		{"NOT s !~* 'x'", "not(not(spate_regexp_i(s, 'x')))"},
		{"s OPERATOR(pg_catalog.~) '^a'", "regexp(s, '^a')"},
		{"s OPERATOR(pg_catalog.!~) '^a'", "notregexp(s, '^a')"},
		{"s OPERATOR(~*) '^a'", "spate_regexp_i(s, '^a')"},
		{"s ~~ 'a%'", "like(s, 'a%')"},
		{"s !~~* 'a%'", "notilike(s, 'a%')"},
		{"~a", "bitneg(a)"},
		// IS [NOT] DISTINCT FROM.
		{"a IS NOT DISTINCT FROM b", "nulleq(a, b)"},
		{"a IS DISTINCT FROM b", "isfalse(nulleq(a, b))"},
		{"p AND a IS DISTINCT FROM b", "and(p, isfalse(nulleq(a, b)))"},
		{"a IS DISTINCT FROM b + 1", "isfalse(nulleq(a, plus(b, 1)))"},
		{"a + 1 IS DISTINCT FROM b * 2 OR q", "or(isfalse(nulleq(plus(a, 1), mul(b, 2))), q)"},
		{"a = b IS DISTINCT FROM c", "isfalse(nulleq(paren(eq(a, b)), c))"},
		{"a IS DISTINCT FROM (b = c)", "isfalse(nulleq(a, paren(eq(b, c))))"},
		{"a IS DISTINCT FROM b IS NULL", "isnull(paren(isfalse(nulleq(a, b))))"},
		{"NOT a IS DISTINCT FROM b", "not(isfalse(nulleq(a, b)))"},
		{"a IS NOT DISTINCT FROM b AND c IS DISTINCT FROM d", "and(nulleq(a, b), isfalse(nulleq(c, d)))"},
		{"f(a) IS DISTINCT FROM $1", "isfalse(nulleq(f(a), spate_param(1)))"},
		{"a IS DISTINCT FROM b IS DISTINCT FROM c", "isfalse(nulleq(paren(isfalse(nulleq(a, b))), c))"},
		{"a BETWEEN 1 AND 2 IS DISTINCT FROM c", "isfalse(nulleq(between(a, 1, 2), c))"},
		{"a IS DISTINCT FROM b BETWEEN 1 AND 2", "isfalse(nulleq(a, between(b, 1, 2)))"},
		{"CASE WHEN a IS DISTINCT FROM b THEN 1 ELSE 2 END", "case(when isfalse(nulleq(a, b)) then 1 else 2)"},
		// || and ^ with PostgreSQL precedence.
		{"'a' || b", "spate_concat('a', b)"},
		{"a || b || c", "spate_concat(spate_concat(a, b), c)"},
		{"'x' || a + 1", "spate_concat('x', plus(a, 1))"},
		{"a || b = 'xy'", "eq(spate_concat(a, b), 'xy')"},
		{"2 ^ 3", "power(2, 3)"},
		{"2 ^ 3 ^ 2", "power(power(2, 3), 2)"},
		{"-2 ^ 2", "power(minus(2), 2)"},
		{"a * b ^ 2", "mul(a, power(b, 2))"},
		{"a # b", "bitxor(a, b)"},
		{"a # b + 1", "bitxor(a, paren(plus(b, 1)))"},
		{"a | b & c", "bitand(paren(bitor(a, b)), c)"},
		{"a & b << c", "leftshift(paren(bitand(a, b)), c)"},
		{"a & b = c", "eq(bitand(a, b), c)"},
		{"a & 1 || 'x'", "spate_concat(bitand(a, 1), 'x')"},
		// Special PostgreSQL functions.
		{"extract(hour from ts)", "date_part('hour', ts)"},
		{"EXTRACT(EPOCH FROM ts)", "date_part('epoch', ts)"},
		{"extract('dow' from ts + interval '1 day')", "date_part('dow', plus(ts, spate_interval(86400000000)))"},
		{"substring(s from 1 for 2)", "substring(s, 1, 2)"},
		{"substring(s for 2)", "substring(s, 1, 2)"},
		{"substring(s from 3)", "substring(s, 3)"},
		{"substring(s, 2, 3)", "substring(s, 2, 3)"},
		{"position('a' in s)", "position('a', s)"},
		{"trim(both ' ' from s)", "trim(s, ' ', trim:BOTH)"},
		{"trim(leading 'x' from s)", "trim(s, 'x', trim:LEADING)"},
		{"trim(s)", "trim(s)"},
		{"date_trunc('minute', ts)", "date_trunc('minute', ts)"},
		{"now()", "now()"},
		{"current_timestamp", "current_timestamp()"},
		{"coalesce(a, b, 0)", "coalesce(a, b, 0)"},
		{"nullif(a, '')", "nullif(a, '')"},
		{"greatest(a, b)", "greatest(a, b)"},
		{"least(a, b)", "least(a, b)"},
		{"pg_catalog.pg_table_is_visible(c.oid)", "pg_table_is_visible(c.oid)"},
		{"left(s, 2)", "left(s, 2)"},
		{"replace(s, 'a', 'b')", "replace(s, 'a', 'b')"},
		{"mod(a, 2)", "mod(a, 2)"},
		// Ordinary operators, as TiDB builds them.
		{"a IN (1, 2)", "in(a, 1, 2)"},
		{"a NOT IN (1, 2)", "notin(a, 1, 2)"},
		{"a BETWEEN 1 AND 2", "between(a, 1, 2)"},
		{"a LIKE 'x%'", "like(a, 'x%')"},
		{"a ILIKE 'x%'", "ilike(a, 'x%')"},
		{"a NOT LIKE 'x%'", "notlike(a, 'x%')"},
		{"CASE WHEN a > 1 THEN 'x' ELSE 'y' END", "case(when gt(a, 1) then 'x' else 'y')"},
		{"CASE a WHEN 1 THEN 'x' END", "case(a when 1 then 'x')"},
		{"a IS NULL", "isnull(a)"},
		{"a IS NOT NULL", "isnotnull(a)"},
		{"a ISNULL", "isnull(a)"},
		{"a NOTNULL", "isnotnull(a)"},
		{"a IS UNKNOWN", "isnull(a)"},
		{"-a", "minus(a)"},
		{"NOT a", "not(a)"},
		{"a <> b", "ne(a, b)"},
		{"a != b", "ne(a, b)"},
		{"a % b", "mod(a, b)"},
		{"a / b", "div(a, b)"},
		{"a <=> b", "nulleq(a, b)"},
		{"count(*)", "agg:count(1)"},
		{"count(DISTINCT vid)", "agg:count(distinct vid)"},
		{"count(*) FILTER (WHERE price > 10)", "agg:count(case(when gt(price, 10) then 1))"},
		{"sum(x) FILTER (WHERE y)", "agg:sum(case(when y then x))"},
		{"count(DISTINCT b) FILTER (WHERE c < 2)", "agg:count(distinct case(when lt(c, 2) then b))"},
		{"rank() OVER (PARTITION BY a ORDER BY b)", "win:rank()"},
		{"lag(x, 1) OVER w", "win:lag(x, 1)"},
		// Literals.
		{"'it''s'", `'it''s'`},
		{`'a\b'`, `'a\b'`},
		{`E'a\nb\\c\'d'`, "'a\nb\\c''d'"},
		{`e'\x41\101\u00e9'`, "'AAé'"},
		{"$$it's$$", `'it''s'`},
		{"$tag$a$$b$tag$", "'a$$b'"},
		{"'a'\n'b'", "'ab'"},
		{"1", "1"},
		{"1.5", "dec:1.5"},
		{"1.5e3", "float:1500"},
		{".5", "dec:0.5"},
		{"NULL", "NULL"},
		{"x'1f'", "bin:0x1f"},
		// Identifiers: folding and quoting.
		{"MyCol", "mycol"},
		{`"MyCol"`, "MyCol"},
		{`"a""b"`, `a"b`},
		{`T."Key"`, "t.Key"},
		{"COALESCE(Foo, \"Bar\")", "coalesce(foo, Bar)"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			sel := parseSelect(t, "SELECT "+tt.expr+" FROM t")
			got := shape(sel.Query.Fields.Fields[0].Expr)
			if got != tt.want {
				t.Errorf("SELECT %s\n got  %s\n want %s\n (rewritten: %s)", tt.expr, got, tt.want, sel.Source.Text())
			}
		})
	}
}

// TestWhereShapes checks rewrites in WHERE, GROUP BY and HAVING positions.
func TestWhereShapes(t *testing.T) {
	sel := parseSelect(t, `SELECT xway, dir, seg, window_start, window_end, COUNT(DISTINCT vid) AS cars, AVG(spd) AS lav
		FROM reports WHERE type = 0 AND s !~* '^x' AND a IS DISTINCT FROM $1
		GROUP BY xway, dir, seg, HOP(time, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)
		HAVING count(*) FILTER (WHERE spd < 40) > 3`)
	q := sel.Query
	if got, want := strings.Join(fieldShapes(q), "; "), "xway; dir; seg; window_start; window_end; agg:count(distinct vid) AS cars; agg:avg(spd) AS lav"; got != want {
		t.Errorf("fields:\n got  %s\n want %s", got, want)
	}
	if got, want := shape(q.Where), "and(and(eq(type, 0), not(spate_regexp_i(s, '^x'))), isfalse(nulleq(a, spate_param(1))))"; got != want {
		t.Errorf("where:\n got  %s\n want %s", got, want)
	}
	var groups []string
	for _, by := range q.GroupBy.Items {
		groups = append(groups, shape(by.Expr))
	}
	if got, want := strings.Join(groups, "; "), "xway; dir; seg; hop(time, spate_interval(60000000), spate_interval(300000000))"; got != want {
		t.Errorf("group by:\n got  %s\n want %s", got, want)
	}
	if got, want := shape(q.Having.Expr), "gt(agg:count(case(when lt(spd, 40) then 1)), 3)"; got != want {
		t.Errorf("having:\n got  %s\n want %s", got, want)
	}
}

// TestIntervalConversions checks exact microseconds.
func TestIntervalConversions(t *testing.T) {
	tests := []struct {
		lit  string
		want int64
	}{
		{"INTERVAL '1 minute'", 60_000_000},
		{"INTERVAL '5 minutes'", 300_000_000},
		{"INTERVAL '1' MINUTE", 60_000_000},
		{"INTERVAL 1 MINUTE", 60_000_000},
		{"INTERVAL '1 hour 30 minutes'", 5_400_000_000},
		{"INTERVAL '00:01:00'", 60_000_000},
		{"INTERVAL '01:30'", 5_400_000_000},
		{"INTERVAL '1:30.5'", 90_500_000},
		{"INTERVAL '00:00:01.25'", 1_250_000},
		{"INTERVAL '2 days'", 172_800_000_000},
		{"INTERVAL '1 day 02:00:00'", 93_600_000_000},
		{"INTERVAL '1 microsecond'", 1},
		{"INTERVAL '3 microseconds'", 3},
		{"INTERVAL '250 ms'", 250_000},
		{"INTERVAL '2 milliseconds'", 2_000},
		{"INTERVAL '1 millisecond'", 1_000},
		{"INTERVAL '10 s'", 10_000_000},
		{"INTERVAL '10 sec'", 10_000_000},
		{"INTERVAL '1 second'", 1_000_000},
		{"INTERVAL '2 seconds'", 2_000_000},
		{"INTERVAL '3 min'", 180_000_000},
		{"INTERVAL '3 m'", 180_000_000},
		{"INTERVAL '2 h'", 7_200_000_000},
		{"INTERVAL '2 hours'", 7_200_000_000},
		{"INTERVAL '1 hour'", 3_600_000_000},
		{"INTERVAL '1 d'", 86_400_000_000},
		{"INTERVAL '1 week'", 604_800_000_000},
		{"INTERVAL '2 weeks'", 1_209_600_000_000},
		{"INTERVAL '1 month'", 2_592_000_000_000},
		{"INTERVAL '2 months'", 5_184_000_000_000},
		{"INTERVAL '1 mon'", 2_592_000_000_000},
		{"INTERVAL '1 year'", 31_536_000_000_000},
		{"INTERVAL '2 years'", 63_072_000_000_000},
		{"INTERVAL '1h30m'", 5_400_000_000},
		{"INTERVAL '1.5 seconds'", 1_500_000},
		{"INTERVAL '1.5 minutes'", 90_000_000},
		{"INTERVAL '-1 day'", -86_400_000_000},
		{"INTERVAL '1 day -1 hour'", 82_800_000_000},
		{"INTERVAL '@ 2 hours ago'", -7_200_000_000},
		{"INTERVAL '10'", 10_000_000},
		{"INTERVAL '5' SECOND", 5_000_000},
		{"INTERVAL '2' HOUR", 7_200_000_000},
		{"INTERVAL '3' DAY", 259_200_000_000},
		{"INTERVAL '1' YEAR", 31_536_000_000_000},
		{"INTERVAL '1' MONTH", 2_592_000_000_000},
		{"INTERVAL '1.5' SECOND", 1_500_000},
		{"INTERVAL '-2' MINUTE", -120_000_000},
		{"INTERVAL 5 SECOND", 5_000_000},
		{"INTERVAL -5 SECOND", -5_000_000},
		{"INTERVAL '1 day 2 hours' DAY", 86_400_000_000},
		{"INTERVAL '1:30' HOUR TO MINUTE", 5_400_000_000},
		{"INTERVAL '1 MINUTE'", 60_000_000},
		{"interval(3) '1 second'", 1_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.lit, func(t *testing.T) {
			sel := parseSelect(t, "SELECT "+tt.lit+" FROM t")
			// A negative interval is a unary minus over the literal.
			want := fmt.Sprintf("spate_interval(%d)", tt.want)
			if tt.want < 0 {
				want = fmt.Sprintf("spate_interval(minus(%d))", -tt.want)
			}
			if got := shape(sel.Query.Fields.Fields[0].Expr); got != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
}

// TestIntervalErrors checks 22007 with the position of the literal.
func TestIntervalErrors(t *testing.T) {
	tests := []struct {
		sql  string
		code string
		msg  string
		pos  int
	}{
		{"SELECT INTERVAL 'abc'", CodeInvalidDatetimeFormat, `invalid input syntax for type interval: "abc"`, 17},
		{"SELECT INTERVAL '5 lightyears' FROM t", CodeInvalidDatetimeFormat, `invalid input syntax for type interval: "5 lightyears"`, 17},
		{"SELECT 1; SELECT x + INTERVAL '' FROM t", CodeInvalidDatetimeFormat, `invalid input syntax for type interval: ""`, 31},
		{"SELECT INTERVAL '1:2:3:4'", CodeInvalidDatetimeFormat, `invalid input syntax for type interval: "1:2:3:4"`, 17},
		{"SELECT INTERVAL 'x' MINUTE", CodeInvalidDatetimeFormat, `invalid input syntax for type interval: "x"`, 17},
		{"SELECT INTERVAL '99999999999 years'", CodeIntervalFieldOverflow, `interval field value out of range: "99999999999 years"`, 17},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			checkError(t, tt.sql, tt.code, tt.msg, tt.pos)
		})
	}
}

// TestReservedWordColumns checks that words TiDB reserves but PostgreSQL
// allows as names work as columns, tables and aliases everywhere.
func TestReservedWordColumns(t *testing.T) {
	words := []string{
		"time", "type", "day", "seg", "dir", "value", "key", "keys", "status", "date", "timestamp",
		"window_start", "window_end", "index", "range", "rank", "row_number", "div", "mod", "rows",
		"row", "interval", "values", "release", "read", "write", "usage", "function", "condition",
		"groups", "partition", "over", "lead", "lag", "set", "show", "sql", "option", "replace",
		"database", "schema", "double", "int", "real", "varchar", "update", "delete", "insert",
		"lock", "match", "ignore", "use", "recursive", "first_value", "dense_rank", "year_month",
	}
	for _, w := range words {
		t.Run(w, func(t *testing.T) {
			sel := parseSelect(t, fmt.Sprintf(
				"SELECT %[1]s, t.%[1]s, %[1]s + 1 AS %[1]s, count(%[1]s) FROM t WHERE %[1]s = 1 AND x > %[1]s GROUP BY %[1]s ORDER BY %[1]s DESC", w))
			q := sel.Query
			want := fmt.Sprintf("%[1]s; t.%[1]s; plus(%[1]s, 1) AS %[1]s; agg:count(%[1]s)", w)
			if got := strings.Join(fieldShapes(q), "; "); got != want {
				t.Errorf("fields: got %s, want %s (rewritten: %s)", got, want, sel.Source.Text())
			}
			if got, want := shape(q.Where), fmt.Sprintf("and(eq(%[1]s, 1), gt(x, %[1]s))", w); got != want {
				t.Errorf("where: got %s, want %s", got, want)
			}
			if got := shape(q.GroupBy.Items[0].Expr); got != w {
				t.Errorf("group by: got %s, want %s", got, w)
			}
			if got := shape(q.OrderBy.Items[0].Expr); got != w || !q.OrderBy.Items[0].Desc {
				t.Errorf("order by: got %s desc=%v", got, q.OrderBy.Items[0].Desc)
			}

			cq := parseOne(t, fmt.Sprintf("CREATE CONTINUOUS QUERY q AS SELECT %[1]s AS %[1]s, x %[1]s FROM %[1]s GROUP BY %[1]s, x", w)).(*CreateContinuousQuery)
			if got, want := strings.Join(fieldShapes(cq.Query), "; "), fmt.Sprintf("%[1]s AS %[1]s; x AS %[1]s", w); got != want {
				t.Errorf("cq fields: got %s, want %s", got, want)
			}
			tbl := cq.Query.From.TableRefs.Left.(*ast.TableSource).Source.(*ast.TableName)
			if tbl.Name.O != w {
				t.Errorf("cq table: got %s, want %s", tbl.Name.O, w)
			}

			ins := parseOne(t, fmt.Sprintf("INSERT INTO %[1]s (a, %[1]s) VALUES (1, 2)", w)).(*Insert)
			if got := ins.Stmt.Columns[1].Name.O; got != w {
				t.Errorf("insert column: got %s, want %s", got, w)
			}
			if got := ins.Stmt.Table.TableRefs.Left.(*ast.TableSource).Source.(*ast.TableName).Name.O; got != w {
				t.Errorf("insert table: got %s, want %s", got, w)
			}

			sel = parseSelect(t, fmt.Sprintf("SELECT a FROM t WHERE %[1]s IS DISTINCT FROM 1 AND %[1]s ~ 'x' AND %[1]s::int > 1", w))
			if got, want := shape(sel.Query.Where), fmt.Sprintf("and(and(isfalse(nulleq(%[1]s, 1)), regexp(%[1]s, 'x')), gt(spate_cast(%[1]s, 'int'), 1))", w); got != want {
				t.Errorf("where 2: got %s, want %s", got, want)
			}
		})
	}
}

// TestReservedWordsStillSyntax checks that the same words keep working as
// syntax and function names.
func TestReservedWordsStillSyntax(t *testing.T) {
	tests := []struct{ sql, want string }{
		{"SELECT rank() OVER (PARTITION BY a ORDER BY b ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) FROM t", "win:rank()"},
		{"SELECT sum(x) OVER (ORDER BY ts RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM t", "win:sum(x)"},
		{"SELECT row_number() OVER w FROM t WINDOW w AS (ORDER BY ts)", "win:row_number()"},
		{"SELECT replace(s, 'a', 'b') FROM t", "replace(s, 'a', 'b')"},
		{"SELECT left(s, 2) FROM t LEFT JOIN u ON t.a = u.a", "left(s, 2)"},
		{"SELECT repeat('a', 3) FROM t", "repeat('a', 3)"},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			sel := parseSelect(t, tt.sql)
			if got := shape(sel.Query.Fields.Fields[0].Expr); got != tt.want {
				t.Errorf("got %s, want %s (rewritten: %s)", got, tt.want, sel.Source.Text())
			}
		})
	}
	ins := parseOne(t, "INSERT INTO t VALUES (1, 'x'), ($1, DEFAULT)").(*Insert)
	if n := len(ins.Stmt.Lists); n != 2 {
		t.Fatalf("insert lists: %d", n)
	}
	var got []string
	for _, l := range ins.Stmt.Lists {
		for _, e := range l {
			got = append(got, shape(e))
		}
	}
	if g, want := strings.Join(got, ", "), "1, 'x', spate_param(1), DEFAULT"; g != want {
		t.Errorf("insert values: got %s, want %s", g, want)
	}
}

// TestQuotedIdentifiers checks case folding and quoting of names in the
// TiDB AST.
func TestQuotedIdentifiers(t *testing.T) {
	sel := parseSelect(t, `SELECT Foo, "Foo", "x y" AS "Mixed Case", bar AS Baz FROM Tbl AS "T" WHERE "T".Foo = 1`)
	if got, want := strings.Join(fieldShapes(sel.Query), "; "), "foo; Foo; x y AS Mixed Case; bar AS baz"; got != want {
		t.Errorf("fields: got %s, want %s", got, want)
	}
	ts := sel.Query.From.TableRefs.Left.(*ast.TableSource)
	if got := ts.Source.(*ast.TableName).Name.O; got != "tbl" {
		t.Errorf("table: got %s", got)
	}
	if ts.AsName.O != "T" {
		t.Errorf("alias: got %s", ts.AsName.O)
	}
	if got := shape(sel.Query.Where); got != "eq(T.foo, 1)" {
		t.Errorf("where: got %s", got)
	}
	sel = parseSelect(t, `SELECT * FROM public.t`)
	tn := sel.Query.From.TableRefs.Left.(*ast.TableSource).Source.(*ast.TableName)
	if tn.Schema.O != "public" || tn.Name.O != "t" {
		t.Errorf("qualified table: %s.%s", tn.Schema.O, tn.Name.O)
	}
}

// TestSetOperations checks that a top-level UNION keeps its first SELECT
// in Select.Query (never nil) and that continuous queries refuse them.
func TestSetOperations(t *testing.T) {
	for _, sql := range []string{"SELECT a FROM t UNION ALL SELECT b FROM u", "(SELECT a FROM t) EXCEPT (SELECT b FROM u)"} {
		sel := parseSelect(t, sql)
		if sel.SetOpr == nil || sel.Query == nil || shape(sel.Query.Fields.Fields[0].Expr) != "a" {
			t.Errorf("%s: SetOpr %v, Query %v", sql, sel.SetOpr, sel.Query)
		}
	}
	checkError(t, "CREATE CONTINUOUS QUERY q AS SELECT a FROM t INTERSECT SELECT b FROM u", CodeFeatureNotSupported, "UNION, INTERSECT or EXCEPT is not supported", 46)
	sel := parseSelect(t, "SELECT a FROM t WHERE a IN (SELECT b FROM u UNION SELECT c FROM v)")
	if got := shape(sel.Query.Where); got != "in(a, subquery)" {
		t.Errorf("union in a subquery: %s", got)
	}
}

// TestSourceMap checks that TiDB offsets map back into the user's text.
func TestSourceMap(t *testing.T) {
	sql := "SELECT 1;\nSELECT a::int, Ünïcode, b FROM t WHERE x ~ 'y'"
	stmts, err := Parse(sql)
	if err != nil {
		t.Fatal(err)
	}
	sel := stmts[1].(*Select)
	fields := sel.Query.Fields.Fields
	// b is the third field; OriginTextPosition is an offset into Source.Text().
	b := fields[2].Expr.(*ast.ColumnNameExpr)
	if got, want := sel.Source.Position(b.OriginTextPosition()), 35; got != want {
		t.Errorf("position of b: got %d, want %d (text %q)", got, want, sel.Source.Text())
	}
	cast := fields[0].Expr.(*ast.FuncCallExpr)
	if got, want := sel.Source.Position(cast.Args[0].OriginTextPosition()), 18; got != want {
		t.Errorf("position of a: got %d, want %d", got, want)
	}
	if got := sel.Source.Position(len(sel.Source.Text())); got != len([]rune(sql))+1 {
		t.Errorf("end position: got %d, want %d", got, len([]rune(sql))+1)
	}
}

// TestLimitParams checks LIMIT $n / OFFSET $n, which TiDB takes only as ?.
func TestLimitParams(t *testing.T) {
	sel := parseSelect(t, "SELECT a FROM t WHERE a = $3 LIMIT $1 OFFSET $2")
	if got := shape(sel.Query.Where); got != "eq(a, spate_param(3))" {
		t.Errorf("where: %s", got)
	}
	for i, e := range []ast.ExprNode{sel.Query.Limit.Count, sel.Query.Limit.Offset} {
		pm, ok := e.(*test_driver.ParamMarkerExpr)
		if !ok {
			t.Fatalf("limit %d: %T", i, e)
		}
		if n, ok := sel.Source.Param(pm.Offset); !ok || n != i+1 {
			t.Errorf("limit %d: Param = %d, %v", i, n, ok)
		}
	}
	if _, ok := sel.Source.Param(0); ok {
		t.Error("Param(0) should not be a parameter")
	}
}

// TestNumbers checks numeric literals beyond TiDB's DECIMAL.
func TestNumbers(t *testing.T) {
	long := "1" + strings.Repeat("0", 99)
	sel := parseSelect(t, "SELECT "+long+", 12345678901234567890.5 FROM t")
	if got := strings.Join(fieldShapes(sel.Query), "; "); got != "float:1e+99; dec:12345678901234567890.5" {
		t.Errorf("got %s", got)
	}
	huge := "1" + strings.Repeat("0", 400)
	checkError(t, "SELECT "+huge, CodeNumericValueOutOfRange, `"`+huge+`" is out of range for type double precision`, 8)
}

// TestCollateDropped checks that COLLATE clauses disappear.
func TestCollateDropped(t *testing.T) {
	sel := parseSelect(t, `SELECT a COLLATE "C", b FROM t WHERE c.relname OPERATOR(pg_catalog.~) '^(foo)$' COLLATE pg_catalog.default ORDER BY a COLLATE "en_US"`)
	if got := strings.Join(fieldShapes(sel.Query), "; "); got != "a; b" {
		t.Errorf("fields: %s", got)
	}
	if got := shape(sel.Query.Where); got != "regexp(c.relname, '^(foo)$')" {
		t.Errorf("where: %s", got)
	}
}

// TestConcurrentParse checks that Parse is safe for concurrent use (run
// with -race).
func TestConcurrentParse(t *testing.T) {
	queries := []string{
		"SELECT a::int, b ~* 'x' FROM t WHERE c IS DISTINCT FROM $1",
		"SELECT * FORM t",
		"INSERT INTO t VALUES (1, 'x')",
		"CREATE CONTINUOUS QUERY q AS SELECT a, count(*) FROM s GROUP BY a, TUMBLE(ts, INTERVAL '1' MINUTE)",
	}
	done := make(chan error)
	for g := 0; g < 8; g++ {
		go func(g int) {
			var err error
			for i := 0; i < 200 && err == nil; i++ {
				q := queries[(g+i)%len(queries)]
				_, perr := Parse(q)
				if (perr != nil) != (q == "SELECT * FORM t") {
					err = fmt.Errorf("%s: %v", q, perr)
				}
			}
			done <- err
		}(g)
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestCatalogForms checks the forms catalog queries use: subscripts,
// field selection, ARRAY(SELECT …), op ANY (array) and table functions.
func TestCatalogForms(t *testing.T) {
	for sql, want := range map[string]string{
		"SELECT (current_schemas(true))[1]":        "spate_subscript(paren(current_schemas(spate_cast('true', 'boolean'))), 1)",
		"SELECT (f(x)).n FROM t":                   "spate_field(paren(f(x)), 'n')",
		"SELECT ARRAY(SELECT a FROM t)":            "spate_array(subquery)",
		"SELECT a = ANY (b) FROM t":                "eq(a, spate_any(b))",
		"SELECT a <> ALL (b) FROM t":               "ne(a, spate_all(b))",
		"SELECT s FROM generate_series(1, 3) AS s": "s",
	} {
		sel := parseSelect(t, sql)
		if got := shape(sel.Query.Fields.Fields[0].Expr); got != want {
			t.Errorf("%s: got %s, want %s", sql, got, want)
		}
	}
	if _, ok := parseSelect(t, "SELECT a = ANY (SELECT b FROM u) FROM t").Query.Fields.Fields[0].Expr.(*ast.CompareSubqueryExpr); !ok {
		t.Errorf("ANY (SELECT …) is not a CompareSubqueryExpr")
	}
	sel := parseSelect(t, "SELECT s.r FROM generate_series(1, 3) AS s(r), t")
	var left ast.ResultSetNode = sel.Query.From.TableRefs
	for j, ok := left.(*ast.Join); ok; j, ok = left.(*ast.Join) {
		left = j.Left
	}
	if ts, ok := left.(*ast.TableSource); !ok || ts.AsName.O != "s" {
		t.Fatalf("table function: %T", left)
	} else if sub, ok := ts.Source.(*ast.SelectStmt); !ok || sub.Fields.Fields[0].AsName.O != "r" || shape(sub.Fields.Fields[0].Expr) != "generate_series(1, 3)" {
		t.Errorf("table function: %#v", ts.Source)
	}
}
