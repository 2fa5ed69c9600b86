// Package linearroad is Spate's edition of the Linear Road benchmark
// (Arasu et al., "Linear Road: A Stream Data Management Benchmark",
// VLDB 2004): a data generator and an independent reference
// implementation (the validator) of the benchmark's rules, which the SQL
// queries in this directory must match exactly. RULES.md states every
// output as a function of the input; this comment summarizes it.
//
// # Input
//
// One CSV stream of records, no header, in event-time order, columns
//
//	type,time,vid,spd,xway,lane,dir,seg,pos,qid,sinit,send,dow,tod,day
//
// all integers; unused fields are -1 as in the original files (see
// Report). type 0 is a position report: car vid at time t (seconds from
// the start, 0..10799) drives at spd mph on expressway xway (0..L-1),
// direction dir (0 eastbound, positions increasing; 1 westbound), lane
// (0 entry ramp, 1..3 travel, 4 exit ramp), position pos feet from the
// western end (0..527999) in segment seg = pos/5280 (0..99). type 2 asks
// for car vid's account balance (qid identifies the request); type 3 asks
// for the tolls car vid paid on expressway xway on day 1..69 (1 =
// yesterday), answered from the historical tolls table, a CSV
// "vid,day,xway,tolls" (WriteHistory). Type-4 (travel time) requests are
// not part of this edition.
//
// # Outputs
//
// CSV rows whose first column is the type (Output, ReadOutputs):
//
//	0,vid,time,emit,lav,toll            toll notification
//	1,vid,time,emit,seg                 accident notification
//	2,time,emit,resulttime,qid,balance  account balance answer
//	3,time,emit,qid,balance             daily expenditure answer
//
// time is the time of the triggering record, emit when the row was
// produced (ignored by Compare, used for latency; the reference sets it
// to time). Compare matches rows by (type, vid, time) for notifications
// and (type, qid, time) for answers and lists the missing, extra and wrong
// ones.
//
// # Rules in brief
//
// Minute m of time t is t/60+1. For each expressway, direction, segment
// and minute, from the position reports (all lanes): each car's average
// speed in the segment that minute, then the segment's NOV (cars that
// reported there) and average speed (mean of the cars' averages). A car
// entering a segment (its first report, or seg differs from its previous
// report's) not on the exit lane gets a toll notification with LAV, the
// mean of the segment's average speeds in minutes m-5..m-1 that have one,
// and toll 2·(NOV−50)² when NOV of minute m-1 > 50, LAV < 40 and no
// accident was seen in minute m-1 in its segment or the 4 downstream of
// it (seg..seg+4 eastbound, seg-4..seg westbound), else 0; with such an
// accident it also gets an accident notification naming the nearest
// accident segment. A report is a stopped report when the car's three
// previous reports were at the same (xway, dir, lane, pos); an accident is
// seen in minute m at a place where stopped reports of two or more cars
// fall in minute m. A car pays the toll of its previous segment entry when
// it enters the next segment (on any lane); type-2 answers sum what the car
// paid up to and including the request's second.
//
// # Choices where the original is ambiguous
//
//   - All averages are integer averages, SUM/COUNT truncated (as integer
//     division in SQL), at each of the three steps (car, segment, 5
//     minutes); lav is reported truncated and compared as LAV < 40. The
//     original leaves the rounding open; floating point would make
//     "< 40" depend on summation order.
//   - LAV divides by the number of minutes among m-5..m-1 in which the
//     segment had reports, not by 5; 0 when there were none.
//   - NOV and the speeds count reports on every lane, entry and exit ramps
//     included.
//   - Statistics and accidents take effect in the minute after the one they
//     describe: a toll in minute m uses NOV of m-1, LAV of m-5..m-1 and
//     accidents seen in m-1. So an accident is in effect from the minute
//     after the first minute with two stopped cars until the minute after
//     the last such minute (it is "cleared" when fewer than two of its cars
//     still make stopped reports there).
//   - A place is (xway, dir, lane, pos): two cars stopped side by side in
//     different lanes are no accident. "Four consecutive reports" means the
//     car's own last four position reports, whatever the time between them.
//   - Entering a segment compares seg with the car's previous report (vids
//     never change expressway or direction; a car never comes back).
//   - At most one accident notification per entry, for the nearest accident
//     segment downstream (the car's own segment first).
//   - Charging: a car entering a segment pays the toll of its previous
//     segment entry (0 if that entry was on the exit lane). A car leaving
//     the expressway by the exit ramp of the segment it was last notified
//     in never pays that toll; one that reaches the next segment on the
//     exit lane pays it then (and gets no notification).
//   - Type-2: balance is the sum of the car's positive charges with time ≤
//     the request's time (the same second counts, whatever the order
//     within the second) and resulttime the time of the last of them, 0
//     and 0 if none; a single answer, no "previous balance" row.
//   - Type-3: the sum of the matching history rows' tolls (a row per (vid,
//     day) in the generated table), 0 when there is none; always answered.
//
// # Generator
//
// Generate and WriteCSV produce a run deterministically from the seed
// (see Generate for the traffic model). The number of cars per expressway
// follows TargetRate, rising from 0 to about 1,700 reports/s at 3 h
// (≈1,130/s on average, 12.2M position reports for L=1 over 3 h); per
// 10 minutes: 112, 311, 488, 646, 790, 916, 1029 (1 h), 1130, 1220, 1301,
// 1373, 1438 (2 h), 1495, 1546, 1593, 1634, 1672, 1706 reports/s.
// TestRateCurve measures every minute of a 3-hour run against the curve.
// The 3-hour L=1 run with seed 1 has 14 accidents (both cars stand
// together 8.5–17.5 minutes after the second one counts as stopped), 8
// lone stopped cars, 4.59M toll notifications of which 0.90M carry a toll
// > 0, and 99K accident notifications; a 10-minute L=1 run has one or two
// accidents and some hundred tolls > 0 (TestAccidentsAndTolls10m/3h).
//
// Performance: WriteCSV produces about 5M records/s on one core (the
// generator alone over 10M/s); the reference implementation validates a
// 3-hour L=1 run (12.4M records) in about 10 s.
package linearroad
