package pgwire

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/spatedb/spate/internal/sqltest"
)

// encodeFrontend encodes frontend messages as a client would send them.
func encodeFrontend(t testing.TB, msgs ...pgproto3.FrontendMessage) []byte {
	var b []byte
	for _, m := range msgs {
		var err error
		b, err = m.Encode(b)
		if err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// FuzzStartupAndMessages feeds arbitrary bytes to the server, after a
// valid startup packet (validStartup) or in its place, and checks that the
// server neither panics nor stops accepting connections. With scram the
// server is one that requires SCRAM-SHA-256 of every client and offers
// TLS, so the bytes after the startup packet are the SASL exchange (or
// after an SSLRequest, a TLS handshake). Run it with
// go test -fuzz FuzzStartupAndMessages ./pgwire/.
func FuzzStartupAndMessages(f *testing.F) {
	ts := startServer(f, Config{MaxMessageSize: 1 << 16, StartupTimeout: 5 * time.Second})
	eng := newAuthEngine(map[string]string{"spate": "fuzz-pw"})
	certs := sqltest.WriteCerts(f)
	scramServer := startServerWith(f, Config{MaxMessageSize: 1 << 16, StartupTimeout: 5 * time.Second, Auth: AuthSCRAM, TLS: certs.ServerTLS(f)}, eng, eng.fakeEngine, false)
	startup := encodeFrontend(f, &pgproto3.StartupMessage{
		ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters:      map[string]string{"user": "spate", "database": "spate"},
	})

	f.Add(true, false, encodeFrontend(f, &pgproto3.Query{String: "select 1"}, &pgproto3.Terminate{}))
	f.Add(true, false, encodeFrontend(f, &pgproto3.Query{String: "select * from t; select error"}))
	f.Add(true, false, encodeFrontend(f, &pgproto3.Query{String: "SUBSCRIBE q"}, &pgproto3.Query{String: "select 1"}))
	f.Add(true, false, encodeFrontend(f,
		&pgproto3.Parse{Name: "a", Query: "select p($1, $2, $3, $4, $5, $6)", ParameterOIDs: []uint32{23, 1186}},
		&pgproto3.Describe{ObjectType: 'S', Name: "a"},
		&pgproto3.Bind{PreparedStatement: "a", ParameterFormatCodes: []int16{1}, Parameters: [][]byte{{0, 0, 0, 1}, make([]byte, 16), {1, 2}, nil, nil, nil}, ResultFormatCodes: []int16{1}},
		&pgproto3.Execute{MaxRows: 1},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
	))
	f.Add(true, false, encodeFrontend(f,
		&pgproto3.Query{String: "COPY t FROM STDIN"},
		&pgproto3.CopyData{Data: []byte("1\tx\n")},
		&pgproto3.Sync{},
		&pgproto3.CopyDone{},
		&pgproto3.Query{String: "COPY bad FROM STDIN; select 1"},
		&pgproto3.CopyData{Data: []byte("1\n")},
		&pgproto3.CopyData{Data: []byte("2\n")},
		&pgproto3.CopyFail{Message: "x"},
	))
	f.Add(true, false, encodeFrontend(f, &pgproto3.Query{String: "COPY (select big) TO STDOUT WITH (FORMAT csv)"}))
	f.Add(true, false, []byte{'Q', 0, 0, 0, 4})
	f.Add(true, false, []byte{'B', 0, 0, 0, 9, 0, 0, 0xff, 0xff, 0})
	f.Add(true, false, []byte{'d', 0x7f, 0xff, 0xff, 0xff})
	f.Add(true, false, []byte("\x00\x00\x00\x08\x04\xd2\x16\x2f"))
	f.Add(false, false, []byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add(false, false, []byte("\x00\x00\x00\x08\x04\xd2\x16\x2f\x00\x00\x00\x08\x04\xd2\x16\x30"))
	f.Add(false, false, []byte("\x00\x00\x00\x10\x04\xd2\x16\x2e\x00\x00\x00\x01\x00\x00\x00\x02"))
	f.Add(false, false, []byte("\x00\x00\x00\x0e\x00\x03\x00\x02user\x00x\x00"))

	// The SASL exchange.
	initial := &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=fyko+d2lbbFgONRv9qkxdawL")}
	f.Add(true, true, encodeFrontend(f, initial, &pgproto3.SASLResponse{Data: []byte("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")}))
	f.Add(true, true, encodeFrontend(f, initial, &pgproto3.SASLResponse{Data: []byte("c=biws,r=x,p=")}, &pgproto3.Query{String: "select 1"}))
	f.Add(true, true, encodeFrontend(f, initial, &pgproto3.SASLResponse{Data: []byte("c=eSws,r=fyko+d2lbbFgONRv9qkxdawL,e=x,p=AAAA")}))
	f.Add(true, true, encodeFrontend(f, &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("y,,n=user,r=abc,ext=1")}))
	f.Add(true, true, encodeFrontend(f, &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256-PLUS", Data: []byte("p=tls-server-end-point,a=x,n=,r=abc")}))
	f.Add(true, true, encodeFrontend(f, &pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("m=ext,n=,r=abc")}))
	f.Add(true, true, []byte{'p', 0, 0, 0, 8, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add(true, true, []byte{'p', 0, 0, 0, 4})
	f.Add(true, true, []byte{'p', 0x7f, 0xff, 0xff, 0xff})
	f.Add(true, true, encodeFrontend(f, &pgproto3.PasswordMessage{Password: "fuzz-pw"}))
	f.Add(false, true, []byte("\x00\x00\x00\x08\x04\xd2\x16\x2f\x16\x03\x01\x00\x05hello"))

	f.Fuzz(func(t *testing.T, validStartup, scram bool, data []byte) {
		addr := ts.addr
		if scram {
			addr = scramServer.addr
		}
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		var in []byte
		if validStartup {
			in = append(in, startup...)
		}
		in = append(in, data...)
		_, _ = nc.Write(in)
		// End the client's input: every path must then end the connection
		// (streaming statements stop when the client goes away).
		_ = nc.(*net.TCPConn).CloseWrite()
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, nc); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("server did not close the connection for input %q", in)
			}
		}
		for _, srv := range []*testServer{ts, scramServer} {
			if logs := srv.logs.String(); strings.Contains(logs, "panic") {
				t.Fatalf("server panicked for input %q:\n%s", in, logs)
			}
		}
		if scram {
			scramServer.checkAliveAs(t, "spate", "fuzz-pw")
		} else {
			ts.checkAlive(t)
		}
	})
}
