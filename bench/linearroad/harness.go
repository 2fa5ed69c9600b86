package linearroad

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// QueriesSQL is queries.sql: the stream, the history table and the
// continuous queries that compute Linear Road's outputs.
//
//go:embed queries.sql
var QueriesSQL string

// outputQueries are the continuous queries whose rows are Linear Road's
// outputs, by output type.
var outputQueries = [4]string{"lrb_tolls", "lrb_accidents", "lrb_balances", "lrb_daily"}

// HarnessConfig configures a benchmark run against a Spate server.
type HarnessConfig struct {
	// ConnString addresses the server (required).
	ConnString string
	// Gen describes the input: expressways, duration, seed.
	Gen Config
	// Speedup scales event time to wall time: 1 feeds one second of
	// reports per second (the benchmark's real time), 10 ten times faster;
	// 0 feeds as fast as the server takes them.
	Speedup float64
	// Setup runs queries.sql and loads the history table first. Default
	// true in cmd/spate; tests that set up themselves turn it off.
	Setup bool
	// Progress receives a line every few seconds while the run goes on;
	// nil for none.
	Progress io.Writer
	// SeriesCSV and PlotSVG, when set, receive the per-second throughput
	// and latency series as CSV and as an SVG chart.
	SeriesCSV, PlotSVG string
}

// Result is what a run measured.
type Result struct {
	Records     int64         // input records fed
	FeedTime    time.Duration // wall time to feed them
	DrainTime   time.Duration // from the end of feeding until the last output
	Throughput  float64       // records per second sustained while feeding
	Latency     LatencyStats  // toll and accident notifications
	Outputs     [4]int        // rows received per output type
	Diff        Diff
	PerSecond   []SecondStats
	Expressways int
	Speedup     float64
}

// LatencyStats summarises notification latencies: from the wall time the
// report's second was sent to the wall time the notification arrived.
type LatencyStats struct {
	Count         int
	P50, P99, Max time.Duration
	Over5s        int // notifications later than the 5-second bound
}

// SecondStats is one second of event time.
type SecondStats struct {
	Second        int
	Records       int
	Notifications int
	P99, Max      time.Duration
}

// Bound is Linear Road's response-time requirement.
const Bound = 5 * time.Second

