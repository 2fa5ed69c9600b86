package pgcatalog

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/planner"
)

// bigView is a catalog of n streams of ten columns each.
func bigView(n int) cluster.CatalogView {
	view := testView()
	for i := 0; i < n; i++ {
		cols := make([]planner.Column, 10)
		for j := range cols {
			cols[j] = planner.Column{Name: fmt.Sprintf("c%d", j), Type: planner.TypeBigInt}
		}
		view.Streams = append(view.Streams, &planner.Stream{Name: fmt.Sprintf("stream_%04d", i), Columns: cols})
	}
	return view
}

// TestLargeCatalog runs the clients' widest queries — every column of
// every relation — on a catalog of 2,000 streams: within the join budget,
// and with every column listed.
func TestLargeCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("large catalog")
	}
	view := bigView(2000)
	rows := mustRun(t, view, "SELECT count(*) FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_class c ON (c.relnamespace = n.oid) JOIN pg_catalog.pg_attribute a ON (a.attrelid=c.oid) JOIN pg_catalog.pg_type t ON (a.atttypid = t.oid) WHERE n.nspname = 'public' AND a.attnum > 0")
	// The streams' columns, s, t, u and v's, and t's primary key index's.
	if want := int64(2000*10 + 2 + 2 + 4 + 1 + 1); rows[0][0] != want {
		t.Errorf("columns listed: %v, want %d", rows[0][0], want)
	}
}

// BenchmarkClientQueries times each captured client query on a catalog
// of 1,000 streams.
func BenchmarkClientQueries(b *testing.B) {
	view := bigView(1000)
	for i, q := range labeledCorpus(b) {
		stmt, err := parser.ParseOne(q.sql)
		if err != nil {
			continue
		}
		sel, ok := stmt.(*parser.Select)
		if !ok || !Reads(sel) {
			continue
		}
		name := strings.NewReplacer(" ", "_", "/", "_").Replace(fmt.Sprintf("%02d_%s", i, q.label))
		b.Run(name, func(b *testing.B) {
			for range b.N {
				if _, _, err := Query(context.Background(), view, Server{Version: "15.0"}, sel, []any{"0"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
