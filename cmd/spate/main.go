// Command spate is Spate's one binary: the server (serve), a worker
// (worker), the benchmark harness (bench), data generators (gen) and the
// Linear Road validator (validate).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `spate — a continuous-query engine with a PostgreSQL-wire server

Usage:
  spate serve   [flags]   start the server (coordinator, pgwire front end, local workers)
  spate worker  --join HOST:PORT [flags]   join a cluster and run the instances the coordinator places on it
  spate bench   agg [flags]   measure the windowed GROUP BY through the engine against a hand-written loop
  spate bench   lrb [flags]   run Linear Road against a server, validate it and measure notification latency
  spate bench   recovery|restart|scale|net [flags]   measure recovery, restart, scale-out and the data plane
  spate gen     lrb [flags]   write Linear Road input (position reports and requests) as CSV
  spate gen     trades [flags]  write CSV trades for the README's walkthrough to stdout
  spate validate lrb [flags]  check Linear Road outputs against the reference implementation
  spate version           print the version

Run "spate <command> -h" for the flags of a command.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "worker":
		err = runWorker(os.Args[2:])
	case "bench":
		err = runBench(os.Args[2:])
	case "gen":
		err = runGen(os.Args[2:])
	case "validate":
		err = runValidate(os.Args[2:])
	case "version", "--version", "-v":
		fmt.Println("spate", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "spate: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return // -h or --help of a subcommand: its usage is printed
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "spate:", err)
		os.Exit(1)
	}
}
