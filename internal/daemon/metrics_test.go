package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func startTest(t *testing.T, mod func(*Config)) (*Server, error) {
	t.Helper()
	cfg := Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Log: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, cfg)
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// GET /metrics answers without a signature on the API port and on the
// metrics listener; other methods on /metrics, and other paths on the
// metrics listener, are not metrics.
func TestMetricsEndpoints(t *testing.T) {
	s, err := startTest(t, func(c *Config) { c.MetricsListen = "127.0.0.1:0" })
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{s.Endpoint(), "http://" + s.MetricsAddr()} {
		code, body := get(t, "GET", base+"/metrics")
		if code != 200 || !strings.Contains(body, "# HELP berth_agents_connected ") || !strings.Contains(body, "etcd_server_has_leader 1") {
			t.Fatalf("GET %s/metrics: %d\n%.300s", base, code, body)
		}
	}
	if code, body := get(t, "POST", s.Endpoint()+"/metrics"); code != 403 || !strings.Contains(body, "MissingAuthenticationToken") {
		t.Errorf("POST /metrics is an (unsigned) API request: got %d %s", code, body)
	}
	if code, _ := get(t, "GET", "http://"+s.MetricsAddr()+"/health"); code != 404 {
		t.Errorf("GET /health on the metrics listener: %d, want 404", code)
	}
	if code, _ := get(t, "GET", s.Endpoint()+"/health"); code != 200 {
		t.Errorf("GET /health: %d", code)
	}
}

// A metrics address that is taken fails the start, and leaves nothing
// running (the data directory can be opened again at once).
func TestMetricsListenTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	_, err = startTest(t, func(c *Config) { c.DataDir = dir; c.MetricsListen = ln.Addr().String() })
	if err == nil || !strings.Contains(err.Error(), "listen for metrics") {
		t.Fatalf("start with a taken metrics address: %v", err)
	}
	if _, err := startTest(t, func(c *Config) { c.DataDir = dir }); err != nil {
		t.Fatalf("restart on the same data directory: %v", err)
	}
}
