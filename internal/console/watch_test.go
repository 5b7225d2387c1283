package console

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestReadOnlyOp(t *testing.T) {
	for op, want := range map[string]bool{"DescribeTargetHealth": true, "ListMetrics": true, "GetMetricData": true,
		"CreateLoadBalancer": false, "PutMetricData": false, "Getaway": false, "Get": false, "DeleteRule": false, "UpdateService": false} {
		if got := readOnlyOp(op); got != want {
			t.Errorf("readOnlyOp(%q) = %v, want %v", op, got, want)
		}
	}
}

func TestParseWatch(t *testing.T) {
	calls, every, err := parseWatch(`[{"s":"elasticloadbalancing","o":"DescribeLoadBalancers"},{"s":"monitoring","o":"GetMetricData","i":{"MetricDataQueries":[]},"window":600}]`, "0.1")
	if err != nil || len(calls) != 2 || string(calls[0].Input) != "{}" || calls[1].Window != 600 || every != minWatchInterval {
		t.Fatalf("parseWatch: %+v %v %v", calls, every, err)
	}
	if _, every, _ := parseWatch(`[{"s":"a","o":"GetX"}]`, ""); every != defWatchInterval {
		t.Errorf("default interval %v", every)
	}
	if _, every, _ := parseWatch(`[{"s":"a","o":"GetX"}]`, "3600"); every != maxWatchInterval {
		t.Errorf("capped interval %v", every)
	}
	for q, want := range map[string]string{
		`[{"s":"ecs","o":"UpdateService","i":{}}]`: "not a read",
		`[]`:                                    "1 to 24",
		`{"s":"ecs"}`:                           "JSON array",
		`[{"s":"ecs","o":"ListTasks","i":[1]}]`: "JSON object",
		`[{"s":"","o":"ListTasks"}]`:            "names no service",
		`[{"s":"ecs","o":"ListTasks","window":-1}]`:      "window",
		`[{"s":"ecs","o":"ListTasks/x"}]`:                "names no service",
		`[{"s":"ecs","o":"ListTasks","window":2000000}]`: "window",
	} {
		_, _, err := parseWatch(q, "")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseWatch(%s): %v, want an error with %q", q, err, want)
		}
	}
	if _, _, err := parseWatch(`[`+strings.Repeat(`{"s":"a","o":"GetX"},`, 24)+`{"s":"a","o":"GetX"}]`, ""); err == nil {
		t.Error("25 calls accepted")
	}
}

func TestWindowed(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	out, err := windowed(json.RawMessage(`{"MetricDataQueries":[{"Id":"m"}],"StartTime":1}`), 600, now)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(out, &m)
	if m["StartTime"].(float64) != 1_800_000_000-600 || m["EndTime"].(float64) != 1_800_000_000 || m["MetricDataQueries"] == nil {
		t.Errorf("windowed: %s", out)
	}
	if same, _ := windowed(json.RawMessage(`{"a":1}`), 0, now); string(same) != `{"a":1}` {
		t.Errorf("no window: %s", same)
	}
}
