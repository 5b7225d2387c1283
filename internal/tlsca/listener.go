package tlsca

import (
	"bufio"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// sniffTimeout bounds how long a new connection may stay silent before
// its first byte says whether it speaks TLS.
const sniffTimeout = 10 * time.Second

// DualListener serves TLS and plain HTTP on one port: a connection whose
// first byte is a TLS handshake record (0x16) is wrapped in tls.Server,
// anything else is passed on as it is. Accept never waits on a slow
// client: each connection is sniffed on its own goroutine.
type DualListener struct {
	net.Listener
	cfg   *tls.Config
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	err   error // why the loop stopped, when not Close; under mu
}

// NewDualListener starts accepting on ln.
func NewDualListener(ln net.Listener, cfg *tls.Config) *DualListener {
	d := &DualListener{Listener: ln, cfg: cfg, conns: make(chan net.Conn), done: make(chan struct{})}
	go d.loop()
	return d
}

func (d *DualListener) loop() {
	for {
		c, err := d.Listener.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			d.mu.Lock()
			d.err = err
			d.mu.Unlock()
			d.Close()
			return
		}
		go d.sniff(c)
	}
}

func (d *DualListener) sniff(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	br := bufio.NewReader(c)
	b, err := br.Peek(1)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	var out net.Conn = &peeked{Conn: c, r: br}
	if b[0] == 0x16 {
		out = tls.Server(out, d.cfg)
	}
	select {
	case d.conns <- out:
	case <-d.done:
		c.Close()
	}
}

// Accept returns the next sniffed connection.
func (d *DualListener) Accept() (net.Conn, error) {
	select {
	case c := <-d.conns:
		return c, nil
	case <-d.done:
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.err != nil {
			return nil, d.err
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting.
func (d *DualListener) Close() error {
	var err error
	d.once.Do(func() {
		close(d.done)
		err = d.Listener.Close()
	})
	return err
}

// peeked is a connection whose first bytes were read into r.
type peeked struct {
	net.Conn
	r *bufio.Reader
}

func (p *peeked) Read(b []byte) (int, error) { return p.r.Read(b) }
