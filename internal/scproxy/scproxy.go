// Package scproxy is Service Connect's data plane: the proxy that runs in
// each task's network namespace (docs/service-connect.md, "Data plane").
//
// Inbound listeners take the namespace's traffic for the task on
// ListenPort and send it to the application on AppHost:AppPort; outbound
// listeners take the application's calls to a client alias on VIP:Port and
// balance them over the endpoints of the alias's discovery name, as the
// directory lists them. HTTP/1.1, HTTP/2 (h2c), gRPC and plain TCP by
// protocol; round robin over healthy endpoints; two retries on connection
// failure, refused stream and 503; outlier ejection after consecutive 5xx
// and on connection failure; per-request and idle timeouts; drain on task
// stop; traffic counters per direction and discovery name.
//
//	p := scproxy.New(scproxy.Options{Log: log})
//	err := p.Apply(taskConfig)   // listeners: added, kept, removed
//	p.SetDirectory(dir)          // endpoints, live
//	t := p.Counters()            // serviceconnect.Traffic since the last call
//	err = p.Drain(ctx)           // inbound closed, in-flight requests finish
//	p.Close()
package scproxy

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/httpfwd"
	"github.com/berthdev/berth/internal/serviceconnect"
)

const connectTimeout = 5 * time.Second

// Options configure a Proxy.
type Options struct {
	Log *slog.Logger
	// AppHost is where inbound traffic goes: the application in the same
	// network namespace (default 127.0.0.1).
	AppHost string
	// InboundHost is the address inbound listeners bind (default: all
	// addresses of the namespace).
	InboundHost string
	// MaxRetryBody is the largest request body buffered so that the
	// request can be retried (default 64 KiB); larger or streamed bodies
	// are retried only when the upstream read none of them.
	MaxRetryBody int64
}

// Proxy is one task's Service Connect proxy. Its methods are safe for
// concurrent use.
type Proxy struct {
	log     *slog.Logger
	appHost string
	inHost  string
	maxBody int64

	mu        sync.Mutex
	listeners map[string]*listener // by spec key
	clusters  map[string]*cluster  // outbound, by discovery name
	trim      func()               // Run's trim hook
	inStats   map[string]*stats
	outStats  map[string]*stats
	dir       *serviceconnect.Directory
	draining  bool
	closed    bool
}

// New returns a Proxy with no listeners.
func New(o Options) *Proxy {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.AppHost == "" {
		o.AppHost = "127.0.0.1"
	}
	if o.MaxRetryBody <= 0 {
		o.MaxRetryBody = 64 << 10
	}
	return &Proxy{log: o.Log, appHost: o.AppHost, inHost: o.InboundHost, maxBody: o.MaxRetryBody,
		listeners: map[string]*listener{}, clusters: map[string]*cluster{},
		inStats: map[string]*stats{}, outStats: map[string]*stats{}}
}

// listener is one listening socket and what it forwards to.
type listener struct {
	p          *Proxy
	key        string
	inbound    bool
	name       string // discovery name (inbound: the task's own; outbound: the target's)
	alias      string // outbound: dnsName:port; inbound: portName
	proto      string
	perRequest time.Duration
	idle       time.Duration
	ln         net.Listener
	cl         *cluster
	st         *stats

	srv  *http.Server
	tr   *http.Transport // http2, grpc
	pool *httpfwd.Pool   // http (fastpath.go)
	fwd  *httpfwd.Server // http: serves HTTP/1.1, hands the rest to srv

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{} // TCP; nil once closed
}

// spec is a listener as the configuration asks for it.
type spec struct {
	inbound          bool
	name, alias      string
	addr, proto      string
	perRequest, idle time.Duration
	appAddr          string // inbound
}

func (s spec) key() string {
	return fmt.Sprintf("%v|%s|%s|%s|%s|%s|%s|%s", s.inbound, s.name, s.alias, s.addr, s.proto, s.perRequest, s.idle, s.appAddr)
}

func timeouts(proto string, perRequest, idle time.Duration) (time.Duration, time.Duration) {
	if perRequest == 0 && proto != serviceconnect.ProtocolTCP {
		perRequest = serviceconnect.DefaultPerRequestTimeout
	}
	if idle == 0 {
		idle = serviceconnect.DefaultIdleTimeoutHTTP
		if proto == serviceconnect.ProtocolTCP {
			idle = serviceconnect.DefaultIdleTimeoutTCP
		}
	}
	if perRequest < 0 {
		perRequest = 0
	}
	if idle < 0 {
		idle = 0
	}
	return perRequest, idle
}

func protoOf(p string) string {
	switch p {
	case serviceconnect.ProtocolHTTP, serviceconnect.ProtocolHTTP2, serviceconnect.ProtocolGRPC:
		return p
	}
	return serviceconnect.ProtocolTCP
}

