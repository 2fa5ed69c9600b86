package sqltest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// S3 is a versitygw S3 server over a temporary directory, for tests.
type S3 struct {
	Endpoint  string // http://127.0.0.1:port
	AccessKey string
	SecretKey string
	Dir       string // the posix backend: one directory per bucket
}

// VersitygwBinary finds versitygw on PATH or where go install puts it.
func VersitygwBinary() string {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	dirs := []string{os.Getenv("GOBIN"), filepath.Join(os.Getenv("HOME"), "go", "bin")}
	if gp, err := exec.Command(goTool(), "env", "GOPATH").Output(); err == nil {
		dirs = append(dirs, filepath.Join(strings.TrimSpace(string(gp)), "bin"))
	}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		if p := filepath.Join(dir, "versitygw"); isExecutable(p) {
			return p
		}
	}
	return ""
}

// StartS3 starts versitygw with the given buckets until the test ends.
// Without the binary the test is skipped, or fails under CI=true
// (make test-deps installs it).
func StartS3(t testing.TB, buckets ...string) *S3 {
	t.Helper()
	bin := VersitygwBinary()
	if bin == "" {
		Missing(t, "versitygw not found (make test-deps installs it with go install)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &S3{Endpoint: "http://" + addr, AccessKey: "spate", SecretKey: "spate-secret", Dir: t.TempDir()}
	for _, b := range buckets {
		if err := os.Mkdir(filepath.Join(s.Dir, b), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "--access", s.AccessKey, "--secret", s.SecretKey, "--port", addr, "posix", s.Dir)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not start: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Env sets the AWS credentials for the test's processes.
func (s *S3) Env(t testing.TB) {
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	t.Setenv("AWS_REGION", "us-east-1")
}

// Location is the storage.Open location of prefix in bucket.
func (s *S3) Location(bucket, prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&path_style=true&region=us-east-1", bucket, prefix, s.Endpoint)
}
