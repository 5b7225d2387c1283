// Package telemetry is Berth's own Prometheus metrics: what the control
// plane does (API requests by service, operation and outcome; store
// latency; scheduler work; connected agents; registry traffic), served as
// `GET /metrics` in Prometheus's text format. docs/telemetry.md lists every
// metric.
//
// The metric definitions live here; the subsystems only expose small
// observer seams (awsproto.Observer, servicectl.SchedulerObserver,
// agentgw.Observer) that *Metrics implements, plus two decorators this
// package provides: Store (wraps a store.Store) and RegistryHandler (wraps
// the /v2/ handler). internal/daemon wires them.
//
// Each Metrics has its own prometheus.Registry, so two servers in one
// process (tests) count separately. etcd registers its server metrics in
// client_golang's global default registry when its packages load; Handler
// adds the etcd_* families from there when Options.EtcdMetrics is set (an
// embedded store), so they are process-wide by nature.
package telemetry

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Path is where the metrics are served on the API listener.
const Path = "/metrics"

// Options configures a Metrics.
type Options struct {
	// EtcdMetrics adds etcd's own etcd_* metrics (from the global default
	// registry, where the embedded etcd server registers them) to what
	// Handler serves. Set it for an embedded store only: with an external
	// cluster they would be the zeros of a server not running here.
	EtcdMetrics bool
}

// Metrics holds every Berth metric of one server. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	gatherer prometheus.Gatherer

	apiRequests *prometheus.CounterVec
	apiDuration *prometheus.HistogramVec
	api         apiCache

	storeDuration    *prometheus.HistogramVec
	storeErrors      *prometheus.CounterVec
	storeWatchEvents prometheus.Counter

	schedPasses       *prometheus.CounterVec
	schedPassDuration prometheus.Histogram
	schedTasksPlaced  prometheus.Counter
	schedPlaceFailed  *prometheus.CounterVec

	agentStreams  prometheus.Gauge
	agentReports  *prometheus.CounterVec
	agentSessions prometheus.Counter

	registryRequests *prometheus.CounterVec
	registryBlobIn   prometheus.Counter
	registryBlobOut  prometheus.Counter
}

// Buckets of the latency histograms, in seconds: API calls take from a few
// hundred microseconds (a read) to seconds (a large RunTask).
var (
	apiBuckets   = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	storeBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5}
	passBuckets  = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
)

// New returns a Metrics with every metric registered, and Go runtime and
// process collectors.
func New(opts Options) *Metrics {
	reg := prometheus.NewRegistry()
	f := factory{reg}
	m := &Metrics{
		reg: reg,
		apiRequests: f.counterVec("berth_api_requests_total",
			"AWS API requests answered, by service (SigV4 signing name), operation and outcome (the AWS error code, or ok).",
			"service", "operation", "code"),
		apiDuration: f.histogramVec("berth_api_request_duration_seconds",
			"Time from receiving an AWS API request to its answer being written, by service and operation.",
			apiBuckets, "service", "operation"),

		storeDuration: f.histogramVec("berth_store_request_duration_seconds",
			"Latency of store (etcd) calls, by operation: get, list, txn, watch_open, grant, keepalive, revoke, compact.",
			storeBuckets, "op"),
		storeErrors: f.counterVec("berth_store_errors_total",
			"Store (etcd) calls that failed, by operation and error kind; a missing key and the caller's own cancellation are not failures.",
			"op", "kind"),
		storeWatchEvents: f.counter("berth_store_watch_events_total",
			"Changes delivered by store watches to Berth's controllers and streams."),

		schedPasses: f.counterVec("berth_scheduler_passes_total",
			"Service controller passes (one reconciliation of every service), by result (ok or error).",
			"result"),
		schedPassDuration: f.histogram("berth_scheduler_pass_duration_seconds",
			"Duration of service controller passes.", passBuckets),
		schedTasksPlaced: f.counter("berth_scheduler_tasks_placed_total",
			"Service tasks the service controller placed on container instances and committed."),
		schedPlaceFailed: f.counterVec("berth_scheduler_placement_failures_total",
			"Service task starts that could not place (all) their tasks, by ECS's placement failure reason.",
			"reason"),

		agentStreams: f.gauge("berth_agents_connected",
			"Agents connected now: open assignment streams."),
		agentSessions: f.counter("berth_agent_streams_opened_total",
			"Assignment streams opened by agents (connections and reconnections)."),
		agentReports: f.counterVec("berth_agent_reports_total",
			"State reports received from agents, by result (ok, or the error kind that refused it).",
			"result"),

		registryRequests: f.counterVec("berth_registry_requests_total",
			"Registry (OCI distribution, /v2/) requests, by HTTP method, route and HTTP status code.",
			"method", "route", "code"),
		registryBlobIn: f.counter("berth_registry_blob_received_bytes_total",
			"Blob bytes received by the registry (upload request bodies)."),
		registryBlobOut: f.counter("berth_registry_blob_sent_bytes_total",
			"Blob bytes sent by the registry (blob downloads)."),
	}
	// Series whose absence would read as "no data" start at zero.
	m.schedPasses.WithLabelValues("ok")
	m.schedPasses.WithLabelValues("error")
	m.agentReports.WithLabelValues("ok")
	reg.MustRegister(collectors.NewGoCollector())
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.gatherer = reg
	if opts.EtcdMetrics {
		m.gatherer = prometheus.Gatherers{reg, prefixGatherer{g: prometheus.DefaultGatherer, prefix: "etcd_"}}
	}
	return m
}

// Handler serves the metrics in Prometheus's exposition formats (text, or
// what the scraper negotiates). It needs no authentication.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Gather returns the current metric families (tests).
func (m *Metrics) Gather() ([]*dto.MetricFamily, error) { return m.gatherer.Gather() }

// prefixGatherer passes on the families of g whose name has prefix.
type prefixGatherer struct {
	g      prometheus.Gatherer
	prefix string
}

func (p prefixGatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := p.g.Gather()
	out := mfs[:0]
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), p.prefix) {
			out = append(out, mf)
		}
	}
	return out, err
}

// factory makes and registers metrics.
type factory struct{ reg prometheus.Registerer }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}
