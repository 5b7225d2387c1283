// Package berthtest starts real Berth control planes for tests: in-process
// (daemon.Start on a free loopback port, embedded etcd in a temp dir) or as
// the built binary (BERTH_BIN), and gives AWS SDK for Go v2 clients and AWS
// CLI invocations pointed at them.
package berthtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/daemon"
	"github.com/berthdev/berth/internal/iam"
	"github.com/berthdev/berth/internal/testimage"
)

// Server is a Berth under test.
type Server struct {
	Endpoint string
	Creds    iam.Credentials
	Region   string
	DataDir  string
	Daemon   *daemon.Server // nil for a process
}

// Start starts an in-process server; it is closed when the test ends.
// mod may adjust the configuration (throttling is off unless mod sets it).
func Start(t testing.TB, mod func(*daemon.Config)) *Server {
	t.Helper()
	dir := t.TempDir()
	cfg := daemon.Config{
		Listen:  "127.0.0.1:0",
		DataDir: dir,
		Log:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := daemon.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start berth: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	creds, _ := d.RootCredentials()
	return &Server{Endpoint: d.Endpoint(), Creds: creds, Region: d.Config().Region, DataDir: cfg.DataDir, Daemon: d}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// AWSConfig returns an SDK configuration for the server.
func (s *Server) AWSConfig() aws.Config {
	return aws.Config{
		Region:       s.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.Creds.AccessKeyID, s.Creds.SecretAccessKey, ""),
		BaseEndpoint: aws.String(s.Endpoint),
		HTTPClient:   &http.Client{Timeout: 30 * time.Second},
	}
}

// Binary returns the path of the built berth binary (BERTH_BIN), building
// it into a temp dir when unset.
func Binary(t testing.TB) string {
	t.Helper()
	if b := os.Getenv("BERTH_BIN"); b != "" {
		return b
	}
	out := filepath.Join(t.TempDir(), "berth")
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", out, "./cmd/berth")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func moduleRoot() (string, error) { return testimage.ModuleRoot() }

// FreeAddr returns a free loopback address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Process is a berth binary running as a child process.
type Process struct {
	*Server
	Cmd    *exec.Cmd
	Output *SyncBuffer
	exited chan struct{} // closed once the process has exited (Cmd.Wait returned)
}

// SyncBuffer is a bytes.Buffer safe to write from a child process's
// output copier while a test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// StartProcess runs `berth <mode> --listen ADDR --data-dir DIR args...` and
// waits for it to answer. It is killed when the test ends. A free port can
// be taken by another test between the check and the bind: the start is
// then tried again on a fresh one.
func StartProcess(t testing.TB, mode, dataDir string, env []string, args ...string) *Process {
	t.Helper()
	return StartProcessFresh(t, mode, dataDir, env, func() []string { return args })
}

// StartProcessFresh is StartProcess whose arguments args makes, called
// again with fresh free addresses (FreeAddr) when the process exits
// because an address it was given was taken meanwhile.
func StartProcessFresh(t testing.TB, mode, dataDir string, env []string, args func() []string) *Process {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p, err := startProcess(t, FreeAddr(t), mode, dataDir, env, args()...)
		if err == nil {
			return p
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("berth start attempt %d: an address was taken meanwhile; trying fresh ones", attempt)
	}
}

// StartProcessAt is StartProcess on a given listen address (a restart on
// the same address).
func StartProcessAt(t testing.TB, addr, mode, dataDir string, env []string, args ...string) *Process {
	t.Helper()
	p, err := startProcess(t, addr, mode, dataDir, env, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startProcess starts the binary and waits until it answers, or until it
// exits (an error with its output).
func startProcess(t testing.TB, addr, mode, dataDir string, env []string, args ...string) (*Process, error) {
	t.Helper()
	argv := []string{mode, "--listen", addr, "--data-dir", dataDir}
	if !slices.ContainsFunc(args, func(a string) bool {
		return strings.HasPrefix(a, "--dns-listen") || strings.HasPrefix(a, "-dns-listen")
	}) {
		// Tests run in parallel: no fixed DNS port unless the test asks.
		argv = append(argv, "--dns-listen=127.0.0.1:0")
	}
	if mode == "up" && !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--task-dns") || strings.HasPrefix(a, "-task-dns") }) {
		// One process at a time can hold the Docker gateway's port 53.
		argv = append(argv, "--task-dns=false")
	}
	if mode == "up" {
		// No node agent unless the test asks for one (--agent=true): it
		// needs Docker and binds the metadata port.
		argv = append(argv, "--agent=false")
	}
	argv = append(argv, args...)
	cmd := exec.Command(Binary(t), argv...)
	out := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	if err := StartCommand(cmd); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	p := &Process{Server: &Server{Endpoint: "http://" + addr, Region: daemon.DefaultRegion, DataDir: dataDir}, Cmd: cmd, Output: out, exited: exited}
	t.Cleanup(func() {
		// SIGTERM first, as a user stops it: the agent then removes what it
		// keeps only for itself (its ready pause pool containers); SIGKILL
		// if it has not exited within 10 s.
		select {
		case <-exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		}
		// Then the containers its agent ran. A test's own cleanup that
		// removes them runs before this one (cleanups run last first),
		// while the server still replaces service tasks: those would stay.
		if mode == "up" || mode == "agent" {
			for _, dir := range []string{filepath.Join(dataDir, "agent"), dataDir} {
				if st, err := agent.LoadState(dir); err == nil && st.ContainerInstanceArn != "" {
					RemoveAgentContainers(t, st.ContainerInstanceArn)
					break
				}
			}
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.Endpoint + "/health")
		if err == nil {
			resp.Body.Close()
			// The answer must be this process's: another test's server can
			// hold a port FreeAddr handed out. Servers print their address
			// once they listen.
			if (mode != "up" && mode != "server") || strings.Contains(out.String(), "Berth is up at "+p.Endpoint) {
				break
			}
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("berth %s exited before answering: %v\n%s", mode, cmd.ProcessState, out.String())
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("berth did not start: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := iam.LoadRoot(dataDir)
	if err != nil {
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "BERTH_ACCESS_KEY_ID="); ok {
				c.AccessKeyID = v
			}
			if v, ok := strings.CutPrefix(kv, "BERTH_SECRET_ACCESS_KEY="); ok {
				c.SecretAccessKey = v
			}
		}
	}
	p.Creds = c
	return p, nil
}

// Kill9 kills the process with SIGKILL and waits for it.
func (p *Process) Kill9() {
	p.Cmd.Process.Kill()
	<-p.exited
}

// Exited is closed once the process has exited; Cmd.ProcessState then
// says how. (Cmd.Wait is called by the Process itself: do not call it.)
func (p *Process) Exited() <-chan struct{} { return p.exited }

// CLI is one AWS CLI.
type CLI struct {
	Name string // "aws-v1" or "aws-v2"
	Path string
	// NeedsEndpointFlag: Debian's CLI v2.9 ignores AWS_ENDPOINT_URL.
	NeedsEndpointFlag bool
	// Env is added to the CLI's environment (e.g.
	// AWS_DISABLE_HOST_PREFIX_INJECTION=true).
	Env []string
}

// CLIs returns the AWS CLIs present: the pip CLI v1 (`aws` on PATH, not
// /usr/bin/aws) and Debian's CLI v2 (/usr/bin/aws). A missing CLI skips
// the test unless BERTH_REQUIRE_CLIS=1.
func CLIs(t testing.TB) []CLI {
	t.Helper()
	var out []CLI
	if p := pyenvAWS(); p != "" {
		out = append(out, CLI{Name: "aws-v1", Path: p})
	} else if p, err := exec.LookPath("aws"); err == nil && p != "/usr/bin/aws" {
		out = append(out, CLI{Name: "aws-v1", Path: p})
	}
	if _, err := os.Stat("/usr/bin/aws"); err == nil {
		out = append(out, CLI{Name: "aws-v2", Path: "/usr/bin/aws", NeedsEndpointFlag: true})
	}
	if len(out) < 2 && os.Getenv("BERTH_REQUIRE_CLIS") == "1" {
		t.Fatalf("both AWS CLIs are required (found %v)", out)
	}
	if len(out) == 0 {
		t.Skip("no AWS CLI installed")
	}
	return out
}

func pyenvAWS() string {
	home, _ := os.UserHomeDir()
	matches, _ := filepath.Glob(filepath.Join(home, ".pyenv/versions/*/bin/aws"))
	if len(matches) > 0 {
		return matches[0]
	}
	return ""
}

// Run runs the CLI against s with args and returns stdout, stderr and the
// exit code.
func (c CLI) Run(t testing.TB, s *Server, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	argv := append([]string{}, args...)
	argv = append(argv, "--endpoint-url", s.Endpoint, "--region", s.Region, "--output", "json", "--cli-read-timeout", "30", "--cli-connect-timeout", "10")
	dir := t.TempDir()
	env := append(cleanEnv(),
		"AWS_ACCESS_KEY_ID="+s.Creds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+s.Creds.SecretAccessKey,
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_PAGER=",
		"AWS_MAX_ATTEMPTS=3",
		"HOME="+dir,
	)
	env = append(env, c.Env...)
	if r, ok := runWarm(c.Path, argv, env); ok {
		return r.Stdout, r.Stderr, r.Code
	}
	cmd := exec.Command(c.Path, argv...)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			t.Fatalf("run %s: %v", c.Name, err)
		}
	}
	return o.String(), e.String(), code
}

// cleanEnv is the environment without AWS settings that could leak in.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// EachCLI runs f as a subtest per CLI (i its index in clis), the CLIs side
// by side. The subtests do not call t.Parallel: they take no parallel
// slot of their own, where a parallel subtest of a parallel test queues
// again behind every test waiting for one (-parallel 3 in CI held CLI
// subtests back for minutes). Each CLI must work on names of its own.
func EachCLI(t *testing.T, clis []CLI, f func(t *testing.T, i int, cli CLI)) {
	t.Helper()
	var wg sync.WaitGroup
	for i, cli := range clis {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(cli.Name, func(t *testing.T) { f(t, i, cli) })
		}()
	}
	wg.Wait()
}

// RunJSON runs the CLI as Run does and returns its JSON answer (empty
// output: an empty map); a non-zero exit or output that is not JSON fails
// the test.
func (c CLI) RunJSON(t testing.TB, s *Server, args ...string) map[string]any {
	t.Helper()
	out, errOut, code := c.Run(t, s, args...)
	if code != 0 {
		t.Fatalf("%s %v: exit %d: %s", c.Name, args, code, errOut)
	}
	m := map[string]any{}
	if strings.TrimSpace(out) != "" {
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%s %v: not JSON: %v: %s", c.Name, args, err, out)
		}
	}
	return m
}
