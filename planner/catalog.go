package planner

import (
	"sort"
	"sync"
)

// Column is a named, typed column of a relation.
type Column struct {
	Name string
	Type Type
	// Declared is the type as declared in CREATE STREAM / CREATE TABLE
	// ("varchar(20)", "integer"), empty for computed columns. Ingest uses
	// it for the checks the storage type does not make (INT range,
	// VARCHAR length).
	Declared string
}

// RelationKind tells streams, tables and continuous queries apart.
type RelationKind uint8

// The relation kinds.
const (
	RelStream RelationKind = iota + 1
	RelTable
	RelContinuousQuery
	RelSystem // a read-only system table (SHOW output usable in SELECT)
)

func (k RelationKind) String() string {
	switch k {
	case RelStream:
		return "stream"
	case RelTable:
		return "table"
	case RelContinuousQuery:
		return "continuous query"
	case RelSystem:
		return "system table"
	}
	return "relation"
}

// Stream is an unbounded, append-only input.
type Stream struct {
	Name    string
	Columns []Column
	// EventTime is the index of the event-time column, or -1 when the
	// stream has none (then it cannot feed windows).
	EventTime int
	// TimeUnit converts the event-time column to µs: 1 for TIMESTAMP,
	// 1_000_000 for a BIGINT of seconds (time_unit = 's').
	TimeUnit int64
	// WatermarkDelay (µs) is subtracted from the largest event time seen to
	// give the stream's watermark.
	WatermarkDelay int64
	// IdleTimeout (µs of wall time, 0 for never) is how long a stream may
	// go without rows before it counts as idle: joins then stop waiting
	// for its watermark until rows come again.
	IdleTimeout int64
	// Options are the WITH options as given.
	Options map[string]string
}

// Table is a bounded relation loaded by INSERT or COPY.
type Table struct {
	Name       string
	Columns    []Column
	PrimaryKey []int
}

// ContinuousQuery is a registered continuous query and its plan.
type ContinuousQuery struct {
	Name string
	// SQL is the SELECT as the user wrote it.
	SQL string
	// Columns is the output schema (without the changelog "op" column).
	Columns []Column
	// Updating is true for a non-windowed aggregate: the result is a table
	// that changes, and SUBSCRIBE shows a changelog.
	Updating bool
	// Key is the indexes into Columns that identify a row of an updating
	// result (the group key).
	Key []int
	// EventTime is the output column that carries event time when another
	// continuous query reads this one as a stream (window_end of a
	// windowed result, or the source's event-time column passed through),
	// or -1. TimeUnit converts it to µs.
	EventTime int
	TimeUnit  int64
	// Plan is the physical DAG.
	Plan *Physical
	// Sources are the names of the streams the query reads.
	Sources []string
	// Options are the WITH options as given.
	Options map[string]string
}

// Catalog holds the named objects. It is safe for concurrent use.
type Catalog struct {
	mu sync.RWMutex
	// protected by mu
	streams map[string]*Stream
	tables  map[string]*Table
	queries map[string]*ContinuousQuery
	system  map[string]*SystemTable
}

// SystemTable is a read-only table whose rows the engine produces when it
// is read (spate_streams, spate_continuous_queries, …).
type SystemTable struct {
	Name    string
	Columns []Column
}

// NewCatalog returns an empty catalog.
func NewCatalog() *Catalog {
	return &Catalog{
		streams: map[string]*Stream{},
		tables:  map[string]*Table{},
		queries: map[string]*ContinuousQuery{},
		system:  map[string]*SystemTable{},
	}
}

// AddSystem registers a system table. Names of system tables are reserved.
func (c *Catalog) AddSystem(t *SystemTable) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.system[t.Name] = t
}

// Lookup finds a relation by name: a *Stream, *Table or *ContinuousQuery.
func (c *Catalog) Lookup(name string) (any, RelationKind, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.lookupLocked(name)
}

