package ecs

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/store"
)

// laggingStore answers task reads from before a given revision for a
// while, as a serializable read on the embedded etcd was seen to do right
// after the watch event of the same transaction.
type laggingStore struct {
	store.Store
	mu    sync.Mutex
	stale map[string]store.KV // key -> the value reads still return
	left  int                 // stale answers left
}

func (l *laggingStore) Get(ctx context.Context, key string) (store.KV, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if kv, ok := l.stale[key]; ok && l.left > 0 {
		l.left--
		return kv, nil
	}
	return l.Store.Get(ctx, key)
}

// TestAssignmentSeesTheStopItWasWrittenWith: the assignment an agent gets
// for a StopTask's watch event says STOPPED even when the first reads of
// the task record lag behind the event; with reads that never catch up,
// the entry's own desired status is used.
func TestAssignmentSeesTheStopItWasWrittenWith(t *testing.T) {
	for _, lag := range []int{3, 1000} {
		base, st := newTestService(t)
		ctx := t.Context()
		if _, err := base.RegisterTaskDefinition(ctx, &ecsapi.RegisterTaskDefinitionRequest{Family: ptr("lag"),
			ContainerDefinitions: []ecsapi.ContainerDefinition{{Name: ptr("a"), Image: ptr("busybox"), Memory: ptr(int32(32))}}}); err != nil {
			t.Fatal(err)
		}
		tdArn := base.arns.ECS("task-definition/lag:1")
		id := "0123456789abcdef0123456789abcdef"
		rec := taskRecord{ID: id, ARN: base.arns.ECS("task/c1/" + id), Cluster: "c1", InstanceID: "i1", TaskDefinitionARN: tdArn,
			LastStatus: "RUNNING", DesiredStatus: "RUNNING", Version: 4}
		putJSON(t, st, taskKey("c1", id), rec)
		putJSON(t, st, assignKey("i1", id), assignmentRecord{Cluster: "c1", TaskID: id, DesiredStatus: "RUNNING", Version: 1})
		before, err := st.Get(ctx, taskKey("c1", id))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := base.stopTaskRecord(ctx, "c1", id, ecsapi.TaskStopCodeUserInitiated, "by test"); err != nil {
			t.Fatal(err)
		}
		entry, err := st.Get(ctx, assignKey("i1", id))
		if err != nil {
			t.Fatal(err)
		}
		lagging := &laggingStore{Store: st, stale: map[string]store.KV{taskKey("c1", id): before}, left: lag}
		s := New(lagging, base.cfg, nil)
		a, err := s.assignment(ctx, entry)
		if err != nil {
			t.Fatal(err)
		}
		var ar assignmentRecord
		json.Unmarshal(entry.Value, &ar)
		if a.DesiredStatus != "STOPPED" || a.Version != ar.Version || !strings.HasSuffix(a.TaskArn, id) {
			t.Fatalf("lag %d: assignment desired %s version %d, want STOPPED %d", lag, a.DesiredStatus, a.Version, ar.Version)
		}
	}
}
