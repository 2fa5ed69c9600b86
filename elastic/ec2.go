package elastic

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// EC2Config configures the ec2 provider.
type EC2Config struct {
	// Cluster names the cluster: every VM is tagged spate:cluster=<it>,
	// and List finds them by that tag. Required.
	Cluster string
	// Join and Token are what each VM's spate worker joins with: the
	// coordinator's cluster address (reachable from the VMs) and the
	// cluster token. Required.
	Join, Token string
	// AMI is an image with spate installed at Binary (default
	// /usr/local/bin/spate). Required.
	AMI    string
	Binary string
	// InstanceTypes are tried in order when EC2 has no capacity for one.
	// Default c6i.large.
	InstanceTypes      []string
	SubnetID           string
	SecurityGroupIDs   []string
	IAMInstanceProfile string // name
	Tags               map[string]string
	// DataPort is the port each worker's data plane listens on, on its
	// private address. Default 7433.
	DataPort int

	Region string // default $AWS_REGION, else us-east-1
	// Endpoint overrides the EC2 endpoint (an S3-style custom endpoint;
	// tests point it at a fake).
	Endpoint             string
	AccessKey, SecretKey string // else the SDK's default chain
	// MaxAttempts bounds the SDK's retries of throttled and failed calls
	// (default 5); CapacityRetries how many rounds over InstanceTypes a
	// capacity shortage gets (default 3), CapacityWait the pause between
	// rounds (default 10 s).
	MaxAttempts     int
	CapacityRetries int
	CapacityWait    time.Duration
	// Backoff overrides the SDK's retry backoff (tests).
	Backoff func(attempt int) time.Duration
}

// EC2 is the ec2 provider: workers are EC2 instances whose user data
// starts `spate worker --join …`.
type EC2 struct {
	cfg    EC2Config
	client *ec2.Client
}

// NewEC2 returns the ec2 provider.
func NewEC2(ctx context.Context, cfg EC2Config) (*EC2, error) {
	if cfg.Cluster == "" || cfg.Join == "" || cfg.Token == "" || cfg.AMI == "" {
		return nil, errors.New("ec2 provider: cluster, join address, token and AMI are required")
	}
	if cfg.Binary == "" {
		cfg.Binary = "/usr/local/bin/spate"
	}
	if len(cfg.InstanceTypes) == 0 {
		cfg.InstanceTypes = []string{"c6i.large"}
	}
	if cfg.DataPort == 0 {
		cfg.DataPort = 7433
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.CapacityRetries <= 0 {
		cfg.CapacityRetries = 3
	}
	if cfg.CapacityWait <= 0 {
		cfg.CapacityWait = 10 * time.Second
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" && cfg.SecretKey != "" {
		opts = append(opts, config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: cfg.AccessKey, SecretAccessKey: cfg.SecretKey, Source: "spate EC2Config"}, nil
		})))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("ec2 provider: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	client := ec2.NewFromConfig(awsCfg, func(o *ec2.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = cfg.MaxAttempts
			if cfg.Backoff != nil {
				so.Backoff = retry.BackoffDelayerFunc(func(attempt int, _ error) (time.Duration, error) { return cfg.Backoff(attempt), nil })
			}
		})
	})
	return &EC2{cfg: cfg, client: client}, nil
}

// Name is "ec2".
func (e *EC2) Name() string { return "ec2" }

// UserData is the script each VM runs at boot: it starts a worker that
// joins the coordinator and advertises its private address.
func (e *EC2) UserData() string {
	return fmt.Sprintf(`#!/bin/sh
# spate worker, started by the spate ec2 pool of cluster %s
ip=$(hostname -I | awk '{print $1}')
export SPATE_CLUSTER_TOKEN='%s'
exec %s worker --join %s --listen "$ip:%d"
`, e.cfg.Cluster, strings.ReplaceAll(e.cfg.Token, "'", `'\''`), e.cfg.Binary, e.cfg.Join, e.cfg.DataPort)
}

