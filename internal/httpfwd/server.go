// Package httpfwd serves and forwards plain HTTP/1.1 without net/http's server and transport:
// Server reads requests straight off a net.Conn with its own bounded parser and calls an
// http.Handler on the connection's goroutine; Pool forwards requests to backends over keep-alive
// connections written and read by the caller's goroutine. What they do not handle (Upgrade,
// CONNECT, HTTP/2 prior knowledge) Server hands to a fallback, typically an http.Server. Used by
// the load balancer (internal/alb) and the Service Connect proxy (internal/scproxy); decision 24
// in docs/decisions.md says why.
package httpfwd

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves plain HTTP/1.1 (and 1.0) on connections it is given, calling Handler for each
// request with a *http.Request and an http.ResponseWriter of its own. A connection whose next
// request it does not handle itself (an Upgrade such as WebSocket, CONNECT, or HTTP/2 with prior
// knowledge) goes to Fallback with the bytes already read put back in front, so that an
// http.Server can serve it from there.
//
// A request's context ends when the server is closed (Close, or Shutdown's deadline), not when
// its client goes away: the server does not read the connection while the handler runs. Fields
// must not change after the first ServeConn.
type Server struct {
	Handler http.Handler
	// Fallback takes over a connection the server does not handle; nil: such requests get 501.
	Fallback func(net.Conn)
	// IdleTimeout is how long a connection may wait for its next request, and for each read of a
	// request's head or body; 0: no limit.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's head (default 64 KiB, ALB's limit); more gets 431.
	MaxHeaderBytes int
	// ConnState, if set, is told of StateNew, StateActive, StateIdle, StateHijacked (handed to
	// Fallback) and StateClosed, as http.Server's hook.
	ConnState func(net.Conn, http.ConnState)
	// Log receives handler panics (nil: discarded).
	Log *slog.Logger
	// Raw, if set, is offered first each request the raw path takes (see RawHandler).
	Raw RawHandler
	// MaxRawBody is the largest request body the raw path takes (default DefaultMaxRawBody).
	MaxRawBody int

	mu       sync.Mutex
	ctx      context.Context // of every request; cancelled by Close
	cancel   context.CancelFunc
	conns    map[*conn]struct{}
	shutting atomic.Bool
	wg       sync.WaitGroup
}

// DefaultMaxHeaderBytes is ALB's limit on a request's line and header fields together.
const DefaultMaxHeaderBytes = 64 << 10

// maxDrainBytes is how much of a request body the handler left unread is read and dropped to keep
// the connection; more closes it.
const maxDrainBytes = 256 << 10

// conn is one client connection.
type conn struct {
	srv    *Server
	ctx    context.Context
	c      net.Conn
	remote string
	br     *bufio.Reader
	bw     *bufio.Writer
	head   []byte
	lines  []string
	idle   atomic.Bool // waiting for a request
	w      respWriter

	rdl     lazyDeadline // the connection's read deadline
	raw     Request
	rawW    RawWriter
	rawBody []byte
	fwdHead []byte

	upMu   sync.Mutex
	up     *upConn // the backend connection of the raw exchange under way
	closed bool    // Close ran: a raw exchange must not start
}

// setUpstream records the backend connection of the raw exchange under way (nil: none), so
// that Close can cut it; false when Close already ran (then the connection recorded before may
// have been cut: its deadline is in the past).
func (cc *conn) setUpstream(uc *upConn) bool {
	cc.upMu.Lock()
	defer cc.upMu.Unlock()
	if cc.closed && uc != nil {
		return false
	}
	cc.up = uc
	return !cc.closed
}

// cut ends the connection and the raw exchange it waits on.
func (cc *conn) cut() {
	cc.c.Close()
	cc.upMu.Lock()
	cc.closed = true
	if cc.up != nil {
		cc.up.cut.Store(true) // before the deadline: see upConn.recut
		cc.up.c.SetDeadline(time.Unix(1, 0))
	}
	cc.upMu.Unlock()
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

// ErrServerClosed is what ServeConn returns for a connection given after Shutdown or Close.
var ErrServerClosed = errors.New("httpfwd: server closed")

// ServeConn serves c until it closes, times out, asks to close, or is handed to Fallback. It
// returns when done with c (c is then closed, or owned by Fallback).
func (s *Server) ServeConn(c net.Conn) error {
	cc := &conn{srv: s, c: c}
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		c.Close()
		return ErrServerClosed
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
		s.ctx, s.cancel = context.WithCancel(context.Background())
	}
	cc.ctx = s.ctx
	s.conns[cc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	s.state(c, http.StateNew)
	handed := cc.serve()
	s.mu.Lock()
	delete(s.conns, cc)
	s.mu.Unlock()
	if handed {
		return nil
	}
	c.Close()
	s.state(c, http.StateClosed)
	return nil
}

func (s *Server) state(c net.Conn, st http.ConnState) {
	if s.ConnState != nil {
		s.ConnState(c, st)
	}
}

func (s *Server) maxHeader() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return DefaultMaxHeaderBytes
}

