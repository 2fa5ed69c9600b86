package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/rs/zerolog"

	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/planner"
	"github.com/spatedb/spate/storage"
)

// wal is the coordinator's write-ahead log: every change that makes up
// the server's state — DDL, batches ingested into streams and tables,
// UPDATE/DELETE on tables, closing a stream's windows — in the order it
// was applied, in a storage.Log under <data dir>/wal. A change is synced
// to disk before it is acknowledged, so a restarted `spate serve`
// (Coordinator.Recover) replays the log through the same code paths and
// every continuous query is back where it was, with every acknowledged
// row counted once. The engine is deterministic for one stream's rows in
// a given order, which the log keeps.
//
// Until checkpoints bound it, the log grows with everything ingested and
// a restart replays all of it.
//
// Order: DDL takes order exclusively, every other change shares it, so no
// change is applied between a DDL's application and its log entry;
// changes of one stream or table are logged under that relation's own
// lock, in the order they are applied.
type wal struct {
	log *storage.Log
	// id names the log (<data dir>/wal/id, made with it); restart points
	// record it, so a restart point of another data directory's log is
	// never taken for one of this log's (matchRestartPoint). adopted is
	// the restart point ("id pos", <data dir>/wal/adopted) a new log
	// began from, if it did. Both are blobs of meta, the log's folder.
	meta    *storage.Dir
	id      string
	adopted string

	order sync.RWMutex

	mu sync.Mutex
	// protected by mu
	replaying bool

	// leftOut are the continuous queries a replay left out, by name, with
	// why (replaySQL): Recover runs on one goroutine.
	leftOut map[string]error
}

// Entry kinds, in the schema metadata of each logged batch.
const (
	walKindKey    = "spate.wal.kind"
	walRelKey     = "spate.wal.relation"
	walDDL        = "ddl"    // 1 row: sql, parallelism
	walStream     = "stream" // rows ingested into a stream
	walTable      = "table"  // rows inserted into a table
	walModify     = "modify" // 1 row: sql, params (UPDATE/DELETE on a table)
	walCloseWinds = "close"  // a stream's windows closed (no rows)
	walMark       = "mark"   // a restart point's own position (beginRound); nothing to replay
)

func openWAL(dataDir string, segmentBytes int64) (*wal, error) {
	dir := filepath.Join(dataDir, "wal")
	l, err := storage.OpenLog(dir, storage.LogOptions{SegmentBytes: segmentBytes})
	if err != nil {
		return nil, err
	}
	w := &wal{log: l}
	w.meta, err = storage.NewDir(dir)
	if err == nil {
		w.id, err = w.readMeta("id")
	}
	if err == nil && w.id == "" {
		id := make([]byte, 8)
		rand.Read(id)
		w.id = hex.EncodeToString(id)
		err = w.meta.Put(context.Background(), "id", []byte(w.id))
	}
	if err == nil {
		w.adopted, err = w.readMeta("adopted")
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("the write-ahead log's id: %w", err)
	}
	return w, nil
}

// readMeta reads one of the log's blobs ("" when there is none).
func (w *wal) readMeta(key string) (string, error) {
	b, err := w.meta.Get(context.Background(), key)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	return strings.TrimSpace(string(b)), err
}

