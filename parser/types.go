package parser

import "strings"

// normalizeTypeTokens renders a type name written as tokens in the
// normalised TypeName form: words in lower case (quoted words keep their
// case) separated by single spaces, modifiers attached without spaces
// ("varchar(20)", "numeric(10,2)", "timestamp(3) with time zone"), array
// suffixes as "[]", and a leading "pg_catalog." dropped. ok is false when
// the tokens cannot be a type name.
func normalizeTypeTokens(toks []token) (name string, ok bool) {
	var sb strings.Builder
	depth := 0
	for i, t := range toks {
		switch {
		case t.kind == tIdent || t.kind == tQIdent:
			if depth > 0 {
				if !(i > 0 && (toks[i-1].isPunct("(") || toks[i-1].isPunct(","))) {
					return "", false
				}
				sb.WriteString(t.val)
				continue
			}
			if sb.Len() > 0 && !(i > 0 && toks[i-1].isPunct(".")) {
				sb.WriteByte(' ')
			}
			sb.WriteString(t.val)
		case t.kind == tNumber && depth > 0:
			if !(toks[i-1].isPunct("(") || toks[i-1].isPunct(",")) {
				return "", false
			}
			sb.WriteString(t.val)
		case t.kind == tOp && depth > 0 && (t.val == "-" || t.val == "+") && i+1 < len(toks) && toks[i+1].kind == tNumber:
			sb.WriteString(t.val)
		case t.isPunct("("):
			if depth > 0 || sb.Len() == 0 {
				return "", false
			}
			depth++
			sb.WriteByte('(')
		case t.isPunct(")"):
			if depth == 0 || toks[i-1].isPunct("(") || toks[i-1].isPunct(",") {
				return "", false
			}
			depth--
			sb.WriteByte(')')
		case t.isPunct(","):
			if depth == 0 {
				return "", false
			}
			sb.WriteByte(',')
		case t.isPunct("."):
			if depth > 0 || i == 0 || !toks[i-1].isName() || i+1 >= len(toks) || !toks[i+1].isName() {
				return "", false
			}
			sb.WriteByte('.')
		case t.isPunct("["):
			if depth > 0 || sb.Len() == 0 {
				return "", false
			}
			sb.WriteByte('[')
		case t.isPunct("]"):
			if depth > 0 || !strings.HasSuffix(sb.String(), "[") && !(i > 1 && toks[i-1].kind == tNumber && toks[i-2].isPunct("[")) {
				return "", false
			}
			sb.WriteByte(']')
		case t.kind == tNumber && i > 0 && toks[i-1].isPunct("["):
			// int[10]: the bound is ignored, as in PostgreSQL.
		default:
			return "", false
		}
	}
	if depth != 0 || sb.Len() == 0 || strings.HasSuffix(sb.String(), "[") {
		return "", false
	}
	return strings.TrimPrefix(sb.String(), "pg_catalog."), true
}

// typeExtent returns how many of toks, from the start, form a type name
// after :: or in a typed literal (timestamp '…'). It knows the multi-word
// types (double precision, character varying, national character varying,
// bit varying, time[stamp] [(p)] with[out] time zone), modifiers and array
// suffixes. 0 means no type starts here.
func typeExtent(toks []token) int {
	if len(toks) == 0 || !toks[0].isName() {
		return 0
	}
	j := 1
	for j+1 < len(toks) && toks[j].isPunct(".") && toks[j+1].isName() {
		j += 2
	}
	first := toks[j-1].val
	word := func(k int, w ...string) bool {
		if k >= len(toks) {
			return false
		}
		for _, x := range w {
			if toks[k].isWord(x) {
				return true
			}
		}
		return false
	}
	switch first {
	case "double":
		if word(j, "precision") {
			j++
		}
	case "character", "char":
		if word(j, "varying") {
			j++
		}
	case "national":
		if word(j, "character", "char") {
			j++
			if word(j, "varying") {
				j++
			}
		}
	case "bit":
		if word(j, "varying") {
			j++
		}
	}
	// Modifiers: ( n [, n …] ).
	if j < len(toks) && toks[j].isPunct("(") {
		k := j + 1
		for k < len(toks) && (toks[k].kind == tNumber || toks[k].isName() || toks[k].isPunct(",")) {
			k++
		}
		if k < len(toks) && toks[k].isPunct(")") && k > j+1 {
			j = k + 1
		}
	}
	if (first == "time" || first == "timestamp") && word(j, "with", "without") && word(j+1, "time") && word(j+2, "zone") {
		j += 3
	}
	for j < len(toks) && toks[j].isPunct("[") {
		k := j + 1
		if k < len(toks) && toks[k].kind == tNumber {
			k++
		}
		if k < len(toks) && toks[k].isPunct("]") {
			j = k + 1
		} else {
			break
		}
	}
	return j
}