func (c *Catalog) lookupLocked(name string) (any, RelationKind, bool) {
	if s, ok := c.streams[name]; ok {
		return s, RelStream, true
	}
	if t, ok := c.tables[name]; ok {
		return t, RelTable, true
	}
	if q, ok := c.queries[name]; ok {
		return q, RelContinuousQuery, true
	}
	if t, ok := c.system[name]; ok {
		return t, RelSystem, true
	}
	return nil, 0, false
}

// Stream returns the named stream.
func (c *Catalog) Stream(name string) (*Stream, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.streams[name]
	return s, ok
}

// Table returns the named table.
func (c *Catalog) Table(name string) (*Table, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.tables[name]
	return t, ok
}

// Query returns the named continuous query.
func (c *Catalog) Query(name string) (*ContinuousQuery, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	q, ok := c.queries[name]
	return q, ok
}

// Add registers a *Stream, *Table or *ContinuousQuery. It fails with 42P07
// when the name is taken by any relation.
func (c *Catalog) Add(obj any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	name := objectName(obj)
	if _, kind, ok := c.lookupLocked(name); ok {
		return errorf(CodeDuplicateTable, "relation %q already exists (a %s)", name, kind)
	}
	switch o := obj.(type) {
	case *Stream:
		c.streams[name] = o
	case *Table:
		c.tables[name] = o
	case *ContinuousQuery:
		c.queries[name] = o
	}
	return nil
}

// Remove drops the named relation of the given kind. Dropping a stream or
// continuous query that other continuous queries read fails with 2BP01
// unless cascade is set, in which case the dependents are removed too and
// returned.
func (c *Catalog) Remove(name string, kind RelationKind, cascade bool) (dropped []string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, got, ok := c.lookupLocked(name)
	if !ok {
		return nil, errorf(CodeUndefinedTable, "%s %q does not exist", kind, name)
	}
	if got != kind {
		return nil, errorf(CodeWrongObjectType, "%q is a %s, not a %s", name, got, kind)
	}
	if got == RelSystem {
		return nil, errorf(CodeWrongObjectType, "%q is a system table and cannot be dropped", name)
	}
	// Dependents, transitively: queries reading name, queries reading those…
	var deps []string
	seen := map[string]bool{name: true}
	for frontier := []string{name}; len(frontier) > 0; {
		var next []string
		for _, q := range c.queries {
			if seen[q.Name] {
				continue
			}
			for _, s := range q.Sources {
				if contains(frontier, s) {
					seen[q.Name] = true
					next = append(next, q.Name)
					break
				}
			}
		}
		sort.Strings(next)
		deps = append(deps, next...)
		frontier = next
	}
	if len(deps) > 0 && !cascade {
		return nil, errorf(CodeDependentObjects, "cannot drop %s %q because continuous query %q depends on it (use DROP … CASCADE)", kind, name, deps[0])
	}
	for _, d := range deps {
		delete(c.queries, d)
	}
	delete(c.streams, name)
	delete(c.tables, name)
	delete(c.queries, name)
	return append(deps, name), nil
}

// Streams lists the streams ordered by name.
func (c *Catalog) Streams() []*Stream {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*Stream, 0, len(c.streams))
	for _, s := range c.streams {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Tables lists the tables ordered by name.
func (c *Catalog) Tables() []*Table {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*Table, 0, len(c.tables))
	for _, t := range c.tables {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Queries lists the continuous queries ordered by name.
func (c *Catalog) Queries() []*ContinuousQuery {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*ContinuousQuery, 0, len(c.queries))
	for _, q := range c.queries {
		out = append(out, q)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SystemTables lists the system tables ordered by name.
func (c *Catalog) SystemTables() []*SystemTable {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*SystemTable, 0, len(c.system))
	for _, t := range c.system {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func objectName(obj any) string {
	switch o := obj.(type) {
	case *Stream:
		return o.Name
	case *Table:
		return o.Name
	case *ContinuousQuery:
		return o.Name
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
