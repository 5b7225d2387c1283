package telemetry

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// unknown is the label value of a service or operation the request did not
// name (or named one Berth does not serve).
const unknown = "unknown"

// apiKey names one series of berth_api_requests_total.
type apiKey struct{ service, operation, code string }

// apiSeries are the metrics one apiKey moves, looked up once: a lookup by
// label values hashes them every time, which costs more than the counting.
type apiSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// apiCache maps apiKey to *apiSeries. The key space is bounded: services
// and operations are those Berth serves, codes those it answers.
type apiCache struct{ m sync.Map }

// ObserveRequest implements awsproto.Observer: one API request answered.
func (m *Metrics) ObserveRequest(service, operation, code string, took time.Duration) {
	k := apiKey{service, operation, code}
	v, ok := m.api.m.Load(k)
	if !ok {
		v, _ = m.api.m.LoadOrStore(k, m.newAPISeries(k))
	}
	s := v.(*apiSeries)
	s.requests.Inc()
	s.duration.Observe(took.Seconds())
}

func (m *Metrics) newAPISeries(k apiKey) *apiSeries {
	if k.service == "" {
		k.service = unknown
	}
	if k.operation == "" {
		k.operation = unknown
	}
	if k.code == "" {
		k.code = "ok"
	}
	return &apiSeries{
		requests: m.apiRequests.WithLabelValues(k.service, k.operation, k.code),
		duration: m.apiDuration.WithLabelValues(k.service, k.operation),
	}
}
