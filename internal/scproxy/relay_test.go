package scproxy

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/serviceconnect"
)

func freePort(t *testing.T, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRelay runs the proxy process's loop against the agent's end of the
// relay: configuration, directory, counters, a relay restart (the proxy
// keeps serving and reconnects), drain.
func TestRelay(t *testing.T) {
	a := newBackend(t, "a", nil)
	dir := t.TempDir()
	port := freePort(t, "127.255.0.20")
	cfg := serviceconnect.TaskConfig{NamespaceArn: "ns", Outbound: []serviceconnect.Outbound{{DiscoveryName: "svc", DNSName: "svc", Port: port, VIP: "127.255.0.20", Protocol: "http"}}}
	ready := make(chan struct{}, 4)
	r, err := NewRelay(dir, cfg, func() { ready <- struct{}{} }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r.Close() }()
	r.SetDirectory(dirOf(t, 1, "svc", a)) // before the proxy connects: sent on connect
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, dir+"/"+RelaySocket, time.Second, nil, nil) }()
	defer func() { cancel(); <-done }()
	<-ready
	if ok, msg := r.Ready(); !ok {
		t.Fatalf("not ready: %s", msg)
	}
	url := "http://127.255.0.20:" + strconv.Itoa(port) + "/"
	if code, body := get(t, http.DefaultClient, url); code != 200 || body != "a" {
		t.Fatalf("%d %q", code, body)
	}
	c, err := r.Counters(ctx)
	if err != nil || c.Outbound["svc"].Requests != 1 || c.Outbound["svc"].HealthyEndpoints != 1 {
		t.Fatalf("counters %+v %v", c, err)
	}

	// The agent restarts: a new relay at the same path; the proxy served
	// on meanwhile and gets the state again.
	r.Close()
	if code, _ := get(t, http.DefaultClient, url); code != 200 {
		t.Fatalf("no traffic without the relay: %d", code)
	}
	b := newBackend(t, "b", nil)
	r, err = NewRelay(dir, cfg, func() { ready <- struct{}{} }, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.SetDirectory(dirOf(t, 2, "svc", b))
	<-ready
	waitFor(t, "the new directory", func() bool { _, body := get(t, http.DefaultClient, url); return body == "b" })

	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	defer dcancel()
	if err := r.Drain(dctx, time.Second); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if code, _ := get(t, http.DefaultClient, url); code != 200 {
		t.Fatal("outbound stopped at drain")
	}
}

func TestRelayNoProxy(t *testing.T) {
	r, err := NewRelay(t.TempDir(), serviceconnect.TaskConfig{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Counters(context.Background()); err == nil {
		t.Fatal("counters without a proxy")
	}
	if ok, _ := r.Ready(); ok || r.Connected() {
		t.Fatal("ready without a proxy")
	}
}
