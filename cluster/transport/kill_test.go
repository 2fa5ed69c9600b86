package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// cutProxy forwards one connection and cuts it after limit bytes went
// from the dialer to the listener: a network failure in the middle of a
// frame. With reset, both sides get a TCP reset (as from a crashed host's
// kernel, which may discard data still in flight); otherwise the listener
// side gets a clean end of stream mid-frame.
type cutProxy struct {
	ln    net.Listener
	limit int64
	reset bool
	wg    sync.WaitGroup
}

func newCutProxy(t *testing.T, target string, limit int64, reset bool) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, limit: limit, reset: reset}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		in, err := ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", target)
		if err != nil {
			in.Close()
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			io.Copy(in, out)
			out.Close()
		}()
		io.CopyN(out, in, p.limit)
		if p.reset {
			in.(*net.TCPConn).SetLinger(0)
			out.(*net.TCPConn).SetLinger(0)
			out.Close()
		} else {
			out.(*net.TCPConn).CloseWrite()
		}
		in.Close()
	}()
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

// TestConnectionCutMidFrame: the receiver delivers frames that arrived
// whole, then an ErrPeerGone error; the sender gets ErrPeerGone too;
// neither hangs.
func TestConnectionCutMidFrame(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprintf("reset=%v", reset), func(t *testing.T) { testCut(t, reset) })
	}
}

func testCut(t *testing.T, reset bool) {
	checkGoroutines(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	l, err := ListenConfig{Token: testToken, Allocator: mem}.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rec := makeBatch(memory.DefaultAllocator, 0, 4096, 3) // ~170 KB
	defer rec.Release()
	settle(rec)
	// Cut in the middle of the third batch.
	proxy := newCutProxy(t, l.Addr().String(), 450_000, reset)
	ctx := ctxT(t, 20*time.Second)
	s, err := Dial(ctx, proxy.ln.Addr().String(), testToken, "cut")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sendErr := make(chan error, 1)
	go func() {
		for {
			if _, err := s.SendBatch(ctx, rec); err != nil {
				sendErr <- err
				return
			}
		}
	}()
	n := 0
	for {
		f, err := r.Recv(ctx)
		if err != nil {
			if !errors.Is(err, ErrPeerGone) {
				t.Fatalf("receiver: %v, want ErrPeerGone", err)
			}
			t.Log("receiver:", err)
			break
		}
		n++
		if f.Seq != uint64(n) || !array.RecordEqual(f.Rec, rec) {
			t.Fatalf("frame %d: seq %d or content differs", n, f.Seq)
		}
		f.Rec.Release()
	}
	if n > 2 || (!reset && n != 2) {
		t.Fatalf("%d whole batches delivered, want 2 (at most 2 after a reset)", n)
	}
	if err := <-sendErr; !errors.Is(err, ErrPeerGone) {
		t.Fatalf("sender: %v, want ErrPeerGone", err)
	}
	r.Close()
}

// The helper process: run by the SIGKILL tests as a real peer process.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv("SPATE_TRANSPORT_HELPER")
	if role == "" {
		t.Skip("run by the SIGKILL tests")
	}
	ctx := context.Background()
	rec := makeBatch(memory.DefaultAllocator, 0, 4096, 3)
	switch role {
	case "send":
		s, err := Dial(ctx, os.Getenv("SPATE_TRANSPORT_ADDR"), testToken, "killed-sender")
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(1)
		}
		for {
			if _, err := s.SendBatch(ctx, rec); err != nil {
				os.Exit(1)
			}
		}
	case "recv":
		l, err := Listen("127.0.0.1:0", testToken)
		if err != nil {
			fmt.Println("listen:", err)
			os.Exit(1)
		}
		fmt.Println(l.Addr())
		r, err := l.Accept(ctx)
		if err != nil {
			os.Exit(1)
		}
		for {
			f, err := r.Recv(ctx)
			if err != nil {
				os.Exit(1)
			}
			if f.Rec != nil {
				f.Rec.Release()
			}
		}
	}
}

func startHelper(t *testing.T, role string, env ...string) (*exec.Cmd, *bufio.Reader) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), append(env, "SPATE_TRANSPORT_HELPER="+role)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewReader(out)
}

