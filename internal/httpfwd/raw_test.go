package httpfwd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Tests of the raw path (raw.go, rawfwd.go) over real loopback connections: raw clients and
// backends write exact bytes, so that what goes over the wire can be asserted.

type rawFunc func(w *RawWriter, r *Request) bool

func (f rawFunc) ServeRaw(w *RawWriter, r *Request) bool { return f(w, r) }

// backend is a raw HTTP backend on loopback; serve runs for each connection it accepts.
type backend struct {
	addr    string
	accepts atomic.Int32
	done    chan struct{} // closed when the test ends
}

func startBackend(t testing.TB, serve func(c net.Conn, br *bufio.Reader)) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{addr: ln.Addr().String(), done: make(chan struct{})}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  = map[net.Conn]struct{}{}
		closed bool
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepts.Add(1)
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			conns[c] = struct{}{}
			wg.Add(1)
			mu.Unlock()
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() {
		close(b.done)
		ln.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return b
}

// readRequest reads one request (head and Content-Length body) and returns its bytes.
func readRequest(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	n := 0
	for {
		l, err := br.ReadString('\n')
		sb.WriteString(l)
		if err != nil {
			return sb.String(), err
		}
		if l == "\r\n" || l == "\n" {
			break
		}
		if name, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(name, "Content-Length") {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, n)
	_, err := io.ReadFull(br, body)
	sb.Write(body)
	return sb.String(), err
}

// replies is a keep-alive backend: for the i-th request on a connection (from 0) it writes
// reply(i, request); it closes the connection when reply returns "".
func replies(reqs chan<- string, reply func(i int, req string) string) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		for i := 0; ; i++ {
			req, err := readRequest(br)
			if err != nil {
				return
			}
			if reqs != nil {
				reqs <- req
			}
			out := reply(i, req)
			if out == "" {
				return
			}
			if _, err := io.WriteString(c, out); err != nil {
				return
			}
		}
	}
}

// always answers every request with resp.
func always(resp string) func(net.Conn, *bufio.Reader) {
	return replies(nil, func(int, string) string { return resp })
}

// relayResult is what one Exchange and Relay did, as a raw handler would run them.
type relayResult struct {
	status     int
	out        string // what the client was sent
	n          int64
	exErr      error // Exchange's
	relErr     error // Relay's
	closeAfter bool
	aborted    bool
}

// relayDirect runs Exchange and Relay for a request of method with the given head (no body),
// writing the client's side into a buffer.
func relayDirect(p *Pool, addr, method, head string, deadline time.Time) relayResult {
	req := &Request{Method: method, cc: &conn{}}
	resp, err := p.Exchange(req, addr, []byte(head), nil, deadline)
	if err != nil {
		return relayResult{exErr: err}
	}
	var buf bytes.Buffer
	w := &RawWriter{bw: bufio.NewWriter(&buf)}
	res := relayResult{status: resp.StatusCode}
	res.n, res.relErr = resp.Relay(w, "X-Via: test\r\n")
	w.bw.Flush()
	res.out, res.closeAfter, res.aborted = buf.String(), w.closeAfter, w.aborted
	return res
}

const getHead = "GET /x HTTP/1.1\r\nHost: b\r\n\r\n"

// proxyRaw is a raw handler forwarding every request to addr through p; it reports each
// request's error (nil when relayed whole) on errs when not nil.
func proxyRaw(p *Pool, addr string, deadline time.Duration, errs chan<- error) rawFunc {
	report := func(err error) {
		if errs != nil {
			errs <- err
		}
	}
	return func(w *RawWriter, r *Request) bool {
		body, err := r.Body()
		if err != nil {
			report(err)
			w.CloseAfter()
			w.Respond(400, "text/plain", "", []byte("body\n"))
			return true
		}
		var dl time.Time
		if deadline > 0 {
			dl = time.Now().Add(deadline)
		}
		resp, err := p.Exchange(r, addr, r.ForwardHead(nil, nil), body, dl)
		if err != nil {
			report(err)
			w.Respond(502, "text/plain", "", []byte("exchange: "+err.Error()+"\n"))
			return true
		}
		_, err = resp.Relay(w, "")
		report(err)
		return true
	}
}

// dialClient connects a raw client to addr.
func dialClient(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c, bufio.NewReader(c)
}

// readResp reads one response with net/http's reader and its whole body.
func readResp(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, string(b)
}

// expectClosed fails unless the server closes c (after any bytes still buffered in br).
func expectClosed(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("connection not closed: %v (read %q)", err, rest)
	}
	if len(rest) > 0 {
		t.Fatalf("unexpected bytes before close: %q", rest)
	}
}

// rawTaker answers every raw request itself, echoing what it read; regular marks Handler's.
func rawTaker(taken *atomic.Int32) rawFunc {
	return func(w *RawWriter, r *Request) bool {
		taken.Add(1)
		body, err := r.Body()
		if err != nil {
			w.CloseAfter()
			w.Respond(400, "", "", nil)
			return true
		}
		w.Respond(200, "text/plain", "X-Path: "+r.Path+"\r\n", body)
		return true
	}
}

func regularHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Regular", "1")
		w.Write([]byte("regular:" + string(b)))
	})
}

