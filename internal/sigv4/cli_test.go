package sigv4

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// These tests run the real AWS CLIs against a recording server and verify
// the requests they sent. A missing CLI skips the test, unless
// BERTH_REQUIRE_CLIS=1 (as in CI), which makes it fail.

type cli struct {
	name    string // for test names
	path    string // "" when not installed
	version string // "aws-cli/1.", "aws-cli/2."
}

// findCLI returns the path of an AWS CLI whose --version starts with
// prefix, looking at the candidates in order.
func findCLI(t *testing.T, prefix string, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		p, err := exec.LookPath(c)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, p, "--version").CombinedOutput()
		cancel()
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(out)), prefix) {
			return p
		}
	}
	return ""
}

func requireCLI(t *testing.T, name, path string) {
	t.Helper()
	if path != "" {
		return
	}
	if os.Getenv("BERTH_REQUIRE_CLIS") == "1" {
		t.Fatalf("%s is not installed and BERTH_REQUIRE_CLIS=1", name)
	}
	t.Skipf("%s is not installed", name)
}

// cliEnv is the environment for a CLI run: the test credentials, no config
// or credentials files, no instance metadata, no pager.
func cliEnv(t *testing.T) []string {
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	creds := filepath.Join(dir, "credentials")
	for _, f := range []string{config, creds} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"AWS_ACCESS_KEY_ID="+testKey,
		"AWS_SECRET_ACCESS_KEY="+testSecret,
		"AWS_CONFIG_FILE="+config,
		"AWS_SHARED_CREDENTIALS_FILE="+creds,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
		"AWS_MAX_ATTEMPTS=1",
	)
}

func TestVerifyAWSCLIs(t *testing.T) {
	clis := []cli{
		{name: "cli-v1", path: findCLI(t, "aws-cli/1.", "aws"), version: "aws-cli/1."},
		{name: "cli-v2-debian", path: findCLI(t, "aws-cli/2.", "/usr/bin/aws"), version: "aws-cli/2."},
	}
	commands := []struct {
		name    string
		service string
		args    []string
	}{
		{"ecs list-clusters", "ecs", []string{"ecs", "list-clusters"}},
		{"ecs describe-clusters", "ecs", []string{"ecs", "describe-clusters", "--clusters", "default", "name with spaces ünï"}},
		{"sts get-caller-identity", "sts", []string{"sts", "get-caller-identity"}},
	}
	for _, c := range clis {
		t.Run(c.name, func(t *testing.T) {
			requireCLI(t, "AWS CLI ("+c.version+"x)", c.path)
			for _, cmd := range commands {
				t.Run(cmd.name, func(t *testing.T) {
					rec := newRecorder(t)
					args := append(append([]string{}, cmd.args...),
						"--endpoint-url", rec.srv.URL, "--region", "us-east-1",
						"--cli-read-timeout", "5", "--cli-connect-timeout", "5", "--output", "json")
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					run := exec.CommandContext(ctx, c.path, args...)
					run.Env = cliEnv(t)
					out, err := run.CombinedOutput()
					if err != nil {
						t.Errorf("%s %s: %v\n%s", c.path, strings.Join(args, " "), err, out)
					}
					reqs := rec.all()
					if len(reqs) == 0 {
						t.Fatalf("the CLI sent no request\n%s", out)
					}
					for _, got := range reqs {
						s, err := Verify(got.r, got.body, got.at, testKeys)
						if err != nil {
							t.Fatalf("Verify: %v\n%s %s\n%v\n%s", err, got.r.Method, got.r.RequestURI, got.r.Header, got.body)
						}
						if s.Service != cmd.service || s.Region != "us-east-1" || s.AccessKey != testKey {
							t.Fatalf("scope %+v", s)
						}
						a, _ := parseAuthorization(got.r.Header.Get("Authorization"))
						var sent []string
						for k := range got.r.Header {
							sent = append(sent, strings.ToLower(k))
						}
						slices.Sort(sent)
						t.Logf("%s %s; SignedHeaders=%s; headers sent: %s; Content-Type=%q; body %q",
							got.r.Method, got.r.RequestURI, a.SignedHeaders, strings.Join(sent, ","), got.r.Header.Get("Content-Type"), got.body)
					}
				})
			}
		})
	}
}
