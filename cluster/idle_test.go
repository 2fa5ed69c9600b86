package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestIdleStreamReleasesJoin: a LEFT interval join waits for both
// streams' watermarks before it emits a left row without a match. When
// the right stream gets no rows, its idle_timeout lets the join go on
// with the left stream's watermark alone; with idle_timeout '0' the join
// waits for ever. In one process and on in-process workers.
func TestIdleStreamReleasesJoin(t *testing.T) {
	for _, workers := range []int{0, 2} {
		for _, timeout := range []string{"300 milliseconds", "0"} {
			c, stop := startTestCluster(t, Config{Parallelism: 2}, workers)
			s, _ := c.NewSession(context.Background(), "spate", "spate")
			run(t, s, "CREATE STREAM a (k INT, t BIGINT) WITH (event_time = 't', time_unit = 's', idle_timeout = '"+timeout+"')")
			run(t, s, "CREATE STREAM b (k INT, t BIGINT) WITH (event_time = 't', time_unit = 's', idle_timeout = '"+timeout+"')")
			run(t, s, "CREATE CONTINUOUS QUERY j AS SELECT a.k, a.t, b.t AS bt FROM a LEFT JOIN b ON a.k = b.k AND b.t BETWEEN a.t - 5 AND a.t + 5")
			run(t, s, "INSERT INTO a VALUES (1, 10), (2, 20), (3, 100)")
			count := func() string { return run(t, s, "SELECT COUNT(*) FROM j")[0][0] }
			if n := count(); n != "0" {
				t.Fatalf("workers %d, idle_timeout %s: %s rows before b went idle; the join must wait for b", workers, timeout, n)
			}
			if timeout == "0" {
				time.Sleep(1500 * time.Millisecond)
				if n := count(); n != "0" {
					t.Fatalf("workers %d: with idle_timeout 0 the join emitted %s rows without b's watermark", workers, n)
				}
				if idle := run(t, s, "SELECT idle FROM spate_streams WHERE name = 'b'")[0][0]; idle != "f" && idle != "false" {
					t.Fatalf("b shows idle = %s with idle_timeout 0", idle)
				}
			} else {
				deadline := time.Now().Add(10 * time.Second)
				for count() != "2" {
					if time.Now().After(deadline) {
						t.Fatalf("workers %d: the join did not go on after b went idle (%s rows)", workers, count())
					}
					time.Sleep(50 * time.Millisecond)
				}
				if idle := run(t, s, "SELECT idle FROM spate_streams WHERE name = 'b'")[0][0]; idle != "t" && idle != "true" {
					t.Fatalf("SHOW STREAMS: b idle = %s", idle)
				}
				// A row on b far behind a's watermark, which the join
				// went on with, is late at the join (not at b, which had
				// no rows): SHOW CONTINUOUS QUERIES counts it.
				run(t, s, "INSERT INTO b VALUES (9, 5)")
				waitUntil(t, 10*time.Second, "the row late at the join to be counted", func() bool {
					return run(t, s, "SELECT late_rows FROM spate_continuous_queries WHERE name = 'j'")[0][0] == "1"
				})
				if late := run(t, s, "SELECT late_rows FROM spate_streams WHERE name = 'b'")[0][0]; late != "0" {
					t.Errorf("b counts %s late rows, want 0 (the row was late at the join only)", late)
				}
				// Rows on b make it active again: the join waits for it once more.
				run(t, s, "INSERT INTO b VALUES (3, 101)")
				run(t, s, "INSERT INTO a VALUES (4, 200)")
				if idle := run(t, s, "SELECT idle FROM spate_streams WHERE name = 'b'")[0][0]; idle != "f" && idle != "false" {
					t.Fatalf("SHOW STREAMS: b still idle after a row")
				}
			}
			c.BeginShutdown()
			stop()
			c.Close()
		}
	}
}

// TestIdleStreamResumes: a stream goes idle (its idle_timeout passes)
// and then gets rows again. Everything downstream turned idle with it;
// when the rows come, the instances fed by it turn active one after
// another, and a consumer of several of them (a second aggregate over
// the first's windows, both sides of a self-join, the result) must not
// let the first one's watermark run ahead of what the others still
// send. The results equal those of a stream that never goes idle. In
// one process and on in-process workers.
func TestIdleStreamResumes(t *testing.T) {
	for _, workers := range []int{0, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) { idleStreamResumes(t, workers) })
	}
}

