package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/daemon"
	"github.com/berthdev/berth/internal/dockerdriver"
)

// dockerEnv is what the benchmarks on Docker share: a client of this
// machine's Docker Engine, and an in-process Berth (embedded etcd) in a
// temporary directory to which agents on that Engine join.
type dockerEnv struct {
	dc            *client.Client
	dir           string
	srv           *daemon.Server
	log           *slog.Logger
	dockerVersion string
	maxStarts     int  // the agents' MaxConcurrentStarts
	fargate       bool // the agents offer Fargate capacity
}

// startDockerEnv checks that image is in Docker's local cache (nothing is
// pulled) and starts Berth. close undoes it.
func startDockerEnv(ctx context.Context, image, name string, log *slog.Logger) (_ *dockerEnv, err error) {
	e := &dockerEnv{log: log}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.dc, err = client.New(client.FromEnv); err != nil {
		return nil, err
	}
	if _, err := e.dc.ImageInspect(ctx, image); err != nil {
		return nil, fmt.Errorf("image %s must be in Docker's local cache (nothing is pulled; `go test ./test/scenario` builds berth-test/tool): %w", image, err)
	}
	if v, err := e.dc.ServerVersion(ctx, client.ServerVersionOptions{}); err == nil {
		e.dockerVersion = v.Version
	}
	if e.dir, err = os.MkdirTemp("", "berth-bench-"+name+"-"); err != nil {
		return nil, err
	}
	if e.srv, err = daemon.Start(ctx, daemon.Config{Listen: "127.0.0.1:0", DataDir: e.dir + "/server", Log: log}); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *dockerEnv) close() {
	if e.srv != nil {
		e.srv.Close()
	}
	if e.dir != "" {
		os.RemoveAll(e.dir)
	}
	if e.dc != nil {
		e.dc.Close()
	}
}

// startAgent joins a node agent (prefer-cached pulls) to Berth and waits
// until it has its first assignments. The caller closes it and removes
// its containers (removeAgentContainers).
func (e *dockerEnv) startAgent(ctx context.Context, name, az string) (*daemon.Agent, error) {
	tok, err := e.srv.JoinToken(ctx, time.Hour)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	md := l.Addr().String()
	l.Close()
	ag, err := daemon.StartAgent(ctx, daemon.AgentConfig{
		Endpoint: e.srv.Endpoint(), Region: e.srv.Config().Region, DataDir: e.dir + "/" + name, JoinToken: tok,
		AvailabilityZone: az, MetadataAddr: md, StopTimeout: 5 * time.Second, Version: "bench",
		PullBehavior: dockerdriver.PullPreferCached, MaxConcurrentStarts: e.maxStarts, Log: e.log,
		Fargate: e.fargate,
	})
	if err != nil {
		return nil, err
	}
	select {
	case <-ag.Ready():
		return ag, nil
	case <-time.After(30 * time.Second):
		e.removeAgent(context.WithoutCancel(ctx), ag)
		return nil, errors.New("agent not ready within 30s")
	}
}

// removeAgent stops an agent and removes the containers it leaves behind.
func (e *dockerEnv) removeAgent(ctx context.Context, ag *daemon.Agent) {
	ag.Close()
	removeLabelled(ctx, e.dc, dockerdriver.LabelInstance+"="+ag.State().ContainerInstanceArn)
}

// ecsClient is an ECS client of Berth with its root credentials; retry
// false makes every call single (a latency measurement), true gives the
// SDK's standard retryer, as a real client has.
func (e *dockerEnv) ecsClient(retry bool) *ecs.Client {
	creds, _ := e.srv.RootCredentials()
	cfg := aws.Config{
		Region:       e.srv.Config().Region,
		Credentials:  credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
		BaseEndpoint: aws.String(e.srv.Endpoint()),
	}
	if !retry {
		cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	}
	return ecs.NewFromConfig(cfg)
}
