package exec

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// Text functions over regular expressions (Go's RE2 syntax, which
// PostgreSQL's common patterns share), with PostgreSQL's results:
//
//	substring_regex(s, p)          substring(s FROM p): the first
//	                               parenthesised part's match, else the
//	                               whole match; NULL without a match
//	regexp_substr(s, p)            the whole first match; NULL without one
//	regexp_count(s, p)             the number of matches
//	regexp_replace(s, p, r[, f])   the first match (every one with flag g;
//	                               flag i: ignore case) replaced by r, where
//	                               \1 … \9 are the parenthesised parts and
//	                               \& the whole match
func buildRegexpText(fn string, args []node) (node, error) {
	lo, hi := 2, 2
	if fn == "regexp_replace" {
		lo, hi = 3, 4
	}
	if err := wantArgs(fn, args, lo, hi); err != nil {
		return nil, err
	}
	text := make([]int, len(args))
	for i := range text {
		text[i] = i
	}
	if err := needText(fn, args, text...); err != nil {
		return nil, err
	}
	// The pattern and the flags, compiled once when both are constants.
	var fixed *regexp.Regexp
	var global bool
	if p, flags, ok := constantPattern(args); ok {
		var err error
		if fixed, global, err = compileWithFlags(p, flags); err != nil {
			return nil, err
		}
	}
	fails := fixed == nil // a pattern that comes with the rows may not compile
	cache := &patternCache[*regexp.Regexp]{m: map[string]*regexp.Regexp{}, compile: func(p string) (*regexp.Regexp, error) {
		return compileRegexp(p, false)
	}}
	pattern := func(a []arrow.Array, i int) (*regexp.Regexp, bool, error) {
		if fixed != nil {
			return fixed, global, nil
		}
		flags := ""
		if len(a) == 4 {
			flags = sAt(a[3], i)
		}
		fold, global, err := regexpFlags(flags)
		if err != nil {
			return nil, false, err
		}
		p := sAt(a[1], i)
		if fold {
			p = "(?i)" + p
		}
		re, err := cache.get(p)
		return re, global, err
	}
	switch fn {
	case "regexp_count":
		return newFunc(tInt, strictInt(tInt, func(a []arrow.Array, i int) (int64, error) {
			re, _, err := pattern(a, i)
			if err != nil {
				return 0, err
			}
			return int64(len(re.FindAllStringIndex(sAt(a[0], i), -1))), nil
		}), fails, args...), nil
	case "regexp_replace":
		return newFunc(tText, strictStr(func(a []arrow.Array, i int, dst []byte) ([]byte, error) {
			re, global, err := pattern(a, i)
			if err != nil {
				return nil, err
			}
			return regexpReplace(dst, re, sAt(a[0], i), sAt(a[2], i), global), nil
		}), fails, args...), nil
	}
	return newFunc(tText, strictStrOrNull(func(a []arrow.Array, i int, dst []byte) ([]byte, bool, error) {
		re, _, err := pattern(a, i)
		if err != nil {
			return nil, false, err
		}
		s := sAt(a[0], i)
		m := re.FindStringSubmatchIndex(s)
		if m == nil {
			return nil, false, nil
		}
		if fn == "substring_regex" && len(m) > 2 {
			m = m[2:4] // the first parenthesised part
		}
		if m[0] < 0 {
			return nil, false, nil // that part matched nothing
		}
		return append(dst, s[m[0]:m[1]]...), true, nil
	}), fails, args...), nil
}

// constantPattern is the pattern (args[1]) and the flags (args[3], when
// given) when both are non-NULL constants.
func constantPattern(args []node) (pattern, flags string, ok bool) {
	p, ok := isLiteral(args[1])
	if !ok || p == nil {
		return "", "", false
	}
	if len(args) == 4 {
		f, ok := isLiteral(args[3])
		if !ok || f == nil {
			return "", "", false
		}
		flags = f.(string)
	}
	return p.(string), flags, true
}

// compileWithFlags compiles pattern p under regexp_replace's flags.
func compileWithFlags(p, flags string) (*regexp.Regexp, bool, error) {
	fold, global, err := regexpFlags(flags)
	if err != nil {
		return nil, false, err
	}
	re, err := compileRegexp(p, fold)
	return re, global, err
}

// regexpFlags reads the flags PostgreSQL's regexp functions take that
// Spate supports: g (every match) and i (ignore case); c (case
// sensitive) undoes an earlier i.
func regexpFlags(flags string) (fold, global bool, err error) {
	for _, f := range flags {
		switch f {
		case 'g':
			global = true
		case 'i':
			fold = true
		case 'c':
			fold = false
		default:
			return false, false, &Error{Code: CodeInvalidParameter, Message: fmt.Sprintf("invalid regular expression option: \"%c\" (the options supported are g, i and c)", f)}
		}
	}
	return fold, global, nil
}

// regexpReplace appends s with the first match of re (every one when
// global) replaced by repl, expanding \1 … \9 and \&.
func regexpReplace(dst []byte, re *regexp.Regexp, s, repl string, global bool) []byte {
	n := 1
	if global {
		n = -1
	}
	last := 0
	for _, m := range re.FindAllStringSubmatchIndex(s, n) {
		dst = append(dst, s[last:m[0]]...)
		for j := 0; j < len(repl); j++ {
			c := repl[j]
			if c != '\\' || j+1 == len(repl) {
				dst = append(dst, c)
				continue
			}
			j++
			switch k := repl[j]; {
			case k == '&':
				dst = append(dst, s[m[0]:m[1]]...)
			case k >= '1' && k <= '9':
				if g := int(k - '0'); 2*g+1 < len(m) && m[2*g] >= 0 {
					dst = append(dst, s[m[2*g]:m[2*g+1]]...)
				}
			case k == '\\':
				dst = append(dst, '\\')
			default:
				dst = append(dst, '\\', k)
			}
		}
		last = m[1]
	}
	return append(dst, s[last:]...)
}

// splitPart is split_part(s, delim, n): the n-th field (from the end
// when n < 0), "" when there is none.
func splitPart(s, delim string, n int64) (string, error) {
	if n == 0 {
		return "", &Error{Code: CodeInvalidParameter, Message: "field position must not be zero"}
	}
	fields := []string{s}
	if delim != "" {
		fields = strings.Split(s, delim)
	}
	if s == "" {
		return "", nil
	}
	if n < 0 {
		n += int64(len(fields)) + 1
	}
	if n < 1 || n > int64(len(fields)) {
		return "", nil
	}
	return fields[n-1], nil
}
