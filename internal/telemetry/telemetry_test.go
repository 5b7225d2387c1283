package telemetry

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/placement"
)

// The seams *Metrics implements.
var (
	_ awsproto.Observer = (*Metrics)(nil)
	_ interface {
		ServicePass(time.Duration, error)
		TasksPlaced(int)
		PlacementFailed(string)
	} = (*Metrics)(nil)
	_ interface {
		StreamOpened()
		StreamClosed()
		ReportReceived(error)
	} = (*Metrics)(nil)
)

// scrape fetches h's metrics and parses them as Prometheus does.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", Path, nil))
	if w.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", w.Code, w.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(w.Body.String()))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// find returns the metric of family name whose labels include want.
func find(mfs map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	mf := mfs[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func TestAPIRequestsByServiceOperationCode(t *testing.T) {
	m := New(Options{})
	m.ObserveRequest("ecs", "ListClusters", "", 2*time.Millisecond)
	m.ObserveRequest("ecs", "ListClusters", "", 4*time.Millisecond)
	m.ObserveRequest("ecs", "DescribeServices", "ClusterNotFoundException", time.Millisecond)
	m.ObserveRequest("", "", "UnknownOperationException", time.Millisecond)

	mfs := scrape(t, m.Handler())
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"service": "ecs", "operation": "ListClusters", "code": "ok"}, 2},
		{map[string]string{"service": "ecs", "operation": "DescribeServices", "code": "ClusterNotFoundException"}, 1},
		{map[string]string{"service": "unknown", "operation": "unknown", "code": "UnknownOperationException"}, 1},
	} {
		got := find(mfs, "berth_api_requests_total", c.labels)
		if got == nil || got.GetCounter().GetValue() != c.want {
			t.Errorf("berth_api_requests_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	h := find(mfs, "berth_api_request_duration_seconds", map[string]string{"service": "ecs", "operation": "ListClusters"})
	if h == nil || h.GetHistogram().GetSampleCount() != 2 || h.GetHistogram().GetSampleSum() < 0.0059 || h.GetHistogram().GetSampleSum() > 0.0061 {
		t.Fatalf("ListClusters latency histogram: %v", h)
	}
	if mfs["berth_api_requests_total"].GetHelp() == "" {
		t.Error("berth_api_requests_total has no HELP")
	}
}

func TestSchedulerAndAgentObservers(t *testing.T) {
	m := New(Options{})
	m.ServicePass(10*time.Millisecond, nil)
	m.ServicePass(20*time.Millisecond, errs.E(errs.Unavailable, "etcd down"))
	m.TasksPlaced(3)
	m.TasksPlaced(2)
	m.PlacementFailed(placement.ReasonMemory)
	m.PlacementFailed(placement.ReasonNoInstances)
	m.PlacementFailed("something new")
	m.StreamOpened()
	m.StreamOpened()
	m.StreamClosed()
	m.ReportReceived(nil)
	m.ReportReceived(errs.E(errs.NotFound, "no such task"))

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"berth_scheduler_passes_total", map[string]string{"result": "ok"}, 1},
		{"berth_scheduler_passes_total", map[string]string{"result": "error"}, 1},
		{"berth_scheduler_tasks_placed_total", nil, 5},
		{"berth_scheduler_placement_failures_total", map[string]string{"reason": "RESOURCE:MEMORY"}, 1},
		{"berth_scheduler_placement_failures_total", map[string]string{"reason": "NoInstances"}, 1},
		{"berth_scheduler_placement_failures_total", map[string]string{"reason": "other"}, 1},
		{"berth_agents_connected", nil, 1},
		{"berth_agent_streams_opened_total", nil, 2},
		{"berth_agent_reports_total", map[string]string{"result": "ok"}, 1},
		{"berth_agent_reports_total", map[string]string{"result": "not_found"}, 1},
	} {
		mfs := scrape(t, m.Handler())
		got := find(mfs, c.name, c.labels)
		if got == nil {
			t.Errorf("%s%v missing", c.name, c.labels)
			continue
		}
		v := got.GetCounter().GetValue() + got.GetGauge().GetValue()
		if v != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, v, c.want)
		}
	}
	if h := find(scrape(t, m.Handler()), "berth_scheduler_pass_duration_seconds", nil); h.GetHistogram().GetSampleCount() != 2 {
		t.Fatalf("pass duration count: %v", h)
	}
}

func TestRuntimeCollectorsAndNoGlobalState(t *testing.T) {
	a, b := New(Options{}), New(Options{})
	a.TasksPlaced(7)
	mfs := scrape(t, b.Handler())
	if v := find(mfs, "berth_scheduler_tasks_placed_total", nil).GetCounter().GetValue(); v != 0 {
		t.Fatalf("a second Metrics sees the first one's counts: %v", v)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if mfs[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
	for name := range mfs {
		if strings.HasPrefix(name, "etcd_") {
			t.Fatalf("etcd metric %s served without Options.EtcdMetrics", name)
		}
	}
}

func TestEtcdMetricsFromTheDefaultRegistry(t *testing.T) {
	// etcd's server packages (linked through internal/store) register
	// their metrics in the default registry when they load.
	m := New(Options{EtcdMetrics: true})
	mfs := scrape(t, m.Handler())
	var etcd int
	for name := range mfs {
		switch {
		case strings.HasPrefix(name, "etcd_"):
			etcd++
		case strings.HasPrefix(name, "berth_"), strings.HasPrefix(name, "go_"), strings.HasPrefix(name, "process_"):
		default:
			t.Errorf("unexpected family %s from the default registry", name)
		}
	}
	if etcd == 0 || mfs["etcd_server_has_leader"] == nil {
		t.Fatalf("no etcd metrics (%d families)", etcd)
	}
}

func TestResultLabel(t *testing.T) {
	for err, want := range map[error]string{
		nil:                                 "ok",
		errs.E(errs.AlreadyExists, "x"):     "already_exists",
		errors.New("plain"):                 "other",
		errs.E(errs.LimitExceeded, "limit"): "limit_exceeded",
	} {
		if got := resultLabel(err); got != want {
			t.Errorf("resultLabel(%v) = %q, want %q", err, got, want)
		}
	}
}
