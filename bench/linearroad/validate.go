package linearroad

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Output types (the first column of every output row).
const (
	OutToll        = 0 // toll notification
	OutAccident    = 1 // accident notification
	OutBalance     = 2 // type-2 account balance answer
	OutExpenditure = 3 // type-3 daily expenditure answer
)

// Output is one notification or answer. Which fields a type uses, in CSV
// column order:
//
//	0 toll notification:     type, vid, time, emit, lav, toll
//	1 accident notification: type, vid, time, emit, seg
//	2 account balance:       type, time, emit, resulttime, qid, balance
//	3 daily expenditure:     type, time, emit, qid, balance
//
// Time is the time of the report or request that caused the row. Emit is
// when the row was produced (the reference implementation sets it to Time);
// it is not compared, the harness uses it for latency. Unused fields are 0.
type Output struct {
	Type       int32
	VID        int32
	Time       int32
	LAV        int32
	Seg        int32
	ResultTime int32
	QID        int32
	Emit       int64
	Toll       int64
	Balance    int64
}

// Outputs is a set of output rows in no particular order.
type Outputs []Output

// Key identifies an output row: notifications by (type, vid, time),
// answers by (type, qid) with the request's time.
type Key struct {
	Type int32
	ID   int32 // vid for types 0 and 1, qid for types 2 and 3
	Time int32
}

// Key returns o's key.
func (o Output) Key() Key {
	if o.Type == OutBalance || o.Type == OutExpenditure {
		return Key{o.Type, o.QID, o.Time}
	}
	return Key{o.Type, o.VID, o.Time}
}

func (k Key) compare(b Key) int {
	if c := cmp.Compare(k.Type, b.Type); c != 0 {
		return c
	}
	if c := cmp.Compare(k.ID, b.ID); c != 0 {
		return c
	}
	return cmp.Compare(k.Time, b.Time)
}

// compareOutputs orders outputs by key, then by all values (so that the
// order of duplicates is defined).
func compareOutputs(a, b Output) int {
	if a.Type != b.Type {
		return cmp.Compare(a.Type, b.Type)
	}
	ia, ib := a.VID, b.VID
	if a.Type == OutBalance || a.Type == OutExpenditure {
		ia, ib = a.QID, b.QID
	}
	if ia != ib {
		return cmp.Compare(ia, ib)
	}
	if a.Time != b.Time {
		return cmp.Compare(a.Time, b.Time)
	}
	for _, p := range [...][2]int64{{int64(a.LAV), int64(b.LAV)}, {a.Toll, b.Toll}, {int64(a.Seg), int64(b.Seg)},
		{int64(a.ResultTime), int64(b.ResultTime)}, {a.Balance, b.Balance}, {int64(a.VID), int64(b.VID)},
		{int64(a.QID), int64(b.QID)}, {a.Emit, b.Emit}} {
		if c := cmp.Compare(p[0], p[1]); c != 0 {
			return c
		}
	}
	return 0
}

// sameValues reports whether a and b agree on everything but Emit.
func sameValues(a, b Output) bool {
	a.Emit, b.Emit = 0, 0
	return a == b
}

// String formats o as its CSV line (without newline).
func (o Output) String() string { return strings.TrimSuffix(string(AppendOutputCSV(nil, o)), "\n") }

// Validator is the reference implementation of the Linear Road rules
// (RULES.md). Feed it the input records in nondecreasing time order with
// Add, then call Finish. It shares no code with the engine.
type Validator struct {
	hist    *History
	emit    func(Output)
	cars    map[int32]*vcar
	now     int32 // time of the records being added
	started bool
	pending []Report // type-2/3 requests of second now

	minute  int32                      // minute whose statistics are being gathered
	carMin  map[carMinKey]spdAcc       // per car and segment: speeds in minute
	stops   map[stopKey][]int32        // stopped reports in minute: distinct vids per position
	stats   map[int32]map[segKey]segSt // finished minutes (the last 6)
	accSegs map[int32]map[segKey]bool  // accident segments per finished minute (the last 2)
}

type segKey struct{ xway, dir, seg int32 }

type carMinKey struct {
	segKey
	vid int32
}

type stopKey struct{ xway, dir, lane, pos, seg int32 }

type spdAcc struct{ sum, n int64 }

type segSt struct{ nov, avg int32 }

type vcar struct {
	xway, dir, lane, pos, seg int32
	same                      int32 // consecutive reports at this (xway, dir, lane, pos), this one included
	entryToll                 int64 // toll of the car's latest segment entry (0 on the exit lane)
	balance                   int64
	lastCharge                int32
}

// NewValidator returns a validator that answers type-3 requests from hist
// (nil: every answer is 0) and passes every output row to emit.
func NewValidator(hist *History, emit func(Output)) *Validator {
	return &Validator{
		hist:    hist,
		emit:    emit,
		cars:    map[int32]*vcar{},
		carMin:  map[carMinKey]spdAcc{},
		stops:   map[stopKey][]int32{},
		stats:   map[int32]map[segKey]segSt{},
		accSegs: map[int32]map[segKey]bool{},
	}
}

