package linearroad

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Geometry and timing of Linear City.
const (
	Segments       = 100                      // one-mile segments per direction
	SegmentFeet    = 5280                     // feet per segment
	MaxPos         = Segments*SegmentFeet - 1 // largest position, 527999 feet
	ReportInterval = 30                       // seconds between two reports of a car
	HistoryDays    = 69                       // days covered by the historical tolls table
	MaxDuration    = 3 * time.Hour            // longest run the benchmark defines
	DefaultEndRate = 1700                     // position reports/s per expressway at 3 h
	rampTau        = 5400.0                   // time constant of the rate curve, seconds
	fullRun        = 10800.0                  // 3 h in seconds
)

// Record types of the input stream (the Type column).
const (
	TypePosition    = 0 // position report
	TypeBalance     = 2 // type-2 account balance request
	TypeExpenditure = 3 // type-3 daily expenditure request
)

const (
	laneEntry        = 0
	laneExit         = 4
	modeNew          = 0 // spawned, first report (entry ramp) not yet made
	modeDrive        = 1
	modeBound        = 2 // driving towards an accident position where it will stop
	modeStopped      = 3
	accidentReach    = 3000 // feet upstream within which the second accident car is chosen
	accidentDeadline = 300  // seconds the second car has to reach the accident position
)

// Config sizes a generated Linear Road input.
type Config struct {
	Expressways int           // L, the number of expressways; default 1
	Duration    time.Duration // event time covered (truncated to whole seconds), at most 3 h; default 3 h
	Seed        uint64        // random seed; the same Config gives the same records
	// EndRate is the position-report rate per expressway (reports/s) that
	// the rate curve reaches at 3 h; default 1700 as in the original.
	EndRate float64
	// Header makes WriteCSV start with a line naming the columns (off by
	// default so that COPY … (FORMAT csv) accepts the output as is).
	Header bool
	// Progress, if set, is called after every simulated minute with the
	// event time reached and the records produced so far.
	Progress func(reached time.Duration, records int64)
}

// Report is one input record (one CSV line). Unused fields hold -1, as in
// the original data files:
//
//	type 0 (position report):  qid, sinit, send, dow, tod, day = -1
//	type 2 (account balance):  spd, xway, lane, dir, seg, pos, sinit, send, dow, tod, day = -1
//	type 3 (daily expenditure): spd, lane, dir, seg, pos, sinit, send, dow, tod = -1;
//	                           xway is the expressway asked about, day is 1..69
//
// Type-4 (travel time) requests are not generated, so Sinit, Send, DOW and
// TOD are always -1.
type Report struct {
	Type  int32 // 0 position report, 2 account balance, 3 daily expenditure
	Time  int32 // seconds since the start of the run (event time)
	VID   int32 // vehicle id, unique per car
	Spd   int32 // speed in mph, 0..100
	XWay  int32 // expressway 0..L-1
	Lane  int32 // 0 entry ramp, 1..3 travel lanes, 4 exit ramp
	Dir   int32 // 0 eastbound (pos increasing), 1 westbound (pos decreasing)
	Seg   int32 // segment 0..99 = Pos/5280
	Pos   int32 // feet from the western end, 0..527999
	QID   int32 // query id of a type-2/3 request, unique in the run
	Sinit int32
	Send  int32
	DOW   int32
	TOD   int32
	Day   int32 // type 3: 1 (yesterday) .. 69
}

// CSVColumns is the column order of the reports CSV (and of the reports
// stream in SQL).
const CSVColumns = "type,time,vid,spd,xway,lane,dir,seg,pos,qid,sinit,send,dow,tod,day"

// TargetRate is the rate curve the generator reproduces: position reports
// per second on one expressway at event time t (seconds),
//
//	rate(t) = endRate · (1 − e^(−t/5400)) / (1 − e^(−2))
//
// a saturating curve that reaches endRate at 3 h and averages 0.66·endRate
// over the 3 hours (≈1,116/s for 1,700/s at the end, close to the ≈1,100
// records/s average that published runs of the original L=1 data report),
// with 10% of the end rate reached after 8 min, 50% after 51 min and 90%
// after 2 h 16 min. The measured rate runs slightly ahead of the curve (by
// half the cars entering and leaving per second, as a car reports at its
// first and at its last second): 112 reports/s on average over the first
// 10 minutes instead of 105, 1,706 instead of 1,685 over the last 10.
func TargetRate(t float64, endRate float64) float64 {
	if endRate <= 0 {
		endRate = DefaultEndRate
	}
	return endRate * (1 - math.Exp(-t/rampTau)) / (1 - math.Exp(-fullRun/rampTau))
}

