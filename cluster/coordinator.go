// Package cluster runs continuous queries: the coordinator owns the catalog
// and the running pipelines, ingests rows into streams and tables, answers
// snapshot queries and feeds subscribers. With a cluster token it also
// heads a cluster: worker processes join its registry (cluster/control),
// run the instances it places on them (worker.go, deploy.go) and exchange
// batches over the data plane (cluster/transport, dataplane.go). Without
// one every instance is a goroutine of the serving process.
package cluster

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/rs/zerolog"

	"github.com/spatedb/spate/cluster/control"
	"github.com/spatedb/spate/exec"
	"github.com/spatedb/spate/planner"
	"github.com/spatedb/spate/storage"
)

// Config configures a Coordinator.
type Config struct {
	// Parallelism is the default number of instances of each partitioned
	// stage (SET parallelism overrides it per session). Default 0: one per
	// live worker, at least 1.
	Parallelism int
	// Autoscale is the autoscale setting of a continuous query until ALTER
	// CONTINUOUS QUERY … SET (autoscale = …) changes it. Default off.
	Autoscale bool
	// BatchRows is the number of rows COPY collects into one batch.
	// Default 8192.
	BatchRows int
	// Logger receives structured logs. Default: disabled.
	Logger zerolog.Logger
	// Token, when set, makes the coordinator head a cluster: it starts a
	// worker registry on ClusterListen and a data-plane listener on
	// DataListen, and places continuous queries on the workers that join
	// with the same token. Default: no cluster; every instance runs in
	// this process.
	Token string
	// ClusterListen is the address workers join. Default "127.0.0.1:0".
	ClusterListen string
	// DataListen is the address of the coordinator's data-plane listener,
	// which workers dial to deliver results. Default: ClusterListen's
	// host, any port.
	DataListen string
	// DataDir, when set, holds the write-ahead log (wal.go): every change
	// is synced there before it is acknowledged, and Recover replays it
	// after a restart. Default: nothing persists.
	DataDir string
	// WALSegmentBytes is the size of the log's segments, the unit it is
	// trimmed in (tests). Default 64 MiB.
	WALSegmentBytes int64
	// CheckpointInterval is how often each query with instances on
	// workers is checkpointed (checkpointer.go). Default 10s; negative:
	// never.
	CheckpointInterval time.Duration
	// ReplayBufferLimit bounds the output a continuous query's source
	// stages keep for replay (backup.go), in bytes: past half of it the
	// query is checkpointed before its interval is up, and past all of
	// it ingest into the query's streams waits until a checkpoint trims
	// it (a rescale holds checkpoints; a repair pauses them). Default
	// 1 GiB.
	ReplayBufferLimit int64
	// RestartPointInterval is how often a restart point is taken
	// (restart.go; with DataDir and CheckpointStore). Default 1 minute.
	RestartPointInterval time.Duration
	// CheckpointStore is where complete checkpoints are written
	// (storage.Open: a directory, file:///dir, s3://bucket/prefix or
	// memory). Default: kept in memory only.
	CheckpointStore string
}

// Validate checks the configuration and fills in defaults.
func (c *Config) Validate() error {
	if c.Parallelism < 0 || c.Parallelism > 1024 {
		return errorf("22023", "parallelism must be from 1 to 1024")
	}
	if c.BatchRows == 0 {
		c.BatchRows = 8192
	}
	if c.BatchRows < 0 {
		return errorf("22023", "batch rows must be positive")
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = 10 * time.Second
	}
	if c.RestartPointInterval <= 0 {
		c.RestartPointInterval = time.Minute
	}
	if c.ReplayBufferLimit == 0 {
		c.ReplayBufferLimit = 1 << 30
	}
	if c.ReplayBufferLimit < 0 {
		return errorf("22023", "the replay buffer limit must be positive")
	}
	if c.ClusterListen == "" {
		c.ClusterListen = "127.0.0.1:0"
	}
	if c.DataListen == "" {
		host, _, err := net.SplitHostPort(c.ClusterListen)
		if err != nil {
			return errorf("22023", "invalid cluster listen address %q: %v", c.ClusterListen, err)
		}
		c.DataListen = net.JoinHostPort(host, "0")
	}
	return nil
}

