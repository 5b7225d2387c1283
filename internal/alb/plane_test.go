package alb

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backend is a target: it answers its name, and /health with the status in health.
type backend struct {
	name   string
	srv    *httptest.Server
	health atomic.Int32
	hits   atomic.Int64
	last   atomic.Pointer[http.Request]
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	b.health.Store(200)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.WriteHeader(int(b.health.Load()))
			return
		}
		b.hits.Add(1)
		b.last.Store(r)
		if d := r.URL.Query().Get("sleep"); d != "" {
			dd, _ := time.ParseDuration(d)
			time.Sleep(dd)
		}
		io.WriteString(w, b.name)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) target() Target {
	host, port, _ := net.SplitHostPort(b.srv.Listener.Addr().String())
	var p int
	fmt.Sscan(port, &p)
	return Target{ID: host, Port: p, Addr: b.srv.Listener.Addr().String()}
}

func fastCheck() HealthCheck {
	return HealthCheck{Enabled: true, Protocol: "HTTP", Path: "/health", Port: "traffic-port", Interval: 200 * time.Millisecond, Timeout: 150 * time.Millisecond, HealthyThreshold: 2, UnhealthyThreshold: 2, Matcher: "200"}
}

func group(arn string, bs ...*backend) TargetGroup {
	tg := TargetGroup{ARN: arn, Name: arn, Protocol: "HTTP", ProtocolVersion: "HTTP1", HealthCheck: fastCheck(), Algorithm: "round_robin", DeregistrationDelay: 500 * time.Millisecond}
	for _, b := range bs {
		tg.Targets = append(tg.Targets, b.target())
	}
	return tg
}

func forward(arns ...string) Action {
	a := Action{Type: "forward", Order: 1}
	for _, arn := range arns {
		a.Forward = append(a.Forward, WeightedTargetGroup{ARN: arn, Weight: 1})
	}
	return a
}

func oneListener(l Listener, tgs ...TargetGroup) Config {
	if l.ARN == "" {
		l.ARN = "lst"
	}
	if l.Addr == "" {
		l.Addr = "127.0.0.1:0"
	}
	if l.Protocol == "" {
		l.Protocol = "HTTP"
	}
	return Config{LoadBalancers: []LoadBalancer{{ARN: "lb", Name: "lb", Type: "application", Listeners: []Listener{l}}}, TargetGroups: tgs}
}

type recorder struct {
	mu   sync.Mutex
	reqs []string
}

func (r *recorder) Request(lb, tg string, status int, d time.Duration, elbErr bool) {
	r.mu.Lock()
	r.reqs = append(r.reqs, fmt.Sprintf("%s %s %d %v", lb, tg, status, elbErr))
	r.mu.Unlock()
}

