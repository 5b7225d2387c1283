package cloudwatch

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api/cloudwatchapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/tsdb"
)

// Limits of the metrics API (CloudWatch's published quotas).
const (
	MaxDatumsPerPut     = 1000
	MaxValuesPerDatum   = 150
	MaxDimensions       = 30
	MaxDatapoints       = 1440 // GetMetricStatistics
	MaxQueries          = 500  // GetMetricData
	DefaultMaxDatapoint = 100800
	ListMetricsPage     = 500
	PastLimit           = 14 * 24 * time.Hour
	FutureLimit         = 2 * time.Hour
	// valueLimit is CloudWatch's range for values: 2^360 either way.
	valueLimit = 2.348542582773833e108
)

func dims(ds []cloudwatchapi.Dimension) []tsdb.Dim {
	out := make([]tsdb.Dim, len(ds))
	for i, d := range ds {
		out[i] = tsdb.Dim{Name: deref(d.Name), Value: deref(d.Value)}
	}
	return out
}

func wireDims(ds []tsdb.Dim) []cloudwatchapi.Dimension {
	out := make([]cloudwatchapi.Dimension, len(ds))
	for i, d := range ds {
		out[i] = cloudwatchapi.Dimension{Name: ptr(d.Name), Value: ptr(d.Value)}
	}
	return out
}

func checkValue(v float64, param string) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return invalidValue("The value %s for parameter %s is invalid.", strings.TrimPrefix(fmt.Sprint(v), "+"), param)
	}
	if a := math.Abs(v); a > valueLimit || (a != 0 && a < 1/valueLimit) {
		return invalidValue("The value %v for parameter %s is out of range: values must be between -2^360 and 2^360, and 0 or at least 2^-360 in magnitude.", v, param)
	}
	return nil
}

func checkDimensions(ds []cloudwatchapi.Dimension, param string) error {
	if len(ds) > MaxDimensions {
		return invalidValue("The collection %s must not have a size greater than %d.", param, MaxDimensions)
	}
	seen := map[string]bool{}
	for _, d := range ds {
		n := deref(d.Name)
		if seen[n] {
			return invalidValue("No metric may have duplicate dimension names: %s appears twice in %s.", n, param)
		}
		seen[n] = true
	}
	return nil
}