// targetCars is the number of cars to keep on one expressway at second t:
// each car reports every 30 s, so 30·rate cars make rate reports per second.
func targetCars(t int32, endRate float64) int {
	return int(math.Round(ReportInterval * TargetRate(float64(t)+1, endRate)))
}

func (cfg *Config) normalize() error {
	if cfg.Expressways == 0 {
		cfg.Expressways = 1
	}
	if cfg.Expressways < 0 || cfg.Expressways > 1000 {
		return fmt.Errorf("linearroad: %d expressways out of range 1..1000", cfg.Expressways)
	}
	if cfg.Duration == 0 {
		cfg.Duration = MaxDuration
	}
	if cfg.Duration < time.Second || cfg.Duration > MaxDuration {
		return fmt.Errorf("linearroad: duration %v out of range 1s..3h", cfg.Duration)
	}
	if cfg.EndRate == 0 {
		cfg.EndRate = DefaultEndRate
	}
	if cfg.EndRate < 0 {
		return errors.New("linearroad: negative EndRate")
	}
	return nil
}

// car is one vehicle on an expressway.
type car struct {
	vid     int32
	pos     int32
	until   int32 // modeStopped: the time from which the car may move again
	inc     int32 // incident the car takes part in, -1 if none
	seg     int16
	exitSeg int16
	vpref   int16 // preferred (free-flow) speed
	dir     int8
	lane    int8
	mode    int8
}

// incident is an accident (two cars stopped at one position) or a
// breakdown (one car stopped alone, which must not make an accident).
type incident struct {
	accident bool
	dir      int8
	lane     int8
	seg      int16
	zone     int16 // upstream segments slowed down (accidents)
	pos      int32
	a, b     int32 // car indices; b = -1 once no second car is expected
	start    int32 // time the first car stopped
	deadline int32 // the second car must have arrived by then
	until    int32 // the cars move on at their first report at or after until; 0 = not set
	done     bool
}

// xway simulates one expressway.
type xway struct {
	id        int32
	rng       *rand.Rand
	cars      []car
	free      []int32
	buckets   [ReportInterval][]int32 // car indices by report phase (time mod 30)
	active    int
	count     [2][Segments]int32   // cars per direction and segment (last report)
	capf      [2][Segments]float64 // capacity factor (bottlenecks < 1)
	zone      [2][Segments]int32   // speed cap from accidents, 0 = none
	incidents []incident
	nextAcc   [2]int32 // time of the next accident per direction
	nextBreak [2]int32 // time of the next breakdown per direction
	accOn     [2]bool  // an accident is in progress in that direction
}

type gen struct {
	cfg     Config
	xws     []*xway
	nextVID int32
	nextQID int32
	records int64
	onSpawn func(vid, xway int32)
}

func newGen(cfg Config) (*gen, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	g := &gen{cfg: cfg, nextVID: 1, nextQID: 1}
	for i := range cfg.Expressways {
		x := &xway{id: int32(i), rng: rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15^uint64(i)))}
		for d := range 2 {
			for s := range Segments {
				x.capf[d][s] = 1
			}
			// Two or three bottlenecks (lane drops) per direction.
			for range 2 + x.rng.IntN(2) {
				x.capf[d][5+x.rng.IntN(Segments-10)] = 0.55 + 0.25*x.rng.Float64()
			}
			x.nextAcc[d] = int32(60 + x.rng.IntN(121))
			x.nextBreak[d] = int32(300 + x.rng.IntN(2101))
		}
		g.xws = append(g.xws, x)
	}
	return g, nil
}

