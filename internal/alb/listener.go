package alb

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthdev/berth/internal/httpfwd"
)

// socket is one listening address. It outlives configuration changes: a listener that keeps its
// address keeps its socket, and a change of idle timeout, protocol or certificate swaps the server
// behind the socket (new connections go to the new one, the old one finishes its requests).
type socket struct {
	plane *Plane
	addr  string
	ln    net.Listener

	listenerARN atomic.Pointer[string]
	routing     atomic.Pointer[routing]
	tcp         atomic.Pointer[tcpRoute] // non-nil: an NLB TCP listener
	cert        atomic.Pointer[tls.Certificate]

	mu      sync.Mutex
	srv     *http.Server
	fwd     atomic.Pointer[httpfwd.Server] // plain HTTP: serves HTTP/1.1, hands the rest to srv
	queue   atomic.Pointer[httpfwd.ConnQueue]
	srvKey  serverKey
	closed  chan struct{}
	done    chan struct{}
	tcpConn sync.WaitGroup

	startOnce sync.Once
}

// serverKey is what a running http.Server cannot change without being replaced.
type serverKey struct {
	https bool
	idle  time.Duration
}

func listen(addr string) (net.Listener, error) {
	return net.Listen("tcp", addr)
}

func newSocket(p *Plane, addr string, ln net.Listener) *socket {
	return &socket{plane: p, addr: addr, ln: ln, closed: make(chan struct{}), done: make(chan struct{})}
}

// start begins accepting, once the socket has been configured.
func (s *socket) start() { s.startOnce.Do(func() { go s.acceptLoop() }) }

// configureHTTP makes the socket serve an ALB listener.
func (s *socket) configureHTTP(arn string, rt *routing, cert *tls.Certificate, idle time.Duration) {
	s.listenerARN.Store(&arn)
	s.routing.Store(rt)
	if cert != nil {
		s.cert.Store(cert)
	}
	key := serverKey{https: cert != nil, idle: idle}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil && s.srvKey == key {
		s.tcp.Store(nil)
		return
	}
	h := &handler{plane: s.plane, cur: s.routing.Load}
	srv := &http.Server{
		Handler:           h,
		IdleTimeout:       idle,
		ReadHeaderTimeout: idle,
		ErrorLog:          nil,
	}
	srv.ErrorLog = discardLog
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	if key.https {
		protos.SetHTTP2(true)
		srv.TLSConfig = &tls.Config{
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil },
			NextProtos:     []string{"h2", "http/1.1"},
		}
	} else {
		protos.SetUnencryptedHTTP2(true) // h2c with prior knowledge
	}
	srv.Protocols = protos
	q := httpfwd.NewConnQueue(s.ln.Addr())
	var fwd *httpfwd.Server
	if !key.https {
		fwd = &httpfwd.Server{Handler: h, Raw: h, Fallback: s.handOff, IdleTimeout: idle}
	}
	old, oldQ, oldFwd := s.srv, s.queue.Load(), s.fwd.Load()
	s.srv, s.srvKey = srv, key
	s.queue.Store(q)
	s.fwd.Store(fwd)
	s.tcp.Store(nil)
	go func() {
		var err error
		if key.https {
			err = srv.ServeTLS(q, "", "")
		} else {
			err = srv.Serve(q)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.plane.log.Warn("listener stopped", "listener", arn, "addr", s.addr, "err", err)
		}
	}()
	if old != nil {
		oldQ.Close()
		go func() {
			// net/http drops a request read after Shutdown began on a connection that had
			// not sent one yet: give connections the old server accepted just before the
			// swap time to send their first request.
			time.Sleep(swapGrace)
			go shutdownFwd(oldFwd, idle)
			shutdown(old, idle)
		}()
	}
}

// swapGrace is how long a replaced server keeps serving before its graceful shutdown.
const swapGrace = time.Second

// configureTCP makes the socket serve an NLB TCP listener.
func (s *socket) configureTCP(arn string, tr *tcpRoute) {
	s.listenerARN.Store(&arn)
	s.tcp.Store(tr)
	s.mu.Lock()
	old, oldQ, oldFwd := s.srv, s.queue.Load(), s.fwd.Load()
	s.srv = nil
	s.queue.Store(nil)
	s.fwd.Store(nil)
	s.mu.Unlock()
	if old != nil {
		oldQ.Close()
		go shutdownFwd(oldFwd, time.Minute)
		go shutdown(old, time.Minute)
	}
}

