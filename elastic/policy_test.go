package elastic

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/spatedb/spate/cluster"
)

var whole = KeyRange{0, math.MaxUint64}

// halves are the ranges of a stage of two instances.
var halves = []KeyRange{{0, math.MaxUint64 / 2}, {math.MaxUint64/2 + 1, math.MaxUint64}}

func report(inst int, busy float64, queue int) Report {
	return Report{Query: "q", Stage: 1, Instance: inst, Width: 2, Range: halves[inst], Busy: busy, QueueDepth: queue}
}

func newAuto(t *testing.T) (*Controller, time.Time) {
	t.Helper()
	c := NewController(Config{CoolDown: time.Minute})
	p := DefaultPolicy
	p.Autoscale = true
	c.SetPolicy("q", p)
	return c, time.Unix(1_000_000, 0)
}

func TestScaleOutNeedsThreeBusyReports(t *testing.T) {
	c, now := newAuto(t)
	for i, busy := range []float64{0.9, 0.95} {
		c.Observe(report(0, busy, 0))
		c.Observe(report(1, 0.5, 0))
		if d := c.Tick(now.Add(time.Duration(i) * time.Second)); len(d) != 0 {
			t.Fatalf("decision after %d reports: %v", i+1, d)
		}
	}
	c.Observe(report(0, 0.8, 0))
	c.Observe(report(1, 0.5, 0))
	d := c.Tick(now.Add(3 * time.Second))
	if len(d) != 1 || d[0].Kind != ScaleOut || d[0].Instance != 0 || d[0].Stage != 1 {
		t.Fatalf("decisions %v, want a scale-out of instance 0", d)
	}
	if !strings.Contains(d[0].Reason, "busy 0.90, 0.95, 0.80 > 0.70 for 3 reports") {
		t.Errorf("reason %q", d[0].Reason)
	}
	// Without load buckets the range splits in the middle.
	if d[0].Split != halves[0].Lo+(halves[0].Hi-halves[0].Lo)/2+1 || d[0].New[0].Hi != d[0].Split-1 || d[0].New[1].Lo != d[0].Split {
		t.Errorf("split %x, new ranges %v", d[0].Split, d[0].New)
	}
}

func TestOneQuietReportResetsTheStreak(t *testing.T) {
	c, now := newAuto(t)
	for _, busy := range []float64{0.9, 0.5, 0.9, 0.9} {
		c.Observe(report(0, busy, 0))
		c.Observe(report(1, 0.4, 0))
	}
	if d := c.Tick(now); len(d) != 0 {
		t.Fatalf("decisions %v, want none: the last three reports are not all busy", d)
	}
	c.Observe(report(0, 0.9, 0))
	c.Observe(report(1, 0.4, 0))
	if d := c.Tick(now); len(d) != 1 {
		t.Fatalf("decisions %v, want a scale-out", d)
	}
}

func TestGrowingQueueScalesOut(t *testing.T) {
	c, now := newAuto(t)
	for _, q := range []int{4, 9, 16} {
		c.Observe(report(1, 0.3, q)) // not busy: waiting on something, but falling behind
		c.Observe(report(0, 0.3, 0))
	}
	d := c.Tick(now)
	if len(d) != 1 || d[0].Instance != 1 || !strings.Contains(d[0].Reason, "queue growing 4, 9, 16") {
		t.Fatalf("decisions %v", d)
	}
}

func TestScaleInAdjacentPairAndBounds(t *testing.T) {
	c, now := newAuto(t)
	for range 3 {
		c.Observe(report(0, 0.1, 0))
		c.Observe(report(1, 0.15, 0))
	}
	d := c.Tick(now)
	if len(d) != 1 || d[0].Kind != ScaleIn || d[0].Instance != 0 || d[0].New[0] != whole {
		t.Fatalf("decisions %v, want instances 0 and 1 merged into the whole range", d)
	}
	// A stage at min_instances does not shrink; one at max does not grow.
	p := c.Policy("q")
	p.MinInstances, p.MaxInstances = 2, 2
	c.SetPolicy("q", p)
	later := now.Add(2 * time.Minute)
	for range 3 {
		c.Observe(report(0, 0.1, 0))
		c.Observe(report(1, 0.1, 0))
	}
	if d := c.Tick(later); len(d) != 0 {
		t.Fatalf("scale-in below min_instances: %v", d)
	}
	for range 3 {
		c.Observe(report(0, 0.99, 0))
		c.Observe(report(1, 0.99, 0))
	}
	if d := c.Tick(later); len(d) != 0 {
		t.Fatalf("scale-out above max_instances: %v", d)
	}
}

