package scproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/httpfwd"
)

// MaxAttempts is one try and two retries, as ECS's proxy does.
const MaxAttempts = 3

// hopHeaders are not forwarded (RFC 9110 section 7.6.1); TE is kept when
// it is "trailers" (gRPC needs it).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// failure kinds of an upstream round trip that did not give a response.
type failKind int

const (
	failOther   failKind = iota
	failConnect          // the connection could not be made: nothing was sent
	failRefused          // HTTP/2 REFUSED_STREAM: the upstream did not process it
	failReset            // the connection broke before the response's headers
	failTimeout          // the per-request timeout
)

func classify(ctx context.Context, err error) failKind {
	var oe *net.OpError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || deadlinePassed(ctx):
		return failTimeout
	case errors.As(err, &oe) && oe.Op == "dial":
		return failConnect
	case strings.Contains(err.Error(), "REFUSED_STREAM"):
		return failRefused
	case ctx.Err() != nil:
		return failOther
	}
	return failReset
}

// trackedBody is a request body that is streamed (too large or of unknown
// length to buffer): it remembers whether the upstream read any of it (then
// the request cannot be retried), and its Close does nothing (the server
// closes the real body when the handler returns).
type trackedBody struct {
	r    io.Reader
	mu   sync.Mutex
	read bool
	n    int64
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.mu.Lock()
	if n > 0 || err == nil {
		b.read = true
	}
	b.n += int64(n)
	b.mu.Unlock()
	return n, err
}

func (b *trackedBody) Close() error { return nil }

func (b *trackedBody) consumed() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.read
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// ServeHTTP forwards one request to an endpoint of the listener's cluster,
// retrying another endpoint (up to MaxAttempts in all) after a connection
// failure, a refused stream, a reset before the response for an idempotent
// method, or a 503 answer, when the request's body can be sent again.
func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := r.Context()
	if l.perRequest > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.perRequest)
		defer cancel()
	}
	var buf []byte
	var tb *trackedBody
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		if r.ContentLength > 0 && r.ContentLength <= l.p.maxBody {
			buf = make([]byte, r.ContentLength)
			if _, err := io.ReadFull(r.Body, buf); err != nil {
				l.st.request(http.StatusBadRequest, 0, -1)
				if r.Context().Err() == nil {
					http.Error(w, "request body: "+err.Error(), http.StatusBadRequest)
				}
				return
			}
		} else {
			tb = &trackedBody{r: r.Body}
		}
	}
	hdr := r.Header.Clone()
	for _, h := range hopHeaders {
		if h == "Te" && strings.EqualFold(strings.TrimSpace(hdr.Get("Te")), "trailers") {
			continue
		}
		delete(hdr, h)
	}
	for _, c := range r.Header["Connection"] {
		for _, f := range strings.Split(c, ",") {
			delete(hdr, http.CanonicalHeaderKey(strings.TrimSpace(f)))
		}
	}
	if _, ok := hdr["User-Agent"]; !ok {
		hdr["User-Agent"] = []string{""} // no Go default added on the way
	}
	u := url.URL{Scheme: "http", Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}

	var tried []*endpoint
	var lastErr error
	lastKind := failOther
	for attempt := 0; attempt < MaxAttempts; attempt++ {
		ep := l.cl.pick(time.Now(), tried)
		if ep == nil {
			break
		}
		uu := u
		uu.Host = ep.addr
		out := (&http.Request{Method: r.Method, URL: &uu, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: hdr, Host: r.Host, ContentLength: r.ContentLength, Trailer: r.Trailer}).WithContext(ctx)
		if l.pool != nil && r.ProtoMajor == 1 {
			out.RequestURI = r.RequestURI // origin form as the client sent it (absolute form is rebuilt from URL)
		}
		switch {
		case buf != nil:
			out.Body = io.NopCloser(bytes.NewReader(buf))
		case tb != nil:
			out.Body = tb
		default:
			out.ContentLength = 0
		}
		ep.outstanding.Add(1)
		var resp *http.Response
		var err error
		if l.pool != nil {
			resp, err = l.pool.RoundTrip(ctx, ep.addr, out, tb == nil)
		} else {
			resp, err = l.tr.RoundTrip(out)
		}
		if err != nil {
			ep.outstanding.Add(-1)
			lastErr, lastKind = err, classify(ctx, err)
			l.failed(ep, lastKind, err)
			retry := !tb.consumed() && ctx.Err() == nil &&
				(lastKind == failConnect || lastKind == failRefused || (lastKind == failReset && httpfwd.Idempotent(r.Method)))
			if !retry {
				break
			}
			tried = append(tried, ep)
			continue
		}
		l.answered(ep, resp.StatusCode)
		if resp.StatusCode == http.StatusServiceUnavailable && attempt < MaxAttempts-1 && !tb.consumed() && ctx.Err() == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			ep.outstanding.Add(-1)
			tried = append(tried, ep)
			continue
		}
		rt := time.Since(start)
		n := l.respond(w, resp, ep)
		l.st.request(resp.StatusCode, n+int64(len(buf))+tbBytes(tb), rt)
		return
	}
	if r.Context().Err() != nil { // the client went away
		l.st.request(499, 0, -1)
		return
	}
	timedOut := lastKind == failTimeout || deadlinePassed(ctx)
	code, msg := failureAnswer(lastKind, lastErr, timedOut)
	l.st.request(code, 0, -1)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Server", "berth-scproxy")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// failed records an attempt that got no response: a connection that