// Coordinator is the engine behind the protocol server. It is safe for
// concurrent use by many sessions.
type Coordinator struct {
	cfg      Config
	catalog  *planner.Catalog
	planner  *planner.Planner
	done     chan struct{}        // closed by Close: background loops stop
	stopping atomic.Bool          // BeginShutdown was called
	reg      *control.Registry    // nil without a cluster
	net      *dataPlane           // nil without a cluster
	wal      *wal                 // nil without a data directory
	store    storage.BlobStore    // checkpoint store; nil: memory only
	scaling  scalingEvents        // SHOW SCALING EVENTS
	pool     WorkerPool           // where scale-outs get workers; nil: the live ones (under mu)
	loadMu   sync.Mutex           // LoadReports' baseline:
	loadBase map[loadKey]loadBase // per instance (query/version/stage/instance/incarnation)
	// ddlLog is every DDL statement applied, in order; round is the
	// restart point being taken; restore, during Recover, what the
	// queries of a restart point resume from (restart.go). Under mu.
	ddlLog []ddlEntry
	// restartRecords are the last restart points taken (SHOW RESTART
	// POINTS).
	restartRecords []restartRecord
	// writes counts the background goroutines of checkpoints (store
	// writes, restart points); closing is set when Close waits for them.
	writes  sync.WaitGroup
	closing bool
	round   *restartRound
	restore map[string]*restoring
	bg      sync.WaitGroup
	// layoutGen counts the rescales done; savedLayoutGen is the count
	// the newest restart point was begun after, so it has their ranges
	// (a restart resumes with those): a rescale asks for a restart point
	// (restart.go, awaitLayoutSaved).
	layoutGen, savedLayoutGen atomic.Uint64

	mu sync.Mutex
	// protected by mu
	streams    map[string]*streamRuntime
	tables     map[string]*tableData
	queries    map[string]*queryRuntime
	closed     bool
	nextRun    int
	recoveries []recoveryRecord
	// repairing holds the repairs under way, as SHOW RECOVERIES lists
	// them until they end (recovery.go).
	repairing map[*queryRuntime]*recoveryRecord

	partsMu sync.Mutex
	parts   map[string][]byte // snapshots arriving in parts (checkpointer.go)

	roles roleStore // roles and grants (roles.go)
}

// streamRuntime is a stream's ingest state: the event-time high-water mark
// that gives its watermark, its counters, and the pipelines reading it.
// ingestMu serialises ingestion into the stream, so every pipeline sees the
// rows in the same order and lateness depends only on that order.
type streamRuntime struct {
	def      *planner.Stream
	schema   *arrow.Schema
	ingestMu sync.Mutex
	// protected by ingestMu
	maxTime    int64     // largest event time seen, µs
	lastActive time.Time // when rows last came (or the stream was created)
	// idle: the readers were told the stream is idle (no rows for its
	// idle_timeout). Written under ingestMu, read without it.
	idle atomic.Bool
	// Written under ingestMu, read without it (SHOW STREAMS must answer
	// while ingestion waits on a back-pressured query).
	rowsIn, lateRows, watermark atomic.Int64
	// readersMu and ingestMu are both held to change readers; either
	// protects reading it.
	readersMu   sync.Mutex
	readers     []sourceReader
	blockedGone int64 // ingest wait (ns) of readers since removed; under readersMu
}

// setReaders replaces the stream's readers; called with ingestMu held.
func (s *streamRuntime) setReaders(rs []sourceReader) {
	s.readersMu.Lock()
	defer s.readersMu.Unlock()
	for _, old := range s.readers {
		kept := false
		for _, r := range rs {
			kept = kept || r == old
		}
		if !kept {
			s.blockedGone += old.q.pipeline().stages[old.stage][0].ingestWait()
		}
	}
	s.readers = rs
}

// tableData holds a table's rows.
type tableData struct {
	def    *planner.Table
	schema *arrow.Schema
	mu     sync.Mutex
	// protected by mu
	batches []arrow.RecordBatch
	rows    int64
	readers []sourceReader // continuous queries that look rows up in the table
}

// queryLock is a mutex (a channel of capacity 1) whose holder-to-be can
// give up waiting when its context ends.
type queryLock chan struct{}

func (l queryLock) Lock()   { l <- struct{}{} }
func (l queryLock) Unlock() { <-l }

