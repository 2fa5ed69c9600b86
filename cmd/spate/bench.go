package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/spatedb/spate/bench"
)

func runBench(args []string) error {
	if len(args) == 0 || args[0] != "agg" {
		return fmt.Errorf("usage: spate bench agg [-rows N] [-keys N] [-batch N]")
	}
	fs := flag.NewFlagSet("bench agg", flag.ContinueOnError)
	var cfg bench.AggConfig
	fs.IntVar(&cfg.Rows, "rows", 10_000_000, "rows to aggregate")
	fs.IntVar(&cfg.Keys, "keys", 1_000_000, "distinct GROUP BY keys")
	fs.IntVar(&cfg.BatchRows, "batch", 65_536, "rows per Arrow batch")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	return bench.RunAgg(context.Background(), cfg, os.Stdout)
}
