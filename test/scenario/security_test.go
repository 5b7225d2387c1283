package scenario

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/daemon"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/tlsca"
)

// runBerth runs the binary to completion (at most 60 s).
func runBerth(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cx, berthtest.Binary(t), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("berth %v: %v", args, err)
	}
	return o.String(), e.String(), 0
}

// startSecAgent runs `berth agent` until the test ends.
func startSecAgent(t *testing.T, args ...string) (*berthtest.SyncBuffer, *exited) {
	t.Helper()
	out := &berthtest.SyncBuffer{}
	argv := append([]string{"agent", "--metadata-addr", berthtest.FreeAddr(t), "--image-pull-behavior", "prefer-cached", "--log-level", "warn"}, args...)
	cmd := exec.Command(berthtest.Binary(t), argv...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := berthtest.StartCommand(cmd); err != nil {
		t.Fatal(err)
	}
	ex := &exited{done: make(chan struct{})}
	go func() { ex.err = cmd.Wait(); close(ex.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-ex.done:
		case <-time.After(5 * time.Second):
		}
	})
	return out, ex
}

// exited is closed (done) when a process has exited, with its error.
type exited struct {
	done chan struct{}
	err  error
}

// waitExit waits for an agent process that must fail, and checks its
// output names the reason.
func waitExit(t *testing.T, out *berthtest.SyncBuffer, ex *exited, want string) {
	t.Helper()
	select {
	case <-ex.done:
		if ex.err == nil {
			t.Fatalf("agent exited 0; want a failure saying %q\n%s", want, out.String())
		}
		if !strings.Contains(out.String(), want) {
			t.Fatalf("agent output does not say %q:\n%s", want, out.String())
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("agent still running; want it refused with %q\n%s", want, out.String())
	}
}

func caPool(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("no certificate in %s", path)
	}
	return pool
}

func httpsConfig(s *berthtest.Server, pool *x509.CertPool) aws.Config {
	cfg := s.AWSConfig()
	cfg.BaseEndpoint = aws.String("https://" + strings.TrimPrefix(s.Endpoint, "http://"))
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	cfg.HTTPClient = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return cfg
}

