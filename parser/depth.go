package parser

import (
	"strconv"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
)

// MaxNesting bounds how deeply a statement's expressions may nest: 1+1+…
// with that many terms, CASEs or function calls inside each other, or
// parentheses. Every pass over a statement (the rewrite, TiDB's visitors,
// binding, planning, the plan's JSON for workers, evaluation) recurses
// once per level, so a deeper statement is refused (54001, as PostgreSQL
// answers one that exceeds its stack) instead of taking the server's
// stack. A chain of ANDs or ORs does not nest: the planner binds it as one
// n-ary call, so x = 1 OR x = 2 OR … may be as long as maxChain.
const MaxNesting = 2000

// maxChain bounds the AST's depth counting AND/OR chains link by link
// (TiDB's visitors still recurse once per link).
const maxChain = 200_000

// CodeStatementTooComplex is statement_too_complex (PostgreSQL's class 54
// for "stack depth limit exceeded" is 54001).
const CodeStatementTooComplex = "54001"

func tooDeep(limit int, what string) *Error {
	return &Error{Code: CodeStatementTooComplex, Message: "statement too complex: " + what + " nest more than " + strconv.Itoa(limit) + " levels deep"}
}

// checkTokenNesting refuses a statement whose parentheses, brackets and
// CASEs nest past MaxNesting before the rewrite recurses into them.
func checkTokenNesting(toks []token) *Error {
	depth := 0
	for _, t := range toks {
		switch {
		case t.isPunct("(") || t.isPunct("[") || t.kind == tIdent && t.val == "case":
			if depth++; depth > MaxNesting {
				return tooDeep(MaxNesting, "parentheses and CASE expressions")
			}
		case (t.isPunct(")") || t.isPunct("]") || t.kind == tIdent && t.val == "end") && depth > 0:
			depth--
		}
	}
	return nil
}

// checkNesting measures a parsed statement's nesting without recursing
// past the limits (it skips the children of a node beyond them).
func checkNesting(stmt ast.Node) *Error {
	d := &depthCheck{}
	stmt.Accept(d)
	switch {
	case d.chainTooLong:
		return &Error{Code: CodeStatementTooComplex, Message: "statement too complex: its ANDs and ORs with what they contain nest more than " + strconv.Itoa(maxChain) + " levels deep"}
	case d.tooDeep:
		return tooDeep(MaxNesting, "expressions")
	}
	return nil
}

// depthCheck counts the nesting of expressions (a statement's other nodes
// and the links of AND/OR chains do not count) and the depth of the tree.
type depthCheck struct {
	path                  []ast.Node
	nesting               []int // nesting at each node of path
	tooDeep, chainTooLong bool
}

func (d *depthCheck) Enter(n ast.Node) (ast.Node, bool) {
	nesting := 0
	if k := len(d.path); k > 0 {
		nesting = d.nesting[k-1]
		if _, isExpr := n.(ast.ExprNode); isExpr && !chainLink(d.path[k-1], n) {
			nesting++
		}
	}
	d.path = append(d.path, n)
	d.nesting = append(d.nesting, nesting)
	d.tooDeep = d.tooDeep || nesting > MaxNesting
	d.chainTooLong = d.chainTooLong || len(d.path) > maxChain
	return n, d.tooDeep || d.chainTooLong
}

func (d *depthCheck) Leave(n ast.Node) (ast.Node, bool) {
	d.path = d.path[:len(d.path)-1]
	d.nesting = d.nesting[:len(d.nesting)-1]
	return n, true
}

// chainLink reports whether child continues parent's chain of ANDs or ORs
// (a AND b AND c parses as ((a AND b) AND c)).
func chainLink(parent, child ast.Node) bool {
	p, ok := parent.(*ast.BinaryOperationExpr)
	if !ok || p.L != child || (p.Op != opcode.LogicAnd && p.Op != opcode.LogicOr) {
		return false
	}
	c, ok := child.(*ast.BinaryOperationExpr)
	return ok && c.Op == p.Op
}
