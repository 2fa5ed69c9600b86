package pgwire

import (
	"encoding/binary"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

func TestStartupParameters(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	c.startup(map[string]string{"user": "alice", "database": "db", "application_name": "raw"})
	want := map[string]string{
		"server_version":              "15.0 (Spate)",
		"server_encoding":             "UTF8",
		"client_encoding":             "UTF8",
		"DateStyle":                   "ISO, MDY",
		"IntervalStyle":               "postgres",
		"TimeZone":                    "UTC",
		"integer_datetimes":           "on",
		"standard_conforming_strings": "on",
		"application_name":            "raw",
		"is_superuser":                "on",
		"session_authorization":       "alice",
	}
	for k, v := range want {
		if c.params[k] != v {
			t.Errorf("ParameterStatus %s = %q, want %q", k, c.params[k], v)
		}
	}
	if c.pid == 0 || len(c.secret) != 4 {
		t.Errorf("BackendKeyData pid=%d secret=%x", c.pid, c.secret)
	}
	// SET reports changed parameters.
	c.send(&pgproto3.Query{String: "SET application_name TO 'other'"})
	equalStrings(t, c.recvUntil("Z"), []string{"S application_name=other", "C SET", "Z I"})
}

func TestStartupDefaultsAndUnknownDatabase(t *testing.T) {
	ts := startServer(t, Config{ServerVersion: "15.4 (Spate test)"})
	c := dialRaw(t, ts.addr)
	c.startup(map[string]string{"user": "spate"}) // the database defaults to spate
	if c.params["session_authorization"] != "spate" || c.params["server_version"] != "15.4 (Spate test)" {
		t.Errorf("params %v", c.params)
	}
	// No user is refused, as by PostgreSQL.
	c1 := dialRaw(t, ts.addr)
	c1.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"database": "spate"}})
	equalStrings(t, c1.expectClosed("E FATAL"), []string{"E FATAL 28000 no PostgreSQL user name specified in startup packet"})
	c2 := dialRaw(t, ts.addr)
	c2.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "spate", "database": "nope"}})
	got := c2.expectClosed("E FATAL 3D000")
	if len(got) != 1 {
		t.Fatalf("got %q", got)
	}
}

func TestSSLAndGSSRequestRefused(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	for _, code := range []uint32{80877103, 80877104} {
		var pkt [8]byte
		binary.BigEndian.PutUint32(pkt[0:], 8)
		binary.BigEndian.PutUint32(pkt[4:], code)
		if _, err := c.nc.Write(pkt[:]); err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c.nc, b[:]); err != nil || b[0] != 'N' {
			t.Fatalf("answer to request %d: %q, %v", code, b[0], err)
		}
	}
	c.startup(nil)
	c.send(&pgproto3.Query{String: "select 1"})
	equalStrings(t, c.recvUntil("Z"), []string{"T ?column?:23/0", `D "1"`, "C SELECT 1", "Z I"})
}

func TestGarbageStartupClosesOnlyThatConnection(t *testing.T) {
	ts := startServer(t, Config{})
	good := dialRaw(t, ts.addr)
	good.startup(nil)

	for _, garbage := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"\x00\x00\x00\x08\x00\x00\x00\x00",             // unknown protocol 0.0
		"\x00\x00\x00\x09\x00\x03\x00\x00\x01",         // startup packet without terminator
		"\x00\x00\x00\x0c\x04\xd2\x16\x2f\x00\x00\x00", // SSLRequest with a wrong length
	} {
		bad := dialRaw(t, ts.addr)
		if _, err := bad.nc.Write([]byte(garbage)); err != nil {
			t.Fatal(err)
		}
		if cw, ok := bad.nc.(interface{ CloseWrite() error }); ok && strings.HasPrefix(garbage, "\x00\x00\x00\x0c") {
			_ = cw.CloseWrite()
		}
		bad.expectClosed("E FATAL")
	}

	good.send(&pgproto3.Query{String: "select 1"})
	equalStrings(t, good.recvUntil("Z"), []string{"T ?column?:23/0", `D "1"`, "C SELECT 1", "Z I"})
}

