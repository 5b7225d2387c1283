package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// nginxWrk is the harness the proxy benchmarks (alb, scproxy) share: two
// nginx backends answering "ok" (one nginx, one worker), nginx as a
// reverse proxy to them (the baseline, as many workers as GOMAXPROCS,
// keep-alive pool to the backends), and wrk to load a proxy.
type nginxWrk struct {
	cfg      NginxWrkConfig
	dir      string
	b1, b2   int // the backends' ports
	np       int // the nginx proxy's port
	nginxPID int // the nginx proxy's master
	version  string
	procs    []*exec.Cmd
}

// startNginxWrk starts the backends and the nginx proxy; proxyDirectives
// are added to the proxy's location (forwarded headers, retries) to match
// the proxy it is compared with.
func startNginxWrk(ctx context.Context, cfg NginxWrkConfig, proxyDirectives string) (h *nginxWrk, err error) {
	for _, bin := range []string{cfg.Nginx, cfg.Wrk} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s not found (apt-get install -y nginx-light wrk): %w", bin, err)
		}
	}
	h = &nginxWrk{cfg: cfg}
	if out, err := exec.CommandContext(ctx, cfg.Nginx, "-v").CombinedOutput(); err == nil {
		h.version = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: "))
	}
	if h.dir, err = os.MkdirTemp("", "berth-bench-nginx-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	h.b1, h.b2, h.np = ports[0], ports[1], ports[2]
	backendConf := fmt.Sprintf(`worker_processes 1;
pid %[1]s/backend.pid;
error_log %[1]s/backend-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type text/plain;
  keepalive_requests 10000000;
  client_body_temp_path %[1]s/b-body; proxy_temp_path %[1]s/b-proxy; fastcgi_temp_path %[1]s/b-fcgi; uwsgi_temp_path %[1]s/b-uwsgi; scgi_temp_path %[1]s/b-scgi;
  server { listen 127.0.0.1:%[2]d; location / { return 200 "ok\n"; } }
  server { listen 127.0.0.1:%[3]d; location / { return 200 "ok\n"; } }
}
`, h.dir, h.b1, h.b2)
	proxyConf := fmt.Sprintf(`worker_processes %[5]d;
pid %[1]s/proxy.pid;
error_log %[1]s/proxy-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path %[1]s/p-body; proxy_temp_path %[1]s/p-proxy; fastcgi_temp_path %[1]s/p-fcgi; uwsgi_temp_path %[1]s/p-uwsgi; scgi_temp_path %[1]s/p-scgi;
  upstream backends { server 127.0.0.1:%[2]d; server 127.0.0.1:%[3]d; keepalive 512; }
  server {
    listen 127.0.0.1:%[4]d;
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
%[6]s
    }
  }
}
`, h.dir, h.b1, h.b2, h.np, runtime.GOMAXPROCS(0), proxyDirectives)
	for name, conf := range map[string]string{"backend.conf": backendConf, "proxy.conf": proxyConf} {
		if err := os.WriteFile(filepath.Join(h.dir, name), []byte(conf), 0o600); err != nil {
			return nil, err
		}
	}
	for _, name := range []string{"backend.conf", "proxy.conf"} {
		cmd := exec.Command(cfg.Nginx, "-p", h.dir, "-c", filepath.Join(h.dir, name), "-g", "daemon off;")
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start nginx: %w", err)
		}
		h.procs = append(h.procs, cmd)
		h.nginxPID = cmd.Process.Pid
	}
	for _, u := range []string{h.directURL(), h.nginxURL()} {
		if err := waitHTTP(ctx, u, 10*time.Second); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func (h *nginxWrk) directURL() string { return fmt.Sprintf("http://127.0.0.1:%d/", h.b1) }
func (h *nginxWrk) nginxURL() string  { return fmt.Sprintf("http://127.0.0.1:%d/", h.np) }

// close stops nginx and removes its directory.
func (h *nginxWrk) close() {
	for _, cmd := range h.procs {
		cmd.Process.Signal(syscall.SIGTERM)
		time.Sleep(100 * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
	}
	os.RemoveAll(h.dir)
}

func (h *nginxWrk) run(ctx context.Context, url string, d time.Duration, conns int, script string) (wrkResult, error) {
	a := []string{"-t", strconv.Itoa(h.cfg.Threads), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())), "--latency"}
	if script != "" {
		a = append(a, "-s", script)
	}
	return runWrk(ctx, h.cfg.Wrk, append(a, url))
}

