package elastic

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeEC2 is an in-process EC2 query API (the one place without a real
// server): it records every request's form and answers RunInstances,
// DescribeInstances and TerminateInstances from its own instances, or
// with the errors queued in fail.
type fakeEC2 struct {
	mu        sync.Mutex
	requests  []url.Values
	instances map[string]string // ID → state
	order     []string
	next      int
	// fail holds, per action, error codes to answer before succeeding;
	// "InsufficientInstanceCapacity:c6i.large" fails only for that type.
	fail map[string][]string
}

func newFakeEC2() (*fakeEC2, *httptest.Server) {
	f := &fakeEC2{instances: map[string]string{}, fail: map[string][]string{}}
	return f, httptest.NewServer(f)
}

func (f *fakeEC2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	form := r.PostForm
	f.requests = append(f.requests, form)
	action := form.Get("Action")
	if q := f.fail[action]; len(q) > 0 {
		code, onlyType, _ := strings.Cut(q[0], ":")
		if onlyType == "" || onlyType == form.Get("InstanceType") {
			f.fail[action] = q[1:]
			status := 400
			if code == "RequestLimitExceeded" {
				status = 503
			}
			w.WriteHeader(status)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>%s</Code><Message>fake %s</Message></Error></Errors><RequestID>req-%d</RequestID></Response>`, code, code, len(f.requests))
			return
		}
	}
	item := func(id, state string) string {
		return fmt.Sprintf(`<item><instanceId>%s</instanceId><imageId>%s</imageId><instanceState><code>16</code><name>%s</name></instanceState><privateIpAddress>10.1.0.%s</privateIpAddress><launchTime>2026-11-21T12:00:00.000Z</launchTime></item>`,
			id, form.Get("ImageId"), state, strings.TrimPrefix(id, "i-"))
	}
	switch action {
	case "RunInstances":
		var items strings.Builder
		var n int
		fmt.Sscan(form.Get("MaxCount"), &n)
		for range n {
			f.next++
			id := fmt.Sprintf("i-%d", f.next)
			f.instances[id] = "pending"
			f.order = append(f.order, id)
			items.WriteString(item(id, "pending"))
		}
		fmt.Fprintf(w, `<RunInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><reservationId>r-1</reservationId><ownerId>1</ownerId><instancesSet>%s</instancesSet></RunInstancesResponse>`, items.String())
	case "DescribeInstances":
		var items strings.Builder
		for _, id := range f.order {
			if st := f.instances[id]; st == "pending" || st == "running" {
				items.WriteString(item(id, st))
			}
		}
		fmt.Fprintf(w, `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><reservationSet><item><reservationId>r-1</reservationId><ownerId>1</ownerId><instancesSet>%s</instancesSet></item></reservationSet></DescribeInstancesResponse>`, items.String())
	case "TerminateInstances":
		var items strings.Builder
		for i := 1; form.Get(fmt.Sprintf("InstanceId.%d", i)) != ""; i++ {
			id := form.Get(fmt.Sprintf("InstanceId.%d", i))
			f.instances[id] = "shutting-down"
			fmt.Fprintf(&items, `<item><instanceId>%s</instanceId><currentState><code>32</code><name>shutting-down</name></currentState><previousState><code>16</code><name>running</name></previousState></item>`, id)
		}
		fmt.Fprintf(w, `<TerminateInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><instancesSet>%s</instancesSet></TerminateInstancesResponse>`, items.String())
	default:
		w.WriteHeader(400)
		fmt.Fprintf(w, `<Response><Errors><Error><Code>InvalidAction</Code><Message>%s</Message></Error></Errors></Response>`, action)
	}
}

// calls lists the actions requested, in order.
func (f *fakeEC2) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.requests {
		out = append(out, r.Get("Action"))
	}
	return out
}

func testEC2(t *testing.T, srv *httptest.Server, types ...string) *EC2 {
	t.Helper()
	e, err := NewEC2(context.Background(), EC2Config{
		Cluster: "test", Join: "10.1.0.1:7000", Token: "s3cret", AMI: "ami-123", InstanceTypes: types,
		SubnetID: "subnet-9", SecurityGroupIDs: []string{"sg-1", "sg-2"}, IAMInstanceProfile: "spate-worker",
		Tags: map[string]string{"team": "streams"}, Region: "eu-west-1", Endpoint: srv.URL,
		AccessKey: "AKID", SecretKey: "SECRET", CapacityWait: time.Millisecond,
		Backoff: func(int) time.Duration { return time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestEC2RunInstancesRequest shows the exact RunInstances request the
// provider makes, and the workers it makes of the answer.
func TestEC2RunInstancesRequest(t *testing.T) {
	f, srv := newFakeEC2()
	defer srv.Close()
	e := testEC2(t, srv, "c6i.large")
	ws, err := e.Start(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 2 || ws[0].ID != "i-1" || ws[1].ID != "i-2" || ws[0].Addr != "10.1.0.1" || ws[0].State != "pending" {
		t.Fatalf("workers %+v", ws)
	}
	req := f.requests[0]
	want := map[string]string{
		"Action":                            "RunInstances",
		"ImageId":                           "ami-123",
		"InstanceType":                      "c6i.large",
		"MinCount":                          "2",
		"MaxCount":                          "2",
		"SubnetId":                          "subnet-9",
		"SecurityGroupId.1":                 "sg-1",
		"SecurityGroupId.2":                 "sg-2",
		"IamInstanceProfile.Name":           "spate-worker",
		"InstanceInitiatedShutdownBehavior": "terminate",
		"TagSpecification.1.ResourceType":   "instance",
		"TagSpecification.1.Tag.1.Key":      "spate:cluster",
		"TagSpecification.1.Tag.1.Value":    "test",
		"TagSpecification.1.Tag.2.Key":      "Name",
		"TagSpecification.1.Tag.2.Value":    "spate-worker-test",
		"TagSpecification.1.Tag.3.Key":      "team",
		"TagSpecification.1.Tag.3.Value":    "streams",
	}
	for k, v := range want {
		if got := req.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	script, err := base64.StdEncoding.DecodeString(req.Get("UserData"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"export SPATE_CLUSTER_TOKEN='s3cret'", `exec /usr/local/bin/spate worker --join 10.1.0.1:7000 --listen "$ip:7433"`} {
		if !strings.Contains(string(script), line) {
			t.Errorf("user data lacks %q:\n%s", line, script)
		}
	}
	var keys []string
	for k := range req {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("RunInstances parameters: %v", keys)
}

// Throttling is retried by the SDK: two RequestLimitExceeded answers,
// then the call goes through.
func TestEC2ThrottlingRetried(t *testing.T) {
	f, srv := newFakeEC2()
	defer srv.Close()
	f.fail["RunInstances"] = []string{"RequestLimitExceeded", "RequestLimitExceeded"}
	e := testEC2(t, srv, "c6i.large")
	if _, err := e.Start(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if got := f.calls(); !reflect.DeepEqual(got, []string{"RunInstances", "RunInstances", "RunInstances"}) {
		t.Fatalf("calls %v", got)
	}
}

// A capacity shortage moves on to the next instance type; when every
// type is short for every round, Start says so.
func TestEC2CapacityFallsBack(t *testing.T) {
	f, srv := newFakeEC2()
	defer srv.Close()
	f.fail["RunInstances"] = []string{"InsufficientInstanceCapacity:c6i.large"}
	e := testEC2(t, srv, "c6i.large", "m6i.large")
	ws, err := e.Start(context.Background(), 1)
	if err != nil || len(ws) != 1 {
		t.Fatalf("%v %v", ws, err)
	}
	var typesTried []string
	for _, r := range f.requests {
		typesTried = append(typesTried, r.Get("InstanceType"))
	}
	if !reflect.DeepEqual(typesTried, []string{"c6i.large", "m6i.large"}) {
		t.Fatalf("instance types tried %v", typesTried)
	}

	f2, srv2 := newFakeEC2()
	defer srv2.Close()
	for range 6 {
		f2.fail["RunInstances"] = append(f2.fail["RunInstances"], "InsufficientInstanceCapacity")
	}
	e2 := testEC2(t, srv2, "c6i.large", "m6i.large")
	_, err = e2.Start(context.Background(), 3)
	if err == nil || !strings.Contains(err.Error(), "no capacity for 3 × c6i.large|m6i.large after 3 rounds") {
		t.Fatalf("error %v", err)
	}
	if n := len(f2.calls()); n != 6 {
		t.Fatalf("%d calls, want 3 rounds of 2 types", n)
	}
	// Other errors are not retried as capacity.
	f3, srv3 := newFakeEC2()
	defer srv3.Close()
	f3.fail["RunInstances"] = []string{"InvalidAMIID.NotFound"}
	if _, err := testEC2(t, srv3, "c6i.large", "m6i.large").Start(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "InvalidAMIID.NotFound") || len(f3.calls()) != 1 {
		t.Fatalf("error %v after %v", err, f3.calls())
	}
}

// List finds the cluster's VMs by tag and state; Stop terminates them.
func TestEC2ListAndStop(t *testing.T) {
	f, srv := newFakeEC2()
	defer srv.Close()
	e := testEC2(t, srv, "c6i.large")
	ctx := context.Background()
	if _, err := e.Start(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(ctx, []string{"i-1", "i-3"}); err != nil {
		t.Fatal(err)
	}
	term := f.requests[1]
	if term.Get("Action") != "TerminateInstances" || term.Get("InstanceId.1") != "i-1" || term.Get("InstanceId.2") != "i-3" || term.Get("InstanceId.3") != "" {
		t.Fatalf("TerminateInstances request %v", term)
	}
	ws, err := e.List(ctx)
	if err != nil || len(ws) != 1 || ws[0].ID != "i-2" {
		t.Fatalf("List: %+v %v", ws, err)
	}
	desc := f.requests[2]
	filters := map[string]string{}
	for i := 1; desc.Get(fmt.Sprintf("Filter.%d.Name", i)) != ""; i++ {
		var vals []string
		for j := 1; desc.Get(fmt.Sprintf("Filter.%d.Value.%d", i, j)) != ""; j++ {
			vals = append(vals, desc.Get(fmt.Sprintf("Filter.%d.Value.%d", i, j)))
		}
		filters[desc.Get(fmt.Sprintf("Filter.%d.Name", i))] = strings.Join(vals, ",")
	}
	if !reflect.DeepEqual(filters, map[string]string{"tag:spate:cluster": "test", "instance-state-name": "pending,running"}) {
		t.Fatalf("DescribeInstances filters %v", filters)
	}
}

// The pool keeps its warm workers on EC2, hands one out at once, and
// stops idle ones beyond its size.
func TestPoolOnEC2(t *testing.T) {
	f, srv := newFakeEC2()
	defer srv.Close()
	ctx := context.Background()
	p := NewPool(testEC2(t, srv, "c6i.large"), 2, time.Minute)
	if err := p.Fill(ctx); err != nil {
		t.Fatal(err)
	}
	if warm, _ := p.Counts(); warm != 2 {
		t.Fatalf("%d warm", warm)
	}
	w, err := p.Acquire(ctx)
	if err != nil || w.ID != "i-1" {
		t.Fatalf("acquired %v %v", w, err)
	}
	if got := f.calls(); len(got) != 1 {
		t.Fatalf("acquiring a warm worker called EC2: %v", got)
	}
	if err := p.Fill(ctx); err != nil { // back to 2 warm
		t.Fatal(err)
	}
	p.Release(w.ID) // 3 warm now, one more than the size
	if stopped, err := p.Reap(ctx, time.Now()); err != nil || len(stopped) != 0 {
		t.Fatalf("reaped before the idle timeout: %v %v", stopped, err)
	}
	stopped, err := p.Reap(ctx, time.Now().Add(2*time.Minute))
	if err != nil || len(stopped) != 1 {
		t.Fatalf("reaped %v %v", stopped, err)
	}
	if warm, inUse := p.Counts(); warm != 2 || inUse != 0 {
		t.Fatalf("warm %d, in use %d", warm, inUse)
	}
	if last := f.requests[len(f.requests)-1]; last.Get("Action") != "TerminateInstances" || last.Get("InstanceId.1") != stopped[0] {
		t.Fatalf("last request %v", last)
	}
}