func TestOversizedMessage(t *testing.T) {
	ts := startServer(t, Config{MaxMessageSize: 1024})
	c := dialRaw(t, ts.addr)
	c.startup(nil)
	c.send(&pgproto3.Query{String: "select '" + strings.Repeat("x", 2000) + "'"})
	got := c.expectClosed("E FATAL 54000")
	if len(got) != 1 {
		t.Fatalf("want one 54000 error, got %q", got)
	}
	ts.checkAlive(t)
}

func TestUnknownMessageType(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	c.startup(nil)
	if _, err := c.nc.Write([]byte{'!', 0, 0, 0, 4}); err != nil {
		t.Fatal(err)
	}
	c.expectClosed("E FATAL 08P01")
	ts.checkAlive(t)
}

func TestSimpleQueryMessages(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	c.startup(nil)

	c.send(&pgproto3.Query{String: "select * from t"})
	equalStrings(t, c.recvUntil("Z"), []string{
		"T id:23/0,big:20/0,name:25/0,score:701/0,ok:16/0,ts:1114/0,iv:1186/0",
		`D "1"|"10000000000"|"alice"|"1.5"|"t"|"2024-05-01 12:30:00.25"|"1 day 02:00:00"`,
		`D "-2147483648"|"-9223372036854775808"|"tab\there\nnew\\line,\"q\""|"1e+20"|"f"|"1970-01-01 00:00:00"|"-00:00:01.5"`,
		`D NULL|NULL|NULL|NULL|NULL|NULL|NULL`,
		"C SELECT 3",
		"Z I",
	})

	// Several statements: stop at the first error.
	c.send(&pgproto3.Query{String: "select 1; select error; select 1"})
	equalStrings(t, c.recvUntil("Z"), []string{
		"T ?column?:23/0", `D "1"`, "C SELECT 1",
		"E ERROR 22012 evaluating: division by zero",
		"Z I",
	})

	// Empty query, a command without a tag, an internal error, a syntax error.
	c.send(&pgproto3.Query{String: "  ;  "})
	equalStrings(t, c.recvUntil("Z"), []string{"EmptyQueryResponse", "Z I"})
	c.send(&pgproto3.Query{String: "CREATE STREAM s (a int)"})
	equalStrings(t, c.recvUntil("Z"), []string{"C CREATE STREAM", "Z I"})
	c.send(&pgproto3.Query{String: "select internal"})
	equalStrings(t, c.recvUntil("Z"), []string{"E ERROR XX000 something broke", "Z I"})
	c.send(&pgproto3.Query{String: "bogus stuff"})
	got := c.recvUntil("Z")
	if len(got) != 2 || !strings.HasPrefix(got[0], "E ERROR 42601") || !strings.HasSuffix(got[0], "@1") {
		t.Fatalf("syntax error: %q", got)
	}
}

func TestTransactionStatus(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	c.startup(nil)
	steps := []struct {
		sql  string
		want []string
	}{
		{"BEGIN", []string{"C BEGIN", "Z T"}},
		{"select 1", []string{"T ?column?:23/0", `D "1"`, "C SELECT 1", "Z T"}},
		{"select error", []string{"E ERROR 22012 evaluating: division by zero", "Z E"}},
		{"select 1", []string{"E ERROR 25P02 current transaction is aborted, commands ignored until end of transaction block", "Z E"}},
		{"ROLLBACK", []string{"C ROLLBACK", "Z I"}},
	}
	for _, s := range steps {
		c.send(&pgproto3.Query{String: s.sql})
		equalStrings(t, c.recvUntil("Z"), s.want)
	}
}

