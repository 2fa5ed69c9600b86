package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/cluster/control"
)

const workerUsage = `Usage: spate worker --join HOST:PORT [--cluster-token TOKEN] [--listen ADDR]

Joins the cluster whose coordinator's control address is HOST:PORT, runs
the operator instances the coordinator places on it, and reports its
liveness and load (per instance: busy time, queue depth, rows in and out,
state bytes) every heartbeat interval. Other workers and the coordinator
send it batches on the data-plane address --listen (default: loopback,
any free port); give an address the other hosts can reach.

The cluster token comes from --cluster-token or, when that is empty, the
SPATE_CLUSTER_TOKEN environment variable. The worker exits non-zero when
the token is refused, when the coordinator stays unreachable after
--connect-attempts dials, or when the connection to it breaks.

Flags:
`

// runWorker is "spate worker".
func runWorker(args []string) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), workerUsage)
		fs.PrintDefaults()
	}
	join := fs.String("join", "", "HOST:PORT of the coordinator's control listener (required)")
	token := fs.String("cluster-token", "", "shared cluster token (default: $SPATE_CLUSTER_TOKEN)")
	listen := fs.String("listen", "127.0.0.1:0", "data-plane address to listen on and advertise to the coordinator")
	attempts := fs.Int("connect-attempts", 5, "dials of an unreachable coordinator before giving up")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("worker: unexpected argument %q", fs.Arg(0))
	}
	if *join == "" {
		return errors.New("worker: --join HOST:PORT is required")
	}
	if *token == "" {
		*token = os.Getenv("SPATE_CLUSTER_TOKEN")
	}
	if *token == "" {
		return errors.New("worker: no cluster token: pass --cluster-token or set SPATE_CLUSTER_TOKEN")
	}
	if *attempts < 1 {
		return fmt.Errorf("worker: --connect-attempts must be at least 1, got %d", *attempts)
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info().Str("join", *join).Int("pid", os.Getpid()).Str("version", version).
		Msg("spate worker starting")
	err = cluster.RunWorker(ctx, cluster.WorkerConfig{
		Join:         *join,
		Token:        *token,
		Listen:       *listen,
		Version:      version,
		DialAttempts: *attempts,
		Logger:       log,
	})
	if errors.Is(err, control.ErrUnauthorized) {
		log.Error().Err(err).Msg("the coordinator refused this worker: check the cluster token")
		return fmt.Errorf("worker: wrong cluster token: %w", err)
	}
	if err != nil {
		log.Error().Err(err).Msg("worker stopped")
		return err
	}
	log.Info().Msg("spate worker stopped")
	return nil
}

// newLogger is the log of serve and worker: readable lines on stderr, in
// colour on a terminal (unless NO_COLOR is set), plain in a file.
func newLogger(level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("invalid --log-level: %w", err)
	}
	fi, err := os.Stderr.Stat()
	terminal := err == nil && fi.Mode()&os.ModeCharDevice != 0
	w := zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05", NoColor: !terminal || os.Getenv("NO_COLOR") != ""}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}
