package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/elastic"
	"github.com/spatedb/spate/pgwire"
)

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	pgListen := fs.String("pg-listen", "127.0.0.1:5433", "address of the PostgreSQL-protocol listener")
	var sec securityFlags
	sec.register(fs)
	parallelism := fs.Int("parallelism", 0, "default number of instances of each partitioned stage (0: one per live worker)")
	workers := fs.Int("workers", 2, "worker processes of this binary to start on loopback; continuous queries run their instances on the workers (0: every instance runs in this process, unless workers join by hand)")
	clusterListen := fs.String("cluster-listen", "127.0.0.1:0", "address workers join (spate worker --join)")
	clusterToken := fs.String("cluster-token", "", "shared secret of coordinator and workers (default: $SPATE_CLUSTER_TOKEN, else the one in <data-dir>/cluster-token, created on first start)")
	dataDir := fs.String("data-dir", "./spate-data", "directory for the server's files: the write-ahead log (every acknowledged change, replayed on restart) and the cluster token")
	ckptInterval := fs.Duration("checkpoint-interval", 10*time.Second, "how often queries running on workers are checkpointed (0: never)")
	restartInterval := fs.Duration("restart-point-interval", time.Minute, "how often a restart point (every query checkpointed at one position of the write-ahead log, which is trimmed behind it) goes to the checkpoint store")
	ckptStore := fs.String("checkpoint-store", "", "where restart points (every query checkpointed, the tables and the catalog, every --restart-point-interval) are written: a directory, file:///dir, s3://bucket/prefix?endpoint=…&path_style=true, or memory (no restart points: the log is never trimmed) (default: <data-dir>/checkpoints)")
	replayBufferMB := fs.Int64("replay-buffer-mb", 1024, "output each continuous query's sources keep for replay until a checkpoint covers it, in MiB: past half of it the query is checkpointed before its interval is up, past all of it ingest into its streams waits (as while a rescale holds its checkpoints)")
	batchRows := fs.Int("copy-batch-rows", 8192, "rows COPY collects into one Arrow batch before passing them on (a partial batch goes after 50 ms)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	poolSize := fs.Int("pool-size", 0, "warm workers kept for scale-outs (started by --provider; a scale-out takes one at once)")
	provider := fs.String("provider", "local", "where pool workers run: local (spate worker processes) or ec2")
	poolIdle := fs.Duration("pool-idle-timeout", 5*time.Minute, "warm workers beyond --pool-size idle this long are stopped")
	autoscale := fs.Bool("autoscale", false, "scale every continuous query's partitioned stages out and in by their load, unless ALTER CONTINUOUS QUERY … SET (autoscale = off) says otherwise for one (without it: only queries SET (autoscale = on))")
	autoscaleEvery := fs.Duration("autoscale-interval", time.Second, "how often the elastic controller reads each instance's load (queries with autoscale on)")
	scaleCoolDown := fs.Duration("scale-cooldown", 30*time.Second, "least time between two scaling decisions for one stage")
	var ec2cfg elastic.EC2Config
	ec2Types, ec2Groups := "", ""
	fs.StringVar(&ec2cfg.AMI, "ec2-ami", "", "ec2 provider: an image with spate installed")
	fs.StringVar(&ec2Types, "ec2-instance-types", "c6i.large", "ec2 provider: instance types, tried in order when one has no capacity")
	fs.StringVar(&ec2cfg.SubnetID, "ec2-subnet", "", "ec2 provider: subnet ID")
	fs.StringVar(&ec2Groups, "ec2-security-groups", "", "ec2 provider: security group IDs, comma-separated")
	fs.StringVar(&ec2cfg.IAMInstanceProfile, "ec2-iam-profile", "", "ec2 provider: IAM instance profile name")
	fs.StringVar(&ec2cfg.Region, "ec2-region", "", "ec2 provider: region (default $AWS_REGION, else us-east-1)")
	fs.StringVar(&ec2cfg.Endpoint, "ec2-endpoint", "", "ec2 provider: EC2 API endpoint override")
	fs.StringVar(&ec2cfg.Join, "ec2-join", "", "ec2 provider: the coordinator's cluster address as the VMs reach it, host:port (default --cluster-listen, which must then not be loopback or port 0)")
	fs.StringVar(&ec2cfg.Cluster, "ec2-cluster", "", "ec2 provider: the cluster's name, tagged on its VMs (spate:cluster=<name>) so that it lists and stops only its own (default spate-<12 hex digits of the cluster token's SHA-256>)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := sec.load(); err != nil {
		return err
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	token := *clusterToken
	if token == "" {
		token = os.Getenv("SPATE_CLUSTER_TOKEN")
	}
	if token == "" {
		if token, err = dataDirToken(*dataDir); err != nil {
			return err
		}
	}
	if err := checkPoolFlags(fs, *poolSize, *provider, *poolIdle, *autoscaleEvery, *scaleCoolDown, ec2cfg, *clusterListen, log); err != nil {
		return err
	}
	if *workers < 0 {
		return fmt.Errorf("--workers must not be negative (0: every instance runs in this process)")
	}
	if *ckptInterval < 0 {
		return fmt.Errorf("--checkpoint-interval must not be negative (0: never)")
	}
	if *restartInterval <= 0 {
		return fmt.Errorf("--restart-point-interval must be positive")
	}
	if *batchRows <= 0 {
		return fmt.Errorf("--copy-batch-rows must be positive")
	}
	if *replayBufferMB <= 0 {
		return fmt.Errorf("--replay-buffer-mb must be positive")
	}
	if *ckptStore == "" {
		*ckptStore = filepath.Join(*dataDir, "checkpoints")
	}
	interval := *ckptInterval
	if interval == 0 {
		interval = -1 // never
	}
	coord, stopCluster, err := startLocalCluster(ctx, cluster.Config{Parallelism: *parallelism, Autoscale: *autoscale, BatchRows: *batchRows, Logger: log, Token: token, ClusterListen: *clusterListen,
		DataDir: *dataDir, CheckpointInterval: interval, RestartPointInterval: *restartInterval, CheckpointStore: *ckptStore,
		ReplayBufferLimit: *replayBufferMB << 20}, *workers, *logLevel)
	if err != nil {
		return err
	}
	defer stopCluster()
	// Clients are served from the start: while the log is replayed they
	// are told so (57P03), rather than refused a connection.
	srv, err := pgwire.NewServer(sec.apply(pgwire.Config{Listen: *pgListen, Logger: log}, log), coord)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", *pgListen)
	if err != nil {
		return fmt.Errorf("listening on --pg-listen %s: %w", *pgListen, err)
	}
	srv.SetStartingUp(true)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	rs, err := coord.Recover(ctx)
	if err != nil {
		return fmt.Errorf("recovering from %s: %w", *dataDir, err)
	}
	if err := sec.applyPassword(coord, log); err != nil {
		return err
	}
	if rs.Entries > 0 {
		log.Info().Int64("statements", rs.Statements).Int64("rows", rs.Rows).Stringer("took", rs.Elapsed).Str("data_dir", *dataDir).
			Msg("recovered the previous run from the write-ahead log")
	}

	if *poolSize > 0 {
		var prov elastic.Provider
		switch *provider {
		case "local":
			prov, err = elastic.NewLocal(elastic.LocalConfig{Join: coord.ClusterAddr(), Token: token})
		case "ec2":
			ec2cfg.Token = token
			if ec2cfg.Cluster == "" {
				ec2cfg.Cluster = clusterName(token)
			}
			if ec2cfg.Join == "" {
				ec2cfg.Join = coord.ClusterAddr()
			}
			ec2cfg.InstanceTypes = strings.Split(ec2Types, ",")
			if ec2Groups != "" {
				ec2cfg.SecurityGroupIDs = strings.Split(ec2Groups, ",")
			}
			prov, err = elastic.NewEC2(ctx, ec2cfg)
		}
		if err != nil {
			return err
		}
		spares := &elastic.Spares{Pool: elastic.NewPool(prov, *poolSize, *poolIdle), Coordinator: coord, OnError: func(err error) {
			log.Error().Err(err).Str("provider", prov.Name()).Msg("starting the pool's warm workers (tried again every 5 s)")
		}}
		coord.SetWorkerPool(spares)
		go spares.Keep(ctx, 5*time.Second)
		defer func() {
			coord.BeginShutdown() // the pool's workers stopping is no failure to repair
			stopPool(prov, log)
		}()
		log.Info().Int("pool_size", *poolSize).Str("provider", prov.Name()).Msg("keeping warm workers for scale-outs")
	}
	go elastic.Drive(ctx, elastic.ForCoordinator(coord), *autoscaleEvery, elastic.Config{CoolDown: *scaleCoolDown}, func(d elastic.Decision, err error) {
		log.Warn().Err(err).Str("query", d.Query).Int("stage", d.Stage).Str("decision", string(d.Kind)).Msg("scaling")
	})

	srv.SetStartingUp(false)
	log.Info().Str("listen", *pgListen).Str("cluster", coord.ClusterAddr()).Int("workers", *workers).Str("version", version).
		Msgf("spate serving; connect with: psql \"host=127.0.0.1 port=%s user=spate dbname=spate\"", portOf(*pgListen))
	err = <-served
	srv.Close()
	log.Info().Msg("spate stopped")
	return err
}

// clusterName is the default name the ec2 provider tags a cluster's VMs
// with: one per cluster token, which does not give the token away.
func clusterName(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "spate-" + hex.EncodeToString(sum[:6])
}

// checkPoolFlags refuses the pool's and the controller's flags that
// cannot work, and warns of those that are given but take no effect.
func checkPoolFlags(fs *flag.FlagSet, poolSize int, provider string, idle, autoscaleEvery, coolDown time.Duration, ec2cfg elastic.EC2Config, clusterListen string, log zerolog.Logger) error {
	switch {
	case poolSize < 0:
		return fmt.Errorf("--pool-size must not be negative")
	case provider != "local" && provider != "ec2":
		return fmt.Errorf("--provider %q: use local or ec2", provider)
	case idle <= 0:
		return fmt.Errorf("--pool-idle-timeout must be positive")
	case autoscaleEvery <= 0:
		return fmt.Errorf("--autoscale-interval must be positive")
	case coolDown < 0:
		return fmt.Errorf("--scale-cooldown must not be negative")
	}
	var ec2Flags []string
	fs.Visit(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "ec2-") {
			ec2Flags = append(ec2Flags, "--"+f.Name)
		}
	})
	if poolSize == 0 {
		if provider != "local" || len(ec2Flags) > 0 {
			log.Warn().Str("provider", provider).Strs("flags", ec2Flags).Msg("--provider and the --ec2-* flags take effect only with --pool-size > 0")
		}
		return nil
	}
	if provider != "ec2" {
		if len(ec2Flags) > 0 {
			log.Warn().Strs("flags", ec2Flags).Msg("the --ec2-* flags take effect only with --provider ec2")
		}
		return nil
	}
	if ec2cfg.AMI == "" {
		return fmt.Errorf("--provider ec2 needs --ec2-ami: an image with spate installed at /usr/local/bin/spate")
	}
	// The coordinator must listen where the VMs reach it, and the VMs
	// be told an address they can dial.
	join, joinFlag := ec2cfg.Join, "--ec2-join"
	if join == "" {
		join, joinFlag = clusterListen, "--cluster-listen"
	}
	const fix = "serve the cluster on a fixed port (e.g. --cluster-listen 0.0.0.0:7400) and give --ec2-join <this machine's private address>:7400"
	for _, a := range [][2]string{{joinFlag, join}, {"--cluster-listen", clusterListen}} {
		host, port, err := net.SplitHostPort(a[1])
		if err != nil {
			return fmt.Errorf("%s %q: want host:port (%v)", a[0], a[1], err)
		}
		ip := net.ParseIP(host)
		unreachable := port == "0" || host == "localhost" || ip != nil && ip.IsLoopback()
		switch {
		case a[0] == joinFlag && (unreachable || host == "" || ip != nil && ip.IsUnspecified()):
			return fmt.Errorf("--provider ec2: the VMs would join the coordinator at %s (%s), which they cannot reach: %s", a[1], a[0], fix)
		case unreachable:
			return fmt.Errorf("--provider ec2: the coordinator listens for workers at %s (--cluster-listen), where the VMs cannot reach it: %s", a[1], fix)
		}
	}
	return nil
}

