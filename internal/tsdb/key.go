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
	n := len(k.Namespace) + len(k.MetricName) + 2
	for _, d := range k.Dims {
		n += len(d.Name) + len(d.Value) + 2
	}
	return string(appendKeyString(make([]byte, 0, n), k))
}

// appendKeyString appends the canonical form of k to b.
func appendKeyString(b []byte, k SeriesKey) []byte {
	b = appendEscaped(b, k.Namespace)
	b = append(b, '|')
	b = appendEscaped(b, k.MetricName)
	b = append(b, '|')
	for i, d := range k.Dims {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEscaped(b, d.Name)
		b = append(b, '=')
		b = appendEscaped(b, d.Value)
	}
	return b
}

func appendEscaped(b []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		switch s[i] {
		case '\\', '|', '=', ',':
			plain = false
		}
	}
	if plain {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '|', '=', ',':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return b
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
	// HighResolution is true once a datapoint was stored with
	// StorageResolution 1.
	HighResolution bool
}