func TestRawServerEligibility(t *testing.T) {
	var taken atomic.Int32
	var fellBack atomic.Int32
	s := &Server{Raw: rawTaker(&taken), MaxRawBody: 16, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fellBack.Add(1)
		regularHandler().ServeHTTP(w, r)
	})}
	addr := serve(t, s)
	const cl = "Connection: close\r\n"
	cases := []struct {
		name, raw string
		toRaw     bool
		want      string // prefix of the answer
	}{
		{"GET", "GET /a?b=c HTTP/1.1\r\nHost: h\r\n" + cl + "\r\n", true, "HTTP/1.1 200 OK"},
		{"lower-case names", "GET /a HTTP/1.1\r\nhost: h\r\nconnection: keep-alive, close\r\n\r\n", true, "HTTP/1.1 200 OK"},
		{"body at the limit", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 16\r\n" + cl + "\r\n0123456789abcdef", true, "HTTP/1.1 200 OK"},
		{"same Content-Length twice", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n" + cl + "\r\nok", true, "HTTP/1.1 200 OK"},
		{"HEAD", "HEAD / HTTP/1.1\r\nHost: h\r\n" + cl + "\r\n", true, "HTTP/1.1 200 OK"},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: h\r\n\r\n", false, "HTTP/1.1 200 OK"},
		{"absolute form", "GET http://h/a HTTP/1.1\r\nHost: h\r\n" + cl + "\r\n", false, "HTTP/1.1 200 OK"},
		{"percent in target", "GET /a%20b HTTP/1.1\r\nHost: h\r\n" + cl + "\r\n", false, "HTTP/1.1 200 OK"},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: h\r\n" + cl + "\r\n", false, "HTTP/1.1 200 OK"},
		{"Expect", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n" + cl + "\r\nok", false, "HTTP/1.1 100 Continue"},
		{"chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n" + cl + "\r\n2\r\nok\r\n0\r\n\r\n", false, "HTTP/1.1 200 OK"},
		{"Connection names a field", "GET / HTTP/1.1\r\nHost: h\r\nX-Hop: 1\r\nConnection: close, X-Hop\r\n\r\n", false, "HTTP/1.1 200 OK"},
		{"body over the limit", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\n" + cl + "\r\n0123456789abcdefg", false, "HTTP/1.1 200 OK"},
		{"Content-Length list", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2, 2\r\n" + cl + "\r\nok", false, "HTTP/1.1 200 OK"},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n" + cl + "\r\n", false, "HTTP/1.1 400"},
		{"no Host", "GET / HTTP/1.1\r\n" + cl + "\r\n", false, "HTTP/1.1 400"},
		{"Upgrade", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", false, "HTTP/1.1 501"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, beforeFB := taken.Load(), fellBack.Load()
			got := exchange(t, addr, c.raw)
			if !strings.HasPrefix(got, c.want) {
				t.Fatalf("answer %q, want prefix %q", got, c.want)
			}
			raw := taken.Load() != before
			if raw != c.toRaw {
				t.Fatalf("served raw: %v, want %v; answer %q", raw, c.toRaw, got)
			}
			if c.toRaw && (fellBack.Load() != beforeFB || strings.Contains(got, "X-Regular")) {
				t.Fatalf("reached Handler too: %q", got)
			}
			if !c.toRaw && c.want == "HTTP/1.1 200 OK" && !strings.Contains(got, "X-Regular: 1") {
				t.Fatalf("not served by Handler: %q", got)
			}
		})
	}
	// Exact bytes of a raw answer to a client asking to close.
	got := exchange(t, addr, "POST /p?q HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
	want := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Path: /p\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello"
	if got != want {
		t.Fatalf("raw answer\n got %q\nwant %q", got, want)
	}
}

// TestRawServerKeepAlive: pipelined raw requests on one connection, a body the handler did not
// read skipped, and a declined request in between served by Handler with its body intact.
func TestRawServerKeepAlive(t *testing.T) {
	var calls atomic.Int32
	s := &Server{Handler: regularHandler(), Raw: rawFunc(func(w *RawWriter, r *Request) bool {
		calls.Add(1)
		switch r.Path {
		case "/decline":
			return false
		case "/skip":
			w.Respond(200, "", "", []byte("skipped"))
			return true
		}
		b, _ := r.Body()
		w.Respond(200, "", "", append([]byte("raw:"), b...))
		return true
	})}
	addr := serve(t, s)
	c, br := dialClient(t, addr)
	io.WriteString(c, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\none"+
		"POST /skip HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nXXXX"+
		"POST /decline HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nintact"+
		"GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
	for i, want := range []string{"raw:one", "skipped", "regular:intact", "raw:"} {
		resp, body := readResp(t, br, "GET")
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("response %d: %d %q, want 200 %q", i, resp.StatusCode, body, want)
		}
		if resp.Close {
			t.Fatalf("response %d closes the connection", i)
		}
	}
	if n := calls.Load(); n != 4 {
		t.Fatalf("raw handler called %d times, want 4", n)
	}
}

// TestRawServerHandlerMistakes: a raw handler that declines after reading the body, or takes a
// request without answering it, gets a 500 and the connection closes; a panic closes it too.
func TestRawServerHandlerMistakes(t *testing.T) {
	var regular atomic.Int32
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { regular.Add(1) }),
		Raw: rawFunc(func(w *RawWriter, r *Request) bool {
			switch r.Path {
			case "/read-then-decline":
				r.Body()
				return false
			case "/silent":
				return true
			case "/panic":
				panic("boom")
			case "/panic-after-write":
				w.Respond(200, "", "", []byte("partial"))
				panic("boom")
			case "/abort":
				panic(http.ErrAbortHandler)
			}
			w.Respond(200, "", "", nil)
			return true
		})}
	addr := serve(t, s)
	const ise = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 22\r\n\r\nInternal Server Error\n"
	for _, c := range []struct{ path, want string }{
		{"/read-then-decline", ise},
		{"/silent", ise},
		{"/panic", ise},
		{"/panic-after-write", "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\npartial"},
		{"/abort", ""},
	} {
		t.Run(c.path, func(t *testing.T) {
			// A second request follows on the same connection: it must not be answered.
			got := exchange(t, addr, "POST "+c.path+" HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nokGET /next HTTP/1.1\r\nHost: h\r\n\r\n")
			if got != c.want {
				t.Fatalf("got %q\nwant %q", got, c.want)
			}
		})
	}
	if n := regular.Load(); n != 0 {
		t.Fatalf("Handler called %d times", n)
	}
}

// TestRawServerRespondToHead: Respond writes no body in answer to HEAD (the request after it on
// the connection would otherwise read it as the start of its response).
func TestRawServerRespondToHead(t *testing.T) {
	s := &Server{Handler: regularHandler(), Raw: rawFunc(func(w *RawWriter, r *Request) bool {
		w.Respond(503, "text/plain", "", []byte("no healthy upstream\n"))
		return true
	})}
	addr := serve(t, s)
	c, br := dialClient(t, addr)
	io.WriteString(c, "HEAD / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, body := readResp(t, br, "HEAD")
	if resp.StatusCode != 503 || body != "" || resp.ContentLength != 20 {
		t.Fatalf("HEAD: %d %q (Content-Length %d)", resp.StatusCode, body, resp.ContentLength)
	}
	resp, body = readResp(t, br, "GET")
	if resp.StatusCode != 503 || body != "no healthy upstream\n" {
		t.Fatalf("GET after HEAD: %d %q", resp.StatusCode, body)
	}
}

func TestRawServerClientBodyShort(t *testing.T) {
	errs := make(chan error, 1)
	s := &Server{Handler: regularHandler(), Raw: rawFunc(func(w *RawWriter, r *Request) bool {
		_, err := r.Body()
		errs <- err
		w.Respond(400, "", "", nil)
		return true
	})}
	addr := serve(t, s)
	c, _ := dialClient(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
	c.(*net.TCPConn).CloseWrite()
	if err := <-errs; !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Body of a short request: %v, want io.ErrUnexpectedEOF", err)
	}
	// The connection closes after the answer.
	b, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 400") {
		t.Fatalf("answer %q, %v", b, err)
	}
}

// rawRequestOf parses head as the raw path does.
func rawRequestOf(t *testing.T, head, body string) *Request {
	t.Helper()
	cc := &conn{srv: &Server{}, remote: "192.0.2.1:5555", br: bufio.NewReader(strings.NewReader(body))}
	r, ok := cc.rawRequest(head)
	if !ok {
		t.Fatalf("raw path refused %q", head)
	}
	return r
}

func TestRawRequest(t *testing.T) {
	r := rawRequestOf(t, "GET /p/q?a=1&b HTTP/1.1\r\nHost:  example.com:81 \r\nX-A: 1\r\nx-a:2\r\nX-AB: 3\r\nX-Empty:\r\n\r\n", "")
	if r.Method != "GET" || r.Target != "/p/q?a=1&b" || r.Path != "/p/q" || r.RawQuery != "a=1&b" ||
		r.Host != "example.com:81" || r.RemoteAddr != "192.0.2.1:5555" || r.Close || r.ContentLength != 0 {
		t.Fatalf("request %+v", r)
	}
	if v, ok := r.Header("x-A"); !ok || v != "1" {
		t.Fatalf("Header(x-A) = %q, %v", v, ok)
	}
	if v, ok := r.Header("X-EMPTY"); !ok || v != "" {
		t.Fatalf("Header(X-EMPTY) = %q, %v", v, ok)
	}
	if _, ok := r.Header("X"); ok {
		t.Fatal("Header(X) found a field")
	}
	var vs []string
	r.Values("X-a", func(v string) { vs = append(vs, v) })
	if strings.Join(vs, "|") != "1|2" {
		t.Fatalf("Values(X-a) = %q", vs)
	}
	if b, err := r.Body(); b != nil || err != nil {
		t.Fatalf("Body without one: %q, %v", b, err)
	}

	for _, c := range []struct {
		conn  string
		close bool
	}{{"close", true}, {"Keep-Alive, CLOSE", true}, {"keep-alive", false}, {" , keep-alive,", false}} {
		r := rawRequestOf(t, "GET / HTTP/1.1\r\nHost: h\r\nConnection: "+c.conn+"\r\n\r\n", "")
		if r.Close != c.close {
			t.Fatalf("Connection: %s: Close %v", c.conn, r.Close)
		}
	}

	r = rawRequestOf(t, "PUT /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", "hello and more")
	for range 2 {
		if b, err := r.Body(); string(b) != "hello" || err != nil {
			t.Fatalf("Body: %q, %v", b, err)
		}
	}
	r = rawRequestOf(t, "PUT /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", "hel")
	if b, err := r.Body(); b != nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short Body: %q, %v", b, err)
	}
}