// capacityCodes are EC2 errors that mean "not now, not this type".
var capacityCodes = map[string]bool{
	"InsufficientInstanceCapacity": true,
	"InsufficientHostCapacity":     true,
	"InsufficientCapacity":         true,
	"Unsupported":                  true, // the type is not offered in the subnet's zone
}

// Start launches n VMs in one RunInstances call: on a capacity shortage
// the next instance type is tried, and after a round over all of them,
// a pause and another round (CapacityRetries in all). Throttling is
// retried by the SDK.
func (e *EC2) Start(ctx context.Context, n int) ([]Worker, error) {
	var last error
	for round := 0; round < e.cfg.CapacityRetries; round++ {
		if round > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(e.cfg.CapacityWait):
			}
		}
		for _, typ := range e.cfg.InstanceTypes {
			out, err := e.client.RunInstances(ctx, e.runInput(n, typ))
			if err == nil {
				return workersOf(out.Instances), nil
			}
			var ae smithy.APIError
			if !errors.As(err, &ae) || !capacityCodes[ae.ErrorCode()] {
				return nil, fmt.Errorf("ec2 RunInstances: %w", err)
			}
			last = err
		}
	}
	return nil, fmt.Errorf("ec2: no capacity for %d × %s after %d rounds: %w", n, strings.Join(e.cfg.InstanceTypes, "|"), e.cfg.CapacityRetries, last)
}

func (e *EC2) runInput(n int, typ string) *ec2.RunInstancesInput {
	tags := []types.Tag{{Key: aws.String("spate:cluster"), Value: aws.String(e.cfg.Cluster)}, {Key: aws.String("Name"), Value: aws.String("spate-worker-" + e.cfg.Cluster)}}
	keys := make([]string, 0, len(e.cfg.Tags))
	for k := range e.cfg.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(e.cfg.Tags[k])})
	}
	in := &ec2.RunInstancesInput{
		ImageId:      aws.String(e.cfg.AMI),
		InstanceType: types.InstanceType(typ),
		MinCount:     aws.Int32(int32(n)),
		MaxCount:     aws.Int32(int32(n)),
		UserData:     aws.String(base64.StdEncoding.EncodeToString([]byte(e.UserData()))),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: tags},
		},
		InstanceInitiatedShutdownBehavior: types.ShutdownBehaviorTerminate,
	}
	if e.cfg.SubnetID != "" {
		in.SubnetId = aws.String(e.cfg.SubnetID)
	}
	if len(e.cfg.SecurityGroupIDs) > 0 {
		in.SecurityGroupIds = e.cfg.SecurityGroupIDs
	}
	if e.cfg.IAMInstanceProfile != "" {
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String(e.cfg.IAMInstanceProfile)}
	}
	return in
}

func workersOf(insts []types.Instance) []Worker {
	var out []Worker
	for _, in := range insts {
		w := Worker{ID: aws.ToString(in.InstanceId), Addr: aws.ToString(in.PrivateIpAddress)}
		if in.LaunchTime != nil {
			w.Started = *in.LaunchTime
		}
		if in.State != nil {
			w.State = string(in.State.Name)
		}
		out = append(out, w)
	}
	return out
}

// List returns the cluster's VMs that are pending or running.
func (e *EC2) List(ctx context.Context) ([]Worker, error) {
	in := &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:spate:cluster"), Values: []string{e.cfg.Cluster}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}},
	}}
	var out []Worker
	p := ec2.NewDescribeInstancesPaginator(e.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ec2 DescribeInstances: %w", err)
		}
		for _, r := range page.Reservations {
			out = append(out, workersOf(r.Instances)...)
		}
	}
	return out, nil
}

// Stop terminates VMs.
func (e *EC2) Stop(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := e.client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids}); err != nil {
		return fmt.Errorf("ec2 TerminateInstances: %w", err)
	}
	return nil
}
