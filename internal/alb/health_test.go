package alb

import (
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestHealthInitialToHealthyAfterThreshold(t *testing.T) {
	th := thresholds{Enabled: true, Healthy: 3, Unhealthy: 2, Interval: 5 * time.Second}
	h := newHealth(th, true)
	if h.State != StateInitial || h.Reason != "Elb.RegistrationInProgress" || h.healthy() {
		t.Fatalf("fresh target: %+v", h)
	}
	h = h.observe(checkResult{OK: true, Code: 200}, th, t0)
	if h.State != StateInitial || h.Reason != "Elb.InitialHealthChecking" || h.healthy() {
		t.Fatalf("after one pass: %+v", h)
	}
	if d := h.nextCheck(th); d != edgeInterval {
		t.Fatalf("between states the next check comes after %v, want the edge interval", d)
	}
	h = h.observe(checkResult{OK: true}, th, t0.Add(time.Second))
	h = h.observe(checkResult{OK: true}, th, t0.Add(2*time.Second))
	if h.State != StateHealthy || h.Reason != "" || !h.healthy() || !h.healthyAt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("after three passes: %+v", h)
	}
	if d := h.nextCheck(th); d != th.Interval {
		t.Fatalf("settled: next check after %v, want the interval", d)
	}
}

func TestHealthUnhealthyReasons(t *testing.T) {
	th := thresholds{Enabled: true, Healthy: 2, Unhealthy: 2, Interval: time.Second}
	for _, c := range []struct {
		res           checkResult
		reason, descr string
	}{
		{checkResult{Code: 503}, "Target.ResponseCodeMismatch", "Health checks failed with these codes: [503]"},
		{checkResult{Timeout: true}, "Target.Timeout", "Request timed out"},
		{checkResult{}, "Target.FailedHealthChecks", "Health checks failed"},
	} {
		h := newHealth(th, true)
		h = h.observe(checkResult{OK: true}, th, t0).observe(checkResult{OK: true}, th, t0)
		h = h.observe(c.res, th, t0)
		if h.State != StateHealthy {
			t.Fatalf("one failure below the threshold: %+v", h)
		}
		h = h.observe(c.res, th, t0)
		if h.State != StateUnhealthy || h.Reason != c.reason || h.Description != c.descr {
			t.Errorf("%+v: got %s %s %q", c.res, h.State, h.Reason, h.Description)
		}
		if h.healthy() || !h.failOpen() {
			t.Errorf("unhealthy target: healthy=%v failOpen=%v", h.healthy(), h.failOpen())
		}
	}
}

func TestHealthPassiveEjection(t *testing.T) {
	th := thresholds{Enabled: true, Healthy: 2, Unhealthy: 3, Interval: 10 * time.Second}
	h := newHealth(th, true).observe(checkResult{OK: true}, th, t0).observe(checkResult{OK: true}, th, t0)
	h = h.connectFailed(th, t0)
	if h.healthy() {
		t.Fatal("a target that refused a connection still takes traffic")
	}
	if h.State != StateHealthy || h.nextCheck(th) != edgeInterval {
		t.Fatalf("ejected but not yet failed its checks: %+v next %v", h, h.nextCheck(th))
	}
	back := h.observe(checkResult{OK: true}, th, t0)
	if !back.healthy() {
		t.Fatal("a passing check should bring an ejected target back")
	}
	h = h.observe(checkResult{}, th, t0).observe(checkResult{}, th, t0)
	if h.State != StateUnhealthy {
		t.Fatalf("ejection plus two failed checks reach the threshold of 3: %+v", h)
	}
}

func TestHealthDrainAndUnused(t *testing.T) {
	th := thresholds{Enabled: true, Healthy: 2, Unhealthy: 2, Interval: time.Second}
	h := newHealth(th, true).drain(5*time.Second, t0)
	if h.State != StateDraining || h.Reason != "Target.DeregistrationInProgress" || h.healthy() || h.failOpen() {
		t.Fatalf("%+v", h)
	}
	if h.observe(checkResult{OK: true}, th, t0).State != StateDraining || h.connectFailed(th, t0).State != StateDraining {
		t.Fatal("checks changed a draining target")
	}
	if h.drained(t0.Add(4*time.Second)) || !h.drained(t0.Add(5*time.Second)) {
		t.Fatal("drained at the wrong time")
	}
	if u := newHealth(th, false); u.State != StateUnused || u.Reason != "Target.NotInUse" {
		t.Fatalf("%+v", u)
	}
	if d := newHealth(thresholds{}, true); d.State != StateUnavailable || d.Reason != "Target.HealthCheckDisabled" || !d.healthy() {
		t.Fatalf("%+v", d)
	}
}

