package events

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

func TestAlarmStateChangeEvent(t *testing.T) {
	svc := testService(t, Deps{})
	at := time.Date(2026, 3, 1, 10, 0, 0, 985e6, time.UTC)
	ops := svc.AlarmEventOps(AlarmChange{Name: "cpu-high", ARN: "arn:aws:cloudwatch:us-east-1:000000000000:alarm:cpu-high", Description: "cpu",
		State: "ALARM", Reason: "Threshold Crossed", ReasonData: `{"version":"1.0"}`, Time: at, OldState: "OK", OldReason: "fine", OldTime: at.Add(-time.Hour),
		Metrics: []AlarmMetric{{ID: "m1", Namespace: "AWS/ECS", Name: "CPUUtilization", Stat: "Average", Period: 60, Dimensions: map[string]string{"ClusterName": "default"}, ReturnData: true}}})
	if _, err := svc.st.Txn(context.Background(), nil, ops...); err != nil {
		t.Fatal(err)
	}
	evs := outboxEvents(t, svc)
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	ev := evs[0]
	if ev.Source != "aws.cloudwatch" || ev.DetailType != "CloudWatch Alarm State Change" || ev.Resources[0] != "arn:aws:cloudwatch:us-east-1:000000000000:alarm:cpu-high" {
		t.Fatalf("envelope %+v", ev)
	}
	var d struct {
		AlarmName string `json:"alarmName"`
		State     struct {
			Value, Reason, ReasonData, Timestamp string
		} `json:"state"`
		PreviousState struct{ Value string } `json:"previousState"`
		Configuration struct {
			Description string `json:"description"`
			Metrics     []struct {
				ID         string `json:"id"`
				MetricStat struct {
					Metric struct {
						Namespace, Name string
						Dimensions      map[string]string
					} `json:"metric"`
					Period int
					Stat   string
				} `json:"metricStat"`
				ReturnData bool `json:"returnData"`
			} `json:"metrics"`
		} `json:"configuration"`
	}
	if err := json.Unmarshal(ev.Detail, &d); err != nil {
		t.Fatal(err)
	}
	m := d.Configuration.Metrics
	if d.AlarmName != "cpu-high" || d.State.Value != "ALARM" || d.State.Timestamp != "2026-03-01T10:00:00.985+0000" || d.State.ReasonData != `{"version":"1.0"}` ||
		d.PreviousState.Value != "OK" || len(m) != 1 || m[0].MetricStat.Metric.Name != "CPUUtilization" || m[0].MetricStat.Metric.Dimensions["ClusterName"] != "default" ||
		m[0].MetricStat.Period != 60 || !m[0].ReturnData {
		t.Fatalf("detail %s", ev.Detail)
	}
}
