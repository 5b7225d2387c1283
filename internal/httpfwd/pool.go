package httpfwd

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Pool forwards HTTP/1.1 requests to backends over keep-alive connections it keeps per address.
// A request is written and its response read by the caller's own goroutine: no reader and writer
// goroutines per connection and no hand-offs between them, as http.Transport has.
type Pool struct {
	// IdleFor is how long an unused connection stays in the pool (0: no limit).
	IdleFor time.Duration
	// ReadIdle bounds the wait for the response head and for each read of its body (0: only
	// the request context's deadline).
	ReadIdle time.Duration
	// DialTimeout bounds a connection's set-up (default 10 s).
	DialTimeout time.Duration
	// MaxIdlePerAddr bounds the idle connections kept per address (default 1024).
	MaxIdlePerAddr int

	mu     sync.Mutex
	idle   map[string][]*upConn
	closed bool
}

type upConn struct {
	c        net.Conn
	fio      io.ReadWriter // what br and bw read and write (newFastIO)
	br       *bufio.Reader
	bw       *bufio.Writer
	head     []byte
	reused   bool
	lastUsed time.Time

	// The raw path's (Exchange).
	rdl, wdl lazyDeadline
	cut      atomic.Bool // Server.Close cut the exchange: its deadlines stay in the past
	lines    []string
	resp     Response
}

var upReaders, upWriters sync.Pool

// get returns an idle connection to addr or dials one, by deadline when not zero.
func (p *Pool) get(ctx context.Context, addr string, now, deadline time.Time) (*upConn, error) {
	p.mu.Lock()
	for {
		list := p.idle[addr]
		if len(list) == 0 {
			break
		}
		uc := list[len(list)-1]
		list[len(list)-1] = nil
		p.idle[addr] = list[:len(list)-1]
		idle := now.Sub(uc.lastUsed)
		if p.IdleFor > 0 && idle > p.IdleFor {
			p.mu.Unlock()
			uc.close()
			p.mu.Lock()
			continue
		}
		p.mu.Unlock()
		// A connection idle for a while may have been closed by the backend's keep-alive
		// timeout: look (one non-blocking peek) rather than find out after sending.
		if idle >= staleCheckAfter && !peerOpen(uc.fio) {
			uc.close()
			p.mu.Lock()
			continue
		}
		uc.reused = true
		return uc, nil
	}
	p.mu.Unlock()
	dt := p.DialTimeout
	if dt <= 0 {
		dt = 10 * time.Second
	}
	d := net.Dialer{Timeout: dt, Deadline: deadline, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			return nil, err
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	fio := newFastIO(c)
	uc := &upConn{c: c, fio: fio}
	if br, ok := upReaders.Get().(*bufio.Reader); ok {
		br.Reset(fio)
		uc.br = br
	} else {
		uc.br = bufio.NewReaderSize(fio, 16<<10)
	}
	if bw, ok := upWriters.Get().(*bufio.Writer); ok {
		bw.Reset(fio)
		uc.bw = bw
	} else {
		uc.bw = bufio.NewWriterSize(fio, 8<<10)
	}
	return uc, nil
}

func (p *Pool) put(addr string, uc *upConn, now time.Time) {
	uc.lastUsed = now
	max := p.MaxIdlePerAddr
	if max <= 0 {
		max = 1024
	}
	p.mu.Lock()
	if p.closed || len(p.idle[addr]) >= max {
		p.mu.Unlock()
		uc.close()
		return
	}
	if p.idle == nil {
		p.idle = map[string][]*upConn{}
	}
	p.idle[addr] = append(p.idle[addr], uc)
	p.mu.Unlock()
}

// CloseIdle closes the idle connections; the pool stays usable.
func (p *Pool) CloseIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, list := range idle {
		for _, uc := range list {
			uc.close()
		}
	}
}

// Close closes the idle connections; connections in use close when their response ends.
func (p *Pool) Close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, list := range idle {
		for _, uc := range list {
			uc.close()
		}
	}
}

func (uc *upConn) close() {
	uc.c.Close()
	if uc.br != nil {
		uc.br.Reset(nil)
		upReaders.Put(uc.br)
		uc.br = nil
	}
	if uc.bw != nil {
		uc.bw.Reset(nil)
		upWriters.Put(uc.bw)
		uc.bw = nil
	}
}

