package alb

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/httpfwd"
)

// The fast path forwards plain HTTP/1.1 requests (the common case) to HTTP1 targets over
// httpfwd's pool of keep-alive connections, written and read by the handler's own goroutine: no
// per-connection reader and writer goroutines and no hand-offs between them, as http.Transport
// has. Upgrades (WebSocket), HTTPS targets and HTTP/2 targets go through httputil.ReverseProxy
// instead.

// upstream is the way a load balancer reaches one target group.
type upstream struct {
	fast *httpfwd.Pool     // HTTP1 over plain TCP
	rt   http.RoundTripper // everything else
	idle time.Duration
}

// newFastPool is the keep-alive pool of a group of HTTP1 targets: pooled connections live for
// the idle timeout, and a target has the idle timeout to start its response and between reads.
func newFastPool(idle time.Duration) *httpfwd.Pool {
	return &httpfwd.Pool{IdleFor: idle, ReadIdle: idle, DialTimeout: 10 * time.Second}
}

func (u *upstream) close() {
	if t, ok := u.rt.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
	if u.fast != nil {
		u.fast.Close()
	}
}

// hopHeaders are not forwarded (RFC 9110 7.6.1), in either direction.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func isHop(k string, conn []string) bool {
	for _, h := range hopHeaders {
		if k == h {
			return true
		}
	}
	for _, v := range conn {
		for _, f := range strings.Split(v, ",") {
			if http.CanonicalHeaderKey(strings.TrimSpace(f)) == k {
				return true
			}
		}
	}
	return false
}

// fastEligible reports whether a request can take the fast path.
func fastEligible(r *http.Request) bool {
	return r.Header.Get("Upgrade") == ""
}

// forwardFast proxies one request to the group over the pool; it writes ALB's error on failure.
func (h *handler) forwardFast(w http.ResponseWriter, r *http.Request, st *reqState, up *upstream) {
	out := outHeaders(r, st)
	body := r.Body
	if r.ContentLength == 0 {
		body = nil
	}
	outreq := &http.Request{Method: r.Method, URL: r.URL, RequestURI: r.RequestURI, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: out, Body: body, ContentLength: r.ContentLength, Host: r.Host}
	if r.ContentLength < 0 && body != nil {
		outreq.TransferEncoding = []string{"chunked"}
	}
	replayable := body == nil

	var tried []*target
	var lastErr error = errNoTarget
	for attempt := 0; attempt < maxAttempts; attempt++ {
		start := time.Now()
		t := st.g.pick(tried, st.sticky, start, rand.Float64())
		if t == nil {
			break
		}
		t.outstanding.Add(1)
		resp, err := up.fast.RoundTrip(context.Background(), t.addr, outreq, replayable)
		if err != nil {
			t.outstanding.Add(-1)
			lastErr = err
			// A target that refuses the connection, or drops it before answering an
			// idempotent request without a body, leaves rotation and the request goes to
			// another: nothing reached the application, or doing it twice is harmless.
			if httpfwd.IsDialError(err) || replayable && retryElsewhere(err, r.Method) {
				st.g.connectFailed(t)
				if replayable {
					tried = append(tried, t)
					continue
				}
			}
			break
		}
		st.target = t
		h.plane.observe(st.rt.lbARN, st.g.arn, resp.StatusCode, time.Since(start), false)
		h.copyResponse(w, resp, st)
		t.outstanding.Add(-1)
		return
	}
	h.plane.forwardError(w, r, st, lastErr)
}

// outHeaders is the header a request is forwarded with: the client's without hop-by-hop fields,
// plus ALB's X-Forwarded-For/Proto/Port and X-Amzn-Trace-Id.
func outHeaders(r *http.Request, st *reqState) http.Header {
	conn := r.Header["Connection"]
	out := make(http.Header, len(r.Header)+4)
	for k, v := range r.Header {
		if isHop(k, conn) {
			continue
		}
		out[k] = v
	}
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 {
		client = strings.Join(prior, ", ") + ", " + client
	}
	out["X-Forwarded-For"] = []string{client}
	out["X-Forwarded-Proto"] = []string{st.rt.scheme}
	out["X-Forwarded-Port"] = []string{st.rt.port}
	out["X-Amzn-Trace-Id"] = []string{traceHeader(r.Header.Get("X-Amzn-Trace-Id"), time.Now())}
	if _, ok := out["User-Agent"]; !ok {
		out["User-Agent"] = []string{""} // Request.Write would add Go's
	}
	return out
}

