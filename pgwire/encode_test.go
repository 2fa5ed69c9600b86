package pgwire

import (
	"encoding/binary"
	"io"
	"math"
	"net"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/planner"
)

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	cfg := Config{}.withDefaults()
	if cfg.Listen != "127.0.0.1:5433" || cfg.MaxMessageSize != 64<<20 || cfg.ServerVersion != "15.0 (Spate)" {
		t.Fatalf("defaults %+v", cfg)
	}
	for _, bad := range []Config{{Listen: "nohostport"}, {MaxMessageSize: 10}, {MaxMessageSize: 2 << 30}, {StartupTimeout: -1}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	if _, err := NewServer(Config{MaxMessageSize: 1}, newFakeEngine()); err == nil {
		t.Error("NewServer accepted an invalid Config")
	}
	if _, err := NewServer(Config{}, nil); err == nil {
		t.Error("NewServer accepted a nil engine")
	}
}

func TestTypeOIDs(t *testing.T) {
	want := map[planner.Type][2]int{
		planner.TypeBool: {16, 1}, planner.TypeInt: {23, 4}, planner.TypeBigInt: {20, 8},
		planner.TypeDouble: {701, 8}, planner.TypeText: {25, -1}, planner.TypeTimestamp: {1114, 8},
		planner.TypeInterval: {1186, 16}, planner.TypeUnknown: {25, -1},
	}
	for typ, w := range want {
		oid, size := typeOID(typ)
		if int(oid) != w[0] || int(size) != w[1] {
			t.Errorf("%v: %d/%d, want %v", typ, oid, size, w)
		}
	}
}

func TestCopyTextEscaping(t *testing.T) {
	cases := []struct {
		in    string
		delim byte
		want  string
	}{
		{"plain", '\t', "plain"},
		{"a\tb\nc\rd\\e", '\t', `a\tb\nc\rd\\e`},
		{"\b\f\v\x01", '\t', "\\b\\f\\v\x01"},
		{"a,b|c", '|', `a,b\|c`},
		{"x\x01y", '\x01', "x\\\x01y"},
	}
	for _, c := range cases {
		if got := string(appendCopyText(nil, []byte(c.in), c.delim)); got != c.want {
			t.Errorf("appendCopyText(%q, %q) = %q, want %q", c.in, c.delim, got, c.want)
		}
	}
}

