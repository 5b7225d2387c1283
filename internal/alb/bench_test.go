package alb

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkProxy measures one request through a listener to a local target over keep-alive
// connections, from parallel clients.
func BenchmarkProxy(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	host, _, _ := net.SplitHostPort(backend.Listener.Addr().String())
	tg := TargetGroup{ARN: "tg", Protocol: "HTTP", Algorithm: "round_robin", HealthCheck: HealthCheck{Enabled: false},
		Targets: []Target{{ID: host, Port: 1, Addr: backend.Listener.Addr().String()}}}
	p := New(Options{})
	defer p.Close()
	cfg := Config{LoadBalancers: []LoadBalancer{{ARN: "lb", Type: "application", Listeners: []Listener{{ARN: "l", Addr: "127.0.0.1:0", Protocol: "HTTP",
		DefaultActions: []Action{{Type: "forward", Forward: []WeightedTargetGroup{{ARN: "tg", Weight: 1}}}}}}}}, TargetGroups: []TargetGroup{tg}}
	if err := p.Apply(cfg); err != nil {
		b.Fatal(err)
	}
	url := "http://" + p.ListenerAddr("l").String() + "/"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

func BenchmarkSelectRoute(b *testing.B) {
	var rules []Rule
	for i := 0; i < 50; i++ {
		rules = append(rules, Rule{ARN: "r", Priority: i + 1, Conditions: []Condition{
			{Field: "host-header", Values: []string{"svc" + string(rune('a'+i%26)) + ".example.com"}},
			{Field: "path-pattern", Values: []string{"/api/v1/*/items/*"}},
		}})
	}
	routes, _ := compileRules(rules)
	r := request{Method: "GET", Host: "other.example.com", Path: "/api/v1/users/items/42", SourceIP: netip.MustParseAddr("10.0.0.1")}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		selectRoute(routes, &r)
	}
}

func BenchmarkPick(b *testing.B) {
	g := &tgroup{arn: "tg", targets: map[tkey]*target{}, cfg: TargetGroup{Algorithm: "least_outstanding_requests", SlowStart: time.Minute}}
	for i := 0; i < 8; i++ {
		k := tkey{ID: "10.0.0.1", Port: 8000 + i}
		g.targets[k] = &target{key: k, addr: "x", h: healthState{State: StateHealthy, healthyAt: time.Now()}}
	}
	g.rebuild()
	now := time.Now()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		g.pick(nil, "", now, 0.5)
	}
}