// A second host's agent joins over TLS: `berth join-token` prints a token
// carrying the CA's pin, bound to a cluster and good once; `berth agent`
// with an https endpoint checks the pin, keeps the CA and lands in the
// token's cluster. Plain HTTP to another host, a wrong pin, a used token
// and another cluster are refused. The API port answers HTTPS too (SDK
// and both CLIs with --ca-bundle).
func TestAgentJoinsOverPinnedTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary's agent on Docker")
	}
	berthtest.NeedDocker(t)
	dir := t.TempDir()
	t0 := time.Now()
	step := func(what string) { t.Logf("%6.2fs %s", time.Since(t0).Seconds(), what) }
	p := berthtest.StartProcess(t, "server", dir, nil, "--throttle=false")
	step("server up")
	cx := ctx(t)
	caFile := filepath.Join(dir, "tls", "ca.crt")
	pool := caPool(t, caFile)

	c := ecs.NewFromConfig(httpsConfig(p.Server, pool))
	if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")}); err != nil {
		t.Fatalf("CreateCluster over HTTPS: %v", err)
	}
	step("next")
	// The token carries the CA's pin.
	out, errOut, code := runBerth(t, "join-token", "--endpoint", p.Endpoint, "--data-dir", dir, "--cluster", "prod", "--single-use")
	if code != 0 {
		t.Fatalf("berth join-token: %d\n%s", code, errOut)
	}
	tok := strings.TrimSpace(out)
	b, _ := os.ReadFile(caFile)
	blk, _ := pem.Decode(b)
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pin := tlsca.Pin(ca)
	if !strings.HasSuffix(tok, "."+pin) {
		t.Fatalf("join token %q does not carry the CA pin %s", tok, pin)
	}
	https := "https://" + strings.TrimPrefix(p.Endpoint, "http://")

	step("next")
	// Plain HTTP to another host: refused before anything is sent.
	o, ex := startSecAgent(t, "--endpoint", "http://192.0.2.10:4566", "--data-dir", t.TempDir(), "--join-token", tok)
	waitExit(t, o, ex, "refusing plain HTTP")
	step("next")
	// The real join: over TLS, into the token's cluster.
	adir := t.TempDir()
	o, ex = startSecAgent(t, "--endpoint", https, "--data-dir", adir, "--join-token", tok)
	var arn string
	for deadline := time.Now().Add(30 * time.Second); ; {
		l, err := c.ListContainerInstances(cx, &ecs.ListContainerInstancesInput{Cluster: aws.String("prod")})
		if err == nil && len(l.ContainerInstanceArns) == 1 {
			d, err := c.DescribeContainerInstances(cx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("prod"), ContainerInstances: l.ContainerInstanceArns})
			if err == nil && len(d.ContainerInstances) == 1 && d.ContainerInstances[0].AgentConnected {
				arn = aws.ToString(d.ContainerInstances[0].ContainerInstanceArn)
				break
			}
		}
		select {
		case <-ex.done:
			t.Fatalf("agent exited: %v\n%s", ex.err, o.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not connected in cluster prod: %v\n%s", err, o.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = arn // no task runs: the agent leaves no container behind
	st, err := agent.LoadState(adir)
	if err != nil || !strings.Contains(st.CACert, "BEGIN CERTIFICATE") || st.Cluster != "prod" {
		t.Fatalf("agent state: %+v, %v; want the pinned CA and cluster prod", st, err)
	}

	step("joined")
	// Refused, started together: a pin that is not this server's CA (before
	// anything is sent), the spent single-use token, and a token bound to
	// prod asked for another cluster.
	wrong := strings.TrimSuffix(tok, pin) + "sha256:" + strings.Repeat("0", 64)
	o1, ex1 := startSecAgent(t, "--endpoint", https, "--data-dir", t.TempDir(), "--join-token", wrong)
	o2, ex2 := startSecAgent(t, "--endpoint", https, "--data-dir", t.TempDir(), "--join-token", tok)
	out, _, _ = runBerth(t, "join-token", "--endpoint", p.Endpoint, "--data-dir", dir, "--cluster", "prod")
	o3, ex3 := startSecAgent(t, "--endpoint", https, "--data-dir", t.TempDir(), "--join-token", strings.TrimSpace(out), "--cluster", "default")
	waitExit(t, o1, ex1, "pin")
	waitExit(t, o2, ex2, "not valid")
	waitExit(t, o3, ex3, "is for cluster prod")
	step("done")
}

// The AWS API port answers HTTPS with the certificate Berth's CA issued:
// both CLIs with --ca-bundle.
func TestAPIOverHTTPSWithCLIs(t *testing.T) {
	t.Parallel()
	s := berthtest.Start(t, nil)
	caFile := filepath.Join(s.DataDir, "tls", "ca.crt")
	hs := *s
	hs.Endpoint = "https://" + strings.TrimPrefix(s.Endpoint, "http://")
	for _, cli := range berthtest.CLIs(t) {
		out, errOut, code := cli.Run(t, &hs, "ecs", "create-cluster", "--cluster-name", "tls", "--ca-bundle", caFile)
		if code != 0 || !strings.Contains(out, "cluster/tls") {
			t.Fatalf("%s over HTTPS with --ca-bundle: code %d\n%s%s", cli.Name, code, out, errOut)
		}
	}
}

// An operator's certificate (--tls-cert/--tls-key) is what HTTPS clients
// see; agents, which ask for tlsca.AgentServerName, still get the one
// Berth's CA issued, so join tokens keep working.
func TestOperatorCertificate(t *testing.T) {
	t.Parallel()
	cdir := t.TempDir()
	opCA, err := tlsca.LoadOrCreateCA(cdir, "Operator CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := opCA.Issue(cdir, "api", tlsca.LeafSpec{CommonName: "api", Server: true, DNSNames: []string{"localhost"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := berthtest.Start(t, func(c *daemon.Config) { c.TLSCertFile, c.TLSKeyFile = leaf.CertFile, leaf.KeyFile })
	port := s.Endpoint[strings.LastIndex(s.Endpoint, ":"):]
	hs := *s
	hs.Endpoint = "http://localhost" + port
	c := ecs.NewFromConfig(httpsConfig(&hs, caPool(t, filepath.Join(cdir, "ca.crt"))))
	if _, err := c.ListClusters(ctx(t), &ecs.ListClustersInput{}); err != nil {
		t.Fatalf("ListClusters over HTTPS with the operator's certificate: %v", err)
	}
	got, err := tlsca.Discover(ctx(t), strings.TrimPrefix(s.Endpoint, "http://"), s.Daemon.CAPin())
	if err != nil || !bytes.Equal(got, s.Daemon.CACertPEM()) {
		t.Fatalf("agent discovery beside an operator certificate: %v", err)
	}
	// Berth's CA does not verify the operator's certificate.
	c2 := ecs.NewFromConfig(httpsConfig(&hs, caPool(t, filepath.Join(s.DataDir, "tls", "ca.crt"))))
	if _, err := c2.ListClusters(ctx(t), &ecs.ListClustersInput{}); err == nil {
		t.Fatal("the operator's certificate verified under Berth's CA")
	}
}

// `berth server` on an external etcd that requires TLS client
// certificates (an embedded etcd locked down as Berth runs its own), with
// etcdctl's flags: --etcd-cacert, --etcd-cert, --etcd-key.
func TestServerOnTLSEtcd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e, err := store.StartEmbedded(ctx(t), store.EmbeddedConfig{Dir: filepath.Join(dir, "etcd"), PKIDir: filepath.Join(dir, "pki")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	f := e.ClientTLS()
	p := berthtest.StartProcess(t, "server", filepath.Join(dir, "berth"), nil, "--throttle=false",
		"--etcd-endpoints", strings.Join(e.Endpoints(), ","), "--etcd-cacert", f.CACert, "--etcd-cert", f.Cert, "--etcd-key", f.Key)
	c := ecs.NewFromConfig(p.AWSConfig())
	if _, err := c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("on-tls")}); err != nil {
		t.Fatal(err)
	}
	l, err := e.Store().List(ctx(t), "/berth/", store.ListOptions{KeysOnly: true})
	if err != nil || !slices.ContainsFunc(l.KVs, func(kv store.KV) bool { return strings.Contains(kv.Key, "on-tls") }) {
		t.Fatalf("the cluster is not in the external etcd: %v", err)
	}
}
