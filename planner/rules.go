package planner

// Rewrite rules run in order over the logical plan. Each is a plain
// function from plan to plan; none changes what a query returns.

// Rule is a named logical rewrite.
type Rule struct {
	Name  string
	Apply func(Node) Node
}

// Rules are the rewrite rules in the order they run.
var Rules = []Rule{
	{"merge_filters", bottomUp(mergeFilters)},
	{"push_filter_below_project", bottomUp(pushFilterBelowProject)},
	{"push_filter_below_aggregate", bottomUp(pushFilterBelowAggregate)},
	{"push_filter_below_join", bottomUp(pushFilterBelowJoin)},
	{"merge_filters", bottomUp(mergeFilters)},
	{"merge_projects", bottomUp(mergeProjects)},
	{"prune_columns", pruneRoot},
}

// Rewrite applies Rules to a logical plan.
func Rewrite(n Node) Node {
	for _, r := range Rules {
		n = r.Apply(n)
	}
	return n
}

// bottomUp applies fn to every node, children first.
func bottomUp(fn func(Node) Node) func(Node) Node {
	var walk func(Node) Node
	walk = func(n Node) Node {
		n = withInputs(n, mapInputs(n, walk))
		return fn(n)
	}
	return walk
}

func mapInputs(n Node, fn func(Node) Node) []Node {
	ins := n.Inputs()
	out := make([]Node, len(ins))
	for i, in := range ins {
		out[i] = fn(in)
	}
	return out
}

// withInputs returns a copy of n over new inputs.
func withInputs(n Node, ins []Node) Node {
	switch x := n.(type) {
	case *Filter:
		c := *x
		c.Input = ins[0]
		return &c
	case *Project:
		c := *x
		c.Input = ins[0]
		return &c
	case *Aggregate:
		c := *x
		c.Input = ins[0]
		return &c
	case *Sort:
		c := *x
		c.Input = ins[0]
		return &c
	case *Join:
		c := *x
		c.Left, c.Right = ins[0], ins[1]
		return &c
	case *Over:
		c := *x
		c.Input = ins[0]
		return &c
	}
	return n
}

// pushFilterBelowJoin moves WHERE conjuncts that read only the left input
// below the join (for inner and left outer joins), and those that read
// only the right input below an inner interval join.
func pushFilterBelowJoin(n Node) Node {
	f, ok := n.(*Filter)
	if !ok {
		return n
	}
	j, ok := f.Input.(*Join)
	if !ok {
		return n
	}
	nl := len(j.Left.Columns())
	var keep, left, right []Expr
	for _, c := range splitAnd(f.Pred) {
		used := map[int]bool{}
		columnsUsed(c, used)
		onlyLeft, onlyRight := len(used) > 0, len(used) > 0
		for i := range used {
			onlyLeft = onlyLeft && i < nl
			onlyRight = onlyRight && i >= nl
		}
		switch {
		case onlyLeft:
			left = append(left, c)
		case onlyRight && !j.Outer && j.Kind == JoinInterval:
			right = append(right, mapColumns(c, func(r *ColRef) Expr {
				return &ColRef{Index: r.Index - nl, Name: r.Name, T: r.T}
			}))
		default:
			keep = append(keep, c)
		}
	}
	if len(left) == 0 && len(right) == 0 {
		return n
	}
	nj := *j
	if len(left) > 0 {
		nj.Left = &Filter{Input: j.Left, Pred: joinAnd(left)}
	}
	if len(right) > 0 {
		nj.Right = &Filter{Input: j.Right, Pred: joinAnd(right)}
	}
	if len(keep) == 0 {
		return &nj
	}
	return &Filter{Input: &nj, Pred: joinAnd(keep)}
}

// mergeFilters: Filter(Filter(x, a), b) → Filter(x, a AND b).
func mergeFilters(n Node) Node {
	f, ok := n.(*Filter)
	if !ok {
		return n
	}
	inner, ok := f.Input.(*Filter)
	if !ok {
		return n
	}
	return &Filter{Input: inner.Input, Pred: joinAnd([]Expr{inner.Pred, f.Pred})}
}

// pushFilterBelowProject: Filter(Project(x), p) → Project(Filter(x, p')),
// where p' reads the projected expressions instead of their outputs.
func pushFilterBelowProject(n Node) Node {
	f, ok := n.(*Filter)
	if !ok {
		return n
	}
	p, ok := f.Input.(*Project)
	if !ok {
		return n
	}
	pred := mapColumns(f.Pred, func(c *ColRef) Expr { return p.Exprs[c.Index] })
	return &Project{Input: &Filter{Input: p.Input, Pred: pred}, Exprs: p.Exprs, Names: p.Names}
}