// matchRestartPoint checks that the newest restart point in the
// checkpoint store belongs to this log, which must hold every entry from
// its position on. An empty log (a new data directory) may begin from
// another log's restart point — how a server moves to a new disk with
// the store it had: it numbers on from the restart point's position, so
// what it logs next is never below it, and remembers it began there
// (adopted) until its own restart points replace it. It keeps its own
// id: the old directory, should it come back, is not taken for it.
func (w *wal) matchRestartPoint(m *restartManifest, store string, log zerolog.Logger) error {
	next := w.log.Next()
	own := m.LogID == "" || m.LogID == w.id // "": a restart point older than ids
	origin := fmt.Sprintf("%s %d", m.LogID, m.Pos)
	adopted := w.adopted != "" && w.adopted == origin
	switch {
	case next == 1 && m.LogID != "" && m.LogID != w.id:
		log.Warn().Str("checkpoint_store", store).Uint64("position", m.Pos).Time("taken", m.Taken).Str("log_id", m.LogID).
			Msg("the data directory is new: resuming from the checkpoint store's restart point of another data directory (what that directory logged after it is not here)")
		if err := w.meta.Put(context.Background(), "adopted", []byte(origin)); err != nil {
			return fmt.Errorf("the write-ahead log's origin: %w", err)
		}
		w.adopted = origin
		return w.log.StartAt(m.Pos)
	case !own && !adopted:
		return fmt.Errorf("the newest restart point in %s (log position %d, taken %s) belongs to another data directory's write-ahead log (id %s; this one's is %s): give each server a checkpoint store (or prefix) of its own, or start this data directory anew",
			store, m.Pos, m.Taken.Format(time.RFC3339), m.LogID, w.id)
	case next == 1 && m.Pos > 1 && m.LogID == "":
		return w.log.StartAt(m.Pos) // a new directory, a restart point older than ids
	case m.Pos > next:
		return fmt.Errorf("the newest restart point in %s is at log position %d, past the end of this data directory's write-ahead log (next entry %d): the log has lost entries",
			store, m.Pos, next)
	}
	return nil
}

// active reports whether changes are to be logged (a wal exists and is
// not being replayed).
func (w *wal) active() bool {
	if w == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.replaying
}

// appendData logs rows of a relation (kind walStream or walTable).
func (w *wal) appendData(kind, relation string, rec arrow.RecordBatch) error {
	if !w.active() {
		return nil
	}
	md := rec.Schema().Metadata()
	keys := append([]string{walKindKey, walRelKey}, md.Keys()...)
	vals := append([]string{kind, relation}, md.Values()...)
	schema := arrow.NewSchema(rec.Schema().Fields(), ptr(arrow.NewMetadata(keys, vals)))
	tagged := array.NewRecordBatch(schema, rec.Columns(), rec.NumRows())
	defer tagged.Release()
	_, err := w.log.Append(tagged)
	return err
}

// appendDurable logs rows of a relation and makes them durable before
// they go on to its readers: a result never shows rows a crash would take
// back (one fsync per batch; the acknowledgement's sync then has nothing
// left to do).
func (w *wal) appendDurable(kind, relation string, rec arrow.RecordBatch) error {
	if err := w.appendData(kind, relation, rec); err != nil {
		return err
	}
	return w.sync()
}

func ptr[T any](v T) *T { return &v }

// appendStatement logs a statement (DDL or UPDATE/DELETE) as a one-row
// batch.
func (w *wal) appendStatement(kind, relation, sql string, parallelism int, params []Param) error {
	if !w.active() {
		return nil
	}
	enc, err := encodeParams(params)
	if err != nil {
		return err
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "sql", Type: arrow.BinaryTypes.String},
		{Name: "parallelism", Type: arrow.PrimitiveTypes.Int64},
		{Name: "params", Type: arrow.BinaryTypes.String},
	}, ptr(arrow.NewMetadata([]string{walKindKey, walRelKey}, []string{kind, relation})))
	b := array.NewRecordBuilder(memoryAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append(sql)
	b.Field(1).(*array.Int64Builder).Append(int64(parallelism))
	b.Field(2).(*array.StringBuilder).Append(enc)
	rec := b.NewRecordBatch()
	defer rec.Release()
	_, err = w.log.Append(rec)
	return err
}

// sync makes everything logged so far durable; acknowledgements wait
// for it.
func (w *wal) sync() error {
	if w == nil {
		return nil
	}
	return w.log.Sync()
}

func (w *wal) close() error {
	if w == nil {
		return nil
	}
	return w.log.Close()
}

// wireParam keeps a parameter's Go type across JSON.
type wireParam struct {
	T string `json:"t"` // n(ull), s, i, f, b
	V string `json:"v,omitempty"`
}

