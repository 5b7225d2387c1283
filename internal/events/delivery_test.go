package events

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/eventsapi"
)

// endpoint is an httptest server on loopback that records requests and
// answers fail first, then 200.
func endpoint(t testing.TB, inv *invocations, name string, fail *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if fail != nil && fail.Add(-1) >= 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		inv.add(invocation{Target: name + " " + r.Header.Get("x-api-key") + " " + r.URL.RawQuery, Body: b, At: time.Now()})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func destination(t testing.TB, svc *Service, name, url string) string {
	t.Helper()
	ctx := context.Background()
	c, err := svc.CreateConnection(ctx, &eventsapi.CreateConnectionRequest{Name: s(name), AuthorizationType: ptr(eventsapi.ConnectionAuthorizationTypeApiKey),
		AuthParameters: &eventsapi.CreateConnectionAuthRequestParameters{ApiKeyAuthParameters: &eventsapi.CreateConnectionApiKeyAuthRequestParameters{ApiKeyName: s("x-api-key"), ApiKeyValue: s("k-" + name)}}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := svc.CreateApiDestination(ctx, &eventsapi.CreateApiDestinationRequest{Name: s(name), ConnectionArn: c.ConnectionArn,
		HttpMethod: ptr(eventsapi.ApiDestinationHttpMethodPost), InvocationEndpoint: s(url), InvocationRateLimitPerSecond: ptr(int32(1000))})
	if err != nil {
		t.Fatal(err)
	}
	return *d.ApiDestinationArn
}

func startDelivery(t testing.TB, svc *Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.RunDelivery(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func putEvent(t testing.TB, svc *Service, e eventsapi.PutEventsRequestEntry) string {
	t.Helper()
	out, err := svc.PutEvents(context.Background(), &eventsapi.PutEventsRequest{Entries: []eventsapi.PutEventsRequestEntry{e}})
	if err != nil || *out.FailedEntryCount != 0 {
		t.Fatalf("put events: %+v %v", out, err)
	}
	return *out.Entries[0].EventId
}

const role = "arn:aws:iam::000000000000:role/events"

func TestDeliveryTransformedInputToEndpointLogsAndBus(t *testing.T) {
	inv := newInvocations()
	logs := &fakeLogs{inv: inv, groups: map[string]bool{"/aws/events/stopped": true}}
	svc := testService(t, Deps{Logs: logs})
	ctx := context.Background()
	srv := endpoint(t, inv, "hook", nil)
	dest := destination(t, svc, "hook", srv.URL+"/in/*")
	svc.CreateEventBus(ctx, &eventsapi.CreateEventBusRequest{Name: s("audit")})
	mustPutRule(t, svc, &eventsapi.PutRuleRequest{Name: s("stopped"), EventPattern: s(`{"source":["aws.ecs"],"detail-type":["ECS Task State Change"],"detail":{"lastStatus":["STOPPED"]}}`)})
	mustPutTargets(t, svc, "stopped",
		eventsapi.Target{Id: s("http"), Arn: s(dest), RoleArn: s(role),
			HttpParameters: &eventsapi.HttpParameters{PathParameterValues: []string{"p1"}, QueryStringParameters: map[string]string{"q": "1"}},
			InputTransformer: &eventsapi.InputTransformer{InputPathsMap: map[string]string{"task": "$.detail.taskArn", "code": "$.detail.stopCode"},
				InputTemplate: s(`{"text": "task <task> stopped: <code>", "rule": <aws.events.rule-name>}`)}},
		eventsapi.Target{Id: s("log"), Arn: s("arn:aws:logs:us-east-1:000000000000:log-group:/aws/events/stopped:*")},
		eventsapi.Target{Id: s("bus"), Arn: s("arn:aws:events:us-east-1:000000000000:event-bus/audit"), RoleArn: s(role)})
	mustPutRule(t, svc, &eventsapi.PutRuleRequest{Name: s("audit-all"), EventBusName: s("audit"), EventPattern: s(`{"source":["aws.ecs"]}`)})
	mustPutTargets(t, svc, "audit/audit-all", eventsapi.Target{Id: s("log"), Arn: s("arn:aws:logs:us-east-1:000000000000:log-group:/aws/events/stopped"), InputPath: s("$.detail")})
	startDelivery(t, svc)

	// ECS's own event, emitted as the controller does.
	ev := svc.newEvent("aws.ecs", "ECS Task State Change", time.Now(), []string{"arn:aws:ecs:us-east-1:000000000000:task/c/abc"},
		json.RawMessage(`{"lastStatus":"STOPPED","taskArn":"arn:aws:ecs:us-east-1:000000000000:task/c/abc","stopCode":"EssentialContainerExited"}`))
	if err := svc.Emit(ctx, DefaultBus, []Event{ev}); err != nil {
		t.Fatal(err)
	}
	// A running task's event matches nothing.
	other := svc.newEvent("aws.ecs", "ECS Task State Change", time.Now(), nil, json.RawMessage(`{"lastStatus":"RUNNING"}`))
	svc.Emit(ctx, DefaultBus, []Event{other})

	got := map[string]string{}
	var logged []string
	for range 3 {
		i := inv.wait(t, 5*time.Second)
		if strings.HasPrefix(i.Target, "logs:") {
			if i.Target != "logs:/aws/events/stopped/"+ev.ID {
				t.Errorf("log stream %s, want the event id", i.Target)
			}
			logged = append(logged, string(i.Body))
			continue
		}
		got[i.Target] = string(i.Body)
	}
	if b := got["hook k-hook q=1"]; b != `{"text": "task arn:aws:ecs:us-east-1:000000000000:task/c/abc stopped: EssentialContainerExited", "rule": "stopped"}` {
		t.Errorf("endpoint got %q (all: %v)", b, got)
	}
	if len(logged) != 2 {
		t.Fatalf("log deliveries: %v", logged)
	}
	slices.Sort(logged) // the detail ("{"lastStatus) sorts before the event ("{"version)
	var whole Event
	if err := json.Unmarshal([]byte(logged[1]), &whole); err != nil || whole.ID != ev.ID || whole.DetailType != "ECS Task State Change" {
		t.Errorf("log target got %s (%v)", logged[1], err)
	}
	// Through the audit bus (same event id), InputPath $.detail.
	if logged[0] != `{"lastStatus":"STOPPED","taskArn":"arn:aws:ecs:us-east-1:000000000000:task/c/abc","stopCode":"EssentialContainerExited"}` {
		t.Errorf("bus target: %s", logged[0])
	}
	waitOutboxEmpty(t, svc)
}

func waitOutboxEmpty(t testing.TB, svc *Service) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		recs, _, _ := listJSON[outboxRecord](context.Background(), svc.st, keyOutbox)
		if len(recs) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the outbox was not emptied")
}

func TestFailingTargetRetriesWithoutBlockingOthers(t *testing.T) {
	inv := newInvocations()
	svc := testService(t, Deps{})
	var fails atomic.Int32
	fails.Store(2)
	bad := endpoint(t, inv, "flaky", &fails)
	good := endpoint(t, inv, "good", nil)
	mustPutRule(t, svc, &eventsapi.PutRuleRequest{Name: s("r"), EventPattern: s(`{"source":["app"]}`)})
	mustPutTargets(t, svc, "r",
		eventsapi.Target{Id: s("flaky"), Arn: s(destination(t, svc, "flaky", bad.URL)), RoleArn: s(role)},
		eventsapi.Target{Id: s("good"), Arn: s(destination(t, svc, "good", good.URL)), RoleArn: s(role)},
		eventsapi.Target{Id: s("lambda"), Arn: s("arn:aws:lambda:us-east-1:000000000000:function:f")})
	startDelivery(t, svc)
	putEvent(t, svc, eventsapi.PutEventsRequestEntry{Source: s("app"), DetailType: s("t"), Detail: s(`{"n":1}`)})
	first := inv.wait(t, 3*time.Second)
	if first.Target != "good k-good " {
		t.Fatalf("first delivery %q: the good target waited for the failing one", first.Target)
	}
	// The failed delivery is a retry record, the outbox record is gone.
	waitOutboxEmpty(t, svc)
	second := inv.wait(t, 10*time.Second)
	if second.Target != "flaky k-flaky " {
		t.Fatalf("retry: %q", second.Target)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		recs, _, _ := listJSON[retryRecord](context.Background(), svc.st, keyRetries)
		if len(recs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retry records left: %d", len(recs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRetryPolicyZeroAttemptsDrops(t *testing.T) {
	inv := newInvocations()
	svc := testService(t, Deps{})
	var fails atomic.Int32
	fails.Store(1)
	bad := endpoint(t, inv, "flaky", &fails)
	mustPutRule(t, svc, &eventsapi.PutRuleRequest{Name: s("r"), EventPattern: s(`{"source":["app"]}`)})
	mustPutTargets(t, svc, "r", eventsapi.Target{Id: s("flaky"), Arn: s(destination(t, svc, "flaky", bad.URL)), RoleArn: s(role),
		RetryPolicy: &eventsapi.RetryPolicy{MaximumRetryAttempts: ptr(int32(0))}})
	startDelivery(t, svc)
	putEvent(t, svc, eventsapi.PutEventsRequestEntry{Source: s("app"), DetailType: s("t"), Detail: s(`{}`)})
	putEvent(t, svc, eventsapi.PutEventsRequestEntry{Source: s("app"), DetailType: s("t"), Detail: s(`{"second":true}`)})
	i := inv.wait(t, 3*time.Second)
	if string(i.Body) == "" || !json.Valid(i.Body) || !strings.Contains(string(i.Body), `"second":true`) {
		t.Fatalf("delivered %s; the first event should have been dropped", i.Body)
	}
	recs, _, _ := listJSON[retryRecord](context.Background(), svc.st, keyRetries)
	if len(recs) != 0 {
		t.Fatalf("retry records with MaximumRetryAttempts 0: %d", len(recs))
	}
}

// TestOutboxSurvivesRestart: events accepted while no dispatcher runs
// (a server that crashed after answering PutEvents) are delivered when
// one starts.
func TestOutboxSurvivesRestart(t *testing.T) {
	inv := newInvocations()
	svc := testService(t, Deps{})
	srv := endpoint(t, inv, "hook", nil)
	mustPutRule(t, svc, &eventsapi.PutRuleRequest{Name: s("r"), EventPattern: s(`{"source":["app"]}`)})
	mustPutTargets(t, svc, "r", eventsapi.Target{Id: s("h"), Arn: s(destination(t, svc, "hook", srv.URL)), RoleArn: s(role)})
	var ids []string
	for range 3 {
		ids = append(ids, putEvent(t, svc, eventsapi.PutEventsRequestEntry{Source: s("app"), DetailType: s("t"), Detail: s(`{}`)}))
	}
	// A fresh service over the same store: what a restarted server builds.
	again := New(svc.st, svc.cfg, Deps{}, nil)
	startDelivery(t, again)
	for _, id := range ids {
		i := inv.wait(t, 5*time.Second)
		var ev Event
		json.Unmarshal(i.Body, &ev)
		if ev.ID != id {
			t.Fatalf("delivered %s, want %s (in order)", ev.ID, id)
		}
	}
	waitOutboxEmpty(t, again)
}