func TestRawRequestRefused(t *testing.T) {
	for _, head := range []string{
		"GET / HTTP/1.0\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
		"GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a%2fb HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a#f HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: \r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nexpect: 100-continue\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: TE\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 65537\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n",
	} {
		cc := &conn{srv: &Server{}}
		if r, ok := cc.rawRequest(head); ok {
			t.Errorf("raw path took %q: %+v", head, r)
		}
	}
	// The default limit is DefaultMaxRawBody.
	cc := &conn{srv: &Server{}}
	if _, ok := cc.rawRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + strconv.Itoa(DefaultMaxRawBody) + "\r\n\r\n"); !ok {
		t.Error("refused a body of DefaultMaxRawBody bytes")
	}
}

func TestRawAppendHead(t *testing.T) {
	r := rawRequestOf(t, "POST /p?q=1 HTTP/1.1\r\n"+
		"Host: h\r\n"+
		"Connection: keep-alive\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"Proxy-Connection: keep-alive\r\n"+
		"TE: trailers\r\n"+
		"Trailer: X-T\r\n"+
		"Proxy-Authorization: Basic eDp5\r\n"+
		"Proxy-Authenticate: Basic\r\n"+
		"X-Drop: 1\r\n"+
		"X-Keep: a, b\r\n"+
		"x-drop: 2\r\n"+
		"content-length: 3\r\n"+
		"Content-Length: 3\r\n"+
		"Accept: */*\r\n\r\n", "abc")
	got := string(r.AppendHead([]byte("prefix|"), []string{"x-DROP", "Absent"}, []byte("X-Extra: e\r\n")))
	want := "prefix|POST /p?q=1 HTTP/1.1\r\nHost: h\r\nX-Keep: a, b\r\nAccept: */*\r\nX-Extra: e\r\nContent-Length: 3\r\n\r\n"
	if got != want {
		t.Fatalf("AppendHead\n got %q\nwant %q", got, want)
	}
	r.cc.fwdHead = make([]byte, 0, 8)
	if fh := string(r.ForwardHead([]string{"X-Drop"}, []byte("X-Extra: e\r\n"))); fh != want[len("prefix|"):] {
		t.Fatalf("ForwardHead %q", fh)
	}
	for _, c := range []struct{ head, want string }{
		{"PUT / HTTP/1.1\r\nHost: h\r\n\r\n", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"},
		{"PATCH / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "PATCH / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"},
		{"POST / HTTP/1.1\r\nHost: h\r\n\r\n", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"},
		{"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "GET / HTTP/1.1\r\nHost: h\r\n\r\n"},
		{"DELETE /d HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n", "DELETE /d HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n"},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "GET / HTTP/1.1\r\nHost: h\r\n\r\n"},
	} {
		r := rawRequestOf(t, c.head, "")
		if got := string(r.AppendHead(nil, nil, nil)); got != c.want {
			t.Errorf("AppendHead of %q\n got %q\nwant %q", c.head, got, c.want)
		}
	}
}

func TestRawLazyDeadline(t *testing.T) {
	var applied []time.Time
	apply := func(t time.Time) error { applied = append(applied, t); return nil }
	var d lazyDeadline
	base := time.Unix(1000, 0)
	slack := 100 * time.Millisecond
	step := func(want time.Time, expect time.Time, set bool) {
		t.Helper()
		n := len(applied)
		d.set(want, slack, apply)
		switch {
		case set && len(applied) != n+1:
			t.Fatalf("set(%v): not applied", want)
		case set && !applied[n].Equal(expect):
			t.Fatalf("set(%v): applied %v, want %v", want, applied[n], expect)
		case !set && len(applied) != n:
			t.Fatalf("set(%v): applied %v, want nothing", want, applied[n])
		}
	}
	step(time.Time{}, time.Time{}, true)                                    // unknown: zero is set too
	step(time.Time{}, time.Time{}, false)                                   // zero again: nothing
	step(base, base.Add(slack), true)                                       // a deadline: set late by slack
	step(base.Add(slack/2), time.Time{}, false)                             // within slack: kept
	step(base.Add(slack), time.Time{}, false)                               // exactly at the one set
	step(base.Add(slack+time.Nanosecond), base.Add(2*slack+1), true)        // beyond it
	step(base, base.Add(slack), true)                                       // earlier than the one set by more than slack
	step(base.Add(-time.Nanosecond), base.Add(slack-time.Nanosecond), true) // earlier, by more than slack now
	d.forget()
	step(base.Add(slack/2), base.Add(slack/2+slack), true) // forgotten: set
	step(time.Time{}, time.Time{}, true)                   // zero clears
	step(base, base.Add(slack), true)

	if s := slackFor(time.Second); s != time.Second/32 {
		t.Fatalf("slackFor(1s) = %v", s)
	}
	if s := slackFor(time.Hour); s != 250*time.Millisecond {
		t.Fatalf("slackFor(1h) = %v", s)
	}
}

func TestRawExchangeRelayContentLength(t *testing.T) {
	reqs := make(chan string, 10)
	be := startBackend(t, replies(reqs, func(i int, _ string) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\nUpgrade: no\r\nX-B:  2 \r\n\r\nhello"
	}))
	p := &Pool{}
	defer p.Close()
	for i := range 20 {
		res := relayDirect(p, be.addr, "GET", getHead, time.Time{})
		if res.exErr != nil || res.relErr != nil {
			t.Fatalf("%d: %v %v", i, res.exErr, res.relErr)
		}
		want := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-B:  2 \r\nX-Via: test\r\n\r\nhello"
		if res.out != want || res.n != 5 || res.status != 200 || res.closeAfter {
			t.Fatalf("%d: relayed %q (n %d, status %d, closeAfter %v)\nwant %q", i, res.out, res.n, res.status, res.closeAfter, want)
		}
		if got := <-reqs; got != getHead {
			t.Fatalf("backend read %q", got)
		}
	}
	if n := be.accepts.Load(); n != 1 {
		t.Fatalf("%d backend connections for 20 sequential exchanges, want 1", n)
	}
}

func TestRawExchangeSendsBody(t *testing.T) {
	reqs := make(chan string, 1)
	be := startBackend(t, replies(reqs, func(int, string) string { return "HTTP/1.1 204 No Content\r\n\r\n" }))
	p := &Pool{}
	defer p.Close()
	errs := make(chan error, 1)
	front := serve(t, &Server{Handler: regularHandler(), Raw: proxyRaw(p, be.addr, 0, errs)})
	got := exchange(t, front, "PUT /u?x=1 HTTP/1.1\r\nHost: front\r\nConnection: close\r\nX-Up: 1\r\nContent-Length: 7\r\n\r\npayload")
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if got != "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n" {
		t.Fatalf("client got %q", got)
	}
	if r := <-reqs; r != "PUT /u?x=1 HTTP/1.1\r\nHost: front\r\nX-Up: 1\r\nContent-Length: 7\r\n\r\npayload" {
		t.Fatalf("backend got %q", r)
	}
}

func TestRawRelayChunked(t *testing.T) {
	body := "5;ext=\"a b\";e2\r\nhello\r\n" + "A\r\n0123456789\r\n" + "1\nx\n" + "0;last\r\nX-T: v\r\nX-U: w\r\n\r\n"
	be := startBackend(t, always("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\nTrailer: X-T, X-U\r\nX-A: 1\r\n\r\n"+body))
	p := &Pool{}
	defer p.Close()
	for range 3 {
		res := relayDirect(p, be.addr, "GET", getHead, time.Time{})
		if res.exErr != nil || res.relErr != nil {
			t.Fatal(res.exErr, res.relErr)
		}
		// The bare LF line ends go on as CRLF.
		want := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-Via: test\r\n\r\n" + strings.Replace(body, "1\nx\n", "1\r\nx\r\n", 1)
		if res.out != want || res.n != 16 {
			t.Fatalf("relayed %q (n %d)\nwant %q", res.out, res.n, want)
		}
	}
	if n := be.accepts.Load(); n != 1 {
		t.Fatalf("%d backend connections, want 1", n)
	}
	// The last Transfer-Encoding decides; a coding after chunked is read until close.
	be2 := startBackend(t, func(c net.Conn, br *bufio.Reader) {
		readRequest(br)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nzzz")
	})
	res := relayDirect(p, be2.addr, "GET", getHead, time.Time{})
	if res.relErr != nil || !strings.HasSuffix(res.out, "Connection: close\r\n\r\nzzz") || !res.closeAfter {
		t.Fatalf("until-close after chunked, gzip: %+v", res)
	}
}

func TestRawRelayUntilClose(t *testing.T) {
	be := startBackend(t, func(c net.Conn, br *bufio.Reader) {
		readRequest(br)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nfirst ")
		time.Sleep(20 * time.Millisecond)
		io.WriteString(c, "second")
	})
	p := &Pool{}
	defer p.Close()
	res := relayDirect(p, be.addr, "GET", getHead, time.Time{})
	want := "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-Via: test\r\nConnection: close\r\n\r\nfirst second"
	if res.exErr != nil || res.relErr != nil || res.out != want || !res.closeAfter || res.n != 12 {
		t.Fatalf("%+v\nwant %q", res, want)
	}
	// Through a server: the client's connection closes after it, though it asked for none.
	errs := make(chan error, 1)
	front := serve(t, &Server{Handler: regularHandler(), Raw: proxyRaw(p, be.addr, 0, errs)})
	c, br := dialClient(t, front)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, body := readResp(t, br, "GET")
	if !resp.Close || body != "first second" {
		t.Fatalf("close %v body %q", resp.Close, body)
	}
	expectClosed(t, c, br)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

func TestRawRelayNoBody(t *testing.T) {
	// Each response leaves no body bytes on the connection: the next one is read right.
	be := startBackend(t, replies(nil, func(i int, req string) string {
		switch {
		case strings.HasPrefix(req, "HEAD"):
			return "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
		case strings.HasPrefix(req, "GET /204"):
			return "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"
		case strings.HasPrefix(req, "GET /304"):
			return "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"e\"\r\n\r\n"
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	}))
	p := &Pool{}
	defer p.Close()
	for _, c := range []struct{ method, path, want string }{
		{"HEAD", "/", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Via: test\r\n\r\n"},
		{"GET", "/204", "HTTP/1.1 204 No Content\r\nX-Via: test\r\n\r\n"},
		{"GET", "/304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"e\"\r\nX-Via: test\r\n\r\n"},
		{"GET", "/", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Via: test\r\n\r\nok"},
	} {
		res := relayDirect(p, be.addr, c.method, c.method+" "+c.path+" HTTP/1.1\r\nHost: b\r\n\r\n", time.Time{})
		if res.exErr != nil || res.relErr != nil || res.out != c.want || res.n != int64(len(c.want)-strings.Index(c.want, "\r\n\r\n")-4) {
			t.Fatalf("%s %s: %+v\nwant %q", c.method, c.path, res, c.want)
		}
	}
	if n := be.accepts.Load(); n != 1 {
		t.Fatalf("%d backend connections, want 1", n)
	}
}

func TestRawExchangeInformational(t *testing.T) {
	be := startBackend(t, replies(nil, func(i int, req string) string {
		if strings.Contains(req, "/101") {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"
		}
		return "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	}))
	p := &Pool{}
	defer p.Close()
	res := relayDirect(p, be.addr, "GET", getHead, time.Time{})
	if res.exErr != nil || res.out != "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Via: test\r\n\r\nok" {
		t.Fatalf("%+v", res)
	}
	res = relayDirect(p, be.addr, "GET", "GET /101 HTTP/1.1\r\nHost: b\r\n\r\n", time.Time{})
	if !errors.Is(res.exErr, errRawStatus) {
		t.Fatalf("101: %+v", res)
	}
	// The connection that answered 101 was closed, not pooled.
	res = relayDirect(p, be.addr, "GET", getHead, time.Time{})
	if res.exErr != nil || be.accepts.Load() != 2 {
		t.Fatalf("after 101: %v, %d connections", res.exErr, be.accepts.Load())
	}
}

func TestRawRelayConnectionFields(t *testing.T) {
	be := startBackend(t, replies(nil, func(i int, req string) string {
		if strings.Contains(req, "/close") {
			return "HTTP/1.1 200 OK\r\nConnection: X-Secret, close\r\nX-Secret: s\r\nx-other: o\r\nConnection: x-other\r\nContent-Length: 1\r\n\r\n!"
		}
		if strings.Contains(req, "/http10") {
			return "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n!"
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!"
	}))
	p := &Pool{}
	defer p.Close()
	res := relayDirect(p, be.addr, "GET", "GET /close HTTP/1.1\r\nHost: b\r\n\r\n", time.Time{})
	if want := "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-Via: test\r\n\r\n!"; res.out != want || res.closeAfter {
		t.Fatalf("%+v\nwant %q", res, want)
	}
	relayDirect(p, be.addr, "GET", getHead, time.Time{}) // a new connection: the first one was closed
	if n := be.accepts.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (Connection: close not pooled)", n)
	}
	relayDirect(p, be.addr, "GET", "GET /http10 HTTP/1.1\r\nHost: b\r\n\r\n", time.Time{}) // HTTP/1.0: not kept
	relayDirect(p, be.addr, "GET", getHead, time.Time{})
	if n := be.accepts.Load(); n != 3 {
		t.Fatalf("%d connections, want 3 (HTTP/1.0 response not pooled)", n)
	}
}

func TestRawExchangeMalformed(t *testing.T) {
	for _, c := range []struct{ name, resp string }{
		{"status code", "HTTP/1.1 2000 OK\r\n\r\n"},
		{"version", "HTTX/1.1 200 OK\r\n\r\n"},
		{"HTTP/2 status", "HTTP/2.0 200 OK\r\n\r\n"},
		{"space in name", "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"},
		{"control in value", "HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n"},
		{"no colon", "HTTP/1.1 200 OK\r\nnocolon\r\n\r\n"},
		{"lengths differ", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"},
		{"cut head", "HTTP/1.1 200 OK\r\nContent-Le"},
		{"nothing", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			be := startBackend(t, func(conn net.Conn, br *bufio.Reader) {
				readRequest(br)
				io.WriteString(conn, c.resp)
			})
			p := &Pool{}
			defer p.Close()
			res := relayDirect(p, be.addr, "GET", getHead, time.Time{})
			if res.exErr == nil {
				t.Fatalf("Exchange took %q: %+v", c.resp, res)
			}
		})
	}
	for _, c := range []struct{ name, body string }{
		{"chunk size", "zz\r\nhello\r\n0\r\n\r\n"},
		{"no chunk end", "5\r\nhelloX\r\n0\r\n\r\n"},
		{"size too long", "1000000000000000\r\n"},
		{"empty size", "\r\n"},
		{"cut in chunk", "5\r\nhel"},
		{"cut in trailer", "0\r\nX-T: v\r\n"},
		{"chunk line too long", "5;" + strings.Repeat("e", 5000) + "\r\nhello\r\n0\r\n\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			be := startBackend(t, func(conn net.Conn, br *bufio.Reader) {
				readRequest(br)
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+c.body)
			})
			p := &Pool{}
			defer p.Close()
			res := relayDirect(p, be.addr, "GET", getHead, time.Time{})
			if res.exErr != nil || res.relErr == nil || !res.aborted {
				t.Fatalf("relay of %q: %+v", c.body, res)
			}
		})
	}
}

// TestRawRelayBackendDiesMidBody: the client's response is cut (its connection closed), never
// completed or followed by another.
func TestRawRelayBackendDiesMidBody(t *testing.T) {
	for _, c := range []struct{ name, resp string }{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			be := startBackend(t, func(conn net.Conn, br *bufio.Reader) {
				readRequest(br)
				io.WriteString(conn, c.resp)
			})
			p := &Pool{}
			defer p.Close()
			errs := make(chan error, 1)
			front := serve(t, &Server{Handler: regularHandler(), Raw: proxyRaw(p, be.addr, 0, errs)})
			conn, br := dialClient(t, front)
			io.WriteString(conn, "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			if !errors.Is(err, io.ErrUnexpectedEOF) || string(b) != "hello" {
				t.Fatalf("body %q, %v; want hello and an unexpected EOF", b, err)
			}
			if err := <-errs; !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("Relay: %v", err)
			}
			expectClosed(t, conn, br)
		})
	}
}

// TestRawExchangeRetriesStale: a pooled connection the backend closed while idle is found closed
// before use (staleCheckAfter 0 here: always looked at) and replaced; a GET that finds it closed
// only after being sent goes again on a fresh one, once; a POST then does not (the backend may
// have run it).
func TestRawExchangeRetriesStale(t *testing.T) {
	old := staleCheckAfter
	staleCheckAfter = 0
	defer func() { staleCheckAfter = old }()
	reqs := make(chan string, 10)
	closeIdle := make(chan struct{}, 10)
	be := startBackend(t, func(c net.Conn, br *bufio.Reader) {
		req, err := readRequest(br)
		if err != nil {
			return
		}
		reqs <- req
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		closeIdle <- struct{}{} // then close without saying so
	})
	p := &Pool{}
	defer p.Close()
	head := "POST /p HTTP/1.1\r\nHost: b\r\nContent-Length: 4\r\n\r\n"
	req := &Request{Method: "POST", cc: &conn{}}
	for i := range 3 {
		resp, err := p.Exchange(req, be.addr, []byte(head), []byte("body"), time.Time{})
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		resp.Discard(10)
		if r := <-reqs; r != head+"body" {
			t.Fatalf("%d: backend got %q", i, r)
		}
		<-closeIdle
		time.Sleep(10 * time.Millisecond) // the FIN reaches the pooled connection
	}
	if n := be.accepts.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
	// A connection that fails on the fresh retry too is not tried a third time.
	var tries atomic.Int32
	be2 := startBackend(t, func(c net.Conn, br *bufio.Reader) {
		readRequest(br)
		if tries.Add(1) == 1 {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	res := relayDirect(p, be2.addr, "GET", getHead, time.Time{})
	if res.exErr != nil {
		t.Fatal(res.exErr)
	}
	time.Sleep(10 * time.Millisecond)
	res = relayDirect(p, be2.addr, "GET", getHead, time.Time{})
	if !StaleConn(res.exErr) || tries.Load() != 2 || be2.accepts.Load() != 2 {
		t.Fatalf("%+v after %d tries", res, tries.Load())
	}
	// A failure to connect is a dial error.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	if res := relayDirect(p, dead, "GET", getHead, time.Time{}); !IsDialError(res.exErr) {
		t.Fatalf("refused: %v", res.exErr)
	}
}

func TestRawResponseDiscard(t *testing.T) {
	be := startBackend(t, replies(nil, func(i int, req string) string {
		switch {
		case strings.Contains(req, "/big"):
			return "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 100)
		case strings.Contains(req, "/chunked"):
			return "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
		}
		return "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 10\r\n\r\n0123456789"
	}))
	p := &Pool{}
	defer p.Close()
	req := &Request{Method: "GET", cc: &conn{}}
	do := func(path string, close bool) {
		t.Helper()
		resp, err := p.Exchange(req, be.addr, []byte("GET "+path+" HTTP/1.1\r\nHost: b\r\n\r\n"), nil, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 503 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if h, ok := resp.Header("content-length"); path == "/small" && (!ok || h != "10") {
			t.Fatalf("Header(content-length) = %q, %v", h, ok)
		}
		if close {
			resp.Close()
			resp.Close()
		} else {
			resp.Discard(64)
		}
	}
	do("/small", false)
	do("/small", false)
	if n := be.accepts.Load(); n != 1 {
		t.Fatalf("%d connections after discarding small bodies, want 1", n)
	}
	do("/big", false) // over the limit: closed
	do("/small", false)
	if n := be.accepts.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
	do("/chunked", false)
	do("/small", true) // Close: closed
	do("/small", false)
	if n := be.accepts.Load(); n != 4 {
		t.Fatalf("%d connections, want 4", n)
	}
}

// TestRawCloseDuringExchange: Server.Close while a raw handler waits on a slow backend makes
// Exchange return at once, and no other exchange starts on that connection.
func TestRawCloseDuringExchange(t *testing.T) {
	accepted := make(chan struct{}, 1)
	be := startBackend(t, func(c net.Conn, br *bufio.Reader) {
		readRequest(br)
		select {
		case accepted <- struct{}{}:
		default:
		}
		io.Copy(io.Discard, br) // never answers; closed at the test's end
	})
	p := &Pool{}
	defer p.Close()
	type result struct {
		err  error
		took time.Duration
	}
	results := make(chan result, 2)
	s := &Server{Handler: regularHandler(), Raw: rawFunc(func(w *RawWriter, r *Request) bool {
		start := time.Now()
		_, err := p.Exchange(r, be.addr, r.ForwardHead(nil, nil), nil, time.Time{})
		results <- result{err, time.Since(start)}
		_, err = p.Exchange(r, be.addr, r.ForwardHead(nil, nil), nil, time.Time{})
		results <- result{err, 0}
		w.Respond(502, "", "", nil)
		return true
	})}
	front := serve(t, s)
	c, _ := dialClient(t, front)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	<-accepted
	time.Sleep(20 * time.Millisecond)
	closed := time.Now()
	s.Close()
	r := <-results
	if r.err == nil || !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("Exchange after Close: %v", r.err)
	}
	if d := time.Since(closed); d > time.Second {
		t.Fatalf("Exchange returned %v after Close", d)
	}
	if r := <-results; !errors.Is(r.err, ErrServerClosed) {
		t.Fatalf("Exchange on a closed server's connection: %v", r.err)
	}
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Fatalf("client got %q", b)
	}
}

// TestRawCloseBeforeRelay: a backend connection whose exchange Server.Close cut after the
// response head was read does not go back to the pool (its deadline is in the past: the next
// request on it would fail).
func TestRawCloseBeforeRelay(t *testing.T) {
	be := startBackend(t, always("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	p := &Pool{}
	defer p.Close()
	got, closeNow := make(chan struct{}), make(chan struct{})
	s := &Server{Handler: regularHandler(), Raw: rawFunc(func(w *RawWriter, r *Request) bool {
		resp, err := p.Exchange(r, be.addr, r.ForwardHead(nil, nil), nil, time.Time{})
		if err != nil {
			w.Respond(502, "", "", nil)
			return true
		}
		close(got)
		<-closeNow
		resp.Relay(w, "")
		return true
	})}
	front := serve(t, s)
	c, _ := dialClient(t, front)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	<-got
	s.Close()
	close(closeNow)
	io.ReadAll(c)
	// The same pool serves another server's request.
	errs := make(chan error, 1)
	front2 := serve(t, &Server{Handler: regularHandler(), Raw: proxyRaw(p, be.addr, 0, errs)})
	out := exchange(t, front2, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	if err := <-errs; err != nil || !strings.HasPrefix(out, "HTTP/1.1 200 OK") {
		t.Fatalf("next request on the pool: %v, %q", err, out)
	}
}

// TestRawShutdown: Shutdown closes idle raw connections at once, lets a request waiting on its
// backend finish, then returns; new connections are refused.
func TestRawShutdown(t *testing.T) {
	release := make(chan struct{})
	be := startBackend(t, replies(nil, func(i int, req string) string {
		if strings.Contains(req, "/slow") {
			<-release
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone"
	}))
	p := &Pool{}
	defer p.Close()
	s := &Server{Handler: regularHandler(), Raw: proxyRaw(p, be.addr, 0, nil)}
	front := serve(t, s)
	idle, idleBr := dialClient(t, front)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, body := readResp(t, idleBr, "GET"); body != "done" {
		t.Fatalf("body %q", body)
	}
	busy, busyBr := dialClient(t, front)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(30 * time.Millisecond)
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	expectClosed(t, idle, idleBr)
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request under way", err)
	case <-time.After(30 * time.Millisecond):
	}
	close(release)
	resp, body := readResp(t, busyBr, "GET")
	if resp.StatusCode != 200 || body != "done" {
		t.Fatalf("busy request: %q", body)
	}
	expectClosed(t, busy, busyBr)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	a, b := net.Pipe()
	defer b.Close()
	if err := s.ServeConn(a); err != ErrServerClosed {
		t.Fatalf("ServeConn after Shutdown: %v", err)
	}
}

func TestRawExchangeDeadline(t *testing.T) {
	be := startBackend(t, func(c net.Conn, br *bufio.Reader) {
		req, _ := readRequest(br)
		if strings.Contains(req, "/stall-body") {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
		}
		io.Copy(io.Discard, br) // never answers (more)
	})
	p := &Pool{}
	defer p.Close()
	const d = 250 * time.Millisecond
	start := time.Now()
	res := relayDirect(p, be.addr, "GET", getHead, start.Add(d))
	took := time.Since(start)
	if !errors.Is(res.exErr, os.ErrDeadlineExceeded) {
		t.Fatalf("Exchange past its deadline: %+v", res)
	}
	if took < d || took > d+300*time.Millisecond {
		t.Fatalf("Exchange with a deadline of %v returned after %v", d, took)
	}
	// The deadline bounds the body too.
	start = time.Now()
	res = relayDirect(p, be.addr, "GET", "GET /stall-body HTTP/1.1\r\nHost: b\r\n\r\n", start.Add(d))
	took = time.Since(start)
	if res.exErr != nil || !errors.Is(res.relErr, os.ErrDeadlineExceeded) || !res.aborted || took > d+300*time.Millisecond {
		t.Fatalf("relay past the deadline after %v: %+v", took, res)
	}
	// ReadIdle bounds each wait when there is no deadline.
	p2 := &Pool{ReadIdle: 100 * time.Millisecond}
	defer p2.Close()
	start = time.Now()
	res = relayDirect(p2, be.addr, "GET", getHead, time.Time{})
	if took := time.Since(start); !errors.Is(res.exErr, os.ErrDeadlineExceeded) || took > 400*time.Millisecond {
		t.Fatalf("ReadIdle: %+v after %v", res, took)
	}
}

// TestRawDeadlinesDoNotLeakToRoundTrip: a connection Exchange used with a deadline, then
// pooled, serves a later RoundTrip without a deadline (the write deadline Exchange set, now
// past, is not left on it).
func TestRawDeadlinesDoNotLeakToRoundTrip(t *testing.T) {
	be := startBackend(t, always("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	p := &Pool{}
	defer p.Close()
	res := relayDirect(p, be.addr, "GET", getHead, time.Now().Add(50*time.Millisecond))
	if res.exErr != nil || res.relErr != nil {
		t.Fatal(res.exErr, res.relErr)
	}
	time.Sleep(100 * time.Millisecond)
	req, _ := http.NewRequest("GET", "http://"+be.addr+"/", nil)
	resp, err := p.RoundTrip(context.Background(), be.addr, req, false)
	if err != nil {
		t.Fatalf("RoundTrip on the connection Exchange used: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// And the other way round.
	res = relayDirect(p, be.addr, "GET", getHead, time.Time{})
	if res.exErr != nil || res.relErr != nil || be.accepts.Load() != 1 {
		t.Fatalf("%+v, %d connections", res, be.accepts.Load())
	}
}

// FuzzChunkSize: chunkSize never panics; what it accepts is 1 to 15 hex digits followed by a
// delimiter, and their value; every size below 2^60 written in hex parses back.
func FuzzChunkSize(f *testing.F) {
	for _, s := range []string{"0\r\n", "a;ext=1\r\n", "FF \r\n", "1\n", "\r\n", "g\r\n", "1000000000000000\r\n", "fffffffffffffff\r\n", "5"} {
		f.Add([]byte(s), uint64(len(s)), false, "")
	}
	f.Add([]byte("7\t;x\r\n"), uint64(1)<<59, true, "name=\"v\"")
	f.Fuzz(func(t *testing.T, line []byte, v uint64, upper bool, ext string) {
		n, err := chunkSize(line)
		if err == nil {
			i := 0
			for i < len(line) && strings.IndexByte("0123456789abcdefABCDEF", line[i]) >= 0 {
				i++
			}
			if i == 0 || i > 15 || i == len(line) || strings.IndexByte("; \t\r\n", line[i]) < 0 {
				t.Fatalf("chunkSize(%q) accepted it: %d", line, n)
			}
			if want, err := strconv.ParseInt(string(line[:i]), 16, 64); err != nil || want != n {
				t.Fatalf("chunkSize(%q) = %d, want %d", line, n, want)
			}
		}
		v &= 1<<60 - 1
		s := strconv.FormatUint(v, 16)
		if upper {
			s = strings.ToUpper(s)
		}
		if ext != "" {
			s += ";" + ext
		}
		if got, err := chunkSize([]byte(s + "\r\n")); err != nil || got != int64(v) {
			t.Fatalf("chunkSize(%q) = %d, %v; want %d", s, got, err, v)
		}
	})
}

// FuzzRelay: whatever a backend sends, Exchange and Relay return within their deadline without
// panicking; a response relayed whole is one net/http reads to its end, with the body Relay
// counted, and nothing after it.
func FuzzRelay(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n5;e=1\r\nhello\r\n0\r\nX: y\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: x-a, close\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\n0\n\n",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	} {
		f.Add(s, false, false)
	}
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, true)
	var mu sync.Mutex
	var cur struct {
		resp     string
		keepOpen bool
	}
	be := startBackend(f, func(c net.Conn, br *bufio.Reader) {
		if _, err := readRequest(br); err != nil {
			return
		}
		mu.Lock()
		resp, keepOpen := cur.resp, cur.keepOpen
		mu.Unlock()
		io.WriteString(c, resp)
		if keepOpen {
			io.Copy(io.Discard, br)
		}
	})
	const deadline = 50 * time.Millisecond
	f.Fuzz(func(t *testing.T, resp string, keepOpen, head bool) {
		mu.Lock()
		cur.resp, cur.keepOpen = resp, keepOpen
		mu.Unlock()
		p := &Pool{}
		defer p.Close()
		method := "GET"
		if head {
			method = "HEAD"
		}
		done := make(chan relayResult, 1)
		start := time.Now()
		go func() {
			done <- relayDirect(p, be.addr, method, method+" / HTTP/1.1\r\nHost: b\r\n\r\n", start.Add(deadline))
		}()
		var res relayResult
		select {
		case res = <-done:
		case <-time.After(deadline + 2*time.Second):
			t.Fatalf("Exchange and Relay of %q still running after %v", resp, time.Since(start))
		}
		if res.exErr != nil || res.relErr != nil {
			return
		}
		if res.status < 200 || res.status > 999 {
			t.Fatalf("status %d relayed", res.status)
		}
		if head || res.status == 204 || res.status == 304 {
			// No body, whatever the fields say (they are relayed unchecked, as the regular path does).
			if res.n != 0 || strings.Index(res.out, "\r\n\r\n") != len(res.out)-4 {
				t.Fatalf("relayed %q (n %d) for a response without a body", res.out, res.n)
			}
			return
		}
		br := bufio.NewReader(strings.NewReader(res.out))
		hr, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("relayed %q: net/http reads %v", res.out, err)
		}
		b, err := io.ReadAll(hr.Body)
		if err != nil {
			t.Fatalf("relayed %q: body: %v", res.out, err)
		}
		if int64(len(b)) != res.n || br.Buffered() != 0 {
			t.Fatalf("relayed %q: body %d bytes, Relay counted %d, %d bytes after it", res.out, len(b), res.n, br.Buffered())
		}
	})
}

// TestRawServerCloseAfter: CloseAfter says "Connection: close" and closes the connection after
// the response; Written tells whether anything was written; an unknown status has a reason.
func TestRawServerCloseAfter(t *testing.T) {
	written := make(chan [2]bool, 1)
	s := &Server{Handler: regularHandler(), Raw: rawFunc(func(w *RawWriter, r *Request) bool {
		before := w.Written()
		w.CloseAfter()
		w.Respond(599, "", "X-A: 1\r\n", []byte("x"))
		written <- [2]bool{before, w.Written()}
		return true
	})}
	addr := serve(t, s)
	got := exchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	if want := "HTTP/1.1 599 Status 599\r\nX-A: 1\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx"; got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if w := <-written; w != [2]bool{false, true} {
		t.Fatalf("Written before and after Respond: %v", w)
	}
}

// TestRawStaleAfterSendRetriesOnlyIdempotent: a reused connection the backend drops after reading
// the request (no response) is tried again on a fresh one for a GET, not for a POST.
func TestRawStaleAfterSendRetriesOnlyIdempotent(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			var n atomic.Int32
			be := startBackend(t, func(c net.Conn, br *bufio.Reader) {
				for {
					if _, err := readRequest(br); err != nil {
						return
					}
					if n.Add(1) == 2 {
						return // the second request: read, then the connection drops unanswered
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
				}
			})
			p := &Pool{}
			defer p.Close()
			req := &Request{Method: method, cc: &conn{}}
			head := []byte(method + " / HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n")
			resp, err := p.Exchange(req, be.addr, head, nil, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			resp.Discard(0)
			resp, err = p.Exchange(req, be.addr, head, nil, time.Time{})
			switch method {
			case "GET":
				if err != nil {
					t.Fatalf("GET not retried: %v", err)
				}
				resp.Discard(0)
				if n.Load() != 3 || be.accepts.Load() != 2 {
					t.Fatalf("%d requests on %d connections, want 3 on 2", n.Load(), be.accepts.Load())
				}
			case "POST":
				if !StaleConn(err) {
					t.Fatalf("POST: %v, want the stale connection's error", err)
				}
				if n.Load() != 2 || be.accepts.Load() != 1 {
					t.Fatalf("POST sent %d times on %d connections, want 2 on 1", n.Load(), be.accepts.Load())
				}
			}
		})
	}
}
