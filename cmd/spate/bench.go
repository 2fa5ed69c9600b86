package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/spatedb/spate/bench"
	"github.com/spatedb/spate/bench/linearroad"
	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/pgwire"
)

func runBench(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: spate bench agg|lrb [flags]")
	}
	switch args[0] {
	case "agg":
		return benchAgg(args[1:])
	case "lrb":
		return benchLRB(args[1:])
	}
	return fmt.Errorf("unknown benchmark %q: use agg or lrb", args[0])
}

func benchAgg(args []string) error {
	fs := flag.NewFlagSet("bench agg", flag.ContinueOnError)
	var cfg bench.AggConfig
	fs.IntVar(&cfg.Rows, "rows", 10_000_000, "rows to aggregate")
	fs.IntVar(&cfg.Keys, "keys", 1_000_000, "distinct GROUP BY keys")
	fs.IntVar(&cfg.BatchRows, "batch", 65_536, "rows per Arrow batch")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return bench.RunAgg(context.Background(), cfg, os.Stdout)
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
	parallelism := fs.Int("parallelism", 1, "parallelism of the in-process server's partitioned stages")
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
		coord, err := cluster.NewCoordinator(cluster.Config{Parallelism: *parallelism})
		if err != nil {
			return err
		}
		defer coord.Close()
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
		fmt.Printf("started an in-process server on 127.0.0.1:%d (parallelism %d)\n", port, *parallelism)
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
