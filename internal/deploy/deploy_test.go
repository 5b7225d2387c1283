package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/capacityprovider"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func instances(n int) []Instance {
	var out []Instance
	for i := range n {
		out = append(out, Instance{ID: fmt.Sprintf("i%02d", i), Status: "ACTIVE", Connected: true, Eligible: true,
			Attributes: map[string]string{"ecs.availability-zone": []string{"a", "b", "c"}[i%3]}})
	}
	return out
}

func running(id, dep, inst string) Task {
	st := t0
	return Task{ID: id, DeploymentID: dep, InstanceID: inst, LastStatus: "RUNNING", DesiredStatus: "RUNNING", CreatedAt: t0, StartedAt: &st}
}

func svc(desired, minP, maxP int) Service {
	return Service{Name: "web", Status: ServiceActive, Scheduling: Replica, DesiredCount: desired, MinHealthyPercent: minP, MaxPercent: maxP,
		Strategies: []Strategy{{"spread", "attribute:ecs.availability-zone"}, {"spread", "instanceId"}}}
}

func TestBounds(t *testing.T) {
	cases := []struct{ desired, pct, minH, maxT int }{
		{3, 50, 2, 1}, {4, 50, 2, 2}, {3, 150, 5, 4}, {1, 100, 1, 1}, {0, 100, 0, 0}, {5, 0, 0, 0},
	}
	for _, c := range cases {
		if got := MinHealthy(c.desired, c.pct); got != c.minH {
			t.Errorf("MinHealthy(%d,%d)=%d want %d", c.desired, c.pct, got, c.minH)
		}
		if got := MaxTasks(c.desired, c.pct); got != c.maxT {
			t.Errorf("MaxTasks(%d,%d)=%d want %d", c.desired, c.pct, got, c.maxT)
		}
	}
	for d, want := range map[int]int{1: 3, 6: 3, 7: 4, 10: 5, 1000: 200} {
		if got := FailureThreshold(d); got != want {
			t.Errorf("FailureThreshold(%d)=%d want %d", d, got, want)
		}
	}
}

func TestCreateStartsDesiredTasks(t *testing.T) {
	dec := Decide(Input{Service: svc(3, 100, 200), Deployments: []Deployment{{ID: "ecs-svc/1", Status: StatusPrimary, TaskDefinition: "td:1", RolloutState: RolloutInProgress}},
		Instances: instances(3), Now: t0})
	if len(dec.Start) != 1 || dec.Start[0].Count != 3 || dec.Start[0].DeploymentID != "ecs-svc/1" {
		t.Fatalf("starts %+v", dec.Start)
	}
	if dec.Steady {
		t.Fatal("steady before any task runs")
	}
}

func TestSteadyStateEventOnceAndDeploymentCompleted(t *testing.T) {
	deps := []Deployment{{ID: "ecs-svc/1", Status: StatusPrimary, TaskDefinition: "td:1", RolloutState: RolloutInProgress}}
	tasks := []Task{running("a", "ecs-svc/1", "i00"), running("b", "ecs-svc/1", "i01")}
	dec := Decide(Input{Service: svc(2, 100, 200), Deployments: deps, Tasks: tasks, Instances: instances(2), Now: t0})
	if !dec.Steady || dec.CompletedDepID != "ecs-svc/1" || dec.Deployments[0].RolloutState != RolloutCompleted {
		t.Fatalf("decision %+v", dec)
	}
	want := []string{"(service web) (deployment ecs-svc/1) deployment completed.", "(service web) has reached a steady state."}
	if !slices.Equal(dec.Events, want) {
		t.Fatalf("events %q", dec.Events)
	}
	s := svc(2, 100, 200)
	s.Steady = true
	dec = Decide(Input{Service: s, Deployments: dec.Deployments, Tasks: tasks, Instances: instances(2), Now: t0})
	if len(dec.Events) != 0 {
		t.Fatalf("repeated events %q", dec.Events)
	}
}

