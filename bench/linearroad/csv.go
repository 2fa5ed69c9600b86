package linearroad

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// HistoryRow is one row of the historical tolls table: the tolls car VID
// paid on expressway XWay on Day (1 = yesterday .. 69).
type HistoryRow struct {
	VID   int32
	Day   int32
	XWay  int32
	Tolls int32
}

// History is the historical tolls table, indexed for type-3 answers.
type History struct {
	rows []HistoryRow // sorted by (vid, day, xway)
}

// NewHistory indexes rows (the slice is sorted in place).
func NewHistory(rows []HistoryRow) *History {
	slices.SortFunc(rows, func(a, b HistoryRow) int {
		if c := cmp.Compare(a.VID, b.VID); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Day, b.Day); c != 0 {
			return c
		}
		return cmp.Compare(a.XWay, b.XWay)
	})
	return &History{rows: rows}
}

// Len is the number of rows.
func (h *History) Len() int {
	if h == nil {
		return 0
	}
	return len(h.rows)
}

// Tolls is the type-3 answer for (vid, day, xway): the sum of the tolls of
// the matching rows, 0 if there is none (or h is nil).
func (h *History) Tolls(vid, day, xway int32) int64 {
	if h == nil {
		return 0
	}
	i, _ := slices.BinarySearchFunc(h.rows, HistoryRow{VID: vid, Day: day, XWay: xway}, func(a, b HistoryRow) int {
		if c := cmp.Compare(a.VID, b.VID); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Day, b.Day); c != 0 {
			return c
		}
		return cmp.Compare(a.XWay, b.XWay)
	})
	var sum int64
	for ; i < len(h.rows) && h.rows[i].VID == vid && h.rows[i].Day == day && h.rows[i].XWay == xway; i++ {
		sum += int64(h.rows[i].Tolls)
	}
	return sum
}

