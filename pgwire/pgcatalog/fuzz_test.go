package pgcatalog

import (
	"context"
	"strings"
	"testing"

	"github.com/spatedb/spate/parser"
)

// FuzzCatalogQuery runs mutated catalog queries: any SQL that parses must
// give rows or an error with a SQLSTATE, never a panic.
func FuzzCatalogQuery(f *testing.F) {
	for _, sql := range corpus(f) {
		f.Add(sql)
	}
	f.Add("SELECT (current_schemas(true))[2], ARRAY(SELECT 1)[1], (x).y FROM pg_class x")
	f.Add("SELECT * FROM generate_series(1, 3) s(n) WHERE n = ANY('{1,2}')")
	view := testView()
	f.Fuzz(func(t *testing.T, sql string) {
		if len(sql) > 4000 {
			return
		}
		stmt, err := parser.ParseOne(sql)
		if err != nil {
			return
		}
		sel, ok := stmt.(*parser.Select)
		if !ok || !Reads(sel) {
			return
		}
		if _, err := Describe(view, Server{Version: "15.0"}, sel); err != nil {
			checkSQLState(t, err)
		}
		if _, _, err := Query(context.Background(), view, Server{Version: "15.0"}, sel, []any{"1", int64(2)}); err != nil {
			checkSQLState(t, err)
		}
	})
}

func checkSQLState(t *testing.T, err error) {
	t.Helper()
	s, ok := err.(interface{ SQLState() string })
	if !ok || len(s.SQLState()) != 5 || strings.ToUpper(s.SQLState()) != s.SQLState() {
		t.Fatalf("error without a SQLSTATE: %v", err)
	}
}
