package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/cloudmap"
	"github.com/berthdev/berth/internal/store"
)

// DNSConfig configures the Cloud Map DNS benchmark.
type DNSConfig struct {
	Services  int           // services in the namespace (3 instances each)
	Duration  time.Duration // per dnsperf run
	Rounds    int           // runs per server, alternating
	Clients   int           // dnsperf -c
	ServerCPU string        // taskset CPU list for the servers
	ClientCPU string        // taskset CPU list for dnsperf
	Self      string        // the berth executable (serves `bench dns-serve`)
}

// DefaultDNSConfig is the configuration `berth bench dns` runs.
func DefaultDNSConfig() DNSConfig {
	return DNSConfig{Services: 200, Duration: 10 * time.Second, Rounds: 2, Clients: 4, ServerCPU: "0", ClientCPU: "1"}
}

// DNSRun is one dnsperf run.
type DNSRun struct {
	Server     string
	QPS        float64
	Lost       string
	AvgLatency string
}

// DNSResult is the benchmark's outcome.
type DNSResult struct {
	Config    DNSConfig // what ran
	Runs      []DNSRun
	BerthBest float64
	NSDBest   float64
}

const benchZone = "bench.local"

// BenchSnapshot is the namespace the benchmark serves: n services
// svc<i>.bench.local with A and SRV records of three instances each.
func BenchSnapshot(n int) *cloudmap.Snapshot {
	var kvs []store.KV
	put := func(k string, v string) { kvs = append(kvs, store.KV{Key: k, Value: []byte(v)}) }
	put("/berth/cloudmap/ns/ns-bench", `{"id":"ns-bench","name":"`+benchZone+`","type":"DNS_PRIVATE","soaTtl":15}`)
	for i := range n {
		id := fmt.Sprintf("srv-%d", i)
		put("/berth/cloudmap/svc/"+id, fmt.Sprintf(`{"id":%q,"name":"svc%d","namespaceId":"ns-bench","type":"DNS_HTTP","routingPolicy":"MULTIVALUE","records":[{"type":"A","ttl":60},{"type":"SRV","ttl":60}]}`, id, i))
		for j := range 3 {
			put(fmt.Sprintf("/berth/cloudmap/inst/%s/i-%d", id, j), fmt.Sprintf(`{"id":"i-%d","serviceId":%q,"health":"UNKNOWN","attributes":{"AWS_INSTANCE_IPV4":"10.%d.%d.%d","AWS_INSTANCE_PORT":"80"}}`, j, id, i/250, i%250, j+1))
		}
	}
	return cloudmap.BuildSnapshot(1, kvs)
}

// benchZoneFile writes the same records as a zone file for nsd.
func benchZoneFile(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s.\n$TTL 60\n@ 15 IN SOA ns1.berth.%s. hostmaster.berth.%s. 1 7200 900 1209600 86400\n@ IN NS ns1.berth\nns1.berth IN A 127.0.0.1\n", benchZone, benchZone, benchZone)
	for i := range n {
		for j := range 3 {
			ip := netip.AddrFrom4([4]byte{10, byte(i / 250), byte(i % 250), byte(j + 1)})
			fmt.Fprintf(&b, "svc%d IN A %s\n", i, ip)
			fmt.Fprintf(&b, "svc%d IN SRV 1 1 80 i-%d.svc%d\n", i, j, i)
			fmt.Fprintf(&b, "i-%d.svc%d IN A %s\n", j, i, ip)
		}
	}
	return b.String()
}

// benchQueries is dnsperf's query file: A and SRV of every service, and
// one NXDOMAIN in ten.
func benchQueries(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "svc%d.%s A\nsvc%d.%s SRV\n", i, benchZone, i, benchZone)
		if i%5 == 0 {
			fmt.Fprintf(&b, "missing%d.%s A\n", i, benchZone)
		}
	}
	return b.String()
}

// ServeBenchDNS serves the benchmark's snapshot on addr until ctx ends
// (`berth bench dns-serve`, run pinned to one CPU by DNS).
func ServeBenchDNS(ctx context.Context, addr string, services int) error {
	cat := cloudmap.NewCatalog(nil, nil)
	cat.Set(BenchSnapshot(services))
	srv, err := cloudmap.NewDNSServer(cat, cloudmap.DNSConfig{Listen: addr, Upstreams: []string{}})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	srv.Close()
	return nil
}

// freeDNSPorts returns n distinct ports free for both UDP and TCP on
// loopback (held until all are picked).
func freeDNSPorts(n int) ([]int, error) {
	var out []int
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for len(out) < n {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		held = append(held, pc)
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		held = append(held, ln)
		out = append(out, port)
	}
	return out, nil
}

var (
	reQPS     = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	reLost    = regexp.MustCompile(`Queries lost:\s+(\S+ \([^)]*\))`)
	reLatency = regexp.MustCompile(`Average Latency \(s\):\s+(\S+)`)
)

var reDone = regexp.MustCompile(`Queries completed:\s+1\s`)