// pushFilterBelowAggregate moves the conjuncts of a filter above an
// aggregate (HAVING) that read only group keys below it, so fewer rows
// reach the aggregate's state.
func pushFilterBelowAggregate(n Node) Node {
	f, ok := n.(*Filter)
	if !ok {
		return n
	}
	a, ok := f.Input.(*Aggregate)
	if !ok {
		return n
	}
	offset := 0
	if a.Mode == AggUpdating {
		offset = 1
	}
	var keep, push []Expr
	for _, c := range splitAnd(f.Pred) {
		used := map[int]bool{}
		columnsUsed(c, used)
		onlyKeys := len(used) > 0
		for i := range used {
			if i < offset || i >= offset+len(a.Keys) {
				onlyKeys = false
			}
		}
		if !onlyKeys {
			keep = append(keep, c)
			continue
		}
		push = append(push, mapColumns(c, func(r *ColRef) Expr { return a.Keys[r.Index-offset] }))
	}
	if len(push) == 0 {
		return n
	}
	na := *a
	na.Input = &Filter{Input: a.Input, Pred: joinAnd(push)}
	if len(keep) == 0 {
		return &na
	}
	return &Filter{Input: &na, Pred: joinAnd(keep)}
}

// mergeProjects: Project(Project(x)) → Project(x) when every computed
// expression of the inner projection is used at most once (so nothing is
// computed twice).
func mergeProjects(n Node) Node {
	p, ok := n.(*Project)
	if !ok {
		return n
	}
	inner, ok := p.Input.(*Project)
	if !ok {
		return n
	}
	uses := map[int]int{}
	for _, e := range p.Exprs {
		walkExpr(e, func(x Expr) {
			if c, ok := x.(*ColRef); ok {
				uses[c.Index]++
			}
		})
	}
	for i, n := range uses {
		if _, plain := inner.Exprs[i].(*ColRef); !plain && n > 1 {
			return p
		}
	}
	exprs := make([]Expr, len(p.Exprs))
	for i, e := range p.Exprs {
		exprs[i] = mapColumns(e, func(c *ColRef) Expr { return inner.Exprs[c.Index] })
	}
	return &Project{Input: inner.Input, Exprs: exprs, Names: p.Names}
}

// pruneRoot is projection pushdown: every node keeps only the columns its
// parent reads, and scans read only the columns the query uses.
func pruneRoot(n Node) Node {
	need := make([]bool, len(n.Columns()))
	for i := range need {
		need[i] = true
	}
	out, _ := prune(n, need)
	return out
}

// prune returns n restricted to the needed output columns and, for each old
// output index, its new index (-1 when dropped).
func prune(n Node, need []bool) (Node, []int) {
	switch x := n.(type) {
	case *Join:
		return pruneJoin(x, need)
	case *Over:
		return pruneOver(x, need)
	case *Scan:
		var keep []int
		for i, ok := range need {
			if ok || x.Changelog {
				keep = append(keep, i)
			}
		}
		if len(keep) == 0 && len(x.Cols) > 0 {
			keep = []int{0} // batches need one column to carry a row count
		}
		mapping := make([]int, len(x.Cols))
		for i := range mapping {
			mapping[i] = -1
		}
		s := &Scan{Relation: x.Relation, Kind: x.Kind, Stream: x.Stream, Query: x.Query,
			EventTime: x.EventTime, TimeUnit: x.TimeUnit, Changelog: x.Changelog}
		for j, i := range keep {
			mapping[i] = j
			s.Indexes = append(s.Indexes, x.Indexes[i])
			s.Cols = append(s.Cols, x.Cols[i])
		}
		return s, mapping
	case *Filter:
		inNeed := append([]bool(nil), need...)
		markUsed(inNeed, x.Pred)
		in, mapping := prune(x.Input, inNeed)
		return &Filter{Input: in, Pred: remap(x.Pred, mapping)}, mapping
	case *Project:
		inNeed := make([]bool, len(x.Input.Columns()))
		mapping := make([]int, len(x.Exprs))
		var kept []int
		for i := range x.Exprs {
			mapping[i] = -1
			if need[i] {
				mapping[i] = len(kept)
				kept = append(kept, i)
				markUsed(inNeed, x.Exprs[i])
			}
		}
		in, inMap := prune(x.Input, inNeed)
		p := &Project{Input: in}
		for _, i := range kept {
			p.Exprs = append(p.Exprs, remap(x.Exprs[i], inMap))
			p.Names = append(p.Names, x.Names[i])
		}
		return p, mapping
	case *Aggregate:
		inNeed := make([]bool, len(x.Input.Columns()))
		for _, k := range x.Keys {
			markUsed(inNeed, k)
		}
		for _, a := range x.Aggs {
			if a.Arg != nil {
				markUsed(inNeed, a.Arg)
			}
		}
		if x.Window != nil {
			inNeed[x.Window.Time.Index] = true
		}
		in, inMap := prune(x.Input, inNeed)
		na := &Aggregate{Input: in, KeyNames: x.KeyNames, Mode: x.Mode}
		for _, k := range x.Keys {
			na.Keys = append(na.Keys, remap(k, inMap))
		}
		for _, a := range x.Aggs {
			if a.Arg != nil {
				a.Arg = remap(a.Arg, inMap)
			}
			na.Aggs = append(na.Aggs, a)
		}
		if x.Window != nil {
			w := *x.Window
			w.Time = remap(w.Time, inMap).(*ColRef)
			na.Window = &w
		}
		return na, identity(len(x.Columns()))
	case *Sort:
		inNeed := append([]bool(nil), need...)
		for _, k := range x.Keys {
			markUsed(inNeed, k.Expr)
		}
		in, mapping := prune(x.Input, inNeed)
		ns := &Sort{Input: in, Limit: x.Limit, Offset: x.Offset}
		for _, k := range x.Keys {
			k.Expr = remap(k.Expr, mapping)
			ns.Keys = append(ns.Keys, k)
		}
		return ns, mapping
	}
	return n, identity(len(n.Columns()))
}

