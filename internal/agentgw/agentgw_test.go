package agentgw

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/iam"
	"github.com/berthdev/berth/internal/store"
)

type recordingObserver struct {
	mu                     sync.Mutex
	opened, closed, report int
	reportErrs             int
}

func (o *recordingObserver) StreamOpened() { o.mu.Lock(); o.opened++; o.mu.Unlock() }
func (o *recordingObserver) StreamClosed() { o.mu.Lock(); o.closed++; o.mu.Unlock() }
func (o *recordingObserver) ReportReceived(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.report++
	if err != nil {
		o.reportErrs++
	}
}

func (o *recordingObserver) counts() (opened, closed, reports, reportErrs int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.opened, o.closed, o.report, o.reportErrs
}

// The gateway tells its observer when an agent's assignment stream opens
// and closes, and about each report; a refused stream is not counted.
func TestGatewayObserver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := store.StartEmbedded(ctx, store.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	svc := ecs.New(e.Store(), ecs.Config{Region: "us-east-1", Account: "000000000000"}, nil)
	gw := New(svc, iam.NewKeyring(), nil)
	obs := &recordingObserver{}
	gw.SetObserver(obs)
	srv := httptest.NewServer(gw)
	defer srv.Close()

	tok, _, err := svc.CreateJoinToken(ctx, ecs.JoinTokenOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c := &agentapi.Client{Endpoint: srv.URL, Region: "us-east-1"}
	jr, err := c.Join(ctx, agentapi.JoinRequest{Token: tok, Hostname: "h1",
		Resources: agentapi.Resources{CPU: 1024, MemoryMiB: 1024, OSType: "linux", CPUArch: "x86_64"}})
	if err != nil {
		t.Fatal(err)
	}

	// A stream with a wrong secret is refused before it opens.
	bad := &agentapi.Client{Endpoint: srv.URL, Region: "us-east-1", AccessKeyID: jr.AccessKeyID, SecretAccessKey: "wrong"}
	if err := bad.Assignments(ctx, 0, func(agentapi.Event) error { return nil }); err == nil {
		t.Fatal("a stream with a wrong secret was accepted")
	}
	if o, _, _, _ := obs.counts(); o != 0 {
		t.Fatalf("refused stream counted as opened (%d)", o)
	}

	c.AccessKeyID, c.SecretAccessKey = jr.AccessKeyID, jr.SecretAccessKey
	sctx, stop := context.WithCancel(ctx)
	first := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var once sync.Once
		c.Assignments(sctx, 0, func(agentapi.Event) error { once.Do(func() { close(first) }); return nil })
	}()
	select {
	case <-first:
	case <-time.After(30 * time.Second):
		t.Fatal("no event on the assignment stream")
	}
	if o, cl, _, _ := obs.counts(); o != 1 || cl != 0 {
		t.Fatalf("with one stream open: opened %d, closed %d", o, cl)
	}
	if err := c.Report(ctx, agentapi.Report{}); err != nil {
		t.Fatal(err)
	}
	stop()
	<-done
	deadline := time.Now().Add(10 * time.Second)
	for {
		o, cl, reports, reportErrs := obs.counts()
		if cl == 1 {
			if o != 1 || reports != 1 || reportErrs != 0 {
				t.Fatalf("opened %d, reports %d (%d failed); want 1, 1 (0)", o, reports, reportErrs)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream not counted as closed after the agent went away (opened %d, closed %d)", o, cl)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A single-use join token registers one instance, however many agents
// race with it; a token bound to a cluster puts its agent there and
// refuses any other cluster.
func TestJoinTokenSingleUseAndCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := store.StartEmbedded(ctx, store.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	svc := ecs.New(e.Store(), ecs.Config{Region: "us-east-1", Account: "000000000000"}, nil)
	if _, err := svc.CreateCluster(ctx, &ecsapi.CreateClusterRequest{ClusterName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(svc, iam.NewKeyring(), nil))
	defer srv.Close()
	c := &agentapi.Client{Endpoint: srv.URL, Region: "us-east-1"}
	req := agentapi.JoinRequest{Hostname: "h", Resources: agentapi.Resources{CPU: 1024, MemoryMiB: 1024, OSType: "linux", CPUArch: "x86_64"}}

	if _, _, err := svc.CreateJoinToken(ctx, ecs.JoinTokenOptions{Cluster: "nope"}); err == nil {
		t.Fatal("a token for a missing cluster was made")
	}
	once, _, err := svc.CreateJoinToken(ctx, ecs.JoinTokenOptions{Cluster: "prod", SingleUse: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var joined []agentapi.JoinResponse
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := req
			r.Token = once
			if jr, err := c.Join(ctx, r); err == nil {
				mu.Lock()
				joined = append(joined, jr)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(joined) != 1 || joined[0].Cluster != "prod" {
		t.Fatalf("single-use token: %d joins (%+v), want 1 in prod", len(joined), joined)
	}

	bound, _, err := svc.CreateJoinToken(ctx, ecs.JoinTokenOptions{Cluster: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	r := req
	r.Token, r.Cluster = bound, "default"
	if _, err := c.Join(ctx, r); err == nil {
		t.Fatal("a token bound to prod registered an instance in default")
	}
	r.Cluster = ""
	if jr, err := c.Join(ctx, r); err != nil || jr.Cluster != "prod" {
		t.Fatalf("bound token without a cluster: %+v %v; want prod", jr, err)
	}
}
