package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berthdev/berth/internal/alb"
)

// ALBConfig shapes the load balancer data plane benchmark (issue 11).
type ALBConfig struct {
	NginxWrkConfig
	Self string // the berth executable, run as `berth bench alb-serve` (default: this one)
}

// NginxWrkConfig is the nginx/wrk comparison the proxy benchmarks (alb,
// scproxy) run.
type NginxWrkConfig struct {
	Nginx       string        // nginx binary (Debian's nginx-light or nginx)
	Wrk         string        // wrk binary
	Duration    time.Duration // of each throughput run
	Rounds      int           // throughput runs per side, alternating
	Connections int           // wrk connections for the throughput runs
	Threads     int           // wrk threads
	LatencyDur  time.Duration // of each fixed-rate latency run
	// Rounds of the paired probe at each load (half and a quarter of the maximum, 1,000/s, none).
	LatencyRounds int
	Rate          float64 // requests/s of the latency runs (0: half of the measured maximum)
}

func defaultNginxWrk() NginxWrkConfig {
	return NginxWrkConfig{Nginx: "nginx", Wrk: "wrk", Duration: 8 * time.Second, Rounds: 3, Connections: 64, Threads: 1, LatencyDur: 8 * time.Second, LatencyRounds: 3}
}

// Valid reports whether the runs are long and many enough to measure.
func (c NginxWrkConfig) Valid() bool {
	return c.Duration >= time.Second && c.Rounds >= 1 && c.Connections >= 1 && c.Threads >= 1 && c.LatencyDur >= time.Second && c.LatencyRounds >= 1 && c.Rate >= 0
}

// DefaultALBConfig is what `berth bench alb` runs.
func DefaultALBConfig() ALBConfig { return ALBConfig{NginxWrkConfig: defaultNginxWrk()} }

// wrkResult is what one wrk run printed.
type wrkResult struct {
	RPS      float64
	P50, P99 time.Duration
	Errors   int
}

// ALBResult holds the measurements.
type ALBResult struct {
	NginxVersion string
	CPU          string
	// Throughput, requests per CPU-second (Berth's: the `berth bench alb-serve` process) and
	// latency beside nginx (Other: Berth).
	Comparison proxyComparison
	// Failure handling, with the seeds' tuning (interval 5 s, thresholds 2).
	KillUnhealthy time.Duration // a target killed under load: until DescribeTargetHealth says unhealthy
	KillLastHit   time.Duration // until the last request that reached a target other than through a retry failed
	KillFailed    int64         // client requests that failed meanwhile
	KillRequests  int64
	EnterAfter    time.Duration // a new target: from its first passing check to its first request
}

// ALB measures the data plane (in a `berth bench alb-serve` child process) beside nginx as a
// reverse proxy to the same backends (two nginx servers answering "ok"), with the same wrk runs:
// the maximum throughput through one listener, alternating rounds; then latency (wrk at half of
// the ALB's maximum rate, and the paired probe at four loads: compare); then, with Go targets in
// this process, how fast a killed target leaves rotation and a new one enters.
func ALB(ctx context.Context, cfg ALBConfig) (res ALBResult, err error) {
	res.CPU = cpuModel()
	h, err := startNginxWrk(ctx, cfg.NginxWrkConfig, `      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Port $server_port;`)
	if err != nil {
		return res, err
	}
	defer h.close()
	res.NginxVersion = h.version
	ports, err := freePorts(1)
	if err != nil {
		return res, err
	}
	ap := ports[0]

	// Berth's data plane in a process of its own (`berth bench alb-serve`), as the server runs
	// it apart from its clients: one listener, one target group of the two backends. In this
	// process, the probe's client and the proxy would share one Go scheduler.
	self := cfg.Self
	if self == "" {
		if self, err = os.Executable(); err != nil {
			return res, err
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ap)
	scmd := exec.Command(self, "bench", "alb-serve", "--listen", addr, "--targets", fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d", h.b1, h.b2))
	scmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(runtime.GOMAXPROCS(0)))
	scmd.Stderr = os.Stderr
	out, err := scmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	if err := scmd.Start(); err != nil {
		return res, fmt.Errorf("start berth bench alb-serve: %w", err)
	}
	servePID := scmd.Process.Pid
	defer stopChild(scmd)
	readyLine := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("alb-serve said %q", line)
		}
		readyLine <- err
		io.Copy(io.Discard, out)
	}()
	select {
	case err := <-readyLine:
		if err != nil {
			return res, fmt.Errorf("berth bench alb-serve: %w", err)
		}
	case <-time.After(30 * time.Second):
		return res, fmt.Errorf("berth bench alb-serve: targets not healthy after 30 s")
	case <-ctx.Done():
		return res, ctx.Err()
	}

	// 1. Throughput and 2. latency beside nginx (Berth's CPU: the alb-serve process's).
	c, err := h.compare(ctx, "http://"+addr+"/", func() time.Duration { return treeCPU(servePID) })
	if err != nil {
		return res, err
	}
	stopChild(scmd)
	res.Comparison = c

	// 3. Failure handling with Go targets and the seeds' tuning.
	if err := albFailover(ctx, &res); err != nil {
		return res, err
	}
	return res, nil
}

