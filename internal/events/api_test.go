package events

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/api/eventsapi"
)

func TestBusesLifecycleAndErrors(t *testing.T) {
	svc := testService(t, Deps{})
	ctx := context.Background()
	out, err := svc.CreateEventBus(ctx, &eventsapi.CreateEventBusRequest{Name: s("orders")})
	if err != nil || *out.EventBusArn != "arn:aws:events:us-east-1:000000000000:event-bus/orders" {
		t.Fatalf("create: %v %v", out, err)
	}
	_, err = svc.CreateEventBus(ctx, &eventsapi.CreateEventBusRequest{Name: s("orders")})
	if wireCode(t, err) != "ResourceAlreadyExistsException" || wireMsg(err) != "Event bus orders already exists." {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := svc.UpdateEventBus(ctx, &eventsapi.UpdateEventBusRequest{Name: s("orders"), Description: s("all orders")}); err != nil {
		t.Fatal(err)
	}
	if d, _ := svc.DescribeEventBus(ctx, &eventsapi.DescribeEventBusRequest{Name: s("orders")}); deref(d.Description) != "all orders" {
		t.Fatalf("description %+v", d)
	}
	_, err = svc.CreateEventBus(ctx, &eventsapi.CreateEventBusRequest{Name: s("kms"), KmsKeyIdentifier: s("alias/x")})
	if wireCode(t, err) != "OperationDisabledException" {
		t.Fatalf("bus with a KMS key: %v", err)
	}
	_, err = svc.DescribeEventBus(ctx, &eventsapi.DescribeEventBusRequest{Name: s("nope")})
	if wireCode(t, err) != "ResourceNotFoundException" || wireMsg(err) != "Event bus nope does not exist." {
		t.Fatalf("missing: %v", err)
	}
	d, err := svc.DescribeEventBus(ctx, &eventsapi.DescribeEventBusRequest{})
	if err != nil || *d.Name != "default" {
		t.Fatalf("default bus: %v %v", d, err)
	}
	l, err := svc.ListEventBuses(ctx, &eventsapi.ListEventBusesRequest{Limit: ptr(int32(1))})
	if err != nil || len(l.EventBuses) != 1 || *l.EventBuses[0].Name != "default" || l.NextToken == nil {
		t.Fatalf("list page 1: %+v %v", l, err)
	}
	l, err = svc.ListEventBuses(ctx, &eventsapi.ListEventBusesRequest{Limit: ptr(int32(1)), NextToken: l.NextToken})
	if err != nil || len(l.EventBuses) != 1 || *l.EventBuses[0].Name != "orders" || l.NextToken != nil {
		t.Fatalf("list page 2: %+v %v", l, err)
	}
	_, err = svc.DeleteEventBus(ctx, &eventsapi.DeleteEventBusRequest{Name: s("default")})
	if wireCode(t, err) != "ValidationException" {
		t.Fatalf("delete default: %v", err)
	}
	if _, err := svc.DeleteEventBus(ctx, &eventsapi.DeleteEventBusRequest{Name: s("orders")}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DescribeEventBus(ctx, &eventsapi.DescribeEventBusRequest{Name: s("orders")}); wireCode(t, err) != "ResourceNotFoundException" {
		t.Fatalf("after delete: %v", err)
	}
}

func TestRulesAndTargets(t *testing.T) {
	svc := testService(t, Deps{})
	ctx := context.Background()
	// Neither pattern nor schedule; a bad pattern; a schedule on a custom bus.
	_, err := svc.PutRule(ctx, &eventsapi.PutRuleRequest{Name: s("r")})
	if wireCode(t, err) != "ValidationException" || wireMsg(err) != "Parameter(s) EventPattern or ScheduleExpression must be specified." {
		t.Fatalf("empty rule: %v", err)
	}
	_, err = svc.PutRule(ctx, &eventsapi.PutRuleRequest{Name: s("r"), EventPattern: s(`{"source": "aws.ecs"`)})
	if wireCode(t, err) != "InvalidEventPatternException" || !strings.HasPrefix(wireMsg(err), "Event pattern is not valid. Reason: ") ||
		strings.Count(wireMsg(err), "Event pattern is not valid.") != 1 {
		t.Fatalf("bad pattern: %v", err)
	}
	_, err = svc.TestEventPattern(ctx, &eventsapi.TestEventPatternRequest{EventPattern: s(`{"source":"aws.ecs"}`), Event: s(`{}`)})
	if wireCode(t, err) != "InvalidEventPatternException" {
		t.Fatalf("TestEventPattern with a bad pattern: %v", err)
	}
	_, err = svc.PutRule(ctx, &eventsapi.PutRuleRequest{Name: s("r"), ScheduleExpression: s("rate(0 minutes)")})
	if wireCode(t, err) != "ValidationException" || wireMsg(err) != "Parameter ScheduleExpression is not valid." {
		t.Fatalf("bad schedule: %v", err)
	}
	svc.CreateEventBus(ctx, &eventsapi.CreateEventBusRequest{Name: s("custom")})
	_, err = svc.PutRule(ctx, &eventsapi.PutRuleRequest{Name: s("r"), EventBusName: s("custom"), ScheduleExpression: s("rate(5 minutes)")})
	if wireCode(t, err) != "ValidationException" {
		t.Fatalf("schedule on custom bus: %v", err)
	}
	_, err = svc.PutRule(ctx, &eventsapi.PutRuleRequest{Name: s("r"), EventBusName: s("ghost"), EventPattern: s(`{"source":["x"]}`)})
	if wireCode(t, err) != "ResourceNotFoundException" {
		t.Fatalf("rule on missing bus: %v", err)
	}
	for i := range 3 {
		mustPutRule(t, svc, &eventsapi.PutRuleRequest{Name: s(fmt.Sprintf("rule-%d", i)), EventPattern: s(`{"source":["app"]}`)})
	}
	out, err := svc.PutRule(ctx, &eventsapi.PutRuleRequest{Name: s("rule-0"), EventPattern: s(`{"source":["app2"]}`), State: ptr(eventsapi.RuleStateDisabled)})
	if err != nil || *out.RuleArn != "arn:aws:events:us-east-1:000000000000:rule/rule-0" {
		t.Fatalf("update: %v %v", out, err)
	}
	d, err := svc.DescribeRule(ctx, &eventsapi.DescribeRuleRequest{Name: s("rule-0")})
	if err != nil || *d.EventPattern != `{"source":["app2"]}` || *d.State != eventsapi.RuleStateDisabled || *d.EventBusName != "default" {
		t.Fatalf("describe: %+v %v", d, err)
	}
	_, err = svc.DescribeRule(ctx, &eventsapi.DescribeRuleRequest{Name: s("nope")})
	if wireCode(t, err) != "ResourceNotFoundException" || wireMsg(err) != "Rule nope does not exist on EventBus default." {
		t.Fatalf("missing rule: %v", err)
	}
	if _, err := svc.EnableRule(ctx, &eventsapi.EnableRuleRequest{Name: s("rule-0")}); err != nil {
		t.Fatal(err)
	}
	// ListRules: prefix and pagination.
	l, err := svc.ListRules(ctx, &eventsapi.ListRulesRequest{NamePrefix: s("rule-"), Limit: ptr(int32(2))})
	if err != nil || len(l.Rules) != 2 || l.NextToken == nil || *l.Rules[0].State != eventsapi.RuleStateEnabled {
		t.Fatalf("list: %+v %v", l, err)
	}
	l, err = svc.ListRules(ctx, &eventsapi.ListRulesRequest{NamePrefix: s("rule-"), Limit: ptr(int32(2)), NextToken: l.NextToken})
	if err != nil || len(l.Rules) != 1 || *l.Rules[0].Name != "rule-2" || l.NextToken != nil {
		t.Fatalf("list page 2: %+v %v", l, err)
	}
	_, err = svc.ListRules(ctx, &eventsapi.ListRulesRequest{NextToken: s("garbage")})
	if wireCode(t, err) != "ValidationException" {
		t.Fatalf("bad token: %v", err)
	}
	// Targets: up to five; DeleteRule refused while any remain.
	hook := "arn:aws:lambda:us-east-1:000000000000:function:f"
	var ts []eventsapi.Target
	for i := range 5 {
		ts = append(ts, eventsapi.Target{Id: s(fmt.Sprint(i)), Arn: s(hook)})
	}
	mustPutTargets(t, svc, "rule-1", ts...)
	_, err = svc.PutTargets(ctx, &eventsapi.PutTargetsRequest{Rule: s("rule-1"), Targets: []eventsapi.Target{{Id: s("6"), Arn: s(hook)}}})
	if wireCode(t, err) != "LimitExceededException" {
		t.Fatalf("sixth target: %v", err)
	}
	_, err = svc.PutTargets(ctx, &eventsapi.PutTargetsRequest{Rule: s("ghost"), Targets: ts[:1]})
	if wireCode(t, err) != "ResourceNotFoundException" {
		t.Fatalf("targets on missing rule: %v", err)
	}
	_, err = svc.PutTargets(ctx, &eventsapi.PutTargetsRequest{Rule: s("rule-1"), Targets: []eventsapi.Target{{Id: s("x"), Arn: s(hook), Input: s("{"), InputPath: s("$.detail")}}})
	if wireCode(t, err) != "ValidationException" {
		t.Fatalf("input and input path: %v", err)
	}
	_, err = svc.PutTargets(ctx, &eventsapi.PutTargetsRequest{Rule: s("rule-1"), Targets: []eventsapi.Target{{Id: s("x"), Arn: s("arn:aws:ecs:us-east-1:000000000000:cluster/c"),
		EcsParameters: &eventsapi.EcsParameters{TaskDefinitionArn: s("web")}}}})
	if wireCode(t, err) != "ValidationException" || wireMsg(err) != "Parameter(s) RoleArn must be specified for target: x." {
		t.Fatalf("ecs target without role: %v", err)
	}
	_, err = svc.DeleteRule(ctx, &eventsapi.DeleteRuleRequest{Name: s("rule-1")})
	if wireCode(t, err) != "ValidationException" || wireMsg(err) != "Rule can't be deleted since it has targets." {
		t.Fatalf("delete with targets: %v", err)
	}
	names, err := svc.ListRuleNamesByTarget(ctx, &eventsapi.ListRuleNamesByTargetRequest{TargetArn: s(hook)})
	if err != nil || len(names.RuleNames) != 1 || names.RuleNames[0] != "rule-1" {
		t.Fatalf("rule names by target: %+v %v", names, err)
	}
	lt, err := svc.ListTargetsByRule(ctx, &eventsapi.ListTargetsByRuleRequest{Rule: s("rule-1"), Limit: ptr(int32(3))})
	if err != nil || len(lt.Targets) != 3 || lt.NextToken == nil {
		t.Fatalf("targets page: %+v %v", lt, err)
	}
	rm, err := svc.RemoveTargets(ctx, &eventsapi.RemoveTargetsRequest{Rule: s("rule-1"), Ids: []string{"0", "1", "2", "3", "4"}})
	if err != nil || *rm.FailedEntryCount != 0 {
		t.Fatalf("remove: %+v %v", rm, err)
	}
	if _, err := svc.DeleteRule(ctx, &eventsapi.DeleteRuleRequest{Name: s("rule-1")}); err != nil {
		t.Fatal(err)
	}
	// Tags on a rule.
	arn := "arn:aws:events:us-east-1:000000000000:rule/rule-2"
	if _, err := svc.TagResource(ctx, &eventsapi.TagResourceRequest{ResourceARN: s(arn), Tags: []eventsapi.Tag{{Key: s("team"), Value: s("a")}}}); err != nil {
		t.Fatal(err)
	}
	tg, err := svc.ListTagsForResource(ctx, &eventsapi.ListTagsForResourceRequest{ResourceARN: s(arn)})
	if err != nil || len(tg.Tags) != 1 || *tg.Tags[0].Value != "a" {
		t.Fatalf("tags: %+v %v", tg, err)
	}
	svc.UntagResource(ctx, &eventsapi.UntagResourceRequest{ResourceARN: s(arn), TagKeys: []string{"team"}})
	tg, _ = svc.ListTagsForResource(ctx, &eventsapi.ListTagsForResourceRequest{ResourceARN: s(arn)})
	if len(tg.Tags) != 0 {
		t.Fatalf("untag: %+v", tg)
	}
}

func TestPutEventsEntryErrors(t *testing.T) {
	svc := testService(t, Deps{})
	ctx := context.Background()
	out, err := svc.PutEvents(ctx, &eventsapi.PutEventsRequest{Entries: []eventsapi.PutEventsRequestEntry{
		{Source: s("app"), DetailType: s("t"), Detail: s(`{"a":1}`)},
		{DetailType: s("t"), Detail: s(`{}`)},
		{Source: s("app"), DetailType: s("t"), Detail: s(`[1]`)},
		{Source: s("aws.ecs"), DetailType: s("t"), Detail: s(`{}`)},
		{Source: s("app"), DetailType: s("t"), Detail: s(`{}`), EventBusName: s("ghost")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if *out.FailedEntryCount != 4 || out.Entries[0].EventId == nil {
		t.Fatalf("entries: %+v", out)
	}
	want := []string{"", "InvalidArgument", "MalformedDetail", "NotAuthorizedForSourceException", "ResourceNotFoundException"}
	for i, w := range want {
		if deref(out.Entries[i].ErrorCode) != w {
			t.Errorf("entry %d: code %q, want %q", i, deref(out.Entries[i].ErrorCode), w)
		}
	}
	// The accepted entry is in the outbox.
	recs, _, _ := listJSON[outboxRecord](ctx, svc.st, keyOutbox)
	if len(recs) != 1 {
		t.Fatalf("outbox holds %d", len(recs))
	}
	big := make([]byte, 200*1024)
	for i := range big {
		big[i] = 'a'
	}
	detail := `{"x":"` + string(big) + `"}`
	_, err = svc.PutEvents(ctx, &eventsapi.PutEventsRequest{Entries: []eventsapi.PutEventsRequestEntry{
		{Source: s("app"), DetailType: s("t"), Detail: s(detail)}, {Source: s("app"), DetailType: s("t"), Detail: s(detail)}}})
	if wireCode(t, err) != "ValidationException" {
		t.Fatalf("oversize request: %v", err)
	}
}

func TestConnectionsAndDestinations(t *testing.T) {
	svc := testService(t, Deps{})
	ctx := context.Background()
	c, err := svc.CreateConnection(ctx, &eventsapi.CreateConnectionRequest{Name: s("hook"), AuthorizationType: ptr(eventsapi.ConnectionAuthorizationTypeApiKey),
		AuthParameters: &eventsapi.CreateConnectionAuthRequestParameters{ApiKeyAuthParameters: &eventsapi.CreateConnectionApiKeyAuthRequestParameters{ApiKeyName: s("x-key"), ApiKeyValue: s("secret")}}})
	if err != nil || *c.ConnectionState != eventsapi.ConnectionStateAuthorized {
		t.Fatalf("create connection: %v %v", c, err)
	}
	dc, err := svc.DescribeConnection(ctx, &eventsapi.DescribeConnectionRequest{Name: s("hook")})
	if err != nil || *dc.AuthParameters.ApiKeyAuthParameters.ApiKeyName != "x-key" {
		t.Fatalf("describe connection: %+v %v", dc, err)
	}
	if b := mustJSON(dc); strings.Contains(string(b), "secret\"") {
		t.Fatalf("describe leaks the key: %s", b)
	}
	_, err = svc.CreateApiDestination(ctx, &eventsapi.CreateApiDestinationRequest{Name: s("d"), ConnectionArn: s("arn:aws:events:us-east-1:000000000000:connection/ghost/x"),
		HttpMethod: ptr(eventsapi.ApiDestinationHttpMethodPost), InvocationEndpoint: s("http://127.0.0.1:1/x")})
	if wireCode(t, err) != "ResourceNotFoundException" {
		t.Fatalf("destination on missing connection: %v", err)
	}
	d, err := svc.CreateApiDestination(ctx, &eventsapi.CreateApiDestinationRequest{Name: s("d"), ConnectionArn: c.ConnectionArn,
		HttpMethod: ptr(eventsapi.ApiDestinationHttpMethodPost), InvocationEndpoint: s("http://127.0.0.1:1/x")})
	if err != nil || *d.ApiDestinationState != eventsapi.ApiDestinationStateActive {
		t.Fatalf("create destination: %v %v", d, err)
	}
	dd, err := svc.DescribeApiDestination(ctx, &eventsapi.DescribeApiDestinationRequest{Name: s("d")})
	if err != nil || *dd.InvocationRateLimitPerSecond != 300 {
		t.Fatalf("describe destination: %+v %v", dd, err)
	}
	if _, err := svc.UpdateApiDestination(ctx, &eventsapi.UpdateApiDestinationRequest{Name: s("d"), InvocationRateLimitPerSecond: ptr(int32(7))}); err != nil {
		t.Fatal(err)
	}
	dd, _ = svc.DescribeApiDestination(ctx, &eventsapi.DescribeApiDestinationRequest{Name: s("d")})
	if *dd.InvocationRateLimitPerSecond != 7 || *dd.InvocationEndpoint != "http://127.0.0.1:1/x" {
		t.Fatalf("after update: %+v", dd)
	}
	if _, err := svc.UpdateConnection(ctx, &eventsapi.UpdateConnectionRequest{Name: s("hook"), AuthParameters: &eventsapi.UpdateConnectionAuthRequestParameters{
		ApiKeyAuthParameters: &eventsapi.UpdateConnectionApiKeyAuthRequestParameters{ApiKeyValue: s("rotated")}}}); err != nil {
		t.Fatal(err)
	}
	var cr connRecord
	getJSON(ctx, svc.st, connKey("hook"), &cr)
	if *cr.Auth.ApiKeyAuthParameters.ApiKeyName != "x-key" || *cr.Auth.ApiKeyAuthParameters.ApiKeyValue != "rotated" {
		t.Fatalf("after update: %+v", cr.Auth.ApiKeyAuthParameters)
	}
	_, err = svc.UpdateConnection(ctx, &eventsapi.UpdateConnectionRequest{Name: s("hook"), AuthorizationType: ptr(eventsapi.ConnectionAuthorizationTypeBasic)})
	if wireCode(t, err) != "ValidationException" {
		t.Fatalf("new type without its credentials: %v", err)
	}
	_, err = svc.DeleteConnection(ctx, &eventsapi.DeleteConnectionRequest{Name: s("hook")})
	if wireCode(t, err) != "ValidationException" {
		t.Fatalf("delete used connection: %v", err)
	}
	svc.DeleteApiDestination(ctx, &eventsapi.DeleteApiDestinationRequest{Name: s("d")})
	if _, err := svc.DeleteConnection(ctx, &eventsapi.DeleteConnectionRequest{Name: s("hook")}); err != nil {
		t.Fatal(err)
	}
}

// TestBusNamesWithSlash: bus names may hold "/"; bus "team"'s rules and
// deletion must not reach bus "team/sub"'s.
func TestBusNamesWithSlash(t *testing.T) {
	svc := testService(t, Deps{})
	ctx := context.Background()
	for _, bus := range []string{"team", "team/sub"} {
		if _, err := svc.CreateEventBus(ctx, &eventsapi.CreateEventBusRequest{Name: s(bus)}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.PutRule(ctx, &eventsapi.PutRuleRequest{Name: s("r"), EventBusName: s(bus), EventPattern: s(`{"source":["x"]}`)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, bus := range []string{"team", "team/sub"} {
		l, err := svc.ListRules(ctx, &eventsapi.ListRulesRequest{EventBusName: s(bus)})
		if err != nil || len(l.Rules) != 1 || deref(l.Rules[0].EventBusName) != bus {
			t.Fatalf("rules of %s: %+v %v", bus, l, err)
		}
	}
	if _, err := svc.DeleteRule(ctx, &eventsapi.DeleteRuleRequest{Name: s("r"), EventBusName: s("team")}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DeleteEventBus(ctx, &eventsapi.DeleteEventBusRequest{Name: s("team")}); err != nil {
		t.Fatal(err)
	}
	l, err := svc.ListRules(ctx, &eventsapi.ListRulesRequest{EventBusName: s("team/sub")})
	if err != nil || len(l.Rules) != 1 {
		t.Fatalf("team/sub's rule after deleting bus team: %+v %v", l, err)
	}
}
