package exec

import (
	"strconv"
	"strings"
	"time"
)

// to_char(timestamp, format) as PostgreSQL formats a timestamp without
// time zone: the format is parsed once into items (patterns and literal
// text), then each row appends its fields.

// charPattern is a template pattern of to_char.
type charPattern int

const (
	patLiteral charPattern = iota
	patYearComma
	patYYYY
	patYYY
	patYY
	patY
	patIYYY
	patIYY
	patIY
	patI
	patMonth
	patMon
	patMM
	patDay
	patDy
	patDDD
	patIDDD
	patDD
	patD
	patID
	patWW
	patW
	patIW
	patHH24
	patHH12
	patMI
	patSSSSS
	patSS
	patMS
	patUS
	patFF1 // … patFF6 follow
	patFF2
	patFF3
	patFF4
	patFF5
	patFF6
	patAM    // AM or PM
	patAMDot // A.M. or P.M.
	patAD    // AD or BC
	patADDot // A.D. or B.C.
	patCC
	patQ
	patJ
	patRM
	patTZ  // empty: a timestamp without time zone has none
	patOF  // +00
	patTZH // +00
	patTZM // 00
)

// charKeywords are the patterns in the order they are tried: a longer
// one before any it starts with. Upper-case keywords match in any case;
// the case of a word pattern (Month, DAY, am, …) is that of its output.
var charKeywords = []struct {
	text string
	pat  charPattern
	word bool // letters whose case is the output's
}{
	{"A.D.", patADDot, true}, {"A.M.", patAMDot, true}, {"AD", patAD, true}, {"AM", patAM, true},
	{"B.C.", patADDot, true}, {"BC", patAD, true},
	{"CC", patCC, false},
	{"DAY", patDay, true}, {"DDD", patDDD, false}, {"DD", patDD, false}, {"DY", patDy, true}, {"D", patD, false},
	{"FF1", patFF1, false}, {"FF2", patFF2, false}, {"FF3", patFF3, false}, {"FF4", patFF4, false}, {"FF5", patFF5, false}, {"FF6", patFF6, false},
	{"HH24", patHH24, false}, {"HH12", patHH12, false}, {"HH", patHH12, false},
	{"IDDD", patIDDD, false}, {"ID", patID, false}, {"IW", patIW, false}, {"IYYY", patIYYY, false}, {"IYY", patIYY, false}, {"IY", patIY, false}, {"I", patI, false},
	{"J", patJ, false},
	{"MI", patMI, false}, {"MM", patMM, false}, {"MONTH", patMonth, true}, {"MON", patMon, true}, {"MS", patMS, false},
	{"OF", patOF, false},
	{"P.M.", patAMDot, true}, {"PM", patAM, true},
	{"Q", patQ, false},
	{"RM", patRM, true},
	{"SSSSS", patSSSSS, false}, {"SSSS", patSSSSS, false}, {"SS", patSS, false},
	{"TZH", patTZH, false}, {"TZM", patTZM, false}, {"TZ", patTZ, true},
	{"US", patUS, false},
	{"WW", patWW, false}, {"W", patW, false},
	{"Y,YYY", patYearComma, false}, {"YYYY", patYYYY, false}, {"YYY", patYYY, false}, {"YY", patYY, false}, {"Y", patY, false},
}

// charCase is how a word pattern's letters are cased.
type charCase uint8

const (
	caseUpper charCase = iota
	caseTitle
	caseLower
)

// charItem is one piece of a parsed format.
type charItem struct {
	pat  charPattern
	lit  string // patLiteral
	fill bool   // FM: no padding
	cas  charCase
	th   int // TH (1) or th (2): an ordinal suffix
}

