package ecsmetrics

import (
	"slices"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/serviceconnect"
)

// Service Connect metrics (issue 12, item 5): the proxies' traffic
// counters, reported by the agents with each task's usage, become the
// metrics ECS publishes in AWS/ECS for Service Connect: per direction,
// dimensions ClusterName+ServiceName+DiscoveryName for the traffic a
// service receives and ClusterName+ServiceName+TargetDiscoveryName for
// the traffic it sends. docs/service-connect.md lists them.

// scKey is one series: a service, a direction and a discovery name.
type scKey struct {
	cluster, service string
	outbound         bool
	discovery        string
}

func (k scKey) dims() []Dimension {
	name := "DiscoveryName"
	if k.outbound {
		name = "TargetDiscoveryName"
	}
	return []Dimension{{"ClusterName", k.cluster}, {"ServiceName", k.service}, {name, k.discovery}}
}

// serviceConnectData computes the Service Connect datapoints of the
// samples within (end-period, end]. Counts are sums of the reported
// deltas (one sample per report); ActiveConnectionCount and the endpoint
// counts take each task's last report of the period (one sample per
// task); TargetResponseTime is the mean over every timed request, its
// maximum the largest reported and its minimum the smallest per-report
// mean.
func serviceConnectData(end time.Time, period time.Duration, samples []Sample) []Datum {
	start := end.Add(-period)
	type series struct {
		counts       map[string][]float64
		lastByTask   map[string]serviceconnect.Counters
		lastAt       map[string]time.Time
		rtSum, rtCnt float64
		rtMax, rtMin float64
		rtAny        bool
	}
	all := map[scKey]*series{}
	get := func(k scKey) *series {
		s := all[k]
		if s == nil {
			s = &series{counts: map[string][]float64{}, lastByTask: map[string]serviceconnect.Counters{}, lastAt: map[string]time.Time{}}
			all[k] = s
		}
		return s
	}
	add := func(k scKey, task string, at time.Time, c serviceconnect.Counters) {
		s := get(k)
		for name, v := range map[string]uint64{
			"RequestCount": c.Requests, "NewConnectionCount": c.NewConnections, "ProcessedBytes": c.ProcessedBytes,
			"HTTPCode_Target_2XX_Count": c.HTTP2XX, "HTTPCode_Target_3XX_Count": c.HTTP3XX,
			"HTTPCode_Target_4XX_Count": c.HTTP4XX, "HTTPCode_Target_5XX_Count": c.HTTP5XX,
		} {
			s.counts[name] = append(s.counts[name], float64(v))
		}
		if !at.Before(s.lastAt[task]) {
			s.lastAt[task] = at
			s.lastByTask[task] = c
		}
		if c.ResponseTimeCount > 0 {
			mean := c.ResponseTimeSumMs / float64(c.ResponseTimeCount)
			if !s.rtAny {
				s.rtMin, s.rtMax = mean, c.ResponseTimeMaxMs
			}
			s.rtAny = true
			s.rtSum += c.ResponseTimeSumMs
			s.rtCnt += float64(c.ResponseTimeCount)
			s.rtMin = min(s.rtMin, mean)
			s.rtMax = max(s.rtMax, c.ResponseTimeMaxMs, mean)
		}
	}
	for _, sm := range samples {
		if sm.SC == nil || sm.Service == "" || !sm.At.After(start) || sm.At.After(end) {
			continue
		}
		for disc, c := range sm.SC.Inbound {
			add(scKey{sm.Cluster, sm.Service, false, disc}, sm.TaskARN, sm.At, c)
		}
		for disc, c := range sm.SC.Outbound {
			add(scKey{sm.Cluster, sm.Service, true, disc}, sm.TaskARN, sm.At, c)
		}
	}
	keys := make([]scKey, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b scKey) int {
		return strings.Compare(strings.Join([]string{a.cluster, a.service, boolStr(a.outbound), a.discovery}, "\x00"),
			strings.Join([]string{b.cluster, b.service, boolStr(b.outbound), b.discovery}, "\x00"))
	})
	var out []Datum
	put := func(k scKey, name, unit string, vals []float64) {
		if len(vals) == 0 {
			return
		}
		d := Datum{Namespace: NamespaceECS, MetricName: name, Dimensions: k.dims(), Timestamp: end, Unit: unit,
			SampleCount: float64(len(vals)), Min: vals[0], Max: vals[0]}
		for _, v := range vals {
			d.Sum += v
			d.Min, d.Max = min(d.Min, v), max(d.Max, v)
		}
		out = append(out, d)
	}
	for _, k := range keys {
		s := all[k]
		for _, name := range []string{"RequestCount", "NewConnectionCount", "HTTPCode_Target_2XX_Count", "HTTPCode_Target_3XX_Count",
			"HTTPCode_Target_4XX_Count", "HTTPCode_Target_5XX_Count"} {
			put(k, name, "Count", s.counts[name])
		}
		put(k, "ProcessedBytes", "Bytes", s.counts["ProcessedBytes"])
		var active, healthy, unhealthy []float64
		for _, task := range sortedKeys(s.lastByTask) {
			c := s.lastByTask[task]
			active = append(active, float64(c.ActiveConnections))
			healthy = append(healthy, float64(c.HealthyEndpoints))
			unhealthy = append(unhealthy, float64(c.UnhealthyEndpoints))
		}
		put(k, "ActiveConnectionCount", "Count", active)
		if k.outbound {
			put(k, "HealthyEndpointCount", "Count", healthy)
			put(k, "UnhealthyEndpointCount", "Count", unhealthy)
		}
		if s.rtAny {
			out = append(out, Datum{Namespace: NamespaceECS, MetricName: "TargetResponseTime", Dimensions: k.dims(), Timestamp: end,
				Unit: "Milliseconds", SampleCount: s.rtCnt, Sum: s.rtSum, Min: s.rtMin, Max: s.rtMax})
		}
	}
	return out
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