func TestExtendedQuery(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	c.startup(nil)

	// Describe a statement before executing it: ParameterDescription and
	// RowDescription; binary results for some columns.
	c.send(
		&pgproto3.Parse{Name: "s1", Query: "select * from t"},
		&pgproto3.Describe{ObjectType: 'S', Name: "s1"},
		&pgproto3.Bind{PreparedStatement: "s1", ResultFormatCodes: []int16{1, 1, 0, 1, 1, 1, 1}},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
	)
	equalStrings(t, c.recvUntil("Z"), []string{
		"ParseComplete",
		"ParameterDescription []",
		"T id:23/0,big:20/0,name:25/0,score:701/0,ok:16/0,ts:1114/0,iv:1186/0",
		"BindComplete",
		"T id:23/1,big:20/1,name:25/0,score:701/1,ok:16/1,ts:1114/1,iv:1186/1",
		dataRow(be32(1), be64(10000000000), []byte("alice"), be64(int64(math.Float64bits(1.5))), []byte{1}, be64(tsValue.UnixMicro()-pgEpochMicros), append(be64(26*3600*1000000), 0, 0, 0, 0, 0, 0, 0, 0)),
		dataRow(be32(math.MinInt32), be64(math.MinInt64), []byte("tab\there\nnew\\line,\"q\""), be64(int64(math.Float64bits(1e20))), []byte{0}, be64(-pgEpochMicros), append(be64(-1500000), 0, 0, 0, 0, 0, 0, 0, 0)),
		"D NULL|NULL|NULL|NULL|NULL|NULL|NULL",
		"C SELECT 3",
		"Z I",
	})

	// Max rows: PortalSuspended, then the rest; the batch boundaries
	// (1000 rows) fall inside the fetches.
	c.send(
		&pgproto3.Parse{Query: "select big"},
		&pgproto3.Bind{},
		&pgproto3.Execute{MaxRows: 2500},
		&pgproto3.Execute{MaxRows: 2500},
		&pgproto3.Execute{MaxRows: 2500},
		&pgproto3.Execute{MaxRows: 2500},
		&pgproto3.Execute{MaxRows: 2500},
		&pgproto3.Sync{},
	)
	var rows, suspended int
	var tags []string
	msgs := c.recvUntil("Z")
	for _, m := range msgs {
		switch {
		case strings.HasPrefix(m, "D "):
			if want := "D " + `"` + itoa(rows) + `"`; m != want {
				t.Fatalf("row %d: %s, want %s", rows, m, want)
			}
			rows++
		case m == "PortalSuspended":
			suspended++
		case strings.HasPrefix(m, "C "):
			tags = append(tags, m)
		}
	}
	if rows != 10000 || suspended != 4 || len(tags) != 1 || tags[0] != "C SELECT 0" {
		t.Fatalf("rows=%d suspended=%d tags=%q", rows, suspended, tags)
	}

	// The portal is gone after Sync (implicit transaction ended).
	c.send(&pgproto3.Execute{}, &pgproto3.Sync{})
	equalStrings(t, c.recvUntil("Z"), []string{`E ERROR 34000 portal "" does not exist`, "Z I"})

	// Close, duplicate and missing statements.
	c.send(
		&pgproto3.Parse{Name: "s2", Query: "select 1"},
		&pgproto3.Parse{Name: "s2", Query: "select 1"},
		&pgproto3.Sync{},
	)
	equalStrings(t, c.recvUntil("Z"), []string{"ParseComplete", `E ERROR 42P05 prepared statement "s2" already exists`, "Z I"})
	c.send(&pgproto3.Close{ObjectType: 'S', Name: "s2"}, &pgproto3.Describe{ObjectType: 'S', Name: "s2"}, &pgproto3.Sync{})
	equalStrings(t, c.recvUntil("Z"), []string{"CloseComplete", `E ERROR 26000 prepared statement "s2" does not exist`, "Z I"})

	// Statements without rows: NoData; empty statement.
	c.send(
		&pgproto3.Parse{Query: "INSERT INTO s VALUES (1)"},
		&pgproto3.Describe{ObjectType: 'S'},
		&pgproto3.Bind{},
		&pgproto3.Execute{},
		&pgproto3.Parse{Query: ""},
		&pgproto3.Bind{},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
	)
	equalStrings(t, c.recvUntil("Z"), []string{
		"ParseComplete", "ParameterDescription []", "NoData", "BindComplete", "C INSERT 0 1",
		"ParseComplete", "BindComplete", "EmptyQueryResponse", "Z I",
	})
}

func itoa(i int) string { return strconv.Itoa(i) }

// dataRow is the summary of a DataRow with these values (nil = NULL).
func dataRow(vals ...[]byte) string {
	m := &pgproto3.DataRow{Values: vals}
	return summarize(m)
}