// parseCharFormat parses a to_char format as PostgreSQL does: FM, FX
// and TM prefixes, TH/th/SP suffixes, "quoted" text, a backslash before a
// double quote, and every other character as itself.
func parseCharFormat(f string) []charItem {
	var items []charItem
	lit := func(s string) {
		if n := len(items); n > 0 && items[n-1].pat == patLiteral {
			items[n-1].lit += s
			return
		}
		items = append(items, charItem{lit: s})
	}
	for i := 0; i < len(f); {
		// One prefix, lost when no pattern follows it (as PostgreSQL).
		fill, tm := false, false
		if i+2 <= len(f) {
			switch f[i : i+2] {
			case "FM", "fm":
				fill, i = true, i+2
			case "FX", "fx":
				i += 2
			case "TM", "tm": // names as the locale's (ours: English), unpadded
				tm, i = true, i+2
			}
		}
		if i >= len(f) {
			break
		}
		if it, n, ok := charKeyword(f[i:], fill, tm); ok {
			items = append(items, it)
			i += n
			continue
		}
		switch c := f[i]; {
		case c == '"':
			j := i + 1
			var b strings.Builder
			for j < len(f) && f[j] != '"' {
				if f[j] == '\\' && j+1 < len(f) {
					j++
				}
				b.WriteByte(f[j])
				j++
			}
			lit(b.String())
			i = j + 1
		case c == '\\' && i+1 < len(f) && f[i+1] == '"':
			lit(`"`)
			i += 2
		default:
			lit(f[i : i+1])
			i++
		}
	}
	return items
}

// charKeyword matches the pattern f starts with, and its suffix; n is
// the bytes they take.
func charKeyword(f string, fill, tm bool) (it charItem, n int, ok bool) {
	for _, k := range charKeywords {
		if len(f) < len(k.text) || !strings.EqualFold(f[:len(k.text)], k.text) {
			continue
		}
		word := f[:len(k.text)]
		it = charItem{pat: k.pat, fill: fill || (tm && k.word)}
		if k.word {
			switch {
			case word == strings.ToUpper(word):
				it.cas = caseUpper
			case word == strings.ToLower(word):
				it.cas = caseLower
			case word[1:] == strings.ToLower(word[1:]):
				it.cas = caseTitle
			default:
				continue // as PostgreSQL: mixed case is no keyword
			}
		}
		n = len(k.text)
		if n+2 <= len(f) {
			switch f[n : n+2] {
			case "TH":
				it.th, n = 1, n+2
			case "th":
				it.th, n = 2, n+2
			case "SP": // spell mode: accepted, not done (as PostgreSQL)
				n += 2
			}
		}
		return it, n, true
	}
	return charItem{}, 0, false
}

var (
	monthNames = [...]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
	dayNames   = [...]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	romanMonth = [...]string{"I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"}
)

