package alb

import (
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/httpfwd"
)

// ServeRaw serves a request httpfwd's raw path took (plain HTTP/1.1 with no body or a small one,
// the common case) when its action is to forward to a target group of HTTP1 targets: the same
// rules, choice of group and target, stickiness, retries, headers, metrics and errors as
// ServeHTTP and forwardFast, with the request's head lines and the response copied as bytes.
// Anything else (fixed responses, redirects, HTTPS or HTTP/2 targets) it declines, and
// ServeHTTP serves it.
func (h *handler) ServeRaw(w *httpfwd.RawWriter, r *httpfwd.Request) bool {
	rt := h.cur()
	xff := 0
	r.Values("X-Forwarded-For", func(v string) { xff += strings.Count(v, ",") + 1 })
	if xff >= maxForwardedFor {
		return false
	}
	req := rawRequestOf(r)
	actions := rt.defaults
	if i := selectRoute(rt.routes, &req); i >= 0 {
		actions = rt.routes[i].actions
	}
	if len(actions) == 0 {
		return false
	}
	act := &actions[len(actions)-1]
	if act.Type != "forward" {
		return false
	}
	st := reqState{rt: rt}
	_, up := st.selectGroup(act, func(name string) (string, bool) { return rawCookie(r, name) })
	if up == nil || up.fast == nil {
		return false
	}
	body, err := r.Body()
	if err != nil {
		w.CloseAfter()
		h.plane.observe(rt.lbARN, "", http.StatusBadRequest, 0, true)
		rawELBError(w, http.StatusBadRequest)
		return true
	}
	var xb [512]byte
	head := r.ForwardHead(forwardedFields, appendForwarded(xb[:0], r, &st))
	var tried []*target
	var lastErr error = errNoTarget
	for attempt := 0; attempt < maxAttempts; attempt++ {
		start := time.Now()
		t := st.g.pick(tried, st.sticky, start, rand.Float64())
		if t == nil {
			break
		}
		t.outstanding.Add(1)
		resp, err := up.fast.Exchange(r, t.addr, head, body, time.Time{})
		if err != nil {
			t.outstanding.Add(-1)
			lastErr = err
			if retryElsewhere(err, r.Method) {
				st.g.connectFailed(t)
				tried = append(tried, t)
				continue
			}
			break
		}
		st.target = t
		h.plane.observe(rt.lbARN, st.g.arn, resp.StatusCode, time.Since(start), false)
		resp.Relay(w, rawStickyCookies(&st))
		t.outstanding.Add(-1)
		return true
	}
	code := forwardStatus(lastErr)
	h.plane.log.Debug("forward failed", "target_group", st.g.arn, "status", code, "err", lastErr)
	h.plane.observe(rt.lbARN, st.g.arn, code, 0, true)
	rawELBError(w, code)
	return true
}

// forwardedFields are the client's fields ALB replaces with its own.
var forwardedFields = []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Amzn-Trace-Id"}

// appendForwarded appends the lines of ALB's X-Forwarded-For/Proto/Port and X-Amzn-Trace-Id.
func appendForwarded(dst []byte, r *httpfwd.Request, st *reqState) []byte {
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	dst = append(dst, "X-Forwarded-For: "...)
	r.Values("X-Forwarded-For", func(v string) {
		dst = append(dst, v...)
		dst = append(dst, ", "...)
	})
	dst = append(dst, client...)
	dst = append(dst, "\r\nX-Forwarded-Proto: "...)
	dst = append(dst, st.rt.scheme...)
	dst = append(dst, "\r\nX-Forwarded-Port: "...)
	dst = append(dst, st.rt.port...)
	dst = append(dst, "\r\nX-Amzn-Trace-Id: "...)
	in, _ := r.Header("X-Amzn-Trace-Id")
	dst = appendTraceHeader(dst, in, time.Now())
	return append(dst, '\r', '\n')
}

// rawRequestOf is requestOf for a raw request.
func rawRequestOf(r *httpfwd.Request) request {
	host := r.Host
	if strings.IndexByte(host, ':') >= 0 {
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	var src netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		src = ap.Addr().Unmap()
	}
	return request{Method: r.Method, Host: host, Path: r.Path, RawQuery: r.RawQuery, raw: r, SourceIP: src}
}

// rawCookie returns the value of the request's cookie name.
func rawCookie(r *httpfwd.Request, name string) (value string, found bool) {
	r.Values("Cookie", func(v string) {
		for v != "" && !found {
			var pair string
			pair, v, _ = strings.Cut(v, ";")
			k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && k == name {
				value, found = strings.Trim(val, `"`), true
			}
		}
	})
	return value, found
}

// rawStickyCookies is setStickyCookies as header lines.
func rawStickyCookies(st *reqState) string {
	if st.target == nil {
		return ""
	}
	s := st.g.snap.Load()
	sticky := s != nil && s.stickiness > 0
	if !sticky && !st.groupCookie {
		return ""
	}
	h := http.Header{}
	setStickyCookies(h, st)
	var b strings.Builder
	for _, v := range h["Set-Cookie"] {
		b.WriteString("Set-Cookie: ")
		b.WriteString(v)
		b.WriteString("\r\n")
	}
	return b.String()
}

// rawELBError is elbError on the raw path.
func rawELBError(w *httpfwd.RawWriter, code int) {
	w.Respond(code, "text/html", "Server: awselb/2.0\r\n", []byte(elbErrorBody(code)))
}
