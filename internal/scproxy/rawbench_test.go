package scproxy

import (
	"net"
	"strconv"
	"testing"

	"github.com/berthdev/berth/internal/httpfwd/rawbench"
	"github.com/berthdev/berth/internal/serviceconnect"
)

// BenchmarkProxyRaw: one request through an inbound HTTP listener to the application, with a raw
// client and application so that the CPU per request (cpu-ns/op) is mostly the proxy's.
func BenchmarkProxyRaw(b *testing.B) {
	app := rawbench.Backend(b)
	_, port, _ := net.SplitHostPort(app)
	appPort, _ := strconv.Atoi(port)
	p := New(Options{InboundHost: "127.0.0.1"})
	defer p.Close()
	if err := p.Apply(serviceconnect.TaskConfig{Inbound: []serviceconnect.Inbound{{PortName: "web", DiscoveryName: "web", AppPort: appPort, Protocol: "http"}}}); err != nil {
		b.Fatal(err)
	}
	rawbench.Clients(b, p.Addr(true, "web"))
}
