package exec

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Microseconds per unit.
const (
	usPerMs     = int64(1000)
	usPerSecond = int64(1000000)
	usPerMinute = 60 * usPerSecond
	usPerHour   = 60 * usPerMinute
	usPerDay    = 24 * usPerHour
	usPerMonth  = 30 * usPerDay
	usPerYear   = 365 * usPerDay
)

// AppendText appends PostgreSQL's text output of the value at row of col to
// dst and returns the extended slice. The value must not be NULL (the wire
// protocol encodes NULL separately). Booleans print as t/f, doubles as
// PostgreSQL 15 prints float8 (shortest round-trip digits, exponent form
// below 1e-4 and from 1e15, NaN, Infinity, -Infinity), timestamps as
// "2024-01-02 03:04:05.123456" with trailing fraction zeros trimmed and
// intervals in the default "postgres" IntervalStyle ("1 day 02:00:00").
// col is not retained.
func AppendText(dst []byte, col arrow.Array, row int) []byte {
	switch col.DataType().ID() {
	case arrow.BOOL:
		if col.(*array.Boolean).Value(row) {
			return append(dst, 't')
		}
		return append(dst, 'f')
	case arrow.INT64:
		return strconv.AppendInt(dst, Int64s(col)[row], 10)
	case arrow.FLOAT64:
		return AppendFloat8(dst, Float64s(col)[row])
	case arrow.STRING:
		return append(dst, stringsOf(col).bytes(row)...)
	case arrow.TIMESTAMP:
		us := Int64s(col)[row]
		switch col.DataType().(*arrow.TimestampType).Unit {
		case arrow.Second:
			us *= usPerSecond
		case arrow.Millisecond:
			us *= usPerMs
		case arrow.Nanosecond:
			us /= 1000
		}
		return AppendTimestamp(dst, us)
	case arrow.DURATION:
		us := Int64s(col)[row]
		switch col.DataType().(*arrow.DurationType).Unit {
		case arrow.Second:
			us *= usPerSecond
		case arrow.Millisecond:
			us *= usPerMs
		case arrow.Nanosecond:
			us /= 1000
		}
		return AppendInterval(dst, us)
	case arrow.UINT64:
		return strconv.AppendUint(dst, Uint64s(col)[row], 10)
	case arrow.INT32:
		return strconv.AppendInt(dst, int64(col.(*array.Int32).Value(row)), 10)
	case arrow.FLOAT32:
		return AppendFloat8(dst, float64(col.(*array.Float32).Value(row)))
	}
	return append(dst, col.ValueStr(row)...)
}

// AppendFloat8 appends v as PostgreSQL 15 prints a double precision with
// the default extra_float_digits (1): the shortest string that reads back
// as v, in exponent form when the decimal exponent is < -4 or >= 15.
func AppendFloat8(dst []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	case math.IsInf(v, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(v, -1):
		return append(dst, "-Infinity"...)
	}
	a := math.Abs(v)
	if a == 0 || (a >= 1e-4 && a < 1e15) {
		return strconv.AppendFloat(dst, v, 'f', -1, 64)
	}
	return strconv.AppendFloat(dst, v, 'e', -1, 64)
}

// AppendTimestamp appends a TIMESTAMP (µs since the epoch, no zone) in
// PostgreSQL's ISO output format; math.MaxInt64 and MinInt64 are
// 'infinity' and '-infinity'.
func AppendTimestamp(dst []byte, us int64) []byte {
	switch us {
	case math.MaxInt64:
		return append(dst, "infinity"...)
	case math.MinInt64:
		return append(dst, "-infinity"...)
	}
	secs := us / usPerSecond
	frac := us % usPerSecond
	if frac < 0 {
		frac += usPerSecond
		secs--
	}
	t := time.Unix(secs, 0).UTC()
	y, mo, d := t.Date()
	hh, mm, ss := t.Clock()
	bc := false
	if y <= 0 {
		bc = true
		y = 1 - y
	}
	dst = appendPad(dst, int64(y), 4)
	dst = append(dst, '-')
	dst = appendPad(dst, int64(mo), 2)
	dst = append(dst, '-')
	dst = appendPad(dst, int64(d), 2)
	dst = append(dst, ' ')
	dst = appendPad(dst, int64(hh), 2)
	dst = append(dst, ':')
	dst = appendPad(dst, int64(mm), 2)
	dst = append(dst, ':')
	dst = appendPad(dst, int64(ss), 2)
	dst = appendFrac(dst, frac)
	if bc {
		dst = append(dst, " BC"...)
	}
	return dst
}

