// Package flightbench measures Spate's transport channel against Arrow
// Flight (gRPC) on the same batches, in one run. It is a separate module so
// that gRPC stays out of Spate's own dependencies:
//
//	cd cluster/transport/flightbench && go test -run '^$' -bench . -count 3
//
// See the transport package doc for the figures and the conclusion.
package flightbench

import (
	"context"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/spatedb/spate/cluster/transport"
	"github.com/spatedb/spate/internal/benchdata"
)

const (
	rows  = benchdata.Rows
	token = "bench-token"
)

// ipcBytes is the size of one batch as an IPC message (metadata + body),
// the payload both transports carry.
func ipcBytes(b *testing.B, rec arrow.RecordBatch) int64 {
	var buf countingWriter
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		b.Fatal(err)
	}
	first := buf.n
	if err := w.Write(rec); err != nil {
		b.Fatal(err)
	}
	return buf.n - first
}

// cpuTime is the CPU time (user + system) this process used so far; the
// benchmarks run both ends of the stream in-process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

func report(b *testing.B, elapsed, cpu time.Duration) {
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/batch")
	b.ReportMetric(float64(b.N)*rows/elapsed.Seconds(), "rows/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "batches/s")
}

type server struct {
	flight.BaseFlightServer
	done chan error
}

func (s *server) DoPut(stream flight.FlightService_DoPutServer) error {
	rd, err := flight.NewRecordReader(stream)
	if err != nil {
		s.done <- err
		return err
	}
	defer rd.Release()
	for rd.Next() {
	}
	err = rd.Err()
	if err == io.EOF {
		err = nil
	}
	s.done <- err
	return err
}

// BenchmarkFlightDoPut streams the batches with Arrow Flight's DoPut
// (gRPC, HTTP/2) over loopback: the alternative the issue names.
func BenchmarkFlightDoPut(b *testing.B) {
	rec := benchdata.Batch()
	defer rec.Release()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &server{done: make(chan error, 1)}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	flight.RegisterFlightServiceServer(gs, srv)
	go gs.Serve(ln)
	defer gs.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	stream, err := flight.NewFlightServiceClient(conn).DoPut(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	wr := flight.NewRecordWriter(stream, ipc.WithSchema(rec.Schema()))
	if err := wr.Write(rec); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(ipcBytes(b, rec))
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for range b.N {
		if err := wr.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
	wr.Close()
	stream.CloseSend()
	if err := <-srv.done; err != nil {
		b.Fatal(err)
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	report(b, elapsed, cpu)
}

// BenchmarkSpateChannel is the same stream over a transport channel,
// with receive bodies from the Go allocator (the default) and from a
// transport.BodyPool.
func BenchmarkSpateChannel(b *testing.B) {
	b.Run("alloc=go", func(b *testing.B) { benchChannel(b, nil) })
	b.Run("alloc=pool", func(b *testing.B) { benchChannel(b, transport.NewBodyPool(0)) })
}

func benchChannel(b *testing.B, mem memory.Allocator) {
	rec := benchdata.Batch()
	defer rec.Release()
	l, err := transport.ListenConfig{Token: token, Allocator: mem}.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	s, err := transport.Dial(ctx, l.Addr().String(), token, "bench")
	if err != nil {
		b.Fatal(err)
	}
	r, err := l.Accept(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	done := make(chan error, 1)
	go func() {
		for range b.N + 1 {
			f, err := r.Recv(ctx)
			if err != nil {
				done <- err
				return
			}
			f.Rec.Release()
		}
		done <- nil
	}()
	if _, err := s.SendBatch(ctx, rec); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(ipcBytes(b, rec))
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for range b.N {
		if _, err := s.SendBatch(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	s.Close()
	report(b, elapsed, cpu)
}