// Generate produces the records of a Linear Road run in event-time order
// (seconds from 0; within a second by expressway, then in a fixed
// simulation order) and calls emit for each; it stops at emit's first
// error. The same Config gives the same records.
//
// Traffic model (per expressway, independently): cars enter at a random
// segment's entry ramp (first report on lane 0) in a random direction and
// leave at a random later segment through the exit ramp (last report on
// lane 4). They report every 30 s. A car's speed is the smaller of its
// preferred speed (55–75 mph) and its segment's speed, which falls linearly
// with the number of cars in the segment (75 mph empty, 5 mph at jam
// density; 2–3 bottleneck segments per direction jam earlier), ±3 mph of
// noise and at least 3 mph, so a moving car never reports one position
// twice; the density is taken between the car's segment and the next,
// weighted by how far into its segment the car is, so queues drain from
// their front. The number of cars follows TargetRate: each second t, new
// cars enter until the expressway has round(30·TargetRate(t+1)) of them.
//
// Accidents, one at a time per direction: the first starts 1–3 minutes
// into the run, each next one 5 + Exp(10) minutes after the previous was
// cleared. The first car stops where it last reported (a travel lane, at
// least 3 segments before its exit); the nearest car up to 3000 ft behind
// it stops at the same place and lane when it gets there, and both stand
// 10–20 minutes from then on (if the second car is not there within 5
// minutes it drives on and the first stands 1–5 more minutes alone). While
// the first car stands, its segment and 6–10 segments upstream are limited
// to 10–30 mph (slowest at the accident). Breakdowns, also one at a time
// per direction, the first 5–40 minutes into the run and each next 5 +
// Exp(25) minutes after the previous: a single car stands for 3–8 minutes,
// a stopped car that is no accident.
//
// Each position report is followed, with probability 1%, by a type-2
// request of that car and otherwise, with probability 0.5%, by a type-3
// request for a random day 1..69 on the car's expressway, at the same
// second.
func Generate(cfg Config, emit func(Report) error) error {
	g, err := newGen(cfg)
	if err != nil {
		return err
	}
	return g.run(emit)
}

func (g *gen) run(emit func(Report) error) error {
	end := int32(g.cfg.Duration / time.Second)
	for t := int32(0); t < end; t++ {
		for _, x := range g.xws {
			if err := x.second(g, t, emit); err != nil {
				return err
			}
		}
		if g.cfg.Progress != nil && (t%60 == 59 || t == end-1) {
			g.cfg.Progress(time.Duration(t+1)*time.Second, g.records)
		}
	}
	return nil
}

func (x *xway) second(g *gen, t int32, emit func(Report) error) error {
	for target := targetCars(t, g.cfg.EndRate); x.active < target; {
		x.spawn(g, t)
	}
	x.incidentsAt(t)
	b := &x.buckets[t%ReportInterval]
	for i := 0; i < len(*b); {
		ci := (*b)[i]
		r, exited := x.move(ci, t)
		g.records++
		if err := emit(r); err != nil {
			return err
		}
		if u := x.rng.IntN(1000); u < 15 {
			q := Report{Type: TypeBalance, Time: t, VID: r.VID, Spd: -1, XWay: -1, Lane: -1, Dir: -1, Seg: -1, Pos: -1,
				QID: g.nextQID, Sinit: -1, Send: -1, DOW: -1, TOD: -1, Day: -1}
			if u >= 10 {
				q.Type, q.XWay, q.Day = TypeExpenditure, x.id, int32(1+x.rng.IntN(HistoryDays))
			}
			g.nextQID++
			g.records++
			if err := emit(q); err != nil {
				return err
			}
		}
		if exited {
			last := len(*b) - 1
			(*b)[i] = (*b)[last]
			*b = (*b)[:last]
			x.free = append(x.free, ci)
			x.active--
			continue
		}
		i++
	}
	return nil
}

func (x *xway) spawn(g *gen, t int32) {
	var c car
	c.vid = g.nextVID
	g.nextVID++
	if g.onSpawn != nil {
		g.onSpawn(c.vid, x.id)
	}
	c.inc = -1
	c.dir = int8(x.rng.IntN(2))
	var in int
	if c.dir == 0 {
		in = x.rng.IntN(Segments - 1)
		c.exitSeg = int16(in + 1 + x.rng.IntN(Segments-1-in))
		c.pos = int32(in*SegmentFeet + x.rng.IntN(1000))
	} else {
		in = 1 + x.rng.IntN(Segments-1)
		c.exitSeg = int16(x.rng.IntN(in))
		c.pos = int32(in*SegmentFeet + SegmentFeet - 1 - x.rng.IntN(1000))
	}
	c.seg = int16(in)
	c.vpref = int16(55 + x.rng.IntN(21))
	c.mode = modeNew
	var ci int32
	if n := len(x.free); n > 0 {
		ci = x.free[n-1]
		x.free = x.free[:n-1]
		x.cars[ci] = c
	} else {
		ci = int32(len(x.cars))
		x.cars = append(x.cars, c)
	}
	x.buckets[t%ReportInterval] = append(x.buckets[t%ReportInterval], ci)
	x.active++
}

