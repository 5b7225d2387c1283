package ecs

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/store"
)

var lostT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestDecideLost(t *testing.T) {
	const after = 5 * time.Second
	at := func(d time.Duration) time.Time { return lostT0.Add(d) }
	inst := func(id, status string, connected bool) instancePresence {
		return instancePresence{ID: id, Cluster: "c1", Status: status, Connected: connected}
	}
	cases := []struct {
		name     string
		view     []instancePresence
		since    map[string]time.Time
		now      time.Time
		lost     []string
		tracking map[string]time.Time
	}{
		{name: "connected: neither lost nor tracked", view: []instancePresence{inst("a", InstanceActive, true)},
			since: map[string]time.Time{"a": at(0)}, now: at(time.Hour), tracking: map[string]time.Time{}},
		{name: "first seen absent: the clock starts now", view: []instancePresence{inst("a", InstanceActive, false)},
			now: at(0), tracking: map[string]time.Time{"a": at(0)}},
		{name: "absent for less than LostAfter", view: []instancePresence{inst("a", InstanceActive, false)},
			since: map[string]time.Time{"a": at(0)}, now: at(after - time.Millisecond), tracking: map[string]time.Time{"a": at(0)}},
		{name: "absent for LostAfter: lost", view: []instancePresence{inst("a", InstanceActive, false)},
			since: map[string]time.Time{"a": at(0)}, now: at(after), lost: []string{"a"}, tracking: map[string]time.Time{"a": at(0)}},
		{name: "DRAINING is lost too", view: []instancePresence{inst("a", InstanceDraining, false)},
			since: map[string]time.Time{"a": at(0)}, now: at(time.Minute), lost: []string{"a"}, tracking: map[string]time.Time{"a": at(0)}},
		{name: "INACTIVE (deregistered) is lost at once", view: []instancePresence{inst("a", InstanceInactive, false)},
			now: at(0), lost: []string{"a"}, tracking: map[string]time.Time{"a": at(0)}},
		{name: "INACTIVE but still connected (another server's stream) waits", view: []instancePresence{inst("a", InstanceInactive, true)},
			now: at(0), tracking: map[string]time.Time{}},
		{name: "REGISTERING is ignored", view: []instancePresence{inst("a", "REGISTERING", false)},
			now: at(time.Hour), tracking: map[string]time.Time{}},
		{name: "a vanished instance is forgotten", view: nil,
			since: map[string]time.Time{"a": at(0)}, now: at(time.Minute), tracking: map[string]time.Time{}},
		{name: "a record without id is ignored", view: []instancePresence{inst("", InstanceActive, false)},
			now: at(time.Minute), tracking: map[string]time.Time{}},
		{name: "only the ones away long enough", view: []instancePresence{inst("a", InstanceActive, false), inst("b", InstanceActive, false), inst("c", InstanceActive, true)},
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
	away := []instancePresence{{ID: "a", Status: InstanceActive}}
	back := []instancePresence{{ID: "a", Status: InstanceActive, Connected: true}}
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
	running := taskRecord{ID: "t1", DesiredStatus: DesiredRunning, LastStatus: "RUNNING", StartedAt: &started, Version: 4,
		Containers: []agentapi.ContainerReport{{Name: "web", KnownStatus: "RUNNING", RuntimeID: "abc"}}}

	t.Run("a running task gets TerminationNotice and is observed STOPPED", func(t *testing.T) {
		got, ok := lostTask(running, reason, []string{"web", "log"}, now)
		if !ok || got.DesiredStatus != DesiredStopped || got.LastStatus != "STOPPED" || got.StopCode != "TerminationNotice" ||
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
		in.DesiredStatus, in.StopCode, in.StoppedReason, in.StoppingAt = DesiredStopped, "UserInitiated", "Task stopped by user", &stopping
		in.LastStatus, in.ExecutionStoppedAt = "STOPPING", &execStopped
		got, ok := lostTask(in, reason, nil, now)
		if !ok || got.StopCode != "UserInitiated" || got.StoppedReason != "Task stopped by user" || !got.StoppingAt.Equal(stopping) ||
			!got.ExecutionStoppedAt.Equal(execStopped) || !got.StoppedAt.Equal(now) || got.LastStatus != "STOPPED" {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("a task desired STOPPED without a stop code gets TerminationNotice", func(t *testing.T) {
		in := running
		in.DesiredStatus, in.LastStatus = DesiredStopped, "DEACTIVATING"
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
	s     *Service
	st    store.Store
	tdARN string
}

func newLostFixture(t *testing.T) *lostFixture {
	t.Helper()
	s, st := newTestService(t)
	f := &lostFixture{s: s, st: st, tdARN: s.taskDefARN("web", 1)}
	td := webTD()
	td.TaskDefinitionArn, td.Revision, td.Status = ptr(f.tdARN), ptr(int32(1)), ptr(ecsapi.TaskDefinitionStatusActive)
	putJSON(t, st, taskDefKey("web", 1), taskDefRecord{TaskDefinition: td})
	for _, id := range []string{"i1", "i2", "i3"} {
		putJSON(t, st, instanceKey("c1", id), instanceRecord{ID: id, ARN: s.instanceARN("c1", id), Cluster: "c1", Ec2InstanceID: "i-0" + id,
			Status: InstanceActive, Registered: agentapiResources(4096, 4096, nil, nil), Version: 1})
	}
	putJSON(t, st, keyAgents+"i2", map[string]any{})
	return f
}

// task writes a task on an instance with its assignment (and group
// index entry) as the applier does.
func (f *lostFixture) task(t *testing.T, id, inst, group, desired, last string, mod func(*taskRecord)) {
	t.Helper()
	started := lostT0
	rec := taskRecord{ID: id, ARN: f.s.taskARN("c1", id), Cluster: "c1", TaskDefinitionARN: f.tdARN, InstanceID: inst,
		Group: group, DesiredStatus: desired, LastStatus: last, StartedAt: &started, Version: 3, CreatedAt: lostT0,
		Containers: []agentapi.ContainerReport{{Name: "web", KnownStatus: "RUNNING", RuntimeID: "rt-" + id}}}
	if group == "service:web" {
		rec.StartedBy = "ecs-svc/1234567890123456789"
	}
	if mod != nil {
		mod(&rec)
	}
	putJSON(t, f.st, taskKey("c1", id), rec)
	putJSON(t, f.st, assignKey(inst, id), assignmentRecord{Cluster: "c1", TaskID: id, DesiredStatus: desired, Version: rec.Version})
	putJSON(t, f.st, taskGroupKey("c1", group, id), 1)
}

func (f *lostFixture) get(t *testing.T, id string) (taskRecord, int64) {
	t.Helper()
	kv, err := f.st.Get(t.Context(), taskKey("c1", id))
	if err != nil {
		t.Fatal(err)
	}
	var rec taskRecord
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		t.Fatal(err)
	}
	return rec, kv.ModRevision
}

func (f *lostFixture) rev(t *testing.T) int64 {
	t.Helper()
	res, err := f.st.List(t.Context(), keyAgents, store.ListOptions{KeysOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return res.Revision
}

func TestLostInstanceMonitorStopsEveryTaskOnTheInstance(t *testing.T) {
	f := newLostFixture(t)
	ctx := t.Context()
	f.task(t, "svc", "i1", "service:web", DesiredRunning, "RUNNING", nil)
	f.task(t, "solo", "i1", "family:web", DesiredRunning, "PENDING", func(r *taskRecord) { r.StartedAt, r.Containers = nil, nil })
	f.task(t, "user", "i1", "family:web", DesiredStopped, "RUNNING", func(r *taskRecord) {
		r.StopCode, r.StoppedReason, r.StoppingAt = "UserInitiated", "Task stopped by user", &lostT0
	})
	f.task(t, "done", "i1", "family:web", DesiredStopped, "STOPPED", nil)
	f.task(t, "other", "i2", "family:web", DesiredRunning, "RUNNING", nil)
	_, groupRev := f.getKV(t, taskGroupKey("c1", "service:web", "svc"))

	m := newLostMonitor(f.s, LostInstanceConfig{LostAfter: 5 * time.Second})
	for _, d := range []time.Duration{0, 4 * time.Second} {
		before := f.rev(t)
		if err := m.pass(ctx, lostT0.Add(d)); err != nil {
			t.Fatal(err)
		}
		if f.rev(t) != before {
			t.Fatalf("wrote before LostAfter (at %s)", d)
		}
	}
	now := lostT0.Add(5 * time.Second)
	if err := m.pass(ctx, now); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ code, reason string }{
		"svc":  {"TerminationNotice", "Host EC2 (instance i-0i1) is unreachable: its agent has not reported for 5s."},
		"solo": {"TerminationNotice", "Host EC2 (instance i-0i1) is unreachable: its agent has not reported for 5s."},
		"user": {"UserInitiated", "Task stopped by user"},
	}
	for id, w := range want {
		got, _ := f.get(t, id)
		if got.DesiredStatus != DesiredStopped || got.LastStatus != "STOPPED" || got.StopCode != w.code || got.StoppedReason != w.reason ||
			got.Version != 4 || got.StoppedAt == nil || !got.StoppedAt.Equal(now) || got.ExecutionStoppedAt == nil {
			t.Errorf("%s: %+v", id, got)
		}
		if len(got.Containers) != 2 || got.Containers[0].KnownStatus != "STOPPED" || got.Containers[1].KnownStatus != "STOPPED" {
			t.Errorf("%s containers: %+v", id, got.Containers)
		}
		var a assignmentRecord
		kv, _ := f.getKV(t, assignKey("i1", id))
		json.Unmarshal(kv.Value, &a)
		if a.DesiredStatus != DesiredStopped || a.Version != 4 {
			t.Errorf("%s assignment %+v", id, a)
		}
	}
	if got, _ := f.get(t, "done"); got.Version != 3 {
		t.Errorf("a STOPPED task was rewritten: %+v", got)
	}
	if got, _ := f.get(t, "other"); got.LastStatus != "RUNNING" || got.DesiredStatus != DesiredRunning {
		t.Errorf("a connected instance's task was stopped: %+v", got)
	}
	if _, r := f.getKV(t, taskGroupKey("c1", "service:web", "svc")); r != groupRev {
		t.Error("the task group index was rewritten")
	}
	// Nothing is left to do: later passes write nothing.
	for _, d := range []time.Duration{6 * time.Second, 7 * time.Second} {
		before := f.rev(t)
		if err := m.pass(ctx, lostT0.Add(d)); err != nil {
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
	f.task(t, "svc", "i1", "service:web", DesiredRunning, "RUNNING", nil)
	m := newLostMonitor(f.s, LostInstanceConfig{LostAfter: 5 * time.Second})
	if err := m.pass(ctx, lostT0); err != nil {
		t.Fatal(err)
	}
	// The agent reconnects between the monitor's read and its write: the
	// compare on the presence key refuses the write.
	view, err := f.s.presenceView(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, lost := decideLost(view, m.absentSince, lostT0.Add(5*time.Second), 5*time.Second)
	i := slices.IndexFunc(lost, func(in instancePresence) bool { return in.ID == "i1" })
	if i < 0 {
		t.Fatalf("lost %+v", lost)
	}
	putJSON(t, f.st, keyAgents+"i1", map[string]any{})
	assigns, err := f.st.List(ctx, keyAssign+"i1/", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n, back, err := f.s.stopLostTasks(ctx, lost[i], assigns.KVs, "lost", lostT0.Add(5*time.Second))
	if err != nil || n != 0 || !back {
		t.Fatalf("stopLostTasks with the agent back: %d %v %v", n, back, err)
	}
	if got, _ := f.get(t, "svc"); got.LastStatus != "RUNNING" || got.Version != 3 {
		t.Fatalf("task written although the agent is back: %+v", got)
	}
	// The next pass sees it connected; when it goes again, the clock
	// starts again.
	if err := m.pass(ctx, lostT0.Add(6*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Txn(ctx, nil, store.Delete(keyAgents+"i1")); err != nil {
		t.Fatal(err)
	}
	if err := m.pass(ctx, lostT0.Add(7*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.get(t, "svc"); got.LastStatus != "RUNNING" {
		t.Fatalf("stopped at once after the agent went again: %+v", got)
	}
	if err := m.pass(ctx, lostT0.Add(12*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.get(t, "svc"); got.LastStatus != "STOPPED" || got.StopCode != "TerminationNotice" {
		t.Fatalf("not stopped LostAfter after the agent went again: %+v", got)
	}
}

// TestReturningAgentStopsItsTasksAndCannotRevive: after the monitor wrote
// an instance's tasks STOPPED, the returning agent is told they are
// desired STOPPED (so it stops any container still running), and its late
// reports change nothing that matters: a RUNNING report does not revive
// the task, a STOPPED one adds detail but keeps the stop code.
func TestReturningAgentStopsItsTasksAndCannotRevive(t *testing.T) {
	f := newLostFixture(t)
	ctx := t.Context()
	f.task(t, "svc", "i1", "service:web", DesiredRunning, "RUNNING", nil)
	m := newLostMonitor(f.s, LostInstanceConfig{LostAfter: 5 * time.Second})
	for _, d := range []time.Duration{0, 5 * time.Second} {
		if err := m.pass(ctx, lostT0.Add(d)); err != nil {
			t.Fatal(err)
		}
	}
	lost, _ := f.get(t, "svc")
	if lost.LastStatus != "STOPPED" {
		t.Fatalf("%+v", lost)
	}

	cred := AgentCredential{InstanceID: "i1", Cluster: "c1"}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := f.s.OpenAssignments(sctx, cred, 0)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.Type != agentapi.EventSync || len(ev.Tasks) != 1 || ev.Tasks[0].DesiredStatus != DesiredStopped ||
			ev.Tasks[0].StopCode != "TerminationNotice" || ev.Tasks[0].Version != lost.Version {
			t.Fatalf("sync %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no sync")
	}

	healthy := lostT0.Add(time.Hour)
	err = f.s.ApplyReport(ctx, cred, agentapi.Report{Tasks: []agentapi.TaskReport{{TaskArn: lost.ARN, KnownStatus: "RUNNING",
		HealthStatus: "HEALTHY", ConnectivityAt: &healthy,
		Containers: []agentapi.ContainerReport{{Name: "web", KnownStatus: "RUNNING"}, {Name: "extra", KnownStatus: "RUNNING"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := f.get(t, "svc")
	if got.LastStatus != "STOPPED" || got.DesiredStatus != DesiredStopped || got.StopCode != "TerminationNotice" || got.HealthStatus == "HEALTHY" {
		t.Fatalf("a late RUNNING report revived the task: %+v", got)
	}
	for _, c := range got.Containers {
		if c.KnownStatus != "STOPPED" {
			t.Fatalf("a late report added a running container: %+v", got.Containers)
		}
	}

	exit := int32(137)
	later := lostT0.Add(2 * time.Hour)
	err = f.s.ApplyReport(ctx, cred, agentapi.Report{Tasks: []agentapi.TaskReport{{TaskArn: lost.ARN, KnownStatus: "STOPPED",
		StopCode: "EssentialContainerExited", StoppedAt: &later, ExecutionStoppedAt: &later,
		Containers: []agentapi.ContainerReport{{Name: "web", KnownStatus: "STOPPED", ExitCode: &exit}}}}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = f.get(t, "svc")
	if got.LastStatus != "STOPPED" || got.StopCode != "TerminationNotice" || !got.StoppedAt.Equal(*lost.StoppedAt) ||
		got.Containers[0].ExitCode == nil || *got.Containers[0].ExitCode != 137 {
		t.Fatalf("after the agent's STOPPED report: %+v", got)
	}
}

func TestDecideLostNever(t *testing.T) {
	view := []instancePresence{{ID: "a", Status: InstanceActive}, {ID: "b", Status: InstanceInactive}}
	since, _ := decideLost(view, map[string]time.Time{}, lostT0, -1)
	_, lost := decideLost(view, since, lostT0.Add(1000*time.Hour), -1)
	if len(lost) != 1 || lost[0].ID != "b" {
		t.Fatalf("lost %+v: with LostAfter negative only a deregistered instance is lost", lost)
	}
}

func TestDecideReachable(t *testing.T) {
	const grace = 10 * time.Second
	at := func(d time.Duration) time.Time { return lostT0.Add(d) }
	up := instancePresence{ID: "a", Status: InstanceActive, Connected: true}
	down := instancePresence{ID: "a", Status: InstanceActive}
	steps := []struct {
		at          time.Duration
		in          instancePresence
		unreachable bool
	}{
		{0, up, false},
		{time.Second, down, false}, // disconnected: the clock starts
		{10*time.Second + 999*time.Millisecond, down, false}, // within the grace
		{11 * time.Second, down, true},                       // grace over
		{30 * time.Second, down, true},
		{31 * time.Second, up, true}, // back: settling
		{31*time.Second + rejoinSettle - time.Millisecond, up, true},
		{31*time.Second + rejoinSettle, up, false}, // its reports are in: counts again
		{40 * time.Second, down, false},            // away again: a fresh grace
		{45 * time.Second, up, false},              // back within the grace: no settling
		{46 * time.Second, down, false},
		{56 * time.Second, down, true},
	}
	var clock reachClock
	for _, st := range steps {
		var u map[string]bool
		clock, u, _ = decideReachable([]instancePresence{st.in}, clock, at(st.at), grace)
		if u["a"] != st.unreachable {
			t.Fatalf("at %s (connected %v): unreachable %v, want %v", st.at, st.in.Connected, u["a"], st.unreachable)
		}
	}
	// INACTIVE and vanished instances are forgotten; DRAINING ones count.
	clock, u, _ := decideReachable([]instancePresence{{ID: "a", Status: InstanceInactive}, {ID: "d", Status: InstanceDraining}}, clock, at(time.Minute), grace)
	if len(u) != 0 || len(clock.away) != 1 || len(clock.back) != 0 {
		t.Fatalf("unreachable %v, clock %+v", u, clock)
	}
	_, u, _ = decideReachable([]instancePresence{{ID: "d", Status: InstanceDraining}}, clock, at(time.Minute+grace), grace)
	if !u["d"] {
		t.Fatalf("DRAINING instance away for the grace: %v", u)
	}
}

// TestPropDecideReachable: over random connect/disconnect sequences, an
// instance is unreachable exactly when it has been disconnected for the
// grace, or came back from that less than rejoinSettle ago; a connected
// instance that was never unreachable is never unreachable.
func TestPropDecideReachable(t *testing.T) {
	const grace = 10 * time.Second
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 3))
		var clock reachClock
		now := lostT0
		connected, downSince, backAt := true, time.Time{}, time.Time{}
		for range 200 {
			now = now.Add(time.Duration(rng.IntN(4000)) * time.Millisecond)
			if rng.IntN(5) == 0 {
				if connected {
					downSince = now
				} else if now.Sub(downSince) >= grace {
					backAt = now // back from unreachable (seen when it came back)
				} else {
					backAt = time.Time{}
				}
				connected = !connected
			}
			var u map[string]bool
			var wake time.Duration
			clock, u, wake = decideReachable([]instancePresence{{ID: "a", Status: InstanceActive, Connected: connected}}, clock, now, grace)
			var want bool
			if connected {
				want = !backAt.IsZero() && now.Sub(backAt) < rejoinSettle
			} else {
				want = now.Sub(downSince) >= grace
			}
			if u["a"] != want {
				t.Fatalf("seed %d at %s: connected %v, unreachable %v, want %v", seed, now.Sub(lostT0), connected, u["a"], want)
			}
			// wake: when the answer changes by itself.
			var wantWake time.Duration
			switch {
			case !connected && !want:
				wantWake = downSince.Add(grace).Sub(now)
			case connected && want:
				wantWake = backAt.Add(rejoinSettle).Sub(now)
			}
			if wake != wantWake {
				t.Fatalf("seed %d at %s: wake %s, want %s", seed, now.Sub(lostT0), wake, wantWake)
			}
		}
	}
}
