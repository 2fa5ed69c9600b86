package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spatedb/spate/internal/sqltest"
)

// The join and OVER oracle compares Spate's stream–stream interval joins,
// stream–table lookup joins and OVER windows with PostgreSQL running the
// same query as a batch over the same rows.
//
// Seeded random rows go into three streams with a BIGINT event time in
// seconds — l and r (the two sides of the joins) and ev (the OVER
// windows) — and the same rows into lt, rt and evt, whose event time is a
// TIMESTAMP (the same second plus a random number of microseconds). Event
// times are out of order by less than the watermark delay, so no row is
// late. The streams are loaded by COPYs of random sizes in a random
// interleaving, so that a join sees its matches arrive in either order and
// its two sides' watermarks drift apart. The table dim, loaded completely
// before any continuous query exists, is what the lookup joins read.
//
// Every PostgreSQL query yields the result columns plus a last column
// "ready": the event time (µs since the epoch) the watermark must pass for
// Spate to have emitted the row — NULL for a row emitted as soon as its
// inputs have arrived (a join match, a lookup) — so that the results are
// checked twice:
//
//  1. after every real row has been loaded: Spate must hold exactly the
//     rows whose ready time is below the current watermark (for a join the
//     minimum over both streams' watermarks), no more, no fewer;
//  2. after rows far in the future have closed everything: every row must
//     be there.
//
// The real rows of each stream have ids 0..n-1, the far-future rows ids
// from n up, and both sides compare only ids below n.
//
// Closing the joins: one row in each of l, r, lt and rt at a time far
// beyond the last real one, with keys (-1, -2, NULL text) that match
// nothing. A join's watermark then passes every real row's upper bound,
// so every unmatched left row has been padded with NULLs.
//
// Closing the OVER windows: a row of a query with LEAD is emitted only
// once its K-th following row of its partition is final (K = the
// query's largest LEAD offset, at most joLead), so the last K real rows
// of a partition would otherwise wait for ever. Rather than leaving those
// rows out of the comparison, PostgreSQL gets the same rows as Spate: for
// every partition (NULL included) joLead far-future rows, which pass every
// query's WHERE, so that LEAD of the last real rows reads them on both
// sides; then one closing row, in a partition of its own and later still,
// moves the watermark past the far-future rows so that they are final too.
// The far-future rows themselves (id >= n) are not compared. This leaves
// LEAD's default at the end of a partition unexercised — a stream's
// partition never ends, so Spate never uses it there.

const (
	joSeed     = 20260214
	joDelay    = 30 // watermark_delay of every stream, in seconds
	joDisorder = 20 // an event time trails the newest one by at most this many seconds (plus < 1 s for TIMESTAMPs)
	joStart    = 1000
	joKeys     = 20  // integer join keys 0..joKeys-1
	joParts    = 12  // OVER partitions 0..joParts-1 (and NULL)
	joLead     = 3   // the largest LEAD offset of the OVER queries
	joMaxCopy  = 250 // rows per COPY: 1..joMaxCopy
	// joNever is the ready time of a row Spate cannot have emitted yet.
	joNever = math.MaxInt64
)

// joTexts are the text join keys; two need CSV quoting.
var joTexts = []string{"red", "green", "blue", "x,y", `say "hi"`, "teal"}

// joRow is one row of l and lt, or of r and rt.
type joRow struct {
	id int
	k  *int64
	c  *string
	v  *float64
	q  *int64
	t  int64 // seconds
	us int64 // microseconds within the second, for lt and rt
}

// evRow is one row of ev and evt. g is a text label of the partition p
// (NULL when p is NULL), so that partitions by p, by g and by (p, g) are
// the same.
type evRow struct {
	id int
	p  *int64
	x  *int64
	y  *float64
	s  *string
	t  int64
	us int64
}

func (r evRow) g() *string {
	if r.p == nil {
		return nil
	}
	g := fmt.Sprintf("g%02d", *r.p)
	if *r.p == 3 {
		g = "g,3" // needs CSV quoting
	}
	return &g
}

// joTS renders the TIMESTAMP of t seconds and us microseconds.
func joTS(t, us int64) string {
	return oracleEpoch.Add(time.Duration(t)*time.Second + time.Duration(us)*time.Microsecond).Format(tsLayout)
}

