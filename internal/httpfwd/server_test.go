package httpfwd

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// serve starts s on a loopback listener and returns its address.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.ServeConn(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.Close(); wg.Wait() })
	return ln.Addr().String()
}

// exchange writes raw to a new connection and returns everything the server sends until it
// closes the connection (or 2 s pass).
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	io.WriteString(c, raw)
	b, _ := io.ReadAll(c)
	return string(b)
}

func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Host", r.Host)
		w.Header().Set("X-URI", r.RequestURI)
		w.Header().Set("X-Len", strconv.FormatInt(r.ContentLength, 10))
		for k, v := range r.Trailer {
			w.Header().Set("X-Trailer-"+k, strings.Join(v, ","))
		}
		w.Write(b)
	})
}

func TestServerAnswers(t *testing.T) {
	addr := serve(t, &Server{Handler: echoHandler(), IdleTimeout: time.Second})
	cases := []struct {
		name, raw string
		want      []string // substrings of the whole exchange, in order
		not       []string
	}{
		{"keep-alive then close", "GET /a?b=1 HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h2\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 200 OK", "X-Uri: /a?b=1", "HTTP/1.1 200 OK", "X-Host: h2"}, nil},
		{"content-length body", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
			[]string{"Content-Length: 5", "hello"}, nil},
		{"chunked body with trailer", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-T: v\r\n\r\n",
			[]string{"X-Trailer-X-T: v", "abcde"}, nil},
		{"expect 100-continue", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nok",
			[]string{"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 200 OK", "ok"}, nil},
		{"unknown expectation", "POST / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n", []string{"HTTP/1.1 417"}, nil},
		{"HEAD has no body", "HEAD / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", []string{"HTTP/1.1 200 OK"}, []string{"\r\n\r\n" + "x"}},
		{"HTTP/1.0 closes", "GET / HTTP/1.0\r\n\r\n", []string{"HTTP/1.1 200 OK", "Connection: close"}, nil},
		{"no Host in 1.1", "GET / HTTP/1.1\r\n\r\n", []string{"HTTP/1.1 400 Bad Request"}, nil},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", []string{"HTTP/1.1 400"}, nil},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", []string{"HTTP/1.1 400"}, nil},
		{"folded header", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", []string{"HTTP/1.1 400"}, nil},
		{"TE and CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", []string{"HTTP/1.1 400"}, nil},
		{"bad CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", []string{"HTTP/1.1 400"}, nil},
		{"gzip TE", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", []string{"HTTP/1.1 501"}, nil},
		{"HTTP/3", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", []string{"HTTP/1.1 505"}, nil},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", []string{"HTTP/1.1 400"}, nil},
		{"too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", []string{"HTTP/1.1 431"}, nil},
		{"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", []string{"HTTP/1.1 200 OK"}, nil},
		{"upgrade without fallback", "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", []string{"HTTP/1.1 501"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := exchange(t, addr, c.raw)
			rest := got
			for _, w := range c.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("want %q in order in:\n%s", w, got)
				}
				rest = rest[i+len(w):]
			}
			for _, n := range c.not {
				if strings.Contains(got, n) {
					t.Fatalf("did not want %q in:\n%s", n, got)
				}
			}
		})
	}
}

func TestServerStatusesWithoutBody(t *testing.T) {
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Path[1:])
		w.WriteHeader(code)
		w.Write([]byte("body")) // dropped: these statuses have none
	})})
	for _, code := range []string{"204", "304"} {
		got := exchange(t, addr, "GET /"+code+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 "+code) || strings.Contains(got, "body") || strings.Contains(got, "Transfer-Encoding") {
			t.Fatalf("%s: %q", code, got)
		}
	}
}

// TestServerHandsOver: an Upgrade request and an HTTP/2 preface go to Fallback with their bytes.
func TestServerHandsOver(t *testing.T) {
	got := make(chan string, 2)
	s := &Server{Handler: echoHandler(), Fallback: func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		line, _ := br.ReadString('\n')
		got <- line
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\n\r\n")
	}}
	addr := serve(t, s)
	// A plain request first, then the upgrade on the same connection.
	out := exchange(t, addr, "GET /x HTTP/1.1\r\nHost: a\r\n\r\nGET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if !strings.Contains(out, "200 OK") || !strings.Contains(out, "101 Switching") {
		t.Fatalf("exchange: %q", out)
	}
	if l := <-got; l != "GET /ws HTTP/1.1\r\n" {
		t.Fatalf("fallback read %q", l)
	}
	exchange(t, addr, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	if l := <-got; l != "PRI * HTTP/2.0\r\n" {
		t.Fatalf("fallback read %q", l)
	}
}

