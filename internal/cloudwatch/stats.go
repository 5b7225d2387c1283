package cloudwatch

import (
	"math"
	"regexp"
	"strconv"

	"github.com/berthdev/berth/internal/tsdb"
)

// stat is a parsed statistic: one of the five standard ones, or a
// percentile (pNN, pNN.N, pNN.NN).
type stat struct {
	name       string  // as given: "Average", "p99.5"
	percentile float64 // for percentiles; -1 otherwise
}

var percentileRE = regexp.MustCompile(`^p(\d{1,2}(\.\d{1,2})?|100(\.0{1,2})?)$`)

// parseStat parses a statistic name; ok is false for an unknown one.
func parseStat(s string) (stat, bool) {
	switch s {
	case "SampleCount", "Average", "Sum", "Minimum", "Maximum":
		return stat{name: s, percentile: -1}, true
	}
	if percentileRE.MatchString(s) {
		p, err := strconv.ParseFloat(s[1:], 64)
		if err == nil && p >= 0 && p <= 100 {
			return stat{name: s, percentile: p}, true
		}
	}
	return stat{}, false
}

func (st stat) needsValues() bool { return st.percentile >= 0 }

// value computes the statistic over a bucket; ok is false when it cannot
// be computed (a percentile over statistic sets only).
func (st stat) value(b tsdb.Bucket) (float64, bool) {
	switch st.name {
	case "SampleCount":
		return b.Count, true
	case "Average":
		if b.Count == 0 {
			return 0, false
		}
		return b.Sum / b.Count, true
	case "Sum":
		return b.Sum, true
	case "Minimum":
		return b.Min, true
	case "Maximum":
		return b.Max, true
	}
	return percentile(b.Values, st.percentile)
}

// percentile is the nearest-rank percentile of values (sorted by V, each
// observed C times): the smallest value with at least p% of the
// observations at or below it.
func percentile(values []tsdb.ValueCount, p float64) (float64, bool) {
	total := 0.0
	for _, v := range values {
		total += v.C
	}
	if total == 0 {
		return 0, false
	}
	rank := math.Max(1, math.Ceil(p/100*total-1e-9))
	seen := 0.0
	for _, v := range values {
		seen += v.C
		if seen >= rank {
			return v.V, true
		}
	}
	return values[len(values)-1].V, true
}
