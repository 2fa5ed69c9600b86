package planner

import (
	"github.com/pingcap/tidb/pkg/parser/ast"
)

// ModifyPlan is a planned UPDATE or DELETE of a table: Where selects rows
// (nil: every row); for UPDATE, Set has one expression per table column
// computing its new value (a plain reference for columns not assigned).
// Expressions read the table's columns.
type ModifyPlan struct {
	Table   string
	Columns []Column
	Where   Expr
	Set     []Expr // nil for DELETE
	Params  []Type
}

// Update plans UPDATE table SET … [WHERE …].
func (p *Planner) Update(u *ast.UpdateStmt) (*ModifyPlan, error) {
	if u.MultipleTable || u.Order != nil || u.Limit != nil || u.With != nil {
		return nil, errorf(CodeNotSupported, "this form of UPDATE is not supported; use UPDATE table SET … WHERE …")
	}
	plan, b, err := p.modifyTarget(u.TableRefs, "UPDATE")
	if err != nil {
		return nil, err
	}
	plan.Set = make([]Expr, len(plan.Columns))
	for i, c := range plan.Columns {
		plan.Set[i] = &ColRef{Index: i, Name: c.Name, T: c.Type}
	}
	b.where = "UPDATE … SET"
	for _, a := range u.List {
		idx := columnNamed(plan.Columns, a.Column.Name.O)
		if idx < 0 {
			return nil, errorf(CodeUndefinedColumn, "column %q of relation %q does not exist", a.Column.Name.O, plan.Table)
		}
		e, err := b.expr(a.Expr)
		if err != nil {
			return nil, err
		}
		col := plan.Columns[idx]
		if !untyped(e) && !assignable(e.Type(), col.Type) {
			return nil, errorf(CodeDatatypeMismatch, "column %q is of type %s but expression is of type %s", col.Name, col.Type, e.Type())
		}
		plan.Set[idx] = castTo(e, col.Type)
	}
	if err := p.modifyWhere(plan, b, u.Where); err != nil {
		return nil, err
	}
	return plan, nil
}

// Delete plans DELETE FROM table [WHERE …].
func (p *Planner) Delete(d *ast.DeleteStmt) (*ModifyPlan, error) {
	if d.IsMultiTable || d.Order != nil || d.Limit != nil {
		return nil, errorf(CodeNotSupported, "this form of DELETE is not supported; use DELETE FROM table WHERE …")
	}
	plan, b, err := p.modifyTarget(d.TableRefs, "DELETE")
	if err != nil {
		return nil, err
	}
	if err := p.modifyWhere(plan, b, d.Where); err != nil {
		return nil, err
	}
	return plan, nil
}

func (p *Planner) modifyTarget(refs *ast.TableRefsClause, verb string) (*ModifyPlan, *binder, error) {
	if refs == nil || refs.TableRefs == nil || refs.TableRefs.Right != nil {
		return nil, nil, errorf(CodeNotSupported, "%s reads one table", verb)
	}
	ts, ok := refs.TableRefs.Left.(*ast.TableSource)
	if !ok {
		return nil, nil, errorf(CodeNotSupported, "%s needs a table name", verb)
	}
	tn, ok := ts.Source.(*ast.TableName)
	if !ok {
		return nil, nil, errorf(CodeNotSupported, "%s needs a table name", verb)
	}
	name := tn.Name.O
	obj, kind, ok := p.Catalog.Lookup(name)
	if !ok {
		return nil, nil, errorf(CodeUndefinedTable, "relation %q does not exist", name)
	}
	t, ok := obj.(*Table)
	if !ok {
		return nil, nil, errorf(CodeWrongObjectType, "cannot %s %s %q: only tables change; streams are append-only and continuous queries follow their inputs", verb, kind, name)
	}
	qualifier := name
	if ts.AsName.O != "" {
		qualifier = ts.AsName.O
	}
	scope := make([]scopeColumn, len(t.Columns))
	for i, c := range t.Columns {
		scope[i] = scopeColumn{qualifier: qualifier, name: c.Name, typ: c.Type}
	}
	return &ModifyPlan{Table: name, Columns: t.Columns}, &binder{scope: scope, params: &params{}}, nil
}

func (p *Planner) modifyWhere(plan *ModifyPlan, b *binder, where ast.ExprNode) error {
	if where != nil {
		b.where = "WHERE"
		e, err := b.expr(where)
		if err != nil {
			return err
		}
		if plan.Where, err = requireBool(e, "WHERE"); err != nil {
			return err
		}
	}
	plan.Params = finalParams(b.params)
	return nil
}