// appendFrac appends ".ffffff" with trailing zeros trimmed (nothing for 0).
func appendFrac(dst []byte, frac int64) []byte {
	if frac == 0 {
		return dst
	}
	var b [7]byte
	b[0] = '.'
	for i := 6; i >= 1; i-- {
		b[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := 7
	for n > 1 && b[n-1] == '0' {
		n--
	}
	return append(dst, b[:n]...)
}

func appendPad(dst []byte, v int64, width int) []byte {
	var tmp [20]byte
	b := strconv.AppendInt(tmp[:0], v, 10)
	for i := len(b); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, b...)
}

// AppendInterval appends an INTERVAL (µs; a day is 24 hours) in
// PostgreSQL's "postgres" IntervalStyle: "3 days", "1 day 02:00:00",
// "00:01:00", "-00:00:01", "-1 days -02:00:00". Days are whole multiples of
// 24 hours (months are not reconstructed: 30 days print as "30 days").
func AppendInterval(dst []byte, us int64) []byte {
	days := us / usPerDay
	rem := us % usPerDay
	if days != 0 {
		dst = strconv.AppendInt(dst, days, 10)
		if days == 1 {
			dst = append(dst, " day"...)
		} else {
			dst = append(dst, " days"...)
		}
		if rem == 0 {
			return dst
		}
		dst = append(dst, ' ')
	}
	if rem < 0 {
		dst = append(dst, '-')
		rem = -rem
	}
	h := rem / usPerHour
	rem %= usPerHour
	m := rem / usPerMinute
	rem %= usPerMinute
	s := rem / usPerSecond
	f := rem % usPerSecond
	dst = appendPad(dst, h, 2)
	dst = append(dst, ':')
	dst = appendPad(dst, m, 2)
	dst = append(dst, ':')
	dst = appendPad(dst, s, 2)
	return appendFrac(dst, f)
}

// FormatValue returns the text form of row of col, and false for NULL.
func FormatValue(col arrow.Array, row int) (string, bool) {
	if col.IsNull(row) {
		return "", false
	}
	return string(AppendText(nil, col, row)), true
}

// ---- parsing ----

func errTimestampSyntax(s string) *Error { return errInvalidInput("timestamp", s) }

// ParseTimestamp parses PostgreSQL's ISO timestamp input: "2024-01-02",
// "2024-01-02 03:04[:05[.123456]]" with a space or 'T' between date and
// time, and an optional zone suffix "Z", "UTC", "+hh", "+hh:mm" or "+hhmm"
// (the value is converted to UTC). Fractions beyond µs are rounded. Errors
// carry SQLSTATE 22007 (syntax) or 22008 (field out of range).
func ParseTimestamp(s string) (int64, error) {
	us, ok, rangeErr := parseTimestampFast(strings.TrimSpace(s))
	if rangeErr && ok {
		return 0, &Error{Code: CodeDatetimeOutOfRange, Message: "timestamp out of range: \"" + s + "\""}
	}
	if rangeErr {
		return 0, &Error{Code: CodeDatetimeOutOfRange, Message: "date/time field value out of range: \"" + s + "\""}
	}
	if !ok {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "epoch":
			return 0, nil
		case "infinity", "+infinity":
			return math.MaxInt64, nil
		case "-infinity":
			return math.MinInt64, nil
		}
		e := errTimestampSyntax(s)
		e.Code = CodeInvalidDatetime
		return 0, e
	}
	return us, nil
}

func digits(s string, n int) (int64, bool) {
	if len(s) < n {
		return 0, false
	}
	var v int64
	for i := 0; i < n; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

var daysBefore = [...]int64{0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365}

func isLeap(y int64) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// daysFromCivil returns days since 1970-01-01 (proleptic Gregorian).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func daysIn(y, m int64) int64 {
	d := daysBefore[m] - daysBefore[m-1]
	if m == 2 && isLeap(y) {
		d++
	}
	return d
}

