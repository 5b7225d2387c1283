package alb

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawExchange writes raw to the listener and reads responses (for requests, in order) off the
// same connection.
func rawExchange(t *testing.T, addr, raw string, methods ...string) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, raw)
	br := bufio.NewReader(c)
	var out []*http.Response
	for _, m := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		for err == nil && resp.StatusCode == http.StatusContinue {
			resp, err = http.ReadResponse(br, &http.Request{Method: m})
		}
		if err != nil {
			t.Fatalf("response %d: %v", len(out)+1, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		out = append(out, resp)
	}
	return out
}

// TestPlainHTTPServing: the plain HTTP listener's own HTTP/1.1 server (internal/httpfwd) answers
// malformed and oversized requests itself, pipelines keep-alive requests, and forwards 100-continue
// bodies, HEAD and the client's address.
func TestPlainHTTPServing(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]string{} // path: X-Forwarded-For and body
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen[r.URL.Path] = r.Header.Get("X-Forwarded-For") + " " + string(b)
		mu.Unlock()
		w.Header().Set("Content-Length", fmt.Sprint(len(r.URL.Path)))
		io.WriteString(w, r.URL.Path)
	}))
	defer echo.Close()
	host, port, _ := net.SplitHostPort(echo.Listener.Addr().String())
	var pn int
	fmt.Sscan(port, &pn)
	tg := group("tg")
	tg.Targets = []Target{{ID: host, Port: pn, Addr: echo.Listener.Addr().String()}}
	p, url, rec := startPlane(t, oneListener(Listener{DefaultActions: []Action{forward("tg")}}, tg))
	waitFor(t, "healthy", 5*time.Second, allHealthy(p, "tg", 1))
	addr := strings.TrimPrefix(url, "http://")

	rs := rawExchange(t, addr, "GET /one HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n"+
		"HEAD /three HTTP/1.1\r\nHost: a\r\n\r\n"+
		"POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nbody", "GET", "HEAD", "POST")
	if b, _ := io.ReadAll(rs[0].Body); rs[0].StatusCode != 200 || string(b) != "/one" {
		t.Fatalf("first: %d %q", rs[0].StatusCode, b)
	}
	if rs[1].StatusCode != 200 || rs[1].ContentLength != 6 {
		t.Fatalf("HEAD: %d length %d", rs[1].StatusCode, rs[1].ContentLength)
	}
	mu.Lock()
	one, two := seen["/one"], seen["/two"]
	mu.Unlock()
	if b, _ := io.ReadAll(rs[2].Body); rs[2].StatusCode != 200 || string(b) != "/two" || two != "127.0.0.1 body" {
		t.Fatalf("100-continue POST: %d %q, target saw %q", rs[2].StatusCode, b, two)
	}
	if one != "203.0.113.9, 127.0.0.1 " {
		t.Fatalf("X-Forwarded-For at the target: %q", one)
	}

	observed := func() int { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.reqs) }
	before := observed()
	for raw, want := range map[string]int{
		"GET / HTTP/1.1\r\n\r\n":                                                                400, // no Host
		"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n":                                    400,
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n": 400,
		"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 70<<10) + "\r\n\r\n":       431,
	} {
		rs := rawExchange(t, addr, raw, "GET")
		if rs[0].StatusCode != want || !rs[0].Close {
			t.Errorf("%.40q: %d (close %v), want %d and close", raw, rs[0].StatusCode, rs[0].Close, want)
		}
	}
	if after := observed(); after != before {
		t.Errorf("refused requests reached the handler: %d observations, want %d", after, before)
	}
}