func TestScaleInStopsFromTheMostCrowdedZone(t *testing.T) {
	deps := []Deployment{{ID: "ecs-svc/1", Status: StatusPrimary, TaskDefinition: "td:1", RolloutState: RolloutCompleted}}
	// i00 and i03 are in zone a; i01 in b; i02 in c.
	tasks := []Task{running("a1", "ecs-svc/1", "i00"), running("a2", "ecs-svc/1", "i03"), running("b1", "ecs-svc/1", "i01"), running("c1", "ecs-svc/1", "i02")}
	dec := Decide(Input{Service: svc(3, 100, 200), Deployments: deps, Tasks: tasks, Instances: instances(4), Now: t0})
	if len(dec.Stop) != 1 || !strings.HasPrefix(dec.Stop[0].TaskID, "a") {
		t.Fatalf("stops %+v", dec.Stop)
	}
	if dec.Stop[0].StopCode != StopCodeScheduler || dec.Stop[0].Reason != "Scaling activity initiated by (deployment ecs-svc/1)" {
		t.Fatalf("stop %+v", dec.Stop[0])
	}
	if want := "(service web) has stopped 1 running tasks: (task " + dec.Stop[0].TaskID + ")."; !slices.Contains(dec.Events, want) {
		t.Fatalf("events %q", dec.Events)
	}
}

func TestDisconnectedInstanceIsLeftToTheMonitor(t *testing.T) {
	deps := []Deployment{{ID: "ecs-svc/1", Status: StatusPrimary, TaskDefinition: "td:1", RolloutState: RolloutCompleted}}
	insts := instances(2)
	insts[0].Connected = false
	tasks := []Task{running("a", "ecs-svc/1", "i00"), running("b", "ecs-svc/1", "i01")}
	for _, now := range []time.Time{t0, t0.Add(time.Hour)} {
		dec := Decide(Input{Service: svc(2, 100, 200), Deployments: deps, Tasks: tasks, Instances: insts, Now: now})
		if len(dec.Stop) != 0 || len(dec.Start) != 0 || dec.RunningCount != 2 {
			t.Fatalf("acted on a disconnected instance's task at %s: %+v", now.Sub(t0), dec)
		}
	}
}

func TestTerminationNoticeTasksAreReplacedNotFailures(t *testing.T) {
	deps := []Deployment{{ID: "ecs-svc/1", Status: StatusPrimary, TaskDefinition: "td:1", RolloutState: RolloutInProgress}}
	insts := instances(3)
	insts[0].Connected = false
	// The lost-instance monitor marked the tasks on i00 STOPPED, more of
	// them than the circuit breaker's threshold.
	var tasks []Task
	for i := range 4 {
		at := t0.Add(time.Duration(i) * time.Second)
		tasks = append(tasks, Task{ID: fmt.Sprintf("lost%d", i), DeploymentID: "ecs-svc/1", InstanceID: "i00", LastStatus: "STOPPED",
			DesiredStatus: "STOPPED", StopCode: "TerminationNotice", CreatedAt: t0, StartedAt: &at, StoppingAt: &at, StoppedAt: &at})
	}
	tasks = append(tasks, running("b", "ecs-svc/1", "i01"))
	s := svc(5, 100, 200)
	s.CircuitBreaker = true
	dec := Decide(Input{Service: s, Deployments: deps, Tasks: tasks, Instances: insts, Now: t0.Add(5 * time.Second)})
	if len(dec.Start) != 1 || dec.Start[0].Count != 4 || dec.RetryAfter != 0 {
		t.Fatalf("starts %+v (retry after %s)", dec.Start, dec.RetryAfter)
	}
	if dec.Deployments[0].FailedTasks != 0 || dec.Deployments[0].RolloutState != RolloutInProgress {
		t.Fatalf("lost tasks counted as failures: %+v", dec.Deployments[0])
	}
	if len(dec.Stop) != 0 {
		t.Fatalf("stops %+v", dec.Stop)
	}
}

