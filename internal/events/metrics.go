package events

import (
	"context"
	"sync"
	"time"
)

// metricBuf sums AWS/Events counts per metric, rule and minute, and hands
// them to the MetricSink every few seconds.
type metricBuf struct {
	mu  sync.Mutex
	sum map[metricKey]float64
}

type metricKey struct {
	name, rule string
	minute     int64
}

func newMetricBuf() *metricBuf { return &metricBuf{sum: map[metricKey]float64{}} }

func (b *metricBuf) add(name, rule string, t time.Time, n float64) {
	b.mu.Lock()
	b.sum[metricKey{name, rule, t.Unix() / 60}] += n
	b.mu.Unlock()
}

func (b *metricBuf) take() []Metric {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Metric, 0, len(b.sum))
	for k, v := range b.sum {
		out = append(out, Metric{Name: k.name, RuleName: k.rule, Time: time.Unix(k.minute*60, 0).UTC(), Count: v})
	}
	clear(b.sum)
	return out
}

func (b *metricBuf) run(ctx context.Context, s *Service) {
	every := s.metricsEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ms := b.take()
		if len(ms) == 0 || s.deps.Metrics == nil {
			continue
		}
		if err := s.deps.Metrics.PublishEventMetrics(ctx, ms); err != nil && ctx.Err() == nil {
			s.log.Warn("events: publishing AWS/Events metrics failed", "err", err)
		}
	}
}
