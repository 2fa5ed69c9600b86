package cluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/spatedb/spate/planner"
)

// TestUpstreamCopyHost: an instance's copy goes to the worker of one of
// its upstream instances other than its own, spread by index; to none
// when its upstream runs on the coordinator or on its own worker.
func TestUpstreamCopyHost(t *testing.T) {
	stages := []*planner.Stage{
		{ID: 0, Source: &planner.Source{}},
		{ID: 1, Sides: []planner.Side{{Stage: 0}}},
		{ID: 2, Sides: []planner.Side{{Stage: 1}}},
		{ID: 3, Sides: []planner.Side{{Stage: 1}, {Stage: 2}}},
	}
	pl := placement{Hosts: [][]string{
		{coordinatorHost},
		{"w1", "w2", "w3"},
		{"w1", "w2", "w3"},
		{"w2", "w2"},
	}}
	for _, c := range []struct {
		stage, idx int
		want       string
	}{
		{1, 0, ""},   // upstream on the coordinator
		{2, 0, "w2"}, // not its own w1: the next
		{2, 1, "w3"},
		{2, 2, "w1"}, // wraps around
		{3, 0, "w1"}, // stage 1's instance 0
		{3, 1, "w3"}, // stage 1's instance 1 is on w2 too: the next
	} {
		if got := upstreamCopyHost(stages[c.stage], pl, c.idx); got != c.want {
			t.Errorf("stage %d instance %d: copy on %q, want %q", c.stage, c.idx, got, c.want)
		}
	}
	alone := placement{Hosts: [][]string{{coordinatorHost}, {"w1"}, {"w1"}}}
	if got := upstreamCopyHost(stages[2], alone, 0); got != "" {
		t.Errorf("upstream on the same worker: copy on %q, want none", got)
	}
	onCoordinator := placement{Hosts: [][]string{{coordinatorHost}, {"w1"}, {coordinatorHost}}}
	if got := upstreamCopyHost(stages[2], onCoordinator, 0); got != "" {
		t.Errorf("an instance on the coordinator: copy on %q, want none", got)
	}
}