// probeResult is the latency of single requests straight to a backend and through a proxy,
// alternated.
type probeResult struct {
	N                                    int
	DirectP50, DirectP99, ViaP50, ViaP99 time.Duration
	AddedP50                             time.Duration // median of the paired differences
}

// AddedP99 is the p99 through the proxy less the p99 direct, of the same samples.
func (p probeResult) AddedP99() time.Duration { return p.ViaP99 - p.DirectP99 }

func probe(ctx context.Context, direct, via string) probeResult {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	one := func(u string) (time.Duration, bool) {
		t0 := time.Now()
		resp, err := client.Get(u)
		if err != nil {
			return 0, false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(t0), resp.StatusCode == 200
	}
	var ds, vs, diffs []time.Duration
	time.Sleep(500 * time.Millisecond) // wrk ramps up
	for ctx.Err() == nil {
		d, ok1 := one(direct)
		v, ok2 := one(via)
		if ok1 && ok2 && ctx.Err() == nil {
			ds, vs, diffs = append(ds, d), append(vs, v), append(diffs, v-d)
		}
		time.Sleep(2 * time.Millisecond)
	}
	pct := func(x []time.Duration, q float64) time.Duration {
		if len(x) == 0 {
			return 0
		}
		s := append([]time.Duration(nil), x...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[min(len(s)-1, int(q*float64(len(s))))]
	}
	return probeResult{N: len(ds), DirectP50: pct(ds, 0.5), DirectP99: pct(ds, 0.99), ViaP50: pct(vs, 0.5), ViaP99: pct(vs, 0.99), AddedP50: pct(diffs, 0.5)}
}

// albFailover kills one of three targets under load, then registers a new one.
func albFailover(ctx context.Context, res *ALBResult) error {
	type tgt struct {
		srv       *http.Server
		ln        net.Listener
		firstPass atomic.Int64 // unix nanos of the first passing health check
		firstHit  atomic.Int64
	}
	start := func() (*tgt, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		t := &tgt{ln: ln}
		t.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			now := time.Now().UnixNano()
			if r.URL.Path == "/health" {
				t.firstPass.CompareAndSwap(0, now)
				return
			}
			t.firstHit.CompareAndSwap(0, now)
			io.WriteString(w, "ok")
		})}
		go t.srv.Serve(ln)
		return t, nil
	}
	var ts []*tgt
	for i := 0; i < 3; i++ {
		t, err := start()
		if err != nil {
			return err
		}
		defer t.srv.Close()
		ts = append(ts, t)
	}
	spec := func(t *tgt) alb.Target {
		p := t.ln.Addr().(*net.TCPAddr).Port
		return alb.Target{ID: "127.0.0.1", Port: p, Addr: t.ln.Addr().String()}
	}
	hc := alb.HealthCheck{Enabled: true, Protocol: "HTTP", Path: "/health", Port: "traffic-port", Interval: 5 * time.Second, Timeout: 2 * time.Second, HealthyThreshold: 2, UnhealthyThreshold: 2, Matcher: "200"}
	tg := alb.TargetGroup{ARN: "tg-go", Protocol: "HTTP", Algorithm: "round_robin", HealthCheck: hc, DeregistrationDelay: 5 * time.Second}
	for _, t := range ts {
		tg.Targets = append(tg.Targets, spec(t))
	}
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	cfg := alb.Config{LoadBalancers: []alb.LoadBalancer{{ARN: "lb2", Type: "application", Listeners: []alb.Listener{{ARN: "l2", Addr: fmt.Sprintf("127.0.0.1:%d", ports[0]), Protocol: "HTTP",
		DefaultActions: []alb.Action{{Type: "forward", Forward: []alb.WeightedTargetGroup{{ARN: tg.ARN, Weight: 1}}}}}}}}, TargetGroups: []alb.TargetGroup{tg}}
	plane := alb.New(alb.Options{})
	defer plane.Close()
	if err := plane.Apply(cfg); err != nil {
		return err
	}
	if err := waitHealthy(ctx, plane, tg.ARN, 3, 20*time.Second); err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", ports[0])
	load := StartLoad(ctx, url, 4, 0, 5*time.Second)
	defer load.Stop()
	time.Sleep(time.Second)
	victim := ts[2]
	vkey := spec(victim)
	killed := time.Now()
	victim.srv.Close() // listener and connections gone: connection refused from now on
	deadline := killed.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if stateOf(plane, tg.ARN, vkey) == alb.StateUnhealthy {
			res.KillUnhealthy = time.Since(killed)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The new target: registered while the load runs.
	nt, err := start()
	if err != nil {
		return err
	}
	defer nt.srv.Close()
	tg.Targets = append(tg.Targets, spec(nt))
	cfg.TargetGroups = []alb.TargetGroup{tg}
	if err := plane.Apply(cfg); err != nil {
		return err
	}
	for i := 0; i < 3000 && nt.firstHit.Load() == 0; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	load.Stop()
	res.KillRequests, res.KillFailed = load.Counts()
	if res.KillUnhealthy == 0 {
		return errors.New("the killed target never turned unhealthy")
	}
	if nt.firstHit.Load() == 0 || nt.firstPass.Load() == 0 {
		return errors.New("the new target never received a request")
	}
	res.EnterAfter = time.Duration(nt.firstHit.Load() - nt.firstPass.Load())
	return nil
}

