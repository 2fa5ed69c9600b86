package exec

import (
	"math"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

// Expected strings were produced by PostgreSQL 15 (extra_float_digits=1,
// IntervalStyle=postgres, DateStyle=ISO).
func TestAppendFloat8(t *testing.T) {
	cases := map[string]string{
		"0": "0", "-0": "-0", "0.1": "0.1", "1e15": "1e+15", "1e14": "100000000000000",
		"123456789012345": "123456789012345", "1234567890123456": "1.234567890123456e+15",
		"1e-4": "0.0001", "1e-5": "1e-05", "0.00012345": "0.00012345",
		"3.141592653589793": "3.141592653589793", "1e300": "1e+300", "-2.5e-10": "-2.5e-10",
		"100000": "100000", "1.5": "1.5", "2e22": "2e+22", "NaN": "NaN", "Inf": "Infinity",
		"-Inf": "-Infinity", "0.30000000000000004": "0.30000000000000004",
	}
	for in, want := range cases {
		f, _ := strconv.ParseFloat(in, 64)
		if in == "-0" {
			f = math.Copysign(0, -1)
		}
		if got := string(AppendFloat8(nil, f)); got != want {
			t.Errorf("%s: got %q want %q", in, got, want)
		}
	}
}

func TestTimestampText(t *testing.T) {
	cases := map[string]string{
		"2024-01-02 03:04:05.123":     "2024-01-02 03:04:05.123",
		"1999-12-31 23:59:59.999999":  "1999-12-31 23:59:59.999999",
		"0001-01-01 00:00:00":         "0001-01-01 00:00:00",
		"1970-01-01T00:00:00.5Z":      "1970-01-01 00:00:00.5",
		"2024-01-02":                  "2024-01-02 00:00:00",
		"2024-01-02 05:34:05+02:30":   "2024-01-02 03:04:05", // zone converted to UTC
		"2024-01-02T03:04:05-01":      "2024-01-02 04:04:05",
		" 2024-01-02 03:04 ":          "2024-01-02 03:04:00",
		"2024-01-02 03:04:05.1234567": "2024-01-02 03:04:05.123457",
	}
	for in, want := range cases {
		us, err := ParseTimestamp(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := string(AppendTimestamp(nil, us)); got != want {
			t.Errorf("%s: got %q want %q", in, got, want)
		}
	}
	if got := string(AppendTimestamp(nil, -30000*usPerYear)); got[len(got)-3:] != " BC" {
		t.Errorf("BC: %q", got)
	}
	for _, bad := range []string{"x", "2024-13-01", "2024-02-30", "2024-01-02 25:00", "2024-01-02 03:04:05 junk"} {
		if _, err := ParseTimestamp(bad); err == nil {
			t.Errorf("%q: want error", bad)
		}
	}
}

func TestIntervalText(t *testing.T) {
	cases := map[string]string{
		"1 minute": "00:01:00", "1 day 02:00:00": "1 day 02:00:00", "00:01:00": "00:01:00",
		"-1 hour": "-01:00:00", "1.5 seconds": "00:00:01.5", "2 hours 30 mins": "02:30:00",
		"3 days": "3 days", "-00:00:01": "-00:00:01", "10 ms": "00:00:00.01", "1 week": "7 days",
		"1.5 days": "1 day 12:00:00", "@ 1 hour ago": "-01:00:00", "5": "00:00:05",
		"1 mon": "30 days", "-26 hours": "-1 days -02:00:00", "0": "00:00:00", "PT1M30S": "00:01:30",
	}
	for in, want := range cases {
		us, err := ParseInterval(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := string(AppendInterval(nil, us)); got != want {
			t.Errorf("%s: got %q want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "abc", "1 fortnight", "1:xx"} {
		if _, err := ParseInterval(bad); err == nil {
			t.Errorf("%q: want error", bad)
		}
	}
}

func TestAppendText(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "b", Type: tBool}, {Name: "i", Type: tInt}, {Name: "f", Type: tFloat},
		{Name: "s", Type: tText}, {Name: "ts", Type: tTS}, {Name: "iv", Type: tIntv},
	}, nil)
	rec, err := RecordFromValues(schema, [][]any{{true, int64(-42), 0.1, "héllo", int64(1704164645123456), int64(93600000000)}})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	want := []string{"t", "-42", "0.1", "héllo", "2024-01-02 03:04:05.123456", "1 day 02:00:00"}
	for c, w := range want {
		if got := string(AppendText(nil, rec.Column(c), 0)); got != w {
			t.Errorf("column %d: got %q want %q", c, got, w)
		}
	}
}
