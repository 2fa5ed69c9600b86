package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/spatedb/spate/bench"
	"github.com/spatedb/spate/bench/linearroad"
	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/pgwire"
)

func runBench(args []string) error {
	const usage = `usage: spate bench agg|lrb|net|recovery|restart|scale [flags]
  agg       GROUP BY throughput against a Go loop; --workers: clusters compared; --checkpoint-intervals: checkpointing's cost
  lrb       Linear Road tolls in SQL, validated
  net       data-channel throughput between processes
  recovery  a worker killed: restore and catch-up time for states of 10 MB and 1 GB
  restart   spate serve restarted: replaying the write-ahead log against resuming from a restart point
  scale     a scale-out: decision to new instance processing, state moved, throughput before and after
spate bench <name> -h lists a benchmark's flags`
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Println(usage)
		return nil
	case "agg":
		return benchAgg(args[1:])
	case "lrb":
		return benchLRB(args[1:])
	case "net":
		return benchNet(args[1:])
	case "net-send": // the sending process of bench net
		return benchNetSend(args[1:])
	case "recovery":
		return benchRecovery(args[1:])
	case "restart":
		return benchRestart(args[1:])
	case "scale":
		return benchScale(args[1:])
	}
	return fmt.Errorf("unknown benchmark %q: use agg, lrb, net, recovery, restart or scale", args[0])
}

