package exec

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var tradesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: tInt, Nullable: true},
	{Name: "sym", Type: tText, Nullable: true},
	{Name: "price", Type: tFloat, Nullable: true},
	{Name: "ts", Type: tTS, Nullable: true},
}, nil)

// decodeAll feeds data in chunks of chunk bytes (0 = all at once).
func decodeAll(t *testing.T, mem memory.Allocator, opts CopyOptions, data string, chunk, batchRows int) ([][]any, int, error) {
	t.Helper()
	d, err := NewCopyDecoder(tradesSchema, opts, batchRows, WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var rows [][]any
	batches := 0
	emit := func(rec arrow.RecordBatch) error {
		batches++
		rows = append(rows, recordRows(rec)...)
		return nil
	}
	b := []byte(data)
	if chunk <= 0 {
		chunk = len(b) + 1
	}
	for len(b) > 0 {
		n := min(chunk, len(b))
		if err := d.Write(b[:n], emit); err != nil {
			return rows, batches, err
		}
		b = b[n:]
	}
	if err := d.Flush(emit); err != nil {
		return rows, batches, err
	}
	if int(d.Rows()) != len(rows) {
		t.Fatalf("Rows() = %d, emitted %d", d.Rows(), len(rows))
	}
	return rows, batches, nil
}

func TestCopyDecoder(t *testing.T) {
	ts := int64(1704164645000000)
	cases := []struct {
		name string
		opts CopyOptions
		data string
		want [][]any
	}{
		{"text", CopyOptions{}, "1\tAAPL\t1.5\t2024-01-02 03:04:05\n2\t\\N\t\\N\t\\N\n3\ta\\tb\\\\c\\nd\t-2\t2024-01-02T03:04:05Z\n",
			[][]any{{int64(1), "AAPL", 1.5, ts}, {int64(2), nil, nil, nil}, {int64(3), "a\tb\\c\nd", -2.0, ts}}},
		{"text_crlf_end", CopyOptions{}, "1\tx\t1\t2024-01-02 03:04:05\r\n\\.\nignored\n",
			[][]any{{int64(1), "x", 1.0, ts}}},
		{"text_noeol", CopyOptions{}, " 7 \tx\t1e3\t2024-01-02 03:04:05+00:00",
			[][]any{{int64(7), "x", 1000.0, ts}}},
		{"csv", CopyOptions{CSV: true, Header: true}, "id,sym,price,ts\n1,AAPL,1.5,2024-01-02 03:04:05\n2,,,\n3,\"\",\"2\",\"2024-01-02 03:04:05\"\n",
			[][]any{{int64(1), "AAPL", 1.5, ts}, {int64(2), nil, nil, nil}, {int64(3), "", 2.0, ts}}},
		{"csv_header_match", CopyOptions{CSV: true, Header: true, HeaderMatch: true}, "id,\"sym\",price,ts\n1,AAPL,1.5,2024-01-02 03:04:05\n",
			[][]any{{int64(1), "AAPL", 1.5, ts}}},
		{"text_header_match", CopyOptions{Header: true, HeaderMatch: true}, "id\tsym\tprice\tts\n1\tAAPL\t1.5\t2024-01-02 03:04:05\n",
			[][]any{{int64(1), "AAPL", 1.5, ts}}},
		{"text_header", CopyOptions{Header: true}, "anything\n1\tAAPL\t1.5\t2024-01-02 03:04:05\n",
			[][]any{{int64(1), "AAPL", 1.5, ts}}},
		{"csv_quotes", CopyOptions{CSV: true}, "1,\"a,\"\"b\"\"\nc\",3,2024-01-02 03:04:05\r\n2,\"x\",4,\n",
			[][]any{{int64(1), "a,\"b\"\nc", 3.0, ts}, {int64(2), "x", 4.0, nil}}},
		{"csv_null_marker", CopyOptions{CSV: true, Null: "NULL"}, "1,NULL,\"NULL\",NULL\n",
			nil},
		{"csv_delim", CopyOptions{CSV: true, Delimiter: '|'}, "1|a|2|2024-01-02 03:04:05\n",
			[][]any{{int64(1), "a", 2.0, ts}}},
	}
	for _, c := range cases {
		for _, chunk := range []int{0, 1, 3, 7} {
			for _, br := range []int{1, 2, 1000} {
				t.Run(fmt.Sprintf("%s/chunk=%d/batch=%d", c.name, chunk, br), func(t *testing.T) {
					mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
					defer mem.AssertSize(t, 0)
					got, batches, err := decodeAll(t, mem, c.opts, c.data, chunk, br)
					if c.name == "csv_null_marker" {
						// "NULL" quoted is the string; price "NULL" is invalid
						if err == nil || !strings.Contains(err.Error(), `invalid input syntax for type double precision: "NULL"`) {
							t.Fatalf("want invalid double, got %v", err)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					compareRows(t, got, c.want, true)
					if want := (len(c.want) + br - 1) / br; batches != want {
						t.Fatalf("%d batches, want %d", batches, want)
					}
				})
			}
		}
	}
}

func TestCopyDecoderErrors(t *testing.T) {
	cases := []struct {
		name       string
		opts       CopyOptions
		data       string
		code, msg  string
		contextHas string
	}{
		{"bad_int", CopyOptions{CSV: true, Table: "trades"}, "1,a,1,2024-01-01\n2,b,2,2024-01-01\nx,c,3,2024-01-01\n", "22P02", `invalid input syntax for type bigint: "x"`, `COPY trades, line 3, column id: "x"`},
		{"bad_float", CopyOptions{CSV: true, Table: "trades"}, "1,a,x,2024-01-01\n", "22P02", `invalid input syntax for type double precision: "x"`, `COPY trades, line 1, column price: "x"`},
		{"extra", CopyOptions{CSV: true, Table: "trades"}, "1,a,1,2024-01-01,5\n", "22P04", "extra data after last expected column", `COPY trades, line 1: "1,a,1,2024-01-01,5"`},
		{"missing", CopyOptions{Table: "trades"}, "1\ta\n", "22P04", `missing data for column "price"`, `COPY trades, line 1: "1	a"`},
		{"unterminated", CopyOptions{CSV: true, Table: "trades"}, "1,\"abc,1,2024-01-01\n", "22P04", "unterminated CSV quoted field", "COPY trades, line"},
		{"overflow", CopyOptions{CSV: true, Table: "t"}, "99999999999999999999,a,1,\n", "22003", `value "99999999999999999999" is out of range for type bigint`, "column id"},
		{"bad_ts", CopyOptions{CSV: true, Table: "t"}, "1,a,1,yesterday-ish\n", "22007", `invalid input syntax for type timestamp: "yesterday-ish"`, "column ts"},
		{"header_mismatch", CopyOptions{CSV: true, Header: true, HeaderMatch: true, Table: "t"}, "id,symbol,price,ts\n1,a,1,\n", "22P04", `column name mismatch in header line field 2: got "symbol", expected "sym"`, `COPY t, line 1: "id,symbol,price,ts"`},
		{"header_short", CopyOptions{Header: true, HeaderMatch: true, Table: "t"}, "id\tsym\n1\ta\t1\t\\N\n", "22P04", "wrong number of fields in header line: got 2, expected 4", "COPY t, line 1"},
		{"not_utf8", CopyOptions{CSV: true, Table: "t"}, "1,a,1,\n2,b\xe9A,1,\n", "22021", `invalid byte sequence for encoding "UTF8": 0xe9 0x41`, "COPY t, line 2, column sym"},
		{"not_utf8_text", CopyOptions{Table: "t"}, "1\t\\xff\t1\t\\N\n", "22021", `invalid byte sequence for encoding "UTF8": 0xff`, "COPY t, line 1, column sym"},
	}
	for _, c := range cases {
		for _, chunk := range []int{0, 2} {
			t.Run(fmt.Sprintf("%s/%d", c.name, chunk), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				_, _, err := decodeAll(t, mem, c.opts, c.data, chunk, 2)
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("want *Error, got %v", err)
				}
				if e.Code != c.code || e.Message != c.msg || !strings.Contains(e.Context, c.contextHas) {
					t.Fatalf("got %s %q context %q", e.Code, e.Message, e.Context)
				}
			})
		}
	}
}

// After a data error, Flush emits the rows before the bad record.
func TestCopyDecoderErrorKeepsEarlierRows(t *testing.T) {
	for _, chunk := range []int{0, 1, 5} {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		d, err := NewCopyDecoder(tradesSchema, CopyOptions{CSV: true, Table: "t"}, 100, WithAllocator(mem))
		if err != nil {
			t.Fatal(err)
		}
		var rows [][]any
		emit := func(rec arrow.RecordBatch) error { rows = append(rows, recordRows(rec)...); return nil }
		data := []byte("1,a,1,\n2,bb,2,\n3,ccc,bad,\n4,d,4,\n")
		if chunk == 0 {
			chunk = len(data)
		}
		var werr error
		for p := 0; p < len(data) && werr == nil; p += chunk {
			werr = d.Write(data[p:min(p+chunk, len(data))], emit)
		}
		if werr == nil || !strings.Contains(werr.Error(), "line 3") {
			t.Fatalf("want error on line 3, got %v", werr)
		}
		if err := d.Flush(emit); err != nil {
			t.Fatal(err)
		}
		compareRows(t, rows, [][]any{{int64(1), "a", 1.0, nil}, {int64(2), "bb", 2.0, nil}}, true)
		d.Close()
		mem.AssertSize(t, 0)
	}
}

func TestCopyInt32Range(t *testing.T) {
	md := arrow.NewMetadata([]string{SQLTypeMetadataKey}, []string{"integer"})
	schema := arrow.NewSchema([]arrow.Field{{Name: "n", Type: tInt, Nullable: true, Metadata: md}}, nil)
	d, err := NewCopyDecoder(schema, CopyOptions{Table: "t"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Write([]byte("2147483647\n2147483648\n"), func(arrow.RecordBatch) error { return nil })
	var e *Error
	if !errors.As(err, &e) || e.Code != "22003" || e.Message != `value "2147483648" is out of range for type integer` {
		t.Fatalf("got %v", err)
	}
	if _, err := RecordFromValues(schema, [][]any{{int64(1) << 40}}); err == nil {
		t.Fatal("RecordFromValues: want range error")
	}
}

func TestVarcharLimit(t *testing.T) {
	md := arrow.NewMetadata([]string{SQLTypeMetadataKey}, []string{"varchar(5)"})
	schema := arrow.NewSchema([]arrow.Field{{Name: "s", Type: tText, Nullable: true, Metadata: md}}, nil)
	rec, err := RecordFromValues(schema, [][]any{{"héllo"}, {"ab   "}, {"abcde   "}})
	if err != nil {
		t.Fatal(err)
	}
	if got := recordRows(rec); got[2][0] != "abcde" {
		t.Fatalf("trailing spaces: %v", got)
	}
	rec.Release()
	_, err = RecordFromValues(schema, [][]any{{"abcdef"}})
	var e *Error
	if !errors.As(err, &e) || e.Code != "22001" || e.Message != "value too long for type character varying(5)" {
		t.Fatalf("got %v", err)
	}
	d, _ := NewCopyDecoder(schema, CopyOptions{CSV: true, Table: "t"}, 10)
	defer d.Close()
	err = d.Write([]byte("abcdef\n"), func(arrow.RecordBatch) error { return nil })
	if !errors.As(err, &e) || e.Code != "22001" {
		t.Fatalf("COPY: got %v", err)
	}
}

func makeTradesCSV(rows int) []byte {
	var sb strings.Builder
	syms := []string{"AAPL", "MSFT", "GOOG", "AMZN"}
	for i := 0; i < rows; i++ {
		fmt.Fprintf(&sb, "%d,%s,%d.%02d,2024-01-02 03:%02d:%02d.%06d\n", i, syms[i%4], 100+i%50, i%100, (i/60)%60, i%60, i%1000000)
	}
	return []byte(sb.String())
}

// BenchmarkCopyDecoderCSV decodes a 4-column (bigint, text, double,
// timestamp) CSV in 64 KiB chunks; reports rows/s.
func BenchmarkCopyDecoderCSV(b *testing.B) {
	const rows = 500000
	data := makeTradesCSV(rows)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		d, err := NewCopyDecoder(tradesSchema, CopyOptions{CSV: true, Table: "trades"}, 1<<16)
		if err != nil {
			b.Fatal(err)
		}
		emit := func(rec arrow.RecordBatch) error { return nil }
		for p := 0; p < len(data); p += 1 << 16 {
			if err := d.Write(data[p:min(p+1<<16, len(data))], emit); err != nil {
				b.Fatal(err)
			}
		}
		if err := d.Flush(emit); err != nil {
			b.Fatal(err)
		}
		d.Close()
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
