package scproxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/berthdev/berth/internal/serviceconnect"
)

// backend is an httptest server that says its name.
type backend struct {
	name string
	srv  *httptest.Server
	hits atomic.Int64
}

func newBackend(t *testing.T, name string, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{name: name}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		if h != nil {
			h(w, r)
			return
		}
		io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, name)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// kill makes the backend vanish as a killed task does: the listener is
// closed (connections refused) and open connections are cut.
func (b *backend) kill() {
	b.srv.Listener.Close()
	b.srv.CloseClientConnections()
}

func endpointOf(t *testing.T, taskArn, rawURL string, healthy bool) serviceconnect.Endpoint {
	t.Helper()
	host, port, err := net.SplitHostPort(strings.TrimPrefix(rawURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return serviceconnect.Endpoint{TaskArn: taskArn, Address: host, Port: p, Healthy: healthy}
}

func dirOf(t *testing.T, rev int64, name string, bs ...*backend) serviceconnect.Directory {
	t.Helper()
	var eps []serviceconnect.Endpoint
	for _, b := range bs {
		eps = append(eps, endpointOf(t, "task/"+b.name, b.srv.URL, true))
	}
	return serviceconnect.Directory{NamespaceArn: "ns", Revision: rev, Services: []serviceconnect.DirectoryService{{DiscoveryName: name, Endpoints: eps}}}
}

// outboundProxy starts a proxy with one outbound alias "svc:80" of
// discovery name "svc" (listening on 127.255.0.n, an ephemeral port).
func outboundProxy(t *testing.T, proto string, mod func(*serviceconnect.Outbound)) (*Proxy, string) {
	t.Helper()
	p := New(Options{InboundHost: "127.0.0.1"})
	t.Cleanup(p.Close)
	o := serviceconnect.Outbound{DiscoveryName: "svc", DNSName: "svc", Port: 0, VIP: "127.255.0.1", Protocol: proto}
	if mod != nil {
		mod(&o)
	}
	if err := p.Apply(serviceconnect.TaskConfig{Outbound: []serviceconnect.Outbound{o}}); err != nil {
		t.Fatal(err)
	}
	addr := p.Addr(false, net.JoinHostPort(o.DNSName, strconv.Itoa(o.Port)))
	if addr == "" {
		t.Fatal("no outbound listener")
	}
	return p, addr
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRoundRobin(t *testing.T) {
	a, b, c := newBackend(t, "a", nil), newBackend(t, "b", nil), newBackend(t, "c", nil)
	p, addr := outboundProxy(t, serviceconnect.ProtocolHTTP, nil)
	p.SetDirectory(dirOf(t, 1, "svc", a, b, c))
	for i := 0; i < 30; i++ {
		if code, body := get(t, http.DefaultClient, "http://"+addr+"/"); code != 200 {
			t.Fatalf("status %d %q", code, body)
		}
	}
	for _, be := range []*backend{a, b, c} {
		if n := be.hits.Load(); n != 10 {
			t.Errorf("backend %s got %d requests, want 10", be.name, n)
		}
	}
	tr := p.Counters()
	got := tr.Outbound["svc"]
	if got.Requests != 30 || got.HTTP2XX != 30 || got.HealthyEndpoints != 3 || got.ResponseTimeCount != 30 {
		t.Errorf("counters %+v", got)
	}
	if again := p.Counters().Outbound["svc"]; again.Requests != 0 || again.HealthyEndpoints != 3 {
		t.Errorf("counters are not deltas: %+v", again)
	}
}

func TestNoEndpoints503(t *testing.T) {
	_, addr := outboundProxy(t, serviceconnect.ProtocolHTTP, nil)
	if code, _ := get(t, http.DefaultClient, "http://"+addr+"/"); code != 503 {
		t.Fatalf("status %d, want 503", code)
	}
}

func TestUnhealthyEndpointsNotUsed(t *testing.T) {
	a, b := newBackend(t, "a", nil), newBackend(t, "b", nil)
	p, addr := outboundProxy(t, serviceconnect.ProtocolHTTP, nil)
	d := dirOf(t, 1, "svc", a, b)
	d.Services[0].Endpoints[0].Healthy = false
	p.SetDirectory(d)
	for i := 0; i < 6; i++ {
		get(t, http.DefaultClient, "http://"+addr+"/")
	}
	if a.hits.Load() != 0 || b.hits.Load() != 6 {
		t.Fatalf("hits a=%d b=%d", a.hits.Load(), b.hits.Load())
	}
	// An older directory line is ignored.
	p.SetDirectory(dirOf(t, 5, "svc", b))
	p.SetDirectory(dirOf(t, 3, "svc", a))
	get(t, http.DefaultClient, "http://"+addr+"/")
	if a.hits.Load() != 0 || b.hits.Load() != 7 {
		t.Fatalf("older directory line applied: hits a=%d b=%d", a.hits.Load(), b.hits.Load())
	}
}

func TestRetryOn503AndBodyReplayed(t *testing.T) {
	var bodies sync.Map
	bad := newBackend(t, "bad", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(503)
	})
	good := newBackend(t, "good", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies.Store(string(b), true)
		fmt.Fprint(w, "good")
	})
	p, addr := outboundProxy(t, serviceconnect.ProtocolHTTP, nil)
	p.SetDirectory(dirOf(t, 1, "svc", bad, good))
	for i := 0; i < 4; i++ {
		body := fmt.Sprintf("payload-%d", i)
		resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "good" {
			t.Fatalf("status %d %q", resp.StatusCode, b)
		}
		if _, ok := bodies.Load(body); !ok {
			t.Fatalf("body %q did not reach the good backend", body)
		}
	}
	// Every endpoint answering 503: three attempts, then the 503.
	p.SetDirectory(dirOf(t, 2, "svc", bad))
	before := bad.hits.Load()
	if code, _ := get(t, http.DefaultClient, "http://"+addr+"/"); code != 503 {
		t.Fatalf("status %d", code)
	}
	if n := bad.hits.Load() - before; n != MaxAttempts {
		t.Fatalf("%d attempts, want %d", n, MaxAttempts)
	}
}

func TestOutlierEjection(t *testing.T) {
	bad := newBackend(t, "bad", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	good := newBackend(t, "good", nil)
	p, addr := outboundProxy(t, serviceconnect.ProtocolHTTP, nil)
	p.SetDirectory(dirOf(t, 1, "svc", bad, good))
	fails := 0
	for i := 0; i < 40; i++ {
		if code, _ := get(t, http.DefaultClient, "http://"+addr+"/"); code == 500 {
			fails++
		}
	}
	if fails != Consecutive5xx {
		t.Fatalf("%d requests failed, want %d (ejected after %d consecutive 5xx)", fails, Consecutive5xx, Consecutive5xx)
	}
	c := p.Counters().Outbound["svc"]
	if c.HealthyEndpoints != 1 || c.UnhealthyEndpoints != 1 || c.HTTP5XX != uint64(Consecutive5xx) {
		t.Fatalf("counters %+v", c)
	}
	// A directory update that keeps the endpoint keeps its ejection.
	p.SetDirectory(dirOf(t, 2, "svc", bad, good))
	if c := p.Counters().Outbound["svc"]; c.UnhealthyEndpoints != 1 {
		t.Fatalf("ejection lost on directory update: %+v", c)
	}
}

func TestEjectionTimes(t *testing.T) {
	now := time.Unix(1000, 0)
	e := &endpoint{healthy: true}
	for i := 0; i < Consecutive5xx-1; i++ {
		if e.result(502, now) {
			t.Fatal("ejected too early")
		}
	}
	e.result(200, now) // a success resets the count
	for i := 0; i < Consecutive5xx-1; i++ {
		e.result(500, now)
	}
	if !e.result(503, now) || !e.ejected(now.Add(BaseEjectionTime-time.Millisecond)) || e.ejected(now.Add(BaseEjectionTime)) {
		t.Fatal("first ejection is not the base time")
	}
	now = now.Add(time.Minute)
	if !e.result(0, now) || !e.ejected(now.Add(2*BaseEjectionTime-time.Millisecond)) || e.ejected(now.Add(2*BaseEjectionTime)) {
		t.Fatal("second ejection is not twice the base time")
	}
	for i := 0; i < 20; i++ {
		e.result(0, now)
	}
	if e.ejected(now.Add(MaxEjectionTime)) {
		t.Fatal("ejection longer than the maximum")
	}
	// Panic mode: every healthy endpoint ejected, one is still chosen.
	c := newCluster("x")
	c.eps.Store(&[]*endpoint{e})
	if c.pick(now, nil) != e {
		t.Fatal("no endpoint in panic mode")
	}
	e2 := &endpoint{healthy: false}
	c.eps.Store(&[]*endpoint{e2})
	if c.pick(now, nil) != nil {
		t.Fatal("an endpoint the directory says is unhealthy was chosen")
	}
}

// TestKilledBackendUnderLoad kills one of three backends while clients
// keep calling, and adds and removes endpoints through the directory
// meanwhile: retries hide everything (zero client errors).
func TestKilledBackendUnderLoad(t *testing.T) {
	slow := func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Millisecond)
		fmt.Fprint(w, "ok")
	}
	a, b, c := newBackend(t, "a", slow), newBackend(t, "b", slow), newBackend(t, "c", slow)
	d := newBackend(t, "d", slow)
	p, addr := outboundProxy(t, serviceconnect.ProtocolHTTP, nil)
	p.SetDirectory(dirOf(t, 1, "svc", a, b, c))
	ctx, cancel := context.WithCancel(context.Background())
	var errors, total atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr string
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			defer cl.CloseIdleConnections()
			for ctx.Err() == nil {
				resp, err := cl.Get("http://" + addr + "/")
				total.Add(1)
				if err != nil {
					errors.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(body) != "ok" {
					errors.Add(1)
					mu.Lock()
					firstErr = fmt.Sprintf("%d %q", resp.StatusCode, body)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	a.kill()
	time.Sleep(300 * time.Millisecond)
	p.SetDirectory(dirOf(t, 2, "svc", b, c, d)) // a leaves, d joins
	time.Sleep(200 * time.Millisecond)
	p.SetDirectory(dirOf(t, 3, "svc", c, d)) // b leaves (still running)
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()
	if errors.Load() != 0 {
		t.Fatalf("%d client errors of %d requests (%s)", errors.Load(), total.Load(), firstErr)
	}
	if d.hits.Load() == 0 {
		t.Fatal("the new endpoint got no request")
	}
	t.Logf("%d requests, 0 errors", total.Load())
}

func TestPerRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	sl := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	p, addr := outboundProxy(t, serviceconnect.ProtocolHTTP, func(o *serviceconnect.Outbound) { o.PerRequestTimeout = 200 * time.Millisecond })
	p.SetDirectory(dirOf(t, 1, "svc", sl))
	start := time.Now()
	code, _ := get(t, http.DefaultClient, "http://"+addr+"/")
	if code != 504 {
		t.Fatalf("status %d, want 504", code)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	if sl.hits.Load() != 1 {
		t.Fatalf("a timed-out request was retried (%d attempts)", sl.hits.Load())
	}
}

func TestIdleTimeoutTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go echo(ln)
	p, addr := outboundProxy(t, serviceconnect.ProtocolTCP, func(o *serviceconnect.Outbound) { o.IdleTimeout = 300 * time.Millisecond })
	p.SetDirectory(serviceconnect.Directory{Revision: 1, Services: []serviceconnect.DirectoryService{{DiscoveryName: "svc",
		Endpoints: []serviceconnect.Endpoint{endpointOf(t, "t", "http://"+ln.Addr().String(), true)}}}})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Activity keeps the connection open past the idle timeout...
	br := bufio.NewReader(c)
	var lastIO time.Time
	for i := 0; i < 5; i++ {
		time.Sleep(100 * time.Millisecond)
		fmt.Fprintf(c, "line %d\n", i)
		l, err := br.ReadString('\n')
		if err != nil || l != fmt.Sprintf("line %d\n", i) {
			t.Fatalf("echo %q %v", l, err)
		}
		lastIO = time.Now()
	}
	// ...silence closes it.
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("read after idle: %v, want EOF", err)
	}
	if d := time.Since(lastIO); d < 250*time.Millisecond || d > 2*time.Second {
		t.Fatalf("closed after %v, want about 300ms", d)
	}
	cs := p.Counters().Outbound["svc"]
	if cs.NewConnections != 1 || cs.ProcessedBytes != 2*5*7 {
		t.Fatalf("counters %+v", cs)
	}
}

func echo(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() { io.Copy(c, c); c.Close() }()
	}
}

func TestTCPRetriesConnectFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go echo(ln)
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	p, addr := outboundProxy(t, serviceconnect.ProtocolTCP, nil)
	p.SetDirectory(serviceconnect.Directory{Revision: 1, Services: []serviceconnect.DirectoryService{{DiscoveryName: "svc",
		Endpoints: []serviceconnect.Endpoint{endpointOf(t, "dead", "http://"+deadAddr, true), endpointOf(t, "live", "http://"+ln.Addr().String(), true)}}}})
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "hello\n")
		l, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if l != "hello\n" {
			t.Fatalf("connection %d: %q %v", i, l, err)
		}
	}
}

// TestDrain: inbound closed first (new connections refused), the request
// in flight finishes, outbound keeps working.
func TestDrain(t *testing.T) {
	started := make(chan struct{})
	app := newBackend(t, "app", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(400 * time.Millisecond)
		fmt.Fprint(w, "done")
	})
	other := newBackend(t, "other", nil)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(app.srv.URL, "http://"))
	appPort, _ := strconv.Atoi(port)
	p := New(Options{InboundHost: "127.0.0.1"})
	defer p.Close()
	err := p.Apply(serviceconnect.TaskConfig{
		Inbound:  []serviceconnect.Inbound{{PortName: "web", DiscoveryName: "web", ListenPort: 0, AppPort: appPort, Protocol: "http"}},
		Outbound: []serviceconnect.Outbound{{DiscoveryName: "other", DNSName: "other", VIP: "127.255.0.2", Protocol: "http"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.SetDirectory(dirOf(t, 1, "other", other))
	in, out := p.Addr(true, "web"), p.Addr(false, "other:0")
	type res struct {
		code int
		body string
		err  error
	}
	rc := make(chan res, 1)
	go func() {
		resp, err := http.Get("http://" + in + "/")
		if err != nil {
			rc <- res{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		rc <- res{code: resp.StatusCode, body: string(b)}
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	derr := make(chan error, 1)
	go func() { derr <- p.Drain(ctx) }()
	// New inbound connections are refused while the request finishes.
	deadline := time.Now().Add(time.Second)
	for {
		c, err := net.DialTimeout("tcp", in, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("inbound listener still accepts while draining")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code, body := get(t, http.DefaultClient, "http://"+out+"/"); code != 200 || body != "other" {
		t.Fatalf("outbound while draining: %d %q", code, body)
	}
	r := <-rc
	if r.err != nil || r.code != 200 || r.body != "done" {
		t.Fatalf("in-flight request: %+v", r)
	}
	if err := <-derr; err != nil {
		t.Fatalf("drain: %v", err)
	}
	if err := p.Apply(serviceconnect.TaskConfig{}); err == nil {
		t.Fatal("Apply after Drain succeeded")
	}
}

func TestDrainDeadline(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	app := newBackend(t, "app", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
	})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(app.srv.URL, "http://"))
	appPort, _ := strconv.Atoi(port)
	p := New(Options{InboundHost: "127.0.0.1"})
	defer p.Close()
	if err := p.Apply(serviceconnect.TaskConfig{Inbound: []serviceconnect.Inbound{{PortName: "web", DiscoveryName: "web", AppPort: appPort, Protocol: "http"}}}); err != nil {
		t.Fatal(err)
	}
	go http.Get("http://" + p.Addr(true, "web") + "/")
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Drain(ctx); err == nil {
		t.Fatal("drain with a stuck request returned no error")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("drain took %v past its deadline", d)
	}
}

func h2cClient() *http.Client {
	var ps http.Protocols
	ps.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &ps}}
}

func h2cServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var ps http.Protocols
	ps.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &ps}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestH2C(t *testing.T) {
	addrB := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		fmt.Fprintf(w, "proto=%d host=%s", r.ProtoMajor, r.Host)
		w.Header().Set("X-Sum", "42")
	}))
	p, addr := outboundProxy(t, serviceconnect.ProtocolHTTP2, nil)
	p.SetDirectory(serviceconnect.Directory{Revision: 1, Services: []serviceconnect.DirectoryService{{DiscoveryName: "svc",
		Endpoints: []serviceconnect.Endpoint{endpointOf(t, "t", "http://"+addrB, true)}}}})
	resp, err := h2cClient().Get("http://" + addr + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "proto=2 host=" + addr
	if resp.ProtoMajor != 2 || string(b) != want || resp.Trailer.Get("X-Sum") != "42" {
		t.Fatalf("proto %d body %q (want %q) trailer %v", resp.ProtoMajor, b, want, resp.Trailer)
	}
}

func TestGRPC(t *testing.T) {
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(ln)
	defer gs.Stop()
	p, addr := outboundProxy(t, serviceconnect.ProtocolGRPC, nil)
	p.SetDirectory(serviceconnect.Directory{Revision: 1, Services: []serviceconnect.DirectoryService{{DiscoveryName: "svc",
		Endpoints: []serviceconnect.Endpoint{endpointOf(t, "t", "http://"+ln.Addr().String(), true)}}}})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "svc"})
	if err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check: %v %v", r, err)
	}
	// A status in the trailers passes through.
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Check unknown: %v, want NotFound", err)
	}
	// A server stream: each message arrives as it is sent.
	w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := w.Recv(); err != nil || m.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch first: %v %v", m, err)
	}
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_NOT_SERVING)
	if m, err := w.Recv(); err != nil || m.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch second: %v %v", m, err)
	}
	c := p.Counters().Outbound["svc"]
	if c.Requests < 2 {
		t.Fatalf("counters %+v", c)
	}
}

