package berthtest

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/berthdev/berth/internal/testimage"
)

// ToolImage is the test image: a static Go program FROM scratch whose
// arguments are steps (sleep:1s, exit:3, serve:8080, term:1s:0, ...; see
// internal/testimage/tool). No registry is needed: it is built locally.
const ToolImage = testimage.Tool

var (
	toolOnce sync.Once
	toolErr  error
)

// NeedDocker skips the test when Docker Engine is not answering, unless
// BERTH_REQUIRE_DOCKER=1 (CI), and builds the tool image once.
func NeedDocker(t testing.TB) {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = cli.Ping(ctx, client.PingOptions{})
		cancel()
	}
	if err != nil {
		if os.Getenv("BERTH_REQUIRE_DOCKER") == "1" {
			t.Fatalf("Docker Engine is required (BERTH_REQUIRE_DOCKER=1): %v", err)
		}
		t.Skipf("Docker Engine not answering: %v", err)
	}
	defer cli.Close()
	toolOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		toolErr = testimage.BuildTool(ctx, cli)
	})
	if toolErr != nil {
		t.Fatalf("build %s: %v", ToolImage, toolErr)
	}
}

// RemoveAgentContainers removes every container (running or not) that
// the agent of a container instance made, and their task volumes: tests
// call it when they end so the machine's Docker is left clean.
func RemoveAgentContainers(t testing.TB, instanceARN string) {
	t.Helper()
	d, err := dockerdriver.New(dockerdriver.Config{})
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := d.ListContainers(ctx, dockerdriver.ListOptions{All: true, Labels: map[string]string{dockerdriver.LabelInstance: instanceARN}})
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	for _, c := range list {
		if err := d.RemoveContainer(ctx, c.ID, dockerdriver.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			t.Logf("cleanup %s: %v", c.ID, err)
		}
	}
}