// forwardUpgrade proxies a WebSocket (or other HTTP/1.1 Upgrade) request: the handshake to a
// target, then bytes both ways until either side closes or nothing moves for the idle timeout.
func (h *handler) forwardUpgrade(w http.ResponseWriter, r *http.Request, st *reqState, up *upstream) {
	out := outHeaders(r, st)
	out["Connection"] = []string{"Upgrade"}
	out["Upgrade"] = r.Header["Upgrade"]
	outreq := &http.Request{Method: r.Method, URL: r.URL, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: out, Host: r.Host}
	var tried []*target
	var lastErr error = errNoTarget
	for attempt := 0; attempt < maxAttempts; attempt++ {
		start := time.Now()
		t := st.g.pick(tried, st.sticky, start, rand.Float64())
		if t == nil {
			break
		}
		c, err := net.DialTimeout("tcp", t.addr, 10*time.Second)
		if err != nil {
			lastErr = &net.OpError{Op: "dial", Net: "tcp", Err: err}
			st.g.connectFailed(t)
			tried = append(tried, t)
			continue
		}
		t.outstanding.Add(1)
		h.upgradeOn(w, r, st, up, t, c, outreq, start)
		t.outstanding.Add(-1)
		return
	}
	h.plane.forwardError(w, r, st, lastErr)
}

func (h *handler) upgradeOn(w http.ResponseWriter, r *http.Request, st *reqState, up *upstream, t *target, c net.Conn, outreq *http.Request, start time.Time) {
	defer c.Close()
	bw := bufio.NewWriter(c)
	err := outreq.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	var resp *http.Response
	br := bufio.NewReader(c)
	if err == nil {
		c.SetReadDeadline(start.Add(up.idle))
		resp, err = http.ReadResponse(br, outreq)
	}
	if err != nil {
		h.plane.forwardError(w, r, st, err)
		return
	}
	st.target = t
	h.plane.observe(st.rt.lbARN, st.g.arn, resp.StatusCode, time.Since(start), false)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		hd := w.Header()
		conn := resp.Header["Connection"]
		for k, v := range resp.Header {
			if !isHop(k, conn) {
				hd[k] = v
			}
		}
		setStickyCookies(hd, st)
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
	cc, crw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h.plane.forwardError(w, r, st, err)
		return
	}
	defer cc.Close()
	crw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	resp.Header.Write(crw)
	crw.WriteString("\r\n")
	if err := crw.Flush(); err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	cc.SetDeadline(time.Time{})
	splice(cc, c, crw.Reader, br, up.idle)
}

// copyResponse writes the target's response to the client; read to its end, the response's
// body gives its connection back to the pool.
func (h *handler) copyResponse(w http.ResponseWriter, resp *http.Response, st *reqState) {
	conn := resp.Header["Connection"]
	hd := w.Header()
	for k, v := range resp.Header {
		if isHop(k, conn) {
			continue
		}
		hd[k] = v
	}
	for k := range resp.Trailer {
		hd.Add("Trailer", k)
	}
	setStickyCookies(hd, st)
	w.WriteHeader(resp.StatusCode)
	bufp := copyBufs.Get().(*[]byte)
	buf := *bufp
	flush := resp.ContentLength < 0
	flusher, _ := w.(http.Flusher)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				break
			}
			if flush && flusher != nil {
				flusher.Flush()
			}
		}
		if rerr != nil {
			break
		}
	}
	copyBufs.Put(bufp)
	for k, v := range resp.Trailer {
		hd[k] = v
	}
	resp.Body.Close()
}