func TestCSVQuoting(t *testing.T) {
	f := copyOutFormat(cluster.CopyFormat{CSV: true})
	cases := []struct {
		in     string
		single bool
		want   string
	}{
		{"plain", false, "plain"},
		{"", false, `""`}, // equals the NULL string
		{"a,b", false, `"a,b"`},
		{`say "hi"`, false, `"say ""hi"""`},
		{"line\nbreak", false, "\"line\nbreak\""},
		{`\.`, true, `"\."`},
		{`\.`, false, `\.`},
	}
	for _, c := range cases {
		if got := string(appendCSV(nil, []byte(c.in), f, c.single)); got != c.want {
			t.Errorf("appendCSV(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	g := copyOutFormat(cluster.CopyFormat{CSV: true, Delimiter: ';', Quote: '\'', Escape: '\\', Null: "NULL"})
	if got := string(appendCSV(nil, []byte(`it's\;NULL`), g, false)); got != `'it\'s\\;NULL'` {
		t.Errorf("custom CSV: %q", got)
	}
	if got := string(appendCSV(nil, []byte("NULL"), g, false)); got != `'NULL'` {
		t.Errorf("CSV value equal to NULL string: %q", got)
	}
	if f := copyOutFormat(cluster.CopyFormat{}); f.Delimiter != '\t' || f.Null != `\N` {
		t.Errorf("text defaults %+v", f)
	}
}

func TestDecodeParam(t *testing.T) {
	be := binary.BigEndian
	cases := []struct {
		oid    uint32
		format int16
		in     []byte
		want   any
	}{
		{oidInt2, 1, be.AppendUint16(nil, uint16(0xfffe)), int64(-2)},
		{oidInt4, 1, be.AppendUint32(nil, uint32(0xfffffffe)), int64(-2)},
		{oidInt8, 1, be.AppendUint64(nil, 1<<40), int64(1 << 40)},
		{oidFloat4, 1, be.AppendUint32(nil, math.Float32bits(0.5)), 0.5},
		{oidFloat8, 1, be.AppendUint64(nil, math.Float64bits(-2.25)), -2.25},
		{oidBool, 1, []byte{0}, false},
		{oidVarchar, 1, []byte("v"), "v"},
		{oidUnspecified, 1, []byte("u"), "u"},
		{oidTimestamp, 1, be.AppendUint64(nil, 0), pgEpochMicros},
		{oidTimestamp, 1, be.AppendUint64(nil, uint64(math.MaxInt64)), int64(math.MaxInt64)},
		{oidInterval, 1, append(be.AppendUint64(nil, 5), 0, 0, 0, 2, 0, 0, 0, 0), 5 + 2*microsPerDay},
		{oidInt8, 0, []byte("12"), "12"},
		{oidInt8, 0, nil, nil},
	}
	for _, c := range cases {
		got, err := decodeParam(c.oid, c.format, c.in)
		if err != nil || got != c.want {
			t.Errorf("decodeParam(%d, %d, %x) = %#v, %v; want %#v", c.oid, c.format, c.in, got, err, c.want)
		}
	}
	for _, bad := range []struct {
		oid    uint32
		format int16
		in     []byte
		code   string
	}{
		{oidInt4, 1, []byte{1}, "22P03"},
		{oidInterval, 1, make([]byte, 8), "22P03"},
		{1700, 1, []byte{0}, "0A000"},
		{oidText, 2, []byte("x"), "08P01"},
	} {
		_, err := decodeParam(bad.oid, bad.format, bad.in)
		if err == nil || toErrorResponse("ERROR", err).Code != bad.code {
			t.Errorf("decodeParam(%d, %d, %x): %v, want %s", bad.oid, bad.format, bad.in, err, bad.code)
		}
	}
}

func TestEncodeBinaryMismatchAndRange(t *testing.T) {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.AppendValues([]int64{1, 1 << 40}, nil)
	arr := b.NewArray()
	defer arr.Release()
	var cb colBuf
	if err := encodeColumn(&cb, arr, 0, 1, oidInt4, formatBinary); err != nil || len(cb.data) != 4 {
		t.Fatalf("int4: %v %x", err, cb.data)
	}
	cb.reset()
	if err := encodeColumn(&cb, arr, 0, 2, oidInt4, formatBinary); err == nil || toErrorResponse("ERROR", err).Code != "22003" {
		t.Fatalf("int4 out of range: %v", err)
	}
	cb.reset()
	if err := encodeColumn(&cb, arr, 0, 2, oidBool, formatBinary); err == nil || toErrorResponse("ERROR", err).Code != "XX000" {
		t.Fatalf("bool from int64: %v", err)
	}
	cb.reset()
	if err := encodeColumn(&cb, arr, 0, 2, oidText, formatBinary); err != nil || string(cb.data) != "11099511627776" {
		t.Fatalf("text in binary: %v %q", err, cb.data)
	}
}

func TestColumnsFromSchema(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "a", Type: arrow.PrimitiveTypes.Int32},
		{Name: "b", Type: arrow.FixedWidthTypes.Timestamp_us},
		{Name: "c", Type: arrow.BinaryTypes.LargeString},
	}, nil)
	cols := columnsFromSchema(schema)
	var got []string
	for _, c := range cols {
		got = append(got, c.Name+":"+c.Type.String())
	}
	if strings.Join(got, ",") != "a:integer,b:timestamp,c:text" {
		t.Fatalf("got %v", got)
	}
}

// TestDataRowsDoNotAllocatePerValue encodes a batch repeatedly and checks
// that allocations do not grow with the number of rows.
func TestDataRowsDoNotAllocatePerValue(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() { _, _ = io.Copy(io.Discard, b) }()
	c := &conn{nc: a}
	rec := allTypesBatch()
	defer rec.Release()
	p := &portal{rec: rec, formats: []int16{0, 1, 0, 1, 0, 1, 0}}
	p.setColumns(allTypesCols)
	run := func() {
		for i := 0; i < 100; i++ {
			if err := c.appendDataRows(p, 0, int(rec.NumRows())); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.flush(); err != nil {
			t.Fatal(err)
		}
	}
	run()
	allocs := testing.AllocsPerRun(5, run)
	t.Logf("%.0f allocations per 300 rows", allocs)
	if allocs > 10 {
		t.Fatalf("%.0f allocations for 300 rows", allocs)
	}
}
