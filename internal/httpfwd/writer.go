package httpfwd

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// pendMax is how much body a response without Content-Length holds back before its head is sent:
// a response that ends within it gets a Content-Length instead of chunked framing.
const pendMax = 4 << 10

// respWriter is the http.ResponseWriter (and http.Flusher) of one request at a time on a conn.
type respWriter struct {
	cc  *conn
	req *http.Request
	hdr http.Header

	code        int
	wroteHeader bool
	headSent    bool
	bodyless    bool  // HEAD, 1xx, 204, 304: no body on the wire
	length      int64 // declared Content-Length; -1 none
	chunked     bool
	closeDelim  bool // HTTP/1.0 client and no length: the body ends with the connection
	written     int64
	pend        []byte
	closeAfter  bool
	aborted     bool

	expectContinue bool
	continueSent   bool
}

func (w *respWriter) reset(req *http.Request) {
	clear(w.hdr)
	pend := w.pend[:0]
	*w = respWriter{cc: w.cc, req: req, hdr: w.hdr, pend: pend, length: -1}
}

func (w *respWriter) Header() http.Header { return w.hdr }

// sendContinue answers Expect: 100-continue when the handler starts reading the body.
func (w *respWriter) sendContinue() {
	if w.headSent || w.continueSent {
		return
	}
	w.continueSent = true
	w.cc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	w.cc.bw.Flush()
}

func (w *respWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 200 {
		return // informational responses from the handler are not passed on
	}
	w.wroteHeader = true
	w.code = code
	w.bodyless = w.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	if cl, ok := w.hdr["Content-Length"]; ok && len(cl) > 0 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.length = n
		} else {
			delete(w.hdr, "Content-Length")
		}
	}
	if connectionHas(w.hdr, "close") {
		w.closeAfter = true
	}
}

func (w *respWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.aborted {
		return 0, errAborted
	}
	if w.bodyless {
		w.written += int64(len(p))
		return len(p), nil
	}
	if !w.headSent {
		if w.length < 0 && len(w.pend)+len(p) <= pendMax {
			w.pend = append(w.pend, p...)
			w.written += int64(len(p))
			return len(p), nil
		}
		w.sendHead(false)
		if len(w.pend) > 0 {
			pend := w.pend
			w.pend = w.pend[:0]
			w.written -= int64(len(pend))
			if _, err := w.writeBody(pend); err != nil {
				return 0, err
			}
		}
	}
	return w.writeBody(p)
}

var errAborted = &abortError{}

type abortError struct{}

func (*abortError) Error() string { return "httpfwd: connection broken" }

func (w *respWriter) writeBody(p []byte) (int, error) {
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		return 0, http.ErrContentLength
	}
	bw := w.cc.bw
	var err error
	if w.chunked {
		if len(p) == 0 {
			return 0, nil
		}
		var hb [20]byte
		h := strconv.AppendInt(hb[:0], int64(len(p)), 16)
		h = append(h, '\r', '\n')
		bw.Write(h)
		bw.Write(p)
		_, err = bw.WriteString("\r\n")
	} else {
		_, err = bw.Write(p)
	}
	if err != nil {
		w.aborted = true
		return 0, err
	}
	w.written += int64(len(p))
	return len(p), nil
}

// Flush sends the head and what was written so far.
func (w *respWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.aborted {
		return
	}
	if !w.headSent {
		w.sendHead(false)
		if len(w.pend) > 0 {
			pend := w.pend
			w.pend = w.pend[:0]
			w.written -= int64(len(pend))
			w.writeBody(pend)
		}
	}
	if err := w.cc.bw.Flush(); err != nil {
		w.aborted = true
	}
}

// finish completes the response after the handler returned.
func (w *respWriter) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.aborted {
		return
	}
	if !w.headSent {
		w.sendHead(true)
		if len(w.pend) > 0 && !w.bodyless {
			w.cc.bw.Write(w.pend)
		}
		w.pend = w.pend[:0]
		return
	}
	if w.chunked {
		bw := w.cc.bw
		bw.WriteString("0\r\n")
		w.writeTrailers()
		bw.WriteString("\r\n")
		return
	}
	if w.length >= 0 && w.written < w.length && !w.bodyless {
		w.aborted = true // the declared length was not written: the connection cannot go on
	}
}

// writeTrailers writes the values of the fields the Trailer header declared and of fields named
// with http.TrailerPrefix.
func (w *respWriter) writeTrailers() {
	bw := w.cc.bw
	for _, decl := range w.hdr["Trailer"] {
		for _, k := range strings.Split(decl, ",") {
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			for _, v := range w.hdr[k] {
				writeField(bw, k, v)
			}
		}
	}
	for k, vs := range w.hdr {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			for _, v := range vs {
				writeField(bw, k[len(http.TrailerPrefix):], v)
			}
		}
	}
}

// sendHead writes the status line and header. final: the handler has returned, so a body held
// back is all of it.
func (w *respWriter) sendHead(final bool) {
	w.headSent = true
	bw := w.cc.bw
	req := w.req
	if w.expectContinue && !w.continueSent {
		w.closeAfter = true
	}
	h := w.hdr
	switch {
	case w.code/100 == 1 || w.code == http.StatusNoContent:
		delete(h, "Content-Length")
		delete(h, "Transfer-Encoding")
	case w.length >= 0:
	case w.code == http.StatusNotModified:
	case final && !(req.Method == http.MethodHead && len(w.pend) == 0):
		w.length = int64(len(w.pend))
		h["Content-Length"] = []string{strconv.Itoa(len(w.pend))}
	case w.bodyless:
	case req.ProtoMinor >= 1:
		w.chunked = true
		delete(h, "Content-Length")
		h["Transfer-Encoding"] = []string{"chunked"}
	default:
		w.closeDelim = true
		w.closeAfter = true
	}
	if w.closeAfter || w.cc.srv.shutting.Load() {
		w.closeAfter = true
		h["Connection"] = []string{"close"}
	} else if req.ProtoMinor == 0 {
		h["Connection"] = []string{"keep-alive"}
	}
	if _, ok := h["Date"]; !ok {
		h["Date"] = []string{httpDate()}
	}
	var line [64]byte
	l := append(line[:0], "HTTP/1.1 "...)
	l = strconv.AppendInt(l, int64(w.code), 10)
	l = append(l, ' ')
	if t := http.StatusText(w.code); t != "" {
		l = append(l, t...)
	} else {
		l = append(l, "status code "...)
		l = strconv.AppendInt(l, int64(w.code), 10)
	}
	l = append(l, '\r', '\n')
	bw.Write(l)
	for k, vs := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		for _, v := range vs {
			writeField(bw, k, v)
		}
	}
	bw.WriteString("\r\n")
}

type stringWriter interface {
	WriteString(string) (int, error)
}

// writeField writes "k: v\r\n", with any line break in v turned into a space.
func writeField(bw stringWriter, k, v string) {
	if strings.ContainsAny(k, "\r\n:") || k == "" {
		return
	}
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// httpDate is the Date header value, formatted once a second.
func httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.s
	}
	d := &cachedDate{sec: sec, s: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.s
}

type cachedDate struct {
	sec int64
	s   string
}

var dateCache atomic.Pointer[cachedDate]

func itoa(n int) string { return strconv.Itoa(n) }