func startPlane(t *testing.T, cfg Config) (*Plane, string, *recorder) {
	t.Helper()
	rec := &recorder{}
	p := New(Options{Observer: rec})
	t.Cleanup(func() { p.Close() })
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	a := p.ListenerAddr(cfg.LoadBalancers[0].Listeners[0].ARN)
	if a == nil {
		t.Fatal("listener not listening")
	}
	return p, "http://" + a.String(), rec
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func states(p *Plane, tg string) map[string]string {
	out := map[string]string{}
	for _, h := range p.TargetHealth(tg) {
		out[fmt.Sprintf("%s:%d", h.ID, h.Port)] = h.State + "/" + h.Reason
	}
	return out
}

func allHealthy(p *Plane, tg string, n int) func() bool {
	return func() bool {
		hs := p.TargetHealth(tg)
		if len(hs) != n {
			return false
		}
		for _, h := range hs {
			if h.State != StateHealthy {
				return false
			}
		}
		return true
	}
}

func get(t *testing.T, c *http.Client, url string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestForwardRoundRobinWithALBHeaders(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "a"), newBackend(t, "b")
	p, url, rec := startPlane(t, oneListener(Listener{DefaultActions: []Action{forward("tg")}}, group("tg", a, b)))
	waitFor(t, "targets healthy", 5*time.Second, allHealthy(p, "tg", 2))
	seen := map[string]int{}
	for i := 0; i < 10; i++ {
		code, body, _ := get(t, http.DefaultClient, url+"/x", "X-Forwarded-For", "203.0.113.9")
		if code != 200 {
			t.Fatalf("status %d", code)
		}
		seen[body]++
	}
	if seen["a"] != 5 || seen["b"] != 5 {
		t.Fatalf("round robin: %v", seen)
	}
	r := a.last.Load()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	if got := r.Header.Get("X-Forwarded-For"); got != "203.0.113.9, 127.0.0.1" {
		t.Errorf("X-Forwarded-For %q", got)
	}
	if r.Header.Get("X-Forwarded-Proto") != "http" || r.Header.Get("X-Forwarded-Port") != port {
		t.Errorf("X-Forwarded-Proto/Port %q %q", r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Port"))
	}
	if !regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$`).MatchString(r.Header.Get("X-Amzn-Trace-Id")) {
		t.Errorf("X-Amzn-Trace-Id %q", r.Header.Get("X-Amzn-Trace-Id"))
	}
	if !strings.HasPrefix(r.Host, "127.0.0.1:"+port) {
		t.Errorf("Host %q not preserved", r.Host)
	}
	get(t, http.DefaultClient, url+"/x", "X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
	tr := a.last.Load().Header.Get("X-Amzn-Trace-Id")
	if !strings.Contains(tr, "Sampled") {
		tr = b.last.Load().Header.Get("X-Amzn-Trace-Id")
	}
	if !regexp.MustCompile(`^Self=1-[0-9a-f]{8}-[0-9a-f]{24};Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1$`).MatchString(tr) {
		t.Errorf("X-Amzn-Trace-Id with a Root: %q", tr)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) < 10 || rec.reqs[0] != "lb tg 200 false" {
		t.Errorf("observer saw %v", rec.reqs)
	}
}

func TestRulesFixedResponseAndRedirect(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a")
	l := Listener{
		DefaultActions: []Action{{Type: "fixed-response", FixedResponse: &FixedResponse{StatusCode: 404, ContentType: "text/plain", Body: "nothing here"}}},
		Rules: []Rule{
			{ARN: "r-api", Priority: 20, Conditions: []Condition{{Field: "path-pattern", Values: []string{"/api/*"}}}, Actions: []Action{forward("tg")}},
			{ARN: "r-old", Priority: 10, Conditions: []Condition{{Field: "path-pattern", Values: []string{"/api/old/*"}}}, Actions: []Action{{Type: "redirect", Redirect: &Redirect{Protocol: "HTTPS", Port: "443", Path: "/v2/#{path}", Query: "#{query}&from=old", StatusCode: 301}}}},
			{ARN: "r-post", Priority: 30, Conditions: []Condition{{Field: "http-request-method", Values: []string{"POST"}}}, Actions: []Action{{Type: "fixed-response", FixedResponse: &FixedResponse{StatusCode: 405, ContentType: "application/json", Body: `{"no":"posts"}`}}}},
		},
	}
	p, url, _ := startPlane(t, oneListener(l, group("tg", a)))
	waitFor(t, "healthy", 5*time.Second, allHealthy(p, "tg", 1))
	if code, body, h := get(t, http.DefaultClient, url+"/nope"); code != 404 || body != "nothing here" || h.Get("Content-Type") != "text/plain" {
		t.Errorf("default fixed-response: %d %q %v", code, body, h)
	}
	if code, body, _ := get(t, http.DefaultClient, url+"/api/users"); code != 200 || body != "a" {
		t.Errorf("forward rule: %d %q", code, body)
	}
	code, _, h := get(t, noRedirect, url+"/api/old/x?k=v", "Host", "shop.example.com:8080")
	if code != 301 || h.Get("Location") != "https://shop.example.com:443/v2/api/old/x?k=v&from=old" {
		t.Errorf("redirect: %d %q", code, h.Get("Location"))
	}
	resp, err := http.Post(url+"/api/users", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POST /api matches r-api (priority 20) before r-post (30): %d", resp.StatusCode)
	}
	resp, _ = http.Post(url+"/other", "text/plain", strings.NewReader("x"))
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("POST /other: %d", resp.StatusCode)
	}
}

func TestELBErrors(t *testing.T) {
	t.Parallel()
	// 503: no targets registered.
	p, url, rec := startPlane(t, oneListener(Listener{DefaultActions: []Action{forward("tg")}}, group("tg")))
	code, body, h := get(t, http.DefaultClient, url+"/")
	if code != 503 || h.Get("Server") != "awselb/2.0" || !strings.Contains(body, "<center><h1>503 Service Temporarily Unavailable</h1></center>") {
		t.Errorf("no targets: %d %q", code, body)
	}
	rec.mu.Lock()
	if len(rec.reqs) != 1 || rec.reqs[0] != "lb tg 503 true" {
		t.Errorf("observer: %v", rec.reqs)
	}
	rec.mu.Unlock()

	// 502: the target answers garbage.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("garbage\r\n\r\n"))
			c.Close()
		}
	}()
	tg := group("tg")
	tg.HealthCheck.Enabled = false
	tg.Targets = []Target{{ID: "10.0.0.1", Port: 80, Addr: ln.Addr().String()}}
	if err := p.Apply(oneListener(Listener{Addr: strings.TrimPrefix(url, "http://"), DefaultActions: []Action{forward("tg")}}, tg)); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := get(t, http.DefaultClient, url+"/"); code != 502 || !strings.Contains(body, "502 Bad Gateway") {
		t.Errorf("bad target: %d %q", code, body)
	}

	// 504: the target is slower than the idle timeout.
	slow := newBackend(t, "slow")
	tg.Targets = []Target{slow.target()}
	cfg := oneListener(Listener{Addr: strings.TrimPrefix(url, "http://"), DefaultActions: []Action{forward("tg")}}, tg)
	cfg.LoadBalancers[0].IdleTimeout = 300 * time.Millisecond
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := get(t, http.DefaultClient, url+"/?sleep=1s"); code != 504 || !strings.Contains(body, "504 Gateway Time-out") {
		t.Errorf("slow target: %d %q", code, body)
	}
	// 463: too many addresses in X-Forwarded-For.
	if code, _, _ := get(t, http.DefaultClient, url+"/", "X-Forwarded-For", strings.Repeat("1.2.3.4, ", 30)+"1.2.3.4"); code != 463 {
		t.Errorf("long X-Forwarded-For: %d", code)
	}
}

func TestHealthChecksStatesAndFailOpen(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "a"), newBackend(t, "b")
	p, url, _ := startPlane(t, oneListener(Listener{DefaultActions: []Action{forward("tg")}}, group("tg", a, b)))
	hs := p.TargetHealth("tg")
	if len(hs) != 2 || hs[0].State != StateInitial {
		t.Fatalf("fresh targets: %+v", hs)
	}
	waitFor(t, "healthy", 5*time.Second, allHealthy(p, "tg", 2))
	b.health.Store(503)
	bkey := fmt.Sprintf("%s:%d", b.target().ID, b.target().Port)
	waitFor(t, "b unhealthy", 5*time.Second, func() bool {
		return states(p, "tg")[bkey] == "unhealthy/Target.ResponseCodeMismatch"
	})
	for _, h := range p.TargetHealth("tg") {
		if h.State == StateUnhealthy && h.Description != "Health checks failed with these codes: [503]" {
			t.Errorf("description %q", h.Description)
		}
	}
	for i := 0; i < 6; i++ {
		if _, body, _ := get(t, http.DefaultClient, url+"/"); body != "a" {
			t.Fatalf("unhealthy target got traffic")
		}
	}
	a.health.Store(500)
	waitFor(t, "both unhealthy", 5*time.Second, func() bool {
		for _, s := range states(p, "tg") {
			if !strings.HasPrefix(s, "unhealthy") {
				return false
			}
		}
		return true
	})
	seen := map[string]bool{}
	for i := 0; i < 6; i++ {
		_, body, _ := get(t, http.DefaultClient, url+"/")
		seen[body] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("fail open should route to all targets, saw %v", seen)
	}
	select {
	case <-p.HealthChanges():
	default:
		t.Error("no health change signalled")
	}
}

func TestDeadTargetLeavesWithoutFailedRequests(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "a"), newBackend(t, "b")
	tg := group("tg", a, b)
	tg.HealthCheck.Interval = 10 * time.Second // active checks alone would take 20 s
	tg.HealthCheck.HealthyThreshold = 1
	p, url, _ := startPlane(t, oneListener(Listener{DefaultActions: []Action{forward("tg")}}, tg))
	waitFor(t, "healthy", 5*time.Second, allHealthy(p, "tg", 2))
	for i := 0; i < 4; i++ {
		get(t, http.DefaultClient, url+"/")
	}
	// Load from four clients while b dies.
	var failed, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(url + "/?sleep=1ms")
				total.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	b.srv.Listener.Close()
	b.srv.CloseClientConnections()
	killed := time.Now()
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed while a target died", failed.Load(), total.Load())
	}
	for i := 0; i < 20; i++ {
		if code, body, _ := get(t, http.DefaultClient, url+"/"); code != 200 || body != "a" {
			t.Fatalf("request %d after the kill: %d %q", i, code, body)
		}
	}
	bkey := fmt.Sprintf("%s:%d", b.target().ID, b.target().Port)
	waitFor(t, "dead target unhealthy", 3*time.Second, func() bool { return strings.HasPrefix(states(p, "tg")[bkey], "unhealthy") })
	if d := time.Since(killed); d > 3*time.Second {
		t.Errorf("dead target left after %v", d)
	}
}

func TestDrainingOnDeregistration(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "a"), newBackend(t, "b")
	tg := group("tg", a, b)
	tg.DeregistrationDelay = 700 * time.Millisecond
	p, url, _ := startPlane(t, oneListener(Listener{DefaultActions: []Action{forward("tg")}}, tg))
	waitFor(t, "healthy", 5*time.Second, allHealthy(p, "tg", 2))
	// An in-flight request to b.
	var inflight sync.WaitGroup
	var inflightBody string
	inflight.Add(1)
	started := make(chan struct{})
	go func() {
		defer inflight.Done()
		for {
			resp, err := http.Get(url + "/?sleep=400ms")
			if err != nil {
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) == "b" || b.hits.Load() > 0 {
				inflightBody = string(body)
				return
			}
		}
	}()
	waitFor(t, "request on b", 5*time.Second, func() bool { return b.hits.Load() > 0 })
	close(started)
	tg.Targets = []Target{a.target()}
	if err := p.Apply(oneListener(Listener{Addr: strings.TrimPrefix(url, "http://"), DefaultActions: []Action{forward("tg")}}, tg)); err != nil {
		t.Fatal(err)
	}
	bkey := fmt.Sprintf("%s:%d", b.target().ID, b.target().Port)
	if s := states(p, "tg")[bkey]; s != "draining/Target.DeregistrationInProgress" {
		t.Fatalf("deregistered target: %q", s)
	}
	hits := b.hits.Load()
	for i := 0; i < 6; i++ {
		if _, body, _ := get(t, http.DefaultClient, url+"/"); body != "a" {
			t.Fatalf("draining target got a new request")
		}
	}
	inflight.Wait()
	if inflightBody != "b" || b.hits.Load() != hits {
		t.Errorf("in-flight request: %q", inflightBody)
	}
	waitFor(t, "draining target gone", 3*time.Second, func() bool { _, ok := states(p, "tg")[bkey]; return !ok })
}

func TestStickinessCookies(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "a"), newBackend(t, "b")
	tg := group("tg", a, b)
	tg.Stickiness = time.Hour
	p, url, _ := startPlane(t, oneListener(Listener{DefaultActions: []Action{forward("tg")}}, tg))
	waitFor(t, "healthy", 5*time.Second, allHealthy(p, "tg", 2))
	_, first, h := get(t, http.DefaultClient, url+"/")
	var cookie string
	for _, c := range h.Values("Set-Cookie") {
		if strings.HasPrefix(c, "AWSALB=") {
			cookie = strings.SplitN(strings.TrimPrefix(c, "AWSALB="), ";", 2)[0]
		}
	}
	if cookie == "" || !strings.Contains(strings.Join(h.Values("Set-Cookie"), "\n"), "AWSALBCORS=") {
		t.Fatalf("cookies %v", h.Values("Set-Cookie"))
	}
	for i := 0; i < 6; i++ {
		if _, body, _ := get(t, http.DefaultClient, url+"/", "Cookie", "AWSALB="+cookie); body != first {
			t.Fatalf("sticky request went to %s, first to %s", body, first)
		}
	}
}

func TestGroupStickinessAndWeights(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "a"), newBackend(t, "b")
	act := Action{Type: "forward", Forward: []WeightedTargetGroup{{ARN: "tga", Weight: 1}, {ARN: "tgb", Weight: 1}}, Stickiness: time.Hour}
	cfg := oneListener(Listener{DefaultActions: []Action{act}}, group("tga", a), group("tgb", b))
	p, url, _ := startPlane(t, cfg)
	waitFor(t, "healthy", 5*time.Second, func() bool { return allHealthy(p, "tga", 1)() && allHealthy(p, "tgb", 1)() })
	_, first, h := get(t, http.DefaultClient, url+"/")
	var cookie string
	for _, c := range h.Values("Set-Cookie") {
		if strings.HasPrefix(c, "AWSALBTG=") {
			cookie = strings.SplitN(c, ";", 2)[0]
		}
	}
	if cookie == "" {
		t.Fatalf("no AWSALBTG cookie: %v", h.Values("Set-Cookie"))
	}
	for i := 0; i < 8; i++ {
		if _, body, _ := get(t, http.DefaultClient, url+"/", "Cookie", cookie); body != first {
			t.Fatal("group stickiness not honoured")
		}
	}
	// Weight 0 on b: everything to a.
	cfg.LoadBalancers[0].Listeners[0].Addr = strings.TrimPrefix(url, "http://")
	cfg.LoadBalancers[0].Listeners[0].DefaultActions[0].Forward[1].Weight = 0
	cfg.LoadBalancers[0].Listeners[0].DefaultActions[0].Stickiness = 0
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		if _, body, _ := get(t, http.DefaultClient, url+"/"); body != "a" {
			t.Fatal("weight 0 group got traffic")
		}
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	t.Parallel()
	// A target that upgrades and echoes lines.
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "no upgrade", 400)
			return
		}
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		for {
			line, err := rw.ReadString('\n')
			if err != nil {
				return
			}
			rw.WriteString("echo " + line)
			rw.Flush()
		}
	}))
	defer ws.Close()
	host, port, _ := net.SplitHostPort(ws.Listener.Addr().String())
	tg := group("tg")
	var pn int
	fmt.Sscan(port, &pn)
	tg.Targets = []Target{{ID: host, Port: pn, Addr: ws.Listener.Addr().String()}}
	p, url, _ := startPlane(t, oneListener(Listener{DefaultActions: []Action{forward("tg")}}, tg))
	waitFor(t, "healthy", 5*time.Second, allHealthy(p, "tg", 1))
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprintf(c, "hello\n")
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || line != "echo hello\n" {
		t.Fatalf("echo: %q %v", line, err)
	}
	// An upgraded connection idle for the load balancer's idle timeout is closed.
	cfg := oneListener(Listener{Addr: strings.TrimPrefix(url, "http://"), DefaultActions: []Action{forward("tg")}}, tg)
	cfg.LoadBalancers[0].IdleTimeout = 300 * time.Millisecond
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	c2, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprintf(c2, "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br2 := bufio.NewReader(c2)
	if resp, err := http.ReadResponse(br2, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	start := time.Now()
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br2.ReadString('\n'); err != io.EOF || time.Since(start) > 3*time.Second {
		t.Fatalf("idle upgraded connection: %v after %v", err, time.Since(start))
	}
}

func TestH2CClientsAndTargets(t *testing.T) {
	t.Parallel()
	// An h2c target: HTTP/2 with prior knowledge only.
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "proto %d", r.ProtoMajor)
	}))
	srv.Config.Protocols = protos
	srv.Start()
	defer srv.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	var pn int
	fmt.Sscan(port, &pn)
	tg := group("tg")
	tg.ProtocolVersion = "HTTP2"
	tg.HealthCheck.Enabled = false // the health checker speaks HTTP/1.1, as ALB's does for HTTP1 checks
	tg.Targets = []Target{{ID: host, Port: pn, Addr: srv.Listener.Addr().String()}}
	_, url, _ := startPlane(t, oneListener(Listener{DefaultActions: []Action{forward("tg")}}, tg))
	cp := new(http.Protocols)
	cp.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: cp}}
	resp, err := client.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "proto 2" {
		t.Fatalf("h2c end to end: client proto %d, target saw %q", resp.ProtoMajor, body)
	}
}

func writeCert(t *testing.T) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lb.localhost"}, DNSNames: []string{"lb.localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return cf, kf
}

func TestHTTPSListener(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a")
	cf, kf := writeCert(t)
	p, url, _ := startPlane(t, oneListener(Listener{Protocol: "HTTPS", CertFile: cf, KeyFile: kf, DefaultActions: []Action{forward("tg")}}, group("tg", a)))
	waitFor(t, "healthy", 5*time.Second, allHealthy(p, "tg", 1))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	resp, err := client.Get(strings.Replace(url, "http://", "https://", 1) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "a" || resp.ProtoMajor != 2 {
		t.Fatalf("https: %q proto %d", body, resp.ProtoMajor)
	}
	if a.last.Load().Header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("X-Forwarded-Proto %q", a.last.Load().Header.Get("X-Forwarded-Proto"))
	}
	// A missing certificate is refused and changes nothing.
	bad := oneListener(Listener{Addr: strings.TrimPrefix(url, "http://"), Protocol: "HTTPS", CertFile: "/nonexistent", KeyFile: kf, DefaultActions: []Action{forward("tg")}}, group("tg", a))
	if err := p.Apply(bad); err == nil || !strings.Contains(err.Error(), "lst") {
		t.Fatalf("bad certificate: %v", err)
	}
	resp, err = client.Get(strings.Replace(url, "http://", "https://", 1) + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestTCPListener(t *testing.T) {
	t.Parallel()
	echo, _ := net.Listen("tcp", "127.0.0.1:0")
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	host, port, _ := net.SplitHostPort(echo.Addr().String())
	var pn int
	fmt.Sscan(port, &pn)
	tg := TargetGroup{ARN: "tg", Protocol: "TCP", HealthCheck: HealthCheck{Enabled: true, Protocol: "TCP", Interval: 200 * time.Millisecond, Timeout: 100 * time.Millisecond, HealthyThreshold: 2, UnhealthyThreshold: 2}, Targets: []Target{{ID: host, Port: pn, Addr: echo.Addr().String()}}}
	cfg := Config{LoadBalancers: []LoadBalancer{{ARN: "nlb", Type: "network", Listeners: []Listener{{ARN: "l", Addr: "127.0.0.1:0", Protocol: "TCP", DefaultActions: []Action{forward("tg")}}}}}, TargetGroups: []TargetGroup{tg}}
	p := New(Options{})
	defer p.Close()
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "healthy", 5*time.Second, allHealthy(p, "tg", 1))
	c, err := net.Dial("tcp", p.ListenerAddr("l").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	c.(*net.TCPConn).CloseWrite()
	b, _ := io.ReadAll(c)
	if string(b) != "ping" {
		t.Fatalf("echo %q", b)
	}
	// An idle connection is closed after the load balancer's idle timeout.
	cfg.LoadBalancers[0].IdleTimeout = 300 * time.Millisecond
	cfg.LoadBalancers[0].Listeners[0].Addr = p.ListenerAddr("l").String()
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	idle, err := net.Dial("tcp", p.ListenerAddr("l").String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.Write([]byte("x"))
	start := time.Now()
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ = io.ReadAll(idle)
	if string(b) != "x" || time.Since(start) > 3*time.Second {
		t.Fatalf("idle connection: read %q, closed after %v", b, time.Since(start))
	}
}

func TestListenErrorsAndCanListen(t *testing.T) {
	t.Parallel()
	busy, _ := net.Listen("tcp", "127.0.0.1:0")
	defer busy.Close()
	a := newBackend(t, "a")
	p, url, _ := startPlane(t, oneListener(Listener{DefaultActions: []Action{forward("tg")}}, group("tg", a)))
	addr := strings.TrimPrefix(url, "http://")
	cfg := oneListener(Listener{Addr: addr, DefaultActions: []Action{forward("tg")}}, group("tg", a))
	cfg.LoadBalancers[0].Listeners = append(cfg.LoadBalancers[0].Listeners, Listener{ARN: "lst2", Addr: busy.Addr().String(), Protocol: "HTTP", DefaultActions: []Action{forward("tg")}})
	err := p.Apply(cfg)
	var le *ListenError
	if !errors.As(err, &le) || le.ListenerARN != "lst2" || le.Addr != busy.Addr().String() || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Fatalf("port in use: %v", err)
	}
	if code, _, _ := get(t, http.DefaultClient, url+"/"); code != 200 && code != 503 {
		t.Fatalf("the failed Apply disturbed the running listener: %d", code)
	}
	if err := p.CanListen("lst", addr); err != nil {
		t.Errorf("own address: %v", err)
	}
	if err := p.CanListen("other", addr); !errors.As(err, &le) {
		t.Errorf("address of another listener: %v", err)
	}
	if err := p.CanListen("x", busy.Addr().String()); !errors.As(err, &le) {
		t.Errorf("busy address: %v", err)
	}
	if err := p.CanListen("x", "127.0.0.1:0"); err != nil {
		t.Errorf("free address: %v", err)
	}
	// Removing the listener frees its address.
	if err := p.Apply(Config{}); err != nil {
		t.Fatal(err)
	}
	if err := p.CanListen("x", addr); err != nil {
		t.Errorf("after removal: %v", err)
	}
}

func TestUnusedGroupAndReregistration(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a")
	p := New(Options{})
	defer p.Close()
	if err := p.Apply(Config{TargetGroups: []TargetGroup{group("tg", a)}}); err != nil {
		t.Fatal(err)
	}
	hs := p.TargetHealth("tg")
	if len(hs) != 1 || hs[0].State != StateUnused || hs[0].Reason != "Target.NotInUse" {
		t.Fatalf("group without a load balancer: %+v", hs)
	}
	if p.TargetHealth("nope") != nil {
		t.Fatal("unknown group has targets")
	}
}

func TestStartHealthyTakesTrafficAtOnce(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a")
	tg := group("tg", a)
	tg.HealthCheck.Interval = time.Minute
	tg.Targets[0].StartHealthy = true
	p, url, _ := startPlane(t, oneListener(Listener{DefaultActions: []Action{forward("tg")}}, tg))
	if hs := p.TargetHealth("tg"); len(hs) != 1 || hs[0].State != StateHealthy {
		t.Fatalf("restored target: %+v", hs)
	}
	if code, body, _ := get(t, http.DefaultClient, url+"/"); code != 200 || body != "a" {
		t.Fatalf("%d %q", code, body)
	}
}

func TestRequestBodiesAndStreaming(t *testing.T) {
	t.Parallel()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		if r.URL.Path == "/stream" {
			for i := 0; i < 3; i++ {
				fmt.Fprintf(w, "chunk%d\n", i)
				w.(http.Flusher).Flush()
			}
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %d %q %s", r.Method, r.ContentLength, r.TransferEncoding, b)
	}))
	defer echo.Close()
	host, port, _ := net.SplitHostPort(echo.Listener.Addr().String())
	var pn int
	fmt.Sscan(port, &pn)
	tg := group("tg")
	tg.Targets = []Target{{ID: host, Port: pn, Addr: echo.Listener.Addr().String()}}
	p, url, _ := startPlane(t, oneListener(Listener{DefaultActions: []Action{forward("tg")}}, tg))
	waitFor(t, "healthy", 5*time.Second, allHealthy(p, "tg", 1))
	resp, err := http.Post(url+"/", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != `POST 5 [] hello` {
		t.Errorf("sized body: %s", b)
	}
	pr, pw := io.Pipe()
	go func() { pw.Write([]byte("streamed")); pw.Close() }()
	resp, err = http.Post(url+"/", "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != `POST -1 ["chunked"] streamed` {
		t.Errorf("chunked body: %s", b)
	}
	resp, err = http.Get(url + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "chunk0\nchunk1\nchunk2\n" {
		t.Errorf("streamed response: %q", b)
	}
	req, _ := http.NewRequest("HEAD", url+"/", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	resp.Body.Close()
	// The pool is reused after all of these.
	if code, _, _ := get(t, http.DefaultClient, url+"/"); code != 200 {
		t.Fatal(code)
	}
}
