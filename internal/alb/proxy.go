package alb

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/httpfwd"
)

// routing is the immutable view one HTTP listener serves from; Apply swaps in a new one.
type routing struct {
	lbARN, listenerARN string
	scheme             string // "http" or "https"
	port               string
	routes             []route
	defaults           []Action
	groups             map[string]*tgroup
	upstreams          map[string]*upstream // by target group ARN
}

// reqState travels in the request context from the handler to the transport and back.
type reqState struct {
	rt          *routing
	g           *tgroup
	transport   http.RoundTripper
	sticky      string // AWSALB cookie of the request
	groupCookie bool   // set AWSALBTG on the response
	groupStick  time.Duration
	target      *target
}

type stateKey struct{}

const maxForwardedFor = 30 // more addresses in X-Forwarded-For: 463

// handler is the http.Handler of one HTTP/HTTPS listener.
type handler struct {
	plane *Plane
	cur   func() *routing
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := h.cur()
	if xff := r.Header["X-Forwarded-For"]; len(xff) > 0 && countAddrs(xff) >= maxForwardedFor {
		h.plane.elbError(w, rt, "", 463)
		return
	}
	req := requestOf(r)
	actions := rt.defaults
	if i := selectRoute(rt.routes, &req); i >= 0 {
		actions = rt.routes[i].actions
	}
	if len(actions) == 0 {
		h.plane.elbError(w, rt, "", http.StatusServiceUnavailable)
		return
	}
	act := &actions[len(actions)-1]
	switch act.Type {
	case "fixed-response":
		fixedResponse(w, act.FixedResponse)
		h.plane.observe(rt.lbARN, "", statusOf(act.FixedResponse), 0, true)
	case "redirect":
		code := redirect(w, r, act.Redirect, rt)
		h.plane.observe(rt.lbARN, "", code, 0, true)
	case "forward":
		h.forward(w, r, rt, act)
	default:
		h.plane.elbError(w, rt, "", http.StatusInternalServerError)
	}
}

func countAddrs(vs []string) int {
	n := 0
	for _, v := range vs {
		n += strings.Count(v, ",") + 1
	}
	return n
}

func (h *handler) forward(w http.ResponseWriter, r *http.Request, rt *routing, act *Action) {
	st := &reqState{rt: rt}
	arn, up := st.selectGroup(act, func(name string) (string, bool) {
		c, err := r.Cookie(name)
		if err != nil {
			return "", false
		}
		return c.Value, true
	})
	if up == nil {
		h.plane.elbError(w, rt, arn, http.StatusServiceUnavailable)
		return
	}
	if up.fast != nil && fastEligible(r) {
		h.forwardFast(w, r, st, up)
		return
	}
	if up.fast != nil && r.ProtoMajor == 1 && r.ContentLength == 0 {
		h.forwardUpgrade(w, r, st, up)
		return
	}
	st.transport = up.rt
	h.plane.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
}

// selectGroup settles the forward action's target group for the request (group stickiness by its
// AWSALBTG cookie, else by weight) and reads its target stickiness cookie (AWSALB): st.g and the
// group's upstream. arn is "" when no group has weight; up is nil when there is no group to use.
func (st *reqState) selectGroup(act *Action, cookie func(name string) (string, bool)) (arn string, up *upstream) {
	gi := -1
	if act.Stickiness > 0 && len(act.Forward) > 1 {
		st.groupStick = act.Stickiness
		if c, ok := cookie("AWSALBTG"); ok {
			for i, wg := range act.Forward {
				if wg.Weight > 0 && groupCookie(wg.ARN) == c {
					gi = i
					break
				}
			}
		}
		st.groupCookie = true
	}
	if gi < 0 {
		gi = chooseGroup(act.Forward, rand.Float64())
	}
	if gi < 0 {
		return "", nil
	}
	arn = act.Forward[gi].ARN
	st.g = st.rt.groups[arn]
	up = st.rt.upstreams[arn]
	if st.g == nil || up == nil {
		return arn, nil
	}
	if s := st.g.snap.Load(); s != nil && s.stickiness > 0 {
		st.sticky, _ = cookie("AWSALB")
	}
	return arn, up
}

// retryElsewhere reports whether a forward that failed with err leaves the target out of
// rotation and goes to another: the connection could not be made (nothing was sent), or it
// dropped before an answer to an idempotent request (doing it twice is harmless).
func retryElsewhere(err error, method string) bool {
	return httpfwd.IsDialError(err) || httpfwd.StaleConn(err) && httpfwd.Idempotent(method)
}

// rewrite sets the headers ALB adds to what it forwards.
func rewrite(pr *httputil.ProxyRequest) {
	st := pr.In.Context().Value(stateKey{}).(*reqState)
	out := pr.Out
	out.URL.Scheme = "http"
	out.URL.Host = "target"
	client, _, err := net.SplitHostPort(pr.In.RemoteAddr)
	if err != nil {
		client = pr.In.RemoteAddr
	}
	if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 {
		client = strings.Join(prior, ", ") + ", " + client
	}
	out.Header["X-Forwarded-For"] = []string{client}
	out.Header["X-Forwarded-Proto"] = []string{st.rt.scheme}
	out.Header["X-Forwarded-Port"] = []string{st.rt.port}
	out.Header["X-Amzn-Trace-Id"] = []string{traceHeader(pr.In.Header.Get("X-Amzn-Trace-Id"), time.Now())}
}

