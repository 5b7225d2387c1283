package events

import (
	"testing"

	"github.com/berthdev/berth/internal/api/eventsapi"
)

func TestInputFor(t *testing.T) {
	event := []byte(`{"version":"0","id":"e1","detail-type":"ECS Task State Change","source":"aws.ecs","detail":{"taskArn":"arn:t","containers":[{"name":"web","exitCode":137}],"msg":"say \"hi\"","n":3}}`)
	cases := []struct {
		name string
		t    eventsapi.Target
		want string
	}{
		{"whole event", eventsapi.Target{}, string(event)},
		{"constant input", eventsapi.Target{Input: s(`{"a":1}`)}, `{"a":1}`},
		{"input path", eventsapi.Target{InputPath: s("$.detail.containers[0]")}, `{"name":"web","exitCode":137}`},
		{"missing path", eventsapi.Target{InputPath: s("$.detail.nope")}, `null`},
		{"json template: strings in quotes, values outside", eventsapi.Target{InputTransformer: &eventsapi.InputTransformer{
			InputPathsMap: map[string]string{"arn": "$.detail.taskArn", "code": "$.detail.containers[0].exitCode", "msg": "$.detail.msg", "c": "$.detail.containers[0]"},
			InputTemplate: s(`{"task": "<arn>", "code": <code>, "msg": "<msg>", "c": <c>, "missing": <nope>, "rule": "<aws.events.rule-name>"}`)}},
			`{"task": "arn:t", "code": 137, "msg": "say \"hi\"", "c": {"name":"web","exitCode":137}, "missing": <nope>, "rule": "r1"}`},
		{"string template", eventsapi.Target{InputTransformer: &eventsapi.InputTransformer{
			InputPathsMap: map[string]string{"arn": "$.detail.taskArn", "n": "$.detail.n"},
			InputTemplate: s(`Task <arn> has <n> containers`)}}, `Task arn:t has 3 containers`},
		{"missing value inside a string is empty", eventsapi.Target{InputTransformer: &eventsapi.InputTransformer{
			InputPathsMap: map[string]string{"x": "$.detail.none"}, InputTemplate: s(`{"x": "<x>", "y": <x>}`)}}, `{"x": "", "y": null}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(inputFor(&c.t, event, "r1", "arn:r1", "2026-01-01T00:00:00Z")); got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestParsePath(t *testing.T) {
	for _, p := range []string{"$", "$.a", "$.a.b[2].c", "$['a b'].c", "$.detail-type"} {
		if _, err := parsePath(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{"", "a", "$.", "$..a", "$[x]", "$[1"} {
		if _, err := parsePath(p); err == nil {
			t.Errorf("%s accepted", p)
		}
	}
}

func FuzzInputTransformer(f *testing.F) {
	f.Add(`{"a": "<x>", "b": <x>}`, `{"detail":{"x":"q\"uote"}}`)
	f.Add(`<x> and "<x>"`, `{"detail":{"x":[1,2]}}`)
	f.Fuzz(func(t *testing.T, tmpl, event string) {
		tr := &eventsapi.Target{InputTransformer: &eventsapi.InputTransformer{InputPathsMap: map[string]string{"x": "$.detail.x"}, InputTemplate: &tmpl}}
		_ = inputFor(tr, []byte(event), "r", "arn", "t")
	})
}
