package httpfwd

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
)

// Response is a backend's response to Exchange: its head read, its body not yet. It is valid until
// Relay, Discard or Close, one of which must be called.
type Response struct {
	StatusCode int

	p      *Pool
	addr   string
	uc     *upConn
	cc     *conn    // the client's connection, which knows uc while the exchange lasts
	status string   // the status line after the version: "200 OK"
	lines  []string // header lines
	fr     framing
	keep   bool // the backend's connection can carry another request after this body
	isHead bool
	// namesFields: a Connection field lists options other than close and keep-alive (field
	// names, dropped by Relay).
	namesFields bool
	until       time.Time // the exchange's deadline (zero: none)
	done        bool
}

var errRawStatus = errors.New("httpfwd: 101 Switching Protocols to a request without Upgrade")

// Exchange sends req (head as Request.AppendHead makes it, then body) to addr over a pooled
// keep-alive connection and reads the response's head; 1xx responses are skipped. A pooled
// connection idle for a second or more is peeked for its backend's close before use; one found
// closed only by the exchange is replaced by a fresh one, once, unless the request went out and
// its method is not idempotent (the backend may have run it). A failure to connect is a
// *net.OpError with Op "dial"; nothing was sent then. deadline, when not zero, bounds the whole
// exchange, body included (it is kept to within a 32nd of the time left, at most 250 ms late);
// ReadIdle bounds each wait for the backend.
func (p *Pool) Exchange(req *Request, addr string, head, body []byte, deadline time.Time) (*Response, error) {
	cc := req.cc
	for try := 0; ; try++ {
		now := time.Now()
		uc, err := p.get(context.Background(), addr, now, deadline)
		if err != nil {
			return nil, err
		}
		if !cc.setUpstream(uc) {
			uc.close()
			return nil, ErrServerClosed
		}
		r, sent, err := p.exchangeOn(uc, addr, req.Method, head, body, now, deadline)
		if err == nil {
			r.cc = cc
			return r, nil
		}
		cc.setUpstream(nil)
		reused := uc.reused
		uc.close()
		// A kept-alive connection the backend had closed: again on a fresh one, unless the
		// request went out and is not idempotent (the backend may have run it: as
		// http.Transport, only replayable requests are sent twice).
		if reused && try == 0 && StaleConn(err) && (!sent || Idempotent(req.Method)) &&
			(deadline.IsZero() || time.Now().Before(deadline)) {
			continue
		}
		return nil, err
	}
}

// exchangeOn sends the request on uc and reads the response's head; sent reports whether the
// request was written out whole (a failure after it may be the backend's, having run it).
func (p *Pool) exchangeOn(uc *upConn, addr, method string, head, body []byte, now, deadline time.Time) (_ *Response, sent bool, _ error) {
	var slack time.Duration
	if !deadline.IsZero() {
		slack = slackFor(deadline.Sub(now))
	}
	uc.wdl.set(deadline, slack, uc.c.SetWriteDeadline)
	uc.extendRead(p.ReadIdle, deadline, now)
	uc.recut()
	uc.bw.Write(head)
	uc.bw.Write(body)
	if err := uc.bw.Flush(); err != nil {
		return nil, false, err
	}
	for {
		var err error
		uc.head, err = readHead(uc.br, maxResponseHead, uc.head)
		if err != nil {
			return nil, true, errUnexpectedEOF(err)
		}
		// The response's strings view the head's buffer, read again only when the
		// connection carries its next exchange, after Relay, Discard or Close.
		f, err := splitHead(bytesView(uc.head), uc.lines)
		uc.lines = f.lines
		if err != nil {
			return nil, true, err
		}
		sl, err := parseStatusLine(f.start)
		if err != nil {
			return nil, true, err
		}
		if sl.code == http.StatusSwitchingProtocols {
			return nil, true, errRawStatus
		}
		if sl.code/100 == 1 {
			continue
		}
		r := &uc.resp
		*r = Response{StatusCode: sl.code, p: p, addr: addr, uc: uc, status: sl.status, lines: f.lines,
			isHead: method == http.MethodHead, until: deadline, keep: sl.minor >= 1}
		if err := r.scan(sl.minor); err != nil {
			return nil, true, err
		}
		return r, true, nil
	}
}

