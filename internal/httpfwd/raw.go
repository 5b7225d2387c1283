package httpfwd

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// The raw path serves the common request of a proxy as bytes: a plain HTTP/1.1 request in origin
// form with no body or a small Content-Length body, no Upgrade, no Expect and only "close" or
// "keep-alive" in Connection. Such a request is offered to Server.Raw before any http.Request is
// made; RawHandler forwards it with Pool.Exchange and Response.Relay, which copy head lines and
// body bytes instead of building header maps. A request the raw path does not take, or that the
// handler declines, is served by Server.Handler as before. Decision 27 in docs/decisions.md.

// RawHandler serves requests as bytes.
type RawHandler interface {
	// ServeRaw serves r, writing its whole response through w, and reports true; or it reports
	// false having written nothing and read no body, and the request goes to Server.Handler.
	ServeRaw(w *RawWriter, r *Request) bool
}

// DefaultMaxRawBody is the largest request body the raw path takes (read whole before the
// request is forwarded, so that a retry can send it again).
const DefaultMaxRawBody = 64 << 10

// Request is a request as read, for a RawHandler. It and its strings are valid until ServeRaw
// returns.
type Request struct {
	Method     string
	Target     string // origin form, as sent: path and query
	Path       string // Target before '?', not decoded
	RawQuery   string // Target after '?'
	Host       string // the Host field
	RemoteAddr string // the client's address, "ip:port"
	// Close is true when the client asked to close the connection after this request.
	Close bool
	// ContentLength is the body's length (0: none).
	ContentLength int64

	lines    []string // header lines as sent, "Name: value", without line ends
	cc       *conn
	body     []byte
	bodyRead bool
	bodyErr  error
}

// Header returns the first value of the field name (case-insensitive) and whether it was there.
func (r *Request) Header(name string) (string, bool) { return lineValue(r.lines, name) }

// Values calls f with each value of the field name (case-insensitive), in order.
func (r *Request) Values(name string, f func(string)) {
	for _, l := range r.lines {
		if v, ok := lineIs(l, name); ok {
			f(v)
		}
	}
}

// Body reads the whole body (at most the server's MaxRawBody) and returns it; the slice is valid
// until ServeRaw returns. A request without a body gives nil.
func (r *Request) Body() ([]byte, error) {
	if r.bodyRead || r.ContentLength == 0 {
		return r.body, r.bodyErr
	}
	r.bodyRead = true
	cc := r.cc
	n := int(r.ContentLength)
	if cap(cc.rawBody) < n {
		cc.rawBody = make([]byte, n)
	}
	r.body = cc.rawBody[:n]
	if _, err := io.ReadFull(cc.br, r.body); err != nil {
		r.body, r.bodyErr = nil, errUnexpectedEOF(err)
	}
	return r.body, r.bodyErr
}

// AppendHead appends the head r is forwarded with: its request line as HTTP/1.1, its header
// lines but the hop-by-hop ones (Connection, Keep-Alive, Proxy-Connection, Proxy-Authenticate,
// Proxy-Authorization, TE, Trailer), Content-Length and those named in drop (case-insensitive),
// then extra (complete "Name: value\r\n" lines), the framing (Content-Length of the body, or 0
// for POST, PUT and PATCH without one) and the empty line.
func (r *Request) AppendHead(dst []byte, drop []string, extra []byte) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, ' ')
	dst = append(dst, r.Target...)
	dst = append(dst, " HTTP/1.1\r\n"...)
	for _, l := range r.lines {
		name := l[:strings.IndexByte(l, ':')]
		if isHopName(name) || strings.EqualFold(name, "Content-Length") || inFold(drop, name) {
			continue
		}
		dst = append(dst, l...)
		dst = append(dst, '\r', '\n')
	}
	dst = append(dst, extra...)
	switch {
	case r.ContentLength > 0:
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, r.ContentLength, 10)
		dst = append(dst, '\r', '\n')
	case methodWantsLength(r.Method):
		dst = append(dst, "Content-Length: 0\r\n"...)
	}
	return append(dst, '\r', '\n')
}

// ForwardHead is AppendHead into a buffer of the connection's, valid until ServeRaw returns.
func (r *Request) ForwardHead(drop []string, extra []byte) []byte {
	r.cc.fwdHead = r.AppendHead(r.cc.fwdHead[:0], drop, extra)
	return r.cc.fwdHead
}

