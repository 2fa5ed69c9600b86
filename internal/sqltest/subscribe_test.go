package sqltest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// fakeSubscribeServer is a minimal PostgreSQL-protocol server that answers
// every Query with CopyOutResponse followed by the given CopyData payloads
// (one message each), then holds the COPY open until the client leaves.
func fakeSubscribeServer(t *testing.T, payloads []string) (connString string, queries chan string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	queries = make(chan string, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveFake(c, payloads, queries)
		}
	}()
	return fmt.Sprintf("host=127.0.0.1 port=%d user=spate dbname=spate sslmode=disable", l.Addr().(*net.TCPAddr).Port), queries
}

func serveFake(c net.Conn, payloads []string, queries chan<- string) {
	defer c.Close()
	be := pgproto3.NewBackend(c, c)
	if _, err := be.ReceiveStartupMessage(); err != nil {
		return
	}
	be.Send(&pgproto3.AuthenticationOk{})
	be.Send(&pgproto3.BackendKeyData{ProcessID: 1, SecretKey: []byte{0, 0, 0, 1}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if be.Flush() != nil {
		return
	}
	msg, err := be.Receive()
	if err != nil {
		return
	}
	q, ok := msg.(*pgproto3.Query)
	if !ok {
		return
	}
	queries <- q.String
	be.Send(&pgproto3.CopyOutResponse{OverallFormat: 0, ColumnFormatCodes: []uint16{0, 0}})
	for _, p := range payloads {
		be.Send(&pgproto3.CopyData{Data: []byte(p)})
	}
	if be.Flush() != nil {
		return
	}
	// Hold the COPY open, as SUBSCRIBE does, until the client goes away.
	for {
		if _, err := be.Receive(); err != nil {
			return
		}
	}
}

func writeScript(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.slt")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSubscribeRecord(t *testing.T) {
	// Rows split across and packed into CopyData messages, with escapes.
	conn, queries := fakeSubscribeServer(t, []string{"a\t1\n", "b\t\\N\nc\t", "3\n", "d\t4\n"})
	script := writeScript(t, "subscribe cq 3 TI rowsort\n----\nc 3\na 1\nb NULL\n\nsubscribe wait cq\n")
	rec := &recorder{t: t}
	if rec.run(script, conn) || len(rec.errors) > 0 {
		t.Fatalf("errors: %q", rec.errors)
	}
	if q := <-queries; q != "COPY (SUBSCRIBE cq) TO STDOUT" {
		t.Errorf("query = %q", q)
	}
}

func TestSubscribeRecordTooFewRows(t *testing.T) {
	conn, _ := fakeSubscribeServer(t, []string{"a\t1\n"})
	script := writeScript(t, "subscribe cq 2 TI\n----\na 1\nb 2\n")
	rec := &recorder{t: t}
	start := time.Now()
	const timeout = 300 * time.Millisecond
	rec.runWith(script, conn, timeout)
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "received 1 of 2 rows (no more rows within 300ms)") {
		t.Fatalf("errors: %q", rec.errors)
	}
	if d := time.Since(start); d < timeout || d > timeout+5*time.Second {
		t.Errorf("took %v; the timeout is %v", d, timeout)
	}
}

func TestSubscribeRecordWrongRows(t *testing.T) {
	conn, _ := fakeSubscribeServer(t, []string{"a\t1\n", "b\t2\n"})
	script := writeScript(t, "subscribe cq 2 TI\n----\na 1\nb 3\n")
	rec := &recorder{t: t}
	rec.run(script, conn)
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "- b 3\n+ b 2") {
		t.Fatalf("errors: %q", rec.errors)
	}
}
