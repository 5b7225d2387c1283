package taskrun

import (
	"fmt"
	"time"
)

// CStatus is a container's known status, in lifecycle order. It only
// moves forward.
type CStatus int

const (
	CNone    CStatus = iota // nothing done yet
	CPulled                 // its image is present
	CCreated                // the Docker container exists
	CRunning                // started (and not seen exited)
	CStopped                // exited, or will never run
)

var cstatusNames = [...]string{"NONE", "PULLED", "CREATED", "RUNNING", "STOPPED"}

func (s CStatus) String() string {
	if int(s) < len(cstatusNames) {
		return cstatusNames[s]
	}
	return fmt.Sprintf("CStatus(%d)", int(s))
}

// Wire reports the status as ECS names it for containers.
func (s CStatus) Wire() string {
	switch s {
	case CRunning:
		return "RUNNING"
	case CStopped:
		return "STOPPED"
	}
	return "PENDING"
}

// Health is a container's or a task's ECS health status.
const (
	HealthHealthy   = "HEALTHY"
	HealthUnhealthy = "UNHEALTHY"
	HealthUnknown   = "UNKNOWN"
)

// Dependency conditions (dependsOn).
const (
	CondStart    = "START"
	CondComplete = "COMPLETE"
	CondSuccess  = "SUCCESS"
	CondHealthy  = "HEALTHY"
)

// Dep is one dependsOn entry.
type Dep struct {
	Container string
	Condition string
}

// CView is what the decision needs to know about one container. It is a
// value: the decision functions do no I/O.
type CView struct {
	Name      string
	Essential bool
	Known     CStatus
	// ExitCode is set once the container exited.
	ExitCode *int
	// Health is "" for a container without a health check, else one of
	// HealthHealthy, HealthUnhealthy, HealthUnknown.
	Health    string
	DependsOn []Dep
	// Needs are containers that must exist (be created) before this one is
	// created: links and volumesFrom.
	Needs []string
	// StartedAt is when it started (zero: never).
	StartedAt time.Time
	// StartTimeout bounds how long a container that others depend on with
	// COMPLETE, SUCCESS or HEALTHY may take, from its start, to satisfy
	// them (ECS's startTimeout belongs to the dependency).
	StartTimeout time.Duration
}

// Action is what the runner must do next with a container.
type Action int

const (
	Wait    Action = iota // nothing now
	Pull                  // make its image present
	Create                // create the Docker container
	Start                 // start it
	Stop                  // SIGTERM, stopTimeout, SIGKILL
	Abandon               // it can never run: mark it STOPPED with Reason, do not start it
)

var actionNames = [...]string{"wait", "pull", "create", "start", "stop", "abandon"}

func (a Action) String() string { return actionNames[a] }

// Decision is next's answer.
type Decision struct {
	Action Action
	Reason string // for Abandon: the container's stopped reason; for Wait: why (for logs and tests)
}

// next decides the next step for container c given the task's desired
// direction (stopping false: toward RUNNING; true: toward STOPPED), every
// container of the task by name (c included) and now. It is pure.
//
// Toward RUNNING: NONE pulls; PULLED creates once its links and
// volumesFrom targets exist and its dependsOn conditions hold, or is
// abandoned when one never can (a SUCCESS dependency exited non-zero, a
// dependency that will never start, a dependency that timed out); CREATED
// starts; RUNNING and STOPPED wait.
//
// Toward STOPPED: a container that never started is abandoned; a RUNNING
// container stops once every container that depends on it has stopped
// (reverse dependency order); STOPPED waits.
func next(c CView, stopping bool, all map[string]CView, now time.Time) Decision {
	if stopping {
		switch c.Known {
		case CStopped:
			return Decision{Wait, "stopped"}
		case CRunning:
			for _, o := range sortedViews(all) {
				if o.Name == c.Name || o.Known == CStopped {
					continue
				}
				for _, d := range o.DependsOn {
					if d.Container == c.Name {
						return Decision{Wait, "waiting for " + o.Name + " to stop first"}
					}
				}
			}
			return Decision{Stop, ""}
		}
		return Decision{Abandon, ""}
	}
	switch c.Known {
	case CNone:
		return Decision{Pull, ""}
	case CPulled:
		for _, n := range c.Needs {
			o, ok := all[n]
			if !ok {
				return Decision{Abandon, fmt.Sprintf("container %s needs container %s, which is not in the task", c.Name, n)}
			}
			if o.Known < CCreated {
				return Decision{Wait, "waiting for " + n + " to be created"}
			}
		}
		var waiting string
		for _, d := range c.DependsOn {
			o, ok := all[d.Container]
			if !ok {
				return Decision{Abandon, fmt.Sprintf("dependency graph: container ordering dependency [%s] for target [%s] does not exist", d.Container, c.Name)}
			}
			sat, never, why := resolved(c.Name, d, o, now)
			if never {
				return Decision{Abandon, why}
			}
			if !sat && waiting == "" {
				waiting = why
			}
		}
		if waiting != "" {
			return Decision{Wait, waiting}
		}
		return Decision{Create, ""}
	case CCreated:
		return Decision{Start, ""}
	}
	return Decision{Wait, c.Known.String()}
}

