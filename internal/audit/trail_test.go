package audit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/store"
)

func startTrail(t *testing.T, retention time.Duration) (*Trail, store.Store) {
	t.Helper()
	e, err := store.StartEmbedded(context.Background(), store.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	tr := NewTrail(e.Store(), retention, 0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go tr.Run(ctx)
	return tr, e.Store()
}

func rec(i int, at time.Time, op string) Record {
	return Record{EventID: fmt.Sprintf("e%03d", i), Time: at, Operation: op, EventSource: "ecs.amazonaws.com",
		UserName: "root", AccessKey: "AKIA1", Resources: []Resource{{Type: "AWS::ECS::Cluster", Name: fmt.Sprintf("c%d", i%3)}}}
}

func TestConcurrentRecordsAreAllWrittenAndLookedUpNewestFirst(t *testing.T) {
	tr, _ := startTrail(t, 0)
	base := time.Now().Add(-time.Minute)
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			op := "CreateCluster"
			if i%2 == 1 {
				op = "DeleteCluster"
			}
			if err := tr.Record(context.Background(), rec(i, base.Add(time.Duration(i)*time.Millisecond), op)); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	var all []Record
	q := Query{Limit: 30}
	for {
		p, err := tr.Lookup(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Records...)
		if p.Next == "" {
			break
		}
		q.After = p.Next
	}
	if len(all) != 100 {
		t.Fatalf("got %d records", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Time.After(all[i-1].Time) {
			t.Fatal("not newest first")
		}
	}
	p, _ := tr.Lookup(context.Background(), Query{Attribute: "EventName", Value: "DeleteCluster", Limit: 50})
	if len(p.Records) != 50 {
		t.Fatalf("EventName filter: %d", len(p.Records))
	}
	p, _ = tr.Lookup(context.Background(), Query{Attribute: "ResourceName", Value: "c1"})
	if len(p.Records) != 33 {
		t.Fatalf("ResourceName filter: %d", len(p.Records))
	}
	p, _ = tr.Lookup(context.Background(), Query{Start: base.Add(10 * time.Millisecond), End: base.Add(19 * time.Millisecond)})
	if len(p.Records) != 10 {
		t.Fatalf("time range: %d", len(p.Records))
	}
}

func TestExpiryDeletesOnlyOldRecords(t *testing.T) {
	tr, st := startTrail(t, time.Hour)
	now := time.Now()
	for i, at := range []time.Time{now.Add(-3 * time.Hour), now.Add(-2 * time.Hour), now.Add(-time.Minute)} {
		if err := tr.Record(context.Background(), rec(i, at, "CreateCluster")); err != nil {
			t.Fatal(err)
		}
	}
	tr.expire(context.Background())
	res, err := st.List(context.Background(), Prefix, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.KVs) != 1 {
		t.Fatalf("%d records left after expiry, want 1", len(res.KVs))
	}
}

func TestRedact(t *testing.T) {
	out := string(Redact([]byte(`{"a":{"Password":"x","env":[{"value":"v"}]},"environment":[{"name":"K","value":"secret"}],"keep":"y"}`), []string{"environment"}))
	want := `{"a":{"Password":"HIDDEN_DUE_TO_SECURITY_REASONS","env":[{"value":"v"}]},"environment":"HIDDEN_DUE_TO_SECURITY_REASONS","keep":"y"}`
	if out != want {
		t.Fatalf("got %s", out)
	}
	if Redact([]byte("not json"), nil) != nil {
		t.Fatal("non-JSON recorded")
	}
}
