//go:build unix

package control

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// moduleRoot walks up from the test's directory to the one with go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

// spateBinary builds ./cmd/spate once per test binary run.
func spateBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH; cannot build the spate binary")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "spate-control-test")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "spate")
		cmd := exec.Command(goTool, "build", "-o", binPath, "./cmd/spate")
		cmd.Dir = moduleRoot(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = errors.New("go build ./cmd/spate: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// A real "spate worker" process joins, registers with its own PID, and
// is marked dead once killed with SIGKILL.
func TestRealWorkerProcessKilled(t *testing.T) {
	bin := spateBinary(t)
	r, _ := startRegistry(t, RegistryConfig{HeartbeatInterval: 50 * time.Millisecond})
	cmd := exec.Command(bin, "worker", "--join", r.Addr().String(), "--listen", "127.0.0.1:7199")
	cmd.Env = append(os.Environ(), "SPATE_CLUSTER_TOKEN="+testToken)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	waitFor(t, "the worker process heartbeating", func() bool {
		w, ok := onlyWorker(r)
		return ok && w.HeartbeatSeq >= 2
	})
	w, _ := onlyWorker(r)
	if w.PID != cmd.Process.Pid || w.Status != StatusAlive || w.DataAddr != "127.0.0.1:7199" || w.Load.CPUBusySeconds <= 0 {
		t.Fatalf("worker %+v (process %d)", w, cmd.Process.Pid)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitFor(t, "the killed worker dead", func() bool { w, _ := onlyWorker(r); return w.Status == StatusDead })
	nextEvent(t, r) // joined
	if ev := nextEvent(t, r); ev.Kind != WorkerDead || ev.Worker.PID != cmd.Process.Pid {
		t.Fatalf("event %+v", ev)
	}
}

// A real worker with the wrong token exits non-zero with a clear message,
// and the registry lists nothing.
func TestRealWorkerWrongToken(t *testing.T) {
	bin := spateBinary(t)
	r, _ := startRegistry(t, RegistryConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "worker", "--join", r.Addr().String(), "--cluster-token", "wrong").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("worker with a wrong token: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "wrong cluster token") || !strings.Contains(string(out), "cluster token mismatch") {
		t.Fatalf("unclear message:\n%s", out)
	}
	if ws := r.Workers(); len(ws) != 0 {
		t.Fatalf("registry lists %+v", ws)
	}
}