// resolved says whether dependency d (on container o) holds, or never
// can; why explains the answer that is not "holds".
func resolved(name string, d Dep, o CView, now time.Time) (sat, never bool, why string) {
	target := fmt.Sprintf("container ordering dependency [%s] for target [%s]", o.Name, name)
	timedOut := func() bool {
		return o.Known != CStopped && !o.StartedAt.IsZero() && o.StartTimeout > 0 && now.After(o.StartedAt.Add(o.StartTimeout))
	}
	neverStarted := o.Known == CStopped && o.StartedAt.IsZero()
	switch d.Condition {
	case CondStart:
		if o.Known >= CRunning && !neverStarted {
			return true, false, ""
		}
	case CondComplete:
		if o.Known == CStopped && !neverStarted {
			return true, false, ""
		}
	case CondSuccess:
		if o.Known == CStopped && !neverStarted {
			if o.ExitCode != nil && *o.ExitCode == 0 {
				return true, false, ""
			}
			return false, true, fmt.Sprintf("dependency graph: failed to resolve %s as dependency did not exit successfully", target)
		}
	case CondHealthy:
		if o.Health == HealthHealthy && o.Known == CRunning {
			return true, false, ""
		}
		if o.Known == CStopped && !neverStarted {
			return false, true, fmt.Sprintf("dependency graph: failed to resolve %s as dependency stopped before it was healthy", target)
		}
	default:
		return false, true, fmt.Sprintf("dependency graph: unknown condition %q in %s", d.Condition, target)
	}
	if neverStarted {
		return false, true, fmt.Sprintf("dependency graph: failed to resolve %s because dependency will never start", target)
	}
	if d.Condition != CondStart && timedOut() {
		return false, true, fmt.Sprintf("dependency graph: %s has timed out", target)
	}
	return false, false, fmt.Sprintf("waiting for %s to reach %s", o.Name, d.Condition)
}

// sortedViews returns the views in name order, so decisions are stable.
func sortedViews(all map[string]CView) []CView {
	out := make([]CView, 0, len(all))
	for _, v := range all {
		out = append(out, v)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Name < out[j-1].Name; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// TaskHealth rolls container health up to the task's, as ECS does: only
// essential containers with a health check count; UNHEALTHY if any is,
// else UNKNOWN if any is unknown, else HEALTHY. A task with no such
// container is UNKNOWN.
func TaskHealth(cs []CView) string {
	counted, unknown := 0, false
	for _, c := range cs {
		if !c.Essential || c.Health == "" {
			continue
		}
		counted++
		switch c.Health {
		case HealthUnhealthy:
			return HealthUnhealthy
		case HealthHealthy:
		default:
			unknown = true
		}
	}
	if counted == 0 || unknown {
		return HealthUnknown
	}
	return HealthHealthy
}

// Stop codes and reasons the runner sets.
const (
	StopCodeEssentialExited = "EssentialContainerExited"
	StopCodeFailedToStart   = "TaskFailedToStart"
	ReasonEssentialExited   = "Essential container in task exited"
	ReasonOOM               = "OutOfMemoryError: Container killed due to memory usage"
)

// stopCause says whether the task must stop because of its containers: an
// essential container that stopped. It is pure.
func stopCause(cs []CView, failure string) (code, reason string, stop bool) {
	if failure != "" {
		return StopCodeFailedToStart, failure, true
	}
	for _, c := range cs {
		if c.Essential && c.Known == CStopped {
			if c.StartedAt.IsZero() {
				return StopCodeFailedToStart, "Essential container " + c.Name + " failed to start", true
			}
			return StopCodeEssentialExited, ReasonEssentialExited, true
		}
	}
	return "", "", false
}

// allEssentialStarted is the RUNNING condition: every essential container
// started (a task without essential containers: every container).
func allEssentialStarted(cs []CView) bool {
	any := false
	for _, c := range cs {
		if c.Essential {
			any = true
			if c.StartedAt.IsZero() {
				return false
			}
		}
	}
	if !any {
		for _, c := range cs {
			if c.StartedAt.IsZero() {
				return false
			}
		}
	}
	return true
}
