package parser

import (
	"errors"
	"math"
	"math/big"
	"strings"
)

// Microseconds per interval unit. A month is 30 days and a year 365 days,
// as everywhere in Spate.
const (
	usPerMillisecond = int64(1000)
	usPerSecond      = 1000 * usPerMillisecond
	usPerMinute      = 60 * usPerSecond
	usPerHour        = 60 * usPerMinute
	usPerDay         = 24 * usPerHour
	usPerWeek        = 7 * usPerDay
	usPerMonth       = 30 * usPerDay
	usPerYear        = 365 * usPerDay
)

// intervalUnits maps the unit words accepted inside interval text
// ('5 minutes') to their length in microseconds.
var intervalUnits = map[string]int64{
	"microsecond": 1, "microseconds": 1, "us": 1, "usec": 1, "usecs": 1,
	"millisecond": usPerMillisecond, "milliseconds": usPerMillisecond, "ms": usPerMillisecond, "msec": usPerMillisecond, "msecs": usPerMillisecond,
	"second": usPerSecond, "seconds": usPerSecond, "sec": usPerSecond, "secs": usPerSecond, "s": usPerSecond,
	"minute": usPerMinute, "minutes": usPerMinute, "min": usPerMinute, "mins": usPerMinute, "m": usPerMinute,
	"hour": usPerHour, "hours": usPerHour, "hr": usPerHour, "hrs": usPerHour, "h": usPerHour,
	"day": usPerDay, "days": usPerDay, "d": usPerDay,
	"week": usPerWeek, "weeks": usPerWeek, "w": usPerWeek,
	"month": usPerMonth, "months": usPerMonth, "mon": usPerMonth, "mons": usPerMonth,
	"year": usPerYear, "years": usPerYear, "yr": usPerYear, "yrs": usPerYear, "y": usPerYear,
}

// intervalQualifiers maps the unit keywords that may follow an interval
// literal (INTERVAL '5' MINUTE, INTERVAL 5 MINUTE) to microseconds.
var intervalQualifiers = map[string]int64{
	"microsecond": 1, "millisecond": usPerMillisecond, "second": usPerSecond,
	"minute": usPerMinute, "hour": usPerHour, "day": usPerDay, "week": usPerWeek,
	"month": usPerMonth, "year": usPerYear,
}

var errIntervalRange = errors.New("interval out of range")

// parseIntervalText converts PostgreSQL interval text to microseconds:
// '1 minute', '5 minutes', '1 hour 30 minutes', '1h30m', '00:01:00',
// '1 day 02:00:00', '-1 day', '1.5 seconds', '@ 2 hours ago', and a bare
// number (seconds). Fractions are rounded to the nearest microsecond.
func parseIntervalText(s string) (int64, error) {
	f := strings.ToLower(strings.TrimSpace(s))
	f = strings.TrimPrefix(f, "@")
	ago := false
	if t := strings.TrimSpace(f); strings.HasSuffix(t, " ago") || t == "ago" {
		ago = true
		f = strings.TrimSuffix(t, "ago")
	}
	total := new(big.Rat)
	i, n, sawAny := 0, len(f), false
	for {
		for i < n && (f[i] == ' ' || f[i] == '\t' || f[i] == ',') {
			i++
		}
		if i >= n {
			break
		}
		sawAny = true
		// An optional sign, then a number or a time h:m[:s].
		j := i
		neg := false
		if f[j] == '+' || f[j] == '-' {
			neg = f[j] == '-'
			j++
		}
		k := j
		for k < n && (isDigit(f[k]) || f[k] == '.') {
			k++
		}
		if k == j {
			return 0, errors.New("bad interval")
		}
		if k < n && f[k] == ':' {
			// h:m[:s[.f]]
			end := k
			for end < n && (isDigit(f[end]) || f[end] == ':' || f[end] == '.') {
				end++
			}
			v, err := parseClock(f[j:end])
			if err != nil {
				return 0, err
			}
			if neg {
				v.Neg(v)
			}
			total.Add(total, v)
			i = end
			continue
		}
		num, ok := new(big.Rat).SetString(f[j:k])
		if !ok {
			return 0, errors.New("bad number")
		}
		if neg {
			num.Neg(num)
		}
		// Unit: letters, possibly after spaces; none means seconds.
		u := k
		for u < n && f[u] == ' ' {
			u++
		}
		ue := u
		for ue < n && f[ue] >= 'a' && f[ue] <= 'z' {
			ue++
		}
		unit := f[u:ue]
		var per int64
		if unit == "" {
			per = usPerSecond
			i = k
		} else {
			var ok bool
			if per, ok = intervalUnits[unit]; !ok {
				return 0, errors.New("bad unit")
			}
			i = ue
		}
		total.Add(total, num.Mul(num, new(big.Rat).SetInt64(per)))
	}
	if !sawAny {
		return 0, errors.New("empty interval")
	}
	if ago {
		total.Neg(total)
	}
	return ratToMicros(total)
}

// parseClock parses h:m, h:m:s[.f] or m:s.f (two parts with a fraction,
// as PostgreSQL reads '1:30.5') into microseconds.
func parseClock(s string) (*big.Rat, error) {
	parts := strings.Split(s, ":")
	var mult []int64
	switch {
	case len(parts) == 3:
		mult = []int64{usPerHour, usPerMinute, usPerSecond}
	case len(parts) == 2 && strings.Contains(parts[1], "."):
		mult = []int64{usPerMinute, usPerSecond}
	case len(parts) == 2:
		mult = []int64{usPerHour, usPerMinute}
	default:
		return nil, errors.New("bad time")
	}
	total := new(big.Rat)
	for idx, p := range parts {
		if p == "" || strings.Contains(p, ".") && mult[idx] != usPerSecond {
			return nil, errors.New("bad time")
		}
		v, ok := new(big.Rat).SetString(p)
		if !ok {
			return nil, errors.New("bad time")
		}
		total.Add(total, v.Mul(v, new(big.Rat).SetInt64(mult[idx])))
	}
	return total, nil
}

// ratToMicros rounds r to the nearest integer (half away from zero) and
// checks that it fits in an int64.
func ratToMicros(r *big.Rat) (int64, error) {
	num, den := new(big.Int).Set(r.Num()), r.Denom()
	neg := num.Sign() < 0
	num.Abs(num)
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if new(big.Int).Mul(m, big.NewInt(2)).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	if !q.IsInt64() || q.Int64() == math.MinInt64 {
		return 0, errIntervalRange
	}
	return q.Int64(), nil
}

// scaleInterval returns number × per microseconds for INTERVAL '5' MINUTE
// and INTERVAL 5 MINUTE; number is decimal text with an optional sign.
func scaleInterval(number string, per int64) (int64, error) {
	v, ok := new(big.Rat).SetString(strings.TrimSpace(number))
	if !ok || strings.ContainsAny(number, "eE/") {
		return 0, errors.New("bad number")
	}
	return ratToMicros(v.Mul(v, new(big.Rat).SetInt64(per)))
}

// ParseInterval reads interval text as PostgreSQL accepts it ('5 minutes',
// '1 day 02:00:00', '00:01:00', '-1 hour', '1.5 seconds', '2s') and returns
// microseconds; a month is 30 days and a year 365 days. Errors carry
// SQLSTATE 22007.
func ParseInterval(s string) (int64, error) {
	us, err := parseIntervalText(s)
	if err != nil {
		return 0, &Error{Code: CodeInvalidDatetimeFormat, Message: "invalid input syntax for type interval: \"" + s + "\""}
	}
	return us, nil
}
