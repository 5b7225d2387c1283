package deploy

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// world is a simulated cluster the property tests drive Decide against:
// each step applies the decision, then the "agents" move tasks forward at
// random (pending -> running, stopping -> stopped, some starts fail).
type world struct {
	rng     *rand.Rand
	svc     Service
	deps    []Deployment
	tasks   []Task
	insts   []Instance
	now     time.Time
	next    int
	failTD  string // tasks of this task definition fail to start
	tdOf    map[string]string
	history []Decision
}

func (w *world) decide() Decision {
	dec := Decide(Input{Service: w.svc, Deployments: w.deps, Tasks: w.tasks, Instances: w.insts, Now: w.now,
		NewDeploymentID: fmt.Sprintf("ecs-svc/%019d", 9000+w.next)})
	w.next++
	return dec
}

func (w *world) apply(dec Decision) {
	for _, st := range dec.Stop {
		for i := range w.tasks {
			if w.tasks[i].ID == st.TaskID && w.tasks[i].DesiredStatus == "RUNNING" {
				w.tasks[i].DesiredStatus = "STOPPED"
				w.tasks[i].StopCode = st.StopCode
				at := w.now
				w.tasks[i].StoppingAt = &at
			}
		}
	}
	for _, st := range dec.Start {
		for range st.Count {
			inst := st.InstanceID
			if inst == "" {
				inst = w.placeable()
			}
			w.next++
			td := st.TaskDefinition
			w.tasks = append(w.tasks, Task{ID: fmt.Sprintf("t%05d", w.next), DeploymentID: st.DeploymentID, InstanceID: inst,
				LastStatus: "PROVISIONING", DesiredStatus: "RUNNING", CreatedAt: w.now})
			w.tdOf[w.tasks[len(w.tasks)-1].ID] = td
		}
	}
	w.deps = dec.Deployments
	w.svc.Steady = dec.Steady
	if dec.CompletedDepID != "" {
		w.svc.LastCompletedDepID, w.svc.LastCompletedTD = dec.CompletedDepID, dec.CompletedTD
	}
	w.svc.Status = dec.ServiceStatus
}

// placeable picks a random instance whose agent is connected (any when
// none is).
func (w *world) placeable() string {
	var ids []string
	for _, in := range w.insts {
		if in.Connected {
			ids = append(ids, in.ID)
		}
	}
	if len(ids) == 0 {
		return w.insts[w.rng.IntN(len(w.insts))].ID
	}
	return ids[w.rng.IntN(len(ids))]
}

// lose disconnects an instance's agent and marks its tasks STOPPED as the
// lost-instance monitor does (TerminationNotice unless already stopping).
func (w *world) lose(id string) {
	for i := range w.insts {
		if w.insts[i].ID == id {
			w.insts[i].Connected, w.insts[i].Eligible = false, false
		}
	}
	for i := range w.tasks {
		t := &w.tasks[i]
		if t.InstanceID != id || t.LastStatus == "STOPPED" {
			continue
		}
		at := w.now
		if t.DesiredStatus != "STOPPED" {
			t.DesiredStatus, t.StopCode, t.StoppingAt = "STOPPED", "TerminationNotice", &at
		}
		t.LastStatus, t.StoppedAt = "STOPPED", &at
	}
}

// agents moves tasks forward at random.
func (w *world) agents() {
	w.now = w.now.Add(time.Second)
	for i := range w.tasks {
		t := &w.tasks[i]
		if w.rng.IntN(3) == 0 {
			continue
		}
		switch {
		case t.LastStatus == "STOPPED":
		case t.DesiredStatus == "STOPPED":
			t.LastStatus = "STOPPED"
		case t.LastStatus != "RUNNING" && w.tdOf[t.ID] == w.failTD && w.failTD != "":
			t.LastStatus, t.DesiredStatus, t.StopCode = "STOPPED", "STOPPED", StopCodeFailedToStart
			at := w.now
			t.StoppingAt = &at
		case t.LastStatus == "PROVISIONING":
			t.LastStatus = "PENDING"
		case t.LastStatus == "PENDING":
			t.LastStatus = "RUNNING"
			at := w.now
			t.StartedAt = &at
		}
	}
}