// maxTimestampDays bounds the days since 1970 a timestamp can hold.
const maxTimestampDays = math.MaxInt64 / usPerDay

// parseTimestampFast parses the ISO forms; ok=false on a syntax error,
// rangeErr on an impossible field, and both for a date beyond what µs
// since 1970 in an int64 hold (up to January 294247; math.MaxInt64 is
// 'infinity').
func parseTimestampFast(s string) (us int64, ok bool, rangeErr bool) {
	// Year: 4+ digits.
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i < 4 || i > 6 || i >= len(s)+1 {
		return 0, false, false
	}
	y, _ := digits(s, i)
	s = s[i:]
	if len(s) < 6 || s[0] != '-' || s[3] != '-' {
		return 0, false, false
	}
	mo, ok1 := digits(s[1:], 2)
	d, ok2 := digits(s[4:], 2)
	if !ok1 || !ok2 {
		return 0, false, false
	}
	s = s[6:]
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) {
		return 0, false, true
	}
	var hh, mm, ss, frac int64
	if len(s) > 0 && (s[0] == ' ' || s[0] == 'T' || s[0] == 't') {
		s = strings.TrimLeft(s[1:], " ")
		if len(s) < 5 || s[2] != ':' {
			return 0, false, false
		}
		var okh, okm bool
		hh, okh = digits(s, 2)
		mm, okm = digits(s[3:], 2)
		if !okh || !okm {
			return 0, false, false
		}
		s = s[5:]
		if len(s) > 0 && s[0] == ':' {
			var oks bool
			ss, oks = digits(s[1:], 2)
			if !oks {
				return 0, false, false
			}
			s = s[3:]
			if len(s) > 0 && s[0] == '.' {
				s = s[1:]
				n := 0
				scale := int64(100000)
				round := false
				for n < len(s) && s[n] >= '0' && s[n] <= '9' {
					if n < 6 {
						frac += int64(s[n]-'0') * scale
						scale /= 10
					} else if n == 6 && s[n] >= '5' {
						round = true
					}
					n++
				}
				if n == 0 {
					return 0, false, false
				}
				if round {
					frac++
				}
				s = s[n:]
			}
		}
		if hh > 24 || mm > 59 || ss > 60 || (hh == 24 && (mm > 0 || ss > 0 || frac > 0)) {
			return 0, false, true
		}
	}
	// Zone.
	s = strings.TrimLeft(s, " ")
	var zone int64
	if len(s) > 0 {
		switch {
		case s == "Z" || s == "z" || strings.EqualFold(s, "UTC") || strings.EqualFold(s, "GMT"):
		case s[0] == '+' || s[0] == '-':
			sign := int64(1)
			if s[0] == '-' {
				sign = -1
			}
			z := s[1:]
			zh, okz := digits(z, 2)
			if !okz {
				return 0, false, false
			}
			z = z[2:]
			var zm int64
			if len(z) > 0 {
				if z[0] == ':' {
					z = z[1:]
				}
				var okzm bool
				zm, okzm = digits(z, 2)
				if !okzm || len(z) != 2 {
					return 0, false, false
				}
			}
			zone = sign * (zh*usPerHour + zm*usPerMinute)
		default:
			return 0, false, false
		}
	}
	days := daysFromCivil(y, mo, d)
	if days >= maxTimestampDays-1 || days <= -maxTimestampDays+1 {
		return 0, true, true
	}
	us = days*usPerDay + hh*usPerHour + mm*usPerMinute + ss*usPerSecond + frac - zone
	return us, true, false
}

// ParseInterval parses PostgreSQL's interval input: quantities with units
// ("1 minute", "2 hours 30 mins", "1.5 seconds", "-1 hour", "3 days",
// "1 year 2 mons", "10 ms"), a time "hh:mm[:ss[.ffffff]]" with an optional
// sign, both together ("1 day 02:00:00"), a plain number (seconds), a
// leading "@" and a trailing "ago". A month counts as 30 days and a year as
// 365 days. Errors carry SQLSTATE 22007.
func ParseInterval(s string) (int64, error) {
	us, ok := parseInterval(s)
	if !ok {
		return 0, &Error{Code: CodeInvalidDatetime, Message: "invalid input syntax for type interval: \"" + s + "\""}
	}
	return us, nil
}

