package cloudwatch

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/berthdev/berth/internal/api/cloudwatchapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/metricmath"
	"github.com/berthdev/berth/internal/tsdb"
)

var queryIDRE = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)

// queryResult is the outcome of one MetricDataQuery: one series, or
// several for an expression that returns an array.
type queryResult struct {
	id         string
	label      string // the query's Label, if any
	returnData bool
	series     []metricmath.Series
}

// runQueries checks and evaluates MetricDataQueries over [from, to): the
// MetricStat queries first (read from the datapoint store), then the
// expressions in dependency order. param names the list in messages.
func (s *Service) runQueries(qs []cloudwatchapi.MetricDataQuery, from, to time.Time, param string) ([]queryResult, error) {
	if len(qs) == 0 {
		return nil, validation("The parameter %s must contain at least one query.", param)
	}
	if len(qs) > MaxQueries {
		return nil, validation("The collection %s must not have a size greater than %d.", param, MaxQueries)
	}
	byID := map[string]int{}
	exprs := map[string]metricmath.Expr{}
	for i, q := range qs {
		p := fmt.Sprintf("%s.member.%d", param, i+1)
		id := deref(q.Id)
		if !queryIDRE.MatchString(id) {
			return nil, validation("Invalid metric data query id: %s. The Id must start with a lowercase letter and contain only letters, numbers and underscores.", id)
		}
		if _, dup := byID[id]; dup {
			return nil, validation("The values for parameter id in %s are not unique.", param)
		}
		byID[id] = i
		switch {
		case (q.MetricStat == nil) == (q.Expression == nil):
			return nil, validation("Exactly one of %[1]s.MetricStat and %[1]s.Expression must be specified.", p)
		case q.MetricStat != nil:
			ms := q.MetricStat
			if _, ok := parseStat(deref(ms.Stat)); !ok {
				return nil, validation("The value %s for parameter %s.MetricStat.Stat is not supported: use SampleCount, Average, Sum, Minimum, Maximum or a percentile pNN.NN.", deref(ms.Stat), p)
			}
			if err := checkPeriod(*ms.Period, p+".MetricStat.Period"); err != nil {
				return nil, err
			}
			if ms.Metric.MetricName == nil || ms.Metric.Namespace == nil {
				return nil, missing("The parameters %[1]s.MetricStat.Metric.Namespace and %[1]s.MetricStat.Metric.MetricName are required.", p)
			}
			if err := checkDimensions(ms.Metric.Dimensions, p+".MetricStat.Metric.Dimensions"); err != nil {
				return nil, err
			}
		default:
			e, err := metricmath.Parse(*q.Expression)
			if err != nil {
				return nil, validation("Error in expression %s: %v", id, err)
			}
			exprs[id] = e
		}
	}
	results := make([]queryResult, len(qs))
	var metrics []metricmath.Series
	env := metricmath.Env{Results: map[string]metricmath.Value{}}
	for i, q := range qs {
		results[i] = queryResult{id: *q.Id, label: deref(q.Label), returnData: q.ReturnData == nil || *q.ReturnData}
		if q.MetricStat == nil {
			continue
		}
		ser, err := s.metricStat(q.MetricStat, from, to)
		if err != nil {
			return nil, err
		}
		ser.ID = *q.Id
		if ser.Label = deref(q.Label); ser.Label == "" {
			ser.Label = *q.MetricStat.Metric.MetricName
		}
		results[i].series = []metricmath.Series{ser}
		metrics = append(metrics, ser)
		env.Results[*q.Id] = metricmath.SeriesValue(ser)
	}
	env.Metrics = metrics
	// Expressions, each after those it refers to.
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(id string) error
	visit = func(id string) error {
		e, ok := exprs[id]
		if !ok || state[id] == 2 {
			return nil
		}
		if state[id] == 1 {
			return validation("Circular dependency between expressions involving %s.", id)
		}
		state[id] = 1
		for _, r := range metricmath.Refs(e) {
			if _, ok := byID[r]; !ok {
				return validation("Error in expression %s: Unrecognized metric or expression id %s.", id, r)
			}
			if err := visit(r); err != nil {
				return err
			}
		}
		v, err := metricmath.Eval(e, env)
		if err != nil {
			return validation("Error in expression %s: %v", id, err)
		}
		if v.IsScalar {
			return validation("Error in expression %s: the expression must return a time series or an array of time series, not a single number.", id)
		}
		env.Results[id] = v
		qr := &results[byID[id]]
		for _, ser := range v.Series {
			ser.ID = id
			if qr.label != "" {
				ser.Label = qr.label
			} else if !v.Array || ser.Label == "" {
				ser.Label = id
			}
			qr.series = append(qr.series, ser)
		}
		state[id] = 2
		return nil
	}
	for _, q := range qs {
		if err := visit(*q.Id); err != nil {
			return nil, err
		}
	}
	return results, nil
}