func counts(tasks []Task) (healthy, occupying int) {
	for _, t := range tasks {
		if t.DesiredStatus == "RUNNING" && t.LastStatus == "RUNNING" {
			healthy++
		}
		if t.LastStatus != "STOPPED" {
			occupying++
		}
	}
	return
}

func newWorld(seed uint64) *world {
	rng := rand.New(rand.NewPCG(seed, seed*7+1))
	w := &world{rng: rng, now: t0, tdOf: map[string]string{}}
	desired := rng.IntN(12)
	minP := []int{0, 50, 100, rng.IntN(101)}[rng.IntN(4)]
	maxP := max(100, minP) + []int{0, 50, 100, rng.IntN(101)}[rng.IntN(4)]
	w.svc = svc(desired, minP, maxP)
	w.insts = instances(1 + rng.IntN(6))
	w.deps = []Deployment{{ID: "ecs-svc/0000000000000000001", Status: StatusPrimary, TaskDefinition: "td:1", RolloutState: RolloutInProgress}}
	return w
}

// steadyUp runs the world until the service is steady.
func (w *world) steadyUp(t *testing.T, limit int) {
	t.Helper()
	for range limit {
		dec := w.decide()
		w.apply(dec)
		if dec.Steady {
			return
		}
		w.agents()
	}
	t.Fatalf("service never became steady: %+v", w.deps)
}

func TestPropRollingDeploymentKeepsBounds(t *testing.T) {
	for seed := range uint64(300) {
		w := newWorld(seed)
		w.steadyUp(t, 200)
		// Deploy a new task definition.
		newID := "ecs-svc/0000000000000000002"
		for i := range w.deps {
			w.deps[i].Status = StatusActive
		}
		w.deps = append([]Deployment{{ID: newID, Status: StatusPrimary, TaskDefinition: "td:2", RolloutState: RolloutInProgress}}, w.deps...)
		w.svc.Steady = false
		desired := w.svc.DesiredCount
		minH := MinHealthy(desired, w.svc.MinHealthyPercent)
		maxT := MaxTasks(desired, w.svc.MaxPercent)
		// Can the deployment make progress within the bounds at all?
		possible := maxT > desired || minH < desired
		steady := false
		for step := range 300 {
			healthyBefore, _ := counts(w.tasks)
			dec := w.decide()
			w.apply(dec)
			healthy, occupying := counts(w.tasks)
			if healthy < min(healthyBefore, minH) {
				t.Fatalf("seed %d step %d: healthy %d < min(%d, %d)", seed, step, healthy, healthyBefore, minH)
			}
			started := 0
			for _, s := range dec.Start {
				started += s.Count
			}
			if started > 0 && occupying > maxT {
				t.Fatalf("seed %d step %d: %d tasks RUNNING+PENDING > max %d", seed, step, occupying, maxT)
			}
			// Steady exactly when one deployment and running == desired.
			run := 0
			for _, tk := range w.tasks {
				if tk.LastStatus == "RUNNING" {
					run++
				}
			}
			if dec.Steady != (len(dec.Deployments) == 1 && run == desired && len(dec.Start) == 0 && len(dec.Stop) == 0 && dec.PendingCount == 0) {
				t.Fatalf("seed %d step %d: steady=%v with %d deployments, running %d/%d", seed, step, dec.Steady, len(dec.Deployments), run, desired)
			}
			if dec.Steady {
				steady = true
				break
			}
			w.agents()
		}
		if possible && !steady {
			t.Fatalf("seed %d: deployment (desired %d, min %d%%, max %d%%) did not complete: %+v", seed, desired, w.svc.MinHealthyPercent, w.svc.MaxPercent, w.deps)
		}
		if steady {
			for _, tk := range w.tasks {
				if tk.DesiredStatus == "RUNNING" && tk.DeploymentID != newID {
					t.Fatalf("seed %d: old task %s still desired RUNNING", seed, tk.ID)
				}
			}
		}
	}
}