// shutdownFwd is shutdown for the plain HTTP/1.1 server (nil: none).
func shutdownFwd(srv *httpfwd.Server, grace time.Duration) {
	if srv == nil {
		return
	}
	if grace <= 0 {
		grace = time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	srv.Shutdown(ctx)
}

func shutdown(srv *http.Server, grace time.Duration) {
	if grace <= 0 {
		grace = time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
	}
}

func (s *socket) acceptLoop() {
	defer close(s.done)
	backoff := 5 * time.Millisecond
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(backoff)
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if tr := s.tcp.Load(); tr != nil {
			s.tcpConn.Add(1)
			go func() {
				defer s.tcpConn.Done()
				s.plane.serveTCP(c, tr)
			}()
			continue
		}
		if f := s.fwd.Load(); f != nil {
			go f.ServeConn(c)
			continue
		}
		s.handOff(c)
	}
}

// handOff gives a connection to the current server, following a swap that happens meanwhile.
func (s *socket) handOff(c net.Conn) {
	for {
		q := s.queue.Load()
		if q == nil {
			c.Close()
			return
		}
		if q.Offer(c) {
			return
		}
		select {
		case <-s.closed:
			c.Close()
			return
		default:
		}
	}
}

// close stops accepting, lets in-flight requests finish (up to the idle timeout) and returns.
func (s *socket) close() {
	close(s.closed)
	s.ln.Close()
	s.start() // so that done is closed even if it never accepted
	<-s.done
	s.mu.Lock()
	srv, q, key, fwd := s.srv, s.queue.Load(), s.srvKey, s.fwd.Load()
	s.srv = nil
	s.fwd.Store(nil)
	s.mu.Unlock()
	if srv != nil {
		q.Close()
		go shutdownFwd(fwd, key.idle)
		go shutdown(srv, key.idle)
	}
}

var discardLog = newDiscardLog()

// tcpRoute is the view an NLB TCP listener serves from.
type tcpRoute struct {
	g    *tgroup
	idle time.Duration
}

// serveTCP proxies one NLB connection to a target, trying another when one cannot be reached.
func (p *Plane) serveTCP(c net.Conn, tr *tcpRoute) {
	defer c.Close()
	if tr.g == nil {
		return
	}
	var tried []*target
	var up net.Conn
	var t *target
	for attempt := 0; attempt < maxAttempts; attempt++ {
		t = tr.g.pick(tried, "", time.Now(), randFloat())
		if t == nil {
			return
		}
		d := net.Dialer{Timeout: 10 * time.Second}
		var err error
		up, err = d.Dial("tcp", t.addr)
		if err == nil {
			break
		}
		tr.g.connectFailed(t)
		tried = append(tried, t)
		up = nil
	}
	if up == nil {
		return
	}
	defer up.Close()
	t.outstanding.Add(1)
	defer t.outstanding.Add(-1)
	splice(c, up, c, up, tr.idle)
}

// splice copies bytes both ways between a client and a target connection (reading through cr and
// ur, which may hold bytes already buffered) until both sides are done or no byte has moved
// either way for idle. Half-closes are passed on.
func splice(c, up net.Conn, cr, ur io.Reader, idle time.Duration) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	done := make(chan struct{}, 2)
	pipe := func(dst, srcConn net.Conn, src io.Reader) {
		bufp := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(bufp)
		buf := *bufp
		for {
			srcConn.SetReadDeadline(time.Now().Add(idle))
			n, err := src.Read(buf)
			if n > 0 {
				last.Store(time.Now().UnixNano())
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, last.Load())) < idle {
					continue // the other direction was busy
				}
				break
			}
		}
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c, cr)
	go pipe(c, up, ur)
	<-done
	// One side finished: give the other the idle timeout to finish, then cut both.
	select {
	case <-done:
	case <-time.After(idle):
		c.Close()
		up.Close()
		<-done
	}
}