// traceHeader is the X-Amzn-Trace-Id ALB forwards: a new Root when the request has none; when it
// has one, the request's fields kept and a Self field (this hop) put first.
func traceHeader(in string, now time.Time) string {
	var b [128]byte
	return string(appendTraceHeader(b[:0], in, now))
}

// appendTraceHeader appends traceHeader's value to dst.
func appendTraceHeader(dst []byte, in string, now time.Time) []byte {
	if !strings.Contains(in, "Root=") {
		return appendTraceID(append(dst, "Root="...), now)
	}
	dst = appendTraceID(append(dst, "Self="...), now)
	for in != "" {
		var f string
		f, in, _ = strings.Cut(in, ";")
		if f = strings.TrimSpace(f); f != "" && !strings.HasPrefix(f, "Self=") {
			dst = append(dst, ';')
			dst = append(dst, f...)
		}
	}
	return dst
}

// newTraceID is AWS's trace id: 1-<8 hex digits of epoch seconds>-<24 hex digits of randomness>.
func newTraceID(now time.Time) string {
	var b [35]byte
	return string(appendTraceID(b[:0], now))
}

// appendTraceID appends a new trace id to dst.
func appendTraceID(dst []byte, now time.Time) []byte {
	var b [35]byte
	b[0], b[1] = '1', '-'
	var ts [4]byte
	sec := uint32(now.Unix())
	ts[0], ts[1], ts[2], ts[3] = byte(sec>>24), byte(sec>>16), byte(sec>>8), byte(sec)
	hex.Encode(b[2:10], ts[:])
	b[10] = '-'
	var rb [12]byte
	x, y := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		rb[i] = byte(x >> (8 * i))
	}
	for i := 0; i < 4; i++ {
		rb[8+i] = byte(y >> (8 * i))
	}
	hex.Encode(b[11:], rb[:])
	return append(dst, b[:]...)
}

// dispatch is the proxy's RoundTripper: it picks the target (after stickiness), retries another
// one when a connection cannot be made and the request has no body, and ejects the failed target.
type dispatch struct{ plane *Plane }

var errNoTarget = errors.New("no target available")

const maxAttempts = 3

func (d dispatch) RoundTrip(req *http.Request) (*http.Response, error) {
	st := req.Context().Value(stateKey{}).(*reqState)
	var tried []*target
	var lastErr error = errNoTarget
	for attempt := 0; attempt < maxAttempts; attempt++ {
		now := time.Now()
		t := st.g.pick(tried, st.sticky, now, rand.Float64())
		if t == nil {
			return nil, lastErr
		}
		req.URL.Host = t.addr
		t.outstanding.Add(1)
		resp, err := st.transport.RoundTrip(req)
		if err != nil {
			t.outstanding.Add(-1)
			lastErr = err
			if !httpfwd.IsDialError(err) {
				return nil, err
			}
			st.g.connectFailed(t)
			if req.Body != nil && req.Body != http.NoBody {
				return nil, err
			}
			tried = append(tried, t)
			continue
		}
		st.target = t
		d.plane.observe(st.rt.lbARN, st.g.arn, resp.StatusCode, time.Since(now), false)
		if resp.StatusCode == http.StatusSwitchingProtocols {
			t.outstanding.Add(-1)
		} else {
			resp.Body = &countedBody{ReadCloser: resp.Body, t: t}
		}
		return resp, nil
	}
	return nil, lastErr
}

// countedBody ends a target's outstanding request when the proxy has copied the response.
type countedBody struct {
	io.ReadCloser
	t    *target
	once sync.Once
}

func (b *countedBody) Close() error {
	b.once.Do(func() { b.t.outstanding.Add(-1) })
	return b.ReadCloser.Close()
}

// modifyResponse sets the stickiness cookies.
func modifyResponse(resp *http.Response) error {
	st, _ := resp.Request.Context().Value(stateKey{}).(*reqState)
	setStickyCookies(resp.Header, st)
	return nil
}

// setStickyCookies adds the stickiness cookies of the target that answered.
func setStickyCookies(h http.Header, st *reqState) {
	if st == nil || st.target == nil {
		return
	}
	var now time.Time
	if s := st.g.snap.Load(); s != nil && s.stickiness > 0 {
		now = time.Now()
		addStickyCookie(h, "AWSALB", st.target.cookie, s.stickiness, now)
	}
	if st.groupCookie {
		if now.IsZero() {
			now = time.Now()
		}
		addStickyCookie(h, "AWSALBTG", groupCookie(st.g.arn), st.groupStick, now)
	}
}