// TestUpstreamCopies: a worker keeps the two newest copies per instance,
// drops those a complete checkpoint supersedes and a stopped run's, and
// sends one only when it has the coordinator's bytes.
func TestUpstreamCopies(t *testing.T) {
	var u upstreamCopies
	k := [2]int{2, 1}
	for e := uint64(1); e <= 3; e++ {
		u.put("r1", k, e, []byte(strings.Repeat("x", int(e))))
	}
	u.put("r1", k, 2, []byte("late")) // older than the newest: dropped
	u.put("r2", k, 1, []byte("other"))
	if _, ok := u.get("r1", k, 1); ok {
		t.Error("kept three copies of one instance")
	}
	if d, ok := u.get("r1", k, 3); !ok || string(d) != "xxx" {
		t.Errorf("copy of epoch 3: %q %v", d, ok)
	}
	if got := u.held(); got != 2+3+5 {
		t.Errorf("held %d bytes, want 10", got)
	}
	u.trim("r1", 3)
	if _, ok := u.get("r1", k, 2); ok || u.held() != 3+5 {
		t.Errorf("trim to 3 kept epoch 2 (held %d)", u.held())
	}
	u.drop("r1")
	if _, ok := u.get("r2", k, 1); !ok || u.held() != 5 {
		t.Errorf("dropping r1 touched r2 (held %d)", u.held())
	}

	dp, err := newDataPlane("127.0.0.1:0", "tok", zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dp.close()
	w := &workerRuntime{net: dp, uploaded: map[string][]byte{}}
	data := []byte("snapshot bytes")
	w.copies.put("r1", k, 7, data)
	req := copyRequest{Run: "r1", Stage: k[0], Instance: k[1], Epoch: 7, Bytes: len(data), Sum: snapshotSum(data), To: dp.Addr()}
	bad := req
	bad.Sum++
	if err := w.sendCopy(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Errorf("a copy that differs was sent: %v", err)
	}
	missing := req
	missing.Epoch = 6
	if err := w.sendCopy(context.Background(), missing); err == nil {
		t.Error("sent a copy of an epoch it does not hold")
	}
	if err := w.sendCopy(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	got, err := w.takeUploaded(context.Background(), restoreChannel("r1", k))
	if err != nil || string(got) != string(data) {
		t.Errorf("restore channel got %q, %v", got, err)
	}
}

// TestRepairFromUpstreamCopy stops workers in the middle of a COPY into
// a join feeding an aggregate: the aggregate's instances keep copies of
// their snapshots on the workers of their upstream join instances, and
// the repair restores them from there — from the coordinator's snapshot
// when the worker holding the copy died too — with the result equal to
// a single-process run.
func TestRepairFromUpstreamCopy(t *testing.T) {
	for _, kills := range [][]int{{0}, {0, 1}} {
		t.Run(fmt.Sprint("kill ", kills), func(t *testing.T) { testRepairFromUpstreamCopy(t, kills) })
	}
}

func testRepairFromUpstreamCopy(t *testing.T, kills []int) {
	lines := steadyLines(4000, 13)
	half := len(lines) / 2
	setup := func(s Session) {
		run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')")
		run(t, s, "CREATE CONTINUOUS QUERY j AS SELECT a.k % 7 AS g, COUNT(*) AS n, SUM(b.v) AS s FROM ev a JOIN ev b ON a.k = b.k AND b.t BETWEEN a.t - 3 AND a.t GROUP BY a.k % 7")
	}
	rs, s, _, kill := startCompared(t, setup, lines, Config{Parallelism: 3, BatchRows: 100}, 3)
	copyCSV(t, s, "ev", lines[:half])
	// Stages: the two sides' sources, the join, the aggregate (3), whose
	// copies are on other workers.
	var copies [][]string
	waitUntil(t, 10*time.Second, "a complete checkpoint with copies upstream", func() bool {
		copies = run(t, s, "SELECT instance, worker, upstream_copy FROM spate_instance_checkpoints WHERE status = 'complete' AND stage = 3")
		return len(copies) == 3
	})
	waitUntil(t, 10*time.Second, "the workers reporting the copies they hold", func() bool {
		held := 0
		for _, r := range run(t, s, "SELECT snapshot_copy_bytes FROM spate_workers WHERE id <> 'coordinator'") {
			var n int
			fmt.Sscan(r[0], &n)
			held += n
		}
		return held > 0
	})
	dead := map[string]bool{}
	for _, i := range kills {
		dead[fmt.Sprintf("w%d", i+1)] = true
	}
	usable := 0 // instances whose copy's holder survives
	for _, r := range copies {
		if r[2] == "" || r[2] == r[1] {
			t.Fatalf("aggregate instance %s on %s has its copy on %q", r[0], r[1], r[2])
		}
		if !dead[r[2]] {
			usable++
		}
	}
	for _, i := range kills {
		kill(i)
	}
	copyCSV(t, s, "ev", lines[half:])
	waitUntil(t, 30*time.Second, "the repair", func() bool {
		recs := run(t, s, "SELECT status FROM spate_recoveries")
		return len(recs) > 0 && recs[len(recs)-1][0] == "recovered"
	})
	from := 0
	for _, r := range run(t, s, "SELECT restored_from_upstream, status FROM spate_recoveries") {
		var n int
		fmt.Sscan(r[0], &n)
		from += n
	}
	// Every aggregate instance is restored (the join instance lost with
	// one of them has two inputs): from its copy when the holder lives.
	if from < 1 || from > usable {
		t.Errorf("%d instances restored from their copy upstream; want 1 to %d (copies %v)", from, usable, copies)
	}
	ref := run(t, rs, "SELECT * FROM j")
	if len(ref) == 0 {
		t.Fatal("the join matched nothing")
	}
	want, got := sortedText(ref), sortedText(run(t, s, "SELECT * FROM j"))
	if got != want {
		t.Errorf("j differs after the repair: %s", firstDiff(want, got))
	}
}