// RawWriter writes the response of a request on the raw path.
type RawWriter struct {
	cc         *conn
	bw         *bufio.Writer
	wrote      bool
	closeAfter bool
	aborted    bool
	head       bool // the request is HEAD: Respond writes no body
}

// Respond writes a whole response: the status line, Content-Type when not empty, extra (complete
// "Name: value\r\n" lines), Content-Length and body (not to a HEAD request).
func (w *RawWriter) Respond(code int, contentType, extra string, body []byte) {
	w.wrote = true
	bw := w.bw
	bw.WriteString("HTTP/1.1 ")
	var b [20]byte
	bw.Write(strconv.AppendInt(b[:0], int64(code), 10))
	bw.WriteByte(' ')
	bw.WriteString(statusText(code))
	bw.WriteString("\r\n")
	if contentType != "" {
		bw.WriteString("Content-Type: ")
		bw.WriteString(contentType)
		bw.WriteString("\r\n")
	}
	bw.WriteString(extra)
	if w.closeAfter {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("Content-Length: ")
	bw.Write(strconv.AppendInt(b[:0], int64(len(body)), 10))
	bw.WriteString("\r\n\r\n")
	if !w.head {
		bw.Write(body)
	}
}

// CloseAfter closes the client's connection after this response.
func (w *RawWriter) CloseAfter() { w.closeAfter = true }

// Written reports whether any of the response was written.
func (w *RawWriter) Written() bool { return w.wrote }

// rawRequest reads the head just read as a raw-path request: ok is false when the request is not
// one the raw path takes (or is malformed: the regular path answers that).
func (cc *conn) rawRequest(hs string) (r *Request, ok bool) {
	f, err := splitHead(hs, cc.lines)
	cc.lines = f.lines
	if err != nil {
		return nil, false
	}
	rl, err := parseRequestLine(f.start)
	if err != nil || rl.major != 1 || rl.minor != 1 || rl.target[0] != '/' || strings.ContainsAny(rl.target, "%#") {
		return nil, false
	}
	r = &cc.raw
	*r = Request{Method: rl.method, Target: rl.target, RemoteAddr: cc.remote, lines: f.lines, cc: cc}
	r.Path, r.RawQuery, _ = strings.Cut(rl.target, "?")
	hosts := 0
	hasLength := false
	for _, l := range f.lines {
		colon := strings.IndexByte(l, ':')
		if colon <= 0 || !validToken(l[:colon]) {
			return nil, false
		}
		name, v := l[:colon], trimOWS(l[colon+1:])
		if !validValue(v) {
			return nil, false
		}
		switch len(name) {
		case 4:
			if strings.EqualFold(name, "Host") {
				hosts++
				r.Host = v
			}
		case 6:
			if strings.EqualFold(name, "Expect") {
				return nil, false
			}
		case 7:
			if strings.EqualFold(name, "Upgrade") {
				return nil, false
			}
		case 10:
			if strings.EqualFold(name, "Connection") {
				for v != "" {
					var opt string
					opt, v, _ = strings.Cut(v, ",")
					switch opt = trimOWS(opt); {
					case strings.EqualFold(opt, "close"):
						r.Close = true
					case strings.EqualFold(opt, "keep-alive"), opt == "":
					default:
						return nil, false // it names fields to drop: the regular path does that
					}
				}
			}
		case 14:
			if strings.EqualFold(name, "Content-Length") {
				if v == "" || v[0] < '0' || v[0] > '9' {
					return nil, false
				}
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || hasLength && n != r.ContentLength {
					return nil, false
				}
				hasLength, r.ContentLength = true, n
			}
		case 17:
			if strings.EqualFold(name, "Transfer-Encoding") {
				return nil, false
			}
		}
	}
	if hosts != 1 || r.Host == "" || !validHost(r.Host) || r.ContentLength > int64(cc.srv.maxRawBody()) {
		return nil, false
	}
	return r, true
}

func (s *Server) maxRawBody() int {
	if s.MaxRawBody > 0 {
		return s.MaxRawBody
	}
	return DefaultMaxRawBody
}

// serveRaw offers the request to the raw handler; handled reports whether it took it, keep
// whether the connection can take another request.
func (cc *conn) serveRaw(r *Request) (handled, keep bool) {
	w := &cc.rawW
	*w = RawWriter{cc: cc, bw: cc.bw, closeAfter: r.Close, head: r.Method == http.MethodHead}
	took, ok := cc.runRaw(w, r)
	if !ok {
		return true, false
	}
	if !w.wrote {
		if !took && !r.bodyRead {
			return false, true // to the regular path
		}
		// Declined after reading the body (the regular path cannot read it again), or taken
		// with nothing written: a handler's mistake.
		w.closeAfter = true
		w.Respond(500, "text/plain; charset=utf-8", "", []byte("Internal Server Error\n"))
	}
	if !r.bodyRead && r.ContentLength > 0 {
		if _, err := cc.br.Discard(int(r.ContentLength)); err != nil {
			return true, false
		}
	}
	if r.bodyErr != nil {
		cc.bw.Flush() // the handler's answer (400), then the connection closes
		return true, false
	}
	if w.aborted || cc.bw.Flush() != nil {
		return true, false
	}
	return true, !w.closeAfter
}

// runRaw calls the raw handler; a panic ends the connection (see runHandler).
func (cc *conn) runRaw(w *RawWriter, r *Request) (took, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			if cc.srv.Log != nil && !isAbort(p) {
				cc.srv.Log.Error("httpfwd: raw handler panic", "remote", cc.remote, "panic", p)
			}
			if !w.wrote && !isAbort(p) {
				w.closeAfter = true
				w.Respond(500, "text/plain; charset=utf-8", "", []byte("Internal Server Error\n"))
			}
			cc.bw.Flush()
			ok = false
		}
	}()
	return cc.srv.Raw.ServeRaw(w, r), true
}

