package bench

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// TradesConfig sizes the trades generator.
type TradesConfig struct {
	Rows      int    // rows to write; default 100,000
	Symbols   int    // distinct symbols; default 50
	RowsPerS  int    // rows per second of event time; default 20
	Disorder  int    // maximum seconds a row's time lags the newest time; default 0
	Seed      uint64 // random seed; the same seed gives the same file
	Header    bool   // write a CSV header line
	StartTime time.Time
}

// WriteTrades writes CSV rows "sym,price,qty,ts" for the README's trades
// stream: symbols drawn with a skew (a few are hot), prices around 100,
// and event times rising at RowsPerS with up to Disorder seconds of lag.
func WriteTrades(w io.Writer, cfg TradesConfig) error {
	if cfg.Rows == 0 {
		cfg.Rows = 100_000
	}
	if cfg.Symbols == 0 {
		cfg.Symbols = 50
	}
	if cfg.RowsPerS == 0 {
		cfg.RowsPerS = 20
	}
	if cfg.StartTime.IsZero() {
		cfg.StartTime = time.Date(2026, 1, 2, 9, 30, 0, 0, time.UTC)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 7))
	bw := bufio.NewWriterSize(w, 1<<16)
	if cfg.Header {
		bw.WriteString("sym,price,qty,ts\n")
	}
	for i := range cfg.Rows {
		sym := rng.IntN(cfg.Symbols)
		if rng.IntN(4) == 0 {
			sym = rng.IntN(min(3, cfg.Symbols)) // hot symbols
		}
		sec := i / cfg.RowsPerS
		if cfg.Disorder > 0 {
			sec -= rng.IntN(cfg.Disorder + 1)
			sec = max(sec, 0)
		}
		ts := cfg.StartTime.Add(time.Duration(sec)*time.Second + time.Duration(i%cfg.RowsPerS)*time.Millisecond)
		fmt.Fprintf(bw, "SYM%02d,%.2f,%d,%s\n", sym, 50+rng.Float64()*100, 1+rng.IntN(500), ts.Format("2006-01-02 15:04:05.000"))
	}
	return bw.Flush()
}
