package scproxy

import (
	"net"
	"net/http"
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