func (p *Proxy) specs(tc serviceconnect.TaskConfig) []spec {
	var out []spec
	for _, in := range tc.Inbound {
		proto := protoOf(in.Protocol)
		pr, idle := timeouts(proto, in.PerRequestTimeout, in.IdleTimeout)
		out = append(out, spec{inbound: true, name: in.DiscoveryName, alias: in.PortName,
			addr: net.JoinHostPort(p.inHost, strconv.Itoa(in.ListenPort)), proto: proto, perRequest: pr, idle: idle,
			appAddr: net.JoinHostPort(p.appHost, strconv.Itoa(in.AppPort))})
	}
	for _, o := range tc.Outbound {
		proto := protoOf(o.Protocol)
		pr, idle := timeouts(proto, o.PerRequestTimeout, o.IdleTimeout)
		port := o.Port
		if o.ListenPort != 0 { // the namespace redirects VIP:Port here
			port = o.ListenPort
		}
		out = append(out, spec{name: o.DiscoveryName, alias: net.JoinHostPort(o.DNSName, strconv.Itoa(o.Port)),
			addr: net.JoinHostPort(o.VIP, strconv.Itoa(port)), proto: proto, perRequest: pr, idle: idle})
	}
	return out
}

// Apply makes the listeners those of tc: listeners whose configuration is
// unchanged keep their sockets and connections; removed or changed ones
// stop accepting at once and finish their requests in the background; new
// ones are bound. A listener that cannot bind is an error naming its
// address (those bound before it stay).
func (p *Proxy) Apply(tc serviceconnect.TaskConfig) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.draining {
		return fmt.Errorf("scproxy: draining or closed")
	}
	want := map[string]spec{}
	for _, s := range p.specs(tc) {
		want[s.key()] = s
	}
	for k, l := range p.listeners {
		if _, ok := want[k]; !ok {
			delete(p.listeners, k)
			l.ln.Close()
			go l.shutdown(context.Background(), l.idle+time.Second)
		}
	}
	for k, s := range want {
		if _, ok := p.listeners[k]; ok {
			continue
		}
		l, err := p.listen(s)
		if err != nil {
			return err
		}
		p.listeners[k] = l
	}
	return nil
}

// Activity returns a count that changes whenever a connection opens, a
// request is served or bytes are relayed: two equal counts mean the proxy
// was idle in between (connections may stay open, as keep-alive ones do).
func (p *Proxy) Activity() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n uint64
	for _, m := range []map[string]*stats{p.inStats, p.outStats} {
		for _, s := range m {
			n += s.activity()
		}
	}
	return n
}

// closeIdleUpstreams closes the idle keep-alive connections to endpoints
// (the idle trim: each holds its buffers).
func (p *Proxy) closeIdleUpstreams() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.listeners {
		if l.pool != nil {
			l.pool.CloseIdle()
		}
	}
}

func (p *Proxy) statsFor(inbound bool, name string) *stats {
	m := p.outStats
	if inbound {
		m = p.inStats
	}
	s := m[name]
	if s == nil {
		s = &stats{}
		m[name] = s
	}
	return s
}

// listen binds and starts one listener (p.mu held).
func (p *Proxy) listen(s spec) (*listener, error) {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return nil, fmt.Errorf("scproxy: listen on %s (%s): %w", s.addr, s.alias, err)
	}
	ln = &onceListener{Listener: ln}
	l := &listener{p: p, key: s.key(), inbound: s.inbound, name: s.name, alias: s.alias, proto: s.proto,
		perRequest: s.perRequest, idle: s.idle, ln: ln, st: p.statsFor(s.inbound, s.name)}
	if s.inbound {
		l.cl = newCluster(s.name + " (app)")
		host, port, _ := net.SplitHostPort(s.appAddr)
		pn, _ := strconv.Atoi(port)
		l.cl.set([]serviceconnect.Endpoint{{TaskArn: "app", Address: host, Port: pn, Healthy: true}})
	} else {
		l.cl = p.clusters[s.name]
		if l.cl == nil {
			l.cl = newCluster(s.name)
			p.clusters[s.name] = l.cl
			if p.dir != nil {
				l.cl.set(endpointsOf(p.dir, s.name))
			}
		}
	}
	if s.proto == serviceconnect.ProtocolTCP {
		l.conns = map[net.Conn]struct{}{}
		l.wg.Add(1)
		go l.serveTCP()
		return l, nil
	}
	if s.proto == serviceconnect.ProtocolHTTP {
		l.pool = &httpfwd.Pool{IdleFor: s.idle, DialTimeout: connectTimeout}
	} else {
		d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
		var ps http.Protocols
		ps.SetUnencryptedHTTP2(true)
		l.tr = &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 1024, IdleConnTimeout: s.idle,
			DisableCompression: true, Protocols: &ps}
	}
	var ps http.Protocols
	ps.SetHTTP1(true)
	ps.SetUnencryptedHTTP2(true)
	l.srv = &http.Server{Handler: l, Protocols: &ps, IdleTimeout: s.idle, ReadHeaderTimeout: time.Minute,
		ErrorLog: log.New(slogWriter{p.log}, "", 0), ConnState: l.connState}
	if l.pool != nil {
		q := httpfwd.NewConnQueue(ln.Addr())
		l.srv.ConnState = l.fallbackConnState
		l.fwd = &httpfwd.Server{Handler: l, Fallback: func(c net.Conn) {
			if !q.Offer(c) { // the server is gone
				c.Close()
			}
		}, IdleTimeout: s.idle, ConnState: l.fwdConnState, Log: p.log,
			Raw: l, MaxRawBody: int(min(p.maxBody, httpfwd.DefaultMaxRawBody))}
		l.wg.Add(2)
		go l.serveFwd()
		go func() {
			defer l.wg.Done()
			_ = l.srv.Serve(q)
		}()
		return l, nil
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		_ = l.srv.Serve(ln)
	}()
	return l, nil
}

