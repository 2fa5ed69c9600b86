package planner

import "strings"

// This file types function calls and operators and inserts the implicit
// casts exec relies on: both sides of an arithmetic or comparison operator
// have the same physical type when they reach exec.

// castTo returns e converted to type t, folding untyped literals and
// parameters.
func castTo(e Expr, t Type) Expr {
	if e.Type() == t {
		return e
	}
	switch x := e.(type) {
	case *Const:
		if x.Value == nil {
			return &Const{T: t}
		}
		if x.T == TypeInt && t == TypeBigInt {
			return &Const{Value: x.Value, T: t}
		}
		if v, ok := x.Value.(int64); ok && x.T.IsInteger() && t == TypeDouble {
			return &Const{Value: float64(v), T: t}
		}
	case *Param:
		if x.T == TypeUnknown {
			return &Param{N: x.N, T: t}
		}
	}
	if e.Type().IsInteger() && t.IsInteger() {
		// INT and BIGINT share the int64 layout.
		return &Func{Name: "cast", Args: []Expr{e}, T: t}
	}
	return &Func{Name: "cast", Args: []Expr{e}, T: t}
}

// untyped reports whether e takes its type from its context.
func untyped(e Expr) bool {
	switch x := e.(type) {
	case *Const:
		return x.Untyped || x.Value == nil
	case *Param:
		return x.T == TypeUnknown
	}
	return false
}

// isTextArg reports whether a function argument is text: typed so, or
// a string literal not yet typed (PostgreSQL resolves it as text).
func isTextArg(e Expr) bool {
	if c, ok := e.(*Const); ok && c.Untyped {
		_, isString := c.Value.(string)
		return isString
	}
	return e.Type() == TypeText
}

// unify picks the common type of two operands as PostgreSQL would for
// operators, or reports false.
func unify(a, b Type) (Type, bool) {
	switch {
	case a == b:
		return a, true
	case a.IsNumeric() && b.IsNumeric():
		if a == TypeDouble || b == TypeDouble {
			return TypeDouble, true
		}
		return TypeBigInt, true
	}
	return TypeUnknown, false
}

// coercePair brings two operands to a common type.
func coercePair(op string, l, r Expr) (Expr, Expr, error) {
	lu, ru := untyped(l), untyped(r)
	switch {
	case lu && ru:
		return castTo(l, TypeText), castTo(r, TypeText), nil
	case lu:
		return castTo(l, r.Type()), r, nil
	case ru:
		return l, castTo(r, l.Type()), nil
	}
	t, ok := unify(l.Type(), r.Type())
	if !ok {
		return nil, nil, errorf(CodeDatatypeMismatch, "operator does not exist: %s %s %s (the operands have types that cannot be compared or combined)", l.Type(), op, r.Type())
	}
	return castTo(l, t), castTo(r, t), nil
}