func TestExtendedErrorDiscardsUntilSync(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	c.startup(nil)
	c.send(
		&pgproto3.Parse{Query: "select error"},
		&pgproto3.Bind{},
		&pgproto3.Execute{},
		// Discarded:
		&pgproto3.Parse{Name: "after", Query: "select 1"},
		&pgproto3.Bind{PreparedStatement: "after"},
		&pgproto3.Execute{},
		&pgproto3.Query{String: "select 1"},
		&pgproto3.Sync{},
	)
	equalStrings(t, c.recvUntil("Z"), []string{
		"ParseComplete", "BindComplete", "E ERROR 22012 evaluating: division by zero", "Z I",
	})
	// "after" was never prepared.
	c.send(&pgproto3.Describe{ObjectType: 'S', Name: "after"}, &pgproto3.Sync{})
	equalStrings(t, c.recvUntil("Z"), []string{`E ERROR 26000 prepared statement "after" does not exist`, "Z I"})

	// Syntax error in Parse, with position; wrong parameter count.
	c.send(&pgproto3.Parse{Query: "bogus"}, &pgproto3.Bind{}, &pgproto3.Sync{})
	got := c.recvUntil("Z")
	if len(got) != 2 || !strings.HasPrefix(got[0], "E ERROR 42601") || !strings.HasSuffix(got[0], "@1") {
		t.Fatalf("got %q", got)
	}
	c.send(&pgproto3.Parse{Query: "select p($1, $2, $3, $4, $5, $6)"}, &pgproto3.Bind{Parameters: [][]byte{[]byte("1")}}, &pgproto3.Sync{})
	equalStrings(t, c.recvUntil("Z"), []string{
		"ParseComplete",
		`E ERROR 08P01 bind message supplies 1 parameters, but prepared statement "" requires 6`,
		"Z I",
	})
	// More parameters than a ParameterDescription can count: refused
	// at Parse, before ParseComplete.
	c.send(&pgproto3.Parse{Query: "select many"}, &pgproto3.Describe{ObjectType: 'S'}, &pgproto3.Sync{})
	equalStrings(t, c.recvUntil("Z"), []string{"E ERROR 54000 a statement may have at most 65535 parameters, this one has 70000", "Z I"})
	c.send(&pgproto3.Query{String: "select 1"})
	equalStrings(t, c.recvUntil("Z"), []string{"T ?column?:23/0", `D "1"`, "C SELECT 1", "Z I"})
}

func TestParamsTextAndBinary(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	c.startup(nil)
	be := binary.BigEndian
	i8 := be.AppendUint64(nil, uint64(42))
	f8 := be.AppendUint64(nil, 0x3ff8000000000000) // 1.5
	ts8 := be.AppendUint64(nil, uint64(tsValue.UnixMicro()-pgEpochMicros))
	iv := be.AppendUint64(nil, uint64(1500000))
	iv = be.AppendUint32(iv, 1) // days
	iv = be.AppendUint32(iv, 1) // months
	c.send(
		&pgproto3.Parse{Query: "select p($1, $2, $3, $4, $5, $6)"},
		&pgproto3.Describe{ObjectType: 'S'},
		&pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{i8, []byte("hi"), f8, {1}, ts8, iv}},
		&pgproto3.Execute{},
		&pgproto3.Bind{Parameters: [][]byte{[]byte("42"), nil, []byte("1.5"), []byte("t"), []byte("2024-05-01 12:30:00.25"), []byte("1 day")}},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
	)
	equalStrings(t, c.recvUntil("Z"), []string{
		"ParseComplete",
		"ParameterDescription [20 25 701 16 1114 1186]",
		"T p:25/0",
		"BindComplete",
		`D "int64:42"`, `D "string:hi"`, `D "float64:1.5"`, `D "bool:true"`,
		`D "int64:1714566600250000"`, `D "int64:2678401500000"`,
		"C SELECT 6",
		"BindComplete",
		`D "string:42"`, `D "<nil>:<nil>"`, `D "string:1.5"`, `D "string:t"`,
		`D "string:2024-05-01 12:30:00.25"`, `D "string:1 day"`,
		"C SELECT 6",
		"Z I",
	})

	// The client's OIDs from Parse win: int4 and float4 in binary.
	c.send(
		&pgproto3.Parse{Query: "select p($1, $2, $3, $4, $5, $6)", ParameterOIDs: []uint32{23, 0, 700}},
		&pgproto3.Describe{ObjectType: 'S'},
		&pgproto3.Bind{ParameterFormatCodes: []int16{1, 0, 1, 0, 0, 0}, Parameters: [][]byte{be.AppendUint32(nil, 7), []byte("x"), be.AppendUint32(nil, 0x3fc00000), []byte("f"), nil, nil}},
		&pgproto3.Execute{},
		&pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{{1}, nil, nil, nil, nil, nil}},
		&pgproto3.Sync{},
	)
	equalStrings(t, c.recvUntil("Z"), []string{
		"ParseComplete",
		"ParameterDescription [23 25 700 16 1114 1186]",
		"T p:25/0",
		"BindComplete",
		`D "int64:7"`, `D "string:x"`, `D "float64:1.5"`, `D "string:f"`, `D "<nil>:<nil>"`, `D "<nil>:<nil>"`,
		"C SELECT 6",
		"E ERROR 22P03 parameter $1: incorrect binary data format for type OID 23",
		"Z I",
	})
}

