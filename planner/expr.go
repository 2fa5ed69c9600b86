package planner

import (
	"fmt"
	"strconv"
	"strings"
)

// Expr is a bound, typed scalar expression. Exprs are immutable values.
// Function names are the ones exec implements (see exec.Call).
type Expr interface {
	// Type is the SQL type of the result.
	Type() Type
	// String renders the expression for EXPLAIN.
	String() string
}

// ColRef reads column Index of the input of the operator that evaluates it.
type ColRef struct {
	Index int
	Name  string
	T     Type
}

// Const is a constant: nil (NULL), bool, int64, float64 or string;
// timestamps and intervals are int64 µs.
type Const struct {
	Value any
	T     Type
	// Untyped marks a string literal or NULL whose type comes from its
	// context, as PostgreSQL's "unknown" literals.
	Untyped bool
}

// Param is the $N placeholder; its type is inferred from the context.
type Param struct {
	N int
	T Type
}

// Func applies a function or operator.
type Func struct {
	Name string
	Args []Expr
	T    Type
}

// Type implements Expr.
func (c *ColRef) Type() Type { return c.T }

// Type implements Expr.
func (c *Const) Type() Type { return c.T }

// Type implements Expr.
func (p *Param) Type() Type { return p.T }

// Type implements Expr.
func (f *Func) Type() Type { return f.T }

func (c *ColRef) String() string { return c.Name }

func (c *Const) String() string {
	switch v := c.Value.(type) {
	case nil:
		return "NULL"
	case string:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	case bool:
		return strconv.FormatBool(v)
	case int64:
		if c.T == TypeInterval {
			return fmt.Sprintf("INTERVAL '%s'", formatMicros(v))
		}
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprint(c.Value)
}

func (p *Param) String() string { return "$" + strconv.Itoa(p.N) }

var infixOps = map[string]bool{
	"+": true, "-": true, "*": true, "/": true, "%": true, "=": true, "<>": true, "<": true,
	"<=": true, ">": true, ">=": true, "and": true, "or": true, "like": true, "not_like": true,
	"ilike": true, "not_ilike": true, "regexp": true, "not_regexp": true, "is_distinct": true,
	"is_not_distinct": true, "concat": true,
}

func (f *Func) String() string {
	if (f.Name == "and" || f.Name == "or") && len(f.Args) > 2 {
		parts := make([]string, len(f.Args))
		for i, a := range f.Args {
			parts[i] = a.String()
		}
		return "(" + strings.Join(parts, " "+strings.ToUpper(f.Name)+" ") + ")"
	}
	if infixOps[f.Name] && len(f.Args) == 2 {
		op := strings.ToUpper(strings.ReplaceAll(f.Name, "_", " "))
		switch f.Name {
		case "concat":
			op = "||"
		case "regexp":
			op = "~"
		case "not_regexp":
			op = "!~"
		case "is_distinct":
			op = "IS DISTINCT FROM"
		case "is_not_distinct":
			op = "IS NOT DISTINCT FROM"
		}
		return "(" + f.Args[0].String() + " " + op + " " + f.Args[1].String() + ")"
	}
	switch f.Name {
	case "neg":
		return "-" + f.Args[0].String()
	case "not":
		return "NOT " + f.Args[0].String()
	case "cast":
		return f.Args[0].String() + "::" + f.T.String()
	case "is_null", "is_not_null", "is_true", "is_false", "is_not_true", "is_not_false":
		return "(" + f.Args[0].String() + " " + strings.ToUpper(strings.ReplaceAll(f.Name, "_", " ")) + ")"
	}
	args := make([]string, len(f.Args))
	for i, a := range f.Args {
		args[i] = a.String()
	}
	return f.Name + "(" + strings.Join(args, ", ") + ")"
}

// exprKey renders an expression with column indexes, for matching GROUP BY
// expressions against select-list expressions.
func exprKey(e Expr) string {
	switch x := e.(type) {
	case *ColRef:
		return "#" + strconv.Itoa(x.Index)
	case *Func:
		parts := make([]string, len(x.Args))
		for i, a := range x.Args {
			parts[i] = exprKey(a)
		}
		return x.Name + ":" + x.T.String() + "(" + strings.Join(parts, ",") + ")"
	case *Const:
		return fmt.Sprintf("c:%s:%v", x.T, x.Value)
	case *Param:
		return "$" + strconv.Itoa(x.N)
	}
	return e.String()
}

// walkExpr calls fn on e and every sub-expression, parents first.
func walkExpr(e Expr, fn func(Expr)) {
	fn(e)
	if f, ok := e.(*Func); ok {
		for _, a := range f.Args {
			walkExpr(a, fn)
		}
	}
}

// mapColumns returns e with every ColRef replaced by fn(ref).
func mapColumns(e Expr, fn func(*ColRef) Expr) Expr {
	switch x := e.(type) {
	case *ColRef:
		return fn(x)
	case *Func:
		args := make([]Expr, len(x.Args))
		for i, a := range x.Args {
			args[i] = mapColumns(a, fn)
		}
		return &Func{Name: x.Name, Args: args, T: x.T}
	}
	return e
}

// columnsUsed adds the column indexes e reads to set.
func columnsUsed(e Expr, set map[int]bool) {
	walkExpr(e, func(x Expr) {
		if c, ok := x.(*ColRef); ok {
			set[c.Index] = true
		}
	})
}

// splitAnd returns the conjuncts of e.
func splitAnd(e Expr) []Expr {
	if f, ok := e.(*Func); ok && f.Name == "and" {
		var out []Expr
		for _, a := range f.Args {
			out = append(out, splitAnd(a)...)
		}
		return out
	}
	return []Expr{e}
}

// joinAnd is the inverse of splitAnd; nil for no conjuncts.
func joinAnd(es []Expr) Expr {
	var out Expr
	for _, e := range es {
		if out == nil {
			out = e
		} else {
			out = &Func{Name: "and", Args: []Expr{out, e}, T: TypeBool}
		}
	}
	return out
}

func formatMicros(us int64) string {
	neg := us < 0
	if neg {
		us = -us
	}
	days := us / 86_400_000_000
	rest := us % 86_400_000_000
	h, m := rest/3_600_000_000, rest/60_000_000%60
	s, frac := rest/1_000_000%60, rest%1_000_000
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	if days > 0 {
		fmt.Fprintf(&b, "%d day", days)
		if days != 1 {
			b.WriteByte('s')
		}
		if rest == 0 {
			return b.String()
		}
		b.WriteByte(' ')
	}
	fmt.Fprintf(&b, "%02d:%02d:%02d", h, m, s)
	if frac > 0 {
		fmt.Fprintf(&b, ".%06d", frac)
		return strings.TrimRight(b.String(), "0")
	}
	return b.String()
}
