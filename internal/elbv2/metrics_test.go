package elbv2

import (
	"testing"
	"time"

	"github.com/berthdev/berth/internal/tsdb"
)

func TestMetricPoints(t *testing.T) {
	const lb = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/50dc6c495c0c9188"
	const tg = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/73e2d6bc24d8a067"
	m := NewRequestMetrics()
	m.Request(lb, tg, 200, 10*time.Millisecond, false)
	m.Request(lb, tg, 200, 30*time.Millisecond, false)
	m.Request(lb, tg, 503, 20*time.Millisecond, false)
	m.Request(lb, tg, 502, 0, true) // the load balancer answered: a forward failed
	m.Request(lb, "", 301, 0, true) // a redirect
	t0 := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	pts := metricPoints(m.take(), map[pairKey]hostCounts{{lb: lb, tg: tg}: {healthy: 2, unhealthy: 1}}, t0)
	got := map[string]tsdb.Sample{}
	for _, p := range pts {
		if p.T != t0 {
			t.Fatalf("time %v", p.T)
		}
		if p.Key.Namespace != Namespace {
			t.Fatalf("namespace %q", p.Key.Namespace)
		}
		got[keyName(p.Key)] = p.Sample
	}
	lbOnly := `{LoadBalancer=app/web/50dc6c495c0c9188}`
	pair := `{LoadBalancer=app/web/50dc6c495c0c9188,TargetGroup=targetgroup/web/73e2d6bc24d8a067}`
	want := map[string]float64{
		"RequestCount" + lbOnly:                                               5,
		"RequestCount" + pair:                                                 4,
		"HTTPCode_Target_2XX_Count" + lbOnly:                                  2,
		"HTTPCode_Target_5XX_Count" + pair:                                    1,
		"HTTPCode_ELB_5XX_Count" + lbOnly:                                     1,
		"HTTPCode_ELB_3XX_Count" + lbOnly:                                     1,
		"HealthyHostCount" + pair:                                             2,
		"UnHealthyHostCount" + pair:                                           1,
		"RequestCountPerTarget{TargetGroup=targetgroup/web/73e2d6bc24d8a067}": 2,
	}
	for k, v := range want {
		var found bool
		for key, s := range got {
			if key == k {
				found = true
				if s.Sum != v {
					t.Errorf("%s = %v, want %v", k, s.Sum, v)
				}
			}
		}
		if !found {
			t.Errorf("%s missing from %v", k, keys(got))
		}
	}
	for key, s := range got {
		if key == "TargetResponseTime"+pair && (s.Count != 3 || s.Min != 0.01 || s.Max != 0.03) {
			t.Errorf("TargetResponseTime: %+v", s)
		}
	}
	if len(m.take()) != 0 {
		t.Fatal("the period was not reset")
	}
}

func keys(m map[string]tsdb.Sample) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// keyName writes a key as Name{Dim=value,...}.
func keyName(k tsdb.SeriesKey) string {
	s := k.MetricName + "{"
	for i, d := range k.Dims {
		if i > 0 {
			s += ","
		}
		s += d.Name + "=" + d.Value
	}
	return s + "}"
}