// TestSenderProcessKilled: a sending worker killed with SIGKILL in the
// middle of a stream; the receiver gets an error, not a hang.
func TestSenderProcessKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	l, err := Listen("127.0.0.1:0", testToken)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cmd, _ := startHelper(t, "send", "SPATE_TRANSPORT_ADDR="+l.Addr().String())
	ctx := ctxT(t, 30*time.Second)
	r, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 3 {
		f, err := r.Recv(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		f.Rec.Release()
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := r.Recv(ctx)
		if err != nil {
			if !errors.Is(err, ErrPeerGone) {
				t.Fatalf("after the sender was killed: %v, want ErrPeerGone", err)
			}
			t.Log(err)
			return
		}
		f.Rec.Release()
	}
}

// TestReceiverProcessKilled: a receiving worker killed with SIGKILL; the
// sender's next sends fail with ErrPeerGone instead of blocking.
func TestReceiverProcessKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	cmd, out := startHelper(t, "recv")
	line, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	ctx := ctxT(t, 30*time.Second)
	s, err := Dial(ctx, strings.TrimSpace(line), testToken, "killed-receiver")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := makeBatch(memory.DefaultAllocator, 0, 4096, 3)
	defer rec.Release()
	for range 5 {
		if _, err := s.SendBatch(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := s.SendBatch(ctx, rec); err != nil {
			if !errors.Is(err, ErrPeerGone) {
				t.Fatalf("after the receiver was killed: %v, want ErrPeerGone", err)
			}
			t.Log(err)
			return
		}
	}
}

// rawSender passes the handshake and then writes frames by hand, to play
// a sender that breaks the protocol.
func rawSender(t *testing.T, l *Listener, id string) (net.Conn, *Receiver) {
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := clientHandshake(conn, testToken, id); err != nil {
		t.Fatal(err)
	}
	r, err := l.Accept(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return conn, r
}

// readReason reads the receiver's close frame and returns its reason.
func readReason(t *testing.T, conn net.Conn) string {
	var hb [headerSize]byte
	for {
		if _, err := io.ReadFull(conn, hb[:]); err != nil {
			t.Fatalf("waiting for the receiver's close frame: %v", err)
		}
		if wireKind(hb[0]) == wireClose {
			break
		}
	}
	reason := make([]byte, binary.LittleEndian.Uint32(hb[4:]))
	io.ReadFull(conn, reason)
	return string(reason)
}

func TestProtocolViolations(t *testing.T) {
	l, err := ListenConfig{Token: testToken, Window: 1 << 10}.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := ctxT(t, 10*time.Second)
	frame := func(h header) []byte {
		b := make([]byte, headerSize)
		h.put(b)
		return b
	}

	t.Run("over the credit window", func(t *testing.T) {
		conn, r := rawSender(t, l, "greedy")
		var buf []byte
		for i := range 100 { // 2400 bytes against a 1 KiB window, no credit awaited
			buf = append(buf, frame(header{kind: wireWatermark, seq: uint64(i + 1)})...)
		}
		conn.Write(buf)
		if reason := readReason(t, conn); !strings.Contains(reason, "credit") {
			t.Fatalf("reason %q", reason)
		}
		n := 0
		for {
			_, err := r.Recv(ctx)
			if err != nil {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("%v, want ErrProtocol", err)
				}
				break
			}
			n++
		}
		if n != (1<<10)/headerSize {
			t.Fatalf("%d frames delivered before the violation, want %d", n, (1<<10)/headerSize)
		}
	})
	t.Run("batch before schema", func(t *testing.T) {
		conn, r := rawSender(t, l, "noschema")
		conn.Write(frame(header{kind: wireBatch, seq: 1, a: 8, b: 8}))
		if _, err := r.Recv(ctx); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "before the schema") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("garbage metadata", func(t *testing.T) {
		conn, r := rawSender(t, l, "garbage")
		conn.Write(append(frame(header{kind: wireSchema, a: 16}), []byte("not a flatbuffer")...))
		if _, err := r.Recv(ctx); !errors.Is(err, ErrProtocol) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("unknown kind", func(t *testing.T) {
		conn, r := rawSender(t, l, "unknown")
		conn.Write(frame(header{kind: 99, seq: 1}))
		if _, err := r.Recv(ctx); !errors.Is(err, ErrProtocol) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("close at the wrong sequence number", func(t *testing.T) {
		conn, r := rawSender(t, l, "badclose")
		conn.Write(append(frame(header{kind: wireWatermark, seq: 1}), frame(header{kind: wireClose, seq: 7})...))
		if f, err := r.Recv(ctx); err != nil || f.Seq != 1 {
			t.Fatalf("%v", err)
		}
		if _, err := r.Recv(ctx); !errors.Is(err, ErrProtocol) {
			t.Fatalf("%v", err)
		}
	})
}