func parseInterval(s string) (int64, bool) {
	f := strings.Fields(strings.ToLower(s))
	if len(f) == 0 {
		return 0, false
	}
	if f[0] == "@" {
		f = f[1:]
	}
	neg := false
	if len(f) > 0 && f[len(f)-1] == "ago" {
		neg = true
		f = f[:len(f)-1]
	}
	if len(f) == 0 {
		return 0, false
	}
	if strings.HasPrefix(f[0], "p") && len(f) == 1 {
		v, ok := parseISOInterval(f[0])
		if neg {
			v = -v
		}
		return v, ok
	}
	var total float64
	var totalInt int64
	for i := 0; i < len(f); i++ {
		tok := f[i]
		if strings.IndexByte(tok, ':') >= 0 {
			v, ok := parseClock(tok)
			if !ok {
				return 0, false
			}
			totalInt += v
			continue
		}
		// number, possibly with the unit glued on ("10s", "5min").
		j := 0
		if j < len(tok) && (tok[j] == '+' || tok[j] == '-') {
			j++
		}
		for j < len(tok) && (tok[j] >= '0' && tok[j] <= '9' || tok[j] == '.') {
			j++
		}
		numStr, unit := tok[:j], tok[j:]
		if numStr == "" || numStr == "+" || numStr == "-" {
			return 0, false
		}
		if unit == "" && i+1 < len(f) && isIntervalUnit(f[i+1]) {
			unit = f[i+1]
			i++
		}
		mult := int64(usPerSecond)
		if unit != "" {
			var ok bool
			mult, ok = intervalUnit(unit)
			if !ok {
				return 0, false
			}
		}
		if strings.IndexByte(numStr, '.') < 0 {
			n, err := strconv.ParseInt(numStr, 10, 64)
			if err != nil {
				return 0, false
			}
			hi, lo := mulOverflow(n, mult)
			if hi {
				return 0, false
			}
			totalInt += lo
		} else {
			x, err := strconv.ParseFloat(numStr, 64)
			if err != nil {
				return 0, false
			}
			total += x * float64(mult)
		}
	}
	res := totalInt + int64(math.Round(total))
	if neg {
		res = -res
	}
	return res, true
}

func mulOverflow(a, b int64) (bool, int64) {
	c := a * b
	if a != 0 && (c/a != b || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64)) {
		return true, 0
	}
	return false, c
}

func isIntervalUnit(s string) bool { _, ok := intervalUnit(s); return ok }

func intervalUnit(u string) (int64, bool) {
	u = strings.TrimSuffix(u, ",")
	switch u {
	case "microsecond", "microseconds", "us", "usec", "usecs", "useconds", "microsecon":
		return 1, true
	case "millisecond", "milliseconds", "ms", "msec", "msecs", "mseconds":
		return usPerMs, true
	case "second", "seconds", "s", "sec", "secs":
		return usPerSecond, true
	case "minute", "minutes", "m", "min", "mins":
		return usPerMinute, true
	case "hour", "hours", "h", "hr", "hrs":
		return usPerHour, true
	case "day", "days", "d":
		return usPerDay, true
	case "week", "weeks", "w":
		return 7 * usPerDay, true
	case "month", "months", "mon", "mons":
		return usPerMonth, true
	case "year", "years", "y", "yr", "yrs":
		return usPerYear, true
	case "decade", "decades":
		return 10 * usPerYear, true
	case "century", "centuries":
		return 100 * usPerYear, true
	case "millennium", "millennia", "millenniums":
		return 1000 * usPerYear, true
	}
	return 0, false
}

