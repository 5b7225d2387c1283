package httpfwd

import (
	"net"
	"sync"
)

// ConnQueue is a net.Listener fed by hand: the listener of the http.Server
// that takes the connections a Server hands over (Server.Fallback).
type ConnQueue struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	addr net.Addr
}

// NewConnQueue returns a queue whose Addr is addr.
func NewConnQueue(addr net.Addr) *ConnQueue {
	return &ConnQueue{ch: make(chan net.Conn), done: make(chan struct{}), addr: addr}
}

// Offer gives c to the server accepting from q; false when q is closed
// (c is then the caller's to close or to offer elsewhere).
func (q *ConnQueue) Offer(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		return false
	}
}

// Accept implements net.Listener.
func (q *ConnQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener: Accept and Offer stop waiting.
func (q *ConnQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

// Addr implements net.Listener.
func (q *ConnQueue) Addr() net.Addr { return q.addr }