func TestCoolDownAndAutoscaleOff(t *testing.T) {
	c, now := newAuto(t)
	busy := func() {
		for range 3 {
			c.Observe(report(0, 0.9, 0))
			c.Observe(report(1, 0.9, 0))
		}
	}
	busy()
	if d := c.Tick(now); len(d) != 1 {
		t.Fatalf("first decision: %v", d)
	}
	busy()
	if d := c.Tick(now.Add(30 * time.Second)); len(d) != 0 {
		t.Fatalf("a decision within the cool-down: %v", d)
	}
	if d := c.Tick(now.Add(61 * time.Second)); len(d) != 1 {
		t.Fatalf("no decision after the cool-down: %v", d)
	}
	c.SetPolicy("q", DefaultPolicy) // autoscale off
	busy()
	if d := c.Tick(now.Add(10 * time.Minute)); len(d) != 0 {
		t.Fatalf("a decision with autoscale off: %v", d)
	}
}

func TestRescaledStageStartsAfresh(t *testing.T) {
	c, now := newAuto(t)
	c.Observe(report(0, 0.9, 0))
	c.Observe(report(0, 0.9, 0))
	r := report(0, 0.9, 0)
	r.Width = 3 // the stage was rescaled meanwhile
	c.Observe(r)
	if d := c.Tick(now); len(d) != 0 {
		t.Fatalf("decision on reports from two widths: %v", d)
	}
}

// TestRescaleByHandStartsTheCoolDown: after a rescale by hand (ALTER …
// SCALE IN below min_instances here), the controller waits its
// cool-down from the rescale before it undoes it, however its reports
// since look; and then says why.
func TestRescaleByHandStartsTheCoolDown(t *testing.T) {
	c, now := newAuto(t) // cool-down 1 min
	p := c.Policy("q")
	p.MinInstances = 2
	c.SetPolicy("q", p)
	one := func(at time.Time) {
		c.Observe(Report{Query: "q", Stage: 1, Instance: 0, Width: 1, Range: whole, Busy: 0.1, Rescaled: now})
		if d := c.Tick(at); len(d) != 0 {
			t.Fatalf("decision %v %v after the rescale by hand", d, at.Sub(now))
		}
	}
	for i := range 5 {
		one(now.Add(time.Duration(i) * time.Second))
	}
	one(now.Add(59 * time.Second))
	c.Observe(Report{Query: "q", Stage: 1, Instance: 0, Width: 1, Range: whole, Busy: 0.1, Rescaled: now})
	d := c.Tick(now.Add(time.Minute))
	if len(d) != 1 || d[0].Kind != ScaleOut || !strings.Contains(d[0].Reason, "1 instances < min_instances 2") {
		t.Fatalf("decisions %v after the cool-down, want a scale-out back to min_instances", d)
	}
}

// The split point follows the load: with most rows in the lower
// buckets, the cut is where the load halves, not in the middle.
func TestSplitPointBalancesLoad(t *testing.T) {
	for _, tc := range []struct {
		buckets []uint64
		want    int // boundary index: the upper part starts at bucket want
	}{
		{[]uint64{10, 10, 10, 10}, 2},
		{[]uint64{100, 0, 0, 0, 0, 0, 0, 1}, 1},
		{[]uint64{60, 30, 5, 5, 0, 0, 0, 0}, 1},
		{[]uint64{1, 1, 1, 1, 1, 1, 40, 50}, 7},
		{[]uint64{0, 0, 0, 0}, -1}, // no load: the midpoint
	} {
		for _, r := range []KeyRange{whole, halves[1], {1000, 1999}} {
			got := splitPoint(r, tc.buckets)
			want := r.Lo + (r.Hi-r.Lo)/2 + 1
			if tc.want >= 0 {
				want = r.Lo + uint64(tc.want)*cluster.BucketWidth(r.Lo, r.Hi, len(tc.buckets))
			}
			if got != want {
				t.Errorf("%v over %v: split %x, want %x", tc.buckets, r, got, want)
			}
			if got <= r.Lo || got > r.Hi {
				t.Errorf("%v over %v: split %x outside the range", tc.buckets, r, got)
			}
			// The buckets an instance fills agree with the boundary.
			if tc.want > 0 {
				if b := cluster.LoadBucket(r.Lo, r.Hi, len(tc.buckets), got); b != tc.want {
					t.Errorf("LoadBucket(split) = %d, want %d", b, tc.want)
				}
				if b := cluster.LoadBucket(r.Lo, r.Hi, len(tc.buckets), got-1); b != tc.want-1 {
					t.Errorf("LoadBucket(split-1) = %d, want %d", b, tc.want-1)
				}
			}
		}
	}
	// A skewed scale-out decision carries the balanced split.
	c, now := newAuto(t)
	for range 3 {
		r := report(0, 0.9, 0)
		r.Buckets = []uint64{100, 0, 0, 0, 0, 0, 0, 1}
		c.Observe(r)
	}
	d := c.Tick(now)
	if len(d) != 1 || d[0].Split != halves[0].Lo+cluster.BucketWidth(halves[0].Lo, halves[0].Hi, 8) {
		t.Fatalf("decision %v, want the split after the first bucket", d)
	}
}

