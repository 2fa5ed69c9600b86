package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestCheckpointRestoreMidStream checkpoints every instance of every
// kind of query halfway through its input, encodes and decodes the
// snapshots, replaces the pipeline by one restored from them and feeds
// the rest: the results must equal an uninterrupted run's.
func TestCheckpointRestoreMidStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var lines []string
	tm := int64(1_000)
	for i := 0; i < 6000; i++ {
		tm += int64(rng.IntN(3))
		v := fmt.Sprint(rng.IntN(100))
		if rng.IntN(20) == 0 {
			v = ""
		}
		lines = append(lines, fmt.Sprintf("%d,%s,%d", rng.IntN(40), v, tm-int64(rng.IntN(2))))
	}
	lines = append(lines, fmt.Sprintf("0,0,%d", tm+1000))
	half := len(lines) / 2

	setup := func(c *Coordinator) Session {
		s, _ := c.NewSession(context.Background(), "spate", "spate")
		run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '2s')")
		for name, q := range metamorphicQueries {
			run(t, s, "CREATE CONTINUOUS QUERY "+name+" AS "+q)
		}
		return s
	}
	ref, _ := NewCoordinator(Config{Parallelism: 3, BatchRows: 500})
	defer ref.Close()
	rs := setup(ref)
	copyCSV(t, rs, "ev", lines)

	c, _ := NewCoordinator(Config{Parallelism: 3, BatchRows: 500})
	defer c.Close()
	s := setup(c)
	copyCSV(t, s, "ev", lines[:half])
	for name := range metamorphicQueries {
		c.mu.Lock()
		qr := c.queries[name]
		c.mu.Unlock()
		snaps, err := qr.pipeline().snapshotLocal(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var decoded []*instanceSnapshot
		stateful := 0
		for _, sn := range snaps {
			b, err := sn.marshal()
			if err != nil {
				t.Fatal(err)
			}
			d, err := unmarshalInstanceSnapshot(b)
			if err != nil {
				t.Fatalf("%s: decoding stage %d instance %d: %v", name, sn.Stage, sn.Instance, err)
			}
			for _, op := range d.Ops {
				if op != nil {
					stateful++
				}
			}
			decoded = append(decoded, d)
		}
		if stateful == 0 && name != "filter" {
			t.Fatalf("%s: no operator state in %d snapshots", name, len(snaps))
		}
		if err := c.reopenLocal(qr, decoded); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	copyCSV(t, s, "ev", lines[half:])
	for name := range metamorphicQueries {
		want := sortedText(run(t, rs, "SELECT * FROM "+name))
		got := sortedText(run(t, s, "SELECT * FROM "+name))
		if want == "" {
			t.Fatalf("%s: empty result", name)
		}
		if got != want {
			t.Errorf("%s differs after restoring from snapshots: %s", name, firstDiff(want, got))
		}
	}
}

func TestInstanceSnapshotEncoding(t *testing.T) {
	s := &instanceSnapshot{Stage: 2, Instance: 1, Watermarks: []int64{5, 7}, Idle: []bool{false, true}, Watermark: 5, Out: 4, RowsIn: 10, RowsOut: 3,
		Ops: [][]byte{nil, []byte("state"), {}}}
	b, err := s.marshal()
	if err != nil {
		t.Fatal(err)
	}
	d, err := unmarshalInstanceSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if d.Stage != 2 || d.Instance != 1 || d.Out != 4 || len(d.Ops) != 3 || d.Ops[0] != nil || string(d.Ops[1]) != "state" || d.Ops[2] == nil {
		t.Fatalf("decoded %+v", d)
	}
	for cut := 0; cut < len(b); cut += 7 {
		if _, err := unmarshalInstanceSnapshot(b[:cut]); err == nil {
			t.Fatalf("a snapshot cut at %d of %d bytes decoded", cut, len(b))
		}
	}
}

// TestCheckpointRestoreLookupJoin: the same for a LEFT lookup join on a
// table loaded before the query was created.
func TestCheckpointRestoreLookupJoin(t *testing.T) {
	setup := func(c *Coordinator) Session {
		s, _ := c.NewSession(context.Background(), "spate", "spate")
		run(t, s, "CREATE STREAM ev (k INT, d INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
		run(t, s, "CREATE TABLE dim (k INT, d INT, v INT)")
		var vals []string
		for i := 0; i < 500; i++ {
			vals = append(vals, fmt.Sprintf("(%d, %d, %d)", i, i%7, i*10))
		}
		run(t, s, "INSERT INTO dim VALUES "+strings.Join(vals, ","))
		run(t, s, "CREATE CONTINUOUS QUERY q AS SELECT e.k, e.t, COALESCE(x.v, 0) AS v FROM ev e LEFT JOIN dim x ON x.k = e.k AND x.d = e.d")
		return s
	}
	var lines []string
	for i := 0; i < 2000; i++ {
		lines = append(lines, fmt.Sprintf("%d,%d,%d", i%600, (i%600)%7, i))
	}
	ref, _ := NewCoordinator(Config{Parallelism: 3})
	defer ref.Close()
	rs := setup(ref)
	copyCSV(t, rs, "ev", lines)
	c, _ := NewCoordinator(Config{Parallelism: 3})
	defer c.Close()
	s := setup(c)
	copyCSV(t, s, "ev", lines[:1000])
	c.mu.Lock()
	qr := c.queries["q"]
	c.mu.Unlock()
	snaps, err := qr.pipeline().snapshotLocal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var dec []*instanceSnapshot
	for _, sn := range snaps {
		b, _ := sn.marshal()
		d, _ := unmarshalInstanceSnapshot(b)
		dec = append(dec, d)
	}
	if err := c.reopenLocal(qr, dec); err != nil {
		t.Fatal(err)
	}
	copyCSV(t, s, "ev", lines[1000:])
	want := sortedText(run(t, rs, "SELECT * FROM q"))
	got := sortedText(run(t, s, "SELECT * FROM q"))
	if got != want {
		t.Fatalf("differs after restoring from snapshots: %s", firstDiff(want, got))
	}
	if !strings.Contains(got, "|1000\n") {
		t.Fatalf("no row found its table row: the test does not exercise the join")
	}
}

// reopenLocal replaces a query's pipeline (every instance in this
// process) with a new one restored from snapshots; the result store and
// the query's readers stay. The test ingests nothing meanwhile.
func (c *Coordinator) reopenLocal(qr *queryRuntime, snaps []*instanceSnapshot) error {
	old := qr.pipeline()
	place := c.place(qr.def, nil, nil)
	for _, row := range place.Hosts {
		for i := range row {
			row[i] = coordinatorHost
		}
	}
	p, err := newPipeline(qr.def, place, coordinatorHost, c.net, qr.result, c.cfg.Logger)
	if err != nil {
		return err
	}
	if err := p.restoreLocal(snaps); err != nil {
		p.stop()
		return err
	}
	if err := p.start(context.Background()); err != nil {
		p.stop()
		return err
	}
	c.mu.Lock()
	qr.setPipeline(p)
	c.mu.Unlock()
	old.markStopped()
	old.stop()
	return nil
}

// TestIdleQueryNotCheckpointed: a query that took nothing in since its
// last complete checkpoint is not checkpointed again, every interval
// though it is; rows coming in start the next one. A worker killed
// after the idle spell is repaired from the checkpoint taken before it,
// and the result equals a single-process run's.
func TestIdleQueryNotCheckpointed(t *testing.T) {
	lines := steadyLines(3000, 23)
	setup := func(s Session) {
		run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '2s', idle_timeout = '0')")
		for _, name := range []string{"tumble", "updating"} {
			run(t, s, "CREATE CONTINUOUS QUERY "+name+" AS "+metamorphicQueries[name])
		}
	}
	rs, s, c, kill := startCompared(t, setup, lines, Config{Parallelism: 2, BatchRows: 100}, 2)
	inFlight := func() int {
		n := 0
		for _, qr := range c.runningQueries() {
			n += qr.ckpt.inFlight()
		}
		return n
	}
	copyCSV(t, s, "ev", lines[:1000])
	// Each query's newest complete checkpoint.
	newest := func() map[string]int {
		m := map[string]int{}
		for _, r := range run(t, s, "SELECT query, MAX(epoch) FROM spate_checkpoints WHERE status = 'complete' GROUP BY query") {
			var n int
			fmt.Sscan(r[1], &n)
			m[r[0]] = n
		}
		return m
	}
	var idle map[string]int
	waitUntil(t, 10*time.Second, "the checkpoints to stop while nothing comes", func() bool {
		before := newest()
		time.Sleep(300 * time.Millisecond) // 15 intervals
		idle = newest()
		return len(idle) == 2 && fmt.Sprint(before) == fmt.Sprint(idle) && inFlight() == 0
	})
	time.Sleep(500 * time.Millisecond)
	if now := newest(); fmt.Sprint(now) != fmt.Sprint(idle) {
		t.Fatalf("checkpoints went on with nothing coming in: %v, then %v", idle, now)
	}
	copyCSV(t, s, "ev", lines[1000:1100])
	waitUntil(t, 10*time.Second, "a checkpoint of each query after rows came", func() bool {
		now := newest()
		return now["tumble"] > idle["tumble"] && now["updating"] > idle["updating"]
	})
	time.Sleep(300 * time.Millisecond)
	kill(0)
	copyCSV(t, s, "ev", lines[1100:])
	for _, name := range []string{"tumble", "updating"} {
		want := sortedText(run(t, rs, "SELECT * FROM "+name))
		waitUntil(t, 30*time.Second, name+" to equal the reference", func() bool {
			return sortedText(run(t, s, "SELECT * FROM "+name)) == want
		})
	}
}

// TestQueryOnlyHereKeepsNoOutput: a query whose stages all run on the
// coordinator (a filter and projection: source stages only) is not
// checkpointed — nothing of it can be lost with a worker — so its
// outlets keep nothing for replay, workers and checkpoints on though
// there are; a query with instances on workers keeps its output until
// a checkpoint covers it.
func TestQueryOnlyHereKeepsNoOutput(t *testing.T) {
	_, s := startSession(t, Config{Parallelism: 2, CheckpointInterval: time.Hour, CheckpointStore: "memory"}, 2)
	run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '2s')")
	run(t, s, "CREATE CONTINUOUS QUERY here AS SELECT k, v * 2 AS w, t FROM ev WHERE v > 0")
	run(t, s, "CREATE CONTINUOUS QUERY tumble AS "+metamorphicQueries["tumble"])
	copyCSV(t, s, "ev", steadyLines(2000, 7))
	got := run(t, s, "SELECT query, SUM(replay_buffer_bytes) > 0, MIN(worker) FROM spate_instances GROUP BY query ORDER BY query")
	if fmt.Sprint(got) != "[[here f coordinator] [tumble t coordinator]]" {
		t.Errorf("output kept for replay (query, any kept, first host): %v", got)
	}
}
