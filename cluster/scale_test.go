package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/spatedb/spate/parser"
)

// TestScaleOutAndIn scales every partitioned stage of every metamorphic
// query out (a third instance, split where the load halves) and back in
// while a COPY streams in, on in-process workers (under -race in make
// test): the results equal a single-process run, SHOW INSTANCES shows the
// new instances and ranges, and SHOW SCALING EVENTS records each step.
func TestScaleOutAndIn(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	var lines []string
	tm := int64(1_000)
	for i := 0; i < 6000; i++ {
		tm += int64(rng.IntN(3))
		lines = append(lines, fmt.Sprintf("%d,%d,%d", rng.IntN(40), rng.IntN(100), tm-int64(rng.IntN(2))))
	}
	lines = append(lines, fmt.Sprintf("0,0,%d", tm+1000))
	setup := func(s Session) {
		run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '2s')")
		for name, q := range metamorphicQueries {
			run(t, s, "CREATE CONTINUOUS QUERY "+name+" AS "+q)
		}
	}
	rs, s, c, _ := startCompared(t, setup, lines, Config{Parallelism: 2, BatchRows: 200}, 2)
	third := len(lines) / 3
	copyCSV(t, s, "ev", lines[:third])
	type target struct {
		query string
		stage int
	}
	var targets []target
	for name := range metamorphicQueries {
		c.mu.Lock()
		q := c.queries[name].def
		c.mu.Unlock()
		for _, st := range q.Plan.Stages {
			if st.Source == nil && len(st.PartitionBy) > 0 {
				targets = append(targets, target{name, st.ID})
			}
		}
	}
	if len(targets) < 5 {
		t.Fatalf("only %d partitioned stages to scale", len(targets))
	}
	ctx := context.Background()
	waitCheckpoints := func() {
		for _, tg := range targets {
			waitUntil(t, 10*time.Second, "a complete checkpoint of "+tg.query, func() bool {
				return run(t, s, "SELECT COUNT(*) FROM spate_checkpoints WHERE query = '"+tg.query+"' AND status = 'complete'")[0][0] != "0"
			})
		}
	}
	waitCheckpoints()
	// The rescales run while a COPY streams in: what the upstream kept
	// after the checkpoint is split and replayed.
	copying := copyAsync(s, "ev", lines[third:2*third])
	for _, tg := range targets {
		ev, err := c.ScaleOut(ctx, tg.query, tg.stage, -1, 0, "test")
		if err != nil {
			t.Fatalf("scale out %s stage %d: %v", tg.query, tg.stage, err)
		}
		if ev.Status != "done" || ev.OldRanges == ev.NewRanges {
			t.Fatalf("scale out %s: %+v", tg.query, ev)
		}
		t.Logf("%s stage %d: %s -> %s, %d bytes moved in %v", tg.query, tg.stage, ev.OldRanges, ev.NewRanges, ev.Bytes, ev.Took)
	}
	for _, tg := range targets {
		n := run(t, s, fmt.Sprintf("SELECT COUNT(*) FROM spate_instances WHERE query = '%s' AND stage = %d", tg.query, tg.stage))
		if n[0][0] != "3" {
			t.Errorf("%s stage %d runs %s instances after the scale-out, want 3", tg.query, tg.stage, n[0][0])
		}
	}
	if err := <-copying; err != nil {
		t.Fatal(err)
	}
	waitCheckpoints()
	copying = copyAsync(s, "ev", lines[2*third:])
	for _, tg := range targets {
		if _, err := c.ScaleIn(ctx, tg.query, tg.stage, -1, "test"); err != nil {
			t.Fatalf("scale in %s stage %d: %v", tg.query, tg.stage, err)
		}
	}
	if err := <-copying; err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the rescales to finish", func() bool {
		for _, qr := range c.runningQueries() {
			if qr.recovering.Load() {
				return false
			}
		}
		return true
	})
	for name := range metamorphicQueries {
		want := sortedText(run(t, rs, "SELECT * FROM "+name))
		got := sortedText(run(t, s, "SELECT * FROM "+name))
		if got != want {
			t.Errorf("%s differs after scaling: %s", name, firstDiff(want, got))
		}
	}
}

// copyAsync runs a COPY of lines into table on another goroutine, in
// chunks of 50 rows, and reports its error.
func copyAsync(s Session, table string, lines []string) <-chan error {
	done := make(chan error, 1)
	go func() {
		st, err := parser.ParseOne("COPY " + table + " FROM STDIN (FORMAT csv)")
		for len(lines) > 0 && err == nil {
			n := min(len(lines), 50)
			var res Result
			if res, err = s.Execute(context.Background(), st, nil); err == nil {
				if err = res.CopyIn.Write([]byte(strings.Join(lines[:n], "\n") + "\n")); err == nil {
					_, err = res.CopyIn.Finish()
				}
			}
			lines = lines[n:]
		}
		done <- err
	}()
	return done
}
