// Package elastic decides when a continuous query's stage scales out or
// in, and provides the workers it scales onto (pool.go).
//
// The Controller is a pure state machine: per-instance load reports and
// clock ticks go in, scaling decisions come out. It never acts; Drive
// (drive.go) feeds it from the coordinator and applies its decisions.
package elastic

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spatedb/spate/cluster"
)

// KeyRange is the part of the 64-bit key-hash space an instance owns,
// both ends included.
type KeyRange struct {
	Lo, Hi uint64
}

func (r KeyRange) String() string { return fmt.Sprintf("[%016x, %016x]", r.Lo, r.Hi) }

// Report is one instance's load over the last report interval.
type Report struct {
	Query    string
	Stage    int
	Instance int
	// Width is the number of instances the stage has now.
	Width int
	Range KeyRange
	// Busy is the fraction of the interval the instance spent handling
	// input (0 to 1).
	Busy float64
	// QueueDepth is the instance's input queue at the end of the interval.
	QueueDepth int
	// Buckets, optional, is the rows the instance received in each of
	// len(Buckets) equal parts of Range (see Bucket): where the load is
	// within it.
	Buckets []uint64
	// Rescaled is when the stage was last rescaled, by the controller or
	// by hand (ALTER … SCALE): its cool-down runs from then too.
	Rescaled time.Time
}

// Policy is a query's scaling settings (ALTER CONTINUOUS QUERY … SET).
type Policy struct {
	Autoscale    bool
	MinInstances int
	MaxInstances int
	// TargetUtilisation is the busy fraction above which an instance is
	// a bottleneck.
	TargetUtilisation float64
}

// DefaultPolicy is a query's policy until it is changed: autoscaling off.
var DefaultPolicy = Policy{MinInstances: 1, MaxInstances: 16, TargetUtilisation: 0.7}

// Config tunes the Controller; zero fields take the defaults.
type Config struct {
	// Sustain is how many consecutive reports a condition must hold.
	// Default 3.
	Sustain int
	// ScaleInBelow is the combined busy fraction under which two adjacent
	// instances merge (half the target utilisation when that is lower).
	// Default 0.3.
	ScaleInBelow float64
	// CoolDown is the least time between two decisions for one stage.
	// Default 30 s.
	CoolDown time.Duration
}

func (c Config) withDefaults() Config {
	if c.Sustain <= 0 {
		c.Sustain = 3
	}
	if c.ScaleInBelow <= 0 {
		c.ScaleInBelow = 0.3
	}
	if c.CoolDown <= 0 {
		c.CoolDown = 30 * time.Second
	}
	return c
}

// Kind is what a Decision does.
type Kind string

const (
	ScaleOut Kind = "scale out"
	ScaleIn  Kind = "scale in"
)

// Decision is what the Controller asks for.
type Decision struct {
	Kind  Kind
	Query string
	Stage int
	// Instance is the instance to split (ScaleOut), or the lower of the
	// two adjacent instances to merge (ScaleIn, with the instance that
	// owns the next key range).
	Instance int
	// Split is where the upper part of a split range starts (ScaleOut):
	// chosen where the reported load divides in two halves.
	Split uint64
	// Width is the number of instances the stage had when it was made.
	Width int
	// Old are the ranges before; New after.
	Old, New []KeyRange
	// Reason says why, with the measured load.
	Reason string
	At     time.Time
}

// Controller is the scaling state machine. It is not safe for concurrent
// use; Run drives it from one goroutine.
type Controller struct {
	cfg      Config
	policies map[string]Policy
	stages   map[stageKey]*stageState
}

type stageKey struct {
	query string
	stage int
}

type stageState struct {
	width     int
	instances map[int]*history
	lastAt    time.Time // last decision, or the last rescale reported
}

// history is an instance's recent reports, newest last (at most Sustain).
type history struct {
	reports []Report
}

// NewController returns a controller with every query on DefaultPolicy.
func NewController(cfg Config) *Controller {
	return &Controller{cfg: cfg.withDefaults(), policies: map[string]Policy{}, stages: map[stageKey]*stageState{}}
}

// SetPolicy sets a query's policy.
func (c *Controller) SetPolicy(query string, p Policy) { c.policies[query] = p }

// Policy returns a query's policy.
func (c *Controller) Policy(query string) Policy {
	if p, ok := c.policies[query]; ok {
		return p
	}
	return DefaultPolicy
}

// Forget drops what the controller knows of a query (it was dropped).
func (c *Controller) Forget(query string) {
	delete(c.policies, query)
	for k := range c.stages {
		if k.query == query {
			delete(c.stages, k)
		}
	}
}

// Observe takes one report. A report with another width than the
// stage's previous ones (the stage was rescaled) starts its history
// anew.
func (c *Controller) Observe(r Report) {
	k := stageKey{r.Query, r.Stage}
	st := c.stages[k]
	if st == nil {
		st = &stageState{instances: map[int]*history{}}
		c.stages[k] = st
	}
	if st.width != r.Width {
		st.width, st.instances = r.Width, map[int]*history{}
	}
	if r.Rescaled.After(st.lastAt) {
		st.lastAt = r.Rescaled // a rescale by hand starts the cool-down too
	}
	h := st.instances[r.Instance]
	if h == nil {
		h = &history{}
		st.instances[r.Instance] = h
	}
	h.reports = append(h.reports, r)
	if len(h.reports) > c.cfg.Sustain {
		h.reports = h.reports[len(h.reports)-c.cfg.Sustain:]
	}
}