func TestCopyInSimple(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	c.startup(nil)

	// Success, then the next statement of the same query runs.
	c.send(&pgproto3.Query{String: "COPY t FROM STDIN; select 1"})
	equalStrings(t, []string{c.recv()}, []string{"CopyInResponse 0 [0 0]"})
	ci := <-ts.engine.copies
	c.send(
		&pgproto3.CopyData{Data: []byte("1\ta\n2\tb\n")},
		&pgproto3.Flush{}, // ignored during COPY
		&pgproto3.CopyData{Data: []byte("3\tc\n")},
		&pgproto3.CopyDone{},
	)
	equalStrings(t, c.recvUntil("Z"), []string{"C COPY 3", "T ?column?:23/0", `D "1"`, "C SELECT 1", "Z I"})
	if data, finished, aborted, _ := ci.state(); data != "1\ta\n2\tb\n3\tc\n" || !finished || aborted {
		t.Fatalf("copy state %q finished=%v aborted=%v", data, finished, aborted)
	}

	// CopyFail.
	c.send(&pgproto3.Query{String: "COPY t FROM STDIN"})
	c.recv()
	ci = <-ts.engine.copies
	ci.mu.Lock()
	ci.kept = "1 row kept" // as a stream's COPY that passed rows on
	ci.mu.Unlock()
	c.send(&pgproto3.CopyData{Data: []byte("1\ta\n")}, &pgproto3.CopyFail{Message: "client gave up"})
	equalStrings(t, c.recvUntil("Z"), []string{"E ERROR 57014 COPY from stdin failed: client gave up (1 row kept)", "Z I"})
	if _, _, aborted, reason := ci.state(); !aborted || reason != "client gave up" {
		t.Fatalf("aborted=%v reason=%q", aborted, reason)
	}

	// An error from Write: reported at once, ReadyForQuery, and the rest
	// of the client's copy messages are ignored.
	c.send(&pgproto3.Query{String: "COPY bad FROM STDIN"})
	c.recv()
	ci = <-ts.engine.copies
	c.send(&pgproto3.CopyData{Data: []byte("1\ta\n")}, &pgproto3.CopyData{Data: []byte("oops\n")})
	equalStrings(t, c.recvUntil("Z"), []string{"E ERROR 22P04 bad COPY data on line 2", "Z I"})
	c.send(&pgproto3.CopyData{Data: []byte("3\tc\n")}, &pgproto3.CopyDone{}, &pgproto3.Query{String: "select 1"})
	equalStrings(t, c.recvUntil("Z"), []string{"T ?column?:23/0", `D "1"`, "C SELECT 1", "Z I"})
	if _, finished, aborted, _ := ci.state(); finished || !aborted {
		t.Fatalf("bad copy: finished=%v aborted=%v", finished, aborted)
	}
}