func encodeParams(params []Param) (string, error) {
	out := make([]wireParam, len(params))
	for i, p := range params {
		switch x := p.(type) {
		case nil:
			out[i] = wireParam{T: "n"}
		case string:
			out[i] = wireParam{T: "s", V: x}
		case int64:
			out[i] = wireParam{T: "i", V: strconv.FormatInt(x, 10)}
		case float64:
			out[i] = wireParam{T: "f", V: strconv.FormatFloat(x, 'g', -1, 64)}
		case bool:
			out[i] = wireParam{T: "b", V: strconv.FormatBool(x)}
		default:
			return "", fmt.Errorf("cannot log a parameter of type %T", p)
		}
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func decodeParams(s string) ([]Param, error) {
	var in []wireParam
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, err
	}
	out := make([]Param, len(in))
	for i, p := range in {
		var err error
		switch p.T {
		case "n":
		case "s":
			out[i] = p.V
		case "i":
			out[i], err = strconv.ParseInt(p.V, 10, 64)
		case "f":
			out[i], err = strconv.ParseFloat(p.V, 64)
		case "b":
			out[i], err = strconv.ParseBool(p.V)
		default:
			err = fmt.Errorf("unknown parameter type %q", p.T)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RecoveryStats says what Recover replayed.
type RecoveryStats struct {
	From       uint64 // the log position replayed from (a restart point's; 1 without)
	Entries    int64
	Statements int64
	Rows       int64
	Elapsed    time.Duration
}

// Recover replays the write-ahead log of a previous run (a no-op without
// a data directory or on a first start): streams, tables and continuous
// queries are created again in their order, and every ingested batch and
// table change is applied again in its order, so the results are those
// of the run that wrote the log. Call it once, after the workers the
// queries should run on have joined and before serving clients.
func (c *Coordinator) Recover(ctx context.Context) (RecoveryStats, error) {
	var st RecoveryStats
	if c.wal == nil {
		return st, nil
	}
	start := time.Now()
	c.wal.mu.Lock()
	c.wal.replaying = true
	c.wal.mu.Unlock()
	defer func() {
		c.wal.mu.Lock()
		c.wal.replaying = false
		c.wal.mu.Unlock()
	}()
	sess := newSession(c, "recovery", "spate")
	sess.system = true // replays what was allowed when it was logged
	// A stream's rows are flushed through its queries before the next
	// entry of anything else is replayed, as their acknowledgement did
	// before the client sent its next statement: a table change replayed
	// while the stream's rows were still on their way could overtake them
	// in a lookup join.
	pending := ""
	settle := func(next string) error {
		if pending == "" || pending == next {
			return nil
		}
		c.mu.Lock()
		s := c.streams[pending]
		c.mu.Unlock()
		pending = ""
		if s == nil {
			return nil
		}
		return c.flushStream(ctx, s)
	}
	// From the newest restart point (restart.go), when there is one: its
	// DDL, with the queries resuming from their checkpoints, its tables
	// and streams, then the log after it.
	from := uint64(1)
	m, err := c.latestRestartPoint(ctx)
	if err != nil {
		return st, fmt.Errorf("reading the restart point: %w", err)
	}
	if m != nil {
		if err := c.wal.matchRestartPoint(m, c.store.String(), c.cfg.Logger); err != nil {
			return st, err
		}
		c.cfg.Logger.Info().Uint64("position", m.Pos).Time("taken", m.Taken).Int("queries", len(m.Queries)).Msg("resuming from the restart point")
		if err := c.loadRestartPoint(ctx, m); err != nil {
			return st, fmt.Errorf("reading the restart point: %w", err)
		}
		c.loadHistory(m.History)
		// A query resumes in its last CREATE (one dropped and created
		// again starts fresh before that).
		c.mu.Lock()
		restore := c.restore
		c.restore = nil
		c.mu.Unlock()
		lastCreate := map[string]int{}
		for i, d := range m.DDL {
			if cq, ok := parseCreateQuery(d.SQL); ok {
				lastCreate[cq] = i
			}
		}
		for i, d := range m.DDL {
			if cq, ok := parseCreateQuery(d.SQL); ok && lastCreate[cq] == i && restore[cq] != nil {
				c.mu.Lock()
				c.restore = map[string]*restoring{cq: restore[cq]}
				c.mu.Unlock()
			}
			err := c.replaySQL(ctx, sess, d.SQL, int64(d.Parallelism), nil)
			c.mu.Lock()
			c.restore = nil
			c.mu.Unlock()
			if err != nil {
				return st, fmt.Errorf("restart point: %w", err)
			}
			st.Statements++
		}
		if err := c.loadRelations(ctx, m); err != nil {
			return st, fmt.Errorf("restart point: %w", err)
		}
		from = m.Pos
		st.From = m.Pos
	}
	restored := time.Since(start)
	last := c.wal.log.Next() - 1
	if last >= from {
		c.cfg.Logger.Info().Uint64("from", from).Uint64("to", last).Msg("replaying the write-ahead log of the previous run")
	}
	progress := time.Now()
	err = c.wal.log.Read(from, func(seq uint64, rec arrow.RecordBatch) error {
		st.Entries++
		if time.Since(progress) > 5*time.Second {
			progress = time.Now()
			c.cfg.Logger.Info().Uint64("entry", seq).Uint64("of", last).Int64("rows", st.Rows).Msg("replaying the write-ahead log")
		}
		md := rec.Schema().Metadata()
		kind, relation := metaValue(md, walKindKey), metaValue(md, walRelKey)
		next := ""
		if kind == walStream {
			next = relation
		}
		if err := settle(next); err != nil {
			return err
		}
		pending = next
		switch kind {
		case walDDL, walModify:
			st.Statements++
			return c.replayStatement(ctx, sess, rec)
		case walStream, walTable:
			st.Rows += rec.NumRows()
			return c.replayData(ctx, kind, relation, rec)
		case walCloseWinds:
			return c.CloseWindows(ctx, relation)
		case walMark:
			return nil
		}
		return fmt.Errorf("write-ahead log entry %d: unknown kind %q", seq, kind)
	})
	if err != nil {
		return st, fmt.Errorf("replaying the write-ahead log (to start empty instead, move the data directory's wal folder away): %w", err)
	}
	// Let every query finish what the replayed rows started.
	for _, s := range c.streamList() {
		if err := c.flushStream(ctx, s); err != nil {
			return st, err
		}
	}
	st.Elapsed = time.Since(start)
	if m != nil || st.Entries > 0 {
		c.recordRestart(m, st, start, restored)
	}
	return st, nil
}

// recordRestart lists in SHOW RECOVERIES each query a restart brought
// back: from which restart point (or the whole log), how long until its
// instances ran again (restored) and until the log was replayed through
// it (caught up).
func (c *Coordinator) recordRestart(m *restartManifest, st RecoveryStats, start time.Time, restored time.Duration) {
	reason := fmt.Sprintf("server restarted: no restart point, the whole log replayed (%d entries)", st.Entries)
	if m != nil {
		reason = fmt.Sprintf("server restarted: resumed from the restart point at log position %d (taken %s) and %d log entries after it", m.Pos, m.Taken.UTC().Format(time.DateTime), st.Entries)
	}
	for _, qr := range c.runningQueries() {
		rec := recoveryRecord{Query: qr.def.Name, Reason: reason, Detected: start,
			Restored: restored, Caught: st.Elapsed, Instances: qr.instanceCount(), Replayed: int(st.Entries), Status: "recovered"}
		switch {
		case m == nil:
		case qr.restored: // from the restart point
			rec.Epoch = m.Queries[qr.def.Name].Epoch
		default: // created (again) after it: the log made it anew
			rec.Reason = fmt.Sprintf("server restarted: created after the restart point at log position %d (taken %s), made anew by replaying the %d log entries after it",
				m.Pos, m.Taken.UTC().Format(time.DateTime), st.Entries)
		}
		if err := qr.pipeline().failure(); err != nil {
			rec.Status = "failed: " + err.Error()
		}
		c.addRecovery(rec)
	}
}

// parseCreateQuery returns the name a CREATE CONTINUOUS QUERY creates.
func parseCreateQuery(sql string) (string, bool) {
	stmt, err := parser.ParseOne(sql)
	if err != nil {
		return "", false
	}
	cq, ok := stmt.(*parser.CreateContinuousQuery)
	if !ok {
		return "", false
	}
	return cq.Name, true
}

func metaValue(md arrow.Metadata, key string) string {
	if i := md.FindKey(key); i >= 0 {
		return md.Values()[i]
	}
	return ""
}

func (c *Coordinator) replayStatement(ctx context.Context, sess *session, rec arrow.RecordBatch) error {
	sql := rec.Column(0).(*array.String).Value(0)
	par := rec.Column(1).(*array.Int64).Value(0)
	params, err := decodeParams(rec.Column(2).(*array.String).Value(0))
	if err != nil {
		return err
	}
	return c.replaySQL(ctx, sess, sql, par, params)
}

// replaySQL runs a logged statement again, with the parallelism it was
// planned with.
func (c *Coordinator) replaySQL(ctx context.Context, sess *session, sql string, par int64, params []Param) error {
	stmt, err := parser.ParseOne(sql)
	if err != nil {
		return fmt.Errorf("%q: %w", sql, err)
	}
	if par > 0 {
		sess.settings["parallelism"] = strconv.FormatInt(par, 10)
	}
	if _, err := sess.Execute(ctx, stmt, params); err != nil {
		if c.leaveOut(stmt, err) {
			return nil
		}
		return fmt.Errorf("%q: %w", sql, err)
	}
	return nil
}

// leaveOut decides whether a restart goes on without a logged statement
// that fails when replayed: a CREATE CONTINUOUS QUERY the planner no
// longer accepts (a newer version refuses what an older one took, such
// as a query whose results were wrong) is left out — logged, listed in
// SHOW RECOVERIES — rather than keep the server from starting; so is a
// later statement on a query left out. Other failures stop the restart.
func (c *Coordinator) leaveOut(stmt parser.Statement, err error) bool {
	var name string
	switch x := stmt.(type) {
	case *parser.CreateContinuousQuery:
		if code := asError(err).Code; code == "XX000" || strings.HasPrefix(code, "53") || strings.HasPrefix(code, "58") {
			return false // internal, out of resources or a system error: not the plan's
		}
		name = x.Name
	case *parser.Drop:
		return x.Kind == parser.KindContinuousQuery && c.wal.leftOut[x.Name] != nil
	case *parser.AlterContinuousQuery:
		return c.wal.leftOut[x.Name] != nil
	default:
		return false
	}
	if c.wal.leftOut == nil {
		c.wal.leftOut = map[string]error{}
	}
	c.wal.leftOut[name] = err
	c.cfg.Logger.Error().Err(err).Str("query", name).
		Msg("a continuous query of the previous run no longer plans; the server starts without it (create it again, corrected)")
	c.addRecovery(recoveryRecord{Query: name, Reason: "server restarted: left out, its CREATE no longer plans", Detected: time.Now(),
		Status: "failed: " + err.Error()})
	return true
}

func (c *Coordinator) replayData(ctx context.Context, kind, relation string, rec arrow.RecordBatch) error {
	c.mu.Lock()
	s, t := c.streams[relation], c.tables[relation]
	c.mu.Unlock()
	// Back to the relation's own schema (without the log's tags).
	var schema *arrow.Schema
	switch {
	case kind == walStream && s != nil:
		schema = s.schema
	case kind == walTable && t != nil:
		schema = t.schema
	default:
		return errorf(planner.CodeUndefinedTable, "the log has rows for %s %q, which does not exist at that point", kind, relation)
	}
	if err := checkRelationSchema(kind, relation, schema, rec); err != nil {
		// Rows a COPY logged for a relation dropped and created again
		// under it (before that was refused): they fit no relation.
		c.cfg.Logger.Error().Str(kind, relation).Int64("rows", rec.NumRows()).
			Msg("the log has rows whose columns are not the relation's (logged while it was dropped and created again); they are left out")
		return nil
	}
	own := array.NewRecordBatch(schema, rec.Columns(), rec.NumRows())
	defer own.Release()
	if s != nil && kind == walStream {
		return c.ingestStream(ctx, s, own)
	}
	return c.appendTable(t, own)
}
