package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	NginxProbe, OtherProbe     probeResult
}

// compare measures the nginx proxy and the proxy at other (otherCPU: the
// CPU time it has used): the maximum throughput in alternating rounds
// after one warm-up each; then latency at half of the other's maximum
// rate, through each proxy and directly to a backend, wrk paced by a delay
// script, with a paired probe beside it.
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
	const pace = 10 // ms between requests on each wrk connection
	paced := max(1, int(c.Rate*pace/1000))
	script := filepath.Join(h.dir, "pace.lua")
	if err := os.WriteFile(script, []byte(fmt.Sprintf("function delay() return %d end\n", pace)), 0o600); err != nil {
		return c, err
	}
	direct := h.directURL()
	for _, run := range []struct {
		url   string
		out   *wrkResult
		probe *probeResult
	}{{direct, &c.Direct, nil}, {h.nginxURL(), &c.NginxLat, &c.NginxProbe}, {other, &c.OtherLat, &c.OtherProbe}} {
		// While wrk loads the proxy at the rate, a probe alternates single requests
		// straight to the backend and through the proxy: paired samples that see the same
		// machine, which matters on a shared one.
		pctx, cancel := context.WithCancel(ctx)
		probeDone := make(chan probeResult, 1)
		if run.probe != nil {
			go func() { probeDone <- probe(pctx, direct, run.url) }()
		}
		r, err := h.run(ctx, run.url, h.cfg.LatencyDur, paced, script)
		cancel()
		if err != nil {
			return c, err
		}
		*run.out = r
		if run.probe != nil {
			*run.probe = <-probeDone
		}
	}
	return c, nil
}
