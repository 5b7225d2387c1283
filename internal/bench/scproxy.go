package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/scproxy"
	"github.com/berthdev/berth/internal/serviceconnect"
)

// SCProxyConfig shapes the Service Connect proxy benchmark (issue 12 item 6).
type SCProxyConfig struct {
	Berth string // the berth binary run as `berth scproxy` (default: this executable)
	NginxWrkConfig
	KillLoad time.Duration // length of the killed-backend run
	// IdleAfter: how long to wait after the load before reading the proxy's RSS again (it trims
	// itself after scproxy.TrimIdle idle); 0 skips it.
	IdleAfter time.Duration
}

// DefaultSCProxyConfig is what `berth bench scproxy` runs.
func DefaultSCProxyConfig() SCProxyConfig {
	return SCProxyConfig{NginxWrkConfig: defaultNginxWrk(), KillLoad: 4 * time.Second, IdleAfter: scproxy.TrimIdle + 10*time.Second}
}

// SCProxyResult holds the measurements.
type SCProxyResult struct {
	NginxVersion, CPU    string
	Load                 string          // /proc/loadavg at the start
	Comparison           proxyComparison // throughput, per CPU-second and latency beside nginx
	RSSIdleKB, RSSLoadKB int64           // the proxy process's VmRSS idle (configured) and its peak (VmHWM) after the load
	// The private part (RssAnon: heap, stacks) idle and after the load; the rest is file-backed
	// (the berth binary and libc), shared by every proxy of the same image.
	AnonIdleKB, AnonLoadKB int64
	// VmRSS and RssAnon idle again, IdleAfter after the load (0: not measured).
	RSSAfterKB, AnonAfterKB  int64
	KillRequests, KillErrors int64
}