func isAbort(p any) bool { return p == http.ErrAbortHandler }

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "Status " + strconv.Itoa(code)
}

// lazyDeadline sets a connection's deadline only when the one set is not already within slack
// after the one wanted: a deadline is then late by at most slack, and a busy connection changes
// its timer a few times a second instead of once per request. Its zero value knows nothing of
// the connection's deadline; one set otherwise must be followed by forget.
type lazyDeadline struct {
	at    time.Time
	known bool
}

// slackFor is the lateness allowed for a timeout of d: a 32nd of it, at most 250 ms.
func slackFor(d time.Duration) time.Duration { return min(d/32, 250*time.Millisecond) }

func (d *lazyDeadline) set(want time.Time, slack time.Duration, apply func(time.Time) error) {
	if d.known {
		if want.IsZero() && d.at.IsZero() {
			return
		}
		if !want.IsZero() && !d.at.IsZero() && !d.at.Before(want) && d.at.Sub(want) <= slack {
			return
		}
	}
	d.at, d.known = want, true
	if !want.IsZero() {
		d.at = want.Add(slack)
	}
	apply(d.at)
}

// forget is called after the deadline was set other than through d.
func (d *lazyDeadline) forget() { *d = lazyDeadline{} }

// bytesView is b as a string without copying: b must not change while the string is in use.
func bytesView(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// lineValue returns the first value of the field name in lines.
func lineValue(lines []string, name string) (string, bool) {
	for _, l := range lines {
		if v, ok := lineIs(l, name); ok {
			return v, true
		}
	}
	return "", false
}

// lineIs reports whether the header line l is of the field name, and its value.
func lineIs(l, name string) (string, bool) {
	if len(l) <= len(name) || l[len(name)] != ':' || !strings.EqualFold(l[:len(name)], name) {
		return "", false
	}
	return trimOWS(l[len(name)+1:]), true
}

// isHopName: hop-by-hop fields (RFC 9110 7.6.1) the raw path does not forward.
func isHopName(name string) bool {
	switch len(name) {
	case 2:
		return strings.EqualFold(name, "TE")
	case 7:
		return strings.EqualFold(name, "Trailer") || strings.EqualFold(name, "Upgrade")
	case 10:
		return strings.EqualFold(name, "Connection") || strings.EqualFold(name, "Keep-Alive")
	case 16:
		return strings.EqualFold(name, "Proxy-Connection")
	case 17:
		return strings.EqualFold(name, "Transfer-Encoding")
	case 18:
		return strings.EqualFold(name, "Proxy-Authenticate")
	case 19:
		return strings.EqualFold(name, "Proxy-Authorization")
	}
	return false
}

func inFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
