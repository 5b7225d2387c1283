package scproxy

import (
	"net"
	"strconv"
	"testing"

	"github.com/berthdev/berth/internal/serviceconnect"
)

// TestOutboundListenPort: an alias the namespace redirects is served on
// VIP:ListenPort, and VIP:Port stays free for an application of the task
// listening on the wildcard address.
func TestOutboundListenPort(t *testing.T) {
	// A port free on the wildcard address: the application's.
	app, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	appPort := app.Addr().(*net.TCPAddr).Port
	spare, err := net.Listen("tcp", "127.255.0.7:0")
	if err != nil {
		t.Fatal(err)
	}
	listenPort := spare.Addr().(*net.TCPAddr).Port
	spare.Close()

	p := New(Options{InboundHost: "127.0.0.1"})
	defer p.Close()
	o := serviceconnect.Outbound{DiscoveryName: "svc", DNSName: "svc", Port: appPort, VIP: "127.255.0.7", ListenPort: listenPort, Protocol: "http"}
	if err := p.Apply(serviceconnect.TaskConfig{Outbound: []serviceconnect.Outbound{o}}); err != nil {
		t.Fatalf("the alias on the application's port: %v", err)
	}
	want := net.JoinHostPort("127.255.0.7", strconv.Itoa(listenPort))
	if got := p.Addr(false, net.JoinHostPort("svc", strconv.Itoa(appPort))); got != want {
		t.Fatalf("alias served on %q, want %q", got, want)
	}
	// Without a redirect the same alias cannot be served: the address is
	// the application's.
	o.ListenPort = 0
	q := New(Options{InboundHost: "127.0.0.1"})
	defer q.Close()
	if err := q.Apply(serviceconnect.TaskConfig{Outbound: []serviceconnect.Outbound{o}}); err == nil {
		t.Fatal("an alias on VIP:Port bound beside a wildcard listener of the same port")
	}
}
