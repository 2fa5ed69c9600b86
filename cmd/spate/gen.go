package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/spatedb/spate/bench"
)

func runGen(args []string) error {
	if len(args) > 0 && args[0] == "lrb" {
		return runGenLRB(args[1:])
	}
	if len(args) == 0 || args[0] != "trades" {
		return fmt.Errorf("usage: spate gen trades [-rows N] [-symbols N] [-rate N] [-disorder S] [-seed N] [-header]\n       %s", genLRBUsage)
	}
	fs := flag.NewFlagSet("gen trades", flag.ContinueOnError)
	var cfg bench.TradesConfig
	fs.IntVar(&cfg.Rows, "rows", 100_000, "rows to write")
	fs.IntVar(&cfg.Symbols, "symbols", 50, "distinct symbols")
	fs.IntVar(&cfg.RowsPerS, "rate", 20, "rows per second of event time")
	fs.IntVar(&cfg.Disorder, "disorder", 0, "maximum lag in seconds of a row's event time behind the newest")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	fs.BoolVar(&cfg.Header, "header", true, "write a CSV header line")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	return bench.WriteTrades(os.Stdout, cfg)
}
