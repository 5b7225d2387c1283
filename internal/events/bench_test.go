package events

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/api/eventsapi"
	"github.com/berthdev/berth/internal/store"
)

// latencies collects arrival times at the endpoint by a key in the body.
type latencies struct {
	mu      sync.Mutex
	arrived map[string]time.Time
	n       chan struct{}
}

func (l *latencies) handler(key func([]byte) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		now := time.Now()
		l.mu.Lock()
		l.arrived[key(b)] = now
		l.mu.Unlock()
		l.n <- struct{}{}
	})
}

func percentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, int(float64(len(ds))*p))]
}

// BenchmarkDeliveryLatency measures commit -> target invoked: an event is
// committed (PutEvents, or an ECS task state change through the events
// controller) and an API destination (httptest on loopback) receives it.
// Events are sent at a steady 100/s. The baseline is the floor of the same
// path: one store commit plus one direct HTTP call to the same endpoint.
func BenchmarkDeliveryLatency(b *testing.B) {
	const pace = 10 * time.Millisecond
	b.Run("baseline-commit-and-http", func(b *testing.B) {
		svc := testService(b, Deps{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
		defer srv.Close()
		var ds []time.Duration
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			if _, err := svc.st.Txn(context.Background(), nil, store.Put(keyOutbox+"bench", []byte(`{}`))); err != nil {
				b.Fatal(err)
			}
			resp, err := http.Post(srv.URL, "application/json", nil)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			ds = append(ds, time.Since(t0))
			time.Sleep(pace)
		}
		b.ReportMetric(float64(percentile(ds, 0.5).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(percentile(ds, 0.99).Microseconds())/1000, "p99-ms")
	})
	for _, path := range []string{"putevents", "ecs-task-state-change"} {
		b.Run(path, func(b *testing.B) {
			svc := testService(b, Deps{})
			lat := &latencies{arrived: map[string]time.Time{}, n: make(chan struct{}, b.N+10)}
			srv := httptest.NewServer(lat.handler(func(body []byte) string {
				var m map[string]string
				json.Unmarshal(body, &m)
				return m["k"]
			}))
			defer srv.Close()
			dest := destination(b, svc, "bench", srv.URL)
			field := "k"
			if path != "putevents" {
				field = "group"
			}
			mustPutRule(b, svc, &eventsapi.PutRuleRequest{Name: s("r"), EventPattern: s(`{"detail":{"` + field + `":[{"prefix":"bench-"}]}}`)})
			mustPutTargets(b, svc, "r", eventsapi.Target{Id: s("h"), Arn: s(dest), RoleArn: s(role),
				InputTransformer: &eventsapi.InputTransformer{InputPathsMap: map[string]string{"k": "$.detail." + field}, InputTemplate: s(`{"k": "<k>"}`)}})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go svc.RunDelivery(ctx)
			tasks := make(chan TaskItem, 16)
			if path != "putevents" {
				go svc.followTasks(ctx, tasks)
			}
			time.Sleep(200 * time.Millisecond) // the dispatcher's first listing
			sent := map[string]time.Time{}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := fmt.Sprintf("bench-%d", i)
				t0 := time.Now()
				if path == "putevents" {
					out, err := svc.PutEvents(ctx, &eventsapi.PutEventsRequest{Entries: []eventsapi.PutEventsRequestEntry{{
						Source: s("bench"), DetailType: s("t"), Detail: s(`{"k":"` + k + `"}`)}}})
					if err != nil || *out.FailedEntryCount != 0 {
						b.Fatal(out, err)
					}
				} else {
					// The task's group carries the key; the controller
					// commits the event, so its start counts from the feed.
					tasks <- TaskItem{Kind: FeedUpsert, Revision: int64(i + 1), Task: ecsapi.Task{
						TaskArn: s(fmt.Sprintf("arn:aws:ecs:us-east-1:000000000000:task/c/%d", i)), LastStatus: s("STOPPED"), Group: s(k)}}
				}
				sent[k] = t0
				time.Sleep(pace)
			}
			for range b.N {
				select {
				case <-lat.n:
				case <-time.After(10 * time.Second):
					b.Fatal("deliveries missing")
				}
			}
			b.StopTimer()
			var ds []time.Duration
			lat.mu.Lock()
			for k, t0 := range sent {
				ds = append(ds, lat.arrived[k].Sub(t0))
			}
			lat.mu.Unlock()
			b.ReportMetric(float64(percentile(ds, 0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(ds, 0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(percentile(ds, 1).Microseconds())/1000, "max-ms")
		})
	}
}
