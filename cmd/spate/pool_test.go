package main

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/spatedb/spate/elastic"
	"github.com/spatedb/spate/internal/sqltest"
)

// TestLocalPoolWorkersJoin: the local provider's workers are real
// `spate worker` processes that join the coordinator; the pool keeps
// them warm, and stopping them takes them out of SHOW WORKERS.
func TestLocalPoolWorkersJoin(t *testing.T) {
	dir := t.TempDir()
	srv := sqltest.StartSpate(t, "--workers", "1", "--data-dir", dir)
	token, err := os.ReadFile(filepath.Join(dir, "cluster-token"))
	if err != nil {
		t.Fatal(err)
	}
	join := regexp.MustCompile(`cluster=(127\.0\.0\.1:\d+)`).FindStringSubmatch(srv.Output())
	if join == nil {
		t.Fatalf("no cluster address in the server's log:\n%s", srv.Output())
	}
	local, err := elastic.NewLocal(elastic.LocalConfig{Binary: sqltest.SpateBinary(t), Join: join[1], Token: strings.TrimSpace(string(token)), Stderr: devNull(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() {
		ws, _ := local.List(ctx)
		var ids []string
		for _, w := range ws {
			ids = append(ids, w.ID)
		}
		_ = local.Stop(ctx, ids)
	})
	pool := elastic.NewPool(local, 2, time.Minute)
	if err := pool.Fill(ctx); err != nil {
		t.Fatal(err)
	}
	conn := sqltest.Connect(t, srv.ConnString())
	alive := func() int {
		var n int
		if err := conn.QueryRow(ctx, "SELECT COUNT(*) FROM spate_workers WHERE role = 'worker' AND status = 'alive'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor(t, 15*time.Second, "the pool's two workers to join", func() bool { return alive() == 3 })
	w, err := pool.Acquire(ctx)
	if err != nil || !strings.HasPrefix(w.ID, "pid-") {
		t.Fatalf("acquired %+v %v", w, err)
	}
	running, _ := local.List(ctx)
	if len(running) != 2 {
		t.Fatalf("local provider lists %v", running)
	}
	var ids []string
	for _, r := range running {
		ids = append(ids, r.ID)
	}
	if err := local.Stop(ctx, ids); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the stopped workers to leave", func() bool { return alive() == 1 })
	if left, _ := local.List(ctx); len(left) != 0 {
		t.Fatalf("still running: %v", left)
	}
}

func devNull(t *testing.T) *os.File {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestServeRefusesBadPoolFlags: flags of the pool and the controller
// that cannot work stop `spate serve` at once with an error naming the
// flag — no panic, no pool whose VMs could never join.
func TestServeRefusesBadPoolFlags(t *testing.T) {
	bin := sqltest.SpateBinary(t)
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--workers", "-1"}, "--workers must not be negative"},
		{[]string{"--autoscale-interval", "0"}, "--autoscale-interval must be positive"},
		{[]string{"--scale-cooldown", "-5s"}, "--scale-cooldown must not be negative"},
		{[]string{"--pool-idle-timeout", "0"}, "--pool-idle-timeout must be positive"},
		{[]string{"--provider", "ec3"}, `--provider "ec3": use local or ec2`},
		{[]string{"--pool-size", "1", "--provider", "ec2"}, "--provider ec2 needs --ec2-ami"},
		{[]string{"--pool-size", "1", "--provider", "ec2", "--ec2-ami", "ami-1"}, "the VMs would join the coordinator at 127.0.0.1:0 (--cluster-listen), which they cannot reach"},
		{[]string{"--pool-size", "1", "--provider", "ec2", "--ec2-ami", "ami-1", "--ec2-join", "127.0.0.1:7400"}, "at 127.0.0.1:7400 (--ec2-join), which they cannot reach"},
		{[]string{"--pool-size", "1", "--provider", "ec2", "--ec2-ami", "ami-1", "--ec2-join", "10.0.1.5:7400"}, "listens for workers at 127.0.0.1:0 (--cluster-listen), where the VMs cannot reach it"},
		{[]string{"--pool-size", "1", "--provider", "ec2", "--ec2-ami", "ami-1", "--cluster-listen", "0.0.0.0:7400"}, "at 0.0.0.0:7400 (--cluster-listen), which they cannot reach"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		args := append([]string{"serve", "--pg-listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--workers", "0"}, tc.flags...)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "panic") {
			t.Errorf("spate serve %s: %v\n%s\nwant an error with %q", strings.Join(tc.flags, " "), err, out, tc.want)
		}
	}
}

// TestPoolFlagsAcceptAReachableJoin: the checks let a working EC2 set-up
// through: a fixed cluster port, and a join address the VMs can dial
// (given, or the listen address itself).
func TestPoolFlagsAcceptAReachableJoin(t *testing.T) {
	for _, c := range [][2]string{{"0.0.0.0:7400", "10.0.1.5:7400"}, {"10.0.1.5:7400", ""}} {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		cfg := elastic.EC2Config{AMI: "ami-1", Join: c[1]}
		if err := checkPoolFlags(fs, 1, "ec2", time.Minute, time.Second, 0, cfg, c[0], zerolog.Nop()); err != nil {
			t.Errorf("--cluster-listen %s --ec2-join %q: %v", c[0], c[1], err)
		}
	}
}

// TestClusterNamePerToken: servers with different cluster tokens tag
// their VMs differently (one server's shutdown terminates only its
// own), and the name does not contain the token.
func TestClusterNamePerToken(t *testing.T) {
	a, b := clusterName("token-a"), clusterName("token-b")
	if a == b || a != clusterName("token-a") || strings.Contains(a, "token") || !regexp.MustCompile(`^spate-[0-9a-f]{12}$`).MatchString(a) {
		t.Errorf("cluster names %q and %q", a, b)
	}
}
