package cluster

import (
	"context"
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