// speedAt is the speed traffic moves at a position: it falls linearly with
// the density of cars (relative to the segment's capacity), taken as a mix
// of the car's segment and the next one downstream weighted by how far
// into its segment the car is, so that the front of a queue drains at the
// speed of the emptier road ahead.
func (x *xway) speedAt(dir int8, pos int32) int {
	seg := pos / SegmentFeet
	f := float64(pos-seg*SegmentFeet) / SegmentFeet
	next := seg + 1
	if dir == 1 {
		f, next = 1-f, seg-1
	}
	k := float64(x.count[dir][seg]) / x.capf[dir][seg]
	if next >= 0 && next < Segments {
		k = (1-f)*k + f*float64(x.count[dir][next])/x.capf[dir][next]
	}
	v := max(75*(1-k/jamCars), 5)
	if zc := x.zone[dir][seg]; zc > 0 {
		v = min(v, float64(zc))
	}
	return int(v)
}

// jamCars is the number of cars in a one-mile, three-lane segment at which
// traffic is at its slowest.
const jamCars = 900

// move makes car ci's report at time t.
func (x *xway) move(ci int32, t int32) (Report, bool) {
	c := &x.cars[ci]
	r := Report{Type: TypePosition, Time: t, VID: c.vid, XWay: x.id, Dir: int32(c.dir),
		QID: -1, Sinit: -1, Send: -1, DOW: -1, TOD: -1, Day: -1}
	if c.mode == modeNew {
		c.mode = modeDrive
		c.lane = laneEntry
		x.count[c.dir][c.seg]++
		r.Spd = int32(min(x.speedAt(c.dir, c.pos), 15+x.rng.IntN(21)))
		r.Lane, r.Seg, r.Pos = laneEntry, int32(c.seg), c.pos
		return r, false
	}
	if c.mode == modeStopped {
		if t < c.until {
			r.Lane, r.Seg, r.Pos = int32(c.lane), int32(c.seg), c.pos
			return r, false
		}
		c.mode, c.inc = modeDrive, -1
	}
	v := min(x.speedAt(c.dir, c.pos), int(c.vpref)) + x.rng.IntN(7) - 3
	v = max(v, 3)
	step := int32(44 * v) // feet in 30 s at v mph
	if c.dir == 1 {
		step = -step
	}
	np := c.pos + step
	// Lane: leave the entry ramp, otherwise change lanes now and then.
	if c.lane == laneEntry {
		c.lane = int8(1 + x.rng.IntN(3))
	} else if x.rng.IntN(10) == 0 {
		if c.lane == 1 || (c.lane == 2 && x.rng.IntN(2) == 0) {
			c.lane++
		} else {
			c.lane--
		}
	}
	exited := false
	if c.mode == modeBound {
		in := &x.incidents[c.inc]
		if (c.dir == 0 && np >= in.pos) || (c.dir == 1 && np <= in.pos) {
			np, c.lane, v = in.pos, in.lane, 0
			c.mode = modeStopped
			in.until = t + 600 + int32(x.rng.IntN(601))
			c.until = in.until
			x.cars[in.a].until = in.until
		}
	}
	if c.mode != modeStopped {
		lo, hi := int32(c.exitSeg)*SegmentFeet, int32(c.exitSeg)*SegmentFeet+SegmentFeet-1
		switch {
		case c.seg == c.exitSeg:
			// Reached the exit segment on a travel lane: leave by its ramp.
			c.lane, exited = laneExit, true
			np = min(max(np, lo), hi)
		case (c.dir == 0 && np >= lo) || (c.dir == 1 && np <= hi):
			np = min(max(np, lo), hi)
			if x.rng.IntN(10) < 3 {
				c.lane, exited = laneExit, true // straight onto the exit ramp
			}
		}
	}
	np = min(max(np, 0), MaxPos)
	ns := int16(np / SegmentFeet)
	x.count[c.dir][c.seg]--
	if !exited {
		x.count[c.dir][ns]++
	}
	c.pos, c.seg = np, ns
	r.Spd, r.Lane, r.Seg, r.Pos = int32(v), int32(c.lane), int32(ns), np
	return r, exited
}

