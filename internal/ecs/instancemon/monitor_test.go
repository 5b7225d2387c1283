package instancemon

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/store"
)

var lostT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func taskARN(cluster, id string) string {
	return "arn:aws:ecs:us-east-1:000000000000:task/" + cluster + "/" + id
}

func instanceARN(cluster, id string) string {
	return "arn:aws:ecs:us-east-1:000000000000:container-instance/" + cluster + "/" + id
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// webTD is a task definition with the containers web and log.
func webTD() ecsapi.TaskDefinition {
	return ecsapi.TaskDefinition{
		Family: ptr("web"),
		ContainerDefinitions: []ecsapi.ContainerDefinition{
			{Name: ptr("web"), Memory: ptr(int32(512))},
			{Name: ptr("log"), Memory: ptr(int32(64))},
		},
	}
}

func agentapiResources(cpu, mem int, tcp, udp []int) agentapi.Resources {
	return agentapi.Resources{CPU: cpu, MemoryMiB: mem, ReservedPorts: tcp, ReservedUDP: udp, OSType: "linux", CPUArch: "x86_64"}
}

func newTestStore(t *testing.T) store.Store {
	t.Helper()
	e, err := store.StartEmbedded(context.Background(), store.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e.Store()
}

func putJSON(t *testing.T, st store.Store, key string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if _, err := st.Txn(t.Context(), nil, store.Put(key, b)); err != nil {
		t.Fatal(err)
	}
}

func TestDecideLost(t *testing.T) {
	const after = 5 * time.Second
	at := func(d time.Duration) time.Time { return lostT0.Add(d) }
	inst := func(id, status string, connected bool) ecsstate.InstancePresence {
		return ecsstate.InstancePresence{ID: id, Cluster: "c1", Status: status, Connected: connected}
	}
	cases := []struct {
		name     string
		view     []ecsstate.InstancePresence
		since    map[string]time.Time
		now      time.Time
		lost     []string
		tracking map[string]time.Time
	}{
		{name: "connected: neither lost nor tracked", view: []ecsstate.InstancePresence{inst("a", ecsstate.InstanceActive, true)},
			since: map[string]time.Time{"a": at(0)}, now: at(time.Hour), tracking: map[string]time.Time{}},
		{name: "first seen absent: the clock starts now", view: []ecsstate.InstancePresence{inst("a", ecsstate.InstanceActive, false)},
			now: at(0), tracking: map[string]time.Time{"a": at(0)}},
		{name: "absent for less than LostAfter", view: []ecsstate.InstancePresence{inst("a", ecsstate.InstanceActive, false)},
			since: map[string]time.Time{"a": at(0)}, now: at(after - time.Millisecond), tracking: map[string]time.Time{"a": at(0)}},
		{name: "absent for LostAfter: lost", view: []ecsstate.InstancePresence{inst("a", ecsstate.InstanceActive, false)},
			since: map[string]time.Time{"a": at(0)}, now: at(after), lost: []string{"a"}, tracking: map[string]time.Time{"a": at(0)}},
		{name: "DRAINING is lost too", view: []ecsstate.InstancePresence{inst("a", ecsstate.InstanceDraining, false)},
			since: map[string]time.Time{"a": at(0)}, now: at(time.Minute), lost: []string{"a"}, tracking: map[string]time.Time{"a": at(0)}},
		{name: "INACTIVE (deregistered) is lost at once", view: []ecsstate.InstancePresence{inst("a", ecsstate.InstanceInactive, false)},
			now: at(0), lost: []string{"a"}, tracking: map[string]time.Time{"a": at(0)}},
		{name: "INACTIVE but still connected (another server's stream) waits", view: []ecsstate.InstancePresence{inst("a", ecsstate.InstanceInactive, true)},
			now: at(0), tracking: map[string]time.Time{}},
		{name: "REGISTERING is ignored", view: []ecsstate.InstancePresence{inst("a", "REGISTERING", false)},
			now: at(time.Hour), tracking: map[string]time.Time{}},
		{name: "a vanished instance is forgotten", view: nil,
			since: map[string]time.Time{"a": at(0)}, now: at(time.Minute), tracking: map[string]time.Time{}},
		{name: "a record without id is ignored", view: []ecsstate.InstancePresence{inst("", ecsstate.InstanceActive, false)},
			now: at(time.Minute), tracking: map[string]time.Time{}},
		{name: "only the ones away long enough", view: []ecsstate.InstancePresence{inst("a", ecsstate.InstanceActive, false), inst("b", ecsstate.InstanceActive, false), inst("c", ecsstate.InstanceActive, true)},
			since: map[string]time.Time{"a": at(0), "b": at(3 * time.Second)}, now: at(6 * time.Second), lost: []string{"a"},
			tracking: map[string]time.Time{"a": at(0), "b": at(3 * time.Second)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			since := c.since
			if since == nil {
				since = map[string]time.Time{}
			}
			next, lost := decideLost(c.view, since, c.now, after)
			var ids []string
			for _, in := range lost {
				ids = append(ids, in.ID)
			}
			if !slices.Equal(ids, c.lost) {
				t.Errorf("lost %v, want %v", ids, c.lost)
			}
			if len(next) != len(c.tracking) {
				t.Errorf("tracking %v, want %v", next, c.tracking)
			}
			for id, at := range c.tracking {
				if !next[id].Equal(at) {
					t.Errorf("%s absent since %v, want %v", id, next[id], at)
				}
			}
		})
	}
}

func TestDecideLostRestartsTheClockAfterAReconnect(t *testing.T) {
	away := []ecsstate.InstancePresence{{ID: "a", Status: ecsstate.InstanceActive}}
	back := []ecsstate.InstancePresence{{ID: "a", Status: ecsstate.InstanceActive, Connected: true}}
	since, _ := decideLost(away, map[string]time.Time{}, lostT0, 5*time.Second)
	since, _ = decideLost(back, since, lostT0.Add(4*time.Second), 5*time.Second)
	since, lost := decideLost(away, since, lostT0.Add(6*time.Second), 5*time.Second)
	if len(lost) != 0 || !since["a"].Equal(lostT0.Add(6*time.Second)) {
		t.Fatalf("lost %v, since %v: a reconnect must restart the clock", lost, since)
	}
	// An instance that never had an agent is lost like any other (it has
	// no tasks, so nothing is written for it).
	_, lost = decideLost(away, since, lostT0.Add(11*time.Second), 5*time.Second)
	if len(lost) != 1 {
		t.Fatalf("lost %v", lost)
	}
}

func TestLostTask(t *testing.T) {
	now := lostT0.Add(time.Minute)
	started := lostT0
	reason := LostReason("i-0abc", 10*time.Minute)
	running := ecsstate.TaskRecord{ID: "t1", DesiredStatus: ecsstate.DesiredRunning, LastStatus: "RUNNING", StartedAt: &started, Version: 4,
		Containers: []agentapi.ContainerReport{{Name: "web", KnownStatus: "RUNNING", RuntimeID: "abc"}}}

	t.Run("a running task gets TerminationNotice and is observed STOPPED", func(t *testing.T) {
		got, ok := lostTask(running, reason, []string{"web", "log"}, now)
		if !ok || got.DesiredStatus != ecsstate.DesiredStopped || got.LastStatus != "STOPPED" || got.StopCode != "TerminationNotice" ||
			got.StoppedReason != "Host EC2 (instance i-0abc) is unreachable: its agent has not reported for 10m0s." || got.Version != 5 {
			t.Fatalf("%+v", got)
		}
		for _, ts := range []*time.Time{got.StoppingAt, got.StoppedAt, got.ExecutionStoppedAt} {
			if ts == nil || !ts.Equal(now) {
				t.Fatalf("timestamps %v %v %v", got.StoppingAt, got.StoppedAt, got.ExecutionStoppedAt)
			}
		}
		want := []agentapi.ContainerReport{{Name: "web", KnownStatus: "STOPPED", RuntimeID: "abc"}, {Name: "log", KnownStatus: "STOPPED"}}
		if !jsonEqual(got.Containers, want) {
			t.Fatalf("containers %+v", got.Containers)
		}
		if running.Containers[0].KnownStatus != "RUNNING" {
			t.Fatal("the input record was modified")
		}
	})
	t.Run("a task already being stopped keeps its stop code, reason and times", func(t *testing.T) {
		stopping := lostT0.Add(time.Second)
		execStopped := lostT0.Add(2 * time.Second)
		in := running
		in.DesiredStatus, in.StopCode, in.StoppedReason, in.StoppingAt = ecsstate.DesiredStopped, "UserInitiated", "Task stopped by user", &stopping
		in.LastStatus, in.ExecutionStoppedAt = "STOPPING", &execStopped
		got, ok := lostTask(in, reason, nil, now)
		if !ok || got.StopCode != "UserInitiated" || got.StoppedReason != "Task stopped by user" || !got.StoppingAt.Equal(stopping) ||
			!got.ExecutionStoppedAt.Equal(execStopped) || !got.StoppedAt.Equal(now) || got.LastStatus != "STOPPED" {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("a task desired STOPPED without a stop code gets TerminationNotice", func(t *testing.T) {
		in := running
		in.DesiredStatus, in.LastStatus = ecsstate.DesiredStopped, "DEACTIVATING"
		if got, _ := lostTask(in, reason, nil, now); got.StopCode != "TerminationNotice" || got.StoppedReason != reason {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("a STOPPED task is left alone", func(t *testing.T) {
		in := running
		in.LastStatus = "STOPPED"
		if _, ok := lostTask(in, reason, nil, now); ok {
			t.Fatal("rewrote a STOPPED task")
		}
	})
}

// lostFixture is a cluster c1 with instance i1 (its agent gone, tasks on
// it), i2 (connected, one task) and i3 (registered without an agent, no
// task).
type lostFixture struct {
	st    store.Store
	tdARN string
}

func newLostFixture(t *testing.T) *lostFixture {
	t.Helper()
	st := newTestStore(t)
	f := &lostFixture{st: st, tdARN: "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1"}
	td := webTD()
	td.TaskDefinitionArn, td.Revision, td.Status = ptr(f.tdARN), ptr(int32(1)), ptr(ecsapi.TaskDefinitionStatusActive)
	putJSON(t, st, ecsstate.TaskDefKey("web", 1), ecsstate.TaskDefRecord{TaskDefinition: td})
	for _, id := range []string{"i1", "i2", "i3"} {
		putJSON(t, st, ecsstate.InstanceKey("c1", id), ecsstate.InstanceRecord{ID: id, ARN: instanceARN("c1", id), Cluster: "c1", Ec2InstanceID: "i-0" + id,
			Status: ecsstate.InstanceActive, Registered: agentapiResources(4096, 4096, nil, nil), Version: 1})
	}
	putJSON(t, st, ecsstate.KeyAgents+"i2", map[string]any{})
	return f
}

// task writes a task on an instance with its assignment (and group
// index entry) as the applier does.
func (f *lostFixture) task(t *testing.T, id, inst, group, desired, last string, mod func(*ecsstate.TaskRecord)) {
	t.Helper()
	started := lostT0
	rec := ecsstate.TaskRecord{ID: id, ARN: taskARN("c1", id), Cluster: "c1", TaskDefinitionARN: f.tdARN, InstanceID: inst,
		Group: group, DesiredStatus: desired, LastStatus: last, StartedAt: &started, Version: 3, CreatedAt: lostT0,
		Containers: []agentapi.ContainerReport{{Name: "web", KnownStatus: "RUNNING", RuntimeID: "rt-" + id}}}
	if group == "service:web" {
		rec.StartedBy = "ecs-svc/1234567890123456789"
	}
	if mod != nil {
		mod(&rec)
	}
	putJSON(t, f.st, ecsstate.TaskKey("c1", id), rec)
	putJSON(t, f.st, ecsstate.AssignKey(inst, id), ecsstate.AssignmentRecord{Cluster: "c1", TaskID: id, DesiredStatus: desired, Version: rec.Version})
	putJSON(t, f.st, ecsstate.TaskGroupKey("c1", group, id), 1)
}

func (f *lostFixture) get(t *testing.T, id string) (ecsstate.TaskRecord, int64) {
	t.Helper()
	kv, err := f.st.Get(t.Context(), ecsstate.TaskKey("c1", id))
	if err != nil {
		t.Fatal(err)
	}
	var rec ecsstate.TaskRecord
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		t.Fatal(err)
	}
	return rec, kv.ModRevision
}

func (f *lostFixture) rev(t *testing.T) int64 {
	t.Helper()
	res, err := f.st.List(t.Context(), ecsstate.KeyAgents, store.ListOptions{KeysOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return res.Revision
}

func TestLostInstanceMonitorStopsEveryTaskOnTheInstance(t *testing.T) {
	f := newLostFixture(t)
	ctx := t.Context()
	f.task(t, "svc", "i1", "service:web", ecsstate.DesiredRunning, "RUNNING", nil)
	f.task(t, "solo", "i1", "family:web", ecsstate.DesiredRunning, "PENDING", func(r *ecsstate.TaskRecord) { r.StartedAt, r.Containers = nil, nil })
	f.task(t, "user", "i1", "family:web", ecsstate.DesiredStopped, "RUNNING", func(r *ecsstate.TaskRecord) {
		r.StopCode, r.StoppedReason, r.StoppingAt = "UserInitiated", "Task stopped by user", &lostT0
	})
	f.task(t, "done", "i1", "family:web", ecsstate.DesiredStopped, "STOPPED", nil)
	f.task(t, "other", "i2", "family:web", ecsstate.DesiredRunning, "RUNNING", nil)
	_, groupRev := f.getKV(t, ecsstate.TaskGroupKey("c1", "service:web", "svc"))

	m := New(f.st, Config{LostAfter: 5 * time.Second})
	for _, d := range []time.Duration{0, 4 * time.Second} {
		before := f.rev(t)
		if err := m.Pass(ctx, lostT0.Add(d)); err != nil {
			t.Fatal(err)
		}
		if f.rev(t) != before {
			t.Fatalf("wrote before LostAfter (at %s)", d)
		}
	}
	now := lostT0.Add(5 * time.Second)
	if err := m.Pass(ctx, now); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ code, reason string }{
		"svc":  {"TerminationNotice", "Host EC2 (instance i-0i1) is unreachable: its agent has not reported for 5s."},
		"solo": {"TerminationNotice", "Host EC2 (instance i-0i1) is unreachable: its agent has not reported for 5s."},
		"user": {"UserInitiated", "Task stopped by user"},
	}
	for id, w := range want {
		got, _ := f.get(t, id)
		if got.DesiredStatus != ecsstate.DesiredStopped || got.LastStatus != "STOPPED" || got.StopCode != w.code || got.StoppedReason != w.reason ||
			got.Version != 4 || got.StoppedAt == nil || !got.StoppedAt.Equal(now) || got.ExecutionStoppedAt == nil {
			t.Errorf("%s: %+v", id, got)
		}
		if len(got.Containers) != 2 || got.Containers[0].KnownStatus != "STOPPED" || got.Containers[1].KnownStatus != "STOPPED" {
			t.Errorf("%s containers: %+v", id, got.Containers)
		}
		var a ecsstate.AssignmentRecord
		kv, _ := f.getKV(t, ecsstate.AssignKey("i1", id))
		json.Unmarshal(kv.Value, &a)
		if a.DesiredStatus != ecsstate.DesiredStopped || a.Version != 4 {
			t.Errorf("%s assignment %+v", id, a)
		}
	}
	if got, _ := f.get(t, "done"); got.Version != 3 {
		t.Errorf("a STOPPED task was rewritten: %+v", got)
	}
	if got, _ := f.get(t, "other"); got.LastStatus != "RUNNING" || got.DesiredStatus != ecsstate.DesiredRunning {
		t.Errorf("a connected instance's task was stopped: %+v", got)
	}
	if _, r := f.getKV(t, ecsstate.TaskGroupKey("c1", "service:web", "svc")); r != groupRev {
		t.Error("the task group index was rewritten")
	}
	// Nothing is left to do: later passes write nothing.
	for _, d := range []time.Duration{6 * time.Second, 7 * time.Second} {
		before := f.rev(t)
		if err := m.Pass(ctx, lostT0.Add(d)); err != nil {
			t.Fatal(err)
		}
		if f.rev(t) != before {
			t.Fatalf("pass at %s wrote again", d)
		}
	}
}

func (f *lostFixture) getKV(t *testing.T, key string) (store.KV, int64) {
	t.Helper()
	kv, err := f.st.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return kv, kv.ModRevision
}

func TestLostInstanceMonitorYieldsToAnAgentThatCameBack(t *testing.T) {
	f := newLostFixture(t)
	ctx := t.Context()
	f.task(t, "svc", "i1", "service:web", ecsstate.DesiredRunning, "RUNNING", nil)
	m := New(f.st, Config{LostAfter: 5 * time.Second})
	if err := m.Pass(ctx, lostT0); err != nil {
		t.Fatal(err)
	}
	// The agent reconnects between the monitor's read and its write: the
	// compare on the presence key refuses the write.
	view, err := m.presenceView(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, lost := decideLost(view, m.absentSince, lostT0.Add(5*time.Second), 5*time.Second)
	i := slices.IndexFunc(lost, func(in ecsstate.InstancePresence) bool { return in.ID == "i1" })
	if i < 0 {
		t.Fatalf("lost %+v", lost)
	}
	putJSON(t, f.st, ecsstate.KeyAgents+"i1", map[string]any{})
	assigns, err := f.st.List(ctx, ecsstate.KeyAssign+"i1/", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n, back, err := m.stopLostTasks(ctx, lost[i], assigns.KVs, "lost", lostT0.Add(5*time.Second))
	if err != nil || n != 0 || !back {
		t.Fatalf("stopLostTasks with the agent back: %d %v %v", n, back, err)
	}
	if got, _ := f.get(t, "svc"); got.LastStatus != "RUNNING" || got.Version != 3 {
		t.Fatalf("task written although the agent is back: %+v", got)
	}
	// The next pass sees it connected; when it goes again, the clock
	// starts again.
	if err := m.Pass(ctx, lostT0.Add(6*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Txn(ctx, nil, store.Delete(ecsstate.KeyAgents+"i1")); err != nil {
		t.Fatal(err)
	}
	if err := m.Pass(ctx, lostT0.Add(7*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.get(t, "svc"); got.LastStatus != "RUNNING" {
		t.Fatalf("stopped at once after the agent went again: %+v", got)
	}
	if err := m.Pass(ctx, lostT0.Add(12*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.get(t, "svc"); got.LastStatus != "STOPPED" || got.StopCode != "TerminationNotice" {
		t.Fatalf("not stopped LostAfter after the agent went again: %+v", got)
	}
}

func TestDecideLostNever(t *testing.T) {
	view := []ecsstate.InstancePresence{{ID: "a", Status: ecsstate.InstanceActive}, {ID: "b", Status: ecsstate.InstanceInactive}}
	since, _ := decideLost(view, map[string]time.Time{}, lostT0, -1)
	_, lost := decideLost(view, since, lostT0.Add(1000*time.Hour), -1)
	if len(lost) != 1 || lost[0].ID != "b" {
		t.Fatalf("lost %+v: with LostAfter negative only a deregistered instance is lost", lost)
	}
}
