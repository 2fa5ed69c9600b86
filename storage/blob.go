// Package storage holds what outlives a process: the blob store that
// restart points are written to, with three implementations behind one
// interface — memory (tests, a single process), a local directory, and
// S3 or any S3-compatible server — and the ingest log (ingestlog.go)
// that the write-ahead log is kept in.
package storage

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// ErrNotFound is returned (wrapped) by Get for a key that holds no blob.
var ErrNotFound = errors.New("storage: no blob under that key")

// BlobStore is a flat namespace of immutable blobs under keys such as
// "checkpoints/q1/s2.i0/000042". Put replaces a blob atomically: a
// reader sees the old bytes or the new ones, never a mix, and a Put that
// returned nil survives the process (the directory store fsyncs; S3
// acknowledges durable writes). Implementations are safe for concurrent
// use.
type BlobStore interface {
	Put(ctx context.Context, key string, data []byte) error
	// Get returns the blob, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// List returns the keys that start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Delete removes a blob; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// String says where the blobs live, for logs ("memory",
	// "dir:/var/spate", "s3://bucket/prefix").
	String() string
}

// ValidKey checks a key: 1 to 1024 bytes of slash-separated segments,
// none empty, "." or "..", and no backslash or NUL, so that every store
// (a directory too) maps it to one place.
func ValidKey(key string) error {
	if key == "" || len(key) > 1024 {
		return fmt.Errorf("storage: key must be 1 to 1024 bytes, got %d", len(key))
	}
	if strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("storage: key %q contains a backslash or NUL", key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("storage: key %q has an empty, \".\" or \"..\" segment", key)
		}
	}
	return nil
}

// Open opens the store a location names:
//
//	memory                      blobs in this process's memory
//	/path, ./path, file:///path a local directory (created if missing)
//	                            (file:/path too; file://relative is an
//	                            error, not ./relative)
//	s3://bucket[/prefix]        S3; query parameters endpoint=URL (an
//	                            S3-compatible server), region=…, and
//	                            path_style=true|false; credentials come from the
//	                            environment (AWS_ACCESS_KEY_ID, …) as in
//	                            every AWS tool
func Open(ctx context.Context, location string) (BlobStore, error) {
	switch {
	case location == "memory":
		return NewMemory(), nil
	case strings.HasPrefix(location, "s3://"):
		u, err := url.Parse(location)
		if err != nil {
			return nil, fmt.Errorf("storage: %q: %w", location, err)
		}
		q := u.Query()
		for k := range q {
			if k != "endpoint" && k != "region" && k != "path_style" {
				return nil, fmt.Errorf("storage: %q: unknown parameter %q (use endpoint, region, path_style)", location, k)
			}
		}
		cfg := S3Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), Endpoint: q.Get("endpoint"), Region: q.Get("region")}
		if ps := q.Get("path_style"); ps != "" {
			if cfg.PathStyle, err = strconv.ParseBool(ps); err != nil {
				return nil, fmt.Errorf("storage: %q: path_style must be true or false", location)
			}
		}
		return NewS3(ctx, cfg)
	case strings.HasPrefix(location, "file:"):
		// file:///abs/dir, file:/abs/dir or file://localhost/abs/dir,
		// the path taken as written (no query, fragment or escapes).
		rest := strings.TrimPrefix(location, "file:")
		if strings.HasPrefix(rest, "//localhost/") {
			rest = strings.TrimPrefix(rest, "//localhost")
		} else if strings.HasPrefix(rest, "///") {
			rest = rest[2:]
		}
		if !strings.HasPrefix(rest, "/") || strings.HasPrefix(rest, "//") || strings.ContainsAny(rest, "?#") {
			return nil, fmt.Errorf("storage: %q: a file URL names an absolute directory, file:///dir", location)
		}
		return NewDir(rest)
	case strings.Contains(location, "://"):
		return nil, fmt.Errorf("storage: unknown store %q: use memory, a directory, file:///dir or s3://bucket/prefix", location)
	}
	return NewDir(location)
}

// joinKey prefixes a key (for stores rooted at a prefix).
func joinKey(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return path.Join(prefix, key)
}