// proxyComparison is nginx beside the other proxy under the same wrk runs.
type proxyComparison struct {
	NginxRPS, OtherRPS []float64
	// Requests per CPU-second of each proxy: the figure a shared machine
	// disturbs least.
	NginxPerCPU, OtherPerCPU   []float64
	Rate                       float64 // of the latency runs: half of the other's median maximum
	Direct, NginxLat, OtherLat wrkResult
	Levels                     []latencyLevel
}

// latencyLevel is the paired probe through each proxy while wrk loads that proxy at Rate (0:
// no load), one result per round.
type latencyLevel struct {
	Label        string
	Rate         float64
	Nginx, Other []probeResult
}

// compare measures the nginx proxy and the proxy at other (otherCPU: the
// CPU time it has used): the maximum throughput in alternating rounds
// after one warm-up each; then, at half of the other's maximum rate, wrk
// through each proxy and directly to a backend; then the added latency per
// hop with a paired probe while wrk loads the proxy at half and a quarter
// of that maximum, at 1,000/s and with no load, in LatencyRounds rounds
// that alternate which proxy goes first.
func (h *nginxWrk) compare(ctx context.Context, other string, otherCPU func() time.Duration) (c proxyComparison, err error) {
	d, conns := h.cfg.Duration, h.cfg.Connections
	for _, u := range []string{h.nginxURL(), other} {
		if _, err := h.run(ctx, u, 2*time.Second, conns, ""); err != nil {
			return c, err
		}
	}
	for i := 0; i < h.cfg.Rounds; i++ {
		c0 := treeCPU(h.nginxPID)
		n, err := h.run(ctx, h.nginxURL(), d, conns, "")
		if err != nil {
			return c, err
		}
		nCPU := treeCPU(h.nginxPID) - c0
		c0 = otherCPU()
		o, err := h.run(ctx, other, d, conns, "")
		if err != nil {
			return c, err
		}
		oCPU := otherCPU() - c0
		c.NginxRPS = append(c.NginxRPS, n.RPS)
		c.OtherRPS = append(c.OtherRPS, o.RPS)
		c.NginxPerCPU = append(c.NginxPerCPU, n.RPS*d.Seconds()/max(nCPU.Seconds(), 0.01))
		c.OtherPerCPU = append(c.OtherPerCPU, o.RPS*d.Seconds()/max(oCPU.Seconds(), 0.01))
	}

	c.Rate = median(c.OtherRPS) / 2
	label := "half of the maximum"
	if h.cfg.Rate > 0 {
		c.Rate, label = h.cfg.Rate, "the given rate"
	}
	for _, run := range []struct {
		url string
		out *wrkResult
	}{{h.directURL(), &c.Direct}, {h.nginxURL(), &c.NginxLat}, {other, &c.OtherLat}} {
		if *run.out, _, err = h.paced(ctx, run.url, c.Rate, h.cfg.LatencyDur, ""); err != nil {
			return c, err
		}
	}
	c.Levels = []latencyLevel{{Label: label, Rate: c.Rate}, {Label: "half of that", Rate: c.Rate / 2}, {Label: "1,000/s", Rate: 1000}, {Label: "no load"}}
	for r := 0; r < h.cfg.LatencyRounds; r++ {
		for i := range c.Levels {
			lv := &c.Levels[i]
			sides := []struct {
				url string
				out *[]probeResult
			}{{h.nginxURL(), &lv.Nginx}, {other, &lv.Other}}
			if r%2 == 1 {
				sides[0], sides[1] = sides[1], sides[0]
			}
			for _, s := range sides {
				_, p, err := h.paced(ctx, s.url, lv.Rate, h.cfg.LatencyDur, s.url)
				if err != nil {
					return c, err
				}
				*s.out = append(*s.out, p)
			}
		}
	}
	return c, nil
}