// TestScaleInPairsByKeyRange: after a scale-out the new instance is the
// stage's last while its range lies between others; the pair to merge is
// adjacent by range, not by number.
func TestScaleInPairsByKeyRange(t *testing.T) {
	c, now := newAuto(t)
	third := uint64(math.MaxUint64 / 3)
	ranges := []KeyRange{{0, third}, {2*third + 1, math.MaxUint64}, {third + 1, 2 * third}} // instance 2 in the middle
	busy := []float64{0.2, 0.05, 0.05}
	for range 3 {
		for i, r := range ranges {
			c.Observe(Report{Query: "q", Stage: 1, Instance: i, Width: 3, Range: r, Busy: busy[i]})
		}
	}
	d := c.Tick(now)
	if len(d) != 1 || d[0].Kind != ScaleIn || d[0].Instance != 2 || d[0].New[0] != (KeyRange{third + 1, math.MaxUint64}) {
		t.Fatalf("decisions %+v, want instance 2 merged with 1, the next range", d)
	}
	if !strings.Contains(d[0].Reason, "instances 2 and 1") {
		t.Errorf("reason %q", d[0].Reason)
	}
}

// A stage below min_instances splits its busiest instance, however
// quiet, until it has that many.
func TestScaleOutUpToMinInstances(t *testing.T) {
	c, now := newAuto(t)
	p := c.Policy("q")
	p.MinInstances = 3
	c.SetPolicy("q", p)
	for range 3 {
		c.Observe(report(0, 0.05, 0))
		c.Observe(report(1, 0.1, 0))
	}
	d := c.Tick(now)
	if len(d) != 1 || d[0].Kind != ScaleOut || d[0].Instance != 1 || !strings.Contains(d[0].Reason, "2 instances < min_instances 3") {
		t.Fatalf("decisions %v, want instance 1 split to reach min_instances", d)
	}
	// At min_instances nothing more happens.
	for range 3 {
		for i := range 3 {
			c.Observe(Report{Query: "q", Stage: 1, Instance: i, Width: 3, Range: KeyRange{uint64(i) << 60, uint64(i)<<60 + 1<<60 - 1}, Busy: 0.1})
		}
	}
	if d := c.Tick(now.Add(2 * time.Minute)); len(d) != 0 {
		t.Fatalf("decisions at min_instances: %v", d)
	}
}

// With a target under the scale-in threshold, a pair merges only below
// half the target: a merged instance is not split again at once.
func TestLowTargetDoesNotFlap(t *testing.T) {
	c, now := newAuto(t)
	p := c.Policy("q")
	p.TargetUtilisation = 0.1
	c.SetPolicy("q", p)
	for range 3 {
		c.Observe(report(0, 0.04, 0))
		c.Observe(report(1, 0.05, 0)) // 0.09 together: not below 0.05
	}
	if d := c.Tick(now); len(d) != 0 {
		t.Fatalf("merged two instances that together pass half the target: %v", d)
	}
	for range 3 {
		c.Observe(report(0, 0.02, 0))
		c.Observe(report(1, 0.02, 0))
	}
	d := c.Tick(now)
	if len(d) != 1 || d[0].Kind != ScaleIn || !strings.Contains(d[0].Reason, "< 0.05 for 3 reports") {
		t.Fatalf("decisions %v, want a merge below 0.05", d)
	}
	// The threshold is said as it is, not rounded (0.005, not 0.01).
	p.TargetUtilisation = 0.01
	c.SetPolicy("q", p)
	for range 3 {
		c.Observe(report(0, 0, 0))
		c.Observe(report(1, 0, 0))
	}
	if d := c.Tick(now.Add(time.Hour)); len(d) != 1 || !strings.Contains(d[0].Reason, "< 0.005 for 3 reports") {
		t.Fatalf("decisions %v, want a merge below 0.005", d)
	}
}
