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
		LostAfter: 5 * time.Second, NewDeploymentID: fmt.Sprintf("ecs-svc/%019d", 9000+w.next)})
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
				inst = w.insts[w.rng.IntN(len(w.insts))].ID
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
