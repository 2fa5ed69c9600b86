package transport

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/spatedb/spate/internal/benchdata"
)

const benchRows = benchdata.Rows

// report adds rows/s and batches/s next to the MB/s SetBytes gives.
func report(b *testing.B, elapsed, cpu time.Duration) {
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/batch")
	b.ReportMetric(float64(b.N)*benchRows/elapsed.Seconds(), "rows/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "batches/s")
}

// BenchmarkChannelThroughput sends 64K-row batches over a loopback
// channel (Sender -> Receiver, credit flow control on) to a consumer that
// releases each batch. MB/s counts wire bytes (IPC metadata and body plus
// frame headers).
func BenchmarkChannelThroughput(b *testing.B) {
	for _, window := range []int64{2 << 20, 8 << 20, 32 << 20} {
		b.Run(fmt.Sprintf("window=%dMiB", window>>20), func(b *testing.B) {
			benchChannel(b, window, nil)
		})
	}
	b.Run("window=8MiB/pool", func(b *testing.B) {
		benchChannel(b, 8<<20, NewBodyPool(0))
	})
}

func benchChannel(b *testing.B, window int64, mem memory.Allocator) {
	rec := benchdata.Batch()
	defer rec.Release()
	l, err := ListenConfig{Token: testToken, Window: window, Allocator: mem}.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	s, err := Dial(ctx, l.Addr().String(), testToken, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
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
	// One batch first: sends the schema and measures the frame size.
	if _, err := s.SendBatch(ctx, rec); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(s.Stats().Bytes))
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
	report(b, elapsed, cpu)
	b.ReportMetric(100*s.Stats().CreditWait.Seconds()/elapsed.Seconds(), "%credit-wait")
}

// BenchmarkRawTCPBaseline moves the same number of bytes per batch over a
// loopback TCP connection with plain Write and ReadFull into a reused
// buffer: the ceiling for any framing on this machine.
func BenchmarkRawTCPBaseline(b *testing.B) {
	rec := benchdata.Batch()
	p, err := ipc.GetRecordBatchPayload(rec)
	if err != nil {
		b.Fatal(err)
	}
	var w iovWriter
	w.iov = new([][]byte)
	p.SerializeBody(&w)
	meta := p.Meta()
	size := int(frameCost(int64(meta.Len()), w.n))
	meta.Release()
	p.Release()
	rec.Release()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		buf := make([]byte, size)
		for range b.N {
			if _, err := io.ReadFull(conn, buf); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for range b.N {
		if _, err := conn.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	report(b, elapsed, cpu)
}

// BenchmarkIPCStreamBaseline is arrow-go's own IPC stream writer and
// reader over a loopback TCP connection: no framing, sequence numbers or
// flow control of ours (and no bound on memory).
func BenchmarkIPCStreamBaseline(b *testing.B) {
	rec := benchdata.Batch()
	defer rec.Release()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		rd, err := ipc.NewReader(conn)
		if err != nil {
			done <- err
			return
		}
		defer rd.Release()
		for range b.N + 1 {
			if !rd.Next() {
				done <- fmt.Errorf("reader stopped: %v", rd.Err())
				return
			}
		}
		done <- nil
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	cw := &countingWriter{w: conn}
	wr := ipc.NewWriter(cw, ipc.WithSchema(rec.Schema()))
	defer wr.Close()
	if err := wr.Write(rec); err != nil {
		b.Fatal(err)
	}
	first := cw.n
	if err := wr.Write(rec); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(cw.n - first)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for range b.N - 1 {
		if err := wr.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	report(b, elapsed, cpu)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
