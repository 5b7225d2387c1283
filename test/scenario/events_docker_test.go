package scenario

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/berthdev/berth/internal/berthtest"
)

// TestEventBridgeECSOnDocker: on a real agent and Docker, a rule on
// stopped tasks delivers ECS's "ECS Task State Change" to a log group and
// to a local HTTP endpoint with a transformed input, and a rate(1 minute)
// rule starts a task (the scheduler's clock is driven in-process)
// carrying startedBy events-rule/<rule name>.
func TestEventBridgeECSOnDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers")
	}
	berthtest.NeedDocker(t)
	t.Parallel()
	s := berthtest.Start(t, nil)
	startAgent(t, s, "")
	cx := context.Background()
	cfg := s.AWSConfig()
	c, eb, lc := ecs.NewFromConfig(cfg), eventbridge.NewFromConfig(cfg), cloudwatchlogs.NewFromConfig(cfg)
	waitInstances(t, c, 1)

	const group = "/aws/events/ecs-stopped"
	if _, err := lc.CreateLogGroup(cx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	srv, calls := hookServer(t)
	dest := apiDestination(t, eb, "stopped-hook", srv.URL)
	if _, err := eb.PutRule(cx, &eventbridge.PutRuleInput{Name: aws.String("task-stopped"),
		EventPattern: aws.String(`{"source":["aws.ecs"],"detail-type":["ECS Task State Change"],"detail":{"lastStatus":["STOPPED"],"group":[{"prefix":"family:exits"}]}}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(cx, &eventbridge.PutTargetsInput{Rule: aws.String("task-stopped"), Targets: []ebtypes.Target{
		{Id: aws.String("log"), Arn: aws.String("arn:aws:logs:us-east-1:000000000000:log-group:" + group)},
		{Id: aws.String("hook"), Arn: aws.String(dest), RoleArn: aws.String(eventsRole),
			InputTransformer: &ebtypes.InputTransformer{
				InputPathsMap: map[string]string{"task": "$.detail.taskArn", "code": "$.detail.stopCode", "exit": "$.detail.containers[0].exitCode"},
				InputTemplate: aws.String(`{"stopped": "<task>", "why": "<code>", "exit": <exit>}`)}},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterTaskDefinition(cx, toolTaskDef("exits", []string{"exit:3"})); err != nil {
		t.Fatal(err)
	}
	taskARN := runOne(t, c, "exits")
	hit := waitHook(t, calls, 60*time.Second)
	if hit.Body != `{"stopped": "`+taskARN+`", "why": "EssentialContainerExited", "exit": 3}` {
		t.Fatalf("endpoint got %s", hit.Body)
	}
	// The log group holds the whole event, in a stream named by its id.
	var ev struct {
		ID         string         `json:"id"`
		DetailType string         `json:"detail-type"`
		Source     string         `json:"source"`
		Resources  []string       `json:"resources"`
		Detail     map[string]any `json:"detail"`
	}
	deadline := time.Now().Add(berthtest.Scale(10 * time.Second))
	for {
		r, err := lc.FilterLogEvents(cx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group)})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Events) > 0 {
			if err := json.Unmarshal([]byte(aws.ToString(r.Events[0].Message)), &ev); err != nil {
				t.Fatal(err)
			}
			if aws.ToString(r.Events[0].LogStreamName) != ev.ID {
				t.Fatalf("stream %s, event %s", aws.ToString(r.Events[0].LogStreamName), ev.ID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing in the log group")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ev.Source != "aws.ecs" || ev.DetailType != "ECS Task State Change" || len(ev.Resources) != 1 || ev.Resources[0] != taskARN ||
		ev.Detail["lastStatus"] != "STOPPED" || ev.Detail["version"] == nil || !strings.HasSuffix(ev.Detail["createdAt"].(string), "Z") {
		t.Fatalf("logged event %+v", ev)
	}

	// A scheduled rule starting a task; the scheduler is driven past the
	// first minute in-process.
	if _, err := c.RegisterTaskDefinition(cx, toolTaskDef("report", []string{"sleep:30s"})); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutRule(cx, &eventbridge.PutRuleInput{Name: aws.String("every-minute"), ScheduleExpression: aws.String("rate(1 minute)")}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(cx, &eventbridge.PutTargetsInput{Rule: aws.String("every-minute"), Targets: []ebtypes.Target{{
		Id: aws.String("task"), Arn: aws.String("arn:aws:ecs:us-east-1:000000000000:cluster/default"), RoleArn: aws.String(eventsRole),
		EcsParameters: &ebtypes.EcsParameters{TaskDefinitionArn: aws.String("report"), TaskCount: aws.Int32(1)}}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Daemon.Events().Tick(cx, time.Now().Add(61*time.Second)); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(berthtest.Scale(20 * time.Second))
	for {
		l, err := c.ListTasks(cx, &ecs.ListTasksInput{StartedBy: aws.String("events-rule/every-minute")})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.TaskArns) == 1 {
			waitTask(t, c, "default", l.TaskArns[0], 30*time.Second, func(tk types.Task) bool { return aws.ToString(tk.LastStatus) == "RUNNING" })
			c.StopTask(cx, &ecs.StopTaskInput{Task: aws.String(l.TaskArns[0])})
			break
		}
		if len(l.TaskArns) > 1 || time.Now().After(deadline) {
			t.Fatalf("tasks started by the rule: %v", l.TaskArns)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