// incidentsAt starts, times out and ends accidents and breakdowns.
func (x *xway) incidentsAt(t int32) {
	changed := false
	for i := range x.incidents {
		in := &x.incidents[i]
		if in.done {
			continue
		}
		if in.b >= 0 && in.until == 0 && t >= in.deadline {
			// The second car did not get there: it drives on, the first
			// stands a little longer alone.
			b := &x.cars[in.b]
			b.mode, b.inc = modeDrive, -1
			in.b = -1
			in.until = t + 60 + int32(x.rng.IntN(241))
			x.cars[in.a].until = in.until
		}
		if in.until > 0 && t >= in.until {
			in.done = true
			if in.accident {
				x.accOn[in.dir] = false
				x.nextAcc[in.dir] = t + 300 + int32(x.rng.ExpFloat64()*600)
				changed = true
			} else {
				x.nextBreak[in.dir] = t + 300 + int32(x.rng.ExpFloat64()*1500)
			}
		}
	}
	for d := range int8(2) {
		if !x.accOn[d] && t >= x.nextAcc[d] {
			if x.startIncident(t, d, true) {
				x.accOn[d] = true
				changed = true
			} else {
				x.nextAcc[d] = t + 30
			}
		}
		if t >= x.nextBreak[d] {
			if x.startIncident(t, d, false) {
				x.nextBreak[d] = math.MaxInt32 // rescheduled when it ends
			} else {
				x.nextBreak[d] = t + 30
			}
		}
	}
	if changed {
		x.zone = [2][Segments]int32{}
		for i := range x.incidents {
			in := &x.incidents[i]
			if in.done || !in.accident {
				continue
			}
			for k := int32(0); k <= int32(in.zone); k++ {
				s := int32(in.seg) - k
				if in.dir == 1 {
					s = int32(in.seg) + k
				}
				if s < 0 || s >= Segments {
					break
				}
				capv := 10 + 20*k/int32(in.zone)
				if z := x.zone[in.dir][s]; z == 0 || capv < z {
					x.zone[in.dir][s] = capv
				}
			}
		}
	}
}

// startIncident stops a car (and, for an accident, binds a second car
// upstream to stop at the same place). It reports whether it found cars.
func (x *xway) startIncident(t int32, dir int8, accident bool) bool {
	canStop := func(c *car) bool {
		if c.dir != dir || c.mode != modeDrive || c.lane < 1 || c.lane > 3 {
			return false
		}
		d := int(c.exitSeg) - int(c.seg)
		return d >= 3 || d <= -3
	}
	n := 0
	for _, b := range x.buckets {
		n += len(b)
	}
	if n == 0 {
		return false
	}
	for range 40 {
		k := x.rng.IntN(n)
		var ai int32 = -1
		for _, b := range x.buckets {
			if k < len(b) {
				ai = b[k]
				break
			}
			k -= len(b)
		}
		a := &x.cars[ai]
		if !canStop(a) {
			continue
		}
		var bi int32 = -1
		if accident {
			best := int32(accidentReach + 1)
			for _, bk := range x.buckets {
				for _, ci := range bk {
					c := &x.cars[ci]
					if ci == ai || c.dir != dir || c.mode != modeDrive || c.seg == c.exitSeg {
						continue
					}
					gap := a.pos - c.pos
					beyond := c.exitSeg > a.seg
					if dir == 1 {
						gap, beyond = -gap, c.exitSeg < a.seg
					}
					if gap > 0 && gap < best && beyond {
						best, bi = gap, ci
					}
				}
			}
			if bi < 0 {
				continue
			}
		}
		in := incident{accident: accident, dir: dir, lane: a.lane, seg: a.seg, pos: a.pos,
			a: ai, b: bi, start: t, deadline: t + accidentDeadline}
		idx := int32(len(x.incidents))
		a.mode, a.inc, a.until = modeStopped, idx, math.MaxInt32
		if accident {
			in.zone = int16(6 + x.rng.IntN(5))
			b := &x.cars[bi]
			b.mode, b.inc = modeBound, idx
		} else {
			in.until = t + 180 + int32(x.rng.IntN(301))
			a.until = in.until
		}
		x.incidents = append(x.incidents, in)
		return true
	}
	return false
}