// Shutdown stops taking requests: idle connections close at once, busy ones after their current
// response. It returns when all are closed, or when ctx ends (then the rest are closed and ctx's
// error returned).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock() // every ServeConn's wg.Add is before the Wait below, or sees shutting
	s.shutting.Store(true)
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	wait := time.Millisecond
	for {
		s.closeIdle()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			s.Close()
			<-done
			return ctx.Err()
		case <-time.After(wait):
			wait = min(2*wait, 100*time.Millisecond)
		}
	}
}

// Close closes every connection at once.
func (s *Server) Close() {
	s.shutting.Store(true)
	s.mu.Lock()
	for cc := range s.conns {
		cc.cut()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
}

func (s *Server) closeIdle() {
	s.mu.Lock()
	for cc := range s.conns {
		if cc.idle.Load() {
			cc.c.Close()
		}
	}
	s.mu.Unlock()
}

// serve runs the request loop; it reports whether the connection went to Fallback.
func (cc *conn) serve() (handed bool) {
	s := cc.srv
	cc.br = readerPool.Get().(*bufio.Reader)
	fio := newFastIO(cc.c)
	cc.br.Reset(fio)
	cc.bw = writerPool.Get().(*bufio.Writer)
	cc.bw.Reset(fio)
	defer func() {
		if !handed {
			cc.br.Reset(nil)
			readerPool.Put(cc.br)
		}
		cc.bw.Reset(nil)
		writerPool.Put(cc.bw)
	}()
	if a := cc.c.RemoteAddr(); a != nil {
		cc.remote = a.String()
	}
	cc.w.cc = cc
	cc.w.hdr = http.Header{}
	for {
		if s.shutting.Load() {
			return false
		}
		cc.idle.Store(true)
		if s.shutting.Load() { // Shutdown's closeIdle may have run before idle was set
			return false
		}
		if s.IdleTimeout > 0 {
			cc.rdl.set(time.Now().Add(s.IdleTimeout), slackFor(s.IdleTimeout), cc.c.SetReadDeadline)
		}
		if _, err := cc.br.Peek(1); err != nil {
			return false
		}
		cc.idle.Store(false)
		s.state(cc.c, http.StateActive)
		var err error
		cc.head, err = readHead(cc.br, s.maxHeader(), cc.head)
		if err != nil {
			cc.reject(err)
			return false
		}
		if s.Raw != nil {
			// The raw path's strings view the head's buffer: they live until the next
			// request is read, and the request and its strings only until ServeRaw returns.
			if r, ok := cc.rawRequest(bytesView(cc.head)); ok {
				if handled, keep := cc.serveRaw(r); handled {
					if !keep {
						return false
					}
					s.state(cc.c, http.StateIdle)
					continue
				}
			}
		}
		req, fr, err := cc.parse(string(cc.head))
		if err == errHandOver {
			if s.Fallback == nil {
				cc.reject(errNotImplemented)
				return false
			}
			if cc.bw.Flush() != nil {
				return false
			}
			cc.handOver()
			return true
		}
		if err != nil {
			cc.reject(err)
			return false
		}
		if !cc.serveRequest(req, fr) {
			return false
		}
		s.state(cc.c, http.StateIdle)
	}
}

var (
	errHandOver       = errors.New("httpfwd: hand over")
	errNotImplemented = errors.New("httpfwd: not implemented")
)

// parse makes the request of the head just read.
func (cc *conn) parse(hs string) (*http.Request, framing, error) {
	var fr framing
	f, err := splitHead(hs, cc.lines)
	cc.lines = f.lines
	if err != nil {
		return nil, fr, err
	}
	rl, err := parseRequestLine(f.start)
	if err != nil {
		return nil, fr, err
	}
	if rl.major == 2 || rl.method == http.MethodConnect {
		return nil, fr, errHandOver
	}
	h, err := parseHeader(f.lines)
	if err != nil {
		return nil, fr, err
	}
	if _, ok := h["Upgrade"]; ok {
		return nil, fr, errHandOver
	}
	if fr, err = requestFraming(h); err != nil {
		return nil, fr, err
	}
	u, err := parseTarget(rl.target)
	if err != nil {
		return nil, fr, errMalformed
	}
	host := u.Host
	hv, hasHost := h["Host"]
	switch {
	case len(hv) > 1:
		return nil, fr, errMalformed
	case !hasHost && rl.minor >= 1:
		return nil, fr, errMalformed // HTTP/1.1 requires Host (RFC 9112 3.2)
	case host == "" && hasHost:
		host = hv[0]
	}
	if hasHost {
		delete(h, "Host")
	}
	if !validHost(host) {
		return nil, fr, errMalformed
	}
	req := &http.Request{Method: rl.method, URL: u, Proto: rl.proto, ProtoMajor: rl.major, ProtoMinor: rl.minor,
		Header: h, Host: host, RemoteAddr: cc.remote, RequestURI: rl.target, ContentLength: fr.length}
	if rl.minor == 0 {
		req.Close = !connectionHas(h, "keep-alive")
	} else {
		req.Close = connectionHas(h, "close")
	}
	if fr.chunked {
		req.TransferEncoding = []string{"chunked"}
	}
	if cc.ctx != nil {
		req = req.WithContext(cc.ctx)
	}
	return req, fr, nil
}

// parseTarget parses the request target: origin form ("/path?q"), absolute form, or "*".
func parseTarget(t string) (*url.URL, error) {
	if t[0] == '/' {
		path, q, _ := strings.Cut(t, "?")
		if !strings.ContainsAny(path, "%#") {
			return &url.URL{Path: path, RawQuery: q}, nil
		}
	}
	if t == "*" {
		return &url.URL{Path: "*"}, nil
	}
	return url.ParseRequestURI(t)
}

func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		if c := h[i]; c <= ' ' || c == 0x7f || c == '/' || c == '\\' || c == '?' || c == '#' || c == '@' {
			return false
		}
	}
	return true
}