// PutMetricData stores datapoints, durably before answering.
func (s *Service) PutMetricData(ctx context.Context, in *cloudwatchapi.PutMetricDataInput) (*cloudwatchapi.PutMetricDataResponse, error) {
	ns := deref(in.Namespace)
	if strings.HasPrefix(ns, "AWS/") {
		return nil, invalidValue("The value %s for parameter Namespace is invalid.", ns)
	}
	if len(in.EntityMetricData) > 0 {
		return nil, invalidValue("Berth does not support EntityMetricData; send MetricData.")
	}
	if len(in.MetricData) == 0 {
		return nil, missing("The parameter MetricData is required.")
	}
	if len(in.MetricData) > MaxDatumsPerPut {
		return nil, invalidValue("The collection MetricData must not have a size greater than %d.", MaxDatumsPerPut)
	}
	now := s.now()
	pts := make([]tsdb.Point, 0, len(in.MetricData))
	for i, d := range in.MetricData {
		p := fmt.Sprintf("MetricData.member.%d", i+1)
		if err := checkDimensions(d.Dimensions, p+".Dimensions"); err != nil {
			return nil, err
		}
		n := 0
		if d.Value != nil {
			n++
		}
		if d.Values != nil {
			n++
		}
		if d.StatisticValues != nil {
			n++
		}
		switch {
		case n == 0:
			return nil, missing("At least one of the parameters %[1]s.Value, %[1]s.StatisticValues or %[1]s.Values must be specified.", p)
		case d.Value != nil && d.StatisticValues != nil:
			return nil, combination("The parameters %[1]s.Value and %[1]s.StatisticValues are mutually exclusive and you have specified both.", p)
		case d.Value != nil && d.Values != nil:
			return nil, combination("The parameters %[1]s.Value and %[1]s.Values are mutually exclusive and you have specified both.", p)
		case d.Values != nil && d.StatisticValues != nil:
			return nil, combination("The parameters %[1]s.Values and %[1]s.StatisticValues are mutually exclusive and you have specified both.", p)
		case d.Counts != nil && d.Values == nil:
			return nil, combination("The parameter %[1]s.Counts may only be specified with %[1]s.Values.", p)
		}
		if len(d.Values) > MaxValuesPerDatum {
			return nil, invalidValue("The collection %s.Values must not have a size greater than %d.", p, MaxValuesPerDatum)
		}
		if d.Counts != nil && len(d.Counts) != len(d.Values) {
			return nil, invalidValue("The parameters %[1]s.Values and %[1]s.Counts must be of the same size.", p)
		}
		res := deref(d.StorageResolution)
		if d.StorageResolution != nil && res != 1 && res != 60 {
			return nil, invalidValue("The value %d for parameter %s.StorageResolution is invalid: it must be 1 or 60.", res, p)
		}
		t := now
		if d.Timestamp != nil {
			t = d.Timestamp.Time
			if t.Before(now.Add(-PastLimit)) {
				return nil, invalidValue("The parameter %s.Timestamp must specify a time no more than two weeks in the past.", p)
			}
			if t.After(now.Add(FutureLimit)) {
				return nil, invalidValue("The parameter %s.Timestamp must specify a time no more than two hours in the future.", p)
			}
		}
		unit := string(deref(d.Unit))
		if unit == "" {
			unit = string(cloudwatchapi.StandardUnitNone)
		}
		key := tsdb.NewKey(ns, deref(d.MetricName), dims(d.Dimensions))
		pt := tsdb.Point{Key: key, T: t, Unit: unit, HighResolution: res == 1}
		switch {
		case d.Value != nil:
			if err := checkValue(*d.Value, p+".Value"); err != nil {
				return nil, err
			}
			pt.Sample = tsdb.ValueSample(*d.Value, 1)
			pts = append(pts, pt)
		case d.StatisticValues != nil:
			sv := d.StatisticValues
			for _, f := range []struct {
				v    float64
				name string
			}{{*sv.Minimum, "Minimum"}, {*sv.Maximum, "Maximum"}, {*sv.Sum, "Sum"}, {*sv.SampleCount, "SampleCount"}} {
				if err := checkValue(f.v, p+".StatisticValues."+f.name); err != nil {
					return nil, err
				}
			}
			if *sv.SampleCount <= 0 {
				return nil, invalidValue("The value %s for parameter %s.StatisticValues.SampleCount is invalid: it must be greater than 0.", fmtNum(*sv.SampleCount), p)
			}
			if *sv.Minimum > *sv.Maximum {
				return nil, invalidValue("The parameter %[1]s.StatisticValues.Minimum must not be greater than %[1]s.StatisticValues.Maximum.", p)
			}
			pt.Sample = tsdb.Sample{Min: *sv.Minimum, Max: *sv.Maximum, Sum: *sv.Sum, Count: *sv.SampleCount}
			pts = append(pts, pt)
		default:
			for j, v := range d.Values {
				if err := checkValue(v, fmt.Sprintf("%s.Values.member.%d", p, j+1)); err != nil {
					return nil, err
				}
				c := 1.0
				if d.Counts != nil {
					c = d.Counts[j]
					if math.IsNaN(c) || c <= 0 || math.IsInf(c, 0) {
						return nil, invalidValue("The value %s for parameter %s.Counts.member.%d is invalid: counts must be greater than 0.", fmtNum(c), p, j+1)
					}
				}
				q := pt
				q.Sample = tsdb.ValueSample(v, c)
				pts = append(pts, q)
			}
		}
	}
	if err := s.db.Append(ctx, pts); err != nil {
		return nil, err
	}
	s.nudge()
	return &cloudwatchapi.PutMetricDataResponse{}, nil
}

func fmtNum(v float64) string { return fmt.Sprint(v) }

// checkPeriod checks a query period: 1, 5, 10, 30 or a multiple of 60.
func checkPeriod(p int32, param string) error {
	if p <= 0 || (p%60 != 0 && p != 1 && p != 5 && p != 10 && p != 30) {
		return invalidValue("The parameter %s must be 1, 5, 10, 30 or a multiple of 60.", param)
	}
	return nil
}