// TestApplyLive: listeners are added and removed by Apply; one that stays
// keeps its connections.
func TestApplyLive(t *testing.T) {
	a := newBackend(t, "a", nil)
	p := New(Options{InboundHost: "127.0.0.1"})
	defer p.Close()
	o1 := serviceconnect.Outbound{DiscoveryName: "svc", DNSName: "one", VIP: "127.255.0.3", Protocol: "http"}
	o2 := serviceconnect.Outbound{DiscoveryName: "svc", DNSName: "two", VIP: "127.255.0.4", Protocol: "http"}
	if err := p.Apply(serviceconnect.TaskConfig{Outbound: []serviceconnect.Outbound{o1}}); err != nil {
		t.Fatal(err)
	}
	p.SetDirectory(dirOf(t, 1, "svc", a))
	one := p.Addr(false, "one:0")
	cl := &http.Client{Transport: &http.Transport{}}
	get(t, cl, "http://"+one+"/")
	if err := p.Apply(serviceconnect.TaskConfig{Outbound: []serviceconnect.Outbound{o1, o2}}); err != nil {
		t.Fatal(err)
	}
	two := p.Addr(false, "two:0")
	if code, body := get(t, cl, "http://"+two+"/"); code != 200 || body != "a" {
		t.Fatalf("new listener: %d %q (directory must reach listeners added later)", code, body)
	}
	if p.Addr(false, "one:0") != one {
		t.Fatal("unchanged listener was rebound")
	}
	if err := p.Apply(serviceconnect.TaskConfig{Outbound: []serviceconnect.Outbound{o2}}); err != nil {
		t.Fatal(err)
	}
	if p.Addr(false, "one:0") != "" {
		t.Fatal("removed listener still there")
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := net.Dial("tcp", one)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("removed listener still accepts")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A busy address is an error naming it.
	busy, _ := net.Listen("tcp", "127.255.0.5:0")
	defer busy.Close()
	_, bp, _ := net.SplitHostPort(busy.Addr().String())
	port, _ := strconv.Atoi(bp)
	err := p.Apply(serviceconnect.TaskConfig{Outbound: []serviceconnect.Outbound{o2, {DiscoveryName: "x", DNSName: "x", VIP: "127.255.0.5", Port: port}}})
	if err == nil || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Fatalf("busy port: %v", err)
	}
}

func TestInboundRetriesAppStarting(t *testing.T) {
	// The application's port is not open yet: connection refused on
	// every try gives 503, not a hang.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(dead.Addr().String())
	dead.Close()
	appPort, _ := strconv.Atoi(port)
	p := New(Options{InboundHost: "127.0.0.1"})
	defer p.Close()
	if err := p.Apply(serviceconnect.TaskConfig{Inbound: []serviceconnect.Inbound{{PortName: "web", DiscoveryName: "web", AppPort: appPort, Protocol: "http"}}}); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, http.DefaultClient, "http://"+p.Addr(true, "web")+"/"); code != 503 {
		t.Fatalf("status %d", code)
	}
	c := p.Counters().Inbound["web"]
	if c.Requests != 1 || c.HTTP5XX != 1 {
		t.Fatalf("counters %+v", c)
	}
}