// reject answers a request the server cannot read, then the connection closes. A connection that
// ended or timed out gets nothing.
func (cc *conn) reject(err error) {
	code := http.StatusBadRequest
	switch {
	case errors.Is(err, errTooLarge):
		code = http.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, errVersion):
		code = http.StatusHTTPVersionNotSupported
	case errors.Is(err, errTransferEncoding), errors.Is(err, errNotImplemented):
		code = http.StatusNotImplemented
	case errors.Is(err, errMalformed):
	default:
		return // read error: nothing to answer
	}
	text := http.StatusText(code)
	cc.c.SetWriteDeadline(time.Now().Add(time.Second))
	io.WriteString(cc.c, "HTTP/1.1 "+itoa(code)+" "+text+"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "+itoa(len(text)+1)+"\r\n\r\n"+text+"\n")
}

// handOver gives the connection to Fallback with the head and whatever was read after it put
// back in front.
func (cc *conn) handOver() {
	s := cc.srv
	n := cc.br.Buffered()
	pre := make([]byte, len(cc.head)+n)
	copy(pre, cc.head)
	rest, _ := cc.br.Peek(n)
	copy(pre[len(cc.head):], rest)
	cc.br.Reset(nil)
	readerPool.Put(cc.br)
	cc.c.SetReadDeadline(time.Time{})
	s.state(cc.c, http.StateHijacked)
	s.Fallback(&prefixConn{Conn: cc.c, pre: pre})
}

// prefixConn reads pre before the connection's own bytes.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite passes a half-close on when the connection can do it.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// serveRequest runs the handler for one request and finishes its response; it reports whether
// the connection can take another request.
func (cc *conn) serveRequest(req *http.Request, fr framing) (keep bool) {
	s := cc.srv
	w := &cc.w
	w.reset(req)
	var b *body
	if fr.chunked || fr.length > 0 {
		b = newBody(cc.br, fr)
		b.trailer = &req.Trailer
		if s.IdleTimeout > 0 {
			b.conn, b.idle = cc.c, s.IdleTimeout
			cc.rdl.forget()
		}
		if req.ProtoMinor >= 1 && strings.EqualFold(firstValue(req.Header, "Expect"), "100-continue") {
			w.expectContinue = true
			b.before = w.sendContinue
		}
		req.Body = b
	} else {
		req.Body = http.NoBody
	}
	if _, ok := req.Header["Expect"]; ok && !w.expectContinue && req.ProtoMinor >= 1 {
		if !strings.EqualFold(firstValue(req.Header, "Expect"), "100-continue") {
			w.hdr.Set("Connection", "close")
			w.WriteHeader(http.StatusExpectationFailed)
			w.finish()
			cc.bw.Flush()
			return false
		}
	}
	if !cc.runHandler(w, req) {
		return false
	}
	keep = !req.Close && !w.closeAfter
	if b != nil && !b.complete() {
		switch {
		case w.expectContinue && !w.continueSent:
			keep = false // the client may or may not send the body: the connection cannot go on
			w.closeAfter = true
		default:
			n, err := io.CopyN(io.Discard, b, maxDrainBytes+1)
			if err != io.EOF || n > maxDrainBytes {
				keep = false
				w.closeAfter = true
			}
		}
	}
	if !keep {
		w.closeAfter = true
	}
	w.finish()
	if w.aborted {
		return false
	}
	if err := cc.bw.Flush(); err != nil {
		return false
	}
	return keep
}

func firstValue(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// runHandler calls the handler; a panic ends the connection (http.ErrAbortHandler silently, as
// net/http does: the response is cut so that it does not look complete).
func (cc *conn) runHandler(w *respWriter, req *http.Request) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler && cc.srv.Log != nil {
				cc.srv.Log.Error("httpfwd: handler panic", "remote", cc.remote, "panic", p)
			}
			if p != http.ErrAbortHandler && !w.headSent && !w.aborted {
				// Nothing reached the client yet: tell it.
				w.hdr = http.Header{}
				w.hdr.Set("Content-Type", "text/plain; charset=utf-8")
				w.closeAfter = true
				w.wroteHeader = false
				w.pend = w.pend[:0]
				w.WriteHeader(http.StatusInternalServerError)
				w.finish()
			}
			cc.bw.Flush()
			ok = false
		}
	}()
	cc.srv.Handler.ServeHTTP(w, req)
	return true
}
