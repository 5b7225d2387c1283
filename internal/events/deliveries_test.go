package events

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/eventsapi"
	"github.com/berthdev/berth/internal/store"
)

// waitDeliveries polls a rule's records until ok accepts them.
func waitDeliveries(t *testing.T, svc *Service, bus, rule string, what string, ok func([]Delivery) bool) []Delivery {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ds, err := svc.RuleDeliveries(context.Background(), bus, rule)
		if err != nil {
			t.Fatal(err)
		}
		if ok(ds) {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: records %+v", what, ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every attempt leaves a record: delivered, retried then delivered, and a
// permanent failure with its error, newest first, with the event's id.
func TestDeliveryRecordsPerAttempt(t *testing.T) {
	inv := newInvocations()
	logs := &fakeLogs{inv: inv, groups: map[string]bool{}}
	svc := testService(t, Deps{Logs: logs})
	var fail atomic.Int32
	fail.Store(1)
	ok := endpoint(t, inv, "ok", nil)
	flaky := endpoint(t, inv, "flaky", &fail)
	mustPutRule(t, svc, &eventsapi.PutRuleRequest{Name: s("orders"), EventPattern: s(`{"source":["shop"]}`)})
	mustPutTargets(t, svc, "orders",
		eventsapi.Target{Id: s("ok"), Arn: s(destination(t, svc, "ok", ok.URL)), RoleArn: s(role)},
		eventsapi.Target{Id: s("flaky"), Arn: s(destination(t, svc, "flaky", flaky.URL)), RoleArn: s(role)},
		eventsapi.Target{Id: s("nolog"), Arn: s("arn:aws:logs:us-east-1:000000000000:log-group:/missing:*")})
	startDelivery(t, svc)
	id := putEvent(t, svc, eventsapi.PutEventsRequestEntry{Source: s("shop"), DetailType: s("order"), Detail: s(`{"n":1}`)})

	ds := waitDeliveries(t, svc, "", "orders", "four attempts", func(ds []Delivery) bool { return len(ds) == 4 })
	byTarget := map[string][]Delivery{}
	for i, d := range ds {
		if d.EventID != id {
			t.Errorf("record %d: event %q, want %q", i, d.EventID, id)
		}
		if i > 0 && d.Time.After(ds[i-1].Time) {
			t.Errorf("records not newest first: %v after %v", d.Time, ds[i-1].Time)
		}
		if d.SinceAcceptedMs < d.DurationMs || d.DurationMs < 0 {
			t.Errorf("record %d: duration %v ms, since accepted %v ms", i, d.DurationMs, d.SinceAcceptedMs)
		}
		byTarget[d.TargetID] = append([]Delivery{d}, byTarget[d.TargetID]...) // oldest first
	}
	if g := byTarget["ok"]; len(g) != 1 || g[0].Outcome != DeliveryDelivered || g[0].Attempt != 1 || g[0].Error != "" || !strings.HasPrefix(g[0].TargetArn, "arn:aws:events:") {
		t.Errorf("ok target: %+v", g)
	}
	g := byTarget["flaky"]
	if len(g) != 2 || g[0].Outcome != DeliveryRetrying || g[0].Attempt != 1 || !strings.Contains(g[0].Error, "HTTP 503") || g[0].NextAttempt == nil ||
		g[1].Outcome != DeliveryDelivered || g[1].Attempt != 2 {
		t.Errorf("flaky target: %+v", g)
	}
	if g := byTarget["nolog"]; len(g) != 1 || g[0].Outcome != DeliveryFailed || !strings.Contains(g[0].Error, "log group /missing") {
		t.Errorf("failing target: %+v", g)
	}
	waitOutboxEmpty(t, svc)

	// A missing rule is the API's not-found error.
	if _, err := svc.RuleDeliveries(context.Background(), "", "nope"); wireCode(t, err) != "ResourceNotFoundException" {
		t.Errorf("deliveries of a missing rule: %v", err)
	}
}

// A rule keeps its newest MaxDeliveriesPerRule records, across a restart of
// the dispatcher; deleting the rule deletes them (and not another bus's
// whose name shares a prefix), a rule made again with the same name starts
// with none, and deleting a bus deletes its rules' records.
func TestDeliveryRecordsBoundedAndDeletedWithRule(t *testing.T) {
	inv := newInvocations()
	svc := testService(t, Deps{})
	srv := endpoint(t, inv, "hook", nil)
	dest := destination(t, svc, "hook", srv.URL)
	mustPutRule(t, svc, &eventsapi.PutRuleRequest{Name: s("many"), EventPattern: s(`{"source":["shop"]}`)})
	mustPutTargets(t, svc, "many", eventsapi.Target{Id: s("hook"), Arn: s(dest), RoleArn: s(role)})
	// Another bus whose name would share a prefix if names were not
	// escaped: its rule's records must survive the deletion.
	if _, err := svc.CreateEventBus(context.Background(), &eventsapi.CreateEventBusRequest{Name: s("default/many")}); err != nil {
		t.Skipf("bus names with '/' refused here: %v", err)
	}
	put := func(from, to int) {
		for i := from; i < to; i++ {
			putEvent(t, svc, eventsapi.PutEventsRequestEntry{Source: s("shop"), DetailType: s("order"), Detail: s(fmt.Sprintf(`{"n":%d}`, i))})
			inv.wait(t, 5*time.Second)
		}
	}
	run := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { svc.RunDelivery(ctx); close(done) }()
		return func() { cancel(); <-done }
	}
	stop := run()
	put(0, 70)
	waitOutboxEmpty(t, svc)
	waitDeliveries(t, svc, "", "many", "70 records", func(ds []Delivery) bool { return len(ds) == 70 })
	stop()
	// A new dispatcher (a restart, a new leader) reads the kept records
	// and goes on trimming.
	stop = run()
	defer func() { stop() }()
	put(70, 140)
	waitOutboxEmpty(t, svc)
	ds := waitDeliveries(t, svc, "", "many", "the newest 100", func(ds []Delivery) bool { return len(ds) == MaxDeliveriesPerRule && len(inv.ch) == 0 })
	time.Sleep(100 * time.Millisecond)
	ds, _ = svc.RuleDeliveries(context.Background(), "", "many")
	if len(ds) != MaxDeliveriesPerRule {
		t.Fatalf("%d records kept, want %d", len(ds), MaxDeliveriesPerRule)
	}
	if ds[0].Outcome != DeliveryDelivered {
		t.Errorf("newest record: %+v", ds[0])
	}

	mustPutRule(t, svc, &eventsapi.PutRuleRequest{Name: s("x"), EventBusName: s("default/many"), EventPattern: s(`{"source":["shop"]}`)})
	other := deliveriesPrefix("default/many", "x") + "0000-keep"
	if _, err := svc.st.Txn(context.Background(), nil, store.Put(other, mustJSON(Delivery{Outcome: DeliveryDelivered}))); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := svc.RemoveTargets(ctx, &eventsapi.RemoveTargetsRequest{Rule: s("many"), Ids: []string{"hook"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DeleteRule(ctx, &eventsapi.DeleteRuleRequest{Name: s("many")}); err != nil {
		t.Fatal(err)
	}
	res, err := svc.st.List(ctx, deliveriesPrefix(DefaultBus, "many"), store.ListOptions{KeysOnly: true})
	if err != nil || len(res.KVs) != 0 {
		t.Fatalf("records after DeleteRule: %d (%v)", len(res.KVs), err)
	}
	if _, err := svc.st.Get(ctx, other); err != nil {
		t.Errorf("the other bus's record went with the rule: %v", err)
	}
	mustPutRule(t, svc, &eventsapi.PutRuleRequest{Name: s("many"), EventPattern: s(`{"source":["shop"]}`)})
	if ds, err := svc.RuleDeliveries(ctx, "", "many"); err != nil || len(ds) != 0 {
		t.Errorf("a new rule of the same name: %d records (%v)", len(ds), err)
	}
	// Deleting a bus deletes its rules' records.
	if _, err := svc.DeleteEventBus(ctx, &eventsapi.DeleteEventBusRequest{Name: s("default/many")}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.st.Get(ctx, other); err == nil {
		t.Errorf("a deleted bus's rule kept its record")
	}
}