// benchScale measures a scale-out of an aggregate stage: time from the
// decision to the new instances processing, state bytes moved, and the
// input rate before and after, on 2 workers.
func benchScale(args []string) error {
	fs := flag.NewFlagSet("bench scale", flag.ContinueOnError)
	keys := fs.Int("keys", 1_000_000, "distinct GROUP BY keys (the state)")
	rows := fs.Int("rows", 4_000_000, "rows ingested to measure the rate, before and after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	eng := benchEngineWith(2, time.Second)
	return bench.RunScale(context.Background(), *keys, *rows, eng.Start, os.Stdout)
}

// benchRestart measures a restart after a stop: replaying the whole
// write-ahead log against resuming from a restart point, on 2 workers.
func benchRestart(args []string) error {
	fs := flag.NewFlagSet("bench restart", flag.ContinueOnError)
	rows := fs.Int("rows", 4_000_000, "rows ingested before the stop")
	if err := fs.Parse(args); err != nil {
		return err
	}
	token := make([]byte, 16)
	if _, err := rand.Read(token); err != nil {
		return err
	}
	start := func(dir string, points bool) (*cluster.Coordinator, func(), error) {
		cfg := cluster.Config{Token: hex.EncodeToString(token), Logger: zerolog.Nop(), DataDir: dir,
			CheckpointStore: filepath.Join(dir, "checkpoints"), CheckpointInterval: -1}
		if points {
			cfg.CheckpointInterval, cfg.RestartPointInterval = time.Second, time.Second
		}
		return startLocalCluster(context.Background(), cfg, 2, "warn")
	}
	return bench.RunRestart(context.Background(), *rows, start, os.Stdout)
}

// benchRecovery measures the recovery of a killed worker for states of
// the given sizes.
func benchRecovery(args []string) error {
	fs := flag.NewFlagSet("bench recovery", flag.ContinueOnError)
	states := fs.String("state", "10MB,1GB", "state sizes, e.g. 10MB,1GB")
	interval := fs.Duration("checkpoint-interval", 2*time.Second, "checkpoint interval of the cluster")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var sizes []int64
	for _, f := range strings.Split(*states, ",") {
		f = strings.ToUpper(strings.TrimSpace(f))
		mult := int64(1)
		switch {
		case strings.HasSuffix(f, "GB"):
			mult, f = 1<<30, strings.TrimSuffix(f, "GB")
		case strings.HasSuffix(f, "MB"):
			mult, f = 1<<20, strings.TrimSuffix(f, "MB")
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("--state: %q is not a size such as 10MB or 1GB", f)
		}
		sizes = append(sizes, n*mult)
	}
	eng := benchEngineWith(2, *interval)
	return bench.RunRecovery(context.Background(), sizes, eng.Start, os.Stdout)
}

// benchEngine is an engine of n worker processes on loopback (none: every
// instance in this process), with logs off and checkpoints every 10 s.
func benchEngine(n int) bench.Engine { return benchEngineWith(n, 0) }

// benchEngineWith is benchEngine with a checkpoint interval (0: the
// default, negative: never).
func benchEngineWith(n int, interval time.Duration) bench.Engine {
	name := fmt.Sprintf("%d workers", n)
	if n == 1 {
		name = "1 worker"
	}
	return bench.Engine{Name: name, Start: func() (*cluster.Coordinator, func(), error) {
		token := make([]byte, 16)
		if _, err := rand.Read(token); err != nil {
			return nil, nil, err
		}
		cfg := cluster.Config{Token: hex.EncodeToString(token), Logger: zerolog.Nop(), CheckpointInterval: interval}
		return startLocalCluster(context.Background(), cfg, n, "warn")
	}}
}

// parseWorkerCounts reads "1,2" into [1 2].
func parseWorkerCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("--workers: %q is not a list of worker counts such as 1,2", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func benchAgg(args []string) error {
	fs := flag.NewFlagSet("bench agg", flag.ContinueOnError)
	var cfg bench.AggConfig
	fs.IntVar(&cfg.Rows, "rows", 10_000_000, "rows to aggregate")
	fs.IntVar(&cfg.Keys, "keys", 1_000_000, "distinct GROUP BY keys")
	fs.IntVar(&cfg.BatchRows, "batch", 65_536, "rows per Arrow batch")
	workers := fs.String("workers", "", "instead of the one-core comparison with a Go loop, run on clusters of these numbers of worker processes (e.g. 1,2) and compare them")
	intervals := fs.String("checkpoint-intervals", "", "instead, run on 2 workers once per checkpoint interval (e.g. off,30s,5s,1s) and compare them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *intervals != "" {
		var engines []bench.Engine
		for _, f := range strings.Split(*intervals, ",") {
			f = strings.TrimSpace(f)
			d := time.Duration(-1)
			if f != "off" {
				var err error
				if d, err = time.ParseDuration(f); err != nil || d <= 0 {
					return fmt.Errorf("--checkpoint-intervals: %q is not off or a duration", f)
				}
			}
			e := benchEngineWith(2, d)
			e.Name = "2 workers, checkpoints " + f
			engines = append(engines, e)
		}
		return bench.RunAggScaling(context.Background(), cfg, engines, os.Stdout)
	}
	if *workers == "" {
		return bench.RunAgg(context.Background(), cfg, os.Stdout)
	}
	counts, err := parseWorkerCounts(*workers)
	if err != nil {
		return err
	}
	var engines []bench.Engine
	for _, n := range counts {
		engines = append(engines, benchEngine(n))
	}
	return bench.RunAggScaling(context.Background(), cfg, engines, os.Stdout)
}

// benchNet measures the data plane between two processes: this one
// receives, a child process of this binary sends.
func benchNet(args []string) error {
	fs := flag.NewFlagSet("bench net", flag.ContinueOnError)
	dur := fs.Duration("duration", 3*time.Second, "how long each run sends")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	token := hex.EncodeToString(b)
	ctx := context.Background()
	run := func(mode string) (bench.DataPlaneResult, error) {
		return bench.DataPlaneReceive(ctx, mode, token, func(addr string) (func() error, error) {
			cmd := exec.Command(self, "bench", "net-send", "--mode", mode, "--addr", addr, "--duration", dur.String())
			cmd.Env = append(os.Environ(), "SPATE_CLUSTER_TOKEN="+token)
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				return nil, err
			}
			return cmd.Wait, nil
		})
	}
	modes := []string{"channel-pool", "channel", "raw"}
	names := []string{"transport channel, BodyPool", "transport channel (as the runtime)", "raw TCP, same bytes"}
	var runs []bench.DataPlaneResult
	for _, m := range modes {
		r, err := run(m)
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		runs = append(runs, r)
	}
	bench.ReportDataPlane(os.Stdout, names, runs)
	return nil
}

func benchNetSend(args []string) error {
	fs := flag.NewFlagSet("bench net-send", flag.ContinueOnError)
	mode := fs.String("mode", "channel", "channel or raw")
	addr := fs.String("addr", "", "receiver address")
	dur := fs.Duration("duration", 3*time.Second, "how long to send")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return bench.DataPlaneSend(context.Background(), *mode, *addr, os.Getenv("SPATE_CLUSTER_TOKEN"), *dur)
}

// benchLRB runs Linear Road against a server: the one given by --server,
// or one started in this process on a free loopback port.
func benchLRB(args []string) error {
	fs := flag.NewFlagSet("bench lrb", flag.ContinueOnError)
	xways := fs.Int("expressways", 1, "number of expressways (L)")
	duration := fs.Duration("duration", 3*time.Hour, "event time to cover, at most 3h")
	speedup := fs.String("speedup", "1", `event seconds fed per wall second ("max": as fast as the server takes them)`)
	seed := fs.Uint64("seed", 1, "generator seed")
	server := fs.String("server", "", `connection string of a running server; empty starts one in this process`)
	setup := fs.Bool("setup", true, "create the stream, table and queries of queries.sql and load the history table")
	csvPath := fs.String("csv", "", "write per-second notifications and latency to this CSV file")
	plotPath := fs.String("plot", "", "write a chart of throughput and latency to this SVG file")
	parallelism := fs.Int("parallelism", 0, "parallelism of the started server's partitioned stages (0: one per worker, at least 1)")
	workers := fs.Int("workers", 0, "worker processes the started server runs the queries on (0: all in this process)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	x := 0.0
	if *speedup != "max" {
		v, err := strconv.ParseFloat(*speedup, 64)
		if err != nil || v <= 0 {
			return fmt.Errorf("--speedup must be a positive number or max")
		}
		x = v
	}
	ctx := context.Background()
	conn := *server
	if conn == "" {
		eng := benchEngine(*workers)
		if *workers == 0 {
			eng.Start = func() (*cluster.Coordinator, func(), error) {
				c, err := cluster.NewCoordinator(cluster.Config{Parallelism: max(*parallelism, 1)})
				if err != nil {
					return nil, nil, err
				}
				return c, c.Close, nil
			}
		}
		coord, stopEngine, err := eng.Start()
		if err != nil {
			return err
		}
		defer stopEngine()
		if *parallelism > 0 {
			fmt.Println("note: --parallelism applies to the in-process server; on workers it is one per worker")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv, err := pgwire.NewServer(pgwire.Config{Listen: ln.Addr().String()}, coord)
		if err != nil {
			return err
		}
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() { _ = srv.Serve(sctx, ln) }()
		defer srv.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		conn = fmt.Sprintf("host=127.0.0.1 port=%d user=spate dbname=spate sslmode=disable", port)
		fmt.Printf("started a server on 127.0.0.1:%d (%d workers, parallelism %d)\n", port, *workers, max(*parallelism, *workers, 1))
	}
	fmt.Printf("Linear Road: L=%d, %v of event time, speedup %s\n", *xways, *duration, *speedup)
	res, err := linearroad.Run(ctx, linearroad.HarnessConfig{
		ConnString: conn, Gen: linearroad.Config{Expressways: *xways, Duration: *duration, Seed: *seed},
		Speedup: x, Setup: *setup, Progress: os.Stdout, SeriesCSV: *csvPath, PlotSVG: *plotPath,
	})
	if err != nil {
		return err
	}
	res.Report(os.Stdout)
	if !res.Diff.OK() {
		return fmt.Errorf("validation failed")
	}
	return nil
}