// stopPool stops every worker the pool's provider started.
func stopPool(p elastic.Provider, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, err := p.List(ctx)
	var ids []string
	for _, w := range ws {
		ids = append(ids, w.ID)
	}
	if err == nil && len(ids) > 0 {
		err = p.Stop(ctx, ids)
	}
	if err != nil {
		log.Warn().Err(err).Str("provider", p.Name()).Msg("stopping the pool's workers")
	}
}

func portOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i+1:]
		}
	}
	return addr
}

// startLocalCluster starts a coordinator heading n worker processes of
// this binary on loopback and waits until they have joined; stop ends
// the workers and the coordinator.
func startLocalCluster(ctx context.Context, cfg cluster.Config, n int, logLevel string) (coord *cluster.Coordinator, stop func(), err error) {
	coord, err = cluster.NewCoordinator(cfg)
	if err != nil {
		return nil, nil, err
	}
	children, err := startWorkers(ctx, n, coord.ClusterAddr(), cfg.Token, logLevel, cfg.Logger)
	stop = func() {
		coord.BeginShutdown()
		children.stopAll()
		coord.Close()
	}
	if err == nil && n > 0 {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = coord.WaitForWorkers(wctx, n)
		cancel()
		if err != nil {
			err = fmt.Errorf("waiting for the workers to join: %w", err)
		}
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	return coord, stop, nil
}

// workerProcs are the worker processes this server started (--workers)
// and owns. Each is waited for as soon as it exits (no zombie is left
// when one is killed); one that exits while the server runs is started
// again, after restartDelay — doubled, up to maxRestartDelay, while they
// keep exiting within a minute — so that --workers N stay running (not
// once the server's context ended: it is stopping). The
// new process joins as a new worker, which later repairs and scale-outs
// place instances on.
type workerProcs struct {
	self, addr, token, logLevel string
	log                         zerolog.Logger
	// ctx ends when the server stops, or stopAll begins: then no
	// process is started again.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	current map[int]*exec.Cmd // each slot's running process
	slots   sync.WaitGroup
}

const (
	restartDelay    = time.Second
	maxRestartDelay = 30 * time.Second
)

// startWorkers starts n `spate worker` processes of this binary that join
// the registry at addr.
func startWorkers(ctx context.Context, n int, addr, token, logLevel string, log zerolog.Logger) (*workerProcs, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	w := &workerProcs{self: self, addr: addr, token: token, logLevel: logLevel, log: log, current: map[int]*exec.Cmd{}}
	w.ctx, w.cancel = context.WithCancel(ctx)
	for slot := range n {
		cmd, done, err := w.start(slot)
		if err != nil {
			return w, fmt.Errorf("starting worker %d: %w", slot+1, err)
		}
		w.slots.Add(1)
		go w.keep(slot, cmd, done)
	}
	return w, nil
}

// start starts slot's process; done gets its exit.
func (w *workerProcs) start(slot int) (*exec.Cmd, chan error, error) {
	cmd := exec.Command(w.self, "worker", "--join", w.addr, "--log-level", w.logLevel)
	cmd.Env = append(os.Environ(), "SPATE_CLUSTER_TOKEN="+w.token)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// A process group of its own: Ctrl-C in the terminal stops the
	// server, which stops its workers, rather than killing them under
	// running queries (which would start repairs).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("the server is stopping: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	w.current[slot] = cmd
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, done, nil
}

// keep waits for slot's process to exit and starts another, until the
// server stops.
func (w *workerProcs) keep(slot int, cmd *exec.Cmd, done chan error) {
	defer w.slots.Done()
	delay := restartDelay
	for {
		started := time.Now()
		var exit error
		select {
		case exit = <-done:
		case <-w.ctx.Done():
			<-done // stopAll signals it
			return
		}
		if w.ctx.Err() != nil {
			return // it exited because the server is stopping
		}
		if time.Since(started) > time.Minute {
			delay = restartDelay
		}
		w.log.Warn().Int("pid", cmd.Process.Pid).AnErr("exit", exit).Stringer("restart_in", delay).
			Msg("a worker process exited; another is started in its place")
		for {
			select {
			case <-w.ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, maxRestartDelay)
			var err error
			if cmd, done, err = w.start(slot); err == nil {
				break
			}
			w.log.Error().Err(err).Stringer("retry_in", delay).Msg("starting a worker process")
		}
		w.log.Info().Int("pid", cmd.Process.Pid).Msg("started a worker process")
	}
}

// stopAll ends the workers (SIGTERM, then SIGKILL after 5 s), starts no
// more, and waits for them.
func (w *workerProcs) stopAll() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.cancel()
	procs := make([]*exec.Cmd, 0, len(w.current))
	for _, cmd := range w.current {
		procs = append(procs, cmd)
	}
	w.mu.Unlock()
	for _, cmd := range procs {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	stopped := make(chan struct{})
	go func() { w.slots.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		for _, cmd := range procs {
			_ = cmd.Process.Kill()
		}
		<-stopped
	}
	if len(procs) > 0 {
		w.log.Info().Int("workers", len(procs)).Msg("workers stopped")
	}
}

// dataDirToken reads the cluster token from dir/cluster-token, creating the
// directory and a random token (readable by the owner only) on first use,
// so that workers started by hand can join with the same token across
// restarts.
func dataDirToken(dir string) (string, error) {
	path := filepath.Join(dir, "cluster-token")
	if b, err := os.ReadFile(path); err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("reading the cluster token: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating the data directory: %w", err)
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing the cluster token: %w", err)
	}
	return token, nil
}
