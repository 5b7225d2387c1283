package alb

import (
	"net"
	"testing"

	"github.com/berthdev/berth/internal/httpfwd/rawbench"
)

// BenchmarkProxyRaw: one request through a listener to a target, with a raw client and target so
// that the CPU per request (cpu-ns/op) is mostly the load balancer's.
func BenchmarkProxyRaw(b *testing.B) {
	backend := rawbench.Backend(b)
	host, _, _ := net.SplitHostPort(backend)
	tg := TargetGroup{ARN: "tg", Protocol: "HTTP", Algorithm: "round_robin", HealthCheck: HealthCheck{Enabled: false},
		Targets: []Target{{ID: host, Port: 1, Addr: backend}}}
	p := New(Options{})
	defer p.Close()
	cfg := Config{LoadBalancers: []LoadBalancer{{ARN: "lb", Type: "application", Listeners: []Listener{{ARN: "l", Addr: "127.0.0.1:0", Protocol: "HTTP",
		DefaultActions: []Action{{Type: "forward", Forward: []WeightedTargetGroup{{ARN: "tg", Weight: 1}}}}}}}}, TargetGroups: []TargetGroup{tg}}
	if err := p.Apply(cfg); err != nil {
		b.Fatal(err)
	}
	rawbench.Clients(b, p.ListenerAddr("l").String())
}

// BenchmarkDirectRaw is BenchmarkProxyRaw's client straight to its target: the CPU of both,
// to subtract from BenchmarkProxyRaw's to get the load balancer's own.
func BenchmarkDirectRaw(b *testing.B) {
	rawbench.Clients(b, rawbench.Backend(b))
}