// could not be made ejects the endpoint, a reset or refused stream counts
// as a 5xx towards its outlier ejection.
func (l *listener) failed(ep *endpoint, kind failKind, err error) {
	switch kind {
	case failConnect:
		if ep.result(0, time.Now()) {
			l.p.log.Debug("endpoint ejected: connection failed", "cluster", l.cl.name, "endpoint", ep.addr, "err", err)
		}
	case failReset, failRefused:
		ep.result(http.StatusServiceUnavailable, time.Now())
	}
}

// answered records an endpoint's answer (outlier ejection on consecutive
// 5xx).
func (l *listener) answered(ep *endpoint, status int) {
	if ep.result(status, time.Now()) {
		l.p.log.Debug("endpoint ejected: consecutive 5xx", "cluster", l.cl.name, "endpoint", ep.addr)
	}
}

// failureAnswer is the proxy's own answer when no attempt got a response.
func failureAnswer(kind failKind, lastErr error, timedOut bool) (int, string) {
	switch {
	case timedOut:
		return http.StatusGatewayTimeout, "upstream request timeout"
	case lastErr != nil && kind == failConnect:
		return http.StatusServiceUnavailable, "upstream connect error: " + lastErr.Error()
	case lastErr != nil:
		return http.StatusBadGateway, "upstream reset before response: " + lastErr.Error()
	}
	return http.StatusServiceUnavailable, "no healthy upstream"
}

func tbBytes(tb *trackedBody) int64 {
	if tb == nil {
		return 0
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.n
}

// respond copies the upstream's response to the client: headers, body
// (flushed as it comes for streams: unknown length, HTTP/2, gRPC) and
// trailers. It returns the body bytes copied.
func (l *listener) respond(w http.ResponseWriter, resp *http.Response, ep *endpoint) int64 {
	defer ep.outstanding.Add(-1)
	defer resp.Body.Close()
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	w.WriteHeader(resp.StatusCode)
	flush := resp.ContentLength < 0 || resp.ProtoMajor == 2
	rc := http.NewResponseController(w)
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	b := *bp
	var n int64
	for {
		m, err := resp.Body.Read(b)
		if m > 0 {
			if _, werr := w.Write(b[:m]); werr != nil {
				return n
			}
			n += int64(m)
			if flush {
				_ = rc.Flush()
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			// The upstream broke (or the per-request timeout hit) in
			// the middle of the body: abort the client's response so it
			// does not look complete.
			panic(http.ErrAbortHandler)
		}
	}
	for k, v := range resp.Trailer {
		h[http.TrailerPrefix+k] = v
	}
	return n
}

// deadlinePassed: the per-request timeout has expired (the connection's
// deadline, which is the context's, may fire before the context's timer).
func deadlinePassed(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}