func TestDeregisteredInstanceTasksAreReplaced(t *testing.T) {
	deps := []Deployment{{ID: "ecs-svc/1", Status: StatusPrimary, TaskDefinition: "td:1", RolloutState: RolloutCompleted}}
	insts := instances(3)
	insts[0].Status = "INACTIVE" // deregistered with force: its task is desired STOPPED, never reported
	a := running("a", "ecs-svc/1", "i00")
	a.DesiredStatus, a.StopCode = "STOPPED", "UserInitiated"
	gone := running("g", "ecs-svc/1", "i99") // an instance that no longer exists
	tasks := []Task{a, gone, running("b", "ecs-svc/1", "i01")}
	dec := Decide(Input{Service: svc(3, 100, 200), Deployments: deps, Tasks: tasks, Instances: insts, Now: t0})
	if len(dec.Stop) != 1 || dec.Stop[0].TaskID != "g" || !dec.Stop[0].Lost || dec.Stop[0].Reason != ReasonDeregistered {
		t.Fatalf("stops %+v", dec.Stop)
	}
	if len(dec.Start) != 1 || dec.Start[0].Count != 2 {
		t.Fatalf("starts %+v", dec.Start)
	}
	for _, e := range dec.Events {
		if strings.Contains(e, "has stopped") {
			t.Fatalf("event for a lost task: %q", e)
		}
	}
}

func TestDaemonTaskOnDisconnectedInstanceIsNotStopped(t *testing.T) {
	deps := []Deployment{{ID: "ecs-svc/1", Status: StatusPrimary, TaskDefinition: "td:1", RolloutState: RolloutCompleted}}
	insts := instances(2)
	// Disconnected for longer than LostAfter: the shell no longer counts
	// it eligible, and the monitor will mark its task STOPPED.
	insts[0].Connected, insts[0].Eligible = false, false
	s := Service{Name: "agent", Status: ServiceActive, Scheduling: Daemon, MinHealthyPercent: 0, MaxPercent: 100}
	dec := Decide(Input{Service: s, Deployments: deps, Tasks: []Task{running("a", "ecs-svc/1", "i00"), running("b", "ecs-svc/1", "i01")},
		Instances: insts, Now: t0})
	if len(dec.Stop) != 0 || len(dec.Start) != 0 || dec.DesiredCount != 1 {
		t.Fatalf("decision %+v", dec)
	}
	insts[0].Connected = true // connected but ineligible (no longer matching): stopped
	dec = Decide(Input{Service: s, Deployments: deps, Tasks: []Task{running("a", "ecs-svc/1", "i00"), running("b", "ecs-svc/1", "i01")},
		Instances: insts, Now: t0})
	if len(dec.Stop) != 1 || dec.Stop[0].TaskID != "a" {
		t.Fatalf("stops %+v", dec.Stop)
	}
}

func TestCircuitBreakerRollsBack(t *testing.T) {
	deps := []Deployment{
		{ID: "ecs-svc/2", Status: StatusPrimary, TaskDefinition: "td:2", RolloutState: RolloutInProgress},
		{ID: "ecs-svc/1", Status: StatusActive, TaskDefinition: "td:1", RolloutState: RolloutCompleted},
	}
	tasks := []Task{running("a", "ecs-svc/1", "i00"), running("b", "ecs-svc/1", "i01")}
	for i := range 3 {
		at := t0.Add(time.Duration(i) * time.Second)
		tasks = append(tasks, Task{ID: fmt.Sprintf("f%d", i), DeploymentID: "ecs-svc/2", InstanceID: "i00", LastStatus: "STOPPED",
			DesiredStatus: "STOPPED", StopCode: StopCodeFailedToStart, CreatedAt: at, StoppingAt: &at})
	}
	s := svc(2, 100, 200)
	s.CircuitBreaker, s.Rollback = true, true
	s.LastCompletedDepID, s.LastCompletedTD = "ecs-svc/1", "td:1"
	dec := Decide(Input{Service: s, Deployments: deps, Tasks: tasks, Instances: instances(2), Now: t0.Add(time.Minute), NewDeploymentID: "ecs-svc/3"})
	if dec.RolledBackTo != "td:1" || dec.Deployments[0].ID != "ecs-svc/3" || dec.Deployments[0].TaskDefinition != "td:1" {
		t.Fatalf("no rollback: %+v", dec.Deployments)
	}
	var failed *Deployment
	for i := range dec.Deployments {
		if dec.Deployments[i].ID == "ecs-svc/2" {
			failed = &dec.Deployments[i]
		}
	}
	if failed != nil && failed.RolloutState != RolloutFailed {
		t.Fatalf("failed deployment %+v", failed)
	}
	for _, st := range dec.Start {
		if st.DeploymentID == "ecs-svc/2" {
			t.Fatal("started tasks of the failed deployment")
		}
	}
	// Without rollback: FAILED, nothing started.
	s.Rollback = false
	dec = Decide(Input{Service: s, Deployments: deps, Tasks: tasks, Instances: instances(2), Now: t0.Add(time.Minute), NewDeploymentID: "ecs-svc/3"})
	if dec.Deployments[0].RolloutState != RolloutFailed || len(dec.Start) != 0 {
		t.Fatalf("decision %+v", dec)
	}
}