func stateOf(p *alb.Plane, tg string, t alb.Target) string {
	for _, h := range p.TargetHealth(tg) {
		if h.ID == t.ID && h.Port == t.Port {
			return h.State
		}
	}
	return ""
}

// stopChild stops a started child process: SIGTERM, then SIGKILL after 5 s; it waits for
// it, once (a second call does nothing).
func stopChild(cmd *exec.Cmd) {
	if cmd.Process == nil || cmd.ProcessState != nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// ServeBenchALB runs the data plane `berth bench alb` measures: a listener at listen
// forwarding round robin to targets (host:port), health-checked as in the benchmark; it writes
// "ready" on stdout once every target is healthy, and serves until ctx ends.
func ServeBenchALB(ctx context.Context, stdout io.Writer, listen string, targets []string) error {
	plane := alb.New(alb.Options{})
	defer plane.Close()
	tg := benchTargetGroup(targets)
	if err := plane.Apply(alb.Config{LoadBalancers: []alb.LoadBalancer{{ARN: "lb", Type: "application", Listeners: []alb.Listener{{ARN: "l", Addr: listen, Protocol: "HTTP",
		DefaultActions: []alb.Action{{Type: "forward", Forward: []alb.WeightedTargetGroup{{ARN: tg.ARN, Weight: 1}}}}}}}}, TargetGroups: []alb.TargetGroup{tg}}); err != nil {
		return err
	}
	if err := waitHealthy(ctx, plane, tg.ARN, len(targets), 20*time.Second); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "ready")
	<-ctx.Done()
	return nil
}

// benchTargetGroup is the benchmark's target group of the targets (host:port), checked every
// 5 s with thresholds of 2 (the seeds' tuning).
func benchTargetGroup(targets []string) alb.TargetGroup {
	hc := alb.HealthCheck{Enabled: true, Protocol: "HTTP", Path: "/", Port: "traffic-port", Interval: 5 * time.Second, Timeout: 2 * time.Second, HealthyThreshold: 2, UnhealthyThreshold: 2, Matcher: "200"}
	tg := alb.TargetGroup{ARN: "tg-bench", Protocol: "HTTP", ProtocolVersion: "HTTP1", Algorithm: "round_robin", HealthCheck: hc}
	for _, t := range targets {
		host, port, _ := net.SplitHostPort(t)
		p, _ := strconv.Atoi(port)
		tg.Targets = append(tg.Targets, alb.Target{ID: host, Port: p, Addr: t})
	}
	return tg
}

func waitHealthy(ctx context.Context, p *alb.Plane, tg string, n int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		healthy := 0
		for _, h := range p.TargetHealth(tg) {
			if h.State == alb.StateHealthy {
				healthy++
			}
		}
		if healthy >= n {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("targets of %s not healthy after %v: %+v", tg, d, p.TargetHealth(tg))
}

func waitHTTP(ctx context.Context, url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s does not answer", url)
}

func freePorts(n int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

var (
	wrkRPS  = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkPct  = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkErrs = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)|Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func runWrk(ctx context.Context, bin string, args []string) (wrkResult, error) {
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w: %s", strings.Join(args, " "), err, out)
	}
	var r wrkResult
	m := wrkRPS.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk printed no rate: %s", out)
	}
	r.RPS, _ = strconv.ParseFloat(string(m[1]), 64)
	for _, pm := range wrkPct.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(pm[2]), 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(pm[3])]
		d := time.Duration(v * float64(unit))
		if string(pm[1]) == "50" {
			r.P50 = d
		} else {
			r.P99 = d
		}
	}
	for _, em := range wrkErrs.FindAllSubmatch(out, -1) {
		for _, g := range em[1:] {
			n, _ := strconv.Atoi(string(g))
			r.Errors += n
		}
	}
	return r, nil
}

// treeCPU is the CPU time of a process and its children (nginx's master and workers), from /proc.
func treeCPU(pid int) time.Duration {
	ents, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n))
		if err != nil {
			continue
		}
		// Fields after the command name (which is in parentheses and may hold spaces).
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if n != pid && ppid != pid {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += ut + st
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

// Report prints the results.
func (r ALBResult) Report(w io.Writer) {
	fmt.Fprintf(w, "CPU: %s, %d processors (GOMAXPROCS; nginx workers the same); nginx %s\n", r.CPU, runtime.GOMAXPROCS(0), r.NginxVersion)
	reportComparison(w, "berth", r.Comparison)
	fmt.Fprintf(w, "failure handling (interval 5 s, thresholds 2):\n  killed target unhealthy after %v; %d of %d requests failed meanwhile\n  new target: first request %v after its first passing check\n",
		r.KillUnhealthy.Round(time.Millisecond), r.KillFailed, r.KillRequests, r.EnterAfter.Round(time.Millisecond))
}

func fmtRates(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(s, " ")
}
