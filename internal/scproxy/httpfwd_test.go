package scproxy

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/serviceconnect"
)

// TestHTTPListenerHandsH2COver: on an http listener, an HTTP/1.1 client is served by httpfwd and
// an h2c (prior knowledge) client is handed to the listener's http.Server; both reach an HTTP/1.1
// endpoint, and each client connection is counted once and closed once.
func TestHTTPListenerHandsH2COver(t *testing.T) {
	b := newBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	})
	p, addr := outboundProxy(t, serviceconnect.ProtocolHTTP, nil)
	p.SetDirectory(dirOf(t, 1, "svc", b))
	p.Counters() // reset

	h1 := &http.Client{Transport: &http.Transport{}}
	h2 := h2cClient()
	for want, c := range []*http.Client{h1, h2} {
		for i := 0; i < 3; i++ {
			resp, err := c.Get("http://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "HTTP/1.1" || resp.ProtoMajor != want+1 {
				t.Fatalf("client proto %d: %d %q", resp.ProtoMajor, resp.StatusCode, body)
			}
		}
		c.CloseIdleConnections()
	}
	deadline := time.Now().Add(3 * time.Second)
	var cs serviceconnect.Counters
	news := uint64(0)
	for {
		cs = p.Counters().Outbound["svc"]
		news += cs.NewConnections
		if cs.ActiveConnections == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if news != 2 || cs.ActiveConnections != 0 {
		t.Fatalf("new connections %d (want 2: one HTTP/1.1, one h2c), active %d (want 0)", news, cs.ActiveConnections)
	}
}