func TestBackoffWhenTasksKeepFailing(t *testing.T) {
	deps := []Deployment{{ID: "ecs-svc/1", Status: StatusPrimary, TaskDefinition: "td:1", RolloutState: RolloutInProgress}}
	var tasks []Task
	for i := range 5 {
		at := t0.Add(time.Duration(i) * time.Second)
		tasks = append(tasks, Task{ID: fmt.Sprintf("f%d", i), DeploymentID: "ecs-svc/1", InstanceID: "i00", LastStatus: "STOPPED",
			DesiredStatus: "STOPPED", StopCode: StopCodeFailedToStart, CreatedAt: at, StoppingAt: &at})
	}
	dec := Decide(Input{Service: svc(1, 100, 200), Deployments: deps, Tasks: tasks, Instances: instances(1), Now: t0.Add(5 * time.Second)})
	if len(dec.Start) != 0 || dec.RetryAfter <= 0 {
		t.Fatalf("no back-off: %+v", dec)
	}
	if !slices.Contains(dec.Events, "(service web) is unable to consistently start tasks successfully.") {
		t.Fatalf("events %q", dec.Events)
	}
	dec = Decide(Input{Service: svc(1, 100, 200), Deployments: deps, Tasks: tasks, Instances: instances(1), Now: t0.Add(time.Hour)})
	if len(dec.Start) != 1 {
		t.Fatalf("no start after the window: %+v", dec)
	}
}

func TestDaemonOneTaskPerEligibleInstance(t *testing.T) {
	deps := []Deployment{{ID: "ecs-svc/1", Status: StatusPrimary, TaskDefinition: "td:1", RolloutState: RolloutInProgress}}
	insts := instances(3)
	insts[2].Status, insts[2].Eligible = "DRAINING", false
	s := Service{Name: "agent", Status: ServiceActive, Scheduling: Daemon, MinHealthyPercent: 0, MaxPercent: 100}
	tasks := []Task{running("x", "ecs-svc/1", "i02")}
	dec := Decide(Input{Service: s, Deployments: deps, Tasks: tasks, Instances: insts, Now: t0})
	if dec.DesiredCount != 2 || len(dec.Start) != 2 || dec.Start[0].InstanceID != "i00" || dec.Start[1].InstanceID != "i01" {
		t.Fatalf("starts %+v desired %d", dec.Start, dec.DesiredCount)
	}
	if len(dec.Stop) != 1 || dec.Stop[0].TaskID != "x" {
		t.Fatalf("stops %+v", dec.Stop)
	}
}

func TestAppendEventsSuppressesRepeats(t *testing.T) {
	n := 0
	ids := func() string { n++; return fmt.Sprint(n) }
	ev := AppendEvents(nil, []string{"a", "a", "b"}, t0, ids)
	ev = AppendEvents(ev, []string{"b"}, t0.Add(time.Minute), ids)
	if len(ev) != 2 || ev[0].Message != "b" || ev[1].Message != "a" {
		t.Fatalf("events %+v", ev)
	}
	for i := range 150 {
		ev = AppendEvents(ev, []string{fmt.Sprint("m", i)}, t0, ids)
	}
	if len(ev) != MaxEvents {
		t.Fatalf("kept %d", len(ev))
	}
}

