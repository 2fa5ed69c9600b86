package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3Config configures an S3 store.
type S3Config struct {
	Bucket string // required
	Prefix string // keys are stored under Prefix/; empty for the bucket root
	// Endpoint is the URL of an S3-compatible server (versitygw, MinIO,
	// gofakes3); empty for AWS.
	Endpoint string
	// Region; default $AWS_REGION, else us-east-1.
	Region string
	// PathStyle addresses buckets as endpoint/bucket rather than
	// bucket.endpoint, as most S3-compatible servers need.
	PathStyle bool
	// Credentials, when both set; otherwise the SDK's default chain
	// (environment, shared files, instance role).
	AccessKey, SecretKey string
}

// S3 is a BlobStore in an S3 bucket.
type S3 struct {
	client *s3.Client
	cfg    S3Config
}

// NewS3 returns a store for cfg.Bucket. It does not contact the server;
// the first call does.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("storage: S3 needs a bucket (s3://bucket/prefix)")
	}
	opts := []func(*config.LoadOptions) error{}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" && cfg.SecretKey != "" {
		opts = append(opts, config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: cfg.AccessKey, SecretAccessKey: cfg.SecretKey, Source: "spate S3Config"}, nil
		})))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("storage: S3 configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	})
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	return &S3{client: client, cfg: cfg}, nil
}

func (s *S3) key(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	return joinKey(s.cfg.Prefix, key), nil
}

// Put implements BlobStore.
func (s *S3) Put(ctx context.Context, key string, data []byte) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.cfg.Bucket, Key: &k, Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))})
	if err != nil {
		return fmt.Errorf("storage: putting %s to %s: %w", key, s, err)
	}
	return nil
}

// Get implements BlobStore.
func (s *S3) Get(ctx context.Context, key string) ([]byte, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &k})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return nil, fmt.Errorf("storage: getting %s from %s: %w", key, s, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("storage: reading %s from %s: %w", key, s, err)
	}
	return b, nil
}

// List implements BlobStore.
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	full := s.cfg.Prefix
	if full != "" {
		full += "/"
	}
	strip := len(full)
	full += prefix
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.cfg.Bucket, Prefix: &full})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("storage: listing %s: %w", s, err)
		}
		for _, o := range page.Contents {
			if o.Key != nil && len(*o.Key) >= strip {
				keys = append(keys, (*o.Key)[strip:])
			}
		}
	}
	return keys, nil
}

// Delete implements BlobStore.
func (s *S3) Delete(ctx context.Context, key string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.cfg.Bucket, Key: &k}); err != nil {
		return fmt.Errorf("storage: deleting %s from %s: %w", key, s, err)
	}
	return nil
}

func (s *S3) String() string {
	loc := "s3://" + s.cfg.Bucket
	if s.cfg.Prefix != "" {
		loc += "/" + s.cfg.Prefix
	}
	if s.cfg.Endpoint != "" {
		loc += " at " + s.cfg.Endpoint
	}
	return loc
}