// parseClock parses [-]hh:mm[:ss[.ffffff]].
func parseClock(tok string) (int64, bool) {
	neg := false
	if tok[0] == '-' || tok[0] == '+' {
		neg = tok[0] == '-'
		tok = tok[1:]
	}
	parts := strings.Split(tok, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, false
	}
	h, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || h < 0 {
		return 0, false
	}
	m, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || m < 0 || m > 59 {
		return 0, false
	}
	v := h*usPerHour + m*usPerMinute
	if len(parts) == 3 {
		sec, err := strconv.ParseFloat(parts[2], 64)
		if err != nil || sec < 0 || sec >= 60 {
			return 0, false
		}
		v += int64(math.Round(sec * float64(usPerSecond)))
	}
	if neg {
		v = -v
	}
	return v, true
}

// parseISOInterval parses the ISO 8601 "format with designators" (P1DT2H).
func parseISOInterval(s string) (int64, bool) {
	s = s[1:]
	inTime := false
	var total float64
	if s == "" {
		return 0, false
	}
	for len(s) > 0 {
		if s[0] == 't' {
			inTime = true
			s = s[1:]
			continue
		}
		j := 0
		for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == '-') {
			j++
		}
		if j == 0 || j >= len(s) {
			return 0, false
		}
		x, err := strconv.ParseFloat(s[:j], 64)
		if err != nil {
			return 0, false
		}
		var mult int64
		switch s[j] {
		case 'y':
			mult = usPerYear
		case 'm':
			if inTime {
				mult = usPerMinute
			} else {
				mult = usPerMonth
			}
		case 'w':
			mult = 7 * usPerDay
		case 'd':
			mult = usPerDay
		case 'h':
			mult = usPerHour
		case 's':
			mult = usPerSecond
		default:
			return 0, false
		}
		total += x * float64(mult)
		s = s[j+1:]
	}
	return int64(math.Round(total)), true
}

// ---- scalar text parsing shared by casts and COPY ----

func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// parseInt64Bytes parses PostgreSQL int8 input: optional surrounding
// whitespace, an optional sign, decimal digits. overflow reports a value
// outside int64.
func parseInt64Bytes(b []byte) (v int64, ok bool, overflow bool) {
	i, n := 0, len(b)
	for i < n && isSpace(b[i]) {
		i++
	}
	for n > i && isSpace(b[n-1]) {
		n--
	}
	if i == n {
		return 0, false, false
	}
	neg := false
	if b[i] == '-' || b[i] == '+' {
		neg = b[i] == '-'
		i++
		if i == n {
			return 0, false, false
		}
	}
	var u uint64
	for ; i < n; i++ {
		c := b[i] - '0'
		if c > 9 {
			return 0, false, false
		}
		if u > (1<<63)/10 {
			overflow = true
		}
		u = u*10 + uint64(c)
		if u > 1<<63 {
			overflow = true
		}
	}
	if overflow {
		return 0, true, true
	}
	if neg {
		return -int64(u), true, false
	}
	if u > math.MaxInt64 {
		return 0, true, true
	}
	return int64(u), true, false
}

// parseFloatBytes parses PostgreSQL float8 input (surrounding whitespace,
// NaN, Infinity, inf). rangeErr reports a finite literal out of range.
func parseFloatBytes(b []byte) (v float64, ok bool, rangeErr bool) {
	s := strings.TrimFunc(bstr(b), func(r rune) bool { return r < 128 && isSpace(byte(r)) })
	if s == "" {
		return 0, false, false
	}
	if len(s) > 1 && (s[0] == '0' && (s[1] == 'x' || s[1] == 'X') || strings.IndexByte(s, '_') >= 0) {
		return 0, false, false
	}
	if len(s) > 2 && (s[0] == '-' || s[0] == '+') && s[1] == '0' && (s[2] == 'x' || s[2] == 'X') {
		return 0, false, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, true, true
		}
		return 0, false, false
	}
	return f, true, false
}

// parseBoolText parses PostgreSQL boolean input: t/f, true/false, yes/no,
// on/off, 1/0 (any case, unique prefixes, surrounding whitespace).
func parseBoolText(s string) (bool, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return false, false
	}
	switch s {
	case "1":
		return true, true
	case "0":
		return false, true
	case "on":
		return true, true
	case "of", "off":
		return false, true
	}
	if strings.HasPrefix("true", s) || strings.HasPrefix("yes", s) {
		return true, true
	}
	if strings.HasPrefix("false", s) || strings.HasPrefix("no", s) {
		return false, true
	}
	return false, false
}
