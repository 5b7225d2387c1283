package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/berthdev/berth/internal/berthtest"
)

// hookServer is a local HTTP endpoint (httptest on loopback) that hands
// every request body to the test.
func hookServer(t *testing.T) (*httptest.Server, <-chan hookCall) {
	ch := make(chan hookCall, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- hookCall{Body: string(b), Key: r.Header.Get("x-api-key"), Path: r.URL.Path, At: time.Now()}
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

type hookCall struct {
	Body, Key, Path string
	At              time.Time
}

func waitHook(t *testing.T, ch <-chan hookCall, within time.Duration) hookCall {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(within):
		t.Fatalf("the endpoint was not called within %v", within)
	}
	return hookCall{}
}

// apiDestination creates a connection with an API key and a destination
// to url.
func apiDestination(t *testing.T, eb *eventbridge.Client, name, url string) string {
	t.Helper()
	cx := context.Background()
	c, err := eb.CreateConnection(cx, &eventbridge.CreateConnectionInput{Name: aws.String(name), AuthorizationType: ebtypes.ConnectionAuthorizationTypeApiKey,
		AuthParameters: &ebtypes.CreateConnectionAuthRequestParameters{ApiKeyAuthParameters: &ebtypes.CreateConnectionApiKeyAuthRequestParameters{
			ApiKeyName: aws.String("x-api-key"), ApiKeyValue: aws.String("key-" + name)}}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := eb.CreateApiDestination(cx, &eventbridge.CreateApiDestinationInput{Name: aws.String(name), ConnectionArn: c.ConnectionArn,
		HttpMethod: ebtypes.ApiDestinationHttpMethodPost, InvocationEndpoint: aws.String(url), InvocationRateLimitPerSecond: aws.Int32(50)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(d.ApiDestinationArn)
}

const eventsRole = "arn:aws:iam::000000000000:role/events"

// TestEventBridgeAPIWithCLIs drives rules, targets and TestEventPattern
// through both AWS CLIs and the Go SDK, with AWS's errors.
func TestEventBridgeAPIWithCLIs(t *testing.T) {
	t.Parallel()
	s := berthtest.Start(t, nil)
	eb := eventbridge.NewFromConfig(s.AWSConfig())
	cx := context.Background()
	// The CLIs run side by side (each call is seconds of Python start-up
	// on a loaded machine), two calls each, on a rule the SDK made.
	if _, err := eb.PutRule(cx, &eventbridge.PutRuleInput{Name: aws.String("stopped"),
		EventPattern: aws.String(`{"source":["aws.ecs"],"detail-type":["ECS Task State Change"],"detail":{"lastStatus":["STOPPED"]}}`)}); err != nil {
		t.Fatal(err)
	}
	t.Run("clis", func(t *testing.T) {
		berthtest.EachCLI(t, berthtest.CLIs(t), func(t *testing.T, i int, cli berthtest.CLI) {
			if i == 0 {
				out, errOut, code := cli.Run(t, s, "events", "put-targets", "--rule", "stopped", "--targets",
					`[{"Id":"logs","Arn":"arn:aws:logs:us-east-1:000000000000:log-group:/aws/events/x"}]`)
				if code != 0 || !strings.Contains(out, `"FailedEntryCount": 0`) {
					t.Fatalf("put-targets: %s %s", out, errOut)
				}
				_, errOut, code = cli.Run(t, s, "events", "delete-rule", "--name", "stopped")
				if code == 0 || !strings.Contains(errOut, "ValidationException") || !strings.Contains(errOut, "Rule can't be deleted since it has targets.") {
					t.Fatalf("delete-rule with targets: %d %s", code, errOut)
				}
				return
			}
			out, errOut, code := cli.Run(t, s, "events", "put-rule", "--name", "by-"+strings.ReplaceAll(cli.Name, "-", ""),
				"--schedule-expression", "cron(0 2 * * ? *)")
			if code != 0 || !strings.Contains(out, `"RuleArn": "arn:aws:events:us-east-1:`) {
				t.Fatalf("put-rule: %s %s", out, errOut)
			}
			event := `{"id":"1","account":"000000000000","source":"aws.ecs","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail-type":"ECS Task State Change","detail":{"lastStatus":"STOPPED"}}`
			out, errOut, code = cli.Run(t, s, "events", "test-event-pattern", "--event", event,
				"--event-pattern", `{"detail":{"lastStatus":["STOPPED"]}}`)
			if code != 0 || !strings.Contains(out, `"Result": true`) {
				t.Fatalf("test-event-pattern: %s %s", out, errOut)
			}
		})
	})
	_, err := eb.PutRule(cx, &eventbridge.PutRuleInput{Name: aws.String("bad"), EventPattern: aws.String(`{"source":"aws.ecs"}`)})
	var ip *ebtypes.InvalidEventPatternException
	if !errors.As(err, &ip) || !strings.Contains(ip.ErrorMessage(), "Event pattern is not valid. Reason: ") {
		t.Fatalf("invalid pattern: %v", err)
	}
	_, err = eb.DescribeRule(cx, &eventbridge.DescribeRuleInput{Name: aws.String("nope")})
	var nf *ebtypes.ResourceNotFoundException
	if !errors.As(err, &nf) || nf.ErrorMessage() != "Rule nope does not exist on EventBus default." {
		t.Fatalf("describe missing: %v", err)
	}
	// Pagination through the SDK's paginator.
	for _, n := range []string{"p-a", "p-b", "p-c"} {
		if _, err := eb.PutRule(cx, &eventbridge.PutRuleInput{Name: aws.String(n), ScheduleExpression: aws.String("rate(1 hour)")}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	var tok *string
	for {
		r, err := eb.ListRules(cx, &eventbridge.ListRulesInput{NamePrefix: aws.String("p-"), Limit: aws.Int32(2), NextToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range r.Rules {
			names = append(names, aws.ToString(r.Name))
		}
		if tok = r.NextToken; tok == nil {
			break
		}
	}
	if strings.Join(names, ",") != "p-a,p-b,p-c" {
		t.Fatalf("paginated rules %v", names)
	}
	_, err = eb.PutRule(cx, &eventbridge.PutRuleInput{Name: aws.String("x"), EventBusName: aws.String("nope"), EventPattern: aws.String(`{"source":["a"]}`)})
	if !errors.As(err, &nf) {
		t.Fatalf("rule on missing bus: %v", err)
	}
}

// TestEventBridgeThroughBerthUp: the real binary delivers a PutEvents
// event to a local HTTP endpoint with a transformed input, and a
// scheduled rule's targets are visible; the not-deliverable Lambda target
// does not hold the endpoint back.
func TestEventBridgeThroughBerthUp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	t.Parallel()
	p := berthtest.StartProcess(t, "up", t.TempDir(), nil, "--agent=false")
	eb := eventbridge.NewFromConfig(p.AWSConfig())
	cx := context.Background()
	srv, calls := hookServer(t)
	dest := apiDestination(t, eb, "orders-hook", srv.URL+"/orders/*")
	if _, err := eb.CreateEventBus(cx, &eventbridge.CreateEventBusInput{Name: aws.String("orders")}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutRule(cx, &eventbridge.PutRuleInput{Name: aws.String("big-orders"), EventBusName: aws.String("orders"),
		EventPattern: aws.String(`{"source":["shop"],"detail":{"total":[{"numeric":[">",100]}]}}`)}); err != nil {
		t.Fatal(err)
	}
	pt, err := eb.PutTargets(cx, &eventbridge.PutTargetsInput{Rule: aws.String("big-orders"), EventBusName: aws.String("orders"), Targets: []ebtypes.Target{
		{Id: aws.String("lambda"), Arn: aws.String("arn:aws:lambda:us-east-1:000000000000:function:f")},
		{Id: aws.String("hook"), Arn: aws.String(dest), RoleArn: aws.String(eventsRole),
			HttpParameters: &ebtypes.HttpParameters{PathParameterValues: []string{"big"}},
			InputTransformer: &ebtypes.InputTransformer{InputPathsMap: map[string]string{"id": "$.detail.id", "total": "$.detail.total"},
				InputTemplate: aws.String(`{"order": "<id>", "total": <total>}`)}},
	}})
	if err != nil || aws.ToInt32(&pt.FailedEntryCount) != 0 {
		t.Fatalf("PutTargets: %v %v", pt, err)
	}
	put := func(id string, total int) {
		t.Helper()
		r, err := eb.PutEvents(cx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
			EventBusName: aws.String("orders"), Source: aws.String("shop"), DetailType: aws.String("Order Placed"),
			Detail: aws.String(`{"id":"` + id + `","total":` + itoa(total) + `}`)}}})
		if err != nil || r.FailedEntryCount != 0 {
			t.Fatalf("PutEvents: %v %v", r, err)
		}
	}
	put("small", 5)
	put("o-1", 250)
	c := waitHook(t, calls, 10*time.Second)
	if c.Body != `{"order": "o-1", "total": 250}` || c.Key != "key-orders-hook" || c.Path != "/orders/big" {
		t.Fatalf("endpoint got %+v", c)
	}
	select {
	case c := <-calls:
		t.Fatalf("an unmatched event was delivered: %+v", c)
	case <-time.After(300 * time.Millisecond):
	}
	var body map[string]any
	if json.Unmarshal([]byte(c.Body), &body) != nil {
		t.Fatalf("not JSON: %s", c.Body)
	}
	// The Lambda target is reported as not deliverable in the server's log.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.Output.String(), "target not deliverable in Berth") {
		if time.Now().After(deadline) {
			t.Fatalf("no not-deliverable report in the log:\n%s", p.Output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestEventBridgeAlarmStateChange: an alarm's state change reaches a rule
// on aws.cloudwatch as "CloudWatch Alarm State Change".
func TestEventBridgeAlarmStateChange(t *testing.T) {
	t.Parallel()
	s := berthtest.Start(t, nil)
	cfg := s.AWSConfig()
	eb, cw := eventbridge.NewFromConfig(cfg), cloudwatch.NewFromConfig(cfg)
	cx := context.Background()
	srv, calls := hookServer(t)
	dest := apiDestination(t, eb, "alarms", srv.URL)
	if _, err := eb.PutRule(cx, &eventbridge.PutRuleInput{Name: aws.String("alarms"),
		EventPattern: aws.String(`{"source":["aws.cloudwatch"],"detail-type":["CloudWatch Alarm State Change"],"detail":{"state":{"value":["ALARM"]}}}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(cx, &eventbridge.PutTargetsInput{Rule: aws.String("alarms"), Targets: []ebtypes.Target{{Id: aws.String("h"), Arn: aws.String(dest),
		RoleArn: aws.String(eventsRole), InputPath: aws.String("$.detail")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cw.PutMetricAlarm(cx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("cpu-high"), Namespace: aws.String("AWS/ECS"),
		MetricName: aws.String("CPUUtilization"), Statistic: cwtypes.StatisticAverage, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1),
		Threshold: aws.Float64(80), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold}); err != nil {
		t.Fatal(err)
	}
	if _, err := cw.SetAlarmState(cx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("cpu-high"), StateValue: cwtypes.StateValueAlarm,
		StateReason: aws.String("testing")}); err != nil {
		t.Fatal(err)
	}
	c := waitHook(t, calls, 10*time.Second)
	var d struct {
		AlarmName string `json:"alarmName"`
		State     struct{ Value, Reason string }
	}
	if json.Unmarshal([]byte(c.Body), &d) != nil || d.AlarmName != "cpu-high" || d.State.Value != "ALARM" || d.State.Reason != "testing" {
		t.Fatalf("endpoint got %s", c.Body)
	}
}
