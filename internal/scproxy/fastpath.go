package scproxy

import (
	"net"
	"net/http"
	"sync"
)

// The HTTP/1.1 path (listeners of protocol http) goes through neither
// net/http's server nor http.Transport: internal/httpfwd serves the
// client connections and forwards over a pool of keep-alive connections per
// listener, written and read by the handler's own goroutine. Requests
// httpfwd does not serve itself (Upgrade, h2c with prior knowledge) reach
// the listener's http.Server through fallbackQueue. h2c and gRPC listeners
// go through net/http on both sides.

// fallbackQueue is the net.Listener of a listener's http.Server, fed with
// the connections httpfwd hands over.
type fallbackQueue struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	addr net.Addr
}

func newFallbackQueue(addr net.Addr) *fallbackQueue {
	return &fallbackQueue{ch: make(chan net.Conn), done: make(chan struct{}), addr: addr}
}

// put gives c to the server, or closes it when the server is gone.
func (q *fallbackQueue) put(c net.Conn) {
	select {
	case q.ch <- c:
	case <-q.done:
		c.Close()
	}
}

func (q *fallbackQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *fallbackQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *fallbackQueue) Addr() net.Addr { return q.addr }

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
