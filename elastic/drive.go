package elastic

import (
	"context"
	"time"

	"github.com/spatedb/spate/cluster"
)

// Engine is what the controller drives: the coordinator
// (*cluster.Coordinator), or a fake in tests.
type Engine interface {
	// LoadReports is every partitioned instance's load since the last
	// call.
	LoadReports() []cluster.LoadReport
	// ScalingPolicies is every running query's settings.
	ScalingPolicies() map[string]cluster.ScalingPolicy
	// Apply carries out a decision; it is refused when the stage no
	// longer has the Width instances the decision was made on.
	Apply(ctx context.Context, d Decision) error
}

// coordinator adapts *cluster.Coordinator to Engine.
type coordinator struct{ *cluster.Coordinator }

func (c coordinator) Apply(ctx context.Context, d Decision) error {
	return c.ScaleDecided(ctx, d.Query, d.Stage, d.Instance, d.Split, d.Reason, d.Kind == ScaleOut, d.Width)
}

// ForCoordinator is the Engine of a coordinator.
func ForCoordinator(c *cluster.Coordinator) Engine { return coordinator{c} }

// Drive runs the controller over an engine until ctx ends: every interval
// it passes the queries' policies and each instance's load to the
// controller, and applies the decisions due (one at a time; a failed one
// is in SHOW SCALING EVENTS). onError, if set, hears about failures.
func Drive(ctx context.Context, e Engine, every time.Duration, cfg Config, onError func(Decision, error)) {
	c := NewController(cfg)
	t := time.NewTicker(every)
	defer t.Stop()
	known := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, d := range step(ctx, c, e, now, known) {
				if d.err != nil && onError != nil {
					onError(d.Decision, d.err)
				}
			}
		}
	}
}

type applied struct {
	Decision
	err error
}

// step is one tick of Drive.
func step(ctx context.Context, c *Controller, e Engine, now time.Time, known map[string]bool) []applied {
	policies := e.ScalingPolicies()
	for q := range known {
		if _, ok := policies[q]; !ok {
			c.Forget(q)
			delete(known, q)
		}
	}
	auto := false
	for q, p := range policies {
		known[q] = true
		auto = auto || p.Autoscale
		c.SetPolicy(q, Policy{Autoscale: p.Autoscale, MinInstances: p.MinInstances, MaxInstances: p.MaxInstances, TargetUtilisation: p.TargetUtilisation})
	}
	if !auto {
		return nil // no query scales itself: no load to gather
	}
	for _, r := range e.LoadReports() {
		c.Observe(Report{Query: r.Query, Stage: r.Stage, Instance: r.Instance, Width: r.Width, Range: KeyRange{Lo: r.Lo, Hi: r.Hi},
			Busy: r.Busy, QueueDepth: r.QueueDepth, Buckets: r.Buckets, Rescaled: r.Rescaled})
	}
	var out []applied
	for _, d := range c.Tick(now) {
		out = append(out, applied{d, e.Apply(ctx, d)})
	}
	return out
}