// AppendCSV appends r as one CSV line (with the trailing newline).
func AppendCSV(b []byte, r Report) []byte {
	for i, v := range [...]int32{r.Type, r.Time, r.VID, r.Spd, r.XWay, r.Lane, r.Dir, r.Seg, r.Pos,
		r.QID, r.Sinit, r.Send, r.DOW, r.TOD, r.Day} {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(v), 10)
	}
	return append(b, '\n')
}

// WriteCSV writes the generated records to w as CSV in the column order
// CSVColumns, one record per line, without a header unless cfg.Header.
func WriteCSV(w io.Writer, cfg Config) error {
	return WriteAll(w, nil, cfg)
}

// WriteHistory writes the historical tolls table for the cars of the run
// cfg describes, as CSV lines "vid,day,xway,tolls" ordered by vid and day.
// It simulates the run (without formatting it) to learn the cars.
func WriteHistory(w io.Writer, cfg Config) error {
	return WriteAll(nil, w, cfg)
}

// WriteAll simulates the run once and writes the reports CSV to reports and
// the historical tolls CSV to history; either may be nil.
//
// The history has, for every car of the run and every day 1..69, one row
// with probability 0.9 (a car does not drive every day): xway is the car's
// expressway in this run (with L > 1, another random one for 10% of the
// rows) and tolls is uniform in 0..99. Rows are a hash of (seed, vid, day),
// so they do not depend on the order of generation.
func WriteAll(reports, history io.Writer, cfg Config) error {
	if err := cfg.normalize(); err != nil {
		return err
	}
	g, err := newGen(cfg)
	if err != nil {
		return err
	}
	var xwayOf []int32
	if history != nil {
		xwayOf = []int32{-1} // vids start at 1
		g.onSpawn = func(vid, xw int32) { xwayOf = append(xwayOf, xw) }
	}
	emit := func(Report) error { return nil }
	var bw *bufio.Writer
	if reports != nil {
		bw = bufio.NewWriterSize(reports, 1<<20)
		if cfg.Header {
			bw.WriteString(CSVColumns + "\n")
		}
		buf := make([]byte, 0, 128)
		emit = func(r Report) error {
			buf = AppendCSV(buf[:0], r)
			_, err := bw.Write(buf)
			return err
		}
	}
	if err := g.run(emit); err != nil {
		return err
	}
	if bw != nil {
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	if history == nil {
		return nil
	}
	hw := bufio.NewWriterSize(history, 1<<20)
	buf := make([]byte, 0, 64)
	for vid := int32(1); vid < int32(len(xwayOf)); vid++ {
		for day := int32(1); day <= HistoryDays; day++ {
			row, ok := historyRow(cfg.Seed, cfg.Expressways, vid, day, xwayOf[vid])
			if !ok {
				continue
			}
			buf = buf[:0]
			for i, v := range [...]int32{row.VID, row.Day, row.XWay, row.Tolls} {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = strconv.AppendInt(buf, int64(v), 10)
			}
			buf = append(buf, '\n')
			if _, err := hw.Write(buf); err != nil {
				return err
			}
		}
	}
	return hw.Flush()
}

// historyRow derives the history row of (vid, day), if the car drove that day.
func historyRow(seed uint64, l int, vid, day, xw int32) (HistoryRow, bool) {
	h := splitmix(seed ^ splitmix(uint64(vid)<<8|uint64(day)))
	if h%10 == 0 {
		return HistoryRow{}, false
	}
	h = splitmix(h)
	if l > 1 && h%10 == 0 {
		xw = int32((uint64(xw) + 1 + (h>>8)%uint64(l-1)) % uint64(l))
	}
	h = splitmix(h)
	return HistoryRow{VID: vid, Day: day, XWay: xw, Tolls: int32(h % 100)}, true
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Collect returns all generated records (for tests and small runs).
func Collect(cfg Config) ([]Report, error) {
	var out []Report
	err := Generate(cfg, func(r Report) error {
		out = append(out, r)
		return nil
	})
	return out, err
}
