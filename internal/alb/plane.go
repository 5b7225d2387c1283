package alb

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"time"
)

func newDiscardLog() *log.Logger { return log.New(io.Discard, "", 0) }

func randFloat() float64 { return rand.Float64() }

// DefaultIdleTimeout is ALB's default idle_timeout.timeout_seconds.
const DefaultIdleTimeout = 60 * time.Second

// DefaultTCPIdleTimeout is NLB's fixed TCP idle timeout.
const DefaultTCPIdleTimeout = 350 * time.Second

type transportKey struct {
	lb, tg          string
	protocol, proto string
	idle            time.Duration
}

// planeState is guarded by Plane.mu.
type planeState struct {
	sockets    map[string]*socket // by listen address
	groups     map[string]*tgroup // by target group ARN
	transports map[transportKey]*upstream
}

func (p *Plane) init(opts Options) {
	p.log = opts.Log
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p.observer = opts.Observer
	p.checkClient = newCheckClient()
	p.st = planeState{sockets: map[string]*socket{}, groups: map[string]*tgroup{}, transports: map[transportKey]*upstream{}}
	p.proxy = &httputil.ReverseProxy{
		Rewrite:        rewrite,
		Transport:      dispatch{plane: p},
		ModifyResponse: modifyResponse,
		ErrorHandler:   p.errorHandler,
		BufferPool:     bufferPool{},
		ErrorLog:       discardLog,
	}
}

func (p *Plane) signal() {
	select {
	case p.changes <- struct{}{}:
	default:
	}
}

// compiledListener is a listener's configuration checked and compiled, before anything changes.
type compiledListener struct {
	lb   *LoadBalancer
	l    *Listener
	rt   *routing
	cert *tls.Certificate
}

// Apply makes the plane match cfg: opens new listeners, closes removed ones, updates rules, starts
// and stops health checks. A target that disappears from its group drains: no new requests,
// in-flight ones finish, shown "draining" until DeregistrationDelay has passed. Errors name the
// listener and address (a port in use: *ListenError). On error the plane keeps its previous
// configuration.
func (p *Plane) Apply(cfg Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("alb: plane is closed")
	}
	now := time.Now()

	// 1. Compile and check everything.
	matchers := map[string]matcher{}
	tgs := map[string]TargetGroup{}
	for _, tg := range cfg.TargetGroups {
		m, err := parseMatcher(tg.HealthCheck.Matcher)
		if err != nil {
			return fmt.Errorf("target group %s: %w", tg.ARN, err)
		}
		matchers[tg.ARN] = m
		tgs[tg.ARN] = tg
	}
	used := map[string]bool{}
	var cls []compiledListener
	seen := map[string]string{}
	for i := range cfg.LoadBalancers {
		lb := &cfg.LoadBalancers[i]
		for j := range lb.Listeners {
			l := &lb.Listeners[j]
			if other, dup := seen[l.Addr]; dup {
				return &ListenError{ListenerARN: l.ARN, Addr: l.Addr, Err: fmt.Errorf("address also used by listener %s", other)}
			}
			seen[l.Addr] = l.ARN
			cl := compiledListener{lb: lb, l: l}
			routes, err := compileRules(l.Rules)
			if err != nil {
				return fmt.Errorf("listener %s: %w", l.ARN, err)
			}
			_, port, _ := net.SplitHostPort(l.Addr)
			cl.rt = &routing{lbARN: lb.ARN, listenerARN: l.ARN, scheme: "http", port: port, routes: routes, defaults: sortActions(l.DefaultActions)}
			if l.Protocol == "HTTPS" || l.Protocol == "TLS" {
				cert, err := tls.LoadX509KeyPair(l.CertFile, l.KeyFile)
				if err != nil {
					return fmt.Errorf("listener %s: certificate: %w", l.ARN, err)
				}
				cl.cert = &cert
				cl.rt.scheme = "https"
			}
			for _, acts := range append([][]Action{l.DefaultActions}, ruleActions(l.Rules)...) {
				for _, a := range acts {
					for _, f := range a.Forward {
						used[f.ARN] = true
					}
				}
			}
			cls = append(cls, cl)
		}
	}

	// 2. Bind new addresses; on failure close what was bound and change nothing.
	fresh := map[string]*socket{}
	for _, cl := range cls {
		if p.socketFor(cl.l.Addr) != nil {
			continue
		}
		ln, err := listen(cl.l.Addr)
		if err != nil {
			for _, s := range fresh {
				s.close()
			}
			return &ListenError{ListenerARN: cl.l.ARN, Addr: cl.l.Addr, Err: err}
		}
		fresh[cl.l.Addr] = newSocket(p, cl.l.Addr, ln)
	}

	// 3. Target groups.
	for arn, tg := range tgs {
		g := p.st.groups[arn]
		if g == nil {
			g = &tgroup{plane: p, arn: arn, targets: map[tkey]*target{}}
			p.st.groups[arn] = g
		}
		g.update(tg, matchers[arn], used[arn], now)
	}
	for arn, g := range p.st.groups {
		if _, ok := tgs[arn]; !ok {
			g.close()
			delete(p.st.groups, arn)
		}
	}

	// 4. Transports (keep-alive pools), one per load balancer and target group.
	keep := map[transportKey]bool{}
	for _, cl := range cls {
		idle := cl.lb.IdleTimeout
		if idle <= 0 {
			idle = DefaultIdleTimeout
		}
		cl.rt.groups = map[string]*tgroup{}
		cl.rt.upstreams = map[string]*upstream{}
		for arn := range used {
			g := p.st.groups[arn]
			if g == nil {
				continue
			}
			tg := tgs[arn]
			k := transportKey{lb: cl.lb.ARN, tg: arn, protocol: tg.Protocol, proto: tg.ProtocolVersion, idle: idle}
			up := p.st.transports[k]
			if up == nil {
				up = &upstream{rt: newTransport(tg, idle), idle: idle}
				if tg.Protocol != "HTTPS" && tg.ProtocolVersion != "HTTP2" && tg.ProtocolVersion != "GRPC" {
					up.fast = newFastPool(idle)
				}
				p.st.transports[k] = up
			}
			keep[k] = true
			cl.rt.groups[arn] = g
			cl.rt.upstreams[arn] = up
		}
	}
	for k, up := range p.st.transports {
		if !keep[k] {
			up.close()
			delete(p.st.transports, k)
		}
	}

	// 5. Point every socket at its listener; close the sockets no listener wants.
	for addr, s := range fresh {
		p.st.sockets[addr] = s
	}
	for _, cl := range cls {
		s := p.socketFor(cl.l.Addr)
		if ta, ok := s.ln.Addr().(*net.TCPAddr); ok {
			cl.rt.port = strconv.Itoa(ta.Port)
		}
		idle := cl.lb.IdleTimeout
		if idle <= 0 {
			idle = DefaultIdleTimeout
		}
		if cl.lb.Type == "network" || cl.l.Protocol == "TCP" {
			var g *tgroup
			for _, a := range cl.rt.defaults {
				if a.Type == "forward" && len(a.Forward) > 0 {
					g = p.st.groups[a.Forward[0].ARN]
				}
			}
			tidle := cl.lb.IdleTimeout
			if tidle <= 0 {
				tidle = DefaultTCPIdleTimeout
			}
			s.configureTCP(cl.l.ARN, &tcpRoute{g: g, idle: tidle})
		} else {
			s.configureHTTP(cl.l.ARN, cl.rt, cl.cert, idle)
		}
		s.start()
	}
	for addr, s := range p.st.sockets {
		_, byKey := seen[addr]
		_, byActual := seen[s.ln.Addr().String()]
		if !byKey && !byActual {
			s.close()
			delete(p.st.sockets, addr)
		}
	}
	p.signal()
	return nil
}