// metricStat reads one metric's statistic per period over [from, to).
func (s *Service) metricStat(ms *cloudwatchapi.MetricStat, from, to time.Time) (metricmath.Series, error) {
	st, _ := parseStat(*ms.Stat)
	key := tsdb.NewKey(*ms.Metric.Namespace, *ms.Metric.MetricName, dims(ms.Metric.Dimensions))
	buckets, err := s.db.Query(key, from, to, time.Duration(*ms.Period)*time.Second, string(deref(ms.Unit)), st.needsValues())
	if err != nil {
		return metricmath.Series{}, err
	}
	var out metricmath.Series
	for _, b := range buckets {
		if b.T.Before(from.Truncate(time.Duration(*ms.Period) * time.Second)) {
			continue
		}
		if v, ok := st.value(b); ok {
			out.Times = append(out.Times, b.T)
			out.Values = append(out.Values, v)
		}
	}
	return out, nil
}

// GetMetricData answers MetricStat and expression queries.
func (s *Service) GetMetricData(ctx context.Context, in *cloudwatchapi.GetMetricDataInput) (*cloudwatchapi.GetMetricDataOutput, error) {
	from, to := in.StartTime.Time, in.EndTime.Time
	if !from.Before(to) {
		return nil, validation("The parameter StartTime must be less than the parameter EndTime.")
	}
	maxPoints := DefaultMaxDatapoint
	if in.MaxDatapoints != nil {
		if *in.MaxDatapoints < 1 {
			return nil, validation("The parameter MaxDatapoints must be greater than 0.")
		}
		maxPoints = int(*in.MaxDatapoints)
	}
	offset := 0
	if in.NextToken != nil {
		b, err := base64.RawURLEncoding.DecodeString(*in.NextToken)
		n, err2 := strconv.Atoi(string(b))
		if err != nil || err2 != nil || n <= 0 {
			return nil, errsNextToken(*in.NextToken)
		}
		offset = n
	}
	results, err := s.runQueries(in.MetricDataQueries, from, to, "MetricDataQueries")
	if err != nil {
		return nil, err
	}
	desc := in.ScanBy == nil || *in.ScanBy == cloudwatchapi.ScanByTimestampDescending
	out := &cloudwatchapi.GetMetricDataOutput{MetricDataResults: []cloudwatchapi.MetricDataResult{}, Messages: []cloudwatchapi.MessageData{}}
	pos, end := 0, offset+maxPoints
	for _, r := range results {
		if !r.returnData {
			continue
		}
		for _, ser := range r.series {
			ts, vs := ser.Times, ser.Values
			if desc {
				ts, vs = slices.Clone(ts), slices.Clone(vs)
				slices.Reverse(ts)
				slices.Reverse(vs)
			}
			lo, hi := clamp(offset-pos, len(ts)), clamp(end-pos, len(ts))
			pos += len(ts)
			res := cloudwatchapi.MetricDataResult{Id: ptr(r.id), Label: ptr(ser.Label), StatusCode: ptr(cloudwatchapi.StatusCodeComplete),
				Timestamps: make([]awsproto.Time, 0, hi-lo), Values: make([]float64, 0, hi-lo), Messages: []cloudwatchapi.MessageData{}}
			for k := lo; k < hi; k++ {
				res.Timestamps = append(res.Timestamps, awsproto.Time{Time: ts[k]})
				res.Values = append(res.Values, vs[k])
			}
			if hi < len(ts) {
				res.StatusCode = ptr(cloudwatchapi.StatusCodePartialData)
			}
			out.MetricDataResults = append(out.MetricDataResults, res)
		}
	}
	if pos > end {
		out.NextToken = ptr(base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end))))
	}
	return out, nil
}

func clamp(v, n int) int { return max(0, min(v, n)) }

func errsNextToken(tok string) error {
	return errsR(reasonNextToken, "The value %s for parameter NextToken is invalid.", tok)
}