// onceListener closes its socket once; later calls return nil (Apply and
// Drain close a listener's socket before http.Server.Shutdown does).
type onceListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	w.log.Debug(string(b))
	return len(b), nil
}

func (l *listener) connState(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		l.st.connOpened()
	case http.StateClosed, http.StateHijacked:
		l.st.connClosed()
	}
}

// shutdown stops the listener gracefully: no new connections, requests in
// flight finish; after grace (or ctx) what is left is closed.
func (l *listener) shutdown(ctx context.Context, grace time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	var err error
	if l.srv != nil {
		fwdDone := make(chan error, 1)
		if l.fwd != nil {
			l.ln.Close()
			go func() { fwdDone <- l.fwd.Shutdown(ctx) }()
		} else {
			fwdDone <- nil
		}
		err = l.srv.Shutdown(ctx)
		if err != nil {
			l.srv.Close()
		}
		if e := <-fwdDone; e != nil && err == nil {
			err = e
		}
		l.wg.Wait()
		l.closeUpstreams()
	} else {
		err = l.drainTCP(ctx)
		l.mu.Lock()
		l.conns = nil
		l.mu.Unlock()
	}
	return err
}

// close stops the listener at once.
func (l *listener) close() {
	l.ln.Close()
	if l.srv != nil {
		if l.fwd != nil {
			l.fwd.Close()
		}
		l.srv.Close()
		l.closeUpstreams()
	} else {
		l.closeConns()
		l.mu.Lock()
		l.conns = nil
		l.mu.Unlock()
	}
	l.wg.Wait()
}

func endpointsOf(d *serviceconnect.Directory, name string) []serviceconnect.Endpoint {
	for _, s := range d.Services {
		if s.DiscoveryName == name {
			return s.Endpoints
		}
	}
	return nil
}

// SetDirectory replaces the outbound endpoints with d's (a directory line
// is complete: a discovery name it does not list has no endpoints). A line
// older than the last one applied is ignored. Requests in flight to an
// endpoint that left finish.
func (p *Proxy) SetDirectory(d serviceconnect.Directory) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dir != nil && d.Revision != 0 && d.Revision < p.dir.Revision {
		return
	}
	p.dir = &d
	for name, c := range p.clusters {
		c.set(endpointsOf(&d, name))
	}
}

// Addr returns the address the listener of an inbound port name or an
// outbound alias ("dnsName:port") is bound to, "" if there is none.
func (p *Proxy) Addr(inbound bool, alias string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.listeners {
		if l.inbound == inbound && l.alias == alias {
			return l.ln.Addr().String()
		}
	}
	return ""
}

// Counters returns the traffic since the previous call: per discovery
// name, inbound and outbound, with the outbound endpoints' health now.
func (p *Proxy) Counters() serviceconnect.Traffic {
	p.mu.Lock()
	defer p.mu.Unlock()
	var t serviceconnect.Traffic
	now := time.Now()
	for name, s := range p.inStats {
		if t.Inbound == nil {
			t.Inbound = map[string]serviceconnect.Counters{}
		}
		t.Inbound[name] = s.take()
	}
	for name, s := range p.outStats {
		if t.Outbound == nil {
			t.Outbound = map[string]serviceconnect.Counters{}
		}
		c := s.take()
		if cl := p.clusters[name]; cl != nil {
			c.HealthyEndpoints, c.UnhealthyEndpoints = cl.health(now)
		}
		t.Outbound[name] = c
	}
	return t
}

// Drain closes the inbound listeners (no new connections from the
// namespace) and waits until their requests in flight have finished, or
// ctx ends (then they are cut, and ctx's error returned). Outbound
// listeners keep working until Close: the application may call out while
// it finishes.
func (p *Proxy) Drain(ctx context.Context) error {
	p.mu.Lock()
	p.draining = true
	var ins []*listener
	for k, l := range p.listeners {
		if l.inbound {
			ins = append(ins, l)
			delete(p.listeners, k)
		}
	}
	p.mu.Unlock()
	errc := make(chan error, len(ins))
	for _, l := range ins {
		l.ln.Close()
	}
	for _, l := range ins {
		go func() { errc <- l.shutdown(ctx, time.Hour) }()
	}
	var err error
	for range ins {
		if e := <-errc; e != nil && err == nil {
			err = e
		}
	}
	return err
}

// Close stops every listener at once.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	ls := p.listeners
	p.listeners = map[string]*listener{}
	p.mu.Unlock()
	for _, l := range ls {
		l.close()
	}
}

func (l *listener) closeUpstreams() {
	if l.tr != nil {
		l.tr.CloseIdleConnections()
	}
	if l.pool != nil {
		l.pool.Close()
	}
}