// staleCheckAfter is how long a pooled connection must have been idle before it is checked for a
// close by its backend before reuse (keep-alive timeouts are seconds; a younger one is taken as
// it is). A variable for tests.
var staleCheckAfter = time.Second

// StaleConn reports whether err is what a keep-alive connection the backend already closed gives.
func StaleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// IsDialError reports whether err is a failure to connect: nothing was sent.
func IsDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// RoundTrip sends req to addr on a pooled connection and reads the response's head (1xx
// responses other than 101 are skipped). A reused connection found closed is replaced by a fresh
// one, once, when replayable (the body can be sent again). A failure to connect is a
// *net.OpError with Op "dial". ctx bounds the round trip and the body's reads (its deadline is
// the connection's; its cancellation cuts the connection).
//
// The request is written as given: req.Header without Host, Content-Length, Transfer-Encoding and
// Connection (the caller has removed hop-by-hop fields), then Host (req.Host), framing from
// req.ContentLength (-1: chunked, with req.Trailer after the body) and the body. The target is
// req.RequestURI when it is in origin form, else req.URL.RequestURI(). A User-Agent of "" is
// left out.
//
// The response's Body must be closed; read to its end, it gives the connection back to the pool
// (unless either side asked to close), closed before, it closes the connection.
func (p *Pool) RoundTrip(ctx context.Context, addr string, req *http.Request, replayable bool) (*http.Response, error) {
	for try := 0; ; try++ {
		now := time.Now()
		uc, err := p.get(ctx, addr, now, time.Time{})
		if err != nil {
			return nil, err
		}
		uc.rdl.forget() // set here without them
		uc.wdl.forget()
		limit, _ := ctx.Deadline()
		dl := limit
		if p.ReadIdle > 0 {
			if d := now.Add(p.ReadIdle); dl.IsZero() || d.Before(dl) {
				dl = d
			}
		}
		uc.c.SetReadDeadline(dl)
		uc.c.SetWriteDeadline(limit) // zero clears one Exchange left
		stop := func() bool { return true }
		if ctx.Done() != nil {
			c := uc.c
			stop = context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
		}
		err = writeRequest(uc.bw, req)
		var resp *http.Response
		if err == nil {
			resp, err = readResponse(uc, req)
		}
		if err == nil {
			b := resp.Body.(*body)
			keep := !resp.Close && !req.Close
			if p.ReadIdle > 0 {
				b.conn, b.idle, b.limit, b.extended = uc.c, p.ReadIdle, limit, now
			}
			pb := &pooledBody{b: b, uc: uc, stop: stop}
			b.atEOF = func() {
				pb.done = true
				if stop() && keep {
					uc.c.SetDeadline(time.Time{})
					p.put(addr, uc, time.Now())
				} else {
					uc.close()
				}
			}
			resp.Body = pb
			if b.complete() {
				b.atEOF()
				b.atEOF = nil
			}
			return resp, nil
		}
		stop()
		reused := uc.reused
		uc.close()
		if reused && replayable && try == 0 && StaleConn(err) && ctx.Err() == nil {
			continue
		}
		return nil, err
	}
}

// pooledBody is a response body on a pooled connection.
type pooledBody struct {
	b    *body
	uc   *upConn
	stop func() bool
	done bool
}

func (b *pooledBody) Read(p []byte) (int, error) { return b.b.Read(p) }

func (b *pooledBody) Close() error {
	if !b.done {
		b.done = true
		b.b.Close()
		b.b.atEOF = nil
		b.stop()
		b.uc.close()
	}
	return nil
}

var errBodyLength = errors.New("httpfwd: request body shorter than its Content-Length")

