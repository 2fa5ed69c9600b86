package linearroad

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// pr is a position report; seg follows from pos.
func pr(t, vid, spd, xway, lane, dir, pos int32) Report {
	return Report{Type: TypePosition, Time: t, VID: vid, Spd: spd, XWay: xway, Lane: lane, Dir: dir,
		Seg: pos / SegmentFeet, Pos: pos, QID: -1, Sinit: -1, Send: -1, DOW: -1, TOD: -1, Day: -1}
}

func balanceReq(t, vid, qid int32) Report {
	return Report{Type: TypeBalance, Time: t, VID: vid, Spd: -1, XWay: -1, Lane: -1, Dir: -1, Seg: -1, Pos: -1,
		QID: qid, Sinit: -1, Send: -1, DOW: -1, TOD: -1, Day: -1}
}

func expenditureReq(t, vid, qid, xway, day int32) Report {
	r := balanceReq(t, vid, qid)
	r.Type, r.XWay, r.Day = TypeExpenditure, xway, day
	return r
}

// segPos is a position inside segment seg.
func segPos(seg, off int32) int32 { return seg*SegmentFeet + off }

// crowd is n cars (vids from..from+n-1) reporting once at time t in a
// segment at speed spd.
func crowd(t, from, n, spd, dir, seg int32) []Report {
	var rs []Report
	for i := range n {
		rs = append(rs, pr(t, from+i, spd, 0, 2, dir, segPos(seg, 100+i)))
	}
	return rs
}

type outIndex map[Key]Output

func index(t *testing.T, outs Outputs) outIndex {
	m := outIndex{}
	for _, o := range outs {
		if _, dup := m[o.Key()]; dup {
			t.Fatalf("two outputs with key %+v", o.Key())
		}
		m[o.Key()] = o
	}
	return m
}

func toll(vid, t, lav int32, toll int64) Output {
	return Output{Type: OutToll, VID: vid, Time: t, Emit: int64(t), LAV: lav, Toll: toll}
}

func accident(vid, t, seg int32) Output {
	return Output{Type: OutAccident, VID: vid, Time: t, Emit: int64(t), Seg: seg}
}

