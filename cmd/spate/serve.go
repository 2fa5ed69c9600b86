package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/pgwire"
)

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	pgListen := fs.String("pg-listen", "127.0.0.1:5433", "address of the PostgreSQL-protocol listener")
	parallelism := fs.Int("parallelism", 1, "default number of instances of each partitioned stage")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level, err := zerolog.ParseLevel(*logLevel)
	if err != nil {
		return fmt.Errorf("invalid --log-level: %w", err)
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05"}).Level(level).With().Timestamp().Logger()

	coord, err := cluster.NewCoordinator(cluster.Config{Parallelism: *parallelism, Logger: log})
	if err != nil {
		return err
	}
	defer coord.Close()
	srv, err := pgwire.NewServer(pgwire.Config{Listen: *pgListen, Logger: log}, coord)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info().Str("listen", *pgListen).Str("version", version).Msg("spate serving; connect with: psql \"host=127.0.0.1 port=5433 user=spate dbname=spate\"")
	err = srv.ListenAndServe(ctx)
	srv.Close()
	log.Info().Msg("spate stopped")
	return err
}