// socketFor is the socket listening on addr: the one asked for with that address, or the one
// whose actual address it is (a listener asked for port 0 and then named by its real port).
func (p *Plane) socketFor(addr string) *socket {
	if s, ok := p.st.sockets[addr]; ok {
		return s
	}
	for _, s := range p.st.sockets {
		if s.ln.Addr().String() == addr {
			return s
		}
	}
	return nil
}

func ruleActions(rules []Rule) [][]Action {
	out := make([][]Action, 0, len(rules))
	for _, r := range rules {
		out = append(out, r.Actions)
	}
	return out
}

func newTransport(tg TargetGroup, idle time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       idle,
		ResponseHeaderTimeout: idle,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: true}, // ALB does not verify target certificates
	}
	if tg.ProtocolVersion == "HTTP2" || tg.ProtocolVersion == "GRPC" {
		protos := new(http.Protocols)
		if tg.Protocol == "HTTPS" {
			protos.SetHTTP2(true)
		} else {
			protos.SetUnencryptedHTTP2(true)
		}
		tr.Protocols = protos
	}
	return tr
}

// CanListen reports whether addr could be listened on (nil when free, or already held by the
// listener with this ARN).
func (p *Plane) CanListen(listenerARN, addr string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.socketFor(addr); s != nil && !strings.HasSuffix(addr, ":0") {
		if cur := s.listenerARN.Load(); cur != nil && *cur == listenerARN {
			return nil
		}
		other := ""
		if cur := s.listenerARN.Load(); cur != nil {
			other = *cur
		}
		return &ListenError{ListenerARN: listenerARN, Addr: addr, Err: fmt.Errorf("address already in use by listener %s", other)}
	}
	ln, err := listen(addr)
	if err != nil {
		return &ListenError{ListenerARN: listenerARN, Addr: addr, Err: err}
	}
	ln.Close()
	return nil
}

// TargetHealth is the current health of every target of the group, including draining ones.
func (p *Plane) TargetHealth(targetGroupARN string) []TargetHealth {
	p.mu.Lock()
	g := p.st.groups[targetGroupARN]
	p.mu.Unlock()
	if g == nil {
		return nil
	}
	return g.health()
}

// ListenerAddr is the address the listener with this ARN actually listens on (its Addr with the
// port filled in when Addr asked for port 0), or nil when no such listener runs.
func (p *Plane) ListenerAddr(listenerARN string) net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.st.sockets {
		if cur := s.listenerARN.Load(); cur != nil && *cur == listenerARN {
			return s.ln.Addr()
		}
	}
	return nil
}

// HealthChanges is signalled (non-blocking, coalesced) whenever any target's state changes.
func (p *Plane) HealthChanges() <-chan struct{} { return p.changes }

// Close stops every listener and health check. In-flight requests get up to the idle timeout.
func (p *Plane) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	for addr, s := range p.st.sockets {
		s.close()
		delete(p.st.sockets, addr)
	}
	for arn, g := range p.st.groups {
		g.close()
		delete(p.st.groups, arn)
	}
	for k, up := range p.st.transports {
		up.close()
		delete(p.st.transports, k)
	}
	return nil
}

// bufferPool recycles the proxy's copy buffers.
type bufferPool struct{}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

func (bufferPool) Get() []byte  { return *(copyBufs.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { copyBufs.Put(&b) }
