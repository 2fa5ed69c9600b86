package linearroad

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math"
	"os"
	"testing"
	"time"
)

func TestDeterminism(t *testing.T) {
	cfg := Config{Expressways: 2, Duration: 5 * time.Minute, Seed: 42}
	sum := func(cfg Config) ([32]byte, [32]byte, int) {
		var rep, hist bytes.Buffer
		if err := WriteAll(&rep, &hist, cfg); err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(rep.Bytes()), sha256.Sum256(hist.Bytes()), rep.Len()
	}
	r1, h1, n := sum(cfg)
	r2, h2, _ := sum(cfg)
	if r1 != r2 || h1 != h2 {
		t.Fatal("same seed gave different bytes")
	}
	if n == 0 {
		t.Fatal("no output")
	}
	// WriteCSV and WriteHistory alone give the same bytes as WriteAll.
	var rep, hist bytes.Buffer
	if err := WriteCSV(&rep, cfg); err != nil {
		t.Fatal(err)
	}
	if err := WriteHistory(&hist, cfg); err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(rep.Bytes()) != r1 || sha256.Sum256(hist.Bytes()) != h1 {
		t.Fatal("WriteCSV/WriteHistory differ from WriteAll")
	}
	cfg.Seed = 43
	if r3, h3, _ := sum(cfg); r3 == r1 || h3 == h1 {
		t.Fatal("another seed gave the same bytes")
	}
	// The CSV reads back to the generated records.
	recs, err := Collect(Config{Expressways: 2, Duration: 5 * time.Minute, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	err = ReadReports(&rep, func(r Report) error {
		if r != recs[i] {
			t.Fatalf("record %d reads back as %+v, want %+v", i, r, recs[i])
		}
		i++
		return nil
	})
	if err != nil || i != len(recs) {
		t.Fatalf("read %d of %d records: %v", i, len(recs), err)
	}
}

// TestTraffic checks the invariants of the generated records: value ranges,
// event-time order, one report per car every 30 s from the entry ramp to
// the exit ramp, movement in the car's direction, unique vids and qids, and
// the request mix.
func TestTraffic(t *testing.T) {
	type carSeen struct {
		first, last Report
		n           int
		exited      bool
	}
	cars := map[int32]*carSeen{}
	var lastTime, lastQID int32 = 0, 0
	var n [4]int
	err := Generate(Config{Expressways: 3, Duration: 25 * time.Minute, Seed: 7}, func(r Report) error {
		if r.Time < lastTime {
			t.Fatalf("time goes back: %+v", r)
		}
		lastTime = r.Time
		n[r.Type]++
		if r.Type != TypePosition {
			if r.QID != lastQID+1 {
				t.Fatalf("qid %d after %d", r.QID, lastQID)
			}
			lastQID = r.QID
			c := cars[r.VID]
			if c == nil || c.last.Time != r.Time {
				t.Fatalf("request %+v not from a car reporting at that second", r)
			}
			if r.Type == TypeExpenditure && (r.Day < 1 || r.Day > HistoryDays || r.XWay != c.last.XWay) {
				t.Fatalf("bad type-3 request %+v", r)
			}
			if r.Type == TypeBalance && (r.XWay != -1 || r.Day != -1 || r.Pos != -1) {
				t.Fatalf("bad type-2 request %+v", r)
			}
			return nil
		}
		if r.Pos < 0 || r.Pos > MaxPos || r.Seg != r.Pos/SegmentFeet || r.Lane < 0 || r.Lane > 4 ||
			r.Dir < 0 || r.Dir > 1 || r.Spd < 0 || r.Spd > 100 || r.XWay < 0 || r.XWay > 2 ||
			r.QID != -1 || r.Day != -1 || r.Sinit != -1 || r.Send != -1 || r.DOW != -1 || r.TOD != -1 {
			t.Fatalf("bad position report %+v", r)
		}
		c := cars[r.VID]
		if c == nil {
			if r.Lane != laneEntry {
				t.Fatalf("car's first report not on the entry ramp: %+v", r)
			}
			cars[r.VID] = &carSeen{first: r, last: r, n: 1}
			return nil
		}
		p := c.last
		switch {
		case c.exited:
			t.Fatalf("report after the exit: %+v", r)
		case r.Time != p.Time+ReportInterval:
			t.Fatalf("report %+v %d s after the previous", r, r.Time-p.Time)
		case r.XWay != p.XWay || r.Dir != p.Dir:
			t.Fatalf("car changed expressway or direction: %+v after %+v", r, p)
		case r.Lane == laneEntry:
			t.Fatalf("entry ramp after the first report: %+v", r)
		case r.Spd > 0 && ((r.Dir == 0 && r.Pos < p.Pos) || (r.Dir == 1 && r.Pos > p.Pos)):
			t.Fatalf("car moved backwards: %+v after %+v", r, p)
		case r.Spd > 0 && r.Pos == p.Pos && r.Lane == p.Lane:
			t.Fatalf("moving car at the same place: %+v after %+v", r, p)
		case r.Spd == 0 && p.Spd == 0 && r.Pos != p.Pos:
			t.Fatalf("stopped car moved: %+v after %+v", r, p)
		}
		c.last, c.exited = r, r.Lane == laneExit
		c.n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	exited := 0
	for _, c := range cars {
		if c.exited {
			exited++
			if math.Abs(float64(c.last.Seg-c.first.Seg)) < 1 {
				t.Fatalf("car exited where it entered: %+v", c)
			}
		}
	}
	if exited < len(cars)/5 {
		t.Errorf("only %d of %d cars exited", exited, len(cars))
	}
	f2, f3 := float64(n[2])/float64(n[0]), float64(n[3])/float64(n[0])
	t.Logf("%d cars (%d exited), %d reports, type-2 %.2f%%, type-3 %.2f%%", len(cars), exited, n[0], 100*f2, 100*f3)
	if f2 < 0.008 || f2 > 0.012 || f3 < 0.004 || f3 > 0.006 {
		t.Errorf("request mix: type-2 %.4f, type-3 %.4f of reports", f2, f3)
	}
}

// perMinute counts the position reports per minute and expressway.
func perMinute(t *testing.T, cfg Config) [][]int {
	mins := int(cfg.Duration / time.Minute)
	counts := make([][]int, max(cfg.Expressways, 1))
	for i := range counts {
		counts[i] = make([]int, mins)
	}
	err := Generate(cfg, func(r Report) error {
		if r.Type == TypePosition {
			counts[r.XWay][r.Time/60]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// TestRateCurve measures the report rate per minute of a full 3-hour run
// and checks it against the documented curve TargetRate: every minute
// after the first within ±5% (or 8 reports/s) of it, 10-minute averages growing, and the
// last minute within ±15% of 1,700 reports/s.
func TestRateCurve(t *testing.T) {
	if testing.Short() {
		t.Skip("3-hour run")
	}
	counts := perMinute(t, Config{Expressways: 1, Duration: 3 * time.Hour, Seed: 1})[0]
	for m := 1; m < len(counts); m++ {
		got := float64(counts[m]) / 60
		want := 0.0
		for s := m * 60; s < m*60+60; s++ {
			want += TargetRate(float64(s)+1, 0) / 60
		}
		// Each car reports at its first second and at its last, so the
		// rate runs ahead of cars/30 by about half the cars entering and
		// leaving per second: a few reports/s, most visible early on.
		if math.Abs(got-want) > max(0.05*want, 8) {
			t.Errorf("minute %d: %.0f reports/s, curve %.0f", m+1, got, want)
		}
	}
	prev := 0.0
	for m := 0; m+10 <= len(counts); m += 10 {
		avg := 0.0
		for _, c := range counts[m : m+10] {
			avg += float64(c) / 600
		}
		t.Logf("minutes %3d-%3d: %6.0f reports/s", m+1, m+10, avg)
		if avg < prev {
			t.Errorf("rate fell from %.0f to %.0f at minute %d", prev, avg, m+1)
		}
		prev = avg
	}
	end := float64(counts[len(counts)-1]) / 60
	if end < 0.85*DefaultEndRate || end > 1.15*DefaultEndRate {
		t.Errorf("rate in the last minute %.0f/s, want 1700 ±15%%", end)
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	t.Logf("last minute %.0f reports/s; %d reports in 3 h (%.0f/s on average)", end, total, float64(total)/10800)
}

// TestRatePerExpressway checks that every expressway of a run follows the
// curve (the rate is per expressway).
func TestRatePerExpressway(t *testing.T) {
	counts := perMinute(t, Config{Expressways: 3, Duration: 12 * time.Minute, Seed: 3})
	for x, c := range counts {
		got := float64(c[11]) / 60
		want := TargetRate(11*60+30, 0)
		if math.Abs(got-want) > 0.05*want {
			t.Errorf("xway %d minute 12: %.0f reports/s, curve %.0f", x, got, want)
		}
	}
}

// stopFinder finds in generated records the stopped cars (four reports in
// a row at one place) and the accidents (two or more of them at one
// place), from the records alone.
type stopFinder struct {
	last    map[int32]Report
	same    map[int32]int
	stopped map[place]map[int32]*span
}

type place struct{ xway, dir, lane, pos int32 }

type span struct{ from, to int32 }

type stopStat struct {
	accidents, lone int
	minDur, maxDur  int32 // seconds two cars stood together (first to last shared stopped report)
}

func newStopFinder() *stopFinder {
	return &stopFinder{last: map[int32]Report{}, same: map[int32]int{}, stopped: map[place]map[int32]*span{}}
}

func (f *stopFinder) add(r Report) {
	if r.Type != TypePosition {
		return
	}
	p, ok := f.last[r.VID]
	if ok && p.Pos == r.Pos && p.Lane == r.Lane {
		f.same[r.VID]++
	} else {
		f.same[r.VID] = 1
	}
	if r.Lane == laneExit {
		delete(f.last, r.VID)
		delete(f.same, r.VID)
	} else {
		f.last[r.VID] = r
	}
	if f.same[r.VID] >= 4 {
		k := place{r.XWay, r.Dir, r.Lane, r.Pos}
		if f.stopped[k] == nil {
			f.stopped[k] = map[int32]*span{}
		}
		if s := f.stopped[k][r.VID]; s != nil {
			s.to = r.Time
		} else {
			f.stopped[k][r.VID] = &span{r.Time, r.Time}
		}
	}
}

func (f *stopFinder) stats() stopStat {
	st := stopStat{minDur: math.MaxInt32}
	for _, cars := range f.stopped {
		if len(cars) == 1 {
			st.lone++
			continue
		}
		st.accidents++
		from, to := int32(0), int32(math.MaxInt32)
		for _, s := range cars {
			from, to = max(from, s.from), min(to, s.to)
		}
		st.minDur, st.maxDur = min(st.minDur, to-from), max(st.maxDur, to-from)
	}
	return st
}

func findIncidents(recs []Report) stopStat {
	f := newStopFinder()
	for _, r := range recs {
		f.add(r)
	}
	return f.stats()
}

func countOutputs(outs Outputs) (n [4]int, tolls int, maxToll int64) {
	for _, o := range outs {
		n[o.Type]++
		if o.Type == OutToll && o.Toll > 0 {
			tolls++
			maxToll = max(maxToll, o.Toll)
		}
	}
	return
}

func TestAccidentsAndTolls10m(t *testing.T) {
	cfg := Config{Expressways: 1, Duration: 10 * time.Minute, Seed: 1}
	recs, err := Collect(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := findIncidents(recs)
	var hist bytes.Buffer
	if err := WriteHistory(&hist, cfg); err != nil {
		t.Fatal(err)
	}
	h, err := ReadHistory(&hist)
	if err != nil {
		t.Fatal(err)
	}
	n, tolls, maxToll := countOutputs(Expected(recs, h))
	t.Logf("%d records; accidents %d, lone stopped cars %d; outputs %v, tolls > 0: %d (max %d); history rows %d",
		len(recs), st.accidents, st.lone, n, tolls, maxToll, h.Len())
	if st.accidents < 1 || n[OutAccident] == 0 {
		t.Errorf("no accident: %d accidents, %d accident notifications", st.accidents, n[OutAccident])
	}
	if tolls == 0 {
		t.Error("no toll > 0")
	}
	nonzero := 0
	for _, o := range Expected(recs, h) {
		if o.Type == OutExpenditure && o.Balance > 0 {
			nonzero++
		}
	}
	if n[OutBalance] == 0 || n[OutExpenditure] == 0 || nonzero == 0 {
		t.Errorf("requests: %v, %d expenditures > 0", n, nonzero)
	}
}

func TestAccidentsAndTolls3h(t *testing.T) {
	if testing.Short() {
		t.Skip("3-hour run")
	}
	f := newStopFinder()
	var outs Outputs
	v := NewValidator(nil, func(o Output) { outs = append(outs, o) })
	records := 0
	err := Generate(Config{Expressways: 1, Duration: 3 * time.Hour, Seed: 1}, func(r Report) error {
		records++
		f.add(r)
		return v.Add(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	v.Finish()
	st := f.stats()
	n, tolls, maxToll := countOutputs(outs)
	t.Logf("%d records; accidents %d (together %d..%d s), lone stopped cars %d; outputs %v, tolls > 0: %d (max %d)",
		records, st.accidents, st.minDur, st.maxDur, st.lone, n, tolls, maxToll)
	if st.accidents < 6 || st.lone < 2 {
		t.Errorf("%d accidents and %d lone stopped cars in 3 h", st.accidents, st.lone)
	}
	// Together from the second car's fourth report: 10-20 min minus the
	// 90 s it takes to become "stopped", give or take a report.
	if st.minDur < 600-120 || st.maxDur > 1200 {
		t.Errorf("accidents last %d..%d s", st.minDur, st.maxDur)
	}
	if tolls < n[OutToll]/20 || n[OutAccident] == 0 {
		t.Errorf("%d tolls > 0 of %d notifications, %d accident notifications", tolls, n[OutToll], n[OutAccident])
	}
}

// TestGeneratorThroughput measures how fast the CSV is generated. It only
// logs the rate unless LRB_PERF is set, then it requires 1M records/s.
func TestGeneratorThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	var n int64
	cw := &countingWriter{w: io.Discard, n: &n}
	cfg := Config{Expressways: 1, Duration: 90 * time.Minute, Seed: 1}
	recs := int64(0)
	cfg.Progress = func(_ time.Duration, r int64) { recs = r }
	start := time.Now()
	if err := WriteCSV(cw, cfg); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	rate := float64(recs) / el.Seconds()
	t.Logf("%d records (%d MB CSV) in %v: %.2fM records/s", recs, n>>20, el.Round(time.Millisecond), rate/1e6)
	if os.Getenv("LRB_PERF") != "" && rate < 1e6 {
		t.Errorf("%.0f records/s, want ≥ 1M", rate)
	}
}

type countingWriter struct {
	w io.Writer
	n *int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	*c.n += int64(len(p))
	return c.w.Write(p)
}

func BenchmarkWriteCSV(b *testing.B) {
	cfg := Config{Expressways: 1, Duration: time.Hour, Seed: 1}
	var recs int64
	cfg.Progress = func(_ time.Duration, r int64) { recs = r }
	for b.Loop() {
		if err := WriteCSV(io.Discard, cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(recs)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
