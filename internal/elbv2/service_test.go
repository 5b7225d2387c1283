package elbv2

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/alb"
	"github.com/berthdev/berth/internal/api/elbv2api"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

var (
	sharedStore store.Store
	storeOnce   sync.Once
	storeErr    error
	storeDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedStore != nil {
		sharedStore.Close()
		os.RemoveAll(storeDir)
	}
	os.Exit(code)
}

// fakePlane records what it is given and answers health from a table.
type fakePlane struct {
	mu        sync.Mutex
	cfg       alb.Config
	applied   int
	applyErr  error
	listenErr error
	health    map[string][]alb.TargetHealth
	changes   chan struct{}
}

func newFakePlane() *fakePlane {
	return &fakePlane{health: map[string][]alb.TargetHealth{}, changes: make(chan struct{}, 1)}
}

func (p *fakePlane) Apply(cfg alb.Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg = cfg
	p.applied++
	return p.applyErr
}
func (p *fakePlane) CanListen(arn, addr string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.listenErr
}
func (p *fakePlane) TargetHealth(tg string) []alb.TargetHealth {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.health[tg]
}
func (p *fakePlane) HealthChanges() <-chan struct{} { return p.changes }
func (p *fakePlane) config() alb.Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// testService returns a service on the shared embedded etcd, emptied of
// ELBv2 keys.
func testService(t *testing.T, plane DataPlane, serverID string) *Service {
	t.Helper()
	storeOnce.Do(func() {
		storeDir, _ = os.MkdirTemp("", "berth-elbv2-test")
		sharedStore, storeErr = store.Open(context.Background(), store.Config{DataDir: storeDir + "/etcd"})
	})
	if storeErr != nil {
		t.Fatal(storeErr)
	}
	return New(sharedStore, plane, Config{Region: "us-east-1", Account: "000000000000", ServerID: serverID,
		OwnerTTL: 3 * time.Second, Resync: 200 * time.Millisecond, CertDir: t.TempDir()}, nil)
}

func resetStore(t *testing.T) {
	t.Helper()
	storeOnce.Do(func() {
		storeDir, _ = os.MkdirTemp("", "berth-elbv2-test")
		sharedStore, storeErr = store.Open(context.Background(), store.Config{DataDir: storeDir + "/etcd"})
	})
	if storeErr != nil {
		t.Fatal(storeErr)
	}
	if _, err := sharedStore.Txn(context.Background(), nil, store.DeletePrefix("/berth/elbv2/")); err != nil {
		t.Fatal(err)
	}
}

var ctx = context.Background()