func TestServerIdleTimeoutAndShutdown(t *testing.T) {
	s := &Server{Handler: echoHandler(), IdleTimeout: 200 * time.Millisecond}
	addr := serve(t, s)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	if _, err := io.ReadAll(c); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("idle connection lived %v", d)
	}
	// Shutdown closes idle connections and returns.
	c2, _ := net.Dial("tcp", addr)
	defer c2.Close()
	io.WriteString(c2, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c2)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestFramingThroughPool is the framing property: random bodies, sent through a Pool to a Server
// with every request and response framing, arrive whole and the connections are reused.
func TestFramingThroughPool(t *testing.T) {
	type mode int
	const (
		withLength mode = iota
		noLength        // the server chooses: Content-Length when small, else chunked
		flushed         // chunked, flushed in pieces
	)
	srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		m, _ := strconv.Atoi(r.Header.Get("X-Mode"))
		switch mode(m) {
		case withLength:
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.Write(b)
		case noLength:
			w.Write(b)
		case flushed:
			w.Header().Set("Trailer", "X-Sum")
			for len(b) > 0 {
				n := min(len(b), 1+len(b)/3)
				w.Write(b[:n])
				w.(http.Flusher).Flush()
				b = b[n:]
			}
			w.Header().Set("X-Sum", "done")
		}
	}), IdleTimeout: 5 * time.Second}
	addr := serve(t, srv)
	p := &Pool{ReadIdle: 5 * time.Second}
	defer p.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		size := rng.IntN(3)
		n := []int{0, rng.IntN(100), rng.IntN(200 << 10)}[size]
		body := make([]byte, n)
		for j := range body {
			body[j] = byte(rng.IntN(256))
		}
		m := mode(rng.IntN(3))
		chunkedReq := rng.IntN(2) == 0
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/p", nil)
		req.Header.Set("X-Mode", strconv.Itoa(int(m)))
		req.ContentLength = int64(n)
		if n > 0 {
			req.Body = io.NopCloser(bytes.NewReader(body))
			if chunkedReq {
				req.ContentLength = -1
				req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body[:n/2]), bytes.NewReader(body[n/2:])))
			}
		}
		resp, err := p.RoundTrip(context.Background(), addr, req, n == 0)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, body) || resp.StatusCode != 200 {
			t.Fatalf("%d (mode %d, %d bytes, chunked %v): status %d, %d bytes back, err %v", i, m, n, chunkedReq, resp.StatusCode, len(got), err)
		}
		if m == flushed && n > 0 && resp.Trailer.Get("X-Sum") != "done" {
			t.Fatalf("%d: trailer %v", i, resp.Trailer)
		}
	}
	p.mu.Lock()
	idle := len(p.idle[addr])
	p.mu.Unlock()
	if idle != 1 {
		t.Fatalf("%d idle connections after sequential requests, want 1 (reuse)", idle)
	}
}

// TestPoolRetriesStaleConnection: a pooled connection the backend closed is replaced once.
func TestPoolRetriesStaleConnection(t *testing.T) {
	var mu sync.Mutex
	var conns []net.Conn
	srv := &Server{Handler: echoHandler(), ConnState: func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}}
	addr := serve(t, srv)
	p := &Pool{}
	get := func() error {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		resp, err := p.RoundTrip(context.Background(), addr, req, true)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	conns[0].Close()
	mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	if err := get(); err != nil {
		t.Fatalf("after the backend closed the pooled connection: %v", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	req, _ := http.NewRequest("GET", "http://"+dead+"/", nil)
	if _, err := p.RoundTrip(context.Background(), dead, req, true); !IsDialError(err) {
		t.Fatalf("refused connection: %v, want a dial error", err)
	}
}