// Run feeds the generated input into the server, collects the outputs by
// subscribing to the output queries, validates them against the reference
// implementation and measures notification latency.
func Run(ctx context.Context, cfg HarnessConfig) (*Result, error) {
	if cfg.ConnString == "" {
		return nil, fmt.Errorf("linearroad: no server to connect to")
	}
	if cfg.Gen.Expressways <= 0 {
		cfg.Gen.Expressways = 1
	}
	if cfg.Gen.Duration <= 0 {
		cfg.Gen.Duration = 3 * time.Hour
	}
	conn, err := pgx.Connect(ctx, cfg.ConnString)
	if err != nil {
		return nil, fmt.Errorf("linearroad: connect: %w", err)
	}
	defer conn.Close(context.Background())
	var hist bytes.Buffer
	if err := WriteHistory(&hist, cfg.Gen); err != nil {
		return nil, err
	}
	if cfg.Setup {
		if _, err := conn.Exec(ctx, QueriesSQL, pgx.QueryExecModeSimpleProtocol); err != nil {
			return nil, fmt.Errorf("linearroad: setting up the queries: %w", err)
		}
		if _, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(hist.Bytes()), "COPY history FROM STDIN (FORMAT csv)"); err != nil {
			return nil, fmt.Errorf("linearroad: loading history: %w", err)
		}
	}
	h, err := ReadHistory(bytes.NewReader(hist.Bytes()))
	if err != nil {
		return nil, err
	}
	hist.Reset()

	start := time.Now()
	col := &collector{start: start}
	subCtx, stopSubs := context.WithCancel(ctx)
	defer stopSubs()
	var subs sync.WaitGroup
	subErrs := make(chan error, len(outputQueries))
	for _, q := range outputQueries {
		sc, err := pgx.Connect(ctx, cfg.ConnString)
		if err != nil {
			return nil, fmt.Errorf("linearroad: connect subscriber: %w", err)
		}
		defer sc.Close(context.Background())
		subs.Add(1)
		go func(q string) {
			defer subs.Done()
			w := &lineWriter{fn: col.add}
			_, err := sc.PgConn().CopyTo(subCtx, w, "COPY (SUBSCRIBE "+q+") TO STDOUT")
			if err != nil && subCtx.Err() == nil {
				subErrs <- fmt.Errorf("linearroad: subscription to %s: %w", q, err)
			}
		}(q)
	}
	// Feed only once every subscription is registered (SHOW CONTINUOUS
	// QUERIES counts subscribers), so that no output is missed.
	for deadline := time.Now().Add(10 * time.Second); ; {
		rows, err := conn.Query(ctx, "SHOW CONTINUOUS QUERIES")
		if err != nil {
			return nil, err
		}
		subscribed := map[string]bool{}
		col := -1
		for i, f := range rows.FieldDescriptions() {
			if f.Name == "subscribers" {
				col = i
			}
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				return nil, err
			}
			if n, ok := vals[max(col, 0)].(int64); ok && col >= 0 && n > 0 {
				subscribed[fmt.Sprint(vals[0])] = true
			}
		}
		if rows.Err() != nil {
			return nil, rows.Err()
		}
		all := true
		for _, q := range outputQueries {
			all = all && subscribed[q]
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("linearroad: subscriptions not registered after 10 s (are the queries of queries.sql created?)")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Feed the reports through one COPY, second by second.
	pr, pw := io.Pipe()
	copyDone := make(chan error, 1)
	go func() {
		_, err := conn.PgConn().CopyFrom(ctx, pr, "COPY reports FROM STDIN (FORMAT csv)")
		pr.CloseWithError(err)
		copyDone <- err
	}()
	var reports []Report
	res := &Result{Expressways: cfg.Gen.Expressways, Speedup: cfg.Speedup}
	feedStart := time.Now()
	col.setFeedStart(feedStart)
	bw := bufio.NewWriterSize(pw, 1<<16)
	var line []byte
	cur := int32(-1)
	lastProgress := time.Now()
	flushSecond := func(sec int32) error {
		if err := bw.Flush(); err != nil {
			return err
		}
		col.sent(int(sec), time.Now())
		return nil
	}
	genErr := Generate(cfg.Gen, func(r Report) error {
		if r.Time != cur {
			if cur >= 0 {
				if err := flushSecond(cur); err != nil {
					return err
				}
			}
			cur = r.Time
			if cfg.Speedup > 0 {
				due := feedStart.Add(time.Duration(float64(r.Time) / cfg.Speedup * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
			}
			if cfg.Progress != nil && time.Since(lastProgress) >= 2*time.Second {
				lastProgress = time.Now()
				fmt.Fprintf(cfg.Progress, "  event time %s, %d records fed, %d notifications, recent p99 latency %v\n",
					time.Duration(r.Time)*time.Second, len(reports), col.notifications(), col.recentP99().Round(time.Millisecond))
			}
		}
		reports = append(reports, r)
		line = AppendCSV(line[:0], r)
		_, err := bw.Write(line)
		return err
	})
	if genErr == nil && cur >= 0 {
		genErr = flushSecond(cur)
	}
	// A record of an unused type far after the end closes every window.
	if genErr == nil {
		closing := Report{Type: 9, Time: int32(cfg.Gen.Duration/time.Second) + 3600, VID: -1, Spd: -1, XWay: -1, Lane: -1, Dir: -1, Seg: -1, Pos: -1, QID: -1, Sinit: -1, Send: -1, DOW: -1, TOD: -1, Day: -1}
		line = AppendCSV(line[:0], closing)
		if _, genErr = bw.Write(line); genErr == nil {
			genErr = bw.Flush()
		}
	}
	if genErr != nil {
		pw.CloseWithError(genErr)
		<-copyDone
		return nil, genErr
	}
	pw.Close()
	if err := <-copyDone; err != nil {
		return nil, fmt.Errorf("linearroad: COPY reports: %w", err)
	}
	res.FeedTime = time.Since(feedStart)
	res.Records = int64(len(reports))
	res.Throughput = float64(res.Records) / res.FeedTime.Seconds()
	feedEnd := time.Now()

	// COPY returns once every query has processed the rows; give the
	// subscriptions a moment to deliver the last of them — and, while a
	// repair is under way (a worker died: statements do not wait for a
	// query whose repair waits for a worker), until it is through.
	expected := Expected(reports, h)
	reports = nil
	for idle := 0; idle < 10; {
		n := col.count()
		select {
		case err := <-subErrs:
			return nil, err
		case <-time.After(50 * time.Millisecond):
		}
		if col.count() == n && n >= len(expected) {
			idle++
		} else if col.count() == n {
			idle++
			if time.Since(feedEnd) < 5*time.Second || repairing(ctx, conn) {
				idle = 0
			}
		} else {
			idle = 0
		}
	}
	res.DrainTime = col.lastArrival().Sub(feedEnd)
	if res.DrainTime < 0 {
		res.DrainTime = 0
	}
	stopSubs()
	subs.Wait()

	if col.err != nil {
		return nil, fmt.Errorf("%w (%d such rows)", col.err, col.bad)
	}
	got := col.outputs()
	for _, o := range got {
		res.Outputs[o.Type]++
	}
	res.Latency, res.PerSecond = col.latencies()
	res.Diff = Compare(expected, got)
	if cfg.SeriesCSV != "" {
		if err := writeSeries(cfg.SeriesCSV, res.PerSecond); err != nil {
			return nil, err
		}
	}
	if cfg.PlotSVG != "" {
		if err := writePlot(cfg.PlotSVG, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// Report writes the figures of a run.
func (r *Result) Report(w io.Writer) {
	fmt.Fprintf(w, "Linear Road, L=%d, speedup %s\n", r.Expressways, speedupName(r.Speedup))
	fmt.Fprintf(w, "  records fed:        %d in %v (%.0f records/s sustained)\n", r.Records, r.FeedTime.Round(time.Millisecond), r.Throughput)
	fmt.Fprintf(w, "  outputs:            %d tolls, %d accident alerts, %d balances, %d daily expenditures\n", r.Outputs[0], r.Outputs[1], r.Outputs[2], r.Outputs[3])
	fmt.Fprintf(w, "  notification latency (report sent -> notification received), %d notifications:\n", r.Latency.Count)
	fmt.Fprintf(w, "                      p50 %v, p99 %v, max %v; %d over the 5 s bound\n",
		r.Latency.P50.Round(time.Millisecond), r.Latency.P99.Round(time.Millisecond), r.Latency.Max.Round(time.Millisecond), r.Latency.Over5s)
	if r.Diff.OK() {
		fmt.Fprintf(w, "  validation:         OK, every output equals the reference implementation's\n")
	} else {
		fmt.Fprintf(w, "  validation:         FAILED\n%s", indent(r.Diff.String(), "    "))
	}
	fmt.Fprintf(w, "  L rating:           %s\n", r.LRating())
}

// LRating states the L rating this run supports:
//   - at speedup 1: L itself when every notification met the 5 s bound;
//   - at a speedup X > 0: the load of L expressways fed X times faster
//     than real time is that of L·X expressways, so L·X when every
//     notification met the bound (state grows with L, not X, so confirm
//     at speedup 1);
//   - at max speed: the sustained records/s divided by one expressway's
//     peak rate (1,700 reports/s plus ~1.5% requests), when latencies met
//     the bound.
func (r *Result) LRating() string {
	perXway := 1700.0 * 1.015
	switch {
	case !r.Diff.OK():
		return "none (validation failed)"
	case r.Latency.Over5s > 0:
		return fmt.Sprintf("below this load (%d notifications over 5 s)", r.Latency.Over5s)
	case r.Speedup == 1:
		return fmt.Sprintf("L >= %d (every notification within 5 s at real time)", r.Expressways)
	case r.Speedup > 0:
		return fmt.Sprintf("~%d by load (L=%d at %sx real time, every notification within 5 s); confirm with --speedup 1", int(float64(r.Expressways)*r.Speedup), r.Expressways, strconv.FormatFloat(r.Speedup, 'g', -1, 64))
	}
	return fmt.Sprintf("~%d by throughput (%.0f records/s sustained / %.0f per expressway at the 3 h peak, every notification within 5 s); confirm with --speedup 1", int(r.Throughput/perXway), r.Throughput, perXway)
}

func speedupName(s float64) string {
	if s <= 0 {
		return "max"
	}
	return strconv.FormatFloat(s, 'g', -1, 64) + "x"
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// lineWriter splits COPY … TO STDOUT data into lines.
type lineWriter struct {
	buf []byte
	fn  func(line []byte, at time.Time)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	now := time.Now()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.fn(w.buf[:i], now)
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// collector gathers output rows with their arrival times and the send
// time of each second of input.
type collector struct {
	start time.Time
	mu    sync.Mutex
	// protected by mu
	feedStart time.Time
	sentAt    []time.Time // by event second
	rows      Outputs
	arrivals  []time.Time
	last      time.Time
	bad       int   // unreadable rows
	err       error // the first unreadable row
}

func (c *collector) setFeedStart(t time.Time) {
	c.mu.Lock()
	c.feedStart = t
	c.mu.Unlock()
}

func (c *collector) sent(sec int, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.sentAt) <= sec {
		c.sentAt = append(c.sentAt, time.Time{})
	}
	c.sentAt[sec] = at
}

func (c *collector) add(line []byte, at time.Time) {
	o, err := ParseOutput(line)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.bad++
		if c.err == nil {
			c.err = fmt.Errorf("linearroad: unreadable output row %q: %w", line, err)
		}
		return
	}
	o.Emit = at.Sub(c.start).Microseconds()
	c.rows = append(c.rows, o)
	c.arrivals = append(c.arrivals, at)
	c.last = at
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rows)
}

func (c *collector) lastArrival() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func (c *collector) notifications() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, o := range c.rows {
		if o.Type <= OutAccident {
			n++
		}
	}
	return n
}

// recentP99 is the p99 latency of the last notifications received (a
// cheap figure for progress lines).
func (c *collector) recentP99() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ds []time.Duration
	for i := len(c.rows) - 1; i >= 0 && len(ds) < 20000; i-- {
		o := c.rows[i]
		if o.Type <= OutAccident && int(o.Time) < len(c.sentAt) && !c.sentAt[o.Time].IsZero() {
			ds = append(ds, c.arrivals[i].Sub(c.sentAt[o.Time]))
		}
	}
	return summarize(ds).P99
}

func (c *collector) outputs() Outputs {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append(Outputs(nil), c.rows...)
}

// latencies computes notification latencies overall and per second.
func (c *collector) latencies() (LatencyStats, []SecondStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var all []time.Duration
	per := map[int][]time.Duration{}
	for i, o := range c.rows {
		if o.Type > OutAccident || int(o.Time) >= len(c.sentAt) || c.sentAt[o.Time].IsZero() {
			continue
		}
		d := c.arrivals[i].Sub(c.sentAt[o.Time])
		all = append(all, d)
		per[int(o.Time)] = append(per[int(o.Time)], d)
	}
	stats := summarize(all)
	var series []SecondStats
	for sec := range c.sentAt {
		ds := per[sec]
		s := summarize(ds)
		series = append(series, SecondStats{Second: sec, Notifications: len(ds), P99: s.P99, Max: s.Max})
	}
	return stats, series
}

func summarize(ds []time.Duration) LatencyStats {
	if len(ds) == 0 {
		return LatencyStats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[int(math.Min(float64(len(s)-1), p*float64(len(s))))] }
	st := LatencyStats{Count: len(s), P50: q(0.5), P99: q(0.99), Max: s[len(s)-1]}
	for _, d := range s {
		if d > Bound {
			st.Over5s++
		}
	}
	return st
}

func writeSeries(path string, series []SecondStats) error {
	var b strings.Builder
	b.WriteString("second,notifications,p99_ms,max_ms\n")
	for _, s := range series {
		fmt.Fprintf(&b, "%d,%d,%.1f,%.1f\n", s.Second, s.Notifications, float64(s.P99.Microseconds())/1000, float64(s.Max.Microseconds())/1000)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// writePlot draws notifications per second and the p99 latency per
// second of event time as an SVG chart.
func writePlot(path string, r *Result) error {
	const w, h, pad = 900.0, 360.0, 50.0
	n := len(r.PerSecond)
	if n == 0 {
		n = 1
	}
	maxN, maxL := 1.0, float64(Bound.Milliseconds())
	for _, s := range r.PerSecond {
		maxN = math.Max(maxN, float64(s.Notifications))
		maxL = math.Max(maxL, float64(s.P99.Milliseconds()))
	}
	x := func(i int) float64 { return pad + float64(i)/float64(n)*(w-2*pad) }
	y := func(v, top float64) float64 { return h - pad - v/top*(h-2*pad) }
	var notes, lat strings.Builder
	for i, s := range r.PerSecond {
		fmt.Fprintf(&notes, "%.1f,%.1f ", x(i), y(float64(s.Notifications), maxN))
		fmt.Fprintf(&lat, "%.1f,%.1f ", x(i), y(float64(s.P99.Milliseconds()), maxL))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="20">Linear Road L=%d, speedup %s: notifications per second (blue, max %.0f) and p99 latency (red, max %.0f ms; dashed: 5 s)</text>`+"\n", pad, r.Expressways, speedupName(r.Speedup), maxN, maxL)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", pad, h-pad, w-pad, h-pad)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", pad, pad, pad, h-pad)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="red" stroke-dasharray="4"/>`+"\n", pad, y(float64(Bound.Milliseconds()), maxL), w-pad, y(float64(Bound.Milliseconds()), maxL))
	fmt.Fprintf(&b, `<polyline fill="none" stroke="steelblue" points="%s"/>`+"\n", notes.String())
	fmt.Fprintf(&b, `<polyline fill="none" stroke="firebrick" points="%s"/>`+"\n", lat.String())
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">event time (s) 0 … %d</text>`+"\n", pad, h-15, len(r.PerSecond))
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// repairing reports whether the server has a repair under way (SHOW
// RECOVERIES lists it, with no catch-up time yet).
func repairing(ctx context.Context, conn *pgx.Conn) bool {
	var n int64
	err := conn.QueryRow(ctx, "SELECT COUNT(*) FROM spate_recoveries WHERE caught_up_ms IS NULL").Scan(&n)
	return err == nil && n > 0
}
