package berthtest

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/build"

	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/moby/moby/client"
)

// ToolImage is the test image: a static Go program FROM scratch whose
// arguments are steps (sleep:1s, exit:3, serve:8080, term:1s:0, ...; see
// internal/dockerdriver/testdata/tool). No registry is needed: it is built
// locally.
const ToolImage = "berth-test/tool:latest"

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
		toolErr = buildToolImage(ctx, cli)
	})
	if toolErr != nil {
		t.Fatalf("build %s: %v", ToolImage, toolErr)
	}
}

func buildToolImage(ctx context.Context, cli *client.Client) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "berth-tool-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "tool")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./internal/dockerdriver/testdata/tool")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("compile the tool: %v\n%s", err, out)
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY tool /tool\nWORKDIR /tmp\nENTRYPOINT [\"/tool\"]\n")},
		{"tool", 0o755, binary},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	resp, err := cli.ImageBuild(ctx, &ctxTar, client.ImageBuildOptions{
		Tags: []string{ToolImage}, Remove: true, ForceRemove: true, Version: build.BuilderV1, Dockerfile: "Dockerfile",
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var m struct {
			Error *struct{ Message string } `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != nil {
			return fmt.Errorf("docker build: %s", m.Error.Message)
		}
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