// paced runs wrk against url at rate requests/s for d (no wrk when rate is 0), with a paired
// probe (direct and through via) beside it when via is set. Each wrk connection waits a random
// 0 to 20 ms (10 on average) after each response: with a fixed delay the connections stay in
// step and the load comes in bursts of all of them every 10 ms, which is not a rate.
func (h *nginxWrk) paced(ctx context.Context, url string, rate float64, d time.Duration, via string) (r wrkResult, p probeResult, err error) {
	// While wrk loads the proxy, the probe alternates single requests straight to the backend
	// and through the proxy: paired samples that see the same machine, which matters on a
	// shared one.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	probeDone := make(chan probeResult, 1)
	if via != "" {
		go func() { probeDone <- probe(pctx, h.directURL(), via) }()
	}
	if rate > 0 {
		const pace = 10 // ms between requests on each wrk connection, on average
		script := filepath.Join(h.dir, "pace.lua")
		if err := os.WriteFile(script, []byte(fmt.Sprintf("function delay() return math.random(0, %d) end\n", 2*pace)), 0o600); err != nil {
			return r, p, err
		}
		r, err = h.run(ctx, url, d, max(1, int(rate*pace/1000)), script)
	} else {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	cancel()
	if via != "" {
		p = <-probeDone
	}
	return r, p, err
}

// reportComparison prints what compare measured, the other proxy named other.
func reportComparison(w io.Writer, other string, c proxyComparison) {
	fmt.Fprintf(w, "throughput (requests/s, wrk rounds alternating):\n  nginx: %s  median %.0f\n  %s: %s  median %.0f\n  ratio %s/nginx: %.2f\n",
		fmtRates(c.NginxRPS), median(c.NginxRPS), other, fmtRates(c.OtherRPS), median(c.OtherRPS), other, median(c.OtherRPS)/median(c.NginxRPS))
	fmt.Fprintf(w, "requests per CPU-second of the proxy:\n  nginx: %s  median %.0f\n  %s: %s  median %.0f\n  ratio %s/nginx: %.2f\n",
		fmtRates(c.NginxPerCPU), median(c.NginxPerCPU), other, fmtRates(c.OtherPerCPU), median(c.OtherPerCPU), other, median(c.OtherPerCPU)/median(c.NginxPerCPU))
	fmt.Fprintf(w, "latency at %.0f requests/s (%s; wrk, each connection pausing a random 0-20 ms):\n", c.Rate, c.Levels[0].Label)
	for _, x := range []struct {
		name string
		r    wrkResult
	}{{"direct to a backend", c.Direct}, {"through nginx", c.NginxLat}, {"through " + other, c.OtherLat}} {
		fmt.Fprintf(w, "  %-20s achieved %.0f/s  p50 %v  p99 %v  errors %d\n", x.name, x.r.RPS, x.r.P50, x.r.P99, x.r.Errors)
	}
	fmt.Fprintf(w, "  added by %s: p50 %v  p99 %v;  added by nginx: p50 %v  p99 %v\n", other,
		c.OtherLat.P50-c.Direct.P50, c.OtherLat.P99-c.Direct.P99, c.NginxLat.P50-c.Direct.P50, c.NginxLat.P99-c.Direct.P99)
	if len(c.Levels) == 0 || len(c.Levels[0].Nginx) == 0 {
		return
	}
	fmt.Fprintf(w, "added latency per hop, paired probe (p50: median of the paired differences; p99: p99 through - p99 direct), median of %d rounds [each round]:\n", len(c.Levels[0].Nginx))
	for _, lv := range c.Levels {
		name := lv.Label
		if lv.Rate > 0 && lv.Label != "1,000/s" {
			name = fmt.Sprintf("%s (%.0f/s)", lv.Label, lv.Rate)
		}
		fmt.Fprintf(w, "  %s:\n", name)
		for _, x := range []struct {
			name string
			ps   []probeResult
		}{{"nginx", lv.Nginx}, {other, lv.Other}} {
			var p50, p99 []time.Duration
			n := 0
			for _, p := range x.ps {
				p50, p99, n = append(p50, p.AddedP50), append(p99, p.AddedP99()), n+p.N
			}
			fmt.Fprintf(w, "    %-8s p50 %v  p99 %v  %v  (%d pairs)\n", x.name, medianDur(p50), medianDur(p99), fmtDurs(p99), n)
		}
	}
}

func medianDur(xs []time.Duration) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtDurs(xs []time.Duration) string {
	var s []string
	for _, x := range xs {
		s = append(s, x.Round(time.Microsecond).String())
	}
	return "[" + strings.Join(s, " ") + "]"
}
