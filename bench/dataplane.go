package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/spatedb/spate/cluster/transport"
	"github.com/spatedb/spate/internal/benchdata"
)

// The data-plane benchmark measures batches between two processes, as
// between two workers: a receiving process (the one that prints the
// report) and a sending process it starts. It runs the same traffic twice:
// over a cluster/transport channel (handshake, sequence numbers, credit
// flow control, Arrow IPC framing, zero-copy receive) and over a raw TCP
// connection that writes and reads the same number of bytes per batch
// into reused buffers (the ceiling of the loopback link).

// wireBytes is the size of one batch as an IPC message (metadata and
// body), the raw baseline's frame size.
func wireBytes(rec arrow.RecordBatch) (int, error) {
	p, err := ipc.GetRecordBatchPayload(rec)
	if err != nil {
		return 0, err
	}
	defer p.Release()
	var c byteCounter
	if err := p.SerializeBody(&c); err != nil {
		return 0, err
	}
	meta := p.Meta()
	defer meta.Release()
	return meta.Len() + int(c.n), nil
}

// byteCounter is an io.Writer that only counts.
type byteCounter struct{ n int64 }

func (c *byteCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// DataPlaneResult is one measured run at the receiver.
type DataPlaneResult struct {
	Batches int64
	Bytes   int64
	Elapsed time.Duration
}

func (r DataPlaneResult) mbps() float64 { return float64(r.Bytes) / 1e6 / r.Elapsed.Seconds() }
func (r DataPlaneResult) bps() float64  { return float64(r.Batches) / r.Elapsed.Seconds() }

// DataPlaneSend is the sending process: it sends batches for dur over a
// channel ("channel") or raw TCP ("raw") to addr, then closes.
func DataPlaneSend(ctx context.Context, mode, addr, token string, dur time.Duration) error {
	rec := benchdata.Batch()
	defer rec.Release()
	deadline := time.Now().Add(dur)
	switch mode {
	case "channel", "channel-pool":
		s, err := transport.DialConfig{Token: token}.Dial(ctx, addr, "bench/dataplane")
		if err != nil {
			return err
		}
		for time.Now().Before(deadline) {
			if _, err := s.SendBatch(ctx, rec); err != nil {
				s.Close()
				return err
			}
		}
		return s.Close()
	case "raw":
		size, err := wireBytes(rec)
		if err != nil {
			return err
		}
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		buf := make([]byte, size)
		for time.Now().Before(deadline) {
			if _, err := conn.Write(buf); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown data-plane mode %q", mode)
}

// DataPlaneReceive listens on loopback, calls start with the address the
// sender must dial (start launches the sending process and returns a
// function that waits for it), receives until the sender closes and
// reports what arrived, timed from the first batch to the last.
func DataPlaneReceive(ctx context.Context, mode, token string, start func(addr string) (wait func() error, err error)) (DataPlaneResult, error) {
	var res DataPlaneResult
	switch mode {
	case "channel", "channel-pool":
		cfg := transport.ListenConfig{Token: token}
		if mode == "channel-pool" {
			cfg.Allocator = transport.NewBodyPool(0)
		}
		l, err := cfg.Listen("127.0.0.1:0")
		if err != nil {
			return res, err
		}
		defer l.Close()
		wait, err := start(l.Addr().String())
		if err != nil {
			return res, err
		}
		r, err := l.Accept(ctx)
		if err != nil {
			return res, errors.Join(err, wait())
		}
		defer r.Close()
		var first time.Time
		for {
			f, err := r.Recv(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return res, errors.Join(err, wait())
			}
			if f.Rec != nil {
				if first.IsZero() {
					first = time.Now()
				}
				res.Batches++
				f.Rec.Release()
			}
		}
		res.Elapsed = time.Since(first)
		res.Bytes = int64(r.Stats().Bytes)
		return res, wait()
	case "raw":
		rec := benchdata.Batch()
		size, err := wireBytes(rec)
		rec.Release()
		if err != nil {
			return res, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return res, err
		}
		defer ln.Close()
		wait, err := start(ln.Addr().String())
		if err != nil {
			return res, err
		}
		conn, err := ln.Accept()
		if err != nil {
			return res, errors.Join(err, wait())
		}
		defer conn.Close()
		buf := make([]byte, size)
		var first time.Time
		for {
			if _, err := io.ReadFull(conn, buf); err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					break
				}
				return res, errors.Join(err, wait())
			}
			if first.IsZero() {
				first = time.Now()
			}
			res.Batches++
		}
		res.Elapsed = time.Since(first)
		res.Bytes = res.Batches * int64(size)
		return res, wait()
	}
	return res, fmt.Errorf("unknown data-plane mode %q", mode)
}

// ReportDataPlane prints each run's figures and its ratio to the last
// one, the raw baseline.
func ReportDataPlane(w io.Writer, names []string, runs []DataPlaneResult) {
	fmt.Fprintf(w, "data plane between two processes on loopback (batches of %d rows):\n", benchdata.Rows)
	raw := runs[len(runs)-1]
	for i, r := range runs {
		fmt.Fprintf(w, "  %-36s %6.0f MB/s  %6.0f batches/s  (%d batches in %v)  ratio to raw TCP %.2f\n",
			names[i]+":", r.mbps(), r.bps(), r.Batches, r.Elapsed.Round(time.Millisecond), r.mbps()/raw.mbps())
	}
}