// makeBinary types a binary operator.
func makeBinary(op string, l, r Expr) (Expr, error) {
	switch op {
	case "and", "or":
		l2, err := requireBool(l, strings.ToUpper(op))
		if err != nil {
			return nil, err
		}
		r2, err := requireBool(r, strings.ToUpper(op))
		if err != nil {
			return nil, err
		}
		return &Func{Name: op, Args: []Expr{l2, r2}, T: TypeBool}, nil
	case "=", "<>", "<", "<=", ">", ">=", "is_distinct", "is_not_distinct":
		l2, r2, err := coercePair(op, l, r)
		if err != nil {
			return nil, err
		}
		return &Func{Name: op, Args: []Expr{l2, r2}, T: TypeBool}, nil
	case "concat":
		return &Func{Name: op, Args: []Expr{castTo(l, TypeText), castTo(r, TypeText)}, T: TypeText}, nil
	case "like", "not_like", "ilike", "not_ilike", "regexp", "not_regexp", "regexp_i", "not_regexp_i":
		if err := requireText(l, op); err != nil {
			return nil, err
		}
		if err := requireText(r, op); err != nil {
			return nil, err
		}
		return &Func{Name: op, Args: []Expr{castTo(l, TypeText), castTo(r, TypeText)}, T: TypeBool}, nil
	}
	// Arithmetic.
	lt, rt := l.Type(), r.Type()
	if untyped(l) && !untyped(r) {
		lt = rt
		if rt == TypeTimestamp && op == "-" {
			lt = TypeInterval
		}
	}
	if untyped(r) && !untyped(l) {
		// As PostgreSQL: timestamp + 'x' reads an interval, timestamp - 'x'
		// a timestamp (the operands' common type).
		rt = lt
		if lt == TypeTimestamp && op == "+" {
			rt = TypeInterval
		}
	}
	if untyped(l) && untyped(r) {
		lt, rt = TypeBigInt, TypeBigInt
	}
	switch {
	case lt.IsNumeric() && rt.IsNumeric():
		t, _ := unify(lt, rt)
		if t == TypeInt {
			t = TypeBigInt
		}
		if lt == TypeInt && rt == TypeInt {
			t = TypeInt
		}
		return &Func{Name: op, Args: []Expr{castTo(l, t), castTo(r, t)}, T: t}, nil
	case lt == TypeTimestamp && rt == TypeInterval && (op == "+" || op == "-"):
		return &Func{Name: op, Args: []Expr{castTo(l, lt), castTo(r, rt)}, T: TypeTimestamp}, nil
	case lt == TypeInterval && rt == TypeTimestamp && op == "+":
		return &Func{Name: op, Args: []Expr{castTo(r, rt), castTo(l, lt)}, T: TypeTimestamp}, nil
	case lt == TypeTimestamp && rt == TypeTimestamp && op == "-":
		return &Func{Name: op, Args: []Expr{castTo(l, lt), castTo(r, rt)}, T: TypeInterval}, nil
	case lt == TypeInterval && rt == TypeInterval && (op == "+" || op == "-"):
		return &Func{Name: op, Args: []Expr{castTo(l, lt), castTo(r, rt)}, T: TypeInterval}, nil
	case lt == TypeInterval && rt.IsInteger() && (op == "*" || op == "/"):
		return &Func{Name: op, Args: []Expr{castTo(l, lt), castTo(r, TypeBigInt)}, T: TypeInterval}, nil
	case lt.IsInteger() && rt == TypeInterval && op == "*":
		return &Func{Name: op, Args: []Expr{castTo(r, rt), castTo(l, TypeBigInt)}, T: TypeInterval}, nil
	}
	return nil, errorf(CodeUndefinedFunction, "operator does not exist: %s %s %s", lt, op, rt)
}

func requireBool(e Expr, what string) (Expr, error) {
	if untyped(e) {
		return castTo(e, TypeBool), nil
	}
	if e.Type() != TypeBool {
		return nil, errorf(CodeDatatypeMismatch, "argument of %s must be type boolean, not type %s", what, e.Type())
	}
	return e, nil
}

func requireText(e Expr, op string) error {
	if untyped(e) || e.Type() == TypeText {
		return nil
	}
	return errorf(CodeUndefinedFunction, "operator does not exist: %s %s text", e.Type(), strings.ToUpper(strings.ReplaceAll(op, "_", " ")))
}

// funcSig types a call of a scalar function by name.
type funcSig func(name string, args []Expr) (Expr, error)

func fixed(ret Type, params ...Type) funcSig {
	return func(name string, args []Expr) (Expr, error) {
		if len(args) != len(params) {
			return nil, errorf(CodeUndefinedFunction, "function %s expects %d argument(s), got %d", name, len(params), len(args))
		}
		out := make([]Expr, len(args))
		for i, a := range args {
			if !untyped(a) && !assignable(a.Type(), params[i]) {
				return nil, errorf(CodeUndefinedFunction, "function %s(%s) does not exist: argument %d must be %s", name, argTypes(args), i+1, params[i])
			}
			out[i] = castTo(a, params[i])
		}
		return &Func{Name: name, Args: out, T: ret}, nil
	}
}

