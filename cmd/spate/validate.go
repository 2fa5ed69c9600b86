package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/spatedb/spate/bench/linearroad"
)

// outputFiles collects repeated --outputs flags.
type outputFiles []string

func (o *outputFiles) String() string     { return strings.Join(*o, ",") }
func (o *outputFiles) Set(v string) error { *o = append(*o, v); return nil }

// runValidate checks Linear Road outputs against the reference
// implementation.
func runValidate(args []string) error {
	if len(args) == 0 || args[0] != "lrb" {
		return fmt.Errorf("usage: spate validate lrb --reports FILE [--history FILE] --outputs FILE [--outputs FILE …]")
	}
	fs := flag.NewFlagSet("validate lrb", flag.ContinueOnError)
	reports := fs.String("reports", "", "the input records (CSV, as written by spate gen lrb)")
	history := fs.String("history", "", "the historical tolls table (CSV vid,day,xway,tolls); empty: none")
	var outs outputFiles
	fs.Var(&outs, "outputs", "output rows (CSV or tab-separated, as COPY (SELECT * FROM lrb_…) TO STDOUT writes them); repeatable")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *reports == "" || len(outs) == 0 {
		return fmt.Errorf("--reports and --outputs are required")
	}
	var hist *linearroad.History
	if *history != "" {
		f, err := os.Open(*history)
		if err != nil {
			return err
		}
		hist, err = linearroad.ReadHistory(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", *history, err)
		}
	}
	in, err := os.Open(*reports)
	if err != nil {
		return err
	}
	want, err := linearroad.ExpectedCSV(in, hist)
	in.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", *reports, err)
	}
	var got linearroad.Outputs
	for _, name := range outs {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		rows, err := linearroad.ReadOutputs(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		got = append(got, rows...)
	}
	diff := linearroad.Compare(want, got)
	fmt.Print(diff.String())
	if !diff.OK() {
		return fmt.Errorf("the outputs differ from the reference implementation")
	}
	fmt.Println("OK: every output equals the reference implementation's")
	return nil
}