func TestDeletedDaemonServiceStopsEveryTask(t *testing.T) {
	deps := []Deployment{{ID: "ecs-svc/1", Status: StatusPrimary, TaskDefinition: "td:1", RolloutState: RolloutCompleted}}
	s := Service{Name: "agent", Status: ServiceDraining, Scheduling: Daemon, MinHealthyPercent: 0, MaxPercent: 100}
	tasks := []Task{running("x", "ecs-svc/1", "i00"), running("y", "ecs-svc/1", "i01")}
	dec := Decide(Input{Service: s, Deployments: deps, Tasks: tasks, Instances: instances(2), Now: t0})
	if len(dec.Stop) != 2 || len(dec.Start) != 0 || dec.DesiredCount != 0 {
		t.Fatalf("stops %+v starts %+v desired %d", dec.Stop, dec.Start, dec.DesiredCount)
	}
	for i := range tasks {
		tasks[i].DesiredStatus, tasks[i].LastStatus = "STOPPED", "STOPPED"
	}
	if dec = Decide(Input{Service: s, Deployments: deps, Tasks: tasks, Instances: instances(2), Now: t0}); dec.ServiceStatus != ServiceInactive {
		t.Fatalf("status %s", dec.ServiceStatus)
	}
}

// A container that crashes at once is observed RUNNING for an instant: its
// task still failed to start (circuit breaker), unlike one that ran a while.
func TestQuickEssentialExitCountsAsFailure(t *testing.T) {
	deps := []Deployment{{ID: "ecs-svc/2", Status: StatusPrimary, TaskDefinition: "td:2", RolloutState: RolloutInProgress},
		{ID: "ecs-svc/1", Status: StatusActive, TaskDefinition: "td:1", RolloutState: RolloutCompleted}}
	s := svc(2, 100, 200)
	s.CircuitBreaker, s.Rollback, s.LastCompletedDepID, s.LastCompletedTD = true, true, "ecs-svc/1", "td:1"
	crashed := func(id string, ranFor time.Duration) Task {
		st, end := t0, t0.Add(ranFor)
		return Task{ID: id, DeploymentID: "ecs-svc/2", InstanceID: "i00", LastStatus: "STOPPED", DesiredStatus: "STOPPED",
			StopCode: StopCodeEssentialExit, CreatedAt: t0, StartedAt: &st, StoppingAt: &end}
	}
	tasks := []Task{running("a", "ecs-svc/1", "i00"), running("b", "ecs-svc/1", "i01")}
	long := append(slices.Clone(tasks), crashed("l1", time.Hour), crashed("l2", time.Hour), crashed("l3", time.Hour))
	dec := Decide(Input{Service: s, Deployments: deps, Tasks: long, Instances: instances(2), Now: t0.Add(2 * time.Hour), NewDeploymentID: "ecs-svc/3"})
	if dec.Deployments[0].ID != "ecs-svc/2" || dec.Deployments[0].RolloutState != RolloutInProgress {
		t.Fatalf("tasks that ran an hour tripped the breaker: %+v", dec.Deployments)
	}
	quick := append(slices.Clone(tasks), crashed("q1", 100*time.Millisecond), crashed("q2", 0), crashed("q3", time.Second))
	dec = Decide(Input{Service: s, Deployments: deps, Tasks: quick, Instances: instances(2), Now: t0.Add(time.Minute), NewDeploymentID: "ecs-svc/3"})
	if dec.RolledBackTo != "td:1" || dec.Deployments[0].ID != "ecs-svc/3" {
		t.Fatalf("crash loop did not trip the breaker: %+v", dec.Deployments)
	}
}

// A rollback deployment is not held back by the failed deployment's
// failures.
func TestBackoffIsPerDeployment(t *testing.T) {
	deps := []Deployment{{ID: "ecs-svc/3", Status: StatusPrimary, TaskDefinition: "td:1", RolloutState: RolloutInProgress},
		{ID: "ecs-svc/2", Status: StatusActive, TaskDefinition: "td:2", RolloutState: RolloutFailed}}
	var tasks []Task
	for i := range 6 {
		at := t0.Add(time.Duration(i) * time.Second)
		tasks = append(tasks, Task{ID: fmt.Sprintf("f%d", i), DeploymentID: "ecs-svc/2", InstanceID: "i00", LastStatus: "STOPPED",
			DesiredStatus: "STOPPED", StopCode: StopCodeFailedToStart, CreatedAt: at, StoppingAt: &at})
	}
	dec := Decide(Input{Service: svc(2, 100, 200), Deployments: deps, Tasks: tasks, Instances: instances(2), Now: t0.Add(6 * time.Second)})
	if len(dec.Start) != 1 || dec.Start[0].DeploymentID != "ecs-svc/3" || dec.RetryAfter != 0 {
		t.Fatalf("rollback deployment held back: %+v", dec)
	}
}

