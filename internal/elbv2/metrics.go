package elbv2

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/alb"
	"github.com/berthdev/berth/internal/tsdb"
)

// AWS/ApplicationELB metrics: the data plane reports every request to a
// RequestMetrics (its alb.Observer); the service publishes the counts of
// each period, with the healthy and unhealthy host counts of every target
// group its plane serves, through a sink (CloudWatch's Publish).

// Namespace is the CloudWatch namespace of the load balancer metrics.
const Namespace = "AWS/ApplicationELB"

type pairKey struct{ lb, tg string }

// requestStats are one period's counts for a load balancer ("" target
// group) or a (load balancer, target group) pair.
type requestStats struct {
	requests            float64
	target              [6]float64 // HTTPCode_Target_<n>XX_Count by n
	elb                 [6]float64 // HTTPCode_ELB_<n>XX_Count by n
	rtSum, rtMin, rtMax float64    // TargetResponseTime in seconds
	rtCount             float64
}

// RequestMetrics aggregates the data plane's requests per period. It is
// safe for concurrent use.
type RequestMetrics struct {
	mu  sync.Mutex
	cur map[pairKey]*requestStats
}

// NewRequestMetrics returns an empty aggregator.
func NewRequestMetrics() *RequestMetrics {
	return &RequestMetrics{cur: map[pairKey]*requestStats{}}
}

var _ alb.Observer = (*RequestMetrics)(nil)

// Request implements alb.Observer.
func (m *RequestMetrics) Request(lbARN, tgARN string, status int, targetTime time.Duration, elbError bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	add := func(k pairKey) {
		s := m.cur[k]
		if s == nil {
			s = &requestStats{}
			m.cur[k] = s
		}
		s.requests++
		class := status / 100
		if class < 1 || class > 5 {
			return
		}
		if elbError {
			s.elb[class]++
			return
		}
		s.target[class]++
		sec := targetTime.Seconds()
		if s.rtCount == 0 || sec < s.rtMin {
			s.rtMin = sec
		}
		if sec > s.rtMax {
			s.rtMax = sec
		}
		s.rtSum += sec
		s.rtCount++
	}
	add(pairKey{lb: lbARN})
	if tgARN != "" {
		add(pairKey{lb: lbARN, tg: tgARN})
	}
}

// take returns the period's counts and starts a new period.
func (m *RequestMetrics) take() map[pairKey]*requestStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.cur
	m.cur = map[pairKey]*requestStats{}
	return out
}

// dimension values as CloudWatch shows them: "app/web/50dc6c495c0c9188",
// "targetgroup/web/73e2d6bc24d8a067".
func lbDim(arn string) string {
	_, v, _ := strings.Cut(arn, ":loadbalancer/")
	return v
}

func tgDim(arn string) string {
	if i := strings.Index(arn, ":targetgroup/"); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

// hostCounts are a target group's healthy and unhealthy targets.
type hostCounts struct{ healthy, unhealthy float64 }

// metricPoints is the period's datapoints at t: request metrics per load
// balancer and per (load balancer, target group), RequestCountPerTarget
// per target group, and host counts per (load balancer, target group).
// Pure.
func metricPoints(stats map[pairKey]*requestStats, hosts map[pairKey]hostCounts, t time.Time) []tsdb.Point {
	var out []tsdb.Point
	point := func(name, unit string, dims []tsdb.Dim, s tsdb.Sample) {
		out = append(out, tsdb.Point{Key: tsdb.NewKey(Namespace, name, dims), T: t, Unit: unit, Sample: s})
	}
	count := func(name string, dims []tsdb.Dim, v float64) {
		point(name, "Count", dims, tsdb.Sample{Min: v, Max: v, Sum: v, Count: 1})
	}
	for k, s := range stats {
		dims := []tsdb.Dim{{Name: "LoadBalancer", Value: lbDim(k.lb)}}
		if k.tg != "" {
			dims = append(dims, tsdb.Dim{Name: "TargetGroup", Value: tgDim(k.tg)})
		}
		count("RequestCount", dims, s.requests)
		for n := 2; n <= 5; n++ {
			if s.target[n] > 0 {
				count("HTTPCode_Target_"+string(rune('0'+n))+"XX_Count", dims, s.target[n])
			}
			if s.elb[n] > 0 && k.tg == "" {
				count("HTTPCode_ELB_"+string(rune('0'+n))+"XX_Count", dims, s.elb[n])
			}
		}
		if s.rtCount > 0 {
			point("TargetResponseTime", "Seconds", dims, tsdb.Sample{Min: s.rtMin, Max: s.rtMax, Sum: s.rtSum, Count: s.rtCount})
		}
		if k.tg != "" {
			if h := hosts[k]; h.healthy > 0 {
				count("RequestCountPerTarget", []tsdb.Dim{{Name: "TargetGroup", Value: tgDim(k.tg)}}, s.requests/h.healthy)
			}
		}
	}
	for k, h := range hosts {
		dims := []tsdb.Dim{{Name: "LoadBalancer", Value: lbDim(k.lb)}, {Name: "TargetGroup", Value: tgDim(k.tg)}}
		count("HealthyHostCount", dims, h.healthy)
		count("UnHealthyHostCount", dims, h.unhealthy)
	}
	return out
}

// hostCounts counts the healthy and unhealthy targets of the target
// groups this server's plane serves, by (load balancer, group).
func (s *Service) hostCounts() map[pairKey]hostCounts {
	s.mu.Lock()
	pairs := s.servedPairs
	s.mu.Unlock()
	out := map[pairKey]hostCounts{}
	for _, k := range pairs {
		var h hostCounts
		for _, th := range s.plane.TargetHealth(k.tg) {
			switch th.State {
			case "healthy":
				h.healthy++
			case "unhealthy", "unhealthy.draining":
				h.unhealthy++
			}
		}
		out[k] = h
	}
	return out
}

// RunMetrics publishes the AWS/ApplicationELB metrics of every period
// (default 60 s) through sink until ctx ends.
func (s *Service) RunMetrics(ctx context.Context, m *RequestMetrics, period time.Duration, sink func(context.Context, []tsdb.Point) error) {
	if period <= 0 {
		period = time.Minute
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	start := s.now().Truncate(period)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pts := metricPoints(m.take(), s.hostCounts(), start)
		start = s.now().Truncate(period)
		if len(pts) == 0 {
			continue
		}
		if err := sink(ctx, pts); err != nil && ctx.Err() == nil {
			s.log.Warn("load balancer metrics not published", "err", err, "points", len(pts))
		}
	}
}