// LockContext locks l, or returns ctx's error if ctx ends while it
// waits (a free lock is taken whatever ctx says).
func (l queryLock) LockContext(ctx context.Context) error {
	select {
	case l <- struct{}{}:
		return nil
	default:
	}
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// queryRuntime is a running continuous query.
type queryRuntime struct {
	def *planner.ContinuousQuery
	// pipe is the running pipeline; a recovery replaces it.
	pipe   atomic.Pointer[pipeline]
	result *resultStore
	ckpt   *checkpointer
	// recoverMu serialises repairs (recovery.go) and rescales (scale.go);
	// repairs counts them (protected by recoverMu).
	recoverMu queryLock
	repairs   int
	// crashLoop follows whether restored instances are lost again soon
	// (protected by recoverMu).
	crashLoop crashLoop
	// recovering is set from a recovery's start until its result caught
	// up; no checkpoint starts meanwhile.
	recovering atomic.Bool
	// lateRows counts rows of the source streams this query did not see
	// because they arrived behind the watermark.
	lateRows atomic.Int64
	// restored: resumed from a restart point (its state has what it had
	// read of other queries' results).
	restored bool
	// policy is the query's scaling settings (ALTER CONTINUOUS QUERY …
	// SET); nil: DefaultScalingPolicy.
	policy atomic.Pointer[ScalingPolicy]
}

// NewCoordinator returns an empty engine.
func NewCoordinator(cfg Config) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cat := planner.NewCatalog()
	c := &Coordinator{
		cfg: cfg, catalog: cat, planner: &planner.Planner{Catalog: cat},
		streams: map[string]*streamRuntime{}, tables: map[string]*tableData{}, queries: map[string]*queryRuntime{},
	}
	c.registerSystemTables()
	c.done = make(chan struct{})
	if cfg.DataDir != "" {
		w, err := openWAL(cfg.DataDir, cfg.WALSegmentBytes)
		if err != nil {
			return nil, err
		}
		c.wal = w
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		c.watchIdle(c.done)
	}()
	if cfg.Token == "" {
		return c, nil
	}
	fail := func(err error) (*Coordinator, error) {
		close(c.done)
		c.bg.Wait()
		c.wal.close()
		return nil, err
	}
	store, err := openCheckpointStore(cfg.CheckpointStore)
	if err != nil {
		return fail(err)
	}
	c.store = store
	if _, inMemory := store.(*storage.Memory); inMemory && c.wal != nil {
		cfg.Logger.Warn().Msg("the checkpoint store is memory, which does not survive a restart: no restart points are taken, so the write-ahead log is never trimmed and a restart replays it whole")
	}
	// A killed worker is noticed at once (its control connection closes);
	// silence is given 10 heartbeat intervals, as a worker busy with a
	// large checkpoint or a long garbage collection may be slow to speak.
	reg, err := control.NewRegistry(control.RegistryConfig{Listen: cfg.ClusterListen, Token: cfg.Token, Logger: cfg.Logger,
		OnNotice: c.onNotice, DeadAfter: 10})
	if err != nil {
		return fail(err)
	}
	dp, err := newDataPlane(cfg.DataListen, cfg.Token, cfg.Logger, c.receiveUpload)
	if err != nil {
		reg.Close()
		return fail(err)
	}
	c.reg, c.net = reg, dp
	if cfg.CheckpointInterval > 0 {
		c.bg.Add(1)
		go func() {
			defer c.bg.Done()
			c.watchCheckpoints(c.done, cfg.CheckpointInterval)
		}()
	}
	c.bg.Add(2)
	go func() {
		defer c.bg.Done()
		if err := reg.Serve(context.Background()); err != nil {
			cfg.Logger.Error().Err(err).Msg("worker registry stopped")
		}
	}()
	go func() {
		defer c.bg.Done()
		c.watchWorkers()
	}()
	return c, nil
}

// ClusterAddr is the address workers join (spate worker --join), or ""
// without a cluster.
func (c *Coordinator) ClusterAddr() string {
	if c.reg == nil {
		return ""
	}
	return c.reg.Addr().String()
}

// WaitForWorkers waits until n workers are alive, or ctx ends.
func (c *Coordinator) WaitForWorkers(ctx context.Context, n int) error {
	for len(c.liveWorkers()) < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d workers joined: %w", len(c.liveWorkers()), n, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// NewSession implements Engine.
func (c *Coordinator) NewSession(ctx context.Context, user, database string) (Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errorf("57P01", "the server is shutting down")
	}
	r, err := c.login(user)
	if err != nil {
		return nil, err
	}
	s := newSession(c, user, database)
	s.settings["is_superuser"] = map[bool]string{true: "on", false: "off"}[r.superuser]
	return s, nil
}

// BeginShutdown tells the coordinator the cluster is going down: workers
// that leave from now on are not recovered from.
func (c *Coordinator) BeginShutdown() { c.stopping.Store(true) }

// Close stops every pipeline. Idempotent.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	queries := c.queries
	c.queries = map[string]*queryRuntime{}
	c.mu.Unlock()
	for _, q := range queries {
		c.undeploy(q.pipeline(), nil)
		q.result.close(errorf("57P01", "the server is shutting down"))
	}
	close(c.done)
	if c.reg != nil {
		c.reg.Close()
		c.net.close()
	}
	c.bg.Wait()
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.writes.Wait()
	if err := c.wal.close(); err != nil {
		c.cfg.Logger.Error().Err(err).Msg("closing the write-ahead log")
	}
	for _, t := range c.tables {
		t.mu.Lock()
		for _, b := range t.batches {
			b.Release()
		}
		t.batches = nil
		t.mu.Unlock()
	}
}

func (c *Coordinator) addStream(s *planner.Stream) error {
	if err := c.catalog.Add(s); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rt := &streamRuntime{def: s, schema: RelationSchema(s.Columns), maxTime: math.MinInt64, lastActive: time.Now()}
	rt.watermark.Store(math.MinInt64)
	c.streams[s.Name] = rt
	return nil
}

