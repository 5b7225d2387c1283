package cloudwatch

import (
	"testing"

	"github.com/berthdev/berth/internal/tsdb"
)

func TestParseStat(t *testing.T) {
	for s, want := range map[string]float64{"Average": -1, "SampleCount": -1, "p0": 0, "p99": 99, "p99.9": 99.9, "p99.99": 99.99, "p100": 100, "p100.0": 100} {
		st, ok := parseStat(s)
		if !ok || st.percentile != want {
			t.Errorf("parseStat(%q) = %+v %v", s, st, ok)
		}
	}
	for _, s := range []string{"", "avg", "p", "p101", "p99.999", "P99", "tm99", "p-1", "p1e2"} {
		if _, ok := parseStat(s); ok {
			t.Errorf("parseStat(%q) accepted", s)
		}
	}
}

func TestPercentile(t *testing.T) {
	vc := []tsdb.ValueCount{{V: 1, C: 9}, {V: 10, C: 1}}
	for p, want := range map[float64]float64{0: 1, 50: 1, 90: 1, 90.1: 10, 99: 10, 100: 10} {
		if got, ok := percentile(vc, p); !ok || got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if _, ok := percentile(nil, 50); ok {
		t.Error("percentile of nothing")
	}
	one := []tsdb.ValueCount{{V: 7, C: 1}}
	if got, _ := percentile(one, 0.5); got != 7 {
		t.Errorf("single value: %v", got)
	}
}
