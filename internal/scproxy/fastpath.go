package scproxy

import (
	"errors"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/berthdev/berth/internal/httpfwd"
)

// The HTTP/1.1 path (listeners of protocol http) goes through neither
// net/http's server nor http.Transport: internal/httpfwd serves the
// client connections and forwards over a pool of keep-alive connections per
// listener, written and read by the handler's own goroutine. Requests
// httpfwd does not serve itself (Upgrade, h2c with prior knowledge) reach
// the listener's http.Server through an httpfwd.ConnQueue. h2c and gRPC listeners
// go through net/http on both sides.

// fwdConnState counts the connections httpfwd serves; one it hands over is
// counted closed by the fallback server.
func (l *listener) fwdConnState(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		l.st.connOpened()
	case http.StateClosed:
		l.st.connClosed()
	}
}

func (l *listener) fallbackConnState(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateClosed, http.StateHijacked:
		l.st.connClosed()
	}
}

// serveFwd accepts the connections of an HTTP/1.1 listener.
func (l *listener) serveFwd() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.fwd.ServeConn(c)
		}()
	}
}

// ServeRaw forwards a request httpfwd's raw path took (plain HTTP/1.1, no
// body or a small one read whole) with ServeHTTP's retries, ejection,
// timeout, stats and answers, as bytes: no header maps either way.
func (l *listener) ServeRaw(w *httpfwd.RawWriter, r *httpfwd.Request) bool {
	start := time.Now()
	var deadline time.Time
	if l.perRequest > 0 {
		deadline = start.Add(l.perRequest)
	}
	body, err := r.Body()
	if err != nil {
		l.st.request(http.StatusBadRequest, 0, -1)
		w.CloseAfter()
		w.Respond(http.StatusBadRequest, "text/plain; charset=utf-8", "", []byte("request body: "+err.Error()+"\n"))
		return true
	}
	head := r.ForwardHead(nil, nil)
	var tried []*endpoint
	var lastErr error
	lastKind := failOther
	for attempt := 0; attempt < MaxAttempts; attempt++ {
		now := time.Now()
		if !deadline.IsZero() && !now.Before(deadline) {
			lastKind = failTimeout
			break
		}
		ep := l.cl.pick(now, tried)
		if ep == nil {
			break
		}
		ep.outstanding.Add(1)
		resp, err := l.pool.Exchange(r, ep.addr, head, body, deadline)
		if err != nil {
			ep.outstanding.Add(-1)
			lastErr, lastKind = err, classifyRaw(err, deadline)
			l.failed(ep, lastKind, err)
			if !(lastKind == failConnect || lastKind == failReset && httpfwd.Idempotent(r.Method)) {
				break
			}
			tried = append(tried, ep)
			continue
		}
		l.answered(ep, resp.StatusCode)
		if resp.StatusCode == http.StatusServiceUnavailable && attempt < MaxAttempts-1 && (deadline.IsZero() || time.Now().Before(deadline)) {
			resp.Discard(64 << 10)
			ep.outstanding.Add(-1)
			tried = append(tried, ep)
			continue
		}
		rt := time.Since(start)
		code := resp.StatusCode // resp is not to be used after Relay: its connection may serve another request
		n, _ := resp.Relay(w, "")
		ep.outstanding.Add(-1)
		l.st.request(code, n+int64(len(body)), rt)
		return true
	}
	code, msg := failureAnswer(lastKind, lastErr, lastKind == failTimeout)
	l.st.request(code, 0, -1)
	w.Respond(code, "text/plain", "Server: berth-scproxy\r\n", []byte(msg+"\n"))
	return true
}

// classifyRaw is classify for the raw path's errors.
func classifyRaw(err error, deadline time.Time) failKind {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) || !deadline.IsZero() && !time.Now().Before(deadline):
		return failTimeout
	case httpfwd.IsDialError(err):
		return failConnect
	}
	return failReset
}
