package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/seal"
	"github.com/berthdev/berth/internal/sigv4"
	"github.com/berthdev/berth/internal/store"
)

// A dump of the store reveals neither an agent's secret nor the
// registry's token key: both are sealed with <data-dir>/secret.key (0600),
// which is not in the store; the agent still authenticates.
func TestStoreDumpRevealsNoAgentSecret(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	s, err := Start(ctx, Config{Listen: "127.0.0.1:0", DataDir: dir, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok, err := s.JoinToken(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := agentapi.ParseJoinToken(tok)
	c := &agentapi.Client{Endpoint: s.Endpoint(), Region: s.Config().Region}
	jr, err := c.Join(ctx, agentapi.JoinRequest{Token: secret, Hostname: "h",
		Resources: agentapi.Resources{CPU: 1024, MemoryMiB: 1024, OSType: "linux", CPUArch: "x86_64"}})
	if err != nil {
		t.Fatal(err)
	}
	c.AccessKeyID, c.SecretAccessKey = jr.AccessKeyID, jr.SecretAccessKey
	if err := c.Report(ctx, agentapi.Report{}); err != nil {
		t.Fatalf("agent with a sealed secret: %v", err)
	}
	// The registry's token key is made at the first token.
	body := []byte("{}")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.Endpoint()+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken")
	sigv4.Sign(req, body, s.root.AccessKeyID, s.root.SecretAccessKey, s.Config().Region, "ecr", time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GetAuthorizationToken: %d", resp.StatusCode)
	}

	l, err := s.Store().List(ctx, "/", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sawKey := false
	for _, kv := range l.KVs {
		if strings.Contains(string(kv.Value), jr.SecretAccessKey) {
			t.Fatalf("the agent's secret is in the store in clear under %s", kv.Key)
		}
		if kv.Key == "/registry/config/token-key" {
			sawKey = true
			if !seal.IsSealed(string(kv.Value)) {
				t.Fatalf("the registry token key is in the store in clear: %q", kv.Value)
			}
		}
	}
	if !sawKey {
		t.Fatal("no registry token key in the store")
	}
	if fi, err := os.Stat(filepath.Join(dir, seal.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, want mode 0600", seal.KeyFile, err)
	}
}