// Property: over any sequence of results, the state is healthy exactly when the last run of
// passes reached the healthy threshold after the last time the failures reached the unhealthy one
// (or the run never failed enough), and never healthy before HealthyThreshold passes in a row.
func TestHealthProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 2000; iter++ {
		th := thresholds{Enabled: true, Healthy: 1 + rng.IntN(5), Unhealthy: 1 + rng.IntN(5), Interval: time.Second}
		h := newHealth(th, true)
		state := StateInitial
		okRun, failRun := 0, 0
		for step := 0; step < 40; step++ {
			now := t0.Add(time.Duration(step) * time.Second)
			switch rng.IntN(3) {
			case 0:
				h = h.observe(checkResult{OK: true, Code: 200}, th, now)
				okRun, failRun = okRun+1, 0
				if okRun >= th.Healthy {
					state = StateHealthy
				}
			case 1:
				h = h.observe(checkResult{Code: 500}, th, now)
				okRun, failRun = 0, failRun+1
				if failRun >= th.Unhealthy {
					state = StateUnhealthy
				}
			case 2:
				h = h.connectFailed(th, now)
				okRun, failRun = 0, failRun+1
				if failRun >= th.Unhealthy {
					state = StateUnhealthy
				}
				if h.healthy() {
					t.Fatalf("healthy right after a refused connection: %+v", h)
				}
			}
			if h.State != state {
				t.Fatalf("iter %d step %d th %+v: state %s, model %s", iter, step, th, h.State, state)
			}
			if h.State == StateUnhealthy && h.Reason == "" {
				t.Fatal("unhealthy without a reason")
			}
		}
	}
}

func TestMatcher(t *testing.T) {
	m, err := parseMatcher("200,202-204, 301")
	if err != nil {
		t.Fatal(err)
	}
	for code, want := range map[int]bool{200: true, 201: false, 202: true, 204: true, 205: false, 301: true} {
		if m.match(code) != want {
			t.Errorf("code %d: %v", code, !want)
		}
	}
	if d, _ := parseMatcher(""); !d.match(200) || d.match(204) {
		t.Error("default matcher is 200")
	}
	for _, bad := range []string{"abc", "300-200", "200-x"} {
		if _, err := parseMatcher(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestSlowStartWeight(t *testing.T) {
	if w := slowStartWeight(t0, 0, t0); w != 1 {
		t.Fatal(w)
	}
	if w := slowStartWeight(t0, 10*time.Second, t0.Add(5*time.Second)); w != 0.5 {
		t.Fatal(w)
	}
	if w := slowStartWeight(t0, 10*time.Second, t0); w <= 0 {
		t.Fatal("a target in slow start must get some traffic")
	}
	if w := slowStartWeight(t0, 10*time.Second, t0.Add(11*time.Second)); w != 1 {
		t.Fatal(w)
	}
}

func TestHealthRestoredHealthy(t *testing.T) {
	th := thresholds{Enabled: true, Healthy: 5, Unhealthy: 2, Interval: 5 * time.Second}
	h := newHealth(th, true).restoreHealthy(t0)
	if !h.healthy() || slowStartWeight(h.healthyAt, time.Minute, t0) != 1 {
		t.Fatalf("restored target: %+v", h)
	}
	h = h.observe(checkResult{Code: 500}, th, t0).observe(checkResult{Code: 500}, th, t0)
	if h.State != StateUnhealthy {
		t.Fatal("a restored target's failing checks must take it out")
	}
	if u := newHealth(th, false).restoreHealthy(t0); u.State != StateUnused {
		t.Fatal("restoring does not make an unused target healthy")
	}
}
