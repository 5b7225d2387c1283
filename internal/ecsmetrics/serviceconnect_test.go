package ecsmetrics

import (
	"testing"
	"time"

	"github.com/berthdev/berth/internal/serviceconnect"
)

func TestServiceConnectMetrics(t *testing.T) {
	end := time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)
	at := func(sec int) time.Time { return end.Add(time.Duration(sec) * time.Second) }
	in := func(req, h2, h5 uint64, active uint64, rtSum float64, rtN uint64, rtMax float64) *serviceconnect.Traffic {
		return &serviceconnect.Traffic{Inbound: map[string]serviceconnect.Counters{"web": {Requests: req, NewConnections: 1, ActiveConnections: active,
			ProcessedBytes: 1000, HTTP2XX: h2, HTTP5XX: h5, ResponseTimeSumMs: rtSum, ResponseTimeCount: rtN, ResponseTimeMaxMs: rtMax}}}
	}
	samples := []Sample{
		{Cluster: "prod", Service: "web", TaskARN: "t1", At: at(-50), SC: in(10, 9, 1, 5, 100, 10, 30)},
		{Cluster: "prod", Service: "web", TaskARN: "t1", At: at(-10), SC: in(20, 20, 0, 2, 100, 20, 12)},
		{Cluster: "prod", Service: "web", TaskARN: "t2", At: at(-20), SC: in(5, 5, 0, 3, 0, 0, 0)},
		{Cluster: "prod", Service: "ui", TaskARN: "t3", At: at(-5), SC: &serviceconnect.Traffic{Outbound: map[string]serviceconnect.Counters{
			"web": {Requests: 35, HTTP2XX: 34, HTTP5XX: 1, ActiveConnections: 4, HealthyEndpoints: 2, UnhealthyEndpoints: 1}}}},
		// Outside the period, and a sample without traffic.
		{Cluster: "prod", Service: "web", TaskARN: "t1", At: at(-61), SC: in(999, 0, 0, 0, 0, 0, 0)},
		{Cluster: "prod", Service: "web", TaskARN: "t1", At: at(-1)},
	}
	m := index(t, Compute(end, time.Minute, samples, nil))
	inDims := " ClusterName=prod ServiceName=web DiscoveryName=web"
	outDims := " ClusterName=prod ServiceName=ui TargetDiscoveryName=web"
	check := func(k string, n, sum float64) {
		t.Helper()
		s, ok := m["AWS/ECS "+k]
		if !ok {
			t.Fatalf("no %s in %v", k, m)
		}
		if s.n != n || s.avg*s.n != sum {
			t.Errorf("%s: samples %v sum %v, want %v and %v", k, s.n, s.avg*s.n, n, sum)
		}
	}
	check("RequestCount"+inDims, 3, 35)
	check("NewConnectionCount"+inDims, 3, 3)
	check("ProcessedBytes"+inDims, 3, 3000)
	check("HTTPCode_Target_2XX_Count"+inDims, 3, 34)
	check("HTTPCode_Target_5XX_Count"+inDims, 3, 1)
	check("ActiveConnectionCount"+inDims, 2, 5) // t1's last (2) and t2's (3)
	check("TargetResponseTime"+inDims, 30, 200)
	if s := m["AWS/ECS TargetResponseTime"+inDims]; s.max != 30 || s.min != 5 {
		t.Errorf("TargetResponseTime min %v max %v", s.min, s.max)
	}
	check("RequestCount"+outDims, 1, 35)
	check("HTTPCode_Target_5XX_Count"+outDims, 1, 1)
	check("HealthyEndpointCount"+outDims, 1, 2)
	check("UnhealthyEndpointCount"+outDims, 1, 1)
	if _, ok := m["AWS/ECS HealthyEndpointCount"+inDims]; ok {
		t.Error("endpoint counts are outbound only")
	}
}
