package tsdb

import (
	"slices"
	"strings"
	"time"
)

// Dim is one dimension of a metric: a name and its value.
type Dim struct{ Name, Value string }

// SeriesKey identifies a metric: namespace, name and dimensions (Dims sorted
// by Name; NewKey sorts).
type SeriesKey struct {
	Namespace, MetricName string
	Dims                  []Dim
}

// NewKey returns the key of a metric with its dimensions sorted by name (then
// value). The dims slice is copied.
func NewKey(namespace, name string, dims []Dim) SeriesKey {
	d := slices.Clone(dims)
	slices.SortStableFunc(d, func(a, b Dim) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	if len(d) == 0 {
		d = nil
	}
	return SeriesKey{Namespace: namespace, MetricName: name, Dims: d}
}

// String is the canonical form of the key, unique per key:
// "namespace|name|dim=value,dim=value", where '\\', '|', '=' and ',' inside
// a part are escaped with a backslash.
func (k SeriesKey) String() string {
	var b strings.Builder
	b.Grow(len(k.Namespace) + len(k.MetricName) + 2 + 24*len(k.Dims))
	escape(&b, k.Namespace)
	b.WriteByte('|')
	escape(&b, k.MetricName)
	b.WriteByte('|')
	for i, d := range k.Dims {
		if i > 0 {
			b.WriteByte(',')
		}
		escape(&b, d.Name)
		b.WriteByte('=')
		escape(&b, d.Value)
	}
	return b.String()
}

func escape(b *strings.Builder, s string) {
	if !strings.ContainsAny(s, `\|=,`) {
		b.WriteString(s)
		return
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '|', '=', ',':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
}

// Sample is one datapoint: a value v with count c is
// {Min: v, Max: v, Sum: v*c, Count: c}; a statistic set is given as is.
//
// A sample with Min == Max and Sum == Min*Count is stored as a value (it
// contributes Count copies of Min to percentile values); any other sample is
// a statistic set and contributes to Min/Max/Sum/Count only.
type Sample struct{ Min, Max, Sum, Count float64 }

// ValueSample returns the sample of value v observed c times.
func ValueSample(v, c float64) Sample { return Sample{Min: v, Max: v, Sum: v * c, Count: c} }

// isValue reports whether s is a value with a count rather than a statistic set.
func (s Sample) isValue() bool { return s.Min == s.Max && s.Sum == s.Min*s.Count }

// Point is one datapoint of a series at time T.
type Point struct {
	Key            SeriesKey
	T              time.Time
	Sample         Sample
	Unit           string
	HighResolution bool // StorageResolution 1
}

// ValueCount is a value and the number of times it was observed.
type ValueCount struct{ V, C float64 }

// Bucket aggregates the samples whose time falls in [T, T+period). Values
// (sorted by V, for percentiles) are filled only when wantValues; a
// statistic-set sample contributes to Min/Max/Sum/Count only.
type Bucket struct {
	T                    time.Time
	Min, Max, Sum, Count float64
	Values               []ValueCount
}

// SeriesInfo describes a known series.
type SeriesInfo struct {
	Key       SeriesKey
	LastWrite time.Time // wall time (Options.Now) of the last Append that touched it
	Units     []string  // units its samples were stored with, in first-seen order
}
