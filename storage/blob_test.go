package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/spatedb/spate/internal/sqltest"
)

// testStore is the conformance test every BlobStore passes.
func testStore(t *testing.T, s BlobStore) {
	ctx := context.Background()
	if _, err := s.Get(ctx, "a/missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("%s: Get of a missing key: %v, want ErrNotFound", s, err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	blobs := map[string][]byte{
		"ckpt/q1/s1.i0/000001": []byte("first"),
		"ckpt/q1/s1.i0/000002": big,
		"ckpt/q1/s1.i1/000001": {},
		"ckpt/q2/s1.i0/000001": []byte("other query"),
		"catalog":              []byte(`{"version":1}`),
	}
	for k, v := range blobs {
		if err := s.Put(ctx, k, v); err != nil {
			t.Fatalf("%s: Put %s: %v", s, k, err)
		}
	}
	for k, v := range blobs {
		got, err := s.Get(ctx, k)
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("%s: Get %s: %d bytes, %v; want %d bytes", s, k, len(got), err, len(v))
		}
	}
	// Put replaces.
	if err := s.Put(ctx, "catalog", []byte(`{"version":2}`)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "catalog"); string(got) != `{"version":2}` {
		t.Fatalf("%s: after a second Put: %q", s, got)
	}
	keys, err := s.List(ctx, "ckpt/q1/")
	want := []string{"ckpt/q1/s1.i0/000001", "ckpt/q1/s1.i0/000002", "ckpt/q1/s1.i1/000001"}
	if err != nil || !reflect.DeepEqual(keys, want) {
		t.Fatalf("%s: List ckpt/q1/: %v, %v; want %v", s, keys, err, want)
	}
	if all, err := s.List(ctx, ""); err != nil || len(all) != len(blobs) {
		t.Fatalf("%s: List all: %v, %v", s, all, err)
	}
	if err := s.Delete(ctx, "ckpt/q1/s1.i0/000001"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "ckpt/q1/s1.i0/000001"); err != nil {
		t.Fatalf("%s: deleting a missing key: %v", s, err)
	}
	if _, err := s.Get(ctx, "ckpt/q1/s1.i0/000001"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("%s: Get after Delete: %v", s, err)
	}
	for _, bad := range []string{"", "/abs", "a//b", "a/../b", "a/./b", "back\\slash"} {
		if err := s.Put(ctx, bad, []byte("x")); err == nil {
			t.Errorf("%s: Put accepted the key %q", s, bad)
		}
	}
	// Concurrent writers to different keys.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Put(ctx, fmt.Sprintf("conc/%d", i), []byte{byte(i)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if keys, _ := s.List(ctx, "conc/"); len(keys) != 8 {
		t.Fatalf("%s: %d of 8 concurrent blobs", s, len(keys))
	}
}

func TestMemory(t *testing.T) { testStore(t, NewMemory()) }

func TestDir(t *testing.T) {
	dir := t.TempDir()
	d, err := NewDir(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	testStore(t, d)
	// Leftovers of an interrupted Put are not blobs.
	if err := os.WriteFile(filepath.Join(dir, "store", "catalog.123"+tmpSuffix), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, _ := d.List(context.Background(), "catalog")
	if !reflect.DeepEqual(keys, []string{"catalog"}) {
		t.Fatalf("List sees a temporary file: %v", keys)
	}
	// Deleting a key takes the directories it emptied, not the root.
	ctx := context.Background()
	if err := d.Put(ctx, "restart/7/queries/q/1.0", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "restart/7/manifest.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"restart/7/queries/q/1.0", "restart/7/manifest.json"} {
		if err := d.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "store", "restart")); !os.IsNotExist(err) {
		t.Fatalf("emptied directories are left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "store")); err != nil {
		t.Fatalf("the root went: %v", err)
	}
	// Another process (a restarted server) sees the same blobs.
	again, err := Open(context.Background(), "file://"+filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := again.Get(context.Background(), "catalog"); err != nil || string(got) != `{"version":2}` {
		t.Fatalf("reopened: %q %v", got, err)
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for loc, want := range map[string]string{
		"memory": "memory",
		"s3://bucket/some/prefix?endpoint=http://127.0.0.1:9000&path_style=true": "s3://bucket/some/prefix at http://127.0.0.1:9000",
		"file://" + dir + "/a":          "dir:" + dir + "/a",
		"file:" + dir + "/b":            "dir:" + dir + "/b",
		"file://localhost" + dir + "/c": "dir:" + dir + "/c",
		"file://" + dir + "/100%":       "dir:" + dir + "/100%",
	} {
		s, err := Open(ctx, loc)
		if err != nil || s.String() != want {
			t.Errorf("Open(%q) = %v, %v; want %s", loc, s, err, want)
		}
	}
	for _, bad := range []string{"gs://bucket", "s3:///nobucket", "file://relative/x", "file:relative", "s3://b/p?path_style=maybe", "s3://b/p?endpint=http://x", "file:///tmp/x?y", "file:///tmp/x#2", "file://host/tmp/x"} {
		if _, err := Open(ctx, bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}

// TestS3Fake runs the conformance test against gofakes3 serving the S3
// API over HTTP in this process, with and without a key prefix.
func TestS3Fake(t *testing.T) {
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "spate")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "spate-secret")
	createBucket(t, srv.URL, "spate-test")
	for _, prefix := range []string{"", "cluster-a/checkpoints"} {
		s, err := Open(context.Background(), fmt.Sprintf("s3://spate-test/%s?endpoint=%s&path_style=true&region=us-east-1", prefix, srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		testStore(t, s)
	}
}

// TestS3Versitygw runs the conformance test against versitygw, a real S3
// server in its own process over a directory (installed by make test's
// test-deps; under CI=true a missing binary fails the test).
func TestS3Versitygw(t *testing.T) {
	srv := sqltest.StartS3(t, "spate-test")
	srv.Env(t)
	s, err := Open(context.Background(), srv.Location("spate-test", "prefix"))
	if err != nil {
		t.Fatal(err)
	}
	testStore(t, s)
}

// createBucket makes a bucket through the S3 API.
func createBucket(t *testing.T, endpoint, bucket string) {
	s, err := NewS3(context.Background(), S3Config{Bucket: bucket, Endpoint: endpoint, PathStyle: true, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("creating bucket %s: %v", bucket, err)
	}
}