func (c *Coordinator) addTable(t *planner.Table) error {
	if err := c.catalog.Add(t); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tables[t.Name] = &tableData{def: t, schema: RelationSchema(t.Columns)}
	return nil
}

// addQuery registers and starts a continuous query. It reads rows
// ingested into its streams from now on, the current contents of the
// tables it looks up, and the results its source queries emit from now on
// (the current rows of an updating one).
func (c *Coordinator) addQuery(q *planner.ContinuousQuery) error {
	qr := &queryRuntime{def: q, result: newResultStore(q), ckpt: newCheckpointer(q.Name), recoverMu: make(queryLock, 1)}
	if c.cfg.Autoscale {
		policy := DefaultScalingPolicy
		policy.Autoscale = true
		qr.policy.Store(&policy)
	}
	result := qr.result
	p, err := c.deploy(qr)
	if err != nil {
		return err
	}
	qr.setPipeline(p)
	if err := c.catalog.Add(q); err != nil {
		c.undeploy(p, nil)
		result.close(io.EOF) // nobody subscribed yet
		return err
	}
	c.mu.Lock()
	c.queries[q.Name] = qr
	if p.failure() != nil { // before it was registered: its release found nothing to do
		go c.releaseFailed(qr, p)
	}
	c.mu.Unlock()
	for _, st := range q.Plan.Stages {
		if st.Source == nil {
			continue
		}
		if err := c.connect(qr, st); err != nil {
			_, _ = c.drop(q.Name, planner.RelContinuousQuery, true)
			return err
		}
	}
	// What connecting fed (a table's rows, another query's current
	// result) is through before the statement returns, so rows ingested
	// after it cannot overtake it in a lookup join.
	for _, st := range q.Plan.Stages {
		if st.Source == nil {
			continue
		}
		if err := p.flush(context.Background(), st.ID); err != nil && p.failure() == nil {
			return err
		}
	}
	return nil
}

// connect attaches a source stage of a new query to the relation it reads.
func (c *Coordinator) connect(qr *queryRuntime, st *planner.Stage) error {
	rd := sourceReader{q: qr, stage: st.ID}
	name := st.Source.Relation
	c.mu.Lock()
	s, t, up := c.streams[name], c.tables[name], c.queries[name]
	c.mu.Unlock()
	switch {
	case s != nil:
		s.ingestMu.Lock()
		defer s.ingestMu.Unlock()
		s.setReaders(append(s.readers[:len(s.readers):len(s.readers)], rd))
		if wm := s.watermark.Load(); wm != math.MinInt64 {
			// Start the query at the stream's current watermark.
			if err := rd.feed(nil, wm, true); err != nil {
				return err
			}
		}
		if s.idle.Load() {
			return rd.q.pipeline().markIdle(rd.stage)
		}
		return nil
	case t != nil:
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, b := range t.batches {
			if err := feedChange(rd, b, "+"); err != nil {
				return err
			}
		}
		t.readers = append(t.readers, rd)
		// A table holds no watermark back.
		return rd.feed(nil, math.MaxInt64, true)
	case up != nil:
		return up.result.addReader(rd)
	}
	return errorf(planner.CodeUndefinedTable, "relation %q does not exist", name)
}

// disconnect detaches every source stage of q from what it reads.
func (c *Coordinator) disconnect(q *queryRuntime) {
	streams := c.streamList()
	c.mu.Lock()
	tables := make([]*tableData, 0, len(c.tables))
	for _, t := range c.tables {
		tables = append(tables, t)
	}
	queries := make([]*queryRuntime, 0, len(c.queries))
	for _, o := range c.queries {
		queries = append(queries, o)
	}
	c.mu.Unlock()
	without := func(rs []sourceReader) []sourceReader {
		kept := rs[:0]
		for _, r := range rs {
			if r.q != q {
				kept = append(kept, r)
			}
		}
		return kept
	}
	for _, s := range streams {
		s.ingestMu.Lock()
		s.setReaders(without(append([]sourceReader(nil), s.readers...)))
		s.ingestMu.Unlock()
	}
	for _, t := range tables {
		t.mu.Lock()
		t.readers = without(t.readers)
		t.mu.Unlock()
	}
	for _, o := range queries {
		o.result.removeReader(q)
	}
}

// drop removes a relation and the continuous queries that depend on it.
func (c *Coordinator) drop(name string, kind planner.RelationKind, cascade bool) ([]string, error) {
	dropped, err := c.catalog.Remove(name, kind, cascade)
	if err != nil {
		return nil, err
	}
	c.roles.forgetObjects(dropped)
	// Dependents first, so no query is fed by a stopped one.
	for _, n := range dropped {
		c.mu.Lock()
		q := c.queries[n]
		c.mu.Unlock()
		if q != nil {
			c.disconnect(q)
		}
	}
	for _, n := range dropped {
		c.mu.Lock()
		q := c.queries[n]
		delete(c.queries, n)
		delete(c.streams, n)
		t := c.tables[n]
		delete(c.tables, n)
		c.mu.Unlock()
		if q != nil {
			c.undeploy(q.pipeline(), nil)
			q.result.close(errorf("42P01", "continuous query %q was dropped", n))
		}
		if t != nil {
			t.mu.Lock()
			for _, b := range t.batches {
				b.Release()
			}
			t.batches = nil
			t.mu.Unlock()
		}
	}
	return dropped, nil
}

