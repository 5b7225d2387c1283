package cloudwatch

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/berthdev/berth/internal/alarm"
	"github.com/berthdev/berth/internal/api/cloudwatchapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Store layout: one key per alarm, its history items beside it.
const (
	alarmsPrefix  = "/berth/cloudwatch/alarms/"
	historyPrefix = "/berth/cloudwatch/history/"
)

// Limits of alarms.
const (
	MaxActions       = 5
	MaxTags          = 50
	DefaultMaxRecord = 50
	maxWindow        = 7 * 24 * time.Hour
	maxShortWindow   = 24 * time.Hour
)

// record is an alarm as stored: its definition (the PutMetricAlarm input,
// without tags) and its state.
type record struct {
	Def               cloudwatchapi.PutMetricAlarmInput
	ARN               string
	ConfigUpdated     time.Time
	State             string
	Reason            string
	ReasonData        string `json:",omitempty"`
	StateUpdated      time.Time
	StateTransitioned time.Time
	// HoldUntil keeps a state set by SetAlarmState until the next
	// regular evaluation (the end of the current period).
	HoldUntil time.Time `json:",omitzero"`
	Tags      []cloudwatchapi.Tag
}

func alarmKey(name string) string { return alarmsPrefix + url.PathEscape(name) }
func historyKeyPrefix(name string) string {
	return historyPrefix + url.PathEscape(name) + "/"
}

// historyItem is a stored history entry.
type historyItem struct {
	Name    string
	Type    string
	Summary string
	Data    string
	Time    time.Time
}

var historySeq atomic.Int64

func (s *Service) alarmARN(name string) string { return s.arns.Service("cloudwatch", "alarm:"+name) }

func (s *Service) getAlarm(ctx context.Context, name string) (record, int64, error) {
	kv, err := s.st.Get(ctx, alarmKey(name))
	if err != nil {
		return record{}, 0, err
	}
	var r record
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		return record{}, 0, errs.Wrap(errs.Internal, err, "decode alarm %s", name)
	}
	return r, kv.ModRevision, nil
}

func (s *Service) listAlarms(ctx context.Context) ([]record, error) {
	var out []record
	opts := store.ListOptions{Limit: 500}
	for {
		res, err := s.st.List(ctx, alarmsPrefix, opts)
		if err != nil {
			return nil, err
		}
		for _, kv := range res.KVs {
			var r record
			if err := json.Unmarshal(kv.Value, &r); err != nil {
				s.log.Error("undecodable alarm", "key", kv.Key, "err", err)
				continue
			}
			out = append(out, r)
		}
		if !res.More || len(res.KVs) == 0 {
			break
		}
		opts.StartAfter = res.KVs[len(res.KVs)-1].Key
		opts.Revision = res.Revision
	}
	slices.SortStableFunc(out, func(a, b record) int { return strings.Compare(*a.Def.AlarmName, *b.Def.AlarmName) })
	return out, nil
}

// historyOps returns the operations that add items to an alarm's history
// and drop its oldest ones beyond the bound.
func (s *Service) historyOps(ctx context.Context, name string, items []historyItem) ([]store.Op, error) {
	res, err := s.st.List(ctx, historyKeyPrefix(name), store.ListOptions{KeysOnly: true})
	if err != nil {
		return nil, err
	}
	var ops []store.Op
	if over := len(res.KVs) + len(items) - s.cfg.HistoryPerAlarm; over > 0 {
		for _, kv := range res.KVs[:min(over, len(res.KVs))] {
			ops = append(ops, store.Delete(kv.Key))
		}
	}
	for _, it := range items {
		b, _ := json.Marshal(it)
		// time, then a per-process sequence: unique even when the clock
		// stands still, and in time order.
		ops = append(ops, store.Put(fmt.Sprintf("%s%020d-%012d", historyKeyPrefix(name), it.Time.UnixNano(), historySeq.Add(1)), b))
	}
	return ops, nil
}

// commit writes an alarm (rev 0: must be absent) with history items in one
// transaction; Conflict when someone else changed it first.
func (s *Service) commit(ctx context.Context, r record, rev int64, items []historyItem, extra ...store.Op) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ops, err := s.historyOps(ctx, *r.Def.AlarmName, items)
	if err != nil {
		return err
	}
	ops = append(ops, store.Put(alarmKey(*r.Def.AlarmName), b))
	ops = append(ops, extra...)
	res, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(alarmKey(*r.Def.AlarmName), rev)}, ops...)
	if err != nil {
		return err
	}
	if !res.Succeeded {
		return errs.E(errs.Conflict, "alarm %s was changed concurrently; retry", *r.Def.AlarmName)
	}
	return nil
}