// waitDNS waits until something answers UDP DNS on port.
func waitDNS(ctx context.Context, dir string, port int) error {
	one := filepath.Join(dir, "one")
	if err := os.WriteFile(one, []byte("svc0."+benchZone+" A\n"), 0o644); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := exec.CommandContext(ctx, "dnsperf", "-s", "127.0.0.1", "-p", strconv.Itoa(port), "-d", one, "-n", "1", "-t", "1").CombinedOutput()
		if reDone.Match(out) {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("nothing answers DNS on port %d", port)
}

// DNS measures the Cloud Map DNS server and nsd serving the same zone,
// each pinned to ServerCPU, with dnsperf pinned to ClientCPU, alternating
// Rounds times.
func DNS(ctx context.Context, cfg DNSConfig) (DNSResult, error) {
	res := DNSResult{Config: cfg}
	for _, tool := range []string{"dnsperf", "nsd", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			return res, fmt.Errorf("%s is needed (apt-get install -y dnsperf nsd util-linux): %w", tool, err)
		}
	}
	dir, err := os.MkdirTemp("", "berth-bench-dns-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	queries := filepath.Join(dir, "queries")
	if err := os.WriteFile(queries, []byte(benchQueries(cfg.Services)), 0o644); err != nil {
		return res, err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.zone"), []byte(benchZoneFile(cfg.Services)), 0o644); err != nil {
		return res, err
	}
	ports, err := freeDNSPorts(2)
	if err != nil {
		return res, err
	}
	berthPort, nsdPort := ports[0], ports[1]
	// nsd's response rate limiting (on by default, 200 q/s per source) is
	// off: one local source is the whole load here.
	conf := fmt.Sprintf(`server:
  ip-address: 127.0.0.1@%d
  server-count: 1
  username: ""
  zonesdir: %q
  pidfile: %q
  xfrdfile: %q
  zonelistfile: %q
  database: ""
  verbosity: 0
  hide-version: yes
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: %s
  zonefile: bench.zone
`, nsdPort, dir, filepath.Join(dir, "nsd.pid"), filepath.Join(dir, "xfrd.state"), filepath.Join(dir, "zone.list"), benchZone)
	confPath := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return res, err
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	berth := exec.CommandContext(sctx, "taskset", "-c", cfg.ServerCPU, cfg.Self, "bench", "dns-serve", "--listen", fmt.Sprintf("127.0.0.1:%d", berthPort), "--services", strconv.Itoa(cfg.Services))
	berth.Env = append(os.Environ(), "GOMAXPROCS=1")
	berth.Stderr = os.Stderr
	if err := berth.Start(); err != nil {
		return res, err
	}
	// Deferred calls run last first: each stops the servers before it waits.
	defer func() { cancel(); _ = berth.Wait() }()
	nsd := exec.CommandContext(sctx, "taskset", "-c", cfg.ServerCPU, "nsd", "-d", "-c", confPath)
	nsdOut := &strings.Builder{}
	nsd.Stdout, nsd.Stderr = nsdOut, nsdOut
	if err := nsd.Start(); err != nil {
		return res, err
	}
	defer func() { cancel(); _ = nsd.Wait() }()
	for _, p := range []int{berthPort, nsdPort} {
		if err := waitDNS(ctx, dir, p); err != nil {
			return res, fmt.Errorf("%w (nsd: %s)", err, nsdOut.String())
		}
	}
	for range cfg.Rounds {
		for _, s := range []struct {
			name string
			port int
		}{{"berth", berthPort}, {"nsd", nsdPort}} {
			out, err := exec.CommandContext(ctx, "taskset", "-c", cfg.ClientCPU, "dnsperf", "-s", "127.0.0.1", "-p", strconv.Itoa(s.port),
				"-d", queries, "-l", strconv.Itoa(int(cfg.Duration.Seconds())), "-c", strconv.Itoa(cfg.Clients), "-q", "500").CombinedOutput()
			if err != nil {
				return res, fmt.Errorf("dnsperf against %s: %v: %s", s.name, err, out)
			}
			m := reQPS.FindSubmatch(out)
			if m == nil {
				return res, fmt.Errorf("dnsperf output without a rate: %s", out)
			}
			qps, _ := strconv.ParseFloat(string(m[1]), 64)
			run := DNSRun{Server: s.name, QPS: qps}
			if l := reLost.FindSubmatch(out); l != nil {
				run.Lost = string(l[1])
			}
			if l := reLatency.FindSubmatch(out); l != nil {
				run.AvgLatency = string(l[1])
			}
			res.Runs = append(res.Runs, run)
			if s.name == "berth" {
				res.BerthBest = max(res.BerthBest, qps)
			} else {
				res.NSDBest = max(res.NSDBest, qps)
			}
		}
	}
	return res, nil
}

// Report prints the results.
func (r DNSResult) Report(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "Cloud Map DNS beside nsd, same zone (%d services, 3 instances each), servers pinned to CPU %s (berth GOMAXPROCS=1, nsd server-count 1), dnsperf -c %d on CPU %s, %s per run\n",
		c.Services, c.ServerCPU, c.Clients, c.ClientCPU, c.Duration)
	fmt.Fprintf(w, "%-6s %12s %14s %s\n", "server", "queries/s", "avg latency s", "lost")
	for _, run := range r.Runs {
		fmt.Fprintf(w, "%-6s %12.0f %14s %s\n", run.Server, run.QPS, run.AvgLatency, run.Lost)
	}
	fmt.Fprintf(w, "best: berth %.0f q/s, nsd %.0f q/s, ratio %.2f (goal: berth >= 20000 q/s on one core)\n", r.BerthBest, r.NSDBest, r.BerthBest/r.NSDBest)
}