// ingestStream appends a batch (full stream schema, owned by the caller) to
// a stream: rows behind the watermark are counted as late and left out,
// the rest go to every continuous query reading the stream, followed by
// the advanced watermark.
func (c *Coordinator) ingestStream(ctx context.Context, s *streamRuntime, rec arrow.RecordBatch) error {
	if err := checkRelationSchema("stream", s.def.Name, s.schema, rec); err != nil {
		return err
	}
	if err := c.waitForReplayRoom(ctx, s); err != nil {
		return err
	}
	if c.wal != nil {
		c.wal.order.RLock()
		defer c.wal.order.RUnlock()
	}
	s.ingestMu.Lock()
	defer s.ingestMu.Unlock()
	// The log keeps the batch as it came: replay decides lateness again,
	// from the same order.
	if err := c.wal.appendDurable(walStream, s.def.Name, rec); err != nil {
		return err
	}
	s.rowsIn.Add(rec.NumRows())
	s.lastActive = time.Now()
	s.idle.Store(false) // the watermark fed below wakes the readers
	kept := rec
	if et := s.def.EventTime; et >= 0 {
		keep, late := s.lateness(rec.Column(et))
		s.lateRows.Add(late)
		if late > 0 {
			filtered, err := filterRecord(rec, keep)
			if err != nil {
				return err
			}
			defer filtered.Release()
			kept = filtered
			counted := map[*queryRuntime]bool{} // a self-join reads it twice
			for _, r := range s.readers {
				if !counted[r.q] {
					counted[r.q] = true
					r.q.lateRows.Add(late)
				}
			}
		}
		if s.maxTime != math.MinInt64 {
			s.watermark.Store(s.maxTime - s.def.WatermarkDelay)
		}
	}
	wm := s.watermark.Load()
	for _, r := range s.readers {
		if err := r.feed(kept, wm, true); err != nil {
			return err
		}
	}
	return nil
}

// checkRelationSchema refuses rows whose columns are not the
// relation's: made for a relation of the same name that was dropped
// (and created again) while the statement ran.
func checkRelationSchema(kind, name string, schema *arrow.Schema, rec arrow.RecordBatch) error {
	ok := rec.NumCols() == int64(schema.NumFields())
	for i := 0; ok && i < schema.NumFields(); i++ {
		ok = arrow.TypeEqual(rec.Column(i).DataType(), schema.Field(i).Type)
	}
	if !ok {
		return errorf(planner.CodeUndefinedTable, "%s %q was dropped and created again while the statement ran", kind, name)
	}
	return nil
}