// Expected runs the reference implementation over reports (sorted by time
// first if they are not) and returns every output row.
func Expected(reports []Report, hist *History) Outputs {
	if !slices.IsSortedFunc(reports, func(a, b Report) int { return cmp.Compare(a.Time, b.Time) }) {
		reports = slices.Clone(reports)
		slices.SortStableFunc(reports, func(a, b Report) int { return cmp.Compare(a.Time, b.Time) })
	}
	var out Outputs
	v := NewValidator(hist, func(o Output) { out = append(out, o) })
	for _, r := range reports {
		if err := v.Add(r); err != nil {
			panic(err) // sorted above
		}
	}
	v.Finish()
	return out
}

// ExpectedCSV runs the reference implementation over a reports CSV (see
// ReadReports) and returns every output row.
func ExpectedCSV(reports io.Reader, hist *History) (Outputs, error) {
	var out Outputs
	v := NewValidator(hist, func(o Output) { out = append(out, o) })
	if err := ReadReports(reports, v.Add); err != nil {
		return nil, err
	}
	v.Finish()
	return out, nil
}

// Add processes one input record. Records must come in nondecreasing
// time; within a second their order does not matter.
func (v *Validator) Add(r Report) error {
	if v.started && r.Time < v.now {
		return fmt.Errorf("linearroad: record at time %d after time %d", r.Time, v.now)
	}
	if !v.started || r.Time > v.now {
		v.answer()
		v.now, v.started = r.Time, true
	}
	switch r.Type {
	case TypePosition:
		v.position(r)
	case TypeBalance, TypeExpenditure:
		v.pending = append(v.pending, r)
	case 4: // travel-time estimates are not part of this benchmark
	default:
		return fmt.Errorf("linearroad: record type %d", r.Type)
	}
	return nil
}

// Finish answers the requests still pending. Call it after the last Add.
func (v *Validator) Finish() { v.answer() }

// answer answers the type-2/3 requests of second v.now, after all the
// position reports of that second.
func (v *Validator) answer() {
	for _, q := range v.pending {
		if q.Type == TypeBalance {
			o := Output{Type: OutBalance, Time: q.Time, Emit: int64(q.Time), QID: q.QID}
			if c := v.cars[q.VID]; c != nil {
				o.Balance, o.ResultTime = c.balance, c.lastCharge
			}
			v.emit(o)
			continue
		}
		v.emit(Output{Type: OutExpenditure, Time: q.Time, Emit: int64(q.Time), QID: q.QID,
			Balance: v.hist.Tolls(q.VID, q.Day, q.XWay)})
	}
	v.pending = v.pending[:0]
}

// minuteOf is the benchmark's minute number of a time: 1 for 0..59 s.
func minuteOf(t int32) int32 { return t/60 + 1 }

func (v *Validator) position(r Report) {
	m := minuteOf(r.Time)
	if m != v.minute {
		v.closeMinute()
		v.minute = m
	}
	sk := segKey{r.XWay, r.Dir, r.Seg}
	c := v.cars[r.VID]
	first := c == nil
	if first {
		c = &vcar{}
		v.cars[r.VID] = c
	}
	// Stopped cars: four reports in a row at one place.
	if !first && c.xway == r.XWay && c.dir == r.Dir && c.lane == r.Lane && c.pos == r.Pos {
		c.same++
	} else {
		c.same = 1
	}
	if c.same >= 4 {
		k := stopKey{r.XWay, r.Dir, r.Lane, r.Pos, r.Seg}
		if !slices.Contains(v.stops[k], r.VID) {
			v.stops[k] = append(v.stops[k], r.VID)
		}
	}
	// Speeds for the segment statistics.
	a := v.carMin[carMinKey{sk, r.VID}]
	a.sum += int64(r.Spd)
	a.n++
	v.carMin[carMinKey{sk, r.VID}] = a
	// Entering a segment: notify and charge.
	if first || c.seg != r.Seg {
		var toll int64
		if r.Lane != laneExit {
			nov := v.stats[m-1][sk].nov
			lav := v.lav(sk, m)
			aseg, accident := v.accidentAhead(sk, m)
			if nov > 50 && lav < 40 && !accident {
				toll = 2 * int64(nov-50) * int64(nov-50)
			}
			v.emit(Output{Type: OutToll, VID: r.VID, Time: r.Time, Emit: int64(r.Time), LAV: lav, Toll: toll})
			if accident {
				v.emit(Output{Type: OutAccident, VID: r.VID, Time: r.Time, Emit: int64(r.Time), Seg: aseg})
			}
		}
		if !first && c.entryToll > 0 {
			c.balance += c.entryToll
			c.lastCharge = r.Time
		}
		c.entryToll = toll
	}
	c.xway, c.dir, c.lane, c.pos, c.seg = r.XWay, r.Dir, r.Lane, r.Pos, r.Seg
}