// retry runs f up to 5 times while it fails with a conflict.
func retry(f func() error) error {
	var err error
	for range 5 {
		if err = f(); !errs.Is(err, errs.Conflict) {
			return err
		}
	}
	return err
}

// alarmJSON is the alarm as AWS shows it in ConfigurationUpdate history.
func alarmJSON(r record) map[string]any {
	d := r.Def
	m := map[string]any{
		"alarmName": deref(d.AlarmName), "alarmArn": r.ARN,
		"actionsEnabled": d.ActionsEnabled == nil || *d.ActionsEnabled,
		"alarmActions":   orEmpty(d.AlarmActions), "okActions": orEmpty(d.OKActions), "insufficientDataActions": orEmpty(d.InsufficientDataActions),
		"comparisonOperator": string(deref(d.ComparisonOperator)), "evaluationPeriods": deref(d.EvaluationPeriods),
		"threshold": deref(d.Threshold), "treatMissingData": treatMissing(d),
		"timestamp": r.ConfigUpdated.UTC().Format("2006-01-02T15:04:05.000Z"),
	}
	if d.AlarmDescription != nil {
		m["alarmDescription"] = *d.AlarmDescription
	}
	if d.MetricName != nil {
		m["metricName"], m["namespace"], m["period"] = *d.MetricName, deref(d.Namespace), deref(d.Period)
		ds := []map[string]string{}
		for _, x := range d.Dimensions {
			ds = append(ds, map[string]string{"name": deref(x.Name), "value": deref(x.Value)})
		}
		m["dimensions"] = ds
		if d.Statistic != nil {
			m["statistic"] = string(*d.Statistic)
		} else {
			m["extendedStatistic"] = deref(d.ExtendedStatistic)
		}
	}
	if d.DatapointsToAlarm != nil {
		m["datapointsToAlarm"] = *d.DatapointsToAlarm
	}
	if d.Metrics != nil {
		m["metrics"] = d.Metrics
	}
	return m
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func treatMissing(d cloudwatchapi.PutMetricAlarmInput) string {
	if d.TreatMissingData == nil {
		return alarm.Missing
	}
	return *d.TreatMissingData
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// checkAlarm validates a PutMetricAlarm input beyond the model.
func checkAlarm(in *cloudwatchapi.PutMetricAlarmInput) error {
	op := string(deref(in.ComparisonOperator))
	switch {
	case in.ComparisonOperator == nil:
		return missing("The parameter ComparisonOperator is required.")
	case in.ThresholdMetricId != nil || !alarm.ValidComparison(op):
		return errs.E(errs.Unsupported, "Berth does not support anomaly detection alarms: ComparisonOperator %s and ThresholdMetricId are not available; use GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold or LessThanOrEqualToThreshold with a Threshold.", op)
	case in.Threshold == nil:
		return missing("The parameter Threshold is required.")
	case in.EvaluationPeriods == nil:
		return missing("The parameter EvaluationPeriods is required.")
	case in.TreatMissingData != nil && !alarm.ValidTreatment(*in.TreatMissingData):
		return validation("Invalid value for parameter TreatMissingData: %s. Valid values are missing, notBreaching, breaching and ignore.", *in.TreatMissingData)
	case in.DatapointsToAlarm != nil && *in.DatapointsToAlarm > *in.EvaluationPeriods:
		return validation("DatapointsToAlarm (%d) must be less than or equal to EvaluationPeriods (%d).", *in.DatapointsToAlarm, *in.EvaluationPeriods)
	case in.EvaluateLowSampleCountPercentile != nil && *in.EvaluateLowSampleCountPercentile != "evaluate" && *in.EvaluateLowSampleCountPercentile != "ignore":
		return validation("Invalid value for parameter EvaluateLowSampleCountPercentile: %s. Valid values are evaluate and ignore.", *in.EvaluateLowSampleCountPercentile)
	case in.EvaluationCriteria != nil || in.EvaluationInterval != nil:
		return errs.E(errs.Unsupported, "Berth does not support PromQL alarms (EvaluationCriteria, EvaluationInterval).")
	}
	for _, l := range []struct {
		name string
		arns []string
	}{{"AlarmActions", in.AlarmActions}, {"OKActions", in.OKActions}, {"InsufficientDataActions", in.InsufficientDataActions}} {
		if len(l.arns) > MaxActions {
			return validation("The collection %s must not have a size greater than %d.", l.name, MaxActions)
		}
		for _, a := range l.arns {
			if _, err := arn.Parse(a); err != nil {
				return validation("Invalid arn syntax: %s", a)
			}
		}
	}
	if len(in.Tags) > MaxTags {
		return validation("The collection Tags must not have a size greater than %d.", MaxTags)
	}
	single := in.MetricName != nil || in.Namespace != nil || in.Statistic != nil || in.ExtendedStatistic != nil ||
		in.Dimensions != nil || in.Period != nil || in.Unit != nil
	if in.Metrics != nil {
		if single {
			return combination("The parameters MetricName, Namespace, Statistic, ExtendedStatistic, Dimensions, Period and Unit must not be specified when Metrics is specified.")
		}
		ret := 0
		for _, q := range in.Metrics {
			if q.ReturnData == nil || *q.ReturnData {
				ret++
			}
		}
		if ret != 1 {
			return validation("Exactly one element of the metrics list should return data.")
		}
		if alarmPeriod(in) <= 0 {
			return validation("Metrics list must contain a MetricStat or a Period.")
		}
		return checkWindow(alarmPeriod(in), *in.EvaluationPeriods)
	}
	switch {
	case in.MetricName == nil:
		return missing("The parameter MetricName is required.")
	case in.Namespace == nil:
		return missing("The parameter Namespace is required.")
	case in.Period == nil:
		return missing("The parameter Period is required.")
	case in.Statistic != nil && in.ExtendedStatistic != nil:
		return combination("The parameters Statistic and ExtendedStatistic are mutually exclusive and you have specified both.")
	case in.Statistic == nil && in.ExtendedStatistic == nil:
		return missing("One of the parameters Statistic or ExtendedStatistic must be specified.")
	}
	if in.ExtendedStatistic != nil {
		if st, ok := parseStat(*in.ExtendedStatistic); !ok || st.percentile < 0 {
			return invalidValue("The value %s for parameter ExtendedStatistic is not supported: use a percentile p0.0 to p100.", *in.ExtendedStatistic)
		}
	}
	if err := checkDimensions(in.Dimensions, "Dimensions"); err != nil {
		return err
	}
	p := *in.Period
	if p != 10 && p != 20 && p != 30 && p%60 != 0 {
		return validation("Invalid value %d for parameter Period: it must be 10, 20, 30 or a multiple of 60.", p)
	}
	return checkWindow(p, *in.EvaluationPeriods)
}

func checkWindow(period, n int32) error {
	w := time.Duration(period) * time.Second * time.Duration(n)
	limit := maxWindow
	if period < 60 {
		limit = maxShortWindow
	}
	if w > limit {
		return validation("The evaluation period multiplied by the number of evaluation periods (%d s) must not exceed %d seconds.", int64(w/time.Second), int64(limit/time.Second))
	}
	return nil
}

// alarmPeriod is an alarm's period in seconds: Period, or for a
// metric-math alarm the period of the query that returns data (its own,
// or its MetricStat's, or the longest MetricStat period of the list).
func alarmPeriod(d *cloudwatchapi.PutMetricAlarmInput) int32 {
	if d.Metrics == nil {
		return deref(d.Period)
	}
	var longest int32
	for _, q := range d.Metrics {
		if q.MetricStat != nil && q.MetricStat.Period != nil {
			longest = max(longest, *q.MetricStat.Period)
		}
	}
	for _, q := range d.Metrics {
		if q.ReturnData == nil || *q.ReturnData {
			if q.Period != nil {
				return *q.Period
			}
			if q.MetricStat != nil && q.MetricStat.Period != nil {
				return *q.MetricStat.Period
			}
		}
	}
	return longest
}

// PutMetricAlarm creates or replaces a metric alarm.
func (s *Service) PutMetricAlarm(ctx context.Context, in *cloudwatchapi.PutMetricAlarmInput) (*cloudwatchapi.PutMetricAlarmResponse, error) {
	if err := checkAlarm(in); err != nil {
		return nil, err
	}
	name := *in.AlarmName
	err := retry(func() error {
		now := s.now().UTC()
		old, rev, err := s.getAlarm(ctx, name)
		if err != nil && !errs.Is(err, errs.NotFound) {
			return err
		}
		def := *in
		def.Tags = nil
		r := record{Def: def, ARN: s.alarmARN(name), ConfigUpdated: now}
		var item historyItem
		if rev == 0 {
			n, err := s.st.List(ctx, alarmsPrefix, store.ListOptions{KeysOnly: true, Limit: int64(s.cfg.MaxAlarms)})
			if err != nil {
				return err
			}
			if len(n.KVs) >= s.cfg.MaxAlarms {
				return errs.R(errs.LimitExceeded, reasonLimit, "The maximum number of alarms (%d) has been reached.", s.cfg.MaxAlarms)
			}
			r.State, r.Reason = string(alarm.InsufficientData), "Unchecked: Initial alarm creation"
			r.StateUpdated, r.StateTransitioned = now, now
			r.Tags = in.Tags
			item = historyItem{Name: name, Type: string(cloudwatchapi.HistoryItemTypeConfigurationUpdate), Time: now,
				Summary: fmt.Sprintf("Alarm %q created", name),
				Data:    mustJSON(map[string]any{"version": "1.0", "type": "Create", "createdAlarm": alarmJSON(r)})}
		} else {
			// An update keeps the state and ignores tags, as CloudWatch.
			r.State, r.Reason, r.ReasonData = old.State, old.Reason, old.ReasonData
			r.StateUpdated, r.StateTransitioned, r.Tags = old.StateUpdated, old.StateTransitioned, old.Tags
			item = historyItem{Name: name, Type: string(cloudwatchapi.HistoryItemTypeConfigurationUpdate), Time: now,
				Summary: fmt.Sprintf("Alarm %q updated", name),
				Data:    mustJSON(map[string]any{"version": "1.0", "type": "Update", "originalAlarm": alarmJSON(old), "updatedAlarm": alarmJSON(r)})}
		}
		return s.commit(ctx, r, rev, []historyItem{item})
	})
	if err != nil {
		return nil, err
	}
	s.nudge()
	return &cloudwatchapi.PutMetricAlarmResponse{}, nil
}

func (s *Service) wireAlarm(r record) cloudwatchapi.MetricAlarm {
	d := r.Def
	st := cloudwatchapi.StateValue(r.State)
	a := cloudwatchapi.MetricAlarm{
		ActionsEnabled: ptr(d.ActionsEnabled == nil || *d.ActionsEnabled), AlarmActions: orEmpty(d.AlarmActions),
		OKActions: orEmpty(d.OKActions), InsufficientDataActions: orEmpty(d.InsufficientDataActions),
		AlarmArn: ptr(r.ARN), AlarmConfigurationUpdatedTimestamp: awsproto.NewTime(r.ConfigUpdated),
		AlarmDescription: d.AlarmDescription, AlarmName: d.AlarmName, ComparisonOperator: d.ComparisonOperator,
		DatapointsToAlarm: d.DatapointsToAlarm, EvaluationPeriods: d.EvaluationPeriods,
		EvaluateLowSampleCountPercentile: d.EvaluateLowSampleCountPercentile, ExtendedStatistic: d.ExtendedStatistic,
		MetricName: d.MetricName, Namespace: d.Namespace, Period: d.Period, Statistic: d.Statistic, Unit: d.Unit,
		Metrics: d.Metrics, Threshold: d.Threshold, TreatMissingData: ptr(treatMissing(d)),
		StateValue: &st, StateReason: ptr(r.Reason), StateUpdatedTimestamp: awsproto.NewTime(r.StateUpdated),
		StateTransitionedTimestamp: awsproto.NewTime(r.StateTransitioned),
	}
	if d.MetricName != nil {
		a.Dimensions = d.Dimensions
		if a.Dimensions == nil {
			a.Dimensions = []cloudwatchapi.Dimension{}
		}
	}
	if r.ReasonData != "" {
		a.StateReasonData = ptr(r.ReasonData)
	}
	return a
}

func pageToken(after string) *string {
	return ptr(base64.RawURLEncoding.EncodeToString([]byte(after)))
}

func readToken(tok *string) (string, error) {
	if tok == nil {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(*tok)
	if err != nil || len(b) == 0 {
		return "", errsNextToken(*tok)
	}
	return string(b), nil
}

// DescribeAlarms lists metric alarms by name, prefix, state or action.
func (s *Service) DescribeAlarms(ctx context.Context, in *cloudwatchapi.DescribeAlarmsInput) (*cloudwatchapi.DescribeAlarmsOutput, error) {
	if in.AlarmNames != nil && in.AlarmNamePrefix != nil {
		return nil, combination("The parameters AlarmNames and AlarmNamePrefix are mutually exclusive and you have specified both.")
	}
	after, err := readToken(in.NextToken)
	if err != nil {
		return nil, err
	}
	limit := DefaultMaxRecord
	if in.MaxRecords != nil {
		limit = int(*in.MaxRecords)
	}
	out := &cloudwatchapi.DescribeAlarmsOutput{MetricAlarms: []cloudwatchapi.MetricAlarm{}, CompositeAlarms: []cloudwatchapi.CompositeAlarm{}}
	metricType := len(in.AlarmTypes) == 0 || slices.Contains(in.AlarmTypes, cloudwatchapi.AlarmTypeMetricAlarm)
	// No composite alarms exist here (PutCompositeAlarm is not
	// implemented), so none has children or parents.
	if !metricType || in.ChildrenOfAlarmName != nil || in.ParentsOfAlarmName != nil {
		return out, nil
	}
	all, err := s.listAlarms(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range all {
		name := *r.Def.AlarmName
		switch {
		case after != "" && name <= after:
			continue
		case in.AlarmNames != nil && !slices.Contains(in.AlarmNames, name):
			continue
		case in.AlarmNamePrefix != nil && !strings.HasPrefix(name, *in.AlarmNamePrefix):
			continue
		case in.StateValue != nil && r.State != string(*in.StateValue):
			continue
		case in.ActionPrefix != nil && !hasActionPrefix(r.Def, *in.ActionPrefix):
			continue
		}
		if len(out.MetricAlarms) == limit {
			out.NextToken = pageToken(*out.MetricAlarms[limit-1].AlarmName)
			break
		}
		out.MetricAlarms = append(out.MetricAlarms, s.wireAlarm(r))
	}
	return out, nil
}

func hasActionPrefix(d cloudwatchapi.PutMetricAlarmInput, prefix string) bool {
	for _, l := range [][]string{d.AlarmActions, d.OKActions, d.InsufficientDataActions} {
		for _, a := range l {
			if strings.HasPrefix(a, prefix) {
				return true
			}
		}
	}
	return false
}

// DescribeAlarmsForMetric lists the single-metric alarms on a metric.
func (s *Service) DescribeAlarmsForMetric(ctx context.Context, in *cloudwatchapi.DescribeAlarmsForMetricInput) (*cloudwatchapi.DescribeAlarmsForMetricOutput, error) {
	all, err := s.listAlarms(ctx)
	if err != nil {
		return nil, err
	}
	want := dimString(in.Dimensions)
	out := &cloudwatchapi.DescribeAlarmsForMetricOutput{MetricAlarms: []cloudwatchapi.MetricAlarm{}}
	for _, r := range all {
		d := r.Def
		switch {
		case deref(d.MetricName) != *in.MetricName || deref(d.Namespace) != *in.Namespace || dimString(d.Dimensions) != want:
			continue
		case in.Statistic != nil && deref(d.Statistic) != *in.Statistic:
			continue
		case in.ExtendedStatistic != nil && deref(d.ExtendedStatistic) != *in.ExtendedStatistic:
			continue
		case in.Period != nil && deref(d.Period) != *in.Period:
			continue
		case in.Unit != nil && deref(d.Unit) != *in.Unit:
			continue
		}
		out.MetricAlarms = append(out.MetricAlarms, s.wireAlarm(r))
	}
	return out, nil
}

func dimString(ds []cloudwatchapi.Dimension) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = deref(d.Name) + "=" + deref(d.Value)
	}
	slices.Sort(parts)
	return strings.Join(parts, "\x00")
}

// DeleteAlarms deletes alarms and their history, all or nothing.
func (s *Service) DeleteAlarms(ctx context.Context, in *cloudwatchapi.DeleteAlarmsInput) (*cloudwatchapi.DeleteAlarmsResponse, error) {
	if len(in.AlarmNames) == 0 {
		return &cloudwatchapi.DeleteAlarmsResponse{}, nil
	}
	var cmps []store.Cmp
	var ops []store.Op
	for _, name := range in.AlarmNames {
		kv, err := s.st.Get(ctx, alarmKey(name))
		if errs.Is(err, errs.NotFound) {
			return nil, errs.R(errs.NotFound, reasonAlarmNotFound, "Alarm %s not found", name)
		}
		if err != nil {
			return nil, err
		}
		cmps = append(cmps, store.ModRevisionIs(alarmKey(name), kv.ModRevision))
		ops = append(ops, store.Delete(alarmKey(name)), store.DeletePrefix(historyKeyPrefix(name)))
	}
	res, err := s.st.Txn(ctx, cmps, ops...)
	if err != nil {
		return nil, err
	}
	if !res.Succeeded {
		return nil, errs.E(errs.Conflict, "an alarm changed while it was being deleted; retry")
	}
	return &cloudwatchapi.DeleteAlarmsResponse{}, nil
}

// setActionsEnabled flips ActionsEnabled on the named alarms (unknown
// names are skipped) and records the change.
func (s *Service) setActionsEnabled(ctx context.Context, names []string, on bool) error {
	for _, name := range names {
		err := retry(func() error {
			r, rev, err := s.getAlarm(ctx, name)
			if err != nil {
				return err
			}
			old := r
			r.Def.ActionsEnabled = ptr(on)
			r.ConfigUpdated = s.now().UTC()
			item := historyItem{Name: name, Type: string(cloudwatchapi.HistoryItemTypeConfigurationUpdate), Time: r.ConfigUpdated,
				Summary: fmt.Sprintf("Alarm %q updated", name),
				Data:    mustJSON(map[string]any{"version": "1.0", "type": "Update", "originalAlarm": alarmJSON(old), "updatedAlarm": alarmJSON(r)})}
			return s.commit(ctx, r, rev, []historyItem{item})
		})
		if err != nil && !errs.Is(err, errs.NotFound) {
			return err
		}
	}
	return nil
}

// EnableAlarmActions enables the actions of alarms.
func (s *Service) EnableAlarmActions(ctx context.Context, in *cloudwatchapi.EnableAlarmActionsInput) (*cloudwatchapi.EnableAlarmActionsResponse, error) {
	return &cloudwatchapi.EnableAlarmActionsResponse{}, s.setActionsEnabled(ctx, in.AlarmNames, true)
}

// DisableAlarmActions disables the actions of alarms.
func (s *Service) DisableAlarmActions(ctx context.Context, in *cloudwatchapi.DisableAlarmActionsInput) (*cloudwatchapi.DisableAlarmActionsResponse, error) {
	return &cloudwatchapi.DisableAlarmActionsResponse{}, s.setActionsEnabled(ctx, in.AlarmNames, false)
}

// SetAlarmState sets an alarm's state until its next evaluation (the end
// of the current period) and runs the actions of the new state.
func (s *Service) SetAlarmState(ctx context.Context, in *cloudwatchapi.SetAlarmStateInput) (*cloudwatchapi.SetAlarmStateResponse, error) {
	if in.StateReasonData != nil && !json.Valid([]byte(*in.StateReasonData)) {
		return nil, errsR(reasonInvalidFormat, "Invalid JSON in StateReasonData: %s", *in.StateReasonData)
	}
	name := *in.AlarmName
	var fired *transition
	err := retry(func() error {
		r, rev, err := s.getAlarm(ctx, name)
		if errs.Is(err, errs.NotFound) {
			return errs.R(errs.NotFound, reasonAlarmNotFound, "Alarm %s not found", name)
		}
		if err != nil {
			return err
		}
		now := s.now().UTC()
		t := s.transition(&r, string(*in.StateValue), *in.StateReason, deref(in.StateReasonData), now)
		r.HoldUntil = alarm.PeriodEnd(time.Duration(alarmPeriod(&r.Def))*time.Second, now)
		if err := s.commit(ctx, r, rev, []historyItem{t.item}, s.changeOps(t)...); err != nil {
			return err
		}
		fired = &t
		return nil
	})
	if err != nil {
		return nil, err
	}
	if fired.changed {
		s.runActions(ctx, *fired)
	}
	return &cloudwatchapi.SetAlarmStateResponse{}, nil
}

// transition is a state update about to be committed.
type transition struct {
	rec     record
	old     string
	oldRec  record
	changed bool
	item    historyItem
}

// changeOps are the SetStateChangeOps operations of a state change.
func (s *Service) changeOps(t transition) []store.Op {
	if s.stateOps == nil || !t.changed {
		return nil
	}
	return s.stateOps(AlarmStateChange{Def: t.rec.Def, ARN: t.rec.ARN, State: t.rec.State, Reason: t.rec.Reason,
		ReasonData: t.rec.ReasonData, Time: t.rec.StateUpdated, OldState: t.oldRec.State, OldReason: t.oldRec.Reason,
		OldReasonData: t.oldRec.ReasonData, OldTime: t.oldRec.StateUpdated})
}

// transition updates r to a new state and returns the history item.
func (s *Service) transition(r *record, state, reason, data string, now time.Time) transition {
	old := *r
	r.State, r.Reason, r.ReasonData, r.StateUpdated = state, reason, data, now
	changed := old.State != state
	if changed {
		r.StateTransitioned = now
	}
	newState := map[string]any{"stateValue": state, "stateReason": reason}
	if data != "" {
		newState["stateReasonData"] = json.RawMessage(data)
	}
	item := historyItem{Name: *r.Def.AlarmName, Type: string(cloudwatchapi.HistoryItemTypeStateUpdate), Time: now,
		Summary: fmt.Sprintf("Alarm updated from %s to %s", old.State, state),
		Data: mustJSON(map[string]any{"version": "1.0",
			"oldState": map[string]any{"stateValue": old.State, "stateReason": old.Reason},
			"newState": newState})}
	return transition{rec: *r, old: old.State, oldRec: old, changed: changed, item: item}
}

// runActions delivers the actions of a transition's new state and
// records each outcome as an Action history item.
func (s *Service) runActions(ctx context.Context, t transition) {
	d := t.rec.Def
	if d.ActionsEnabled != nil && !*d.ActionsEnabled {
		return
	}
	var arns []string
	switch t.rec.State {
	case string(alarm.Alarm):
		arns = d.AlarmActions
	case string(alarm.OK):
		arns = d.OKActions
	case string(alarm.InsufficientData):
		arns = d.InsufficientDataActions
	}
	if len(arns) == 0 {
		return
	}
	name := *d.AlarmName
	info := AlarmInfo{Name: name, ARN: t.rec.ARN, State: t.rec.State, OldState: t.old, StateReason: t.rec.Reason, Time: t.rec.StateUpdated}
	var items []historyItem
	for _, a := range arns {
		err := s.actions.Run(ctx, a, info)
		now := s.now().UTC()
		it := historyItem{Name: name, Type: string(cloudwatchapi.HistoryItemTypeAction), Time: now}
		data := map[string]any{"actionState": "Succeeded", "stateUpdateTimestamp": t.rec.StateUpdated.UnixMilli(), "notificationResource": a}
		if err != nil {
			it.Summary = "Failed to execute action " + a
			data["actionState"] = "Failed"
			data["error"] = errs.MessageOf(err)
		} else {
			it.Summary = "Successfully executed action " + a
		}
		it.Data = mustJSON(data)
		items = append(items, it)
	}
	ops, err := s.historyOps(ctx, name, items)
	if err == nil {
		// Only while the alarm still exists.
		_, err = s.st.Txn(ctx, []store.Cmp{store.Exists(alarmKey(name))}, ops...)
	}
	if err != nil {
		s.log.Warn("record alarm action history", "alarm", name, "err", err)
	}
}

// DescribeAlarmHistory lists history items, newest first by default.
func (s *Service) DescribeAlarmHistory(ctx context.Context, in *cloudwatchapi.DescribeAlarmHistoryInput) (*cloudwatchapi.DescribeAlarmHistoryOutput, error) {
	offset := 0
	if in.NextToken != nil {
		tok, err := readToken(in.NextToken)
		if err != nil {
			return nil, err
		}
		if offset, err = strconv.Atoi(tok); err != nil || offset < 0 {
			return nil, errsNextToken(*in.NextToken)
		}
	}
	limit := 100
	if in.MaxRecords != nil {
		limit = int(*in.MaxRecords)
	}
	out := &cloudwatchapi.DescribeAlarmHistoryOutput{AlarmHistoryItems: []cloudwatchapi.AlarmHistoryItem{}}
	if len(in.AlarmTypes) > 0 && !slices.Contains(in.AlarmTypes, cloudwatchapi.AlarmTypeMetricAlarm) {
		return out, nil
	}
	prefix := historyPrefix
	if in.AlarmName != nil {
		prefix = historyKeyPrefix(*in.AlarmName)
	}
	var items []historyItem
	opts := store.ListOptions{Limit: 1000}
	for {
		res, err := s.st.List(ctx, prefix, opts)
		if err != nil {
			return nil, err
		}
		for _, kv := range res.KVs {
			var it historyItem
			if json.Unmarshal(kv.Value, &it) != nil {
				continue
			}
			switch {
			case in.HistoryItemType != nil && it.Type != string(*in.HistoryItemType):
			case in.StartDate != nil && it.Time.Before(in.StartDate.Time):
			case in.EndDate != nil && it.Time.After(in.EndDate.Time):
			default:
				items = append(items, it)
			}
		}
		if !res.More || len(res.KVs) == 0 {
			break
		}
		opts.StartAfter, opts.Revision = res.KVs[len(res.KVs)-1].Key, res.Revision
	}
	slices.SortStableFunc(items, func(a, b historyItem) int { return a.Time.Compare(b.Time) })
	if in.ScanBy == nil || *in.ScanBy == cloudwatchapi.ScanByTimestampDescending {
		slices.Reverse(items)
	}
	for i := offset; i < len(items); i++ {
		if len(out.AlarmHistoryItems) == limit {
			out.NextToken = pageToken(strconv.Itoa(i))
			break
		}
		it := items[i]
		out.AlarmHistoryItems = append(out.AlarmHistoryItems, cloudwatchapi.AlarmHistoryItem{
			AlarmName: ptr(it.Name), AlarmType: ptr(cloudwatchapi.AlarmTypeMetricAlarm),
			HistoryItemType: ptr(cloudwatchapi.HistoryItemType(it.Type)), HistorySummary: ptr(it.Summary),
			HistoryData: ptr(it.Data), Timestamp: awsproto.NewTime(it.Time)})
	}
	return out, nil
}

// alarmNameFromARN returns the alarm an ARN names.
func (s *Service) alarmNameFromARN(a string) (string, error) {
	prefix := s.alarmARN("")
	if !strings.HasPrefix(a, prefix) || len(a) == len(prefix) {
		return "", invalidValue("The value %s for parameter ResourceARN is invalid: it is not a CloudWatch alarm ARN of this account and region.", a)
	}
	return a[len(prefix):], nil
}

func (s *Service) tagged(ctx context.Context, resource string, f func(*record) error) error {
	name, err := s.alarmNameFromARN(resource)
	if err != nil {
		return err
	}
	return retry(func() error {
		r, rev, err := s.getAlarm(ctx, name)
		if errs.Is(err, errs.NotFound) {
			return errs.R(errs.NotFound, reasonTagNotFound, "Alarm %s not found", name)
		}
		if err != nil {
			return err
		}
		if f == nil {
			return nil
		}
		if err := f(&r); err != nil {
			return err
		}
		return s.commit(ctx, r, rev, nil)
	})
}

// TagResource adds or replaces tags of an alarm.
func (s *Service) TagResource(ctx context.Context, in *cloudwatchapi.TagResourceInput) (*cloudwatchapi.TagResourceOutput, error) {
	err := s.tagged(ctx, *in.ResourceARN, func(r *record) error {
		for _, t := range in.Tags {
			i := slices.IndexFunc(r.Tags, func(x cloudwatchapi.Tag) bool { return *x.Key == *t.Key })
			if i >= 0 {
				r.Tags[i] = t
			} else {
				r.Tags = append(r.Tags, t)
			}
		}
		if len(r.Tags) > MaxTags {
			return errs.R(errs.LimitExceeded, reasonLimit, "A resource may have at most %d tags.", MaxTags)
		}
		return nil
	})
	return &cloudwatchapi.TagResourceOutput{}, err
}

// UntagResource removes tags of an alarm.
func (s *Service) UntagResource(ctx context.Context, in *cloudwatchapi.UntagResourceInput) (*cloudwatchapi.UntagResourceOutput, error) {
	err := s.tagged(ctx, *in.ResourceARN, func(r *record) error {
		r.Tags = slices.DeleteFunc(r.Tags, func(t cloudwatchapi.Tag) bool { return slices.Contains(in.TagKeys, *t.Key) })
		return nil
	})
	return &cloudwatchapi.UntagResourceOutput{}, err
}

// ListTagsForResource lists an alarm's tags.
func (s *Service) ListTagsForResource(ctx context.Context, in *cloudwatchapi.ListTagsForResourceInput) (*cloudwatchapi.ListTagsForResourceOutput, error) {
	name, err := s.alarmNameFromARN(*in.ResourceARN)
	if err != nil {
		return nil, err
	}
	r, _, err := s.getAlarm(ctx, name)
	if errs.Is(err, errs.NotFound) {
		return nil, errs.R(errs.NotFound, reasonTagNotFound, "Alarm %s not found", name)
	}
	if err != nil {
		return nil, err
	}
	out := &cloudwatchapi.ListTagsForResourceOutput{Tags: []cloudwatchapi.Tag{}}
	out.Tags = append(out.Tags, r.Tags...)
	return out, nil
}