// waitForReplayRoom waits, before a batch goes into the stream's
// queries, while one of them keeps more output for replay here than
// Config.ReplayBufferLimit: kept output is trimmed only by a complete
// checkpoint, and while a rescale holds the query's checkpoints or a
// repair waits for a worker to join it would otherwise grow with every
// batch. The wait is back-pressure (SHOW STREAMS' blocked_seconds). The
// log replayed at a restart does not wait.
func (c *Coordinator) waitForReplayRoom(ctx context.Context, s *streamRuntime) error {
	if c.wal != nil && !c.wal.active() { // replaying the log
		return nil
	}
	s.readersMu.Lock()
	readers := slices.Clone(s.readers)
	s.readersMu.Unlock()
	for _, r := range readers {
		if err := c.waitForReaderRoom(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// waitForReaderRoom is waitForReplayRoom for one reading query.
func (c *Coordinator) waitForReaderRoom(ctx context.Context, r sourceReader) error {
	var p *pipeline
	var end func() time.Duration
	defer func() {
		if end != nil {
			p.warnBlocked(r.stage, end(), "ingest waited: the continuous query kept more output for replay than --replay-buffer-mb until a checkpoint trimmed it (a rescale or a repair was under way)")
		}
	}()
	for {
		p = r.q.pipeline()
		// A query whose repair waits for a worker to join does not
		// hold ingest up (awaitLiveWorker fails it past the limit).
		if !p.placement().Buffered || p.failure() != nil || p.stalled.Load() {
			return nil
		}
		if kept, _ := p.keptLocal(); kept <= c.cfg.ReplayBufferLimit {
			return nil
		}
		if end == nil {
			end = p.stages[r.stage][0].block()
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
}

// watchIdle marks streams idle that have had no rows for their
// idle_timeout: their readers leave them out of watermark minimums (a
// join then does not wait for a stream that stopped), until rows come.
func (c *Coordinator) watchIdle(done <-chan struct{}) {
	every(done, 250*time.Millisecond, func() {
		for _, s := range c.streamList() {
			if s.def.IdleTimeout <= 0 || !s.ingestMu.TryLock() { // busy: not idle
				continue
			}
			if !s.idle.Load() && time.Since(s.lastActive) >= time.Duration(s.def.IdleTimeout)*time.Microsecond {
				s.idle.Store(true)
				for _, r := range s.readers {
					if r.q.pipeline().failure() == nil {
						_ = r.q.pipeline().markIdle(r.stage)
					}
				}
			}
			s.ingestMu.Unlock()
		}
	})
}

// streamList is a snapshot of the streams.
func (c *Coordinator) streamList() []*streamRuntime {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*streamRuntime, 0, len(c.streams))
	for _, s := range c.streams {
		out = append(out, s)
	}
	return out
}

// every calls fn every interval until done is closed.
func every(done <-chan struct{}, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			fn()
		}
	}
}

// blockedSeconds is the time ingestion into the stream waited for its
// continuous queries to take rows (back-pressure), in total, including
// queries dropped since.
func (s *streamRuntime) blockedSeconds() float64 {
	s.readersMu.Lock()
	defer s.readersMu.Unlock()
	ns := s.blockedGone
	for _, r := range s.readers {
		ns += r.q.pipeline().stages[r.stage][0].ingestWait()
	}
	return float64(ns) / 1e9
}

// eventTimeBound is the largest event time (µs from 1970, either way:
// some 146,000 years) a row may have; past it (as 'infinity') the row is
// late, as its window's end would not fit in 64 bits.
const eventTimeBound = 1 << 62

// lateness marks which rows to keep: a row is late when its event time is
// NULL, beyond eventTimeBound, or earlier than the watermark at the moment it arrives (the largest
// event time of the rows before it, minus the watermark delay). This makes
// lateness a property of the row order alone, not of batch boundaries.
func (s *streamRuntime) lateness(col arrow.Array) ([]bool, int64) {
	unit, delay := s.def.TimeUnit, s.def.WatermarkDelay
	ts := exec.Int64s(col)
	var keep []bool
	var late int64
	maxT := s.maxTime
	bound := eventTimeBound / unit
	for i, v := range ts {
		if col.IsNull(i) || v > bound || v < -bound || (maxT != math.MinInt64 && v*unit < maxT-delay) {
			if keep == nil {
				keep = make([]bool, len(ts))
				for j := 0; j < i; j++ {
					keep[j] = true
				}
			}
			late++
			continue
		}
		if keep != nil {
			keep[i] = true
		}
		if t := v * unit; t > maxT {
			maxT = t
		}
	}
	s.maxTime = maxT
	return keep, late
}

// filterRecord keeps the rows where keep is true.
func filterRecord(rec arrow.RecordBatch, keep []bool) (arrow.RecordBatch, error) {
	b := array.NewBooleanBuilder(memory.DefaultAllocator)
	b.AppendValues(keep, nil)
	mask := b.NewArray()
	b.Release()
	defer mask.Release()
	out, err := compute.FilterRecordBatch(context.Background(), rec, mask, compute.DefaultFilterOptions())
	if err != nil {
		return nil, err
	}
	return out, nil
}

// projectColumns narrows a relation's batch to the columns a source stage
// reads (zero copy); a changelog keeps its leading "op" column. The caller
// releases the result.
func projectColumns(rec arrow.RecordBatch, st *planner.Stage, schema *arrow.Schema) arrow.RecordBatch {
	idx := st.Source.Indexes
	var cols []arrow.Array
	shift := 0
	if st.Source.Changelog {
		cols, shift = append(cols, rec.Column(0)), 1
	}
	for _, j := range idx {
		cols = append(cols, rec.Column(j+shift))
	}
	return array.NewRecordBatch(schema, cols, rec.NumRows())
}

// flushStream waits until every pipeline reading the stream has processed
// everything ingested so far.
func (c *Coordinator) flushStream(ctx context.Context, s *streamRuntime) error {
	s.ingestMu.Lock()
	readers := append([]sourceReader(nil), s.readers...)
	s.ingestMu.Unlock()
	return flushReaders(ctx, readers)
}

// flushReaders waits until each reader's query has processed what was
// sent to it, and then, transitively, the queries that read its result.
func flushReaders(ctx context.Context, readers []sourceReader) error {
	for _, r := range readers {
		if ok, err := r.flush(ctx); err != nil {
			return err
		} else if !ok {
			continue
		}
		r.q.result.mu.Lock()
		next := append([]sourceReader(nil), r.q.result.readers...)
		r.q.result.mu.Unlock()
		if err := flushReaders(ctx, next); err != nil {
			return err
		}
	}
	return nil
}

// flush waits until what the reader's query was fed so far has reached
// its result. ok is false when the query failed (its status says why). A
// repair meanwhile makes the flush send another barrier behind the
// replay.
func (r sourceReader) flush(ctx context.Context) (ok bool, err error) {
	for {
		p := r.q.pipeline()
		if p.failure() != nil {
			return false, nil
		}
		err = p.flush(ctx, r.stage)
		switch {
		case err == nil:
			return true, nil
		case ctx.Err() != nil:
			return false, err
		case p.failure() != nil:
			return false, nil
		case p.ctx.Err() != nil && r.q.pipeline() != p:
			continue // replaced: the new pipeline has what this one had
		case p.ctx.Err() != nil:
			// Stopped: the query was dropped (or the server stops);
			// the rows are logged, and nothing waits for them here.
			return false, nil
		}
		return false, err
	}
}

// appendTable adds rows to a table and passes them to the queries that
// look rows up in it. rec is owned by the caller.
func (c *Coordinator) appendTable(t *tableData, rec arrow.RecordBatch) error {
	if err := checkRelationSchema("table", t.def.Name, t.schema, rec); err != nil {
		return err
	}
	if c.wal != nil {
		c.wal.order.RLock()
		defer c.wal.order.RUnlock()
	}
	t.mu.Lock()
	if err := c.wal.appendDurable(walTable, t.def.Name, rec); err != nil {
		t.mu.Unlock()
		return err
	}
	rec.Retain()
	t.batches = append(t.batches, rec)
	t.rows += rec.NumRows()
	readers := append([]sourceReader(nil), t.readers...)
	var err error
	for _, r := range readers {
		if err = feedChange(r, rec, "+"); err != nil {
			break
		}
	}
	t.mu.Unlock()
	if err != nil {
		return err
	}
	return flushReaders(context.Background(), readers)
}

// Ingest appends a batch with the relation's full schema (owned by the
// caller) to a stream or table — the programmatic equivalent of COPY. With
// wait, it returns only after the stream's continuous queries have
// processed the rows.
func (c *Coordinator) Ingest(ctx context.Context, relation string, rec arrow.RecordBatch, wait bool) error {
	if wait {
		return c.ingest(ctx, relation, rec)
	}
	c.mu.Lock()
	s := c.streams[relation]
	c.mu.Unlock()
	if s == nil {
		return c.ingest(ctx, relation, rec)
	}
	return c.ingestStream(ctx, s, rec)
}

// CloseWindows declares a stream finished: its watermark moves to the end
// of time, so every open window of the queries reading it closes and is
// emitted. Rows ingested afterwards are late. It returns when the results
// are in.
func (c *Coordinator) CloseWindows(ctx context.Context, stream string) error {
	c.mu.Lock()
	s := c.streams[stream]
	c.mu.Unlock()
	if s == nil {
		return errorf(planner.CodeUndefinedTable, "stream %q does not exist", stream)
	}
	if c.wal != nil {
		c.wal.order.RLock()
		defer c.wal.order.RUnlock()
	}
	s.ingestMu.Lock()
	if err := c.wal.appendStatement(walCloseWinds, stream, "", 0, nil); err != nil {
		s.ingestMu.Unlock()
		return err
	}
	s.maxTime = math.MaxInt64
	s.watermark.Store(math.MaxInt64)
	for _, r := range s.readers {
		if err := r.feed(nil, math.MaxInt64, true); err != nil {
			s.ingestMu.Unlock()
			return err
		}
	}
	s.ingestMu.Unlock()
	if err := c.wal.sync(); err != nil {
		return err
	}
	return c.flushStream(ctx, s)
}

// feedChange sends table rows to a reader as a changelog ("+" inserts, "-"
// deletes).
func feedChange(r sourceReader, rec arrow.RecordBatch, op string) error {
	ch, err := addOpColumn(rec, op)
	if err != nil {
		return err
	}
	defer ch.Release()
	return r.feed(ch, 0, false)
}

// modifyTable runs a planned UPDATE or DELETE: rows matching the WHERE
// clause are removed (DELETE) or replaced by their new values (UPDATE).
// Queries looking rows up in the table see the change as "-" old rows and
// "+" new rows. It returns the number of rows changed.
func (c *Coordinator) modifyTable(ctx context.Context, sql string, plan *planner.ModifyPlan, params []Param) (int64, error) {
	c.mu.Lock()
	t := c.tables[plan.Table]
	c.mu.Unlock()
	if t == nil {
		return 0, errorf(planner.CodeUndefinedTable, "relation %q does not exist", plan.Table)
	}
	b := exprBuilder{params: params}
	schema := t.schema
	var where exec.Expr = exec.Literal{Type: arrow.FixedWidthTypes.Boolean, Value: true}
	if plan.Where != nil {
		var err error
		if where, err = b.expr(plan.Where); err != nil {
			return 0, err
		}
	}
	identity := make([]exec.Expr, len(plan.Columns))
	names := make([]string, len(plan.Columns))
	for i, col := range plan.Columns {
		identity[i] = exec.ColRef{Index: i, Type: ArrowType(col.Type)}
		names[i] = col.Name
	}
	set := identity
	if plan.Set != nil {
		set = make([]exec.Expr, len(plan.Set))
		for i, e := range plan.Set {
			x, err := b.expr(e)
			if err != nil {
				return 0, err
			}
			set[i] = x
		}
	}
	notMatched := exec.Call{Fn: "is_not_true", Args: []exec.Expr{where}, Type: arrow.FixedWidthTypes.Boolean}
	run := func(filter exec.Expr, exprs []exec.Expr, in arrow.RecordBatch, out *[]arrow.RecordBatch) error {
		calc, err := exec.NewCalc(schema, filter, exprs, names)
		if err != nil {
			return err
		}
		defer calc.Close()
		return calc.Push(in, func(rec arrow.RecordBatch) error {
			// Keep the table's own schema (with its metadata).
			cols := make([]arrow.Array, rec.NumCols())
			copy(cols, rec.Columns())
			*out = append(*out, array.NewRecordBatch(schema, cols, rec.NumRows()))
			return nil
		})
	}
	if c.wal != nil {
		c.wal.order.RLock()
		defer c.wal.order.RUnlock()
	}
	t.mu.Lock()
	var kept, removed, added []arrow.RecordBatch
	for _, batch := range t.batches {
		err := run(notMatched, identity, batch, &kept)
		if err == nil {
			err = run(where, identity, batch, &removed)
		}
		if err == nil && plan.Set != nil {
			err = run(where, set, batch, &added)
		}
		if err != nil {
			t.mu.Unlock()
			releaseBatches(kept)
			releaseBatches(removed)
			releaseBatches(added)
			return 0, err
		}
	}
	// Logged once it is known to succeed, before anything changes.
	if err := c.wal.appendStatement(walModify, plan.Table, sql, 0, params); err != nil {
		t.mu.Unlock()
		releaseBatches(kept)
		releaseBatches(removed)
		releaseBatches(added)
		return 0, err
	}
	var changed int64
	for _, x := range removed {
		changed += x.NumRows()
	}
	releaseBatches(t.batches)
	t.batches = append(kept, added...)
	t.rows = 0
	for _, x := range t.batches {
		t.rows += x.NumRows()
	}
	readers := append([]sourceReader(nil), t.readers...)
	var err error
	for _, r := range readers {
		for _, x := range removed {
			if err == nil {
				err = feedChange(r, x, "-")
			}
		}
		for _, x := range added {
			if err == nil {
				err = feedChange(r, x, "+")
			}
		}
	}
	t.mu.Unlock()
	releaseBatches(removed)
	if err == nil {
		err = c.wal.sync()
	}
	if err != nil {
		return changed, err
	}
	return changed, flushReaders(ctx, readers)
}

// ddl applies a DDL statement with the log's order held exclusively and
// logs it (with the parallelism a continuous query was planned with)
// once it succeeded, durably.
func (c *Coordinator) ddl(sql string, parallelism int, apply func() error) error {
	return c.ddlDropping(sql, parallelism, func() ([]string, error) { return nil, apply() })
}

// ddlDropping is ddl for a DROP, whose apply returns the relations it
// dropped: the restart points' DDL list then leaves out their CREATEs and
// the DROP when it can (compactDDLLocked), so that a restart does not
// create and drop again every query ever created.
func (c *Coordinator) ddlDropping(sql string, parallelism int, apply func() ([]string, error)) error {
	if c.wal == nil {
		_, err := apply()
		return err
	}
	c.wal.order.Lock()
	defer c.wal.order.Unlock()
	dropped, err := apply()
	if err != nil {
		return err
	}
	c.mu.Lock()
	if len(dropped) == 0 || !c.compactDDLLocked(dropped) {
		c.ddlLog = append(c.ddlLog, ddlEntry{SQL: sql, Parallelism: parallelism})
	}
	c.mu.Unlock()
	if err := c.wal.appendStatement(walDDL, "", sql, parallelism, nil); err != nil {
		return err
	}
	return c.wal.sync()
}

// background runs fn on a goroutine that Close waits for; not once Close
// has begun waiting.
func (c *Coordinator) background(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.writes.Add(1)
	go func() {
		defer c.writes.Done()
		fn()
	}()
}

// pipeline is the query's running pipeline.
func (qr *queryRuntime) pipeline() *pipeline { return qr.pipe.Load() }

// setPipeline installs a (new) pipeline.
func (qr *queryRuntime) setPipeline(p *pipeline) { qr.pipe.Store(p) }