// scan validates the header lines and reads the framing and persistence of the response.
func (r *Response) scan(minor int) error {
	var te, cl string
	hasTE, hasCL := false, false
	for _, l := range r.lines {
		colon := strings.IndexByte(l, ':')
		if colon <= 0 || !validToken(l[:colon]) {
			return errMalformed
		}
		name, v := l[:colon], trimOWS(l[colon+1:])
		if !validValue(v) {
			return errMalformed
		}
		switch {
		case strings.EqualFold(name, "Transfer-Encoding"):
			te, hasTE = v, true // the last one decides (a list over several fields)
		case strings.EqualFold(name, "Content-Length"):
			if hasCL && v != cl {
				if n, err := contentLength([]string{cl, v}); err != nil || n < 0 {
					return errMalformed
				}
			}
			cl, hasCL = v, true
		case strings.EqualFold(name, "Connection"):
			for v != "" {
				var opt string
				opt, v, _ = strings.Cut(v, ",")
				switch opt = trimOWS(opt); {
				case strings.EqualFold(opt, "close"):
					r.keep = false
				case strings.EqualFold(opt, "keep-alive"):
					if minor == 0 {
						r.keep = true
					}
				case opt != "":
					r.namesFields = true
				}
			}
		}
	}
	code := r.StatusCode
	switch {
	case r.isHead || code == http.StatusNoContent || code == http.StatusNotModified:
		r.fr = framing{}
	case hasTE:
		last := te
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		r.fr = framing{length: -1, chunked: strings.EqualFold(trimOWS(last), "chunked")}
	case hasCL:
		n, ok := decimal(cl)
		if !ok {
			var err error
			if n, err = contentLength([]string{cl}); err != nil {
				return err
			}
		}
		r.fr = framing{length: n}
	default:
		r.fr = framing{length: -1}
	}
	if r.fr.length < 0 && !r.fr.chunked {
		r.keep = false // delimited by the connection's end
	}
	return nil
}

// Idempotent reports whether requests of method m may be sent twice (RFC 9110 9.2.2).
func Idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// decimal reads a plain non-negative decimal number of at most 18 digits.
func decimal(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// Header returns the first value of the response's field name (case-insensitive).
func (r *Response) Header(name string) (string, bool) { return lineValue(r.lines, name) }

// Relay writes the response to the client through w: its status line as HTTP/1.1, its header
// fields but the hop-by-hop ones (Transfer-Encoding excepted: the body is relayed as it came)
// and those its Connection names, extra (complete "Name: value\r\n"
// lines), then its body as it comes (flushed whenever the backend has nothing more buffered). The
// backend's connection goes back to the pool when the body was read to its end. It returns the
// body bytes relayed. An error after the head was written cuts the client's response: its
// connection is closed.
func (r *Response) Relay(w *RawWriter, extra string) (int64, error) {
	r.done = true
	uc := r.uc
	bw := w.bw
	w.wrote = true
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(r.status)
	bw.WriteString("\r\n")
	for _, l := range r.lines {
		name := l[:strings.IndexByte(l, ':')]
		// Transfer-Encoding passes: the body goes on as it came, codings and chunks.
		te := strings.EqualFold(name, "Transfer-Encoding") && r.StatusCode != http.StatusNoContent // never on a 204 (RFC 9112 6.1)
		if isHopName(name) && !te || r.namesFields && r.connectionNames(name) || r.fr.chunked && strings.EqualFold(name, "Content-Length") {
			continue
		}
		bw.WriteString(l)
		bw.WriteString("\r\n")
	}
	bw.WriteString(extra)
	if r.fr.length < 0 && !r.fr.chunked {
		w.closeAfter = true
	}
	if w.closeAfter {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	var n int64
	var err error
	switch {
	case r.fr.chunked:
		n, err = r.relayChunked(bw)
	case r.fr.length < 0:
		n, err = r.relayN(bw, -1)
	default:
		n, err = r.relayN(bw, r.fr.length)
	}
	if err != nil {
		w.aborted = true
		r.cc.setUpstream(nil)
		uc.close()
		return n, err
	}
	r.release()
	return n, nil
}

// Discard reads and drops a body of at most max bytes and gives the connection back; a longer or
// unknown-length body closes it.
func (r *Response) Discard(max int64) {
	r.done = true
	r.cc.setUpstream(nil)
	if r.fr.chunked || r.fr.length < 0 || r.fr.length > max {
		r.uc.close()
		return
	}
	if r.fr.length > 0 {
		r.uc.extendRead(r.p.ReadIdle, r.until, time.Now())
		if _, err := r.uc.br.Discard(int(r.fr.length)); err != nil {
			r.uc.close()
			return
		}
	}
	r.release()
}

// Close drops the response and closes its connection, unless Relay or Discard ran.
func (r *Response) Close() {
	if !r.done {
		r.done = true
		r.cc.setUpstream(nil)
		r.uc.close()
	}
}

func (r *Response) release() {
	if r.cc.setUpstream(nil) && r.keep { // not cut by Server.Close
		r.p.put(r.addr, r.uc, time.Now())
	} else {
		r.uc.close()
	}
}

// relayN copies n body bytes (n < 0: until the backend closes) to bw.
func (r *Response) relayN(bw *bufio.Writer, n int64) (int64, error) {
	uc := r.uc
	var done int64
	for n < 0 || done < n {
		if uc.br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return done, err
			}
			uc.extendRead(r.p.ReadIdle, r.until, time.Now())
			if _, err := uc.br.Peek(1); err != nil {
				if n < 0 && err == io.EOF {
					return done, nil
				}
				return done, errUnexpectedEOF(err)
			}
		}
		k := uc.br.Buffered()
		if n >= 0 && int64(k) > n-done {
			k = int(n - done)
		}
		b, _ := uc.br.Peek(k)
		if _, err := bw.Write(b); err != nil {
			return done, err
		}
		uc.br.Discard(k)
		done += int64(k)
	}
	return done, nil
}