// expect checks that want is produced exactly.
func (m outIndex) expect(t *testing.T, want Output) {
	t.Helper()
	got, ok := m[want.Key()]
	if !ok {
		t.Errorf("missing %s", want)
	} else if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// none checks that there is no output of type typ for (vid, time).
func (m outIndex) none(t *testing.T, typ, vid, tm int32) {
	t.Helper()
	if o, ok := m[Key{typ, vid, tm}]; ok {
		t.Errorf("unexpected %s", o)
	}
}

func TestTollCongestedSegment(t *testing.T) {
	var rs []Report
	rs = append(rs, crowd(10, 1000, 60, 20, 0, 10)...) // seg 10: 60 cars at 20 mph in minute 1
	rs = append(rs, crowd(10, 2000, 50, 20, 0, 20)...) // seg 20: exactly 50 cars
	rs = append(rs, crowd(10, 3000, 51, 20, 0, 21)...) // seg 21: 51 cars
	rs = append(rs, crowd(10, 4000, 60, 40, 0, 30)...) // seg 30: 60 cars at 40 mph
	rs = append(rs,
		pr(50, 1, 30, 0, 1, 0, segPos(9, 9)),     // minute 1: no statistics of minute 0 yet
		pr(70, 2, 30, 0, 1, 0, segPos(10, 9)),    // minute 2: toll 2·(60−50)² = 200
		pr(70, 3, 30, 0, 4, 0, segPos(10, 9)),    // exit lane: no notification
		pr(70, 4, 30, 0, 1, 1, segPos(10, 9)),    // other direction: no statistics
		pr(70, 5, 30, 0, 0, 0, segPos(11, 9)),    // empty segment (entry lane is notified)
		pr(70, 6, 30, 0, 2, 0, segPos(20, 9)),    // 50 cars: no toll
		pr(70, 7, 30, 0, 2, 0, segPos(21, 9)),    // 51 cars: toll 2
		pr(70, 8, 30, 0, 2, 0, segPos(30, 9)),    // LAV 40: no toll
		pr(100, 1, 30, 0, 1, 0, segPos(9, 2000)), // same segment: no notification
		pr(130, 1, 30, 0, 1, 0, segPos(11, 100)), // minute 3: seg 11 had cars 5 and 1 …
	)
	m := index(t, Expected(rs, nil))
	m.expect(t, toll(1000, 10, 0, 0))
	m.expect(t, toll(1, 50, 0, 0))
	m.expect(t, toll(2, 70, 20, 200))
	m.none(t, OutToll, 3, 70)
	m.expect(t, toll(4, 70, 0, 0))
	m.expect(t, toll(5, 70, 0, 0))
	m.expect(t, toll(6, 70, 20, 0))
	m.expect(t, toll(7, 70, 20, 2))
	m.expect(t, toll(8, 70, 40, 0))
	m.none(t, OutToll, 1, 100)
	// … in minute 2: car 5 at 30 mph; LAV over minutes 1..2 of seg 11 is 30.
	m.expect(t, toll(1, 130, 30, 0))
	if len(m) != 60+50+51+60+8 {
		t.Errorf("%d outputs", len(m))
	}
}

// TestLAV checks the three averaging steps (per car, per segment, over five
// minutes), each truncated to an integer.
func TestLAV(t *testing.T) {
	s := int32(40)
	rs := []Report{
		// minute 1: car 1 reports 10 and 21 (average 15), car 2 reports 30:
		// segment average (15+30)/2 = 22.
		pr(0, 1, 10, 0, 1, 0, segPos(s, 0)),
		pr(10, 2, 30, 0, 1, 0, segPos(s, 10)),
		pr(30, 1, 21, 0, 1, 0, segPos(s, 500)),
		// minute 3: one car at 60.
		pr(150, 3, 60, 0, 1, 0, segPos(s, 20)),
		// probes entering the segment
		pr(190, 11, 50, 0, 1, 0, segPos(s, 30)),  // minute 4: LAV (22+60)/2 = 41
		pr(370, 12, 50, 0, 1, 0, segPos(s, 30)),  // minute 7: minutes 2..6 → 60 and car 11's 50 → 55
		pr(490, 13, 50, 0, 1, 0, segPos(s, 30)),  // minute 9: minutes 4..8 → 50 and 50 → 50
		pr(660, 14, 50, 0, 1, 0, segPos(s, 30)),  // minute 12: minutes 7..11 → 50, 50 → 50
		pr(960, 15, 50, 0, 1, 0, segPos(s, 30)),  // minute 17: minutes 12..16 → 50
		pr(1300, 16, 50, 0, 1, 0, segPos(s, 30)), // minute 22: minutes 17..21 → 50
		pr(1700, 17, 50, 0, 1, 0, segPos(s, 30)), // minute 29: minutes 24..28 → none → 0
	}
	m := index(t, Expected(rs, nil))
	m.expect(t, toll(11, 190, 41, 0))
	m.expect(t, toll(12, 370, 55, 0))
	m.expect(t, toll(13, 490, 50, 0))
	m.expect(t, toll(17, 1700, 0, 0))
}

func TestAccidentUpstream(t *testing.T) {
	var rs []Report
	stop := func(vid, first, dir, lane, seg, n int32) {
		for i := range n {
			rs = append(rs, pr(first+30*i, vid, 0, 0, lane, dir, segPos(seg, 500)))
		}
	}
	// Cars 1 and 2 stand at one place of seg 20, eastbound: their fourth
	// reports (90 s and 95 s) are in minute 2, so the accident is seen in
	// minutes 2 and 3 (both still stopped at 120..179), and car 1 moves
	// on at 180: in effect in minutes 3 and 4.
	stop(1, 0, 0, 1, 20, 6)
	stop(2, 5, 0, 1, 20, 7)
	rs = append(rs, pr(180, 1, 10, 0, 1, 0, segPos(20, 940)))
	// Westbound accident in seg 50 (cars 3, 4), seen in minute 2 only.
	stop(3, 0, 1, 2, 50, 4)
	stop(4, 10, 1, 2, 50, 4)
	// A lone stopped car (5) in seg 70 and two stopped side by side in
	// different lanes (6, 7) in seg 80: no accident.
	stop(5, 0, 0, 1, 70, 8)
	stop(6, 0, 0, 1, 80, 8)
	stop(7, 0, 0, 2, 80, 8)
	// Two cars with only three reports each at one place of seg 90: not
	// stopped, no accident.
	stop(8, 0, 0, 1, 90, 3)
	stop(9, 10, 0, 1, 90, 3)
	rs = append(rs, pr(90, 8, 10, 0, 1, 0, segPos(90, 900)), pr(100, 9, 10, 0, 1, 0, segPos(90, 900)))
	// Congestion in seg 15 and 16 in minute 2 (60 cars at 10 mph).
	rs = append(rs, crowd(70, 1000, 60, 10, 0, 15)...)
	rs = append(rs, crowd(70, 2000, 60, 10, 0, 16)...)
	probe := func(vid, tm, dir, lane, seg int32) {
		rs = append(rs, pr(tm, vid, 30, 0, lane, dir, segPos(seg, 3000)))
	}
	probe(10, 110, 0, 1, 17) // minute 2: not yet in effect
	probe(11, 130, 0, 1, 16) // 16..20 holds 20: notified, toll 0 despite congestion
	probe(12, 130, 0, 1, 15) // 15..19: no accident, congestion toll
	probe(13, 130, 0, 1, 20) // the accident segment itself
	probe(14, 130, 0, 1, 21) // downstream of the accident
	probe(15, 130, 1, 1, 18) // other direction
	probe(16, 200, 0, 1, 18) // minute 4: still in effect
	probe(17, 250, 0, 1, 18) // minute 5: cleared
	probe(18, 130, 0, 4, 19) // exit lane: nothing
	probe(20, 130, 1, 1, 54) // westbound: 54..50 holds 50
	probe(21, 130, 1, 1, 55) // 55..51: no
	probe(22, 130, 1, 1, 49) // downstream (west) of the accident: no
	probe(23, 190, 1, 1, 52) // minute 4: the westbound accident was seen in minute 2 only
	probe(24, 130, 0, 1, 68) // lone stopped car: no
	probe(25, 130, 0, 1, 78) // side by side: no
	probe(26, 130, 0, 1, 88) // three reports are not enough: no
	m := index(t, Expected(rs, nil))
	m.expect(t, toll(10, 110, 0, 0))
	m.none(t, OutAccident, 10, 110)
	m.expect(t, accident(11, 130, 20))
	m.expect(t, toll(11, 130, 10, 0))
	m.none(t, OutAccident, 12, 130)
	m.expect(t, toll(12, 130, 10, 200))
	m.expect(t, accident(13, 130, 20))
	for _, vid := range []int32{14, 15, 17, 21, 22, 23, 24, 25, 26} {
		for k, o := range m {
			if k.Type == OutAccident && k.ID == vid {
				t.Errorf("unexpected %s", o)
			}
		}
	}
	m.expect(t, accident(16, 200, 20))
	m.none(t, OutToll, 18, 130)
	m.none(t, OutAccident, 18, 130)
	m.expect(t, accident(20, 130, 50))
	// The accident cars were notified when they entered, before it.
	m.expect(t, toll(1, 0, 0, 0))
	m.none(t, OutAccident, 1, 180)
}

func TestNearestAccident(t *testing.T) {
	var rs []Report
	for _, a := range [][3]int32{{1, 0, 20}, {2, 0, 20}, {3, 0, 22}, {4, 0, 22}, {5, 1, 48}, {6, 1, 48}, {7, 1, 50}, {8, 1, 50}} {
		for i := range int32(4) {
			rs = append(rs, pr(30*i, a[0], 0, 0, 1, a[1], segPos(a[2], 7)))
		}
	}
	rs = append(rs, pr(130, 10, 30, 0, 1, 0, segPos(19, 7)), pr(130, 11, 30, 0, 1, 1, segPos(51, 7)),
		pr(130, 12, 30, 0, 1, 0, segPos(21, 7)))
	m := index(t, Expected(rs, nil))
	m.expect(t, accident(10, 130, 20))
	m.expect(t, accident(11, 130, 50))
	m.expect(t, accident(12, 130, 22))
}

func TestChargesAndBalance(t *testing.T) {
	var rs []Report
	rs = append(rs, crowd(10, 1000, 60, 20, 0, 11)...) // seg 11, minute 1: toll 200 in minute 2
	rs = append(rs, crowd(10, 2000, 70, 20, 0, 12)...) // seg 12, minute 1: toll 800 in minute 2
	rs = append(rs,
		pr(0, 1, 20, 0, 0, 0, segPos(10, 0)),    // enters seg 10 on the ramp: toll 0
		pr(30, 1, 40, 0, 1, 0, segPos(10, 880)), // same segment
		balanceReq(60, 1, 1),                    // asked before its report of the same second
		pr(60, 1, 40, 0, 1, 0, segPos(11, 10)),  // enters seg 11: toll 200; charged seg 10's 0
		balanceReq(89, 1, 2),
		balanceReq(90, 1, 3),
		pr(90, 1, 40, 0, 1, 0, segPos(12, 10)),  // enters seg 12 (toll 800): charged 200
		pr(120, 1, 40, 0, 4, 0, segPos(12, 99)), // leaves by seg 12's exit: 800 never charged
		balanceReq(150, 1, 4),
		// Car 2 enters seg 11 (toll 200) and reaches seg 12 on the exit lane:
		// charged 200, not notified.
		pr(60, 2, 40, 0, 1, 0, segPos(11, 20)),
		pr(90, 2, 40, 0, 4, 0, segPos(12, 20)),
		balanceReq(100, 2, 5),
		balanceReq(100, 99, 6), // unknown car
	)
	m := index(t, Expected(rs, nil))
	m.expect(t, toll(1, 60, 20, 200))
	m.expect(t, toll(1, 90, 20, 800))
	m.none(t, OutToll, 1, 120)
	m.none(t, OutToll, 2, 90)
	bal := func(qid, tm, rt int32, b int64) Output {
		return Output{Type: OutBalance, Time: tm, Emit: int64(tm), ResultTime: rt, QID: qid, Balance: b}
	}
	m.expect(t, bal(1, 60, 0, 0))
	m.expect(t, bal(2, 89, 0, 0))
	m.expect(t, bal(3, 90, 90, 200))
	m.expect(t, bal(4, 150, 90, 200))
	m.expect(t, bal(5, 100, 90, 200))
	m.expect(t, bal(6, 100, 0, 0))
}

func TestDailyExpenditure(t *testing.T) {
	h, err := ReadHistory(strings.NewReader("vid,day,xway,tolls\n1,3,0,40\n1,3,1,7\n1,4,0,9\n2,5,0,10\n2,5,0,5\n"))
	if err != nil {
		t.Fatal(err)
	}
	rs := []Report{
		expenditureReq(5, 1, 1, 0, 3),
		expenditureReq(5, 1, 2, 1, 3),
		expenditureReq(6, 1, 3, 0, 5),
		expenditureReq(7, 2, 4, 0, 5),
		expenditureReq(7, 3, 5, 0, 5),
	}
	exp := func(qid, tm int32, b int64) Output {
		return Output{Type: OutExpenditure, Time: tm, Emit: int64(tm), QID: qid, Balance: b}
	}
	m := index(t, Expected(rs, h))
	m.expect(t, exp(1, 5, 40))
	m.expect(t, exp(2, 5, 7))
	m.expect(t, exp(3, 6, 0))
	m.expect(t, exp(4, 7, 15))
	m.expect(t, exp(5, 7, 0))
	if m := index(t, Expected(rs, nil)); m[Key{OutExpenditure, 1, 5}].Balance != 0 || len(m) != 5 {
		t.Errorf("without history: %v", m)
	}
}

func TestCompare(t *testing.T) {
	want := Outputs{
		toll(1, 10, 20, 0),
		toll(2, 10, 30, 200),
		accident(2, 10, 14),
		toll(3, 40, 35, 800),
		{Type: OutBalance, Time: 50, Emit: 50, ResultTime: 40, QID: 7, Balance: 200},
		{Type: OutExpenditure, Time: 50, Emit: 50, QID: 8, Balance: 12},
	}
	got := Outputs{
		want[5],
		{Type: OutBalance, Time: 50, Emit: 51, ResultTime: 40, QID: 7, Balance: 201}, // wrong balance
		toll(3, 40, 35, 800),
		toll(3, 40, 35, 800), // duplicate
		toll(2, 10, 31, 200), // wrong lav
		toll(9, 10, 0, 0),    // extra
		// toll(1, 10, …) and the accident notification are missing
	}
	got[2].Emit = 44 // emit does not matter
	d := Compare(slices.Clone(want), slices.Clone(got))
	if d.OK() {
		t.Fatal("differences not found")
	}
	if !slices.Equal(d.Missing, Outputs{want[0], want[2]}) {
		t.Errorf("missing %v", d.Missing)
	}
	if !slices.Equal(d.Extra, Outputs{got[2], toll(9, 10, 0, 0)}) {
		t.Errorf("extra %v", d.Extra)
	}
	if len(d.Wrong) != 2 || d.Wrong[0].Want != want[1] || d.Wrong[1].Want != want[4] || d.Wrong[1].Got.Balance != 201 {
		t.Errorf("wrong %v", d.Wrong)
	}
	if d.Want != [4]int{3, 1, 1, 1} || d.Got != [4]int{4, 0, 1, 1} {
		t.Errorf("counts %v %v", d.Want, d.Got)
	}
	s := d.String()
	for _, frag := range []string{"2 missing, 2 extra, 2 wrong", "missing 0,1,10,10,20,0", "wrong   0,2,10,10,31,200, want 0,2,10,10,30,200"} {
		if !strings.Contains(s, frag) {
			t.Errorf("summary lacks %q:\n%s", frag, s)
		}
	}
	if d := Compare(slices.Clone(want), want); !d.OK() {
		t.Errorf("identical outputs differ: %s", d.String())
	}
}

func TestOutputsCSV(t *testing.T) {
	outs := Outputs{
		toll(1, 10, 20, 0),
		accident(2, 10, 14),
		{Type: OutBalance, Time: 50, Emit: 52, ResultTime: 40, QID: 7, Balance: 200},
		{Type: OutExpenditure, Time: 50, Emit: 50, QID: 8, Balance: 12},
	}
	var b bytes.Buffer
	if err := WriteOutputs(&b, outs); err != nil {
		t.Fatal(err)
	}
	if b.String() != "0,1,10,10,20,0\n1,2,10,10,14\n2,50,52,40,7,200\n3,50,50,8,12\n" {
		t.Fatalf("CSV:\n%s", b.String())
	}
	back, err := ReadOutputs(&b)
	if err != nil || !slices.Equal(back, outs) {
		t.Fatalf("read back %v, %v", back, err)
	}
	// Tab-separated (COPY text format), a header and blank lines are fine.
	back, err = ReadOutputs(strings.NewReader("type\tvid\ttime\temit\tlav\ttoll\n0\t1\t10\t10\t20\t0\n\n3\t50\t50\t8\t12\n"))
	if err != nil || !slices.Equal(back, Outputs{outs[0], outs[3]}) {
		t.Fatalf("tab-separated: %v, %v", back, err)
	}
	for _, bad := range []string{"0,1,10,10,20\n", "1,2,10,10,14,5\n", "7,1\n", "0,1,x,10,20,0\n"} {
		if _, err := ReadOutputs(strings.NewReader(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestOrderWithinSecond checks that the reference outputs do not depend on
// the order of the records within a second.
func TestOrderWithinSecond(t *testing.T) {
	recs, err := Collect(Config{Expressways: 2, Duration: 10 * time.Minute, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	want := Expected(recs, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(recs); {
		j := i
		for j < len(recs) && recs[j].Time == recs[i].Time {
			j++
		}
		rng.Shuffle(j-i, func(a, b int) { recs[i+a], recs[i+b] = recs[i+b], recs[i+a] })
		i = j
	}
	if d := Compare(want, Expected(recs, nil)); !d.OK() {
		t.Fatal(d.String())
	}
	// Out-of-order input is an error for the streaming validator …
	v := NewValidator(nil, func(Output) {})
	if v.Add(pr(10, 1, 0, 0, 0, 0, 0)) != nil || v.Add(pr(9, 2, 0, 0, 0, 0, 0)) == nil {
		t.Error("time going back accepted")
	}
	// … and Expected sorts it.
	slices.Reverse(recs)
	if d := Compare(want, Expected(recs, nil)); !d.OK() {
		t.Fatal(d.String())
	}
}