// appendToChar appends timestamp us (µs since 1970, no time zone)
// formatted by items.
func appendToChar(dst []byte, items []charItem, us int64) []byte {
	t := time.UnixMicro(us).UTC()
	year := t.Year()
	bc := year <= 0
	if bc {
		year = 1 - year // there is no year 0: 1 BC is Go's year 0
	}
	num := func(dst []byte, v, width int, it charItem) []byte {
		s := strconv.Itoa(v)
		if !it.fill {
			for n := len(s); n < width; n++ {
				dst = append(dst, '0')
			}
		}
		dst = append(dst, s...)
		if it.th != 0 {
			dst = append(dst, ordinal(v, it.th == 1)...)
		}
		return dst
	}
	word := func(dst []byte, s string, pad int, it charItem) []byte {
		switch it.cas {
		case caseUpper:
			s = strings.ToUpper(s)
		case caseLower:
			s = strings.ToLower(s)
		}
		dst = append(dst, s...)
		if !it.fill {
			for n := len(s); n < pad; n++ {
				dst = append(dst, ' ')
			}
		}
		return dst
	}
	isoYear, isoWeek := t.ISOWeek()
	isoDay := (int(t.Weekday())+6)%7 + 1
	for _, it := range items {
		switch it.pat {
		case patLiteral:
			dst = append(dst, it.lit...)
		case patYearComma:
			dst = strconv.AppendInt(dst, int64(year/1000), 10)
			dst = append(dst, ',')
			dst = num(dst, year%1000, 3, charItem{th: it.th})
		case patYYYY, patYYY, patYY, patY:
			n := 4 - int(it.pat-patYYYY)
			dst = num(dst, lastDigits(year, n), n, it)
		case patIYYY, patIYY, patIY, patI:
			n := 4 - int(it.pat-patIYYY)
			dst = num(dst, lastDigits(isoYear, n), n, it)
		case patMonth:
			dst = word(dst, monthNames[t.Month()-1], 9, it)
		case patMon:
			dst = word(dst, monthNames[t.Month()-1][:3], 3, it)
		case patMM:
			dst = num(dst, int(t.Month()), 2, it)
		case patDay:
			dst = word(dst, dayNames[t.Weekday()], 9, it)
		case patDy:
			dst = word(dst, dayNames[t.Weekday()][:3], 3, it)
		case patDDD:
			dst = num(dst, t.YearDay(), 3, it)
		case patIDDD:
			dst = num(dst, (isoWeek-1)*7+isoDay, 3, it)
		case patDD:
			dst = num(dst, t.Day(), 2, it)
		case patD:
			dst = num(dst, int(t.Weekday())+1, 1, it)
		case patID:
			dst = num(dst, isoDay, 1, it)
		case patWW:
			dst = num(dst, (t.YearDay()-1)/7+1, 2, it)
		case patW:
			dst = num(dst, (t.Day()-1)/7+1, 1, it)
		case patIW:
			dst = num(dst, isoWeek, 2, it)
		case patHH24:
			dst = num(dst, t.Hour(), 2, it)
		case patHH12:
			dst = num(dst, (t.Hour()+11)%12+1, 2, it)
		case patMI:
			dst = num(dst, t.Minute(), 2, it)
		case patSSSSS:
			dst = num(dst, t.Hour()*3600+t.Minute()*60+t.Second(), 1, it)
		case patSS:
			dst = num(dst, t.Second(), 2, it)
		case patMS: // padded, FM or not (as PostgreSQL)
			dst = num(dst, t.Nanosecond()/1e6, 3, charItem{th: it.th})
		case patUS:
			dst = num(dst, t.Nanosecond()/1e3, 6, charItem{th: it.th})
		case patFF1, patFF2, patFF3, patFF4, patFF5, patFF6:
			digits := int(it.pat-patFF1) + 1
			v := t.Nanosecond() / 1e3
			for range 6 - digits {
				v /= 10
			}
			dst = num(dst, v, digits, charItem{th: it.th})
		case patAM:
			s := "AM"
			if t.Hour() >= 12 {
				s = "PM"
			}
			dst = word(dst, s, 0, it)
		case patAMDot:
			s := "A.M."
			if t.Hour() >= 12 {
				s = "P.M."
			}
			dst = word(dst, s, 0, it)
		case patAD:
			s := "AD"
			if bc {
				s = "BC"
			}
			dst = word(dst, s, 0, it)
		case patADDot:
			s := "A.D."
			if bc {
				s = "B.C."
			}
			dst = word(dst, s, 0, it)
		case patCC:
			cc := (year + 99) / 100
			if bc {
				cc = -cc
			}
			dst = num(dst, cc, 2, it)
		case patQ:
			dst = num(dst, (int(t.Month())+2)/3, 1, it)
		case patJ:
			dst = num(dst, int(floorDiv(us, usPerDay))+2440588, 1, it)
		case patRM:
			dst = word(dst, romanMonth[t.Month()-1], 4, it)
		case patTZ:
		case patOF, patTZH:
			dst = append(dst, "+00"...)
		case patTZM:
			dst = append(dst, "00"...)
		}
	}
	return dst
}

// lastDigits is year's last n digits, or the whole year for n = 4.
func lastDigits(year, n int) int {
	switch n {
	case 3:
		return year % 1000
	case 2:
		return year % 100
	case 1:
		return year % 10
	}
	return year
}

// ordinal is the English ordinal suffix of n: st, nd, rd or th.
func ordinal(n int, upper bool) string {
	s := "th"
	if n%100 < 11 || n%100 > 13 {
		switch n % 10 {
		case 1:
			s = "st"
		case 2:
			s = "nd"
		case 3:
			s = "rd"
		}
	}
	if upper {
		return strings.ToUpper(s)
	}
	return s
}
