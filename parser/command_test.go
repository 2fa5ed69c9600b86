package parser

import "testing"

func TestCommandName(t *testing.T) {
	for sql, want := range map[string]string{
		"CREATE STREAM s (a INT)":                    "CREATE STREAM",
		"DROP TABLE t":                               "DROP TABLE",
		"ALTER CONTINUOUS QUERY q SCALE OUT STAGE 1": "ALTER CONTINUOUS QUERY",
		"REVOKE SELECT ON t FROM r":                  "REVOKE",
		"start transaction":                          "BEGIN",
		"SET parallelism = 2":                        "SET",
		"copy t from stdin":                          "COPY",
		"  -- only a comment":                        "",
	} {
		stmt, err := ParseOne(sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if got := CommandName(stmt); got != want {
			t.Errorf("%s: got %q, want %q", sql, got, want)
		}
	}
}