func TestCopyInExtended(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	c.startup(nil)
	c.send(&pgproto3.Parse{Query: "COPY t FROM STDIN"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	equalStrings(t, c.recvUntil("CopyIn"), []string{"ParseComplete", "BindComplete", "CopyInResponse 0 [0 0]"})
	<-ts.engine.copies
	c.send(&pgproto3.CopyData{Data: []byte("1\ta\n")}, &pgproto3.CopyDone{})
	// The Sync sent before the data was ignored during COPY; send another.
	c.send(&pgproto3.Sync{})
	equalStrings(t, c.recvUntil("Z"), []string{"C COPY 1", "Z I"})

	// Error in extended COPY: discard until Sync.
	c.send(&pgproto3.Parse{Query: "COPY bad FROM STDIN"}, &pgproto3.Bind{}, &pgproto3.Execute{})
	equalStrings(t, c.recvUntil("CopyIn"), []string{"ParseComplete", "BindComplete", "CopyInResponse 0 [0 0]"})
	<-ts.engine.copies
	c.send(&pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyData{Data: []byte("2\n")}, &pgproto3.CopyDone{},
		&pgproto3.Parse{Query: "select 1"}, &pgproto3.Sync{})
	equalStrings(t, c.recvUntil("Z"), []string{"E ERROR 22P04 bad COPY data on line 2", "Z I"})
}

func TestDisconnectMidCopyAborts(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	c.startup(nil)
	c.send(&pgproto3.Query{String: "COPY t FROM STDIN"})
	c.recv()
	ci := <-ts.engine.copies
	c.send(&pgproto3.CopyData{Data: []byte("1\ta\n")})
	c.nc.Close()
	select {
	case <-ci.done:
	case <-time.After(10 * time.Second):
		t.Fatal("CopyIn not aborted after disconnect")
	}
	if _, finished, aborted, _ := ci.state(); finished || !aborted {
		t.Fatalf("finished=%v aborted=%v", finished, aborted)
	}
	ts.checkAlive(t)
}

func TestCopyOut(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	c.startup(nil)
	c.send(&pgproto3.Query{String: "COPY (select * from t) TO STDOUT"})
	equalStrings(t, c.recvUntil("Z"), []string{
		"CopyOutResponse 0 [0 0 0 0 0 0 0]",
		`CopyData "1\t10000000000\talice\t1.5\tt\t2024-05-01 12:30:00.25\t1 day 02:00:00\n"`,
		`CopyData "-2147483648\t-9223372036854775808\ttab\\there\\nnew\\\\line,\"q\"\t1e+20\tf\t1970-01-01 00:00:00\t-00:00:01.5\n"`,
		`CopyData "\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n"`,
		"CopyDone",
		"C COPY 3",
		"Z I",
	})
	c.send(&pgproto3.Query{String: "COPY (select * from t) TO STDOUT WITH (FORMAT csv)"})
	equalStrings(t, c.recvUntil("Z"), []string{
		"CopyOutResponse 0 [0 0 0 0 0 0 0]",
		`CopyData "id,big,name,score,ok,ts,iv\n"`,
		`CopyData "1,10000000000,alice,1.5,t,2024-05-01 12:30:00.25,1 day 02:00:00\n"`,
		`CopyData "-2147483648,-9223372036854775808,\"tab\there\nnew\\line,\"\"q\"\"\",1e+20,f,1970-01-01 00:00:00,-00:00:01.5\n"`,
		`CopyData ",,,,,,\n"`,
		"CopyDone",
		"C COPY 3",
		"Z I",
	})
}

func TestStreamingSubscribeRaw(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	c.startup(nil)
	c.send(&pgproto3.Query{String: "SUBSCRIBE q"})
	st := <-ts.engine.streams
	if got := c.recv(); got != "T op:25/0,n:20/0" {
		t.Fatalf("got %s", got)
	}
	// Rows arrive as each batch is pushed.
	for i := int64(0); i < 3; i++ {
		st.push(subscribeBatch([]string{"+"}, []int64{i}))
		if got, want := c.recv(), `D "+"|"`+itoa(int(i))+`"`; got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	// CancelRequest from another connection.
	cc := dialRaw(t, ts.addr)
	cc.send(&pgproto3.CancelRequest{ProcessID: c.pid, SecretKey: c.secret})
	cc.expectClosed()
	equalStrings(t, c.recvUntil("Z"), []string{"E ERROR 57014 canceling statement due to user request", "Z I"})
	waitFor(t, "stream closed", st.isClosed)

	// A wrong secret cancels nothing.
	c.send(&pgproto3.Query{String: "SUBSCRIBE q"})
	st = <-ts.engine.streams
	c.recv()
	cc = dialRaw(t, ts.addr)
	cc.send(&pgproto3.CancelRequest{ProcessID: c.pid, SecretKey: []byte{1, 2, 3, 4}})
	cc.expectClosed()
	st.push(subscribeBatch([]string{"+"}, []int64{7}))
	if got := c.recv(); got != `D "+"|"7"` {
		t.Fatalf("got %s", got)
	}

	// The client closes the socket: the stream stops.
	c.nc.Close()
	waitFor(t, "stream closed after disconnect", st.isClosed)
	ts.checkAlive(t)
}

func TestCancelCopyOutSubscribe(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	c.startup(nil)
	c.send(&pgproto3.Query{String: "COPY (SUBSCRIBE q) TO STDOUT"})
	st := <-ts.engine.streams
	equalStrings(t, []string{c.recv()}, []string{"CopyOutResponse 0 [0 0]"})
	st.push(subscribeBatch([]string{"+", "-"}, []int64{1, 2}))
	equalStrings(t, []string{c.recv(), c.recv()}, []string{`CopyData "+\t1\n"`, `CopyData "-\t2\n"`})
	cc := dialRaw(t, ts.addr)
	cc.send(&pgproto3.CancelRequest{ProcessID: c.pid, SecretKey: c.secret})
	equalStrings(t, c.recvUntil("Z"), []string{"E ERROR 57014 canceling statement due to user request", "Z I"})
}

func TestPanicClosesOnlyThatConnection(t *testing.T) {
	ts := startServer(t, Config{})
	other := dialRaw(t, ts.addr)
	other.startup(nil)
	c := dialRaw(t, ts.addr)
	c.startup(nil)
	c.send(&pgproto3.Query{String: "select panic"})
	c.expectClosed("E FATAL XX000 internal error: boom")
	if !strings.Contains(ts.logs.String(), "panic in connection") {
		t.Errorf("panic not logged: %s", ts.logs.String())
	}
	other.send(&pgproto3.Query{String: "select 1"})
	equalStrings(t, other.recvUntil("Z"), []string{"T ?column?:23/0", `D "1"`, "C SELECT 1", "Z I"})
}

func TestServerCloseEndsStreams(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	c.startup(nil)
	c.send(&pgproto3.Query{String: "SUBSCRIBE q"})
	st := <-ts.engine.streams
	c.recv()
	done := make(chan struct{})
	go func() {
		ts.srv.Close()
		close(done)
	}()
	c.expectClosed("E FATAL 57P01")
	<-done
	if !st.isClosed() {
		t.Error("stream not closed by Server.Close")
	}
	ts.srv.Close() // idempotent
	ts.engine.mu.Lock()
	defer ts.engine.mu.Unlock()
	for _, s := range ts.engine.sessions {
		s.mu.Lock()
		if !s.closed {
			t.Error("session not closed")
		}
		s.mu.Unlock()
	}
}

func be32(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func be64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// TestInvalidUTF8: SQL text and text parameters that are not UTF-8 get
// 22021 naming the bad byte sequence, as PostgreSQL answers (the messages
// were checked against PostgreSQL 15), and the session goes on.
func TestInvalidUTF8(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	c.startup(nil)
	c.send(&pgproto3.Query{String: "SELECT 'a\xe9Ab'"})
	equalStrings(t, c.recvUntil("Z"), []string{`E ERROR 22021 invalid byte sequence for encoding "UTF8": 0xe9 0x41 0x62`, "Z I"})
	c.send(&pgproto3.Query{String: "SELECT 'x\xf0\x9f\x98'"})
	equalStrings(t, c.recvUntil("Z"), []string{`E ERROR 22021 invalid byte sequence for encoding "UTF8": 0xf0 0x9f 0x98 0x27`, "Z I"})
	c.send(&pgproto3.Parse{Query: "SELECT 'x\xffy'"}, &pgproto3.Sync{})
	equalStrings(t, c.recvUntil("Z"), []string{`E ERROR 22021 invalid byte sequence for encoding "UTF8": 0xff`, "Z I"})
	params := [][]byte{[]byte("1"), []byte("ok\xc3"), []byte("1.5"), []byte("t"), []byte("2024-01-01"), []byte("1 day")}
	for _, format := range []int16{0, 1} {
		c.send(&pgproto3.Parse{Query: "select p($1, $2, $3, $4, $5, $6)"},
			&pgproto3.Bind{ParameterFormatCodes: []int16{0, format, 0, 0, 0, 0}, Parameters: params}, &pgproto3.Execute{}, &pgproto3.Sync{})
		equalStrings(t, c.recvUntil("Z"), []string{"ParseComplete", `E ERROR 22021 parameter $2: invalid byte sequence for encoding "UTF8": 0xc3`, "Z I"})
	}
	c.send(&pgproto3.Query{String: "select 1"})
	if got := c.recvUntil("Z"); got[len(got)-1] != "Z I" {
		t.Errorf("after the errors: %q", got)
	}
}
