package alb

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// tkey identifies a registered target within its group.
type tkey struct {
	ID   string
	Port int
}

// target is one registered target and its live state. h is guarded by the group's mutex;
// outstanding is read and written without it.
type target struct {
	key         tkey
	addr        string
	cookie      string // AWSALB value naming this target
	outstanding atomic.Int64
	h           healthState
	wake        chan struct{}
	stop        context.CancelFunc // stops its health checks; nil when none run
	drainTimer  *time.Timer
}

// groupSnap is the immutable routing view of a group, swapped whenever a health state changes.
type groupSnap struct {
	routable   []routable
	byCookie   map[string]int // AWSALB value -> index in routable
	algorithm  string
	slowStart  time.Duration
	stickiness time.Duration
}

type routable struct {
	t         *target
	healthyAt time.Time
}

// tgroup is a target group at run time. Its health checks run while a load balancer uses it.
type tgroup struct {
	plane   *Plane
	arn     string
	mu      sync.Mutex
	cfg     TargetGroup
	th      thresholds
	matcher matcher
	used    bool
	targets map[tkey]*target
	snap    atomic.Pointer[groupSnap]
	tick    atomic.Uint64
}

func thresholdsOf(hc HealthCheck) thresholds {
	iv := hc.Interval
	if iv <= 0 {
		iv = 30 * time.Second
	}
	return thresholds{Enabled: hc.Enabled, Healthy: hc.HealthyThreshold, Unhealthy: hc.UnhealthyThreshold, Interval: iv}
}

// update makes the group match cfg; called with the plane's apply lock held.
func (g *tgroup) update(cfg TargetGroup, m matcher, used bool, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	oldTh, oldUsed, oldHC := g.th, g.used, g.cfg.HealthCheck
	g.cfg, g.matcher, g.th, g.used = cfg, m, thresholdsOf(cfg.HealthCheck), used
	reset := oldUsed != used || oldTh.Enabled != g.th.Enabled
	want := make(map[tkey]Target, len(cfg.Targets))
	for _, t := range cfg.Targets {
		want[tkey{t.ID, t.Port}] = t
	}
	for k, t := range g.targets {
		if _, ok := want[k]; ok || t.h.State == StateDraining {
			continue
		}
		g.stopChecks(t)
		if cfg.DeregistrationDelay <= 0 || !used {
			delete(g.targets, k)
			continue
		}
		t.h = t.h.drain(cfg.DeregistrationDelay, now)
		k := k
		t.drainTimer = time.AfterFunc(cfg.DeregistrationDelay, func() { g.sweep(k) })
	}
	for k, spec := range want {
		t, ok := g.targets[k]
		if ok && t.h.State == StateDraining {
			// Registered again while draining: a fresh registration.
			t.drainTimer.Stop()
			delete(g.targets, k)
			ok = false
		}
		if !ok {
			t = &target{key: k, addr: spec.Addr, cookie: targetCookie(g.arn, k), wake: make(chan struct{}, 1)}
			t.h = newHealth(g.th, used)
			if spec.StartHealthy {
				t.h = t.h.restoreHealthy(now)
			}
			g.targets[k] = t
		} else if reset || t.addr != spec.Addr {
			g.stopChecks(t)
			t.addr = spec.Addr
			t.h = newHealth(g.th, used)
		}
		if used && g.th.Enabled && t.stop == nil {
			ctx, cancel := context.WithCancel(context.Background())
			t.stop = cancel
			go g.checkLoop(ctx, t, t.addr)
		} else if oldHC != cfg.HealthCheck {
			select { // a new interval or path applies now, not after the old interval
			case t.wake <- struct{}{}:
			default:
			}
		}
	}
	g.rebuild()
}

func (g *tgroup) stopChecks(t *target) {
	if t.stop != nil {
		t.stop()
		t.stop = nil
	}
}

// sweep forgets a target whose deregistration delay has passed.
func (g *tgroup) sweep(k tkey) {
	g.mu.Lock()
	t, ok := g.targets[k]
	if ok && t.h.drained(time.Now()) {
		delete(g.targets, k)
		g.rebuild()
	}
	g.mu.Unlock()
	if ok {
		g.plane.signal()
	}
}

// close stops every health check of a group that is no longer configured.
func (g *tgroup) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, t := range g.targets {
		g.stopChecks(t)
		if t.drainTimer != nil {
			t.drainTimer.Stop()
		}
	}
}

// rebuild swaps in a new routing snapshot; called with g.mu held.
func (g *tgroup) rebuild() {
	s := &groupSnap{algorithm: g.cfg.Algorithm, slowStart: g.cfg.SlowStart, stickiness: g.cfg.Stickiness}
	for _, t := range g.targets {
		if t.h.healthy() {
			s.routable = append(s.routable, routable{t: t, healthyAt: t.h.healthyAt})
		}
	}
	if len(s.routable) == 0 { // fail open
		for _, t := range g.targets {
			if t.h.failOpen() {
				s.routable = append(s.routable, routable{t: t})
			}
		}
	}
	if s.stickiness > 0 {
		s.byCookie = make(map[string]int, len(s.routable))
		for i, r := range s.routable {
			s.byCookie[r.t.cookie] = i
		}
	}
	g.snap.Store(s)
}

