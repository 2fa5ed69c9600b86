package auth

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

var (
	alpha = Protocol{Name: "alpha", Magic: "SPAA", Version: 1, ClientRole: "client", ServerRole: "server", MaxExtra: 64}
	beta  = Protocol{Name: "beta", Magic: "SPAA", Version: 1, ClientRole: "client", ServerRole: "server", MaxExtra: 64}
)

// pair runs a client and a server handshake over a loopback connection.
func pair(t *testing.T, client, server Protocol, ctoken, stoken, extra string, check func(string) error) (clientErr, serverErr error, got string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		extra string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		x, err := server.Server(conn, stoken, check)
		done <- result{x, err}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	clientErr = client.Client(conn, ctoken, extra)
	conn.Close()
	r := <-done
	return clientErr, r.err, r.extra
}

func TestHandshake(t *testing.T) {
	cerr, serr, got := pair(t, alpha, alpha, "tok", "tok", "q1/0.0/1.0.0", nil)
	if cerr != nil || serr != nil || got != "q1/0.0/1.0.0" {
		t.Fatalf("matching tokens: %v / %v / %q", cerr, serr, got)
	}
	// Another token: the client finds the server's MAC wrong and hangs up.
	cerr, serr, _ = pair(t, alpha, alpha, "tok", "other", "x", nil)
	if !errors.Is(cerr, ErrUnauthorized) || !errors.Is(serr, ErrUnauthorized) || !strings.Contains(serr.Error(), "hung up at the challenge") {
		t.Fatalf("wrong token: %v / %v", cerr, serr)
	}
	// A MAC of another protocol (same magic) is not accepted.
	cerr, serr, _ = pair(t, beta, alpha, "tok", "tok", "x", nil)
	if !errors.Is(cerr, ErrUnauthorized) || !errors.Is(serr, ErrUnauthorized) {
		t.Fatalf("cross-protocol: %v / %v", cerr, serr)
	}
	// The server may refuse the extra, and says why.
	cerr, serr, _ = pair(t, alpha, alpha, "tok", "tok", "bad", func(x string) error { return errors.New("no such channel " + x) })
	if !errors.Is(cerr, ErrHandshake) || !strings.Contains(cerr.Error(), "no such channel bad") || !errors.Is(serr, ErrHandshake) {
		t.Fatalf("refused extra: %v / %v", cerr, serr)
	}
	// Too long an extra, another version.
	cerr, _, _ = pair(t, alpha, alpha, "tok", "tok", strings.Repeat("x", 65), nil)
	if !errors.Is(cerr, ErrHandshake) || !strings.Contains(cerr.Error(), "65 extra bytes") {
		t.Fatalf("long extra: %v", cerr)
	}
	v2 := alpha
	v2.Version = 2
	cerr, serr, _ = pair(t, v2, alpha, "tok", "tok", "", nil)
	if !errors.Is(cerr, ErrHandshake) || !strings.Contains(cerr.Error(), "version 2 not supported") || !errors.Is(serr, ErrHandshake) {
		t.Fatalf("version: %v / %v", cerr, serr)
	}
}