// A task whose container health check fails is stopped and replaced once
// the service's healthCheckGracePeriodSeconds has passed since it started,
// not before.
func TestUnhealthyTaskIsReplacedAfterTheGracePeriod(t *testing.T) {
	deps := []Deployment{{ID: "ecs-svc/1", Status: StatusPrimary, TaskDefinition: "td:1", RolloutState: RolloutCompleted}}
	s := svc(2, 100, 200)
	s.HealthCheckGrace = time.Minute
	sick := running("sick", "ecs-svc/1", "i00")
	sick.Health = "UNHEALTHY"
	tasks := []Task{sick, running("ok", "ecs-svc/1", "i01")}

	dec := Decide(Input{Service: s, Deployments: deps, Tasks: tasks, Instances: instances(2), Now: sick.StartedAt.Add(30 * time.Second)})
	if len(dec.Stop) != 0 {
		t.Fatalf("stopped within the grace period: %+v", dec.Stop)
	}
	dec = Decide(Input{Service: s, Deployments: deps, Tasks: tasks, Instances: instances(2), Now: sick.StartedAt.Add(2 * time.Minute)})
	if len(dec.Stop) != 1 || dec.Stop[0].TaskID != "sick" || dec.Stop[0].Reason != ReasonHealthCheck || dec.Stop[0].StopCode != StopCodeScheduler {
		t.Fatalf("unhealthy task after the grace period: stops %+v", dec.Stop)
	}
	if len(dec.Start) != 1 || dec.Start[0].Count != 1 {
		t.Fatalf("unhealthy task not replaced: starts %+v", dec.Start)
	}
}

func TestUnreachableInstanceTasksAreReplacedAndLeftRunning(t *testing.T) {
	deps := []Deployment{{ID: "ecs-svc/1", Status: StatusPrimary, TaskDefinition: "td:1", RolloutState: RolloutCompleted}}
	insts := instances(3)
	insts[0].Connected, insts[0].Unreachable = false, true
	tasks := []Task{running("a", "ecs-svc/1", "i00"), running("b", "ecs-svc/1", "i01"), running("c", "ecs-svc/1", "i02")}
	// maximumPercent 100: the task set aside does not hold the
	// replacement back.
	dec := Decide(Input{Service: svc(3, 100, 100), Deployments: deps, Tasks: tasks, Instances: insts, Now: t0})
	if len(dec.Stop) != 0 {
		t.Fatalf("stopped a task: %+v", dec.Stop)
	}
	if len(dec.Start) != 1 || dec.Start[0].Count != 1 || dec.RunningCount != 3 || dec.Steady {
		t.Fatalf("starts %+v, running %d, steady %v", dec.Start, dec.RunningCount, dec.Steady)
	}
	// The replacement runs: four RUNNING, none stopped, not steady (more
	// tasks than desired exist), the deployment stays COMPLETED.
	repl := running("d", "ecs-svc/1", "i01")
	repl.CreatedAt = t0.Add(time.Second)
	tasks = append(tasks, repl)
	dec = Decide(Input{Service: svc(3, 100, 100), Deployments: deps, Tasks: tasks, Instances: insts, Now: t0.Add(time.Second)})
	if len(dec.Stop) != 0 || len(dec.Start) != 0 || dec.RunningCount != 4 || dec.Steady || dec.Deployments[0].RolloutState != RolloutCompleted {
		t.Fatalf("with the replacement: %+v", dec)
	}
	// The agent is back: one surplus task stopped, by the service's
	// scale-in order (spread: the replacement on the crowded i01).
	insts[0].Connected, insts[0].Unreachable = true, false
	dec = Decide(Input{Service: svc(3, 100, 100), Deployments: deps, Tasks: tasks, Instances: insts, Now: t0.Add(2 * time.Second)})
	if len(dec.Stop) != 1 || dec.Stop[0].TaskID != "d" || dec.Stop[0].StopCode != StopCodeScheduler || len(dec.Start) != 0 {
		t.Fatalf("after the return: stops %+v, starts %+v", dec.Stop, dec.Start)
	}
	if want := StoppedMessage("web", []string{"d"}); !slices.Contains(dec.Events, want) {
		t.Fatalf("events %q", dec.Events)
	}
}