// writeRequest writes req's head and body and flushes.
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	target := req.RequestURI
	if target == "" || target[0] != '/' {
		target = req.URL.RequestURI()
	}
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(target)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	host := req.Host
	if host == "" && req.URL != nil {
		host = req.URL.Host
	}
	bw.WriteString(host)
	bw.WriteString("\r\n")
	for k, vs := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Trailer":
			continue
		case "User-Agent":
			if len(vs) == 1 && vs[0] == "" {
				continue
			}
		}
		for _, v := range vs {
			writeField(bw, k, v)
		}
	}
	hasBody := req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0
	chunked := hasBody && req.ContentLength < 0
	switch {
	case chunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
		if len(req.Trailer) > 0 {
			keys := make([]string, 0, len(req.Trailer))
			for k := range req.Trailer {
				keys = append(keys, k)
			}
			writeField(bw, "Trailer", strings.Join(keys, ","))
		}
	case hasBody:
		var b [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(b[:0], req.ContentLength, 10))
		bw.WriteString("\r\n")
	case methodWantsLength(req.Method):
		bw.WriteString("Content-Length: 0\r\n")
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return err
	}
	switch {
	case chunked:
		if err := writeChunked(bw, req.Body); err != nil {
			return err
		}
		bw.WriteString("0\r\n")
		for k, vs := range req.Trailer {
			for _, v := range vs {
				writeField(bw, k, v)
			}
		}
		bw.WriteString("\r\n")
	case hasBody:
		n, err := io.CopyN(bw, req.Body, req.ContentLength)
		if err != nil {
			if n < req.ContentLength && (err == io.EOF) {
				return errBodyLength
			}
			return err
		}
	}
	return bw.Flush()
}

// methodWantsLength: methods whose requests carry a body by convention say "Content-Length: 0"
// when they have none, as net/http does.
func methodWantsLength(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}

var chunkBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func writeChunked(bw *bufio.Writer, r io.Reader) error {
	bp := chunkBufs.Get().(*[]byte)
	defer chunkBufs.Put(bp)
	buf := *bp
	for {
		n, err := r.Read(buf)
		if n > 0 {
			var hb [20]byte
			bw.Write(append(strconv.AppendInt(hb[:0], int64(n), 16), '\r', '\n'))
			bw.Write(buf[:n])
			if _, werr := bw.WriteString("\r\n"); werr != nil {
				return werr
			}
			if err == nil {
				// A stream: what came so far goes out now.
				if werr := bw.Flush(); werr != nil {
					return werr
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// maxResponseHead bounds a backend's response head.
const maxResponseHead = 1 << 20

// readResponse reads the final response's head and sets up its body.
func readResponse(uc *upConn, req *http.Request) (*http.Response, error) {
	for {
		var err error
		uc.head, err = readHead(uc.br, maxResponseHead, uc.head)
		if err != nil {
			return nil, errUnexpectedEOF(err)
		}
		f, err := splitHead(string(uc.head), nil)
		if err != nil {
			return nil, err
		}
		sl, err := parseStatusLine(f.start)
		if err != nil {
			return nil, err
		}
		h, err := parseHeader(f.lines)
		if err != nil {
			return nil, err
		}
		if sl.code/100 == 1 && sl.code != http.StatusSwitchingProtocols {
			continue
		}
		fr, err := responseFraming(h, sl.code, req.Method == http.MethodHead)
		if err != nil {
			return nil, err
		}
		resp := &http.Response{Status: sl.status, StatusCode: sl.code, Proto: sl.proto, ProtoMajor: sl.major,
			ProtoMinor: sl.minor, Header: h, ContentLength: fr.length, Request: req}
		if req.Method == http.MethodHead {
			resp.ContentLength = -1
			if cl, ok := h["Content-Length"]; ok {
				if n, err := contentLength(cl); err == nil {
					resp.ContentLength = n
				}
			}
		}
		if fr.chunked {
			resp.TransferEncoding = []string{"chunked"}
			delete(h, "Content-Length")
		}
		if sl.minor == 0 {
			resp.Close = !connectionHas(h, "keep-alive")
		} else {
			resp.Close = connectionHas(h, "close")
		}
		if fr.length < 0 && !fr.chunked {
			resp.Close = true // delimited by the connection's end
		}
		if tr := h["Trailer"]; len(tr) > 0 && fr.chunked {
			resp.Trailer = http.Header{}
			for _, v := range tr {
				for _, k := range strings.Split(v, ",") {
					if k = strings.TrimSpace(k); k != "" {
						resp.Trailer[http.CanonicalHeaderKey(k)] = nil
					}
				}
			}
		}
		b := newBody(uc.br, fr)
		b.trailer = &resp.Trailer
		resp.Body = b
		return resp, nil
	}
}