// SCProxy measures one Service Connect proxy hop: the real proxy process (`berth scproxy`,
// configured over its relay socket exactly as the agent does, one outbound alias of two
// endpoints) beside nginx as a reverse proxy to the same two nginx backends: throughput with
// wrk (alternating rounds), latency (wrk paced at half of the proxy's maximum, and a paired
// probe at four loads), the proxy's RSS, and a backend killed under load with retries on.
func SCProxy(ctx context.Context, cfg SCProxyConfig) (res SCProxyResult, err error) {
	res.CPU = cpuModel()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.Load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if cfg.Berth == "" {
		if cfg.Berth, err = os.Executable(); err != nil {
			return res, err
		}
	}
	h, err := startNginxWrk(ctx, cfg.NginxWrkConfig, "      proxy_next_upstream error timeout http_503;")
	if err != nil {
		return res, err
	}
	defer h.close()
	res.NginxVersion = h.version
	dir, err := os.MkdirTemp("", "berth-bench-sc-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	b1, b2 := h.b1, h.b2
	const vip = "127.255.0.77"
	l, err := net.Listen("tcp", vip+":0")
	if err != nil {
		return res, err
	}
	pp := l.Addr().(*net.TCPAddr).Port
	l.Close()

	// The proxy process, configured through its relay as the agent does.
	tc := serviceconnect.TaskConfig{NamespaceArn: "bench", ProxyContainerName: "ecs-service-connect-bench",
		Outbound: []serviceconnect.Outbound{{DiscoveryName: "web", DNSName: "web", Port: pp, VIP: vip, Protocol: serviceconnect.ProtocolHTTP}}}
	ready := make(chan struct{}, 4)
	relay, err := scproxy.NewRelay(filepath.Join(dir, "relay"), tc, func() { ready <- struct{}{} }, slog.New(slog.DiscardHandler))
	if err != nil {
		return res, err
	}
	defer relay.Close()
	ep := func(task string, port int) serviceconnect.Endpoint {
		return serviceconnect.Endpoint{TaskArn: task, Address: "127.0.0.1", Port: port, Healthy: true}
	}
	relay.SetDirectory(serviceconnect.Directory{NamespaceArn: "bench", Revision: 1, Services: []serviceconnect.DirectoryService{{DiscoveryName: "web",
		Endpoints: []serviceconnect.Endpoint{ep("b1", b1), ep("b2", b2)}}}})
	pcmd := exec.Command(cfg.Berth, "scproxy", "--relay", filepath.Join(dir, "relay", scproxy.RelaySocket), "--log-level", "warn")
	pcmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(runtime.GOMAXPROCS(0)))
	pcmd.Stderr = os.Stderr
	if err := pcmd.Start(); err != nil {
		return res, fmt.Errorf("start the proxy: %w", err)
	}
	proxyPID := pcmd.Process.Pid
	defer stopChild(pcmd)
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		return res, fmt.Errorf("the proxy did not apply its configuration")
	case <-ctx.Done():
		return res, ctx.Err()
	}
	if ok, msg := relay.Ready(); !ok {
		return res, fmt.Errorf("proxy: %s", msg)
	}
	proxyURL := fmt.Sprintf("http://%s:%d/", vip, pp)
	if err := waitHTTP(ctx, proxyURL, 10*time.Second); err != nil {
		return res, err
	}
	res.RSSIdleKB = procStatusKB(proxyPID, "VmRSS")
	res.AnonIdleKB = procStatusKB(proxyPID, "RssAnon")

	c, err := h.compare(ctx, proxyURL, func() time.Duration { return treeCPU(proxyPID) })
	if err != nil {
		return res, err
	}
	res.Comparison = c
	res.RSSLoadKB = procStatusKB(proxyPID, "VmHWM")
	res.AnonLoadKB = procStatusKB(proxyPID, "RssAnon")

	// A backend killed under load, retries on: three Go backends, clients calling through
	// the proxy; one backend's listener and connections are closed mid-run.
	type gob struct {
		srv *http.Server
		ln  net.Listener
	}
	var gbs []*gob
	var eps []serviceconnect.Endpoint
	for i := 0; i < 3; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return res, err
		}
		s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(time.Millisecond) // some work in flight when the kill comes
			io.WriteString(w, "ok\n")
		})}
		go s.Serve(ln)
		defer s.Close()
		gbs = append(gbs, &gob{srv: s, ln: ln})
		eps = append(eps, ep(fmt.Sprintf("go%d", i), ln.Addr().(*net.TCPAddr).Port))
	}
	relay.SetDirectory(serviceconnect.Directory{NamespaceArn: "bench", Revision: 2, Services: []serviceconnect.DirectoryService{{DiscoveryName: "web", Endpoints: eps}}})
	time.Sleep(200 * time.Millisecond)
	kctx, kcancel := context.WithTimeout(ctx, cfg.KillLoad)
	defer kcancel()
	load := StartLoad(kctx, proxyURL, 8, 0, 5*time.Second)
	time.Sleep(cfg.KillLoad / 3)
	gbs[0].ln.Close()
	gbs[0].srv.Close() // closes its connections, in flight or idle
	<-kctx.Done()
	load.Stop()
	res.KillRequests, res.KillErrors = load.Counts()
	if cfg.IdleAfter > 0 {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(cfg.IdleAfter):
		}
		res.RSSAfterKB = procStatusKB(proxyPID, "VmRSS")
		res.AnonAfterKB = procStatusKB(proxyPID, "RssAnon")
	}
	return res, nil
}

// procStatusKB reads a "kB" field of /proc/<pid>/status (VmRSS, VmHWM).
func procStatusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// Report prints the results.
func (r SCProxyResult) Report(w io.Writer) {
	fmt.Fprintf(w, "CPU: %s, %d processors (GOMAXPROCS; nginx workers the same); nginx %s; load average at start %s\n", r.CPU, runtime.GOMAXPROCS(0), r.NginxVersion, r.Load)
	reportComparison(w, "scproxy", r.Comparison)
	fmt.Fprintf(w, "proxy process RSS: %d kB configured and idle, %d kB peak after the load; private (RssAnon) %d kB idle, %d kB after the load\n",
		r.RSSIdleKB, r.RSSLoadKB, r.AnonIdleKB, r.AnonLoadKB)
	if r.RSSAfterKB > 0 {
		fmt.Fprintf(w, "proxy process RSS idle again after the load: %d kB (private %d kB)\n", r.RSSAfterKB, r.AnonAfterKB)
	}
	fmt.Fprintf(w, "backend killed under load (retries on): %d client errors of %d requests\n", r.KillErrors, r.KillRequests)
}
