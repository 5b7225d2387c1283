package events

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/eventsapi"
)

type fakeMetrics struct {
	mu  sync.Mutex
	sum map[string]float64
}

func (f *fakeMetrics) PublishEventMetrics(_ context.Context, ms []Metric) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range ms {
		f.sum[m.Name+"/"+m.RuleName] += m.Count
	}
	return nil
}

func (f *fakeMetrics) get(k string) float64 { f.mu.Lock(); defer f.mu.Unlock(); return f.sum[k] }

// TestUndeliverableTargetReported: a Lambda target is accepted, listed,
// and counted in FailedInvocations for its rule when an event is due.
func TestUndeliverableTargetReported(t *testing.T) {
	m := &fakeMetrics{sum: map[string]float64{}}
	svc := testService(t, Deps{Metrics: m})
	svc.metricsEvery = 50 * time.Millisecond
	mustPutRule(t, svc, &eventsapi.PutRuleRequest{Name: s("to-lambda"), EventPattern: s(`{"source":["app"]}`)})
	mustPutTargets(t, svc, "to-lambda", eventsapi.Target{Id: s("fn"), Arn: s("arn:aws:lambda:us-east-1:000000000000:function:f")})
	lt, _ := svc.ListTargetsByRule(context.Background(), &eventsapi.ListTargetsByRuleRequest{Rule: s("to-lambda")})
	if len(lt.Targets) != 1 {
		t.Fatalf("targets %+v", lt)
	}
	startDelivery(t, svc)
	putEvent(t, svc, eventsapi.PutEventsRequestEntry{Source: s("app"), DetailType: s("t"), Detail: s(`{}`)})
	deadline := time.Now().Add(5 * time.Second)
	for m.get("FailedInvocations/to-lambda") != 1 || m.get("TriggeredRules/to-lambda") != 1 || m.get("MatchedEvents/") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("metrics %v", m.sum)
		}
		time.Sleep(20 * time.Millisecond)
	}
	recs, _, _ := listJSON[retryRecord](context.Background(), svc.st, keyRetries)
	if len(recs) != 0 {
		t.Fatal("an undeliverable target was retried")
	}
}

// TestDestinationRateLimitAndOAuth: an OAuth client-credentials
// connection gets a token and sends it; InvocationRateLimitPerSecond
// spaces the calls.
func TestDestinationRateLimitAndOAuth(t *testing.T) {
	svc := testService(t, Deps{})
	ctx := context.Background()
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		r.ParseForm()
		if id != "client" || secret != "s3cret" || r.Form.Get("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-1", "token_type": "bearer"})
	}))
	defer tokens.Close()
	inv := newInvocations()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inv.add(invocation{Target: r.Header.Get("Authorization"), At: time.Now()})
	}))
	defer hook.Close()
	c, err := svc.CreateConnection(ctx, &eventsapi.CreateConnectionRequest{Name: s("oauth"), AuthorizationType: ptr(eventsapi.ConnectionAuthorizationTypeOauthClientCredentials),
		AuthParameters: &eventsapi.CreateConnectionAuthRequestParameters{OAuthParameters: &eventsapi.CreateConnectionOAuthRequestParameters{
			AuthorizationEndpoint: s(tokens.URL), HttpMethod: ptr(eventsapi.ConnectionOAuthHttpMethodPost),
			ClientParameters: &eventsapi.CreateConnectionOAuthClientRequestParameters{ClientID: s("client"), ClientSecret: s("s3cret")}}}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := svc.CreateApiDestination(ctx, &eventsapi.CreateApiDestinationRequest{Name: s("slow"), ConnectionArn: c.ConnectionArn,
		HttpMethod: ptr(eventsapi.ApiDestinationHttpMethodPost), InvocationEndpoint: s(hook.URL), InvocationRateLimitPerSecond: ptr(int32(20))})
	if err != nil {
		t.Fatal(err)
	}
	mustPutRule(t, svc, &eventsapi.PutRuleRequest{Name: s("r"), EventPattern: s(`{"source":["app"]}`)})
	mustPutTargets(t, svc, "r", eventsapi.Target{Id: s("h"), Arn: d.ApiDestinationArn, RoleArn: s(role)})
	startDelivery(t, svc)
	var entries []eventsapi.PutEventsRequestEntry
	for range 10 {
		entries = append(entries, eventsapi.PutEventsRequestEntry{Source: s("app"), DetailType: s("t"), Detail: s(`{}`)})
	}
	if _, err := svc.PutEvents(ctx, &eventsapi.PutEventsRequest{Entries: entries}); err != nil {
		t.Fatal(err)
	}
	var first, last time.Time
	for i := range 10 {
		got := inv.wait(t, 5*time.Second)
		if got.Target != "Bearer tok-1" {
			t.Fatalf("authorization %q", got.Target)
		}
		if i == 0 {
			first = got.At
		}
		last = got.At
	}
	if gap := last.Sub(first); gap < 400*time.Millisecond {
		t.Fatalf("10 calls at 20/s took %v", gap)
	}
}
