package sqltest

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// FloatTolerance is the relative tolerance of R (floating-point) values.
const FloatTolerance = 1e-9

// Value renders one result value as a script writes it: NULL for NULL,
// (empty) for the empty string, the text otherwise.
func Value(v []byte) string {
	switch {
	case v == nil:
		return "NULL"
	case len(v) == 0:
		return "(empty)"
	}
	return string(v)
}

// FloatsEqual reports whether two floating-point values written as text
// are equal within FloatTolerance (relative). NaN equals NaN and
// infinities equal infinities of the same sign; text that is not a number
// must match exactly.
func FloatsEqual(a, b string) bool {
	if a == b {
		return true
	}
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	return floatsClose(x, y)
}

func floatsClose(x, y float64) bool {
	switch {
	case math.IsNaN(x) || math.IsNaN(y):
		return math.IsNaN(x) && math.IsNaN(y)
	case math.IsInf(x, 0) || math.IsInf(y, 0):
		return x == y
	case x == y:
		return true
	}
	return math.Abs(x-y) <= FloatTolerance*math.Max(math.Abs(x), math.Abs(y))
}

// valueEqual compares an actual value (rendered by Value) with an expected
// one of the column type typ.
func valueEqual(typ byte, got, want string) bool {
	if typ == 'R' {
		return FloatsEqual(got, want)
	}
	return got == want
}

// splitExpected splits an expected row into one field per column. A row
// containing a tab is split at tabs (values may then contain spaces). A
// row without tabs is split at spaces; a value that itself contains spaces
// (a timestamp, say) takes as many space-separated words as the actual
// value has, so `2026-01-01 09:30:00 ACME 3` matches three columns. It
// returns nil when the row cannot be split into len(got) fields.
func splitExpected(row string, got []string) []string {
	if strings.Contains(row, "\t") {
		parts := strings.Split(row, "\t")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		if len(parts) != len(got) {
			return nil
		}
		return parts
	}
	words := strings.Fields(row)
	out := make([]string, 0, len(got))
	for i, g := range got {
		n := len(strings.Fields(g))
		if n == 0 {
			n = 1
		}
		// Leave at least one word for each remaining column.
		if left := len(words) - (len(got) - i - 1); n > left {
			n = left
		}
		if n <= 0 {
			return nil
		}
		out = append(out, strings.Join(words[:n], " "))
		words = words[n:]
	}
	if len(words) > 0 {
		// Too many words: let the last column show them, so the diff does.
		out[len(out)-1] += " " + strings.Join(words, " ")
	}
	return out
}

// rowMatches compares one actual row with one expected row.
func rowMatches(types string, got []string, want string) bool {
	fields := splitExpected(want, got)
	if fields == nil {
		return false
	}
	for i := range got {
		if !valueEqual(types[i], got[i], fields[i]) {
			return false
		}
	}
	return true
}

// normalizeRow joins the values of a row written in a script with single
// spaces, the form rows are sorted and shown in.
func normalizeRow(row string) string {
	if strings.Contains(row, "\t") {
		parts := strings.Split(row, "\t")
		for i := range parts {
			parts[i] = strings.Join(strings.Fields(parts[i]), " ")
		}
		return strings.Join(parts, " ")
	}
	return strings.Join(strings.Fields(row), " ")
}

// CompareRows compares actual rows (values rendered by Value) with the
// expected rows of a script under a sort mode. It returns "" when they
// match and otherwise a diff: lines of expected rows prefixed "- ", actual
// rows prefixed "+ " and matching rows prefixed "  ".
func CompareRows(types string, mode SortMode, got [][]string, want []string) string {
	if mode == ValueSort {
		return compareValues(types, got, want)
	}
	gotLines := make([]string, len(got))
	for i, r := range got {
		gotLines[i] = strings.Join(r, " ")
	}
	want = append([]string(nil), want...)
	if mode == RowSort {
		got = append([][]string(nil), got...)
		idx := make([]int, len(got))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return gotLines[idx[a]] < gotLines[idx[b]] })
		sortedGot := make([][]string, len(got))
		sortedLines := make([]string, len(got))
		for i, j := range idx {
			sortedGot[i], sortedLines[i] = got[j], gotLines[j]
		}
		got, gotLines = sortedGot, sortedLines
		sort.SliceStable(want, func(a, b int) bool { return normalizeRow(want[a]) < normalizeRow(want[b]) })
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = rowMatches(types, got[i], want[i])
	}
	if ok {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "expected %d rows, got %d", len(want), len(got))
	if mode == RowSort {
		b.WriteString(" (both sorted)")
	}
	b.WriteString("\n")
	for i := 0; i < max(len(got), len(want)); i++ {
		switch {
		case i < len(got) && i < len(want) && rowMatches(types, got[i], want[i]):
			fmt.Fprintf(&b, "  %s\n", gotLines[i])
		default:
			if i < len(want) {
				fmt.Fprintf(&b, "- %s\n", normalizeRow(want[i]))
			}
			if i < len(got) {
				fmt.Fprintf(&b, "+ %s\n", gotLines[i])
			}
		}
	}
	return b.String()
}

// compareValues implements valuesort: every value (every space-separated
// word, so that a value containing spaces compares word by word) is sorted
// on both sides.
func compareValues(types string, got [][]string, want []string) string {
	var g, w []string
	for _, r := range got {
		for _, v := range r {
			g = append(g, strings.Fields(v)...)
		}
	}
	for _, r := range want {
		w = append(w, strings.Fields(r)...)
	}
	sort.Strings(g)
	sort.Strings(w)
	floats := strings.Contains(types, "R")
	ok := len(g) == len(w)
	for i := 0; ok && i < len(g); i++ {
		ok = g[i] == w[i] || floats && FloatsEqual(g[i], w[i])
	}
	if ok {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "expected %d values, got %d (both sorted)\n", len(w), len(g))
	for i := 0; i < max(len(g), len(w)); i++ {
		switch {
		case i < len(g) && i < len(w) && (g[i] == w[i] || floats && FloatsEqual(g[i], w[i])):
			fmt.Fprintf(&b, "  %s\n", g[i])
		default:
			if i < len(w) {
				fmt.Fprintf(&b, "- %s\n", w[i])
			}
			if i < len(g) {
				fmt.Fprintf(&b, "+ %s\n", g[i])
			}
		}
	}
	return b.String()
}

// ParseCopyText splits one line of COPY … TO STDOUT text format into
// values rendered by Value: fields are separated by tabs, \N is NULL and
// backslash escapes (\t, \n, \\, \r, \b, \f, \v, octal \ooo, hex \xhh) are
// decoded.
func ParseCopyText(line string) []string {
	fields := strings.Split(line, "\t")
	out := make([]string, len(fields))
	for i, f := range fields {
		if f == `\N` {
			out[i] = "NULL"
			continue
		}
		out[i] = Value([]byte(unescapeCopy(f)))
	}
	return out
}

func unescapeCopy(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch c = s[i]; c {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'v':
			b.WriteByte('\v')
		case 'x':
			n, v := 0, 0
			for n < 2 && i+1 < len(s) && isHex(s[i+1]) {
				i++
				v = v*16 + hexVal(s[i])
				n++
			}
			if n == 0 {
				b.WriteByte('x')
			} else {
				b.WriteByte(byte(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for n := 1; n < 3 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; n++ {
				i++
				v = v*8 + int(s[i]-'0')
			}
			b.WriteByte(byte(v))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}