func joOptText(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func joPtr[T any](v T) *T { return &v }

// genJoinRows generates n rows of l or r: keys that are sometimes NULL,
// values that are sometimes NULL, and event times that grow by 0–2 s per
// row minus a disorder of up to joDisorder s.
func genJoinRows(rng *rand.Rand, n int) []joRow {
	maybe := func(pNull float64) bool { return rng.Float64() >= pNull }
	rows := make([]joRow, n)
	base := int64(joStart)
	for i := range rows {
		base += rng.Int63n(3)
		r := joRow{id: i, t: base - rng.Int63n(joDisorder+1), us: rng.Int63n(1000000)}
		if maybe(0.05) {
			r.k = joPtr(rng.Int63n(joKeys))
		}
		if maybe(0.05) {
			r.c = joPtr(joTexts[rng.Intn(len(joTexts))])
		}
		if maybe(0.1) {
			r.v = joPtr(float64(rng.Int63n(10000)+1) / 100)
		}
		if maybe(0.1) {
			r.q = joPtr(rng.Int63n(100))
		}
		rows[i] = r
	}
	return rows
}

// genEvRows generates n rows of ev like genJoinRows, with no two rows of
// one partition in the same second: PostgreSQL orders ties on the ORDER BY
// column arbitrarily (Spate by the other columns), which would make the
// comparison depend on luck. The microseconds of the TIMESTAMP do not
// change the order within a partition.
func genEvRows(rng *rand.Rand, n int) []evRow {
	maybe := func(pNull float64) bool { return rng.Float64() >= pNull }
	type pt struct {
		p int64 // -1 for NULL
		t int64
	}
	used := map[pt]bool{}
	rows := make([]evRow, n)
	base := int64(joStart)
	for i := range rows {
		base += rng.Int63n(3)
		r := evRow{id: i, us: rng.Int63n(1000000)}
		for {
			r.t = base - rng.Int63n(joDisorder+1)
			r.p = nil
			key := pt{-1, r.t}
			if maybe(0.05) {
				r.p = joPtr(rng.Int63n(joParts))
				key.p = *r.p
			}
			if !used[key] {
				used[key] = true
				break
			}
		}
		if maybe(0.1) {
			r.x = joPtr(rng.Int63n(1000) - 100)
		}
		if maybe(0.1) {
			// Positive, so that float sums do not cancel.
			r.y = joPtr(float64(rng.Int63n(100000)+1) / 100)
		}
		if maybe(0.1) {
			r.s = joPtr(joTexts[rng.Intn(len(joTexts))])
		}
		rows[i] = r
	}
	return rows
}

// genDim generates the lookup table: integer keys with duplicates, keys
// no stream row has and NULL keys; names from joTexts (a text key) and
// others; sometimes NULL weights.
func genDim(rng *rand.Rand) [][]string {
	var rows [][]string
	for i := 0; i < 40; i++ {
		k := ""
		if i%13 != 5 {
			k = strconv.FormatInt(rng.Int63n(joKeys+6), 10)
		}
		name := fmt.Sprintf("n%d", i)
		if rng.Intn(2) == 0 {
			name = joTexts[rng.Intn(len(joTexts))]
		}
		w := ""
		if i%7 != 3 {
			w = strconv.FormatFloat(float64(rng.Int63n(2000)+1)/100, 'f', -1, 64)
		}
		rows = append(rows, []string{strconv.Itoa(i), k, name, w})
	}
	return rows
}

// joCSV renders records as CSV: an empty unquoted field is NULL.
func joCSV(recs [][]string) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.WriteAll(recs); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// The time columns of a record: the BIGINT t, the TIMESTAMP ts or both
// (PostgreSQL's tables hold both).
const (
	withT = 1 << iota
	withTS
)

func timeCols(rec []string, t, us int64, cols int) []string {
	if cols&withT != 0 {
		rec = append(rec, strconv.FormatInt(t, 10))
	}
	if cols&withTS != 0 {
		rec = append(rec, joTS(t, us))
	}
	return rec
}

func joRecords(rows []joRow, cols int) [][]string {
	recs := make([][]string, len(rows))
	for i, r := range rows {
		recs[i] = timeCols([]string{strconv.Itoa(r.id), optInt(r.k), joOptText(r.c), optFloat(r.v), optInt(r.q)}, r.t, r.us, cols)
	}
	return recs
}

func evRecords(rows []evRow, cols int) [][]string {
	recs := make([][]string, len(rows))
	for i, r := range rows {
		recs[i] = timeCols([]string{strconv.Itoa(r.id), optInt(r.p), joOptText(r.g()), optInt(r.x), optFloat(r.y), joOptText(r.s)}, r.t, r.us, cols)
	}
	return recs
}

// evClosers returns the far-future rows of ev (see the file comment):
// joLead rows per partition of rows, from time far on, then one row in a
// partition of its own 1000 s later.
func evClosers(rows []evRow, far int64) []evRow {
	seen := map[int64]bool{}
	var parts []int64 // -1 for NULL
	for _, r := range rows {
		p := int64(-1)
		if r.p != nil {
			p = *r.p
		}
		if !seen[p] {
			seen[p] = true
			parts = append(parts, p)
		}
	}
	slices.Sort(parts)
	id := len(rows)
	var out []evRow
	for _, p := range parts {
		for j := int64(0); j < joLead; j++ {
			r := evRow{id: id, x: joPtr(1000 + j), y: joPtr(5000 + float64(j)), s: joPtr("far"), t: far + j}
			if p >= 0 {
				r.p = joPtr(p)
			}
			out = append(out, r)
			id++
		}
	}
	return append(out, evRow{id: id, p: joPtr(int64(1000000)), x: joPtr(int64(0)), y: joPtr(5000.0), s: joPtr("close"), t: far + 1000})
}

// joPair is a continuous query and the PostgreSQL query computing its
// result plus the "ready" column (see the file comment).
type joPair struct {
	oraclePair
	// id is the result column holding the id of the (left) input row.
	id string
	// src lists the streams whose watermarks (their minimum) gate it.
	src []string
	// gated is true when some rows wait for the watermark: the test data
	// must then hold some back after the real rows.
	gated bool
	// outer is true for a LEFT join: the test data must give it both
	// matches (emitted at once) and null-padded rows.
	outer bool
}

// usOfT and usOfTS are the PostgreSQL expressions for an event time in µs
// since the epoch.
func usOfT(t string) string  { return "(" + t + ") * 1000000" }
func usOfTS(t string) string { return "(extract(epoch FROM " + t + ") * 1000000)::bigint" }

// joPairs lists the continuous queries and their PostgreSQL twins. Every
// aggregate OVER a window has an explicit ROWS frame: PostgreSQL's default
// frame with ORDER BY is RANGE, which takes in peers (moot with unique
// partition and time, but the queries should not depend on that). LAG,
// LEAD and ROW_NUMBER ignore the frame and are written without one.
func joPairs() []joPair {
	over := func(part, order, frame string) string {
		return "OVER (PARTITION BY " + part + " ORDER BY " + order + frame + ")"
	}
	rows := func(n int) string { return fmt.Sprintf(" ROWS BETWEEN %d PRECEDING AND CURRENT ROW", n) }
	const unbounded = " ROWS UNBOUNDED PRECEDING"
	w := func(frame string) string { return over("p", "t", frame) }
	overAggs := `id, p, t,
		ROW_NUMBER() ` + w("") + ` AS rn,
		LAG(x) ` + w("") + ` AS lx,
		LAG(x, 2, -1) ` + w("") + ` AS lx2,
		t - LAG(t) ` + w("") + ` AS gap,
		COUNT(x) ` + w(rows(3)) + ` AS cx,
		COUNT(*) ` + w(unbounded) + ` AS cs,
		SUM(x) ` + w(rows(4)) + ` AS sx,
		SUM(y) ` + w(rows(2)) + ` AS sy,
		AVG(y) ` + w(rows(2)) + ` AS ay,
		AVG(x) ` + w(" ROWS CURRENT ROW") + ` AS ax,
		MIN(y) ` + w(unbounded) + ` AS mny,
		MAX(x) ` + w(rows(5)) + ` AS mxx,
		MIN(s) ` + w(rows(1)) + ` AS mns`
	overLead := `id, p,
		LEAD(x) ` + w("") + ` AS nx,
		LEAD(y, 3, 0.5) ` + w("") + ` AS ny3,
		LEAD(s, 2, 'none') ` + w("") + ` AS ns2,
		LAG(s) ` + w("") + ` AS ps,
		LEAD(t) ` + w("") + ` - t AS dt,
		ROW_NUMBER() ` + w("") + ` AS rn,
		COUNT(y) ` + w(rows(2)) + ` AS cy`
	wg := func(frame string) string { return over("g", "t", frame) }
	overText := `id, g,
		SUM(y) ` + wg(unbounded) + ` AS run_y,
		MAX(s) ` + wg(rows(2)) + ` AS ms,
		MIN(x * 2) ` + wg(rows(10)) + ` AS mn2,
		LAG(y, 1, 0) ` + wg("") + ` AS py,
		COUNT(s) ` + wg(unbounded) + ` AS cs,
		AVG(x) ` + wg(unbounded) + ` AS ax`
	wpg := func(frame string) string { return over("p, g", "t", frame) }
	overTwo := `id, g, x,
		LEAD(x) ` + wpg("") + ` AS nx,
		LAG(y) ` + wpg("") + ` AS py,
		ROW_NUMBER() ` + wpg("") + ` AS rn,
		MAX(y) ` + wpg(rows(7)) + ` AS my`
	wts := func(frame string) string { return over("p", "ts", frame) }
	const since = "(ts - TIMESTAMP '2026-01-01 00:00:00')"
	overTS := `id, ts,
		ts - LAG(ts) ` + wts("") + ` AS gap,
		LEAD(ts) ` + wts("") + ` AS nts,
		LAG(ts, 2) ` + wts("") + ` AS pts2,
		MIN(ts) ` + wts(rows(1)) + ` AS mts,
		MAX(ts) ` + wts(unbounded) + ` AS xts,
		MIN` + since + ` ` + wts(rows(2)) + ` AS md,
		SUM(y) ` + wts(rows(1)) + ` AS sy,
		COUNT(x) ` + wts(rows(3)) + ` AS c4,
		ROW_NUMBER() ` + wts("") + ` AS rn`

	lr, lrts := []string{"l", "r"}, []string{"lt", "rt"}
	return []joPair{
		{
			oraclePair: oraclePair{
				name: "ij_inner", types: "IIITRII", keys: 2, order: "aid, bid",
				cq: `SELECT a.id AS aid, b.id AS bid, a.k AS k, a.c AS c, b.v AS bv, a.q + b.q AS qq, b.t - a.t AS dt
				     FROM l a JOIN r b ON a.k = b.k AND b.t BETWEEN a.t - 5 AND a.t + 10`,
				pg: `SELECT a.id AS aid, b.id AS bid, a.k AS k, a.c AS c, b.v AS bv, a.q + b.q AS qq, b.t - a.t AS dt, NULL::bigint AS ready
				     FROM l a JOIN r b ON a.k = b.k AND b.t BETWEEN a.t - 5 AND a.t + 10`,
			},
			id: "aid", src: lr,
		},
		{
			oraclePair: oraclePair{
				name: "ij_left_residual", types: "IIIIR", keys: 2, order: "aid, bid",
				cq: `SELECT a.id AS aid, b.id AS bid, a.q AS q, b.q AS bq, a.v * b.v AS vv
				     FROM l a LEFT JOIN r b ON a.k = b.k AND b.t BETWEEN a.t - 8 AND a.t + 4 AND b.q > a.q`,
				pg: `SELECT a.id AS aid, b.id AS bid, a.q AS q, b.q AS bq, a.v * b.v AS vv, CASE WHEN b.id IS NULL THEN ` + usOfT("a.t + 4") + ` END AS ready
				     FROM l a LEFT JOIN r b ON a.k = b.k AND b.t BETWEEN a.t - 8 AND a.t + 4 AND b.q > a.q`,
			},
			id: "aid", src: lr, gated: true, outer: true,
		},
		{
			oraclePair: oraclePair{
				name: "ij_left_two_keys_where", types: "IITIT", keys: 2, order: "aid, bid",
				cq: `SELECT a.id AS aid, b.id AS bid, a.c AS c, b.t AS bt, COALESCE(b.c, 'none') AS bc
				     FROM l a LEFT JOIN r b ON a.c = b.c AND b.k = a.k AND b.t BETWEEN a.t + 2 AND a.t + 20
				     WHERE a.v > 10 OR a.v IS NULL`,
				pg: `SELECT a.id AS aid, b.id AS bid, a.c AS c, b.t AS bt, COALESCE(b.c, 'none') AS bc, CASE WHEN b.id IS NULL THEN ` + usOfT("a.t + 20") + ` END AS ready
				     FROM l a LEFT JOIN r b ON a.c = b.c AND b.k = a.k AND b.t BETWEEN a.t + 2 AND a.t + 20
				     WHERE a.v > 10 OR a.v IS NULL`,
			},
			id: "aid", src: lr, gated: true, outer: true,
		},
		{
			oraclePair: oraclePair{
				name: "ij_inner_text_before", types: "IITTI", keys: 2, order: "aid, bid",
				cq: `SELECT a.id AS aid, b.id AS bid, b.c AS c, upper(a.c) AS uc, a.t - b.t AS back
				     FROM l a JOIN r b ON b.c = a.c AND b.t >= a.t - 30 AND b.t < a.t - 2 WHERE b.v < 50`,
				pg: `SELECT a.id AS aid, b.id AS bid, b.c AS c, upper(a.c) AS uc, a.t - b.t AS back, NULL::bigint AS ready
				     FROM l a JOIN r b ON b.c = a.c AND b.t >= a.t - 30 AND b.t < a.t - 2 WHERE b.v < 50`,
			},
			id: "aid", src: lr,
		},
		{
			oraclePair: oraclePair{
				name: "ts_left_interval", types: "IITTR", keys: 2, order: "aid, bid",
				cq: `SELECT a.id AS aid, b.id AS bid, b.ts - a.ts AS d, b.ts AS bts, b.v - a.v AS dv
				     FROM lt a LEFT JOIN rt b ON a.k = b.k
				       AND b.ts BETWEEN a.ts - INTERVAL '5 seconds' AND a.ts + INTERVAL '10 seconds' AND b.c <> 'red'`,
				pg: `SELECT a.id AS aid, b.id AS bid, b.ts - a.ts AS d, b.ts AS bts, b.v - a.v AS dv,
				       CASE WHEN b.id IS NULL THEN ` + usOfTS("a.ts + INTERVAL '10 seconds'") + ` END AS ready
				     FROM lt a LEFT JOIN rt b ON a.k = b.k
				       AND b.ts BETWEEN a.ts - INTERVAL '5 seconds' AND a.ts + INTERVAL '10 seconds' AND b.c <> 'red'`,
			},
			id: "aid", src: lrts, gated: true, outer: true,
		},
		{
			oraclePair: oraclePair{
				name: "ts_inner_strict", types: "IITT", keys: 2, order: "aid, bid",
				cq: `SELECT a.id AS aid, b.id AS bid, a.ts AS ats, b.ts - a.ts AS d
				     FROM lt a JOIN rt b ON b.c = a.c AND b.ts > a.ts AND b.ts <= a.ts + INTERVAL '3' SECOND`,
				pg: `SELECT a.id AS aid, b.id AS bid, a.ts AS ats, b.ts - a.ts AS d, NULL::bigint AS ready
				     FROM lt a JOIN rt b ON b.c = a.c AND b.ts > a.ts AND b.ts <= a.ts + INTERVAL '3' SECOND`,
			},
			id: "aid", src: lrts,
		},
		{
			oraclePair: oraclePair{
				name: "lookup_left", types: "IITR", keys: 2, order: "aid, did",
				cq: `SELECT a.id AS aid, d.did AS did, d.name AS name, d.w * a.v AS wv
				     FROM l a LEFT JOIN dim d ON d.k = a.k`,
				pg: `SELECT a.id AS aid, d.did AS did, d.name AS name, d.w * a.v AS wv, NULL::bigint AS ready
				     FROM l a LEFT JOIN dim d ON d.k = a.k`,
			},
			id: "aid", src: []string{"l"},
		},
		{
			oraclePair: oraclePair{
				name: "lookup_text_residual", types: "IIIT", keys: 2, order: "aid, did",
				cq: `SELECT b.id AS aid, d.did AS did, d.k AS dk, b.c AS c
				     FROM rt b JOIN dim d ON d.name = b.c AND d.w > b.v / 10`,
				pg: `SELECT b.id AS aid, d.did AS did, d.k AS dk, b.c AS c, NULL::bigint AS ready
				     FROM rt b JOIN dim d ON d.name = b.c AND d.w > b.v / 10`,
			},
			id: "aid", src: []string{"rt"},
		},
		{
			oraclePair: oraclePair{
				name: "over_aggregates", types: "IIIIIIIIIIRRRRIT", keys: 1, order: "id",
				cq: `SELECT ` + overAggs + ` FROM ev`,
				pg: `SELECT ` + overAggs + `, ` + usOfT("t") + ` AS ready FROM ev`,
			},
			id: "id", src: []string{"ev"}, gated: true,
		},
		{
			oraclePair: oraclePair{
				name: "over_lead_where", types: "IIIRTTIII", keys: 1, order: "id",
				cq: `SELECT ` + overLead + ` FROM ev WHERE x IS NOT NULL`,
				pg: fmt.Sprintf(`SELECT `+overLead+`, COALESCE(%s, %d) AS ready FROM ev WHERE x IS NOT NULL`,
					usOfT(fmt.Sprintf("LEAD(t, %d) %s", joLead, w(""))), int64(joNever)),
			},
			id: "id", src: []string{"ev"}, gated: true,
		},
		{
			oraclePair: oraclePair{
				name: "over_text_partition", types: "ITRTIRIR", keys: 1, order: "id",
				cq: `SELECT ` + overText + ` FROM ev`,
				pg: `SELECT ` + overText + `, ` + usOfT("t") + ` AS ready FROM ev`,
			},
			id: "id", src: []string{"ev"}, gated: true,
		},
		{
			oraclePair: oraclePair{
				name: "over_two_keys_where", types: "ITIIRIR", keys: 1, order: "id",
				cq: `SELECT ` + overTwo + ` FROM ev WHERE y > 1`,
				pg: fmt.Sprintf(`SELECT `+overTwo+`, COALESCE(%s, %d) AS ready FROM ev WHERE y > 1`,
					usOfT("LEAD(t) "+wpg("")), int64(joNever)),
			},
			id: "id", src: []string{"ev"}, gated: true,
		},
		{
			oraclePair: oraclePair{
				name: "over_timestamp", types: "ITTTTTTTRII", keys: 1, order: "id",
				cq: `SELECT ` + overTS + ` FROM evt`,
				pg: fmt.Sprintf(`SELECT `+overTS+`, COALESCE(%s, %d) AS ready FROM evt`,
					usOfTS("LEAD(ts) "+wts("")), int64(joNever)),
			},
			id: "id", src: []string{"evt"}, gated: true,
		},
	}
}

// readyRows splits PostgreSQL's rows (whose last column is "ready") into
// the rows Spate must have emitted at watermark wm (µs) — without the
// ready column — and the number it must still hold back; immediate counts
// the rows emitted without waiting for any watermark.
func readyRows(rows [][]string, wm int64) (ready [][]string, held, immediate int, err error) {
	for _, r := range rows {
		last := r[len(r)-1]
		if last == "NULL" {
			immediate++
		} else {
			at, err := strconv.ParseInt(last, 10, 64)
			if err != nil {
				return nil, 0, 0, fmt.Errorf("ready column %q: %w", last, err)
			}
			if at >= wm {
				held++
				continue
			}
		}
		ready = append(ready, r[:len(r)-1])
	}
	return ready, held, immediate, nil
}

// streamWatermarks returns each stream's watermark in µs since the epoch
// (from SHOW STREAMS; math.MinInt64 for none), after checking that no row
// was late and that rows_in is as expected.
func streamWatermarks(ctx context.Context, t *testing.T, sp *pgconn.PgConn, rowsIn map[string]int) map[string]int64 {
	t.Helper()
	streams, err := sqltest.QueryText(ctx, sp, "SHOW STREAMS")
	if err != nil {
		t.Fatal(err)
	}
	if len(streams) != len(rowsIn) {
		t.Errorf("SHOW STREAMS: %d streams, want %d", len(streams), len(rowsIn))
	}
	wms := map[string]int64{}
	for _, s := range streams {
		if want := rowsIn[s[0]]; s[4] != strconv.Itoa(want) {
			t.Errorf("SHOW STREAMS: %s has rows_in %s, want %d", s[0], s[4], want)
		}
		if s[5] != "0" {
			t.Errorf("SHOW STREAMS: %s has late_rows %s, want 0 (the test data must have no late rows)", s[0], s[5])
		}
		wms[s[0]] = math.MinInt64
		if s[6] != "none" {
			ts, err := time.Parse(tsLayout, s[6])
			if err != nil {
				t.Fatalf("SHOW STREAMS: watermark of %s: %v", s[0], err)
			}
			wms[s[0]] = ts.UnixMicro()
		}
	}
	return wms
}

// joLoad is the rows of one stream, loaded in order.
type joLoad struct {
	stream string
	recs   [][]string
	next   int // rows loaded so far
}

// joPhase is the point of the test at which results are compared.
type joPhase int

const (
	// joMidLoad: a prefix of each stream's rows has been loaded.
	joMidLoad joPhase = iota
	// joLoaded: every real row has been loaded.
	joLoaded
	// joClosed: the far-future rows too, so every row is final.
	joClosed
)

func (p joPhase) String() string {
	return [...]string{"in the middle of loading", "after the real rows", "after the far-future rows"}[p]
}

func TestOracleJoinsAndOver(t *testing.T) { forEachMode(t, oracleJoinsAndOver) }

func oracleJoinsAndOver(t *testing.T, serverArgs []string) {
	n := 4000
	if testing.Short() {
		n = 1000
	}
	rng := rand.New(rand.NewSource(joSeed))
	lRows, rRows, evRows := genJoinRows(rng, n), genJoinRows(rng, n), genEvRows(rng, n)
	dim := genDim(rng)

	pg := sqltest.StartPostgres(t)
	srv := sqltest.StartSpate(t, serverArgs...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sp := connectPg(t, srv.ConnString())
	pgc := connectPg(t, pg.ConnString())

	copyIn := func(c *pgconn.PgConn, what, rel string, recs [][]string) {
		t.Helper()
		tag, err := c.CopyFrom(ctx, bytes.NewReader(joCSV(recs)), "COPY "+rel+" FROM STDIN WITH (FORMAT csv)")
		if err != nil {
			t.Fatalf("COPY into %s %s: %v", what, rel, err)
		}
		if tag.RowsAffected() != int64(len(recs)) {
			t.Fatalf("COPY into %s %s: %q, want %d rows", what, rel, tag, len(recs))
		}
	}

	const joCols = "id INT, k INT, c TEXT, v DOUBLE PRECISION, q INT"
	const evCols = "id INT, p INT, g TEXT, x INT, y DOUBLE PRECISION, s TEXT"
	const dimCols = "(did INT, k INT, name TEXT, w DOUBLE PRECISION)"

	// PostgreSQL: the real rows, as tables with both time columns; lt, rt
	// and evt are views of l, r and ev, so that each query names the
	// relations its continuous query reads.
	for _, ddl := range []string{
		"CREATE TABLE l (" + joCols + ", t BIGINT, ts TIMESTAMP)",
		"CREATE TABLE r (" + joCols + ", t BIGINT, ts TIMESTAMP)",
		"CREATE TABLE ev (" + evCols + ", t BIGINT, ts TIMESTAMP)",
		"CREATE VIEW lt AS SELECT * FROM l",
		"CREATE VIEW rt AS SELECT * FROM r",
		"CREATE VIEW evt AS SELECT * FROM ev",
		"CREATE TABLE dim " + dimCols,
	} {
		mustExec(t, pgc, ddl)
	}
	copyIn(pgc, "PostgreSQL", "l", joRecords(lRows, withT|withTS))
	copyIn(pgc, "PostgreSQL", "r", joRecords(rRows, withT|withTS))
	copyIn(pgc, "PostgreSQL", "ev", evRecords(evRows, withT|withTS))
	copyIn(pgc, "PostgreSQL", "dim", dim)

	// Spate: the streams, the table with all its rows, then every
	// continuous query, before any stream row.
	bySecond := fmt.Sprintf(", t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '%ds')", joDelay)
	byTimestamp := fmt.Sprintf(", ts TIMESTAMP) WITH (event_time = 'ts', watermark_delay = '%d seconds')", joDelay)
	for _, ddl := range []string{
		"CREATE STREAM l (" + joCols + bySecond, "CREATE STREAM r (" + joCols + bySecond, "CREATE STREAM ev (" + evCols + bySecond,
		"CREATE STREAM lt (" + joCols + byTimestamp, "CREATE STREAM rt (" + joCols + byTimestamp, "CREATE STREAM evt (" + evCols + byTimestamp,
		"CREATE TABLE dim " + dimCols,
	} {
		mustExec(t, sp, ddl)
	}
	copyIn(sp, "Spate", "dim", dim)
	pairs := joPairs()
	for _, p := range oracleParallelism {
		mustExec(t, sp, fmt.Sprintf("SET parallelism = %d", p))
		for _, pair := range pairs {
			mustExec(t, sp, fmt.Sprintf("CREATE CONTINUOUS QUERY %s_p%d AS %s", pair.name, p, pair.cq))
		}
	}

	// compare checks the continuous queries of pair against PostgreSQL at
	// the stream watermarks wms (µs).
	compare := func(phase joPhase, pair joPair, wms map[string]int64) {
		t.Helper()
		wm := int64(math.MaxInt64)
		for _, s := range pair.src {
			wm = min(wm, wms[s])
		}
		pgSQL := fmt.Sprintf("SELECT * FROM (%s) AS x WHERE %s < %d ORDER BY %s", pair.pg, pair.id, n, pair.order)
		all, err := sqltest.QueryText(ctx, pgc, pgSQL)
		if err != nil {
			t.Errorf("%s: %s: PostgreSQL: %v\n%s", phase, pair.name, err, pgSQL)
			return
		}
		want, held, immediate, err := readyRows(all, wm)
		if err != nil {
			t.Errorf("%s: %s: %v", phase, pair.name, err)
			return
		}
		// The data must exercise what the query is about.
		switch {
		case phase == joMidLoad:
		case len(want) == 0:
			t.Errorf("%s: %s: PostgreSQL has no row ready at watermark %d µs; the test data does not exercise the query", phase, pair.name, wm)
		case phase == joClosed && held > 0:
			t.Errorf("%s: %s: %d rows are not ready at watermark %d µs; the far-future rows did not close everything", phase, pair.name, held, wm)
		case phase == joLoaded && pair.gated && held == 0:
			t.Errorf("%s: %s: no row waits for the watermark %d µs; the test data does not exercise it", phase, pair.name, wm)
		case pair.outer && (immediate == 0 || immediate == len(all)):
			t.Errorf("%s: %s: %d of %d rows are matches; the test data must give both matches and null-padded rows", phase, pair.name, immediate, len(all))
		}
		for _, p := range oracleParallelism {
			name := fmt.Sprintf("%s_p%d", pair.name, p)
			got, err := sqltest.QueryText(ctx, sp, fmt.Sprintf("SELECT * FROM %s WHERE %s < %d ORDER BY %s", name, pair.id, n, pair.order))
			if err != nil {
				t.Errorf("%s: %s: %v", phase, name, err)
				continue
			}
			if diff := diffResults(pair.oraclePair, got, want); diff != "" {
				t.Errorf("%s: %s differs from PostgreSQL at watermark %d µs (%d rows from Spate, %d from PostgreSQL, %d more held back):\n%s\ncontinuous query: %s\nPostgreSQL: %s",
					phase, name, wm, len(got), len(want), held, diff, pair.cq, pgSQL)
			} else {
				t.Logf("%s: %s: %d rows as in PostgreSQL (%d more held back at watermark %d µs)", phase, name, len(got), held, wm)
			}
		}
	}

	// Load: COPYs of 1..joMaxCopy rows, each into a stream picked at
	// random among those with rows left. Twice on the way, compare with
	// PostgreSQL over the rows loaded so far: temporary tables holding
	// those prefixes hide PostgreSQL's full tables and views.
	loads := []*joLoad{
		{stream: "l", recs: joRecords(lRows, withT)}, {stream: "r", recs: joRecords(rRows, withT)},
		{stream: "ev", recs: evRecords(evRows, withT)}, {stream: "lt", recs: joRecords(lRows, withTS)},
		{stream: "rt", recs: joRecords(rRows, withTS)}, {stream: "evt", recs: evRecords(evRows, withTS)},
	}
	loaded := map[string]int{} // rows per stream
	for _, l := range loads {
		loaded[l.stream] = 0
	}
	total, copies := len(loads)*n, 0
	checkpoints := []int{total / 3, 2 * total / 3}
	for left := slices.Clone(loads); len(left) > 0; {
		i := rng.Intn(len(left))
		ld := left[i]
		end := min(len(ld.recs), ld.next+1+rng.Intn(joMaxCopy))
		copyIn(sp, "Spate", ld.stream, ld.recs[ld.next:end])
		copies++
		ld.next = end
		loaded[ld.stream] = end
		if ld.next == len(ld.recs) {
			left = slices.Delete(left, i, i+1)
		}
		done := 0
		for _, l := range loads {
			done += l.next
		}
		if len(checkpoints) == 0 || done < checkpoints[0] {
			continue
		}
		checkpoints = checkpoints[1:]
		var temps []string
		for _, l := range loads {
			mustExec(t, pgc, fmt.Sprintf("CREATE TEMP TABLE %[1]s AS SELECT * FROM public.%[1]s WHERE id < %[2]d", l.stream, l.next))
			temps = append(temps, "pg_temp."+l.stream)
		}
		t.Logf("%s: rows loaded per stream: %v", joMidLoad, loaded)
		wms := streamWatermarks(ctx, t, sp, loaded)
		for _, pair := range pairs {
			compare(joMidLoad, pair, wms)
		}
		mustExec(t, pgc, "DROP TABLE "+strings.Join(temps, ", "))
	}
	t.Logf("loaded %d rows into each of %d streams in %d COPYs", n, len(loads), copies)

	// Matches and lookups are all there; what waits for the watermark has
	// been emitted exactly up to it.
	wms := streamWatermarks(ctx, t, sp, loaded)
	for _, pair := range pairs {
		compare(joLoaded, pair, wms)
	}

	// Close everything (see the file comment) and compare again.
	last := int64(0)
	for _, rows := range [][]joRow{lRows, rRows} {
		for _, r := range rows {
			last = max(last, r.t)
		}
	}
	for _, r := range evRows {
		last = max(last, r.t)
	}
	far := last + 100000
	farL := []joRow{{id: n, k: joPtr(int64(-1)), t: far}}
	farR := []joRow{{id: n, k: joPtr(int64(-2)), t: far}}
	copyIn(sp, "Spate", "l", joRecords(farL, withT))
	copyIn(sp, "Spate", "r", joRecords(farR, withT))
	copyIn(sp, "Spate", "lt", joRecords(farL, withTS))
	copyIn(sp, "Spate", "rt", joRecords(farR, withTS))
	closers := evClosers(evRows, far)
	copyIn(pgc, "PostgreSQL", "ev", evRecords(closers, withT|withTS))
	copyIn(sp, "Spate", "ev", evRecords(closers, withT))
	copyIn(sp, "Spate", "evt", evRecords(closers, withTS))
	for _, s := range []string{"l", "r", "lt", "rt"} {
		loaded[s]++
	}
	loaded["ev"] += len(closers)
	loaded["evt"] += len(closers)
	wms = streamWatermarks(ctx, t, sp, loaded)
	for _, pair := range pairs {
		compare(joClosed, pair, wms)
	}

	// No continuous query dropped a row as late either.
	cqs, err := sqltest.QueryText(ctx, sp, "SHOW CONTINUOUS QUERIES")
	if err != nil {
		t.Fatal(err)
	}
	if len(cqs) != len(pairs)*len(oracleParallelism) {
		t.Errorf("SHOW CONTINUOUS QUERIES: %d queries, want %d", len(cqs), len(pairs)*len(oracleParallelism))
	}
	for _, q := range cqs {
		if q[4] != "running" || q[7] != "0" {
			t.Errorf("SHOW CONTINUOUS QUERIES: %s: status %s, late_rows %s; want running, 0", q[0], q[4], q[7])
		}
	}
}