// toCharSig types to_char(timestamp, format); PostgreSQL's number
// templates (to_char of a number) are not done.
func toCharSig(name string, args []Expr) (Expr, error) {
	if len(args) == 2 && !untyped(args[0]) && (args[0].Type().IsNumeric() || args[0].Type() == TypeInterval) {
		return nil, errorf(CodeNotSupported, "to_char of %s is not supported, only of a timestamp (for a number: round(x, n)::text)", args[0].Type())
	}
	return fixed(TypeText, TypeTimestamp, TypeText)(name, args)
}

// optional allows the trailing parameters to be left out.
func optional(min int, ret Type, params ...Type) funcSig {
	return func(name string, args []Expr) (Expr, error) {
		if len(args) < min || len(args) > len(params) {
			return nil, errorf(CodeUndefinedFunction, "function %s expects %d to %d arguments, got %d", name, min, len(params), len(args))
		}
		return fixed(ret, params[:len(args)]...)(name, args)
	}
}

// numeric1 keeps the argument's numeric type (abs, sign).
func numericSame(name string, args []Expr) (Expr, error) {
	if len(args) != 1 {
		return nil, errorf(CodeUndefinedFunction, "function %s expects 1 argument, got %d", name, len(args))
	}
	a := args[0]
	if untyped(a) {
		a = castTo(a, TypeDouble)
	}
	if !a.Type().IsNumeric() {
		return nil, errorf(CodeUndefinedFunction, "function %s(%s) does not exist", name, a.Type())
	}
	return &Func{Name: name, Args: []Expr{a}, T: a.Type()}, nil
}

// variadicSame types coalesce, greatest, least: all arguments share a type.
func variadicSame(name string, args []Expr) (Expr, error) {
	if len(args) == 0 {
		return nil, errorf(CodeUndefinedFunction, "function %s needs at least one argument", name)
	}
	t, err := commonType(name, args)
	if err != nil {
		return nil, err
	}
	out := make([]Expr, len(args))
	for i, a := range args {
		out[i] = castTo(a, t)
	}
	return &Func{Name: name, Args: out, T: t}, nil
}

// textVariadic types concat() and concat_ws(): any number of arguments of
// any type, which exec prints with their output functions.
func textVariadic(name string, args []Expr) (Expr, error) {
	if len(args) == 0 {
		return nil, errorf(CodeUndefinedFunction, "function %s() does not exist", name)
	}
	out := make([]Expr, len(args))
	for i, a := range args {
		out[i] = a
		if untyped(a) {
			out[i] = castTo(a, TypeText)
		}
	}
	return &Func{Name: name, Args: out, T: TypeText}, nil
}

// commonType finds the type all args can be converted to (CASE, COALESCE).
func commonType(what string, args []Expr) (Type, error) {
	t := TypeUnknown
	for _, a := range args {
		if untyped(a) {
			continue
		}
		if t == TypeUnknown {
			t = a.Type()
			continue
		}
		u, ok := unify(t, a.Type())
		if !ok {
			return 0, errorf(CodeDatatypeMismatch, "%s types %s and %s cannot be matched", what, t, a.Type())
		}
		t = u
	}
	if t == TypeUnknown {
		t = TypeText
	}
	return t, nil
}

func assignable(from, to Type) bool {
	if from == to || (from.IsNumeric() && to.IsNumeric()) {
		return true
	}
	return false
}

func argTypes(args []Expr) string {
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = a.Type().String()
	}
	return strings.Join(s, ", ")
}