func identity(n int) []int {
	m := make([]int, n)
	for i := range m {
		m[i] = i
	}
	return m
}

func markUsed(need []bool, e Expr) {
	walkExpr(e, func(x Expr) {
		if c, ok := x.(*ColRef); ok {
			need[c.Index] = true
		}
	})
}

func remap(e Expr, mapping []int) Expr {
	return mapColumns(e, func(c *ColRef) Expr {
		return &ColRef{Index: mapping[c.Index], Name: c.Name, T: c.T}
	})
}

// pruneJoin keeps the columns of each side the parent, the keys, the event
// times and the residual read.
func pruneJoin(j *Join, need []bool) (Node, []int) {
	nl, nr := len(j.Left.Columns()), len(j.Right.Columns())
	leftNeed, rightNeed := make([]bool, nl), make([]bool, nr)
	all := make([]bool, nl+nr)
	copy(all, need)
	for _, k := range j.LeftKeys {
		all[k.Index] = true
	}
	for _, k := range j.RightKeys {
		all[nl+k.Index] = true
	}
	if j.LeftTime != nil {
		all[j.LeftTime.Index] = true
		all[j.RightTime.Index] = true
	}
	if j.Residual != nil {
		markUsed(all, j.Residual)
	}
	copy(leftNeed, all[:nl])
	copy(rightNeed, all[nl:])
	left, lmap := prune(j.Left, leftNeed)
	right, rmap := prune(j.Right, rightNeed)
	newNl := len(left.Columns())
	mapping := make([]int, nl+nr)
	for i := range mapping {
		switch {
		case i < nl:
			mapping[i] = lmap[i]
		case rmap[i-nl] >= 0:
			mapping[i] = newNl + rmap[i-nl]
		default:
			mapping[i] = -1
		}
	}
	nj := *j
	nj.Left, nj.Right = left, right
	nj.LeftKeys, nj.RightKeys = nil, nil
	for i := range j.LeftKeys {
		nj.LeftKeys = append(nj.LeftKeys, remap(j.LeftKeys[i], lmap).(*ColRef))
		nj.RightKeys = append(nj.RightKeys, remap(j.RightKeys[i], rmap).(*ColRef))
	}
	if j.LeftTime != nil {
		nj.LeftTime = remap(j.LeftTime, mapping).(*ColRef)
		nj.RightTime = remap(j.RightTime, mapping).(*ColRef)
	}
	if j.Residual != nil {
		nj.Residual = remap(j.Residual, mapping)
	}
	return &nj, mapping
}

// pruneOver keeps the input columns the parent, the partition key, the
// event time and the function arguments read; the function columns stay.
func pruneOver(o *Over, need []bool) (Node, []int) {
	n := len(o.Input.Columns())
	inNeed := make([]bool, n)
	copy(inNeed, need[:n])
	for _, p := range o.PartitionBy {
		inNeed[p.Index] = true
	}
	inNeed[o.Time.Index] = true
	for _, c := range o.Calls {
		if c.Arg != nil {
			inNeed[c.Arg.Index] = true
		}
	}
	in, inMap := prune(o.Input, inNeed)
	no := &Over{Input: in, TimeUnit: o.TimeUnit, Time: remap(o.Time, inMap).(*ColRef)}
	for _, p := range o.PartitionBy {
		no.PartitionBy = append(no.PartitionBy, remap(p, inMap).(*ColRef))
	}
	for _, c := range o.Calls {
		if c.Arg != nil {
			c.Arg = remap(c.Arg, inMap).(*ColRef)
		}
		no.Calls = append(no.Calls, c)
	}
	width := len(in.Columns())
	mapping := make([]int, n+len(o.Calls))
	copy(mapping, inMap)
	for i := range o.Calls {
		mapping[n+i] = width + i
	}
	return no, mapping
}
