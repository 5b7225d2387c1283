package taskrun

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/serviceconnect"
	"github.com/berthdev/berth/internal/testimage"
)

// testDirectory is a DirectorySource the test feeds by hand.
type testDirectory struct {
	mu   sync.Mutex
	last map[string]serviceconnect.Directory
	subs map[int]func(serviceconnect.Directory)
	ns   map[int]string
	n    int
}

func (d *testDirectory) Follow(ns string, fn func(serviceconnect.Directory)) func() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.subs == nil {
		d.subs, d.ns, d.last = map[int]func(serviceconnect.Directory){}, map[int]string{}, map[string]serviceconnect.Directory{}
	}
	d.n++
	id := d.n
	d.subs[id], d.ns[id] = fn, ns
	if l, ok := d.last[ns]; ok {
		fn(l)
	}
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		delete(d.subs, id)
	}
}

func (d *testDirectory) set(dir serviceconnect.Directory) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last == nil {
		d.subs, d.ns, d.last = map[int]func(serviceconnect.Directory){}, map[int]string{}, map[string]serviceconnect.Directory{}
	}
	d.last[dir.NamespaceArn] = dir
	for id, fn := range d.subs {
		if d.ns[id] == dir.NamespaceArn {
			fn(dir)
		}
	}
}

// berthBinary is the berth executable the proxy image is built from:
// $BERTH_BIN (make build), else one built for the test.
func berthBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("BERTH_BIN"); b != "" {
		if abs, err := filepath.Abs(b); err == nil {
			return abs
		}
	}
	binOnce.Do(func() {
		root, err := testimage.ModuleRoot()
		if err != nil {
			binErr = err
			return
		}
		dir, err := os.MkdirTemp("", "berth-sctest-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "berth")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/berth")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, b)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestServiceConnectTasks runs a server task and a client task of one
// namespace with hand-made Service Connect configurations, in awsvpc mode
// and in bridge mode: the client calls http://web:80/ through its proxy,
// the server's proxy takes it on its listen port and hands it to the
// application. Both proxies show in the reports, count the traffic, and
// the server's drains on stop.
func TestServiceConnectTasks(t *testing.T) {
	for _, mode := range []ecsapi.NetworkMode{ecsapi.NetworkModeAwsvpc, ecsapi.NetworkModeBridge} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			serviceConnectPair(t, mode)
		})
	}
}