// ReadHistory reads a historical tolls CSV ("vid,day,xway,tolls" lines; a
// header line is skipped).
func ReadHistory(r io.Reader) (*History, error) {
	var rows []HistoryRow
	var f [4]int64
	err := scanLines(r, func(line []byte, n int) error {
		k, err := parseInts(line, f[:])
		if err != nil || k != 4 {
			return fmt.Errorf("history line %d: want 4 integers: %q", n, line)
		}
		rows = append(rows, HistoryRow{VID: int32(f[0]), Day: int32(f[1]), XWay: int32(f[2]), Tolls: int32(f[3])})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return NewHistory(rows), nil
}

// ReadReports reads a reports CSV (CSVColumns order; a header line is
// skipped) and calls fn for each record in file order.
func ReadReports(r io.Reader, fn func(Report) error) error {
	var f [15]int64
	return scanLines(r, func(line []byte, n int) error {
		k, err := parseInts(line, f[:])
		if err != nil || k != 15 {
			return fmt.Errorf("reports line %d: want 15 integers: %q", n, line)
		}
		return fn(Report{Type: int32(f[0]), Time: int32(f[1]), VID: int32(f[2]), Spd: int32(f[3]),
			XWay: int32(f[4]), Lane: int32(f[5]), Dir: int32(f[6]), Seg: int32(f[7]), Pos: int32(f[8]),
			QID: int32(f[9]), Sinit: int32(f[10]), Send: int32(f[11]), DOW: int32(f[12]), TOD: int32(f[13]),
			Day: int32(f[14])})
	})
}

// outputColumns is the number of columns of each output type.
var outputColumns = [4]int{6, 5, 6, 5}

// ParseOutput parses one output row: comma- or tab-separated integers
// whose first column is the type (see Output for the columns).
func ParseOutput(line []byte) (Output, error) {
	var f [6]int64
	k, err := parseInts(line, f[:])
	if err != nil {
		return Output{}, err
	}
	if k == 0 || f[0] < 0 || f[0] > 3 {
		return Output{}, fmt.Errorf("not an output row: %q", line)
	}
	t := int32(f[0])
	if k != outputColumns[t] {
		return Output{}, fmt.Errorf("type-%d row has %d columns, want %d: %q", t, k, outputColumns[t], line)
	}
	o := Output{Type: t}
	switch t {
	case OutToll:
		o.VID, o.Time, o.Emit, o.LAV, o.Toll = int32(f[1]), int32(f[2]), f[3], int32(f[4]), f[5]
	case OutAccident:
		o.VID, o.Time, o.Emit, o.Seg = int32(f[1]), int32(f[2]), f[3], int32(f[4])
	case OutBalance:
		o.Time, o.Emit, o.ResultTime, o.QID, o.Balance = int32(f[1]), f[2], int32(f[3]), int32(f[4]), f[5]
	case OutExpenditure:
		o.Time, o.Emit, o.QID, o.Balance = int32(f[1]), f[2], int32(f[3]), f[4]
	}
	return o, nil
}

// ReadOutputs reads output rows of any types, mixed or not, one per line
// (comma- or tab-separated; blank lines and header lines, which start with
// a non-digit, are skipped).
func ReadOutputs(r io.Reader) (Outputs, error) {
	var out Outputs
	err := scanLines(r, func(line []byte, n int) error {
		o, err := ParseOutput(line)
		if err != nil {
			return fmt.Errorf("outputs line %d: %w", n, err)
		}
		out = append(out, o)
		return nil
	})
	return out, err
}

// AppendOutputCSV appends o as one CSV line in its type's column order.
func AppendOutputCSV(b []byte, o Output) []byte {
	var f []int64
	switch o.Type {
	case OutToll:
		f = []int64{0, int64(o.VID), int64(o.Time), o.Emit, int64(o.LAV), o.Toll}
	case OutAccident:
		f = []int64{1, int64(o.VID), int64(o.Time), o.Emit, int64(o.Seg)}
	case OutBalance:
		f = []int64{2, int64(o.Time), o.Emit, int64(o.ResultTime), int64(o.QID), o.Balance}
	default:
		f = []int64{int64(o.Type), int64(o.Time), o.Emit, int64(o.QID), o.Balance}
	}
	for i, v := range f {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, v, 10)
	}
	return append(b, '\n')
}

// WriteOutputs writes outs as CSV, one row per line, in the given order.
func WriteOutputs(w io.Writer, outs Outputs) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	buf := make([]byte, 0, 64)
	for _, o := range outs {
		buf = AppendOutputCSV(buf[:0], o)
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// scanLines calls fn for each non-blank line that starts with a digit or
// minus sign (others are headers), with its 1-based line number.
func scanLines(r io.Reader, fn func(line []byte, n int) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || !(line[0] == '-' || line[0] >= '0' && line[0] <= '9') {
			continue
		}
		if err := fn(line, n); err != nil {
			return err
		}
	}
	return sc.Err()
}

// parseInts parses comma- or tab-separated integers (spaces around them
// allowed) into f and returns how many there were; more than len(f) is
// reported as len(f)+1.
func parseInts(line []byte, f []int64) (int, error) {
	k, i, n := 0, 0, len(line)
	for {
		for i < n && line[i] == ' ' {
			i++
		}
		neg := false
		if i < n && line[i] == '-' {
			neg = true
			i++
		}
		start := i
		var v int64
		for i < n && line[i] >= '0' && line[i] <= '9' {
			v = v*10 + int64(line[i]-'0')
			i++
		}
		if i == start || i-start > 18 {
			return k, fmt.Errorf("bad integer in %q", line)
		}
		for i < n && line[i] == ' ' {
			i++
		}
		if k == len(f) {
			return k + 1, nil
		}
		if neg {
			v = -v
		}
		f[k] = v
		k++
		if i == n {
			return k, nil
		}
		if line[i] != ',' && line[i] != '\t' {
			return k, fmt.Errorf("bad integer in %q", line)
		}
		i++
	}
}