// maxChunkLine bounds a chunk-size line (with extensions) and each trailer line.
const maxChunkLine = 4 << 10

// relayChunked copies a chunked body as it is, chunk-size lines, extensions and trailer section
// included, checking its syntax. Lines a backend ends with a bare LF (which RFC 9112 lets a
// recipient accept) go on ending with CRLF, so that a strict client reads the same framing.
func (r *Response) relayChunked(bw *bufio.Writer) (int64, error) {
	var total int64
	for {
		line, err := r.line(bw)
		if err != nil {
			return total, err
		}
		size, err := chunkSize(line)
		if err != nil {
			return total, err
		}
		if err := writeLine(bw, line); err != nil {
			return total, err
		}
		if size == 0 {
			// Trailer section, up to and including the empty line.
			for lines := 0; ; lines++ {
				tl, err := r.line(bw)
				if err != nil {
					return total, err
				}
				if lines > 64 {
					return total, errTooLarge
				}
				if err := writeLine(bw, tl); err != nil {
					return total, err
				}
				if len(tl) == 1 || len(tl) == 2 && tl[0] == '\r' {
					return total, nil // the empty line
				}
			}
		}
		n, err := r.relayN(bw, size)
		total += n
		if err != nil {
			return total, err
		}
		end, err := r.line(bw)
		if err != nil {
			return total, err
		}
		if len(end) > 2 || end[len(end)-1] != '\n' || len(end) == 2 && end[0] != '\r' {
			return total, errMalformed
		}
		bw.WriteString("\r\n")
	}
}

// writeLine writes a line read up to its LF, ended with CRLF.
func writeLine(bw *bufio.Writer, l []byte) error {
	l = l[:len(l)-1]
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	bw.Write(l)
	_, err := bw.WriteString("\r\n")
	return err
}

// line reads one line of a chunked body (flushing bw before waiting for the backend); it is
// valid until the next read.
func (r *Response) line(bw *bufio.Writer) ([]byte, error) {
	uc := r.uc
	if uc.br.Buffered() == 0 {
		if err := bw.Flush(); err != nil {
			return nil, err
		}
		uc.extendRead(r.p.ReadIdle, r.until, time.Now())
	}
	l, err := uc.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(l) > maxChunkLine {
		return nil, errTooLarge
	}
	if err != nil {
		return nil, errUnexpectedEOF(err)
	}
	return l, nil
}

// chunkSize reads a chunk-size line: hexadecimal digits, optional extensions after ';'.
func chunkSize(line []byte) (int64, error) {
	var n int64
	digits := 0
	for _, c := range line {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			if digits == 0 || !(c == ';' || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
				return 0, errMalformed
			}
			return n, nil
		}
		if digits++; digits > 15 {
			return 0, errMalformed
		}
		n = n<<4 | int64(d)
	}
	return 0, errMalformed // no line end
}

// extendRead sets the read deadline for the next wait on the backend: ReadIdle from now, never
// past the exchange's deadline.
func (uc *upConn) extendRead(idle time.Duration, until, now time.Time) {
	var want time.Time
	var slack time.Duration
	if idle > 0 {
		want, slack = now.Add(idle), slackFor(idle)
	}
	if !until.IsZero() && (want.IsZero() || until.Before(want)) {
		want, slack = until, slackFor(until.Sub(now))
	}
	uc.rdl.set(want, slack, uc.c.SetReadDeadline)
	uc.recut()
}

// recut puts the past deadline back when Server.Close cut the exchange while a deadline was being
// set: the cut marks the connection before setting its deadline, and a setter checks the mark
// after setting its own, so one of the two sees the other.
func (uc *upConn) recut() {
	if uc.cut.Load() {
		uc.c.SetDeadline(time.Unix(1, 0))
	}
}

// connectionNames reports whether the response's Connection fields name the field name (as a
// field to drop; "close" and "keep-alive" are options, not fields a response would carry).
func (r *Response) connectionNames(name string) bool {
	for _, l := range r.lines {
		if v, ok := lineIs(l, "Connection"); ok && listHas(v, name) {
			return true
		}
	}
	return false
}

// listHas reports whether the comma-separated list holds name (case-insensitively).
func listHas(list, name string) bool {
	for list != "" {
		var f string
		f, list, _ = strings.Cut(list, ",")
		if strings.EqualFold(trimOWS(f), name) {
			return true
		}
	}
	return false
}