func serviceConnectPair(t *testing.T, mode ecsapi.NetworkMode) {
	d := needDocker(t)
	h := newHarness(t, d, randHex(6), nil)
	dir := &testDirectory{}
	h.rt.cfg.ServiceConnect = &ServiceConnectConfig{Executable: berthBinary(t), Version: "test", Directory: dir}
	ns := "arn:aws:servicediscovery:us-east-1:000000000000:namespace/ns-" + randHex(4)
	webAlias := serviceconnect.Outbound{DiscoveryName: "web", DNSName: "web", Port: 80, VIP: "127.255.0.1", Protocol: "http"}
	// The stream's first line comes at once (no endpoints yet): a proxy
	// with client aliases is HEALTHY only once it has one.
	dir.set(serviceconnect.Directory{NamespaceArn: ns, Revision: 1})

	srv := assignment(mode, cdef("app", "serve:8080", "sleep:1h"))
	srv.ServiceConnect = &serviceconnect.TaskConfig{NamespaceArn: ns, ProxyContainerName: "ecs-service-connect-srv1",
		Inbound:  []serviceconnect.Inbound{{PortName: "http", DiscoveryName: "web", ListenPort: 8081, AppPort: 8080, Protocol: "http"}},
		Outbound: []serviceconnect.Outbound{webAlias}}
	srec := &recorder{}
	sr := h.rt.NewRunner(srv, srec.report)
	sr.Update(srv)
	tr := srec.waitStatus(t, 120*time.Second, "RUNNING")
	p := container(tr, "ecs-service-connect-srv1")
	if p.KnownStatus != "RUNNING" || p.HealthStatus != "HEALTHY" || p.RuntimeID == "" {
		t.Fatalf("proxy container %+v", p)
	}
	var ep serviceconnect.Endpoint
	if mode == ecsapi.NetworkModeAwsvpc {
		app := container(tr, "app")
		if len(app.NetworkInterfaces) == 0 {
			t.Fatalf("app has no address: %+v", app)
		}
		ep = serviceconnect.Endpoint{TaskArn: srv.TaskArn, Address: *app.NetworkInterfaces[0].PrivateIpv4Address, Port: 8081, Healthy: true}
	} else {
		// Bridge: the listen port is published on a host port, a binding
		// of the proxy container; other bridge tasks reach it through the
		// bridge's gateway.
		hostPort := 0
		for _, b := range p.NetworkBindings {
			if *b.ContainerPort == 8081 && !strings.Contains(*b.BindIP, ":") {
				hostPort = int(*b.HostPort)
			}
		}
		if hostPort == 0 {
			t.Fatalf("listen port not published: %d bindings", len(p.NetworkBindings))
		}
		ep = serviceconnect.Endpoint{TaskArn: srv.TaskArn, Address: h.rt.bridgeGateway(context.Background()), Port: hostPort, Healthy: true}
	}
	dir.set(serviceconnect.Directory{NamespaceArn: ns, Revision: 2, Services: []serviceconnect.DirectoryService{{DiscoveryName: "web",
		Endpoints: []serviceconnect.Endpoint{ep}}}})

	cli := assignment(mode, cdef("client", "get:http://web:80/", "print:called", "sleep:1h"))
	cli.ServiceConnect = &serviceconnect.TaskConfig{NamespaceArn: ns, ProxyContainerName: "ecs-service-connect-cli1",
		Outbound: []serviceconnect.Outbound{webAlias}}
	crec := &recorder{}
	cr := h.rt.NewRunner(cli, crec.report)
	cr.Update(cli)
	crec.waitStatus(t, 90*time.Second, "RUNNING")

	// The client's call went through both proxies.
	var in, out serviceconnect.Counters
	deadline := time.Now().Add(30 * time.Second)
	for in.Requests == 0 || out.Requests == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no traffic counted: server inbound %+v, client outbound %+v; client %+v", in, out, crec.last())
		}
		if ct := crec.last(); ct.KnownStatus == "STOPPED" || ct.KnownStatus == "STOPPING" {
			t.Fatalf("client task stopped: %+v", ct)
		}
		traffic := h.rt.ServiceConnectTraffic(context.Background())
		in.Requests += traffic[srv.TaskArn].Inbound["web"].Requests
		out.Requests += traffic[cli.TaskArn].Outbound["web"].Requests
		time.Sleep(300 * time.Millisecond)
	}

	// Stop the server: the proxy drains first, then everything stops.
	sr.Update(stopped(srv))
	select {
	case <-sr.Done():
	case <-time.After(60 * time.Second):
		t.Fatalf("server not stopped: %+v", srec.last())
	}
	last := srec.last()
	if pc := container(last, "ecs-service-connect-srv1"); pc.KnownStatus != "STOPPED" || pc.ExitCode == nil || *pc.ExitCode != 0 {
		t.Errorf("proxy after stop: %+v", pc)
	}
	cr.Update(stopped(cli))
	select {
	case <-cr.Done():
	case <-time.After(60 * time.Second):
		t.Fatalf("client not stopped: %+v", crec.last())
	}
}

// TestServiceConnectNoRuntimeFails: an agent without Service Connect fails such tasks.
func TestServiceConnectNoRuntimeFails(t *testing.T) {
	d := needDocker(t)
	h := newHarness(t, d, randHex(6), nil)
	a := assignment(ecsapi.NetworkModeBridge, cdef("app", "sleep:1h"))
	a.ServiceConnect = &serviceconnect.TaskConfig{ProxyContainerName: "ecs-service-connect-x"}
	rec := &recorder{}
	r := h.rt.NewRunner(a, rec.report)
	r.Update(a)
	select {
	case <-r.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("not stopped: %+v", rec.last())
	}
	if tr := rec.last(); tr.StopCode != "TaskFailedToStart" || tr.StoppedReason == "" {
		t.Fatalf("stopped report %+v", tr)
	}
}
