package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/spatedb/spate/bench/linearroad"
)

const genLRBUsage = "usage: spate gen lrb [--expressways L] [--duration D] [--seed N] [--history FILE] [--header]"

// runGenLRB writes a Linear Road input (position reports and type-2/3
// requests) as CSV to stdout and, with --history, the historical tolls
// table to a file. Progress goes to stderr when the run takes a while.
func runGenLRB(args []string) error {
	fs := flag.NewFlagSet("gen lrb", flag.ContinueOnError)
	var cfg linearroad.Config
	fs.IntVar(&cfg.Expressways, "expressways", 1, "number of expressways (L)")
	fs.DurationVar(&cfg.Duration, "duration", linearroad.MaxDuration, "event time to cover, at most 3h")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed; the same flags give the same bytes")
	fs.BoolVar(&cfg.Header, "header", false, "start with a header line ("+linearroad.CSVColumns+")")
	history := fs.String("history", "", "also write the historical tolls table (vid,day,xway,tolls) to this file")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), genLRBUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return errors.New(genLRBUsage)
	}
	if cfg.Duration%time.Second != 0 {
		return fmt.Errorf("gen lrb: --duration %v is not a whole number of seconds", cfg.Duration)
	}
	start := time.Now()
	last := start
	if !*quiet {
		cfg.Progress = func(reached time.Duration, records int64) {
			if now := time.Now(); now.Sub(last) >= 2*time.Second {
				last = now
				fmt.Fprintf(os.Stderr, "gen lrb: %v of %v, %d records (%.1fM/s)\n",
					reached, cfg.Duration, records, float64(records)/now.Sub(start).Seconds()/1e6)
			}
		}
	}
	var hw *bufio.Writer
	var hf *os.File
	if *history != "" {
		f, err := os.Create(*history)
		if err != nil {
			return err
		}
		hf, hw = f, bufio.NewWriterSize(f, 1<<20)
	}
	var err error
	if hw != nil {
		err = linearroad.WriteAll(os.Stdout, hw, cfg)
		if ferr := hw.Flush(); err == nil {
			err = ferr
		}
		if cerr := hf.Close(); err == nil {
			err = cerr
		}
	} else {
		err = linearroad.WriteAll(os.Stdout, nil, cfg)
	}
	if err == nil && !*quiet && time.Since(start) >= 2*time.Second {
		fmt.Fprintf(os.Stderr, "gen lrb: done in %v\n", time.Since(start).Round(time.Millisecond))
	}
	return err
}