// GetMetricStatistics answers statistics of one metric per period.
func (s *Service) GetMetricStatistics(ctx context.Context, in *cloudwatchapi.GetMetricStatisticsInput) (*cloudwatchapi.GetMetricStatisticsOutput, error) {
	from, to := in.StartTime.Time, in.EndTime.Time
	if !from.Before(to) {
		return nil, invalidValue("The parameter StartTime must be less than the parameter EndTime.")
	}
	if err := checkPeriod(*in.Period, "Period"); err != nil {
		return nil, err
	}
	switch {
	case len(in.Statistics) == 0 && len(in.ExtendedStatistics) == 0:
		return nil, missing("At least one of the parameters Statistics and ExtendedStatistics must be specified.")
	case len(in.Statistics) > 0 && len(in.ExtendedStatistics) > 0:
		return nil, combination("The parameters Statistics and ExtendedStatistics are mutually exclusive and you have specified both.")
	}
	if err := checkDimensions(in.Dimensions, "Dimensions"); err != nil {
		return nil, err
	}
	var stats []stat
	for _, st := range in.Statistics {
		p, _ := parseStat(string(st))
		stats = append(stats, p)
	}
	wantValues := false
	for _, es := range in.ExtendedStatistics {
		p, ok := parseStat(es)
		if !ok || p.percentile < 0 {
			return nil, invalidValue("The value %s for parameter ExtendedStatistics is not supported: use a percentile p0.0 to p100 (pNN or pNN.NN).", es)
		}
		stats = append(stats, p)
		wantValues = true
	}
	period := time.Duration(*in.Period) * time.Second
	if n := (to.Sub(from) + period - 1) / period; n > MaxDatapoints {
		return nil, combination("You have requested up to %s datapoints, which exceeds the limit of 1,440. You may reduce the datapoints requested by increasing Period, or decreasing the time range.", thousands(int64(n)))
	}
	key := tsdb.NewKey(deref(in.Namespace), deref(in.MetricName), dims(in.Dimensions))
	units := []string{string(deref(in.Unit))}
	if in.Unit == nil {
		units = s.seriesUnits(key)
	}
	out := &cloudwatchapi.GetMetricStatisticsOutput{Label: in.MetricName, Datapoints: []cloudwatchapi.Datapoint{}}
	for _, u := range units {
		buckets, err := s.db.Query(key, from, to, period, u, wantValues)
		if err != nil {
			return nil, err
		}
		for _, b := range buckets {
			dp := cloudwatchapi.Datapoint{Timestamp: awsproto.NewTime(b.T), Unit: ptr(cloudwatchapi.StandardUnit(u))}
			for _, st := range stats {
				v, ok := st.value(b)
				if !ok {
					continue
				}
				switch st.name {
				case "SampleCount":
					dp.SampleCount = ptr(v)
				case "Average":
					dp.Average = ptr(v)
				case "Sum":
					dp.Sum = ptr(v)
				case "Minimum":
					dp.Minimum = ptr(v)
				case "Maximum":
					dp.Maximum = ptr(v)
				default:
					if dp.ExtendedStatistics == nil {
						dp.ExtendedStatistics = map[string]float64{}
					}
					dp.ExtendedStatistics[st.name] = v
				}
			}
			out.Datapoints = append(out.Datapoints, dp)
		}
	}
	return out, nil
}

// seriesUnits lists the units a series was written with.
func (s *Service) seriesUnits(key tsdb.SeriesKey) []string {
	ks := key.String()
	for _, si := range s.db.Series(key.Namespace) {
		if si.Key.String() == ks {
			return si.Units
		}
	}
	return nil
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// ListMetrics lists metrics matching the filters, 500 a page.
func (s *Service) ListMetrics(ctx context.Context, in *cloudwatchapi.ListMetricsInput) (*cloudwatchapi.ListMetricsOutput, error) {
	after := ""
	if in.NextToken != nil {
		b, err := base64.RawURLEncoding.DecodeString(*in.NextToken)
		if err != nil || len(b) == 0 {
			return nil, invalidValue("The value %s for parameter NextToken is invalid.", *in.NextToken)
		}
		after = string(b)
	}
	for i, f := range in.Dimensions {
		if f.Name == nil {
			return nil, missing("The parameter Dimensions.member.%d.Name is required.", i+1)
		}
	}
	recent := time.Time{}
	if in.RecentlyActive != nil {
		recent = s.now().Add(-3 * time.Hour)
	}
	out := &cloudwatchapi.ListMetricsOutput{Metrics: []cloudwatchapi.Metric{}}
	for _, si := range s.db.Series(deref(in.Namespace)) {
		ks := si.Key.String()
		if after != "" && ks <= after {
			continue
		}
		if in.MetricName != nil && si.Key.MetricName != *in.MetricName {
			continue
		}
		if !recent.IsZero() && si.LastWrite.Before(recent) {
			continue
		}
		if !matchDims(si.Key.Dims, in.Dimensions) {
			continue
		}
		if len(out.Metrics) == ListMetricsPage {
			last := out.Metrics[len(out.Metrics)-1]
			k := tsdb.NewKey(*last.Namespace, *last.MetricName, dims(last.Dimensions))
			out.NextToken = ptr(base64.RawURLEncoding.EncodeToString([]byte(k.String())))
			break
		}
		out.Metrics = append(out.Metrics, cloudwatchapi.Metric{Namespace: ptr(si.Key.Namespace), MetricName: ptr(si.Key.MetricName), Dimensions: wireDims(si.Key.Dims)})
	}
	return out, nil
}

// matchDims: every filter names a dimension the metric has (with that
// value when the filter has one).
func matchDims(have []tsdb.Dim, filters []cloudwatchapi.DimensionFilter) bool {
	for _, f := range filters {
		if !slices.ContainsFunc(have, func(d tsdb.Dim) bool {
			return d.Name == *f.Name && (f.Value == nil || d.Value == *f.Value)
		}) {
			return false
		}
	}
	return true
}