// pick chooses a target for one request, skipping those already tried; sticky is the request's
// AWSALB cookie value ("" when none).
func (g *tgroup) pick(tried []*target, sticky string, now time.Time, rnd float64) *target {
	s := g.snap.Load()
	if s == nil || len(s.routable) == 0 {
		return nil
	}
	if sticky != "" && s.byCookie != nil {
		if i, ok := s.byCookie[sticky]; ok && !contains(tried, s.routable[i].t) {
			return s.routable[i].t
		}
	}
	var buf [16]candidate
	cands := buf[:0]
	for _, r := range s.routable {
		c := candidate{Outstanding: r.t.outstanding.Load(), Weight: 1, Skip: contains(tried, r.t)}
		if s.slowStart > 0 {
			c.Weight = slowStartWeight(r.healthyAt, s.slowStart, now)
		}
		cands = append(cands, c)
	}
	i := chooseTarget(s.algorithm, cands, g.tick.Add(1), rnd)
	if i < 0 {
		return nil
	}
	return s.routable[i].t
}

func contains(ts []*target, t *target) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// connectFailed ejects a target the data plane could not connect to, and checks it at once.
func (g *tgroup) connectFailed(t *target) {
	g.mu.Lock()
	if g.targets[t.key] != t {
		g.mu.Unlock()
		return
	}
	old := t.h
	t.h = t.h.connectFailed(g.th, time.Now())
	changed := old.State != t.h.State
	g.rebuild()
	g.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	if changed {
		g.plane.signal()
	}
}

// checkLoop runs the active health checks of one target until ctx ends.
func (g *tgroup) checkLoop(ctx context.Context, t *target, addr string) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-t.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		g.mu.Lock()
		hc, m, proto := g.cfg.HealthCheck, g.matcher, g.cfg.Protocol
		g.mu.Unlock()
		res := g.plane.check(ctx, hc, proto, addr, m)
		if ctx.Err() != nil {
			return
		}
		g.mu.Lock()
		old := t.h
		t.h = t.h.observe(res, g.th, time.Now())
		changed := old.State != t.h.State || old.Reason != t.h.Reason || old.ejected != t.h.ejected
		if changed {
			g.rebuild()
		}
		delay := t.h.nextCheck(g.th)
		now := t.h
		g.mu.Unlock()
		if changed {
			if old.State != now.State {
				g.plane.log.Info("target health changed", "target_group", g.arn, "target", addr, "from", old.State, "to", now.State, "reason", now.Reason)
			}
			g.plane.signal()
		}
		timer.Reset(delay)
	}
}

// health lists the group's targets as DescribeTargetHealth shows them.
func (g *tgroup) health() []TargetHealth {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]TargetHealth, 0, len(g.targets))
	for _, t := range g.targets {
		h := t.h
		out = append(out, TargetHealth{ID: t.key.ID, Port: t.key.Port, State: h.State, Reason: h.Reason, Description: h.Description})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Port < out[j].Port
	})
	return out
}

// check runs one active health check against addr.
func (p *Plane) check(ctx context.Context, hc HealthCheck, tgProto, addr string, m matcher) checkResult {
	timeout := hc.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return checkResult{}
	}
	if hc.Port != "" && hc.Port != "traffic-port" {
		if _, err := strconv.Atoi(hc.Port); err == nil {
			port = hc.Port
		}
	}
	hostport := net.JoinHostPort(host, port)
	proto := hc.Protocol
	if proto == "" {
		proto = tgProto
	}
	if proto == "TCP" || proto == "" || proto == "TLS" || proto == "UDP" || proto == "TCP_UDP" {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", hostport)
		if err != nil {
			return checkResult{Timeout: isTimeout(ctx, err)}
		}
		c.Close()
		return checkResult{OK: true}
	}
	scheme := "http"
	if proto == "HTTPS" {
		scheme = "https"
	}
	path := hc.Path
	if path == "" {
		path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+hostport+path, nil)
	if err != nil {
		return checkResult{}
	}
	req.Header.Set("User-Agent", "ELB-HealthChecker/2.0")
	resp, err := p.checkClient.Do(req)
	if err != nil {
		return checkResult{Timeout: isTimeout(ctx, err)}
	}
	resp.Body.Close()
	return checkResult{OK: m.match(resp.StatusCode), Code: resp.StatusCode}
}

func isTimeout(ctx context.Context, err error) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func newCheckClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // ALB does not verify target certificates
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
