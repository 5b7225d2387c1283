package alb

import (
	"bufio"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rawBackend answers every request with a fixed 2-byte body, parsing as little as it can, so
// that a benchmark's CPU is mostly the proxy's.
func rawBackend(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					if _, err := rawHead(br); err != nil {
						return
					}
					if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// rawHead reads a head and returns its Content-Length (0 if none).
func rawHead(br *bufio.Reader) (int, error) {
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			return n, nil
		}
		if len(line) > 16 && strings.EqualFold(string(line[:15]), "content-length:") {
			n, _ = strconv.Atoi(strings.TrimSpace(string(line[15:])))
		}
	}
}

// rawClients runs keep-alive GETs against addr from parallel connections and reports the
// process's CPU time per request (client, proxy and backend together; the first two are small).
func rawClients(b *testing.B, addr string) {
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ReportAllocs()
	if p := os.Getenv("RAWBENCH_PARALLELISM"); p != "" { // goroutines per CPU (wrk's 64 connections: 32)
		n, _ := strconv.Atoi(p)
		b.SetParallelism(n)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		req := []byte("GET /bench HTTP/1.1\r\nHost: bench\r\nUser-Agent: raw\r\n\r\n")
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			n, err := rawHead(br)
			if err == nil {
				_, err = br.Discard(n)
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkProxyRaw: one request through a listener to a target, with a raw client and target so
// that the CPU per request (cpu-ns/op) is mostly the load balancer's.
func BenchmarkProxyRaw(b *testing.B) {
	backend := rawBackend(b)
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
	rawClients(b, p.ListenerAddr("l").String())
}

// BenchmarkDirectRaw is BenchmarkProxyRaw's client straight to its target: the CPU of both,
// to subtract from BenchmarkProxyRaw's to get the load balancer's own.
func BenchmarkDirectRaw(b *testing.B) {
	rawClients(b, rawBackend(b))
}
