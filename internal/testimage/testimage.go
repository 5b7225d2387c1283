// Package testimage builds the Docker image Berth's tests run: the program
// in ./tool compiled statically and put FROM scratch as /tool, the
// entrypoint, with the classic builder, so that no registry is needed. The
// dockerdriver and taskrun tests and internal/berthtest all use it.
package testimage

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

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
)

// Tool is the test image's reference.
const Tool = "berth-test/tool:latest"

// ModuleRoot finds the module's root (where go.mod is) from the working
// directory up.
func ModuleRoot() (string, error) {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found")
		}
		dir = parent
	}
}

// BuildTool compiles the tool and builds the image Tool on the daemon cli
// talks to.
func BuildTool(ctx context.Context, cli *client.Client) error { return BuildToolAs(ctx, cli, Tool) }

// BuildToolAs is BuildTool under another tag: a test that needs steps of
// its own worktree's tool uses a tag no other checkout sharing the Docker
// Engine rebuilds under it.
func BuildToolAs(ctx context.Context, cli *client.Client, tag string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "berth-tool-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "tool")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./internal/testimage/tool")
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
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY tool /tool\nWORKDIR /tmp\nENTRYPOINT [\"/tool\"]\n")},
		{"tool", 0o755, binary},
	} {
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
		Tags: []string{tag}, Remove: true, ForceRemove: true, Version: build.BuilderV1, Dockerfile: "Dockerfile",
	})
	if err != nil {
		return fmt.Errorf("docker build: %w", err)
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