// addStickyCookie sets ALB's cookie and its CORS twin (SameSite=None; Secure), as ALB does.
func addStickyCookie(h http.Header, name, value string, d time.Duration, now time.Time) {
	exp := now.Add(d).UTC().Format(http.TimeFormat)
	h.Add("Set-Cookie", name+"="+value+"; Expires="+exp+"; Path=/")
	h.Add("Set-Cookie", name+"CORS="+value+"; Expires="+exp+"; Path=/; SameSite=None; Secure")
}

// errorHandler answers ALB's own error for a failed forward.
func (p *Plane) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	st, _ := r.Context().Value(stateKey{}).(*reqState)
	p.forwardError(w, r, st, err)
}

// forwardError classifies a failed forward into ALB's status codes and answers it.
func (p *Plane) forwardError(w http.ResponseWriter, r *http.Request, st *reqState, err error) {
	var rt *routing
	tg := ""
	if st != nil {
		rt = st.rt
		tg = st.g.arn
	}
	code := forwardStatus(err)
	if r.Context().Err() != nil {
		code = 460 // the client went away; nothing to send
	}
	if code != 460 {
		p.log.Debug("forward failed", "target_group", tg, "status", code, "err", err)
	}
	p.elbError(w, rt, tg, code)
}

// elbError writes one of ALB's own error responses, in ALB's body shape.
func (p *Plane) elbError(w http.ResponseWriter, rt *routing, tg string, code int) {
	if rt != nil {
		p.observe(rt.lbARN, tg, code, 0, true)
	}
	if code == 460 {
		return
	}
	body := elbErrorBody(code)
	hd := w.Header()
	hd.Set("Server", "awselb/2.0")
	hd.Set("Content-Type", "text/html")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	io.WriteString(w, body)
}

// forwardStatus is ALB's status for a forward that got no response: 503 when no target was
// available, 504 when the target timed out, else 502.
func forwardStatus(err error) int {
	var ne net.Error
	switch {
	case errors.Is(err, errNoTarget):
		return http.StatusServiceUnavailable
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// elbErrorBody is the HTML body of ALB's own error responses.
func elbErrorBody(code int) string {
	title := strconv.Itoa(code)
	if text := elbStatusText(code); text != "" {
		title += " " + text
	}
	return "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title + "</h1></center>\r\n</body>\r\n</html>\r\n"
}

func elbStatusText(code int) string {
	switch code {
	case 503:
		return "Service Temporarily Unavailable"
	case 504:
		return "Gateway Time-out"
	case 463:
		return ""
	}
	return http.StatusText(code)
}

func (p *Plane) observe(lb, tg string, status int, d time.Duration, elbErr bool) {
	if p.observer != nil {
		p.observer.Request(lb, tg, status, d, elbErr)
	}
}

func statusOf(f *FixedResponse) int {
	if f == nil || f.StatusCode == 0 {
		return http.StatusOK
	}
	return f.StatusCode
}

func fixedResponse(w http.ResponseWriter, f *FixedResponse) {
	code := statusOf(f)
	ct, body := "text/plain; charset=utf-8", ""
	if f != nil {
		body = f.Body
		if f.ContentType != "" {
			ct = f.ContentType
		}
	}
	hd := w.Header()
	hd.Set("Server", "awselb/2.0")
	hd.Set("Content-Type", ct)
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	io.WriteString(w, body)
}

// redirect answers the redirect action and returns its status code.
func redirect(w http.ResponseWriter, r *http.Request, rd *Redirect, rt *routing) int {
	loc := redirectLocation(rd, rt.scheme, hostOnly(r.Host), rt.port, r.URL.Path, r.URL.RawQuery)
	code := http.StatusFound
	if rd != nil && rd.StatusCode == http.StatusMovedPermanently {
		code = rd.StatusCode
	}
	hd := w.Header()
	hd.Set("Server", "awselb/2.0")
	hd.Set("Location", loc)
	hd.Set("Content-Type", "text/html")
	hd.Set("Content-Length", "0")
	w.WriteHeader(code)
	return code
}

// redirectLocation builds the Location of a redirect action from its components; empty components
// keep the request's, and #{protocol} #{host} #{port} #{path} (without its leading "/") #{query}
// expand to the request's values.
func redirectLocation(rd *Redirect, scheme, host, port, path, query string) string {
	var d Redirect
	if rd != nil {
		d = *rd
	}
	def := func(v, dflt string) string {
		if v == "" {
			return dflt
		}
		return v
	}
	expand := strings.NewReplacer(
		"#{protocol}", scheme,
		"#{host}", host,
		"#{port}", port,
		"#{path}", strings.TrimPrefix(path, "/"),
		"#{query}", query,
	).Replace
	proto := strings.ToLower(expand(def(d.Protocol, "#{protocol}")))
	h := expand(def(d.Host, "#{host}"))
	pt := expand(def(d.Port, "#{port}"))
	p := expand(def(d.Path, "/#{path}"))
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	q := expand(def(d.Query, "#{query}"))
	loc := proto + "://" + h + ":" + pt + p
	if q != "" {
		loc += "?" + q
	}
	return loc
}