func run(t *testing.T, s *Service) context.CancelFunc {
	c, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Run(c); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return func() { cancel(); <-done }
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type fixture struct {
	lb, tg, lis string
	dns         string
}

func setup(t *testing.T, s *Service, name string, port int32) fixture {
	t.Helper()
	lb, err := s.CreateLoadBalancer(ctx, &elbv2api.CreateLoadBalancerInput{Name: ptr(name)})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := s.CreateTargetGroup(ctx, &elbv2api.CreateTargetGroupInput{Name: ptr(name + "-tg"), Protocol: ptr(protocolHTTP),
		Port: ptr(int32(8080)), TargetType: ptr(elbv2api.TargetTypeEnumIp)})
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{lb: *lb.LoadBalancers[0].LoadBalancerArn, tg: *tg.TargetGroups[0].TargetGroupArn, dns: *lb.LoadBalancers[0].DNSName}
	if _, err := s.RegisterTargets(ctx, &elbv2api.RegisterTargetsInput{TargetGroupArn: ptr(f.tg),
		Targets: []elbv2api.TargetDescription{{Id: ptr("10.0.0.7")}, {Id: ptr("10.0.0.8"), Port: ptr(int32(9090))}}}); err != nil {
		t.Fatal(err)
	}
	lis, err := s.CreateListener(ctx, &elbv2api.CreateListenerInput{LoadBalancerArn: ptr(f.lb), Port: ptr(port), Protocol: ptr(protocolHTTP),
		DefaultActions: []elbv2api.Action{fwd(f.tg)}})
	if err != nil {
		t.Fatal(err)
	}
	f.lis = *lis.Listeners[0].ListenerArn
	return f
}

func lbState(t *testing.T, s *Service, arn string) elbv2api.LoadBalancerState {
	t.Helper()
	out, err := s.DescribeLoadBalancers(ctx, &elbv2api.DescribeLoadBalancersInput{LoadBalancerArns: []string{arn}})
	if err != nil {
		t.Fatal(err)
	}
	return *out.LoadBalancers[0].State
}

// TestControllerAppliesConfig: the committed records reach the plane as
// one configuration, and the load balancer turns active.
func TestControllerAppliesConfig(t *testing.T) {
	resetStore(t)
	plane := newFakePlane()
	s := testService(t, plane, "server-a")
	f := setup(t, s, "shop", 18080)
	if st := lbState(t, s, f.lb); deref(st.Code) != "provisioning" {
		t.Fatalf("before the controller: %+v", st)
	}
	run(t, s)
	eventually(t, "active", func() bool { return deref(lbState(t, s, f.lb).Code) == "active" })
	cfg := plane.config()
	if len(cfg.LoadBalancers) != 1 || len(cfg.LoadBalancers[0].Listeners) != 1 || len(cfg.TargetGroups) != 1 {
		t.Fatalf("config: %+v", cfg)
	}
	l := cfg.LoadBalancers[0].Listeners[0]
	tg := cfg.TargetGroups[0]
	if l.Addr != "127.0.0.1:18080" || l.DefaultActions[0].Forward[0].ARN != f.tg || cfg.LoadBalancers[0].IdleTimeout != 60*time.Second {
		t.Fatalf("listener: %+v", l)
	}
	if len(tg.Targets) != 2 || tg.Targets[0].Addr != "10.0.0.7:8080" || tg.Targets[1].Addr != "10.0.0.8:9090" ||
		tg.HealthCheck.Interval != 30*time.Second || tg.HealthCheck.HealthyThreshold != 5 || tg.HealthCheck.Matcher != "200" ||
		tg.DeregistrationDelay != 300*time.Second {
		t.Fatalf("target group: %+v", tg)
	}
	// A rule and an attribute change reach the plane.
	if _, err := s.CreateRule(ctx, &elbv2api.CreateRuleInput{ListenerArn: ptr(f.lis), Priority: ptr(int32(3)),
		Conditions: []elbv2api.RuleCondition{{Field: ptr("host-header"), Values: []string{"api.example"}}},
		Actions:    []elbv2api.Action{fwd(f.tg)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ModifyLoadBalancerAttributes(ctx, &elbv2api.ModifyLoadBalancerAttributesInput{LoadBalancerArn: ptr(f.lb),
		Attributes: []elbv2api.LoadBalancerAttribute{{Key: ptr("idle_timeout.timeout_seconds"), Value: ptr("5")}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rule and idle timeout applied", func() bool {
		c := plane.config()
		return len(c.LoadBalancers) == 1 && c.LoadBalancers[0].IdleTimeout == 5*time.Second && len(c.LoadBalancers[0].Listeners[0].Rules) == 1 &&
			c.LoadBalancers[0].Listeners[0].Rules[0].Priority == 3 && c.LoadBalancers[0].Listeners[0].Rules[0].Conditions[0].Values[0] == "api.example"
	})
	// Deleting the load balancer empties the plane's configuration.
	if _, err := s.DeleteLoadBalancer(ctx, &elbv2api.DeleteLoadBalancerInput{LoadBalancerArn: ptr(f.lb)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "empty config", func() bool { return len(plane.config().LoadBalancers) == 0 })
}

// TestListenFailures: a port another program holds is refused at
// CreateListener naming the port; one lost later makes the load
// balancer active_impaired with the reason.
func TestListenFailures(t *testing.T) {
	resetStore(t)
	plane := newFakePlane()
	s := testService(t, plane, "server-a")
	f := setup(t, s, "shop", 18081)
	plane.mu.Lock()
	plane.listenErr = fmt.Errorf("listen tcp 127.0.0.1:18082: bind: address already in use")
	plane.mu.Unlock()
	_, err := s.CreateListener(ctx, &elbv2api.CreateListenerInput{LoadBalancerArn: ptr(f.lb), Port: ptr(int32(18082)),
		DefaultActions: []elbv2api.Action{fwd(f.tg)}})
	if codeOf(err) != "InvalidConfigurationRequest" || !strings.Contains(err.Error(), "port 18082") {
		t.Fatalf("port held elsewhere: %v", err)
	}
	plane.mu.Lock()
	plane.listenErr = nil
	plane.applyErr = &alb.ListenError{ListenerARN: f.lis, Addr: "127.0.0.1:18081", Err: fmt.Errorf("bind: address already in use")}
	plane.mu.Unlock()
	run(t, s)
	eventually(t, "active_impaired", func() bool {
		st := lbState(t, s, f.lb)
		return deref(st.Code) == "active_impaired" && strings.Contains(deref(st.Reason), "127.0.0.1:18081")
	})
	plane.mu.Lock()
	plane.applyErr = nil
	plane.mu.Unlock()
	eventually(t, "active again", func() bool { return deref(lbState(t, s, f.lb).Code) == "active" })
}

// TestCrossResourceRules: ports shared by every load balancer, target
// groups used by one load balancer, protocols by type, groups in use.
func TestCrossResourceRules(t *testing.T) {
	resetStore(t)
	s := testService(t, newFakePlane(), "server-a")
	a := setup(t, s, "a", 18090)
	b, err := s.CreateLoadBalancer(ctx, &elbv2api.CreateLoadBalancerInput{Name: ptr("b")})
	if err != nil {
		t.Fatal(err)
	}
	bARN := *b.LoadBalancers[0].LoadBalancerArn
	_, err = s.CreateListener(ctx, &elbv2api.CreateListenerInput{LoadBalancerArn: ptr(bARN), Port: ptr(int32(18090)), DefaultActions: []elbv2api.Action{fwd(a.tg)}})
	if codeOf(err) != "InvalidConfigurationRequest" || !strings.Contains(err.Error(), "Port 18090") {
		t.Fatalf("port of another load balancer: %v", err)
	}
	_, err = s.CreateListener(ctx, &elbv2api.CreateListenerInput{LoadBalancerArn: ptr(bARN), Port: ptr(int32(18091)), DefaultActions: []elbv2api.Action{fwd(a.tg)}})
	if codeOf(err) != "TargetGroupAssociationLimit" {
		t.Fatalf("target group of another load balancer: %v", err)
	}
	tcp, err := s.CreateTargetGroup(ctx, &elbv2api.CreateTargetGroupInput{Name: ptr("tcp"), Protocol: ptr(protocolTCP), Port: ptr(int32(5432)), TargetType: ptr(elbv2api.TargetTypeEnumIp)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateListener(ctx, &elbv2api.CreateListenerInput{LoadBalancerArn: ptr(bARN), Port: ptr(int32(18091)),
		DefaultActions: []elbv2api.Action{fwd(*tcp.TargetGroups[0].TargetGroupArn)}})
	if codeOf(err) != "IncompatibleProtocols" {
		t.Fatalf("TCP group behind an ALB: %v", err)
	}
	_, err = s.CreateListener(ctx, &elbv2api.CreateListenerInput{LoadBalancerArn: ptr(bARN), Port: ptr(int32(18091)), Protocol: ptr(protocolHTTPS),
		DefaultActions: []elbv2api.Action{fwd(*tcp.TargetGroups[0].TargetGroupArn)}})
	if codeOf(err) != "CertificateNotFound" {
		t.Fatalf("HTTPS without a certificate: %v", err)
	}
	_, err = s.CreateListener(ctx, &elbv2api.CreateListenerInput{LoadBalancerArn: ptr(bARN), Port: ptr(int32(18091)), Protocol: ptr(protocolHTTPS),
		Certificates:   []elbv2api.Certificate{{CertificateArn: ptr("arn:aws:acm:us-east-1:000000000000:certificate/missing")}},
		DefaultActions: []elbv2api.Action{fwd(a.tg)}})
	if codeOf(err) != "CertificateNotFound" || !strings.Contains(err.Error(), "cert.pem") {
		t.Fatalf("missing certificate files: %v", err)
	}
	_, err = s.DeleteTargetGroup(ctx, &elbv2api.DeleteTargetGroupInput{TargetGroupArn: ptr(a.tg)})
	if codeOf(err) != "ResourceInUse" {
		t.Fatalf("delete a used group: %v", err)
	}
	_, err = s.RegisterTargets(ctx, &elbv2api.RegisterTargetsInput{TargetGroupArn: ptr(a.tg), Targets: []elbv2api.TargetDescription{{Id: ptr("i-0123")}}})
	if codeOf(err) != "InvalidTarget" {
		t.Fatalf("an instance id in an ip group: %v", err)
	}
	_, err = s.DeregisterTargets(ctx, &elbv2api.DeregisterTargetsInput{TargetGroupArn: ptr(a.tg), Targets: []elbv2api.TargetDescription{{Id: ptr("10.9.9.9")}}})
	if codeOf(err) != "InvalidTarget" {
		t.Fatalf("deregister an unknown target: %v", err)
	}
	_, err = s.CreateTargetGroup(ctx, &elbv2api.CreateTargetGroupInput{Name: ptr("slow"), Protocol: ptr(protocolHTTP), Port: ptr(int32(80)),
		HealthCheckIntervalSeconds: ptr(int32(5)), HealthCheckTimeoutSeconds: ptr(int32(5))})
	if codeOf(err) != "ValidationError" {
		t.Fatalf("timeout not below the interval: %v", err)
	}
	_, err = s.CreateTargetGroup(ctx, &elbv2api.CreateTargetGroupInput{Name: ptr("a-tg"), Protocol: ptr(protocolHTTP), Port: ptr(int32(81)), TargetType: ptr(elbv2api.TargetTypeEnumIp)})
	if codeOf(err) != "DuplicateTargetGroupName" {
		t.Fatalf("duplicate target group: %v", err)
	}
	// The default rule cannot be deleted or moved.
	rules, err := s.DescribeRules(ctx, &elbv2api.DescribeRulesInput{ListenerArn: ptr(a.lis)})
	if err != nil || len(rules.Rules) != 1 || !deref(rules.Rules[0].IsDefault) {
		t.Fatalf("rules: %+v %v", rules, err)
	}
	if _, err := s.DeleteRule(ctx, &elbv2api.DeleteRuleInput{RuleArn: rules.Rules[0].RuleArn}); codeOf(err) != "OperationNotPermitted" {
		t.Fatalf("delete the default rule: %v", err)
	}
}

// TestTargetHealthFromPlane: DescribeTargetHealth answers the plane's
// states, draining ones included, and AWS's own for the rest.
func TestTargetHealthFromPlane(t *testing.T) {
	resetStore(t)
	plane := newFakePlane()
	s := testService(t, plane, "server-a")
	f := setup(t, s, "h", 18100)
	plane.health[f.tg] = []alb.TargetHealth{
		{ID: "10.0.0.7", Port: 8080, State: "healthy"},
		{ID: "10.0.0.8", Port: 9090, State: "unhealthy", Reason: "Target.ResponseCodeMismatch", Description: "Health checks failed with these codes: [500]"},
	}
	out, err := s.DescribeTargetHealth(ctx, &elbv2api.DescribeTargetHealthInput{TargetGroupArn: ptr(f.tg)})
	if err != nil || len(out.TargetHealthDescriptions) != 2 {
		t.Fatalf("%+v %v", out, err)
	}
	got := map[string]string{}
	for _, d := range out.TargetHealthDescriptions {
		got[*d.Target.Id] = string(*d.TargetHealth.State)
		if *d.Target.Id == "10.0.0.8" && (*d.TargetHealth.Reason != "Target.ResponseCodeMismatch" || *d.HealthCheckPort != "9090") {
			t.Fatalf("unhealthy target: %+v", d)
		}
	}
	if got["10.0.0.7"] != "healthy" || got["10.0.0.8"] != "unhealthy" {
		t.Fatalf("states: %v", got)
	}
	if _, err := s.DeregisterTargets(ctx, &elbv2api.DeregisterTargetsInput{TargetGroupArn: ptr(f.tg), Targets: []elbv2api.TargetDescription{{Id: ptr("10.0.0.7")}}}); err != nil {
		t.Fatal(err)
	}
	plane.health[f.tg][0] = alb.TargetHealth{ID: "10.0.0.7", Port: 8080, State: "draining", Reason: "Target.DeregistrationInProgress", Description: "Target deregistration is in progress"}
	out, _ = s.DescribeTargetHealth(ctx, &elbv2api.DescribeTargetHealthInput{TargetGroupArn: ptr(f.tg), Targets: []elbv2api.TargetDescription{{Id: ptr("10.0.0.7")}}})
	if st := out.TargetHealthDescriptions[0].TargetHealth; *st.State != "draining" {
		t.Fatalf("draining: %+v", st)
	}
	plane.health[f.tg] = plane.health[f.tg][1:]
	out, _ = s.DescribeTargetHealth(ctx, &elbv2api.DescribeTargetHealthInput{TargetGroupArn: ptr(f.tg), Targets: []elbv2api.TargetDescription{{Id: ptr("10.0.0.7")}}})
	if st := out.TargetHealthDescriptions[0].TargetHealth; *st.State != "unused" || *st.Reason != "Target.NotRegistered" {
		t.Fatalf("after draining: %+v", st)
	}
	if _, err := s.DescribeTargetHealth(ctx, &elbv2api.DescribeTargetHealthInput{TargetGroupArn: ptr(f.tg + "x")}); codeOf(err) != "TargetGroupNotFound" {
		t.Fatalf("missing group: %v", err)
	}
}

// TestOwnership: a load balancer is served by one server at a time; a
// restarted server (same id) takes its load balancers back at once; when
// the holder stops, another server takes them over.
func TestOwnership(t *testing.T) {
	resetStore(t)
	p1, p2 := newFakePlane(), newFakePlane()
	s1 := testService(t, p1, "server-1")
	f := setup(t, s1, "own", 18110)
	stop1 := run(t, s1)
	eventually(t, "server-1 serves", func() bool { return len(p1.config().LoadBalancers) == 1 })
	s2 := testService(t, p2, "server-2")
	run(t, s2)
	time.Sleep(500 * time.Millisecond) // a few resyncs of server-2
	if len(p2.config().LoadBalancers) != 0 {
		t.Fatal("two servers serve one load balancer")
	}
	stop1() // revokes server-1's lease
	eventually(t, "server-2 takes over", func() bool { return len(p2.config().LoadBalancers) == 1 })
	kv, err := sharedStore.Get(ctx, keyOwners+f.lb[strings.LastIndex(f.lb, "/")+1:])
	if err != nil || string(kv.Value) != "server-2" {
		t.Fatalf("owner: %q %v", kv.Value, err)
	}
	// A restart of server-2 (a new lease, same id) takes it back at once,
	// before the old lease lapses.
	p3 := newFakePlane()
	s3 := testService(t, p3, "server-2")
	run(t, s3)
	eventually(t, "restarted server-2 serves", func() bool { return len(p3.config().LoadBalancers) == 1 })
}

// TestInstanceTargets: instance targets must name a known container
// instance and are dialled on its host.
func TestInstanceTargets(t *testing.T) {
	resetStore(t)
	plane := newFakePlane()
	s := testService(t, plane, "server-a")
	s.cfg.Instances = func(ctx context.Context, id string) (string, error) {
		if id == "i-0abc" {
			return "127.0.0.1", nil
		}
		return "", errsNotFound(id)
	}
	lb, _ := s.CreateLoadBalancer(ctx, &elbv2api.CreateLoadBalancerInput{Name: ptr("inst")})
	tg, err := s.CreateTargetGroup(ctx, &elbv2api.CreateTargetGroupInput{Name: ptr("inst"), Protocol: ptr(protocolHTTP), Port: ptr(int32(80))})
	if err != nil || *tg.TargetGroups[0].TargetType != elbv2api.TargetTypeEnumInstance {
		t.Fatalf("%+v %v", tg, err)
	}
	tgARN := *tg.TargetGroups[0].TargetGroupArn
	_, err = s.RegisterTargets(ctx, &elbv2api.RegisterTargetsInput{TargetGroupArn: ptr(tgARN), Targets: []elbv2api.TargetDescription{{Id: ptr("i-0nope")}}})
	if codeOf(err) != "InvalidTarget" || !strings.Contains(err.Error(), "'i-0nope'") {
		t.Fatalf("unknown instance: %v", err)
	}
	if _, err := s.RegisterTargets(ctx, &elbv2api.RegisterTargetsInput{TargetGroupArn: ptr(tgARN),
		Targets: []elbv2api.TargetDescription{{Id: ptr("i-0abc"), Port: ptr(int32(32768))}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateListener(ctx, &elbv2api.CreateListenerInput{LoadBalancerArn: lb.LoadBalancers[0].LoadBalancerArn, Port: ptr(int32(18120)),
		DefaultActions: []elbv2api.Action{fwd(tgARN)}}); err != nil {
		t.Fatal(err)
	}
	run(t, s)
	eventually(t, "instance target dialled on its host", func() bool {
		c := plane.config()
		return len(c.TargetGroups) == 1 && len(c.TargetGroups[0].Targets) == 1 && c.TargetGroups[0].Targets[0].Addr == "127.0.0.1:32768" &&
			c.TargetGroups[0].Targets[0].ID == "i-0abc"
	})
}

func errsNotFound(id string) error { return errs.E(errs.NotFound, "no instance %s", id) }

// writeCert writes a self-signed certificate and key as cert.pem and
// key.pem in dir.
func writeCert(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "web.elb.localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"web.elb.localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

// TestHTTPSAndNetwork: the certificate conventions (an ACM-style ARN in
// the data directory, a file:// directory) reach the plane as PEM files;
// a network load balancer takes TCP listeners and TCP groups.
func TestHTTPSAndNetwork(t *testing.T) {
	resetStore(t)
	plane := newFakePlane()
	s := testService(t, plane, "server-a")
	writeCert(t, filepath.Join(s.cfg.CertDir, "web-cert"))
	other := t.TempDir()
	writeCert(t, other)
	f := setup(t, s, "tls", 18130)
	for i, certARN := range []string{"arn:aws:acm:us-east-1:000000000000:certificate/web-cert", "file://" + other} {
		out, err := s.CreateListener(ctx, &elbv2api.CreateListenerInput{LoadBalancerArn: ptr(f.lb), Port: ptr(int32(18131 + i)), Protocol: ptr(protocolHTTPS),
			Certificates: []elbv2api.Certificate{{CertificateArn: ptr(certARN)}}, DefaultActions: []elbv2api.Action{fwd(f.tg)}})
		if err != nil || deref(out.Listeners[0].SslPolicy) == "" {
			t.Fatalf("%s: %+v %v", certARN, out, err)
		}
	}
	_, err := s.CreateListener(ctx, &elbv2api.CreateListenerInput{LoadBalancerArn: ptr(f.lb), Port: ptr(int32(18133)), Protocol: ptr(protocolHTTPS),
		Certificates: []elbv2api.Certificate{{CertificateArn: ptr("file://relative/dir")}}, DefaultActions: []elbv2api.Action{fwd(f.tg)}})
	if codeOf(err) != "CertificateNotFound" {
		t.Fatalf("a relative file:// directory: %v", err)
	}
	nlb, err := s.CreateLoadBalancer(ctx, &elbv2api.CreateLoadBalancerInput{Name: ptr("db"), Type: ptr(elbv2api.LoadBalancerTypeEnumNetwork)})
	if err != nil || !strings.Contains(*nlb.LoadBalancers[0].LoadBalancerArn, ":loadbalancer/net/db/") {
		t.Fatalf("%+v %v", nlb, err)
	}
	tcp, _ := s.CreateTargetGroup(ctx, &elbv2api.CreateTargetGroupInput{Name: ptr("db"), Protocol: ptr(protocolTCP), Port: ptr(int32(5432)), TargetType: ptr(elbv2api.TargetTypeEnumIp)})
	if *tcp.TargetGroups[0].HealthCheckTimeoutSeconds != 10 || tcp.TargetGroups[0].HealthCheckPath != nil {
		t.Fatalf("TCP defaults: %+v", tcp.TargetGroups[0])
	}
	if _, err := s.CreateListener(ctx, &elbv2api.CreateListenerInput{LoadBalancerArn: nlb.LoadBalancers[0].LoadBalancerArn, Port: ptr(int32(18134)),
		DefaultActions: []elbv2api.Action{fwd(*tcp.TargetGroups[0].TargetGroupArn)}}); err != nil {
		t.Fatal(err)
	}
	run(t, s)
	eventually(t, "certificates and the TCP listener applied", func() bool {
		c := plane.config()
		if len(c.LoadBalancers) != 2 {
			return false
		}
		files := map[string]bool{}
		protos := map[string]bool{}
		for _, lb := range c.LoadBalancers {
			for _, l := range lb.Listeners {
				protos[l.Protocol] = true
				if l.CertFile != "" {
					files[filepath.Dir(l.CertFile)] = strings.HasSuffix(l.KeyFile, "key.pem")
				}
			}
		}
		return files[filepath.Join(s.cfg.CertDir, "web-cert")] && files[other] && protos["TCP"] && protos["HTTPS"]
	})
}

// TestHealthySurvivesRestart: the targets the plane saw healthy are
// recorded, and a restarted server's plane starts them healthy.
func TestHealthySurvivesRestart(t *testing.T) {
	resetStore(t)
	p1 := newFakePlane()
	s1 := testService(t, p1, "server-a")
	f := setup(t, s1, "keep", 18140)
	stop := run(t, s1)
	eventually(t, "served", func() bool { return len(p1.config().TargetGroups) == 1 })
	p1.mu.Lock()
	p1.health[f.tg] = []alb.TargetHealth{{ID: "10.0.0.7", Port: 8080, State: "healthy"}, {ID: "10.0.0.8", Port: 9090, State: "unhealthy"}}
	p1.mu.Unlock()
	p1.changes <- struct{}{}
	id := f.tg[strings.LastIndex(f.tg, "/")+1:]
	eventually(t, "health recorded", func() bool {
		kv, err := sharedStore.Get(ctx, keyHealth+id)
		return err == nil && string(kv.Value) == `["10.0.0.7:8080"]`
	})
	stop()
	p2 := newFakePlane()
	s2 := testService(t, p2, "server-a")
	run(t, s2)
	eventually(t, "restored healthy", func() bool {
		c := p2.config()
		if len(c.TargetGroups) != 1 || len(c.TargetGroups[0].Targets) != 2 {
			return false
		}
		ts := c.TargetGroups[0].Targets
		return ts[0].ID == "10.0.0.7" && ts[0].StartHealthy && !ts[1].StartHealthy
	})
	// The record goes with its group.
	if _, err := s2.DeleteListener(ctx, &elbv2api.DeleteListenerInput{ListenerArn: ptr(f.lis)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.DeleteTargetGroup(ctx, &elbv2api.DeleteTargetGroupInput{TargetGroupArn: ptr(f.tg)}); err != nil {
		t.Fatal(err)
	}
	if _, err := sharedStore.Get(ctx, keyHealth+id); err == nil {
		t.Fatal("health record left behind")
	}
}