// lav is the latest average velocity of a segment for minute m: the
// truncated mean of the segment's per-minute average speeds over the
// minutes m-5..m-1 that have one; 0 if none has.
func (v *Validator) lav(sk segKey, m int32) int32 {
	var sum, n int64
	for mm := m - 5; mm < m; mm++ {
		if st, ok := v.stats[mm][sk]; ok {
			sum += int64(st.avg)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return int32(sum / n)
}

// accidentAhead finds the nearest segment 0..4 segments downstream of sk
// that had an accident in minute m-1.
func (v *Validator) accidentAhead(sk segKey, m int32) (int32, bool) {
	acc := v.accSegs[m-1]
	if len(acc) == 0 {
		return 0, false
	}
	for i := range int32(5) {
		s := sk.seg + i
		if sk.dir != 0 {
			s = sk.seg - i
		}
		if acc[segKey{sk.xway, sk.dir, s}] {
			return s, true
		}
	}
	return 0, false
}

// closeMinute turns the gathered minute into segment statistics and
// accident segments.
func (v *Validator) closeMinute() {
	if v.minute == 0 {
		return
	}
	type segAcc struct{ sum, n int64 }
	segs := map[segKey]segAcc{}
	for k, a := range v.carMin {
		s := segs[k.segKey]
		s.sum += a.sum / a.n
		s.n++
		segs[k.segKey] = s
	}
	st := make(map[segKey]segSt, len(segs))
	for k, s := range segs {
		st[k] = segSt{nov: int32(s.n), avg: int32(s.sum / s.n)}
	}
	v.stats[v.minute] = st
	acc := map[segKey]bool{}
	for k, vids := range v.stops {
		if len(vids) >= 2 {
			acc[segKey{k.xway, k.dir, k.seg}] = true
		}
	}
	v.accSegs[v.minute] = acc
	for m := range v.stats {
		if m < v.minute-5 {
			delete(v.stats, m)
		}
	}
	for m := range v.accSegs {
		if m < v.minute {
			delete(v.accSegs, m)
		}
	}
	clear(v.carMin)
	clear(v.stops)
}

// Mismatch is an output row whose key matched but whose values did not.
type Mismatch struct{ Want, Got Output }

// Diff is the result of Compare: every missing, extra or wrong row.
type Diff struct {
	Want, Got [4]int  // rows per output type
	Missing   Outputs // expected rows the engine did not produce
	Extra     Outputs // rows the engine produced that were not expected (and duplicates)
	Wrong     []Mismatch
}

// OK reports whether got matched expected exactly.
func (d *Diff) OK() bool { return len(d.Missing) == 0 && len(d.Extra) == 0 && len(d.Wrong) == 0 }

var typeNames = [4]string{"toll notifications", "accident notifications", "balance answers", "expenditure answers"}

// String summarizes d: counts per type and up to 10 rows of each kind of
// difference.
func (d *Diff) String() string {
	var b strings.Builder
	for t := range 4 {
		fmt.Fprintf(&b, "%s: %d expected, %d got\n", typeNames[t], d.Want[t], d.Got[t])
	}
	if d.OK() {
		b.WriteString("no differences\n")
		return b.String()
	}
	fmt.Fprintf(&b, "%d missing, %d extra, %d wrong\n", len(d.Missing), len(d.Extra), len(d.Wrong))
	for i, o := range d.Missing {
		if i == 10 {
			fmt.Fprintf(&b, "  … %d more missing\n", len(d.Missing)-i)
			break
		}
		fmt.Fprintf(&b, "  missing %s\n", o)
	}
	for i, o := range d.Extra {
		if i == 10 {
			fmt.Fprintf(&b, "  … %d more extra\n", len(d.Extra)-i)
			break
		}
		fmt.Fprintf(&b, "  extra   %s\n", o)
	}
	for i, w := range d.Wrong {
		if i == 10 {
			fmt.Fprintf(&b, "  … %d more wrong\n", len(d.Wrong)-i)
			break
		}
		fmt.Fprintf(&b, "  wrong   %s, want %s\n", w.Got, w.Want)
	}
	return b.String()
}

// Compare matches got against expected by Key and lists every difference.
// Values are compared exactly, Emit excepted. A key got has more often
// than expected counts as extra. To save memory on long runs it sorts
// both slices in place (by key).
func Compare(expected, got Outputs) Diff {
	var d Diff
	slices.SortFunc(expected, compareOutputs)
	slices.SortFunc(got, compareOutputs)
	e, g := expected, got
	for _, o := range e {
		if o.Type >= 0 && o.Type < 4 {
			d.Want[o.Type]++
		}
	}
	for _, o := range g {
		if o.Type >= 0 && o.Type < 4 {
			d.Got[o.Type]++
		}
	}
	i, j := 0, 0
	for i < len(e) || j < len(g) {
		var c int
		switch {
		case i == len(e):
			c = 1
		case j == len(g):
			c = -1
		default:
			c = e[i].Key().compare(g[j].Key())
		}
		switch {
		case c < 0:
			d.Missing = append(d.Missing, e[i])
			i++
		case c > 0:
			d.Extra = append(d.Extra, g[j])
			j++
		default:
			if !sameValues(e[i], g[j]) {
				d.Wrong = append(d.Wrong, Mismatch{Want: e[i], Got: g[j]})
			}
			i++
			j++
		}
	}
	return d
}
