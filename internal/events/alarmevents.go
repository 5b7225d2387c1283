package events

import (
	"encoding/json"
	"time"

	"github.com/berthdev/berth/internal/store"
)

// AlarmChange is a CloudWatch alarm's state change, for the "CloudWatch
// Alarm State Change" event (source aws.cloudwatch). The daemon builds it
// from CloudWatch's state change hook, whose transaction commits the
// event's outbox write with the change.
type AlarmChange struct {
	Name, ARN, Description             string
	State, Reason, ReasonData          string
	Time                               time.Time
	OldState, OldReason, OldReasonData string
	OldTime                            time.Time
	Metrics                            []AlarmMetric
}

// AlarmMetric is one entry of the event's configuration.metrics: a metric
// (Namespace set) or a math expression.
type AlarmMetric struct {
	ID, Expression, Label string
	Namespace, Name, Stat string
	Dimensions            map[string]string
	Period                int32
	ReturnData            bool
}

// alarmTime is the event's state timestamp format (2019-10-02T17:04:40.985+0000).
func alarmTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000-0700") }

// AlarmEventOps returns the store operations that put c's event in the
// default bus's outbox; committed with the alarm's change.
func (s *Service) AlarmEventOps(c AlarmChange) []store.Op {
	state := func(v, reason, data string, t time.Time) map[string]any {
		m := map[string]any{"value": v, "reason": reason, "timestamp": alarmTime(t)}
		if data != "" {
			m["reasonData"] = data
		}
		return m
	}
	var metrics []map[string]any
	for _, m := range c.Metrics {
		e := map[string]any{"id": m.ID, "returnData": m.ReturnData}
		if m.Expression != "" {
			e["expression"] = m.Expression
		}
		if m.Label != "" {
			e["label"] = m.Label
		}
		if m.Namespace != "" {
			dims := m.Dimensions
			if dims == nil {
				dims = map[string]string{}
			}
			e["metricStat"] = map[string]any{"metric": map[string]any{"namespace": m.Namespace, "name": m.Name, "dimensions": dims},
				"period": m.Period, "stat": m.Stat}
		}
		metrics = append(metrics, e)
	}
	conf := map[string]any{"metrics": metrics}
	if c.Description != "" {
		conf["description"] = c.Description
	}
	detail := map[string]any{"alarmName": c.Name, "state": state(c.State, c.Reason, c.ReasonData, c.Time),
		"previousState": state(c.OldState, c.OldReason, c.OldReasonData, c.OldTime), "configuration": conf}
	ev := s.newEvent("aws.cloudwatch", "CloudWatch Alarm State Change", c.Time, []string{c.ARN}, json.RawMessage(mustJSON(detail)))
	now := s.now().UTC()
	rec := outboxRecord{Bus: DefaultBus, Event: mustJSON(ev), Accepted: now}
	return []store.Op{store.Put(keyOutbox+s.ids.next(now), mustJSON(rec))}
}