func TestPropFailedDeploymentStartsNothingAndRollbackReturns(t *testing.T) {
	for seed := range uint64(200) {
		w := newWorld(seed)
		if w.svc.DesiredCount == 0 {
			w.svc.DesiredCount = 1
		}
		w.svc.MaxPercent = 200
		w.svc.CircuitBreaker = true
		w.svc.Rollback = seed%2 == 0
		w.steadyUp(t, 200)
		completedTD := w.svc.LastCompletedTD
		for i := range w.deps {
			w.deps[i].Status = StatusActive
		}
		w.deps = append([]Deployment{{ID: "ecs-svc/0000000000000000002", Status: StatusPrimary, TaskDefinition: "td:bad", RolloutState: RolloutInProgress}}, w.deps...)
		w.svc.Steady = false
		w.failTD = "td:bad"
		failedSeen := false
		for range 3000 {
			dec := w.decide()
			for _, d := range dec.Deployments {
				if d.RolloutState == RolloutFailed {
					failedSeen = true
					for _, s := range dec.Start {
						if s.DeploymentID == d.ID {
							t.Fatalf("seed %d: FAILED deployment %s starts tasks", seed, d.ID)
						}
					}
				}
			}
			if dec.RolledBackTo != "" {
				failedSeen = true
			}
			if dec.RolledBackTo != "" && dec.RolledBackTo != completedTD {
				t.Fatalf("seed %d: rolled back to %s, want %s", seed, dec.RolledBackTo, completedTD)
			}
			w.apply(dec)
			if dec.Steady {
				break
			}
			w.agents()
			w.now = w.now.Add(5 * time.Second) // let back-off pass
		}
		if !failedSeen {
			t.Fatalf("seed %d: circuit breaker never tripped", seed)
		}
		if w.svc.Rollback && w.deps[0].TaskDefinition != completedTD {
			t.Fatalf("seed %d: primary %s after rollback, want %s", seed, w.deps[0].TaskDefinition, completedTD)
		}
	}
}

func TestPropLostInstanceTasksAreReplacedWithoutFailures(t *testing.T) {
	for seed := range uint64(200) {
		w := newWorld(seed)
		w.insts = instances(2 + w.rng.IntN(5))
		if w.svc.DesiredCount == 0 {
			w.svc.DesiredCount = 1 + w.rng.IntN(8)
		}
		w.svc.MaxPercent = max(w.svc.MaxPercent, 200) // room for a deployment to progress
		w.svc.CircuitBreaker = true
		w.steadyUp(t, 200)
		// Lose an instance mid-way through a deployment or in steady state.
		if seed%2 == 0 {
			for i := range w.deps {
				w.deps[i].Status = StatusActive
			}
			w.deps = append([]Deployment{{ID: "ecs-svc/0000000000000000002", Status: StatusPrimary, TaskDefinition: "td:2", RolloutState: RolloutInProgress}}, w.deps...)
			w.svc.Steady = false
			w.apply(w.decide())
			w.agents()
		}
		lost := w.insts[w.rng.IntN(len(w.insts))].ID
		w.lose(lost)
		w.svc.Steady = false
		steady := false
		for range 300 {
			dec := w.decide()
			for _, d := range dec.Deployments {
				if d.FailedTasks != 0 || d.RolloutState == RolloutFailed {
					t.Fatalf("seed %d: lost tasks counted as failures: %+v", seed, d)
				}
			}
			if dec.RetryAfter != 0 {
				t.Fatalf("seed %d: back-off after losing an instance", seed)
			}
			w.apply(dec)
			if dec.Steady {
				steady = true
				break
			}
			w.agents()
		}
		if !steady {
			t.Fatalf("seed %d: not steady again after losing an instance: %+v", seed, w.deps)
		}
		for _, tk := range w.tasks {
			if tk.LastStatus != "STOPPED" && tk.InstanceID == lost {
				t.Fatalf("seed %d: task %s left on the lost instance", seed, tk.ID)
			}
		}
	}
}