func TestUnreachableTasksKeepOldDeploymentAndDrainingServiceOpen(t *testing.T) {
	deps := []Deployment{
		{ID: "ecs-svc/2", Status: StatusPrimary, TaskDefinition: "td:2", RolloutState: RolloutInProgress},
		{ID: "ecs-svc/1", Status: StatusActive, TaskDefinition: "td:1", RolloutState: RolloutCompleted},
	}
	insts := instances(2)
	insts[0].Connected, insts[0].Unreachable = false, true
	tasks := []Task{running("old", "ecs-svc/1", "i00"), running("new", "ecs-svc/2", "i01")}
	dec := Decide(Input{Service: svc(1, 100, 200), Deployments: deps, Tasks: tasks, Instances: insts, Now: t0})
	if len(dec.Stop) != 0 || len(dec.Deployments) != 2 || dec.Deployments[0].RolloutState != RolloutInProgress {
		t.Fatalf("old deployment's task set aside: %+v", dec)
	}
	s := svc(1, 100, 200)
	s.Status = ServiceDraining
	dec = Decide(Input{Service: s, Deployments: deps, Tasks: tasks, Instances: insts, Now: t0})
	if dec.ServiceStatus == ServiceInactive || len(dec.Stop) != 1 || dec.Stop[0].TaskID != "new" {
		t.Fatalf("draining service with a task away: status %s, stops %+v", dec.ServiceStatus, dec.Stop)
	}
}

// TestScaleInKeepsTheProviderSplit: a service with blue base 1 weight 1
// and green weight 2 scaled in from 7 to 4 tasks keeps ECS's split for 4
// (blue 2, green 2), even where the zones would have said otherwise; a
// task on a provider the strategy no longer names goes first.
func TestScaleInKeepsTheProviderSplit(t *testing.T) {
	deps := []Deployment{{ID: "ecs-svc/1", Status: StatusPrimary, TaskDefinition: "td:1", RolloutState: RolloutCompleted}}
	s := svc(4, 100, 200)
	s.Providers = []capacityprovider.Item{{Provider: "blue", Base: 1, Weight: 1}, {Provider: "green", Weight: 2}}
	s.Strategies = []Strategy{{Type: "spread", Field: "attribute:ecs.availability-zone"}}
	// Split for 7: blue 3, green 4.
	var tasks []Task
	for i, p := range []string{"blue", "green", "green", "blue", "green", "green", "blue"} {
		tk := running(fmt.Sprintf("t%d", i), "ecs-svc/1", fmt.Sprintf("i%02d", i%4))
		tk.Provider = p
		tasks = append(tasks, tk)
	}
	dec := Decide(Input{Service: s, Deployments: deps, Tasks: tasks, Instances: instances(4), Now: t0})
	left := map[string]int{}
	for _, tk := range tasks {
		if !slices.ContainsFunc(dec.Stop, func(st Stop) bool { return st.TaskID == tk.ID }) {
			left[tk.Provider]++
		}
	}
	if len(dec.Stop) != 3 || left["blue"] != 2 || left["green"] != 2 {
		t.Fatalf("stops %+v leave %v, want blue 2 green 2", dec.Stop, left)
	}
	tasks[0].Provider = "gone"
	s.DesiredCount = 6
	dec = Decide(Input{Service: s, Deployments: deps, Tasks: tasks, Instances: instances(4), Now: t0})
	if len(dec.Stop) != 1 || dec.Stop[0].TaskID != "t0" {
		t.Fatalf("stops %+v, want t0 (provider no longer in the strategy)", dec.Stop)
	}
}
