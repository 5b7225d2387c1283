package alb

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// This file is the pure health state machine of one target: active check results, passive
// connection failures, draining and the states and reason codes ELBv2 reports. Every function
// takes `now`; nothing here does I/O.

// ELBv2 target health states (TargetHealthStateEnum).
const (
	StateInitial     = "initial"
	StateHealthy     = "healthy"
	StateUnhealthy   = "unhealthy"
	StateUnused      = "unused"
	StateDraining    = "draining"
	StateUnavailable = "unavailable"
)

// edgeInterval is how soon the next check runs while a target is between states (some passes
// toward healthy, or some failures toward unhealthy): like Envoy's healthy/unhealthy edge
// intervals, it lets a new target enter, and a dead one leave, well before Interval*Threshold.
const edgeInterval = 250 * time.Millisecond

// checkResult is the outcome of one active health check.
type checkResult struct {
	OK      bool
	Code    int  // HTTP status, 0 when none was received
	Timeout bool // no answer within the check's timeout
}

// healthState is the health of one target; the zero value is a freshly registered target.
type healthState struct {
	State       string
	Reason      string
	Description string
	okRun       int       // consecutive passing checks
	failRun     int       // consecutive failing checks
	checked     bool      // at least one check has completed since registration
	ejected     bool      // passively ejected: a connection to it failed; back on its next passing check
	healthyAt   time.Time // when it last became healthy (slow start counts from here)
	drainUntil  time.Time
}

// thresholds are the parts of a health check the state machine needs.
type thresholds struct {
	Enabled            bool
	Healthy, Unhealthy int
	Interval           time.Duration
}

func newHealth(th thresholds, used bool) healthState {
	h := healthState{State: StateInitial, Reason: "Elb.RegistrationInProgress", Description: "Target registration is in progress"}
	switch {
	case !used:
		h.State, h.Reason, h.Description = StateUnused, "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer"
	case !th.Enabled:
		h.State, h.Reason, h.Description = StateUnavailable, "Target.HealthCheckDisabled", "Health checks are disabled"
	}
	return h
}

// observe folds one active check result into the state.
func (h healthState) observe(res checkResult, th thresholds, now time.Time) healthState {
	if h.State == StateDraining || h.State == StateUnused || h.State == StateUnavailable {
		return h
	}
	h.checked = true
	if res.OK {
		h.okRun++
		h.failRun = 0
		h.ejected = false
		if h.State != StateHealthy && h.okRun >= max(th.Healthy, 1) {
			h.State, h.Reason, h.Description = StateHealthy, "", ""
			h.healthyAt = now
		} else if h.State == StateInitial {
			h.Reason, h.Description = "Elb.InitialHealthChecking", "Initial health checks in progress"
		}
		return h
	}
	h.failRun++
	h.okRun = 0
	if h.State != StateUnhealthy && h.failRun < max(th.Unhealthy, 1) {
		if h.State == StateInitial {
			h.Reason, h.Description = "Elb.InitialHealthChecking", "Initial health checks in progress"
		}
		return h
	}
	h.State = StateUnhealthy
	switch {
	case res.Timeout:
		h.Reason, h.Description = "Target.Timeout", "Request timed out"
	case res.Code != 0:
		h.Reason, h.Description = "Target.ResponseCodeMismatch", fmt.Sprintf("Health checks failed with these codes: [%d]", res.Code)
	default:
		h.Reason, h.Description = "Target.FailedHealthChecks", "Health checks failed"
	}
	return h
}

// connectFailed records a failed connection from the data plane (passive check): the target
// leaves rotation at once and counts one failed check; a passing active check brings it back.
func (h healthState) connectFailed(th thresholds, now time.Time) healthState {
	if h.State == StateDraining || h.State == StateUnused || h.State == StateUnavailable {
		return h
	}
	h.ejected = true
	return h.observe(checkResult{}, th, now)
}

// restoreHealthy starts a registration healthy (a target known healthy before a restart).
func (h healthState) restoreHealthy(now time.Time) healthState {
	if h.State != StateInitial {
		return h
	}
	h.State, h.Reason, h.Description = StateHealthy, "", ""
	h.checked = true
	h.healthyAt = now.Add(-24 * time.Hour) // not in slow start
	return h
}

// drain moves the target to draining until now+delay.
func (h healthState) drain(delay time.Duration, now time.Time) healthState {
	if h.State == StateDraining {
		return h
	}
	h.State, h.Reason, h.Description = StateDraining, "Target.DeregistrationInProgress", "Target deregistration is in progress"
	h.drainUntil = now.Add(delay)
	return h
}

// drained reports whether a draining target may now be forgotten.
func (h healthState) drained(now time.Time) bool {
	return h.State == StateDraining && !now.Before(h.drainUntil)
}

// healthy reports whether the target takes traffic while the group has healthy targets.
func (h healthState) healthy() bool {
	return (h.State == StateHealthy && !h.ejected) || h.State == StateUnavailable
}

// failOpen reports whether the target takes traffic when no target of the group is healthy:
// ALB then routes to every registered target that has been checked, healthy or not.
func (h healthState) failOpen() bool {
	return h.State == StateHealthy || h.State == StateUnhealthy || h.State == StateUnavailable
}

// nextCheck is the delay before the next active check.
func (h healthState) nextCheck(th thresholds) time.Duration {
	between := (h.okRun > 0 && h.State != StateHealthy) || (h.failRun > 0 && h.State != StateUnhealthy) || h.ejected
	if between && th.Interval > edgeInterval {
		return edgeInterval
	}
	return th.Interval
}

// slowStartWeight is the share (0,1] of a full target's traffic a target gets while it is in slow
// start: rising linearly from when it became healthy over the slow start duration.
func slowStartWeight(healthyAt time.Time, slow time.Duration, now time.Time) float64 {
	if slow <= 0 || healthyAt.IsZero() {
		return 1
	}
	el := now.Sub(healthyAt)
	if el >= slow {
		return 1
	}
	w := float64(el) / float64(slow)
	return max(w, 0.01)
}

// matcher is a compiled HTTP code matcher: "200", "200-299", "200,202".
type matcher []struct{ lo, hi int }

func parseMatcher(s string) (matcher, error) {
	if strings.TrimSpace(s) == "" {
		s = "200"
	}
	var m matcher
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("matcher %q: %q is not a code", s, part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("matcher %q: %q is not a code range", s, part)
			}
		}
		m = append(m, struct{ lo, hi int }{a, b})
	}
	return m, nil
}

func (m matcher) match(code int) bool {
	for _, r := range m {
		if r.lo <= code && code <= r.hi {
			return true
		}
	}
	return false
}