// TestPropUnreachableInstanceNeverLowersCapacity: an instance becomes
// unreachable (its agent silent: its tasks do not move), and later comes
// back. Throughout, the service's RUNNING tasks desired RUNNING never drop
// below the desired count; nothing on the unreachable instance is
// stopped; its tasks are replaced elsewhere; after the return the surplus
// is stopped and the service is steady with exactly desired tasks.
func TestPropUnreachableInstanceNeverLowersCapacity(t *testing.T) {
	for seed := range uint64(300) {
		w := newWorld(seed)
		w.insts = instances(2 + w.rng.IntN(5))
		if w.svc.DesiredCount == 0 {
			w.svc.DesiredCount = 1 + w.rng.IntN(8)
		}
		w.steadyUp(t, 200)
		desired := w.svc.DesiredCount
		capacity := func() int {
			n := 0
			for _, tk := range w.tasks {
				if tk.DesiredStatus == "RUNNING" && tk.LastStatus == "RUNNING" {
					n++
				}
			}
			return n
		}
		away := w.insts[w.rng.IntN(len(w.insts))].ID
		for i := range w.insts {
			if w.insts[i].ID == away {
				w.insts[i].Connected, w.insts[i].Unreachable = false, true
			}
		}
		w.svc.Steady = false
		step := func(phase string, i int) Decision {
			dec := w.decide()
			for _, st := range dec.Stop {
				for _, tk := range w.tasks {
					if tk.ID == st.TaskID && tk.InstanceID == away && phase == "away" {
						t.Fatalf("seed %d %s step %d: stopped %s on the unreachable instance", seed, phase, i, tk.ID)
					}
				}
			}
			w.apply(dec)
			if c := capacity(); c < desired {
				t.Fatalf("seed %d %s step %d: %d tasks RUNNING < desired %d", seed, phase, i, c, desired)
			}
			w.agentsExcept(away, phase == "away")
			return dec
		}
		replaced := false
		for i := range 100 {
			dec := step("away", i)
			held := false
			for _, tk := range w.tasks {
				held = held || (tk.InstanceID == away && tk.LastStatus == "RUNNING")
			}
			if dec.Steady && held {
				t.Fatalf("seed %d: steady with a task away", seed)
			}
			n := 0
			for _, tk := range w.tasks {
				if tk.InstanceID != away && tk.DesiredStatus == "RUNNING" && tk.LastStatus == "RUNNING" {
					n++
				}
			}
			if n == desired {
				replaced = true
			}
		}
		if !replaced {
			t.Fatalf("seed %d: tasks of the unreachable instance not replaced", seed)
		}
		for i := range w.insts {
			if w.insts[i].ID == away {
				w.insts[i].Connected, w.insts[i].Unreachable = true, false
			}
		}
		steady := false
		for i := range 100 {
			if dec := step("back", i); dec.Steady {
				steady = true
				break
			}
		}
		live := 0
		for _, tk := range w.tasks {
			if tk.DesiredStatus == "RUNNING" {
				live++
			}
		}
		if !steady || live != desired {
			t.Fatalf("seed %d: after the return steady %v with %d live tasks, desired %d", seed, steady, live, desired)
		}
	}
}

// agentsExcept moves tasks forward as agents does, but, while frozen,
// not those on instance id (its agent is silent).
func (w *world) agentsExcept(id string, frozen bool) {
	if !frozen {
		w.agents()
		return
	}
	var held []Task
	var idx []int
	for i, tk := range w.tasks {
		if tk.InstanceID == id {
			held = append(held, tk)
			idx = append(idx, i)
		}
	}
	w.agents()
	for k, i := range idx {
		w.tasks[i] = held[k]
	}
}