// Tick returns the decisions due at now: for each stage of a query with
// autoscaling on and out of its cool-down (from its last rescale,
// whoever made it), at most one — a scale-out of
// its most loaded bottleneck instance, else a scale-in of its least
// loaded adjacent pair. After a decision the stage's history starts
// anew (its instances change).
func (c *Controller) Tick(now time.Time) []Decision {
	keys := make([]stageKey, 0, len(c.stages))
	for k := range c.stages {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].query != keys[j].query {
			return keys[i].query < keys[j].query
		}
		return keys[i].stage < keys[j].stage
	})
	var out []Decision
	for _, k := range keys {
		st := c.stages[k]
		p := c.Policy(k.query)
		if !p.Autoscale || (!st.lastAt.IsZero() && now.Sub(st.lastAt) < c.cfg.CoolDown) {
			continue
		}
		d, ok := c.scaleOut(k, st, p)
		if !ok {
			d, ok = c.scaleIn(k, st, p)
		}
		if !ok {
			continue
		}
		d.At, d.Width = now, st.width
		st.lastAt = now
		st.instances = map[int]*history{}
		out = append(out, d)
	}
	return out
}

// full reports whether h has Sustain reports.
func (c *Controller) full(h *history) bool { return h != nil && len(h.reports) == c.cfg.Sustain }

func (c *Controller) scaleOut(k stageKey, st *stageState, p Policy) (Decision, bool) {
	if st.width >= p.MaxInstances {
		return Decision{}, false
	}
	best, bestBusy, why := -1, -1.0, ""
	for i, h := range st.instances {
		if !c.full(h) {
			continue
		}
		hot, growing := true, true
		var busy, queues []string
		sum := 0.0
		for j, r := range h.reports {
			hot = hot && r.Busy > p.TargetUtilisation
			growing = growing && r.QueueDepth > 0 && (j == 0 || r.QueueDepth > h.reports[j-1].QueueDepth)
			busy = append(busy, fmt.Sprintf("%.2f", r.Busy))
			queues = append(queues, fmt.Sprint(r.QueueDepth))
			sum += r.Busy
		}
		// Below min_instances the busiest instance splits, hot or not.
		under := st.width < p.MinInstances
		if !hot && !growing && !under {
			continue
		}
		if avg := sum / float64(len(h.reports)); avg > bestBusy || (avg == bestBusy && i < best) {
			best, bestBusy = i, avg
			switch {
			case hot:
				why = fmt.Sprintf("busy %s > %.2f for %d reports", strings.Join(busy, ", "), p.TargetUtilisation, c.cfg.Sustain)
			case growing:
				why = fmt.Sprintf("input queue growing %s for %d reports", strings.Join(queues, ", "), c.cfg.Sustain)
			default:
				why = fmt.Sprintf("%d instances < min_instances %d (busy %s)", st.width, p.MinInstances, strings.Join(busy, ", "))
			}
		}
	}
	if best < 0 {
		return Decision{}, false
	}
	last := st.instances[best].reports[c.cfg.Sustain-1]
	split := splitPoint(last.Range, last.Buckets)
	return Decision{Kind: ScaleOut, Query: k.query, Stage: k.stage, Instance: best, Split: split,
		Old: []KeyRange{last.Range}, New: []KeyRange{{last.Range.Lo, split - 1}, {split, last.Range.Hi}},
		Reason: fmt.Sprintf("instance %d: %s", best, why)}, true
}

func (c *Controller) scaleIn(k stageKey, st *stageState, p Policy) (Decision, bool) {
	if st.width <= max(p.MinInstances, 1) {
		return Decision{}, false
	}
	// Adjacent is by key range: a scale-out appends its new instance, so
	// instance numbers need not follow the ranges.
	var order []int
	for i, h := range st.instances {
		if c.full(h) {
			order = append(order, i)
		}
	}
	sort.Slice(order, func(x, y int) bool {
		return lastRange(st.instances[order[x]]).Lo < lastRange(st.instances[order[y]]).Lo
	})
	// The merged instance must stay well below the target, or it would
	// be split again (a target under ScaleInBelow would flap).
	below := min(c.cfg.ScaleInBelow, p.TargetUtilisation/2)
	best, next, bestSum, why := -1, -1, math.Inf(1), ""
	for x := 0; x+1 < len(order); x++ {
		i, j := order[x], order[x+1]
		a, b := st.instances[i], st.instances[j]
		if lastRange(a).Hi+1 != lastRange(b).Lo {
			continue
		}
		low, sum := true, 0.0
		var parts []string
		for j := range a.reports {
			s := a.reports[j].Busy + b.reports[j].Busy
			low = low && s < below
			sum += s
			parts = append(parts, fmt.Sprintf("%.2f+%.2f", a.reports[j].Busy, b.reports[j].Busy))
		}
		if low && sum < bestSum {
			best, next, bestSum = i, j, sum
			why = fmt.Sprintf("busy %s < %s for %d reports", strings.Join(parts, ", "), strconv.FormatFloat(below, 'g', 3, 64), c.cfg.Sustain)
		}
	}
	if best < 0 {
		return Decision{}, false
	}
	lo, hi := lastRange(st.instances[best]), lastRange(st.instances[next])
	return Decision{Kind: ScaleIn, Query: k.query, Stage: k.stage, Instance: best,
		Old: []KeyRange{lo, hi}, New: []KeyRange{{lo.Lo, hi.Hi}},
		Reason: fmt.Sprintf("instances %d and %d: %s", best, next, why)}, true
}

// lastRange is the key range an instance's newest report gave.
func lastRange(h *history) KeyRange { return h.reports[len(h.reports)-1].Range }

// splitPoint is where to cut r so the load in buckets (equal parts of r)
// divides most evenly (cluster.SplitPoint, which manual scale-outs use
// too).
func splitPoint(r KeyRange, buckets []uint64) uint64 { return cluster.SplitPoint(r.Lo, r.Hi, buckets) }
