package tasklife

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/store"
)

func TestLiveTask(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { v := now.Add(-d); return &v }
	cases := []struct {
		name string
		t    ecsstate.TaskRecord
		live bool
	}{
		{"running", ecsstate.TaskRecord{DesiredStatus: ecsstate.DesiredRunning, LastStatus: "RUNNING"}, true},
		{"stopping", ecsstate.TaskRecord{DesiredStatus: ecsstate.DesiredStopped, LastStatus: "RUNNING", StoppingAt: ago(2 * time.Hour)}, true},
		{"stopped", ecsstate.TaskRecord{DesiredStatus: ecsstate.DesiredStopped, LastStatus: "STOPPED", StoppedAt: ago(30 * time.Minute)}, false},
		{"stopping, still pending", ecsstate.TaskRecord{DesiredStatus: ecsstate.DesiredStopped, LastStatus: "PENDING", StoppingAt: ago(2 * time.Hour)}, true},
	}
	for _, c := range cases {
		if got := LiveTask(&c.t); got != c.live {
			t.Errorf("%s: live %v, want %v", c.name, got, c.live)
		}
	}
}

func putJSON(t *testing.T, st store.Store, key string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if _, err := st.Txn(t.Context(), nil, store.Put(key, b)); err != nil {
		t.Fatal(err)
	}
}

func TestCommitPlanRefusesStaleSnapshot(t *testing.T) {
	e, err := store.StartEmbedded(context.Background(), store.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	st := e.Store()
	ctx := t.Context()
	rec := ecsstate.InstanceRecord{ID: "i1", ARN: "arn:aws:ecs:us-east-1:000000000000:container-instance/c1/i1", Cluster: "c1",
		Status: ecsstate.InstanceActive, Version: 1,
		Registered: agentapi.Resources{CPU: 1024, MemoryMiB: 1024, OSType: "linux", CPUArch: "x86_64"}}
	putJSON(t, st, ecsstate.InstanceKey("c1", "i1"), rec)
	putJSON(t, st, ecsstate.KeyAgents+"i1", map[string]any{})
	req := &placement.Request{CPU: 0, Memory: 600, Group: "family:web"}
	n := 0
	task := func() PlacedTask {
		n++
		id := "t" + string(rune('0'+n))
		return PlacedTask{Req: req, Rec: ecsstate.TaskRecord{ID: id, ARN: "arn:aws:ecs:us-east-1:000000000000:task/c1/" + id, Cluster: "c1", InstanceID: "i1",
			MemoryMiB: 600, DesiredStatus: ecsstate.DesiredRunning, LastStatus: "PROVISIONING", Version: 1}}
	}
	read := func() *Snapshot {
		snap, err := ReadSnapshot(ctx, st, slog.New(slog.DiscardHandler), "c1", false)
		if err != nil {
			t.Fatal(err)
		}
		return snap
	}
	stale := read()
	fresh := read()
	if ok, err := CommitPlan(ctx, st, fresh, &Plan{Tasks: []PlacedTask{task()}}); !ok || err != nil {
		t.Fatalf("first commit: %v %v", ok, err)
	}
	// The committed plan brought fresh up to date.
	if v := fresh.ByID["i1"]; len(v.Tasks) != 1 || v.Rec.Version != 2 {
		t.Fatalf("snapshot after commit: %d tasks, version %d", len(v.Tasks), v.Rec.Version)
	}
	// The stale snapshot still shows 1024 MiB free: the compare on the
	// instance record refuses it.
	if ok, err := CommitPlan(ctx, st, stale, &Plan{Tasks: []PlacedTask{task()}}); ok || err != nil {
		t.Fatalf("stale commit: %v %v", ok, err)
	}
	// On fresh state the re-check refuses it.
	_, err = CommitPlan(ctx, st, read(), &Plan{Tasks: []PlacedTask{task()}})
	if f, ok := FailureOf(err); !ok || f.Reason != placement.ReasonMemory {
		t.Fatalf("fresh commit: %v", err)
	}
	v := read().ByID["i1"]
	if len(v.Tasks) != 1 || v.Rec.Version != 2 {
		t.Fatalf("instance after commits: %d tasks, version %d", len(v.Tasks), v.Rec.Version)
	}
	if _, err := st.Get(ctx, ecsstate.AssignKey("i1", v.Tasks[0].ID)); err != nil {
		t.Fatalf("assignment not written: %v", err)
	}
}
