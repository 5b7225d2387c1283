package httpfwd

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// parseRaw reads and parses one request head from raw, as a server connection does.
func parseRaw(raw string) (*http.Request, framing, error) {
	cc := &conn{remote: "192.0.2.1:1234"}
	var err error
	cc.head, err = readHead(bufio.NewReaderSize(strings.NewReader(raw), 4096), DefaultMaxHeaderBytes, nil)
	if err != nil {
		return nil, framing{}, err
	}
	return cc.parse(string(cc.head))
}

func TestParseRequest(t *testing.T) {
	req, fr, err := parseRaw("GET /p%20q/x?a=b&c HTTP/1.1\r\nhost: example.com:8080\r\nx-multi: 1\r\nX-Multi: 2 \r\nContent-Length: 0\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != "GET" || req.Host != "example.com:8080" || req.URL.Path != "/p q/x" || req.URL.RawQuery != "a=b&c" ||
		req.RequestURI != "/p%20q/x?a=b&c" || fr.length != 0 || req.Close {
		t.Fatalf("%+v %+v", req, fr)
	}
	if got := req.Header["X-Multi"]; !reflect.DeepEqual(got, []string{"1", "2"}) {
		t.Fatalf("X-Multi %q", got)
	}
	if _, ok := req.Header["Host"]; ok {
		t.Fatal("Host left in the header map (net/http removes it)")
	}
	req, _, err = parseRaw("OPTIONS http://other:81/abs?q HTTP/1.1\r\nHost: ignored\r\n\r\n")
	if err != nil || req.Host != "other:81" || req.URL.Path != "/abs" {
		t.Fatalf("absolute form: %+v %v", req, err)
	}
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
	} {
		if _, _, err := parseRaw(raw); err != errHandOver {
			t.Errorf("%q: %v, want hand-over", raw, err)
		}
	}
	for raw, want := range map[string]error{
		"GET / HTTP/1.1\r\n":                 io.ErrUnexpectedEOF,
		"":                                   io.EOF,
		"GET  / HTTP/1.1\r\nHost: a\r\n\r\n": errMalformed,
		"GET / HTTP/1.1\r\nHost: a\r\nX\x01: v\r\n\r\n":             errMalformed,
		"GET / HTTP/1.1\r\nHost: a\r\nX: v\x00\r\n\r\n":             errMalformed,
		"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n":                       errMalformed,
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n": errMalformed,
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 2, 2\r\n\r\n": nil,
		"GET / HTTP/12\r\nHost: a\r\n\r\n":                          errMalformed,
		"GET / HTTP/2.0\r\nHost: a\r\n\r\n":                         errVersion,
	} {
		if _, _, err := parseRaw(raw); !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("%q: %v, want %v", raw, err, want)
		}
	}
}

// serialize writes a parsed request's head back in a canonical form.
func serialize(r *http.Request) string {
	var b strings.Builder
	b.WriteString(r.Method + " " + r.RequestURI + " " + r.Proto + "\r\n")
	if r.Host != "" || r.ProtoMinor >= 1 {
		b.WriteString("Host: " + r.Host + "\r\n")
	}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range r.Header[k] {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

// FuzzParseRequest: no input panics or passes the size bound, and a request that parses, written
// back, parses to the same request (the parser keeps what it accepts and accepts what it emits).
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x?y HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc",
		"PUT http://h:1/p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		cc := &conn{remote: "192.0.2.1:1"}
		var err error
		cc.head, err = readHead(bufio.NewReaderSize(strings.NewReader(raw), 4096), 8<<10, nil)
		if err != nil {
			return
		}
		if len(cc.head) > 8<<10 {
			t.Fatalf("head of %d bytes passed the bound", len(cc.head))
		}
		req, fr, err := cc.parse(string(cc.head))
		if err != nil {
			return
		}
		if !validToken(req.Method) || !validHost(req.Host) || (fr.chunked && fr.length != -1) || (!fr.chunked && fr.length < 0) {
			t.Fatalf("accepted %q as %+v %+v", raw, req, fr)
		}
		again, fr2, err := parseRaw(serialize(req))
		if err != nil {
			t.Fatalf("%q parsed, its serialization %q did not: %v", raw, serialize(req), err)
		}
		if again.Method != req.Method || again.RequestURI != req.RequestURI || again.Host != req.Host ||
			!reflect.DeepEqual(again.Header, req.Header) || fr2 != fr || again.Close != req.Close {
			t.Fatalf("round trip of %q changed it:\n%+v\n%+v", raw, req, again)
		}
	})
}
