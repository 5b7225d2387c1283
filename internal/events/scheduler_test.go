package events

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/eventsapi"
)

func TestDueFirings(t *testing.T) {
	created := time.Date(2026, 3, 1, 10, 0, 30, 0, time.UTC)
	rules := []ruleRecord{
		{Name: "every-minute", Bus: DefaultBus, Schedule: "rate(1 minute)", State: "ENABLED", Created: created},
		{Name: "disabled", Bus: DefaultBus, Schedule: "rate(1 minute)", State: "DISABLED", Created: created},
		{Name: "pattern", Bus: DefaultBus, Pattern: `{"source":["x"]}`, State: "ENABLED", Created: created},
		{Name: "noon", Bus: DefaultBus, Schedule: "cron(0 12 * * ? *)", State: "ENABLED", Created: created},
	}
	cases := []struct {
		name string
		last map[string]time.Time
		now  time.Time
		want map[string]time.Time
	}{
		{"nothing due before the first period", nil, created.Add(59 * time.Second), map[string]time.Time{}},
		{"first rate firing one period after creation", nil, created.Add(time.Minute),
			map[string]time.Time{"every-minute": created.Add(time.Minute)}},
		{"already fired", map[string]time.Time{"default/every-minute": created.Add(time.Minute)}, created.Add(90 * time.Second), map[string]time.Time{}},
		{"missed firings make one, at the latest instant", map[string]time.Time{"default/every-minute": created.Add(time.Minute)}, created.Add(10*time.Minute + 5*time.Second),
			map[string]time.Time{"every-minute": created.Add(10 * time.Minute)}},
		{"cron at noon", map[string]time.Time{"default/every-minute": created.Add(3 * time.Hour)}, time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC),
			map[string]time.Time{"noon": time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := map[string]time.Time{}
			for _, f := range dueFirings(rules, c.last, c.now) {
				got[f.Rule] = f.At
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for k, v := range c.want {
				if !got[k].Equal(v) {
					t.Fatalf("%s at %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

// TestRateRuleStartsTask drives the scheduler's clock: a rate(1 minute)
// rule with an ECS target starts a task started by events-rule/<name>,
// once per minute, on time.
func TestRateRuleStartsTask(t *testing.T) {
	inv := newInvocations()
	tasks := &fakeTasks{inv: inv}
	svc := testService(t, Deps{Tasks: tasks})
	t0 := time.Now().UTC()
	svc.SetClock(func() time.Time { return t0 })
	ctx := context.Background()
	mustPutRule(t, svc, &eventsapi.PutRuleRequest{Name: s("nightly-report"), ScheduleExpression: s("rate(1 minute)")})
	mustPutTargets(t, svc, "nightly-report", eventsapi.Target{Id: s("t"), Arn: s("arn:aws:ecs:us-east-1:000000000000:cluster/default"), RoleArn: s(role),
		EcsParameters: &eventsapi.EcsParameters{TaskDefinitionArn: s("report:1"), TaskCount: ptr(int32(2)), Group: s("reports"),
			Tags: []eventsapi.Tag{{Key: s("k"), Value: s("v")}}},
		Input: s(`{"containerOverrides":[{"name":"app","command":["run","--now"]}]}`)})
	startDelivery(t, svc)
	if err := svc.Tick(ctx, t0.Add(59*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := svc.Tick(ctx, t0.Add(61*time.Second)); err != nil {
		t.Fatal(err)
	}
	svc.Tick(ctx, t0.Add(62*time.Second)) // no second firing within the minute
	inv.wait(t, 5*time.Second)
	tasks.mu.Lock()
	if len(tasks.runs) != 1 {
		t.Fatalf("RunTask calls: %d", len(tasks.runs))
	}
	r := tasks.runs[0]
	tasks.mu.Unlock()
	if *r.StartedBy != "events-rule/nightly-report" || *r.Count != 2 || *r.TaskDefinition != "report:1" || *r.Group != "reports" ||
		*r.Cluster != "arn:aws:ecs:us-east-1:000000000000:cluster/default" || len(r.Tags) != 1 ||
		r.Overrides == nil || r.Overrides.ContainerOverrides[0].Command[1] != "--now" {
		b, _ := json.Marshal(r)
		t.Fatalf("RunTask input %s", b)
	}
	// The scheduled event: source aws.events, resources the rule.
	var f firedRecord
	getJSON(ctx, svc.st, scheduleKey(DefaultBus, "nightly-report"), &f)
	if !f.Last.Equal(t0.Add(time.Minute)) {
		t.Fatalf("last firing %v, want %v", f.Last, t0.Add(time.Minute))
	}
	svc.Tick(ctx, t0.Add(121*time.Second))
	inv.wait(t, 5*time.Second)
}

func TestScheduledEventShape(t *testing.T) {
	svc := testService(t, Deps{})
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	svc.SetClock(func() time.Time { return t0 })
	mustPutRule(t, svc, &eventsapi.PutRuleRequest{Name: s("tick"), ScheduleExpression: s("rate(5 minutes)")})
	svc.Tick(context.Background(), t0.Add(5*time.Minute))
	recs, _, _ := listJSON[outboxRecord](context.Background(), svc.st, keyOutbox)
	if len(recs) != 1 || recs[0].Rule != "tick" {
		t.Fatalf("outbox: %+v", recs)
	}
	var ev Event
	json.Unmarshal(recs[0].Event, &ev)
	if ev.Source != "aws.events" || ev.DetailType != "Scheduled Event" || ev.Time != "2026-03-01T10:05:00Z" ||
		len(ev.Resources) != 1 || ev.Resources[0] != "arn:aws:events:us-east-1:000000000000:rule/tick" || string(ev.Detail) != "{}" {
		t.Fatalf("event %+v", ev)
	}
}
