package parser

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestNestingLimit: statements that nest a little less than MaxNesting
// parse, deeper ones get 54001, and a very deep one is refused quickly
// instead of exhausting the stack of whatever recurses over it.
func TestNestingLimit(t *testing.T) {
	shapes := map[string]func(n int) string{
		"plus":   func(n int) string { return "x" + strings.Repeat("+x", n) },
		"concat": func(n int) string { return "s" + strings.Repeat(" || s", n) },
		"parens": func(n int) string { return strings.Repeat("(", n) + "x" + strings.Repeat(")", n) },
		"calls":  func(n int) string { return strings.Repeat("abs(", n) + "x" + strings.Repeat(")", n) },
		"case": func(n int) string {
			return strings.Repeat("CASE WHEN x > 1 THEN ", n) + "1" + strings.Repeat(" ELSE 2 END", n)
		},
		"not":    func(n int) string { return strings.Repeat("NOT ", n) + "b" },
		"minus":  func(n int) string { return strings.Repeat("- ", n) + "x" },
		"cast":   func(n int) string { return "x" + strings.Repeat("::bigint", n) },
		"subscr": func(n int) string { return "a" + strings.Repeat("[1]", n) },
	}
	for name, shape := range shapes {
		sizes := []int{MaxNesting - 100, MaxNesting + 100, 100_000}
		if name == "plus" {
			// Deep enough that binding it recursively took a 1 GB stack
			// and crashed the server.
			sizes = append(sizes, 2_000_000)
		}
		for _, n := range sizes {
			start := time.Now()
			_, err := Parse("SELECT " + shape(n) + " FROM t")
			took := time.Since(start)
			var perr *Error
			switch {
			case n < MaxNesting && err != nil:
				t.Errorf("%s × %d: %v", name, n, err)
			case n > MaxNesting && (!errors.As(err, &perr) || perr.Code != CodeStatementTooComplex):
				t.Errorf("%s × %d: got %v, want 54001", name, n, err)
			case n > MaxNesting && !strings.Contains(perr.Message, "levels deep"):
				t.Errorf("%s × %d: message %q", name, n, perr.Message)
			}
			if took > 20*time.Second {
				t.Errorf("%s × %d took %v", name, n, took)
			}
		}
	}
}

// TestLongLogicChains: ANDs and ORs chain without nesting, up to maxChain.
func TestLongLogicChains(t *testing.T) {
	for _, op := range []string{" OR ", " AND "} {
		terms := make([]string, 100_000)
		for i := range terms {
			terms[i] = "x = 1"
		}
		if _, err := Parse("SELECT 1 FROM t WHERE " + strings.Join(terms, op)); err != nil {
			t.Errorf("%d terms joined by%s: %v", len(terms), op, err)
		}
		terms = terms[:1]
		for len(terms) <= maxChain {
			terms = append(terms, "b")
		}
		_, err := Parse("SELECT 1 FROM t WHERE " + strings.Join(terms, op))
		var perr *Error
		if !errors.As(err, &perr) || perr.Code != CodeStatementTooComplex {
			t.Errorf("%d terms joined by%s: got %v, want 54001", len(terms), op, err)
		}
	}
}