func idleStreamResumes(t *testing.T, workers int) {
	setup := func(s Session, idle string) {
		run(t, s, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s', idle_timeout = '"+idle+"')")
		run(t, s, "CREATE CONTINUOUS QUERY w AS SELECT k, window_end, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY k, TUMBLE(t, INTERVAL '10' SECOND)")
		run(t, s, "CREATE CONTINUOUS QUERY w2 AS SELECT window_end AS we, COUNT(*) AS keys, SUM(n) AS n FROM w GROUP BY TUMBLE(window_end, INTERVAL '20' SECOND)")
		run(t, s, "CREATE CONTINUOUS QUERY pairs AS SELECT a.k % 7 AS g, COUNT(*) AS n FROM ev a JOIN ev b ON a.k = b.k AND b.t BETWEEN a.t - 1 AND a.t GROUP BY a.k % 7")
	}
	rng := rand.New(rand.NewPCG(5, 5))
	phase := func(from int) []string {
		var lines []string
		for i := range 20000 {
			lines = append(lines, fmt.Sprintf("%d,%d,%d", rng.IntN(200), rng.IntN(100), from+i/200))
		}
		return lines
	}
	first, second := phase(0), phase(100)
	closing := []string{"0,0,100000"}
	rc, stopRef := startTestCluster(t, Config{Parallelism: 1}, 0)
	defer func() { stopRef(); rc.Close() }()
	ref, _ := rc.NewSession(context.Background(), "spate", "spate")
	setup(ref, "0")
	for _, part := range [][]string{first, second, closing} {
		copyCSV(t, ref, "ev", part)
	}
	c, stop := startTestCluster(t, Config{Parallelism: 2}, workers)
	defer func() { c.BeginShutdown(); stop(); c.Close() }()
	s, _ := c.NewSession(context.Background(), "spate", "spate")
	setup(s, "200 milliseconds")
	copyCSV(t, s, "ev", first)
	waitUntil(t, 10*time.Second, "ev to turn idle", func() bool {
		idle := run(t, s, "SELECT idle FROM spate_streams WHERE name = 'ev'")[0][0]
		return idle == "t" || idle == "true"
	})
	time.Sleep(300 * time.Millisecond) // the idle marks reach every instance
	copyCSV(t, s, "ev", second)
	copyCSV(t, s, "ev", closing)
	for _, name := range []string{"w", "w2", "pairs"} {
		want := sortedText(run(t, ref, "SELECT * FROM "+name))
		waitUntil(t, 20*time.Second, name+" to equal the reference", func() bool {
			return sortedText(run(t, s, "SELECT * FROM "+name)) == want
		})
	}
	if late := run(t, s, "SELECT SUM(late_rows) FROM spate_continuous_queries"); late[0][0] != "0" {
		t.Errorf("late rows after the stream resumed: %v", late)
	}
}

// TestIdleStreamJoinedWithTable: a stream looked up in a table goes idle
// and resumes. The table holds no watermark back (its watermark is the
// largest), but it must not carry the join past the stream either: the
// window over the join gets every row after the stream resumes.
func TestIdleStreamJoinedWithTable(t *testing.T) {
	for _, workers := range []int{0, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			_, s := startSession(t, Config{Parallelism: 2}, workers)
			run(t, s, "CREATE STREAM ev (k INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s', idle_timeout = '300 milliseconds')")
			run(t, s, "CREATE TABLE dim (k INT, name TEXT)")
			run(t, s, "INSERT INTO dim VALUES (1, 'a'), (2, 'b')")
			run(t, s, "CREATE CONTINUOUS QUERY j AS SELECT e.k, e.t, d.name FROM ev e JOIN dim d ON e.k = d.k")
			run(t, s, "CREATE CONTINUOUS QUERY q AS SELECT name, window_end, COUNT(*) AS n FROM j GROUP BY name, TUMBLE(t, INTERVAL '10' SECOND)")
			run(t, s, "INSERT INTO ev VALUES (1, 10), (2, 20)")
			waitUntil(t, 10*time.Second, "ev to turn idle", func() bool {
				idle := run(t, s, "SELECT idle FROM spate_streams WHERE name = 'ev'")[0][0]
				return idle == "t" || idle == "true"
			})
			time.Sleep(300 * time.Millisecond) // the idle marks reach every instance
			run(t, s, "INSERT INTO ev VALUES (1, 21), (2, 22), (1, 100)")
			want := "a|20|1\na|30|1\nb|30|2"
			waitUntil(t, 10*time.Second, "q's windows up to 30", func() bool {
				return sortedText(run(t, s, "SELECT * FROM q")) == want
			})
			if late := run(t, s, "SELECT late_rows FROM spate_continuous_queries WHERE name = 'q'")[0][0]; late != "0" {
				t.Errorf("q dropped %s rows as late", late)
			}
		})
	}
}