// scalarFuncs maps SQL function names (lower case) to their typing rule
// and the exec function they call. Aliases map onto one exec name.
var scalarFuncs = map[string]struct {
	exec string
	sig  funcSig
}{
	"coalesce":    {"coalesce", variadicSame},
	"greatest":    {"greatest", variadicSame},
	"least":       {"least", variadicSame},
	"nullif":      {"nullif", variadicSame},
	"lower":       {"lower", fixed(TypeText, TypeText)},
	"upper":       {"upper", fixed(TypeText, TypeText)},
	"length":      {"length", fixed(TypeBigInt, TypeText)},
	"char_length": {"length", fixed(TypeBigInt, TypeText)},
	"substr":      {"substr", optional(2, TypeText, TypeText, TypeBigInt, TypeBigInt)},
	"trim":        {"trim", optional(1, TypeText, TypeText, TypeText)},
	"btrim":       {"trim", optional(1, TypeText, TypeText, TypeText)},
	"concat":      {"concat_ignore_nulls", textVariadic},
	"concat_ws":   {"concat_ws", textVariadic},
	"ltrim":       {"ltrim", optional(1, TypeText, TypeText, TypeText)},
	"rtrim":       {"rtrim", optional(1, TypeText, TypeText, TypeText)},
	"replace":     {"replace", fixed(TypeText, TypeText, TypeText, TypeText)},
	"strpos":      {"strpos", fixed(TypeBigInt, TypeText, TypeText)},
	"split_part":  {"split_part", fixed(TypeText, TypeText, TypeText, TypeBigInt)},
	// regular expressions (Go's RE2 syntax, which PostgreSQL's common
	// patterns share; no backreferences)
	"regexp_replace": {"regexp_replace", optional(3, TypeText, TypeText, TypeText, TypeText, TypeText)},
	"regexp_substr":  {"regexp_substr", fixed(TypeText, TypeText, TypeText)},
	"regexp_count":   {"regexp_count", fixed(TypeBigInt, TypeText, TypeText)},
	"regexp_like":    {"regexp", fixed(TypeBool, TypeText, TypeText)},
	"left":           {"left", fixed(TypeText, TypeText, TypeBigInt)},
	"right":          {"right", fixed(TypeText, TypeText, TypeBigInt)},
	"starts_with":    {"starts_with", fixed(TypeBool, TypeText, TypeText)},
	"repeat":         {"repeat", fixed(TypeText, TypeText, TypeBigInt)},
	"reverse":        {"reverse", fixed(TypeText, TypeText)},
	"md5":            {"md5", fixed(TypeText, TypeText)},
	"abs":            {"abs", numericSame},
	"sign":           {"sign", numericSame},
	"round":          {"round", optional(1, TypeDouble, TypeDouble, TypeBigInt)},
	"floor":          {"floor", fixed(TypeDouble, TypeDouble)},
	"ceil":           {"ceil", fixed(TypeDouble, TypeDouble)},
	"ceiling":        {"ceil", fixed(TypeDouble, TypeDouble)},
	"sqrt":           {"sqrt", fixed(TypeDouble, TypeDouble)},
	"power":          {"power", fixed(TypeDouble, TypeDouble, TypeDouble)},
	"pow":            {"power", fixed(TypeDouble, TypeDouble, TypeDouble)},
	"ln":             {"ln", fixed(TypeDouble, TypeDouble)},
	"log10":          {"log10", fixed(TypeDouble, TypeDouble)},
	"log":            {"log10", fixed(TypeDouble, TypeDouble)},
	"exp":            {"exp", fixed(TypeDouble, TypeDouble)},
	"mod":            {"%", fixed(TypeBigInt, TypeBigInt, TypeBigInt)},
	"date_trunc":     {"date_trunc", fixed(TypeTimestamp, TypeText, TypeTimestamp)},
	"date_part":      {"date_part", fixed(TypeDouble, TypeText, TypeTimestamp)},
	"to_timestamp":   {"to_timestamp", fixed(TypeTimestamp, TypeDouble)},
	"to_char":        {"to_char", toCharSig},
}
