package scproxy

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthdev/berth/internal/serviceconnect"
)

// Outlier detection, Envoy's defaults (consecutive_5xx 5, base_ejection_time
// 30 s, max_ejection_time 300 s). A connection failure ejects at once.
const (
	Consecutive5xx   = 5
	BaseEjectionTime = 30 * time.Second
	MaxEjectionTime  = 300 * time.Second
)

// endpoint is one upstream address with its passive health state. The
// state survives directory updates that keep the endpoint (same task,
// address and port).
type endpoint struct {
	key     string
	taskArn string
	addr    string // host:port
	healthy bool   // as the directory says

	outstanding atomic.Int64

	mu          sync.Mutex
	consec5xx   int
	ejections   int
	ejectedTill time.Time
}

// ejected reports whether outlier detection holds the endpoint out at now.
func (e *endpoint) ejected(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return now.Before(e.ejectedTill)
}

// result records one upstream answer (status) or, with status 0, a
// connection failure; it returns true when the endpoint was ejected by it.
func (e *endpoint) result(status int, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case status == 0:
		e.ejectLocked(now)
		return true
	case status >= 500:
		e.consec5xx++
		if e.consec5xx >= Consecutive5xx {
			e.ejectLocked(now)
			return true
		}
	default:
		e.consec5xx = 0
	}
	return false
}

// ejectLocked takes the endpoint out for BaseEjectionTime times the number
// of times it has been ejected, at most MaxEjectionTime (Envoy's rule).
func (e *endpoint) ejectLocked(now time.Time) {
	e.ejections++
	d := time.Duration(e.ejections) * BaseEjectionTime
	if d > MaxEjectionTime {
		d = MaxEjectionTime
	}
	e.ejectedTill = now.Add(d)
	e.consec5xx = 0
}

// cluster is the endpoints of one discovery name (outbound) or the task's
// own application port (inbound).
type cluster struct {
	name string
	eps  atomic.Pointer[[]*endpoint]
	rr   atomic.Uint64
}

func newCluster(name string) *cluster {
	c := &cluster{name: name}
	c.eps.Store(&[]*endpoint{})
	return c
}

// set replaces the endpoints, keeping the state of those that stay.
func (c *cluster) set(eps []serviceconnect.Endpoint) {
	old := map[string]*endpoint{}
	for _, e := range *c.eps.Load() {
		old[e.key] = e
	}
	next := make([]*endpoint, 0, len(eps))
	for _, se := range eps {
		addr := net.JoinHostPort(se.Address, strconv.Itoa(se.Port))
		key := se.TaskArn + "|" + addr
		e := old[key]
		if e == nil || e.healthy != se.Healthy {
			ne := &endpoint{key: key, taskArn: se.TaskArn, addr: addr, healthy: se.Healthy}
			if e != nil {
				e.mu.Lock()
				ne.consec5xx, ne.ejections, ne.ejectedTill = e.consec5xx, e.ejections, e.ejectedTill
				e.mu.Unlock()
			}
			e = ne
		}
		next = append(next, e)
	}
	c.eps.Store(&next)
}

// pick chooses the next endpoint round robin among the healthy ones not
// ejected and not in tried. When every healthy endpoint is ejected (or
// tried), it falls back to the healthy ones ignoring ejection (Envoy's
// panic mode: better a suspect endpoint than none), and last to any tried
// one again. nil when the directory lists no healthy endpoint.
func (c *cluster) pick(now time.Time, tried []*endpoint) *endpoint {
	eps := *c.eps.Load()
	n := len(eps)
	if n == 0 {
		return nil
	}
	start := int(c.rr.Add(1) % uint64(n))
	for pass := 0; pass < 3; pass++ {
		for i := 0; i < n; i++ {
			e := eps[(start+i)%n]
			if !e.healthy {
				continue
			}
			if pass < 2 && contains(tried, e) {
				continue
			}
			if pass == 0 && e.ejected(now) {
				continue
			}
			return e
		}
	}
	return nil
}

func contains(s []*endpoint, e *endpoint) bool {
	for _, x := range s {
		if x == e {
			return true
		}
	}
	return false
}

// health counts the endpoints routable at now and the others.
func (c *cluster) health(now time.Time) (healthy, unhealthy int) {
	for _, e := range *c.eps.Load() {
		if e.healthy && !e.ejected(now) {
			healthy++
		} else {
			unhealthy++
		}
	}
	return healthy, unhealthy
}
