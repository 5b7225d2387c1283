package telemetry

import "time"

// unknown is the label value of a service or operation the request did not
// name (or named one Berth does not serve).
const unknown = "unknown"

// ObserveRequest implements awsproto.Observer: one API request answered.
func (m *Metrics) ObserveRequest(service, operation, code string, took time.Duration) {
	if service == "" {
		service = unknown
	}
	if operation == "" {
		operation = unknown
	}
	if code == "" {
		code = "ok"
	}
	m.apiRequests.WithLabelValues(service, operation, code).Inc()
	m.apiDuration.WithLabelValues(service, operation).Observe(took.Seconds())
}
